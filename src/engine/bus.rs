//! The messages between the engine and its consumers (TUI, batch). No logic lives here.
//!
//! Jobs go down and can be refused; events come up (their types live in [`crate::fleet`], the
//! vocabulary every consumer shares). A job's rules — which checks and windows apply, whether a
//! refusal is a skip — are decided in one place, `job.rs`.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::pkg::UpgradeScope;

pub use crate::fleet::StateKind;
pub use crate::fleet::event::{
    Event, FailedHost, JobKind, Origin, Outcome, SkippedHost, Stage, StageStatus, WaveProgress,
    WaveStatus,
};

/// A request to one host: what to do, who asked, and where the answer goes.
#[derive(Debug)]
pub struct Job {
    pub kind: JobKind,
    pub origin: Origin,
    /// Answered once the job is done (or refused); `None` when nobody waits (the console,
    /// which learns everything from events).
    pub respond_to: Option<oneshot::Sender<Outcome>>,
    /// Cancelled when the requester (a wave being aborted) wants the host to stop at its next
    /// safe point: between stages, never in the middle of an upgrade.
    pub stop: CancellationToken,
    /// Which updates an `Update` takes and a `Download` fetches (every one by default);
    /// ignored by other kinds.
    pub scope: UpgradeScope,
    /// A wave's `defer_overruns`: an `Update` whose predicted duration would overrun the host's
    /// maintenance window is skipped (deferred to the next window) instead of started late.
    pub defer_overruns: bool,
    /// The wave that asked for this job, as the audit log names it (`store::audit::wave_key`):
    /// the host's records of the job carry it, so history knows which wave they belong to.
    pub wave: Option<Arc<str>>,
    /// A `Rollback` of this one stack (a `compose_paths` entry) only; `None`: every stack with
    /// rollback points.
    pub stack: Option<Arc<str>>,
}

impl Job {
    /// A job nobody waits for.
    pub fn new(kind: JobKind, origin: Origin) -> Job {
        Job {
            kind,
            origin,
            respond_to: None,
            stop: CancellationToken::new(),
            scope: UpgradeScope::default(),
            defer_overruns: false,
            wave: None,
            stack: None,
        }
    }

    /// A job whose outcome arrives on the returned receiver.
    pub fn answered(kind: JobKind, origin: Origin) -> (Job, oneshot::Receiver<Outcome>) {
        let (respond_to, answer) = oneshot::channel();
        let job = Job {
            respond_to: Some(respond_to),
            ..Job::new(kind, origin)
        };
        (job, answer)
    }

    /// An `Update` that takes only the updates in `scope`.
    pub fn scoped(mut self, scope: UpgradeScope) -> Job {
        self.scope = scope;
        self
    }

    /// An `Update` that defers itself when it would overrun the host's window (see
    /// [`Job::defer_overruns`]).
    pub fn deferring_overruns(mut self, defer: bool) -> Job {
        self.defer_overruns = defer;
        self
    }

    /// A job of the wave `key` (see [`Job::wave`]).
    pub fn in_wave(mut self, key: Arc<str>) -> Job {
        self.wave = Some(key);
        self
    }

    /// A `Rollback` of the stack at `path` only (see [`Job::stack`]).
    pub fn of_stack(mut self, path: Option<Arc<str>>) -> Job {
        self.stack = path;
        self
    }

    /// Stops at the next safe point when `stop` is cancelled.
    pub fn stopped_by(mut self, stop: CancellationToken) -> Job {
        self.stop = stop;
        self
    }
}
