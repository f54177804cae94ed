//! `tendhost host add user@addr[:port] [--name N] [--tag T]…`: appends a `[[host]]` table to
//! tendhost.toml with toml_edit, so the user's comments, ordering and spacing survive.
//!
//! The edited text is validated with the real config loader before it replaces the file
//! (atomically), so `host add` can never leave a config tendhost refuses to load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

use crate::config::{Config, ConfigError};
use crate::store::write_private_atomic;

#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("'{0}' is not user@address[:port]")]
    Target(String),
    #[error("reading '{path}'")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("'{path}' is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("a host named '{0}' already exists")]
    Duplicate(String),
    #[error("'host' in '{0}' is not an array of [[host]] tables")]
    NotHostTables(PathBuf),
    #[error("'groups' in '{0}' is not a table of host lists")]
    NotGroupsTable(PathBuf),
    #[error("the new host would make the config invalid")]
    Invalid(#[source] ConfigError),
    #[error("writing '{path}'")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A host to add, parsed from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHost {
    pub name: String,
    pub addr: String,
    /// `None`: `[defaults] user` (or root) applies.
    pub user: Option<String>,
    pub port: Option<u16>,
    pub tags: Vec<String>,
    /// `proxy_jump`: a configured host's name or `[user@]host[:port]`.
    pub proxy_jump: Option<String>,
    /// `ssh_key`, a path.
    pub ssh_key: Option<String>,
    /// `transport = "local"`: this machine, no SSH (then `addr` is not written).
    pub local: bool,
}

impl NewHost {
    /// Parses `[user@]addr[:port]` (`[v6]:port` for IPv6 with a port).
    pub fn parse(target: &str, name: Option<String>, tags: Vec<String>) -> Result<Self, AddError> {
        let bad = || AddError::Target(target.to_string());
        let (user, rest) = match target.rsplit_once('@') {
            Some(("", _)) => return Err(bad()),
            Some((user, rest)) => (Some(user.to_string()), rest),
            None => (None, target),
        };
        let (addr, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (addr, after) = inner.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(p) => (addr, Some(p.parse::<u16>().map_err(|_| bad())?)),
                None if after.is_empty() => (addr, None),
                None => return Err(bad()),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((addr, p)) if !addr.contains(':') => {
                    (addr, Some(p.parse::<u16>().map_err(|_| bad())?))
                }
                _ => (rest, None),
            }
        };
        if addr.is_empty() {
            return Err(bad());
        }
        Ok(NewHost {
            name: name.unwrap_or_else(|| addr.to_string()),
            addr: addr.to_string(),
            user,
            port,
            tags,
            proxy_jump: None,
            ssh_key: None,
            local: false,
        })
    }
}

/// Appends `host` to the config file at `path`, returning the new config.
pub fn add_host(path: &Path, host: &NewHost) -> Result<Config, AddError> {
    add_hosts(path, std::slice::from_ref(host), &BTreeMap::new())
}

/// Appends `hosts` as `[[host]]` tables and their `groups` (group → member names, merged into
/// `[groups]`) to the config at `path` in one edit, validated by the real loader before the file
/// is replaced atomically; returns the new config.
pub fn add_hosts(
    path: &Path,
    hosts: &[NewHost],
    groups: &BTreeMap<String, Vec<String>>,
) -> Result<Config, AddError> {
    let text = std::fs::read_to_string(path).map_err(|source| AddError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let edited = append(path, &text, hosts, groups)?;
    let config = Config::from_str(path, &edited).map_err(AddError::Invalid)?;
    write_private_atomic(path, edited.as_bytes()).map_err(|source| AddError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(config)
}

/// The text of `text` with `hosts` appended after the last `[[host]]` and `groups` merged in.
fn append(
    path: &Path,
    text: &str,
    hosts: &[NewHost],
    groups: &BTreeMap<String, Vec<String>>,
) -> Result<String, AddError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| AddError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if !groups.is_empty() {
        merge_groups(path, &mut doc, groups)?;
    }
    if !doc.contains_key("host") {
        doc.insert("host", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    let tables = doc
        .get_mut("host")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| AddError::NotHostTables(path.to_path_buf()))?;
    for host in hosts {
        let taken = tables
            .iter()
            .any(|t| t.get("name").and_then(Item::as_str) == Some(host.name.as_str()));
        if taken {
            return Err(AddError::Duplicate(host.name.clone()));
        }
        tables.push(host_table(host));
    }
    Ok(doc.to_string())
}

fn host_table(host: &NewHost) -> Table {
    let mut table = Table::new();
    table.insert("name", value(&host.name));
    if host.local {
        table.insert("transport", value("local"));
    } else {
        table.insert("addr", value(&host.addr));
    }
    if let Some(user) = &host.user {
        table.insert("user", value(user));
    }
    if let Some(port) = host.port {
        table.insert("port", value(i64::from(port)));
    }
    if let Some(jump) = &host.proxy_jump {
        table.insert("proxy_jump", value(jump));
    }
    if let Some(key) = &host.ssh_key {
        table.insert("ssh_key", value(key));
    }
    if !host.tags.is_empty() {
        let tags: Array = host.tags.iter().map(String::as_str).collect();
        table.insert("tags", value(tags));
    }
    table.decor_mut().set_prefix("\n");
    table
}

/// Adds each group's members to `[groups]`, creating the table or a group as needed and
/// leaving members already listed (and every comment) where they are.
fn merge_groups(
    path: &Path,
    doc: &mut DocumentMut,
    groups: &BTreeMap<String, Vec<String>>,
) -> Result<(), AddError> {
    let not_groups = || AddError::NotGroupsTable(path.to_path_buf());
    if !doc.contains_key("groups") {
        let mut table = Table::new();
        table.decor_mut().set_prefix("\n");
        doc.insert("groups", Item::Table(table));
    }
    let table = doc
        .get_mut("groups")
        .and_then(Item::as_table_like_mut)
        .ok_or_else(not_groups)?;
    for (group, members) in groups {
        if table.get(group).is_none() {
            table.insert(group, value(Array::new()));
        }
        let list = table
            .get_mut(group)
            .and_then(Item::as_array_mut)
            .ok_or_else(not_groups)?;
        for member in members {
            if !list.iter().any(|v| v.as_str() == Some(member.as_str())) {
                list.push(member.as_str());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
# my fleet
[defaults]
user = \"admin\"   # everyone

[[host]]
name = \"web\"      # the web box
addr = \"10.0.0.5\"
tags = [\"prod\"]

[host.policy]
auto_reboot = false

# trailing notes stay
";

    #[test]
    fn parses_targets() {
        let h = NewHost::parse("root@10.0.0.9:2222", None, vec![]).unwrap();
        assert_eq!(
            (h.name.as_str(), h.user.as_deref(), h.port),
            ("10.0.0.9", Some("root"), Some(2222))
        );
        let h = NewHost::parse("db.lan", Some("db".into()), vec![]).unwrap();
        assert_eq!((h.addr.as_str(), h.user, h.port), ("db.lan", None, None));
        let h = NewHost::parse("u@[fe80::1]:22", None, vec![]).unwrap();
        assert_eq!((h.addr.as_str(), h.port), ("fe80::1", Some(22)));
        assert!(NewHost::parse("@x", None, vec![]).is_err());
        assert!(NewHost::parse("u@x:port", None, vec![]).is_err());
    }

    #[test]
    fn appends_and_keeps_everything_else_byte_for_byte() {
        let host = NewHost::parse(
            "ops@10.0.0.9:2222",
            Some("new".into()),
            vec!["a".into(), "b".into()],
        )
        .unwrap();
        let out = append(Path::new("t.toml"), EXAMPLE, &[host], &BTreeMap::new()).unwrap();
        let added = "\n[[host]]\nname = \"new\"\naddr = \"10.0.0.9\"\nuser = \"ops\"\nport = 2222\n\
                     tags = [\"a\", \"b\"]\n";
        let at = out
            .find(added)
            .unwrap_or_else(|| panic!("new host not found in:\n{out}"));
        let without = format!("{}{}", &out[..at], &out[at + added.len()..]);
        assert_eq!(without, EXAMPLE, "the rest of the file changed");
        let config = Config::from_str("t.toml", &out).unwrap();
        assert_eq!(config.hosts.len(), 2);
        assert!(
            !config.hosts[0].policy.auto_reboot,
            "the policy moved to the wrong host"
        );
    }

    #[test]
    fn refuses_duplicates() {
        let host = NewHost::parse("10.0.0.7", Some("web".into()), vec![]).unwrap();
        assert!(matches!(
            append(Path::new("t"), EXAMPLE, &[host], &BTreeMap::new()),
            Err(AddError::Duplicate(_))
        ));
    }
}
