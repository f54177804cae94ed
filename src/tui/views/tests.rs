//! Whole-screen tests: every view drawn into a `TestBackend`, text and styles asserted. The app
//! holds a real engine over the simulated fleet (so each test runs in a tokio runtime); these
//! tests draw the fixed demo model and ask the engine nothing.

use ratatui::style::Color;

use crate::engine::testkit::SimFleet;
use crate::engine::tests::Rig;
use crate::tui::testing::{demo_app, demo_engine, draw, fleet, press, text};
use crate::tui::theme::Theme;

fn color() -> Theme {
    Theme { color: true }
}

#[tokio::test]
async fn fleet_screen_at_80x24() {
    let (mut app, _rig) = demo_app(color(), false);
    let buf = draw(&mut app, 80, 24);
    let screen = text(&buf);
    insta::assert_snapshot!("fleet_80x24", screen);
    // At 80 columns the totals go compact so the wave progress fits beside them.
    assert!(screen.contains("tendhost  6  ●3 ◆1 ▲1 ✖1"), "{screen}");
    assert!(screen.contains("wave 2/5 ■□□□□ 13/42 ok, 1 failed"));
    let wide = text(&draw(&mut app, 120, 24));
    assert!(
        wide.contains("6 hosts  ●3 idle ◆1 pending ▲1 updating ✖1 failed"),
        "{wide}"
    );
    assert!(screen.contains("✖ failed (ack)"));
    assert!(screen.contains("Debian 12"));
    assert!(screen.contains("3h ago"), "relative update time");
    assert!(app.view.shows_relative_times);
}

#[tokio::test]
async fn states_are_coloured_from_the_16_colour_palette_only() {
    let (mut app, _rig) = demo_app(color(), false);
    let buf = draw(&mut app, 100, 30);
    let mut saw_red = false;
    for cell in buf.content() {
        for c in [cell.fg, cell.bg] {
            assert!(
                !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                "colour {c:?} is outside the 16-colour palette"
            );
        }
        saw_red |= cell.symbol() == "✖" && cell.fg == Color::Red;
    }
    assert!(saw_red, "failed state should be red with colour on");
}

#[tokio::test]
async fn no_color_draws_no_colour_but_keeps_every_symbol() {
    let (mut app, _rig) = demo_app(Theme::plain(), false);
    let buf = draw(&mut app, 80, 24);
    for cell in buf.content() {
        assert_eq!(
            cell.fg,
            Color::Reset,
            "cell {:?} has a colour",
            cell.symbol()
        );
        assert_eq!(cell.bg, Color::Reset);
    }
    let screen = text(&buf);
    insta::assert_snapshot!("fleet_80x24_no_color", screen);
    for symbol in ["●", "◆", "▲", "✖", "⟳", "›"] {
        assert!(screen.contains(symbol), "missing {symbol}");
    }
}

#[tokio::test]
async fn wide_terminal_shows_last_error_and_small_ones_do_not_panic() {
    let (mut app, _rig) = demo_app(color(), false);
    let wide = text(&draw(&mut app, 140, 30));
    assert!(wide.contains("LAST ERROR"));
    assert!(wide.contains("connection refused"));
    for (w, h) in [(80, 24), (60, 15), (20, 5), (1, 1), (200, 60)] {
        draw(&mut app, w, h);
    }
    press(&mut app, "?");
    draw(&mut app, 30, 8);
    press(&mut app, "Esc w");
    draw(&mut app, 30, 8);
}

#[tokio::test]
async fn only_the_visible_window_is_drawn_at_10000_hosts() {
    let (mut app, _rig) = demo_app(color(), false);
    app.model = fleet(10_000);
    draw(&mut app, 80, 24);
    press(&mut app, "G");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("›  host-9999"), "{screen}");
    assert!(!screen.contains("host-00 "));
    assert_eq!(app.view.offset, 10_000 - app.view.table_height);
}

#[tokio::test]
async fn pending_tab_lists_versions_and_security() {
    let (mut app, _rig) = demo_app(color(), false);
    press(&mut app, "Tab");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("[Pending]"));
    let line = screen.lines().find(|l| l.contains("openssl")).unwrap();
    assert!(line.contains("1.0-1 → 1.1-1"), "{line}");
    assert!(line.contains("security"));
}

#[tokio::test]
async fn log_tab_follows_and_reports_dropped_lines() {
    let (mut app, _rig) = demo_app(color(), false);
    for i in 0..150 {
        app.apply(&crate::engine::bus::Event::Output {
            host: "host-00".into(),
            stream: crate::remote::Stream::Stderr,
            line: format!("Setting up thing-{i}").into(),
        });
    }
    press(&mut app, "Tab Tab");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("[Log]"));
    assert!(screen.contains("follow"));
    // 180 lines into a scrollback of 100: the oldest 80 are dropped and counted.
    assert!(screen.contains("… 80 older lines dropped"), "{screen}");
    assert!(screen.contains("Setting up thing-149"));
    insta::assert_snapshot!("log_tab_80x24", screen);
}

#[tokio::test]
async fn zoomed_log_scrolls_and_searches() {
    let (mut app, _rig) = demo_app(color(), false);
    press(&mut app, "Tab Tab Enter");
    draw(&mut app, 80, 24);
    press(&mut app, "g");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("Unpacking package-0 "), "{screen}");
    assert!(screen.contains("line 1"));
    press(&mut app, "/ p a c k a g e - 2 5 Enter");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("package-25"));
    assert_eq!(app.view.search_hit, Some(25));
    press(&mut app, "G");
    assert_eq!(app.view.log_scroll, None, "G resumes following");
}

#[tokio::test]
async fn app_log_tab_draws_tui_logger() {
    let (mut app, _rig) = demo_app(color(), false);
    press(&mut app, "Tab Tab Tab");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("[App log]"));
}

#[tokio::test]
async fn inventory_tab_shows_os_kernel_containers_and_errors() {
    let (mut app, _rig) = demo_app(color(), false);
    let screen = text(&draw(&mut app, 80, 30));
    assert!(screen.contains("kernel     6.1.0-18-amd64"));
    assert!(screen.contains("uptime     3d 1h"));
    assert!(screen.contains("web (nginx:1.25) running"));
    press(&mut app, "j j j");
    let screen = text(&draw(&mut app, 80, 30));
    assert!(
        screen.contains("connection refused (acknowledged)"),
        "{screen}"
    );
}

#[tokio::test]
async fn package_view_groups_by_package() {
    let (mut app, _rig) = demo_app(color(), false);
    press(&mut app, "P");
    let screen = text(&draw(&mut app, 80, 24));
    insta::assert_snapshot!("packages_80x24", screen);
    assert!(screen.contains("3 pending across 2 hosts"));
    let openssl = screen.lines().find(|l| l.contains("openssl")).unwrap();
    assert!(openssl.contains(" 2 sec"), "{openssl}");
    assert!(screen.contains("host-00, host-01"));
}

#[tokio::test]
async fn the_pending_tab_shows_a_dry_runs_plan_facts() {
    let (mut app, _rig) = demo_app(color(), false);
    app.apply(&crate::engine::bus::Event::Planned {
        host: "host-00".into(),
        plan: std::sync::Arc::new(crate::pkg::UpgradePlan {
            kept_back: vec!["tendhost-core".into()],
            reboot_packages: vec!["tendhost-kernel".into()],
            conffiles: Some(vec![crate::pkg::ConffilePrompt {
                package: "tendhost-app".into(),
                path: "/etc/tendhost-app.conf".into(),
                changed_upstream: None,
            }]),
            download_bytes: Some(1_258_291),
            install_bytes: Some(-2048),
            free_space: vec![
                crate::pkg::FreeSpace {
                    path: "/var/cache/apt/archives".into(),
                    free_bytes: 1024 * 1024,
                },
                crate::pkg::FreeSpace {
                    path: "/".into(),
                    free_bytes: 20 * 1024 * 1024 * 1024,
                },
            ],
            ..Default::default()
        }),
        dry_run: true,
        scope: Default::default(),
    });
    press(&mut app, "Tab");
    let screen = text(&draw(&mut app, 100, 40));
    for line in [
        "dry run: kept back tendhost-core",
        "dry run: conffile prompts /etc/tendhost-app.conf (new version unknown)",
        "dry run: reboot expected (tendhost-kernel)",
        "dry run: download 1.2 MiB, installs -2.0 KiB; free /var/cache/apt/archives 1.0 MiB, / 20.0 GiB",
        "dry run: NOT ENOUGH SPACE on /var/cache/apt/archives: needs 1.2 MiB, 1.0 MiB free",
    ] {
        assert!(screen.contains(line), "no '{line}' in {screen}");
    }
}

#[tokio::test]
async fn picked_packages_open_a_scoped_update_with_a_security_toggle() {
    let (mut app, _rig) = demo_app(color(), false);
    press(&mut app, "P");
    let screen = text(&draw(&mut app, 80, 24));
    let first = screen
        .lines()
        .find(|l| l.contains("openssl"))
        .unwrap()
        .to_string();
    press(&mut app, "Space j Space");
    let screen = text(&draw(&mut app, 80, 24));
    let picked: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains(" * ") || l.contains("›*"))
        .collect();
    assert_eq!(picked.len(), 2, "two picks shown: {screen}");
    assert!(!first.contains('*'), "nothing picked before: {first}");
    press(&mut app, "u");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("(only openssl, "), "{screen}");
    assert!(screen.contains("S security only: off"), "{screen}");
    press(&mut app, "S");
    let screen = text(&draw(&mut app, 80, 24));
    insta::assert_snapshot!("scoped_update_confirm_80x24", screen);
    assert!(
        screen.contains("(only security updates of openssl, "),
        "{screen}"
    );
    assert!(screen.contains("S security only: on"), "{screen}");
    press(&mut app, "y");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("(only security updates of openssl, "),
        "the status names the scope: {screen}"
    );
}

#[tokio::test]
async fn the_wave_dialog_toggles_security_only_into_its_request() {
    let (mut app, _rig) = demo_app(color(), false);
    app.apply(&crate::engine::bus::Event::Wave(crate::tui::testing::wave(
        crate::engine::bus::WaveStatus::Finished,
    )));
    press(&mut app, "w");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("updates      ‹ all updates ›  S toggles security only"),
        "{screen}"
    );
    press(&mut app, "S");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("‹ security only ›"), "{screen}");
    let crate::tui::view::Overlay::Wave(dialog) = &app.view.overlay else {
        panic!("the wave dialog closed");
    };
    assert!(dialog.spec().scope.security_only);
}

#[tokio::test]
async fn wave_dialog_previews_batches() {
    let (mut app, _rig) = demo_app(color(), false);
    app.apply(&crate::engine::bus::Event::Wave(crate::tui::testing::wave(
        crate::engine::bus::WaveStatus::Finished,
    )));
    press(&mut app, "/ t a g : w e b Enter w");
    let screen = text(&draw(&mut app, 80, 24));
    insta::assert_snapshot!("wave_80x24", screen);
    assert!(screen.contains("3 filtered hosts:"));
    assert!(screen.contains("host-00, host-02, host-04"));
    assert!(screen.contains("3 batches: 1, 1, 1"), "{screen}");
    assert!(screen.contains("‹ yes ›"));
}

#[tokio::test]
async fn wave_dialog_says_why_the_last_wave_halted_and_whom_it_skipped() {
    use crate::engine::bus::{Event, SkippedHost, WaveStatus};
    let (mut app, _rig) = demo_app(color(), false);
    let mut wave = crate::tui::testing::wave(WaveStatus::Halted);
    wave.reason = Some(
        "canary batch 1 had no host that succeeded (host-01 skipped: busy (updating), host-03 \
         failed: pre-check failed (exit 1))"
            .into(),
    );
    let reasons = [
        ("host-01", "busy (updating)"),
        (
            "host-02",
            "outside maintenance window 'Sat,Sun 02:00-06:00'",
        ),
        ("host-04", "cannot refresh: it failed; retry it first"),
        ("host-05", "busy (refreshing)"),
    ];
    wave.skipped_hosts = reasons
        .iter()
        .map(|(host, reason)| SkippedHost {
            host: (*host).into(),
            reason: (*reason).into(),
        })
        .collect();
    wave.skipped = reasons.len();
    app.apply(&Event::Wave(wave));
    let header = text(&draw(&mut app, 120, 24));
    assert!(header.contains("1 failed, 4 skipped"), "{header}");
    press(&mut app, "w");
    let screen = text(&draw(&mut app, 80, 24));
    insta::assert_snapshot!("wave_last_halted_80x24", screen);
    assert!(
        screen.contains("last wave halted: 13/42 ok, 1 failed, 4 skipped"),
        "{screen}"
    );
    assert!(screen.contains("canary batch 1 had no host that succeeded"));
    assert!(screen.contains("skipped host-01: busy (updating)"));
    assert!(screen.contains("skipped host-02: outside maintenance window 'Sat,Sun 02:00-06:00'"));
    assert!(screen.contains("… and 1 more skipped"));
    assert!(!screen.contains("host-05: busy"), "only three are named");
    assert!(
        screen.contains("y/Enter start"),
        "the keys still fit: {screen}"
    );
}

#[tokio::test]
async fn confirmation_names_the_hosts() {
    let (mut app, _rig) = demo_app(color(), false);
    press(&mut app, "Space Space u");
    let screen = text(&draw(&mut app, 80, 24));
    insta::assert_snapshot!("confirm_80x24", screen);
    assert!(screen.contains("update 2 hosts?"));
    assert!(screen.contains("host-00, host-01"));
    assert!(screen.contains("dry run: off"));
}

#[tokio::test]
async fn help_lists_every_binding_from_the_keymap() {
    let (mut app, _rig) = demo_app(color(), false);
    press(&mut app, "?");
    let screen = text(&draw(&mut app, 100, 40));
    for binding in crate::tui::keys::BINDINGS {
        assert!(
            screen.contains(binding.help),
            "help lacks '{}'",
            binding.help
        );
    }
    let small = text(&draw(&mut app, 80, 24));
    assert!(small.contains("Keys"));
}

#[tokio::test]
async fn read_only_says_so() {
    let (mut app, _rig) = demo_app(color(), true);
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("READ-ONLY"));
    assert!(!screen.contains(" u update"));
    press(&mut app, "u");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("read-only: 'update' is disabled"),
        "{screen}"
    );
    press(&mut app, "?");
    let screen = text(&draw(&mut app, 100, 40));
    assert!(screen.contains("update (d: dry run) (ro)"), "{screen}");
    assert!(screen.contains("disabled by --read-only"));
}

#[tokio::test]
async fn update_confirmation_shows_planned_removals_first() {
    let (mut app, _rig) = demo_app(color(), false);
    app.apply(&crate::engine::bus::Event::Planned {
        host: "host-00".into(),
        plan: std::sync::Arc::new(crate::pkg::UpgradePlan {
            removals: vec!["tendhost-legacy".into()],
            held: vec!["tendhost-core".into()],
            ..Default::default()
        }),
        dry_run: true,
        scope: Default::default(),
    });
    press(&mut app, "u");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("host-00 would remove: tendhost-legacy"),
        "{screen}"
    );
    assert!(
        screen.contains("host-00 holds back: tendhost-core"),
        "{screen}"
    );
    // The Pending tab says the same.
    press(&mut app, "Esc Tab");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("dry run: would REMOVE tendhost-legacy"),
        "{screen}"
    );
}

#[tokio::test]
async fn a_refusal_reaches_the_status_line() {
    let (mut app, _rig) = demo_app(color(), false);
    app.apply(&crate::engine::bus::Event::Refused {
        host: "host-01".into(),
        job: crate::engine::JobKind::Reboot,
        reason: "host is updating".into(),
    });
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("host-01: reboot refused: host is updating"),
        "{screen}"
    );
}

/// host-00's last plan removes two packages; host-01's removes nothing.
fn app_with_removals(theme: Theme) -> (crate::tui::app::App, Rig) {
    let (mut app, rig) = demo_app(theme, false);
    app.apply(&crate::engine::bus::Event::Planned {
        host: "host-00".into(),
        plan: std::sync::Arc::new(crate::pkg::UpgradePlan {
            removals: vec!["pkg-a".into(), "pkg-b".into()],
            ..Default::default()
        }),
        dry_run: true,
        scope: Default::default(),
    });
    (app, rig)
}

#[tokio::test]
async fn confirmation_says_removals_are_refused_until_allowed() {
    let (mut app, _rig) = app_with_removals(color());
    press(&mut app, "Space Space u");
    let buf = draw(&mut app, 80, 24);
    let screen = text(&buf);
    insta::assert_snapshot!("confirm_removals_off_80x24", screen);
    assert!(
        screen.contains("host-00 would remove: pkg-a, pkg-b"),
        "{screen}"
    );
    assert!(
        screen.contains("⚠ REFUSED on host-00 unless removals are allowed: press R"),
        "{screen}"
    );
    assert!(screen.contains("R removals: off"), "{screen}");
    let refused = buf
        .content()
        .iter()
        .find(|c| c.symbol() == "⚠")
        .expect("a warning symbol");
    assert_eq!(refused.fg, Color::Yellow, "warning colour");

    press(&mut app, "R");
    let buf = draw(&mut app, 80, 24);
    let screen = text(&buf);
    insta::assert_snapshot!("confirm_removals_on_80x24", screen);
    assert!(
        screen.contains("⚠ removals ALLOWED: pkg-a, pkg-b on host-00"),
        "{screen}"
    );
    assert!(screen.contains("R removals: on"), "{screen}");
    assert!(!screen.contains("REFUSED"), "{screen}");
}

#[tokio::test]
async fn a_host_whose_policy_allows_removals_is_not_called_refused() {
    let (mut app, _rig) = app_with_removals(color());
    let mut rows = app.model.hosts().to_vec();
    rows[0].removals_allowed_by_policy = true;
    app.model = crate::tui::model::FleetModel::from_rows(rows);
    press(&mut app, "Space Space u");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("⚠ host-00 will remove: pkg-a, pkg-b (allowed by its policy)"),
        "{screen}"
    );
    assert!(!screen.contains("REFUSED"), "{screen}");
}

#[tokio::test]
async fn allowed_removals_read_without_colour() {
    let (mut app, _rig) = app_with_removals(Theme::plain());
    press(&mut app, "u R");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("⚠ removals ALLOWED: pkg-a, pkg-b on host-00"),
        "{screen}"
    );
    // A dry run is never refused for removals, so it does not threaten to.
    press(&mut app, "R d");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("host-00 would remove: pkg-a, pkg-b"));
    assert!(!screen.contains("REFUSED"), "{screen}");
}

#[tokio::test]
async fn wave_dialog_previews_consent_to_removals() {
    let (mut app, _rig) = app_with_removals(color());
    app.apply(&crate::engine::bus::Event::Wave(crate::tui::testing::wave(
        crate::engine::bus::WaveStatus::Finished,
    )));
    press(&mut app, "w");
    let screen = text(&draw(&mut app, 80, 24));
    let line = screen.lines().find(|l| l.contains("removals ")).unwrap();
    assert!(line.contains("‹ refused ›"), "{line}");
    assert!(line.contains("⚠ 'host-00' would remove: REFUSED"), "{line}");
    press(&mut app, "R");
    let screen = text(&draw(&mut app, 80, 24));
    insta::assert_snapshot!("wave_removals_on_80x24", screen);
    let line = screen.lines().find(|l| l.contains("removals ")).unwrap();
    assert!(line.contains("‹ ⚠ allowed ›"), "{line}");
    assert!(
        line.contains("⚠ ALLOWED: pkg-a, pkg-b on host-00"),
        "{line}"
    );
}

#[tokio::test]
async fn a_snapshot_that_could_not_be_restored_is_said_on_screen() {
    let mut settings = crate::tui::testing::settings(color(), false);
    settings.startup_warning = Some("snapshot 'x' was not restored: it is corrupt".into());
    let rig = demo_engine(SimFleet::new());
    let mut app = crate::tui::app::App::new(fleet(3), rig.engine.clone(), settings);
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("warning: snapshot 'x' was not restored"),
        "{screen}"
    );
}

/// Issue 9: the Inventory tab lists each compose stack with its services and the image each
/// runs, and what the last update changed (old → new image id).
#[tokio::test]
async fn inventory_tab_shows_stacks_services_and_what_the_update_changed() {
    use crate::engine::bus::Event;
    use crate::pkg::{ImageRef, ServiceImage, StackReport};
    let image = |id: &str| ImageRef {
        id: format!("sha256:{id}"),
        digest: Some(format!("reg/app@sha256:{id}")),
    };
    let web = ServiceImage {
        service: "web".into(),
        image: Some("127.0.0.1:5000/app:latest".into()),
        running: Some(image("aaaaaaaaaaaa1111")),
        available: Some(image("bbbbbbbbbbbb2222")),
        held: None,
    };
    let db = ServiceImage {
        service: "db".into(),
        image: Some("127.0.0.1:5000/db:16".into()),
        running: None,
        available: None,
        held: None,
    };
    let stacks_event = |recreated| {
        let stack = StackReport {
            path: "/srv/media".into(),
            services: vec![web.clone(), db.clone()],
            recreated,
        };
        Event::Stacks {
            host: "host-00".into(),
            stacks: std::sync::Arc::from(vec![stack]),
            updated: recreated,
        }
    };
    let (mut app, _rig) = demo_app(color(), false);
    app.apply(&stacks_event(true));
    let screen = text(&draw(&mut app, 80, 40));
    assert!(screen.contains("stacks     /srv/media"), "{screen}");
    assert!(
        screen.contains("web 127.0.0.1:5000/app:latest bbbbbbbbbbbb"),
        "the recreated service runs the new image: {screen}"
    );
    assert!(
        screen.contains("db 127.0.0.1:5000/db:16 not running"),
        "{screen}"
    );
    assert!(
        screen.contains("updated    /srv/media web: aaaaaaaaaaaa → bbbbbbbbbbbb"),
        "{screen}"
    );

    // A dry run's check: nothing recreated, the newer image is shown as pending.
    app.apply(&stacks_event(false));
    let screen = text(&draw(&mut app, 80, 40));
    assert!(
        screen.contains("web 127.0.0.1:5000/app:latest aaaaaaaaaaaa"),
        "{screen}"
    );
    assert!(
        screen.contains("newer      /srv/media web: aaaaaaaaaaaa → bbbbbbbbbbbb"),
        "{screen}"
    );
}

#[tokio::test]
async fn detail_names_the_detached_job_on_the_host() {
    let (mut app, _rig) = demo_app(color(), false);
    let job = crate::fleet::RemoteJob {
        id: crate::remote::job::JobId::from_string("20261201T030205Z-9f3a1c".into()),
        label: "apt-get upgrade".into(),
        stage: crate::fleet::Stage::Packages,
        started: chrono::Utc::now(),
        offset: 0,
        ended: None,
        boot_id: None,
    };
    app.apply(&crate::engine::bus::Event::Job {
        host: "host-00".into(),
        job: Some(std::sync::Arc::new(job)),
    });
    let screen = text(&draw(&mut app, 80, 24));
    let line = screen
        .lines()
        .find(|l| l.contains("job "))
        .unwrap_or_default();
    assert!(
        line.contains("apt-get upgrade 20261201T030205Z-9f3a1c (running"),
        "{screen}"
    );
}

/// Issue 10: what a host sends (os-release, package names, errors, output lines, container
/// names) is drawn without its escape sequences. ratatui alone would drop ESC and BEL but draw
/// the rest (`]0;pwned[2J`); the console's own sanitizer removes whole sequences.
#[tokio::test]
async fn issue10_host_sent_escape_sequences_never_reach_the_screen() {
    use std::sync::Arc;

    use crate::engine::bus::{Event, StateKind};
    use crate::tui::testing::{inventory, pending, state_changed};
    const HOSTILE: &str = "\x1b]0;pwned\x07\x1b[2J";
    let (mut app, _rig) = demo_app(color(), false);
    let Event::InventoryRefreshed { host, inventory } = inventory("host-00", "debian", "12") else {
        unreachable!("the helper makes an inventory event");
    };
    let mut hostile = (*inventory).clone();
    hostile.os.pretty_name = format!("Debian{HOSTILE} 12");
    hostile.containers[0].name = format!("web{HOSTILE}");
    app.apply(&Event::InventoryRefreshed {
        host,
        inventory: Arc::new(hostile),
    });
    app.apply(&pending("host-00", &[("openssl\x1b[2J", true)], false));
    app.apply(&Event::Output {
        host: "host-00".into(),
        stream: crate::remote::Stream::Stdout,
        line: format!("Setting up{HOSTILE} libc6").into(),
    });
    app.apply(&state_changed(
        "host-00",
        StateKind::Updating,
        StateKind::Failed,
        Some(&format!("E: dpkg{HOSTILE} broke")),
    ));
    let mut screens = vec![text(&draw(&mut app, 160, 40))];
    for _ in 0..2 {
        press(&mut app, "Tab");
        screens.push(text(&draw(&mut app, 160, 40)));
    }
    let all = screens.concat();
    for leftover in ["pwned", "]0;", "[2J"] {
        assert!(
            !all.contains(leftover),
            "'{leftover}' reached the screen:\n{all}"
        );
    }
    let [inventory_tab, pending_tab, log_tab] = &screens[..] else {
        unreachable!("three screens were drawn");
    };
    assert!(
        inventory_tab.contains("os         Debian 12"),
        "{inventory_tab}"
    );
    assert!(
        inventory_tab.contains("web (nginx:1.25)"),
        "{inventory_tab}"
    );
    assert!(inventory_tab.contains("E: dpkg broke"), "{inventory_tab}");
    assert!(pending_tab.contains("openssl "), "{pending_tab}");
    assert!(log_tab.contains("Setting up libc6"), "{log_tab}");
}

/// Issue 11: the services a survey found running replaced code show on the Inventory tab; a
/// host that could not tell shows no such line.
#[tokio::test]
async fn inventory_tab_names_services_needing_a_restart() {
    use std::sync::Arc;

    use crate::engine::bus::Event;
    use crate::fleet::SurveyMark;
    use crate::tui::testing::inventory;
    let (mut app, _rig) = demo_app(color(), false);
    app.apply(&inventory("host-00", "debian", "12"));
    let before = text(&draw(&mut app, 100, 30));
    assert!(!before.contains("restart "), "{before}");
    app.apply(&Event::Surveyed {
        host: "host-00".into(),
        mark: Arc::new(SurveyMark {
            fingerprint: "x-1".into(),
            lists_refreshed: None,
            services: Some(vec!["cron.service".into(), "ssh.service".into()]),
        }),
    });
    let screen = text(&draw(&mut app, 100, 30));
    assert!(screen.contains("cron.service, ssh.service"), "{screen}");
}

/// Issue 13: the Inventory tab shows the last report of each phase, one line per check with
/// its verdict as a symbol (✓/✗, readable without colour), phase, name and detail, cut to the
/// pane at 80 columns.
#[tokio::test]
async fn inventory_tab_shows_each_check_of_the_last_reports() {
    use crate::engine::bus::Event;
    use crate::health::{CheckName, CheckPhase, CheckResult, HealthReport};
    let report = |phase, checks: Vec<(CheckName, bool, &str)>| {
        let mut report = HealthReport::new(phase);
        report.checks = checks
            .into_iter()
            .map(|(name, ok, detail)| match ok {
                true => CheckResult::pass(name, phase, detail),
                false => CheckResult::fail(name, phase, detail),
            })
            .collect();
        Event::Checked {
            host: "host-00".into(),
            report: std::sync::Arc::new(report),
        }
    };
    let pre = report(
        CheckPhase::Pre,
        vec![(
            CheckName::FailedUnits,
            true,
            "baseline: 1 already failed, not counted later: tendhost-prefailed.service",
        )],
    );
    let reboot = report(
        CheckPhase::PostReboot,
        vec![
            (
                CheckName::HostKey,
                true,
                "the known host key answered at root@10.0.0.0:22",
            ),
            (
                CheckName::Kernel,
                true,
                "running 6.1.0-18-amd64, the newest installed",
            ),
            (
                CheckName::SystemRunning,
                false,
                "degraded: tendhost-broken.service failed",
            ),
            (
                CheckName::FailedUnits,
                false,
                "newly failed: tendhost-broken.service",
            ),
        ],
    );
    for theme in [color(), Theme::plain()] {
        let (mut app, _rig) = demo_app(theme, false);
        app.apply(&pre);
        app.apply(&reboot);
        let buf = draw(&mut app, 80, 24);
        let screen = text(&buf);
        let cross = buf
            .content()
            .iter()
            .find(|c| c.symbol() == "✗")
            .expect("a failed check is drawn with ✗");
        if theme.color {
            insta::assert_snapshot!("checks_80x24", screen);
            assert_eq!(cross.fg, Color::Red);
        } else {
            insta::assert_snapshot!("checks_80x24_no_color", screen);
            assert_eq!(cross.fg, Color::Reset, "NO_COLOR draws no colour");
        }
        assert!(
            screen.contains("checks     ✓ pre-update  failed_units    baseline: 1 already failed"),
            "{screen}"
        );
        assert!(
            screen.contains("✗ post-reboot system_running  degraded: tendhost-broken.service"),
            "{screen}"
        );
        assert!(
            screen.contains("…"),
            "a long detail is cut to the pane: {screen}"
        );
        assert!(screen.lines().all(|l| l.chars().count() <= 80), "{screen}");
    }
}

#[tokio::test]
async fn guests_and_their_hypervisor_show_the_relation_in_the_table_and_the_detail_pane() {
    let config = crate::config::Config::from_str(
        "t.toml",
        "[[host]]\nname = \"pve1\"\naddr = \"10.0.0.1\"\n\n\
         [[host]]\nname = \"vm1\"\naddr = \"10.0.0.2\"\nruns_on = \"pve1\"\n",
    )
    .unwrap();
    let model = crate::tui::model::FleetModel::from_config(&config, 100);
    let rig = crate::engine::tests::start(config, SimFleet::new());
    let mut app = crate::tui::app::App::new(
        model,
        rig.engine.clone(),
        crate::tui::testing::settings(color(), false),
    );
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("pve1 (1 guest)"), "{screen}");
    assert!(screen.contains("vm1 on pve1"), "{screen}");
    assert!(
        screen.contains("guests     vm1 (updated first; never rebooted under them)"),
        "{screen}"
    );
    press(&mut app, "j");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("runs on    pve1 (updated and rebooted after"),
        "{screen}"
    );
}

/// Issue 15: after an update changed two stacks, the detail pane lists what a rollback would put
/// back and what an update held; `o` opens a confirmation naming each service's images (80×24),
/// ←/→ narrow it to one stack, and a host with nothing to roll back gets a status line instead.
#[tokio::test]
async fn rollback_key_confirms_what_it_puts_back_and_picks_a_stack() {
    use crate::engine::bus::Event;
    use crate::pkg::{HeldService, Hold, ImageRef, ServiceImage, StackReport};
    use crate::tui::dialogs::Confirmable;
    use crate::tui::view::Overlay;
    let image = |id: &str| ImageRef {
        id: format!("sha256:{id}"),
        digest: Some(format!("reg/app@sha256:{id}")),
    };
    let stack = |path: &str| StackReport {
        path: path.into(),
        services: vec![ServiceImage {
            service: "web".into(),
            image: Some("127.0.0.1:5000/app:latest".into()),
            running: Some(image("aaaaaaaaaaaa1111")),
            available: Some(image("bbbbbbbbbbbb2222")),
            held: None,
        }],
        recreated: true,
    };
    let (mut app, _rig) = demo_app(color(), false);
    press(&mut app, "o");
    assert!(
        matches!(app.view.overlay, Overlay::None),
        "nothing to roll back yet"
    );
    assert!(
        app.view
            .status
            .as_ref()
            .is_some_and(|s| s.text.starts_with("nothing to roll back")),
        "{:?}",
        app.view.status
    );

    app.apply(&Event::Stacks {
        host: "host-00".into(),
        stacks: std::sync::Arc::from(vec![stack("/srv/a"), stack("/srv/b")]),
        updated: true,
    });
    app.apply(&Event::Held {
        host: "host-00".into(),
        held: std::sync::Arc::from(vec![HeldService {
            path: "/srv/c".into(),
            service: "cache".into(),
            image: image("cccccccccccc3333"),
            hold: Hold::RolledBack,
        }]),
    });
    let screen = text(&draw(&mut app, 80, 40));
    assert!(
        screen.contains("rollback   /srv/a web: bbbbbbbbbbbb → aaaaaaaaaaaa"),
        "{screen}"
    );
    assert!(
        screen.contains("held       /srv/c cache: held: rolled back (cccccccccccc)"),
        "{screen}"
    );

    press(&mut app, "o");
    let Overlay::Confirm(dialog) = &app.view.overlay else {
        panic!("no confirmation: {:?}", app.view.overlay);
    };
    assert_eq!(
        dialog.what,
        Confirmable::Host(crate::engine::JobKind::Rollback { dry_run: false })
    );
    assert_eq!(dialog.question(), "rollback 1 host (all its stacks)?");
    let screen = text(&draw(&mut app, 80, 24));
    for line in [
        "↺ host-00 /srv/a: web: bbbbbbbbbbbb → aaaaaaaaaaaa",
        "↺ host-00 /srv/b: web: bbbbbbbbbbbb → aaaaaaaaaaaa",
        "left out of later updates",
    ] {
        assert!(screen.contains(line), "{line:?} missing: {screen}");
    }
    press(&mut app, "l l");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("rollback 1 host (only stack /srv/b)?"),
        "{screen}"
    );
    assert!(!screen.contains("/srv/a:"), "{screen}");
    press(&mut app, "d");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("dry-run rollback 1 host"), "{screen}");
    assert!(screen.contains("changes nothing"), "{screen}");
}
