//! The wave's two questions on a TestBackend, over a real engine on the simulated fleet: the
//! threshold dialog (who failed and why, the four choices) and the unfinished-wave offer at
//! start (resume, discard; the config's changes shown and accepted by resuming).

use std::collections::BTreeMap;

use crate::config::{FailureLimit, HostId, OnThreshold};
use crate::engine::WaveRequest;
use crate::engine::bus::{Event, WaveStatus};
use crate::engine::testkit::{Behaviour, SimFleet};
use crate::engine::tests::{Rig, fleet_config_named, fleet_where, start_in, wave_ended};
use crate::store::snapshot::{SavedStatus, SavedWave, SavedWaveHost, Snapshot, Stand};
use crate::tui::app::App;
use crate::tui::testing::{demo_app_on, demo_model, draw, press, settings, text};
use crate::tui::theme::Theme;
use crate::tui::view::Overlay;

async fn follow(app: &mut App, rig: &mut Rig, stop: impl FnMut(&Event) -> bool) -> Vec<Event> {
    let events = rig.until(stop).await;
    for event in &events {
        app.apply(event);
    }
    events
}

fn status(app: &App) -> &str {
    &app.view.status.as_ref().expect("a status message").text
}

fn names() -> Vec<HostId> {
    demo_model()
        .hosts()
        .iter()
        .map(|h| h.name().clone())
        .collect()
}

#[tokio::test]
async fn the_threshold_dialog_names_the_failed_hosts_and_skip_goes_on() {
    let fleet = fleet_where(
        "host-01",
        Behaviour {
            fail_upgrade: true,
            ..Behaviour::default()
        },
    );
    let (mut app, mut rig) = demo_app_on(fleet, Theme::plain(), false);
    let request = WaveRequest {
        hosts: names(),
        sizes: crate::config::BatchSize::parse_list("1,2").unwrap(),
        delay: std::time::Duration::ZERO,
        max_failures: FailureLimit::Count(0),
        mode: crate::config::WaveMode::Batches,
        dry_run: false,
        allow_removals: false,
        scope: crate::pkg::UpgradeScope::default(),
        on_threshold: OnThreshold::Pause,
        defer_overruns: true,
    };
    rig.engine.start_wave(request).unwrap();
    follow(
        &mut app,
        &mut rig,
        |e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Threshold),
    )
    .await;
    assert!(matches!(app.view.overlay, Overlay::Threshold));
    let screen = text(&draw(&mut app, 100, 30));
    assert!(
        screen.contains("The wave paused at its threshold: 3/6 done, 1 failed."),
        "{screen}"
    );
    assert!(screen.contains("✗ host-01: upgrade"), "{screen}");
    for choice in [
        "C  continue",
        "K  skip the failed hosts and continue",
        "X  retry the failed hosts",
        "A  abort the wave",
    ] {
        assert!(screen.contains(choice), "{choice}: {screen}");
    }
    // Esc decides nothing; `p` brings the question back.
    press(&mut app, "Esc");
    assert!(matches!(app.view.overlay, Overlay::None));
    assert!(status(&app).contains("waits at its threshold"));
    press(&mut app, "p");
    assert!(matches!(app.view.overlay, Overlay::Threshold));
    press(&mut app, "K");
    assert_eq!(status(&app), "wave: skipping the failed hosts");
    let events = follow(&mut app, &mut rig, wave_ended).await;
    let Some(Event::Wave(end)) = events.last() else {
        unreachable!()
    };
    assert_eq!(end.status, WaveStatus::Finished);
    assert_eq!((end.succeeded, end.skipped), (5, 1));
    rig.engine.shutdown(std::time::Duration::from_secs(5)).await;
}

/// A saved wave over the demo hosts: host-00 done in batch 1, host-01 failed in batch 2.
fn saved_wave(digests: BTreeMap<String, String>) -> SavedWave {
    let hosts = names()
        .iter()
        .map(|h| SavedWaveHost {
            host: h.to_string(),
            stand: match &**h {
                "host-00" => Stand::Succeeded { batch: 1 },
                "host-01" => Stand::Failed {
                    batch: 2,
                    error: "upgrade: dpkg".into(),
                },
                _ => Stand::Waiting,
            },
        })
        .collect();
    SavedWave {
        id: 7,
        started_at: chrono::Utc::now(),
        request: crate::store::snapshot::SavedRequest {
            sizes: crate::config::BatchSize::parse_list("1,2").unwrap(),
            delay: std::time::Duration::ZERO,
            max_failures: FailureLimit::Count(3),
            mode: crate::config::WaveMode::Batches,
            dry_run: false,
            allow_removals: false,
            scope: crate::pkg::UpgradeScope::default(),
            on_threshold: OnThreshold::Pause,
            defer_overruns: true,
        },
        hosts,
        batch: 2,
        status: SavedStatus::Running,
        reason: None,
        digests,
    }
}

fn app_with_saved(fleet: std::sync::Arc<SimFleet>, saved: SavedWave) -> (App, Rig) {
    let config = fleet_config_named(names().iter().map(ToString::to_string), |_| String::new());
    let snapshot = Snapshot {
        wave: Some(saved),
        ..Snapshot::default()
    };
    let rig = start_in(config, fleet, tempfile::tempdir().unwrap(), Some(snapshot));
    let app = App::new(
        demo_model(),
        rig.engine.clone(),
        settings(Theme::plain(), false),
    );
    (app, rig)
}

#[tokio::test]
async fn an_unfinished_wave_is_offered_at_start_and_resumes_at_its_next_batch() {
    let fleet = SimFleet::new();
    let (mut app, mut rig) = app_with_saved(fleet.clone(), saved_wave(BTreeMap::new()));
    assert!(matches!(app.view.overlay, Overlay::ResumeWave(_)));
    let screen = text(&draw(&mut app, 100, 30));
    assert!(
        screen.contains("Resume wave started")
            && screen.contains("— 2/6 done, 1 failed, next batch 3?"),
        "{screen}"
    );
    assert!(
        screen.contains("y/Enter resume  Delete discard  Esc later"),
        "{screen}"
    );
    press(&mut app, "Enter");
    assert_eq!(status(&app), "resuming wave 7");
    let events = follow(&mut app, &mut rig, wave_ended).await;
    let Some(Event::Wave(end)) = events.last() else {
        unreachable!()
    };
    assert_eq!(end.status, WaveStatus::Finished, "{end:?}");
    assert_eq!((end.succeeded, end.failed), (5, 1));
    assert_eq!(
        fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst),
        4,
        "host-00 and host-01 were not run again"
    );
    rig.engine.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_changed_config_is_shown_before_resuming_and_discard_forgets_the_wave() {
    let mut digests = BTreeMap::new();
    digests.insert("host-02".to_string(), "0000".to_string());
    let (mut app, rig) = app_with_saved(SimFleet::new(), saved_wave(digests));
    let screen = text(&draw(&mut app, 100, 30));
    assert!(
        screen.contains("The config changed since it started; resuming accepts this:")
            && screen.contains("⚠ host 'host-02' has a different config since the wave started")
            && screen.contains("resume with these changes"),
        "{screen}"
    );
    press(&mut app, "Delete");
    assert_eq!(status(&app), "discarded the unfinished wave");
    assert!(rig.engine.saved_wave().is_none());
    rig.engine.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_new_wave_asks_before_it_discards_the_unfinished_one() {
    let (mut app, rig) = app_with_saved(SimFleet::new(), saved_wave(BTreeMap::new()));
    // The demo model shows a wave running; this console has none.
    app.apply(&Event::Wave(crate::tui::testing::wave(
        WaveStatus::Finished,
    )));
    press(&mut app, "Esc");
    assert!(status(&app).contains("the unfinished wave is kept"));
    press(&mut app, "w y");
    assert!(
        status(&app).starts_with("starting discards the unfinished wave started"),
        "{}",
        status(&app)
    );
    assert!(matches!(app.view.overlay, Overlay::Wave(_)), "still asking");
    assert!(rig.engine.saved_wave().is_some());
    press(&mut app, "y");
    assert!(
        status(&app).contains("started on 6 hosts"),
        "{}",
        status(&app)
    );
    assert!(rig.engine.saved_wave().is_none());
    rig.engine.shutdown(std::time::Duration::from_secs(5)).await;
}
