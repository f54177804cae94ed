//! What batch mode prints (DESIGN.md §3). With `--json`: one object per line on stdout, each with
//! `"type"`, live events first, then one `"host"` line per selected host, then `"summary"` last.
//! Without: progress on stderr, a table and a summary line on stdout.
//!
//! The only writer of stdout and stderr in batch mode, through two methods: [`Printer::line`]
//! (stdout) and [`Printer::note`] (stderr). Both apply the one policy for human output: every
//! line is shown with its control characters, line breaks included, escaped
//! ([`printable_line`]), so whatever a host sent
//! (an os-release name, a package, an error) cannot drive the terminal and still reads as what
//! it was. JSON needs nothing more: serde escapes control characters itself. A closed stdout
//! (`| head`) stops the writing quietly, not the run; a closed stderr is ignored.

mod plan;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::HostResult;
use crate::engine::Event;
use crate::engine::bus::{StageStatus, WaveProgress, WaveStatus};
use crate::errors::printable_line;
use crate::fleet::{HostModel, Measurement};
use crate::plan::render::bytes_text;
use crate::stdio;

/// Counts for the summary line.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub ok: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Tally {
    pub fn add(&mut self, result: &HostResult) {
        match result {
            HostResult::Reported | HostResult::Succeeded => self.ok += 1,
            HostResult::Skipped(_) => self.skipped += 1,
            HostResult::Failed(_) => self.failed += 1,
        }
    }
}

pub struct Printer {
    json: bool,
    command: &'static str,
    pub started_at: DateTime<Utc>,
    /// Human mode prints a table header before the first host row.
    header_done: bool,
    /// stdout failed once (its reader went away): nothing more is written to it.
    stdout_gone: bool,
    /// Captured output for tests instead of stdout.
    captured: Option<Vec<u8>>,
    /// The last wave batch announced as `wave_batch`.
    wave_batch: usize,
    /// `--packages` / `--security-only` as the summary names them ("openssl, libssl3",
    /// "security updates"); `None` for an update of everything.
    scope: Option<String>,
}

impl Printer {
    pub fn new(json: bool, command: &'static str) -> Self {
        Printer {
            json,
            command,
            started_at: Utc::now(),
            header_done: false,
            stdout_gone: false,
            captured: None,
            wave_batch: 0,
            scope: None,
        }
    }

    /// Names the run's scope in the summary (nothing for an update of everything).
    pub fn with_scope(mut self, scope: &crate::pkg::UpgradeScope) -> Self {
        self.scope = (!scope.is_everything()).then(|| scope.describe());
        self
    }

    #[cfg(test)]
    pub fn capturing(json: bool, command: &'static str) -> Self {
        Printer {
            captured: Some(Vec::new()),
            ..Printer::new(json, command)
        }
    }

    /// A live event: a JSON line, or a progress line on stderr.
    pub fn event(&mut self, event: &Event) {
        if self.json {
            // A batch starts (rolling: the window takes the next size) on the first progress
            // that names it.
            let opened = match event {
                Event::Wave(p) if p.status == WaveStatus::Running && p.batch > self.wave_batch => {
                    self.wave_batch = p.batch;
                    true
                }
                _ => false,
            };
            if let Some(value) = event_json(event, opened) {
                self.line(&value.to_string());
            }
            return;
        }
        match event {
            Event::StateChanged {
                host,
                from,
                to,
                state,
            } => {
                let why = match (state.phase.reason(), &state.last_error) {
                    (Some(reason), _) => format!(" ({reason})"),
                    (None, Some(error))
                        if from == to || *from == crate::fleet::StateKind::Querying =>
                    {
                        format!(" (read failed: {})", error.error)
                    }
                    _ => String::new(),
                };
                if from != to || !why.is_empty() {
                    self.note(&format!("{host}: {from} -> {to}{why}"));
                }
            }
            Event::Stage {
                host,
                stage,
                status,
            } => match status {
                StageStatus::Started | StageStatus::Done => {}
                StageStatus::Skipped { reason } => {
                    self.note(&format!("{host}: {} skipped: {reason}", stage.as_str()))
                }
                StageStatus::Failed { error } => {
                    self.note(&format!("{host}: {} failed: {error}", stage.as_str()))
                }
            },
            Event::Refused { host, reason, .. } => self.note(&format!("{host}: refused: {reason}")),
            Event::Planned {
                host,
                plan,
                dry_run: true,
                ..
            } => self.note(&format!("{host}: plan: {}", plan_note(plan))),
            Event::Held { host, held } => {
                for h in held.iter() {
                    self.note(&format!(
                        "{host}: leaves {} in {} as is: {}",
                        h.service, h.path, h.hold
                    ));
                }
            }
            Event::RollbackPlanned {
                host,
                steps,
                dry_run,
            } => {
                let verb = if *dry_run {
                    "would roll back"
                } else {
                    "rolling back"
                };
                for step in steps.iter() {
                    self.note(&format!("{host}: {verb} {}", step.describe()));
                }
            }
            Event::Checked { host, report } => {
                let passed = report.checks.iter().filter(|c| c.ok).count();
                let mut text = format!(
                    "{host}: {} checks: {passed}/{} passed",
                    report.phase.label(),
                    report.checks.len()
                );
                if !report.ok() {
                    text.push_str(&format!("; failed: {}", report.failure_summary()));
                }
                self.note(&text);
            }
            Event::Wave(p) if p.status != WaveStatus::Running || p.in_flight.len() == p.done => {
                self.note(&format!(
                    "wave {}: {} batch {}/{}, {}/{} done, {} failed",
                    p.wave_id,
                    p.status.as_str(),
                    p.batch,
                    p.batches,
                    p.done,
                    p.total,
                    p.failed
                ));
            }
            _ => {}
        }
    }

    /// One host's final line.
    pub fn host(&mut self, model: &HostModel, result: &HostResult) {
        if self.json {
            self.line(&host_json(model, result).to_string());
            return;
        }
        if !self.header_done {
            self.header_done = true;
            let header = format!(
                "{:<20} {:<16} {:<28} {:>5} {:>3}  {}",
                "HOST", "STATE", "OS", "PEND", "RB", "RESULT"
            );
            self.line(&header);
        }
        // Escaped before it is cut to its column, so the columns stay aligned.
        let os = model.inventory.as_ref().map_or("-".to_string(), |i| {
            printable_line(&i.os.pretty_name).into_owned()
        });
        let outcome = match result {
            HostResult::Reported => String::new(),
            HostResult::Succeeded => "ok".to_string(),
            HostResult::Skipped(why) => format!("skipped: {why}"),
            HostResult::Failed(why) => format!("failed: {why}"),
        };
        let row = format!(
            "{:<20} {:<16} {:<28} {:>5} {:>3}  {}",
            truncate(&model.name, 20),
            match model.shows_needs_repair() {
                true => "needs_repair",
                false => model.kind().as_str(),
            },
            truncate(&os, 28),
            model
                .pending_count()
                .map_or_else(|| "-".to_string(), |n| n.to_string()),
            if model.reboot.required { "yes" } else { "-" },
            outcome
        );
        self.line(&row);
    }

    /// The last line. For a wave, also the hosts it skipped and why: in the JSON line as
    /// `"skipped_hosts":[{"host","reason"}]`, else on stderr; for one paused at its threshold
    /// the failed hosts as `"failed_hosts":[{"host","error"}]`.
    pub fn summary(&mut self, tally: &Tally, interrupted: bool, wave: Option<&WaveProgress>) {
        if self.json {
            let mut value = json!({
                "type": "summary",
                "command": self.command,
                "ok": tally.ok,
                "failed": tally.failed,
                "skipped": tally.skipped,
                "total": tally.ok + tally.failed + tally.skipped,
                "interrupted": interrupted,
                "elapsed_secs": (Utc::now() - self.started_at).num_milliseconds() as f64 / 1000.0,
            });
            if let Some(scope) = &self.scope {
                value["scope"] = json!(scope);
            }
            if let Some(w) = wave {
                value["wave"] = json!({
                    "status": w.status,
                    "batches": w.batches,
                    "reason": w.reason,
                });
                value["skipped_hosts"] = json!(w.skipped_hosts);
                if w.status == WaveStatus::Threshold {
                    // What the operator decides about with `--resume --failed …`.
                    value["failed_hosts"] = json!(w.failed_hosts);
                }
            }
            self.line(&value.to_string());
            return;
        }
        // The table already says "skipped: …" per host; these say why the wave passed them by.
        for skipped in wave.map_or(&[][..], |w| &w.skipped_hosts[..]) {
            self.note(&format!(
                "wave skipped '{}': {}",
                skipped.host, skipped.reason
            ));
        }
        let mut text = format!(
            "{}: {} ok, {} failed, {} skipped",
            self.command, tally.ok, tally.failed, tally.skipped
        );
        if let Some(scope) = &self.scope {
            text.push_str(&format!(" (only {scope})"));
        }
        if let Some(w) = wave {
            text.push_str(&format!("; wave {}", w.status.as_str()));
            if let Some(reason) = &w.reason {
                text.push_str(&format!(" ({reason})"));
            }
        }
        if interrupted {
            text.push_str("; interrupted");
        }
        self.line(&text);
    }

    /// One line on stdout.
    fn line(&mut self, text: &str) {
        // JSON escapes control characters itself; a table line may quote what a host printed.
        let text = if self.json {
            Cow::Borrowed(text)
        } else {
            printable_line(text)
        };
        if let Some(buffer) = &mut self.captured {
            buffer.extend_from_slice(text.as_bytes());
            buffer.push(b'\n');
            return;
        }
        if self.stdout_gone {
            return;
        }
        if let Err(err) = stdio::out_line(&text) {
            self.stdout_gone = true;
            // A reader that went away (`| head`) is fine: the exit code still says what
            // happened. Anything else (a full disk) is worth a word.
            if err.kind() != std::io::ErrorKind::BrokenPipe {
                stdio::err_line(format!("tendhost: writing to stdout: {err}"));
            }
        }
    }

    /// One progress line on stderr, `tendhost: ` first, escaped like every human line.
    fn note(&self, text: &str) {
        stdio::err_line(format!("tendhost: {}", printable_line(text)));
    }

    #[cfg(test)]
    pub fn captured(&self) -> String {
        String::from_utf8_lossy(self.captured.as_deref().unwrap_or_default()).into_owned()
    }
}

/// `opened`: the event is a wave's first progress in a new batch.
fn event_json(event: &Event, opened: bool) -> Option<Value> {
    Some(match event {
        Event::StateChanged {
            host,
            from,
            to,
            state,
        } => {
            json!({"type": "state_changed", "host": host, "from": from, "to": to,
                   "at": state.since, "reason": state.phase.reason(),
                   "retry_count": state.retry_count, "last_error": state.last_error,
                   "unreachable": state.unreachable()})
        }
        Event::Stage {
            host,
            stage,
            status,
        } => with_fields(
            json!({"type": "stage", "host": host, "stage": stage}),
            status,
        ),
        Event::Stacks {
            host,
            stacks,
            updated,
        } => json!({"type": "stacks", "host": host, "updated": updated, "stacks": stacks}),
        Event::RollbackPlanned {
            host,
            steps,
            dry_run,
        } => json!({"type": "rollback_planned", "host": host, "dry_run": dry_run, "steps": steps}),
        Event::Held { host, held } => json!({"type": "held", "host": host, "held": held}),
        Event::RollingBack { host, undone, at } => {
            json!({"type": "rolling_back", "host": host, "at": at, "undone": undone})
        }
        Event::Output { host, stream, line } => {
            json!({"type": "output", "host": host, "stream": stream, "line": line})
        }
        // A job's start and end; its progress (the log offset) is for the snapshot only.
        Event::Job { host, job } => {
            let job = job.as_deref()?;
            let status = match job.ended {
                Some(_) => "ended",
                None if job.offset == 0 => "started",
                None => return None,
            };
            json!({"type": "job", "host": host, "id": job.id, "label": job.label,
                   "stage": job.stage, "started": job.started, "status": status,
                   "exit": job.ended.flatten()})
        }
        Event::Planned {
            host,
            plan,
            dry_run,
            ..
        } => with_fields(
            json!({"type": "planned", "host": host, "dry_run": dry_run}),
            // Every fact of the plan: upgrades, installs, removals, held, kept_back,
            // reboot_packages, conffiles, download_bytes, install_bytes, free_space.
            &**plan,
        ),
        Event::Refused { host, job, reason } => {
            json!({"type": "refused", "host": host, "command": job.name(), "reason": reason})
        }
        Event::Wave(p) => {
            let mut value = serde_json::to_value(p).ok()?;
            value["type"] = json!(if opened { "wave_batch" } else { "wave" });
            value
        }
        // The snapshot's business; batch prints the resume hint itself.
        Event::WaveSaved(_) => return None,
        Event::WaveHostFinished {
            wave_id,
            host,
            outcome,
        } => with_fields(
            json!({"type": "wave_host", "wave_id": wave_id, "host": host}),
            outcome,
        ),
        // Seconds, not serde's `{secs, nanos}` of a Duration: what a script compares.
        Event::Measured { host, measurement } => match measurement {
            Measurement::Upgrade { at, took, packages } => json!({
                "type": "measured", "host": host, "kind": "upgrade", "at": at,
                "took_secs": took.as_secs_f64(), "packages": packages,
            }),
            Measurement::Reboot { at, took } => json!({
                "type": "measured", "host": host, "kind": "reboot", "at": at,
                "took_secs": took.as_secs_f64(),
            }),
        },
        Event::Checked { host, report } => json!({
            "type": "checked", "host": host, "phase": report.phase, "at": report.at,
            "ok": report.ok(), "checks": report.checks, "failed_units": report.failed_units,
        }),
        Event::InventoryRefreshed { .. }
        | Event::PendingRefreshed { .. }
        | Event::Surveyed { .. } => return None,
    })
}

/// `value` with the fields of `tagged` (an internally tagged enum: `{"outcome": …, …}`) added.
fn with_fields(mut value: Value, tagged: &impl serde::Serialize) -> Value {
    if let Ok(Value::Object(fields)) = serde_json::to_value(tagged) {
        for (k, v) in fields {
            value[k] = v;
        }
    }
    value
}

fn host_json(model: &HostModel, result: &HostResult) -> Value {
    let pending = model.pending.as_deref().unwrap_or_default();
    let packages: Vec<Value> = pending
        .iter()
        .map(|p| json!({"name": p.name, "from": p.from, "to": p.to, "security": p.security}))
        .collect();
    let (outcome, reason) = match result {
        HostResult::Reported => (None, None),
        HostResult::Succeeded => (Some("succeeded"), None),
        HostResult::Skipped(why) => (Some("skipped"), Some(why.as_str())),
        HostResult::Failed(why) => (Some("failed"), Some(why.as_str())),
    };
    let state = &model.state;
    let error = match result {
        HostResult::Failed(why) => Some(why.as_str()),
        _ => state.error(),
    };
    json!({
        "type": "host",
        "host": model.name,
        "state": model.kind(),
        "since": state.since,
        "os": model.inventory.as_ref().map(|i| i.os.pretty_name.clone()),
        "pending": pending.len(),
        "packages": packages,
        "reboot_required": model.reboot.required,
        "reboot_packages": model.reboot.packages,
        // `null` where the host has no tool to tell (needrestart, needs-restarting).
        "services_needing_restart": model.survey.as_ref().and_then(|s| s.services.as_ref()),
        "error": error,
        "last_error": state.last_error,
        "unreachable": state.unreachable(),
        "outcome": outcome,
        "reason": reason,
        "retry_count": state.retry_count,
        "last_update": state.last_update,
        "plan": model.plan.as_ref().map(|p| &p.plan),
        "compose": model.compose_changes,
        "compose_pending": model.compose_pending(),
        // Per service, what a rollback would put it back on, and the images rolled back from.
        "rollback_points": model.rollback.points,
        "compose_rejected": model.rollback.rejected,
        "compose_held": model.compose_held,
        "stacks": model.stacks,
        // The last report of each phase that ran, flattened in phase order.
        "checks": model.health.iter().flat_map(|r| r.checks.iter()).collect::<Vec<_>>(),
        "needs_repair": model.needs_repair().map(|c| &c.detail),
    })
}

/// A dry run's plan in one line for the human progress on stderr: "3 to upgrade, 1 new, 1 to
/// remove (tendhost-legacy); kept back tendhost-core; reboot expected (tendhost-kernel);
/// conffile prompts /etc/app.conf; 12 KiB to download".
fn plan_note(plan: &crate::pkg::UpgradePlan) -> String {
    let mut text = format!(
        "{} to upgrade, {} new, {} to remove",
        plan.upgrades.len(),
        plan.installs.len(),
        plan.removals.len()
    );
    if !plan.removals.is_empty() {
        text.push_str(&format!(" ({})", plan.removals.join(", ")));
    }
    let mut part = |label: &str, names: &[String]| {
        if !names.is_empty() {
            text.push_str(&format!("; {label} {}", names.join(", ")));
        }
    };
    part("held", &plan.held);
    part("kept back", &plan.kept_back);
    if !plan.reboot_packages.is_empty() {
        text.push_str(&format!(
            "; reboot expected ({})",
            plan.reboot_packages.join(", ")
        ));
    }
    if let Some(prompts) = plan.conffiles.as_ref().filter(|p| !p.is_empty()) {
        let paths: Vec<&str> = prompts.iter().map(|p| p.path.as_str()).collect();
        text.push_str(&format!("; conffile prompts {}", paths.join(", ")));
    }
    if let Some(bytes) = plan.download_bytes {
        text.push_str(&format!("; {} to download", bytes_text(bytes)));
    }
    for short in plan.short_of_space() {
        text.push_str(&format!(
            "; NOT ENOUGH SPACE on {} ({} needed, {} free)",
            short.path,
            bytes_text(short.needed_bytes),
            bytes_text(short.free_bytes)
        ));
    }
    text
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let cut: String = text.chars().take(width - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::bus::SkippedHost;

    #[test]
    fn a_dry_runs_plan_is_one_progress_line() {
        let plan = crate::pkg::UpgradePlan {
            removals: vec!["tendhost-legacy".into()],
            kept_back: vec!["tendhost-core".into()],
            reboot_packages: vec!["tendhost-kernel".into()],
            download_bytes: Some(812),
            ..Default::default()
        };
        assert_eq!(
            plan_note(&plan),
            "0 to upgrade, 0 new, 1 to remove (tendhost-legacy); kept back tendhost-core; \
             reboot expected (tendhost-kernel); 812 B to download"
        );
    }

    #[test]
    fn a_wave_summary_lists_the_skipped_hosts_with_their_reason() {
        let progress = WaveProgress {
            wave_id: 1,
            status: WaveStatus::Finished,
            batch: 2,
            batches: 2,
            done: 3,
            succeeded: 2,
            failed: 0,
            skipped: 1,
            total: 3,
            in_flight: Vec::new(),
            reason: None,
            skipped_hosts: vec![SkippedHost {
                host: "h0".into(),
                reason: "outside maintenance window 'Sat 02:00-06:00'".into(),
            }]
            .into(),
            failed_hosts: std::sync::Arc::from([]),
        };
        let mut printer = Printer::capturing(true, "wave");
        let tally = Tally {
            ok: 2,
            failed: 0,
            skipped: 1,
        };
        printer.summary(&tally, false, Some(&progress));
        let line: Value = serde_json::from_str(printer.captured().trim()).unwrap();
        assert_eq!(line["type"], "summary");
        assert_eq!(
            line["skipped_hosts"],
            json!([{"host": "h0", "reason": "outside maintenance window 'Sat 02:00-06:00'"}])
        );
        let progress_line = event_json(&Event::Wave(progress), false).unwrap();
        assert_eq!(progress_line["skipped"], 1);
        assert!(
            progress_line.get("skipped_hosts").is_none(),
            "listed once, in the summary: {progress_line}"
        );
    }

    #[test]
    fn each_batch_of_a_wave_starts_with_one_wave_batch_line() {
        let mut printer = Printer::capturing(true, "wave");
        for (batch, done) in [(1, 0), (1, 0), (2, 1), (2, 2), (3, 3)] {
            printer.event(&Event::Wave(WaveProgress {
                wave_id: 1,
                status: WaveStatus::Running,
                batch,
                batches: 3,
                done,
                succeeded: done,
                failed: 0,
                skipped: 0,
                total: 4,
                in_flight: Vec::new(),
                reason: None,
                skipped_hosts: std::sync::Arc::from([]),
                failed_hosts: std::sync::Arc::from([]),
            }));
        }
        let types: Vec<String> = printer
            .captured()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].to_string())
            .collect();
        assert_eq!(
            types,
            [
                "\"wave_batch\"",
                "\"wave\"",
                "\"wave_batch\"",
                "\"wave\"",
                "\"wave_batch\""
            ]
        );
    }

    #[test]
    fn a_wave_download_is_the_stage_named_download() {
        let line = event_json(
            &Event::Stage {
                host: "h0".into(),
                stage: crate::fleet::Stage::Download,
                status: StageStatus::Failed {
                    error: "downloading packages: apt-get -d (download) failed".into(),
                },
            },
            false,
        )
        .unwrap();
        assert_eq!(line["type"], "stage");
        assert_eq!(line["stage"], "download");
        assert_eq!(line["status"], "failed");
    }
}
