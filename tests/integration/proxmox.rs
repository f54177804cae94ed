//! Issue 15, guests before their hypervisor, on real hosts: a harness apt host made a Proxmox VE
//! stand-in (its `pveversion`/`pct`/`qm` print real Proxmox output) is inventoried as a
//! hypervisor; the configured host named like one of its VMs is matched as its guest, so a wave
//! updates the guest first and `--batch reboot` refuses the hypervisor, naming the guest. A guest
//! known only by the address its QEMU guest agent reports (a DHCP VM) is matched the same way.

use serde_json::Value;

use crate::batch::run_expecting;
use crate::batch_waves::assert_hypervisor_waits_for_its_guest;
use crate::harness::TestEnv;
use crate::harness::apthost::{AptHost, Packages};
use crate::harness::proxmox::{make_hypervisor, make_hypervisor_with, routable_local_ipv4};

/// Runs `--batch inventory` and returns `host`'s model from the snapshot it wrote.
fn inventoried(env: &TestEnv, host: &str) -> Value {
    run_expecting(env, &["--batch", "inventory"], 0);
    let snapshot: Value = serde_json::from_str(
        &std::fs::read_to_string(env.state_dir().join("tendhost/snapshot.json")).unwrap(),
    )
    .unwrap();
    let hosts = snapshot["hosts"].as_array().expect("hosts in the snapshot");
    hosts
        .iter()
        .find(|h| h["name"] == host)
        .unwrap_or_else(|| panic!("{host} in the snapshot"))
        .clone()
}

#[test]
fn a_proxmox_host_is_seen_as_hypervisor_and_goes_after_its_guest() {
    let pve = AptHost::start("pve", Packages::Upgradable);
    make_hypervisor(&pve.root);
    // Named like VM 100 in the samples (`qm list`: debian-vm).
    let guest = AptHost::start("debian-vm", Packages::Upgradable);
    let env = TestEnv::new();
    let mut body = String::new();
    for (name, host) in [("pve", &pve), ("debian-vm", &guest)] {
        env.trust(&host.sshd);
        body.push_str(&env.host_toml(name, &host.sshd, "root"));
        body.push_str("manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n\n");
    }
    env.write_config(&body);

    let pve_model = inventoried(&env, "pve");
    let hypervisor = &pve_model["inventory"]["hypervisor"];
    assert_eq!(hypervisor["platform"], "proxmox", "{pve_model:#}");
    assert_eq!(hypervisor["version"], "8.2.4");
    let guests = hypervisor["guests"].as_array().unwrap();
    assert_eq!(guests.len(), 6, "{hypervisor:#}");
    assert_eq!(guests[0]["hostname"], "pihole");
    assert_eq!(guests[0]["ips"][0], "192.168.1.53");
    // Run-time addresses through the real script: a DHCP container's from `pvesh`, a DHCP VM's
    // from its guest agent; VM 100's agent hangs and `timeout` leaves it its static address.
    let ips = |id: u64| {
        let guest = guests.iter().find(|g| g["id"] == id).expect("the guest");
        guest["ips"].clone()
    };
    assert_eq!(
        ips(105),
        serde_json::json!(["192.168.1.105", "fd12:3456:789a:1:be24:11ff:fe5e:2a05"])
    );
    assert_eq!(
        ips(104),
        serde_json::json!(["192.168.1.104", "fd12:3456:789a:1:be24:11ff:fe00:68"])
    );
    assert_eq!(ips(100), serde_json::json!(["192.168.1.20"]));

    assert_hypervisor_waits_for_its_guest(&env, "pve", "debian-vm");
    assert_eq!(pve.version("tendhost-app"), "1.1");
}

#[test]
fn a_dhcp_vm_known_only_through_its_guest_agent_goes_before_its_hypervisor() {
    // The guest is reached on a real (non-loopback) address of this machine, which VM 104's
    // agent reports as its DHCP lease; its name and config match nothing.
    let ip = routable_local_ipv4();
    let pve = AptHost::start("pve", Packages::Upgradable);
    make_hypervisor_with(&pve.root, &ip);
    let mut guest = AptHost::start("app", Packages::Upgradable);
    let port = guest
        .sshd
        .listen_also_on(&ip)
        .expect("sshd listening on the agent's address");
    let env = TestEnv::new();
    env.trust(&pve.sshd);
    env.append_known_hosts(&format!("[{ip}]:{port} {}\n", guest.sshd.host_public_key()));
    let mut body = env.host_toml("pve", &pve.sshd, "root");
    body.push_str("manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n\n");
    body.push_str(&format!(
        "[[host]]\nname = \"app\"\naddr = \"{ip}\"\nport = {port}\nuser = \"root\"\n\
         ssh_key = \"{}\"\nmanager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n\n",
        crate::harness::client_key().expect("client key").display()
    ));
    env.write_config(&body);

    let pve_model = inventoried(&env, "pve");
    let guests = pve_model["inventory"]["hypervisor"]["guests"]
        .as_array()
        .expect("pve seen as a hypervisor");
    let vm = guests
        .iter()
        .find(|g| g["id"] == 104)
        .expect("VM 104 among the guests");
    assert_eq!(
        vm["ips"],
        serde_json::json!([ip, "fd12:3456:789a:1:be24:11ff:fe00:68"]),
        "the agent's addresses, without loopback and link-local: {vm:#}"
    );
    let unifi = guests.iter().find(|g| g["id"] == 105).unwrap();
    assert_eq!(
        unifi["ips"][0], "192.168.1.105",
        "pvesh's interfaces: {unifi:#}"
    );

    assert_hypervisor_waits_for_its_guest(&env, "pve", "app");
    assert_eq!(guest.version("tendhost-app"), "1.1");
    assert_eq!(pve.version("tendhost-app"), "1.1");
}
