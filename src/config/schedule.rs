//! `[[schedule]]`: a named wave that runs by itself at a weekly time or a cron expression.
//!
//! The wave options are checked here with the same parsers the command line uses, and kept as
//! written so `--batch wave --schedule NAME` hands them to the wave exactly as if typed.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::raw::{Ctx, join};
use super::{BatchSize, FailureLimit, parse_duration};
use crate::fleet::select::Selectors;
use crate::schedule::When;

const SCHEDULE_KEYS: &[&str] = &[
    "name",
    "when",
    "hosts",
    "groups",
    "tags",
    "exclude",
    "batch_size",
    "delay",
    "max_failures",
    "security_only",
    "packages",
    "dry_run",
    "allow_removals",
    "missed",
    "lock_wait",
];

/// How long a scheduled run waits for another tendhost to release the state lock.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(600);

/// One `[[schedule]]`.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    pub name: String,
    pub when: When,
    /// Which hosts, with the command line's meaning (see [`crate::fleet::select`]).
    pub select: Selectors,
    /// Wave options as written (already checked): `None` means the `[fleet]` default.
    pub batch_size: Option<String>,
    pub delay: Option<String>,
    pub max_failures: Option<String>,
    pub security_only: bool,
    pub packages: Vec<String>,
    pub dry_run: bool,
    /// An upgrade that would remove packages goes ahead (off by default: nobody is there to
    /// read the plan, so such a host is skipped and says why).
    pub allow_removals: bool,
    /// What to do with a run that came due while tendhost was not running.
    pub missed: MissedPolicy,
    /// How long a run waits for the state lock before it gives up (exit 4).
    pub lock_wait: Duration,
}

/// `missed = "run" | "skip"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissedPolicy {
    /// Report it, then run it now.
    Run,
    /// Report it and wait for the next due time.
    Skip,
}

impl Ctx<'_> {
    pub(super) fn read_schedules(&mut self, root: &DeTable<'_>) -> Vec<ScheduleConfig> {
        let mut out: Vec<ScheduleConfig> = Vec::new();
        let Some(value) = root.get("schedule") else {
            return out;
        };
        let DeValue::Array(items) = value.get_ref() else {
            self.type_error(value, "schedule", "an array of tables ([[schedule]])");
            return out;
        };
        for item in items.iter() {
            let DeValue::Table(table) = item.get_ref() else {
                self.type_error(item, "schedule", "a table ([[schedule]])");
                continue;
            };
            if let Some(schedule) = self.read_schedule(table, item.span()) {
                if out.iter().any(|s| s.name == schedule.name) {
                    let span = table.get("name").map_or(item.span(), Spanned::span);
                    self.error(
                        span,
                        "schedule.name",
                        &format!("schedule '{}' is defined twice", schedule.name),
                    );
                    continue;
                }
                out.push(schedule);
            }
        }
        out
    }

    fn read_schedule(&mut self, t: &DeTable<'_>, span: Range<usize>) -> Option<ScheduleConfig> {
        const AT: &str = "schedule";
        self.check_keys(t, AT, SCHEDULE_KEYS);
        let name = match self.string(t, AT, "name") {
            Some(n) if valid_name(n.get_ref()) => Some(n.into_inner()),
            Some(n) => {
                self.error(
                    n.span(),
                    "schedule.name",
                    "a schedule name is letters, digits, '-', '_' or '.' (it names systemd units)",
                );
                None
            }
            None => {
                self.error(
                    span.clone(),
                    "schedule.name",
                    "missing (every schedule needs a name)",
                );
                None
            }
        };
        let when = match self.string(t, AT, "when") {
            Some(w) => match When::parse(w.get_ref()) {
                Ok(when) => Some(when),
                Err(why) => {
                    self.error(w.span(), "schedule.when", &why);
                    None
                }
            },
            None => {
                self.error(span, "schedule.when", "missing (e.g. when = \"Sun 03:00\")");
                None
            }
        };
        let list = |ctx: &mut Self, key| -> Vec<String> {
            ctx.string_list(t, AT, key)
                .into_iter()
                .map(|(s, _)| s)
                .collect()
        };
        let select = Selectors {
            hosts: list(self, "hosts"),
            tags: list(self, "tags"),
            groups: list(self, "groups"),
            exclude: list(self, "exclude"),
        };
        let batch_size = self.checked(t, "batch_size", |s| BatchSize::parse_list(s).map(drop));
        let delay = self.checked(t, "delay", |s| parse_duration(s).map(drop));
        let max_failures = self.checked(t, "max_failures", |s| FailureLimit::parse(s).map(drop));
        let security_only = self.boolean(t, AT, "security_only").unwrap_or(false);
        let dry_run = self.boolean(t, AT, "dry_run").unwrap_or(false);
        let allow_removals = self.boolean(t, AT, "allow_removals").unwrap_or(false);
        let packages = list(self, "packages");
        let missed = match self.string(t, AT, "missed") {
            None => MissedPolicy::Skip,
            Some(m) => match m.get_ref().as_str() {
                "run" => MissedPolicy::Run,
                "skip" => MissedPolicy::Skip,
                other => {
                    self.error(
                        m.span(),
                        "schedule.missed",
                        &format!("'{other}' is not a missed-run policy (use 'run' or 'skip')"),
                    );
                    MissedPolicy::Skip
                }
            },
        };
        let lock_wait = self
            .duration(t, AT, "lock_wait", true)
            .unwrap_or(DEFAULT_LOCK_WAIT);
        Some(ScheduleConfig {
            name: name?,
            when: when?,
            select,
            batch_size,
            delay,
            max_failures,
            security_only,
            packages,
            dry_run,
            allow_removals,
            missed,
            lock_wait,
        })
    }

    /// A wave option written as a string or a number, checked by `check`, kept as text.
    fn checked(
        &mut self,
        t: &DeTable<'_>,
        key: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        let value = t.get(key)?;
        let text = match value.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(i) => i.as_str().to_string(),
            _ => {
                self.type_error(value, &join("schedule", key), "a string or a number");
                return None;
            }
        };
        match check(&text) {
            Ok(()) => Some(text),
            Err(why) => {
                self.error(value.span(), &join("schedule", key), &why);
                None
            }
        }
    }
}

/// Names end up in unit file names (`tendhost-schedule-NAME.timer`) and the state file.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    use super::*;

    #[test]
    fn a_schedule_is_read_with_its_wave_options() {
        let text = r#"
[[host]]
name = "a"
addr = "10.0.0.1"

[[schedule]]
name = "sunday"
when = "Sun 03:00"
tags = ["web"]
batch_size = "1,25%"
delay = "30s"
max_failures = 1
security_only = true
missed = "run"
lock_wait = "2m"
"#;
        let config = Config::from_str("t.toml", text).unwrap();
        let s = &config.schedules[0];
        assert_eq!(s.name, "sunday");
        assert_eq!(s.when.as_str(), "Sun 03:00");
        assert_eq!(s.select.tags, ["web"]);
        assert_eq!(s.batch_size.as_deref(), Some("1,25%"));
        assert_eq!(s.max_failures.as_deref(), Some("1"));
        assert!(s.security_only && !s.dry_run);
        assert_eq!(s.missed, MissedPolicy::Run);
        assert_eq!(s.lock_wait, Duration::from_secs(120));
    }

    #[test]
    fn bad_schedules_name_file_line_column_and_key() {
        let text = "[[schedule]]\nname = \"x\"\nwhen = \"Sun 03:00\"\nmised = \"run\"\nbatch_size = \"0\"\n\n[[schedule]]\nname = \"x\"\nwhen = \"Sun 03:00\"\nmissed = \"later\"\n\n[[schedule]]\nname = \"y\"\nwhen = \"Sun 3am\"\n";
        let err = Config::from_str("t.toml", text).unwrap_err().to_string();
        assert!(err.contains("t.toml:14:8: key 'schedule.when'"), "{err}");
        assert!(
            err.contains("t.toml:4:1: key 'schedule.mised': unknown key (did you mean 'missed'?)"),
            "{err}"
        );
        assert!(
            err.contains("t.toml:5:14: key 'schedule.batch_size'"),
            "{err}"
        );
        assert!(err.contains("t.toml:10:10: key 'schedule.missed'"), "{err}");
        assert!(
            err.contains("t.toml:8:8: key 'schedule.name': schedule 'x' is defined twice"),
            "{err}"
        );
    }
}
