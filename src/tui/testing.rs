//! Fixtures for the TUI's unit tests: synthetic fleets and events, and buffer-to-text helpers.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use ratatui::buffer::Buffer;

use crate::engine::bus::{Event, StateKind, WaveProgress, WaveStatus};
use crate::inventory::{Container, Inventory, InventorySource, OsInfo};
use crate::pkg::{PendingPackage, RebootStatus};
use crate::tui::model::{FleetModel, HostRow};

/// `n` idle hosts named `host-00`, `host-01`… tagged `web` (even) or `db` (odd).
pub fn fleet(n: usize) -> FleetModel {
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

pub fn state_changed(host: &str, from: StateKind, to: StateKind, reason: Option<&str>) -> Event {
    Event::StateChanged {
        host: host.into(),
        from,
        to,
        at: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).single().unwrap(),
        reason: reason.map(Arc::from),
    }
}

pub fn pending(host: &str, packages: &[(&str, bool)], reboot: bool) -> Event {
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
            packages: if reboot { vec!["linux-image-amd64".into()] } else { vec![] },
        },
    }
}

pub fn inventory(host: &str, id: &str, version: &str) -> Event {
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
        }),
    }
}

pub fn wave(status: WaveStatus) -> WaveProgress {
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
    }
}

/// The buffer's text, one line per row, trailing spaces trimmed.
pub fn text(buffer: &Buffer) -> String {
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
