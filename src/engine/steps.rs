//! The long-running work of one host (refresh, update, reboot, checks), run as a task inside the
//! host's supervisor so the supervisor keeps answering while it runs.
//!
//! A step never owns the host's state: it asks the supervisor to move it (`moves`), and the
//! supervisor checks each move against the state machine. Steps talk to the host only through the
//! `Executor` and the `PackageManager`; they know nothing of SSH or of who watches the events.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Local, Utc};
use tokio::sync::{OnceCell, mpsc};
use tokio_util::sync::CancellationToken;

use super::bus::{CommandKind, Event, StepOutcome};
use super::schedule;
use super::state::Transition;
use super::{ManagerSource, RebootSettings};
use crate::config::{HostConfig, HostId};
use crate::errors::chain;
use crate::pkg::{RebootStatus, SharedManager, UpgradeOptions};
use crate::remote::{self, OutputLine, RemoteCommand, SharedExecutor, quote};

/// What a step needs, cloned from the supervisor for each step.
#[derive(Clone)]
pub(super) struct StepContext {
    pub id: HostId,
    pub host: Arc<HostConfig>,
    pub exec: SharedExecutor,
    pub tools: Arc<dyn ManagerSource>,
    /// Detected once per engine run; `None` inside means the host has no manager (`manager =
    /// "none"`).
    pub manager: Arc<OnceCell<Option<SharedManager>>>,
    pub events: mpsc::Sender<Event>,
    pub moves: mpsc::Sender<Transition>,
    pub cancel: CancellationToken,
    /// Stops a running upgrade. Separate from `cancel` because killing apt or dnf half-way can
    /// leave a host's package database broken: at shutdown upgrades are let finish, and only
    /// abandoned when the operator insists or the caller's grace runs out.
    pub abandon: CancellationToken,
    pub reboot: RebootSettings,
    pub command_timeout: Duration,
    pub reboot_timeout: Duration,
}

/// The work a supervisor can run.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Refresh,
    /// Refresh, then update and reboot as needed. `wave` adds the maintenance window skip and the
    /// pre-check, and carries the wave's stop signal.
    Update {
        dry_run: bool,
        allow_removals: bool,
        wave: Option<CancellationToken>,
    },
    Reboot,
    /// A wave step on a host already waiting for a reboot: reboot if policy allows.
    WaveReboot {
        stop: CancellationToken,
    },
}

impl Op {
    pub fn label(&self) -> &'static str {
        match self {
            Op::Refresh => "refreshing",
            Op::Update { dry_run: true, .. } => "planning a dry run",
            Op::Update { wave: Some(_), .. } => "running a wave step",
            Op::Update { .. } => "updating",
            Op::Reboot | Op::WaveReboot { .. } => "rebooting",
        }
    }
}

/// A step stopped: the host is failed with this message (the supervisor moves it).
struct Stop(String);

type StepResult<T> = Result<T, Stop>;

/// What a refresh found.
struct Found {
    pending: bool,
    reboot: RebootStatus,
}

impl StepContext {
    pub async fn run(self, op: Op) -> StepOutcome {
        let result = match op {
            Op::Refresh => self.refresh_flow().await,
            Op::Update {
                dry_run,
                allow_removals,
                wave,
            } => self.update_flow(dry_run, allow_removals, wave).await,
            Op::Reboot => self.reboot_flow(true, None).await,
            Op::WaveReboot { stop } => self.reboot_flow(false, Some(&stop)).await,
        };
        match result {
            Ok(outcome) => outcome,
            Err(Stop(error)) => {
                self.fail(&error).await;
                StepOutcome::Failed { error }
            }
        }
    }

    async fn refresh_flow(&self) -> StepResult<StepOutcome> {
        self.move_to(Transition::Query).await;
        let found = self.query().await?;
        self.settle_query(&found).await;
        Ok(StepOutcome::Succeeded)
    }

    async fn update_flow(
        &self,
        dry_run: bool,
        allow_removals: bool,
        wave: Option<CancellationToken>,
    ) -> StepResult<StepOutcome> {
        let stop = wave.clone().unwrap_or_default();
        if wave.is_some()
            && !dry_run
            && let Err(reason) = schedule::host_window_allows(&self.host)
        {
            return Ok(StepOutcome::Skipped { reason });
        }
        self.move_to(Transition::Query).await;
        if wave.is_some()
            && let Some(pre) = self.host.checks.pre.clone()
        {
            self.check("pre-check", &pre).await?;
        }
        let found = self.query().await?;
        self.settle_query(&found).await;
        if dry_run {
            if found.pending {
                let plan = self.plan(allow_removals).await?;
                self.emit(Event::Planned {
                    host: self.id.clone(),
                    plan: Arc::new(plan),
                    dry_run: true,
                })
                .await;
            }
            return Ok(StepOutcome::Succeeded);
        }
        if stop.is_cancelled() {
            return Ok(StepOutcome::Skipped {
                reason: "wave aborted before the update".into(),
            });
        }
        if !found.pending {
            if found.reboot.required {
                // `settle_query` left the host waiting for a reboot.
                return self.reboot_flow(false, Some(&stop)).await;
            }
            return Ok(StepOutcome::Succeeded);
        }
        let plan = self.plan(allow_removals).await?;
        let plan = Arc::new(plan);
        self.emit(Event::Planned {
            host: self.id.clone(),
            plan: plan.clone(),
            dry_run: false,
        })
        .await;
        // Consent comes from the command (`--allow-removals`, `R` in the console) or the host's
        // own policy; `options` is the one place that combines them.
        if !plan.removals.is_empty() && !self.options(allow_removals).allow_removals {
            let reason = format!(
                "the upgrade would remove {}; allow removals to go ahead",
                quoted_list(&plan.removals)
            );
            self.emit(Event::Refused {
                host: self.id.clone(),
                command: CommandKind::Update,
                reason: reason.clone().into(),
            })
            .await;
            return Ok(StepOutcome::Failed { error: reason });
        }
        self.move_to(Transition::StartUpdate).await;
        let manager = self
            .manager()
            .await?
            .ok_or_else(|| Stop("no package manager".into()))?;
        let options = self.options(allow_removals);
        let exec = self.exec.clone();
        let abandon = self.abandon.clone();
        let report = self
            .with_output(|lines| async move {
                manager
                    .upgrade(exec.as_ref(), options, Some(&lines), &abandon)
                    .await
            })
            .await
            .map_err(|e| Stop(format!("upgrade: {}", chain(&e))))?;
        if report.reboot.required {
            self.emit(Event::PendingRefreshed {
                host: self.id.clone(),
                packages: Arc::from(Vec::new()),
                reboot: report.reboot.clone(),
            })
            .await;
            let reason = match schedule::reboot_allowed(&self.host, Local::now().naive_local()) {
                Err(reason) => reason,
                Ok(()) if stop.is_cancelled() => "wave aborted before the reboot".to_string(),
                Ok(()) => "rebooting".to_string(),
            };
            self.move_to(Transition::NeedReboot {
                reason: reason.into(),
            })
            .await;
            return self.reboot_flow(false, Some(&stop)).await;
        }
        if let Some(post) = self.host.checks.post.clone() {
            if self.cancel.is_cancelled() {
                // The upgrade was let finish while tendhost stops; nothing more may start now.
                tracing::warn!(host = %self.id, "post-check not run: tendhost is stopping");
            } else {
                self.check("post-check", &post).await?;
            }
        }
        self.move_to(Transition::Updated).await;
        Ok(StepOutcome::Succeeded)
    }

    /// From `WaitingReboot`: reboot if allowed (an explicit reboot needs only the window), see the
    /// host go away, wait for it to come back with a new boot id, run the post-check.
    async fn reboot_flow(
        &self,
        explicit: bool,
        stop: Option<&CancellationToken>,
    ) -> StepResult<StepOutcome> {
        let now = Local::now().naive_local();
        let allowed = if explicit {
            schedule::window_allows(self.host.policy.maintenance_window.as_ref(), now)
        } else {
            schedule::reboot_allowed(&self.host, now)
        };
        let stopping =
            self.cancel.is_cancelled() || stop.is_some_and(CancellationToken::is_cancelled);
        if allowed.is_err() || stopping {
            // The host stays in WaitingReboot with its reason; the update itself succeeded.
            return Ok(StepOutcome::Succeeded);
        }
        self.move_to(Transition::StartReboot).await;
        let old = self
            .boot_id()
            .await
            .map_err(|e| Stop(format!("rebooting: reading the boot id: {}", chain(&e))))?;
        self.issue_reboot().await?;
        let new = super::reboot::wait_for_new_boot(self, &old)
            .await
            .map_err(Stop)?;
        self.move_to(Transition::CameBack).await;
        if new == old {
            return Err(Stop(format!(
                "verifying: the boot id did not change ('{old}')"
            )));
        }
        if let Some(post) = self.host.checks.post.clone() {
            self.check("verifying: post-check", &post).await?;
        }
        self.move_to(Transition::Verified).await;
        Ok(StepOutcome::Succeeded)
    }

    async fn issue_reboot(&self) -> StepResult<()> {
        let command =
            RemoteCommand::new(self.reboot.command.clone(), Duration::from_secs(30)).privileged();
        match self.exec.run(&command, None, &self.cancel).await {
            // OpenSSH reports a connection closed under it as 255; anything else non-zero means
            // the reboot command itself failed.
            Ok(out) if !out.success() && out.exit_code.is_some_and(|c| c != 255) => {
                Err(Stop(format!(
                    "rebooting: '{}' failed (exit {}): {}",
                    self.reboot.command,
                    out.exit_code.unwrap_or_default(),
                    last_line(&out.stderr)
                )))
            }
            Ok(_) => Ok(()),
            Err(
                e @ (remote::Error::HostKeyChanged { .. }
                | remote::Error::Auth { .. }
                | remote::Error::SudoNeedsPassword { .. }
                | remote::Error::Cancelled),
            ) => Err(Stop(format!("rebooting: {}", chain(&e)))),
            // The connection dropping under the command is what a reboot looks like.
            Err(_) => Ok(()),
        }
    }

    /// Reads the host's boot id (one short command).
    pub(super) async fn boot_id(&self) -> Result<String, remote::Error> {
        let script = format!("cat {}", quote(&self.reboot.boot_id_path));
        let timeout = self.reboot.poll_interval.max(Duration::from_secs(5));
        let out = self
            .exec
            .run(&RemoteCommand::new(script, timeout), None, &self.cancel)
            .await?;
        if !out.success() {
            return Err(remote::Error::Ssh {
                target: self.exec.describe(),
                message: format!("reading the boot id failed: {}", last_line(&out.stderr)),
            });
        }
        Ok(out.stdout.trim().to_string())
    }

    async fn query(&self) -> StepResult<Found> {
        let inventory = self
            .tools
            .inventory(&self.host, self.exec.as_ref(), &self.cancel)
            .await
            .map_err(|e| Stop(format!("inventory: {}", chain(e.as_ref()))))?;
        self.emit(Event::InventoryRefreshed {
            host: self.id.clone(),
            inventory: Arc::new(inventory),
        })
        .await;
        let Some(manager) = self.manager().await? else {
            self.emit_pending(Vec::new(), RebootStatus::default()).await;
            return Ok(Found {
                pending: false,
                reboot: RebootStatus::default(),
            });
        };
        let exec = self.exec.as_ref();
        let step =
            |what: &'static str| move |e: crate::pkg::Error| Stop(format!("{what}: {}", chain(&e)));
        manager
            .refresh(exec, &self.cancel)
            .await
            .map_err(step("refreshing package lists"))?;
        let mut pending = manager
            .pending(exec, &self.cancel)
            .await
            .map_err(step("listing pending updates"))?;
        // Managers list in their own order (apt's puts `apt-transport-https` before `apt`); every
        // consumer (console, batch JSON, snapshot) wants one stable order by name.
        pending.sort_by(|a, b| a.name.cmp(&b.name));
        let reboot = manager
            .reboot_status(exec, &self.cancel)
            .await
            .map_err(step("checking whether a reboot is required"))?;
        let found = Found {
            pending: !pending.is_empty(),
            reboot: reboot.clone(),
        };
        self.emit_pending(pending, reboot).await;
        Ok(found)
    }

    /// Leaves `Querying` for where the query says the host is.
    async fn settle_query(&self, found: &Found) {
        if !found.pending && found.reboot.required {
            let reason = match schedule::reboot_allowed(&self.host, Local::now().naive_local()) {
                Ok(()) => "a reboot is required".to_string(),
                Err(why) => format!("a reboot is required; {why}"),
            };
            self.move_to(Transition::NeedReboot {
                reason: reason.into(),
            })
            .await;
        } else {
            self.move_to(Transition::Queried {
                pending: found.pending,
            })
            .await;
        }
    }

    async fn plan(&self, allow_removals: bool) -> StepResult<crate::pkg::UpgradePlan> {
        let manager = self
            .manager()
            .await?
            .ok_or_else(|| Stop("no package manager".into()))?;
        manager
            .plan(
                self.exec.as_ref(),
                self.options(allow_removals),
                &self.cancel,
            )
            .await
            .map_err(|e| Stop(format!("planning the upgrade: {}", chain(&e))))
    }

    fn options(&self, allow_removals: bool) -> UpgradeOptions {
        UpgradeOptions {
            mode: self.host.policy.upgrade_mode,
            allow_removals: allow_removals || self.host.policy.allow_removals,
        }
    }

    async fn manager(&self) -> StepResult<Option<SharedManager>> {
        self.manager
            .get_or_try_init(|| {
                self.tools
                    .manager(&self.host, self.exec.as_ref(), &self.cancel)
            })
            .await
            .cloned()
            .map_err(|e| Stop(format!("detecting the package manager: {}", chain(&e))))
    }

    /// Runs a health check; a non-zero exit stops the step.
    async fn check(&self, label: &str, script: &str) -> StepResult<()> {
        let command = RemoteCommand::new(script, self.command_timeout);
        let exec = self.exec.clone();
        let cancel = self.cancel.clone();
        let out = self
            .with_output(|lines| async move { exec.run(&command, Some(&lines), &cancel).await })
            .await
            .map_err(|e| Stop(format!("{label}: {}", chain(&e))))?;
        if out.success() {
            return Ok(());
        }
        let code = out
            .exit_code
            .map_or_else(|| out.signal.clone().unwrap_or_default(), |c| c.to_string());
        let detail = last_line(if out.stderr.trim().is_empty() {
            &out.stdout
        } else {
            &out.stderr
        });
        Err(Stop(format!(
            "{label} '{script}' failed (exit {code}): {detail}"
        )))
    }

    /// Runs `work` with a line sink whose lines become `Event::Output`, forwarded as they come.
    async fn with_output<F, Fut, T>(&self, work: F) -> T
    where
        F: FnOnce(mpsc::Sender<OutputLine>) -> Fut,
        Fut: Future<Output = T>,
    {
        let (lines, mut incoming) = mpsc::channel::<OutputLine>(64);
        let forward = async {
            while let Some(line) = incoming.recv().await {
                self.emit(Event::Output {
                    host: self.id.clone(),
                    stream: line.stream,
                    line: line.line.into(),
                })
                .await;
            }
        };
        // `work` owns the only sender, so `forward` ends once `work` is done with it.
        let (result, ()) = tokio::join!(work(lines), forward);
        result
    }

    async fn emit_pending(&self, packages: Vec<crate::pkg::PendingPackage>, reboot: RebootStatus) {
        self.emit(Event::PendingRefreshed {
            host: self.id.clone(),
            packages: packages.into(),
            reboot,
        })
        .await;
    }

    pub(super) async fn emit(&self, event: Event) {
        // The hub outlives every host task; a closed bus only happens during shutdown.
        let _ = self.events.send(event).await;
    }

    async fn move_to(&self, transition: Transition) {
        // The supervisor outlives its steps; a closed channel only happens during shutdown.
        let _ = self.moves.send(transition).await;
    }

    async fn fail(&self, error: &str) {
        self.move_to(Transition::Fail {
            error: error.into(),
            at: Utc::now(),
        })
        .await;
    }
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
