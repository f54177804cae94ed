//! The repair job: a host whose package database an interrupted or failed run left half done
//! (`dpkg --audit` not empty, duplicates of a cut-short rpm transaction) gets the manager's own
//! repair (`dpkg --configure -a` then `apt-get -f install`; see `PackageManager::repair`) as a
//! detached job whose output streams like an upgrade's, then the repair-phase probe asks again.
//!
//! Whole again, the host rests (`Repaired`) and is read afresh, so its pending updates and
//! reboot need are what they now are. Still broken, or the command failed, the host fails with
//! the reason and keeps needing repair: the re-check's report, announced either way, is the
//! newest word on the package database.

use super::refresh::Read;
use super::{StepContext, StepResult};
use crate::engine::bus::Stage;
use crate::engine::error::Error;
use crate::engine::job::Done;
use crate::fleet::{Refusal, Transition};
use crate::health::CheckPhase;
use crate::pkg::SharedManager;

impl StepContext {
    pub(super) async fn repair(&self) -> StepResult<Done> {
        let Some(manager) = self.manager().await? else {
            return Err(Error::Refused(Refusal(
                "nothing to repair: the host has no package manager".into(),
            )));
        };
        self.move_to(Transition::StartRepair).await?;
        self.in_stage(Stage::Repair, self.run_repair(manager))
            .await?;
        self.move_to(Transition::Repaired).await?;
        self.read_after_change().await
    }

    /// The repair command, then the re-check, which runs even when the command failed so the
    /// host's report says what is still broken.
    async fn run_repair(&self, manager: SharedManager) -> StepResult<()> {
        let journal = self.journal(Stage::Repair, None);
        let exec = self.jobs(&journal);
        // Like the upgrade: dpkg killed half-way is what needs the repair in the first place.
        let abandon = self.abandon.clone();
        let repaired = self
            .with_output(|lines| async move {
                manager
                    .repair(&exec, Some(&lines), &abandon)
                    .await
                    .map_err(Error::Repair)
            })
            .await;
        match repaired {
            // The job runs on while tendhost is not following it: nothing to check yet.
            Err(error) if error.keeps_job() || self.cancel.is_cancelled() => Err(error),
            Err(error) => {
                if let Ok(report) = self.probe(CheckPhase::Repair, None).await {
                    // Announced for the record; the command's failure is the step's error.
                    let _ = self.settle_health(report, None).await;
                }
                Err(error)
            }
            Ok(()) => self.recheck_repair().await,
        }
    }

    /// The repair-phase probe: the package database is whole again, or the step fails naming
    /// what is not.
    pub(super) async fn recheck_repair(&self) -> StepResult<()> {
        let report = self.probe(CheckPhase::Repair, None).await?;
        self.settle_health(report, None).await?;
        Ok(())
    }

    /// An upgrade failed: before the host fails with `error`, the package check asks whether it
    /// left the database half done (dpkg stopped on a failing postinst), so the host shows
    /// "needs repair" rather than a bare failure. Not when the job runs on without us, or
    /// tendhost is stopping: then nothing more may run.
    pub(super) async fn after_failed_upgrade(&self, error: Error) -> Error {
        if error.keeps_job() || error.is_detached() || self.cancel.is_cancelled() {
            return error;
        }
        if let Ok(report) = self.probe(CheckPhase::PostUpdate, None).await {
            // Announced for the record (and the needs-repair verdict); the upgrade's failure
            // stays the step's error.
            let _ = self.settle_health(report, None).await;
        }
        error
    }

    /// After a repair or a rollback the host rests; read it like a refresh so pending, reboot
    /// and stacks are right.
    pub(super) async fn read_after_change(&self) -> StepResult<Done> {
        self.move_to(Transition::Query).await?;
        let found = self.read_host(Read::AfterChange).await?;
        self.settle_query(&found).await?;
        Ok(Done::Ran)
    }
}
