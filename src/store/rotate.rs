//! Rotation of the audit log: the live file is renamed aside to `<file>.<YYYYmmddTHHMMSSZ>`
//! (UTC; a clash within one second gets `-1`, `-2`, …) once it is too big or its first record
//! too old, and only the newest `keep` renamed files stay.
//!
//! The writer rotates between two records, so a record is never split across files nor lost:
//! a rename is atomic, and the next append creates a fresh live file. The history reader relies
//! on exactly this naming, so change both together.

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Renamed files kept when `[audit] keep` is not set: with `max_size = "50MiB"` half a
/// gigabyte of history, a year of weekly `max_age = "30d"` files.
pub const DEFAULT_KEEP: usize = 12;

/// The strftime format of a rotated file's suffix.
const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// When the live audit file is rotated (`[audit] max_size`, `max_age`, `keep`). Neither limit
/// set: never.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: Option<u64>,
    pub max_age: Option<Duration>,
    pub keep: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_size: None,
            max_age: None,
            keep: DEFAULT_KEEP,
        }
    }
}

impl Rotation {
    /// Renames `live` aside when appending `incoming` more bytes would take it past `max_size`,
    /// or when its first record is older than `max_age`; then prunes old files. An empty or
    /// missing live file is never rotated, so every file holds at least one whole record.
    /// Returns the new name of the rotated file.
    pub(crate) fn rotate_if_due(
        &self,
        live: &Path,
        incoming: u64,
        now: DateTime<Utc>,
    ) -> io::Result<Option<PathBuf>> {
        if self.max_size.is_none() && self.max_age.is_none() {
            return Ok(None);
        }
        let size = match fs::metadata(live) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if size == 0 {
            return Ok(None);
        }
        let too_big = self.max_size.is_some_and(|max| size + incoming > max);
        let too_old = !too_big
            && self
                .max_age
                .is_some_and(|max| first_record_older(live, max, now));
        if !too_big && !too_old {
            return Ok(None);
        }
        let target = free_name(live, now)?;
        fs::rename(live, &target)?;
        prune(live, self.keep)?;
        Ok(Some(target))
    }
}

/// Whether the first record of `live` was written more than `max_age` before `now`. A first
/// line that does not parse counts as not old: rotation never guesses.
fn first_record_older(live: &Path, max_age: Duration, now: DateTime<Utc>) -> bool {
    let Ok(file) = fs::File::open(live) else {
        return false;
    };
    let mut line = String::new();
    if BufReader::new(file).read_line(&mut line).is_err() {
        return false;
    }
    let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
        return false;
    };
    let Some(at) = record
        .get("at")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    else {
        return false;
    };
    let Ok(max_age) = chrono::Duration::from_std(max_age) else {
        return false;
    };
    now.signed_duration_since(at.with_timezone(&Utc)) >= max_age
}

/// `<live>.<stamp>`, or, when files of that second exist, `<live>.<stamp>-N` with `N` past the
/// highest one already there: a name freed by pruning is never reused, so names keep sorting
/// in the order the files were rotated.
fn free_name(live: &Path, now: DateTime<Utc>) -> io::Result<PathBuf> {
    let stamp = now.format(STAMP).to_string();
    let mut highest: Option<u32> = None;
    for file in rotated_files(live)? {
        let order = file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit_once('.').map(|(_, suffix)| suffix.to_string()))
            .and_then(|suffix| suffix_order(&suffix));
        if let Some((s, n)) = order
            && s == stamp
        {
            highest = Some(highest.map_or(n, |h| h.max(n)));
        }
    }
    let base = format!("{}.{stamp}", live.display());
    let mut candidate = match highest {
        None => PathBuf::from(&base),
        Some(n) => PathBuf::from(format!("{base}-{}", n + 1)),
    };
    let mut n = highest.map_or(0, |n| n + 1);
    while candidate.exists() {
        n += 1;
        candidate = PathBuf::from(format!("{base}-{n}"));
    }
    Ok(candidate)
}

/// The rotated files of `live`, oldest first.
pub fn rotated_files(live: &Path) -> io::Result<Vec<PathBuf>> {
    let Some(name) = live.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let dir = match live.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let prefix = format!("{name}.");
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(suffix) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if let Some(order) = suffix_order(suffix) {
            found.push((order, entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

/// `20260102T030405Z` or `20260102T030405Z-3` as a sortable key; anything else is not ours.
fn suffix_order(suffix: &str) -> Option<(String, u32)> {
    let (stamp, n) = match suffix.split_once('-') {
        Some((stamp, n)) => (stamp, n.parse().ok()?),
        None => (suffix, 0),
    };
    chrono::NaiveDateTime::parse_from_str(stamp, STAMP).ok()?;
    Some((stamp.to_string(), n))
}

/// Removes all but the newest `keep` rotated files.
fn prune(live: &Path, keep: usize) -> io::Result<()> {
    let files = rotated_files(live)?;
    let excess = files.len().saturating_sub(keep);
    for old in &files[..excess] {
        fs::remove_file(old)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::{AuditRecord, append};

    #[test]
    fn a_tiny_max_size_keeps_every_record_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("audit.jsonl");
        let rotation = Rotation {
            max_size: Some(300),
            max_age: None,
            keep: 1000,
        };
        for i in 0..40 {
            let record = AuditRecord::new("update", Some(&format!("web{i}")), "ok", None);
            append(&live, &[record], &rotation).unwrap();
        }
        let mut files = rotated_files(&live).unwrap();
        assert!(files.len() > 3, "rotated only into {files:?}");
        files.push(live.clone());
        let mut hosts = Vec::new();
        for file in &files {
            let text = fs::read_to_string(file).unwrap();
            assert!(
                text.len() <= 300 || text.lines().count() == 1,
                "{file:?} too big"
            );
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                hosts.push(v["host"].as_str().unwrap().to_string());
            }
        }
        let want: Vec<String> = (0..40).map(|i| format!("web{i}")).collect();
        assert_eq!(hosts, want, "every record once, in order");
    }

    #[test]
    fn same_second_clashes_get_a_counter_and_keep_prunes_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("audit.jsonl");
        let rotation = Rotation {
            max_size: Some(1),
            max_age: None,
            keep: 2,
        };
        let now = DateTime::parse_from_rfc3339("2026-03-01T02:03:04Z")
            .unwrap()
            .with_timezone(&Utc);
        for _ in 0..4 {
            fs::write(&live, "{}\n").unwrap();
            rotation.rotate_if_due(&live, 10, now).unwrap().unwrap();
        }
        let names: Vec<String> = rotated_files(&live)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "audit.jsonl.20260301T020304Z-2",
                "audit.jsonl.20260301T020304Z-3"
            ]
        );
        assert!(!live.exists());
    }

    #[test]
    fn max_age_rotates_once_the_first_record_is_old() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("audit.jsonl");
        let rotation = Rotation {
            max_size: None,
            max_age: Some(Duration::from_secs(86_400)),
            keep: 5,
        };
        fs::write(&live, "{\"at\":\"2026-03-01T00:00:00Z\"}\n").unwrap();
        let early = DateTime::parse_from_rfc3339("2026-03-01T23:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rotation.rotate_if_due(&live, 10, early).unwrap(), None);
        let late = DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let moved = rotation.rotate_if_due(&live, 10, late).unwrap().unwrap();
        assert!(moved.ends_with("audit.jsonl.20260302T000000Z"));
    }
}
