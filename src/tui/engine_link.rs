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
                    allow_removals: spec.allow_removals,
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
        HostAction::Update {
            dry_run,
            allow_removals,
        } => HostCommand::Update {
            dry_run,
            allow_removals,
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

    #[test]
    fn consent_to_removals_reaches_the_host_command() {
        for allow in [false, true] {
            let sent = command(HostAction::Update {
                dry_run: false,
                allow_removals: allow,
            });
            assert!(
                matches!(
                    sent,
                    HostCommand::Update {
                        dry_run: false,
                        allow_removals
                    } if allow_removals == allow
                ),
                "{sent:?}"
            );
        }
    }

    /// Through the real engine (simulated hosts whose plan removes 'legacy'): without consent
    /// the update is refused and nothing is upgraded; with it, host and wave both upgrade.
    #[tokio::test]
    async fn the_engine_refuses_removals_unless_the_console_consents() {
        use std::time::Duration;

        use crate::config::BatchSize;
        use crate::engine::bus::Event;
        use crate::engine::testkit::{Behaviour, SimFleet};
        use crate::engine::tests::{fleet_config, start};
        use crate::tui::request::WaveSpec;

        let fleet = SimFleet::new();
        for host in ["h0", "h1", "h2"] {
            fleet.set(
                host,
                Behaviour {
                    removals: vec!["legacy".into()],
                    ..Behaviour::default()
                },
            );
        }
        let mut rig = start(fleet_config(3, ""), fleet.clone());
        let update = |host: &str, allow_removals| UiRequest::Host {
            host: host.into(),
            action: HostAction::Update {
                dry_run: false,
                allow_removals,
            },
        };
        rig.engine.send(update("h0", false)).unwrap();
        let events = rig.until(|e| matches!(e, Event::Refused { .. })).await;
        let Some(Event::Refused { host, reason, .. }) = events.last() else {
            unreachable!()
        };
        assert_eq!(&**host, "h0");
        assert!(reason.contains("'legacy'"), "{reason}");
        assert_eq!(fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst), 0);

        rig.engine.send(update("h1", true)).unwrap();
        let events = rig
            .until(|e| {
                matches!(e, Event::StateChanged { host, from: StateKind::Updating, .. }
                    if &**host == "h1")
            })
            .await;
        assert!(
            matches!(
                events.last(),
                Some(Event::StateChanged {
                    to: StateKind::Idle,
                    ..
                })
            ),
            "{:?}",
            events.last()
        );
        assert_eq!(fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst), 1);

        rig.engine
            .send(UiRequest::StartWave(WaveSpec {
                hosts: vec!["h2".into()],
                batch_sizes: vec![BatchSize::Count(1)],
                delay: Duration::ZERO,
                max_failures: crate::config::FailureLimit::Count(0),
                dry_run: false,
                allow_removals: true,
            }))
            .unwrap();
        let end = rig.wave_end().await;
        assert_eq!(
            end.status,
            crate::engine::bus::WaveStatus::Finished,
            "{end:?}"
        );
        assert_eq!(fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst), 2);
        rig.engine.shutdown(Duration::from_secs(5)).await;
    }
}
