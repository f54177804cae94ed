//! Host selection (DESIGN.md §3): `HOST…`, `--tag`, `--group`, `--exclude`. The one meaning of a
//! selector, shared by `--batch`, `host test` and anything else that picks hosts by name, tag or
//! group, so a selector means the same everywhere.
//!
//! Pure: reads the config, never a host or the state dir.

use crate::config::suggest::{closest, hint};
use crate::config::{Config, HostId};

/// Which hosts an operation touches, as given on the command line. All empty means every host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selectors {
    /// Hosts named outright.
    pub hosts: Vec<String>,
    /// Tags every selected host must have (AND).
    pub tags: Vec<String>,
    /// Groups whose members are selected, together with `hosts` (OR).
    pub groups: Vec<String>,
    /// Hosts left out, whatever else selected them.
    pub exclude: Vec<String>,
}

/// Why a selection picks no host. Every unknown word is named, with a did-you-mean when a known
/// one is close; a typo never turns into "nothing to do".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("unknown host '{name}'{}", hint(suggestion.as_deref()))]
    UnknownHost {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown group '{name}'{}", hint(suggestion.as_deref()))]
    UnknownGroup {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown tag '{name}': no host has it{}", hint(suggestion.as_deref()))]
    UnknownTag {
        name: String,
        suggestion: Option<String>,
    },
    /// Every word is known, but together they leave no host (e.g. two tags nobody has both of).
    #[error("the selection matches no host")]
    Empty,
}

/// Whether `selectors` choose `host` before `exclude` applies: named, or in a named group
/// (neither given: every host), and carrying every tag. The one rule for `select` and for
/// history, which also keeps hosts the config no longer has.
pub fn chosen(selectors: &Selectors, host: &crate::config::HostConfig) -> bool {
    let everyone = selectors.hosts.is_empty() && selectors.groups.is_empty();
    (everyone
        || selectors.hosts.iter().any(|n| *n == *host.name)
        || selectors.groups.iter().any(|g| host.groups.contains(g)))
        && selectors.tags.iter().all(|t| host.tags.contains(t))
}

/// The selected hosts, in config order, each once.
///
/// Hosts named outright and the members of the named groups are united (neither given: every
/// host); then every tag must be present on a host (AND); then `exclude` removes hosts. A host,
/// group or tag the config does not know is an error naming it, and so is a selection that ends
/// up empty.
pub fn select(config: &Config, selectors: &Selectors) -> Result<Vec<HostId>, SelectError> {
    let names: Vec<&str> = config.hosts.iter().map(|h| &*h.name).collect();
    let groups: Vec<&str> = config.groups.keys().map(String::as_str).collect();
    let tags = config.tags();
    let unknown = |word: &String, known: &[&str]| {
        (!known.contains(&word.as_str()))
            .then(|| (word.clone(), closest(word, known).map(String::from)))
    };
    for word in selectors.hosts.iter().chain(&selectors.exclude) {
        if let Some((name, suggestion)) = unknown(word, &names) {
            return Err(SelectError::UnknownHost { name, suggestion });
        }
    }
    for word in &selectors.groups {
        if let Some((name, suggestion)) = unknown(word, &groups) {
            return Err(SelectError::UnknownGroup { name, suggestion });
        }
    }
    for word in &selectors.tags {
        if let Some((name, suggestion)) = unknown(word, &tags) {
            return Err(SelectError::UnknownTag { name, suggestion });
        }
    }

    let selected: Vec<HostId> = config
        .hosts
        .iter()
        .filter(|host| chosen(selectors, host))
        .filter(|host| !selectors.exclude.iter().any(|n| *n == *host.name))
        .map(|host| host.name.clone())
        .collect();
    if selected.is_empty() {
        return Err(SelectError::Empty);
    }
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
web = ["web-1", "web-2"]
db = ["db-1"]

[[host]]
name = "web-1"
addr = "10.0.0.1"
tags = ["prod", "frontend"]

[[host]]
name = "web-2"
addr = "10.0.0.2"
tags = ["staging", "frontend"]

[[host]]
name = "db-1"
addr = "10.0.0.3"
tags = ["prod"]

[[host]]
name = "spare"
addr = "10.0.0.4"
"#,
        )
        .unwrap()
    }

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    /// `hosts | tags | groups | exclude`, each a space-separated list.
    fn selectors(spec: &str) -> Selectors {
        let parts: Vec<&str> = spec.split('|').collect();
        Selectors {
            hosts: words(parts[0]),
            tags: words(parts[1]),
            groups: words(parts[2]),
            exclude: words(parts[3]),
        }
    }

    fn run(spec: &str) -> Result<String, String> {
        select(&config(), &selectors(spec))
            .map(|hosts| hosts.join(" "))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn names_and_groups_unite_then_tags_intersect_then_exclude_removes() {
        let cases = [
            ("|||", "web-1 web-2 db-1 spare", "no selector is every host"),
            (
                "spare web-1 |||",
                "web-1 spare",
                "config order, not argument order",
            ),
            ("web-1 web-1 ||web|", "web-1 web-2", "each host once"),
            ("|| web |", "web-1 web-2", "a group's members"),
            ("|| web db |", "web-1 web-2 db-1", "groups unite"),
            ("spare || db |", "db-1 spare", "names and groups unite"),
            ("| prod ||", "web-1 db-1", "a tag filters every host"),
            ("| prod frontend ||", "web-1", "tags combine with AND"),
            (
                "|prod| web db |",
                "web-1 db-1",
                "tags filter the united groups",
            ),
            ("spare |prod| db |", "db-1", "tags filter named hosts too"),
            ("||| web-2", "web-1 db-1 spare", "exclude from everyone"),
            (
                "spare || web | web-2",
                "web-1 spare",
                "exclude from a union",
            ),
            (
                "web-1 ||| web-1",
                "the selection matches no host",
                "exclude wins",
            ),
            (
                "| prod staging ||",
                "the selection matches no host",
                "known tags no host has together",
            ),
        ];
        for (spec, expected, why) in cases {
            let got = match run(spec) {
                Ok(hosts) | Err(hosts) => hosts,
            };
            assert_eq!(got, expected, "{spec:?}: {why}");
        }
    }

    #[test]
    fn unknown_words_are_errors_naming_them_with_a_hint() {
        let cases = [
            ("db-2 |||", "unknown host 'db-2' (did you mean 'db-1'?)"),
            ("zzz |||", "unknown host 'zzz'"),
            ("||| spar", "unknown host 'spar' (did you mean 'spare'?)"),
            ("|| wbe |", "unknown group 'wbe' (did you mean 'web'?)"),
            ("|| dc1 |", "unknown group 'dc1'"),
            (
                "| prdo ||",
                "unknown tag 'prdo': no host has it (did you mean 'prod'?)",
            ),
            ("| nobody ||", "unknown tag 'nobody': no host has it"),
            (
                "| prod frontnd ||",
                "unknown tag 'frontnd': no host has it (did you mean 'frontend'?)",
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(run(spec), Err(expected.to_string()), "{spec:?}");
        }
    }

    #[test]
    fn errors_stay_typed() {
        let err = select(&config(), &selectors("|| wbe |")).unwrap_err();
        assert_eq!(
            err,
            SelectError::UnknownGroup {
                name: "wbe".into(),
                suggestion: Some("web".into()),
            }
        );
    }
}
