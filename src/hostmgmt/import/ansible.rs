//! `--ansible-inventory FILE`: an Ansible inventory in its INI or YAML form, with groups,
//! `:children`/`children`, `:vars`/`vars`, host ranges (`web[01:20]`, `db-[a:c]`) and the
//! connection variables tendhost has a place for. Variables resolve as Ansible's do for these
//! keys: `all`, then parent groups, then the host's own groups, then the host.
//!
//! Mapped: `ansible_host`, `ansible_port`, `ansible_user` (and their `ansible_ssh_*` spellings),
//! `ansible_ssh_private_key_file`, `ansible_connection: local`, and a jump host in
//! `ansible_ssh_common_args` / `ansible_ssh_extra_args` (`-J`, `ProxyJump`, `ProxyCommand ssh
//! -W`). Groups become `[groups]` entries and each host is tagged with its own groups.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::{ImportError, Imported, jump_in_ssh_args, jump_target};
use crate::hostmgmt::NewHost;

#[derive(Debug, Default)]
struct Group {
    hosts: Vec<String>,
    children: Vec<String>,
    vars: BTreeMap<String, String>,
}

/// An inventory as read, before variables are resolved.
#[derive(Debug, Default)]
struct Inventory {
    groups: BTreeMap<String, Group>,
    /// Every host, in the order first seen, with its own variables.
    hosts: Vec<(String, BTreeMap<String, String>)>,
}

impl Inventory {
    fn group(&mut self, name: &str) -> &mut Group {
        self.groups.entry(name.to_string()).or_default()
    }

    fn add_host(&mut self, group: &str, host: &str, vars: BTreeMap<String, String>) {
        match self.hosts.iter_mut().find(|(h, _)| h == host) {
            Some((_, known)) => known.extend(vars),
            None => self.hosts.push((host.to_string(), vars)),
        }
        let group = self.group(group);
        if !group.hosts.iter().any(|h| h == host) {
            group.hosts.push(host.to_string());
        }
    }
}

/// Reads the inventory at `path` (YAML by its `.yml`/`.yaml` name or its look, else INI).
pub fn read_inventory(path: &Path) -> Result<Imported, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    ) || looks_like_yaml(&text);
    let inventory = if yaml {
        parse_yaml(path, &text)?
    } else {
        parse_ini(path, &text)?
    };
    Ok(resolve(inventory))
}

fn looks_like_yaml(text: &str) -> bool {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'));
    first.is_some_and(|l| l == "---" || (l.ends_with(':') && !l.starts_with('[')))
}

fn parse_ini(path: &Path, text: &str) -> Result<Inventory, ImportError> {
    enum Section {
        Hosts(String),
        Vars(String),
        Children(String),
    }
    let syntax = |line: usize, message: String| ImportError::Syntax {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut inv = Inventory::default();
    let mut section = Section::Hosts("ungrouped".to_string());
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = match header.split_once(':') {
                None => Section::Hosts(header.to_string()),
                Some((group, "vars")) => Section::Vars(group.to_string()),
                Some((group, "children")) => Section::Children(group.to_string()),
                Some(_) => return Err(syntax(i + 1, format!("unknown section [{header}]"))),
            };
            let (Section::Hosts(g) | Section::Vars(g) | Section::Children(g)) = &section;
            let g = g.clone();
            inv.group(&g);
            continue;
        }
        match &section {
            Section::Hosts(group) => {
                let words = super::shell_words(line);
                let Some((pattern, rest)) = words.split_first() else {
                    continue;
                };
                let vars = key_values(rest).map_err(|m| syntax(i + 1, m))?;
                for host in expand(pattern).map_err(|m| syntax(i + 1, m))? {
                    inv.add_host(&group.clone(), &host, vars.clone());
                }
            }
            Section::Vars(group) => {
                let words = super::shell_words(line);
                let vars = key_values(&words).map_err(|m| syntax(i + 1, m))?;
                let group = group.clone();
                inv.group(&group).vars.extend(vars);
            }
            Section::Children(group) => {
                let (group, child) = (group.clone(), line.to_string());
                inv.group(&child);
                inv.group(&group).children.push(child);
            }
        }
    }
    Ok(inv)
}

/// `key=value` words (values already unquoted by the word splitter).
fn key_values(words: &[String]) -> Result<BTreeMap<String, String>, String> {
    words
        .iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| format!("'{w}' is not key=value"))
        })
        .collect()
}

fn parse_yaml(path: &Path, text: &str) -> Result<Inventory, ImportError> {
    let bad = |message: String| ImportError::Yaml {
        path: path.to_path_buf(),
        message,
    };
    let docs = YamlLoader::load_from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut inv = Inventory::default();
    let Some(root) = docs.first() else {
        return Ok(inv);
    };
    let top = root
        .as_hash()
        .ok_or_else(|| bad("the top level is not a mapping of groups".into()))?;
    for (name, body) in top {
        let name = scalar(name).ok_or_else(|| bad("a group name is not text".into()))?;
        yaml_group(&mut inv, &name, body).map_err(bad)?;
    }
    Ok(inv)
}

fn yaml_group(inv: &mut Inventory, name: &str, body: &Yaml) -> Result<(), String> {
    inv.group(name);
    let Some(body) = body.as_hash() else {
        return if body.is_null() {
            Ok(())
        } else {
            Err(format!("group '{name}' is not a mapping"))
        };
    };
    if let Some(hosts) = body.get(&Yaml::String("hosts".into())) {
        for (host, vars) in hosts.as_hash().into_iter().flatten() {
            let pattern = scalar(host).ok_or_else(|| format!("a host of '{name}' is not text"))?;
            let vars = yaml_vars(vars);
            for host in expand(&pattern)? {
                inv.add_host(name, &host, vars.clone());
            }
        }
    }
    if let Some(vars) = body.get(&Yaml::String("vars".into())) {
        let vars = yaml_vars(vars);
        inv.group(name).vars.extend(vars);
    }
    if let Some(children) = body.get(&Yaml::String("children".into())) {
        for (child, child_body) in children.as_hash().into_iter().flatten() {
            let child = scalar(child).ok_or_else(|| format!("a child of '{name}' is not text"))?;
            inv.group(name).children.push(child.clone());
            yaml_group(inv, &child, child_body)?;
        }
    }
    Ok(())
}

/// Scalar variables as text; nested values are nothing tendhost maps.
fn yaml_vars(vars: &Yaml) -> BTreeMap<String, String> {
    vars.as_hash()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((scalar(k)?, scalar(v)?)))
        .collect()
}

fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `web[01:03].lan` → web01.lan, web02.lan, web03.lan; `db-[a:c]`; `[1:9:2]` steps. One
/// range per pattern is what inventories use; a second is expanded too.
fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|c| open + c)
        .ok_or_else(|| format!("'{pattern}': unclosed range"))?;
    let (prefix, range, suffix) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = range.split(':').collect();
    let bad = || format!("'{pattern}': a range is [start:end] or [start:end:step]");
    let (start, end) = match parts.as_slice() {
        [s, e] | [s, e, _] => (*s, *e),
        _ => return Err(bad()),
    };
    let step: usize = match parts.get(2) {
        Some(s) => s.parse().map_err(|_| bad())?,
        None => 1,
    };
    let step = step.max(1);
    let mut items = Vec::new();
    if let (Ok(a), Ok(b)) = (start.parse::<u64>(), end.parse::<u64>()) {
        let width = if start.starts_with('0') {
            start.len()
        } else {
            0
        };
        for n in (a..=b).step_by(step) {
            items.push(format!("{n:0width$}"));
        }
    } else if let ([a], [b]) = (start.as_bytes(), end.as_bytes())
        && a.is_ascii_alphabetic()
        && b.is_ascii_alphabetic()
    {
        for c in (*a..=*b).step_by(step) {
            items.push(char::from(c).to_string());
        }
    } else {
        return Err(bad());
    }
    if items.len() > 10_000 {
        return Err(format!("'{pattern}' names more than 10000 hosts"));
    }
    let mut out = Vec::new();
    for item in items {
        out.extend(expand(&format!("{prefix}{item}{suffix}"))?);
    }
    Ok(out)
}

/// Every group's members including its descendants' (cycles are cut).
fn members(inv: &Inventory, group: &str, seen: &mut BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if !seen.insert(group.to_string()) {
        return out;
    }
    if let Some(g) = inv.groups.get(group) {
        out.extend(g.hosts.iter().cloned());
        for child in &g.children {
            out.extend(members(inv, child, seen));
        }
    }
    out
}

/// The groups above `group` (its parents, theirs…), nearest last.
fn ancestors(inv: &Inventory, group: &str, out: &mut Vec<String>) {
    for (name, g) in &inv.groups {
        if g.children.iter().any(|c| c == group) && !out.contains(name) {
            ancestors(inv, name, out);
            out.push(name.clone());
        }
    }
}

fn resolve(inv: Inventory) -> Imported {
    let mut out = Imported::default();
    let special = |g: &str| g == "all" || g == "ungrouped";
    for (group, _) in inv.groups.iter().filter(|(g, _)| !special(g)) {
        let hosts: Vec<String> = members(&inv, group, &mut BTreeSet::new())
            .into_iter()
            .collect();
        if !hosts.is_empty() {
            out.groups.insert(group.clone(), hosts);
        }
    }
    for (host, own) in &inv.hosts {
        let direct: Vec<&String> = inv
            .groups
            .iter()
            .filter(|(_, g)| g.hosts.contains(host))
            .map(|(name, _)| name)
            .collect();
        let mut vars = inv
            .groups
            .get("all")
            .map(|g| g.vars.clone())
            .unwrap_or_default();
        let mut above = Vec::new();
        for group in &direct {
            ancestors(&inv, group, &mut above);
        }
        for group in above.iter().chain(direct.iter().copied()) {
            if let Some(g) = inv.groups.get(group.as_str()) {
                vars.extend(g.vars.clone());
            }
        }
        vars.extend(own.clone());
        let get = |keys: &[&str]| keys.iter().find_map(|k| vars.get(*k).cloned());
        let port = match get(&["ansible_port", "ansible_ssh_port"]) {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(p) => Some(p),
                Err(_) => {
                    out.warnings.push(format!(
                        "'{host}': ansible_port '{p}' is not a port; not imported"
                    ));
                    continue;
                }
            },
        };
        let jump_args = get(&["ansible_ssh_common_args"])
            .into_iter()
            .chain(get(&["ansible_ssh_extra_args"]))
            .find_map(|args| jump_in_ssh_args(&args));
        let proxy_jump = match jump_args.as_deref().map(jump_target) {
            None => None,
            Some(Ok(jump)) => jump,
            Some(Err(why)) => {
                out.warnings.push(format!("'{host}' {why}; not imported"));
                continue;
            }
        };
        out.hosts.push(NewHost {
            name: host.clone(),
            addr: get(&["ansible_host", "ansible_ssh_host"]).unwrap_or_else(|| host.clone()),
            user: get(&["ansible_user", "ansible_ssh_user"]),
            port,
            tags: direct
                .iter()
                .filter(|g| !special(g))
                .map(|g| g.to_string())
                .collect(),
            proxy_jump,
            ssh_key: get(&["ansible_ssh_private_key_file", "ansible_private_key_file"]),
            local: get(&["ansible_connection"]).as_deref() == Some("local"),
        });
    }
    out
}
