//! One host at a time: states, refusals, panics, reboots, periodic refresh.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::super::bus::{Event, Job, JobKind, Origin, Outcome, StateKind};
use super::super::testkit::{Behaviour, SimFleet};
use super::super::*;
use super::*;
use crate::config::Config;
use crate::health::{CheckName, CheckPhase};
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
    assert_eq!(answer.await.unwrap(), Outcome::Succeeded);
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
    rig.send_update("h0");
    rig.until_state(StateKind::Updating).await;
    let asked = std::time::Instant::now();
    rig.engine
        .try_send("h0", Job::new(JobKind::Reboot, Origin::Console))
        .unwrap();
    let events = rig.until(|e| matches!(e, Event::Refused { .. })).await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "the refusal waited behind the upgrade"
    );
    let Some(Event::Refused { reason, job, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(*job, JobKind::Reboot);
    assert_eq!(&**reason, "busy (updating)");
    assert_eq!(
        rig.engine
            .try_send("nope", Job::new(JobKind::Refresh, Origin::Console)),
        Err(SendError::UnknownHost)
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_panicking_step_fails_the_host_which_stays_usable_after_retry() {
    let fleet = fleet_where(
        "h0",
        Behaviour {
            panic_upgrade: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(1, ""), fleet.clone());
    let outcome = rig.step("h0", update()).await;
    let Outcome::Failed { error } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        error.contains("panicked") && error.contains("simulated bug"),
        "{error}"
    );
    fleet.set("h0", Behaviour::default());
    assert_eq!(rig.step("h0", JobKind::Retry).await, Outcome::Succeeded);
    assert_eq!(rig.step("h0", update()).await, Outcome::Succeeded);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_failed_upgrade_keeps_its_context_until_retried() {
    let fleet = fleet_where(
        "h0",
        Behaviour {
            fail_upgrade: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(1, ""), fleet);
    let outcome = rig.step("h0", update()).await;
    assert!(
        matches!(&outcome, Outcome::Failed { error } if error.starts_with("upgrade: apt-get dist-upgrade failed")),
        "{outcome:?}"
    );
    let refused = rig.step("h0", JobKind::Refresh).await;
    assert_eq!(
        refused,
        Outcome::Refused {
            reason: "cannot refresh: it failed; retry it first".into()
        }
    );
    assert_eq!(
        rig.step("h0", JobKind::Acknowledge).await,
        Outcome::Succeeded
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let saved = snapshot::load(&rig.dir.path().join("snapshot.json"))
        .snapshot
        .unwrap();
    let record = &saved.hosts[0];
    let crate::fleet::Phase::Failed(info) = &record.model.state.phase else {
        panic!("{record:?}")
    };
    assert!(info.acknowledged);
    assert_eq!(info.previous_state, StateKind::Updating);
}

#[tokio::test]
async fn reboot_round_trip_needs_a_new_boot_id() {
    let policy = "[host.policy]\nauto_reboot = true\n";
    let fleet = fleet_where(
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
    assert_eq!(rig.step("h0", update()).await, Outcome::Succeeded);
    let outcome = rig.step("h1", update()).await;
    assert!(
        matches!(&outcome, Outcome::Failed { error } if error.contains("boot id did not change")),
        "{outcome:?}"
    );
    let outcome = rig.step("h2", update()).await;
    assert!(
        matches!(&outcome, Outcome::Failed { error } if error.contains("different host key") && !error.contains("within")),
        "{outcome:?}"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// Also: the update's own checks run before the reboot it asks for (a host the update broke
/// is not rebooted on top of it), and `skip` takes out a derived check as it does a probed one.
#[tokio::test]
async fn reboot_waits_when_auto_reboot_is_off() {
    let fleet = fleet_where(
        "h0",
        Behaviour {
            reboot_required: true,
            ..Behaviour::default()
        },
    );
    let extra =
        "[host.policy]\nauto_reboot = false\n\n[host.checks]\nskip = [\"reboot_required\"]\n";
    let mut rig = start(fleet_config(1, extra), fleet);
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
    assert_eq!(answer.await.unwrap(), Outcome::Succeeded);
    let Some(Event::StateChanged { state, .. }) = events.last() else {
        unreachable!()
    };
    let reason = state.phase.reason().unwrap_or_default();
    assert!(reason.contains("auto_reboot is off"), "{reason}");
    let post = events
        .iter()
        .find_map(|e| match e {
            Event::Checked { report, .. } if report.phase == CheckPhase::PostUpdate => {
                Some(report.clone())
            }
            _ => None,
        })
        .expect("post-update checks before the host waits for its reboot");
    assert!(post.ok(), "{post:?}");
    assert!(post.get(CheckName::PackageDb).is_some(), "{post:?}");
    assert!(post.get(CheckName::RebootRequired).is_none(), "{post:?}");
    // An explicit reboot is the operator's decision.
    assert_eq!(rig.step("h0", JobKind::Reboot).await, Outcome::Succeeded);
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
    let mut rig = start_periodic(config, SimFleet::new());
    let started = tokio::time::Instant::now();
    let mut seen: std::collections::HashMap<HostId, Vec<Duration>> = Default::default();
    while seen.len() < 20 || seen.values().any(|times| times.len() < 2) {
        let host = rig.next_query(Duration::from_secs(700)).await;
        seen.entry(host).or_default().push(started.elapsed());
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
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// Starts a slow upgrade on `h0` and returns once the host is updating.
async fn start_slow_upgrade(rig: &mut Rig) -> oneshot::Receiver<Outcome> {
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
    assert_eq!(answer.await.unwrap(), Outcome::Succeeded);
    let snapshot = snapshot::load(&rig.dir.path().join("snapshot.json"));
    let host = &snapshot.snapshot.unwrap().hosts[0];
    assert_eq!(host.model.kind(), StateKind::Idle, "{:?}", host.model.state);
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
    assert!(matches!(answer.await.unwrap(), Outcome::Failed { .. }));
}

#[tokio::test]
async fn removals_need_consent_from_the_command_or_the_host_policy() {
    let fleet = fleet_where(
        "h0",
        Behaviour {
            removals: vec!["legacy".into()],
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(1, ""), fleet.clone());
    // Batch counts a refused update as failed; the console sees the refusal itself.
    let refused = rig.step_from("h0", update(), Origin::Batch).await;
    assert!(
        matches!(&refused, Outcome::Failed { error } if error.contains("'legacy'")),
        "{refused:?}"
    );
    let refused = rig.step("h0", update()).await;
    assert!(
        matches!(&refused, Outcome::Refused { reason } if reason.contains("'legacy'")),
        "{refused:?}"
    );
    assert_eq!(fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst), 0);
    rig.engine.shutdown(Duration::from_secs(5)).await;

    let policy = "[host.policy]\nallow_removals = true\n";
    let mut rig = start(fleet_config(1, policy), fleet.clone());
    assert_eq!(rig.step("h0", update()).await, Outcome::Succeeded);
    assert_eq!(fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst), 1);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// Issue 9: the supervisor is in charge. A step asks for every move and waits; when a move is
/// refused, the step stops there: nothing more runs on the host and nothing more is emitted.
#[tokio::test]
async fn a_refused_move_stops_the_step_before_it_touches_the_host() {
    use super::super::error::Error;
    use super::super::step::{StepContext, StepMsg};
    use crate::fleet::{Refusal, Transition};

    let fleet = SimFleet::new();
    let config = fleet_config(1, "");
    let host = Arc::new(config.hosts[0].clone());
    let (supervisor, mut inbox) = tokio::sync::mpsc::channel(4);
    let step = StepContext {
        id: host.name.clone(),
        exec: (fleet.executors())(&host),
        host: host.clone(),
        tools: fleet.managers(),
        manager: Arc::new(tokio::sync::OnceCell::new()),
        supervisor,
        cancel: tokio_util::sync::CancellationToken::new(),
        abandon: tokio_util::sync::CancellationToken::new(),
        reboot: RebootSettings::default(),
        command_timeout: Duration::from_secs(5),
        reboot_timeout: Duration::from_secs(5),
        upgrade_timeout: Duration::from_secs(5),
        holder: "tendhost test".into(),
        outstanding: None,
        lists_max_age: Duration::from_secs(3600),
        lists_limit: Arc::new(tokio::sync::Semaphore::new(1)),
        memory: Default::default(),
        history: Default::default(),
        rollback: Default::default(),
        baseline: Default::default(),
    };
    let job = Job::new(update(), Origin::Console);
    let running = tokio::spawn(step.run(job, StateKind::PendingUpdates));
    let mut moves = Vec::new();
    while let Some(message) = inbox.recv().await {
        let StepMsg::Move { transition, reply } = message else {
            continue; // findings of the read: fine
        };
        moves.push(transition.clone());
        let answer = match transition {
            Transition::StartUpdate => Err(Refusal("cannot update: it is busy".into())),
            _ => Ok(()),
        };
        reply.send(answer).unwrap();
    }
    // The inbox closed: the step ended, and it sent nothing after the refusal.
    let result = running.await.unwrap();
    assert!(
        matches!(&result, Err(Error::Refused(r)) if r.0 == "cannot update: it is busy"),
        "{result:?}"
    );
    assert_eq!(
        moves.last(),
        Some(&Transition::StartUpdate),
        "the refused move was the last: {moves:?}"
    );
    assert_eq!(
        fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the upgrade ran although its move was refused"
    );
}

/// Issue 9: a failed read never latches `Failed`. The host goes back to where it rested with the
/// error, when and how many tries; network trouble is retried within the job first; after the
/// third straight failure it is shown unreachable, and a wave still tries it.
#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_host_resting_with_the_error_until_a_read_succeeds() {
    let fleet = fleet_where(
        "h0",
        Behaviour {
            offline: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(1, ""), fleet.clone());
    for tries in 1..=3 {
        let answer = rig.send_step("h0", JobKind::Refresh);
        let events = rig
            .until(|e| {
                matches!(
                    e,
                    Event::StateChanged {
                        from: StateKind::Querying,
                        ..
                    }
                )
            })
            .await;
        let Some(Event::StateChanged { to, state, .. }) = events.last() else {
            unreachable!()
        };
        assert_eq!(*to, StateKind::Idle, "never Failed");
        let last = state.last_error.as_ref().expect("the error is kept");
        assert_eq!(last.tries, tries);
        assert!(last.error.contains("inventory"), "{last:?}");
        assert_eq!(state.unreachable(), tries == 3);
        let outcome = answer.await.unwrap();
        assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    }
    // Each job tried the read three times (network trouble is retried), nine reads in all.
    assert_eq!(fleet.reads.load(std::sync::atomic::Ordering::SeqCst), 9);

    // Unreachable does not drop the host from a wave; once it answers, the error is gone.
    fleet.set("h0", Behaviour::default());
    rig.engine
        .start_wave(wave(vec!["h0".into()], "1", FailureLimit::Count(0)))
        .unwrap();
    let end = rig.wave_end().await;
    assert_eq!(
        (end.status, end.succeeded),
        (WaveStatus::Finished, 1),
        "{end:?}"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let saved = snapshot::load(&rig.dir.path().join("snapshot.json"))
        .snapshot
        .unwrap();
    let state = &saved.hosts[0].model.state;
    assert_eq!(state.last_error, None, "{state:?}");
    assert!(state.last_update.is_some());
}

/// The periodic refresh of a host whose reads keep failing comes back sooner, with backoff,
/// rather than a whole interval later.
#[tokio::test(start_paused = true)]
async fn periodic_refresh_backs_off_while_reads_fail() {
    let text = "[fleet]\nrefresh_interval = \"1h\"\n[[host]]\nname = \"h0\"\naddr = \"10.0.0.1\"\n";
    let config = Config::from_str("sim.toml", text).unwrap();
    let fleet = fleet_where(
        "h0",
        Behaviour {
            offline: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start_periodic(config, fleet);
    let started = tokio::time::Instant::now();
    let mut attempts = Vec::new();
    while attempts.len() < 4 {
        rig.next_query(Duration::from_secs(3_700)).await;
        attempts.push(started.elapsed());
    }
    let gaps: Vec<u64> = attempts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs())
        .collect();
    // Each job spends 3 s on its own retries; the timer then waits 30 s, 60 s, 120 s.
    for (gap, backoff) in gaps.iter().zip([30, 60, 120]) {
        assert!(
            (backoff..=backoff + 5).contains(gap),
            "gaps {gaps:?} (attempts at {attempts:?})"
        );
    }
    rig.engine.shutdown(Duration::from_secs(5)).await;
}
