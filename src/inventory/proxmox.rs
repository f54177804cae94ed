//! Proxmox VE hosts and their guests: `pveversion`, `pct list`, `qm list`, each guest's config
//! under `/etc/pve` (an LXC's `hostname` and `ip=`, a VM's `name` and cloud-init `ipconfigN`),
//! and the addresses Proxmox reports for running guests (a VM's QEMU guest agent, an LXC's
//! interfaces), printed behind `@@` markers after the rest of the inventory, and the pure parser
//! for them. Reading the config files rather than running `pct config` per guest keeps a
//! hypervisor with fifty guests one round trip; the run-time addresses cost one Perl tool start
//! per running guest, so they run four at a time, each bounded by `timeout` (a guest whose agent
//! died hangs `qm guest cmd`).
//!
//! Needs the root login Proxmox hosts are usually managed with (`pct`, `qm`, `pvesh` and
//! `/etc/pve` are root's); without it the sections are empty and the host is simply not seen as
//! a hypervisor.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::probe::sections;

/// Appended to the inventory scripts; prints nothing on a host without `pveversion`.
///
/// Run-time addresses: running VMs whose current config enables the guest agent (`agent: 1`,
/// `agent: enabled=1,…`) get `qm guest cmd VMID network-get-interfaces`, running LXCs get
/// `pvesh get /nodes/NODE/lxc/VMID/interfaces` (NODE is the short host name, as Proxmox names
/// its node). A call that fails or times out prints nothing, and its marker is left out.
pub(super) const SCRIPT: &str = r#"
if command -v pveversion >/dev/null 2>&1; then
  pve_pct=$(pct list 2>/dev/null); pve_qm=$(qm list 2>/dev/null)
  echo @@pveversion; pveversion 2>/dev/null
  echo @@pct-list; [ -n "$pve_pct" ] && printf '%s\n' "$pve_pct"
  echo @@qm-list; [ -n "$pve_qm" ] && printf '%s\n' "$pve_qm"
  for f in /etc/pve/lxc/*.conf; do
    if [ -r "$f" ]; then echo "@@lxc-conf ${f##*/}"; cat "$f"; fi
  done
  for f in /etc/pve/qemu-server/*.conf; do
    if [ -r "$f" ]; then echo "@@qemu-conf ${f##*/}"; cat "$f"; fi
  done
  pve_dir=$(mktemp -d 2>/dev/null) || pve_dir=
  if [ -n "$pve_dir" ] && command -v timeout >/dev/null 2>&1; then
    printf '%s\n' "$pve_pct" | awk 'NR > 1 && $2 == "running" { print "lxc-ifaces", $1 }' >"$pve_dir/jobs"
    for pve_id in $(printf '%s\n' "$pve_qm" | awk 'NR > 1 && $3 == "running" { print $1 }'); do
      awk -F': *' '/^\[/ { exit }
        $1 == "agent" { n = split($2, p, ","); for (i = 1; i <= n; i++) {
          if (p[i] !~ /=/) on = p[i]; else if (p[i] ~ /^enabled=/) on = substr(p[i], 9) } }
        END { exit !(on ~ /^(1|on|yes|true)$/) }' "/etc/pve/qemu-server/$pve_id.conf" 2>/dev/null &&
        echo "qm-agent $pve_id"
    done >>"$pve_dir/jobs"
    pve_node=$(uname -n)
    xargs -r -P 4 -L 1 sh -c 'case $3 in
        qm-agent) timeout -k 1 5 qm guest cmd "$4" network-get-interfaces ;;
        lxc-ifaces) timeout -k 1 5 pvesh get "/nodes/$1/lxc/$4/interfaces" --output-format json ;;
      esac >"$2/$3-$4" 2>/dev/null' sh "${pve_node%%.*}" "$pve_dir" <"$pve_dir/jobs"
    while read -r pve_kind pve_id; do
      if [ -s "$pve_dir/$pve_kind-$pve_id" ]; then
        echo "@@$pve_kind $pve_id"; cat "$pve_dir/$pve_kind-$pve_id"; echo
      fi
    done <"$pve_dir/jobs"
    rm -rf "$pve_dir"
  fi
fi
true
"#;

/// A hypervisor's own facts, as its inventory keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hypervisor {
    /// `proxmox`.
    pub platform: String,
    /// `8.2.4` (pve-manager's version).
    pub version: String,
    pub guests: Vec<Guest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    pub id: u32,
    pub kind: GuestKind,
    /// The name Proxmox lists it under.
    pub name: String,
    /// `running`, `stopped`…
    pub status: String,
    /// An LXC's `hostname`; a VM has its `name` only.
    pub hostname: Option<String>,
    /// Its addresses (without the prefix length): the static ones from its config, then those
    /// Proxmox reports at run time (guest agent, LXC interfaces) but loopback and link-local.
    /// What a configured host's `addr` is matched against.
    pub ips: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestKind {
    Lxc,
    Vm,
}

impl Guest {
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }
}

/// The hypervisor in an inventory script's output; `None` when the host is not one.
pub(super) fn parse(output: &str) -> Option<Hypervisor> {
    let sections = sections(output);
    let version_line = sections
        .iter()
        .find(|(name, _)| *name == "pveversion")?
        .1
        .lines()
        .next()?
        .trim()
        .to_string();
    let version = version_line
        .strip_prefix("pve-manager/")
        .and_then(|rest| rest.split(['/', ' ']).next())
        .unwrap_or(&version_line)
        .to_string();
    let mut guests = Vec::new();
    for (name, body) in &sections {
        match *name {
            "pct-list" => guests.extend(parse_pct_list(body)),
            "qm-list" => guests.extend(parse_qm_list(body)),
            _ => {}
        }
    }
    for (name, body) in &sections {
        let (kind, file) = match name.split_once(' ') {
            Some(("lxc-conf", file)) => (GuestKind::Lxc, file),
            Some(("qemu-conf", file)) => (GuestKind::Vm, file),
            _ => continue,
        };
        let Some(id) = file
            .strip_suffix(".conf")
            .and_then(|id| id.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(guest) = guests.iter_mut().find(|g| g.id == id && g.kind == kind) {
            apply_config(guest, body);
        }
    }
    for (name, body) in &sections {
        let (kind, reported) = match name.split_once(' ') {
            Some(("qm-agent", _)) => (GuestKind::Vm, agent_addresses(body)),
            Some(("lxc-ifaces", _)) => (GuestKind::Lxc, lxc_addresses(body)),
            _ => continue,
        };
        let Some(id) = name
            .split_once(' ')
            .and_then(|(_, id)| id.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(guest) = guests.iter_mut().find(|g| g.id == id && g.kind == kind) {
            for ip in reported {
                add_ip(guest, ip);
            }
        }
    }
    Some(Hypervisor {
        platform: "proxmox".into(),
        version,
        guests,
    })
}

/// `VMID Status [Lock] Name`, after a header line.
fn parse_pct_list(body: &str) -> Vec<Guest> {
    body.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let id = words.first()?.parse().ok()?;
            (words.len() >= 3).then(|| Guest {
                id,
                kind: GuestKind::Lxc,
                name: words[words.len() - 1].to_string(),
                status: words[1].to_string(),
                hostname: None,
                ips: Vec::new(),
            })
        })
        .collect()
}

/// `VMID NAME STATUS MEM(MB) BOOTDISK(GB) PID`, after a header line.
fn parse_qm_list(body: &str) -> Vec<Guest> {
    body.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let id = words.first()?.parse().ok()?;
            Some(Guest {
                id,
                kind: GuestKind::Vm,
                name: words.get(1)?.to_string(),
                status: words.get(2)?.to_string(),
                hostname: None,
                ips: Vec::new(),
            })
        })
        .collect()
}

/// The current config's `hostname` and static `ip=`/`ip6=` of every `netN` (LXC) or
/// `ipconfigN` (cloud-init VM); snapshot sections (`[name]`) are older configs and stop it.
fn apply_config(guest: &mut Guest, body: &str) {
    for line in body.lines() {
        if line.starts_with('[') {
            break;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "hostname" {
            guest.hostname = Some(value.to_string());
            continue;
        }
        let network = key
            .strip_prefix("net")
            .or_else(|| key.strip_prefix("ipconfig"));
        if network.is_none_or(|n| n.parse::<u32>().is_err()) {
            continue;
        }
        for part in value.split(',') {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            if (k == "ip" || k == "ip6") && !matches!(v, "dhcp" | "manual" | "auto") {
                add_ip(guest, without_prefix(v).to_string());
            }
        }
    }
}

fn add_ip(guest: &mut Guest, ip: String) {
    if !guest
        .ips
        .iter()
        .any(|known| known.eq_ignore_ascii_case(&ip))
    {
        guest.ips.push(ip);
    }
}

/// `10.0.0.5/24` → `10.0.0.5`.
fn without_prefix(address: &str) -> &str {
    address.split('/').next().unwrap_or(address)
}

/// `qm guest cmd VMID network-get-interfaces`: the agent's interface list (bare, or inside
/// `{"result": …}` as the API wraps it).
fn agent_addresses(body: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Interface {
        #[serde(rename = "ip-addresses", default)]
        addresses: Vec<Address>,
    }
    #[derive(Deserialize)]
    struct Address {
        #[serde(rename = "ip-address")]
        address: String,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Answer {
        Bare(Vec<Interface>),
        Wrapped { result: Vec<Interface> },
    }
    let interfaces = match serde_json::from_str::<Answer>(body) {
        Ok(Answer::Bare(list) | Answer::Wrapped { result: list }) => list,
        Err(_) => return Vec::new(),
    };
    interfaces
        .into_iter()
        .flat_map(|i| i.addresses)
        .filter_map(|a| reachable(&a.address))
        .collect()
}

/// `pvesh get /nodes/NODE/lxc/VMID/interfaces --output-format json`: one `inet` and one `inet6`
/// (with prefix) per interface.
fn lxc_addresses(body: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Interface {
        inet: Option<String>,
        inet6: Option<String>,
    }
    serde_json::from_str::<Vec<Interface>>(body)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|i| [i.inet, i.inet6])
        .flatten()
        .filter_map(|a| reachable(without_prefix(&a)))
        .collect()
}

/// The address as a configured host's `addr` could name it: not loopback (127/8, ::1) and not
/// link-local (169.254/16, fe80::/10), which every guest has and nobody configures.
fn reachable(address: &str) -> Option<String> {
    let ip: IpAddr = address.split('%').next()?.parse().ok()?;
    let unusable = match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    (!unusable).then(|| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixtures as the script prints them, behind their markers.
    pub(crate) fn fixture_output() -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proxmox");
        let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).unwrap();
        let mut out = String::from("@@probe\n");
        out.push_str(&format!("@@pveversion\n{}", read("pveversion.txt")));
        out.push_str(&format!("@@pct-list\n{}", read("pct-list.txt")));
        out.push_str(&format!("@@qm-list\n{}", read("qm-list.txt")));
        for id in [101, 102, 105] {
            out.push_str(&format!(
                "@@lxc-conf {id}.conf\n{}",
                read(&format!("lxc-{id}.conf"))
            ));
        }
        for id in [100, 103, 104] {
            out.push_str(&format!(
                "@@qemu-conf {id}.conf\n{}",
                read(&format!("qemu-{id}.conf"))
            ));
        }
        // As the script prints them: running VMs with the agent on, running LXCs.
        for id in [100, 104] {
            out.push_str(&format!(
                "@@qm-agent {id}\n{}\n",
                read(&format!("qm-agent-{id}.json"))
            ));
        }
        for id in [101, 105] {
            out.push_str(&format!(
                "@@lxc-ifaces {id}\n{}\n",
                read(&format!("lxc-{id}-interfaces.json"))
            ));
        }
        out
    }

    #[test]
    fn proxmox_output_gives_every_guest_with_its_names_and_addresses() {
        let pve = parse(&fixture_output()).unwrap();
        assert_eq!(
            (pve.platform.as_str(), pve.version.as_str()),
            ("proxmox", "8.2.4")
        );
        let ids: Vec<(u32, GuestKind)> = pve.guests.iter().map(|g| (g.id, g.kind)).collect();
        assert_eq!(
            ids,
            [
                (101, GuestKind::Lxc),
                (102, GuestKind::Lxc),
                (105, GuestKind::Lxc),
                (100, GuestKind::Vm),
                (103, GuestKind::Vm),
                (104, GuestKind::Vm)
            ]
        );
        let pihole = &pve.guests[0];
        assert_eq!(pihole.name, "pihole");
        assert!(pihole.is_running());
        assert_eq!(
            pihole.hostname.as_deref(),
            Some("pihole"),
            "not the snapshot's"
        );
        assert_eq!(
            pihole.ips,
            ["192.168.1.53"],
            "the reported one is the static one; lo and fe80 are skipped"
        );
        let nextcloud = &pve.guests[1];
        assert_eq!(nextcloud.status, "stopped");
        assert_eq!(
            nextcloud.ips,
            ["10.10.0.12", "fd00::12"],
            "dhcp is no address"
        );
        let unifi = &pve.guests[2];
        assert_eq!(unifi.name, "unifi", "a Lock column shifts nothing");
        assert_eq!(
            unifi.ips,
            ["192.168.1.105", "fd12:3456:789a:1:be24:11ff:fe5e:2a05"],
            "a DHCP container's addresses come from Proxmox's interface list"
        );
        let vm = &pve.guests[3];
        assert_eq!(
            (vm.name.as_str(), vm.status.as_str()),
            ("debian-vm", "running")
        );
        assert_eq!(
            vm.ips,
            ["192.168.1.20", "fd12:3456:789a:1:be24:11ff:fe00:64"],
            "static first, the agent's added without duplicates"
        );
        assert!(pve.guests[4].ips.is_empty());
        assert_eq!(
            pve.guests[5].ips,
            ["192.168.1.104", "fd12:3456:789a:1:be24:11ff:fe00:68"],
            "a DHCP VM is known through its agent; no loopback, no link-local"
        );
    }

    #[test]
    fn reported_addresses_skip_loopback_and_link_local_and_tolerate_junk() {
        for skipped in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "fe80::1",
            "febf::1",
            "169.254.3.4",
        ] {
            assert_eq!(reachable(skipped), None, "{skipped}");
        }
        assert_eq!(reachable("10.0.0.5").as_deref(), Some("10.0.0.5"));
        assert_eq!(reachable("FD00::0005").as_deref(), Some("fd00::5"));
        assert_eq!(reachable("fec0::1").as_deref(), Some("fec0::1"));
        assert_eq!(reachable("nonsense"), None);
        let wrapped = r#"{"result":[{"name":"eth0","ip-addresses":[{"ip-address":"10.0.0.7","ip-address-type":"ipv4","prefix":24}]}]}"#;
        assert_eq!(agent_addresses(wrapped), ["10.0.0.7"]);
        assert!(agent_addresses("QEMU guest agent is not running\n").is_empty());
        assert!(lxc_addresses("").is_empty());
        assert_eq!(
            lxc_addresses(r#"[{"hwaddr":"bc:24:11:00:00:01","name":"eth0","inet":"10.0.0.9/24"}]"#),
            ["10.0.0.9"],
            "an interface without IPv6"
        );
    }

    #[test]
    fn a_host_without_pveversion_is_no_hypervisor() {
        assert_eq!(parse("@@probe\n@@os-release\nID=debian\n"), None);
    }
}
