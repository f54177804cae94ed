//! Format version 1, written by the first tendhost (the serde of its engine's `HostRecord`),
//! read only to migrate it to the current format.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::disk::{DiskHost, DiskPhase, DiskPlan, DiskState};
use crate::fleet::StateKind;
use crate::inventory::Inventory;
use crate::pkg::{PendingPackage, RebootStatus, UpgradePlan};

#[derive(Debug, Deserialize)]
pub(super) struct V1Host {
    name: String,
    state: V1State,
    #[serde(default)]
    inventory: Option<Inventory>,
    #[serde(default)]
    pending: Vec<PendingPackage>,
    #[serde(default)]
    reboot: RebootStatus,
    #[serde(default)]
    plan: Option<UpgradePlan>,
    #[serde(default)]
    last_refresh: Option<DateTime<Utc>>,
    #[serde(default)]
    last_update: Option<DateTime<Utc>>,
    #[serde(default)]
    last_change: Option<DateTime<Utc>>,
    #[serde(default)]
    recent_output: VecDeque<String>,
    #[serde(default)]
    dropped_output: u64,
}

#[derive(Debug, Deserialize)]
struct V1State {
    phase: V1Phase,
    #[serde(default)]
    retry_count: u32,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum V1Phase {
    Idle,
    Querying,
    PendingUpdates,
    Updating,
    WaitingReboot {
        reason: String,
    },
    Rebooting,
    Verifying,
    Failed {
        previous_state: StateKind,
        error: String,
        failed_at: DateTime<Utc>,
        acknowledged: bool,
    },
}

impl From<V1Host> for DiskHost {
    fn from(old: V1Host) -> Self {
        let phase = match old.state.phase {
            // Version 1 did not keep where a query started; a query changes nothing.
            V1Phase::Idle | V1Phase::Querying => DiskPhase::Idle,
            V1Phase::PendingUpdates => DiskPhase::PendingUpdates,
            V1Phase::Updating => DiskPhase::Updating,
            V1Phase::WaitingReboot { reason } => DiskPhase::WaitingReboot { reason },
            V1Phase::Rebooting => DiskPhase::Rebooting,
            V1Phase::Verifying => DiskPhase::Verifying,
            V1Phase::Failed {
                previous_state,
                error,
                failed_at,
                acknowledged,
            } => DiskPhase::Failed {
                previous_state,
                error,
                failed_at,
                acknowledged,
            },
        };
        // Version 1 wrote an empty list for a host never refreshed.
        let refreshed = old.last_refresh.is_some() || !old.pending.is_empty();
        DiskHost {
            name: old.name,
            state: DiskState {
                phase,
                since: old.last_change,
                retry_count: old.state.retry_count,
                last_update: old.last_update,
                last_error: None,
            },
            inventory: old.inventory,
            pending: refreshed.then_some(old.pending),
            reboot: old.reboot,
            job: None,
            survey: None,
            history: Default::default(),
            health: Vec::new(),
            plan: old.plan.map(|plan| DiskPlan {
                plan,
                dry_run: true,
                scope: Default::default(),
            }),
            stacks: Vec::new(),
            compose_changes: Vec::new(),
            compose_held: Vec::new(),
            rollback: None,
            last_refresh: old.last_refresh,
            recent_output: old.recent_output,
            dropped_output: old.dropped_output,
        }
    }
}
