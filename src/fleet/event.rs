//! What happened to the fleet, as every consumer (snapshot, batch, console) receives it, and the
//! vocabulary of jobs those events talk about. No logic beyond naming lives here.
//!
//! Events are in the past tense and carry owned data, so a receiver never reaches back into the
//! sender; large payloads sit behind `Arc`. A state change carries the host's whole new
//! [`HostState`], so no consumer rebuilds it from the move.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::job::RemoteJob;
use super::state::{HostState, StateKind};
use crate::config::HostId;
use crate::inventory::Inventory;
use crate::pkg::{
    HeldService, PendingPackage, RebootStatus, RollbackStep, ServiceChange, StackReport,
    UpgradePlan, UpgradeScope,
};
use crate::remote::Stream;

/// What a job asks of one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum JobKind {
    /// Read inventory and pending packages (package lists by `[fleet] lists_max_age`).
    Refresh,
    /// Refresh the package lists, then read everything afresh: the operator's "look again".
    RefreshLists,
    /// The host update pipeline: pre-check → compose check → packages → compose stacks → reboot
    /// if required and allowed → verify. `dry_run` only plans the packages and checks the stacks;
    /// `allow_removals` is the requester's consent to an upgrade that removes packages.
    Update {
        dry_run: bool,
        allow_removals: bool,
    },
    /// Reboot a host waiting for it, then verify.
    Reboot,
    /// Refresh the package lists and download what an upgrade would install, changing nothing
    /// installed (`apt-get -d`, `dnf --downloadonly`): a wave sends it to every selected host
    /// at its start, so each host's turn only installs. A failed download fails nothing.
    Download,
    Retry,
    Acknowledge,
    /// Repair a half-configured package database (`dpkg --configure -a`, then `apt-get -f
    /// install`; dnf: what dnf can undo, see `pkg::PackageManager::repair`) as a detached job,
    /// then check it again. Taken by a failed host or a resting one, never a busy one.
    Repair,
    /// Find out how a detached job left by an earlier run ended, following it if it still runs
    /// (see `remote::job`). Started by the host's supervisor itself, never by an operator.
    Reattach,
    /// Put compose services back on the images they ran before the last update that changed
    /// them (`Job::stack` names one stack, else every stack with rollback points), `up -d`
    /// them, and prove they run them. `dry_run` only asks the host what that would do.
    Rollback {
        dry_run: bool,
    },
}

/// Who asked: decides which checks and window rules apply and whether a refusal is a skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "origin", content = "id", rename_all = "snake_case")]
pub enum Origin {
    /// The operator, from the console.
    Console,
    /// A wave, by its id.
    Wave(u64),
    /// `--batch`.
    Batch,
    /// The periodic refresh.
    Schedule,
}

/// How a job ended, as its requester sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// The host would not take the job (busy, failed, in the wrong state, no consent).
    Refused {
        reason: String,
    },
    /// Nothing was done, on purpose (outside the window, nothing to reboot).
    Skipped {
        reason: String,
    },
    Failed {
        error: String,
    },
}

/// One stage of the host update pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// A wave's pre-download of the packages an upgrade will need (see [`JobKind::Download`]).
    Download,
    PreCheck,
    /// Pulling (when `pull_before_update`) and comparing every compose stack: a read, run before
    /// anything changes, so a stack that cannot be pulled stops the update untouched.
    ComposeCheck,
    Packages,
    /// `up -d` of the services whose image changed, and proving they run it.
    Compose,
    Reboot,
    Verify,
    /// The repair job (see [`JobKind::Repair`]) and its re-check.
    Repair,
    /// A compose rollback (see [`JobKind::Rollback`]): re-tag, `up -d`, prove.
    Rollback,
}

/// Where a stage stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StageStatus {
    Started,
    Done,
    Skipped { reason: Arc<str> },
    Failed { error: Arc<str> },
}

/// Something that already happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// The host's state changed (or its data did: an acknowledgement, a failed read). `to` is
    /// `state.kind()`, repeated so a reader can match on it.
    StateChanged {
        host: HostId,
        from: StateKind,
        to: StateKind,
        state: Arc<HostState>,
    },
    Output {
        host: HostId,
        stream: Stream,
        line: Arc<str>,
    },
    /// The host's detached job as it stands now (written ahead before it starts, its log's
    /// offset as it streams, how it ended), or `None` once the step that ran it has settled.
    Job {
        host: HostId,
        job: Option<Arc<RemoteJob>>,
    },
    InventoryRefreshed {
        host: HostId,
        inventory: Arc<Inventory>,
    },
    PendingRefreshed {
        host: HostId,
        packages: Arc<[PendingPackage]>,
        reboot: RebootStatus,
    },
    /// A survey of the host answered (read afresh or "unchanged"): what the next one compares
    /// with.
    Surveyed {
        host: HostId,
        mark: Arc<super::host::SurveyMark>,
    },
    /// The result of a dry run or of a real upgrade's plan.
    Planned {
        host: HostId,
        plan: Arc<UpgradePlan>,
        dry_run: bool,
        /// The updates the plan is of: a plan of "everything" says nothing of a security-only
        /// wave, and the other way round.
        scope: UpgradeScope,
    },
    /// The host's compose stacks as last seen; `updated` when an update just ran over them (then
    /// the changed services of the `recreated` ones are the update's result). Not `updated`, the
    /// changed services are what an update would change (a dry run's or a refresh's finding).
    Stacks {
        host: HostId,
        stacks: Arc<[StackReport]>,
        updated: bool,
    },
    /// What the compose check found an update must leave for later (rolled back from, or too
    /// new for `min_image_age`): replaces what the last check said.
    Held {
        host: HostId,
        held: Arc<[HeldService]>,
    },
    /// What a rollback does (or, `dry_run`, would do), per service, as the host answered.
    RollbackPlanned {
        host: HostId,
        steps: Arc<[RollbackStep]>,
        dry_run: bool,
    },
    /// A rollback of `undone` (each the change an update made) is about to run: the images
    /// they moved to are rejected from now on (see `pkg::RollbackLedger`), even if the rollback
    /// itself fails.
    RollingBack {
        host: HostId,
        undone: Arc<[ServiceChange]>,
        at: DateTime<Utc>,
    },
    Stage {
        host: HostId,
        stage: Stage,
        status: StageStatus,
    },
    Refused {
        host: HostId,
        job: JobKind,
        reason: Arc<str>,
    },
    Wave(WaveProgress),
    /// The step that did real work (an upgrade, a reboot) measured how long it took: the
    /// host's history, which predicts its next update.
    Measured {
        host: HostId,
        measurement: super::history::Measurement,
    },
    /// The unfinished wave's record as it now stands (`None`: no wave to resume any more),
    /// for the snapshot: sent by the wave runner as it advances, folded by the hub.
    WaveSaved(Option<Arc<crate::store::snapshot::SavedWave>>),
    /// A health probe's report (see `crate::health`): one per phase run, its gating failures
    /// included. The supervisor also writes it to the audit log.
    Checked {
        host: HostId,
        report: Arc<crate::health::HealthReport>,
    },
    /// One host of a wave is done (sent just before the matching `Wave` progress).
    WaveHostFinished {
        wave_id: u64,
        host: HostId,
        outcome: Outcome,
    },
}

/// Where a running wave stands.
#[derive(Debug, Clone, Serialize)]
pub struct WaveProgress {
    pub wave_id: u64,
    pub status: WaveStatus,
    /// 1-based index of the batch in flight.
    pub batch: usize,
    pub batches: usize,
    pub done: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Hosts that did not run (skipped or refused) and were replaced in their batch; always
    /// `skipped_hosts.len()`.
    pub skipped: usize,
    pub total: usize,
    pub in_flight: Vec<HostId>,
    /// Why the wave halted, when it did.
    pub reason: Option<String>,
    /// Every host skipped so far, with its reason, in the order they answered. Behind an `Arc`:
    /// the list only grows, and every progress event carries it. Not in the JSON of each progress
    /// event (each skip already streams as a `wave_host` line); batch lists it once, in the summary.
    #[serde(skip)]
    pub skipped_hosts: Arc<[SkippedHost]>,
    /// Every host whose failure the wave still counts, with its error, in the order they
    /// failed: what the operator is shown at the threshold. Behind an `Arc` like `skipped_hosts`,
    /// and like it not in each progress event's JSON (each failure streams as a `wave_host` line).
    #[serde(skip)]
    pub failed_hosts: Arc<[FailedHost]>,
}

/// A host that failed its wave step, and how ("upgrade: dpkg returned an error code (1)").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedHost {
    pub host: HostId,
    pub error: Arc<str>,
}

/// A host a wave did not run, and why ("outside maintenance window 'Sat 02:00-06:00'").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedHost {
    pub host: HostId,
    pub reason: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveStatus {
    Started,
    Running,
    Paused,
    Delaying,
    /// Paused at its threshold (more failures than `max_failures`, or a batch without a
    /// success) with `on_threshold = "pause"`: no host starts until the operator decides.
    Threshold,
    Halted,
    Aborted,
    Finished,
}

impl WaveStatus {
    /// The lowercase name used in JSON, the batch table and the metrics (`finished`).
    pub fn as_str(self) -> &'static str {
        match self {
            WaveStatus::Started => "started",
            WaveStatus::Running => "running",
            WaveStatus::Paused => "paused",
            WaveStatus::Delaying => "delaying",
            WaveStatus::Threshold => "threshold",
            WaveStatus::Halted => "halted",
            WaveStatus::Aborted => "aborted",
            WaveStatus::Finished => "finished",
        }
    }
}

impl JobKind {
    /// The command's name in messages and JSON (`update`, `reboot`…).
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Refresh => "refresh",
            JobKind::RefreshLists => "refresh_lists",
            JobKind::Update { .. } => "update",
            JobKind::Reboot => "reboot",
            JobKind::Download => "download",
            JobKind::Retry => "retry",
            JobKind::Acknowledge => "acknowledge",
            JobKind::Reattach => "reattach",
            JobKind::Repair => "repair",
            JobKind::Rollback { .. } => "rollback",
        }
    }

    /// The verb the console's confirmation and messages use.
    pub fn verb(self) -> &'static str {
        match self {
            JobKind::Update { dry_run: true, .. } => "dry-run update",
            JobKind::Rollback { dry_run: true } => "dry-run rollback",
            other => other.name(),
        }
    }
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed { .. })
    }
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Download => "download",
            Stage::PreCheck => "pre-check",
            Stage::ComposeCheck => "compose check",
            Stage::Packages => "packages",
            Stage::Compose => "compose",
            Stage::Reboot => "reboot",
            Stage::Verify => "verify",
            Stage::Repair => "repair",
            Stage::Rollback => "rollback",
        }
    }
}

impl Event {
    /// The host this event is about, if it is about one.
    pub fn host(&self) -> Option<&HostId> {
        match self {
            Event::StateChanged { host, .. }
            | Event::Output { host, .. }
            | Event::Job { host, .. }
            | Event::InventoryRefreshed { host, .. }
            | Event::PendingRefreshed { host, .. }
            | Event::Surveyed { host, .. }
            | Event::Planned { host, .. }
            | Event::Stacks { host, .. }
            | Event::RollbackPlanned { host, .. }
            | Event::Held { host, .. }
            | Event::RollingBack { host, .. }
            | Event::Stage { host, .. }
            | Event::Refused { host, .. }
            | Event::Measured { host, .. }
            | Event::Checked { host, .. }
            | Event::WaveHostFinished { host, .. } => Some(host),
            Event::Wave(_) | Event::WaveSaved(_) => None,
        }
    }
}
