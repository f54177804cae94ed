//! Reattaching: a job an earlier run left on the host (tendhost was killed, stopped, or stopped
//! following it) is asked about before anything else runs there. Still running, it is followed
//! from the offset last shown; over, the host gets its real outcome: an upgrade that succeeded
//! has its pending packages and reboot need read again, one that failed fails the host with the
//! job's own error and the tail of its log, a reboot is judged by the boot id. Only a host that
//! cannot be asked stays "interrupted", with the job kept for the next retry.

use super::refresh::Read;
use super::{StepContext, StepResult};
use crate::engine::bus::{Event, Stage};
use crate::engine::error::Error;
use crate::engine::job::Done;
use crate::fleet::{RemoteJob, StateKind, Transition};
use crate::remote::job::{self, Follow, JobEnd, JobStatus};

impl StepContext {
    pub(super) async fn reattach(&self, from: StateKind) -> StepResult<Done> {
        let Some(job) = self.outstanding.clone() else {
            return Ok(Done::Ran);
        };
        if !matches!(
            job.stage,
            Stage::Packages | Stage::Compose | Stage::Reboot | Stage::Repair | Stage::Rollback
        ) {
            // A pull changes nothing that runs: its record only needs clearing.
            return Ok(Done::Ran);
        }
        tracing::info!(host = %self.id, job = %job.id, "asking about {} left by an earlier run", job.label);
        let from = if from == StateKind::Failed {
            // Failed on this job (it outlived its bound, or could not be asked about): its real
            // outcome decides now.
            let rebooting = job.stage == Stage::Reboot;
            self.move_to(Transition::Reattach { rebooting }).await?;
            if rebooting {
                StateKind::Rebooting
            } else {
                StateKind::Updating
            }
        } else {
            from
        };
        let (end, now) = match job.ended {
            Some(exit) => (exit.map_or(JobEnd::Vanished, JobEnd::Exited), from),
            None => self.resolve(&job, from).await?,
        };
        match job.stage {
            Stage::Reboot => self.settle_reboot(&job, end, now).await,
            Stage::Repair => self.settle_fix(&job, end, now, Transition::Repaired).await,
            Stage::Rollback => {
                self.settle_fix(&job, end, now, Transition::RolledBack)
                    .await
            }
            _ => self.settle_update(&job, end, now).await,
        }
    }

    /// Asks the host how the job stands, following it to its end if it still runs; returns how
    /// it ended and the host's state now (a resting host is moved to the state a running job
    /// means). A host that cannot be asked fails with the job kept (see `Error::keeps_job`).
    async fn resolve(&self, job: &RemoteJob, from: StateKind) -> StepResult<(JobEnd, StateKind)> {
        let status = self
            .read(|| async {
                job::status(
                    self.exec.as_ref(),
                    &self.host.job_dir,
                    &job.id,
                    &self.cancel,
                )
                .await
                .map_err(|source| Error::Unasked {
                    job: job.id.to_string(),
                    label: job.label.to_string(),
                    source,
                })
            })
            .await?;
        let end = match status {
            JobStatus::Running { .. } => {
                let now = self.show_running(job, from).await?;
                self.emit(Event::Output {
                    host: self.id.clone(),
                    stream: crate::remote::Stream::Stdout,
                    line: format!(
                        "-- tendhost: reattached to {} (job {}) --",
                        job.label, job.id
                    )
                    .into(),
                })
                .await;
                let journal = self.journal(job.stage, job.boot_id.as_deref());
                let exec = self.jobs(&journal);
                let mode = match job.stage {
                    Stage::Reboot => Follow::UntilDisconnect,
                    _ => Follow::ToTheEnd,
                };
                let followed = self
                    .with_output(|lines| async move {
                        exec.follow(
                            &job.id,
                            &job.label,
                            job.offset,
                            mode,
                            Some(&lines),
                            &self.cancel,
                        )
                        .await
                    })
                    .await;
                let end = match followed {
                    Ok(end) => end,
                    // A reboot's connection drops with the host: the boot id tells.
                    Err(e) if job.stage == Stage::Reboot && e.is_transient() => JobEnd::Exited(0),
                    Err(source) => {
                        return Err(Error::Upgrade(crate::pkg::Error::Remote {
                            step: "following the job",
                            source,
                        }));
                    }
                };
                return Ok((end, now));
            }
            JobStatus::Exited { code, .. } => JobEnd::Exited(code),
            JobStatus::Vanished | JobStatus::Refused => JobEnd::Vanished,
            JobStatus::Gone => JobEnd::Gone,
        };
        Ok((end, from))
    }

    /// Puts a host that rests (after a retry) back into the state its running job means, and
    /// returns the state it is in.
    async fn show_running(&self, job: &RemoteJob, from: StateKind) -> StepResult<StateKind> {
        match (job.stage, from) {
            (Stage::Reboot, StateKind::WaitingReboot) => {
                self.move_to(Transition::StartReboot).await?;
                Ok(StateKind::Rebooting)
            }
            (Stage::Packages | Stage::Compose, StateKind::Idle | StateKind::PendingUpdates) => {
                self.move_to(Transition::StartUpdate).await?;
                Ok(StateKind::Updating)
            }
            (
                Stage::Repair,
                StateKind::Idle | StateKind::PendingUpdates | StateKind::WaitingReboot,
            ) => {
                self.move_to(Transition::StartRepair).await?;
                Ok(StateKind::Updating)
            }
            (
                Stage::Rollback,
                StateKind::Idle | StateKind::PendingUpdates | StateKind::WaitingReboot,
            ) => {
                self.move_to(Transition::StartRollback).await?;
                Ok(StateKind::Updating)
            }
            _ => Ok(from),
        }
    }

    /// An upgrade or compose job is over: the host's word on what is left, or its failure.
    async fn settle_update(
        &self,
        job: &RemoteJob,
        end: JobEnd,
        now: StateKind,
    ) -> StepResult<Done> {
        self.ended_well(job, end).await?;
        if now != StateKind::Updating {
            // A resting host (retried after the job outlived its bound): read it like a refresh.
            self.move_to(Transition::Query).await?;
            let found = self.read_host(Read::AfterChange).await?;
            self.settle_query(&found).await?;
            return Ok(Done::Ran);
        }
        // Checked as after any update: the pre-update baseline came back with the snapshot.
        let reboot = self
            .in_stage(Stage::Verify, self.verify_update(false))
            .await?;
        if reboot.is_some_and(|r| r.required) {
            self.move_to(Transition::NeedReboot {
                reason: "a reboot is required (the upgrade finished while tendhost was away)"
                    .into(),
            })
            .await?;
        } else {
            self.move_to(Transition::Updated).await?;
        }
        Ok(Done::Ran)
    }

    /// A repair or rollback job is over (`done` ends it): a repair's package database is
    /// checked again as after any repair (a rollback's images were rejected before it
    /// started), and the host is read afresh.
    async fn settle_fix(
        &self,
        job: &RemoteJob,
        end: JobEnd,
        now: StateKind,
        done: Transition,
    ) -> StepResult<Done> {
        self.ended_well(job, end).await?;
        if job.stage == Stage::Repair {
            self.in_stage(Stage::Repair, self.recheck_repair()).await?;
        }
        if now == StateKind::Updating {
            self.move_to(done).await?;
        }
        self.read_after_change().await
    }

    /// Exit 0, or the job's failure (its error and the tail of its log).
    async fn ended_well(&self, job: &RemoteJob, end: JobEnd) -> StepResult<()> {
        match end {
            JobEnd::Exited(0) => Ok(()),
            JobEnd::Exited(code) => Err(Error::JobFailed {
                job: job.id.to_string(),
                label: job.label.to_string(),
                code,
                tail: self.log_tail(job, 3).await,
            }),
            JobEnd::Vanished | JobEnd::Gone => Err(Error::JobVanished {
                job: job.id.to_string(),
                label: job.label.to_string(),
            }),
        }
    }

    /// A reboot job: the boot id says whether the reboot happened; then verify as usual.
    async fn settle_reboot(
        &self,
        job: &RemoteJob,
        end: JobEnd,
        now: StateKind,
    ) -> StepResult<Done> {
        let Some(old) = job.boot_id.as_deref() else {
            return Err(Error::RebootWait(
                "the reboot's boot id was not recorded".into(),
            ));
        };
        if let JobEnd::Exited(code) = end
            && code != 0
        {
            return Err(Error::RebootCommand {
                code,
                detail: self.log_tail(job, 1).await,
            });
        }
        let new = match self.boot_id().await {
            Ok(id) if id != old => id,
            _ => self.wait_for_new_boot(old).await?,
        };
        if now == StateKind::Rebooting {
            self.move_to(Transition::CameBack).await?;
        }
        self.verify_reboot(old, &new).await?;
        self.move_to(Transition::Verified).await?;
        Ok(Done::Ran)
    }

    /// The last `lines` lines of the job's log, for its error (empty when it cannot be read:
    /// the failure is the news, its tail a detail).
    async fn log_tail(&self, job: &RemoteJob, lines: usize) -> String {
        let tail = job::log_tail(
            self.exec.as_ref(),
            &self.host.job_dir,
            &job.id,
            &self.cancel,
        )
        .await
        .unwrap_or_default();
        crate::errors::last_lines(&tail, lines)
    }
}
