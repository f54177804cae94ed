//! What keys do: dispatch from the keymap into view changes and engine calls. The app holds a
//! real engine over the simulated fleet (hosts named as the demo model's), and what it asked of
//! which host is read back from the engine's own events: a host that moved, planned, upgraded or
//! refused. Tests that wait for the engine to go quiet run under paused time, where the clock
//! moves only once every task waits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::engine::bus::{Event, JobKind, Origin, Outcome, StateKind, WaveProgress, WaveStatus};
use crate::engine::testkit::{Behaviour, SimFleet};
use crate::engine::tests::{Rig, fleet_where, wave_ended};
use crate::fleet::Phase;
use crate::tui::app::App;
use crate::tui::testing::{demo_app, demo_app_on, press, state_changed, wave};
use crate::tui::theme::Theme;
use crate::tui::view::{Input, Overlay, Tab};

/// The demo app over an engine whose hosts behave as `fleet` says; no wave running unless a
/// test starts one.
fn app_on(fleet: Arc<SimFleet>) -> (App, Rig) {
    let (mut app, rig) = demo_app_on(fleet, Theme::plain(), false);
    app.apply(&Event::Wave(wave(WaveStatus::Finished)));
    (app, rig)
}

fn app() -> (App, Rig) {
    app_on(SimFleet::new())
}

fn cursor_name(app: &App) -> String {
    app.view.cursor_host(&app.model).unwrap().name().to_string()
}

/// The status line's text (panics when there is none: every caller expects one).
fn status(app: &App) -> &str {
    &app.view.status.as_ref().expect("a status message").text
}

/// A simulated fleet where `hosts` plan to remove the package 'legacy' on update.
fn removing(hosts: &[&str]) -> Arc<SimFleet> {
    let fleet = SimFleet::new();
    for host in hosts {
        let removals = vec!["legacy".into()];
        fleet.set(
            host,
            Behaviour {
                removals,
                ..Behaviour::default()
            },
        );
    }
    fleet
}

/// A simulated fleet where `host`'s upgrades fail.
fn failing(host: &str) -> Arc<SimFleet> {
    fleet_where(
        host,
        Behaviour {
            fail_upgrade: true,
            ..Behaviour::default()
        },
    )
}

fn upgrades(fleet: &SimFleet) -> usize {
    fleet.upgrades.load(Ordering::SeqCst)
}

/// The events still to come once the engine has nothing left to do: under paused time the
/// sleep returns only after every job in flight has run to its end.
async fn settle(rig: &mut Rig) -> Vec<Event> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut events = Vec::new();
    while let Ok(event) = rig.events.try_recv() {
        events.push(event);
    }
    events
}

/// Each host that moved, with the states it moved to, in order.
fn moves(events: &[Event]) -> BTreeMap<String, Vec<StateKind>> {
    let mut moves: BTreeMap<String, Vec<StateKind>> = BTreeMap::new();
    for event in events {
        if let Event::StateChanged { host, to, .. } = event {
            moves.entry(host.to_string()).or_default().push(*to);
        }
    }
    moves
}

/// Every refusal in `events`: host, job and reason.
fn refusals(events: &[Event]) -> Vec<(String, JobKind, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Refused { host, job, reason } => {
                Some((host.to_string(), *job, reason.to_string()))
            }
            _ => None,
        })
        .collect()
}

/// Collects engine events until every host of `hosts` moved to `to`.
async fn until_all(rig: &mut Rig, hosts: &[&str], to: StateKind) -> Vec<Event> {
    let mut waiting: Vec<&str> = hosts.to_vec();
    rig.until(|e| {
        if let Event::StateChanged {
            host, to: reached, ..
        } = e
            && *reached == to
        {
            waiting.retain(|h| *h != &**host);
        }
        waiting.is_empty()
    })
    .await
}

/// Collects engine events until `stop`, folding each into the app as the console loop does.
async fn follow(app: &mut App, rig: &mut Rig, stop: impl FnMut(&Event) -> bool) -> Vec<Event> {
    let events = rig.until(stop).await;
    for event in &events {
        app.apply(event);
    }
    events
}

fn last_wave(events: &[Event]) -> WaveProgress {
    match events.iter().rev().find(|e| matches!(e, Event::Wave(_))) {
        Some(Event::Wave(progress)) => progress.clone(),
        _ => panic!("no wave progress in {events:?}"),
    }
}

#[tokio::test]
async fn vim_keys_arrows_and_g_move_the_cursor() {
    let (mut app, _rig) = app();
    press(&mut app, "j j Down");
    assert_eq!(cursor_name(&app), "host-03");
    press(&mut app, "k");
    assert_eq!(cursor_name(&app), "host-02");
    press(&mut app, "G");
    assert_eq!(cursor_name(&app), "host-05");
    press(&mut app, "g");
    assert_eq!(cursor_name(&app), "host-00");
}

#[tokio::test]
async fn filter_is_live_and_esc_or_backspace_clears_it() {
    let (mut app, _rig) = app();
    press(&mut app, "/ t a g : d b");
    assert_eq!(app.view.input, Input::Filter);
    app.view.sync(&app.model);
    assert_eq!(app.view.visible().len(), 3, "filter applies while typing");
    press(&mut app, "Enter");
    assert_eq!(app.view.input, Input::None);
    assert_eq!(app.view.filter_text, "tag:db");
    press(&mut app, "Backspace");
    assert!(
        app.view.filter_text.is_empty(),
        "Backspace goes back, clearing the filter"
    );
    press(&mut app, "/ s t a t e : z z");
    assert!(
        app.view
            .filter_error
            .as_deref()
            .unwrap()
            .contains("unknown state 'zz'")
    );
    press(&mut app, "Esc");
    assert!(app.view.filter_text.is_empty());
    assert!(app.view.filter_error.is_none());
}

#[tokio::test(start_paused = true)]
async fn marks_decide_the_targets_else_the_cursor_host() {
    let (mut app, mut rig) = app();
    press(&mut app, "r");
    let Overlay::Confirm(dialog) = &app.view.overlay else {
        panic!("no confirmation")
    };
    assert_eq!(
        dialog.hosts,
        vec!["host-00".into()] as Vec<crate::config::HostId>
    );
    press(&mut app, "q");
    assert!(
        matches!(app.view.overlay, Overlay::None),
        "q closes a dialog"
    );
    assert!(!app.should_quit());
    press(&mut app, "Space j Space r y");
    let mut events = until_all(&mut rig, &["host-00", "host-02"], StateKind::Querying).await;
    events.extend(settle(&mut rig).await);
    let moves = moves(&events);
    assert_eq!(
        moves.keys().collect::<Vec<_>>(),
        ["host-00", "host-02"],
        "only the marked hosts were asked: {moves:?}"
    );
    for states in moves.values() {
        assert!(
            !states.contains(&StateKind::Updating),
            "a refresh only reads: {moves:?}"
        );
    }
    press(&mut app, "c");
    assert!(app.view.marks.is_empty());
}

#[tokio::test]
async fn star_marks_all_filtered_and_again_unmarks() {
    let (mut app, _rig) = app();
    press(&mut app, "/ t a g : w e b Enter *");
    assert_eq!(app.view.marks.len(), 3);
    press(&mut app, "*");
    assert!(app.view.marks.is_empty());
}

#[tokio::test(start_paused = true)]
async fn update_confirmation_toggles_dry_run_and_sends_per_host() {
    let fleet = SimFleet::new();
    let (mut app, mut rig) = app_on(fleet.clone());
    press(&mut app, "u d Enter");
    assert_eq!(status(&app), "dry-run update: sent to 1 host");
    let mut events = rig
        .until(|e| matches!(e, Event::Planned { host, dry_run: true, .. } if &**host == "host-00"))
        .await;
    events.extend(settle(&mut rig).await);
    let moves = moves(&events);
    assert_eq!(moves.keys().collect::<Vec<_>>(), ["host-00"], "{moves:?}");
    assert!(
        !moves["host-00"].contains(&StateKind::Updating),
        "{moves:?}"
    );
    assert_eq!(upgrades(&fleet), 0, "a dry run upgrades nothing");
}

#[tokio::test(start_paused = true)]
async fn removals_are_refused_unless_the_operator_presses_r_in_the_confirmation() {
    let fleet = removing(&["host-00", "host-01"]);
    let (mut app, mut rig) = app_on(fleet.clone());
    press(&mut app, "Space Space u y");
    let mut refused = Vec::new();
    rig.until(|e| {
        refused.extend(refusals(std::slice::from_ref(e)));
        refused.len() == 2
    })
    .await;
    refused.sort_by(|a, b| a.0.cmp(&b.0));
    for ((host, job, reason), expected) in refused.iter().zip(["host-00", "host-01"]) {
        assert_eq!(host, expected);
        assert_eq!(
            *job,
            JobKind::Update {
                dry_run: false,
                allow_removals: false
            }
        );
        assert!(reason.contains("'legacy'"), "{reason}");
    }
    assert_eq!(upgrades(&fleet), 0, "nothing upgraded without consent");

    press(&mut app, "u R R R y");
    assert_eq!(
        status(&app),
        "update: sent to 2 hosts (removals allowed)",
        "the status line repeats the consent"
    );
    let mut events = until_all(&mut rig, &["host-00", "host-01"], StateKind::Updating).await;
    events.extend(settle(&mut rig).await);
    assert_eq!(
        moves(&events).keys().collect::<Vec<_>>(),
        ["host-00", "host-01"]
    );
    assert!(refusals(&events).is_empty(), "{events:?}");
    assert_eq!(upgrades(&fleet), 2, "consent lets both upgrade");

    // Outside a dialog the key does nothing; a reboot confirmation ignores it.
    press(&mut app, "Esc R b R y");
    let mut events = rig.until(|e| matches!(e, Event::Refused { .. })).await;
    events.extend(settle(&mut rig).await);
    let refused = refusals(&events);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0].0.as_str(), refused[0].1),
        ("host-02", JobKind::Reboot)
    );
    assert!(moves(&events).is_empty(), "{events:?}");
}

#[tokio::test(start_paused = true)]
async fn read_only_still_refuses_updates_and_waves_with_or_without_consent() {
    let fleet = SimFleet::new();
    let (mut app, mut rig) = demo_app_on(fleet.clone(), Theme::plain(), true);
    press(&mut app, "u R y w R y");
    assert!(matches!(app.view.overlay, Overlay::None));
    let events = settle(&mut rig).await;
    assert!(
        events.is_empty(),
        "the engine was asked something: {events:?}"
    );
    assert_eq!(upgrades(&fleet), 0);
}

#[tokio::test(start_paused = true)]
async fn escape_cancels_a_confirmation_without_sending() {
    let (mut app, mut rig) = app();
    press(&mut app, "b Esc u Backspace");
    assert!(matches!(app.view.overlay, Overlay::None));
    let events = settle(&mut rig).await;
    assert!(
        events.is_empty(),
        "the engine was asked something: {events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_and_ack_only_target_failed_hosts() {
    let (mut app, mut rig) = app_on(failing("host-03"));
    // Make the engine agree with the demo model: host-03 failed its update.
    let update = JobKind::Update {
        dry_run: false,
        allow_removals: false,
    };
    let outcome = rig.step("host-03", update).await;
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    settle(&mut rig).await;

    press(&mut app, "x");
    assert!(status(&app).contains("no failed host"));
    press(&mut app, "* a y");
    let mut events = rig
        .until(|e| matches!(e, Event::StateChanged { host, .. } if &**host == "host-03"))
        .await;
    events.extend(settle(&mut rig).await);
    assert_eq!(moves(&events).keys().collect::<Vec<_>>(), ["host-03"]);
    let Some(state) = events.iter().find_map(|e| match e {
        Event::StateChanged { state, .. } => Some(state),
        _ => None,
    }) else {
        panic!("{events:?}")
    };
    assert!(
        matches!(&state.phase, Phase::Failed(info) if info.acknowledged),
        "the engine acknowledged host-03: {state:?}"
    );
    assert!(refusals(&events).is_empty(), "{events:?}");
}

#[tokio::test(start_paused = true)]
async fn wave_dialog_sends_the_composed_wave() {
    // host-04 fails: with max_failures 1 (chosen in the dialog) the wave still finishes.
    let fleet = failing("host-04");
    let (mut app, mut rig) = app_on(fleet.clone());
    let started = tokio::time::Instant::now();
    press(&mut app, "/ t a g : w e b Enter w j j l j d y");
    assert!(status(&app).starts_with("wave started on 3 hosts"));
    let events = rig.until(wave_ended).await;
    let end = last_wave(&events);
    assert_eq!(
        (end.status, end.total, end.batches),
        (WaveStatus::Finished, 3, 3),
        "1,25% of the 3 filtered hosts: {end:?}"
    );
    assert_eq!((end.succeeded, end.failed), (2, 1), "{end:?}");
    let updating: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::StateChanged {
                host,
                to: StateKind::Updating,
                ..
            } => Some(host.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        updating,
        ["host-00", "host-02", "host-04"],
        "the filtered hosts, canary first"
    );
    assert_eq!(upgrades(&fleet), 3, "not a dry run");
    // Two pauses of the default 30 s between the three batches.
    let delays = events
        .iter()
        .filter(|e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Delaying))
        .count();
    assert_eq!(delays, 2);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(60) && elapsed < Duration::from_secs(61),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn wave_dialog_sends_consent_to_removals_from_its_key_or_its_field() {
    let fleet = removing(&["host-00", "host-01"]);
    let (mut app, mut rig) = app_on(fleet.clone());
    // A real wave (d) on the marked host-00, with consent from the key.
    press(&mut app, "Space w d R y");
    assert!(
        status(&app).ends_with("(removals allowed)"),
        "{}",
        status(&app)
    );
    let end = last_wave(&rig.until(wave_ended).await);
    assert_eq!(
        (end.status, end.succeeded),
        (WaveStatus::Finished, 1),
        "{end:?}"
    );
    assert_eq!(upgrades(&fleet), 1);
    // The field, reached with j, toggles it too; twice is back to refused: host-01 is refused.
    press(&mut app, "c Space w d j j j j j l R y");
    let events = rig.until(wave_ended).await;
    let end = last_wave(&events);
    assert_eq!((end.succeeded, end.skipped), (0, 1), "{end:?}");
    let refused = refusals(&events);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "host-01");
    assert!(refused[0].2.contains("'legacy'"), "{refused:?}");
    assert_eq!(upgrades(&fleet), 1, "no consent, no upgrade");
}

#[tokio::test(start_paused = true)]
async fn pause_resume_and_abort_a_running_wave() {
    let (mut app, mut rig) = app();
    press(&mut app, "p");
    assert!(status(&app).contains("no wave is running"));
    // A real wave over the six hosts: batches of 1, 2, 2, 1 with 30 s between them.
    press(&mut app, "w d y");
    let status_of = |events: &[Event]| last_wave(events).status;
    follow(
        &mut app,
        &mut rig,
        |e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Running),
    )
    .await;
    press(&mut app, "w");
    assert!(status(&app).contains("a wave is running"));
    press(&mut app, "p");
    assert_eq!(status(&app), "pausing the wave");
    let events = follow(
        &mut app,
        &mut rig,
        |e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Paused),
    )
    .await;
    assert_eq!(last_wave(&events).batch, 1, "paused before batch 2");
    press(&mut app, "p");
    assert_eq!(status(&app), "resuming the wave");
    let events = follow(
        &mut app,
        &mut rig,
        |e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Running && p.batch == 2),
    )
    .await;
    assert_eq!(status_of(&events), WaveStatus::Running);
    press(&mut app, "A y");
    assert_eq!(status(&app), "aborting the wave");
    let events = follow(&mut app, &mut rig, wave_ended).await;
    assert_eq!(status_of(&events), WaveStatus::Aborted);
    assert!(!app.model.wave_running());
}

#[tokio::test(start_paused = true)]
async fn read_only_disables_every_mutating_key() {
    let (mut app, mut rig) = demo_app(Theme::plain(), true);
    for key in ["u", "b", "w", "p", "A", "x", "a"] {
        press(&mut app, key);
        assert!(
            matches!(app.view.overlay, Overlay::None),
            "'{key}' opened a dialog"
        );
        let status = app.view.status.clone().unwrap();
        assert!(
            status.error && status.text.starts_with("read-only:"),
            "{key}: {status:?}"
        );
    }
    press(&mut app, "r y");
    let mut events = until_all(&mut rig, &["host-00"], StateKind::Querying).await;
    events.extend(settle(&mut rig).await);
    assert_eq!(
        moves(&events).keys().collect::<Vec<_>>(),
        ["host-00"],
        "refresh changes no host and stays available"
    );
}

#[tokio::test]
async fn q_asks_while_work_is_running_and_quits_when_idle() {
    let (mut app, _rig) = app();
    // host-01 is updating in the demo fleet.
    press(&mut app, "q");
    assert!(!app.should_quit());
    let Overlay::Confirm(dialog) = &app.view.overlay else {
        panic!("q did not ask")
    };
    assert!(dialog.question().contains("1 host is busy"));
    press(&mut app, "Esc");
    assert!(!app.should_quit());
    app.apply(&state_changed(
        "host-01",
        StateKind::Updating,
        StateKind::Idle,
        None,
    ));
    press(&mut app, "q");
    assert!(app.should_quit());
}

#[tokio::test(start_paused = true)]
async fn packages_view_marks_the_hosts_needing_a_package() {
    let fleet = SimFleet::new();
    let (mut app, mut rig) = app_on(fleet.clone());
    press(&mut app, "P Enter");
    assert!(matches!(app.view.overlay, Overlay::None));
    let mut marked: Vec<String> = app.view.marks.iter().map(|m| m.to_string()).collect();
    marked.sort();
    assert_eq!(marked, ["host-00", "host-01"]);
    assert_eq!(status(&app), "marked 2 hosts needing 'openssl'");
    // P, Enter, u: "patch openssl everywhere" in three keys.
    press(&mut app, "u y");
    let mut events = until_all(&mut rig, &["host-00", "host-01"], StateKind::Updating).await;
    events.extend(settle(&mut rig).await);
    assert_eq!(
        moves(&events).keys().collect::<Vec<_>>(),
        ["host-00", "host-01"]
    );
    assert_eq!(upgrades(&fleet), 2);
}

#[tokio::test]
async fn tab_cycles_detail_tabs_and_help_opens_and_closes() {
    let (mut app, _rig) = app();
    press(&mut app, "Tab Tab");
    assert_eq!(app.view.tab, Tab::Log);
    press(&mut app, "f");
    assert_eq!(app.view.log_scroll, None);
    press(&mut app, "? ?");
    assert!(matches!(app.view.overlay, Overlay::None));
    press(&mut app, "? Backspace");
    assert!(matches!(app.view.overlay, Overlay::None));
}

#[tokio::test]
async fn refused_sends_become_a_status_message() {
    let (mut app, rig) = app();
    // Nothing else runs on this thread until the test awaits, so host-00's queue stays full.
    while rig
        .engine
        .submit("host-00", JobKind::Refresh, Origin::Console)
        .is_ok()
    {}
    press(&mut app, "r y");
    let status = app.view.status.clone().unwrap();
    assert!(status.error);
    assert!(
        status.text.contains("host-00 (host busy"),
        "{}",
        status.text
    );
}

#[tokio::test]
async fn wave_controls_the_engine_refuses_become_a_status_message() {
    let (mut app, rig) = app();
    // The screen believes a wave runs; the engine knows of none.
    app.apply(&Event::Wave(wave(WaveStatus::Running)));
    press(&mut app, "p");
    let status = app.view.status.clone().unwrap();
    assert!(status.error);
    assert_eq!(status.text, "no wave is running");
    app.apply(&Event::Wave(wave(WaveStatus::Finished)));
    let other = crate::engine::WaveRequest {
        hosts: vec!["host-05".into()],
        sizes: vec![crate::config::BatchSize::Count(1)],
        delay: Duration::ZERO,
        max_failures: crate::config::FailureLimit::Count(0),
        mode: crate::config::WaveMode::Rolling,
        dry_run: true,
        allow_removals: false,
        scope: crate::pkg::UpgradeScope::default(),
        on_threshold: crate::config::OnThreshold::Abort,
        defer_overruns: true,
    };
    let id = rig.engine.start_wave(other).unwrap();
    // The screen has not heard of that wave yet: the engine says no.
    press(&mut app, "w y");
    let status = app.view.status.clone().unwrap();
    assert!(status.error);
    assert_eq!(
        status.text,
        format!("wave not started: wave {id} is still running")
    );
}

/// Issue 10: rebooting a host others reach through (`proxy_jump`) asks a second time, and the
/// dialog names the hosts behind it; only the second confirmation sends the reboot.
#[tokio::test(start_paused = true)]
async fn rebooting_a_jump_host_asks_again_naming_the_hosts_behind_it() {
    use crate::engine::tests::{fleet_config_named, start};
    use crate::tui::testing::{demo_model, draw, settings, text};
    let names = (0..6).map(|i| format!("host-{i:02}"));
    let config = fleet_config_named(names, |i| match i {
        1 | 2 => "proxy_jump = \"host-00\"\n".to_string(),
        _ => String::new(),
    });
    let mut rig = start(config, SimFleet::new());
    let mut app = App::new(
        demo_model(),
        rig.engine.clone(),
        settings(Theme::plain(), false),
    );
    app.apply(&Event::Wave(wave(WaveStatus::Finished)));
    press(&mut app, "g b");
    assert_eq!(cursor_name(&app), "host-00");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("reboot 1 host?"), "{screen}");
    assert!(
        screen.contains("⚠ host-00 is the jump host of 'host-01', 'host-02': they lose their"),
        "{screen}"
    );
    press(&mut app, "y");
    assert!(
        matches!(app.view.overlay, Overlay::Confirm(_)),
        "the first y rebooted"
    );
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("really reboot jump host 'host-00'? every host behind it loses its"),
        "{screen}"
    );
    let events = settle(&mut rig).await;
    assert!(
        events.is_empty(),
        "the engine was asked something: {events:?}"
    );

    press(&mut app, "y");
    assert!(matches!(app.view.overlay, Overlay::None));
    let events = rig.until(|e| matches!(e, Event::Refused { .. })).await;
    let refused = refusals(&events);
    assert_eq!(
        (refused[0].0.as_str(), refused[0].1),
        ("host-00", JobKind::Reboot),
        "the reboot was sent (and refused: nothing is pending)"
    );

    // Cancelled at the second question: nothing is sent.
    press(&mut app, "b y Esc");
    assert!(matches!(app.view.overlay, Overlay::None));
    let events = settle(&mut rig).await;
    assert!(refusals(&events).is_empty(), "{events:?}");
}
