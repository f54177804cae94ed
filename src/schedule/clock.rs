//! The console's schedule clock: which schedules are due, which were missed while tendhost was
//! not running, and when to look again. Pure bookkeeping over the config and the remembered
//! state; the console's app starts the waves and writes the state file.
//!
//! A schedule is *armed* from the last due time it answered (started, skipped or missed), so a
//! due time is answered exactly once however often the clock is asked, and one that passed while
//! nobody watched is found at the next start.

use std::collections::HashMap;

use chrono::{DateTime, Local, Utc};

use super::{LastRun, ScheduleState, ScheduleStates};
use crate::config::{MissedPolicy, ScheduleConfig};

/// A run that came due while tendhost was not running, found at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    pub name: String,
    pub due: DateTime<Utc>,
    pub policy: MissedPolicy,
}

/// One schedule as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    pub name: String,
    /// The `when` as written (`Sun 03:00`).
    pub when: String,
    /// The next due time; `None` while paused (or for a time that never comes).
    pub next: Option<DateTime<Utc>>,
    pub paused: bool,
    pub last_run: Option<LastRun>,
}

#[derive(Debug, Clone)]
pub struct ScheduleClock {
    schedules: Vec<ScheduleConfig>,
    states: ScheduleStates,
    /// Per schedule: due times at or before this are answered.
    armed: HashMap<String, DateTime<Utc>>,
}

impl ScheduleClock {
    /// The clock at `now`, with the runs missed since each schedule last answered one.
    ///
    /// A schedule that never answered a due time is armed from `now` (and remembered so, once
    /// the state is saved): nothing before tendhost first watched it counts as missed.
    pub fn start(
        schedules: Vec<ScheduleConfig>,
        mut states: ScheduleStates,
        now: DateTime<Utc>,
    ) -> (ScheduleClock, Vec<Missed>) {
        let mut armed = HashMap::new();
        let mut missed = Vec::new();
        let local_now = now.with_timezone(&Local);
        for schedule in &schedules {
            let state = states.entry(&schedule.name);
            let since = *state.last_due.get_or_insert(now);
            if let Some(due) = schedule
                .when
                .last_due_between(&since.with_timezone(&Local), &local_now)
                && !state.paused
            {
                let due = due.with_timezone(&Utc);
                state.last_due = Some(due);
                missed.push(Missed {
                    name: schedule.name.clone(),
                    due,
                    policy: schedule.missed,
                });
            }
            armed.insert(schedule.name.clone(), now.max(since));
        }
        let clock = ScheduleClock {
            schedules,
            states,
            armed,
        };
        (clock, missed)
    }

    /// Every schedule's next due time, soonest first among those not paused.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.schedules.iter().filter_map(|s| self.next_of(s)).min()
    }

    /// The schedules due at `now`, each with the due time it answers; they are armed past it.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<(String, DateTime<Utc>)> {
        let mut due = Vec::new();
        for schedule in &self.schedules {
            if let Some(next) = self.next_of(schedule)
                && next <= now
            {
                due.push((schedule.name.clone(), next));
            }
        }
        for (name, at) in &due {
            self.armed.insert(name.clone(), now);
            self.states.entry(name).last_due = Some(*at);
        }
        due
    }

    /// Pauses a running schedule or resumes a paused one; returns whether it is now paused.
    /// A resumed schedule is armed from `now`: what came due while it was paused is not run.
    pub fn toggle_pause(&mut self, name: &str, now: DateTime<Utc>) -> Option<bool> {
        self.schedule(name)?;
        let state = self.states.entry(name);
        state.paused = !state.paused;
        let paused = state.paused;
        if !paused {
            self.armed.insert(name.to_string(), now);
        }
        Some(paused)
    }

    /// Remembers how a run of `name` went (or that it was skipped).
    pub fn record(&mut self, name: &str, run: LastRun) {
        self.states.entry(name).last_run = Some(run);
    }

    pub fn schedule(&self, name: &str) -> Option<&ScheduleConfig> {
        self.schedules.iter().find(|s| s.name == name)
    }

    pub fn state(&self, name: &str) -> ScheduleState {
        self.states.get(name)
    }

    /// What the state file should hold now.
    pub fn states(&self) -> &ScheduleStates {
        &self.states
    }

    /// Every schedule, in config order, for the Schedules view and the header.
    pub fn rows(&self) -> Vec<ScheduleRow> {
        self.schedules
            .iter()
            .map(|s| {
                let state = self.states.get(&s.name);
                ScheduleRow {
                    name: s.name.clone(),
                    when: s.when.as_str().to_string(),
                    next: self.next_of(s),
                    paused: state.paused,
                    last_run: state.last_run,
                }
            })
            .collect()
    }

    fn next_of(&self, schedule: &ScheduleConfig) -> Option<DateTime<Utc>> {
        if self.states.get(&schedule.name).paused {
            return None;
        }
        let armed = self.armed.get(&schedule.name)?;
        schedule
            .when
            .next_after(&armed.with_timezone(&Local))
            .map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::config::Config;

    /// Two schedules due every minute and every hour, local time (whatever the test's zone is:
    /// the DST rules are proven in `when_tests`).
    fn schedules(missed: &str) -> Vec<ScheduleConfig> {
        let text = format!(
            "[[host]]\nname = \"a\"\naddr = \"10.0.0.1\"\n\n\
             [[schedule]]\nname = \"minutely\"\nwhen = \"* * * * *\"\nmissed = \"{missed}\"\n\n\
             [[schedule]]\nname = \"hourly\"\nwhen = \"0 * * * *\"\nmissed = \"{missed}\"\n"
        );
        Config::from_str("t.toml", &text).unwrap().schedules
    }

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Local
            .with_ymd_and_hms(2026, 12, 2, h, m, s)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_first_start_misses_nothing_and_each_due_time_is_answered_once() {
        let (mut clock, missed) =
            ScheduleClock::start(schedules("run"), ScheduleStates::default(), at(10, 0, 30));
        assert!(missed.is_empty(), "{missed:?}");
        assert_eq!(clock.next_wake(), Some(at(10, 1, 0)));
        assert!(clock.take_due(at(10, 0, 59)).is_empty());
        let due = clock.take_due(at(10, 1, 2));
        assert_eq!(due, [("minutely".to_string(), at(10, 1, 0))]);
        assert!(clock.take_due(at(10, 1, 30)).is_empty(), "answered once");
        assert_eq!(clock.next_wake(), Some(at(10, 2, 0)));
        // Both fall due at 11:00.
        let due = clock.take_due(at(11, 0, 1));
        let names: Vec<_> = due.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["minutely", "hourly"]);
        assert_eq!(clock.state("hourly").last_due, Some(at(11, 0, 0)));
    }

    #[test]
    fn a_restart_reports_the_latest_missed_run_with_its_policy() {
        for policy in ["run", "skip"] {
            let (mut clock, _) =
                ScheduleClock::start(schedules(policy), ScheduleStates::default(), at(9, 0, 30));
            clock.take_due(at(9, 1, 0));
            let saved = clock.states().clone();
            // tendhost was away from 09:01 to 12:30.
            let (clock, missed) = ScheduleClock::start(schedules(policy), saved, at(12, 30, 30));
            let expected = if policy == "run" {
                MissedPolicy::Run
            } else {
                MissedPolicy::Skip
            };
            assert_eq!(
                missed,
                [
                    Missed {
                        name: "minutely".into(),
                        due: at(12, 30, 0),
                        policy: expected
                    },
                    Missed {
                        name: "hourly".into(),
                        due: at(12, 0, 0),
                        policy: expected
                    },
                ]
            );
            assert_eq!(clock.state("hourly").last_due, Some(at(12, 0, 0)));
            assert_eq!(clock.next_wake(), Some(at(12, 31, 0)));
        }
    }

    #[test]
    fn a_paused_schedule_never_wakes_and_resumes_from_now() {
        let (mut clock, _) =
            ScheduleClock::start(schedules("run"), ScheduleStates::default(), at(10, 0, 30));
        assert_eq!(clock.toggle_pause("minutely", at(10, 0, 40)), Some(true));
        assert_eq!(clock.toggle_pause("hourly", at(10, 0, 40)), Some(true));
        assert_eq!(clock.next_wake(), None);
        assert!(clock.take_due(at(10, 30, 0)).is_empty());
        let rows = clock.rows();
        assert!(
            rows.iter().all(|r| r.paused && r.next.is_none()),
            "{rows:?}"
        );
        // Paused across a restart: its missed runs are not reported either.
        let (mut clock, missed) =
            ScheduleClock::start(schedules("run"), clock.states().clone(), at(12, 0, 30));
        assert!(missed.is_empty(), "{missed:?}");
        assert_eq!(clock.toggle_pause("minutely", at(12, 5, 10)), Some(false));
        assert_eq!(clock.next_wake(), Some(at(12, 6, 0)));
        assert_eq!(clock.toggle_pause("nope", at(12, 5, 10)), None);
    }
}
