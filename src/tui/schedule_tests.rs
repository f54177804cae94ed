//! The console's scheduler over a real engine on the simulated fleet: due runs start their
//! wave and record its result, runs are skipped (and audited) rather than stacked, missed runs
//! follow their policy, pauses are saved, and a read-only console runs nothing. The clock is
//! the test's: every call is given its `now`.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::engine::bus::{Event, WaveStatus};
use crate::engine::testkit::SimFleet;
use crate::engine::tests::{Rig, slow_fleet, start};
use crate::schedule::{STATE_FILE, ScheduleStates};
use crate::tui::schedules::Scheduler;
use crate::tui::testing::{demo_model, draw, press, settings, text};
use crate::tui::theme::Theme;

/// Hosts `h0`…`h2` (or the demo's `host-00`…`host-05`) and two schedules: `nightly` due every
/// minute with the given missed-run policy, and `sunday` at a weekly time.
fn config(hosts: &[&str], missed: &str) -> Config {
    let mut text = String::from("[fleet]\nconcurrency = 1000\nreboot_timeout = \"5s\"\n");
    for (i, name) in hosts.iter().enumerate() {
        text.push_str(&format!(
            "[[host]]\nname = \"{name}\"\naddr = \"10.0.0.{i}\"\n\n"
        ));
    }
    text.push_str(&format!(
        "[[schedule]]\nname = \"nightly\"\nwhen = \"* * * * *\"\nmissed = \"{missed}\"\n\n\
         [[schedule]]\nname = \"sunday\"\nwhen = \"Sun 03:00\"\nhosts = [\"{}\"]\n",
        hosts[0]
    ));
    Config::from_str("sched.toml", &text).unwrap()
}

const HOSTS: [&str; 3] = ["h0", "h1", "h2"];

/// The state file once every write the scheduler started is done.
async fn saved(scheduler: &mut Scheduler, path: &Path) -> ScheduleStates {
    scheduler.flush().await;
    ScheduleStates::load(path).unwrap()
}

/// The audit file once the scheduler's records are handed over and the engine's appender has
/// written everything (it drains at shutdown).
async fn audit_after(scheduler: &mut Scheduler, rig: &Rig) -> String {
    scheduler.flush().await;
    rig.engine.shutdown(Duration::from_secs(10)).await;
    std::fs::read_to_string(rig.dir.path().join("audit.jsonl")).unwrap_or_default()
}

async fn until_wave_ends(rig: &mut Rig) -> Vec<Event> {
    rig.until(|e| {
        matches!(e, Event::Wave(p) if matches!(p.status, WaveStatus::Finished | WaveStatus::Halted | WaveStatus::Aborted))
    })
    .await
}

#[tokio::test]
async fn a_due_schedule_starts_its_wave_once_and_records_how_it_went() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STATE_FILE);
    let mut rig = start(config(&HOSTS, "run"), SimFleet::new());
    let t0 = Utc::now();
    let (mut scheduler, warning) = Scheduler::load(rig.engine.config(), Some(path.clone()), t0);
    assert_eq!(warning, None);
    assert!(scheduler.is_active());
    assert!(scheduler.answer_missed(&rig.engine, t0).is_empty());
    let wake = scheduler.next_wake().unwrap();
    assert!(
        wake > t0 && wake <= t0 + chrono::Duration::seconds(60),
        "{wake}"
    );
    assert_eq!(scheduler.next().map(|(n, _)| n), Some("nightly"));

    assert!(
        scheduler
            .answer_due(&rig.engine, wake - chrono::Duration::seconds(1))
            .is_empty()
    );
    let notices = scheduler.answer_due(&rig.engine, wake);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0]
            .text
            .starts_with("schedule 'nightly' started wave"),
        "{notices:?}"
    );
    assert!(!notices[0].error);
    assert_eq!(scheduler.running(), Some("nightly"));
    assert!(
        scheduler.answer_due(&rig.engine, wake).is_empty(),
        "a due time is answered once"
    );

    for event in until_wave_ends(&mut rig).await {
        if let Event::Wave(progress) = &event {
            scheduler.on_wave(progress);
        }
    }
    assert_eq!(scheduler.running(), None);
    let last = scheduler.rows()[0].last_run.clone().unwrap();
    assert_eq!(last.result, "ok: 3 hosts");
    assert!(last.finished.is_some());
    let states = saved(&mut scheduler, &path).await;
    let last = states.get("nightly").last_run.unwrap();
    assert_eq!(last.result, "ok: 3 hosts");
    assert_eq!(states.get("nightly").last_due, Some(wake));
    let audit = audit_after(&mut scheduler, &rig).await;
    assert!(audit.contains("nightly: wave"), "{audit}");
}

#[tokio::test(start_paused = true)]
async fn a_run_due_while_a_wave_runs_is_skipped_and_audited_not_stacked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STATE_FILE);
    let rig = start(config(&HOSTS, "run"), slow_fleet(Duration::from_secs(600)));
    let t0 = Utc::now();
    let (mut scheduler, _) = Scheduler::load(rig.engine.config(), Some(path.clone()), t0);
    let by_hand = crate::schedule::run::wave_request(rig.engine.config(), "nightly").unwrap();
    let id = rig.engine.start_wave(by_hand).unwrap();
    let wake = scheduler.next_wake().unwrap();
    let notices = scheduler.answer_due(&rig.engine, wake);
    assert_eq!(notices.len(), 1);
    assert!(notices[0].error);
    assert!(
        notices[0]
            .text
            .contains(&format!("wave {id} is still running")),
        "{notices:?}"
    );
    assert_eq!(scheduler.running(), None);
    let result = scheduler.rows()[0].last_run.clone().unwrap().result;
    assert!(result.starts_with("skipped: due "), "{result}");
    let states = saved(&mut scheduler, &path).await;
    let last = states.get("nightly").last_run.unwrap();
    assert!(last.result.starts_with("skipped"), "{last:?}");
    let audit = audit_after(&mut scheduler, &rig).await;
    assert!(audit.contains("\"skipped\""), "{audit}");
    assert!(audit.contains("\"action\":\"schedule\""), "{audit}");
    assert!(audit.contains("nightly: due "), "{audit}");
}

#[tokio::test]
async fn a_run_missed_while_away_is_reported_then_run_or_skipped_by_its_policy() {
    for policy in ["skip", "run"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let mut rig = start(config(&HOSTS, policy), SimFleet::new());
        // tendhost last answered `nightly` an hour ago.
        let now = Utc::now();
        let mut states = ScheduleStates::default();
        states.entry("nightly").last_due = Some(now - chrono::Duration::hours(1));
        states.save(&path).unwrap();
        let (mut scheduler, _) = Scheduler::load(rig.engine.config(), Some(path.clone()), now);
        let notices = scheduler.answer_missed(&rig.engine, now);
        assert_eq!(notices.len(), 1, "{policy}: {notices:?}");
        let text = &notices[0].text;
        assert!(text.contains("missed run due"), "{text}");
        if policy == "skip" {
            assert!(text.starts_with("schedule 'nightly' skipped"), "{text}");
            assert_eq!(scheduler.running(), None);
            let audit = audit_after(&mut scheduler, &rig).await;
            assert!(audit.contains("nightly: missed run due"), "{audit}");
        } else {
            assert!(
                text.starts_with("schedule 'nightly' started wave"),
                "{text}"
            );
            until_wave_ends(&mut rig).await;
        }
        // Reported once: a second look finds nothing more.
        assert!(scheduler.answer_missed(&rig.engine, now).is_empty());
        let states = saved(&mut scheduler, &path).await;
        let last_due = states.get("nightly").last_due.unwrap();
        assert!(last_due > now - chrono::Duration::minutes(2), "{last_due}");
    }
}

#[tokio::test]
async fn a_pause_is_saved_and_a_read_only_console_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STATE_FILE);
    let rig = start(config(&HOSTS, "run"), SimFleet::new());
    let now = Utc::now();
    let (mut scheduler, _) = Scheduler::load(rig.engine.config(), Some(path.clone()), now);
    assert_eq!(scheduler.toggle_pause("nightly", now), Some(true));
    assert!(saved(&mut scheduler, &path).await.get("nightly").paused);
    assert_eq!(scheduler.next().map(|(n, _)| n), Some("sunday"));
    let far: DateTime<Utc> = now + chrono::Duration::hours(2);
    assert!(scheduler.answer_due(&rig.engine, far).is_empty(), "paused");
    assert_eq!(scheduler.toggle_pause("nightly", far), Some(false));
    assert!(!saved(&mut scheduler, &path).await.get("nightly").paused);

    // Read-only: the same schedules are shown, and nothing is started, paused or written.
    let other = dir.path().join("other.json");
    let (mut read_only, _) = Scheduler::load(rig.engine.config(), None, now);
    assert!(!read_only.is_active());
    assert_eq!(read_only.rows().len(), 2);
    assert_eq!(read_only.next_wake(), None);
    assert!(read_only.answer_due(&rig.engine, far).is_empty());
    assert_eq!(read_only.toggle_pause("nightly", now), None);
    assert!(!other.exists());
}

#[tokio::test]
async fn an_unreadable_state_file_is_a_warning_and_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STATE_FILE);
    std::fs::write(&path, "{ not json").unwrap();
    let rig = start(config(&HOSTS, "run"), SimFleet::new());
    let (scheduler, warning) = Scheduler::load(rig.engine.config(), Some(path), Utc::now());
    let warning = warning.unwrap();
    assert!(warning.contains("schedules start afresh"), "{warning}");
    assert!(scheduler.is_active());
}

/// The app over the demo fleet, its engine configured with the two schedules.
fn schedules_app(read_only: bool, dir: &Path) -> (crate::tui::app::App, Rig) {
    let names = [
        "host-00", "host-01", "host-02", "host-03", "host-04", "host-05",
    ];
    let rig = start(config(&names, "run"), SimFleet::new());
    let mut settings = settings(Theme { color: false }, read_only);
    settings.schedule_state = Some(dir.join(STATE_FILE));
    let mut app = crate::tui::app::App::new(demo_model(), rig.engine.clone(), settings);
    app.view.now = Utc::now();
    (app, rig)
}

#[tokio::test]
async fn the_header_names_the_next_run_and_t_opens_the_schedules_view() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _rig) = schedules_app(false, dir.path());
    let wide = text(&draw(&mut app, 160, 24));
    let header = wide.lines().next().unwrap();
    assert!(header.contains("next nightly in "), "{header}");

    press(&mut app, "T");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("Schedules"), "{screen}");
    assert!(screen.contains("SCHEDULE"), "{screen}");
    assert!(screen.contains("nightly"), "{screen}");
    assert!(screen.contains("* * * * *"), "{screen}");
    assert!(screen.contains("Sun 03:00"), "{screen}");
    assert!(screen.contains("Space pause/resume"), "{screen}");

    press(&mut app, "Space");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("schedule 'nightly' paused"), "{screen}");
    assert!(screen.contains("paused"), "{screen}");
    let states = saved(&mut app.scheduler, &dir.path().join(STATE_FILE)).await;
    assert!(states.get("nightly").paused);
    press(&mut app, "j Space");
    assert!(app.scheduler.rows()[1].paused);
    press(&mut app, "Esc");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(!screen.contains("SCHEDULE"), "{screen}");
    // Both paused: the header has no next run to show.
    let wide = text(&draw(&mut app, 160, 24));
    assert!(!wide.lines().next().unwrap().contains("next "), "{wide}");
}

#[tokio::test]
async fn a_read_only_console_shows_schedules_but_cannot_pause_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _rig) = schedules_app(true, dir.path());
    press(&mut app, "T");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("read-only: schedules do not run"),
        "{screen}"
    );
    press(&mut app, "Space");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("cannot be paused here"), "{screen}");
    assert!(!app.scheduler.rows()[0].paused);
    assert!(!dir.path().join(STATE_FILE).exists());
}
