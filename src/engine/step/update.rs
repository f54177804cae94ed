//! The host update pipeline, one stage after another, each with its own events and errors:
//! pre-check → compose check → packages (skipped for `manager = "none"`) → compose stacks →
//! reboot if required and allowed → verify. Everything before `Updating` is a read (the plan,
//! the pulls): a failure there leaves the host where it rested. A dry run stops after the reads.
//! A job's rules (who asked) come from `job.rs`.
//!
//! A scoped update (`job.scope`: named packages, security-only) takes only the pending packages
//! its scope selects, leaves compose stacks alone, and is skipped with a reason on a host where
//! it selects nothing; a reboot the upgrade requires still follows.

use std::sync::Arc;

use chrono::Local;

use super::refresh::Read;
use super::{StepContext, StepResult, quoted_list};
use crate::engine::bus::{Event, Job, JobKind, Stage, StageStatus};
use crate::engine::error::Error;
use crate::engine::job::{Done, RebootRule};
use crate::engine::schedule;
use crate::fleet::{self, Measurement, Refusal, StateKind, Transition, WindowFit};
use crate::health::probe::SpaceNeeds;
use crate::health::{self, CheckName, CheckPhase, derived};
use crate::pkg::{
    RebootStatus, StackReport, UpgradeOptions, UpgradePlan, UpgradeReport, UpgradeScope,
};
use crate::remote::{RemoteCommand, quote};

impl StepContext {
    pub(super) async fn update(&self, job: &Job, from: StateKind) -> StepResult<Done> {
        let JobKind::Update {
            dry_run,
            allow_removals,
        } = job.kind
        else {
            return Ok(Done::Ran);
        };
        // A host already waiting for a reboot has one stage left: the reboot.
        if from == StateKind::WaitingReboot && !dry_run {
            return self.reboot_stage(job).await;
        }
        if !dry_run
            && job.window_gates_update()
            && let Err(reason) = schedule::host_window_allows(&self.host)
        {
            return Ok(Done::Skipped(reason));
        }
        self.move_to(Transition::Query).await?;
        let mut found = self.read_host(Read::BeforeUpgrade).await?;
        self.settle_query(&found).await?;
        let scoped = !job.scope.is_everything();
        if scoped {
            if job.scope.select(&found.packages).is_empty() {
                if dry_run {
                    // The plan of this scope here is to do nothing: said as a plan, so a
                    // fleet-wide plan knows the host was asked.
                    self.announce_plan(UpgradePlan::default(), true, job).await;
                }
                return Ok(Done::Skipped(job.scope.nothing_pending()));
            }
            // Packages only: the stacks are neither pulled nor recreated.
            found.stacks.clear();
        }
        if dry_run {
            if found.pending {
                let plan = self.plan(allow_removals, &job.scope).await?;
                self.announce_plan(plan, true, job).await;
            }
            self.compose_check(job).await?;
            return Ok(Done::Ran);
        }
        let aborted = || {
            job.stop
                .is_cancelled()
                .then(|| Done::Skipped("wave aborted before the update".into()))
        };
        if let Some(done) = aborted() {
            return Ok(done);
        }
        // Waiting for a reboot already (`settle_query` left it so): that comes first; any
        // stacks follow next time.
        let reboot_only = !found.pending && found.reboot.required;
        let nothing_to_do = !found.pending && found.stacks.is_empty() && !reboot_only;
        let plan = match found.pending {
            true => Some(self.consented_plan(job, allow_removals).await?),
            false => None,
        };
        if !nothing_to_do
            && !reboot_only
            && job.defer_overruns
            && let Some(reason) = self.overrun_deferral(plan.as_deref(), found.reboot.required)
        {
            // Read and planned, nothing changed: the host waits for its next window.
            return Ok(Done::Skipped(reason));
        }
        if job.runs_pre_check() {
            // Every host a real update is sent to is gated, even one with nothing to do: a
            // wave counts a host whose checks fail as failed.
            self.in_stage(Stage::PreCheck, self.pre_checks(plan.as_deref()))
                .await?;
        }
        if nothing_to_do {
            return Ok(Done::Ran);
        }
        if reboot_only {
            return self.reboot_stage(job).await;
        }
        let stacks = self.compose_check(job).await?;
        if let Some(done) = aborted() {
            // The pulls took a while; the wave was stopped meanwhile.
            return Ok(done);
        }
        self.move_to(Transition::StartUpdate).await?;
        let report = self.packages_stage(job, plan, allow_removals).await?;
        self.compose_stage(stacks).await?;
        // Checked before any reboot: a host the update broke is not rebooted on top of it.
        let verified = self
            .in_stage(Stage::Verify, self.verify_update(report.reboot.required))
            .await?;
        let reboot = match verified {
            // The survey's word, unless only the upgrade saw the reboot coming.
            Some(reboot) if reboot.required || !report.reboot.required => reboot,
            Some(_) => report.reboot,
            None => {
                // Not read again (tendhost is stopping): the upgrade's own word on the reboot.
                self.emit(Event::PendingRefreshed {
                    host: self.id.clone(),
                    packages: Arc::from(Vec::new()),
                    reboot: report.reboot.clone(),
                })
                .await;
                report.reboot
            }
        };
        if reboot.required {
            let reason = match schedule::reboot_allowed(&self.host, Local::now().naive_local()) {
                Err(reason) => reason,
                Ok(()) if job.stop.is_cancelled() => "wave aborted before the reboot".to_string(),
                Ok(()) => crate::notify::REBOOTING_NOW.to_string(),
            };
            self.move_to(Transition::NeedReboot {
                reason: reason.into(),
            })
            .await?;
            return self.reboot_stage(job).await;
        }
        self.move_to(Transition::Updated).await?;
        Ok(Done::Ran)
    }

    /// Why the host is deferred to its next window: its predicted update (from its own
    /// history) would end after the window it is in closes. `None` without a window or a
    /// prediction (a first run is never deferred on a guess).
    fn overrun_deferral(
        &self,
        plan: Option<&UpgradePlan>,
        reboot_required: bool,
    ) -> Option<String> {
        self.host.policy.maintenance_window.as_ref()?;
        let nothing = UpgradePlan::default();
        let plan = plan.unwrap_or(&nothing);
        let now = Local::now().naive_local();
        match fleet::forecast(&self.host, &self.history(), plan, reboot_required, now).fit {
            WindowFit::Overruns(overrun) => Some(overrun.deferral()),
            WindowFit::Fits | WindowFit::Outside { .. } => None,
        }
    }

    /// The compose check, unless the update is scoped to packages: then its stage says so
    /// (on a host with stacks) and nothing is pulled.
    async fn compose_check(&self, job: &Job) -> StepResult<Vec<StackReport>> {
        if job.scope.is_everything() {
            return self.check_stage().await;
        }
        if !self.host.compose_paths.is_empty() {
            let reason = "scoped update: packages only".into();
            self.stage(Stage::ComposeCheck, StageStatus::Skipped { reason })
                .await;
        }
        Ok(Vec::new())
    }

    /// The plan, unless it removes packages without consent (the command's or the host
    /// policy's): then the update is refused before anything changes.
    async fn consented_plan(
        &self,
        job: &Job,
        allow_removals: bool,
    ) -> StepResult<Arc<UpgradePlan>> {
        let plan = self.plan(allow_removals, &job.scope).await?;
        let plan = self.announce_plan(plan, false, job).await;
        if !plan.removals.is_empty() && !self.options(allow_removals, &job.scope).allow_removals {
            return Err(Error::Refused(Refusal(format!(
                "the upgrade would remove {}; allow removals to go ahead",
                quoted_list(&plan.removals)
            ))));
        }
        Ok(plan)
    }

    async fn announce_plan(&self, plan: UpgradePlan, dry_run: bool, job: &Job) -> Arc<UpgradePlan> {
        let plan = Arc::new(plan);
        self.emit(Event::Planned {
            host: self.id.clone(),
            plan: plan.clone(),
            dry_run,
            scope: job.scope.clone(),
        })
        .await;
        plan
    }

    async fn packages_stage(
        &self,
        job: &Job,
        plan: Option<Arc<UpgradePlan>>,
        allow_removals: bool,
    ) -> StepResult<UpgradeReport> {
        let manager = match (plan.as_ref(), self.manager().await?) {
            (Some(_), Some(manager)) => manager,
            (_, manager) => {
                let reason = match manager {
                    None => "the host has no package manager",
                    Some(_) => "no packages pending",
                };
                self.stage(
                    Stage::Packages,
                    StageStatus::Skipped {
                        reason: reason.into(),
                    },
                )
                .await;
                return Ok(UpgradeReport::default());
            }
        };
        let packages = plan
            .as_ref()
            .map_or(0, |p| p.upgrades.len() + p.installs.len());
        let options = self.options(allow_removals, &job.scope);
        let journal = self.journal(Stage::Packages, None);
        let exec = self.jobs(&journal);
        let abandon = self.abandon.clone();
        let upgrade = self.with_output(|lines| async move {
            manager
                .upgrade(&exec, options, Some(&lines), &abandon)
                .await
                .map_err(Error::Upgrade)
        });
        let started = tokio::time::Instant::now();
        let report = match self.in_stage(Stage::Packages, upgrade).await {
            Ok(report) => report,
            Err(error) => return Err(self.after_failed_upgrade(error).await),
        };
        self.measured(Measurement::Upgrade {
            at: chrono::Utc::now(),
            took: started.elapsed(),
            packages,
        })
        .await;
        Ok(report)
    }

    /// After an update (and before any reboot it asks for): the post-update checks, with the
    /// host's lists read again so every consumer sees what is really left pending. Returns
    /// the host's word on the reboot, or `None` when tendhost is stopping and nothing more
    /// may start. `reboot_follows`: the upgrade said a reboot is due, which restarts every
    /// service, so `restart_services = "auto"` leaves them to it.
    pub(super) async fn verify_update(
        &self,
        reboot_follows: bool,
    ) -> StepResult<Option<RebootStatus>> {
        if self.cancel.is_cancelled() {
            // The upgrade was let finish while tendhost stops; nothing more may start now.
            tracing::warn!(host = %self.id, "post-update checks not run: tendhost is stopping");
            return Ok(None);
        }
        let report = self.probe(CheckPhase::PostUpdate, None).await?;
        let mut found = self.read_host(Read::AfterChange).await?;
        let policy = self.host.policy.restart_services;
        let mut restart = None;
        if let Some(services) = derived::to_restart(policy, found.services.as_deref()) {
            let services = services.to_vec();
            restart = Some(if reboot_follows || found.reboot.required {
                derived::Restart::Deferred
            } else {
                let done = self.restart_services(&services).await;
                if done.is_ok() {
                    // What is left running replaced code after the restart is the host's word.
                    found = self.read_host(Read::AfterChange).await?;
                }
                match done {
                    Ok(()) => derived::Restart::Restarted(services),
                    Err(why) => derived::Restart::Failed { services, why },
                }
            });
        }
        self.finish_verification(report, &found, restart.as_ref())
            .await?;
        Ok(Some(found.reboot))
    }

    /// `restart_services = "auto"`: `systemctl try-restart` of `services` (only those running,
    /// so a stopped service stays stopped), its output shown as it comes. A short command, not
    /// a detached job: a restart cut off by a lost connection is simply seen as not done by
    /// the read that follows. `Err` says in one line why it did not happen (no systemd on the
    /// host, a unit that failed to start again, the connection lost), for the check to name.
    async fn restart_services(&self, services: &[String]) -> Result<(), String> {
        let units: Vec<String> = services.iter().map(|s| quote(s)).collect();
        let script = format!("systemctl try-restart -- {}", units.join(" "));
        let command = RemoteCommand::new(script, self.command_timeout).privileged();
        let out = self
            .with_output(|lines| async move {
                self.exec.run(&command, Some(&lines), &self.cancel).await
            })
            .await
            .map_err(|e| crate::errors::chain(&e))?;
        if out.success() {
            return Ok(());
        }
        Err(format!(
            "systemctl try-restart exited {}: {}",
            super::exit_label(&out),
            health::probe::one_line(out.diagnostic())
        ))
    }

    /// The pre-update gate: the probe (locks, the package database, free space against what
    /// `plan` needs), then the operator's `pre` command last, only when the built-in checks
    /// passed. Nothing has changed on the host when it fails.
    async fn pre_checks(&self, plan: Option<&UpgradePlan>) -> StepResult<()> {
        let space = plan.map(SpaceNeeds::of_plan);
        let mut report = self.probe(CheckPhase::Pre, space).await?;
        let mut refused = None;
        if report.ok()
            && let Some(pre) = &self.host.checks.pre
        {
            refused = self
                .operator_check(&mut report, CheckName::Pre, Stage::PreCheck, pre)
                .await?;
        }
        self.settle_health(report, refused).await?;
        Ok(())
    }

    async fn plan(&self, allow_removals: bool, scope: &UpgradeScope) -> StepResult<UpgradePlan> {
        let Some(manager) = self.manager().await? else {
            return Ok(UpgradePlan::default());
        };
        self.read(|| async {
            manager
                .plan(
                    self.exec.as_ref(),
                    self.options(allow_removals, scope),
                    &self.cancel,
                )
                .await
                .map_err(Error::Plan)
        })
        .await
    }

    /// Consent comes from the command (`--allow-removals`, `R` in the console) or the host's own
    /// policy; this is the one place that combines them. The scope is the job's.
    pub(super) fn options(&self, allow_removals: bool, scope: &UpgradeScope) -> UpgradeOptions {
        UpgradeOptions {
            mode: self.host.policy.upgrade_mode,
            allow_removals: allow_removals || self.host.policy.allow_removals,
            scope: scope.clone(),
        }
    }

    pub(super) async fn reboot(&self, job: &Job) -> StepResult<Done> {
        debug_assert_eq!(job.reboot_rule(), RebootRule::Explicit);
        self.reboot_stage(job).await
    }
}
