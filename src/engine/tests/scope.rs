//! Scoped waves on the simulated fleet (issue 12): the wave's scope reaches every host's
//! pre-download and upgrade, each host upgrades only the packages in scope, and a host with
//! nothing in scope is skipped with the reason, not failed.

use std::time::Duration;

use super::super::bus::{Event, Stage, StageStatus};
use super::super::testkit::{Behaviour, SimFleet};
use super::super::*;
use super::*;
use crate::pkg::UpgradeScope;

#[tokio::test]
async fn a_scoped_wave_upgrades_only_its_packages_and_skips_hosts_with_none_pending() {
    let fleet = SimFleet::new();
    // h0 and h1 have pkg0 (security) and pkg1 pending; h2 only pkg0.
    fleet.set(
        "h2",
        Behaviour {
            pending: 1,
            ..Behaviour::default()
        },
    );
    let config = fleet_config(3, "");
    let hosts: Vec<HostId> = config.hosts.iter().map(|h| h.name.clone()).collect();
    let mut rig = start(config, fleet.clone());
    let scope = UpgradeScope::of_packages(["pkg1"], false).unwrap();
    // A canary of one: the others' pre-downloads start while it upgrades.
    let mut request = wave(hosts, "1,2", FailureLimit::Count(0));
    request.scope = scope.clone();
    rig.engine.start_wave(request).unwrap();
    let events = rig.until(wave_ended).await;
    let end = last_progress(&events);
    assert_eq!(end.status, WaveStatus::Finished);
    assert_eq!((end.succeeded, end.failed, end.skipped), (2, 0, 1));
    let h2 = events.iter().find_map(|e| match e {
        Event::WaveHostFinished { host, outcome, .. } if &**host == "h2" => Some(outcome.clone()),
        _ => None,
    });
    assert_eq!(
        h2,
        Some(Outcome::Skipped {
            reason: "none of pkg1 pending".into()
        })
    );
    let mut upgrades: Vec<(String, UpgradeScope)> = fleet
        .scopes_seen()
        .into_iter()
        .filter(|(_, what, _)| *what == "upgrade")
        .map(|(host, _, scope)| (host, scope))
        .collect();
    upgrades.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        upgrades,
        [
            ("h0".to_string(), scope.clone()),
            ("h1".to_string(), scope.clone())
        ],
        "every upgrade got the wave's scope, and h2 none"
    );
    let downloads: Vec<UpgradeScope> = fleet
        .scopes_seen()
        .into_iter()
        .filter(|(_, what, _)| *what == "download")
        .map(|(_, _, scope)| scope)
        .collect();
    assert!(
        !downloads.is_empty() && downloads.iter().all(|s| *s == scope),
        "the pre-downloads fetch the wave's scope: {downloads:?}"
    );
    for host in ["h0", "h1"] {
        assert_eq!(upgraded(&events, host), ["pkg1"], "{host} took pkg0 too");
    }
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// The packages the consent plan of `host`'s real upgrade took.
fn upgraded(events: &[Event], host: &str) -> Vec<String> {
    events
        .iter()
        .find_map(|e| match e {
            Event::Planned {
                host: h,
                plan,
                dry_run: false,
                ..
            } if &**h == host => Some(plan.upgrades.iter().map(|p| p.name.clone()).collect()),
            _ => None,
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_security_only_update_takes_only_the_security_packages() {
    let fleet = SimFleet::new();
    let mut rig = start(fleet_config(1, ""), fleet.clone());
    let scope = UpgradeScope {
        security_only: true,
        ..UpgradeScope::default()
    };
    let job = Job::new(update(), Origin::Console).scoped(scope.clone());
    rig.engine.try_send("h0", job).unwrap();
    let events = rig
        .until(|e| {
            matches!(
                e,
                Event::StateChanged {
                    to: StateKind::Idle,
                    from: StateKind::Updating,
                    ..
                }
            )
        })
        .await;
    assert_eq!(
        upgraded(&events, "h0"),
        ["pkg0"],
        "only the security update"
    );
    assert_eq!(fleet.scopes_seen()[0].2, scope);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_scoped_update_leaves_compose_stacks_alone() {
    let fleet = SimFleet::new();
    let mut rig = start(
        fleet_config(1, "compose_paths = [\"/srv/app\"]"),
        fleet.clone(),
    );
    let scope = UpgradeScope::of_packages(["pkg0"], false).unwrap();
    let job = Job::new(update(), Origin::Console).scoped(scope);
    rig.engine.try_send("h0", job).unwrap();
    let events = rig
        .until(|e| {
            matches!(
                e,
                Event::StateChanged {
                    to: StateKind::Idle,
                    from: StateKind::Updating,
                    ..
                }
            )
        })
        .await;
    let compose: Vec<(Stage, StageStatus)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Stage { stage, status, .. }
                if matches!(stage, Stage::ComposeCheck | Stage::Compose) =>
            {
                Some((*stage, status.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        compose,
        [(
            Stage::ComposeCheck,
            StageStatus::Skipped {
                reason: "scoped update: packages only".into()
            }
        )]
    );
    assert_eq!(upgraded(&events, "h0"), ["pkg0"]);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_scoped_dry_run_with_nothing_in_scope_plans_nothing_and_is_skipped() {
    let fleet = SimFleet::new();
    let mut rig = start(fleet_config(1, ""), fleet.clone());
    let scope = UpgradeScope::of_packages(["openssl"], false).unwrap();
    let dry_run = JobKind::Update {
        dry_run: true,
        allow_removals: false,
    };
    let (job, answer) = Job::answered(dry_run, Origin::Batch);
    rig.engine.try_send("h0", job.scoped(scope)).unwrap();
    let events = rig
        .until(|e| matches!(e, Event::Planned { dry_run: true, .. }))
        .await;
    let Some(Event::Planned { plan, .. }) = events.last() else {
        unreachable!("until stops on it")
    };
    assert!(plan.upgrades.is_empty(), "{plan:?}");
    assert_eq!(
        answer.await.unwrap(),
        Outcome::Skipped {
            reason: "none of openssl pending".into()
        }
    );
    assert!(fleet.scopes_seen().is_empty(), "nothing was upgraded");
    rig.engine.shutdown(Duration::from_secs(5)).await;
}
