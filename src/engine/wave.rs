//! Fleet waves (DESIGN.md §6): [`WaveQueue`] hands out the selection's hosts batch by batch and
//! decides when the wave must stop (pure), and the [`WaveRunner`] task asks each host's supervisor
//! to run one wave step, starting hosts as the queue allows. So never more hosts are in flight
//! than the current batch size, and the wave halts once failures exceed the limit.
//!
//! Two paces ([`WaveMode`]): with `batches`, a batch starts once the whole previous one is done
//! (Ansible's `serial`). With `rolling` (the default), only the canary batch is a barrier; after
//! it the batch size is a window: a host starts as soon as another finishes, and the next batch
//! opens (the window takes its size) as soon as every host of the current one has started and
//! one of them succeeded. So one slow host never holds the other slots idle.
//!
//! At its start a real wave also hands every selected host a download of what its upgrade will
//! install (see `predownload`), a few hosts at a time outside the batch size; a host whose turn comes
//! first drops a queued download and waits for a running one.
//!
//! How a wave keeps its canary:
//! - A batch counts only hosts that really ran (succeeded or failed). A host that answers skipped
//!   or refused (failed earlier, busy, outside its window) is replaced by the next untried host of
//!   the selection; the batch size stays the cap on hosts in flight. When no host is left, the
//!   batch runs with what it has.
//! - A batch starts only once every earlier batch had a host that succeeded; otherwise the wave
//!   halts, saying how each host of the unproven batch ended.
//!
//! A jump host (one that other selected hosts reach through, see [`JumpHosts`]) goes after the
//! hosts behind it and never in the same batch as any of them: its update may reboot it, which
//! would cut them off mid-upgrade. The canary rules above still hold; the jump host only waits
//! for a later batch, and the batch it would have joined runs with the hosts it has. Rolling,
//! it starts once every host behind it has ended, never while one is in flight.
//!
//! Hosts of one cluster (`cluster = "db"`) are never in flight together: the queue passes over a
//! host whose cluster-mate is in flight (in batches: in its batch) for the next untried one, and
//! the supervisors hold a per-cluster permit around every change, whoever asked.
//!
//! At its threshold (a halt for failures or an unproven batch) a wave with `on_threshold =
//! "pause"` holds new starts, lets the hosts in flight finish, and waits for the operator's
//! [`ThresholdChoice`]: continue (the limit rises to the failures so far), skip the failed
//! (set aside as skipped), retry them (back in their batch), or abort.
//!
//! The runner saves the wave's record (`store::snapshot::SavedWave`) with the snapshot as it
//! advances, durably before a host starts after another finished, so a resumed wave
//! ([`WaveQueue::resumed`]) never redoes a finished host. Shutting the engine down keeps the
//! record; a wave that ends (finished, halted, aborted) clears it.
//!
//! The runner owns the wave's progress and nothing else: host state stays with the supervisors.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::bus::{
    Event, FailedHost, Job, JobKind, Origin, Outcome, SkippedHost, WaveProgress, WaveStatus,
};
use super::host::HostHandle;
use super::predownload::Downloads;
use crate::config::{BatchSize, Config, FailureLimit, HostId, JumpHosts, OnThreshold, WaveMode};
use crate::pkg::UpgradeScope;
use crate::store::audit::{AuditRecord, AuditSink};
use crate::store::snapshot::{SavedRequest, SavedStatus, SavedWave, SavedWaveHost, Stand};

/// How many hosts a halt reason names before it says "and N more".
const REASON_HOSTS: usize = 5;

/// The selection of a wave as a queue, planned lazily: batches are opened one at a time and
/// filled in selection order, and a host that did not run is replaced by the next untried one.
/// Pure: the runner says how each host ended; the queue says which host may start next and
/// whether the wave must stop. It is the one place a wave's outcomes are counted.
#[derive(Debug, Clone)]
pub struct WaveQueue {
    /// Batch sizes resolved against the whole selection; the last one repeats.
    sizes: Vec<usize>,
    mode: WaveMode,
    untried: VecDeque<HostId>,
    total: usize,
    /// The wave halts when more hosts than this have failed.
    pub failure_limit: usize,
    succeeded: usize,
    /// The hosts that succeeded, with their batch: what a saved wave never runs again.
    succeeded_in: Vec<(HostId, usize)>,
    failed: usize,
    /// Behind an `Arc` so each progress event shares it; rebuilt only when a host is skipped.
    skipped: Arc<[SkippedHost]>,
    /// The failures the wave counts (`failed` of them), each with the batch it ran in, so a
    /// retry can give it its place back.
    failures: Vec<(FailedHost, usize)>,
    /// Batches opened so far; the current one is number `opened` (1-based).
    opened: usize,
    current: BatchTally,
    /// Every host handed out and not yet recorded, with the number of its batch: rolling, hosts
    /// of earlier batches may still run while the current one fills.
    in_flight: HashMap<HostId, usize>,
    /// Selected jump host → the selected hosts behind it, which it must not share a batch with
    /// (see [`with_jump_hosts`](Self::with_jump_hosts)); empty for most fleets.
    behind: HashMap<HostId, Vec<HostId>>,
    /// Selected host → its cluster, for the hosts whose cluster has another selected host
    /// (see [`with_clusters`](Self::with_clusters)); empty for most fleets.
    cluster_of: HashMap<HostId, Arc<str>>,
}

/// The batch being filled.
#[derive(Debug, Clone, Default)]
struct BatchTally {
    size: usize,
    /// Hosts of this batch in flight.
    in_flight: usize,
    /// Hosts that really ran (succeeded or failed): only they use up the batch.
    ran: usize,
    /// Every host handed out in this batch, whatever became of it (kept only when the
    /// selection has jump hosts).
    started: HashSet<HostId>,
    succeeded: usize,
    /// How each host of the batch that did not succeed ended ("h0 failed: …"), for the reason.
    misses: Vec<(HostId, String)>,
    /// The operator chose to go on although the batch proved nothing (at the threshold).
    waived: bool,
}

impl BatchTally {
    /// Whether the batch lets the next one open: a host of it succeeded, or the operator said
    /// go on anyway.
    fn proven(&self) -> bool {
        self.succeeded > 0 || self.waived
    }
}

/// What the operator chose when the wave paused at its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdChoice {
    /// Go on: the failures stay counted, and the limit rises so the next failure asks again.
    Continue,
    /// Set the failed hosts aside as skipped (they no longer count) and go on.
    SkipFailed,
    /// Retry each failed host (back to the front of the queue, its failure no longer counted).
    RetryFailed,
    /// Stop the wave, as `on_threshold = "abort"` would have.
    Abort,
}

impl ThresholdChoice {
    /// The choice's name in audit records and messages.
    pub fn name(self) -> &'static str {
        match self {
            ThresholdChoice::Continue => "continue",
            ThresholdChoice::SkipFailed => "skip_failed",
            ThresholdChoice::RetryFailed => "retry_failed",
            ThresholdChoice::Abort => "abort",
        }
    }
}

impl WaveQueue {
    /// Queues `hosts` (in order) for batches of `sizes`; the last size repeats until every host
    /// is placed. Percentages are of the whole selection. Paced in batches unless
    /// [`with_mode`](Self::with_mode) says otherwise.
    pub fn new(hosts: Vec<HostId>, sizes: &[BatchSize], max_failures: FailureLimit) -> WaveQueue {
        let total = hosts.len();
        let sizes: Vec<usize> = if sizes.is_empty() {
            vec![total.max(1)]
        } else {
            sizes.iter().map(|s| s.resolve(total).max(1)).collect()
        };
        WaveQueue {
            sizes,
            mode: WaveMode::Batches,
            untried: hosts.into(),
            total,
            failure_limit: max_failures.resolve(total),
            succeeded: 0,
            succeeded_in: Vec::new(),
            failed: 0,
            skipped: Arc::from([]),
            failures: Vec::new(),
            opened: 0,
            current: BatchTally::default(),
            in_flight: HashMap::new(),
            behind: HashMap::new(),
            cluster_of: HashMap::new(),
        }
    }

    /// The queue of `request` over `config`'s fleet: its sizes, failure limit and pace, jump
    /// hosts after the hosts behind them, cluster-mates apart. What the engine runs, and what a
    /// planner [simulates](Self::simulate).
    pub fn of(request: &WaveRequest, config: &Config) -> WaveQueue {
        Self::of_with(request, config, &JumpHosts::of(config))
    }

    /// [`Self::of`] with who carries whom as the engine knows it now (detected guests too).
    pub fn of_with(request: &WaveRequest, config: &Config, jumps: &JumpHosts) -> WaveQueue {
        WaveQueue::new(request.hosts.clone(), &request.sizes, request.max_failures)
            .with_mode(request.mode)
            .with_jump_hosts(jumps)
            .with_clusters(config)
    }

    /// Keeps the hosts of one cluster (`cluster = "db"`) from ever being in flight together
    /// and, in batches, from sharing a batch: a host whose cluster-mate holds it back is
    /// passed over for the next untried host, so no slot waits. Call before the first batch.
    pub fn with_clusters(mut self, config: &Config) -> WaveQueue {
        let mut members: HashMap<&Arc<str>, Vec<HostId>> = HashMap::new();
        let selected: HashSet<&HostId> = self.untried.iter().collect();
        for host in &config.hosts {
            if let Some(cluster) = &host.cluster
                && selected.contains(&host.name)
            {
                members.entry(cluster).or_default().push(host.name.clone());
            }
        }
        for (cluster, hosts) in members {
            if hosts.len() > 1 {
                for host in hosts {
                    self.cluster_of.insert(host, cluster.clone());
                }
            }
        }
        self
    }

    pub fn with_mode(mut self, mode: WaveMode) -> WaveQueue {
        self.mode = mode;
        self
    }

    pub fn mode(&self) -> WaveMode {
        self.mode
    }

    /// The hosts not yet tried, in the order they will be (jump hosts last).
    pub fn order(&self) -> Vec<HostId> {
        self.untried.iter().cloned().collect()
    }

    /// Hosts handed out and not yet recorded, whatever their batch.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Orders the selection so that every jump host comes after the selected hosts behind it,
    /// and keeps it out of their batches. Call before the first batch.
    pub fn with_jump_hosts(mut self, jumps: &JumpHosts) -> WaveQueue {
        if jumps.is_empty() {
            return self;
        }
        let selected: Vec<HostId> = self.untried.drain(..).collect();
        let members: HashSet<&HostId> = selected.iter().collect();
        for host in &selected {
            let behind: Vec<HostId> = jumps
                .behind(host)
                .iter()
                .filter(|b| members.contains(b))
                .cloned()
                .collect();
            if !behind.is_empty() {
                self.behind.insert(host.clone(), behind);
            }
        }
        self.untried = jumps.phases(&selected).concat().into();
        self
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn halts(&self, failed: usize) -> bool {
        failed > self.failure_limit
    }

    /// Whether the current batch can still start a host now (it has room and one may join).
    pub fn has_room(&self) -> bool {
        let batch = &self.current;
        !self.halts(self.failed)
            && batch.ran + batch.in_flight < batch.size
            && self.in_flight.len() < batch.size
            && self
                .untried
                .iter()
                .any(|h| self.may_join(h, &batch.started))
    }

    /// Whether a host is still waiting for its turn.
    pub fn has_untried(&self) -> bool {
        !self.untried.is_empty()
    }

    /// Opens the next batch and returns its number (1-based); `None` when every host was tried.
    /// In batches, the runner opens a batch only once the previous one has no host in flight;
    /// rolling, once [`may_open_batch`](Self::may_open_batch) says so.
    pub fn open_batch(&mut self) -> Option<usize> {
        if self.untried.is_empty() {
            return None;
        }
        let size = self.sizes[self.opened.min(self.sizes.len() - 1)];
        self.opened += 1;
        self.current = BatchTally {
            size,
            ..BatchTally::default()
        };
        Some(self.opened)
    }

    /// Rolling: whether the next batch may open now (the window takes its size). The first
    /// batch opens at once; the second once the canary batch is over with a host that
    /// succeeded; any later one once every host of the current batch has started and one of
    /// them succeeded. Never once the wave must halt. Always false in batches.
    pub fn may_open_batch(&self) -> bool {
        if self.mode != WaveMode::Rolling || self.untried.is_empty() || self.halts(self.failed) {
            return false;
        }
        let batch = &self.current;
        match self.opened {
            0 => true,
            1 => self.in_flight.is_empty() && batch.proven(),
            _ => batch.ran + batch.in_flight >= batch.size && batch.proven(),
        }
    }

    /// The next host to start in the current batch: while the batch has room (hosts that ran or
    /// run count against its size, skipped ones do not), fewer hosts than its size are in flight
    /// (rolling, hosts of earlier batches count too) and failures are within the limit. A
    /// jump host whose hosts behind it are in this batch (rolling: in flight or untried) waits;
    /// the first untried host that may join is taken instead.
    pub fn next_host(&mut self) -> Option<HostId> {
        let batch = &self.current;
        if self.halts(self.failed)
            || batch.ran + batch.in_flight >= batch.size
            || self.in_flight.len() >= batch.size
        {
            return None;
        }
        let at = self
            .untried
            .iter()
            .position(|host| self.may_join(host, &batch.started))?;
        let host = self.untried.remove(at)?;
        self.current.in_flight += 1;
        self.in_flight.insert(host.clone(), self.opened);
        if self.keeps_started() {
            self.current.started.insert(host.clone());
        }
        Some(host)
    }

    /// Whether a batch remembers the hosts it started: only when jump hosts or clusters keep
    /// hosts apart.
    fn keeps_started(&self) -> bool {
        !self.behind.is_empty() || !self.cluster_of.is_empty()
    }

    /// Whether `host` may join a batch that has started the hosts in `started`: not while a
    /// cluster-mate is in flight (in batches: nor when one is in this batch), nor when it is
    /// the jump host of one of them. Rolling, batches overlap: not while a host behind it is
    /// in flight or still to come.
    fn may_join(&self, host: &HostId, started: &HashSet<HostId>) -> bool {
        if let Some(cluster) = self.cluster_of.get(host) {
            let mate =
                |other: &HostId| other != host && self.cluster_of.get(other) == Some(cluster);
            if self.in_flight.keys().any(mate)
                || (self.mode == WaveMode::Batches && started.iter().any(mate))
            {
                return false;
            }
        }
        let Some(behind) = self.behind.get(host) else {
            return true;
        };
        match self.mode {
            WaveMode::Batches => !behind.iter().any(|b| started.contains(b)),
            WaveMode::Rolling => behind
                .iter()
                .all(|b| !self.in_flight.contains_key(b) && !self.untried.contains(b)),
        }
    }

    /// Records how a host handed out by [`next_host`](Self::next_host) ended.
    /// A host of an earlier batch (rolling) counts for the wave only: its batch is closed.
    pub fn record(&mut self, host: &HostId, outcome: &Outcome) {
        let of_batch = self.in_flight.remove(host).unwrap_or(self.opened);
        let mut closed = BatchTally::default();
        let batch = if of_batch == self.opened {
            &mut self.current
        } else {
            &mut closed
        };
        batch.in_flight = batch.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Succeeded => {
                batch.ran += 1;
                batch.succeeded += 1;
                self.succeeded += 1;
                self.succeeded_in.push((host.clone(), of_batch));
            }
            Outcome::Failed { error } => {
                batch.ran += 1;
                batch
                    .misses
                    .push((host.clone(), format!("{host} failed: {error}")));
                self.failed += 1;
                let failure = FailedHost {
                    host: host.clone(),
                    error: error.as_str().into(),
                };
                self.failures.push((failure, of_batch));
            }
            Outcome::Skipped { reason } | Outcome::Refused { reason } => {
                batch
                    .misses
                    .push((host.clone(), format!("{host} skipped: {reason}")));
                let skipped = SkippedHost {
                    host: host.clone(),
                    reason: reason.as_str().into(),
                };
                self.skipped = self.skipped.iter().cloned().chain([skipped]).collect();
            }
        }
    }

    /// After a batch: why the wave must stop because too many hosts failed.
    pub fn failure_halt(&self) -> Option<String> {
        self.halts(self.failed).then(|| {
            format!(
                "{} hosts failed, more than max_failures ({})",
                self.failed, self.failure_limit
            )
        })
    }

    /// After a batch: why the wave must stop because the batch proved nothing (no host of it
    /// succeeded) while hosts are still waiting. The last batch needs no proof.
    pub fn canary_halt(&self) -> Option<String> {
        if self.opened == 0 || self.current.proven() || self.untried.is_empty() {
            return None;
        }
        let batch = if self.opened == 1 {
            "canary batch 1".to_string()
        } else {
            format!("batch {}", self.opened)
        };
        let misses: Vec<&str> = self
            .current
            .misses
            .iter()
            .map(|(_, m)| m.as_str())
            .collect();
        let mut how = misses[..misses.len().min(REASON_HOSTS)].join(", ");
        if misses.len() > REASON_HOSTS {
            how.push_str(&format!(", and {} more", misses.len() - REASON_HOSTS));
        }
        Some(format!("{batch} had no host that succeeded ({how})"))
    }

    /// How many batches the wave has if no further host is skipped (skips only ever shorten it).
    pub fn planned_batches(&self) -> usize {
        let batch = &self.current;
        let room = batch.size.saturating_sub(batch.ran + batch.in_flight);
        // Rolling, a jump host only waits for hosts to end, not for a batch of its own.
        if self.keeps_started() && self.mode == WaveMode::Batches {
            return self.planned_with_jump_hosts(room);
        }
        let mut left = self.untried.len().saturating_sub(room);
        let mut batches = self.opened;
        while left > 0 {
            left = left.saturating_sub(self.sizes[batches.min(self.sizes.len() - 1)]);
            batches += 1;
        }
        batches
    }

    /// [`planned_batches`](Self::planned_batches) when jump hosts or cluster-mates wait for later
    /// batches: fills
    /// the batches as [`next_host`](Self::next_host) would if every host ran.
    fn planned_with_jump_hosts(&self, mut room: usize) -> usize {
        let mut started = self.current.started.clone();
        let mut left: Vec<&HostId> = self.untried.iter().collect();
        let mut batches = self.opened;
        loop {
            left.retain(|host| {
                if room == 0 || !self.may_join(host, &started) {
                    return true;
                }
                started.insert((*host).clone());
                room -= 1;
                false
            });
            if left.is_empty() {
                return batches;
            }
            room = self.sizes[batches.min(self.sizes.len() - 1)];
            batches += 1;
            started.clear();
        }
    }

    /// The batches the wave would run from here if every host succeeded: each batch's hosts in
    /// the order they would start, placed exactly as [`next_host`](Self::next_host) places them
    /// (jump hosts after the hosts behind them, cluster-mates never side by side), the hosts of
    /// a batch taken to run at once. For a planner; consumes a copy so the real queue is untouched.
    /// Rolling, a host that waits for a batch-mate to end (its jump host, a cluster-mate) is in
    /// that batch when it has room: the window lets it start as soon as the other ends.
    pub fn simulate(mut self) -> Vec<Vec<HostId>> {
        let mut batches = Vec::new();
        while self.open_batch().is_some() {
            let mut batch = Vec::new();
            loop {
                let started: Vec<HostId> = std::iter::from_fn(|| self.next_host()).collect();
                if started.is_empty() {
                    break;
                }
                for host in &started {
                    self.record(host, &Outcome::Succeeded);
                }
                batch.extend(started);
            }
            if batch.is_empty() {
                // Nothing may start (the wave already halts): nothing more would run.
                break;
            }
            batches.push(batch);
        }
        batches
    }

    /// Applies the operator's choice at the threshold; returns the hosts to retry (each goes
    /// back to the front of the queue, in the order they failed, and a host of the current
    /// batch gives its place in it back, so an unproven batch runs them again).
    pub fn decide(&mut self, choice: ThresholdChoice) -> Vec<HostId> {
        match choice {
            ThresholdChoice::Abort => Vec::new(),
            ThresholdChoice::Continue => {
                self.failure_limit = self.failure_limit.max(self.failed);
                self.current.waived = true;
                Vec::new()
            }
            ThresholdChoice::SkipFailed => {
                let set_aside = self.failures.drain(..).map(|(failed, _)| SkippedHost {
                    host: failed.host,
                    reason: format!("failed ({}); skipped at the threshold", failed.error).into(),
                });
                self.skipped = self.skipped.iter().cloned().chain(set_aside).collect();
                self.failed = 0;
                self.current.waived = true;
                Vec::new()
            }
            ThresholdChoice::RetryFailed => {
                let failures = std::mem::take(&mut self.failures);
                self.failed = 0;
                for (failed, batch) in failures.iter().rev() {
                    self.untried.push_front(failed.host.clone());
                    if *batch == self.opened {
                        self.current.ran = self.current.ran.saturating_sub(1);
                        self.current.misses.retain(|(host, _)| *host != failed.host);
                    }
                }
                failures
                    .into_iter()
                    .map(|(failed, _)| failed.host)
                    .collect()
            }
        }
    }

    /// Where each host stands, for the wave's saved record.
    pub fn stands(&self) -> HashMap<HostId, Stand> {
        let mut stands: HashMap<HostId, Stand> = self
            .untried
            .iter()
            .map(|h| (h.clone(), Stand::Waiting))
            .collect();
        for (host, &batch) in &self.in_flight {
            stands.insert(host.clone(), Stand::InFlight { batch });
        }
        for (host, batch) in &self.succeeded_in {
            stands.insert(host.clone(), Stand::Succeeded { batch: *batch });
        }
        for (failed, batch) in &self.failures {
            let error = failed.error.to_string();
            stands.insert(
                failed.host.clone(),
                Stand::Failed {
                    batch: *batch,
                    error,
                },
            );
        }
        for skipped in self.skipped.iter() {
            let reason = skipped.reason.to_string();
            stands.insert(skipped.host.clone(), Stand::Skipped { reason });
        }
        stands
    }

    /// The queue of a saved wave, resumed where it stood: hosts whose turn is over stay done
    /// (failed ones still count), hosts caught in flight go first, and the batch numbering
    /// goes on ([`SavedWave::next_batch`] is the next one opened). Hosts of the record missing
    /// from this queue's selection (no longer configured) are left out.
    pub fn resumed(mut self, saved: &SavedWave) -> WaveQueue {
        let selected: HashSet<HostId> = self.untried.iter().cloned().collect();
        let mut first = Vec::new();
        let mut skipped = Vec::new();
        for entry in &saved.hosts {
            let host = HostId::from(entry.host.as_str());
            if !selected.contains(&host) {
                continue;
            }
            match &entry.stand {
                Stand::Waiting => {}
                Stand::InFlight { .. } => first.push(host),
                Stand::Succeeded { batch } => {
                    self.succeeded += 1;
                    self.succeeded_in.push((host, *batch));
                }
                Stand::Failed { batch, error } => {
                    self.failed += 1;
                    let failure = FailedHost {
                        host,
                        error: error.as_str().into(),
                    };
                    self.failures.push((failure, *batch));
                }
                Stand::Skipped { reason } => skipped.push(SkippedHost {
                    host,
                    reason: reason.as_str().into(),
                }),
            }
        }
        self.skipped = skipped.into();
        let done: HashSet<HostId> = saved
            .hosts
            .iter()
            .filter(|h| h.stand.is_done())
            .map(|h| HostId::from(h.host.as_str()))
            .collect();
        let rest: Vec<HostId> = self
            .untried
            .drain(..)
            .filter(|h| !done.contains(h) && !first.contains(h))
            .collect();
        self.untried = first.into_iter().chain(rest).collect();
        self.opened = saved.next_batch().saturating_sub(1);
        // The batch before the next one passed the wave's checks when it ran (a wave saved
        // short of that is saved at its threshold, and asks again); it is full, and proven.
        self.current = BatchTally {
            waived: true,
            ..BatchTally::default()
        };
        self
    }

    /// The batch opened last (0 before the first).
    pub fn batch(&self) -> usize {
        self.opened
    }

    /// Copies the wave's counts into `progress`.
    pub fn tally(&self, progress: &mut WaveProgress) {
        progress.succeeded = self.succeeded;
        progress.failed = self.failed;
        progress.skipped = self.skipped.len();
        progress.skipped_hosts = self.skipped.clone();
        progress.failed_hosts = self.failures.iter().map(|(f, _)| f.clone()).collect();
        progress.done = self.succeeded + self.failed + self.skipped.len();
        progress.batches = self.planned_batches();
    }
}

/// What a wave does to each host, and how it paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveRequest {
    pub hosts: Vec<HostId>,
    pub sizes: Vec<BatchSize>,
    /// Batches: the pause between two batches. Rolling: the pause before each batch after the
    /// first opens (the canary batch is over; every host of the last batch has started), while
    /// the hosts in flight run on; no host starts meanwhile.
    pub delay: Duration,
    pub max_failures: FailureLimit,
    pub mode: WaveMode,
    pub dry_run: bool,
    pub allow_removals: bool,
    /// Which updates each host takes.
    pub scope: UpgradeScope,
    /// What the wave does when it would halt (too many failures, an unproven batch): stop, or
    /// pause and wait for the operator's choice.
    pub on_threshold: OnThreshold,
    /// A host whose predicted duration would overrun its maintenance window is deferred to its
    /// next window instead of started late; `false` is the operator's override.
    pub defer_overruns: bool,
}

impl WaveRequest {
    /// The request as a saved wave keeps it (its hosts are in the record's host list).
    pub fn saved(&self) -> SavedRequest {
        SavedRequest {
            sizes: self.sizes.clone(),
            delay: self.delay,
            max_failures: self.max_failures,
            mode: self.mode,
            dry_run: self.dry_run,
            allow_removals: self.allow_removals,
            scope: self.scope.clone(),
            on_threshold: self.on_threshold,
            defer_overruns: self.defer_overruns,
        }
    }

    /// The request of a saved wave, over `hosts`.
    pub fn from_saved(saved: &SavedRequest, hosts: Vec<HostId>) -> WaveRequest {
        WaveRequest {
            hosts,
            sizes: saved.sizes.clone(),
            delay: saved.delay,
            max_failures: saved.max_failures,
            mode: saved.mode,
            dry_run: saved.dry_run,
            allow_removals: saved.allow_removals,
            scope: saved.scope.clone(),
            on_threshold: saved.on_threshold,
            defer_overruns: saved.defer_overruns,
        }
    }
}

/// The engine's grip on a running wave.
#[derive(Debug)]
pub(super) struct WaveControl {
    pub id: u64,
    pub paused: watch::Sender<bool>,
    pub abort: CancellationToken,
    /// Cancelled by the runner when it ends.
    pub finished: CancellationToken,
    /// The operator's choice at the threshold; taken only while `at_threshold`.
    pub decide: mpsc::Sender<ThresholdChoice>,
    /// Set by the runner while it waits at its threshold; the first choice clears it.
    pub at_threshold: Arc<AtomicBool>,
}

impl WaveControl {
    /// Hands the runner the operator's choice: once, and only while it waits for one.
    pub(super) fn decide(&self, choice: ThresholdChoice) -> bool {
        if self
            .at_threshold
            .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        // Room for one choice, and only one is let through per threshold: this cannot be full;
        // closed means the runner ended meanwhile, which its last progress event says.
        let _ = self.decide.try_send(choice);
        true
    }
}

pub(super) struct WaveRunner {
    pub id: u64,
    pub queue: WaveQueue,
    /// The handle of every selected host.
    pub handles: HashMap<HostId, HostHandle>,
    pub request: WaveRequest,
    /// Most hosts pre-downloading at once (`[fleet] download_concurrency`).
    pub download_concurrency: usize,
    pub events: super::hub::Bus,
    pub audit: AuditSink,
    pub paused: watch::Receiver<bool>,
    pub abort: CancellationToken,
    pub finished: CancellationToken,
    /// The engine's root token: shutting down stops the wave like an abort.
    pub cancel: CancellationToken,
    pub decisions: mpsc::Receiver<ThresholdChoice>,
    pub at_threshold: Arc<AtomicBool>,
    /// When the wave first started (kept across a resume).
    pub started_at: DateTime<Utc>,
    /// Each selected host's config digest, for the record's staleness check.
    pub digests: BTreeMap<String, String>,
    /// Set for a resumed wave: no host starts before the engine's reattach is done.
    pub reattached: Option<watch::Receiver<usize>>,
    /// Set for a wave resumed at its threshold: the reason it paused, to ask again first.
    pub ask_first: Option<String>,
    /// A host finished since the record was last saved.
    pub unsaved: bool,
    /// Why the wave waits at its threshold, while it does.
    pub threshold_reason: Option<String>,
}

/// What the wave does once its hosts in flight have ended.
enum Verdict {
    /// Go on (next batch, or more hosts of the window).
    Go,
    /// Retried hosts take their place again in the current batch.
    RunAgain,
    Stop(Halt),
}

/// Why a wave stopped early.
enum Halt {
    Aborted,
    Halted(String),
}

/// What keeps a rolling wave from starting hosts, besides the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Nothing: whatever may start has started.
    Nothing,
    Paused,
    /// The delay before the next batch runs until then.
    Delay(Instant),
}

/// A host's answer to its wave step.
type Answer = BoxFuture<'static, (HostId, Outcome)>;

impl WaveRunner {
    pub(super) async fn run(mut self) {
        let mut progress = WaveProgress {
            wave_id: self.id,
            status: WaveStatus::Started,
            batch: 0,
            batches: 0,
            done: 0,
            succeeded: 0,
            failed: 0,
            skipped: 0,
            total: self.queue.total(),
            in_flight: Vec::new(),
            reason: None,
            skipped_hosts: Arc::from([]),
            failed_hosts: Arc::from([]),
        };
        self.queue.tally(&mut progress);
        let detail = format!(
            "{} hosts in {} batches{}{}",
            progress.total,
            progress.batches,
            match self.queue.mode() {
                WaveMode::Rolling => ", rolling",
                WaveMode::Batches => "",
            },
            if self.request.dry_run {
                ", dry run"
            } else {
                ""
            }
        );
        let resumed = self.reattached.is_some();
        let verb = if resumed { "resumed" } else { "started" };
        let start = AuditRecord {
            hosts: Some(self.request.hosts.iter().map(|h| h.to_string()).collect()),
            options: serde_json::to_value(self.request.saved()).ok(),
            ..AuditRecord::new("wave_start", None, verb, Some(&detail))
        };
        self.audit.record(start.in_wave(Some(&self.key()))).await;
        progress.batch = self.queue.batch();
        self.emit(&progress).await;
        let halt = match self.prelude(&mut progress).await {
            Some(halt) => Some(halt),
            None => self.wave(&mut progress).await,
        };
        progress.in_flight.clear();
        let shut_down = self.cancel.is_cancelled() && !self.abort.is_cancelled();
        if halt.is_some() && shut_down {
            // tendhost stops, the wave does not end: its record stays, to be resumed.
            self.save().await;
        } else {
            self.events.emit(Event::WaveSaved(None)).await;
            self.persist().await;
        }
        let (status, result) = match halt {
            None => (WaveStatus::Finished, "finished".to_string()),
            Some(Halt::Aborted) if shut_down => {
                (WaveStatus::Aborted, "interrupted; resumable".to_string())
            }
            Some(Halt::Aborted) => (WaveStatus::Aborted, "aborted".to_string()),
            Some(Halt::Halted(reason)) => {
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

    /// Before any host starts: a resumed wave waits for the engine's reattach of the jobs an
    /// earlier run left (so an upgrade that finished meanwhile is not redone, and one that runs
    /// is followed first), the wave's record is saved, and a wave saved at its threshold asks
    /// again. `Some` when the wave stops there.
    async fn prelude(&mut self, progress: &mut WaveProgress) -> Option<Halt> {
        if let Some(mut reattached) = self.reattached.take() {
            tokio::select! {
                // Gone only with the engine, which the cancel branch sees too.
                _ = reattached.wait_for(|left| *left == 0) => {}
                () = self.abort.cancelled() => return Some(Halt::Aborted),
                () = self.cancel.cancelled() => return Some(Halt::Aborted),
            }
        }
        self.save().await;
        let reason = self.ask_first.take()?;
        match self.ask(progress, reason).await {
            Verdict::Stop(halt) => Some(halt),
            Verdict::Go | Verdict::RunAgain => None,
        }
    }

    /// Runs the batches (or the window) with the pre-downloads beside them.
    async fn wave(&mut self, progress: &mut WaveProgress) -> Option<Halt> {
        // A dry run changes nothing, downloads included.
        let downloads = (!self.request.dry_run)
            .then(|| Downloads::new(self.queue.order(), self.request.scope.clone()));
        // Stops the downloads once the wave is over (or aborted): nothing needs them then.
        let no_more = self.abort.child_token();
        let fetching = downloads.clone().map(|downloads| {
            downloads.run(
                self.handles.clone(),
                self.id,
                self.key().into(),
                self.download_concurrency,
                no_more.clone(),
            )
        });
        let waving = async {
            let halt = match self.queue.mode() {
                WaveMode::Batches => self.run_batches(progress, downloads.as_ref()).await,
                WaveMode::Rolling => self.run_rolling(progress, downloads.as_ref()).await,
            };
            no_more.cancel();
            halt
        };
        match fetching {
            Some(fetching) => tokio::join!(waving, fetching).0,
            None => waving.await,
        }
    }

    /// The wave's record as it stands now.
    fn record(&self) -> SavedWave {
        let stands = self.queue.stands();
        let hosts = self
            .request
            .hosts
            .iter()
            .map(|host| SavedWaveHost {
                host: host.to_string(),
                stand: stands.get(host).cloned().unwrap_or(Stand::Waiting),
            })
            .collect();
        SavedWave {
            id: self.id,
            started_at: self.started_at,
            request: self.request.saved(),
            hosts,
            batch: self.queue.batch(),
            status: if self.threshold_reason.is_some() {
                SavedStatus::Threshold
            } else {
                SavedStatus::Running
            },
            reason: self.threshold_reason.clone(),
            digests: self.digests.clone(),
        }
    }

    /// Hands the record to the hub and waits until it is on disk: called before any host
    /// starts after another finished, so a resumed wave never redoes a finished host.
    async fn save(&mut self) {
        let record = Arc::new(self.record());
        self.events.emit(Event::WaveSaved(Some(record))).await;
        self.persist().await;
        self.unsaved = false;
    }

    async fn persist(&self) {
        if let Err(e) = self.events.persist().await {
            // The wave goes on; a resume after a crash may redo the hosts since the last save.
            tracing::warn!(wave = self.id, "saving the wave's record: {e}");
        }
    }

    async fn run_batches(
        &mut self,
        progress: &mut WaveProgress,
        downloads: Option<&Downloads>,
    ) -> Option<Halt> {
        while self.queue.has_untried() {
            if self.wait_while_paused(progress).await {
                return Some(Halt::Aborted);
            }
            let batch = self.queue.open_batch()?;
            progress.batch = batch;
            loop {
                progress.status = WaveStatus::Running;
                self.run_batch(progress, downloads).await;
                match self.verdict(progress).await {
                    Verdict::Go => break,
                    Verdict::RunAgain => {}
                    Verdict::Stop(halt) => return Some(halt),
                }
            }
            if self.queue.has_untried() && !self.request.delay.is_zero() {
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

    /// Runs the open batch: starts as many hosts as it holds, collects the answers as they
    /// come, and starts the next untried host for each one that did not run.
    async fn run_batch(&mut self, progress: &mut WaveProgress, downloads: Option<&Downloads>) {
        let mut answers = FuturesUnordered::new();
        loop {
            if self.unsaved && !self.stopping() && self.queue.has_room() {
                self.save().await;
            }
            while !self.stopping()
                && let Some(host) = self.queue.next_host()
            {
                progress.in_flight.push(host.clone());
                answers.push(self.ask_host(host, downloads));
            }
            self.queue.tally(progress);
            self.emit(progress).await;
            let Some((host, outcome)) = answers.next().await else {
                return;
            };
            self.host_finished(progress, host, outcome).await;
        }
    }

    /// Runs the wave with a window: the canary batch first, on its own; then hosts start as
    /// others finish, never more in flight than the current batch size, and each later batch
    /// opens once the one before has all its hosts started and one succeeded (after `delay`).
    /// Pausing holds new starts; the hosts in flight finish.
    async fn run_rolling(
        &mut self,
        progress: &mut WaveProgress,
        downloads: Option<&Downloads>,
    ) -> Option<Halt> {
        let mut answers: FuturesUnordered<Answer> = FuturesUnordered::new();
        let mut opens_at = None;
        let mut pause_gone = false;
        loop {
            self.roll(
                progress,
                &mut answers,
                &mut opens_at,
                &mut pause_gone,
                downloads,
            )
            .await;
            match self.verdict(progress).await {
                Verdict::Go | Verdict::RunAgain => {}
                Verdict::Stop(halt) => return Some(halt),
            }
            if !self.queue.has_untried() {
                return None;
            }
            if !self.queue.may_open_batch() && !self.queue.has_room() {
                // The queue always leaves a host to start, or a reason not to; belt and braces.
                return Some(Halt::Halted("no further host could start".to_string()));
            }
        }
    }

    /// Rolling: starts hosts as the queue allows until none is in flight and none may start.
    async fn roll(
        &mut self,
        progress: &mut WaveProgress,
        answers: &mut FuturesUnordered<Answer>,
        opens_at: &mut Option<Instant>,
        pause_gone: &mut bool,
        downloads: Option<&Downloads>,
    ) {
        loop {
            if self.unsaved
                && !self.stopping()
                && (self.queue.has_room() || self.queue.may_open_batch())
            {
                self.save().await;
            }
            let hold = self.start_rolling(progress, answers, opens_at, downloads);
            self.queue.tally(progress);
            self.emit(progress).await;
            let stopping = self.stopping();
            if answers.is_empty() && (stopping || hold == Hold::Nothing) {
                break;
            }
            let delay_until = match hold {
                Hold::Delay(at) => at,
                // Never reached: the branch below is disabled without a delay.
                Hold::Nothing | Hold::Paused => Instant::now(),
            };
            // Every branch is cancel-safe (`next` on the set, `changed`, `cancelled`, `sleep`);
            // the stop branches are disabled once stopping, so they cannot spin.
            tokio::select! {
                Some((host, outcome)) = answers.next(), if !answers.is_empty() => {
                    self.host_finished(progress, host, outcome).await;
                }
                () = tokio::time::sleep_until(delay_until), if matches!(hold, Hold::Delay(_)) => {}
                changed = self.paused.changed(), if !*pause_gone && !stopping => {
                    // The sender goes only with the engine: no pause can come any more.
                    *pause_gone = changed.is_err();
                }
                () = self.abort.cancelled(), if !stopping => {}
                () = self.cancel.cancelled(), if !stopping => {}
            }
        }
    }

    /// Once no host is in flight: whether the wave must stop (too many failures, a batch that
    /// proved nothing, an abort) and, with `on_threshold = "pause"`, what the operator says.
    async fn verdict(&mut self, progress: &mut WaveProgress) -> Verdict {
        let reason = match self.queue.failure_halt() {
            Some(reason) => reason,
            None if self.stopping() => return Verdict::Stop(Halt::Aborted),
            // Checked after an abort: hosts skipped because of it prove nothing either way.
            None => match self.queue.canary_halt() {
                Some(reason) => reason,
                None => return Verdict::Go,
            },
        };
        if self.request.on_threshold == OnThreshold::Abort || self.stopping() {
            return Verdict::Stop(Halt::Halted(reason));
        }
        self.ask(progress, reason).await
    }

    /// Pauses at the threshold for `reason` and applies the operator's choice.
    async fn ask(&mut self, progress: &mut WaveProgress, reason: String) -> Verdict {
        self.threshold_reason = Some(reason.clone());
        // Durable before anyone is told: a batch run stops at this event.
        self.save().await;
        progress.status = WaveStatus::Threshold;
        progress.reason = Some(reason.clone());
        progress.in_flight.clear();
        self.queue.tally(progress);
        self.audit("wave_threshold", "paused", &reason).await;
        // Set before the event goes out, so whoever sees it may answer at once.
        self.at_threshold.store(true, Ordering::SeqCst);
        self.emit(progress).await;
        let choice = tokio::select! {
            choice = self.decisions.recv() => choice,
            () = self.abort.cancelled() => None,
            () = self.cancel.cancelled() => None,
        };
        self.at_threshold.store(false, Ordering::SeqCst);
        progress.reason = None;
        let Some(choice) = choice else {
            // Stopped while asking: the record keeps saying it waits at its threshold.
            return Verdict::Stop(Halt::Aborted);
        };
        self.threshold_reason = None;
        let failed: Vec<String> = progress
            .failed_hosts
            .iter()
            .map(|f| f.host.to_string())
            .collect();
        let detail = if failed.is_empty() {
            reason.clone()
        } else {
            format!("{reason}; failed: {}", failed.join(", "))
        };
        self.audit("wave_decision", choice.name(), &detail).await;
        match choice {
            ThresholdChoice::Abort => Verdict::Stop(Halt::Halted(reason)),
            ThresholdChoice::Continue | ThresholdChoice::SkipFailed => {
                self.queue.decide(choice);
                Verdict::Go
            }
            ThresholdChoice::RetryFailed => {
                for host in self.queue.decide(choice) {
                    self.retry(host).await;
                }
                Verdict::RunAgain
            }
        }
    }

    /// Clears a failed host's failure (`JobKind::Retry`) so its next wave step may run; a host
    /// that will not take the retry says why when its step is refused.
    async fn retry(&self, host: HostId) {
        let Some(handle) = self.handles.get(&host) else {
            return;
        };
        let (job, answer) = Job::answered(JobKind::Retry, Origin::Wave(self.id));
        if handle.send(job.in_wave(self.key().into())).await.is_ok() {
            // Dropped only when the supervisor stops: the step then fails saying so.
            let _ = answer.await;
        }
    }

    /// Rolling: opens batches and starts hosts as far as the queue, the pause and the delay
    /// allow; says what holds the rest back.
    fn start_rolling(
        &mut self,
        progress: &mut WaveProgress,
        answers: &mut FuturesUnordered<Answer>,
        opens_at: &mut Option<Instant>,
        downloads: Option<&Downloads>,
    ) -> Hold {
        if self.stopping() {
            return Hold::Nothing;
        }
        if *self.paused.borrow_and_update() {
            progress.status = WaveStatus::Paused;
            return Hold::Paused;
        }
        loop {
            while let Some(host) = self.queue.next_host() {
                progress.in_flight.push(host.clone());
                answers.push(self.ask_host(host, downloads));
            }
            if !self.queue.may_open_batch() {
                progress.status = WaveStatus::Running;
                return Hold::Nothing;
            }
            if progress.batch > 0 && !self.request.delay.is_zero() {
                let at = *opens_at.get_or_insert_with(|| Instant::now() + self.request.delay);
                if Instant::now() < at {
                    progress.status = WaveStatus::Delaying;
                    return Hold::Delay(at);
                }
            }
            *opens_at = None;
            if let Some(batch) = self.queue.open_batch() {
                progress.batch = batch;
            }
            progress.status = WaveStatus::Running;
        }
    }

    /// One host of the wave is done: tell everyone, and count it.
    async fn host_finished(&mut self, progress: &mut WaveProgress, host: HostId, outcome: Outcome) {
        self.events
            .emit(Event::WaveHostFinished {
                wave_id: self.id,
                host: host.clone(),
                outcome: outcome.clone(),
            })
            .await;
        progress.in_flight.retain(|h| *h != host);
        self.unsaved = true;
        let stopped = self.cancel.is_cancelled() && outcome != Outcome::Succeeded;
        self.audit_host(&host, &outcome, stopped).await;
        if stopped {
            // tendhost is stopping: a host that did not succeed was most likely stopped by
            // that, not by itself. It stays in flight in the record, so a resumed wave runs it
            // again (after the reattach of its job, if one runs on).
            return;
        }
        self.queue.record(&host, &outcome);
    }

    /// Asks one host to run the wave's step and waits for its answer: the one place the runner
    /// talks to a host about its turn. First the host's pre-download is dropped if still
    /// queued, or waited for if running (its supervisor would refuse the step as busy). The
    /// future owns what it needs, so a batch can hold many at once.
    fn ask_host(&self, host: HostId, downloads: Option<&Downloads>) -> Answer {
        let handle = self.handles.get(&host).cloned();
        let kind = JobKind::Update {
            dry_run: self.request.dry_run,
            allow_removals: self.request.allow_removals,
        };
        let origin = Origin::Wave(self.id);
        let key: Arc<str> = self.key().into();
        let scope = self.request.scope.clone();
        let defer_overruns = self.request.defer_overruns;
        let stop = self.abort.clone();
        let downloads = downloads.cloned();
        async move {
            let Some(handle) = handle else {
                let error = "unknown host".to_string();
                return (host, Outcome::Failed { error });
            };
            if let Some(downloads) = downloads {
                downloads.claim(&host).await;
            }
            let (job, answer) = Job::answered(kind, origin);
            let command = job
                .stopped_by(stop)
                .scoped(scope)
                .deferring_overruns(defer_overruns)
                .in_wave(key);
            // `send` waits for room in the host's small queue; the supervisor drains it promptly.
            let outcome = match handle.send(command).await {
                Ok(()) => answer.await.unwrap_or_else(|_| Outcome::Failed {
                    error: "the host's supervisor stopped".to_string(),
                }),
                Err(e) => Outcome::Failed {
                    error: e.to_string(),
                },
            };
            (host, outcome)
        }
        .boxed()
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
        self.events.emit(Event::Wave(progress.clone())).await;
    }

    async fn audit(&self, action: &str, result: &str, detail: &str) {
        let record = AuditRecord::new(action, None, result, Some(detail));
        self.audit.record(record.in_wave(Some(&self.key()))).await;
    }

    /// A host's turn is over: a `wave_host` record says how (`succeeded`, `failed`, `skipped`,
    /// `refused`, or `interrupted` when tendhost stopping cut it short), with the reason.
    async fn audit_host(&self, host: &HostId, outcome: &Outcome, stopped: bool) {
        let (result, detail) = match outcome {
            _ if stopped => ("interrupted", None),
            Outcome::Succeeded => ("succeeded", None),
            Outcome::Failed { error } => ("failed", Some(error.as_str())),
            Outcome::Skipped { reason } => ("skipped", Some(reason.as_str())),
            Outcome::Refused { reason } => ("refused", Some(reason.as_str())),
        };
        let record = AuditRecord::new("wave_host", Some(host), result, detail);
        self.audit.record(record.in_wave(Some(&self.key()))).await;
    }

    /// This wave's name in the audit log.
    fn key(&self) -> String {
        crate::store::audit::wave_key(self.id, self.started_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<HostId> {
        (0..n).map(|i| HostId::from(format!("h{i}"))).collect()
    }

    fn queue(n: usize, sizes: &str, max_failures: FailureLimit) -> WaveQueue {
        WaveQueue::new(
            hosts(n),
            &BatchSize::parse_list(sizes).unwrap(),
            max_failures,
        )
    }

    fn skipped(reason: &str) -> Outcome {
        Outcome::Skipped {
            reason: reason.into(),
        }
    }

    fn failed(error: &str) -> Outcome {
        Outcome::Failed {
            error: error.into(),
        }
    }

    const FAILED_EARLIER: &str = "cannot refresh: it failed; retry it first";
    const OUTSIDE: &str = "outside maintenance window 'Sat 02:00-06:00'";

    fn refused_failed_earlier() -> Outcome {
        Outcome::Refused {
            reason: FAILED_EARLIER.into(),
        }
    }

    /// Runs the whole wave as the runner does, every host of a batch at once, each host ending
    /// as `outcome` says. Returns the hosts tried per batch, and why the wave halted, if it did.
    fn run(
        queue: &mut WaveQueue,
        outcome: impl Fn(&str) -> Outcome,
    ) -> (Vec<Vec<HostId>>, Option<String>) {
        let mut batches = Vec::new();
        while let Some(number) = queue.open_batch() {
            assert_eq!(number, batches.len() + 1);
            let mut tried = Vec::new();
            loop {
                let started: Vec<HostId> = std::iter::from_fn(|| queue.next_host()).collect();
                if started.is_empty() {
                    break;
                }
                for host in &started {
                    queue.record(host, &outcome(host));
                }
                tried.extend(started);
            }
            batches.push(tried);
            if let Some(reason) = queue.failure_halt().or_else(|| queue.canary_halt()) {
                return (batches, Some(reason));
            }
        }
        (batches, None)
    }

    fn sizes(text: &str) -> Vec<usize> {
        let mut queue = queue(40, text, FailureLimit::Count(0));
        let (batches, halt) = run(&mut queue, |_| Outcome::Succeeded);
        assert_eq!(halt, None);
        batches.iter().map(Vec::len).collect()
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
        assert_eq!(
            queue(40, "1,5,25%", FailureLimit::Count(0)).planned_batches(),
            6
        );
    }

    #[test]
    fn keeps_selection_order_and_every_host_once() {
        let mut queue = WaveQueue::new(
            hosts(7),
            &[BatchSize::Count(1), BatchSize::Count(3)],
            FailureLimit::Count(0),
        );
        let (batches, _) = run(&mut queue, |_| Outcome::Succeeded);
        let flat: Vec<HostId> = batches.concat();
        assert_eq!(flat, hosts(7));
        assert_eq!(queue.total(), 7);
    }

    #[test]
    fn halts_when_failures_exceed_the_limit() {
        let plan = queue(20, "5", FailureLimit::Count(0));
        assert!(!plan.halts(0));
        assert!(plan.halts(1));
        let plan = queue(20, "5", FailureLimit::Percent(10));
        assert_eq!(plan.failure_limit, 2);
        assert!(!plan.halts(2));
        assert!(plan.halts(3));
        let plan = queue(5, "5", FailureLimit::Percent(10));
        assert_eq!(
            plan.failure_limit, 0,
            "10% of 5 rounds down to no failures allowed"
        );
        let mut plan = queue(20, "5", FailureLimit::Count(1));
        let (batches, halt) = run(&mut plan, |h| match h {
            "h3" | "h7" => failed("dpkg"),
            _ => Outcome::Succeeded,
        });
        assert_eq!(batches.len(), 2);
        assert_eq!(
            halt.as_deref(),
            Some("2 hosts failed, more than max_failures (1)")
        );
    }

    #[test]
    fn empty_selection_has_no_batches() {
        let mut plan = queue(0, "25%", FailureLimit::Count(0));
        assert_eq!(plan.planned_batches(), 0);
        assert_eq!(plan.open_batch(), None);
    }

    #[test]
    fn a_canary_that_did_not_run_is_replaced_by_the_next_untried_host() {
        let mut queue = queue(40, "1,5,25%", FailureLimit::Count(0));
        let (batches, halt) = run(&mut queue, |h| match h {
            "h0" => refused_failed_earlier(),
            "h1" => skipped(OUTSIDE),
            "h4" => skipped("busy (update)"),
            _ => Outcome::Succeeded,
        });
        assert_eq!(halt, None);
        assert_eq!(batches[0], hosts(3), "h2 became the canary");
        assert_eq!(
            batches[1],
            hosts(9)[3..].to_vec(),
            "five hosts ran in batch 2, h4 replaced by h8"
        );
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 6, 10, 10, 10, 1]);
        assert_eq!(batches.concat(), hosts(40));
        let names: Vec<(&str, &str)> = queue
            .skipped
            .iter()
            .map(|s| (&*s.host, &*s.reason))
            .collect();
        assert_eq!(
            names,
            [
                ("h0", FAILED_EARLIER),
                ("h1", OUTSIDE),
                ("h4", "busy (update)"),
            ]
        );
        let mut progress = WaveProgress {
            wave_id: 1,
            status: WaveStatus::Finished,
            batch: 6,
            batches: 0,
            done: 0,
            succeeded: 0,
            failed: 0,
            skipped: 0,
            total: 40,
            in_flight: Vec::new(),
            reason: None,
            skipped_hosts: Arc::from([]),
            failed_hosts: Arc::from([]),
        };
        queue.tally(&mut progress);
        assert_eq!(
            (progress.done, progress.succeeded, progress.skipped),
            (40, 37, 3)
        );
        assert_eq!(progress.skipped_hosts.len(), 3);
        assert_eq!(progress.batches, 6);
    }

    #[test]
    fn the_batch_size_caps_hosts_in_flight_while_replacing() {
        let mut queue = queue(20, "5", FailureLimit::Count(5));
        queue.open_batch();
        let first: Vec<HostId> = std::iter::from_fn(|| queue.next_host()).collect();
        assert_eq!(first, hosts(5));
        queue.record(&first[0], &skipped("outside its window"));
        assert_eq!(queue.next_host().as_deref(), Some("h5"), "one replacement");
        assert_eq!(queue.next_host(), None, "five in flight again");
        queue.record(&first[1], &Outcome::Succeeded);
        queue.record(&first[2], &failed("dpkg"));
        assert_eq!(queue.next_host(), None, "hosts that ran use up the batch");
        for host in &first[3..] {
            queue.record(host, &Outcome::Succeeded);
        }
        queue.record(&"h5".into(), &Outcome::Succeeded);
        assert_eq!(queue.next_host(), None);
        assert_eq!(queue.open_batch(), Some(2));
        assert_eq!(queue.next_host().as_deref(), Some("h6"));
    }

    #[test]
    fn an_exhausted_selection_runs_the_batch_with_what_it_has() {
        let mut queue = queue(4, "1,100%", FailureLimit::Count(0));
        let (batches, halt) = run(&mut queue, |h| match h {
            "h0" => Outcome::Succeeded,
            _ => skipped("outside its window"),
        });
        assert_eq!(batches, vec![hosts(1), hosts(4)[1..].to_vec()]);
        assert_eq!(halt, None, "nothing is left for the last batch to protect");
        assert_eq!(queue.planned_batches(), 2);
        // Every candidate skipped: the canary batch ran with nobody, and nobody is left.
        let mut queue = self::queue(3, "1,100%", FailureLimit::Count(0));
        let (batches, halt) = run(&mut queue, |_| skipped("outside its window"));
        assert_eq!(batches, vec![hosts(3)]);
        assert_eq!(halt, None);
    }

    #[test]
    fn a_batch_without_a_success_halts_the_wave_before_the_next() {
        let mut queue = queue(6, "1,100%", FailureLimit::Count(5));
        let (batches, halt) = run(&mut queue, |h| match h {
            "h0" => refused_failed_earlier(),
            "h1" => skipped(OUTSIDE),
            "h2" => failed("upgrade: dpkg returned an error code (1)"),
            _ => Outcome::Succeeded,
        });
        assert_eq!(batches, vec![hosts(3)], "batch 2 never opened");
        assert_eq!(
            halt.as_deref(),
            Some(
                "canary batch 1 had no host that succeeded (h0 skipped: cannot refresh: it failed; \
                 retry it first, h1 skipped: outside maintenance window 'Sat 02:00-06:00', \
                 h2 failed: upgrade: dpkg returned an error code (1))"
            )
        );
        assert!(queue.has_untried());

        let mut queue = self::queue(20, "1,2", FailureLimit::Count(10));
        let (batches, halt) = run(&mut queue, |h| match h {
            "h0" => Outcome::Succeeded,
            _ => failed("dpkg"),
        });
        assert_eq!(batches.len(), 2);
        assert_eq!(
            halt.as_deref(),
            Some("batch 2 had no host that succeeded (h1 failed: dpkg, h2 failed: dpkg)")
        );
    }

    #[test]
    fn a_halt_reason_names_five_hosts_then_counts_the_rest() {
        let mut queue = queue(10, "1,100%", FailureLimit::Count(5));
        let (_, halt) = run(&mut queue, |h| match h {
            "h7" => failed("pre-check"),
            _ => skipped("busy"),
        });
        assert_eq!(
            halt.as_deref(),
            Some(
                "canary batch 1 had no host that succeeded (h0 skipped: busy, h1 skipped: busy, \
                 h2 skipped: busy, h3 skipped: busy, h4 skipped: busy, and 3 more)"
            )
        );
    }

    #[test]
    fn failures_past_the_limit_stop_replacements() {
        let mut queue = queue(10, "3", FailureLimit::Count(0));
        queue.open_batch();
        let first: Vec<HostId> = std::iter::from_fn(|| queue.next_host()).collect();
        queue.record(&first[0], &failed("dpkg"));
        queue.record(&first[1], &skipped("busy"));
        assert_eq!(
            queue.next_host(),
            None,
            "no host starts once the wave must halt"
        );
        assert!(queue.failure_halt().is_some());
    }

    #[test]
    fn skips_shorten_the_planned_batches() {
        let mut queue = queue(40, "1,5,25%", FailureLimit::Count(0));
        queue.open_batch();
        for host in hosts(10) {
            assert_eq!(queue.next_host(), Some(host.clone()));
            queue.record(&host, &skipped("outside its window"));
        }
        assert_eq!(queue.next_host().as_deref(), Some("h10"));
        // 29 hosts are left after the canary: 5, 10, 10 and 4.
        assert_eq!(queue.planned_batches(), 5);
    }

    /// A queue over `selection` of a config where each `(host, jump)` pair reaches `host` through
    /// `jump`; every other host of `selection` stands alone.
    fn jump_queue(
        selection: &[&str],
        routes: &[(&str, &str)],
        sizes: &str,
        max_failures: FailureLimit,
    ) -> WaveQueue {
        carried_queue(selection, routes, "proxy_jump", sizes, max_failures)
    }

    /// A queue over `selection` where each `(host, carrier)` of `edges` is written as `key =
    /// carrier` (`proxy_jump` or `runs_on`).
    fn carried_queue(
        selection: &[&str],
        edges: &[(&str, &str)],
        key: &str,
        sizes: &str,
        max_failures: FailureLimit,
    ) -> WaveQueue {
        let mut text = String::new();
        for (i, name) in selection.iter().enumerate() {
            text.push_str(&format!(
                "[[host]]\nname = \"{name}\"\naddr = \"10.0.0.{}\"\n",
                i + 1
            ));
            if let Some((_, carrier)) = edges.iter().find(|(host, _)| host == name) {
                text.push_str(&format!("{key} = \"{carrier}\"\n"));
            }
        }
        let config = crate::config::Config::from_str("t.toml", &text).unwrap();
        let hosts = selection.iter().map(|h| HostId::from(*h)).collect();
        WaveQueue::new(hosts, &BatchSize::parse_list(sizes).unwrap(), max_failures)
            .with_jump_hosts(&JumpHosts::of(&config))
    }

    fn names(batches: &[Vec<HostId>]) -> Vec<Vec<&str>> {
        batches
            .iter()
            .map(|b| b.iter().map(|h| &**h).collect())
            .collect()
    }

    #[test]
    fn a_hypervisor_goes_after_its_guests_in_any_wave() {
        let selection = ["pve1", "vm1", "ct2", "other"];
        let guests = [("vm1", "pve1"), ("ct2", "pve1")];
        let mut queue = carried_queue(
            &selection,
            &guests,
            "runs_on",
            "100%",
            FailureLimit::Count(0),
        );
        let (batches, halt) = run(&mut queue, |_| Outcome::Succeeded);
        assert_eq!(halt, None);
        assert_eq!(
            names(&batches),
            [vec!["vm1", "ct2", "other"], vec!["pve1"]],
            "even one batch of everything keeps the hypervisor apart, after its guests"
        );
    }

    #[test]
    fn a_jump_host_goes_after_the_hosts_behind_it_and_never_beside_them() {
        let selection = ["bastion", "a", "b", "c", "d"];
        let routes = [("a", "bastion"), ("b", "bastion")];
        let mut queue = jump_queue(&selection, &routes, "1,100%", FailureLimit::Count(0));
        assert_eq!(
            queue.planned_batches(),
            3,
            "bastion needs a batch of its own"
        );
        let (batches, halt) = run(&mut queue, |_| Outcome::Succeeded);
        assert_eq!(halt, None);
        assert_eq!(
            names(&batches),
            [vec!["a"], vec!["b", "c", "d"], vec!["bastion"]],
            "a became the canary; bastion waited for the batch after b's"
        );

        // A jump host joins a batch holding none of the hosts behind it.
        let mut queue = jump_queue(&selection, &routes, "2", FailureLimit::Count(0));
        assert_eq!(queue.planned_batches(), 3);
        let (batches, _) = run(&mut queue, |_| Outcome::Succeeded);
        assert_eq!(
            names(&batches),
            [vec!["a", "b"], vec!["c", "d"], vec!["bastion"]]
        );
        let mut queue = jump_queue(
            &["bastion", "a", "b"],
            &routes[..1],
            "2",
            FailureLimit::Count(0),
        );
        let (batches, _) = run(&mut queue, |_| Outcome::Succeeded);
        assert_eq!(names(&batches), [vec!["a", "b"], vec!["bastion"]]);
        let mut queue = jump_queue(
            &["bastion", "a", "b", "c"],
            &routes[..1],
            "1,2",
            FailureLimit::Count(0),
        );
        let (batches, _) = run(&mut queue, |_| Outcome::Succeeded);
        assert_eq!(
            names(&batches),
            [vec!["a"], vec!["b", "c"], vec!["bastion"]]
        );
        let mut queue = jump_queue(
            &["bastion", "a", "b"],
            &routes[..1],
            "1,2",
            FailureLimit::Count(0),
        );
        let (batches, _) = run(&mut queue, |_| Outcome::Succeeded);
        assert_eq!(
            names(&batches),
            [vec!["a"], vec!["b", "bastion"]],
            "a ran in an earlier batch: bastion may join b"
        );
    }

    #[test]
    fn a_waiting_jump_host_lets_the_next_one_take_its_place() {
        // gw-2 carries y, which runs in batch 2; gw-1 carries x, done in batch 1.
        let mut queue = jump_queue(
            &["gw-2", "gw-1", "x", "y"],
            &[("x", "gw-1"), ("y", "gw-2")],
            "1,2",
            FailureLimit::Count(0),
        );
        assert_eq!(queue.planned_batches(), 3);
        let (batches, _) = run(&mut queue, |_| Outcome::Succeeded);
        assert_eq!(
            names(&batches),
            [vec!["x"], vec!["y", "gw-1"], vec!["gw-2"]]
        );
    }

    #[test]
    fn the_canary_rule_still_stops_a_wave_before_its_jump_host() {
        let mut queue = jump_queue(
            &["bastion", "a", "b"],
            &[("a", "bastion"), ("b", "bastion")],
            "1,100%",
            FailureLimit::Count(5),
        );
        let (batches, halt) = run(&mut queue, |h| match h {
            "a" => failed("dpkg"),
            _ => Outcome::Succeeded,
        });
        assert_eq!(names(&batches), [vec!["a"]]);
        assert_eq!(
            halt.as_deref(),
            Some("canary batch 1 had no host that succeeded (a failed: dpkg)")
        );
        // Skipped hosts behind it still keep it out of their batch.
        let mut queue = jump_queue(
            &["bastion", "a", "b"],
            &[("a", "bastion"), ("b", "bastion")],
            "2",
            FailureLimit::Count(5),
        );
        let (batches, _) = run(&mut queue, |h| match h {
            "a" => skipped(OUTSIDE),
            _ => Outcome::Succeeded,
        });
        assert_eq!(names(&batches), [vec!["a", "b"], vec!["bastion"]]);
    }

    #[test]
    fn simulate_places_hosts_as_the_wave_would_if_all_succeed() {
        assert_eq!(
            queue(7, "1,3", FailureLimit::Count(0)).simulate(),
            vec![hosts(1), hosts(4)[1..].to_vec(), hosts(7)[4..].to_vec()]
        );
        let selection = ["bastion", "a", "b", "c", "d"];
        let routes = [("a", "bastion"), ("b", "bastion")];
        let queue = jump_queue(&selection, &routes, "1,100%", FailureLimit::Count(0));
        assert_eq!(
            names(&queue.clone().simulate()),
            [vec!["a"], vec!["b", "c", "d"], vec!["bastion"]]
        );
        assert_eq!(queue.planned_batches(), 3, "simulate works on its own copy");
        let rolling = jump_queue(&selection, &routes, "1,100%", FailureLimit::Count(0))
            .with_mode(WaveMode::Rolling);
        assert_eq!(
            names(&rolling.simulate()),
            [vec!["a"], vec!["b", "c", "d", "bastion"]],
            "rolling, bastion starts in batch 2's window once b has ended"
        );
        assert!(
            self::queue(0, "1", FailureLimit::Count(0))
                .simulate()
                .is_empty()
        );
    }

    /// A queue over `h0..h{n}` where host `i` is in cluster `clusters[i]` ("" for none).
    fn cluster_queue(clusters: &[&str], sizes: &str, mode: WaveMode) -> WaveQueue {
        let mut text = String::new();
        for (i, cluster) in clusters.iter().enumerate() {
            text.push_str(&format!(
                "[[host]]\nname = \"h{i}\"\naddr = \"10.0.0.{}\"\n",
                i + 1
            ));
            if !cluster.is_empty() {
                text.push_str(&format!("cluster = \"{cluster}\"\n"));
            }
        }
        let config = crate::config::Config::from_str("t.toml", &text).unwrap();
        let request = WaveRequest {
            hosts: hosts(clusters.len()),
            sizes: BatchSize::parse_list(sizes).unwrap(),
            delay: Duration::ZERO,
            max_failures: FailureLimit::Count(0),
            mode,
            dry_run: false,
            allow_removals: false,
            scope: UpgradeScope::default(),
            on_threshold: OnThreshold::Abort,
            defer_overruns: true,
        };
        WaveQueue::of(&request, &config)
    }

    #[test]
    fn cluster_mates_never_share_a_batch_and_the_next_host_takes_the_slot() {
        let clusters = ["db", "db", "", "db", "", ""];
        let mut queue = cluster_queue(&clusters, "1,3", WaveMode::Batches);
        assert_eq!(queue.planned_batches(), 3);
        assert_eq!(
            names(&queue.clone().simulate()),
            [vec!["h0"], vec!["h1", "h2", "h4"], vec!["h3", "h5"]]
        );
        let (batches, halt) = run(&mut queue, |_| Outcome::Succeeded);
        assert_eq!(halt, None);
        assert_eq!(
            names(&batches),
            [vec!["h0"], vec!["h1", "h2", "h4"], vec!["h3", "h5"]]
        );
        // Rolling: the mate starts as soon as the other has ended, never beside it.
        let mut queue = cluster_queue(&clusters, "1,3", WaveMode::Rolling);
        queue.open_batch();
        assert_eq!(take_all(&mut queue), [HostId::from("h0")]);
        queue.record(&"h0".into(), &Outcome::Succeeded);
        queue.open_batch();
        assert_eq!(names(&[take_all(&mut queue)]), [vec!["h1", "h2", "h4"]]);
        queue.record(&"h2".into(), &Outcome::Succeeded);
        assert!(queue.may_open_batch());
        queue.open_batch();
        assert_eq!(queue.next_host().as_deref(), Some("h5"), "h3 waits for h1");
        assert_eq!(queue.next_host(), None, "three in flight");
        queue.record(&"h4".into(), &Outcome::Succeeded);
        assert_eq!(queue.next_host(), None, "h1 of db still runs");
        queue.record(&"h1".into(), &Outcome::Succeeded);
        assert_eq!(queue.next_host().as_deref(), Some("h3"));
        // A lone host of a cluster is free.
        let queue = cluster_queue(&["db", "", "web"], "3", WaveMode::Batches);
        assert_eq!(names(&queue.simulate()), [vec!["h0", "h1", "h2"]]);
    }

    fn rolling(n: usize, sizes: &str, max_failures: FailureLimit) -> WaveQueue {
        queue(n, sizes, max_failures).with_mode(WaveMode::Rolling)
    }

    fn take_all(queue: &mut WaveQueue) -> Vec<HostId> {
        std::iter::from_fn(|| queue.next_host()).collect()
    }

    #[test]
    fn rolling_keeps_the_canary_batch_a_barrier_then_fills_each_slot_that_frees() {
        let mut queue = rolling(10, "1,3", FailureLimit::Count(5));
        assert!(queue.may_open_batch());
        assert_eq!(queue.open_batch(), Some(1));
        assert_eq!(take_all(&mut queue), hosts(1));
        assert!(!queue.may_open_batch(), "the canary is in flight");
        queue.record(&"h0".into(), &Outcome::Succeeded);
        assert!(queue.may_open_batch());
        assert_eq!(queue.open_batch(), Some(2));
        assert_eq!(take_all(&mut queue), hosts(4)[1..].to_vec());
        queue.record(&"h1".into(), &failed("dpkg"));
        assert_eq!(queue.next_host(), None, "batch 2 has all its hosts");
        assert!(!queue.may_open_batch(), "batch 2 has no success yet");
        queue.record(&"h2".into(), &Outcome::Succeeded);
        assert!(queue.may_open_batch(), "batch 2 proved itself");
        assert_eq!(queue.open_batch(), Some(3));
        assert_eq!(
            take_all(&mut queue),
            hosts(6)[4..].to_vec(),
            "h3 of batch 2 still runs: two slots of three"
        );
        queue.record(&"h3".into(), &Outcome::Succeeded);
        assert_eq!(take_all(&mut queue), [HostId::from("h6")]);
        assert_eq!(queue.in_flight(), 3);
        assert!(!queue.may_open_batch(), "batch 3 has no success yet");
        let mut progress = progress();
        queue.tally(&mut progress);
        assert_eq!((progress.succeeded, progress.failed), (3, 1));
    }

    #[test]
    fn rolling_a_failed_canary_opens_nothing_more() {
        let mut queue = rolling(10, "1,3", FailureLimit::Count(5));
        queue.open_batch();
        assert_eq!(take_all(&mut queue), hosts(1));
        queue.record(&"h0".into(), &failed("dpkg"));
        assert!(!queue.may_open_batch());
        assert_eq!(queue.next_host(), None);
        assert_eq!(
            queue.canary_halt().as_deref(),
            Some("canary batch 1 had no host that succeeded (h0 failed: dpkg)")
        );
        // A skipped canary is replaced, as in batches.
        let mut queue = rolling(10, "1,3", FailureLimit::Count(5));
        queue.open_batch();
        assert_eq!(take_all(&mut queue), hosts(1));
        queue.record(&"h0".into(), &skipped(OUTSIDE));
        assert_eq!(take_all(&mut queue), [HostId::from("h1")]);
    }

    #[test]
    fn rolling_never_opens_a_batch_past_the_failure_limit() {
        let mut queue = rolling(10, "1,3", FailureLimit::Count(0));
        queue.open_batch();
        take_all(&mut queue);
        queue.record(&"h0".into(), &Outcome::Succeeded);
        queue.open_batch();
        assert_eq!(take_all(&mut queue).len(), 3);
        queue.record(&"h2".into(), &Outcome::Succeeded);
        queue.record(&"h1".into(), &failed("dpkg"));
        assert!(!queue.may_open_batch());
        assert_eq!(queue.next_host(), None);
        assert!(queue.failure_halt().is_some());
    }

    #[test]
    fn rolling_a_jump_host_waits_only_for_the_hosts_behind_it() {
        let mut queue = jump_queue(
            &["bastion", "a", "b", "c"],
            &[("a", "bastion")],
            "1,100%",
            FailureLimit::Count(0),
        )
        .with_mode(WaveMode::Rolling);
        queue.open_batch();
        assert_eq!(names(&[take_all(&mut queue)]), [vec!["a"]]);
        queue.record(&"a".into(), &Outcome::Succeeded);
        queue.open_batch();
        assert_eq!(
            names(&[take_all(&mut queue)]),
            [vec!["b", "c", "bastion"]],
            "a is done: bastion may run beside b and c"
        );
        let mut queue = jump_queue(
            &["bastion", "a", "b", "c"],
            &[("a", "bastion"), ("b", "bastion")],
            "1,100%",
            FailureLimit::Count(0),
        )
        .with_mode(WaveMode::Rolling);
        queue.open_batch();
        take_all(&mut queue);
        queue.record(&"a".into(), &Outcome::Succeeded);
        queue.open_batch();
        assert_eq!(names(&[take_all(&mut queue)]), [vec!["b", "c"]]);
        queue.record(&"c".into(), &Outcome::Succeeded);
        assert_eq!(queue.next_host(), None, "b, behind bastion, is in flight");
        queue.record(&"b".into(), &Outcome::Succeeded);
        assert_eq!(queue.next_host().as_deref(), Some("bastion"));
    }

    fn progress() -> WaveProgress {
        WaveProgress {
            wave_id: 1,
            status: WaveStatus::Running,
            batch: 1,
            batches: 0,
            done: 0,
            succeeded: 0,
            failed: 0,
            skipped: 0,
            total: 0,
            in_flight: Vec::new(),
            reason: None,
            skipped_hosts: Arc::from([]),
            failed_hosts: Arc::from([]),
        }
    }
}
