//! The messages between the engine and its consumers (TUI, batch). No logic lives here.
//!
//! Commands go down and can be refused; events come up, in the past tense, carrying owned data so
//! a receiver never reaches back into the sender. Large payloads sit behind `Arc`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::oneshot;

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
    Full { dry_run: bool },
}

/// A host's answer to a wave step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StepOutcome {
    Succeeded,
    Skipped { reason: String },
    Failed { error: String },
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
    pub skipped: usize,
    pub total: usize,
    pub in_flight: Vec<HostId>,
    /// Why the wave halted, when it did.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveStatus {
    Running,
    Paused,
    Delaying,
    Halted,
    Aborted,
    Finished,
}
