//! The reboot and verify stages, the Ansible way (DESIGN.md §9): see the host go away, see it
//! come back, and trust only a changed boot id; then the post-check. Each phase of the wait has
//! its own timeout, and a host key that changed across the reboot is reported as such, never as
//! a timeout (ansible #77353).
//!
//! Coming back is polled often ([`RebootSettings::poll_interval`], 0.5 s by default, backing
//! off to at most [`POLL_CAP`] while the host stays down), each poll bounded on its own, so the
//! host is seen back within about a second of its sshd answering: a connect that hangs on a
//! host that drops packets while it boots is given up and tried afresh. Going down is polled at
//! the same pace, but each poll gets its full time: only a host that fails to answer counts as
//! gone, never one that is merely slow.
//!
//! [`RebootSettings::poll_interval`]: crate::engine::RebootSettings

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
use crate::health::{CheckPhase, derived};
use crate::remote::job::Follow;
use crate::remote::{self, Executor, RemoteCommand, quote};

/// The longest pause between two polls of a host coming back.
pub(crate) const POLL_CAP: Duration = Duration::from_secs(1);
/// How long one poll of a host coming back may take at first: a connect that hangs this long
/// (packets dropped while the host boots) is given up and tried afresh. Ample for a handshake and
/// `cat` on a sane network; it doubles after each poll that ran out (a slow handshake on a busy
/// host must still get through), up to the full boot id read.
const POLL_ATTEMPT: Duration = Duration::from_secs(2);

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
        let started = Instant::now();
        let (old, new) = self.in_stage(Stage::Reboot, self.reboot_and_wait()).await?;
        self.move_to(Transition::CameBack).await?;
        self.in_stage(Stage::Verify, self.verify_reboot(&old, &new))
            .await?;
        self.move_to(Transition::Verified).await?;
        // Issued → back and verified: the time a reboot takes out of a window.
        self.measured(crate::fleet::Measurement::Reboot {
            at: chrono::Utc::now(),
            took: started.elapsed(),
        })
        .await;
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
        let mut report = self.probe(CheckPhase::PostReboot, None).await?;
        // The reboot cleared what asked for it: read the host's word on it again.
        let found = self.read_host(super::refresh::Read::AfterChange).await?;
        report
            .checks
            .insert(0, derived::host_key(report.phase, &self.exec.describe()));
        self.finish_verification(report, &found, None).await
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
        let timeout = self.boot_id_timeout();
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
        let mut pause = self.reboot.poll_interval;
        let most = self.boot_id_timeout();
        let mut attempt = POLL_ATTEMPT.min(most);
        loop {
            self.pause(pause).await?;
            let error = match tokio::time::timeout(attempt, self.boot_id()).await {
                Ok(Ok(id)) => return Ok(id),
                Ok(Err(e)) if is_fatal(&e) => return Err(fatal(e)),
                // An answer, if a refusal: the next poll needs no more time than this one.
                Ok(Err(e)) => {
                    attempt = POLL_ATTEMPT.min(most);
                    e
                }
                Err(_) => {
                    let ran_out = attempt;
                    attempt = (attempt * 2).min(most);
                    remote::Error::Timeout(ran_out)
                }
            };
            if Instant::now() >= deadline {
                return Err(Error::RebootWait(format!(
                    "the host did not come back within {} (last error: {})",
                    format_duration(timeout),
                    chain(&error)
                )));
            }
            self.exec.disconnect().await;
            pause = next_pause(pause, self.reboot.poll_interval);
        }
    }

    /// How long one full boot id read may take.
    fn boot_id_timeout(&self) -> Duration {
        self.reboot.poll_interval.max(Duration::from_secs(5))
    }

    async fn pause(&self, period: Duration) -> StepResult<()> {
        tokio::select! {
            () = tokio::time::sleep(period) => Ok(()),
            () = self.cancel.cancelled() => Err(Error::RebootWait("cancelled".to_string())),
        }
    }
}

/// The pause after `pause` while a host stays down: a quarter longer, up to [`POLL_CAP`] (or
/// `interval`, when that is longer).
fn next_pause(pause: Duration, interval: Duration) -> Duration {
    (pause + pause / 4).min(POLL_CAP.max(interval))
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
