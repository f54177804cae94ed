//! The adapter between the console and the engine: each `UiRequest` is one direct
//! `EngineHandle` call (a job with the console as its origin, or a wave control).
//!
//! Every call here is non-blocking (`try_send`, or a quick lock inside the engine), so the UI task
//! never waits on a host. Nothing here draws or reads keys.

use crate::engine::{EngineHandle, Origin};
use crate::tui::request::{EngineLink, UiRequest};

impl EngineLink for EngineHandle {
    fn send(&mut self, request: UiRequest) -> Result<(), String> {
        let sent = match request {
            UiRequest::Host { host, job } => {
                return self
                    .submit(&host, job, Origin::Console)
                    .map_err(|err| err.to_string());
            }
            UiRequest::StartWave(request) => self.start_wave(request).map(|_| ()),
            UiRequest::PauseWave => self.pause_wave(),
            UiRequest::ResumeWave => self.resume_wave(),
            UiRequest::AbortWave => self.abort_wave(),
        };
        sent.map_err(|err| err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::engine::JobKind;
    use crate::engine::bus::StateKind;
    use crate::fleet::{FailedInfo, HostModel, HostState, Phase};
    use crate::store::snapshot::SavedHost;
    use crate::tui::testing::fleet;

    #[test]
    fn restores_states_errors_pending_and_output_from_the_snapshot() {
        let mut model = fleet(2);
        let failed_state = HostState {
            phase: Phase::Failed(FailedInfo {
                previous_state: StateKind::Updating,
                error: "interrupted during updating".into(),
                failed_at: Utc::now(),
                acknowledged: true,
            }),
            ..HostState::default()
        };
        let mut failed = SavedHost::new(HostModel::new("host-01".into()));
        failed.model.state = Arc::new(failed_state);
        failed.recent_output = ["a", "b"].iter().map(|s| s.to_string()).collect();
        failed.dropped_output = 7;
        let mut pending = SavedHost::new(HostModel::new("host-00".into()));
        pending.model.state = Arc::new(HostState {
            phase: Phase::PendingUpdates,
            ..HostState::default()
        });
        pending.model.pending = Some(Arc::from(vec![crate::pkg::PendingPackage {
            name: "openssl".into(),
            from: "1".into(),
            to: "2".into(),
            security: true,
        }]));
        model.restore(&[pending, failed]);
        assert_eq!(model.total(StateKind::Failed), 1);
        assert_eq!(model.total(StateKind::PendingUpdates), 1);
        assert_eq!(model.total(StateKind::Idle), 0);
        let host = model.host(1).unwrap();
        assert!(host.acknowledged());
        assert_eq!(host.error(), Some("interrupted during updating"));
        assert_eq!(host.log.len(), 2);
        assert_eq!(host.log.dropped(), 7);
        assert_eq!(model.host(0).unwrap().security(), 1);
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
            job: JobKind::Update {
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
            .send(UiRequest::StartWave(crate::engine::WaveRequest {
                hosts: vec!["h2".into()],
                sizes: vec![BatchSize::Count(1)],
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
