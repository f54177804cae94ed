//! Issue 15, guests before their hypervisor, on real hosts: a harness apt host made a Proxmox VE
//! stand-in (its `pveversion`/`pct`/`qm` print real Proxmox output) is inventoried as a
//! hypervisor; the configured host named like one of its VMs is matched as its guest, so a wave
//! updates the guest first and `--batch reboot` refuses the hypervisor, naming the guest.

use serde_json::Value;

use crate::batch::{json_lines, run_expecting};
use crate::batch_waves::assert_done_before_started;
use crate::harness::TestEnv;
use crate::harness::apthost::{AptHost, Packages};
use crate::harness::proxmox::make_hypervisor;

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

    run_expecting(&env, &["--batch", "inventory"], 0);
    let snapshot: Value = serde_json::from_str(
        &std::fs::read_to_string(env.state_dir().join("tendhost/snapshot.json")).unwrap(),
    )
    .unwrap();
    let hosts = snapshot["hosts"].as_array().expect("hosts in the snapshot");
    let pve_model = hosts
        .iter()
        .find(|h| h["name"] == "pve")
        .expect("pve in the snapshot");
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

    let out = run_expecting(&env, &["--batch", "reboot"], 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'pve' is the hypervisor of 'debian-vm': they go down with it"),
        "{stderr}"
    );

    let out = run_expecting(
        &env,
        &[
            "--batch",
            "wave",
            "--json",
            "--batch-size",
            "100%",
            "--allow-removals",
        ],
        0,
    );
    assert_done_before_started(&json_lines(&out), "debian-vm", "pve");
    assert_eq!(pve.version("tendhost-app"), "1.1");
}
