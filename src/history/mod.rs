//! History and reports from the audit log (issue 14): the waves with their hosts, durations
//! and outcomes, and each host's own timeline, for `--batch history`, `tendhost report` and
//! the console's History view.
//!
//! Read-only: it reads the audit files (rotated ones oldest first, then the live one), never
//! the snapshot or a host, and takes no lock, so it runs beside a running tendhost.
//!
//! - [`read`]: streams records out of the files, tolerating a torn or unreadable line.
//! - [`model`]: folds them into waves and timelines, keeping only aggregates.
//! - [`report`]: markdown, JSON and CSV renderings of a history.
//! - [`command`]: the two commands' wiring (arguments → query → output → exit code).

pub mod command;
pub(crate) mod model;
pub(crate) mod read;
pub(crate) mod report;

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};

pub(crate) use model::{History, HostFilter, Query, Wave};
pub(crate) use read::ReadStats;

use crate::config::Config;
use crate::fleet::select::{SelectError, Selectors};

/// Entries kept per host for a timeline: the newest ones; older ones are in the log.
pub(crate) const TIMELINE_LIMIT: usize = 500;

/// Why history could not be given.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HistoryError {
    #[error(transparent)]
    Read(#[from] read::ReadError),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error(
        "--since '{0}': give a duration back from now (`7d`, `24h`) or a date (`2026-01-31`, RFC 3339)"
    )]
    Since(String),
    #[error("--wave '{0}': no such wave in the audit log (give its name, its id, or `last`)")]
    NoSuchWave(String),
}

/// Reads the audit log whose live file is `live` into the history `query` asks for.
pub(crate) fn load(live: &Path, query: Query) -> Result<(History, ReadStats), HistoryError> {
    let files = read::files(live)?;
    let mut builder = model::Builder::new(query);
    let stats = read::each_record(&files, |line| builder.add(line))?;
    Ok((builder.finish(), stats))
}

/// The hosts `selectors` mean for history: the config's meaning of groups and tags, and host
/// names taken as they are, so a host no longer configured still has its history. No
/// selector: every host the log knows.
pub(crate) fn host_filter(
    config: &Config,
    selectors: &Selectors,
) -> Result<HostFilter, SelectError> {
    let known = |name: &String| config.host(name).is_some();
    // Groups and tags must exist (a typo is an error, as everywhere); names need not.
    let checked = Selectors {
        hosts: selectors
            .hosts
            .iter()
            .filter(|h| known(h))
            .cloned()
            .collect(),
        exclude: selectors
            .exclude
            .iter()
            .filter(|h| known(h))
            .cloned()
            .collect(),
        ..selectors.clone()
    };
    match crate::fleet::select::select(config, &checked) {
        Ok(_) | Err(SelectError::Empty) => {}
        Err(err) => return Err(err),
    }
    let exclude: BTreeSet<String> = selectors.exclude.iter().cloned().collect();
    let everyone = selectors.hosts.is_empty() && selectors.groups.is_empty();
    if everyone && selectors.tags.is_empty() {
        return Ok(HostFilter {
            only: None,
            exclude,
        });
    }
    let mut only: BTreeSet<String> = config
        .hosts
        .iter()
        .filter(|host| crate::fleet::select::chosen(selectors, host))
        .map(|host| host.name.to_string())
        .collect();
    // A host the config no longer has has no tags: named outright, it counts only untagged.
    if selectors.tags.is_empty() {
        only.extend(selectors.hosts.iter().filter(|h| !known(h)).cloned());
    }
    Ok(HostFilter {
        only: Some(only),
        exclude,
    })
}

/// `--since`: a duration back from `now` (`7d`, `24h`, the config's duration syntax), a date
/// (`2026-01-31`, midnight UTC) or an RFC 3339 time.
pub(crate) fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, HistoryError> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(midnight) = day.and_hms_opt(0, 0, 0)
    {
        return Ok(midnight.and_utc());
    }
    let back = crate::config::parse_duration(text).map_err(|_| HistoryError::Since(text.into()))?;
    let back = chrono::Duration::from_std(back).map_err(|_| HistoryError::Since(text.into()))?;
    now.checked_sub_signed(back)
        .ok_or_else(|| HistoryError::Since(text.into()))
}

/// `--wave`: the wave named exactly, the newest with that id, or the newest (`last`).
pub(crate) fn pick_wave<'h>(waves: &'h [Wave], which: &str) -> Result<&'h Wave, HistoryError> {
    let which = which.trim();
    let found = if which == "last" {
        waves.last()
    } else if let Ok(id) = which.parse::<u64>() {
        waves.iter().rev().find(|w| w.id == Some(id))
    } else {
        waves.iter().find(|w| w.key == which)
    };
    found.ok_or_else(|| HistoryError::NoSuchWave(which.to_string()))
}

#[cfg(test)]
mod tests;
