//! The `/` host filter: `web tag:prod group:dc1 state:failed os:debian`, terms combined with AND.
//!
//! A bare word matches a substring of the host name; `key:value` terms match tags and groups
//! exactly, states by name (`state:pending`, `state:busy`) and the OS id or the ids it is like
//! (`os:debian` also matches Ubuntu and Proxmox). Parsing is pure; matching reads one row. Nothing
//! here knows about the screen.

use crate::engine::bus::StateKind;
use crate::tui::model::HostRow;

/// A parsed filter; the empty filter matches every host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Name(String),
    Tag(String),
    Group(String),
    State(StateMatch),
    Os(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateMatch {
    Is(StateKind),
    /// Any host with a step in flight.
    Busy,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("unknown filter key '{0}' (use tag:, group:, state:, os: or a bare name)")]
    UnknownKey(String),
    #[error(
        "unknown state '{0}' (idle, querying, pending, updating, waiting, rebooting, verifying, failed, busy)"
    )]
    UnknownState(String),
    #[error("'{0}:' needs a value")]
    Empty(String),
}

impl Filter {
    /// Parses whitespace-separated terms.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let terms = text
            .split_whitespace()
            .map(parse_term)
            .collect::<Result<_, _>>()?;
        Ok(Filter { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// True when the host satisfies every term.
    pub fn matches(&self, host: &HostRow) -> bool {
        self.terms.iter().all(|term| term.matches(host))
    }
}

fn parse_term(word: &str) -> Result<Term, FilterError> {
    let Some((key, value)) = word.split_once(':') else {
        return Ok(Term::Name(word.to_lowercase()));
    };
    if value.is_empty() {
        return Err(FilterError::Empty(key.to_string()));
    }
    let value = value.to_lowercase();
    match key.to_lowercase().as_str() {
        "tag" | "t" => Ok(Term::Tag(value)),
        "group" | "g" => Ok(Term::Group(value)),
        "os" => Ok(Term::Os(value)),
        "state" | "s" => parse_state(&value).map(Term::State),
        other => Err(FilterError::UnknownKey(other.to_string())),
    }
}

fn parse_state(value: &str) -> Result<StateMatch, FilterError> {
    let kind = match value {
        "idle" => StateKind::Idle,
        "querying" => StateKind::Querying,
        "pending" | "pending_updates" | "pending-updates" => StateKind::PendingUpdates,
        "updating" => StateKind::Updating,
        "waiting" | "waiting_reboot" | "waiting-reboot" | "reboot" => StateKind::WaitingReboot,
        "rebooting" => StateKind::Rebooting,
        "verifying" => StateKind::Verifying,
        "failed" => StateKind::Failed,
        "busy" => return Ok(StateMatch::Busy),
        other => return Err(FilterError::UnknownState(other.to_string())),
    };
    Ok(StateMatch::Is(kind))
}

impl Term {
    fn matches(&self, host: &HostRow) -> bool {
        match self {
            Term::Name(part) => host.name().to_lowercase().contains(part.as_str()),
            Term::Tag(tag) => host.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)),
            Term::Group(group) => host.groups.iter().any(|g| g.eq_ignore_ascii_case(group)),
            Term::Os(os) => host.os_ids().any(|id| id.eq_ignore_ascii_case(os)),
            Term::State(StateMatch::Is(kind)) => host.state() == *kind,
            Term::State(StateMatch::Busy) => matches!(
                host.state(),
                StateKind::Querying
                    | StateKind::Updating
                    | StateKind::Rebooting
                    | StateKind::Verifying
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::testing::{fleet, inventory, state_changed};

    fn names(filter: &str) -> Vec<String> {
        let mut model = fleet(6);
        model.apply(&inventory("host-00", "debian", "12"));
        model.apply(&inventory("host-01", "fedora", "40"));
        model.apply(&state_changed(
            "host-02",
            StateKind::Idle,
            StateKind::Failed,
            Some("x"),
        ));
        model.apply(&state_changed(
            "host-03",
            StateKind::Idle,
            StateKind::Updating,
            None,
        ));
        let filter = Filter::parse(filter).unwrap();
        model
            .hosts()
            .iter()
            .filter(|h| filter.matches(h))
            .map(|h| h.name().to_string())
            .collect()
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert!(Filter::parse("  ").unwrap().is_empty());
        assert_eq!(names("").len(), 6);
    }

    #[test]
    fn bare_words_match_name_substrings_case_insensitively() {
        assert_eq!(names("HOST-0"), names(""));
        assert_eq!(names("-05"), ["host-05"]);
    }

    #[test]
    fn tags_groups_states_and_os_combine_with_and() {
        assert_eq!(names("tag:db"), ["host-01", "host-03", "host-05"]);
        assert_eq!(names("group:canary"), ["host-00", "host-01"]);
        assert_eq!(names("state:failed"), ["host-02"]);
        assert_eq!(names("state:busy"), ["host-03"]);
        assert_eq!(names("os:debian"), ["host-00"]);
        assert_eq!(names("tag:db group:canary"), ["host-01"]);
        assert_eq!(names("tag:web state:failed 02"), ["host-02"]);
        assert!(names("tag:web os:fedora").is_empty());
    }

    #[test]
    fn rejects_unknown_keys_states_and_empty_values() {
        assert_eq!(
            Filter::parse("colour:red"),
            Err(FilterError::UnknownKey("colour".into()))
        );
        assert_eq!(
            Filter::parse("state:sleepy"),
            Err(FilterError::UnknownState("sleepy".into()))
        );
        assert_eq!(Filter::parse("tag:"), Err(FilterError::Empty("tag".into())));
    }

    #[test]
    fn short_keys_are_accepted() {
        assert_eq!(
            Filter::parse("t:web g:x s:idle").unwrap(),
            Filter::parse("tag:web group:x state:idle").unwrap()
        );
    }
}
