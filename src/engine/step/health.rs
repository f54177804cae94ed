//! Running the health gates (see `crate::health`) inside a step: the probe of a phase, the
//! checks derived from facts other reads already own, the operator's own command last, then
//! one `Event::Checked` and, when a gating check failed, the error that stops the step.
//!
//! A probe is a read: it changes nothing, so it is retried on network trouble like any read.
//! The pre-update report is kept (here and, through its event, in the snapshot): its failed
//! units are the baseline every later phase compares with.

use std::sync::Arc;

use super::{StepContext, StepResult};
use crate::engine::bus::{Event, Stage};
use crate::engine::error::Error;
use crate::health::probe::{ProbeRequest, SpaceNeeds};
use crate::health::{CheckName, CheckPhase, CheckResult, HealthReport, derived};
use crate::remote::RemoteCommand;

/// The pre-update report a host's steps share: the baseline of failed units. Seeded from the
/// snapshot, so a restarted tendhost still compares with what it saw before the update.
pub(in crate::engine) type Baseline = Arc<std::sync::Mutex<Option<Arc<HealthReport>>>>;

impl StepContext {
    /// Runs the probe of `phase` and returns its report, not yet announced: the caller adds
    /// what it knows ([`Self::settle_health`] announces and gates).
    pub(super) async fn probe(
        &self,
        phase: CheckPhase,
        space: Option<SpaceNeeds>,
    ) -> StepResult<HealthReport> {
        let manager = self.manager().await?.map(|m| m.kind());
        let baseline = self.baseline();
        let checks = &self.host.checks;
        let request = ProbeRequest {
            phase,
            manager,
            skip: &checks.skip,
            space,
            disk_margin: checks.disk_margin,
            baseline: baseline.as_ref().and_then(|r| r.failed_units.as_deref()),
            system_running_timeout: checks.system_running_timeout,
            compose_paths: &self.host.compose_paths,
            compose_version: self.host.docker.compose_version,
        };
        if request.is_empty() {
            return Ok(HealthReport::new(phase));
        }
        // The probe may wait for `is-system-running` on top of an ordinary command's time.
        let timeout = self.command_timeout + checks.system_running_timeout;
        let command = RemoteCommand::new(request.script(), timeout).privileged();
        let out = self
            .read(|| async {
                self.exec
                    .run(&command, None, &self.cancel)
                    .await
                    .map_err(|source| Error::HealthUnrun { phase, source })
            })
            .await?;
        request
            .read(&out.stdout)
            .map_err(|e| Error::HealthNoAnswer {
                phase,
                detail: e.to_string(),
            })
    }

    /// Runs the operator's `[host.checks]` command `script` as the check `name` of `report`.
    /// A check that could not run for network trouble is an error (tried again first: a
    /// check changes nothing); one that said no is a failed check, whose error is returned for
    /// [`Self::settle_health`] to give as the step's when it is the only failure ("pre-check
    /// failed (exit 1): …", as the operator's check has always been reported).
    pub(super) async fn operator_check(
        &self,
        report: &mut HealthReport,
        name: CheckName,
        stage: Stage,
        script: &str,
    ) -> StepResult<Option<Error>> {
        match self.read(|| self.check(stage, script)).await {
            Ok(()) => {
                report
                    .checks
                    .push(CheckResult::pass(name, report.phase, "passed"));
                Ok(None)
            }
            Err(error @ Error::CheckFailed { .. }) => {
                let detail = crate::errors::chain(&error);
                report
                    .checks
                    .push(CheckResult::fail(name, report.phase, detail));
                Ok(Some(error))
            }
            Err(other) => Err(other),
        }
    }

    /// Announces `report` (the supervisor audits it) and stops the step when a check failed.
    /// `operator` is the operator's failed check, the step's error when nothing else failed.
    /// A pre-update report becomes the baseline of the phases after it.
    pub(super) async fn settle_health(
        &self,
        report: HealthReport,
        operator: Option<Error>,
    ) -> StepResult<Arc<HealthReport>> {
        let report = Arc::new(report);
        if report.phase == CheckPhase::Pre
            && let Ok(mut baseline) = self.baseline.lock()
        {
            *baseline = Some(report.clone());
        }
        self.emit(Event::Checked {
            host: self.id.clone(),
            report: report.clone(),
        })
        .await;
        if report.ok() {
            return Ok(report);
        }
        let only_operator = report
            .failures()
            .all(|c| matches!(c.name, CheckName::Pre | CheckName::Post));
        match operator {
            Some(error) if only_operator => Err(error),
            _ => Err(Error::Health {
                phase: report.phase,
                failures: report.failure_summary(),
            }),
        }
    }

    /// The end of both verifications (after an update, after a reboot): the checks derived
    /// from the read that followed the change (`found`), the operator's `post` last, then the
    /// report announced and gated. `restart` is what `restart_services = "auto"` did.
    pub(super) async fn finish_verification(
        &self,
        mut report: HealthReport,
        found: &super::refresh::Found,
        restart: Option<&derived::Restart>,
    ) -> StepResult<()> {
        let phase = report.phase;
        let policy = self.host.policy.restart_services;
        let services = found.services.as_deref();
        let derived = derived::needs_restart(phase, services, policy, restart)
            .into_iter()
            .chain([derived::reboot_required(phase, &found.reboot)]);
        // `skip` turns these off as it does the probe's parts (the host key is not skippable).
        let skip = &self.host.checks.skip;
        report
            .checks
            .extend(derived.filter(|c| !skip.contains(&c.name)));
        let mut refused = None;
        if let Some(post) = &self.host.checks.post {
            refused = self
                .operator_check(&mut report, CheckName::Post, Stage::Verify, post)
                .await?;
        }
        self.settle_health(report, refused).await?;
        Ok(())
    }

    /// The pre-update report the later phases compare with.
    fn baseline(&self) -> Option<Arc<HealthReport>> {
        match self.baseline.lock() {
            Ok(baseline) => baseline.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
