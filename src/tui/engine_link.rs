//! The adapter between the console and the engine: `UiRequest` → `EngineHandle` calls, and the
//! engine's restored view at start → the first `FleetModel`.
//!
//! Every call here is non-blocking (`try_send`, or a quick lock inside the engine), so the UI task
//! never waits on a host. Nothing here draws or reads keys.

use crate::engine::state::Phase;
use crate::engine::{EngineHandle, HostCommand, HostRecord, WaveRequest};
use crate::tui::model::FleetModel;
use crate::tui::request::{EngineLink, HostAction, UiRequest};

impl EngineLink for EngineHandle {
    fn send(&mut self, request: UiRequest) -> Result<(), String> {
        match request {
            UiRequest::Host { host, action } => self
                .try_send(&host, command(action))
                .map_err(|err| err.to_string()),
            UiRequest::StartWave(spec) => self
                .start_wave(WaveRequest {
                    hosts: spec.hosts,
                    sizes: spec.batch_sizes,
                    delay: spec.delay,
                    max_failures: spec.max_failures,
                    dry_run: spec.dry_run,
                    // Removals need the host's own consent (`allow_removals` in its policy).
                    allow_removals: false,
                })
                .map(|_| ()),
            UiRequest::PauseWave => self.pause_wave(),
            UiRequest::ResumeWave => self.resume_wave(),
            UiRequest::AbortWave => self.abort_wave(),
        }
    }
}

fn command(action: HostAction) -> HostCommand {
    match action {
        HostAction::Refresh => HostCommand::Refresh,
        HostAction::Update { dry_run } => HostCommand::Update {
            dry_run,
            allow_removals: false,
        },
        HostAction::Reboot => HostCommand::Reboot,
        HostAction::Retry => HostCommand::Retry,
        HostAction::Acknowledge => HostCommand::Acknowledge,
    }
}

/// Fills the model from what the engine restored, so the screen opens on yesterday's picture.
pub fn seed(model: &mut FleetModel, records: &[HostRecord]) {
    for record in records {
        let (error, acknowledged) = match &record.state.phase {
            Phase::Failed(info) => (Some(info.error.clone()), info.acknowledged),
            _ => (None, false),
        };
        model.seed_state(&record.name, record.state.kind(), error);
        let Some(row) = model.seed_row(&record.name) else {
            continue;
        };
        row.acknowledged = acknowledged;
        if let Phase::WaitingReboot { reason } = &record.state.phase {
            row.reboot_reason = Some(reason.clone());
        }
        row.inventory = record.inventory.clone();
        // A host never refreshed has an empty list; show "—" rather than a misleading 0.
        if record.last_refresh.is_some() || !record.pending.is_empty() {
            row.security = record.pending.iter().filter(|p| p.security).count();
            row.pending = Some(record.pending.clone());
        }
        row.reboot = record.reboot.clone();
        row.plan = record.plan.clone().map(|plan| (plan, true));
        row.last_update = record.last_update;
        row.since = record.last_change;
        row.log.restore(
            record.recent_output.iter().map(String::as_str),
            record.dropped_output,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::engine::bus::StateKind;
    use crate::engine::state::FailedInfo;
    use crate::tui::testing::fleet;

    #[test]
    fn seeds_states_errors_pending_and_output_from_the_snapshot() {
        let mut model = fleet(2);
        let mut failed = HostRecord::new("host-01".into());
        failed.state.phase = Phase::Failed(FailedInfo {
            previous_state: StateKind::Updating,
            error: "interrupted during updating".into(),
            failed_at: Utc::now(),
            acknowledged: true,
        });
        failed.recent_output = ["a", "b"].iter().map(|s| s.to_string()).collect();
        failed.dropped_output = 7;
        let mut pending = HostRecord::new("host-00".into());
        pending.state.phase = Phase::PendingUpdates;
        pending.last_refresh = Some(Utc::now());
        pending.pending = Arc::from(vec![crate::pkg::PendingPackage {
            name: "openssl".into(),
            from: "1".into(),
            to: "2".into(),
            security: true,
        }]);
        seed(&mut model, &[pending, failed]);
        assert_eq!(model.total(StateKind::Failed), 1);
        assert_eq!(model.total(StateKind::PendingUpdates), 1);
        assert_eq!(model.total(StateKind::Idle), 0);
        let host = model.host(1).unwrap();
        assert!(host.acknowledged);
        assert_eq!(host.error.as_deref(), Some("interrupted during updating"));
        assert_eq!(host.log.len(), 2);
        assert_eq!(host.log.dropped(), 7);
        assert_eq!(model.host(0).unwrap().security, 1);
    }
}
