//! Where a connection goes: the host's final address, port, user and keys after
//! `~/.ssh/config` has filled what tendhost.toml left unset, and the chain of jump hosts in
//! front of it.
//!
//! Pure: reads `~/.ssh/config` but opens no socket.

use std::path::Path;

use crate::config::HostConfig;
use crate::remote::Error;
use crate::remote::auth::Identities;
use crate::remote::context::RemoteContext;
use crate::remote::known_hosts::host_name;
use crate::remote::ssh_config::{self, SshConfigHost};

/// Jump chains longer than this are a loop in the configuration.
const MAX_HOPS: usize = 8;

/// One SSH server on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The address to connect to (after `HostName`).
    pub addr: String,
    pub port: u16,
    pub user: String,
    pub identities: Identities,
}

impl Endpoint {
    /// `user@addr:port`, for messages.
    pub fn describe(&self) -> String {
        format!("{}@{}:{}", self.user, self.addr, self.port)
    }

    /// The known_hosts name: `addr` or `[addr]:port`.
    pub fn known_hosts_name(&self) -> String {
        host_name(&self.addr, self.port)
    }
}

/// The full way to a host: `jumps` in order, then `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub jumps: Vec<Endpoint>,
    pub target: Endpoint,
}

/// Resolves `host` (a tendhost.toml host) into a route.
pub(super) fn resolve(host: &HostConfig, ctx: &RemoteContext) -> Result<Route, Error> {
    resolve_configured(host, ctx, 0)
}

fn resolve_configured(
    host: &HostConfig,
    ctx: &RemoteContext,
    depth: usize,
) -> Result<Route, Error> {
    let ssh = lookup(ctx, &host.addr);
    let user = match (&ssh.user, host.explicit.user) {
        (Some(user), false) => user.clone(),
        _ => host.user.clone(),
    };
    let port = match (ssh.port, host.explicit.port) {
        (Some(port), false) => port,
        _ => host.port,
    };
    let identities = match &host.ssh_key {
        Some(key) => Identities {
            required: vec![key.clone()],
            optional: Vec::new(),
        },
        None => Identities {
            required: Vec::new(),
            optional: ssh.identity_files.clone(),
        },
    };
    let target = Endpoint {
        addr: ssh.host_name.clone().unwrap_or_else(|| host.addr.clone()),
        port,
        user: user.clone(),
        identities,
    };
    let jump_spec = host.proxy_jump.clone().or(ssh.proxy_jump.clone());
    let behind = Behind {
        name: &host.name,
        user: &user,
        key: host.ssh_key.as_deref(),
    };
    let jumps = match jump_spec.as_deref() {
        None | Some("none") | Some("") => Vec::new(),
        Some(spec) => resolve_jumps(spec, &behind, ctx, depth + 1)?,
    };
    Ok(Route { jumps, target })
}

/// The configured host a chain of jumps leads to: what a jump given only as
/// `[user@]host[:port]` borrows from it.
struct Behind<'a> {
    name: &'a str,
    user: &'a str,
    /// Its `ssh_key` (its own, else `[defaults] ssh_key`).
    key: Option<&'a Path>,
}

/// `a,b,c`: each a configured host name or `[user@]host[:port]`. A configured jump host logs in
/// as configured; any other jump logs in as the host behind it would (its user, its key, then
/// the usual chain), since one admin account and key usually open every host of a fleet.
fn resolve_jumps(
    spec: &str,
    behind: &Behind<'_>,
    ctx: &RemoteContext,
    depth: usize,
) -> Result<Vec<Endpoint>, Error> {
    let for_host = behind.name;
    if depth > MAX_HOPS {
        return Err(Error::Ssh {
            target: for_host.to_string(),
            message: format!("proxy_jump chain is longer than {MAX_HOPS} hops (a loop?)"),
        });
    }
    let mut hops = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(configured) = ctx.hosts.get(part) {
            let route = resolve_configured(configured, ctx, depth)?;
            hops.extend(route.jumps);
            hops.push(route.target);
            continue;
        }
        let (user, rest) = match part.rsplit_once('@') {
            Some((user, rest)) => (Some(user.to_string()), rest),
            None => (None, part),
        };
        let (alias, port) = split_port(rest).map_err(|message| Error::Ssh {
            target: for_host.to_string(),
            message: format!("proxy_jump '{part}': {message}"),
        })?;
        let ssh = lookup(ctx, &alias);
        if let Some(inner) = ssh.proxy_jump.as_deref().filter(|j| *j != "none") {
            hops.extend(resolve_jumps(inner, behind, ctx, depth + 1)?);
        }
        hops.push(Endpoint {
            addr: ssh.host_name.clone().unwrap_or(alias),
            port: port.or(ssh.port).unwrap_or(22),
            // OpenSSH would use the local login name; the target's user is the better guess
            // for a fleet where one admin account exists everywhere.
            user: user
                .or(ssh.user.clone())
                .unwrap_or_else(|| behind.user.to_string()),
            // The key of the host behind it first, as for that host; `~/.ssh/config`'s
            // IdentityFile for the jump joins the usual chain after it.
            identities: Identities {
                required: behind.key.map(Path::to_path_buf).into_iter().collect(),
                optional: ssh.identity_files.clone(),
            },
        });
    }
    Ok(hops)
}

/// `host`, `host:port`, `[v6]:port`.
fn split_port(text: &str) -> Result<(String, Option<u16>), String> {
    let parse = |p: &str| p.parse::<u16>().map_err(|_| format!("'{p}' is not a port"));
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or("unclosed '['")?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse(p)?),
            None => None,
        };
        return Ok((addr.to_string(), port));
    }
    match text.rsplit_once(':') {
        Some((addr, port)) if !addr.contains(':') => Ok((addr.to_string(), Some(parse(port)?))),
        _ => Ok((text.to_string(), None)),
    }
}

fn lookup(ctx: &RemoteContext, alias: &str) -> SshConfigHost {
    match &ctx.ssh_config {
        Some(path) => ssh_config::lookup(path, alias),
        None => SshConfigHost::default(),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;
    use crate::config::{Config, KnownHostsPolicy};

    fn setup(toml: &str, ssh_config: &str) -> (tempfile::TempDir, Config, RemoteContext) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_str(dir.path().join("t.toml"), toml).unwrap();
        let ssh = dir.path().join("ssh_config");
        fs::write(&ssh, ssh_config).unwrap();
        let mut ctx = RemoteContext::new(dir.path().join("kh"), KnownHostsPolicy::Strict)
            .with_hosts(config.hosts.iter().cloned());
        ctx.ssh_config = Some(ssh);
        (dir, config, ctx)
    }

    #[test]
    fn ssh_config_fills_only_what_the_toml_leaves_unset() {
        let (_d, config, ctx) = setup(
            "[[host]]\nname = \"a\"\naddr = \"web\"\n\n[[host]]\nname = \"b\"\naddr = \"web\"\n\
             user = \"deploy\"\nport = 2200\nssh_key = \"/k\"\n",
            "Host web\n HostName 10.0.0.5\n User admin\n Port 2222\n IdentityFile /idf\n",
        );
        let a = resolve(&config.hosts[0], &ctx).unwrap();
        assert_eq!(a.target.addr, "10.0.0.5");
        assert_eq!((a.target.user.as_str(), a.target.port), ("admin", 2222));
        assert_eq!(a.target.identities.optional, [PathBuf::from("/idf")]);
        let b = resolve(&config.hosts[1], &ctx).unwrap();
        assert_eq!((b.target.user.as_str(), b.target.port), ("deploy", 2200));
        assert_eq!(b.target.identities.required, [PathBuf::from("/k")]);
    }

    #[test]
    fn jumps_name_configured_hosts_or_addresses() {
        let (_d, config, ctx) = setup(
            "[[host]]\nname = \"bastion\"\naddr = \"10.0.0.1\"\nport = 2201\nuser = \"jump\"\n\n\
             [[host]]\nname = \"inner\"\naddr = \"10.1.0.5\"\nproxy_jump = \"bastion\"\n\n\
             [[host]]\nname = \"raw\"\naddr = \"10.1.0.6\"\nproxy_jump = \"ops@gw:2022\"\n",
            "",
        );
        let inner = resolve(&config.hosts[1], &ctx).unwrap();
        assert_eq!(inner.jumps.len(), 1);
        assert_eq!(inner.jumps[0].describe(), "jump@10.0.0.1:2201");
        let raw = resolve(&config.hosts[2], &ctx).unwrap();
        assert_eq!(raw.jumps[0].describe(), "ops@gw:2022");
        assert_eq!(raw.target.describe(), "root@10.1.0.6:22");
    }

    #[test]
    fn a_jump_given_by_address_logs_in_with_the_key_of_the_host_behind_it() {
        let (_d, config, ctx) = setup(
            "[defaults]\nssh_key = \"/fleet-key\"\n\n\
             [[host]]\nname = \"own\"\naddr = \"10.1.0.5\"\nssh_key = \"/own-key\"\n\
             proxy_jump = \"gw\"\n\n\
             [[host]]\nname = \"default\"\naddr = \"10.1.0.6\"\nproxy_jump = \"ops@gw2:2022\"\n\n\
             [[host]]\nname = \"bastion\"\naddr = \"10.0.0.1\"\nssh_key = \"/bastion-key\"\n\n\
             [[host]]\nname = \"named\"\naddr = \"10.1.0.7\"\nproxy_jump = \"bastion\"\n",
            "Host gw\n IdentityFile /gw-id\n\nHost gw2\n ProxyJump 10.9.0.1\n",
        );
        let own = resolve(&config.hosts[0], &ctx).unwrap();
        assert_eq!(
            own.jumps[0].identities.required,
            [PathBuf::from("/own-key")]
        );
        assert_eq!(
            own.jumps[0].identities.optional,
            [PathBuf::from("/gw-id")],
            "~/.ssh/config's IdentityFile for the jump stays in the chain after it"
        );
        let default = resolve(&config.hosts[1], &ctx).unwrap();
        assert_eq!(default.jumps.len(), 2);
        for jump in &default.jumps {
            assert_eq!(
                jump.identities.required,
                [PathBuf::from("/fleet-key")],
                "{jump:?}"
            );
        }
        // A configured jump host keeps its own key.
        let named = resolve(&config.hosts[3], &ctx).unwrap();
        assert_eq!(
            named.jumps[0].identities.required,
            [PathBuf::from("/bastion-key")]
        );
    }

    #[test]
    fn ports_split_like_openssh() {
        assert_eq!(split_port("h:22").unwrap(), ("h".into(), Some(22)));
        assert_eq!(
            split_port("[::1]:2222").unwrap(),
            ("::1".into(), Some(2222))
        );
        assert_eq!(split_port("h").unwrap(), ("h".into(), None));
        assert!(split_port("h:x").is_err());
    }
}
