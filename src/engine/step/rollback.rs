//! The compose rollback job: the services an update moved go back to the images they ran before
//! it (the host's rollback points, see `pkg::RollbackLedger`), stack by stack in
//! `compose_paths` order, each stack as one detached job (re-tag, `up -d`), then proved by a
//! fresh look. The host is asked first what that would do (old image still there, or to be
//! pulled by digest), and that answer is announced: it is all a dry run does.
//!
//! Before anything changes, the images rolled back from are announced as rejected, so a later
//! update leaves them out even if this rollback fails half-way; a service already back on its
//! old image is left alone. Afterwards the host is read afresh, like after a repair.

use std::sync::Arc;

use chrono::Utc;

use super::{StepContext, StepResult};
use crate::engine::bus::{Event, Job, Stage};
use crate::engine::error::Error;
use crate::engine::job::Done;
use crate::fleet::{Refusal, Transition};
use crate::pkg::{RollbackStep, ServiceChange};

impl StepContext {
    pub(super) async fn rollback(&self, job: &Job, dry_run: bool) -> StepResult<Done> {
        let points = self
            .rollback_points(job.stack.as_deref())
            .map_err(Error::Refused)?;
        let mut plan: Vec<(String, Vec<RollbackStep>)> = Vec::new();
        for path in &self.host.compose_paths {
            let of_stack: Vec<ServiceChange> =
                points.iter().filter(|p| &p.path == path).cloned().collect();
            if of_stack.is_empty() {
                continue;
            }
            let composer = self.composer();
            let steps = self
                .read(|| async {
                    composer
                        .rollback_plan(self.exec.as_ref(), path, &of_stack, &self.cancel)
                        .await
                        .map_err(Error::Compose)
                })
                .await?;
            // A service already back on its old image (a rollback done, or done by hand) has
            // nothing left to do.
            let steps: Vec<RollbackStep> = steps
                .into_iter()
                .filter(|s| s.running.as_deref() != Some(s.restore.id.as_str()))
                .collect();
            if !steps.is_empty() {
                plan.push((path.clone(), steps));
            }
        }
        self.emit(Event::RollbackPlanned {
            host: self.id.clone(),
            steps: plan.iter().flat_map(|(_, s)| s.iter().cloned()).collect(),
            dry_run,
        })
        .await;
        if plan.is_empty() {
            return Ok(Done::Skipped(
                "every service already runs the image it had before the last update".into(),
            ));
        }
        if dry_run {
            return Ok(Done::Ran);
        }
        self.move_to(Transition::StartRollback).await?;
        let undone: Arc<[ServiceChange]> = points
            .iter()
            .filter(|p| {
                plan.iter().any(|(path, steps)| {
                    *path == p.path && steps.iter().any(|s| s.service == p.service)
                })
            })
            .cloned()
            .collect();
        let at = Utc::now();
        self.fold_ledger(|ledger| ledger.rolled_back(&undone, at));
        self.emit(Event::RollingBack {
            host: self.id.clone(),
            undone,
            at,
        })
        .await;
        self.in_stage(Stage::Rollback, self.roll_back_stacks(&plan))
            .await?;
        self.move_to(Transition::RolledBack).await?;
        self.read_after_change().await
    }

    /// The rollback points of the stack at `stack` (or of every stack); refused when `stack`
    /// is none of the host's, or there is nothing to roll back.
    fn rollback_points(&self, stack: Option<&str>) -> Result<Vec<ServiceChange>, Refusal> {
        if let Some(path) = stack
            && !self.host.compose_paths.iter().any(|p| p == path)
        {
            return Err(Refusal(format!(
                "no compose stack '{path}' on this host (its compose_paths: {})",
                super::quoted_list(&self.host.compose_paths)
            )));
        }
        let points: Vec<ServiceChange> = self.ledger().points_of(stack).cloned().collect();
        if points.is_empty() {
            let what = stack.map_or("its stacks".to_string(), |p| format!("'{p}'"));
            return Err(Refusal(format!(
                "nothing to roll back: no update by tendhost has changed {what}"
            )));
        }
        Ok(points)
    }

    /// Each stack of `plan` in turn, as one detached job; the first that fails stops the rest.
    async fn roll_back_stacks(&self, plan: &[(String, Vec<RollbackStep>)]) -> StepResult<()> {
        let composer = self.composer();
        let journal = self.journal(Stage::Rollback, None);
        let exec = &self.jobs(&journal);
        for (path, steps) in plan {
            let abandon = self.abandon.clone();
            self.with_output(|lines| async move {
                composer
                    .rollback(exec, path, steps, Some(&lines), &abandon)
                    .await
            })
            .await
            .map_err(Error::Compose)?;
        }
        Ok(())
    }
}
