//! Durable waves: the wave's record in the snapshot, a kill mid-wave then a resume from it
//! (no host's update runs twice, the batch numbering goes on), a wave stopped at its threshold
//! asking again after the resume, a plan older than its config, and a new wave replacing it.

use std::time::Duration;

use super::super::bus::Event;
use super::super::testkit::{Behaviour, SimFleet, Upgrade};
use super::super::*;
use super::*;
use crate::config::OnThreshold;
use crate::store::snapshot::{SavedStatus, Stand};

fn names(n: usize) -> Vec<HostId> {
    (0..n).map(|i| HostId::from(format!("h{i}"))).collect()
}

/// How many upgrades of `host` the fleet started.
fn upgrades_of(fleet: &SimFleet, host: &str) -> usize {
    fleet
        .upgrades_in_order()
        .iter()
        .filter(|(h, mark)| h == host && *mark == Upgrade::Started)
        .count()
}

/// The snapshot as it is on disk now, as a new tendhost would load it after a `kill -9`.
fn on_disk(rig: &Rig) -> snapshot::Snapshot {
    let bytes = std::fs::read(rig.dir.path().join("snapshot.json")).unwrap();
    let copy = tempfile::tempdir().unwrap();
    let path = copy.path().join("snapshot.json");
    std::fs::write(&path, bytes).unwrap();
    snapshot::load(&path).snapshot.unwrap()
}

#[tokio::test]
async fn a_wave_killed_mid_way_resumes_at_the_next_host_and_redoes_none() {
    let first = SimFleet::new();
    for slow in ["h3", "h4"] {
        first.set(
            slow,
            Behaviour {
                upgrade_time: Duration::from_secs(600),
                ..Behaviour::default()
            },
        );
    }
    let mut rig = start(fleet_config(6, ""), first.clone());
    rig.engine
        .start_wave(wave(names(6), "1,2", FailureLimit::Count(0)))
        .unwrap();
    // Batch 3 has started: batch 2's ends were made durable before it did.
    rig.until(|e| {
        matches!(e, Event::StateChanged { host, to: StateKind::Updating, .. } if &**host == "h3")
    })
    .await;
    let saved = on_disk(&rig);
    rig.engine.abandon();
    rig.engine.shutdown(Duration::from_secs(5)).await;

    let record = saved
        .wave
        .clone()
        .expect("the wave's record is in the snapshot");
    let stands: Vec<(&str, &Stand)> = record
        .hosts
        .iter()
        .map(|h| (h.host.as_str(), &h.stand))
        .collect();
    assert_eq!(
        stands[..3],
        [
            ("h0", &Stand::Succeeded { batch: 1 }),
            ("h1", &Stand::Succeeded { batch: 2 }),
            ("h2", &Stand::Succeeded { batch: 2 }),
        ]
    );
    assert!(
        !stands[3].1.is_done() && !stands[5].1.is_done(),
        "{stands:?}"
    );
    assert!(
        record.describe().ends_with("3/6 done, next batch 3"),
        "{}",
        record.describe()
    );

    let second = SimFleet::new();
    let dir = tempfile::tempdir().unwrap();
    let mut again = start_in(fleet_config(6, ""), second.clone(), dir, Some(saved));
    assert_eq!(again.engine.saved_wave().as_ref(), Some(&record));
    let id = again.engine.resume_wave(false).unwrap();
    assert_eq!(id, record.id, "a resumed wave keeps its id");
    assert_eq!(again.engine.saved_wave(), None);
    let events = again.until(wave_ended).await;
    let end = last_progress(&events);
    assert_eq!(end.status, WaveStatus::Finished, "{end:?}");
    assert_eq!(end.done, 6);
    let first_batch = events.iter().find_map(|e| match e {
        Event::Wave(p) if p.status == WaveStatus::Running => Some(p.batch),
        _ => None,
    });
    assert_eq!(first_batch, Some(3), "the batch numbering goes on");
    for done in ["h0", "h1", "h2"] {
        assert_eq!(upgrades_of(&second, done), 0, "{done} was upgraded again");
    }
    assert_eq!(upgrades_of(&second, "h5"), 1);
    for caught in ["h3", "h4"] {
        // Caught mid-upgrade: run again, or (when the snapshot had it updating) failed as
        // interrupted and passed over; never twice.
        assert!(upgrades_of(&second, caught) <= 1, "{caught}");
    }
    again.engine.shutdown(Duration::from_secs(5)).await;
    let after = snapshot::load(&again.dir.path().join("snapshot.json"));
    assert!(
        after.snapshot.unwrap().wave.is_none(),
        "a finished wave clears its record"
    );
}

#[tokio::test]
async fn a_wave_stopped_at_its_threshold_asks_again_when_resumed() {
    let first = SimFleet::new();
    first.set(
        "h1",
        Behaviour {
            fail_upgrade: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(4, ""), first.clone());
    let request = WaveRequest {
        on_threshold: OnThreshold::Pause,
        ..wave(names(4), "1,1", FailureLimit::Count(0))
    };
    rig.engine.start_wave(request).unwrap();
    rig.until(|e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Threshold))
        .await;
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let saved = snapshot::load(&rig.dir.path().join("snapshot.json"))
        .snapshot
        .unwrap();
    let record = saved.wave.clone().unwrap();
    assert_eq!(record.status, SavedStatus::Threshold);
    assert!(
        record
            .describe()
            .contains("1 failed, paused at its threshold")
    );

    let second = SimFleet::new();
    let mut again = start_in(
        fleet_config(4, ""),
        second.clone(),
        tempfile::tempdir().unwrap(),
        Some(saved),
    );
    again.engine.resume_wave(false).unwrap();
    let events = again
        .until(|e| {
            wave_ended(e) || matches!(e, Event::Wave(p) if p.status == WaveStatus::Threshold)
        })
        .await;
    let at = last_progress(&events);
    assert_eq!(at.status, WaveStatus::Threshold);
    let failed: Vec<&str> = at.failed_hosts.iter().map(|f| &*f.host).collect();
    assert_eq!(failed, ["h1"]);
    assert_eq!(second.upgrades.load(std::sync::atomic::Ordering::SeqCst), 0);
    again
        .engine
        .decide_wave(ThresholdChoice::RetryFailed)
        .unwrap();
    let end = again.wave_end().await;
    assert_eq!(end.status, WaveStatus::Finished, "{end:?}");
    assert_eq!((end.succeeded, end.failed), (4, 0));
    assert_eq!(upgrades_of(&second, "h0"), 0);
    assert_eq!(upgrades_of(&second, "h1"), 1, "retried");
    again.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_plan_older_than_its_config_resumes_only_once_accepted() {
    let fleet = SimFleet::new();
    fleet.set(
        "h2",
        Behaviour {
            upgrade_time: Duration::from_secs(600),
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(4, ""), fleet.clone());
    rig.engine
        .start_wave(wave(names(4), "1,1", FailureLimit::Count(0)))
        .unwrap();
    rig.until(|e| {
        matches!(e, Event::StateChanged { host, to: StateKind::Updating, .. } if &**host == "h2")
    })
    .await;
    rig.engine.abandon();
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let saved = snapshot::load(&rig.dir.path().join("snapshot.json"))
        .snapshot
        .unwrap();
    assert!(saved.wave.is_some(), "a shutdown keeps the record");

    // h3 is gone and h0 moved to another port.
    let config = fleet_config_named(["h0", "h1", "h2"].map(String::from), |i| {
        if i == 0 {
            "port = 2222".into()
        } else {
            String::new()
        }
    });
    let second = SimFleet::new();
    let mut again = start_in(
        config,
        second.clone(),
        tempfile::tempdir().unwrap(),
        Some(saved),
    );
    let Err(WaveError::Stale(differences)) = again.engine.resume_wave(false) else {
        panic!("a stale plan resumed unconfirmed");
    };
    assert_eq!(
        differences,
        [
            "host 'h0' has a different config since the wave started",
            "host 'h3' is no longer configured",
        ]
    );
    assert!(again.engine.saved_wave().is_some(), "still offered");
    again.engine.resume_wave(true).unwrap();
    let end = again.wave_end().await;
    assert_eq!(end.status, WaveStatus::Finished, "{end:?}");
    assert_eq!(end.total, 3, "h3 was dropped");
    assert_eq!(upgrades_of(&second, "h0") + upgrades_of(&second, "h1"), 0);
    again.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_new_wave_replaces_the_saved_one_and_nothing_to_resume_says_so() {
    let fleet = SimFleet::new();
    let rig = start(fleet_config(2, ""), fleet.clone());
    assert_eq!(
        rig.engine.resume_wave(false),
        Err(WaveError::NothingToResume)
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;

    let record = crate::store::snapshot::SavedWave {
        id: 7,
        started_at: chrono::Utc::now(),
        request: wave(names(2), "1", FailureLimit::Count(0)).saved(),
        hosts: names(2)
            .iter()
            .map(|h| crate::store::snapshot::SavedWaveHost {
                host: h.to_string(),
                stand: Stand::Waiting,
            })
            .collect(),
        batch: 0,
        status: SavedStatus::Running,
        reason: None,
        digests: Default::default(),
    };
    let saved = snapshot::Snapshot {
        wave: Some(record),
        ..Default::default()
    };
    let mut again = start_in(
        fleet_config(2, ""),
        fleet,
        tempfile::tempdir().unwrap(),
        Some(saved),
    );
    assert!(again.engine.saved_wave().is_some());
    let id = again
        .engine
        .start_wave(wave(names(1), "1", FailureLimit::Count(0)))
        .unwrap();
    assert_eq!(id, 8, "new waves never reuse a saved wave's id");
    assert_eq!(again.engine.saved_wave(), None);
    assert_eq!(again.wave_end().await.status, WaveStatus::Finished);
    again.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_rolling_wave_killed_mid_way_resumes_and_redoes_no_finished_host() {
    let first = SimFleet::new();
    for slow in ["h3", "h4", "h5"] {
        first.set(
            slow,
            Behaviour {
                upgrade_time: Duration::from_secs(600),
                ..Behaviour::default()
            },
        );
    }
    let mut rig = start(fleet_config(6, ""), first.clone());
    let request = WaveRequest {
        mode: crate::config::WaveMode::Rolling,
        ..wave(names(6), "1,2", FailureLimit::Count(0))
    };
    rig.engine.start_wave(request).unwrap();
    rig.until(|e| {
        matches!(e, Event::StateChanged { host, to: StateKind::Updating, .. } if &**host == "h3")
    })
    .await;
    let saved = on_disk(&rig);
    rig.engine.abandon();
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let record = saved.wave.clone().unwrap();
    let done: Vec<String> = record
        .hosts
        .iter()
        .filter(|h| matches!(h.stand, Stand::Succeeded { .. }))
        .map(|h| h.host.clone())
        .collect();
    assert!(done.len() >= 2, "{record:?}");

    let second = SimFleet::new();
    let mut again = start_in(
        fleet_config(6, ""),
        second.clone(),
        tempfile::tempdir().unwrap(),
        Some(saved),
    );
    again.engine.resume_wave(false).unwrap();
    let end = again.wave_end().await;
    assert_eq!(end.status, WaveStatus::Finished, "{end:?}");
    assert_eq!(end.done, 6);
    for host in &done {
        assert_eq!(upgrades_of(&second, host), 0, "{host} was upgraded again");
    }
    for host in ["h3", "h4", "h5"] {
        assert!(upgrades_of(&second, host) <= 1, "{host}");
    }
    again.engine.shutdown(Duration::from_secs(5)).await;
}
