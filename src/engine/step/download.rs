//! The download stage a wave runs on every selected host at its start: refresh the package lists
//! and fetch what the upgrade will install, changing nothing installed, so the host's turn in the
//! wave only installs.
//!
//! A download is an optimisation, never a gate: whatever goes wrong is logged and shown as the
//! stage failing, and the job still ends well (the upgrade downloads what is missing anyway). It
//! moves no state, so the host keeps resting where it was; the supervisor still runs it as the
//! host's one step, so it never overlaps an upgrade there.

use tokio_util::sync::CancellationToken;

use super::{StepContext, StepResult};
use crate::engine::bus::{Job, Stage, StageStatus};
use crate::engine::error::Error;
use crate::engine::job::Done;
use crate::errors::chain;
use crate::fleet::StateKind;
use crate::pkg::SharedManager;

impl StepContext {
    /// Downloads what an upgrade of this host in its upgrade mode would install. Stops (as a
    /// skipped stage) when the wave that asked no longer needs it: `job.stop`.
    pub(super) async fn download(&self, job: &Job, from: StateKind) -> StepResult<Done> {
        if job.stop.is_cancelled() {
            // The wave ended before the download began.
            return Ok(Done::Skipped("the wave no longer needs it".to_string()));
        }
        let manager = match self.manager().await {
            Ok(Some(manager)) => manager,
            // Nothing tendhost installs there: nothing to fetch, and nothing to say about it.
            Ok(None) => return Ok(Done::Skipped("no package manager".to_string())),
            Err(error) => {
                self.stage(Stage::Download, StageStatus::Started).await;
                self.download_failed(&error).await;
                return Ok(Done::Ran);
            }
        };
        if from == StateKind::WaitingReboot {
            let reason = "waiting for a reboot: nothing to install";
            self.stage(
                Stage::Download,
                StageStatus::Skipped {
                    reason: reason.into(),
                },
            )
            .await;
            return Ok(Done::Skipped(reason.to_string()));
        }
        // It refreshes the lists and then fetches from the same mirror: rationed with every other
        // refresh (`[fleet] lists_concurrency`). The semaphore is never closed.
        let _permit = tokio::select! {
            permit = self.lists_limit.acquire() => permit.ok(),
            () = job.stop.cancelled() => {
                return Ok(Done::Skipped("the wave no longer needs it".to_string()));
            }
        };
        self.stage(Stage::Download, StageStatus::Started).await;
        // Stopped with the engine (`self.cancel`), or when the wave no longer needs it: then the
        // command is cancelled (killed on the host, so no apt-get holds its lock into the
        // upgrade) and the work still gets to wind down.
        let cancel = self.cancel.child_token();
        let work = self.fetch_packages(&manager, job, &cancel);
        tokio::pin!(work);
        let result = tokio::select! {
            result = &mut work => result,
            () = job.stop.cancelled() => {
                cancel.cancel();
                work.await
            }
        };
        match result {
            _ if job.stop.is_cancelled() => {
                let reason = "stopped: the wave no longer needs it".into();
                self.stage(Stage::Download, StageStatus::Skipped { reason })
                    .await;
            }
            Ok(()) => self.stage(Stage::Download, StageStatus::Done).await,
            Err(error) => self.download_failed(&error).await,
        }
        Ok(Done::Ran)
    }

    /// Fetches what an update in the job's scope (the wave's) would install.
    async fn fetch_packages(
        &self,
        manager: &SharedManager,
        job: &Job,
        cancel: &CancellationToken,
    ) -> StepResult<()> {
        manager
            .download(self.exec.as_ref(), self.options(false, &job.scope), cancel)
            .await
            .map_err(|source| Error::Read {
                what: "downloading packages",
                source,
            })
    }

    /// The download failed: said in the log and as the stage, and nothing more.
    async fn download_failed(&self, error: &Error) {
        let error = chain(error);
        tracing::warn!(host = %self.id, "pre-download failed (the upgrade will download): {error}");
        let error = error.into();
        self.stage(Stage::Download, StageStatus::Failed { error })
            .await;
    }
}
