//! Fixtures for the TUI's unit tests: synthetic fleets and events, the app over a real engine on
//! the simulated fleet, and buffer-to-text helpers.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use ratatui::buffer::Buffer;

use crate::engine::bus::{Event, StateKind, WaveProgress, WaveStatus};
use crate::engine::testkit::SimFleet;
use crate::engine::tests::{Rig, fleet_config_named, start};
use crate::fleet::{FailedInfo, HostState, Phase};
use crate::inventory::{Container, Inventory, InventorySource, OsInfo};
use crate::pkg::{PendingPackage, RebootStatus};
use crate::tui::model::{FleetModel, HostRow};

/// `n` idle hosts named `host-00`, `host-01`… tagged `web` (even) or `db` (odd).
pub(super) fn fleet(n: usize) -> FleetModel {
    let rows = (0..n)
        .map(|i| {
            let tag = if i % 2 == 0 { "web" } else { "db" };
            HostRow::new(
                format!("host-{i:02}").into(),
                format!("root@10.0.0.{i}:22"),
                vec![tag.to_string()],
                vec![if i < 2 { "canary" } else { "rest" }.to_string()],
                100,
            )
        })
        .collect();
    FleetModel::from_rows(rows)
}

/// A move to `to`, carrying the state a supervisor would announce (`reason` is the error of a
/// failure or why the host waits for a reboot).
pub(super) fn state_changed(
    host: &str,
    from: StateKind,
    to: StateKind,
    reason: Option<&str>,
) -> Event {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).single().unwrap();
    let reason: Arc<str> = reason.unwrap_or("").into();
    let phase = match to {
        StateKind::Idle => Phase::Idle,
        StateKind::Querying => Phase::Querying {
            resting: Box::new(Phase::Idle),
        },
        StateKind::PendingUpdates => Phase::PendingUpdates,
        StateKind::Updating => Phase::Updating,
        StateKind::WaitingReboot => Phase::WaitingReboot { reason },
        StateKind::Rebooting => Phase::Rebooting,
        StateKind::Verifying => Phase::Verifying,
        StateKind::Failed => Phase::Failed(FailedInfo {
            previous_state: from,
            error: reason,
            failed_at: at,
            acknowledged: false,
        }),
    };
    Event::StateChanged {
        host: host.into(),
        from,
        to,
        state: Arc::new(HostState {
            phase,
            since: Some(at),
            // As the supervisor stamps it when an update ends.
            last_update: (from == StateKind::Updating
                && matches!(to, StateKind::Idle | StateKind::WaitingReboot))
            .then_some(at),
            ..HostState::default()
        }),
    }
}

/// A failed host's state as it is after the operator acknowledged it.
pub(super) fn acknowledged(host: &str, error: &str) -> Event {
    let Event::StateChanged { state, .. } =
        state_changed(host, StateKind::Updating, StateKind::Failed, Some(error))
    else {
        unreachable!("state_changed builds a state change")
    };
    let mut state = (*state).clone();
    if let Phase::Failed(info) = &mut state.phase {
        info.acknowledged = true;
    }
    Event::StateChanged {
        host: host.into(),
        from: StateKind::Failed,
        to: StateKind::Failed,
        state: Arc::new(state),
    }
}

pub(super) fn pending(host: &str, packages: &[(&str, bool)], reboot: bool) -> Event {
    let packages: Vec<PendingPackage> = packages
        .iter()
        .map(|(name, security)| PendingPackage {
            name: name.to_string(),
            from: "1.0-1".into(),
            to: "1.1-1".into(),
            security: *security,
        })
        .collect();
    Event::PendingRefreshed {
        host: host.into(),
        packages: packages.into(),
        reboot: RebootStatus {
            required: reboot,
            packages: if reboot {
                vec!["linux-image-amd64".into()]
            } else {
                vec![]
            },
        },
    }
}

pub(super) fn inventory(host: &str, id: &str, version: &str) -> Event {
    Event::InventoryRefreshed {
        host: host.into(),
        inventory: Arc::new(Inventory {
            os: OsInfo {
                id: id.into(),
                id_like: vec![],
                version_id: version.into(),
                pretty_name: format!("{id} {version}"),
            },
            kernel: "6.1.0-18-amd64".into(),
            hostname: host.into(),
            uptime_secs: 3 * 86_400 + 3_600,
            installed_packages: 412,
            containers: vec![Container {
                id: "abc123".into(),
                name: "web".into(),
                image: "nginx:1.25".into(),
                state: "running".into(),
            }],
            images: vec![],
            source: InventorySource::Probe,
            collected_at: Utc.with_ymd_and_hms(2026, 1, 1, 11, 0, 0).single().unwrap(),
            hypervisor: None,
        }),
    }
}

pub(super) fn wave(status: WaveStatus) -> WaveProgress {
    WaveProgress {
        wave_id: 1,
        status,
        batch: 2,
        batches: 5,
        done: 14,
        succeeded: 13,
        failed: 1,
        skipped: 0,
        total: 42,
        in_flight: vec!["host-03".into()],
        reason: None,
        skipped_hosts: std::sync::Arc::from([]),
        failed_hosts: std::sync::Arc::from([]),
    }
}

/// The buffer's text, one line per row, trailing spaces trimmed.
pub(super) fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        for x in area.left()..area.right() {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A small fleet with something in every column: pending, security, reboot, failed, a wave.
pub(super) fn demo_model() -> FleetModel {
    use crate::engine::bus::StateKind::*;
    let mut model = fleet(6);
    model.apply(&inventory("host-00", "debian", "12"));
    model.apply(&inventory("host-01", "fedora", "40"));
    model.apply(&inventory("host-02", "ubuntu", "24.04"));
    model.apply(&pending(
        "host-00",
        &[("openssl", true), ("curl", false), ("zlib1g", false)],
        false,
    ));
    model.apply(&state_changed("host-00", Idle, PendingUpdates, None));
    model.apply(&pending("host-01", &[("openssl", true)], true));
    model.apply(&state_changed("host-01", Idle, Updating, None));
    model.apply(&state_changed("host-02", Updating, Idle, None));
    model.apply(&pending("host-02", &[], false));
    model.apply(&acknowledged(
        "host-03",
        "connecting to host-03: connection refused",
    ));
    model.apply(&Event::Wave(wave(WaveStatus::Running)));
    for i in 0..30 {
        model.apply(&Event::Output {
            host: "host-00".into(),
            stream: crate::remote::Stream::Stdout,
            line: format!("Unpacking package-{i} (1.{i}) ...").into(),
        });
    }
    model
}

/// A started engine whose hosts are the demo fleet's (`host-00` … `host-05`), simulated by
/// `fleet`, all idle and never refreshed. Must be called inside a tokio runtime.
pub(super) fn demo_engine(fleet: Arc<SimFleet>) -> Rig {
    let names = demo_model()
        .hosts()
        .iter()
        .map(|h| h.name().to_string())
        .collect::<Vec<_>>();
    start(fleet_config_named(names, |_| String::new()), fleet)
}

/// The app over [`demo_model`] with a pinned clock, asking a real engine over the simulated
/// `fleet` (see [`demo_engine`]); the rig holds that engine's events, to observe what was asked.
pub(super) fn demo_app_on(
    fleet: Arc<SimFleet>,
    theme: crate::tui::theme::Theme,
    read_only: bool,
) -> (crate::tui::app::App, Rig) {
    let rig = demo_engine(fleet);
    let mut app =
        crate::tui::app::App::new(demo_model(), rig.engine.clone(), settings(theme, read_only));
    app.view.now = Utc.with_ymd_and_hms(2026, 1, 1, 15, 0, 0).single().unwrap();
    (app, rig)
}

/// [`demo_app_on`] a simulated fleet where every host behaves by default.
pub(super) fn demo_app(
    theme: crate::tui::theme::Theme,
    read_only: bool,
) -> (crate::tui::app::App, Rig) {
    demo_app_on(SimFleet::new(), theme, read_only)
}

/// The console's settings in tests: default keys, `1,25%` waves.
pub(super) fn settings(
    theme: crate::tui::theme::Theme,
    read_only: bool,
) -> crate::tui::app::Settings {
    use crate::config::{BatchSize, FailureLimit};
    crate::tui::app::Settings {
        read_only,
        keys: crate::tui::keys::KeyMap::defaults(),
        theme,
        wave_defaults: crate::tui::dialogs::WaveDefaults {
            batch_sizes: BatchSize::parse_list("1,25%").unwrap(),
            delay: std::time::Duration::from_secs(30),
            max_failures: FailureLimit::Count(0),
            mode: crate::config::WaveMode::Rolling,
            on_threshold: crate::config::OnThreshold::Pause,
        },
        startup_warning: None,
        schedule_state: None,
    }
}

/// Renders the app into a `width`×`height` test terminal and returns the buffer.
pub(super) fn draw(app: &mut crate::tui::app::App, width: u16, height: u16) -> Buffer {
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| app.draw(f)).unwrap();
    terminal.backend().buffer().clone()
}

/// A key press as crossterm reports it.
pub(super) fn key(spec: &str) -> crossterm::event::KeyEvent {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let (code, mods) = match spec {
        "Enter" => (KeyCode::Enter, KeyModifiers::NONE),
        "Delete" => (KeyCode::Delete, KeyModifiers::NONE),
        "Esc" => (KeyCode::Esc, KeyModifiers::NONE),
        "Backspace" => (KeyCode::Backspace, KeyModifiers::NONE),
        "Tab" => (KeyCode::Tab, KeyModifiers::NONE),
        "Down" => (KeyCode::Down, KeyModifiers::NONE),
        "Space" => (KeyCode::Char(' '), KeyModifiers::NONE),
        s if s.chars().count() == 1 => {
            let c = s.chars().next().unwrap();
            let mods = if c.is_ascii_uppercase() {
                KeyModifiers::SHIFT
            } else {
                KeyModifiers::NONE
            };
            (KeyCode::Char(c), mods)
        }
        other => panic!("no test key {other}"),
    };
    KeyEvent::new(code, mods)
}

/// Presses each key in turn: `press(&mut app, "/ t a g Enter")` types `/tag` then Enter.
pub(super) fn press(app: &mut crate::tui::app::App, keys: &str) {
    for k in keys.split(' ').filter(|k| !k.is_empty()) {
        app.handle_key(key(k));
    }
}
