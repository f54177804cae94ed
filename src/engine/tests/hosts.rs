//! One host at a time: states, refusals, panics, reboots, periodic refresh.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::super::bus::{self, Event, HostCommand, StateKind, StepOutcome, WaveStep};
use super::super::testkit::{Behaviour, SimFleet};
use super::super::*;
use super::*;
use crate::config::Config;
use crate::store::snapshot;

#[tokio::test]
async fn update_moves_through_the_states_and_is_audited() {
    let mut rig = start(fleet_config(1, ""), SimFleet::new());
    let answer = rig.send_step("h0", update());
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
    assert_eq!(answer.await.unwrap(), StepOutcome::Succeeded);
    assert_eq!(
        state_of(&events, "h0"),
        [
            StateKind::Querying,
            StateKind::PendingUpdates,
            StateKind::Updating,
            StateKind::Idle
        ]
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Output { line, .. } if line.contains("Unpacking")))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::PendingRefreshed { packages, .. } if packages.len() == 2))
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let audit = std::fs::read_to_string(rig.dir.path().join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"action\":\"update\"") && audit.contains("pending_updates -> updating"),
        "{audit}"
    );
    assert!(audit.contains("updating -> idle"), "{audit}");
}

#[tokio::test]
async fn refuses_conflicting_commands_while_updating_and_reads_do_not_wait() {
    let fleet = slow_fleet(Duration::from_secs(3));
    let mut rig = start(fleet_config(1, ""), fleet);
    rig.engine
        .try_send(
            "h0",
            HostCommand::Update {
                dry_run: false,
                allow_removals: false,
            },
        )
        .unwrap();
    rig.until_state(StateKind::Updating).await;
    let asked = std::time::Instant::now();
    rig.engine.try_send("h0", HostCommand::Reboot).unwrap();
    let events = rig.until(|e| matches!(e, Event::Refused { .. })).await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "the refusal waited behind the upgrade"
    );
    let Some(Event::Refused {
        reason, command, ..
    }) = events.last()
    else {
        unreachable!()
    };
    assert_eq!(*command, bus::CommandKind::Reboot);
    assert_eq!(&**reason, "busy (updating)");
    assert_eq!(
        rig.engine.try_send("nope", HostCommand::Refresh),
        Err(SendError::UnknownHost)
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_panicking_step_fails_the_host_which_stays_usable_after_retry() {
    let fleet = SimFleet::new();
    fleet.set(
        "h0",
        Behaviour {
            panic_upgrade: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(1, ""), fleet.clone());
    let outcome = rig.step("h0", update()).await;
    let StepOutcome::Failed { error } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        error.contains("panicked") && error.contains("simulated bug"),
        "{error}"
    );
    fleet.set("h0", Behaviour::default());
    assert_eq!(
        rig.step("h0", WaveStep::Retry).await,
        StepOutcome::Succeeded
    );
    assert_eq!(rig.step("h0", update()).await, StepOutcome::Succeeded);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_failed_upgrade_keeps_its_context_until_retried() {
    let fleet = SimFleet::new();
    fleet.set(
        "h0",
        Behaviour {
            fail_upgrade: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(1, ""), fleet);
    let outcome = rig.step("h0", update()).await;
    assert!(
        matches!(&outcome, StepOutcome::Failed { error } if error.starts_with("upgrade: apt-get dist-upgrade failed")),
        "{outcome:?}"
    );
    let refused = rig.step("h0", WaveStep::Refresh).await;
    assert_eq!(
        refused,
        StepOutcome::Refused {
            reason: "cannot refresh: it failed; retry it first".into()
        }
    );
    assert_eq!(
        rig.step("h0", WaveStep::Acknowledge).await,
        StepOutcome::Succeeded
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let saved = snapshot::load(&rig.dir.path().join("snapshot.json"))
        .snapshot
        .unwrap();
    let record = &saved.hosts[0];
    let state::Phase::Failed(info) = &record.state.phase else {
        panic!("{record:?}")
    };
    assert!(info.acknowledged);
    assert_eq!(info.previous_state, StateKind::Updating);
}

#[tokio::test]
async fn reboot_round_trip_needs_a_new_boot_id() {
    let policy = "[host.policy]\nauto_reboot = true\n";
    let fleet = SimFleet::new();
    fleet.set(
        "h0",
        Behaviour {
            reboot_required: true,
            ..Behaviour::default()
        },
    );
    fleet.set(
        "h1",
        Behaviour {
            reboot_required: true,
            keep_boot_id: true,
            ..Behaviour::default()
        },
    );
    fleet.set(
        "h2",
        Behaviour {
            reboot_required: true,
            new_host_key: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(3, policy), fleet);
    assert_eq!(rig.step("h0", update()).await, StepOutcome::Succeeded);
    let outcome = rig.step("h1", update()).await;
    assert!(
        matches!(&outcome, StepOutcome::Failed { error } if error.contains("boot id did not change")),
        "{outcome:?}"
    );
    let outcome = rig.step("h2", update()).await;
    assert!(
        matches!(&outcome, StepOutcome::Failed { error } if error.contains("different host key") && !error.contains("within")),
        "{outcome:?}"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn reboot_waits_when_auto_reboot_is_off() {
    let fleet = SimFleet::new();
    fleet.set(
        "h0",
        Behaviour {
            reboot_required: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(
        fleet_config(1, "[host.policy]\nauto_reboot = false\n"),
        fleet,
    );
    let answer = rig.send_step("h0", update());
    let events = rig
        .until(|e| {
            matches!(
                e,
                Event::StateChanged {
                    to: StateKind::WaitingReboot,
                    ..
                }
            )
        })
        .await;
    assert_eq!(answer.await.unwrap(), StepOutcome::Succeeded);
    let Some(Event::StateChanged {
        reason: Some(reason),
        ..
    }) = events.last()
    else {
        unreachable!()
    };
    assert!(reason.contains("auto_reboot is off"), "{reason}");
    // An explicit reboot is the operator's decision.
    assert_eq!(
        rig.step("h0", WaveStep::Reboot).await,
        StepOutcome::Succeeded
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_fresh_fleet_is_queried_at_start_spread_out_then_every_interval() {
    let mut text = String::from("[fleet]\nrefresh_interval = \"10m\"\n");
    for i in 0..20 {
        text.push_str(&format!(
            "[[host]]\nname = \"h{i}\"\naddr = \"10.0.0.{i}\"\n"
        ));
    }
    let config = Config::from_str("sim.toml", &text).unwrap();
    let fleet = SimFleet::new();
    let dir = tempfile::tempdir().unwrap();
    let deps = EngineDeps {
        executor_for: fleet.executors(),
        managers: fleet.managers(),
        paths: Paths {
            state_dir: dir.path().to_path_buf(),
            data_dir: dir.path().to_path_buf(),
            config_dir: None,
        },
        snapshot: None,
        reboot: RebootSettings::default(),
        save_every: Duration::from_secs(2),
        periodic_refresh: true,
    };
    let (engine, mut events) = Engine::start(Arc::new(config), deps);
    let started = tokio::time::Instant::now();
    let mut seen: std::collections::HashMap<HostId, Vec<Duration>> = Default::default();
    while seen.len() < 20 || seen.values().any(|times| times.len() < 2) {
        let event = tokio::time::timeout(Duration::from_secs(700), events.recv())
            .await
            .unwrap()
            .unwrap();
        if let Event::StateChanged {
            host,
            to: StateKind::Querying,
            ..
        } = event
        {
            seen.entry(host).or_default().push(started.elapsed());
        }
    }
    let mut firsts: Vec<Duration> = seen.values().map(|times| times[0]).collect();
    firsts.sort();
    // Never seen before: every host is queried within the start-up spread, but not all at once.
    assert!(
        *firsts.last().unwrap() <= schedule::STARTUP_SPREAD,
        "{firsts:?}"
    );
    assert!(
        firsts.last().unwrap().saturating_sub(firsts[0]) > Duration::from_secs(1),
        "{firsts:?}"
    );
    // Then every host comes round again after its interval, give or take the 10% jitter.
    for times in seen.values() {
        let gap = times[1] - times[0];
        assert!(
            gap >= Duration::from_secs(540) && gap <= Duration::from_secs(661),
            "{times:?}"
        );
    }
    engine.shutdown(Duration::from_secs(5)).await;
}

/// Starts a slow upgrade on `h0` and returns once the host is updating.
async fn start_slow_upgrade(rig: &mut Rig) -> oneshot::Receiver<StepOutcome> {
    let answer = rig.send_step("h0", update());
    rig.until_state(StateKind::Updating).await;
    answer
}

#[tokio::test]
async fn shutdown_lets_an_upgrade_in_flight_finish() {
    let fleet = slow_fleet(Duration::from_millis(1500));
    let mut rig = start(fleet_config(1, ""), fleet.clone());
    let answer = start_slow_upgrade(&mut rig).await;
    // Longer than SHUTDOWN_GRACE would matter if the upgrade were cancelled like a query.
    assert!(rig.engine.shutdown(Duration::from_secs(30)).await);
    assert_eq!(answer.await.unwrap(), StepOutcome::Succeeded);
    let snapshot = snapshot::load(&rig.dir.path().join("snapshot.json"));
    let host = &snapshot.snapshot.unwrap().hosts[0];
    assert_eq!(host.state.kind(), StateKind::Idle, "{:?}", host.state);
}

#[tokio::test]
async fn an_abandoned_upgrade_fails_its_host_with_the_reason() {
    let fleet = slow_fleet(Duration::from_secs(600));
    let mut rig = start(fleet_config(1, ""), fleet.clone());
    let answer = start_slow_upgrade(&mut rig).await;
    let engine = rig.engine.clone();
    let stopping = tokio::spawn(async move { engine.shutdown(Duration::from_secs(600)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stopping.is_finished(), "the upgrade was not let finish");
    rig.engine.abandon();
    assert!(stopping.await.unwrap());
    assert!(matches!(answer.await.unwrap(), StepOutcome::Failed { .. }));
}

#[tokio::test]
async fn removals_need_consent_from_the_command_or_the_host_policy() {
    let fleet = SimFleet::new();
    fleet.set(
        "h0",
        Behaviour {
            removals: vec!["legacy".into()],
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(1, ""), fleet.clone());
    let refused = rig.step("h0", update()).await;
    assert!(
        matches!(&refused, StepOutcome::Failed { error } if error.contains("'legacy'")),
        "{refused:?}"
    );
    assert_eq!(fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst), 0);
    rig.engine.shutdown(Duration::from_secs(5)).await;

    let policy = "[host.policy]\nallow_removals = true\n";
    let mut rig = start(fleet_config(1, policy), fleet.clone());
    assert_eq!(rig.step("h0", update()).await, StepOutcome::Succeeded);
    assert_eq!(fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst), 1);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}
