//! Fleet waves (DESIGN.md §6): [`WavePlan`] splits a selection into batches (pure), and the
//! [`WaveRunner`] task walks them, one batch at a time, asking each host's supervisor to run one
//! wave step and waiting for every answer before the next batch starts. So never more hosts are in
//! flight than the current batch size, and the wave halts once failures exceed the limit.
//!
//! The runner owns the wave's progress and nothing else: host state stays with the supervisors.

use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::bus::{Event, Job, JobKind, Origin, Outcome, WaveProgress, WaveStatus};
use super::host::HostHandle;
use crate::config::{BatchSize, FailureLimit, HostId};
use crate::store::audit::{AuditRecord, AuditSink};

/// The batches of a wave and when it halts. Pure data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavePlan {
    pub batches: Vec<Vec<HostId>>,
    /// The wave halts when more hosts than this have failed.
    pub failure_limit: usize,
}

impl WavePlan {
    /// Splits `hosts` (in order) by `sizes`; the last size repeats until every host is placed.
    /// Percentages are of the whole selection.
    pub fn new(hosts: Vec<HostId>, sizes: &[BatchSize], max_failures: FailureLimit) -> WavePlan {
        let total = hosts.len();
        let sizes: Vec<usize> = if sizes.is_empty() {
            vec![total.max(1)]
        } else {
            sizes.iter().map(|s| s.resolve(total).max(1)).collect()
        };
        let mut batches = Vec::new();
        let mut rest = hosts.into_iter().peekable();
        let mut index = 0;
        while rest.peek().is_some() {
            let size = sizes[index.min(sizes.len() - 1)];
            batches.push(rest.by_ref().take(size).collect());
            index += 1;
        }
        WavePlan {
            batches,
            failure_limit: max_failures.resolve(total),
        }
    }

    pub fn total(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }

    pub fn halts(&self, failed: usize) -> bool {
        failed > self.failure_limit
    }
}

/// What a wave does to each host, and how it paces itself.
#[derive(Debug, Clone)]
pub struct WaveRequest {
    pub hosts: Vec<HostId>,
    pub sizes: Vec<BatchSize>,
    pub delay: Duration,
    pub max_failures: FailureLimit,
    pub dry_run: bool,
    pub allow_removals: bool,
}

/// The engine's grip on a running wave.
#[derive(Debug)]
pub(super) struct WaveControl {
    pub id: u64,
    pub paused: watch::Sender<bool>,
    pub abort: CancellationToken,
    /// Cancelled by the runner when it ends.
    pub finished: CancellationToken,
}

pub(super) struct WaveRunner {
    pub id: u64,
    pub plan: WavePlan,
    /// The handle of every planned host, batch by batch.
    pub handles: Vec<Vec<HostHandle>>,
    pub request: WaveRequest,
    pub events: mpsc::Sender<Event>,
    pub audit: AuditSink,
    pub paused: watch::Receiver<bool>,
    pub abort: CancellationToken,
    pub finished: CancellationToken,
    /// The engine's root token: shutting down stops the wave like an abort.
    pub cancel: CancellationToken,
}

/// Why a wave stopped early.
enum Halt {
    Aborted,
    Failures(String),
}

impl WaveRunner {
    pub async fn run(mut self) {
        let mut progress = WaveProgress {
            wave_id: self.id,
            status: WaveStatus::Started,
            batch: 0,
            batches: self.plan.batches.len(),
            done: 0,
            succeeded: 0,
            failed: 0,
            skipped: 0,
            total: self.plan.total(),
            in_flight: Vec::new(),
            reason: None,
        };
        let detail = format!(
            "{} hosts in {} batches{}",
            progress.total,
            progress.batches,
            if self.request.dry_run {
                ", dry run"
            } else {
                ""
            }
        );
        self.audit("wave_start", "started", &detail).await;
        self.emit(&progress).await;
        let halt = self.run_batches(&mut progress).await;
        progress.in_flight.clear();
        let (status, result) = match halt {
            None => (WaveStatus::Finished, "finished".to_string()),
            Some(Halt::Aborted) => (WaveStatus::Aborted, "aborted".to_string()),
            Some(Halt::Failures(reason)) => {
                progress.reason = Some(reason.clone());
                (WaveStatus::Halted, format!("halted: {reason}"))
            }
        };
        progress.status = status;
        let detail = format!(
            "{} succeeded, {} failed, {} skipped of {}",
            progress.succeeded, progress.failed, progress.skipped, progress.total
        );
        self.audit("wave_stop", &result, &detail).await;
        self.emit(&progress).await;
        self.finished.cancel();
    }

    async fn run_batches(&mut self, progress: &mut WaveProgress) -> Option<Halt> {
        let batches = std::mem::take(&mut self.handles);
        let count = batches.len();
        for (index, batch) in batches.into_iter().enumerate() {
            if self.wait_while_paused(progress).await {
                return Some(Halt::Aborted);
            }
            progress.batch = index + 1;
            progress.status = WaveStatus::Running;
            progress.in_flight = batch.iter().map(|h| h.id.clone()).collect();
            self.emit(progress).await;
            self.run_batch(batch, progress).await;
            if self.plan.halts(progress.failed) {
                return Some(Halt::Failures(format!(
                    "{} hosts failed, more than max_failures ({})",
                    progress.failed, self.plan.failure_limit
                )));
            }
            if self.stopping() {
                return Some(Halt::Aborted);
            }
            if index + 1 < count && !self.request.delay.is_zero() {
                progress.status = WaveStatus::Delaying;
                self.emit(progress).await;
                tokio::select! {
                    () = tokio::time::sleep(self.request.delay) => {}
                    () = self.abort.cancelled() => return Some(Halt::Aborted),
                    () = self.cancel.cancelled() => return Some(Halt::Aborted),
                }
            }
        }
        None
    }

    /// Sends every host of the batch its step and collects the answers as they come.
    async fn run_batch(&mut self, batch: Vec<HostHandle>, progress: &mut WaveProgress) {
        let kind = JobKind::Update {
            dry_run: self.request.dry_run,
            allow_removals: self.request.allow_removals,
        };
        let mut answers = FuturesUnordered::new();
        for handle in batch {
            let (job, answer) = Job::answered(kind, Origin::Wave(self.id));
            let command = job.stopped_by(self.abort.clone());
            // `send` waits for room in the host's small queue; the supervisor drains it promptly.
            let id = handle.id.clone();
            let sent = handle.send(command).await;
            answers.push(async move {
                let outcome = match sent {
                    Ok(()) => answer.await.unwrap_or_else(|_| Outcome::Failed {
                        error: "the host's supervisor stopped".to_string(),
                    }),
                    Err(e) => Outcome::Failed {
                        error: e.to_string(),
                    },
                };
                (id, outcome)
            });
        }
        while let Some((id, outcome)) = answers.next().await {
            progress.done += 1;
            // The hub outlives the wave; a closed bus only happens during shutdown.
            let _ = self
                .events
                .send(Event::WaveHostFinished {
                    wave_id: self.id,
                    host: id.clone(),
                    outcome: outcome.clone(),
                })
                .await;
            match outcome {
                Outcome::Succeeded => progress.succeeded += 1,
                Outcome::Failed { .. } => progress.failed += 1,
                Outcome::Skipped { .. } | Outcome::Refused { .. } => progress.skipped += 1,
            }
            progress.in_flight.retain(|h| *h != id);
            self.emit(progress).await;
        }
    }

    /// Returns true when the wave was aborted while paused.
    async fn wait_while_paused(&mut self, progress: &mut WaveProgress) -> bool {
        if *self.paused.borrow() {
            progress.status = WaveStatus::Paused;
            progress.in_flight.clear();
            self.emit(progress).await;
        }
        while *self.paused.borrow_and_update() {
            tokio::select! {
                changed = self.paused.changed() => if changed.is_err() { break },
                () = self.abort.cancelled() => return true,
                () = self.cancel.cancelled() => return true,
            }
        }
        self.stopping()
    }

    fn stopping(&self) -> bool {
        self.abort.is_cancelled() || self.cancel.is_cancelled()
    }

    async fn emit(&self, progress: &WaveProgress) {
        // The hub outlives the wave; a closed bus only happens during shutdown.
        let _ = self.events.send(Event::Wave(progress.clone())).await;
    }

    async fn audit(&self, action: &str, result: &str, detail: &str) {
        let record = AuditRecord::new(action, None, result, Some(detail));
        self.audit.record(record).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<HostId> {
        (0..n).map(|i| HostId::from(format!("h{i}"))).collect()
    }

    fn sizes(text: &str) -> Vec<usize> {
        let plan = WavePlan::new(
            hosts(40),
            &BatchSize::parse_list(text).unwrap(),
            FailureLimit::Count(0),
        );
        plan.batches.iter().map(Vec::len).collect()
    }

    #[test]
    fn canary_first_then_percentages_repeat() {
        assert_eq!(sizes("1,5,25%"), vec![1, 5, 10, 10, 10, 4]);
        assert_eq!(sizes("10"), vec![10, 10, 10, 10]);
        assert_eq!(sizes("100%"), vec![40]);
        assert_eq!(
            sizes("1%"),
            vec![1; 40],
            "a percentage rounds up to at least one host"
        );
        assert_eq!(sizes("3%"), vec![2; 20], "3% of 40 is 1.2, rounded up to 2");
    }

    #[test]
    fn keeps_selection_order_and_every_host_once() {
        let plan = WavePlan::new(
            hosts(7),
            &[BatchSize::Count(1), BatchSize::Count(3)],
            FailureLimit::Count(0),
        );
        let flat: Vec<HostId> = plan.batches.concat();
        assert_eq!(flat, hosts(7));
        assert_eq!(plan.total(), 7);
    }

    #[test]
    fn halts_when_failures_exceed_the_limit() {
        let plan = WavePlan::new(hosts(20), &[BatchSize::Count(5)], FailureLimit::Count(0));
        assert!(!plan.halts(0));
        assert!(plan.halts(1));
        let plan = WavePlan::new(hosts(20), &[BatchSize::Count(5)], FailureLimit::Percent(10));
        assert_eq!(plan.failure_limit, 2);
        assert!(!plan.halts(2));
        assert!(plan.halts(3));
        let plan = WavePlan::new(hosts(5), &[BatchSize::Count(5)], FailureLimit::Percent(10));
        assert_eq!(
            plan.failure_limit, 0,
            "10% of 5 rounds down to no failures allowed"
        );
    }

    #[test]
    fn empty_selection_has_no_batches() {
        let plan = WavePlan::new(
            Vec::new(),
            &[BatchSize::Percent(25)],
            FailureLimit::Count(0),
        );
        assert!(plan.batches.is_empty());
    }
}
