//! Which configured hosts carry others: a host that other configured hosts reach through
//! (`proxy_jump = "bastion"`, or `user@addr[:port]` naming a configured host's address and
//! port), and a hypervisor its guests run on (`runs_on = "pve1"`). Rebooting it cuts off (or
//! takes down) every host behind it, so waves run it after them and never beside them, a batch
//! `reboot` or `update` runs it last, and an explicit reboot of it asks again naming them.
//! One mechanism for both: a guest behind a hypervisor is "behind" it like a host behind a jump.
//!
//! Pure and computed on demand from a [`Config`]; only tendhost.toml's `proxy_jump` counts (a
//! `ProxyJump` in `~/.ssh/config` is the SSH layer's business and not known here).

use std::collections::{HashMap, HashSet};

use super::{Config, HostConfig, HostId};

/// How many hosts behind a jump host a message names.
const NAMED: usize = 5;

/// Jump chains longer than this are a loop in the configuration (as in `remote::ssh::route`).
const MAX_HOPS: usize = 8;

/// For every configured jump host, the configured hosts behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JumpHosts {
    /// Jump host → the hosts whose route passes through it (directly or through other
    /// configured jump hosts), in config order.
    behind: HashMap<HostId, Vec<HostId>>,
    /// Hosts that other configured hosts run on as guests.
    hypervisors: HashSet<HostId>,
}

impl JumpHosts {
    /// Works out every configured host's route through the other configured hosts.
    pub fn of(config: &Config) -> JumpHosts {
        Self::of_fleet(config, &[])
    }

    /// [`Self::of`], with the `(guest, hypervisor)` pairs the hypervisors' inventories
    /// detected (see `fleet::guests`) counted like declared `runs_on`.
    pub fn of_fleet(config: &Config, detected: &[(HostId, HostId)]) -> JumpHosts {
        let by_name: HashMap<&str, &HostConfig> =
            config.hosts.iter().map(|h| (&*h.name, h)).collect();
        let by_addr: HashMap<(&str, u16), &HostConfig> = config
            .hosts
            .iter()
            .map(|h| ((h.addr.as_str(), h.port), h))
            .collect();
        // What a host needs up to stay up and reachable: its jump hosts and its hypervisor.
        let direct = |host: &HostConfig| -> Vec<HostId> {
            let jumps = host.proxy_jump.as_deref().unwrap_or("");
            jumps
                .split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .filter_map(|part| {
                    by_name
                        .get(part)
                        .or_else(|| address(part).and_then(|a| by_addr.get(&a)))
                        .map(|h| h.name.clone())
                })
                .chain(host.runs_on.clone())
                .chain(
                    detected
                        .iter()
                        .filter(|(guest, _)| *guest == host.name)
                        .map(|(_, hypervisor)| hypervisor.clone()),
                )
                .collect()
        };
        let mut behind: HashMap<HostId, Vec<HostId>> = HashMap::new();
        for host in &config.hosts {
            // Every configured host on the way, nearest first; a loop stops at MAX_HOPS.
            let mut seen: HashSet<HostId> = HashSet::new();
            let mut frontier = direct(host);
            for _ in 0..MAX_HOPS {
                let mut next = Vec::new();
                for jump in frontier {
                    if jump == host.name || !seen.insert(jump.clone()) {
                        continue;
                    }
                    if let Some(jump_host) = by_name.get(&*jump) {
                        next.extend(direct(jump_host));
                    }
                    behind.entry(jump).or_default().push(host.name.clone());
                }
                frontier = next;
            }
        }
        let hypervisors = config
            .hosts
            .iter()
            .filter_map(|h| h.runs_on.clone())
            .chain(detected.iter().map(|(_, hypervisor)| hypervisor.clone()))
            .collect();
        JumpHosts {
            behind,
            hypervisors,
        }
    }

    /// Whether other configured hosts run on `host` as guests.
    pub fn is_hypervisor(&self, host: &str) -> bool {
        self.hypervisors.contains(host)
    }

    /// What rebooting `host` does to the hosts behind it, for a warning: "is the hypervisor of
    /// 'vm-1', 'vm-2': they go down with it" or "is the jump host of …: they lose their
    /// connection".
    pub fn describe_reboot(&self, host: &str) -> String {
        let behind = self.describe_behind(host);
        if self.is_hypervisor(host) {
            format!("is the hypervisor of {behind}: they go down with it")
        } else {
            format!("is the jump host of {behind}: they lose their connection")
        }
    }

    /// The configured hosts that reach `host` only through it, in config order.
    pub fn behind(&self, host: &str) -> &[HostId] {
        self.behind.get(host).map_or(&[], Vec::as_slice)
    }

    /// The hosts behind `host` for a message: `'web-1', 'web-2'`, at most five by name and
    /// then how many more.
    pub fn describe_behind(&self, host: &str) -> String {
        let behind = self.behind(host);
        let mut text = behind
            .iter()
            .take(NAMED)
            .map(|h| format!("'{h}'"))
            .collect::<Vec<_>>()
            .join(", ");
        if behind.len() > NAMED {
            text.push_str(&format!(" and {} more", behind.len() - NAMED));
        }
        text
    }

    /// Whether no configured host carries another.
    pub fn is_empty(&self) -> bool {
        self.behind.is_empty()
    }

    /// `hosts` in the order that never takes a jump host away from a host behind it: first
    /// every host that carries none of the others, then the jump hosts of those, and so on.
    /// Each phase keeps the order of `hosts`. A loop (which the SSH layer would refuse anyway)
    /// cannot hold a host back: what is left when no phase can form goes last.
    pub fn phases(&self, hosts: &[HostId]) -> Vec<Vec<HostId>> {
        let mut left: Vec<HostId> = hosts.to_vec();
        let mut phases = Vec::new();
        while !left.is_empty() {
            let waiting: HashSet<&HostId> = left.iter().collect();
            let (ready, later): (Vec<HostId>, Vec<HostId>) = left
                .iter()
                .cloned()
                .partition(|h| !self.behind(h).iter().any(|b| waiting.contains(b)));
            if ready.is_empty() {
                phases.push(later);
                break;
            }
            phases.push(ready);
            left = later;
        }
        phases
    }
}

/// `[user@]addr[:port]` as the `(addr, port)` a configured host would have (port 22 unless
/// given; `[v6]:port` too). `None` for what cannot be a configured host's address.
fn address(jump: &str) -> Option<(&str, u16)> {
    let rest = jump.rsplit_once('@').map_or(jump, |(_, rest)| rest);
    if let Some(inner) = rest.strip_prefix('[') {
        let (addr, tail) = inner.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None => 22,
        };
        return Some((addr, port));
    }
    match rest.rsplit_once(':') {
        Some((addr, port)) if !addr.contains(':') => Some((addr, port.parse().ok()?)),
        _ => Some((rest, 22)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_str("t.toml", text).unwrap()
    }

    fn ids(names: &[&str]) -> Vec<HostId> {
        names.iter().map(|n| HostId::from(*n)).collect()
    }

    const FLEET: &str = "\
        [[host]]\nname = \"web-1\"\naddr = \"10.1.0.1\"\nproxy_jump = \"inner-gw\"\n\n\
        [[host]]\nname = \"bastion\"\naddr = \"10.0.0.1\"\nport = 2222\n\n\
        [[host]]\nname = \"inner-gw\"\naddr = \"10.1.0.254\"\nproxy_jump = \"bastion\"\n\n\
        [[host]]\nname = \"web-2\"\naddr = \"10.1.0.2\"\nproxy_jump = \"admin@10.0.0.1:2222\"\n\n\
        [[host]]\nname = \"db\"\naddr = \"10.2.0.1\"\nproxy_jump = \"ops@10.0.0.1\"\n\n\
        [[host]]\nname = \"alone\"\naddr = \"10.3.0.1\"\n";

    #[test]
    fn a_jump_host_carries_every_host_whose_route_passes_through_it() {
        let jumps = JumpHosts::of(&config(FLEET));
        // web-1 reaches bastion through inner-gw; web-2 names bastion by address and port;
        // db's jump is 10.0.0.1 on port 22, which is not bastion (it listens on 2222).
        assert_eq!(
            jumps.behind("bastion"),
            ids(&["web-1", "inner-gw", "web-2"])
        );
        assert_eq!(jumps.behind("inner-gw"), ids(&["web-1"]));
        assert!(jumps.behind("web-1").is_empty());
        assert_eq!(
            jumps.describe_behind("bastion"),
            "'web-1', 'inner-gw', 'web-2'"
        );
        assert!(jumps.behind("alone").is_empty());
        assert!(!jumps.is_empty());
        assert!(JumpHosts::of(&config("[[host]]\nname = \"a\"\naddr = \"a\"\n")).is_empty());
    }

    #[test]
    fn a_hypervisor_carries_its_guests_and_what_is_behind_them() {
        let jumps = JumpHosts::of(&config(
            "[[host]]\nname = \"pve1\"\naddr = \"10.0.0.1\"\n\n\
             [[host]]\nname = \"gw-vm\"\naddr = \"10.0.0.2\"\nruns_on = \"pve1\"\n\n\
             [[host]]\nname = \"inner\"\naddr = \"10.9.0.1\"\nproxy_jump = \"gw-vm\"\n\n\
             [[host]]\nname = \"other\"\naddr = \"10.0.0.3\"\n",
        ));
        assert_eq!(jumps.behind("pve1"), ids(&["gw-vm", "inner"]));
        assert!(jumps.is_hypervisor("pve1") && !jumps.is_hypervisor("gw-vm"));
        assert_eq!(
            jumps.describe_reboot("pve1"),
            "is the hypervisor of 'gw-vm', 'inner': they go down with it"
        );
        assert_eq!(
            jumps.describe_reboot("gw-vm"),
            "is the jump host of 'inner': they lose their connection"
        );
        assert_eq!(
            jumps.phases(&ids(&["pve1", "gw-vm", "inner", "other"])),
            vec![ids(&["inner", "other"]), ids(&["gw-vm"]), ids(&["pve1"])]
        );
    }

    #[test]
    fn phases_put_jump_hosts_after_the_hosts_behind_them() {
        let jumps = JumpHosts::of(&config(FLEET));
        let all = ids(&["bastion", "web-1", "inner-gw", "web-2", "db", "alone"]);
        assert_eq!(
            jumps.phases(&all),
            vec![
                ids(&["web-1", "web-2", "db", "alone"]),
                ids(&["inner-gw"]),
                ids(&["bastion"])
            ]
        );
        // Only the selection counts: without web-1, inner-gw carries nobody selected.
        assert_eq!(
            jumps.phases(&ids(&["bastion", "inner-gw", "alone"])),
            vec![ids(&["inner-gw", "alone"]), ids(&["bastion"])]
        );
        assert_eq!(jumps.phases(&[]), Vec::<Vec<HostId>>::new());
    }

    #[test]
    fn a_long_list_of_hosts_behind_is_counted_after_five() {
        let mut text = String::from("[[host]]\nname = \"gw\"\naddr = \"10.0.0.1\"\n");
        for i in 0..7 {
            text.push_str(&format!(
                "[[host]]\nname = \"h{i}\"\naddr = \"10.0.1.{i}\"\nproxy_jump = \"gw\"\n"
            ));
        }
        let jumps = JumpHosts::of(&config(&text));
        assert_eq!(
            jumps.describe_behind("gw"),
            "'h0', 'h1', 'h2', 'h3', 'h4' and 2 more"
        );
    }

    #[test]
    fn a_loop_holds_no_host_back() {
        let jumps = JumpHosts::of(&config(
            "[[host]]\nname = \"a\"\naddr = \"10.0.0.1\"\nproxy_jump = \"b\"\n\n\
             [[host]]\nname = \"b\"\naddr = \"10.0.0.2\"\nproxy_jump = \"a\"\n\n\
             [[host]]\nname = \"c\"\naddr = \"10.0.0.3\"\n",
        ));
        assert_eq!(jumps.behind("a"), ids(&["b"]));
        assert_eq!(
            jumps.phases(&ids(&["a", "b", "c"])),
            vec![ids(&["c"]), ids(&["a", "b"])]
        );
    }

    #[test]
    fn jump_addresses_parse_like_proxy_jump() {
        assert_eq!(address("admin@10.0.0.1:2222"), Some(("10.0.0.1", 2222)));
        assert_eq!(address("gw"), Some(("gw", 22)));
        assert_eq!(address("[fe80::1]:2200"), Some(("fe80::1", 2200)));
        assert_eq!(address("fe80::1"), Some(("fe80::1", 22)));
        assert_eq!(address("gw:x"), None);
    }
}
