//! Waves that never wait idle (issue 11): the rolling window after the canary batch, the
//! pre-download at a wave's start, and reboots seen back within a second. On paused time, so
//! the wave's duration is virtual and exact.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::super::bus::{Event, Stage, StageStatus};
use super::super::testkit::{Behaviour, SimFleet, Upgrade};
use super::super::*;
use super::*;
use crate::config::WaveMode;

/// A wave of `mode` over every host of `config`.
fn wave_in(
    config: &Config,
    sizes: &str,
    max_failures: FailureLimit,
    mode: WaveMode,
) -> WaveRequest {
    WaveRequest {
        mode,
        ..wave(
            config.hosts.iter().map(|h| h.name.clone()).collect(),
            sizes,
            max_failures,
        )
    }
}

/// `behaviour` for the hosts named, the default for the others.
fn fleet_of(hosts: &[(&str, Behaviour)]) -> Arc<SimFleet> {
    let fleet = SimFleet::new();
    for (host, behaviour) in hosts {
        fleet.set(host, behaviour.clone());
    }
    fleet
}

fn taking(upgrade_time: Duration) -> Behaviour {
    Behaviour {
        upgrade_time,
        ..Behaviour::default()
    }
}

/// Every host of `n` takes a second to upgrade, the host `slow` ten.
fn one_slow(n: usize, slow: usize) -> Arc<SimFleet> {
    let fleet = SimFleet::new();
    for i in 0..n {
        let time = if i == slow { 10 } else { 1 };
        fleet.set(&format!("h{i}"), taking(Duration::from_secs(time)));
    }
    fleet
}

/// Runs `request` on a fresh engine over `fleet`; the wave's end and how long it took.
async fn timed_wave(
    config: Config,
    fleet: Arc<SimFleet>,
    request: WaveRequest,
) -> (Vec<Event>, bus::WaveProgress, Duration) {
    let mut rig = start(config, fleet);
    let started = Instant::now();
    rig.engine.start_wave(request).unwrap();
    let events = rig.until(wave_ended).await;
    let took = started.elapsed();
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let end = last_progress(&events);
    (events, end, took)
}

/// Where `host`'s entries sit in `log`: (started, ended).
fn span(log: &[(String, Upgrade)], host: &str) -> (usize, usize) {
    let at = |mark| {
        log.iter()
            .position(|(h, m)| h == host && *m == mark)
            .unwrap_or_else(|| panic!("{host} has no {mark:?} in {log:?}"))
    };
    (at(Upgrade::Started), at(Upgrade::Ended))
}

#[tokio::test(start_paused = true)]
async fn rolling_keeps_every_slot_busy_while_one_host_is_slow() {
    let n = 30;
    let config = fleet_config(n, "");
    let rolling = wave_in(&config, "1,3", FailureLimit::Count(0), WaveMode::Rolling);
    let fleet = one_slow(n, 1);
    let (_, end, rolled) = timed_wave(config.clone(), fleet.clone(), rolling).await;
    assert_eq!(
        (end.status, end.succeeded),
        (WaveStatus::Finished, n),
        "{end:?}"
    );
    assert_eq!(
        fleet.peak(),
        3,
        "never more than the batch size, and it was used"
    );
    let log = fleet.upgrades_in_order();
    let (_, canary_done) = span(&log, "h0");
    assert_eq!(canary_done, 1, "the canary batch ran alone: {log:?}");
    let (_, slow_done) = span(&log, "h1");
    let ended_beside = log[..slow_done]
        .iter()
        .filter(|(h, m)| h != "h0" && *m == Upgrade::Ended)
        .count();
    // In the slow host's 10 s, the two other slots ran 10 rounds of a second each.
    assert!(
        ended_beside >= 18,
        "only {ended_beside} hosts ran beside the slow one: {log:?}"
    );

    let barriers = wave_in(&config, "1,3", FailureLimit::Count(0), WaveMode::Batches);
    let fleet = one_slow(n, 1);
    let (_, end, batched) = timed_wave(config, fleet.clone(), barriers).await;
    assert_eq!(end.succeeded, n);
    assert!(fleet.peak() <= 3);
    eprintln!("1,3 over {n} hosts, one 10x slower: rolling {rolled:?}, batches {batched:?}");
    // Batches: 1 s + 10 s + 9 batches of 1 s. Rolling: 1 s, then the 26 others in the two free
    // slots (13 s) beside the slow host. Each host's turn also refreshes its lists (0.1 s).
    assert!(
        rolled.as_secs_f64() < batched.as_secs_f64() * 0.8,
        "rolling {rolled:?} vs batches {batched:?}"
    );
    assert!(rolled < Duration::from_secs(17), "{rolled:?}");
}

#[tokio::test(start_paused = true)]
async fn rolling_a_failed_canary_halts_before_any_other_host() {
    let config = fleet_config(6, "");
    let request = wave_in(&config, "1,3", FailureLimit::Count(3), WaveMode::Rolling);
    let fleet = fleet_of(&[(
        "h0",
        Behaviour {
            fail_upgrade: true,
            ..Behaviour::default()
        },
    )]);
    let (events, end, _) = timed_wave(config, fleet.clone(), request).await;
    assert_eq!((end.status, end.batch), (WaveStatus::Halted, 1), "{end:?}");
    assert!(
        end.reason
            .as_deref()
            .unwrap()
            .starts_with("canary batch 1 had no host that succeeded (h0 failed: "),
        "{end:?}"
    );
    assert_eq!(
        fleet.upgrades_in_order(),
        vec![
            ("h0".to_string(), Upgrade::Started),
            ("h0".to_string(), Upgrade::Ended)
        ]
    );
    let others: Vec<&str> = ["h1", "h2", "h3", "h4", "h5"].into();
    assert!(
        !events.iter().any(|e| matches!(e, Event::StateChanged { host, to: StateKind::Updating, .. } if others.contains(&&**host))),
        "another host was touched"
    );
}

#[tokio::test(start_paused = true)]
async fn rolling_failures_past_the_limit_stop_new_starts() {
    let config = fleet_config(10, "");
    let request = wave_in(&config, "1,3", FailureLimit::Count(1), WaveMode::Rolling);
    let failing = Behaviour {
        fail_upgrade: true,
        upgrade_time: Duration::from_millis(10),
        ..Behaviour::default()
    };
    let fleet = fleet_of(&[
        ("h1", taking(Duration::from_secs(1))),
        ("h2", failing.clone()),
        ("h3", failing),
    ]);
    let (_, end, _) = timed_wave(config, fleet.clone(), request).await;
    assert_eq!(end.status, WaveStatus::Halted, "{end:?}");
    assert_eq!((end.succeeded, end.failed), (2, 2), "{end:?}");
    assert_eq!(
        end.reason.as_deref(),
        Some("2 hosts failed, more than max_failures (1)")
    );
    assert_eq!(
        fleet.upgrades.load(Ordering::SeqCst),
        4,
        "no host started after the second failure; h1 was let finish"
    );
}

#[tokio::test(start_paused = true)]
async fn rolling_a_jump_host_starts_once_the_hosts_behind_it_ended_never_beside_them() {
    let config = fleet_config_each(5, |i| match i {
        0 => "[host.policy]\nauto_reboot = true\n".to_string(),
        1 | 2 => "proxy_jump = \"h0\"\n".to_string(),
        _ => String::new(),
    });
    let request = wave_in(&config, "1,100%", FailureLimit::Count(0), WaveMode::Rolling);
    let fleet = fleet_of(&[
        (
            "h0",
            Behaviour {
                reboot_required: true,
                ..Behaviour::default()
            },
        ),
        ("h2", taking(Duration::from_secs(2))),
        ("h3", taking(Duration::from_secs(20))),
    ]);
    let (events, end, _) = timed_wave(config, fleet.clone(), request).await;
    assert_eq!(
        (end.status, end.succeeded),
        (WaveStatus::Finished, 5),
        "{end:?}"
    );
    let log = fleet.upgrades_in_order();
    let (h0, _) = span(&log, "h0");
    let (_, h1) = span(&log, "h1");
    let (_, h2) = span(&log, "h2");
    let (_, h3) = span(&log, "h3");
    assert_eq!(
        span(&log, "h1").0,
        0,
        "a host behind the jump host is the canary"
    );
    assert!(
        h0 > h1 && h0 > h2,
        "h0 started beside a host behind it: {log:?}"
    );
    assert!(
        h0 < h3,
        "h0 waited for h3, which does not go through it: {log:?}"
    );
    assert!(state_of(&events, "h0").contains(&StateKind::Rebooting));
}

#[tokio::test(start_paused = true)]
async fn rolling_opens_each_batch_after_the_delay_and_grows_the_window() {
    let config = fleet_config(12, "");
    let mut request = wave_in(&config, "1,2,4", FailureLimit::Count(0), WaveMode::Rolling);
    request.delay = Duration::from_secs(10);
    let fleet = fleet_of(&[]);
    for i in 0..12 {
        fleet.set(&format!("h{i}"), taking(Duration::from_secs(1)));
    }
    let (events, end, took) = timed_wave(config, fleet.clone(), request).await;
    assert_eq!(
        (end.status, end.succeeded),
        (WaveStatus::Finished, 12),
        "{end:?}"
    );
    // Batches 1, 2, 4, 4, 1: four delays of 10 s.
    assert_eq!(end.batch, 5, "{end:?}");
    assert!(took >= Duration::from_secs(40), "{took:?}");
    assert!(took < Duration::from_secs(50), "{took:?}");
    assert_eq!(fleet.peak(), 4);
    let delays = events
        .iter()
        .filter(|e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Delaying))
        .count();
    assert!(delays >= 4, "{delays} delaying events");
}

#[tokio::test(start_paused = true)]
async fn rolling_pause_holds_new_starts_while_hosts_in_flight_finish() {
    let config = fleet_config(8, "");
    let request = wave_in(&config, "1,3", FailureLimit::Count(0), WaveMode::Rolling);
    let fleet = fleet_of(&[]);
    for i in 0..8 {
        fleet.set(&format!("h{i}"), taking(Duration::from_secs(1)));
    }
    let mut rig = start(config, fleet.clone());
    rig.engine.start_wave(request).unwrap();
    rig.until(|e| matches!(e, Event::Wave(p) if p.batch == 2 && p.in_flight.len() == 3))
        .await;
    rig.engine.pause_wave().unwrap();
    rig.until(|e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Paused))
        .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        fleet.upgrades.load(Ordering::SeqCst),
        4,
        "a paused wave started a host"
    );
    assert_eq!(
        fleet.in_flight.load(Ordering::SeqCst),
        0,
        "hosts in flight finished"
    );
    rig.engine.unpause_wave().unwrap();
    let end = rig.wave_end().await;
    assert_eq!(
        (end.status, end.succeeded),
        (WaveStatus::Finished, 8),
        "{end:?}"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// How `host`'s stages went, in order, as `(stage, status word)`.
fn stages_of(events: &[Event], host: &str) -> Vec<(Stage, &'static str)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Stage {
                host: h,
                stage,
                status,
            } if &**h == host => Some((
                *stage,
                match status {
                    StageStatus::Started => "started",
                    StageStatus::Done => "done",
                    StageStatus::Skipped { .. } => "skipped",
                    StageStatus::Failed { .. } => "failed",
                },
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_wave_downloads_on_every_host_ahead_of_its_turn_a_few_at_a_time() {
    let mut config = fleet_config(8, "");
    config.fleet.download_concurrency = 2;
    let request = wave_in(&config, "1,3", FailureLimit::Count(0), WaveMode::Rolling);
    let fleet = SimFleet::new();
    for i in 0..8 {
        fleet.set(
            &format!("h{i}"),
            Behaviour {
                upgrade_time: Duration::from_secs(2),
                download_time: Duration::from_secs(1),
                ..Behaviour::default()
            },
        );
    }
    let (events, end, _) = timed_wave(config, fleet.clone(), request).await;
    assert_eq!(
        (end.status, end.succeeded),
        (WaveStatus::Finished, 8),
        "{end:?}"
    );
    assert_eq!(
        fleet.download_peak.load(Ordering::SeqCst),
        2,
        "download_concurrency"
    );
    let mut downloaded = 0;
    for i in 0..8 {
        let host = format!("h{i}");
        let stages = stages_of(&events, &host);
        let packages = stages
            .iter()
            .position(|s| *s == (Stage::Packages, "started"))
            .unwrap_or_else(|| panic!("{host} never upgraded: {stages:?}"));
        // A download either finished before the host's upgrade began, or never started.
        if let Some(done) = stages.iter().position(|s| *s == (Stage::Download, "done")) {
            assert!(done < packages, "{host}: {stages:?}");
            downloaded += 1;
        }
        assert!(
            !stages[packages..]
                .iter()
                .any(|(s, _)| *s == Stage::Download),
            "{host} downloaded during its turn: {stages:?}"
        );
    }
    // The canary's turn comes at once; every later host had its packages by its turn.
    assert!(downloaded >= 7, "{downloaded} hosts downloaded ahead");
    let log = fleet.downloads_in_order();
    let upgrades = fleet.upgrades_in_order();
    assert!(log.len() >= 14, "{log:?}");
    assert!(upgrades.len() == 16);
}

#[tokio::test(start_paused = true)]
async fn a_failed_download_is_shown_and_fails_nothing() {
    let config = fleet_config(3, "");
    let request = wave_in(&config, "1,2", FailureLimit::Count(0), WaveMode::Rolling);
    let fleet = fleet_of(&[
        ("h0", taking(Duration::from_secs(1))),
        (
            "h2",
            Behaviour {
                fail_download: true,
                ..Behaviour::default()
            },
        ),
    ]);
    let (events, end, _) = timed_wave(config, fleet.clone(), request).await;
    assert_eq!(
        (end.status, end.succeeded, end.failed),
        (WaveStatus::Finished, 3, 0),
        "{end:?}"
    );
    let failed = events.iter().find_map(|e| match e {
        Event::Stage {
            host,
            stage: Stage::Download,
            status: StageStatus::Failed { error },
        } if &**host == "h2" => Some(error.clone()),
        _ => None,
    });
    let error = failed.expect("h2's download failed as a stage");
    assert!(error.contains("downloading packages"), "{error}");
    assert_eq!(
        state_of(&events, "h2").last(),
        Some(&StateKind::Idle),
        "h2 upgraded all the same"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_wave_downloads_nothing() {
    let config = fleet_config(4, "");
    let mut request = wave_in(&config, "1,3", FailureLimit::Count(0), WaveMode::Rolling);
    request.dry_run = true;
    let fleet = SimFleet::new();
    let (events, end, _) = timed_wave(config, fleet.clone(), request).await;
    assert_eq!(end.status, WaveStatus::Finished, "{end:?}");
    assert!(fleet.downloads_in_order().is_empty());
    assert!(!events.iter().any(|e| matches!(
        e,
        Event::Stage {
            stage: Stage::Download,
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn a_rebooting_host_is_seen_back_within_a_second_of_answering() {
    let downs = [0.2, 2.9, 7.3, 12.05];
    let mut config = fleet_config(downs.len(), "[host.policy]\nauto_reboot = true\n");
    config.fleet.reboot_timeout = Duration::from_secs(60);
    let fleet = SimFleet::new();
    for (i, down) in downs.iter().enumerate() {
        fleet.set(
            &format!("h{i}"),
            Behaviour {
                reboot_required: true,
                down_for: Duration::from_secs_f64(*down),
                ..Behaviour::default()
            },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    // As tendhost runs: the default reboot settings.
    let deps = fleet.engine_deps(dir.path());
    let mut rig = start_with(config, deps, dir);
    for i in 0..downs.len() {
        rig.send_update(&format!("h{i}"));
    }
    let mut rebooting = HashMap::new();
    let mut back = HashMap::new();
    rig.until(|e| {
        if let Event::StateChanged { host, to, .. } = e {
            match to {
                StateKind::Rebooting => {
                    rebooting.insert(host.clone(), Instant::now());
                }
                StateKind::Verifying => {
                    back.insert(host.clone(), Instant::now());
                }
                _ => {}
            }
        }
        back.len() == downs.len()
    })
    .await;
    for (i, down) in downs.iter().enumerate() {
        let host = HostId::from(format!("h{i}"));
        let answering = rebooting[&host] + Duration::from_secs_f64(*down);
        let late = back[&host].saturating_duration_since(answering);
        eprintln!("{host}: down {down} s, seen back {late:?} after it answered");
        assert!(back[&host] >= answering, "{host} seen back while down");
        assert!(
            late <= Duration::from_secs(1),
            "{host} seen back {late:?} late"
        );
    }
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn hosts_that_cannot_download_skip_it_quietly() {
    let config = fleet_config_each(3, |i| match i {
        2 => "[host.policy]\nauto_reboot = false\n".to_string(),
        _ => String::new(),
    });
    let fleet = fleet_of(&[
        (
            "h0",
            Behaviour {
                fail_upgrade: true,
                ..Behaviour::default()
            },
        ),
        (
            "h2",
            Behaviour {
                reboot_required: true,
                ..Behaviour::default()
            },
        ),
    ]);
    let mut rig = start(config.clone(), fleet.clone());
    assert!(rig.step("h0", update()).await.is_failure());
    // h2 upgrades and then waits for a reboot (auto_reboot is off): nothing left to install.
    assert_eq!(rig.step("h2", update()).await, Outcome::Succeeded);
    rig.engine
        .start_wave(wave_in(
            &config,
            "1,2",
            FailureLimit::Count(0),
            WaveMode::Rolling,
        ))
        .unwrap();
    let events = rig.until(wave_ended).await;
    let end = last_progress(&events);
    // What the console's steps still had on the way is not the wave's.
    let from = events
        .iter()
        .position(|e| matches!(e, Event::Wave(_)))
        .unwrap();
    let events = &events[from..];
    assert_eq!(end.skipped, 1, "failed h0 is skipped: {end:?}");
    assert!(
        !events.iter().any(|e| matches!(
            e,
            Event::Refused {
                job: JobKind::Download,
                ..
            }
        )),
        "a refused download was reported"
    );
    assert!(
        !stages_of(events, "h0").contains(&(Stage::Download, "started")),
        "the failed host downloaded"
    );
    assert_eq!(
        stages_of(events, "h2").first(),
        Some(&(Stage::Download, "skipped")),
        "h2 waits for a reboot: nothing to download: {:?}",
        stages_of(events, "h2")
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn rolling_abort_starts_nothing_more_and_lets_hosts_in_flight_finish() {
    let config = fleet_config(10, "");
    let mut request = wave_in(&config, "1,3", FailureLimit::Count(0), WaveMode::Rolling);
    request.delay = Duration::from_secs(5);
    let fleet = fleet_of(&[]);
    for i in 0..10 {
        fleet.set(&format!("h{i}"), taking(Duration::from_secs(i as u64 + 1)));
    }
    let mut rig = start(config, fleet.clone());
    rig.engine.start_wave(request).unwrap();
    rig.until(|e| matches!(e, Event::Wave(p) if p.batch == 2 && p.in_flight.len() == 3))
        .await;
    // Once the three of batch 2 are upgrading.
    let mut upgrading = 0;
    rig.until(|e| {
        upgrading += usize::from(matches!(
            e,
            Event::StateChanged {
                to: StateKind::Updating,
                ..
            }
        ));
        upgrading == 3
    })
    .await;
    rig.engine.abort_wave().unwrap();
    let end = rig.wave_end().await;
    assert_eq!(end.status, WaveStatus::Aborted, "{end:?}");
    assert_eq!(
        fleet.upgrades.load(Ordering::SeqCst),
        4,
        "a host started after the abort"
    );
    assert_eq!(fleet.in_flight.load(Ordering::SeqCst), 0);
    assert_eq!(end.done, 4, "{end:?}");
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// The wave of issue 11's measurement, simulated: 50 hosts in batches of 10, every host
/// rebooting, the 10 dnf hosts (every fifth) four times slower (RPM + reboot, 16 s) than the
/// apt ones. Prints both paces; the rolling one must not wait for each batch's slowest host.
#[tokio::test(start_paused = true)]
async fn issue11_a_wave_of_fifty_with_reboots_rolls_past_its_slow_hosts() {
    let n = 50;
    let mut config = fleet_config(n, "[host.policy]\nauto_reboot = true\n");
    config.fleet.reboot_timeout = Duration::from_secs(60);
    let fleet = || {
        let fleet = SimFleet::new();
        for i in 0..n {
            let slow = i % 5 == 4;
            let seconds = if slow { 8.0 } else { 2.0 };
            fleet.set(
                &format!("h{i}"),
                Behaviour {
                    upgrade_time: Duration::from_secs_f64(seconds),
                    down_for: Duration::from_secs_f64(seconds),
                    reboot_required: true,
                    ..Behaviour::default()
                },
            );
        }
        fleet
    };
    let mut took = Vec::new();
    for mode in [WaveMode::Batches, WaveMode::Rolling] {
        let request = wave_in(&config, "1,10", FailureLimit::Count(0), mode);
        let fleet = fleet();
        let (_, end, time) = timed_wave(config.clone(), fleet.clone(), request).await;
        assert_eq!(
            (end.status, end.succeeded),
            (WaveStatus::Finished, n),
            "{end:?}"
        );
        assert!(fleet.peak() <= 10);
        took.push(time);
    }
    eprintln!(
        "50 hosts, 1,10, reboots, 10 slow: batches {:?}, rolling {:?} ({:.2}x)",
        took[0],
        took[1],
        took[1].as_secs_f64() / took[0].as_secs_f64()
    );
    assert!(took[1] < took[0] * 3 / 4, "{took:?}");
}
