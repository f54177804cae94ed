//! Waves on the simulated fleet: the batch cap at scale, halting, pause/resume/abort, and how a
//! wave keeps its canary (replacing hosts that did not run, stopping when a batch proved nothing).

use std::time::Duration;

use super::super::bus::Event;
use super::super::testkit::{Behaviour, SimFleet, Upgrade};
use super::super::*;
use super::*;

#[tokio::test]
async fn wave_over_ten_thousand_hosts_never_exceeds_its_batch_size() {
    let fleet = SimFleet::new();
    let started = std::time::Instant::now();
    let config = fleet_config(10_000, "");
    eprintln!("config: {:?}", started.elapsed());
    let hosts: Vec<HostId> = config.hosts.iter().map(|h| h.name.clone()).collect();
    let mut rig = start(config, fleet.clone());
    rig.engine
        .start_wave(wave(hosts, "500", FailureLimit::Count(0)))
        .unwrap();
    let end = rig.wave_end().await;
    eprintln!("wave done: {:?}", started.elapsed());
    assert_eq!(end.status, WaveStatus::Finished);
    assert_eq!(end.succeeded, 10_000);
    assert_eq!(end.batches, 20);
    assert_eq!(
        fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst),
        10_000
    );
    assert!(fleet.peak() <= 500, "peak {} hosts in flight", fleet.peak());
    assert!(
        fleet.peak() > 250,
        "batches did not run in parallel (peak {})",
        fleet.peak()
    );
    rig.engine.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn wave_canary_first_and_halts_on_max_failures() {
    let fleet = SimFleet::new();
    let config = fleet_config(20, "");
    let hosts: Vec<HostId> = config.hosts.iter().map(|h| h.name.clone()).collect();
    for bad in ["h3", "h4"] {
        fleet.set(
            bad,
            Behaviour {
                fail_upgrade: true,
                ..Behaviour::default()
            },
        );
    }
    let mut rig = start(config, fleet.clone());
    rig.engine
        .start_wave(wave(hosts, "1,5", FailureLimit::Count(1)))
        .unwrap();
    let end = rig.wave_end().await;
    assert_eq!(end.status, WaveStatus::Halted);
    assert_eq!(
        end.batch, 2,
        "halted after the batch holding the second failure"
    );
    assert_eq!((end.succeeded, end.failed), (4, 2));
    assert!(
        end.reason
            .as_deref()
            .unwrap()
            .contains("more than max_failures (1)")
    );
    assert!(fleet.peak() <= 5);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn wave_pause_resume_and_abort() {
    let fleet = SimFleet::new();
    let config = fleet_config(6, "");
    let hosts: Vec<HostId> = config.hosts.iter().map(|h| h.name.clone()).collect();
    let mut rig = start(config, fleet.clone());
    let mut request = wave(hosts, "2", FailureLimit::Count(0));
    request.delay = Duration::from_millis(300);
    rig.engine.start_wave(request).unwrap();
    assert!(
        rig.engine
            .start_wave(wave(vec!["h0".into()], "1", FailureLimit::Count(0)))
            .is_err()
    );
    rig.until(|e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Delaying))
        .await;
    rig.engine.pause_wave().unwrap();
    rig.until(|e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Paused))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "a paused wave started hosts"
    );
    rig.engine.unpause_wave().unwrap();
    rig.until(|e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Running && p.batch == 2))
        .await;
    rig.engine.abort_wave().unwrap();
    let end = rig.wave_end().await;
    assert_eq!(end.status, WaveStatus::Aborted);
    assert!(end.done <= 4 && end.done >= 2, "{end:?}");
    assert!(
        rig.engine.abort_wave().is_err(),
        "no wave should be running"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_aborted_step_never_reboots_and_the_next_wave_does() {
    let fleet = fleet_where(
        "h0",
        Behaviour {
            reboot_required: true,
            upgrade_time: Duration::from_millis(400),
            ..Behaviour::default()
        },
    );
    let mut rig = start(
        fleet_config(1, "[host.policy]\nauto_reboot = true\n"),
        fleet,
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let (job, answer) = bus::Job::answered(update(), bus::Origin::Wave(7));
    rig.engine
        .try_send("h0", job.stopped_by(stop.clone()))
        .unwrap();
    rig.until(|e| {
        matches!(
            e,
            Event::StateChanged {
                to: bus::StateKind::Updating,
                ..
            }
        )
    })
    .await;
    stop.cancel(); // the wave is aborted while the upgrade runs: it finishes, but no reboot
    let events = rig
        .until(|e| {
            matches!(
                e,
                Event::StateChanged {
                    to: bus::StateKind::WaitingReboot,
                    ..
                }
            )
        })
        .await;
    assert_eq!(answer.await.unwrap(), bus::Outcome::Succeeded);
    let Some(Event::StateChanged { state, .. }) = events.last() else {
        unreachable!()
    };
    let reason = state.phase.reason().unwrap_or_default();
    assert_eq!(&*reason, "wave aborted before the reboot");

    rig.engine
        .start_wave(wave(vec!["h0".into()], "1", FailureLimit::Count(0)))
        .unwrap();
    let events = rig
        .until(|e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Finished))
        .await;
    assert_eq!(
        state_of(&events, "h0"),
        [
            bus::StateKind::Rebooting,
            bus::StateKind::Verifying,
            bus::StateKind::Idle
        ]
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// The selection's names, in config order.
fn names(config: &Config) -> Vec<HostId> {
    config.hosts.iter().map(|h| h.name.clone()).collect()
}

/// `n` hosts, of which those in `closed` have a maintenance window that is never open today
/// (it is the day after tomorrow); also the reason a wave gives for skipping them.
fn fleet_with_closed_windows(n: usize, closed: &[usize]) -> (Config, String) {
    use chrono::Datelike;
    let day = chrono::Local::now().weekday().succ().succ();
    let window = format!(
        "[host.policy]\nmaintenance_window = {{ start = \"00:00\", end = \"23:59\", days = [\"{day}\"] }}\n"
    );
    let config = fleet_config_each(n, |i| {
        if closed.contains(&i) {
            window.clone()
        } else {
            String::new()
        }
    });
    (
        config,
        format!("outside maintenance window '{day} 00:00-23:59'"),
    )
}

/// An upgrade that breaks, as dpkg's does.
fn failing_upgrade() -> Behaviour {
    Behaviour {
        fail_upgrade: true,
        ..Behaviour::default()
    }
}

/// Fails `host` for real (its upgrade breaks), so a later wave finds it Failed.
async fn fail_before_the_wave(rig: &mut Rig, fleet: &SimFleet, host: &str) {
    fleet.set(host, failing_upgrade());
    let outcome = rig.step(host, update()).await;
    assert!(outcome.is_failure(), "{outcome:?}");
}

impl Rig {
    /// Runs a wave over `hosts` to its end: its events, and the last progress.
    async fn run_wave(
        &mut self,
        hosts: Vec<HostId>,
        sizes: &str,
        max_failures: FailureLimit,
    ) -> (Vec<Event>, bus::WaveProgress) {
        self.engine
            .start_wave(wave(hosts, sizes, max_failures))
            .unwrap();
        let events = self.until(wave_ended).await;
        let end = last_progress(&events);
        (events, end)
    }
}

fn skipped(host: &str, reason: &str) -> bus::SkippedHost {
    bus::SkippedHost {
        host: host.into(),
        reason: reason.into(),
    }
}

/// Whether any of `hosts` changed state in `events`.
fn touched(events: &[Event], hosts: &[&str]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::StateChanged { host, .. } if hosts.contains(&&**host)))
}

fn started_and_ended(host: &str) -> [(String, Upgrade); 2] {
    [
        (host.to_string(), Upgrade::Started),
        (host.to_string(), Upgrade::Ended),
    ]
}

const FAILED_EARLIER: &str = "cannot refresh: it failed; retry it first";

/// Issue 9 (`issues show 9`, "Waves keep their canary"): with sizes `1,100%` and the first host
/// already Failed, the canary was "skipped" and the whole fleet upgraded at once.
#[tokio::test]
async fn issue9_a_failed_first_host_is_replaced_as_canary_before_the_rest_runs() {
    let fleet = SimFleet::new();
    let config = fleet_config(5, "");
    let hosts = names(&config);
    let mut rig = start(config, fleet.clone());
    fail_before_the_wave(&mut rig, &fleet, "h0").await;
    let before = fleet.upgrades_in_order().len();
    let (events, end) = rig.run_wave(hosts, "1,100%", FailureLimit::Count(0)).await;
    assert_eq!(end.status, WaveStatus::Finished, "{end:?}");
    assert_eq!((end.succeeded, end.failed, end.skipped), (4, 0, 1));
    assert_eq!(*end.skipped_hosts, [skipped("h0", FAILED_EARLIER)]);
    assert_eq!(end.batches, 2);
    // h1 became the canary: its upgrade ended before any other upgrade started.
    let log = &fleet.upgrades_in_order()[before..];
    assert_eq!(log[..2], started_and_ended("h1"), "{log:?}");
    assert_eq!(
        log.len(),
        8,
        "h1..h4 upgraded once each, h0 not at all: {log:?}"
    );
    let batch_two = events.iter().find_map(|e| match e {
        Event::Wave(p) if p.batch == 2 && p.status == WaveStatus::Running => {
            Some(p.in_flight.clone())
        }
        _ => None,
    });
    assert_eq!(batch_two, Some(vec!["h2".into(), "h3".into(), "h4".into()]));
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn issue9_the_wave_stops_before_batch_2_when_no_canary_candidate_succeeds() {
    let fleet = SimFleet::new();
    let (config, outside) = fleet_with_closed_windows(5, &[1]);
    let hosts = names(&config);
    let mut rig = start(config, fleet.clone());
    fail_before_the_wave(&mut rig, &fleet, "h0").await;
    fleet.set("h2", failing_upgrade());
    let before = fleet.upgrades_in_order().len();
    let (events, end) = rig.run_wave(hosts, "1,100%", FailureLimit::Count(3)).await;
    assert_eq!(end.status, WaveStatus::Halted, "{end:?}");
    assert_eq!(end.batch, 1);
    assert_eq!((end.succeeded, end.failed, end.skipped), (0, 1, 2));
    let reason = end.reason.unwrap();
    let expected = format!(
        "canary batch 1 had no host that succeeded (h0 skipped: {FAILED_EARLIER}, \
         h1 skipped: {outside}, h2 failed: upgrade: "
    );
    assert!(reason.starts_with(&expected), "{reason}");
    assert!(!touched(&events, &["h3", "h4"]), "batch 2 started");
    assert_eq!(fleet.upgrades_in_order()[before..], started_and_ended("h2"));
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn skipped_hosts_are_replaced_within_the_batch_size_and_listed_with_their_reason() {
    let fleet = SimFleet::new();
    let (config, outside) = fleet_with_closed_windows(6, &[2, 3]);
    let hosts = names(&config);
    let mut rig = start(config, fleet.clone());
    let (events, end) = rig.run_wave(hosts, "1,2", FailureLimit::Count(0)).await;
    assert_eq!(end.status, WaveStatus::Finished, "{end:?}");
    assert_eq!((end.succeeded, end.skipped, end.done), (4, 2, 6));
    assert_eq!(
        *end.skipped_hosts,
        [skipped("h2", &outside), skipped("h3", &outside)]
    );
    // Batch 2 is h1 and h2; h2 is replaced by h3, h3 by h4; so h5 alone is batch 3.
    assert_eq!((end.batch, end.batches), (3, 3));
    let most = events
        .iter()
        .filter_map(|e| match e {
            Event::Wave(p) => Some(p.in_flight.len()),
            _ => None,
        })
        .max();
    assert_eq!(
        most,
        Some(2),
        "never more hosts in flight than the batch size"
    );
    assert!(fleet.peak() <= 2);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_busy_canary_is_replaced() {
    let fleet = slow_fleet(Duration::from_secs(30));
    let config = fleet_config(3, "");
    let hosts = names(&config);
    let mut rig = start(config, fleet.clone());
    let _upgrade = rig.send_step("h0", update());
    rig.until_state(bus::StateKind::Updating).await;
    let (_, end) = rig.run_wave(hosts, "1,100%", FailureLimit::Count(0)).await;
    assert_eq!(end.status, WaveStatus::Finished, "{end:?}");
    assert_eq!((end.succeeded, end.skipped), (2, 1));
    assert_eq!(*end.skipped_hosts, [skipped("h0", "busy (updating)")]);
    rig.engine.abandon(); // h0's long upgrade has made its point
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// Issue 10 ("jump hosts are not rebooted under their dependants"): h0 is the jump host of h1
/// and h2 and needs a reboot; the wave runs it after them, in a batch of its own, so its reboot
/// never cuts off an upgrade running through it.
#[tokio::test]
async fn issue10_a_wave_updates_and_reboots_a_jump_host_after_the_hosts_behind_it() {
    let fleet = fleet_where(
        "h0",
        Behaviour {
            reboot_required: true,
            ..Behaviour::default()
        },
    );
    let config = fleet_config_each(4, |i| match i {
        0 => "[host.policy]\nauto_reboot = true\n".to_string(),
        1 | 2 => "proxy_jump = \"h0\"\n".to_string(),
        _ => String::new(),
    });
    let hosts = names(&config);
    let mut rig = start(config, fleet.clone());
    let (events, end) = rig.run_wave(hosts, "1,100%", FailureLimit::Count(0)).await;
    assert_eq!(end.status, WaveStatus::Finished, "{end:?}");
    assert_eq!((end.succeeded, end.batches), (4, 3), "{end:?}");
    let log = fleet.upgrades_in_order();
    assert_eq!(
        log[..2],
        started_and_ended("h1"),
        "h1 is the canary: {log:?}"
    );
    assert_eq!(
        log[6..],
        started_and_ended("h0"),
        "h0 started only once every host behind it was done: {log:?}"
    );
    let batches: Vec<Vec<HostId>> = events
        .iter()
        .filter_map(|e| match e {
            Event::Wave(p) if p.status == WaveStatus::Running && !p.in_flight.is_empty() => {
                Some((p.batch, p.in_flight.clone()))
            }
            _ => None,
        })
        .fold(Vec::new(), |mut batches, (batch, in_flight)| {
            if batches.len() < batch {
                batches.push(in_flight);
            }
            batches
        });
    assert_eq!(
        batches,
        [
            vec!["h1".into()],
            vec!["h2".into(), "h3".into()],
            vec![HostId::from("h0")]
        ]
    );
    assert!(
        state_of(&events, "h0").contains(&bus::StateKind::Rebooting),
        "h0 was not rebooted"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// The most hosts of `cluster` upgrading at once, from the fleet's log of upgrade starts and ends.
fn cluster_peak(fleet: &SimFleet, cluster: &[String]) -> usize {
    let (mut now, mut peak) = (0usize, 0usize);
    for (host, mark) in fleet.upgrades_in_order() {
        if !cluster.contains(&host) {
            continue;
        }
        match mark {
            Upgrade::Started => {
                now += 1;
                peak = peak.max(now);
            }
            Upgrade::Ended => now -= 1,
        }
    }
    peak
}

#[tokio::test]
async fn cluster_mates_never_upgrade_at_once_in_a_wave_or_by_hand() {
    let cluster_of = |i: usize| match i {
        0..4 => "cluster = \"db\"",
        4..8 => "cluster = \"web\"",
        _ => "",
    };
    let config = fleet_config_each(12, |i| cluster_of(i).to_string());
    let names =
        |range: std::ops::Range<usize>| -> Vec<String> { range.map(|i| format!("h{i}")).collect() };
    let (db, web) = (names(0..4), names(4..8));
    let hosts: Vec<HostId> = config.hosts.iter().map(|h| h.name.clone()).collect();
    let fleet = SimFleet::new();
    let mut rig = start(config, fleet.clone());
    let mut request = wave(hosts.clone(), "1,6", FailureLimit::Count(0));
    request.mode = crate::config::WaveMode::Rolling;
    rig.engine.start_wave(request).unwrap();
    let end = rig.wave_end().await;
    assert_eq!(end.status, WaveStatus::Finished);
    assert_eq!(end.succeeded, 12);
    assert_eq!(cluster_peak(&fleet, &db), 1);
    assert_eq!(cluster_peak(&fleet, &web), 1);
    assert!(
        fleet.peak() >= 3,
        "the wave still ran hosts side by side ({})",
        fleet.peak()
    );

    // By hand: every host at once; the cluster-mates take turns, the rest run together.
    let by_hand = SimFleet::new();
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let config = fleet_config_each(12, |i| cluster_of(i).to_string());
    let mut rig = start(config, by_hand.clone());
    let answers: Vec<_> = hosts.iter().map(|h| rig.send_step(h, update())).collect();
    let mut answers = futures::future::join_all(answers);
    let outcomes = loop {
        tokio::select! {
            outcomes = &mut answers => break outcomes,
            Some(_) = rig.events.recv() => {}
        }
    };
    assert!(
        outcomes
            .iter()
            .all(|o| *o.as_ref().unwrap() == Outcome::Succeeded)
    );
    assert_eq!(cluster_peak(&by_hand, &db), 1);
    assert_eq!(cluster_peak(&by_hand, &web), 1);
    assert!(by_hand.peak() >= 4, "peak {}", by_hand.peak());
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn cluster_mates_take_turns_through_upgrade_reboot_and_verify() {
    let fleet = SimFleet::new();
    for host in ["h0", "h1", "h2"] {
        fleet.set(
            host,
            Behaviour {
                reboot_required: true,
                down_for: Duration::from_millis(100),
                ..Behaviour::default()
            },
        );
    }
    let config = fleet_config(3, "cluster = \"db\"\n[host.policy]\nauto_reboot = true\n");
    let mut rig = start(config, fleet.clone());
    let answers: Vec<_> = ["h0", "h1", "h2"]
        .iter()
        .map(|h| rig.send_step(h, update()))
        .collect();
    let mut answers = futures::future::join_all(answers);
    let mut events = Vec::new();
    let outcomes = loop {
        tokio::select! {
            outcomes = &mut answers => break outcomes,
            Some(event) = rig.events.recv() => events.push(event),
        }
    };
    assert!(
        outcomes
            .iter()
            .all(|o| *o.as_ref().unwrap() == Outcome::Succeeded),
        "{outcomes:?}"
    );
    // Hosts changing at once, from their moves: updating, rebooting, verifying.
    let mut changing = std::collections::HashSet::new();
    let mut peak = 0;
    let mut reboots = 0;
    for event in &events {
        if let Event::StateChanged { host, to, .. } = event {
            if *to == bus::StateKind::Rebooting {
                reboots += 1;
            }
            if to.is_mutating() {
                changing.insert(host.clone());
            } else {
                changing.remove(host);
            }
            peak = peak.max(changing.len());
        }
    }
    assert_eq!(reboots, 3, "every host rebooted");
    assert_eq!(peak, 1, "two hosts of cluster db changed at once");
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// Issue 15: a hypervisor's inventory names its guests; the engine matches them to configured
/// hosts (by address and by hostname) and every wave then treats them like declared `runs_on`.
#[tokio::test(start_paused = true)]
async fn detected_guests_go_before_their_hypervisor() {
    use crate::inventory::{Guest, GuestKind, Hypervisor};
    let guest = |id, name: &str, ips: &[&str]| Guest {
        id,
        kind: GuestKind::Lxc,
        name: name.into(),
        status: "running".into(),
        hostname: Some(name.into()),
        ips: ips.iter().map(|s| s.to_string()).collect(),
    };
    let fleet = SimFleet::new();
    fleet.set(
        "h0",
        Behaviour {
            hypervisor: Some(Hypervisor {
                platform: "proxmox".into(),
                version: "8.2.4".into(),
                guests: vec![guest(101, "ct-dns", &["10.0.0.1"]), guest(102, "h2", &[])],
            }),
            ..Behaviour::default()
        },
    );
    let config = fleet_config(4, "");
    let hosts: Vec<HostId> = config.hosts.iter().map(|h| h.name.clone()).collect();
    let mut rig = start(config, fleet);
    assert!(rig.engine.detected_guests().is_empty());
    rig.step("h0", JobKind::Refresh).await;
    let detected = rig.engine.detected_guests();
    let pairs: Vec<(&str, &str)> = detected.iter().map(|(g, h)| (&**g, &**h)).collect();
    assert_eq!(pairs, [("h1", "h0"), ("h2", "h0")]);
    assert!(rig.engine.jump_hosts().is_hypervisor("h0"));

    rig.engine
        .start_wave(wave(hosts, "100%", FailureLimit::Count(0)))
        .unwrap();
    let events = rig.until(wave_ended).await;
    let finished: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::WaveHostFinished { host, .. } => Some(&**host),
            _ => None,
        })
        .collect();
    assert_eq!(finished.last(), Some(&"h0"), "{finished:?}");
    assert_eq!(last_progress(&events).batches, 2);
}
