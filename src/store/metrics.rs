//! The Prometheus view of the fleet: a node_exporter textfile (`[metrics] textfile`), rendered
//! from the hub's host models and the last wave's progress, written atomically so the collector
//! never reads half a file.
//!
//! Rendering ([`render`]) is pure; the writer ([`write_metrics`]) is a task fed through a `watch`
//! channel like the snapshot writer, so the hub only ever hands over its newest picture and a
//! slow disk coalesces updates instead of queueing them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::config::HostId;
use crate::fleet::{Event, HostModel, Outcome, StateKind, WaveStatus};

/// What the metrics know about waves, folded from the events the hub sees.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct WaveMetrics {
    pub running: bool,
    /// The last wave's status name (`finished`, `halted`…), once one was seen.
    pub last_status: Option<&'static str>,
    pub last_ok: usize,
    pub last_failed: usize,
    pub last_end: Option<DateTime<Utc>>,
    /// Each host's outcome in the last wave it was part of.
    pub host_results: HashMap<HostId, &'static str>,
}

impl WaveMetrics {
    /// Folds `event` in; `now` stamps a wave's end.
    pub(crate) fn apply(&mut self, event: &Event, now: DateTime<Utc>) {
        match event {
            Event::WaveHostFinished { host, outcome, .. } => {
                self.host_results
                    .insert(host.clone(), outcome_name(outcome));
            }
            Event::Wave(progress) => {
                let ended = matches!(
                    progress.status,
                    WaveStatus::Finished | WaveStatus::Halted | WaveStatus::Aborted
                );
                self.running = !ended;
                self.last_ok = progress.succeeded;
                self.last_failed = progress.failed;
                self.last_status = Some(progress.status.as_str());
                if ended {
                    self.last_end = Some(now);
                }
            }
            _ => {}
        }
    }
}

impl WaveMetrics {
    /// What the audit log's waves (oldest first) say: the newest one's status and totals, and
    /// each host's outcome in the last wave it was part of. A restarted tendhost shows the last
    /// wave's gauges before it runs one; a wave the log shows unfinished (the run that ran it
    /// was killed or stopped) reads as `interrupted`.
    pub(crate) fn from_history(waves: &[crate::history::Wave]) -> Self {
        use crate::history::model::{HostOutcome, WaveOutcome};
        let mut metrics = WaveMetrics::default();
        for wave in waves {
            for host in &wave.hosts {
                let name = match host.outcome {
                    HostOutcome::Succeeded => "succeeded",
                    HostOutcome::Failed => "failed",
                    HostOutcome::Skipped => "skipped",
                    HostOutcome::Refused => "refused",
                    HostOutcome::Interrupted | HostOutcome::Running => "interrupted",
                    HostOutcome::NotRun => continue,
                };
                metrics
                    .host_results
                    .insert(HostId::from(host.host.as_str()), name);
            }
        }
        if let Some(last) = waves.last() {
            metrics.last_status = Some(match last.outcome {
                WaveOutcome::Finished => WaveStatus::Finished.as_str(),
                WaveOutcome::Halted => WaveStatus::Halted.as_str(),
                WaveOutcome::Aborted => WaveStatus::Aborted.as_str(),
                WaveOutcome::Paused => WaveStatus::Threshold.as_str(),
                WaveOutcome::Running | WaveOutcome::Interrupted => "interrupted",
            });
            metrics.last_ok = last.count(HostOutcome::Succeeded);
            metrics.last_failed = last.count(HostOutcome::Failed);
            metrics.last_end = last.finished;
        }
        metrics
    }

    /// [`from_history`](Self::from_history) of the audit log whose live file is `live`; no
    /// gauges when there is none or it cannot be read (said in the log: the metrics fail
    /// nothing).
    pub(crate) fn from_audit_log(live: &Path) -> Self {
        match crate::history::load(live, crate::history::Query::default()) {
            Ok((history, _)) => Self::from_history(&history.waves),
            Err(err) => {
                tracing::warn!(file = %live.display(), error = %crate::errors::chain(&err), "metrics: the last wave's gauges could not be read from the audit log");
                Self::default()
            }
        }
    }
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Refused { .. } => "refused",
        Outcome::Skipped { .. } => "skipped",
        Outcome::Failed { .. } => "failed",
    }
}

/// Escapes a label value per the text exposition format: backslash, double quote, newline.
pub(crate) fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// One metric family: its header, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn seconds(at: Option<DateTime<Utc>>) -> f64 {
    at.map_or(0.0, |t| t.timestamp_millis() as f64 / 1000.0)
}

/// Renders the textfile: per-host gauges labelled `host`, then the fleet's. Timestamps are Unix
/// seconds, 0 when never; a host never refreshed has no `pending` samples (unknown is not 0).
pub(crate) fn render(hosts: &[&HostModel], waves: &WaveMetrics) -> String {
    let mut out = String::new();
    type HostGauge = fn(&HostModel, &WaveMetrics) -> Option<f64>;
    let per_host: [(&str, &str, HostGauge); 8] = [
        (
            "tendhost_host_pending_updates",
            "Pending package updates as last read (absent until the first refresh).",
            |h, _| h.pending_count().map(|n| n as f64),
        ),
        (
            "tendhost_host_security_pending",
            "Pending updates from a security origin (absent until the first refresh).",
            |h, _| h.pending.as_ref().map(|_| h.security_count() as f64),
        ),
        (
            "tendhost_host_reboot_required",
            "1 when the host needs a reboot.",
            |h, _| Some(flag(h.reboot.required)),
        ),
        (
            "tendhost_host_needs_repair",
            "1 when the package database needs a repair.",
            |h, _| Some(flag(h.shows_needs_repair())),
        ),
        (
            "tendhost_host_unreachable",
            "1 after repeated transient failures to reach the host.",
            |h, _| Some(flag(h.state.unreachable())),
        ),
        (
            "tendhost_host_last_update_timestamp_seconds",
            "When an update last finished successfully (Unix seconds, 0 if never).",
            |h, _| Some(seconds(h.state.last_update)),
        ),
        (
            "tendhost_host_last_refresh_timestamp_seconds",
            "When the host was last read (Unix seconds, 0 if never).",
            |h, _| Some(seconds(h.last_refresh)),
        ),
        (
            "tendhost_host_last_wave_success",
            "1 when the host succeeded in the last wave it was part of, 0 otherwise.",
            |h, w| w.host_results.get(&h.name).map(|r| flag(*r == "succeeded")),
        ),
    ];
    for (name, help, gauge) in per_host {
        let mut family = Family::new(&mut out, name, help);
        for host in hosts {
            if let Some(value) = gauge(host, waves) {
                family.sample(name, &[("host", &host.name)], value);
            }
        }
    }
    let name = "tendhost_host_state";
    let mut family = Family::new(&mut out, name, "1 for the state the host is in (one-hot).");
    for host in hosts {
        let kind = host.kind();
        for state in StateKind::ALL {
            family.sample(
                name,
                &[("host", &host.name), ("state", state.as_str())],
                flag(state == kind),
            );
        }
    }
    let name = "tendhost_host_last_wave_result";
    let mut family = Family::new(
        &mut out,
        name,
        "1 for the host's outcome in the last wave it was part of (one-hot).",
    );
    for host in hosts {
        if let Some(result) = waves.host_results.get(&host.name) {
            family.sample(name, &[("host", &host.name), ("result", result)], 1.0);
        }
    }
    let fleet: [(&str, &str, f64); 5] = [
        (
            "tendhost_hosts",
            "Hosts in the configuration.",
            hosts.len() as f64,
        ),
        (
            "tendhost_wave_running",
            "1 while a wave runs.",
            flag(waves.running),
        ),
        (
            "tendhost_last_wave_hosts_ok",
            "Hosts that succeeded in the last wave.",
            waves.last_ok as f64,
        ),
        (
            "tendhost_last_wave_hosts_failed",
            "Hosts that failed in the last wave.",
            waves.last_failed as f64,
        ),
        (
            "tendhost_last_wave_end_timestamp_seconds",
            "When the last wave ended (Unix seconds, 0 if none yet).",
            seconds(waves.last_end),
        ),
    ];
    for (name, help, value) in fleet {
        Family::new(&mut out, name, help).sample(name, &[], value);
    }
    let name = "tendhost_last_wave_status";
    let mut family = Family::new(&mut out, name, "1 for the last wave's status (one-hot).");
    if let Some(status) = waves.last_status {
        family.sample(name, &[("status", status)], 1.0);
    }
    out
}

/// Writes `text` to `path` atomically: a temp file in the same directory, fsync, rename. Mode
/// 0644, not the usual 0600: node_exporter reads the file and runs as another user.
pub(crate) fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A leading dot and no `.prom`: the collector ignores the temp file.
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o644)
            .open(&temp)?;
        // The umask may have narrowed the mode; the collector must still read it.
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Writes every picture handed over, newest first-come: a picture replaced before the writer got
/// to it is never written. Failures are logged once per distinct error and fail nothing.
pub(crate) async fn write_metrics(path: PathBuf, mut latest: watch::Receiver<Option<String>>) {
    let mut last_error: Option<String> = None;
    while latest.changed().await.is_ok() {
        let Some(text) = latest.borrow_and_update().clone() else {
            continue;
        };
        let target = path.clone();
        let result = match tokio::task::spawn_blocking(move || write_textfile(&target, &text)).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => last_error = None,
            Err(e) => {
                if last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!("writing the metrics textfile '{}': {e}", path.display());
                }
                last_error = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use super::*;
    use crate::fleet::WaveProgress;
    use crate::pkg::PendingPackage;

    fn host(name: &str) -> HostModel {
        HostModel::new(Arc::from(name))
    }

    fn progress(status: WaveStatus, succeeded: usize, failed: usize) -> WaveProgress {
        WaveProgress {
            wave_id: 1,
            status,
            batch: 1,
            batches: 1,
            done: succeeded + failed,
            succeeded,
            failed,
            skipped: 0,
            total: succeeded + failed,
            in_flight: Vec::new(),
            reason: None,
            skipped_hosts: Arc::from(Vec::new()),
            failed_hosts: Arc::from(Vec::new()),
        }
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
    }

    #[test]
    fn renders_host_and_fleet_gauges() {
        let mut web = host("web\"1");
        web.pending = Some(Arc::from(vec![
            PendingPackage {
                name: "openssl".into(),
                from: "1".into(),
                to: "2".into(),
                security: true,
            },
            PendingPackage {
                name: "vim".into(),
                from: "1".into(),
                to: "2".into(),
                security: false,
            },
        ]));
        let db = host("db");
        let mut waves = WaveMetrics::default();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        waves.apply(
            &Event::WaveHostFinished {
                wave_id: 1,
                host: Arc::from("db"),
                outcome: Outcome::Succeeded,
            },
            at,
        );
        waves.apply(&Event::Wave(progress(WaveStatus::Finished, 1, 0)), at);
        let text = render(&[&web, &db], &waves);
        assert!(text.contains("tendhost_host_pending_updates{host=\"web\\\"1\"} 2\n"));
        assert!(text.contains("tendhost_host_security_pending{host=\"web\\\"1\"} 1\n"));
        // Never refreshed: no pending sample rather than a misleading 0.
        assert!(!text.contains("tendhost_host_pending_updates{host=\"db\"}"));
        assert!(text.contains("tendhost_host_state{host=\"db\",state=\"idle\"} 1\n"));
        assert!(text.contains("tendhost_host_state{host=\"db\",state=\"failed\"} 0\n"));
        assert!(
            text.contains("tendhost_host_last_wave_result{host=\"db\",result=\"succeeded\"} 1\n")
        );
        assert!(text.contains("tendhost_host_last_wave_success{host=\"db\"} 1\n"));
        assert!(text.contains("tendhost_hosts 2\n"));
        assert!(text.contains("tendhost_wave_running 0\n"));
        assert!(text.contains("tendhost_last_wave_status{status=\"finished\"} 1\n"));
        assert!(text.contains("tendhost_last_wave_end_timestamp_seconds 1700000000\n"));
        // Every family has its header exactly once.
        assert_eq!(text.matches("# TYPE tendhost_host_state gauge").count(), 1);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# HELP {name} ")), "{line}");
        }
    }

    #[test]
    fn a_running_wave_shows_running() {
        let mut waves = WaveMetrics::default();
        waves.apply(
            &Event::Wave(progress(WaveStatus::Running, 0, 0)),
            Utc::now(),
        );
        assert!(waves.running);
        assert_eq!(waves.last_end, None);
    }

    #[test]
    fn writes_atomically_and_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tendhost.prom");
        write_textfile(&path, "a 1\n").unwrap();
        write_textfile(&path, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn a_failing_write_fails_nothing() {
        let (tx, rx) = watch::channel(None);
        let writer = tokio::spawn(write_metrics(PathBuf::from("/nonexistent-dir/x.prom"), rx));
        tx.send_replace(Some("a 1\n".to_string()));
        drop(tx);
        writer.await.unwrap();
    }
}
