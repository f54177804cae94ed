//! The audit trail: every mutating action (update, reboot, wave start/stop, retry, ack, config
//! change) as one JSON line in `audit.jsonl`, fsynced per record, file mode 0600.
//!
//! One appender task owns the file; everyone else holds an [`AuditSink`] and sends it records.
//! The audit log knows nothing about hosts beyond their names. The appender also rotates the
//! file (see [`Rotation`]) between records and copies each record to syslog when asked.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

pub use super::rotate::{DEFAULT_KEEP, Rotation, rotated_files};
use super::syslog::Syslog;
use super::webhook::AuditWebhook;

/// Records waiting for the appender. Senders wait when it is full: an action is not done until
/// its audit line is on its way.
const AUDIT_QUEUE: usize = 256;

/// A record waiting for the appender, with whoever waits for it to be on disk.
type Queued = (AuditRecord, Option<oneshot::Sender<Result<(), String>>>);

/// One line of `audit.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub action: String,
    pub host: Option<String>,
    /// The local user running tendhost.
    pub user: String,
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A health report's checks (`action = "checks"`), as the JSON contract gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<crate::health::CheckResult>>,
    /// The wave the record belongs to, as [`wave_key`] names it: set on the wave runner's own
    /// records and on every record of a host's work a wave asked for (its turn, a retry, a
    /// pre-download). Absent for other work and in records older than the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<String>,
    /// `wave_start`: the wave's hosts, in the order they run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// `wave_start`: the wave's options (batch sizes, delay, max failures, mode, scope…) as its
    /// saved record keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<serde_json::Value>,
    /// `plan`: the upgrades a real update is about to make, as the plan listed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrades: Option<Vec<crate::pkg::PendingPackage>>,
}

/// The name of a wave in the audit log: `<started, RFC3339 UTC in milliseconds>#<id>`, e.g.
/// `2026-12-03T15:48:51.123Z#1`. Wave ids restart with every run of tendhost, the start time
/// does not; a resumed wave keeps both, so its records continue the same wave.
pub fn wave_key(id: u64, started: DateTime<Utc>) -> String {
    format!(
        "{}#{id}",
        started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

impl AuditRecord {
    /// A record stamped now; the sink fills in the user.
    pub fn new(action: &str, host: Option<&str>, result: &str, detail: Option<&str>) -> Self {
        AuditRecord {
            at: Utc::now(),
            action: action.to_string(),
            host: host.map(str::to_string),
            user: String::new(),
            result: result.to_string(),
            detail: detail.map(str::to_string),
            checks: None,
            wave: None,
            hosts: None,
            options: None,
            upgrades: None,
        }
    }

    /// This record, as part of the wave `key` (see [`wave_key`]).
    pub fn in_wave(mut self, key: Option<&str>) -> Self {
        self.wave = key.map(str::to_string);
        self
    }

    /// The record of one health report: `checks`, `ok` or `failed`, the phase and what failed
    /// as its detail, every check in `checks`.
    pub fn checks(host: &str, report: &crate::health::HealthReport) -> Self {
        let result = if report.ok() { "ok" } else { "failed" };
        let mut detail = report.phase.as_str().to_string();
        if !report.ok() {
            detail.push_str(": ");
            detail.push_str(&report.failure_summary());
        }
        AuditRecord {
            checks: Some(report.checks.clone()),
            ..AuditRecord::new("checks", Some(host), result, Some(&detail))
        }
    }
}

impl AuditRecord {
    /// Fills in the local user, for records appended directly with [`append`].
    pub fn by_local_user(mut self) -> Self {
        self.user = local_user();
        self
    }
}

/// Where records go. Disabled (`[audit] enabled = false`) it drops them.
#[derive(Debug, Clone)]
pub struct AuditSink {
    records: Option<mpsc::Sender<Queued>>,
    user: String,
}

impl AuditSink {
    pub fn disabled() -> Self {
        AuditSink {
            records: None,
            user: String::new(),
        }
    }

    /// Starts the appender task writing to `path`, rotating it by `rotation` and copying each
    /// record to the syslog socket `syslog`. It stops once every sink is dropped.
    pub fn spawn(
        path: PathBuf,
        rotation: Rotation,
        syslog: Option<PathBuf>,
        tracker: &TaskTracker,
    ) -> Self {
        Self::spawn_with(path, rotation, syslog, None, tracker)
    }

    /// [`spawn`](Self::spawn), also POSTing every record to `webhook` (`[audit] webhook`).
    pub fn spawn_with(
        path: PathBuf,
        rotation: Rotation,
        syslog: Option<PathBuf>,
        webhook: Option<String>,
        tracker: &TaskTracker,
    ) -> Self {
        let (records, incoming) = mpsc::channel(AUDIT_QUEUE);
        let writer = Writer {
            path,
            rotation,
            syslog: syslog.map(Syslog::new),
            webhook: webhook.map(|url| AuditWebhook::spawn(url, tracker)),
        };
        tracker.spawn(append_all(writer, incoming));
        AuditSink {
            records: Some(records),
            user: local_user(),
        }
    }

    pub async fn record(&self, mut record: AuditRecord) {
        if let Some(records) = &self.records {
            record.user.clone_from(&self.user);
            // The appender lives until every sink is gone, so this only fails at shutdown.
            let _ = records.send((record, None)).await;
        }
    }

    /// Records `record` and waits until it is on disk (fsync'd): a write-ahead. Disabled, it
    /// returns at once.
    pub async fn record_durably(&self, mut record: AuditRecord) -> Result<(), String> {
        let Some(records) = &self.records else {
            return Ok(());
        };
        record.user.clone_from(&self.user);
        let (done, written) = oneshot::channel();
        records
            .send((record, Some(done)))
            .await
            .map_err(|_| "the audit log is closed".to_string())?;
        written
            .await
            .map_err(|_| "the audit log writer stopped".to_string())?
    }
}

/// What the appender task owns: the file, its rotation, the syslog connection and the
/// webhook's queue.
struct Writer {
    path: PathBuf,
    rotation: Rotation,
    syslog: Option<Syslog>,
    webhook: Option<AuditWebhook>,
}

impl Writer {
    fn write(&mut self, records: &[AuditRecord]) -> std::io::Result<()> {
        let lines = append(&self.path, records, &self.rotation)?;
        if let Some(syslog) = &mut self.syslog {
            for line in &lines {
                syslog.send(line);
            }
        }
        if let Some(webhook) = &self.webhook {
            webhook.push(&lines);
        }
        Ok(())
    }
}

async fn append_all(writer: Writer, mut incoming: mpsc::Receiver<Queued>) {
    let mut writer = Some(writer);
    while let Some(first) = incoming.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = incoming.try_recv() {
            batch.push(more);
        }
        let (records, waiting): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let Some(mut owned) = writer.take() else {
            // A panicked write took the writer with it; nothing more can be written.
            for done in waiting.into_iter().flatten() {
                let _ = done.send(Err("the audit log writer stopped".to_string()));
            }
            continue;
        };
        let joined = tokio::task::spawn_blocking(move || {
            let result = owned.write(&records);
            (owned, result)
        })
        .await;
        let written = match joined {
            Ok((owned, result)) => {
                let path = owned.path.display().to_string();
                writer = Some(owned);
                result.map_err(|err| format!("writing the audit log '{path}': {err}"))
            }
            Err(err) => Err(format!("writing the audit log: {err}")),
        };
        if let Err(e) = &written {
            tracing::error!("{e}");
        }
        for done in waiting.into_iter().flatten() {
            let _ = done.send(written.clone());
        }
    }
}

/// Appends `records`, each line fsynced before the next is written, rotating the file between
/// two records when `rotation` says so. Returns the lines written (without their newline).
pub fn append(
    path: &Path,
    records: &[AuditRecord],
    rotation: &Rotation,
) -> std::io::Result<Vec<String>> {
    let mut file: Option<std::fs::File> = None;
    let mut lines = Vec::with_capacity(records.len());
    for record in records {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if rotation
            .rotate_if_due(path, line.len() as u64, Utc::now())?
            .is_some()
        {
            file = None;
        }
        let out = match &mut file {
            Some(out) => out,
            None => file.insert(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)?,
            ),
        };
        out.write_all(&line)?;
        out.sync_data()?;
        line.pop();
        lines.push(String::from_utf8_lossy(&line).into_owned());
    }
    Ok(lines)
}

/// Writes one record for a command that runs without the engine (`host add`, a scheduled run
/// that did not start), to the configured file with its rotation and to syslog when asked, so
/// it reads like every other record. A no-op when auditing is off; `Err` names the file.
pub fn append_one(
    config: &crate::config::Config,
    paths: &super::Paths,
    record: AuditRecord,
) -> Result<(), String> {
    if !config.audit.enabled {
        return Ok(());
    }
    let path = config.audit.file.clone().unwrap_or_else(|| paths.audit());
    let lines = append(&path, &[record.by_local_user()], &config.audit.rotation)
        .map_err(|err| format!("writing the audit log '{}': {err}", path.display()))?;
    if let Some(socket) = &config.audit.syslog {
        let mut syslog = Syslog::new(socket.clone());
        for line in &lines {
            syslog.send(line);
        }
    }
    Ok(())
}

fn local_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn appends_private_json_lines_with_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let tracker = TaskTracker::new();
        let sink = AuditSink::spawn(path.clone(), Rotation::default(), None, &tracker);
        sink.record(AuditRecord::new("update", Some("web1"), "ok", None))
            .await;
        sink.record(AuditRecord::new(
            "wave_start",
            None,
            "started",
            Some("3 hosts"),
        ))
        .await;
        drop(sink);
        tracker.close();
        tracker.wait().await;
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["action"], "update");
        assert_eq!(lines[0]["host"], "web1");
        assert_eq!(lines[0]["user"], local_user());
        assert_eq!(lines[1]["detail"], "3 hosts");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
