//! `tendhost host import --ssh-config [FILE] | --ansible-inventory FILE`: the hosts a user
//! already listed elsewhere, added to tendhost.toml through the same comment-preserving writer
//! as `host add`.
//!
//! Reading a source gives an [`Imported`] list (hosts, groups, warnings); [`plan`] sets aside
//! what the config already has (same name, or the same address and port under another name) and
//! what tendhost cannot express; the plan is shown before anything is written (`--dry-run` stops
//! there) and the new hosts are then tested like `host test`.

mod ansible;
mod command;
mod ssh;

use std::collections::BTreeMap;
use std::path::Path;

pub use ansible::read_inventory;
pub use command::{ImportOptions, Source, expand_home, run};
pub use ssh::read_ssh_config;

use super::NewHost;
use crate::config::Config;

/// What a source lists, in tendhost's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub hosts: Vec<NewHost>,
    /// Group → member host names (`[groups]`).
    pub groups: BTreeMap<String, Vec<String>>,
    /// Things read but not imported (a multi-hop jump, an unreadable line), said once each.
    pub warnings: Vec<String>,
}

/// What an import would do to a config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub add: Vec<NewHost>,
    /// Hosts left out, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Group members to add (only hosts that are configured or being added).
    pub groups: BTreeMap<String, Vec<String>>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading '{path}'")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("'{path}' line {line}: {message}")]
    Syntax {
        path: std::path::PathBuf,
        line: usize,
        message: String,
    },
    #[error("'{path}' is not a YAML inventory: {message}")]
    Yaml {
        path: std::path::PathBuf,
        message: String,
    },
}

/// A name tendhost accepts for a host or a group.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Sets aside what `config` already has and what cannot be imported; `extra_tags` go on every
/// added host.
pub fn plan(config: &Config, imported: Imported, extra_tags: &[String]) -> Plan {
    let mut out = Plan {
        warnings: imported.warnings,
        ..Plan::default()
    };
    for mut host in imported.hosts {
        let reason = if !valid_name(&host.name) {
            Some(format!(
                "'{}' is not a tendhost name (letters, digits, - _ .)",
                host.name
            ))
        } else if config.host(&host.name).is_some() {
            Some("already configured".to_string())
        } else if let Some(same) = config
            .hosts
            .iter()
            .find(|h| !host.local && h.addr == host.addr && h.port == host.port.unwrap_or(22))
        {
            Some(format!("already configured as '{}'", same.name))
        } else if out.add.iter().any(|h| h.name == host.name) {
            Some("listed twice".to_string())
        } else {
            None
        };
        match reason {
            Some(reason) => out.skipped.push((host.name, reason)),
            None => {
                for tag in extra_tags {
                    if !host.tags.contains(tag) {
                        host.tags.push(tag.clone());
                    }
                }
                out.add.push(host);
            }
        }
    }
    let known = |name: &str| config.host(name).is_some() || out.add.iter().any(|h| h.name == name);
    let mut groups = BTreeMap::new();
    for (group, members) in imported.groups {
        if !valid_name(&group) {
            out.warnings
                .push(format!("group '{group}' is not a tendhost name: left out"));
            continue;
        }
        let already = config.groups.get(&group);
        let members: Vec<String> = members
            .into_iter()
            .filter(|m| known(m))
            .filter(|m| !already.is_some_and(|list| list.iter().any(|h| &**h == m.as_str())))
            .collect();
        if !members.is_empty() {
            groups.insert(group, members);
        }
    }
    out.groups = groups;
    out
}

/// The plan as the operator reads it before anything is written.
pub fn describe(plan: &Plan, path: &Path, dry_run: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for warning in &plan.warnings {
        lines.push(format!("warning: {warning}"));
    }
    let verb = if dry_run { "would add" } else { "adding" };
    if plan.add.is_empty() {
        lines.push(format!("nothing new to add to {}", path.display()));
    } else {
        lines.push(format!(
            "{verb} {} host{} to {}:",
            plan.add.len(),
            if plan.add.len() == 1 { "" } else { "s" },
            path.display()
        ));
        for host in &plan.add {
            lines.push(format!("  {:<20} {}", host.name, target(host)));
        }
    }
    if !plan.groups.is_empty() {
        let groups: Vec<String> = plan
            .groups
            .iter()
            .map(|(g, m)| format!("{g} (+{})", m.len()))
            .collect();
        lines.push(format!("groups: {}", groups.join(", ")));
    }
    if !plan.skipped.is_empty() {
        lines.push(format!("skipped {}:", plan.skipped.len()));
        for (name, reason) in &plan.skipped {
            lines.push(format!("  {name:<20} {reason}"));
        }
    }
    lines
}

/// `admin@10.0.0.5:2222 via bastion [web, prod]`.
fn target(host: &NewHost) -> String {
    let mut out = if host.local {
        "local".to_string()
    } else {
        let user = host
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = host.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{user}{}{port}", host.addr)
    };
    if let Some(jump) = &host.proxy_jump {
        out.push_str(&format!(" via {jump}"));
    }
    if !host.tags.is_empty() {
        out.push_str(&format!(" [{}]", host.tags.join(", ")));
    }
    out
}

/// `-o ProxyJump=X`, `-o ProxyJump X`, `-J X` or a `ProxyCommand` of the `ssh -W %h:%p X` form,
/// in ssh options as Ansible's `ansible_ssh_common_args` carries them.
pub(crate) fn jump_in_ssh_args(args: &str) -> Option<String> {
    let words = shell_words(args);
    let mut iter = words.iter().peekable();
    while let Some(word) = iter.next() {
        let option = match word.as_str() {
            "-J" => return iter.next().cloned(),
            "-o" => iter.next().cloned().unwrap_or_default(),
            w if w.starts_with("-o") => w[2..].to_string(),
            w if w.starts_with("-J") => return Some(w[2..].to_string()),
            _ => continue,
        };
        // `Key=value`, `Key value` in one word, or `Key` then `value`.
        let (key, value) = match option.split_once(|c: char| c == '=' || c.is_whitespace()) {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (option.clone(), iter.next().cloned().unwrap_or_default()),
        };
        match key.to_ascii_lowercase().as_str() {
            "proxyjump" => return Some(value),
            "proxycommand" => {
                let parts = shell_words(&value);
                let w = parts.iter().position(|p| p == "-W")?;
                return parts[w + 2..].iter().find(|p| !p.starts_with('-')).cloned();
            }
            _ => {}
        }
    }
    None
}

/// Splits like a POSIX shell for the simple cases inventories hold (quotes, no expansions).
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            (None, c) => current.push(c),
        }
    }
    if any || !current.is_empty() {
        words.push(current);
    }
    words
}

/// A jump as tendhost writes it: a configured (or imported) host's name when it is one, else
/// `[user@]host[:port]`; `Err` for what tendhost cannot follow (several hops).
pub(crate) fn jump_target(jump: &str) -> Result<Option<String>, String> {
    let jump = jump.trim();
    if jump.is_empty() || jump.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if jump.contains(',') {
        return Err(format!(
            "jumps through several hosts ('{jump}'): set proxy_jump by hand"
        ));
    }
    Ok(Some(
        jump.strip_prefix("ssh://").unwrap_or(jump).to_string(),
    ))
}

#[cfg(test)]
mod tests;
