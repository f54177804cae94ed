//! What keys do: dispatch from the keymap into view changes and `UiRequest`s, with synthetic
//! events standing in for the engine.

use std::time::Duration;

use crate::config::{BatchSize, FailureLimit};
use crate::engine::JobKind;
use crate::engine::WaveRequest;
use crate::engine::bus::{Event, StateKind, WaveStatus};
use crate::tui::request::UiRequest;
use crate::tui::testing::{demo_app, press, state_changed, wave};
use crate::tui::theme::Theme;
use crate::tui::view::{Input, Overlay, Tab};

fn app() -> crate::tui::app::App<crate::tui::request::RecordingLink> {
    let mut app = demo_app(Theme::plain(), false);
    // No wave running unless a test starts one.
    app.apply(&Event::Wave(wave(WaveStatus::Finished)));
    app
}

fn cursor_name(app: &crate::tui::app::App<crate::tui::request::RecordingLink>) -> String {
    app.view.cursor_host(&app.model).unwrap().name().to_string()
}

/// The status line's text (panics when there is none: every caller expects one).
fn status<L: crate::tui::request::EngineLink>(app: &crate::tui::app::App<L>) -> &str {
    &app.view.status.as_ref().expect("a status message").text
}

#[test]
fn vim_keys_arrows_and_g_move_the_cursor() {
    let mut app = app();
    press(&mut app, "j j Down");
    assert_eq!(cursor_name(&app), "host-03");
    press(&mut app, "k");
    assert_eq!(cursor_name(&app), "host-02");
    press(&mut app, "G");
    assert_eq!(cursor_name(&app), "host-05");
    press(&mut app, "g");
    assert_eq!(cursor_name(&app), "host-00");
}

#[test]
fn filter_is_live_and_esc_or_backspace_clears_it() {
    let mut app = app();
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

#[test]
fn marks_decide_the_targets_else_the_cursor_host() {
    let mut app = app();
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
    assert_eq!(
        app.link().sent,
        [
            UiRequest::Host {
                host: "host-00".into(),
                job: JobKind::Refresh
            },
            UiRequest::Host {
                host: "host-02".into(),
                job: JobKind::Refresh
            },
        ]
    );
    press(&mut app, "c");
    assert!(app.view.marks.is_empty());
}

#[test]
fn star_marks_all_filtered_and_again_unmarks() {
    let mut app = app();
    press(&mut app, "/ t a g : w e b Enter *");
    assert_eq!(app.view.marks.len(), 3);
    press(&mut app, "*");
    assert!(app.view.marks.is_empty());
}

#[test]
fn update_confirmation_toggles_dry_run_and_sends_per_host() {
    let mut app = app();
    press(&mut app, "u d Enter");
    assert_eq!(
        app.link().sent,
        [UiRequest::Host {
            host: "host-00".into(),
            job: JobKind::Update {
                dry_run: true,
                allow_removals: false
            }
        }]
    );
    let status = app.view.status.clone().unwrap();
    assert_eq!(status.text, "dry-run update: sent to 1 host");
}

#[test]
fn removals_are_refused_unless_the_operator_presses_r_in_the_confirmation() {
    let mut app = app();
    press(&mut app, "Space Space u y");
    press(&mut app, "u R R R y");
    let update = |host: &str, allow_removals| UiRequest::Host {
        host: host.into(),
        job: JobKind::Update {
            dry_run: false,
            allow_removals,
        },
    };
    assert_eq!(
        app.link().sent,
        [
            update("host-00", false),
            update("host-01", false),
            update("host-00", true),
            update("host-01", true),
        ]
    );
    let status = app.view.status.clone().unwrap();
    assert_eq!(
        status.text, "update: sent to 2 hosts (removals allowed)",
        "the status line repeats the consent"
    );
    // Outside a dialog the key does nothing; a reboot confirmation ignores it.
    press(&mut app, "Esc R b R y");
    assert_eq!(
        app.link().sent[4..],
        [UiRequest::Host {
            host: "host-02".into(),
            job: JobKind::Reboot
        }]
    );
}

#[test]
fn read_only_still_refuses_updates_and_waves_with_or_without_consent() {
    let mut app = demo_app(Theme::plain(), true);
    press(&mut app, "u R y w R y");
    assert!(app.link().sent.is_empty());
    assert!(matches!(app.view.overlay, Overlay::None));
}

#[test]
fn escape_cancels_a_confirmation_without_sending() {
    let mut app = app();
    press(&mut app, "b Esc u Backspace");
    assert!(app.link().sent.is_empty());
    assert!(matches!(app.view.overlay, Overlay::None));
}

#[test]
fn retry_and_ack_only_target_failed_hosts() {
    let mut app = app();
    press(&mut app, "x");
    assert!(status(&app).contains("no failed host"));
    press(&mut app, "* a y");
    assert_eq!(
        app.link().sent,
        [UiRequest::Host {
            host: "host-03".into(),
            job: JobKind::Acknowledge
        }]
    );
}

#[test]
fn wave_dialog_sends_the_composed_wave() {
    let mut app = app();
    press(&mut app, "/ t a g : w e b Enter w j j l j d y");
    let expected = WaveRequest {
        hosts: vec!["host-00".into(), "host-02".into(), "host-04".into()],
        sizes: BatchSize::parse_list("1,25%").unwrap(),
        delay: Duration::from_secs(30),
        max_failures: FailureLimit::Count(1),
        dry_run: false,
        allow_removals: false,
    };
    assert_eq!(app.link().sent, [UiRequest::StartWave(expected)]);
    assert!(status(&app).starts_with("wave started on 3 hosts"));
}

#[test]
fn wave_dialog_sends_consent_to_removals_from_its_key_or_its_field() {
    let mut app = app();
    press(&mut app, "w R y");
    let UiRequest::StartWave(spec) = &app.link().sent[0] else {
        panic!("{:?}", app.link().sent)
    };
    assert!(spec.allow_removals && spec.dry_run);
    assert!(status(&app).ends_with("(removals allowed)"));
    // The field, reached with j, toggles it too; twice is back to refused.
    press(&mut app, "w j j j j l R y");
    let UiRequest::StartWave(spec) = &app.link().sent[1] else {
        panic!("{:?}", app.link().sent)
    };
    assert!(!spec.allow_removals);
}

#[test]
fn pause_resume_and_abort_a_running_wave() {
    let mut app = app();
    press(&mut app, "p");
    assert!(status(&app).contains("no wave is running"));
    app.apply(&Event::Wave(wave(WaveStatus::Running)));
    press(&mut app, "w");
    assert!(status(&app).contains("a wave is running"));
    press(&mut app, "p");
    app.apply(&Event::Wave(wave(WaveStatus::Paused)));
    press(&mut app, "p A y");
    assert_eq!(
        app.link().sent,
        [
            UiRequest::PauseWave,
            UiRequest::ResumeWave,
            UiRequest::AbortWave
        ]
    );
}

#[test]
fn read_only_disables_every_mutating_key() {
    let mut app = demo_app(Theme::plain(), true);
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
    assert_eq!(
        app.link().sent.len(),
        1,
        "refresh changes no host and stays available"
    );
}

#[test]
fn q_asks_while_work_is_running_and_quits_when_idle() {
    let mut app = app();
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

#[test]
fn packages_view_marks_the_hosts_needing_a_package() {
    let mut app = app();
    press(&mut app, "P Enter");
    assert!(matches!(app.view.overlay, Overlay::None));
    let mut marked: Vec<String> = app.view.marks.iter().map(|m| m.to_string()).collect();
    marked.sort();
    assert_eq!(marked, ["host-00", "host-01"]);
    assert_eq!(
        app.view.status.as_ref().unwrap().text,
        "marked 2 hosts needing 'openssl'"
    );
    // P, Enter, u: "patch openssl everywhere" in three keys.
    press(&mut app, "u y");
    assert_eq!(app.link().sent.len(), 2);
}

#[test]
fn tab_cycles_detail_tabs_and_help_opens_and_closes() {
    let mut app = app();
    press(&mut app, "Tab Tab");
    assert_eq!(app.view.tab, Tab::Log);
    press(&mut app, "f");
    assert_eq!(app.view.log_scroll, None);
    press(&mut app, "? ?");
    assert!(matches!(app.view.overlay, Overlay::None));
    press(&mut app, "? Backspace");
    assert!(matches!(app.view.overlay, Overlay::None));
}

#[test]
fn refused_sends_become_a_status_message() {
    struct Busy;
    impl crate::tui::request::EngineLink for Busy {
        fn send(&mut self, _: UiRequest) -> Result<(), String> {
            Err("host busy: its command queue is full".into())
        }
    }
    let demo = demo_app(Theme::plain(), false);
    let settings = crate::tui::app::Settings {
        read_only: false,
        keys: demo.keys.clone(),
        theme: demo.theme,
        wave_defaults: demo.wave_defaults.clone(),
        startup_warning: None,
    };
    let mut app = crate::tui::app::App::new(demo.model.clone(), Busy, settings);
    press(&mut app, "r y");
    let status = app.view.status.clone().unwrap();
    assert!(status.error);
    assert!(
        status.text.contains("host-00 (host busy"),
        "{}",
        status.text
    );
}
