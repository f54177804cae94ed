//! Waves on the simulated fleet: the batch cap at scale, halting, pause/resume/abort.

use std::time::Duration;

use super::super::bus::Event;
use super::super::testkit::{Behaviour, SimFleet};
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
    rig.engine.resume_wave().unwrap();
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
    let fleet = SimFleet::new();
    fleet.set(
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
    let kind = bus::JobKind::Update {
        dry_run: false,
        allow_removals: false,
    };
    let (job, answer) = bus::Job::answered(kind, bus::Origin::Wave(7));
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
