//! `tendhost --batch history` and `tendhost report`: arguments to a query, the query to output,
//! and the exit code (DESIGN.md §3). Neither takes the state lock nor starts the engine: the
//! audit log is only read, so both run beside a running tendhost.

use chrono::Utc;
use serde_json::json;

use super::{HistoryError, Query, ReadStats, TIMELINE_LIMIT, report};
use crate::cli::{BatchArgs, ReportFormat, SelectArgs};
use crate::config::Config;
use crate::exit::Exit;
use crate::fleet::select::Selectors;
use crate::stdio;
use crate::store::Paths;

/// What both commands are asked.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub select: &'a SelectArgs,
    /// `--since`.
    pub since: Option<&'a str>,
}

/// `--batch history [SELECTORS] [--since X] [--json]`: the waves (newest last), each with
/// its selected hosts; given hosts, groups or tags, each selected host's timeline after them. `--json`:
/// one `{"type":"wave",…}` line per wave, one `{"type":"entry",…}` per timeline entry, then a
/// `{"type":"summary",…}` line.
pub fn history(config: &Config, paths: &Paths, args: &BatchArgs) -> Exit {
    if let Some(flag) = foreign_flag(args) {
        stdio::err_line(format!("tendhost: {flag} does not apply to 'history'"));
        return Exit::Usage;
    }
    let ask = Ask {
        select: &args.select,
        since: args.since.as_deref(),
    };
    let json = args.json;
    let now = Utc::now();
    let (query, since) = match query(config, ask, now) {
        Ok(query) => query,
        Err(err) => return usage(&err),
    };
    let (history, stats) = match super::load(&audit_file(config, paths), query) {
        Ok(found) => found,
        Err(err) => return failed(&err),
    };
    warn_unreadable(&stats);
    let mut lines = Vec::new();
    if json {
        for wave in &history.waves {
            let mut value = report::wave_json(wave);
            value["type"] = json!("wave");
            lines.push(value.to_string());
        }
        for entry in history.timelines.values().flatten() {
            let mut value = report::entry_json(entry);
            value["type"] = json!("entry");
            lines.push(value.to_string());
        }
        let entries: usize = history.timelines.values().map(Vec::len).sum();
        lines.push(
            json!({
                "type": "summary",
                "command": "history",
                "waves": history.waves.len(),
                "entries": entries,
                "records": stats.records,
                "unreadable": stats.unreadable,
                "since": since,
            })
            .to_string(),
        );
    } else {
        lines = report::table(&history);
    }
    // A reader that stops early (`| head`) has seen what it wanted.
    let _ = lines.iter().try_for_each(stdio::out_line);
    Exit::Ok
}

/// `report --format markdown|json|csv [SELECTORS] [--since X] [--wave ID]`: the waves as a
/// change-log summary, one JSON document, or one CSV row per host per wave.
pub fn report(
    config: &Config,
    paths: &Paths,
    ask: Ask<'_>,
    wave: Option<&str>,
    format: ReportFormat,
) -> Exit {
    let now = Utc::now();
    let (mut query, since) = match query(config, ask, now) {
        Ok(query) => query,
        Err(err) => return usage(&err),
    };
    query.timeline_limit = None;
    let (mut history, stats) = match super::load(&audit_file(config, paths), query) {
        Ok(found) => found,
        Err(err) => return failed(&err),
    };
    if let Some(which) = wave {
        match super::pick_wave(&history.waves, which) {
            Ok(picked) => history.waves = vec![picked.clone()],
            Err(err) => return usage(&err),
        }
    }
    warn_unreadable(&stats);
    let text = match format {
        ReportFormat::Markdown => report::markdown(&history, &stats, since, now),
        ReportFormat::Json => {
            let mut text = report::json_document(&history, &stats, since, now).to_string();
            text.push('\n');
            text
        }
        ReportFormat::Csv => match report::csv(&history) {
            Ok(text) => text,
            Err(err) => {
                stdio::err_line(format!("tendhost: writing the CSV report: {err}"));
                return Exit::HostFailed;
            }
        },
    };
    let _ = stdio::out_bytes(text.as_bytes());
    Exit::Ok
}

/// The first `--batch` option given that history has no use for: refused rather than ignored,
/// so `--batch history --dry-run` is not mistaken for something it is not.
fn foreign_flag(args: &BatchArgs) -> Option<&'static str> {
    let given = [
        (args.dry_run, "--dry-run"),
        (args.refresh_lists, "--refresh-lists"),
        (args.allow_removals, "--allow-removals"),
        (!args.packages.is_empty(), "--packages"),
        (args.security_only, "--security-only"),
        (args.reboot_jump_hosts, "--reboot-jump-hosts"),
        (args.batch_size.is_some(), "--batch-size"),
        (args.delay.is_some(), "--delay"),
        (args.max_failures.is_some(), "--max-failures"),
        (args.barriers, "--barriers"),
        (args.plan, "--plan"),
        (args.no_defer, "--no-defer"),
        (args.on_threshold.is_some(), "--on-threshold"),
        (args.resume, "--resume"),
        (args.accept_changes, "--accept-changes"),
        (args.schedule.is_some(), "--schedule"),
        (args.failed.is_some(), "--failed"),
    ];
    given
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag))
}

/// The query `ask` means, and the `--since` time it named.
fn query(
    config: &Config,
    ask: Ask<'_>,
    now: chrono::DateTime<Utc>,
) -> Result<(Query, Option<chrono::DateTime<Utc>>), HistoryError> {
    let selectors = Selectors::from(ask.select);
    let hosts = super::host_filter(config, &selectors)?;
    let since = ask.since.map(|s| super::parse_since(s, now)).transpose()?;
    // Timelines are for hosts asked about (by name, group or tag); the whole fleet's, or all
    // but a few excluded, would bury the waves.
    let timeline_limit = hosts.only.is_some().then_some(TIMELINE_LIMIT);
    Ok((
        Query {
            hosts,
            since,
            timeline_limit,
        },
        since,
    ))
}

/// The live audit file: `[audit] file`, else the state dir's.
fn audit_file(config: &Config, paths: &Paths) -> std::path::PathBuf {
    config.audit.file.clone().unwrap_or_else(|| paths.audit())
}

/// Said once, on stderr: the history is whole but for these lines.
fn warn_unreadable(stats: &ReadStats) {
    if stats.unreadable > 0 {
        stdio::err_line(format!(
            "tendhost: warning: {} line(s) of the audit log could not be read (first at {}); \
             the history leaves them out",
            stats.unreadable,
            stats.first_unreadable.as_deref().unwrap_or("?")
        ));
    }
}

fn usage(err: &HistoryError) -> Exit {
    stdio::err_line(format!("tendhost: {}", crate::errors::chain(err)));
    Exit::Usage
}

fn failed(err: &HistoryError) -> Exit {
    stdio::err_line(format!("tendhost: {}", crate::errors::chain(err)));
    Exit::HostFailed
}
