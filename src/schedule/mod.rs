//! Schedules (`[[schedule]]`): when a configured wave is due, what was last run and whether it is
//! paused (state kept under the state dir), and the systemd units that run it headless.
//!
//! Pure time logic lives in `when.rs`; nothing here starts a wave: the console and `--batch wave
//! --schedule NAME` do, through the same engine as a wave typed by hand.

mod clock;
mod when;

pub use clock::{Missed, ScheduleClock, ScheduleRow};

pub use when::When;
mod state;
pub mod systemd;

pub use state::{LastRun, STATE_FILE, ScheduleState, ScheduleStates, StateError};
pub mod commands;
pub mod run;

use chrono::{DateTime, Utc};

use crate::exit::Exit;
use crate::store::Paths;

/// Whether schedule `name` is paused (from the console's Schedules view). A state file that
/// cannot be read is not a pause: the run goes ahead and `record_batch_run` reports the file.
pub fn is_paused(paths: &Paths, name: &str) -> bool {
    ScheduleStates::load(&paths.state_dir.join(STATE_FILE)).is_ok_and(|s| s.get(name).paused)
}

/// A `--batch wave --schedule NAME` run that did not happen because the schedule is paused:
/// remembered in the schedule state and audited, exactly as the console records its skips.
pub fn record_batch_skip(config: &crate::config::Config, paths: &Paths, name: &str, reason: &str) {
    let now = Utc::now();
    let path = paths.state_dir.join(STATE_FILE);
    let saved = ScheduleStates::load(&path).and_then(|mut states| {
        let entry = states.entry(name);
        entry.last_due = Some(now);
        entry.last_run = Some(LastRun {
            started: now,
            finished: Some(now),
            result: format!("skipped: {reason}"),
        });
        states.save(&path)
    });
    if let Err(err) = saved {
        crate::stdio::err_line(format!(
            "tendhost: warning: schedule '{name}': {}",
            crate::errors::chain(&err)
        ));
    }
    audit_batch_skip(config, paths, name, reason);
}

/// Audits a scheduled run that did not happen as `schedule skipped`. Alone (without touching
/// the schedule state) when another tendhost holds the state lock: that one owns the file.
pub fn audit_batch_skip(config: &crate::config::Config, paths: &Paths, name: &str, reason: &str) {
    let record = crate::store::audit::AuditRecord::new(
        "schedule",
        None,
        "skipped",
        Some(&format!("{name}: {reason}")),
    );
    if let Err(err) = crate::store::audit::append_one(config, paths, record) {
        crate::stdio::err_line(format!("tendhost: warning: {err}"));
    }
    // The engine turns the console's skip records into notices; here there is no engine.
    crate::notify::deliver_now(
        config,
        crate::notify::Notice::new(
            crate::config::NoticeKind::ScheduleSkipped,
            format!("schedule {name} skipped: {reason}"),
            Vec::new(),
        ),
    );
}

/// Remembers a `--batch wave --schedule NAME` run (its start, end and result) for `schedule
/// list` and the console; a failure to write is a warning, never the run's result.
pub fn record_batch_run(paths: &Paths, name: &str, started: DateTime<Utc>, exit: Exit) {
    let path = paths.state_dir.join(STATE_FILE);
    let result = match exit {
        Exit::Ok => "ok",
        Exit::HostFailed => "failed",
        Exit::Interrupted => "interrupted",
        Exit::Locked => "locked",
        Exit::Usage => "usage error",
        _ => "paused",
    };
    let saved = ScheduleStates::load(&path).and_then(|mut states| {
        let entry = states.entry(name);
        entry.last_due = Some(started);
        entry.last_run = Some(LastRun {
            started,
            finished: Some(Utc::now()),
            result: result.into(),
        });
        states.save(&path)
    });
    if let Err(err) = saved {
        tracing::warn!("schedule '{name}': {}", crate::errors::chain(&err));
        crate::stdio::err_line(format!(
            "tendhost: warning: schedule '{name}': {}",
            crate::errors::chain(&err)
        ));
    }
}
