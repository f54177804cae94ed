//! The snapshot's own on-disk types, format version 2. They mirror the host model field by field
//! but belong to the store: an internal enum of the engine or the console can change without the
//! file format changing under it, and a format change is a new version with a migration.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SavedHost;
use crate::fleet::{
    FailedInfo, HostHistory, HostModel, HostState, LastError, Phase, Plan, RemoteJob, StateKind,
    SurveyMark,
};
use crate::health::HealthReport;
use crate::inventory::Inventory;
use crate::pkg::{
    HeldService, PendingPackage, RebootStatus, RollbackLedger, ServiceChange, StackReport,
    UpgradePlan, UpgradeScope,
};

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct DiskHost {
    pub name: String,
    pub state: DiskState,
    #[serde(default)]
    pub inventory: Option<Inventory>,
    /// `None`: never refreshed.
    #[serde(default)]
    pub pending: Option<Vec<PendingPackage>>,
    #[serde(default)]
    pub reboot: RebootStatus,
    #[serde(default)]
    pub plan: Option<DiskPlan>,
    #[serde(default)]
    pub stacks: Vec<StackReport>,
    #[serde(default)]
    pub compose_changes: Vec<ServiceChange>,
    #[serde(default)]
    pub compose_held: Vec<HeldService>,
    /// Rollback points and rejected images; absent from snapshots written before rollbacks,
    /// whose `compose_changes` then stand in for the points.
    #[serde(default)]
    pub rollback: Option<RollbackLedger>,
    #[serde(default)]
    pub last_refresh: Option<DateTime<Utc>>,
    #[serde(default)]
    pub recent_output: VecDeque<String>,
    #[serde(default)]
    pub dropped_output: u64,
    /// The detached job in flight when this was saved: what a restarted tendhost asks about.
    #[serde(default)]
    pub job: Option<RemoteJob>,
    /// What the next read compares with: a restarted tendhost asks each host only whether
    /// anything changed.
    #[serde(default)]
    pub survey: Option<SurveyMark>,
    /// The host's recent upgrade and reboot durations (absent from snapshots written before
    /// tendhost measured them).
    #[serde(default)]
    pub history: HostHistory,
    /// The last health report of each phase: "needs repair" and the failed-unit baseline
    /// survive a restart.
    #[serde(default)]
    pub health: Vec<HealthReport>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct DiskState {
    pub phase: DiskPhase,
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub retry_count: u32,
    #[serde(default)]
    pub last_update: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_error: Option<DiskLastError>,
}

/// The phase as written: a `state` tag (`"state":"updating"`) plus its data.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(super) enum DiskPhase {
    Idle,
    /// Caught reading; `resting` is where it returns.
    Querying {
        resting: Box<DiskPhase>,
    },
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

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct DiskLastError {
    pub error: String,
    pub at: DateTime<Utc>,
    pub tries: u32,
    pub transient: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct DiskPlan {
    pub plan: UpgradePlan,
    pub dry_run: bool,
    #[serde(default)]
    pub scope: UpgradeScope,
}

impl From<&Phase> for DiskPhase {
    fn from(phase: &Phase) -> Self {
        match phase {
            Phase::Idle => DiskPhase::Idle,
            Phase::Querying { resting } => DiskPhase::Querying {
                resting: Box::new(DiskPhase::from(&**resting)),
            },
            Phase::PendingUpdates => DiskPhase::PendingUpdates,
            Phase::Updating => DiskPhase::Updating,
            Phase::WaitingReboot { reason } => DiskPhase::WaitingReboot {
                reason: reason.to_string(),
            },
            Phase::Rebooting => DiskPhase::Rebooting,
            Phase::Verifying => DiskPhase::Verifying,
            Phase::Failed(info) => DiskPhase::Failed {
                previous_state: info.previous_state,
                error: info.error.to_string(),
                failed_at: info.failed_at,
                acknowledged: info.acknowledged,
            },
        }
    }
}

impl From<DiskPhase> for Phase {
    fn from(phase: DiskPhase) -> Self {
        match phase {
            DiskPhase::Idle => Phase::Idle,
            DiskPhase::Querying { resting } => Phase::Querying {
                resting: Box::new(Phase::from(*resting)),
            },
            DiskPhase::PendingUpdates => Phase::PendingUpdates,
            DiskPhase::Updating => Phase::Updating,
            DiskPhase::WaitingReboot { reason } => Phase::WaitingReboot {
                reason: reason.into(),
            },
            DiskPhase::Rebooting => Phase::Rebooting,
            DiskPhase::Verifying => Phase::Verifying,
            DiskPhase::Failed {
                previous_state,
                error,
                failed_at,
                acknowledged,
            } => Phase::Failed(FailedInfo {
                previous_state,
                error: error.into(),
                failed_at,
                acknowledged,
            }),
        }
    }
}

impl From<&SavedHost> for DiskHost {
    fn from(saved: &SavedHost) -> Self {
        let model = &saved.model;
        let state = &model.state;
        DiskHost {
            name: model.name.to_string(),
            state: DiskState {
                phase: DiskPhase::from(&state.phase),
                since: state.since,
                retry_count: state.retry_count,
                last_update: state.last_update,
                last_error: state.last_error.as_ref().map(|e| DiskLastError {
                    error: e.error.to_string(),
                    at: e.at,
                    tries: e.tries,
                    transient: e.transient,
                }),
            },
            inventory: model.inventory.as_deref().cloned(),
            pending: model.pending.as_ref().map(|p| p.to_vec()),
            reboot: model.reboot.clone(),
            plan: model.plan.as_ref().map(|p| DiskPlan {
                plan: (*p.plan).clone(),
                dry_run: p.dry_run,
                scope: p.scope.clone(),
            }),
            stacks: model.stacks.to_vec(),
            compose_changes: model.compose_changes.to_vec(),
            compose_held: model.compose_held.to_vec(),
            rollback: Some(model.rollback.clone()),
            last_refresh: model.last_refresh,
            recent_output: saved.recent_output.clone(),
            dropped_output: saved.dropped_output,
            job: model.job.as_deref().cloned(),
            survey: model.survey.as_deref().cloned(),
            history: model.history.clone(),
            health: model.health.iter().map(|r| (**r).clone()).collect(),
        }
    }
}

impl From<DiskHost> for SavedHost {
    fn from(disk: DiskHost) -> Self {
        let state = disk.state;
        let mut model = HostModel::new(disk.name.into());
        model.state = Arc::new(HostState {
            phase: Phase::from(state.phase),
            since: state.since,
            retry_count: state.retry_count,
            last_update: state.last_update,
            last_error: state.last_error.map(|e| LastError {
                error: e.error.into(),
                at: e.at,
                tries: e.tries,
                transient: e.transient,
            }),
        });
        model.inventory = disk.inventory.map(Arc::new);
        model.pending = disk.pending.map(Arc::from);
        model.reboot = disk.reboot;
        model.plan = disk.plan.map(|p| Plan {
            plan: Arc::new(p.plan),
            dry_run: p.dry_run,
            scope: p.scope,
        });
        model.stacks = Arc::from(disk.stacks);
        model.rollback = disk.rollback.unwrap_or_else(|| RollbackLedger {
            points: disk
                .compose_changes
                .iter()
                .filter(|c| c.from.is_some())
                .cloned()
                .collect(),
            rejected: Vec::new(),
        });
        model.compose_changes = Arc::from(disk.compose_changes);
        model.compose_held = Arc::from(disk.compose_held);
        model.last_refresh = disk.last_refresh;
        // An id that is not one tendhost makes would become a path on the host: drop it.
        model.job = disk.job.filter(|j| j.id.is_valid()).map(Arc::new);
        model.survey = disk.survey.map(Arc::new);
        model.history = disk.history;
        for report in disk.health {
            model.record_health(Arc::new(report));
        }
        SavedHost {
            model,
            recent_output: disk.recent_output,
            dropped_output: disk.dropped_output,
        }
    }
}
