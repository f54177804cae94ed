//! How `--batch wave --plan` prints the plan: with `--json` one `plan_host` line per host (in
//! batch order, then those the wave would leave out), one `plan_batch` line per batch and one
//! `plan` line with the totals; otherwise a table per batch and the totals in words.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Printer, truncate};
use crate::config::HostId;
use crate::plan::{WavePlan, render};

impl Printer {
    /// The composed plan; `failed` holds the hosts whose dry run failed, with why.
    pub fn plan(&mut self, plan: &WavePlan, failed: &HashMap<HostId, String>) {
        if self.json {
            for host in &plan.hosts {
                let mut value = tagged("plan_host", host);
                value["dry_run_error"] = json!(failed.get(&host.host));
                self.line(&value.to_string());
            }
            for batch in &plan.batches {
                self.line(&tagged("plan_batch", batch).to_string());
            }
            let mut value = tagged("plan", &plan.totals);
            value["composed_at"] = json!(plan.composed_at);
            value["mode"] = json!(plan.mode);
            self.line(&value.to_string());
            return;
        }
        // What changes goes last and whole: package names are what the operator checks.
        let row = |host: &str, took: &str, reboot: &str, space: &str, changes: &str| {
            format!("  {host:<20} {took:>8}  {reboot:<28} {space:<12} {changes}")
        };
        let mut batch = None;
        for host in &plan.hosts {
            if batch != Some(host.batch) {
                batch = Some(host.batch);
                let title = match plan.batches.iter().find(|b| Some(b.batch) == host.batch) {
                    Some(b) => render::batch_line(b),
                    None => "not in the wave".to_string(),
                };
                self.line(&title);
                self.line(&row("HOST", "DURATION", "REBOOT", "SPACE", "CHANGES"));
            }
            let took = render::duration_text(host.prediction.map(|p| p.total));
            self.line(&row(
                &truncate(&host.host, 20),
                &took,
                &truncate(&render::reboot_text(host), 28),
                &render::space_text(host),
                &render::changes_text(host),
            ));
            for upgrade in &host.upgrades {
                self.line(&format!(
                    "      {} {} → {}",
                    upgrade.name, upgrade.from, upgrade.to
                ));
            }
            if let Some(note) = render::status_text(&host.status) {
                self.line(&format!("      {note}"));
            }
            if let Some(error) = failed.get(&host.host) {
                self.line(&format!("      dry run failed: {error}"));
            }
        }
        self.line(&render::totals_line(plan));
    }
}

/// `value` as a JSON object with `"type": kind` first among its fields.
fn tagged(kind: &str, value: &impl serde::Serialize) -> Value {
    let mut out = json!({ "type": kind });
    if let Ok(Value::Object(fields)) = serde_json::to_value(value) {
        for (k, v) in fields {
            out[k] = v;
        }
    }
    out
}
