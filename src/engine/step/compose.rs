//! The compose stages: every `compose_paths` entry of a host, in order, through
//! [`ComposeUpdater`]. Reads come first: inspect with a refresh; pull and compare image ids per
//! service (the compose check) before the host enters `Updating`, so a stack that cannot be
//! pulled stops the update before anything changes. Inside `Updating`, only the services the
//! check found with a new image are recreated. The first stack that fails stops its stage, so
//! the operator sees which stack broke before later ones are touched.

use std::future::Future;
use std::sync::Arc;

use super::{StepContext, StepResult};
use crate::engine::bus::{Event, Stage, StageStatus};
use crate::engine::error::Error;
use crate::pkg::{self, ComposeUpdater, RollbackLedger, StackReport};

impl StepContext {
    pub(super) fn composer(&self) -> ComposeUpdater {
        ComposeUpdater::new(&self.host.docker)
    }

    /// The host's rollback points and rejected images as they stand.
    pub(super) fn ledger(&self) -> RollbackLedger {
        // A poisoned lock only means a panic elsewhere mid-fold: the data is still a ledger.
        match self.rollback.lock() {
            Ok(ledger) => ledger.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Folds `change` into the step's ledger (the event that announces it folds every other
    /// copy the same way).
    pub(super) fn fold_ledger(&self, change: impl FnOnce(&mut RollbackLedger)) {
        match self.rollback.lock() {
            Ok(mut ledger) => change(&mut ledger),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
    }

    /// The compose check stage: pulls (when `pull_before_update`) and compares, changing
    /// nothing that runs; announces what an update would change. No stage without stacks.
    pub(super) async fn check_stage(&self) -> StepResult<Vec<StackReport>> {
        if self.host.compose_paths.is_empty() {
            return Ok(Vec::new());
        }
        let composer = self.composer();
        let journal = self.journal(Stage::ComposeCheck, None);
        let exec = &self.jobs(&journal);
        let rejected = &self.ledger().rejected;
        let check = self.read_stacks(|path| {
            self.with_output(move |lines| async move {
                composer
                    .check(exec, path, rejected, Some(&lines), &self.cancel)
                    .await
            })
        });
        let stacks = self.in_stage(Stage::ComposeCheck, check).await?;
        self.emit(Event::Held {
            host: self.id.clone(),
            held: stacks.iter().flat_map(StackReport::held_services).collect(),
        })
        .await;
        Ok(stacks)
    }

    /// Reads every stack with `read` (retried on network trouble: a pull changes nothing that
    /// runs) and announces them, not updated. A host without stacks announces nothing.
    async fn read_stacks<'a, F, Fut>(&'a self, read: F) -> StepResult<Vec<StackReport>>
    where
        F: Fn(&'a str) -> Fut,
        Fut: Future<Output = Result<StackReport, pkg::Error>>,
    {
        if self.host.compose_paths.is_empty() {
            return Ok(Vec::new());
        }
        let mut stacks = Vec::with_capacity(self.host.compose_paths.len());
        for path in &self.host.compose_paths {
            let report = self
                .read(|| async { read(path).await.map_err(Error::Compose) })
                .await?;
            stacks.push(report);
        }
        self.announce_stacks(&stacks, false).await;
        Ok(stacks)
    }

    /// The compose stage, inside `Updating`: recreates what `checked` found changed, stack by
    /// stack, and announces the result (also the part done before a failure, so the changes
    /// that did happen are on record). Skipped, with the stacks still announced as updated (the
    /// update changed none of them), when no service has a new image.
    pub(super) async fn compose_stage(&self, checked: Vec<StackReport>) -> StepResult<()> {
        if checked.is_empty() {
            return Ok(());
        }
        if checked.iter().all(|s| s.changed().next().is_none()) {
            self.announce_stacks(&checked, true).await;
            let reason = "no service has a new image".into();
            self.stage(Stage::Compose, StageStatus::Skipped { reason })
                .await;
            return Ok(());
        }
        self.in_stage(Stage::Compose, self.recreate_stacks(checked))
            .await
    }

    async fn recreate_stacks(&self, checked: Vec<StackReport>) -> StepResult<()> {
        let composer = self.composer();
        let journal = self.journal(Stage::Compose, None);
        let exec = &self.jobs(&journal);
        let mut stacks = Vec::with_capacity(checked.len());
        let mut failure = None;
        for report in checked {
            let abandon = self.abandon.clone();
            let result = self
                .with_output(|lines| async move {
                    composer
                        .recreate(exec, report, Some(&lines), &abandon)
                        .await
                })
                .await;
            match result {
                Ok(report) => stacks.push(report),
                Err(e) => {
                    failure = Some(Error::Compose(e));
                    break;
                }
            }
        }
        self.announce_stacks(&stacks, true).await;
        failure.map_or(Ok(()), Err)
    }

    pub(super) async fn announce_stacks(&self, stacks: &[StackReport], updated: bool) {
        if updated {
            self.fold_ledger(|ledger| ledger.updated(stacks));
        }
        self.emit(Event::Stacks {
            host: self.id.clone(),
            stacks: Arc::from(stacks.to_vec()),
            updated,
        })
        .await;
    }
}
