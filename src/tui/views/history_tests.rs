//! Issue 14: the History overlay at 80×24, over an audit log written as the engine writes it,
//! read through the same off-thread load the console uses.

use chrono::{TimeZone, Utc};

use crate::store::audit::{AuditRecord, Rotation, append, wave_key};
use crate::tui::testing::{demo_app, draw, press, text};
use crate::tui::theme::Theme;
use crate::tui::view::Overlay;

fn record(
    secs: i64,
    action: &str,
    host: Option<&str>,
    result: &str,
    detail: Option<&str>,
) -> AuditRecord {
    AuditRecord {
        at: Utc.timestamp_opt(1_780_000_000 + secs, 0).unwrap(),
        user: "op".into(),
        ..AuditRecord::new(action, host, result, detail)
    }
}

fn audit_log() -> Vec<AuditRecord> {
    let first = wave_key(1, Utc.timestamp_opt(1_780_000_000, 0).unwrap());
    let second = wave_key(1, Utc.timestamp_opt(1_780_000_100, 0).unwrap());
    let (a, b) = (Some(first.as_str()), Some(second.as_str()));
    let plan = AuditRecord {
        upgrades: Some(vec![crate::pkg::PendingPackage {
            name: "openssl".into(),
            from: "3.0.1".into(),
            to: "3.0.2".into(),
            security: true,
        }]),
        ..record(102, "plan", Some("host-00"), "planned", Some("1 upgrades"))
    };
    vec![
        record(
            0,
            "wave_start",
            None,
            "started",
            Some("1 hosts in 1 batches"),
        )
        .in_wave(a),
        record(
            1,
            "update",
            Some("host-00"),
            "pending_updates -> updating",
            None,
        )
        .in_wave(a),
        record(5, "wave_host", Some("host-00"), "succeeded", None).in_wave(a),
        record(
            6,
            "wave_stop",
            None,
            "finished",
            Some("1 succeeded, 0 failed, 0 skipped of 1"),
        )
        .in_wave(a),
        record(
            100,
            "wave_start",
            None,
            "started",
            Some("2 hosts in 2 batches"),
        )
        .in_wave(b),
        record(
            101,
            "update",
            Some("host-00"),
            "pending_updates -> updating",
            None,
        )
        .in_wave(b),
        plan.in_wave(b),
        record(104, "wave_host", Some("host-00"), "succeeded", None).in_wave(b),
        record(
            105,
            "update",
            Some("host-03"),
            "pending_updates -> updating",
            None,
        )
        .in_wave(b),
        record(
            108,
            "wave_host",
            Some("host-03"),
            "failed",
            Some("dpkg broke\u{1b}]0;owned\u{7}\nbadly"),
        )
        .in_wave(b),
        record(
            109,
            "wave_stop",
            None,
            "halted: 1 of 2 hosts failed (limit 0)",
            Some("1 succeeded, 1 failed, 0 skipped of 2"),
        )
        .in_wave(b),
    ]
}

#[tokio::test]
async fn history_overlay_lists_waves_newest_first_and_a_hosts_timeline_at_80x24() {
    let (mut app, _rig) = demo_app(Theme { color: true }, false);
    let live = app.engine.audit_file().to_path_buf();
    std::fs::create_dir_all(live.parent().unwrap()).unwrap();
    append(&live, &audit_log(), &Rotation::default()).unwrap();

    press(&mut app, "H");
    assert!(matches!(app.view.overlay, Overlay::History(_)));
    assert!(text(&draw(&mut app, 80, 24)).contains("reading the audit log"));
    let loaded = app.history_loads.rx.as_mut().unwrap().recv().await.unwrap();
    app.history_loaded(loaded);

    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("History  2 waves"), "{screen}");
    let halted = screen.find("halted").expect(&screen);
    let finished = screen.find("finished").expect(&screen);
    assert!(halted < finished, "newest first:\n{screen}");
    assert!(screen.contains("1/1/0"), "{screen}");
    assert!(screen.contains("1 packages updated"), "{screen}");
    assert!(
        screen.contains("dpkg broke badly"),
        "cleaned, one line:\n{screen}"
    );
    assert!(
        !screen.contains('\u{1b}') && !screen.contains("owned"),
        "{screen}"
    );

    // Down to the older wave: its one host.
    press(&mut app, "j");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(!screen.contains("host-03"), "{screen}");

    // Enter: the timeline of the host under the fleet cursor.
    let host = app.view.cursor_host(&app.model).unwrap().name().to_string();
    assert_eq!(host, "host-00");
    press(&mut app, "Enter");
    assert!(text(&draw(&mut app, 80, 24)).contains("reading the audit records of host-00"));
    let loaded = app.history_loads.rx.as_mut().unwrap().recv().await.unwrap();
    app.history_loaded(loaded);
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("host-00 timeline"), "{screen}");
    assert_eq!(
        screen.matches("pending_updates -> updating").count(),
        2,
        "{screen}"
    );
    assert!(screen.contains("wave_host  succeeded"), "{screen}");
    press(&mut app, "Tab");
    assert!(text(&draw(&mut app, 80, 24)).contains("2 waves"));

    for (w, h) in [(60, 15), (20, 5), (1, 1)] {
        draw(&mut app, w, h);
    }
    press(&mut app, "Esc");
    assert!(matches!(app.view.overlay, Overlay::None));
}

#[tokio::test]
async fn history_overlay_without_an_audit_log_says_so() {
    let (mut app, _rig) = demo_app(Theme { color: true }, false);
    press(&mut app, "H");
    let loaded = app.history_loads.rx.as_mut().unwrap().recv().await.unwrap();
    app.history_loaded(loaded);
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("no waves in the audit log yet"), "{screen}");
}

#[tokio::test]
async fn a_wave_with_more_hosts_than_fit_says_how_many_more() {
    let (mut app, _rig) = demo_app(Theme { color: true }, false);
    let live = app.engine.audit_file().to_path_buf();
    std::fs::create_dir_all(live.parent().unwrap()).unwrap();
    let key = wave_key(4, Utc.timestamp_opt(1_780_000_000, 0).unwrap());
    let mut records = vec![record(0, "wave_start", None, "started", None).in_wave(Some(&key))];
    for i in 0..30 {
        let host = format!("web-{i:02}");
        records
            .push(record(i + 1, "wave_host", Some(&host), "succeeded", None).in_wave(Some(&key)));
    }
    append(&live, &records, &Rotation::default()).unwrap();
    press(&mut app, "H");
    let loaded = app.history_loads.rx.as_mut().unwrap().recv().await.unwrap();
    app.history_loaded(loaded);
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("web-00"), "{screen}");
    assert!(!screen.contains("web-29"), "{screen}");
    let more = screen
        .lines()
        .find(|l| l.contains("more (tendhost report --wave"))
        .unwrap_or_else(|| panic!("{screen}"));
    let shown = (0..30)
        .filter(|i| screen.contains(&format!("web-{i:02}")))
        .count();
    assert!(
        more.contains(&format!("… and {} more", 30 - shown)),
        "{screen}"
    );
}
