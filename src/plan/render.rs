//! The plan in words, for people: the batch table and the console's preview and Plan view say
//! a host, a batch and the wave the same way. Plain text only (no styles, no terminal); the
//! callers escape it as they escape everything a host sent.

use std::time::Duration;

use chrono::{DateTime, Local};

use super::{HostStatus, PlanBatch, PlanHost, WavePlan};
use crate::config::format_duration;

/// "12m", or "unknown" for a host that has no history yet.
pub fn duration_text(duration: Option<Duration>) -> String {
    match duration {
        Some(d) if d >= Duration::from_secs(60) => {
            format_duration(Duration::from_secs(d.as_secs().div_ceil(60) * 60))
        }
        Some(d) => format_duration(Duration::from_secs(d.as_secs_f64().ceil() as u64)),
        None => "unknown".to_string(),
    }
}

/// "512 B", "4.9 KiB", "12.0 MiB".
pub fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn clock(at: DateTime<Local>) -> String {
    at.format("%a %H:%M").to_string()
}

/// "batch 1 (canary)", "batch 2", or "not in the wave".
pub fn batch_label(batch: Option<usize>) -> String {
    match batch {
        Some(1) => "batch 1 (canary)".to_string(),
        Some(n) => format!("batch {n}"),
        None => "not in the wave".to_string(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the host's update does, in one phrase: "2 upgrades, 1 new, 1 removal (tendhost-legacy),
/// kept back: tendhost-core". "no dry run yet" when unknown.
pub fn changes_text(host: &PlanHost) -> String {
    if !host.known {
        return "no dry run yet".to_string();
    }
    let mut parts = vec![plural(host.upgrades.len(), "upgrade", "upgrades")];
    if !host.installs.is_empty() {
        parts.push(format!("{} new", host.installs.len()));
    }
    if !host.removals.is_empty() {
        parts.push(format!(
            "{} ({})",
            plural(host.removals.len(), "removal", "removals"),
            host.removals.join(", ")
        ));
    }
    if !host.held.is_empty() {
        parts.push(format!("held: {}", host.held.join(", ")));
    }
    if !host.kept_back.is_empty() {
        parts.push(format!("kept back: {}", host.kept_back.join(", ")));
    }
    if let Some(prompts) = host.conffiles.as_ref().filter(|c| !c.is_empty()) {
        parts.push(plural(prompts.len(), "conffile prompt", "conffile prompts"));
    }
    if !host.compose.is_empty() {
        parts.push(plural(
            host.compose.len(),
            "compose service",
            "compose services",
        ));
    }
    parts.join(", ")
}

/// "reboot (tendhost-kernel)", "reboot (already required)", or "-".
pub fn reboot_text(host: &PlanHost) -> String {
    match &host.reboot {
        None => "-".to_string(),
        Some(r) if !r.packages.is_empty() => format!("reboot ({})", r.packages.join(", ")),
        Some(_) => "reboot (already required)".to_string(),
    }
}

/// "not enough space: needs 5.9 KiB, 3.9 KiB free", "3.9 KiB free", or "-".
pub fn space_text(host: &PlanHost) -> String {
    let space = host.space;
    match (space.enough, space.need_bytes, space.free_bytes) {
        (Some(false), Some(need), Some(free)) => format!(
            "not enough space: needs {}, {} free",
            bytes_text(need),
            bytes_text(free)
        ),
        (_, _, Some(free)) => format!("{} free", bytes_text(free)),
        _ => "-".to_string(),
    }
}

/// Why the wave would not run the host as planned, if it would not.
pub fn status_text(status: &HostStatus) -> Option<&str> {
    match status {
        HostStatus::Runs => None,
        HostStatus::Overruns { note }
        | HostStatus::Outside { note }
        | HostStatus::Deferred { note, .. } => Some(note),
    }
}

/// "batch 1 (canary): 1 host, 2 upgrades, 1 removal, 1 reboot; Sat 05:30 → Sat 05:42 (12m)".
pub fn batch_line(batch: &PlanBatch) -> String {
    let t = &batch.totals;
    let mut text = format!(
        "{}: {}, {}",
        batch_label(Some(batch.batch)),
        plural(t.hosts, "host", "hosts"),
        plural(t.upgrades, "upgrade", "upgrades")
    );
    if t.installs > 0 {
        text.push_str(&format!(", {} new", t.installs));
    }
    if t.removals > 0 {
        text.push_str(&format!(", {}", plural(t.removals, "removal", "removals")));
    }
    if t.reboots > 0 {
        text.push_str(&format!(", {}", plural(t.reboots, "reboot", "reboots")));
    }
    if t.unknown_duration == t.hosts {
        text.push_str(&format!("; from {}, duration unknown", clock(batch.start)));
        return text;
    }
    text.push_str(&format!(
        "; {} → {} ({})",
        clock(batch.start),
        clock(batch.finish),
        duration_text(Some(batch.predicted))
    ));
    if t.unknown_duration > 0 {
        text.push_str(&format!(
            "; {} of unknown duration",
            plural(t.unknown_duration, "host", "hosts")
        ));
    }
    text
}

/// The wave in one line: hosts, batches, what changes, and when it should be done.
pub fn totals_line(plan: &WavePlan) -> String {
    let t = &plan.totals;
    let c = &t.counts;
    let mut text = format!(
        "wave: {} in {}, {}, {} new, {}, {}",
        plural(c.hosts, "host", "hosts"),
        plural(t.batches, "batch", "batches"),
        plural(c.upgrades, "upgrade", "upgrades"),
        c.installs,
        plural(c.removals, "removal", "removals"),
        plural(c.reboots, "reboot", "reboots"),
    );
    if c.download_bytes > 0 {
        text.push_str(&format!(", {} to download", bytes_text(c.download_bytes)));
    }
    if c.unknown_duration == c.hosts {
        text.push_str("; duration unknown (no host has a history yet)");
    } else {
        text.push_str(&format!(
            "; predicted {}, estimated finish {}",
            duration_text(Some(t.predicted)),
            clock(t.estimated_finish)
        ));
    }
    if c.unknown_duration > 0 && c.unknown_duration < c.hosts {
        text.push_str(&format!(
            " (without {} of unknown duration)",
            plural(c.unknown_duration, "host", "hosts")
        ));
    }
    let mut left = Vec::new();
    if t.deferred > 0 {
        left.push(format!("{} deferred to their next window", t.deferred));
    }
    if t.outside_window > 0 {
        left.push(format!("{} outside their window", t.outside_window));
    }
    if c.without_plan > 0 {
        left.push(format!("{} without a dry run", c.without_plan));
    }
    if c.short_of_space > 0 {
        left.push(format!("{} short of disk space", c.short_of_space));
    }
    if !left.is_empty() {
        text.push_str(&format!("; {}", left.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_people_say_them() {
        assert_eq!(bytes_text(512), "512 B");
        assert_eq!(bytes_text(5_000), "4.9 KiB");
        assert_eq!(bytes_text(12 * 1024 * 1024), "12.0 MiB");
        assert_eq!(duration_text(None), "unknown");
        assert_eq!(duration_text(Some(Duration::from_secs(61))), "2m");
        assert_eq!(duration_text(Some(Duration::from_millis(2500))), "3s");
    }
}
