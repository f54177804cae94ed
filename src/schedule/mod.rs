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
