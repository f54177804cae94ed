//! Which configured hosts are guests of which configured hypervisor, as the hypervisors' own
//! inventories tell it (Proxmox: `pct list`, `qm list`, each guest's config and the addresses
//! its guest agent or LXC interfaces report). A declared
//! `runs_on` always wins; a detected guest is behind its hypervisor exactly like a declared one
//! (see `config::JumpHosts`).
//!
//! A configured host is a guest when its `addr` is one of the guest's addresses, or its
//! `addr` or name is the guest's hostname or Proxmox name (case-insensitive; `nas` matches
//! `nas.lan` when one side is unqualified).

use crate::config::{Config, HostId};
use crate::inventory::Inventory;

/// `(guest, hypervisor)` pairs for the configured hosts found among the guests of the
/// configured hypervisors in `inventories`.
pub fn detected<'a>(
    config: &Config,
    inventories: impl IntoIterator<Item = (&'a HostId, &'a Inventory)>,
) -> Vec<(HostId, HostId)> {
    let mut out: Vec<(HostId, HostId)> = Vec::new();
    for (hypervisor, inventory) in inventories {
        let Some(found) = &inventory.hypervisor else {
            continue;
        };
        for host in &config.hosts {
            if host.runs_on.is_some()
                || host.name == *hypervisor
                || out.iter().any(|(guest, _)| *guest == host.name)
            {
                continue;
            }
            let matches = found.guests.iter().any(|guest| {
                guest
                    .ips
                    .iter()
                    .any(|ip| ip.eq_ignore_ascii_case(&host.addr))
                    || [Some(&guest.name), guest.hostname.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|name| same_name(name, &host.addr) || same_name(name, &host.name))
            });
            if matches {
                out.push((host.name.clone(), hypervisor.clone()));
            }
        }
    }
    out
}

/// Equal ignoring case, or equal up to the first dot when one of them has no domain.
fn same_name(a: &str, b: &str) -> bool {
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    let short = |s: &str| s.split('.').next().unwrap_or(s).to_ascii_lowercase();
    (!a.contains('.') || !b.contains('.')) && short(a) == short(b) && !short(a).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Guest, GuestKind, Hypervisor, InventorySource};

    fn guest(name: &str, hostname: Option<&str>, ips: &[&str]) -> Guest {
        Guest {
            id: 100,
            kind: GuestKind::Lxc,
            name: name.into(),
            status: "running".into(),
            hostname: hostname.map(str::to_string),
            ips: ips.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn guests_are_matched_by_address_hostname_or_name_and_declared_ones_win() {
        let config = Config::from_str(
            "t.toml",
            "[[host]]\nname = \"pve1\"\naddr = \"192.168.1.2\"\n\n\
             [[host]]\nname = \"dns\"\naddr = \"192.168.1.53\"\n\n\
             [[host]]\nname = \"cloud\"\naddr = \"nextcloud.lan\"\n\n\
             [[host]]\nname = \"debian-vm\"\naddr = \"10.9.9.9\"\n\n\
             [[host]]\nname = \"declared\"\naddr = \"192.168.1.60\"\nruns_on = \"dns\"\n\n\
             [[host]]\nname = \"stranger\"\naddr = \"192.168.1.77\"\n",
        )
        .unwrap();
        let mut inventory = crate::inventory::Inventory::reading_for_tests(InventorySource::Probe);
        inventory.hypervisor = Some(Hypervisor {
            platform: "proxmox".into(),
            version: "8.2.4".into(),
            guests: vec![
                guest("pihole", Some("pihole"), &["192.168.1.53"]),
                guest("nextcloud", Some("nextcloud"), &[]),
                guest("debian-vm", None, &[]),
                guest("other", None, &["192.168.1.60"]),
            ],
        });
        let pve: HostId = "pve1".into();
        let pairs = detected(&config, [(&pve, &inventory)]);
        let guests: Vec<&str> = pairs.iter().map(|(g, _)| &**g).collect();
        assert_eq!(guests, ["dns", "cloud", "debian-vm"]);
        assert!(pairs.iter().all(|(_, h)| &**h == "pve1"));
        assert!(same_name("nas", "NAS.lan") && !same_name("a.one", "a.two"));
    }
}
