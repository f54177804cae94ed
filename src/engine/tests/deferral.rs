//! Issue 12: a wave defers a host whose predicted update (from its own history) would overrun
//! its maintenance window, instead of starting it late; the other hosts run.

use std::time::Duration;

use chrono::{Local, Timelike};

use super::*;
use crate::fleet::{HostModel, Measurement};
use crate::store::snapshot::{SavedHost, Snapshot};

/// A window open since an hour ago that closes ten minutes from now, every day.
fn window_closing_soon() -> String {
    let now = Local::now();
    let hhmm = |t: chrono::DateTime<Local>| format!("{:02}:{:02}", t.hour(), t.minute());
    format!(
        "[host.policy]\nmaintenance_window = {{ start = \"{}\", end = \"{}\" }}\n",
        hhmm(now - chrono::Duration::hours(1)),
        hhmm(now + chrono::Duration::minutes(10)),
    )
}

/// `host` as a snapshot remembers it: three upgrades of two packages that took 40 minutes.
fn slow_history(host: &str) -> SavedHost {
    let mut model = HostModel::new(host.into());
    for _ in 0..3 {
        model.history.record(&Measurement::Upgrade {
            at: chrono::Utc::now(),
            took: Duration::from_secs(40 * 60),
            packages: 2,
        });
    }
    SavedHost::new(model)
}

#[tokio::test(start_paused = true)]
async fn a_wave_defers_a_host_whose_predicted_update_overruns_its_window() {
    // h0 has the window and the slow history; h1 has neither.
    let config = fleet_config_each(2, |i| match i {
        0 => window_closing_soon(),
        _ => String::new(),
    });
    let snapshot = Snapshot {
        saved_at: None,
        hosts: vec![slow_history("h0")],
        wave: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut rig = start_in(config, SimFleet::new(), dir, Some(snapshot));
    let hosts = vec![HostId::from("h0"), HostId::from("h1")];
    rig.engine
        .start_wave(wave(hosts, "1", FailureLimit::Count(0)))
        .unwrap();
    let events = rig.until(wave_ended).await;
    let outcome = |host: &str| {
        events.iter().find_map(|e| match e {
            Event::WaveHostFinished {
                host: h, outcome, ..
            } if &**h == host => Some(outcome.clone()),
            _ => None,
        })
    };
    let Some(Outcome::Skipped { reason }) = outcome("h0") else {
        panic!("h0 not deferred: {:?}", outcome("h0"));
    };
    assert!(
        reason.starts_with("deferred to its next window (")
            && reason.contains("): predicted 40m, ")
            && reason.contains(" left of '"),
        "{reason}"
    );
    assert_eq!(outcome("h1"), Some(Outcome::Succeeded));
    assert!(
        !state_of(&events, "h0").contains(&StateKind::Updating),
        "the deferred host was read, never changed"
    );
    // The host that ran measured its upgrade: its next wave has a prediction.
    assert!(events.iter().any(|e| matches!(e,
        Event::Measured { host, measurement: Measurement::Upgrade { packages: 2, .. } }
            if &**host == "h1")));
    assert_eq!(last_progress(&events).status, WaveStatus::Finished);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn without_history_a_host_in_a_closing_window_is_not_deferred() {
    let config = fleet_config_each(1, |_| window_closing_soon());
    let mut rig = start(config, SimFleet::new());
    rig.engine
        .start_wave(wave(vec![HostId::from("h0")], "1", FailureLimit::Count(0)))
        .unwrap();
    let events = rig.until(wave_ended).await;
    assert_eq!(
        last_progress(&events).succeeded,
        1,
        "a first run is not deferred on a guess"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

/// The steps measure what they did: an upgrade with its package count and a reboot from issue
/// to verified; the snapshot keeps both, so the next run of tendhost can predict.
#[tokio::test(start_paused = true)]
async fn an_update_with_a_reboot_measures_both_and_the_snapshot_keeps_them() {
    let fleet = fleet_where(
        "h0",
        Behaviour {
            reboot_required: true,
            upgrade_time: Duration::from_secs(90),
            down_for: Duration::from_secs(3),
            ..Behaviour::default()
        },
    );
    let mut rig = start(
        fleet_config(1, "[host.policy]\nauto_reboot = true\n"),
        fleet,
    );
    let answer = rig.send_step("h0", update());
    let mut measured = Vec::new();
    rig.until(|e| {
        if let Event::Measured { measurement, .. } = e {
            measured.push(measurement.clone());
        }
        measured.len() == 2
    })
    .await;
    assert_eq!(answer.await.unwrap(), Outcome::Succeeded);
    let Measurement::Upgrade { took, packages, .. } = &measured[0] else {
        panic!("{measured:?}");
    };
    assert_eq!(*packages, 2);
    assert!(*took >= Duration::from_secs(90), "{took:?}");
    let Measurement::Reboot { took, .. } = &measured[1] else {
        panic!("{measured:?}");
    };
    assert!(*took >= Duration::from_secs(3), "{took:?}");
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let saved = snapshot::load(&rig.dir.path().join("snapshot.json"))
        .snapshot
        .unwrap();
    let history = &saved.hosts[0].model.history;
    assert_eq!((history.upgrades.len(), history.reboots.len()), (1, 1));
}
