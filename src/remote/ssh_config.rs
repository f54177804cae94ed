//! The part of `~/.ssh/config` tendhost honours: HostName, User, Port, IdentityFile and
//! ProxyJump, for settings `tendhost.toml` leaves unset.
//!
//! Follows ssh_config(5) where it matters: `Host` pattern lists with `*`, `?` and `!`, the first
//! value obtained for a keyword wins (IdentityFile accumulates), keywords are case-insensitive,
//! `Include` (relative to `~/.ssh`, with `*` in the file name) is followed. `Match` blocks are
//! skipped: their conditions need a live connection context tendhost does not emulate.

use std::fs;
use std::path::{Path, PathBuf};

use super::known_hosts::wildcard;

/// What `~/.ssh/config` says about one host alias.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SshConfigHost {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    pub proxy_jump: Option<String>,
}

/// Looks `alias` up in the config file at `path` (missing or unreadable file: nothing set).
pub(crate) fn lookup(path: &Path, alias: &str) -> SshConfigHost {
    let mut out = SshConfigHost::default();
    let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    apply_file(path, &base, alias, &mut out, 0);
    out
}

/// Every concrete alias the `Host` lines of the file at `path` (and its Includes) name, in
/// order, once each: the hosts a user has set up, for `host import --ssh-config`. Patterns
/// (`*`, `?`), negations and `Match` blocks name no single host and are left out.
pub(crate) fn aliases(path: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    collect_aliases(path, &base, &mut out, 0);
    out
}

fn collect_aliases(path: &Path, base: &Path, out: &mut Vec<String>, depth: u8) {
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, value) = split_keyword(line);
        match keyword.to_ascii_lowercase().as_str() {
            "host" => {
                let concrete = value
                    .split_whitespace()
                    .map(unquote)
                    .filter(|p| !p.contains(['*', '?', '!']));
                for alias in concrete {
                    if !out.iter().any(|a| a == alias) {
                        out.push(alias.to_string());
                    }
                }
            }
            "include" if depth < 8 => {
                for file in value
                    .split_whitespace()
                    .flat_map(|p| expand_include(p, base))
                {
                    collect_aliases(&file, base, out, depth + 1);
                }
            }
            _ => {}
        }
    }
}

fn apply_file(path: &Path, base: &Path, alias: &str, out: &mut SshConfigHost, depth: u8) {
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    // Before any Host line, settings apply to every host.
    let mut active = true;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, value) = split_keyword(line);
        let keyword = keyword.to_ascii_lowercase();
        match keyword.as_str() {
            "host" => active = host_matches(value, alias),
            "match" => active = false,
            "include" if active && depth < 8 => {
                for file in value
                    .split_whitespace()
                    .flat_map(|p| expand_include(p, base))
                {
                    apply_file(&file, base, alias, out, depth + 1);
                }
            }
            _ if active => apply(&keyword, value, alias, out),
            _ => {}
        }
    }
}

fn apply(keyword: &str, value: &str, alias: &str, out: &mut SshConfigHost) {
    let value = unquote(value);
    match keyword {
        "hostname" if out.host_name.is_none() => {
            out.host_name = Some(value.replace("%h", alias));
        }
        "user" if out.user.is_none() => out.user = Some(value.to_string()),
        "port" if out.port.is_none() => out.port = value.parse().ok(),
        "identityfile" => out.identity_files.push(expand_tilde(value)),
        "proxyjump" if out.proxy_jump.is_none() => {
            // `none` switches ProxyJump off; remember that as "set to nothing".
            out.proxy_jump = Some(value.to_string());
        }
        _ => {}
    }
}

/// `Keyword value`, `Keyword=value` or `Keyword = value`.
fn split_keyword(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (keyword, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    (keyword, rest)
}

fn host_matches(patterns: &str, alias: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split_whitespace().map(unquote) {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard(negated, alias) {
                return false;
            }
        } else if wildcard(pattern, alias) {
            matched = true;
        }
    }
    matched
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

fn expand_tilde(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// An Include argument: relative paths are under `~/.ssh`; a `*`/`?` in the file name globs.
fn expand_include(pattern: &str, base: &Path) -> Vec<PathBuf> {
    let path = expand_tilde(unquote(pattern));
    let path = if path.is_absolute() {
        path
    } else {
        base.join(path)
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![path];
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let (_d, path) = config(
            "Host web\n  HostName 10.0.0.5\n  User admin\n  Port 2222\n  IdentityFile /k1\n\
             Host *\n  User nobody\n  IdentityFile=/k2\n  ProxyJump bastion\n",
        );
        let host = lookup(&path, "web");
        assert_eq!(host.host_name.as_deref(), Some("10.0.0.5"));
        assert_eq!(host.user.as_deref(), Some("admin"));
        assert_eq!(host.port, Some(2222));
        assert_eq!(
            host.identity_files,
            [PathBuf::from("/k1"), PathBuf::from("/k2")]
        );
        assert_eq!(host.proxy_jump.as_deref(), Some("bastion"));
        let other = lookup(&path, "db");
        assert_eq!(other.user.as_deref(), Some("nobody"));
        assert_eq!(other.host_name, None);
    }

    #[test]
    fn negation_match_blocks_and_includes() {
        let (dir, path) = config(
            "Include conf.d/*.conf\nHost *.lan !secret.lan\n  User lan\nMatch all\n  User matched\n",
        );
        fs::create_dir(dir.path().join("conf.d")).unwrap();
        fs::write(
            dir.path().join("conf.d/a.conf"),
            "Host box.lan\n  Port 2200\n",
        )
        .unwrap();
        assert_eq!(lookup(&path, "box.lan").user.as_deref(), Some("lan"));
        assert_eq!(lookup(&path, "box.lan").port, Some(2200));
        assert_eq!(lookup(&path, "secret.lan").user, None);
        assert_eq!(lookup(&path, "missing"), SshConfigHost::default());
        assert_eq!(aliases(&path), ["box.lan"]);
    }
}
