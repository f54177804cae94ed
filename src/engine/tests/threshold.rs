//! A wave paused at its threshold (`on_threshold = "pause"`) and each of the operator's four
//! choices: what runs afterwards, how it is counted, how the wave ends.

use std::sync::Arc;
use std::time::Duration;

use super::super::bus::{Event, WaveProgress};
use super::super::testkit::{Behaviour, SimFleet, Upgrade};
use super::super::*;
use super::*;
use crate::config::{OnThreshold, WaveMode};

fn failing() -> Behaviour {
    Behaviour {
        fail_upgrade: true,
        ..Behaviour::default()
    }
}

/// A fleet of `n` hosts where each of `bad` fails its upgrade.
fn fleet_failing(bad: &[&str]) -> Arc<SimFleet> {
    let fleet = SimFleet::new();
    for host in bad {
        fleet.set(host, failing());
    }
    fleet
}

fn pausing(n: usize, sizes: &str, max_failures: FailureLimit) -> WaveRequest {
    let hosts = (0..n).map(|i| HostId::from(format!("h{i}"))).collect();
    WaveRequest {
        on_threshold: OnThreshold::Pause,
        ..wave(hosts, sizes, max_failures)
    }
}

impl Rig {
    /// Waits for the wave to pause at its threshold and returns that progress.
    async fn threshold(&mut self) -> WaveProgress {
        let events = self
            .until(|e| {
                wave_ended(e) || matches!(e, Event::Wave(p) if p.status == WaveStatus::Threshold)
            })
            .await;
        let progress = last_progress(&events);
        assert_eq!(progress.status, WaveStatus::Threshold, "{progress:?}");
        progress
    }
}

fn failed_names(progress: &WaveProgress) -> Vec<&str> {
    progress.failed_hosts.iter().map(|f| &*f.host).collect()
}

/// How many times each host's upgrade started.
fn upgrades_of(fleet: &SimFleet, host: &str) -> usize {
    fleet
        .upgrades_in_order()
        .iter()
        .filter(|(h, mark)| h == host && *mark == Upgrade::Started)
        .count()
}

#[tokio::test]
async fn continue_at_the_threshold_goes_on_and_the_next_failure_asks_again() {
    let fleet = fleet_failing(&["h1", "h4"]);
    let mut rig = start(fleet_config(6, ""), fleet.clone());
    rig.engine
        .start_wave(pausing(6, "1,2", FailureLimit::Count(0)))
        .unwrap();
    assert!(matches!(
        rig.engine.decide_wave(ThresholdChoice::Continue),
        Err(WaveError::NotAtThreshold)
    ));
    let at = rig.threshold().await;
    assert_eq!((at.batch, at.succeeded, at.failed), (2, 2, 1));
    assert_eq!(failed_names(&at), ["h1"]);
    assert!(at.failed_hosts[0].error.contains("upgrade"), "{at:?}");
    assert_eq!(
        at.reason.as_deref(),
        Some("1 hosts failed, more than max_failures (0)")
    );
    assert_eq!(fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst), 3);
    rig.engine.decide_wave(ThresholdChoice::Continue).unwrap();
    assert!(
        rig.engine.decide_wave(ThresholdChoice::Abort).is_err(),
        "one choice per threshold"
    );
    let again = rig.threshold().await;
    assert_eq!((again.batch, again.failed), (3, 2), "h4 failed in batch 3");
    assert_eq!(failed_names(&again), ["h1", "h4"]);
    rig.engine.decide_wave(ThresholdChoice::Continue).unwrap();
    let end = rig.wave_end().await;
    assert_eq!(end.status, WaveStatus::Finished);
    assert_eq!((end.succeeded, end.failed, end.skipped), (4, 2, 0));
    assert_eq!(fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst), 6);
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let audit = std::fs::read_to_string(rig.dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"wave_threshold\"").count(), 2, "{audit}");
    assert_eq!(audit.matches("\"wave_decision\"").count(), 2, "{audit}");
    assert!(audit.contains("\"continue\""), "{audit}");
}

#[tokio::test]
async fn skip_failed_sets_them_aside_and_they_no_longer_count() {
    let fleet = fleet_failing(&["h1"]);
    let mut rig = start(fleet_config(6, ""), fleet.clone());
    rig.engine
        .start_wave(pausing(6, "1,2", FailureLimit::Count(0)))
        .unwrap();
    rig.threshold().await;
    rig.engine.decide_wave(ThresholdChoice::SkipFailed).unwrap();
    let end = rig.wave_end().await;
    assert_eq!(end.status, WaveStatus::Finished);
    assert_eq!((end.succeeded, end.failed, end.skipped), (5, 0, 1));
    assert!(end.failed_hosts.is_empty());
    assert_eq!(&*end.skipped_hosts[0].host, "h1");
    assert!(
        end.skipped_hosts[0]
            .reason
            .contains("skipped at the threshold"),
        "{end:?}"
    );
    assert_eq!(
        upgrades_of(&fleet, "h1"),
        1,
        "a skipped host is not run again"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn retry_failed_runs_them_again_in_their_batch() {
    // The canary fails: the unproven batch 1 pauses (max_failures alone would let it go on).
    let fleet = fleet_failing(&["h0"]);
    let mut rig = start(fleet_config(5, ""), fleet.clone());
    rig.engine
        .start_wave(pausing(5, "1,100%", FailureLimit::Count(3)))
        .unwrap();
    let at = rig.threshold().await;
    assert_eq!(at.batch, 1);
    assert!(
        at.reason
            .as_deref()
            .unwrap()
            .starts_with("canary batch 1 had no host")
    );
    assert_eq!(fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst), 1);
    fleet.set("h0", Behaviour::default());
    rig.engine
        .decide_wave(ThresholdChoice::RetryFailed)
        .unwrap();
    let events = rig.until(wave_ended).await;
    let end = last_progress(&events);
    assert_eq!(end.status, WaveStatus::Finished);
    assert_eq!((end.succeeded, end.failed, end.skipped), (5, 0, 0));
    assert_eq!(upgrades_of(&fleet, "h0"), 2, "h0 retried once");
    for host in ["h1", "h2", "h3", "h4"] {
        assert_eq!(upgrades_of(&fleet, host), 1, "{host}");
    }
    let order: Vec<String> = fleet
        .upgrades_in_order()
        .into_iter()
        .filter(|(_, mark)| *mark == Upgrade::Started)
        .map(|(h, _)| h)
        .collect();
    assert_eq!(&order[..2], ["h0", "h0"], "h0 ran again as the canary");
    assert!(events.iter().any(|e| matches!(e,
        Event::WaveHostFinished { host, outcome: Outcome::Succeeded, .. } if &**host == "h0")));
    assert_eq!(
        end.batches, 2,
        "the retry ran in batch 1, not a batch of its own"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn abort_at_the_threshold_halts_and_abort_wave_aborts() {
    let fleet = fleet_failing(&["h1"]);
    let mut rig = start(fleet_config(6, ""), fleet.clone());
    rig.engine
        .start_wave(pausing(6, "1,2", FailureLimit::Count(0)))
        .unwrap();
    rig.threshold().await;
    rig.engine.decide_wave(ThresholdChoice::Abort).unwrap();
    let end = rig.wave_end().await;
    assert_eq!(end.status, WaveStatus::Halted);
    assert_eq!(
        end.reason.as_deref(),
        Some("1 hosts failed, more than max_failures (0)")
    );
    assert_eq!(fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst), 3);

    // h1 failed: it is refused (and replaced) until retried.
    assert_eq!(rig.step("h1", JobKind::Retry).await, Outcome::Succeeded);
    rig.engine
        .start_wave(pausing(6, "1,2", FailureLimit::Count(0)))
        .unwrap();
    rig.threshold().await;
    rig.engine.abort_wave().unwrap();
    let end = rig.wave_end().await;
    assert_eq!(end.status, WaveStatus::Aborted);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn rolling_waits_for_the_hosts_in_flight_then_asks() {
    // h1 fails at once; h2 and h3 take longer, so no slot frees before the failure counts.
    let fleet = SimFleet::new();
    fleet.set(
        "h1",
        Behaviour {
            fail_upgrade: true,
            upgrade_time: Duration::ZERO,
            ..Behaviour::default()
        },
    );
    for slow in ["h2", "h3"] {
        fleet.set(
            slow,
            Behaviour {
                upgrade_time: Duration::from_millis(300),
                ..Behaviour::default()
            },
        );
    }
    let mut rig = start(fleet_config(8, ""), fleet.clone());
    let request = WaveRequest {
        mode: WaveMode::Rolling,
        ..pausing(8, "1,3", FailureLimit::Count(0))
    };
    rig.engine.start_wave(request).unwrap();
    let at = rig.threshold().await;
    assert!(
        at.in_flight.is_empty(),
        "h2 and h3 ended before the question"
    );
    assert_eq!(upgrades_of(&fleet, "h2"), 1);
    let started = fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        started, 4,
        "no host started after h1 failed: h0, then h1 h2 h3"
    );
    rig.engine.decide_wave(ThresholdChoice::SkipFailed).unwrap();
    let end = rig.wave_end().await;
    assert_eq!(end.status, WaveStatus::Finished);
    assert_eq!((end.succeeded, end.failed, end.skipped), (7, 0, 1));
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn on_threshold_abort_halts_as_before() {
    let fleet = fleet_failing(&["h1"]);
    let mut rig = start(fleet_config(6, ""), fleet.clone());
    rig.engine
        .start_wave(wave(
            (0..6).map(|i| HostId::from(format!("h{i}"))).collect(),
            "1,2",
            FailureLimit::Count(0),
        ))
        .unwrap();
    let events = rig.until(wave_ended).await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Threshold))
    );
    assert_eq!(last_progress(&events).status, WaveStatus::Halted);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}
