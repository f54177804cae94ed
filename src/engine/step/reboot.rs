//! The reboot and verify stages, the Ansible way (DESIGN.md §9): see the host go away, see it
//! come back, and trust only a changed boot id; then the post-check. Each phase of the wait has
//! its own timeout, and a host key that changed across the reboot is reported as such, never as
//! a timeout (ansible #77353).

use std::time::Duration;

use chrono::Local;
use tokio::time::Instant;

use super::{StepContext, StepResult, last_line};
use crate::config::format_duration;
use crate::engine::bus::{Job, Stage, StageStatus};
use crate::engine::error::Error;
use crate::engine::job::{Done, RebootRule};
use crate::engine::schedule;
use crate::errors::chain;
use crate::fleet::Transition;
use crate::remote::job::Follow;
use crate::remote::{self, Executor, RemoteCommand, quote};

impl StepContext {
    /// From `WaitingReboot`: reboot if the job's rule allows it now, wait for the host to come
    /// back with a new boot id, then verify. When the reboot may not happen now the host keeps
    /// waiting (with its reason) and the job still succeeded.
    pub(super) async fn reboot_stage(&self, job: &Job) -> StepResult<Done> {
        let now = Local::now().naive_local();
        let allowed = match job.reboot_rule() {
            RebootRule::Explicit => {
                schedule::window_allows(self.host.policy.maintenance_window.as_ref(), now)
            }
            RebootRule::Policy => schedule::reboot_allowed(&self.host, now),
        };
        let stopping = self.cancel.is_cancelled() || job.stop.is_cancelled();
        let skip = match allowed {
            Err(reason) => Some(reason),
            Ok(()) if stopping => Some("tendhost is stopping".to_string()),
            Ok(()) => None,
        };
        if let Some(reason) = skip {
            self.stage(
                Stage::Reboot,
                StageStatus::Skipped {
                    reason: reason.into(),
                },
            )
            .await;
            return Ok(Done::Ran);
        }
        self.move_to(Transition::StartReboot).await?;
        let (old, new) = self.in_stage(Stage::Reboot, self.reboot_and_wait()).await?;
        self.move_to(Transition::CameBack).await?;
        self.in_stage(Stage::Verify, self.verify_reboot(&old, &new))
            .await?;
        self.move_to(Transition::Verified).await?;
        Ok(Done::Ran)
    }

    /// Issues the reboot and waits for the new boot id; returns (old, new).
    async fn reboot_and_wait(&self) -> StepResult<(String, String)> {
        let old = self
            .read(|| async {
                self.boot_id().await.map_err(|source| Error::Reboot {
                    what: "reading the boot id",
                    source,
                })
            })
            .await?;
        self.issue_reboot(&old).await?;
        let new = self.wait_for_new_boot(&old).await?;
        Ok((old, new))
    }

    pub(super) async fn verify_reboot(&self, old: &str, new: &str) -> StepResult<()> {
        if new == old {
            return Err(Error::BootIdUnchanged(old.to_string()));
        }
        if let Some(post) = &self.host.checks.post {
            self.check(Stage::Verify, post).await?;
        }
        // The reboot cleared what asked for it: read the host's word on it again.
        self.read_host(super::refresh::Read::AfterChange).await?;
        Ok(())
    }

    /// Runs the reboot command as a detached job (recorded with the boot id before it, so a
    /// restarted tendhost can tell whether it happened).
    async fn issue_reboot(&self, boot_id: &str) -> StepResult<()> {
        let command = RemoteCommand::new(self.reboot.command.clone(), Duration::from_secs(30))
            .detached("reboot", Follow::UntilDisconnect);
        let journal = self.journal(Stage::Reboot, Some(boot_id));
        match self.jobs(&journal).run(&command, None, &self.cancel).await {
            // OpenSSH reports a connection closed under it as 255; anything else non-zero means
            // the reboot command itself failed.
            Ok(out) if !out.success() && out.exit_code.is_some_and(|c| c != 255) => {
                Err(Error::RebootCommand {
                    code: out.exit_code.map_or(-1, |c| c as i32),
                    detail: last_line(out.diagnostic()),
                })
            }
            Ok(_) => Ok(()),
            Err(source) if is_fatal(&source) => Err(Error::Reboot {
                what: "issuing the reboot",
                source,
            }),
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

    /// Polls until the host answers with a boot id other than `old` (returned), or fails with
    /// the phase that went wrong.
    pub(super) async fn wait_for_new_boot(&self, old: &str) -> StepResult<String> {
        let timeout = self.reboot_timeout;
        self.exec.disconnect().await;

        // Phase 1: the host goes away (or is already back with a new boot id).
        let deadline = Instant::now() + timeout;
        loop {
            match self.boot_id().await {
                Ok(id) if id != old => return Ok(id),
                Ok(_) => {}
                Err(e) if is_fatal(&e) => return Err(fatal(e)),
                Err(_) => break,
            }
            // A fresh connection per poll: a connection that survived would hide the reboot.
            self.exec.disconnect().await;
            if Instant::now() >= deadline {
                return Err(Error::RebootWait(format!(
                    "the host did not go down within {}",
                    format_duration(timeout)
                )));
            }
            self.pause(self.reboot.poll_interval).await?;
        }

        // Phase 2: the host comes back.
        let deadline = Instant::now() + timeout;
        loop {
            self.pause(self.reboot.poll_interval).await?;
            match self.boot_id().await {
                Ok(id) => return Ok(id),
                Err(e) if is_fatal(&e) => return Err(fatal(e)),
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::RebootWait(format!(
                        "the host did not come back within {} (last error: {})",
                        format_duration(timeout),
                        chain(&e)
                    )));
                }
                Err(_) => self.exec.disconnect().await,
            }
        }
    }

    async fn pause(&self, period: Duration) -> StepResult<()> {
        tokio::select! {
            () = tokio::time::sleep(period) => Ok(()),
            () = self.cancel.cancelled() => Err(Error::RebootWait("cancelled".to_string())),
        }
    }
}

/// Errors that waiting longer cannot fix.
fn is_fatal(err: &remote::Error) -> bool {
    matches!(
        err,
        remote::Error::HostKeyChanged { .. }
            | remote::Error::HostKeyUnknown { .. }
            | remote::Error::Auth { .. }
            | remote::Error::Key { .. }
            | remote::Error::SudoNeedsPassword { .. }
            | remote::Error::Cancelled
            // The reboot job could not be recorded or started, or tendhost is stopping.
            | remote::Error::WriteAhead { .. }
            | remote::Error::HostLocked { .. }
            | remote::Error::Job { .. }
            | remote::Error::Detached { .. }
    )
}

fn fatal(source: remote::Error) -> Error {
    let what = match source {
        remote::Error::HostKeyChanged { .. } => "the host came back with a different host key",
        _ => "waiting for the host",
    };
    Error::Reboot { what, source }
}
