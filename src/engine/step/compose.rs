//! The compose stage: every `compose_paths` entry of a host, in order, through
//! [`ComposeUpdater`]. Reads (inspect) come with a refresh; the update pulls, compares image ids
//! per service and recreates only what changed. The first stack that fails stops the stage, so
//! the operator sees which stack broke before later ones are touched.

use std::sync::Arc;

use super::{StepContext, StepResult};
use crate::engine::bus::Event;
use crate::engine::error::Error;
use crate::pkg::{ComposeUpdater, StackReport};

impl StepContext {
    fn composer(&self) -> ComposeUpdater {
        ComposeUpdater::new(&self.host.docker)
    }

    /// What each stack runs now, without pulling or changing anything.
    pub(super) async fn inspect_stacks(&self) -> StepResult<Vec<StackReport>> {
        if self.host.compose_paths.is_empty() {
            return Ok(Vec::new());
        }
        let composer = self.composer();
        let mut stacks = Vec::with_capacity(self.host.compose_paths.len());
        for path in &self.host.compose_paths {
            let report = self
                .read(|| async {
                    composer
                        .inspect(self.exec.as_ref(), path, &self.cancel)
                        .await
                        .map_err(Error::Compose)
                })
                .await?;
            stacks.push(report);
        }
        self.announce_stacks(&stacks, false).await;
        Ok(stacks)
    }

    /// Pulls and recreates what changed, stack by stack; announces the result (also the part
    /// done before a failure, so the changes that did happen are on record).
    pub(super) async fn update_stacks(&self) -> StepResult<Vec<StackReport>> {
        let composer = self.composer();
        let mut stacks = Vec::with_capacity(self.host.compose_paths.len());
        let mut failure = None;
        for path in &self.host.compose_paths {
            let exec = self.exec.clone();
            let abandon = self.abandon.clone();
            let result = self
                .with_output(|lines| async move {
                    composer
                        .update(exec.as_ref(), path, Some(&lines), &abandon)
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
        match failure {
            Some(e) => Err(e),
            None => Ok(stacks),
        }
    }

    async fn announce_stacks(&self, stacks: &[StackReport], updated: bool) {
        self.emit(Event::Stacks {
            host: self.id.clone(),
            stacks: Arc::from(stacks.to_vec()),
            updated,
        })
        .await;
    }
}
