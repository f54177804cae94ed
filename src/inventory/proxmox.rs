//! Proxmox VE hosts and their guests: `pveversion`, `pct list`, `qm list`, and each guest's
//! config under `/etc/pve` (an LXC's `hostname` and `ip=`, a VM's `name` and cloud-init
//! `ipconfigN`), printed behind `@@` markers after the rest of the inventory, and the pure
//! parser for them. Reading the config files rather than running `pct config` per guest keeps a
//! hypervisor with fifty guests one round trip and a second of work.
//!
//! Needs the root login Proxmox hosts are usually managed with (`pct`, `qm` and `/etc/pve` are
//! root's); without it the sections are empty and the host is simply not seen as a hypervisor.

use serde::{Deserialize, Serialize};

use super::probe::sections;

/// Appended to the inventory scripts; prints nothing on a host without `pveversion`.
pub(super) const SCRIPT: &str = r#"
if command -v pveversion >/dev/null 2>&1; then
  echo @@pveversion; pveversion 2>/dev/null
  echo @@pct-list; pct list 2>/dev/null
  echo @@qm-list; qm list 2>/dev/null
  for f in /etc/pve/lxc/*.conf; do
    if [ -r "$f" ]; then echo "@@lxc-conf ${f##*/}"; cat "$f"; fi
  done
  for f in /etc/pve/qemu-server/*.conf; do
    if [ -r "$f" ]; then echo "@@qemu-conf ${f##*/}"; cat "$f"; fi
  done
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
    /// Static addresses from its config (without the prefix length): what a configured host's
    /// `addr` is matched against.
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
                let ip = v.split('/').next().unwrap_or(v).to_string();
                if !guest.ips.contains(&ip) {
                    guest.ips.push(ip);
                }
            }
        }
    }
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
        for id in [100, 103] {
            out.push_str(&format!(
                "@@qemu-conf {id}.conf\n{}",
                read(&format!("qemu-{id}.conf"))
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
                (103, GuestKind::Vm)
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
        assert_eq!(pihole.ips, ["192.168.1.53"]);
        let nextcloud = &pve.guests[1];
        assert_eq!(nextcloud.status, "stopped");
        assert_eq!(
            nextcloud.ips,
            ["10.10.0.12", "fd00::12"],
            "dhcp is no address"
        );
        assert_eq!(pve.guests[2].name, "unifi", "a Lock column shifts nothing");
        let vm = &pve.guests[3];
        assert_eq!(
            (vm.name.as_str(), vm.status.as_str()),
            ("debian-vm", "running")
        );
        assert_eq!(vm.ips, ["192.168.1.20"]);
        assert!(pve.guests[4].ips.is_empty());
    }

    #[test]
    fn a_host_without_pveversion_is_no_hypervisor() {
        assert_eq!(parse("@@probe\n@@os-release\nID=debian\n"), None);
    }
}
