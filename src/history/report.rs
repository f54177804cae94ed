//! Renderings of a [`History`]: the JSON shapes (one wave, one timeline entry) shared by
//! `--batch history --json` and `report --format json`, the change-log markdown, the CSV of
//! one row per host per wave, and the human table of `--batch history`.
//!
//! Text from hosts (a failure's reason, a package name) is cleaned before it reaches markdown
//! or a terminal: escape sequences and control characters go (`tui::sanitize::text`), and in
//! markdown the characters that would make markup are escaped, so a reason cannot turn a
//! ticket into a link, a table row into two or a code block into a script. JSON and CSV carry
//! the text as it was: serde and the csv writer quote it (a CSV cell that a spreadsheet would
//! take for a formula gets a leading `'`).

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::model::{Entry, HostOutcome, Wave, WaveHost};
use super::{History, ReadStats};

/// A wave as JSON (`type` is left to the caller: `wave` on a line, nothing in a document).
pub(crate) fn wave_json(wave: &Wave) -> Value {
    let hosts: Vec<Value> = wave.hosts.iter().map(host_json).collect();
    json!({
        "wave": wave.key,
        "id": wave.id,
        "started": wave.started,
        "finished": wave.finished,
        "duration_secs": wave.duration_secs(),
        "outcome": wave.outcome.as_str(),
        "reason": wave.reason,
        "user": wave.user,
        "plan": wave.plan,
        "totals": wave.totals,
        "options": wave.options,
        "resumed": wave.resumed,
        "succeeded": wave.count(HostOutcome::Succeeded),
        "failed": wave.count(HostOutcome::Failed),
        "skipped": wave.count(HostOutcome::Skipped) + wave.count(HostOutcome::Refused),
        "hosts": hosts,
    })
}

fn host_json(host: &WaveHost) -> Value {
    json!({
        "host": host.host,
        "outcome": host.outcome.as_str(),
        "reason": host.reason,
        "started": host.started,
        "finished": host.finished,
        "duration_secs": host.duration_secs(),
        "updated": host.updated(),
        "upgrades": host.upgrades,
    })
}

/// A timeline entry as JSON.
pub(crate) fn entry_json(entry: &Entry) -> Value {
    json!({
        "at": entry.at,
        "host": entry.host,
        "action": entry.action,
        "result": entry.result,
        "detail": entry.detail,
        "user": entry.user,
        "wave": entry.wave,
    })
}

/// `report --format json`: one document.
pub(crate) fn json_document(
    history: &History,
    stats: &ReadStats,
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Value {
    let waves: Vec<Value> = history.waves.iter().map(wave_json).collect();
    json!({
        "generated": now,
        "since": since,
        "records": stats.records,
        "unreadable": stats.unreadable,
        "waves": waves,
    })
}

/// The columns of `report --format csv`, in order.
pub(crate) const CSV_HEADER: [&str; 14] = [
    "wave",
    "wave_id",
    "wave_started",
    "wave_finished",
    "wave_outcome",
    "host",
    "outcome",
    "started",
    "finished",
    "duration_secs",
    "updated",
    "upgrades",
    "reason",
    "user",
];

/// `report --format csv`: a header, then one row per host per wave.
pub(crate) fn csv(history: &History) -> Result<String, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(CSV_HEADER)?;
    let time = |at: Option<DateTime<Utc>>| at.map(|a| a.to_rfc3339()).unwrap_or_default();
    let opt = |n: Option<String>| n.unwrap_or_default();
    for wave in &history.waves {
        for host in &wave.hosts {
            out.write_record([
                wave.key.clone(),
                opt(wave.id.map(|id| id.to_string())),
                wave.started.to_rfc3339(),
                time(wave.finished),
                wave.outcome.as_str().to_string(),
                cell(&host.host),
                host.outcome.as_str().to_string(),
                time(host.started),
                time(host.finished),
                opt(host.duration_secs().map(|s| format!("{s:.3}"))),
                opt(host.updated().map(|n| n.to_string())),
                cell(&upgrades_text(host)),
                cell(host.reason.as_deref().unwrap_or("")),
                wave.user.clone(),
            ])?;
        }
    }
    let bytes = out.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Host text for a CSV cell: as it was, but never a formula when a spreadsheet opens the
/// report (OWASP's CSV injection advice: a leading `=`, `+`, `-`, `@`, tab or CR gets a `'`).
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// `name from → to` for each planned upgrade, `; `-separated (security ones marked).
fn upgrades_text(host: &WaveHost) -> String {
    let Some(upgrades) = &host.upgrades else {
        return String::new();
    };
    let items: Vec<String> = upgrades
        .iter()
        .map(|u| {
            let security = if u.security { " (security)" } else { "" };
            format!("{} {} → {}{security}", u.name, u.from, u.to)
        })
        .collect();
    items.join("; ")
}

/// `report --format markdown`: a summary to paste into a ticket or a change log.
pub(crate) fn markdown(
    history: &History,
    stats: &ReadStats,
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::from("# tendhost report\n\n");
    let waves = history.waves.len();
    let _ = writeln!(
        out,
        "Generated {}{}: {waves} wave{}.",
        day_time(now),
        since.map_or(String::new(), |s| format!(", since {}", day_time(s))),
        if waves == 1 { "" } else { "s" }
    );
    if stats.unreadable > 0 {
        let _ = write!(
            out,
            "\n{} line(s) of the audit log could not be read and are not included.\n",
            stats.unreadable
        );
    }
    for wave in &history.waves {
        wave_markdown(&mut out, wave);
    }
    out
}

fn wave_markdown(out: &mut String, wave: &Wave) {
    let _ = write!(
        out,
        "\n## Wave {} — {}\n\n",
        md(&wave.key),
        wave.outcome.as_str()
    );
    let _ = write!(
        out,
        "- Started {} by {}",
        day_time(wave.started),
        md(&wave.user)
    );
    match (wave.finished, wave.duration_secs()) {
        (Some(finished), Some(secs)) => {
            let _ = writeln!(out, ", ended {} ({})", day_time(finished), human_secs(secs));
        }
        _ => out.push_str(", not ended\n"),
    }
    if let Some(plan) = &wave.plan {
        let _ = writeln!(out, "- Plan: {}", md(plan));
    }
    if let Some(options) = wave.options.as_ref().and_then(options_text) {
        let _ = writeln!(out, "- Options: {}", md(&options));
    }
    if wave.resumed > 0 {
        let _ = writeln!(out, "- Resumed {} time(s)", wave.resumed);
    }
    if let Some(reason) = &wave.reason {
        let _ = writeln!(out, "- Reason: {}", md(reason));
    }
    let _ = writeln!(
        out,
        "- Hosts: {} succeeded, {} failed, {} skipped, {} not run",
        wave.count(HostOutcome::Succeeded),
        wave.count(HostOutcome::Failed),
        wave.count(HostOutcome::Skipped) + wave.count(HostOutcome::Refused),
        wave.count(HostOutcome::NotRun)
    );
    if wave.hosts.is_empty() {
        return;
    }
    out.push_str("\n| Host | Outcome | Duration | Updated |\n|---|---|---|---|\n");
    for host in &wave.hosts {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            md(&host.host),
            host.outcome.as_str(),
            host.duration_secs().map_or("—".to_string(), human_secs),
            host.updated().map_or("—".to_string(), |n| n.to_string())
        );
    }
    let updated: Vec<&WaveHost> = wave
        .hosts
        .iter()
        .filter(|h| h.updated().is_some_and(|n| n > 0))
        .collect();
    if !updated.is_empty() {
        out.push_str("\n### Updated\n\n");
        for host in updated {
            let _ = writeln!(
                out,
                "- **{}**: {}",
                md(&host.host),
                md(&upgrades_text(host).replace("; ", ", "))
            );
        }
    }
    let failed: Vec<&WaveHost> = wave
        .hosts
        .iter()
        .filter(|h| {
            matches!(
                h.outcome,
                HostOutcome::Failed | HostOutcome::Skipped | HostOutcome::Refused
            )
        })
        .collect();
    if !failed.is_empty() {
        out.push_str("\n### Failed or skipped\n\n");
        for host in failed {
            let _ = writeln!(
                out,
                "- **{}** ({}): {}",
                md(&host.host),
                host.outcome.as_str(),
                md(host.reason.as_deref().unwrap_or("no reason recorded"))
            );
        }
    }
}

/// A wave's options on one line as an operator would say them (`batches 1,25%, max failures 0,
/// rolling`); options of a format this version does not know, as `key: value, …`.
fn options_text(options: &Value) -> Option<String> {
    use crate::config::{BatchSize, FailureLimit, OnThreshold, WaveMode};
    if let Ok(request) =
        serde_json::from_value::<crate::store::snapshot::SavedRequest>(options.clone())
    {
        let size = |s: &BatchSize| match s {
            BatchSize::Count(n) => n.to_string(),
            BatchSize::Percent(p) => format!("{p}%"),
        };
        let sizes: Vec<String> = request.sizes.iter().map(size).collect();
        let mut parts = vec![
            format!("batches {}", sizes.join(",")),
            match request.max_failures {
                FailureLimit::Count(n) => format!("max failures {n}"),
                FailureLimit::Percent(p) => format!("max failures {p}%"),
            },
            match request.mode {
                WaveMode::Rolling => "rolling".to_string(),
                WaveMode::Batches => "in batches".to_string(),
            },
        ];
        if !request.delay.is_zero() {
            parts.push(format!(
                "delay {}",
                crate::config::format_duration(request.delay)
            ));
        }
        if request.on_threshold == OnThreshold::Pause {
            parts.push("pauses at its threshold".to_string());
        }
        if request.dry_run {
            parts.push("dry run".to_string());
        }
        if request.allow_removals {
            parts.push("removals allowed".to_string());
        }
        if !request.scope.is_everything() {
            parts.push(request.scope.describe());
        }
        if !request.defer_overruns {
            parts.push("no deferral".to_string());
        }
        return Some(parts.join(", "));
    }
    let fields = options.as_object()?;
    let items: Vec<String> = fields
        .iter()
        .map(|(key, value)| match value {
            Value::String(s) => format!("{key}: {s}"),
            other => format!("{key}: {other}"),
        })
        .collect();
    (!items.is_empty()).then(|| items.join(", "))
}

/// Host text made safe for markdown: cleaned for a terminal, one line, markup escaped.
pub(crate) fn md(text: &str) -> String {
    let clean = crate::tui::sanitize::text(text);
    let mut out = String::with_capacity(clean.len());
    for c in clean.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '#' | '!' | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Host text made safe for one terminal line.
pub(crate) fn term(text: &str) -> String {
    crate::tui::sanitize::text(text).into_owned()
}

/// `2026-12-03 16:06:44 UTC`.
pub(crate) fn day_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `0.7s`, `42.0s`, `5m3s`, `1h2m`.
pub(crate) fn human_secs(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        crate::config::format_duration(Duration::from_secs(secs.round() as u64))
    }
}

/// The human table of `--batch history`: each wave with its hosts, then the timelines.
pub(crate) fn table(history: &History) -> Vec<String> {
    let mut lines = Vec::new();
    if history.waves.is_empty() {
        lines.push("no waves in the audit log for this selection".to_string());
    }
    for wave in &history.waves {
        lines.push(format!(
            "wave {}  {}  {:<11} {:>8}  {} ok, {} failed, {} skipped{}",
            term(&wave.key),
            day_time(wave.started),
            wave.outcome.as_str(),
            wave.duration_secs().map_or("-".to_string(), human_secs),
            wave.count(HostOutcome::Succeeded),
            wave.count(HostOutcome::Failed),
            wave.count(HostOutcome::Skipped) + wave.count(HostOutcome::Refused),
            wave.reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {}", term(r)))
        ));
        for host in &wave.hosts {
            let what = match (host.updated(), &host.reason) {
                (_, Some(reason)) => term(reason),
                (Some(n), None) => format!("{n} packages updated"),
                (None, None) => String::new(),
            };
            lines.push(format!(
                "  {:<20} {:<11} {:>8}  {what}",
                term(&host.host),
                host.outcome.as_str(),
                host.duration_secs().map_or("-".to_string(), human_secs),
            ));
        }
    }
    for (host, entries) in &history.timelines {
        lines.push(String::new());
        lines.push(format!("{}:", term(host)));
        for entry in entries {
            lines.push(format!(
                "  {}  {:<12} {}{}",
                day_time(entry.at),
                term(&entry.action),
                term(&entry.result),
                entry
                    .detail
                    .as_deref()
                    .map_or(String::new(), |d| format!(": {}", term(d)))
            ));
        }
    }
    lines
}
