//! The messages between the engine and its consumers (TUI, batch). No logic lives here.
//!
//! Commands go down and can be refused; events come up, in the past tense, carrying owned data so
//! a receiver never reaches back into the sender. Large payloads sit behind `Arc`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::config::HostId;
use crate::inventory::Inventory;
use crate::pkg::{PendingPackage, RebootStatus, UpgradePlan};
use crate::remote::Stream;

/// The states of DESIGN.md §5, without their data.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    Idle,
    Querying,
    PendingUpdates,
    Updating,
    WaitingReboot,
    Rebooting,
    Verifying,
    Failed,
}

/// A request to one host. The supervisor may refuse it with a reason.
#[derive(Debug)]
pub enum HostCommand {
    /// Query inventory and pending packages.
    Refresh,
    Update {
        dry_run: bool,
        allow_removals: bool,
    },
    Reboot,
    Retry,
    Acknowledge,
    /// Sent by a wave: run one step and answer on `respond_to`.
    RunStep {
        step: WaveStep,
        respond_to: oneshot::Sender<StepOutcome>,
        /// Cancelled when the caller (a wave being aborted) wants the host to stop at the next
        /// safe point: between steps, never in the middle of an upgrade.
        stop: CancellationToken,
    },
}

/// What kind of command was refused (for messages and JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    Refresh,
    Update,
    Reboot,
    Retry,
    Acknowledge,
    WaveStep,
}

/// One step a wave asks of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveStep {
    /// pre-check → refresh → update → reboot if required and allowed → verify.
    Full { dry_run: bool, allow_removals: bool },
    /// Batch `inventory`: refresh inventory and pending packages.
    Refresh,
    /// Batch `update`: refresh → update → reboot if required and allowed → verify.
    Update { dry_run: bool, allow_removals: bool },
    /// Batch `reboot`: reboot a host waiting for it, then verify.
    Reboot,
    /// Batch `retry`.
    Retry,
    /// Batch `ack`.
    Acknowledge,
}

/// A host's answer to a wave step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StepOutcome {
    Succeeded,
    /// The command was refused (the host was busy, failed, or in the wrong state).
    Refused {
        reason: String,
    },
    Skipped {
        reason: String,
    },
    Failed {
        error: String,
    },
}

/// Something that already happened.
#[derive(Debug, Clone)]
pub enum Event {
    StateChanged {
        host: HostId,
        from: StateKind,
        to: StateKind,
        at: DateTime<Utc>,
        /// Set when `to` is `Failed` (the error) or `WaitingReboot` (why it waits).
        reason: Option<Arc<str>>,
    },
    Output {
        host: HostId,
        stream: Stream,
        line: Arc<str>,
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
    /// The result of a dry run or of a real upgrade's plan.
    Planned {
        host: HostId,
        plan: Arc<UpgradePlan>,
        dry_run: bool,
    },
    Refused {
        host: HostId,
        command: CommandKind,
        reason: Arc<str>,
    },
    Acknowledged {
        host: HostId,
    },
    Wave(WaveProgress),
    /// One host of a wave is done (sent just before the matching `Wave` progress).
    WaveHostFinished {
        wave_id: u64,
        host: HostId,
        outcome: StepOutcome,
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
    Halted,
    Aborted,
    Finished,
}

impl StateKind {
    /// The lowercase name used in JSON and messages (`pending_updates`).
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Idle => "idle",
            StateKind::Querying => "querying",
            StateKind::PendingUpdates => "pending_updates",
            StateKind::Updating => "updating",
            StateKind::WaitingReboot => "waiting_reboot",
            StateKind::Rebooting => "rebooting",
            StateKind::Verifying => "verifying",
            StateKind::Failed => "failed",
        }
    }

    /// A step in progress: the host must not be given another mutating command.
    pub fn is_busy(self) -> bool {
        matches!(
            self,
            StateKind::Querying | StateKind::Updating | StateKind::Rebooting | StateKind::Verifying
        )
    }
}

impl std::fmt::Display for StateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str().replace('_', " "))
    }
}

impl HostCommand {
    pub fn kind(&self) -> CommandKind {
        match self {
            HostCommand::Refresh => CommandKind::Refresh,
            HostCommand::Update { .. } => CommandKind::Update,
            HostCommand::Reboot => CommandKind::Reboot,
            HostCommand::Retry => CommandKind::Retry,
            HostCommand::Acknowledge => CommandKind::Acknowledge,
            HostCommand::RunStep { .. } => CommandKind::WaveStep,
        }
    }
}

impl StepOutcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, StepOutcome::Failed { .. })
    }
}
