//! The console's scheduler: while the console runs, due `[[schedule]]` waves start by
//! themselves through the same engine call as a wave confirmed by hand, and their results land
//! in the schedule state that `tendhost schedule list` and a later start read.
//!
//! The clock (`schedule::ScheduleClock`) decides what is due; this module acts on it: it starts
//! the wave, or skips the run (audited, with its reason) when a wave is already running or a
//! saved wave waits for the operator — a schedule never discards someone's unfinished wave.
//! The state file is written off the UI task, newest state last.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::config::{Config, MissedPolicy};
use crate::engine::EngineHandle;
use crate::engine::bus::{WaveProgress, WaveStatus};
use crate::schedule::{self, LastRun, Missed, ScheduleClock, ScheduleRow, ScheduleStates};
use crate::store::audit::AuditRecord;

/// A schedule's wave in flight, to record its result when it ends.
#[derive(Debug, Clone)]
struct Running {
    name: String,
    wave_id: u64,
    started: DateTime<Utc>,
}

#[derive(Debug)]
pub(crate) struct Scheduler {
    clock: ScheduleClock,
    /// Where the state is saved; `None` for a read-only console, which shows schedules but
    /// never runs, pauses or records them.
    path: Option<PathBuf>,
    running: Option<Running>,
    /// Runs missed while tendhost was not running, answered once the console's loop starts.
    missed: Vec<Missed>,
    /// What the view and the header show: refreshed on every change, so drawing computes nothing.
    rows: Vec<ScheduleRow>,
    /// Save generations: each save carries the next one and a write never replaces a newer one.
    saves: u64,
    written: Arc<Mutex<u64>>,
    /// State writes and audit records on their way, finished ones dropped as new ones start;
    /// [`Self::flush`] waits for them (tests, and anything that must see them done).
    pending: Vec<tokio::task::JoinHandle<()>>,
}

/// What answering the clock did, for the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    pub text: String,
    pub error: bool,
}

impl Scheduler {
    /// The schedules of `config` with their remembered state from `path` (`None`: read-only).
    /// A state file that cannot be read is a warning and starts afresh.
    pub(crate) fn load(
        config: &Config,
        path: Option<PathBuf>,
        now: DateTime<Utc>,
    ) -> (Scheduler, Option<String>) {
        let (states, warning) = match &path {
            None => (ScheduleStates::default(), None),
            Some(path) => match ScheduleStates::load(path) {
                Ok(states) => (states, None),
                Err(err) => (
                    ScheduleStates::default(),
                    Some(format!(
                        "{}; schedules start afresh",
                        crate::errors::chain(&err)
                    )),
                ),
            },
        };
        let (clock, missed) = ScheduleClock::start(config.schedules.clone(), states, now);
        let mut scheduler = Scheduler {
            clock,
            missed: if path.is_some() { missed } else { Vec::new() },
            path,
            running: None,
            rows: Vec::new(),
            saves: 0,
            written: Arc::new(Mutex::new(0)),
            pending: Vec::new(),
        };
        scheduler.rows = scheduler.clock.rows();
        (scheduler, warning)
    }

    /// Whether this console runs schedules (it is not read-only and some are configured).
    pub(crate) fn is_active(&self) -> bool {
        self.path.is_some() && !self.rows.is_empty()
    }

    pub(crate) fn rows(&self) -> &[ScheduleRow] {
        &self.rows
    }

    /// The soonest run to come, for the header.
    pub(crate) fn next(&self) -> Option<(&str, DateTime<Utc>)> {
        self.rows
            .iter()
            .filter_map(|r| r.next.map(|at| (r.name.as_str(), at)))
            .min_by_key(|(_, at)| *at)
    }

    /// When the loop should look at the clock again.
    pub(crate) fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.path.as_ref()?;
        self.clock.next_wake()
    }

    /// The name of the schedule whose wave is running, if one is.
    pub(crate) fn running(&self) -> Option<&str> {
        self.running.as_ref().map(|r| r.name.as_str())
    }

    /// Answers the runs missed while tendhost was not running: each is reported, then run or
    /// skipped by its schedule's `missed` policy.
    pub(crate) fn answer_missed(
        &mut self,
        engine: &EngineHandle,
        now: DateTime<Utc>,
    ) -> Vec<Notice> {
        let missed = std::mem::take(&mut self.missed);
        let mut notices = Vec::new();
        for run in missed {
            let due = local_time(run.due);
            match run.policy {
                MissedPolicy::Skip => {
                    notices.push(self.skip(
                        engine,
                        &run.name,
                        now,
                        &format!("missed run due {due}"),
                    ));
                }
                MissedPolicy::Run => {
                    let why = format!("missed run due {due}, started at start");
                    notices.push(self.start(engine, &run.name, now, &why));
                }
            }
        }
        if !notices.is_empty() {
            self.changed();
        }
        notices
    }

    /// Starts (or skips) every schedule due at `now`.
    pub(crate) fn answer_due(&mut self, engine: &EngineHandle, now: DateTime<Utc>) -> Vec<Notice> {
        if self.path.is_none() {
            return Vec::new();
        }
        let due = self.clock.take_due(now);
        if due.is_empty() {
            return Vec::new();
        }
        let notices: Vec<Notice> = due
            .iter()
            .map(|(name, at)| {
                let why = format!("due {}", local_time(*at));
                self.start(engine, name, now, &why)
            })
            .collect();
        self.changed();
        notices
    }

    /// Folds a wave's progress: a schedule's wave that ended has its result recorded.
    pub(crate) fn on_wave(&mut self, progress: &WaveProgress) {
        let Some(running) = &self.running else { return };
        if running.wave_id != progress.wave_id {
            return;
        }
        let result = match progress.status {
            WaveStatus::Finished if progress.failed > 0 => {
                format!("failed: {} of {} hosts", progress.failed, progress.total)
            }
            WaveStatus::Finished => format!("ok: {} hosts", progress.succeeded),
            WaveStatus::Halted => format!(
                "halted: {}",
                progress.reason.as_deref().unwrap_or("at its threshold")
            ),
            WaveStatus::Aborted => "aborted".to_string(),
            _ => return,
        };
        let (name, started) = (running.name.clone(), running.started);
        self.running = None;
        self.clock.record(
            &name,
            LastRun {
                started,
                finished: Some(Utc::now()),
                result,
            },
        );
        self.changed();
    }

    /// Pauses or resumes `name`; `None` when there is no such schedule or the console is
    /// read-only.
    pub(crate) fn toggle_pause(&mut self, name: &str, now: DateTime<Utc>) -> Option<bool> {
        self.path.as_ref()?;
        let paused = self.clock.toggle_pause(name, now)?;
        self.changed();
        Some(paused)
    }

    fn start(
        &mut self,
        engine: &EngineHandle,
        name: &str,
        now: DateTime<Utc>,
        why: &str,
    ) -> Notice {
        if let Some(running) = &self.running {
            let reason = format!("{why}: schedule '{}' is still running", running.name);
            return self.skip(engine, name, now, &reason);
        }
        if engine.saved_wave().is_some() {
            return self.skip(
                engine,
                name,
                now,
                &format!("{why}: a saved wave waits to be resumed or discarded"),
            );
        }
        let request = match schedule::run::wave_request(engine.config(), name) {
            Ok(request) => request,
            Err(err) => return self.skip(engine, name, now, &format!("{why}: {err}")),
        };
        match engine.start_wave(request) {
            Ok(wave_id) => {
                self.running = Some(Running {
                    name: name.to_string(),
                    wave_id,
                    started: now,
                });
                self.clock.record(
                    name,
                    LastRun {
                        started: now,
                        finished: None,
                        result: "running".into(),
                    },
                );
                tracing::info!("schedule '{name}' started wave {wave_id} ({why})");
                self.audit(
                    engine,
                    AuditRecord::new(
                        "schedule",
                        None,
                        "started",
                        Some(&format!("{name}: wave {wave_id} ({why})")),
                    ),
                );
                Notice {
                    text: format!("schedule '{name}' started wave {wave_id} ({why})"),
                    error: false,
                }
            }
            Err(err) => self.skip(engine, name, now, &format!("{why}: {err}")),
        }
    }

    /// Records a run that did not happen, says so in the log and the audit, and returns the
    /// status-line notice.
    fn skip(
        &mut self,
        engine: &EngineHandle,
        name: &str,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Notice {
        self.clock.record(
            name,
            LastRun {
                started: now,
                finished: Some(now),
                result: format!("skipped: {reason}"),
            },
        );
        tracing::warn!("schedule '{name}' skipped: {reason}");
        self.audit(
            engine,
            AuditRecord::new(
                "schedule",
                None,
                "skipped",
                Some(&format!("{name}: {reason}")),
            ),
        );
        Notice {
            text: format!("schedule '{name}' skipped: {reason}"),
            error: true,
        }
    }

    /// Refreshes the rows and saves the state off the UI task.
    fn changed(&mut self) {
        self.rows = self.clock.rows();
        let Some(path) = self.path.clone() else {
            return;
        };
        self.saves += 1;
        let generation = self.saves;
        let states = self.clock.states().clone();
        let written = self.written.clone();
        self.track(tokio::task::spawn_blocking(move || {
            // One write at a time, and never an older state over a newer one. The lock
            // guards only this file write; nothing awaits under it.
            let mut last = match written.lock() {
                Ok(last) => last,
                Err(poisoned) => poisoned.into_inner(),
            };
            if *last >= generation {
                return;
            }
            if let Err(err) = states.save(&path) {
                tracing::warn!("{}", crate::errors::chain(&err));
            }
            *last = generation;
        }));
    }

    /// Writes `record` (and, for a skip, tells `[[notify]]`) without holding up the UI task.
    fn audit(&mut self, engine: &EngineHandle, record: AuditRecord) {
        let engine = engine.clone();
        self.track(tokio::spawn(async move { engine.audit(record).await }));
    }

    fn track(&mut self, task: tokio::task::JoinHandle<()>) {
        self.pending.retain(|t| !t.is_finished());
        self.pending.push(task);
    }

    /// Waits until every state write and audit record started so far is done.
    pub(crate) async fn flush(&mut self) {
        for task in std::mem::take(&mut self.pending) {
            let _ = task.await;
        }
    }
}

/// `Sun 01 Dec 03:00`, the operator's local time.
pub(crate) fn local_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono::Local)
        .format("%a %d %b %H:%M")
        .to_string()
}
