//! What a wave's plan says, as data: per host, per batch and for the wave. Serialized as the
//! JSON lines of `--batch wave --plan`; composed only by [`super::compose`].

use std::time::Duration;

use chrono::{DateTime, Local};
use serde::Serialize;

use crate::config::{HostId, WaveMode};
use crate::fleet::Prediction;
use crate::fleet::forecast::{secs, secs_opt};
use crate::pkg::{ConffilePrompt, PendingPackage, ServiceChange};

/// The plan of one wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WavePlan {
    pub composed_at: DateTime<Local>,
    pub mode: WaveMode,
    /// Every selected host: those in batches in batch order, then those left out.
    pub hosts: Vec<PlanHost>,
    pub batches: Vec<PlanBatch>,
    pub totals: PlanTotals,
}

/// One host of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanHost {
    pub host: HostId,
    /// 1-based (the canary batch is 1); `None` when the wave would not run the host.
    pub batch: Option<usize>,
    /// Whether a dry run (or a read finding nothing pending) says what its update does; the
    /// package fields are empty when not.
    pub known: bool,
    pub upgrades: Vec<PendingPackage>,
    pub installs: Vec<String>,
    pub removals: Vec<String>,
    pub held: Vec<String>,
    pub kept_back: Vec<String>,
    /// `None`: the manager could not tell.
    pub conffiles: Option<Vec<ConffilePrompt>>,
    /// Compose services whose image would change.
    pub compose: Vec<ServiceChange>,
    /// `None`: no reboot expected.
    pub reboot: Option<RebootReason>,
    pub space: Space,
    /// `None`: unknown.
    pub download_bytes: Option<u64>,
    /// `None`: unknown (first run, or no plan).
    pub prediction: Option<Prediction>,
    pub start: Option<DateTime<Local>>,
    pub finish: Option<DateTime<Local>>,
    /// The host's maintenance window, as configured.
    pub window: Option<String>,
    pub status: HostStatus,
}

/// Why a reboot is expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RebootReason {
    /// Packages of the plan that will require it.
    pub packages: Vec<String>,
    /// The host already waits for one.
    pub already_required: bool,
}

/// Free disk against what the upgrade needs (download + growth of the installed size).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Space {
    /// The least free space among the paths read with the plan.
    pub free_bytes: Option<u64>,
    pub need_bytes: Option<u64>,
    /// `Some(false)`: "not enough space"; `None` when either side is unknown.
    pub enough: Option<bool>,
}

/// Where the host stands in the wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HostStatus {
    /// Runs in its batch.
    Runs,
    /// Runs in its batch, but its predicted end is past its window's (the operator overrode
    /// the deferral): "would overrun 'Sat 02:00-06:00' by 25m".
    Overruns { note: String },
    /// Left out: its window is closed when its turn comes, so the wave skips it.
    Outside { note: String },
    /// Left out: it would overrun its window, so the wave defers it to the next one.
    Deferred {
        note: String,
        next_window: Option<DateTime<Local>>,
    },
}

/// One batch: its hosts run in parallel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanBatch {
    /// 1-based.
    pub batch: usize,
    pub hosts: Vec<HostId>,
    pub start: DateTime<Local>,
    /// The slowest host's prediction; hosts of unknown duration count as nothing.
    #[serde(with = "secs")]
    pub predicted: Duration,
    pub finish: DateTime<Local>,
    pub totals: Counts,
}

/// What a set of hosts' updates add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub hosts: usize,
    pub upgrades: usize,
    pub installs: usize,
    pub removals: usize,
    pub reboots: usize,
    /// Known download sizes only.
    pub download_bytes: u64,
    /// Hosts without a plan (run a dry run first).
    pub without_plan: usize,
    /// Hosts whose duration is unknown: the estimate leaves them out.
    pub unknown_duration: usize,
    /// Hosts short of disk space.
    pub short_of_space: usize,
}

/// The wave as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanTotals {
    #[serde(flatten)]
    pub counts: Counts,
    pub batches: usize,
    /// Batches one after another with the delay between them.
    #[serde(with = "secs")]
    pub predicted: Duration,
    #[serde(with = "secs_opt")]
    pub delay: Option<Duration>,
    pub estimated_finish: DateTime<Local>,
    pub deferred: usize,
    pub outside_window: usize,
}
