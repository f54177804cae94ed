//! Host selection (DESIGN.md §3): `HOST…`, `--tag` (AND), `--group` (OR), `--exclude`. One function
//! shared by batch mode and the TUI, so a selector means the same everywhere.

use crate::config::{Config, HostId};

/// Which hosts an operation touches. Empty means every host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selectors {
    pub hosts: Vec<String>,
    pub tags: Vec<String>,
    pub groups: Vec<String>,
    pub exclude: Vec<String>,
}

/// The selected hosts, in config order. Names and groups must exist (a typo is an error, not an
/// empty selection); tags filter, so a tag nobody has selects nothing.
///
/// Hosts named on the command line and members of the named groups are united; with neither, all
/// hosts are the start. Then every tag must be present, and excluded hosts are removed.
pub fn select(config: &Config, selectors: &Selectors) -> Result<Vec<HostId>, String> {
    for name in selectors.hosts.iter().chain(&selectors.exclude) {
        if config.host(name).is_none() {
            return Err(format!("unknown host '{name}'"));
        }
    }
    for group in &selectors.groups {
        if !config.groups.contains_key(group) {
            return Err(format!("unknown group '{group}'"));
        }
    }
    let everyone = selectors.hosts.is_empty() && selectors.groups.is_empty();
    let selected = config
        .hosts
        .iter()
        .filter(|host| {
            everyone
                || selectors.hosts.iter().any(|n| *n == *host.name)
                || selectors.groups.iter().any(|g| host.groups.contains(g))
        })
        .filter(|host| selectors.tags.iter().all(|t| host.tags.contains(t)))
        .filter(|host| !selectors.exclude.iter().any(|n| *n == *host.name))
        .map(|host| host.name.clone())
        .collect();
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_str(
            "t.toml",
            r#"
[groups]
web = ["a", "b"]
db = ["c"]

[[host]]
name = "a"
addr = "10.0.0.1"
tags = ["prod", "web"]

[[host]]
name = "b"
addr = "10.0.0.2"
tags = ["staging", "web"]

[[host]]
name = "c"
addr = "10.0.0.3"
tags = ["prod"]

[[host]]
name = "d"
addr = "10.0.0.4"
"#,
        )
        .unwrap()
    }

    fn names(selectors: Selectors) -> Vec<String> {
        select(&config(), &selectors)
            .unwrap()
            .iter()
            .map(|h| h.to_string())
            .collect()
    }

    #[test]
    fn no_selector_means_every_host() {
        assert_eq!(names(Selectors::default()), ["a", "b", "c", "d"]);
    }

    #[test]
    fn tags_combine_with_and() {
        let s = |tags: &[&str]| Selectors {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(names(s(&["prod"])), ["a", "c"]);
        assert_eq!(names(s(&["prod", "web"])), ["a"]);
        assert!(names(s(&["nobody"])).is_empty());
    }

    #[test]
    fn hosts_and_groups_unite_then_filter_and_exclude() {
        let s = Selectors {
            hosts: vec!["d".into()],
            groups: vec!["web".into()],
            exclude: vec!["b".into()],
            ..Default::default()
        };
        assert_eq!(names(s), ["a", "d"], "config order, not argument order");
        let s = Selectors {
            groups: vec!["web".into(), "db".into()],
            tags: vec!["prod".into()],
            ..Default::default()
        };
        assert_eq!(names(s), ["a", "c"]);
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = select(
            &config(),
            &Selectors {
                hosts: vec!["zz".into()],
                ..Default::default()
            },
        );
        assert_eq!(err.unwrap_err(), "unknown host 'zz'");
        let err = select(
            &config(),
            &Selectors {
                groups: vec!["zz".into()],
                ..Default::default()
            },
        );
        assert_eq!(err.unwrap_err(), "unknown group 'zz'");
    }
}
