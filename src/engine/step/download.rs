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

impl StepContext {
    /// Downloads what an upgrade of this host in its upgrade mode would install. Stops (as a
    /// failed stage) when the wave that asked ends or is aborted: `job.stop`.
    pub(super) async fn download(&self, job: &Job, from: StateKind) -> StepResult<Done> {
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
        if job.stop.is_cancelled() {
            // The host's turn came, or the wave ended, before the download began: not needed.
            return Ok(Done::Skipped("the wave no longer needs it".to_string()));
        }
        // Stopped with the engine (`self.cancel`), or when the wave is done with its downloads:
        // then the command is cancelled (killed on the host, so no apt-get holds its lock into
        // the upgrade) and the work still gets to wind down.
        let cancel = self.cancel.child_token();
        let work = self.fetch(&cancel);
        tokio::pin!(work);
        self.stage(Stage::Download, StageStatus::Started).await;
        let result = tokio::select! {
            result = &mut work => result,
            () = job.stop.cancelled() => {
                cancel.cancel();
                work.await
            }
        };
        let status = match result {
            _ if job.stop.is_cancelled() => StageStatus::Skipped {
                reason: "stopped: the wave no longer needs it".into(),
            },
            Ok(Some(())) => StageStatus::Done,
            Ok(None) => StageStatus::Skipped {
                reason: "no package manager".into(),
            },
            Err(error) => {
                let error = chain(&error);
                tracing::warn!(host = %self.id, "pre-download failed (the upgrade will download): {error}");
                StageStatus::Failed {
                    error: error.into(),
                }
            }
        };
        self.stage(Stage::Download, status).await;
        Ok(Done::Ran)
    }

    /// Refreshes the lists and downloads; `None` for a host without a package manager.
    async fn fetch(&self, cancel: &CancellationToken) -> StepResult<Option<()>> {
        let Some(manager) = self.manager().await? else {
            return Ok(None);
        };
        manager
            .download(self.exec.as_ref(), self.options(false), cancel)
            .await
            .map_err(|source| Error::Read {
                what: "downloading packages",
                source,
            })?;
        Ok(Some(()))
    }
}
