//! Pure parser for `/etc/os-release` (systemd's os-release(5) format), and the [`OsInfo`] it
//! yields: what both package-manager detection and the inventory know about an OS.

use serde::{Deserialize, Serialize};

/// From `/etc/os-release` (or osquery's `os_version`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `ID`, e.g. `debian`.
    pub id: String,
    /// `ID_LIKE`, split on spaces.
    pub id_like: Vec<String>,
    /// `VERSION_ID`, e.g. `12`.
    pub version_id: String,
    /// `PRETTY_NAME`, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub pretty_name: String,
}

/// Reads `KEY=value` lines; values may be bare, `"double"` or `'single'` quoted, with `\`
/// escapes inside double quotes. Comments, blank lines and malformed lines are skipped.
pub(crate) fn parse_os_release(text: &str) -> OsInfo {
    let mut info = OsInfo::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(raw.trim());
        match key.trim() {
            "ID" => info.id = value.to_ascii_lowercase(),
            "ID_LIKE" => {
                info.id_like = value
                    .split_whitespace()
                    .map(str::to_ascii_lowercase)
                    .collect();
            }
            "VERSION_ID" => info.version_id = value,
            "PRETTY_NAME" => info.pretty_name = value,
            _ => {}
        }
    }
    info
}

fn unquote(raw: &str) -> String {
    if let Some(inner) = raw.strip_prefix('\'') {
        return inner.strip_suffix('\'').unwrap_or(inner).to_string();
    }
    let Some(inner) = raw.strip_prefix('"') else {
        return raw.to_string();
    };
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_this_machines_os_release() {
        let info = parse_os_release(include_str!("../../../tests/fixtures/os-release/debian-12"));
        assert_eq!(info.id, "debian");
        assert_eq!(info.version_id, "12");
        assert_eq!(info.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        assert!(info.id_like.is_empty());
    }

    #[test]
    fn handles_quotes_escapes_and_id_like() {
        let info = parse_os_release(
            "# comment\nID=\"rocky\"\nID_LIKE='rhel centos fedora'\nVERSION_ID=\"9.3\"\n\
             PRETTY_NAME=\"Say \\\"hi\\\"\"\nnonsense\n",
        );
        assert_eq!(info.id, "rocky");
        assert_eq!(info.id_like, ["rhel", "centos", "fedora"]);
        assert_eq!(info.version_id, "9.3");
        assert_eq!(info.pretty_name, "Say \"hi\"");
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_os_release(&text);
        }
    }
}
