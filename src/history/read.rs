//! Streams the audit log: the rotated files oldest first, then the live file, one record at a
//! time, so a year of history costs what the caller keeps of it, never the files' size.
//!
//! Rotation renames whole files between two records (`store::rotate`), so reading the rotated
//! files in name order and the live one last yields every record once, in the order written.
//! A line that does not parse (a torn last line after a crash, a hand edit, a future format)
//! is counted and skipped: one bad line never hides the rest of the history.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The longest line read as a record. A record is a few KiB (a health report's checks the
/// most); a longer line is no record tendhost wrote, and is skipped without being held whole.
const MAX_LINE: u64 = 1 << 20;

/// One audit line as the history reads it. Mirrors `store::audit::AuditRecord`, leniently:
/// fields it does not know (a health report's `checks`) are ignored, fields added later are
/// optional, so old and new records read alike.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Line {
    pub at: DateTime<Utc>,
    pub action: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub detail: Option<String>,
    /// The wave the record belongs to (`"<started>#<id>"`); absent in records written before
    /// waves were named, and in records of work no wave asked for.
    #[serde(default)]
    pub wave: Option<String>,
    /// `wave_start`: the wave's hosts, in order.
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    /// `wave_start`: the wave's options as its saved record keeps them.
    #[serde(default)]
    pub options: Option<serde_json::Value>,
    /// `plan`: the upgrades a real update was about to make.
    #[serde(default)]
    pub upgrades: Option<Vec<crate::pkg::PendingPackage>>,
}

/// What reading skipped, reported once by whoever prints the history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReadStats {
    /// Records read.
    pub records: usize,
    /// Lines that did not parse (a torn last line included).
    pub unreadable: usize,
    /// Where the first unreadable line was (`file:line`), to look at it.
    pub first_unreadable: Option<String>,
}

/// Why the audit log could not be read at all (a file it names exists but cannot be opened).
#[derive(Debug, thiserror::Error)]
#[error("reading the audit log '{}'", path.display())]
pub(crate) struct ReadError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// The files holding the log whose live file is `live`, in the order they were written. A
/// missing live file is no error (nothing was audited yet, or it was just rotated away).
pub(crate) fn files(live: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let mut files = crate::store::audit::rotated_files(live).map_err(|source| ReadError {
        path: live.to_path_buf(),
        source,
    })?;
    if live.exists() {
        files.push(live.to_path_buf());
    }
    Ok(files)
}

/// Hands every readable record of `files` to `each`, in order; returns what it skipped.
pub(crate) fn each_record(
    files: &[PathBuf],
    mut each: impl FnMut(Line),
) -> Result<ReadStats, ReadError> {
    let mut stats = ReadStats::default();
    for path in files {
        let file = match File::open(path) {
            Ok(file) => file,
            // Pruned by a rotation between listing and opening: its records are gone anyway.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ReadError {
                    path: path.clone(),
                    source,
                });
            }
        };
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        let mut number = 0usize;
        loop {
            buf.clear();
            let failed = |source| ReadError {
                path: path.clone(),
                source,
            };
            let read = (&mut reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut buf)
                .map_err(failed)?;
            if read == 0 {
                break;
            }
            number += 1;
            if buf.last() != Some(&b'\n') && read as u64 == MAX_LINE {
                skip_line(&mut reader).map_err(failed)?;
                stats.unreadable += 1;
                stats
                    .first_unreadable
                    .get_or_insert_with(|| format!("{}:{number}", path.display()));
                continue;
            }
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_str::<Line>(text) {
                Ok(line) => {
                    stats.records += 1;
                    each(line);
                }
                Err(_) => {
                    stats.unreadable += 1;
                    stats
                        .first_unreadable
                        .get_or_insert_with(|| format!("{}:{number}", path.display()));
                }
            }
        }
    }
    Ok(stats)
}

/// Reads past the rest of an over-long line, a buffer at a time.
fn skip_line(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(());
            }
            None => {
                let all = chunk.len();
                reader.consume(all);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn line(at: &str, action: &str, host: Option<&str>) -> String {
        let host = host.map_or("null".to_string(), |h| format!("\"{h}\""));
        format!(
            "{{\"at\":\"{at}\",\"action\":\"{action}\",\"host\":{host},\"user\":\"op\",\"result\":\"ok\"}}\n"
        )
    }

    #[test]
    fn reads_rotated_files_oldest_first_then_the_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("audit.jsonl");
        fs::write(
            dir.path().join("audit.jsonl.20260102T000000Z"),
            line("2026-01-02T00:00:00Z", "b", None),
        )
        .unwrap();
        fs::write(
            dir.path().join("audit.jsonl.20260101T000000Z"),
            line("2026-01-01T00:00:00Z", "a", None),
        )
        .unwrap();
        fs::write(
            dir.path().join("audit.jsonl.20260102T000000Z-1"),
            line("2026-01-02T00:00:01Z", "c", None),
        )
        .unwrap();
        fs::write(&live, line("2026-01-03T00:00:00Z", "d", Some("web1"))).unwrap();
        let files = files(&live).unwrap();
        let mut actions = Vec::new();
        let stats = each_record(&files, |l| actions.push(l.action)).unwrap();
        assert_eq!(actions, ["a", "b", "c", "d"]);
        assert_eq!(stats.records, 4);
        assert_eq!(stats.unreadable, 0);
    }

    #[test]
    fn a_torn_last_line_and_garbage_are_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("audit.jsonl");
        let mut text = line("2026-01-01T00:00:00Z", "update", Some("web1"));
        text.push_str("not json at all\n");
        text.push_str(&line("2026-01-01T00:00:01Z", "reboot", Some("web1")));
        text.push_str("{\"at\":\"2026-01-01T00:00:02Z\",\"act");
        fs::write(&live, text).unwrap();
        let mut actions = Vec::new();
        let stats = each_record(&files(&live).unwrap(), |l| actions.push(l.action)).unwrap();
        assert_eq!(actions, ["update", "reboot"]);
        assert_eq!(stats.unreadable, 2);
        assert_eq!(
            stats.first_unreadable,
            Some(format!("{}:2", live.display()))
        );
    }

    #[test]
    fn an_over_long_line_is_skipped_not_held() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("audit.jsonl");
        let mut text = line("2026-01-01T00:00:00Z", "update", None);
        text.push_str(&"x".repeat(3 << 20));
        text.push('\n');
        text.push_str(&line("2026-01-01T00:00:01Z", "reboot", None));
        fs::write(&live, text).unwrap();
        let mut actions = Vec::new();
        let stats = each_record(&files(&live).unwrap(), |l| actions.push(l.action)).unwrap();
        assert_eq!(actions, ["update", "reboot"]);
        assert_eq!(stats.unreadable, 1);
    }

    #[test]
    fn a_missing_log_is_an_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("audit.jsonl");
        let files = files(&live).unwrap();
        assert!(files.is_empty());
        let stats = each_record(&files, |_| panic!("no record")).unwrap();
        assert_eq!(stats, ReadStats::default());
    }

    #[test]
    fn new_fields_are_read_and_unknown_ones_ignored() {
        let text = r#"{"at":"2026-01-01T00:00:00Z","action":"checks","host":"db","user":"op","result":"ok","checks":[{"x":1}],"wave":"2026-01-01T00:00:00.000Z#3"}"#;
        let line: Line = serde_json::from_str(text).unwrap();
        assert_eq!(line.wave.as_deref(), Some("2026-01-01T00:00:00.000Z#3"));
        assert_eq!(line.host.as_deref(), Some("db"));
    }
}
