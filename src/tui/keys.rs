//! The keymap: ONE table of (action, default keys, help text).
//!
//! Dispatch (`KeyMap::action`), the `?` overlay and README's key table are all generated from
//! [`BINDINGS`], and `[keys]` in tendhost.toml (action name → key specs) overrides the defaults
//! (k9s #1391). This module knows keys and actions, not what an action does.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::config::suggest;

/// Everything a key can ask for. What it means depends on the screen in front (app.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    MoveUp,
    MoveDown,
    PageUp,
    PageDown,
    Top,
    Bottom,
    NextTab,
    PrevTab,
    Zoom,
    Back,
    Filter,
    NextMatch,
    Follow,
    Mark,
    MarkAll,
    ClearMarks,
    Sort,
    Refresh,
    RefreshLists,
    Update,
    Reboot,
    /// Repair the package database of hosts that need it (`dpkg --configure -a`, …).
    Repair,
    /// Roll compose services back to their images before the last update.
    Rollback,
    Wave,
    PauseWave,
    AbortWave,
    Retry,
    Acknowledge,
    Packages,
    /// The Schedules view (next and last runs; pause or resume one).
    Schedules,
    /// The History overlay: past waves and a host's timeline, from the audit log.
    History,
    Confirm,
    ToggleDryRun,
    ToggleRemovals,
    PlanView,
    DryRunMissing,
    ToggleSecurityOnly,
    Decrease,
    Increase,
    /// At a wave's threshold: go on with the failures counted.
    WaveContinue,
    /// At a wave's threshold: set the failed hosts aside and go on.
    WaveSkipFailed,
    /// At a wave's threshold: retry the failed hosts.
    WaveRetryFailed,
    /// Forget the unfinished wave offered at start.
    DiscardWave,
    Help,
    Quit,
}

/// One row of the keymap table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub action: Action,
    /// The name used in `[keys]`.
    pub name: &'static str,
    pub keys: &'static [&'static str],
    pub help: &'static str,
    /// Changes a host or a wave: disabled by `--read-only`.
    pub mutating: bool,
    pub section: Section,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Move,
    Select,
    Act,
    Dialog,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::Move => "move and view",
            Section::Select => "select",
            Section::Act => "act",
            Section::Dialog => "dialogs",
        }
    }
}

macro_rules! bind {
    ($action:ident, $name:literal, [$($key:literal),+], $help:literal, $section:ident) => {
        Binding { action: Action::$action, name: $name, keys: &[$($key),+], help: $help,
                  mutating: false, section: Section::$section }
    };
    ($action:ident, $name:literal, [$($key:literal),+], $help:literal, $section:ident, mutating) => {
        Binding { action: Action::$action, name: $name, keys: &[$($key),+], help: $help,
                  mutating: true, section: Section::$section }
    };
}

/// The default keymap (DESIGN.md §8).
pub(super) const BINDINGS: &[Binding] = &[
    bind!(MoveUp, "move_up", ["k", "Up"], "up / scroll up", Move),
    bind!(
        MoveDown,
        "move_down",
        ["j", "Down"],
        "down / scroll down",
        Move
    ),
    bind!(PageUp, "page_up", ["PgUp", "Ctrl-b"], "page up", Move),
    bind!(PageDown, "page_down", ["PgDn", "Ctrl-f"], "page down", Move),
    bind!(Top, "top", ["g", "Home"], "first line", Move),
    bind!(Bottom, "bottom", ["G", "End"], "last line", Move),
    bind!(NextTab, "next_tab", ["Tab"], "next detail tab", Move),
    bind!(
        PrevTab,
        "prev_tab",
        ["Shift-Tab"],
        "previous detail tab",
        Move
    ),
    bind!(Zoom, "zoom", ["Enter"], "zoom the detail pane", Move),
    bind!(
        Back,
        "back",
        ["Esc", "Backspace"],
        "back; clears the filter",
        Move
    ),
    bind!(Filter, "filter", ["/"], "filter (log: search)", Select),
    bind!(NextMatch, "next_match", ["n"], "next search match", Move),
    bind!(Follow, "follow", ["f"], "follow the log", Move),
    bind!(Mark, "mark", ["Space"], "mark / unmark host", Select),
    bind!(MarkAll, "mark_all", ["*"], "mark all filtered", Select),
    bind!(ClearMarks, "clear_marks", ["c"], "clear marks", Select),
    bind!(Sort, "sort", ["s"], "sort by next column", Select),
    bind!(Packages, "packages", ["P"], "fleet-wide packages", Select),
    bind!(
        Schedules,
        "schedules",
        ["T"],
        "schedules (space pauses)",
        Select
    ),
    bind!(History, "history", ["H"], "wave history", Select),
    bind!(Refresh, "refresh", ["r"], "refresh inventory", Act),
    bind!(
        RefreshLists,
        "refresh_lists",
        ["L"],
        "refresh lists, reread",
        Act
    ),
    bind!(
        Update,
        "update",
        ["u"],
        "update (d: dry run)",
        Act,
        mutating
    ),
    bind!(Reboot, "reboot", ["b"], "reboot", Act, mutating),
    bind!(Repair, "repair", ["F"], "repair package db", Act, mutating),
    bind!(
        Rollback,
        "rollback",
        ["o"],
        "roll back compose",
        Act,
        mutating
    ),
    bind!(Wave, "wave", ["w"], "wave dialog", Act, mutating),
    bind!(
        PauseWave,
        "pause_wave",
        ["p"],
        "pause / resume wave",
        Act,
        mutating
    ),
    bind!(
        AbortWave,
        "abort_wave",
        ["A"],
        "abort the wave",
        Act,
        mutating
    ),
    bind!(Retry, "retry", ["x"], "retry failed host", Act, mutating),
    bind!(
        Acknowledge,
        "acknowledge",
        ["a"],
        "acknowledge failure",
        Act,
        mutating
    ),
    bind!(Confirm, "confirm", ["y"], "confirm (or Enter)", Dialog),
    bind!(ToggleDryRun, "dry_run", ["d"], "toggle dry run", Dialog),
    bind!(
        ToggleRemovals,
        "allow_removals",
        ["R"],
        "allow package removals",
        Dialog
    ),
    bind!(PlanView, "plan_view", ["v"], "the wave's plan view", Dialog),
    bind!(
        DryRunMissing,
        "dry_run_missing",
        ["D"],
        "dry-run unplanned hosts",
        Dialog,
        mutating
    ),
    bind!(
        ToggleSecurityOnly,
        "security_only",
        ["S"],
        "security updates only",
        Dialog
    ),
    bind!(
        Decrease,
        "decrease",
        ["h", "Left", "-"],
        "previous value",
        Dialog
    ),
    bind!(
        Increase,
        "increase",
        ["l", "Right", "+"],
        "next value",
        Dialog
    ),
    bind!(
        WaveContinue,
        "wave_continue",
        ["C"],
        "threshold: continue",
        Dialog,
        mutating
    ),
    bind!(
        WaveSkipFailed,
        "wave_skip_failed",
        ["K"],
        "threshold: skip failed",
        Dialog,
        mutating
    ),
    bind!(
        WaveRetryFailed,
        "wave_retry_failed",
        ["X"],
        "threshold: retry failed",
        Dialog,
        mutating
    ),
    bind!(
        DiscardWave,
        "discard_wave",
        ["Delete"],
        "discard saved wave",
        Dialog,
        mutating
    ),
    bind!(Help, "help", ["?"], "this help", Move),
    bind!(Quit, "quit", ["q", "Ctrl-c"], "quit; closes dialogs", Move),
];

impl Action {
    pub fn binding(self) -> &'static Binding {
        // Every action has exactly one row; `keymap_table_covers_every_action` checks it.
        BINDINGS
            .iter()
            .find(|b| b.action == self)
            .unwrap_or(&BINDINGS[0])
    }

    pub fn name(self) -> &'static str {
        self.binding().name
    }

    pub fn is_mutating(self) -> bool {
        self.binding().mutating
    }
}

/// A key with its modifiers, normalised so `G` and `Shift-g` are the same press.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct KeyPress {
    code: KeyCode,
    mods: KeyModifiers,
}

impl KeyPress {
    pub(super) fn from_event(event: &KeyEvent) -> Self {
        let mut mods =
            event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match event.code {
            // Shift is already in the character (or in BackTab).
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::Char(c)
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Self { code, mods }
    }

    /// Parses `j`, `G`, `Up`, `PgDn`, `Ctrl-u`, `Shift-Tab`, `Space`, `F5`…
    pub(super) fn parse(spec: &str) -> Result<Self, KeyError> {
        let bad = || KeyError::BadKey(spec.to_string());
        let mut mods = KeyModifiers::NONE;
        let mut rest = spec;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.chars().count() > 1 && lower.starts_with("ctrl-") {
                mods |= KeyModifiers::CONTROL;
                rest = &rest[5..];
            } else if rest.chars().count() > 1 && lower.starts_with("alt-") {
                mods |= KeyModifiers::ALT;
                rest = &rest[4..];
            } else if lower == "shift-tab" || lower == "backtab" {
                return Ok(Self {
                    code: KeyCode::BackTab,
                    mods,
                });
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (None, _) => return Err(bad()),
            (Some(c), None) => KeyCode::Char(c),
            _ => match rest.to_ascii_lowercase().as_str() {
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pagedown" => KeyCode::PageDown,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "backspace" => KeyCode::Backspace,
                "tab" => KeyCode::Tab,
                "space" => KeyCode::Char(' '),
                "delete" | "del" => KeyCode::Delete,
                "insert" | "ins" => KeyCode::Insert,
                f if f.starts_with('f') => f[1..]
                    .parse::<u8>()
                    .ok()
                    .filter(|n| (1..=12).contains(n))
                    .map(KeyCode::F)
                    .ok_or_else(bad)?,
                _ => return Err(bad()),
            },
        };
        Ok(Self { code, mods })
    }
}

impl fmt::Display for KeyPress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Up => f.write_str("Up"),
            KeyCode::Down => f.write_str("Down"),
            KeyCode::Left => f.write_str("Left"),
            KeyCode::Right => f.write_str("Right"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::Delete => f.write_str("Delete"),
            KeyCode::Insert => f.write_str("Insert"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("[keys]: unknown action '{0}'{hint}", hint = did_you_mean(.0))]
    UnknownAction(String),
    #[error("[keys]: cannot read key '{0}' (try 'j', 'G', 'Ctrl-u', 'PgDn', 'Shift-Tab', 'Space')")]
    BadKey(String),
    #[error("[keys]: key '{key}' is bound to both '{first}' and '{second}'")]
    Conflict {
        key: String,
        first: &'static str,
        second: &'static str,
    },
    #[error("[keys]: action '{0}' has no keys left")]
    Unbound(String),
}

fn did_you_mean(name: &str) -> String {
    let actions: Vec<&str> = BINDINGS.iter().map(|b| b.name).collect();
    suggest::did_you_mean(name, &actions)
}

/// The keys in force: defaults with `[keys]` overrides applied.
#[derive(Debug, Clone)]
pub struct KeyMap {
    by_key: HashMap<KeyPress, Action>,
    /// Keys per action, in table order, for the help overlay and the footer.
    keys: Vec<(Action, Vec<KeyPress>)>,
}

impl KeyMap {
    /// Builds the keymap; an override replaces all default keys of its action.
    pub fn new(overrides: &BTreeMap<String, Vec<String>>) -> Result<Self, KeyError> {
        for name in overrides.keys() {
            if !BINDINGS.iter().any(|b| b.name == name) {
                return Err(KeyError::UnknownAction(name.clone()));
            }
        }
        let mut by_key = HashMap::new();
        let mut keys = Vec::with_capacity(BINDINGS.len());
        for binding in BINDINGS {
            let presses: Vec<KeyPress> = match overrides.get(binding.name) {
                Some(specs) => specs
                    .iter()
                    .map(|s| KeyPress::parse(s))
                    .collect::<Result<_, _>>()?,
                None => binding
                    .keys
                    .iter()
                    .map(|s| KeyPress::parse(s))
                    .collect::<Result<_, _>>()?,
            };
            if presses.is_empty() {
                return Err(KeyError::Unbound(binding.name.to_string()));
            }
            for press in &presses {
                if let Some(previous) = by_key.insert(*press, binding.action) {
                    return Err(KeyError::Conflict {
                        key: press.to_string(),
                        first: previous.name(),
                        second: binding.name,
                    });
                }
            }
            keys.push((binding.action, presses));
        }
        Ok(Self { by_key, keys })
    }

    /// The defaults, which are known to be valid (`default_keymap_is_valid`).
    pub fn defaults() -> Self {
        Self::new(&BTreeMap::new()).unwrap_or_else(|_| Self {
            by_key: HashMap::new(),
            keys: Vec::new(),
        })
    }

    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        self.by_key.get(&KeyPress::from_event(event)).copied()
    }

    /// `k/Up`: the keys of `action` as the help and footer show them.
    pub fn keys_label(&self, action: Action) -> String {
        self.keys
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, presses)| {
                let labels: Vec<String> = presses.iter().map(ToString::to_string).collect();
                labels.join("/")
            })
            .unwrap_or_default()
    }

    /// The first key of `action`, for compact hints.
    pub fn first_key(&self, action: Action) -> String {
        self.keys
            .iter()
            .find(|(a, _)| *a == action)
            .and_then(|(_, presses)| presses.first())
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// README's key table, generated from the same table dispatch uses.
    pub fn markdown_table(&self) -> String {
        let mut out = String::from("| Keys | Action | Name in `[keys]` |\n|---|---|---|\n");
        for binding in BINDINGS {
            let keys: Vec<String> = self
                .keys
                .iter()
                .find(|(a, _)| *a == binding.action)
                .map(|(_, presses)| presses.iter().map(|p| format!("`{p}`")).collect())
                .unwrap_or_default();
            let ro = if binding.mutating {
                " (not with `--read-only`)"
            } else {
                ""
            };
            out.push_str(&format!(
                "| {} | {}{} | `{}` |\n",
                keys.join(" "),
                binding.help,
                ro,
                binding.name
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn default_keymap_is_valid() {
        KeyMap::new(&BTreeMap::new()).unwrap();
    }

    #[test]
    fn keymap_table_covers_every_action_once() {
        let mut names: Vec<&str> = BINDINGS.iter().map(|b| b.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BINDINGS.len());
        for b in BINDINGS {
            assert_eq!(b.action.binding().name, b.name);
        }
    }

    #[test]
    fn dispatches_design_default_keys() {
        let map = KeyMap::defaults();
        let none = KeyModifiers::NONE;
        let cases = [
            (key(KeyCode::Char('j'), none), Action::MoveDown),
            (key(KeyCode::Down, none), Action::MoveDown),
            (key(KeyCode::Char('G'), KeyModifiers::SHIFT), Action::Bottom),
            (key(KeyCode::BackTab, KeyModifiers::SHIFT), Action::PrevTab),
            (key(KeyCode::Char(' '), none), Action::Mark),
            (
                key(KeyCode::Char('*'), KeyModifiers::SHIFT),
                Action::MarkAll,
            ),
            (
                key(KeyCode::Char('P'), KeyModifiers::SHIFT),
                Action::Packages,
            ),
            (
                key(KeyCode::Char('A'), KeyModifiers::SHIFT),
                Action::AbortWave,
            ),
            (
                key(KeyCode::Char('R'), KeyModifiers::SHIFT),
                Action::ToggleRemovals,
            ),
            (key(KeyCode::Backspace, none), Action::Back),
            (key(KeyCode::Esc, none), Action::Back),
            (
                key(KeyCode::Char('f'), KeyModifiers::CONTROL),
                Action::PageDown,
            ),
            (key(KeyCode::Char('q'), none), Action::Quit),
        ];
        for (event, action) in cases {
            assert_eq!(map.action(&event), Some(action), "{event:?}");
        }
        assert_eq!(map.action(&key(KeyCode::Char('Z'), none)), None);
    }

    #[test]
    fn overrides_replace_defaults() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "update".to_string(),
            vec!["U".to_string(), "F5".to_string()],
        );
        let map = KeyMap::new(&overrides).unwrap();
        assert_eq!(
            map.action(&key(KeyCode::Char('u'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            map.action(&key(KeyCode::Char('U'), KeyModifiers::SHIFT)),
            Some(Action::Update)
        );
        assert_eq!(
            map.action(&key(KeyCode::F(5), KeyModifiers::NONE)),
            Some(Action::Update)
        );
        assert_eq!(map.keys_label(Action::Update), "U/F5");
    }

    #[test]
    fn rejects_unknown_actions_bad_keys_and_conflicts() {
        let one = |name: &str, spec: &str| {
            let mut o = BTreeMap::new();
            o.insert(name.to_string(), vec![spec.to_string()]);
            KeyMap::new(&o).unwrap_err()
        };
        let err = one("updte", "U");
        assert_eq!(err, KeyError::UnknownAction("updte".into()));
        assert!(err.to_string().contains("did you mean 'update'"));
        assert_eq!(one("update", "Hyper-x"), KeyError::BadKey("Hyper-x".into()));
        assert!(matches!(one("update", "j"), KeyError::Conflict { .. }));
        let mut empty = BTreeMap::new();
        empty.insert("quit".to_string(), vec![]);
        assert_eq!(
            KeyMap::new(&empty).unwrap_err(),
            KeyError::Unbound("quit".into())
        );
    }

    #[test]
    fn key_specs_round_trip_through_display() {
        for spec in [
            "j",
            "G",
            "Up",
            "PgDn",
            "Ctrl-u",
            "Shift-Tab",
            "Space",
            "F5",
            "Alt-x",
            "?",
        ] {
            assert_eq!(KeyPress::parse(spec).unwrap().to_string(), spec);
        }
    }

    #[test]
    fn readme_key_table_matches_the_code() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let start = readme
            .find("<!-- keys:start -->")
            .expect("keys:start marker");
        let end = readme.find("<!-- keys:end -->").expect("keys:end marker");
        let table = readme[start + "<!-- keys:start -->".len()..end].trim();
        assert_eq!(
            table,
            KeyMap::defaults().markdown_table().trim(),
            "README's key table is stale; paste KeyMap::markdown_table() between the markers"
        );
    }
}
