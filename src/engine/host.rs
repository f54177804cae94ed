//! One supervisor task per host: the only writer of that host's state, and in charge of every
//! step it runs.
//!
//! Jobs arrive on the host's own bounded queue ([`HostHandle::try_send`] never waits); the long
//! work runs as a step in the supervisor's `JoinSet`, so the loop keeps answering (and refusing)
//! while an upgrade runs. A step asks for each move and waits for the answer; every move goes
//! through [`HostState::apply`] and leaves as one `Event::StateChanged` carrying the new state,
//! plus an audit record when it changes the host. Everything else a step emits comes through the
//! same channel, so events leave in the order they happened. When a step ends with an error the
//! supervisor decides what it means for the host: a failed read returns it to where it rested, a
//! failed mutation fails it. A step that panics fails the host with the message; the supervisor
//! itself keeps running.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SendError;
use super::bus::{Event, Job, JobKind, Origin, Outcome};
use super::error::Error;
use super::job::Done;
use super::schedule;
use super::step::{JobUpdate, StepContext, StepMsg, StepResult};
use crate::config::{HostConfig, HostId, ManagerChoice};
use crate::errors::chain;
use crate::fleet::{HostState, Refusal, RemoteJob, StateKind, Transition};
use crate::store::audit::{AuditRecord, AuditSink};

/// Jobs waiting for one host. Small: a full queue shows as "busy", it is not a backlog.
const JOB_QUEUE: usize = 8;
/// Messages from the running step. Small: a step waits for its supervisor, not the reverse.
const STEP_QUEUE: usize = 16;
/// How long a step gets to stop on its own at shutdown before it is aborted.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Whether a step of `kind` changes the host, and so holds its cluster's permit: a real update,
/// a reboot, and following a job an earlier run left (it may still be upgrading). Reads, dry
/// runs and downloads change nothing installed and run beside a cluster-mate.
fn holds_cluster(kind: JobKind) -> bool {
    matches!(
        kind,
        JobKind::Update { dry_run: false, .. }
            | JobKind::Reboot
            | JobKind::Reattach
            | JobKind::Repair
            | JobKind::Rollback { dry_run: false }
    )
}

/// The first retry of a periodic refresh that failed, doubled per straight failure up to the
/// refresh interval.
const REFRESH_BACKOFF: Duration = Duration::from_secs(30);

/// The way in to one host. Cheap to clone; when the last clone drops, the supervisor stops.
#[derive(Debug, Clone)]
pub struct HostHandle {
    pub id: HostId,
    jobs: mpsc::Sender<Job>,
}

/// Everything a supervisor shares with the rest of the engine.
#[derive(Clone)]
pub(super) struct HostDeps {
    pub step: StepContext,
    pub events: super::hub::Bus,
    pub audit: AuditSink,
    /// Bounds hosts doing non-wave work at once (`[fleet] concurrency`).
    pub limit: Arc<Semaphore>,
    /// One permit shared by every host of this host's cluster (`cluster = "db"`): held around
    /// every step that changes a host, whoever asked, so no two cluster-mates are ever
    /// changed at once. `None` for a host in no cluster.
    pub cluster: Option<Arc<Semaphore>>,
    pub refresh_interval: Option<Duration>,
    /// How long ago this host was last refreshed (from the snapshot), to place its first refresh.
    pub since_last_refresh: Option<Duration>,
    /// Hosts resolving a job an earlier run left (at start, or after a retry); each counts
    /// itself down when its reattach ends (see `EngineHandle::reattached`).
    pub reattaching: Arc<tokio::sync::watch::Sender<usize>>,
}

impl HostHandle {
    /// Starts the supervisor for `host` in `state` (restored from the snapshot or fresh).
    pub(super) fn spawn(
        host: Arc<HostConfig>,
        state: HostState,
        deps: HostDeps,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> Self {
        let (jobs, incoming) = mpsc::channel(JOB_QUEUE);
        let (to_supervisor, from_steps) = mpsc::channel(STEP_QUEUE);
        let id = host.name.clone();
        let job = deps.step.outstanding.as_deref().cloned();
        let supervisor = HostSupervisor {
            id: id.clone(),
            host,
            state,
            counted_reattach: job.is_some(),
            job,
            jobs: incoming,
            from_steps,
            to_supervisor,
            steps: JoinSet::new(),
            running: None,
            reschedule: None,
            deps,
            cancel,
        };
        tracker.spawn(supervisor.run());
        HostHandle { id, jobs }
    }

    /// Never waits. `Err(Busy)` means the queue is full; callers show it, they do not retry in a
    /// loop.
    pub fn try_send(&self, job: Job) -> Result<(), SendError> {
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Busy,
            mpsc::error::TrySendError::Closed(_) => SendError::Stopped,
        })
    }

    /// Waits for room in the queue (for the wave runner, which must not drop a job).
    pub async fn send(&self, job: Job) -> Result<(), SendError> {
        self.jobs.send(job).await.map_err(|_| SendError::Stopped)
    }
}

/// The job in flight, if any.
struct Running {
    job: Job,
    respond_to: Option<oneshot::Sender<Outcome>>,
}

struct HostSupervisor {
    id: HostId,
    host: Arc<HostConfig>,
    state: HostState,
    /// The detached job of the running step, or one an earlier run left: known from before it
    /// starts until the step that ran it settles (see `remote::job`).
    job: Option<RemoteJob>,
    /// Counted in `deps.reattaching` while a reattach is due or running (from the start when
    /// the snapshot had a job, so no batch run slips past it).
    counted_reattach: bool,
    jobs: mpsc::Receiver<Job>,
    /// Moves and events from the running step. The supervisor holds a sender too, so this never
    /// closes while it runs.
    from_steps: mpsc::Receiver<StepMsg>,
    to_supervisor: mpsc::Sender<StepMsg>,
    steps: JoinSet<StepResult<Done>>,
    running: Option<Running>,
    /// When the periodic refresh should come next, decided when a scheduled refresh ends.
    reschedule: Option<Duration>,
    deps: HostDeps,
    cancel: CancellationToken,
}

impl HostSupervisor {
    async fn run(mut self) {
        let mut refresh = self.deps.refresh_interval.map(|every| {
            let first =
                schedule::first_refresh_delay(&self.id, every, self.deps.since_last_refresh);
            Box::pin(tokio::time::sleep(first))
        });
        // A job an earlier run left comes first: nothing else runs until the host says how it went.
        self.reattach_if_needed();
        loop {
            if let (Some(delay), Some(timer)) = (self.reschedule.take(), refresh.as_mut()) {
                timer.as_mut().reset(tokio::time::Instant::now() + delay);
            }
            // `biased`: what a step sent is handled before its completion, so events leave in
            // the order they happened. Every branch is cancel-safe (`recv`, `join_next`, `sleep`).
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                Some(message) = self.from_steps.recv() => self.handle_step_message(message).await,
                Some(done) = self.steps.join_next() => self.finish_step(done).await,
                job = self.jobs.recv() => match job {
                    Some(job) => self.handle_job(job).await,
                    None => break, // every HostHandle is gone: nobody can reach us
                },
                () = async {
                    match refresh.as_mut() {
                        Some(timer) => timer.await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let (Some(every), Some(timer)) = (self.deps.refresh_interval, refresh.as_mut()) {
                        let next = schedule::next_refresh_delay(every, rand::random::<f64>());
                        timer.as_mut().reset(tokio::time::Instant::now() + next);
                    }
                    self.periodic_refresh().await;
                }
            }
        }
        self.drain_steps().await;
        self.counted_down();
    }

    /// When the periodic refresh comes next after one ended: the interval (with jitter), or
    /// sooner with backoff while reads keep failing.
    fn next_refresh(&self, every: Duration) -> Duration {
        let regular = schedule::next_refresh_delay(every, rand::random::<f64>());
        match &self.state.last_error {
            Some(error) if error.transient => {
                let doublings = error.tries.saturating_sub(1).min(16);
                (REFRESH_BACKOFF * 2u32.pow(doublings)).min(regular)
            }
            _ => regular,
        }
    }

    async fn handle_job(&mut self, mut job: Job) {
        let respond_to = job.respond_to.take();
        let result = match job.kind {
            JobKind::Retry => {
                let retried = self.instant(Transition::Retry, &job).await;
                if retried.is_ok() {
                    self.answer(&job, respond_to, retried).await;
                    self.reattach_if_needed();
                    return;
                }
                retried
            }
            JobKind::Acknowledge => self.instant(Transition::Acknowledge, &job).await,
            _ => match self.admissible(&job) {
                Ok(()) => {
                    self.start(job, respond_to);
                    return;
                }
                Err(refusal) => Err(Error::Refused(refusal)),
            },
        };
        self.answer(&job, respond_to, result).await;
    }

    /// Retry and acknowledge: no remote work, applied at once (unless a step is running).
    async fn instant(&mut self, transition: Transition, job: &Job) -> StepResult<Done> {
        if let Some(running) = &self.running {
            return Err(Error::Refused(busy(&running.job)));
        }
        self.apply(transition).await?;
        if job.kind == JobKind::Acknowledge {
            self.audit("ack", "ok", None).await;
        }
        Ok(Done::Ran)
    }

    /// Whether `job` may start now; the reason when not.
    fn admissible(&self, job: &Job) -> Result<(), Refusal> {
        if let Some(running) = &self.running {
            return Err(busy(&running.job));
        }
        let mut probe = self.state.clone();
        let now = Utc::now();
        match job.kind {
            JobKind::Update { dry_run, .. } => {
                if job.refuses_nothing_to_update()
                    && self.host.manager == ManagerChoice::None
                    && self.host.compose_paths.is_empty()
                {
                    return Err(Refusal(
                        "nothing to update: manager is 'none' and the host has no compose_paths"
                            .into(),
                    ));
                }
                if self.state.kind() == StateKind::WaitingReboot && !dry_run {
                    return probe.apply(Transition::StartReboot, now);
                }
                probe.apply(Transition::Query, now)
            }
            JobKind::Refresh | JobKind::RefreshLists => probe.apply(Transition::Query, now),
            JobKind::Reboot => {
                probe
                    .apply(Transition::StartReboot, now)
                    .map_err(|r| match self.state.kind() {
                        StateKind::Idle | StateKind::PendingUpdates => {
                            Refusal("cannot reboot: no reboot is pending (refresh to check)".into())
                        }
                        _ => r,
                    })?;
                schedule::host_window_allows(&self.host)
                    .map_err(|why| Refusal(format!("cannot reboot: {why}")))
            }
            // A download changes nothing installed and moves no state: any resting host may
            // take one (one waiting for a reboot skips it, having nothing to install).
            JobKind::Download => match self.state.kind() {
                StateKind::Idle | StateKind::PendingUpdates | StateKind::WaitingReboot => Ok(()),
                other => Err(Refusal(format!("cannot download: it is {other}"))),
            },
            // Idempotent: any failed or resting host may take one; a busy one may not.
            JobKind::Repair => {
                if self.host.manager == ManagerChoice::None {
                    return Err(Refusal("nothing to repair: manager is 'none'".into()));
                }
                probe.apply(Transition::StartRepair, now)
            }
            JobKind::Rollback { dry_run } => {
                if self.host.compose_paths.is_empty() {
                    return Err(Refusal(
                        "nothing to roll back: the host has no compose_paths".into(),
                    ));
                }
                if dry_run {
                    // A look changes nothing: any host not busy may take one.
                    return Ok(());
                }
                probe.apply(Transition::StartRollback, now)
            }
            JobKind::Retry | JobKind::Acknowledge | JobKind::Reattach => Ok(()),
        }
    }

    /// Starts a reattach step when a job is on record that no step is following.
    fn reattach_if_needed(&mut self) {
        if self.job.is_some() && self.running.is_none() {
            if !std::mem::replace(&mut self.counted_reattach, true) {
                self.deps.reattaching.send_modify(|left| *left += 1);
            }
            self.start(Job::new(JobKind::Reattach, Origin::Console), None);
        }
    }

    /// Starts `job` as a step; the caller checked that it is admissible.
    fn start(&mut self, job: Job, respond_to: Option<oneshot::Sender<Outcome>>) {
        let step = StepContext {
            supervisor: self.to_supervisor.clone(),
            cancel: self.cancel.child_token(),
            outstanding: self.job.clone().map(Arc::new),
            ..self.deps.step.clone()
        };
        // Wave jobs are bounded by the wave's batch size; everything else by the fleet limit.
        let limit = match job.origin {
            Origin::Wave(_) => None,
            _ => Some(self.deps.limit.clone()),
        };
        let work = Job {
            kind: job.kind,
            origin: job.origin,
            respond_to: None,
            stop: job.stop.clone(),
            scope: job.scope.clone(),
            defer_overruns: job.defer_overruns,
            wave: job.wave.clone(),
            stack: job.stack.clone(),
        };
        let from = self.state.kind();
        let cluster = self
            .deps
            .cluster
            .clone()
            .filter(|_| holds_cluster(work.kind));
        let cluster_name = self.host.cluster.clone();
        self.steps.spawn(async move {
            // Taken before the fleet slot, so a host waiting for its cluster-mate holds no slot.
            let _cluster = match cluster {
                Some(lock) => tokio::select! {
                    // Never closed: acquiring can only succeed.
                    permit = lock.acquire_owned() => permit.ok(),
                    () = step.cancel.cancelled() => {
                        let cluster = cluster_name.as_deref().unwrap_or_default();
                        return Err(Error::Refused(Refusal(format!(
                            "stopped while waiting for another host of cluster '{cluster}'"
                        ))));
                    }
                },
                None => None,
            };
            let _permit = match limit {
                // The semaphore is never closed, so acquiring can only succeed.
                Some(limit) => limit.acquire_owned().await.ok(),
                None => None,
            };
            step.run(work, from).await
        });
        self.running = Some(Running { job, respond_to });
    }

    /// The refresh timer fired: refresh if the host is resting; otherwise skip this round.
    async fn periodic_refresh(&mut self) {
        let job = Job::new(JobKind::Refresh, Origin::Schedule);
        if self.admissible(&job).is_ok() {
            self.start(job, None);
        }
    }

    async fn handle_step_message(&mut self, message: StepMsg) {
        match message {
            StepMsg::Move { transition, reply } => {
                let result = self.apply(transition).await;
                if let Err(refusal) = &result {
                    tracing::error!(host = %self.id, "a step asked for an illegal move: {refusal}");
                }
                // The step waits for this answer; it is gone only if it was aborted.
                let _ = reply.send(result);
            }
            StepMsg::Event(event) => {
                if let Event::Checked { report, .. } = &event {
                    let record = AuditRecord::checks(&self.id, report).in_wave(self.wave());
                    self.deps.audit.record(record).await;
                }
                if let Event::Planned {
                    plan,
                    dry_run: false,
                    ..
                } = &event
                {
                    self.audit_plan(plan).await;
                }
                self.emit(event).await
            }
            StepMsg::Job(update) => self.job_update(update).await,
        }
    }

    /// Keeps the job record and makes each fact about it known: a start is written ahead
    /// (audit log and snapshot, both fsync'd) before the step may start the job.
    async fn job_update(&mut self, update: JobUpdate) {
        match update {
            JobUpdate::Starting { job, reply } => {
                let detail = format!("{} {} ({})", job.id, job.label, job.stage.as_str());
                self.job = Some(job);
                self.emit_job().await;
                let record =
                    AuditRecord::new("job_start", Some(&self.id), "started", Some(&detail))
                        .in_wave(self.wave());
                let audited = self.deps.audit.record_durably(record).await;
                let persisted = self.deps.events.persist().await;
                let _ = reply.send(audited.and(persisted));
            }
            JobUpdate::Progress { offset } => {
                if let Some(job) = self.job.as_mut() {
                    job.offset = offset;
                    self.emit_job().await;
                }
            }
            JobUpdate::Finished { exit } => {
                let Some(job) = self.job.as_mut() else { return };
                job.ended = Some(exit);
                let detail = format!("{} {}", job.id, job.label);
                let result = exit.map_or_else(|| "vanished".to_string(), |c| format!("exit {c}"));
                self.emit_job().await;
                self.audit("job_end", &result, Some(&detail)).await;
            }
        }
    }

    /// Leaves the count of hosts reattaching.
    fn counted_down(&mut self) {
        if std::mem::take(&mut self.counted_reattach) {
            self.deps
                .reattaching
                .send_modify(|left| *left = left.saturating_sub(1));
        }
    }

    async fn emit_job(&self) {
        self.emit(Event::Job {
            host: self.id.clone(),
            job: self.job.clone().map(Arc::new),
        })
        .await;
    }

    async fn apply(&mut self, transition: Transition) -> Result<(), Refusal> {
        let from = self.state.kind();
        let repair = matches!(transition, Transition::StartRepair | Transition::Repaired);
        self.state.apply(transition, Utc::now())?;
        self.after_move_as(from, repair.then_some("repair")).await;
        Ok(())
    }

    /// Announces the new state: one event, one audit record if it mutates.
    async fn after_move(&mut self, from: StateKind) {
        self.after_move_as(from, None).await;
    }

    /// [`after_move`](Self::after_move), audited as `action` when given (a repair's moves
    /// pass through `updating` but are no update).
    async fn after_move_as(&mut self, from: StateKind, action: Option<&'static str>) {
        let to = self.state.kind();
        let reason = self.state.phase.reason();
        // The log file and the console's App log tell the story host by host; failures stand out.
        match (to, reason.as_deref(), &self.state.last_error) {
            (StateKind::Failed, Some(why), _) => {
                tracing::warn!(host = %self.id, "{from} -> {to}: {why}")
            }
            (_, _, Some(error)) if from == StateKind::Querying => {
                tracing::warn!(host = %self.id, "{from} -> {to}: read failed (try {}): {}", error.tries, error.error)
            }
            (_, Some(why), _) => tracing::info!(host = %self.id, "{from} -> {to} ({why})"),
            _ if from == to => {}
            _ => tracing::info!(host = %self.id, "{from} -> {to}"),
        }
        self.emit(Event::StateChanged {
            host: self.id.clone(),
            from,
            to,
            state: Arc::new(self.state.clone()),
        })
        .await;
        if from != to && (from.is_mutating() || to.is_mutating() || from == StateKind::Failed) {
            let action = action.unwrap_or(match (from, to) {
                (StateKind::Failed, StateKind::Idle) => "retry",
                (_, StateKind::Updating) => "update",
                (_, StateKind::Rebooting) => "reboot",
                _ => "state",
            });
            let result = format!("{} -> {}", from.as_str(), to.as_str());
            self.audit(action, &result, reason.as_deref()).await;
        }
    }

    /// A step ended: decide what its result means for the host, then answer the requester.
    async fn finish_step(&mut self, done: Result<StepResult<Done>, JoinError>) {
        let result = match done {
            Ok(result) => result,
            Err(err) if err.is_panic() => Err(Error::Panicked(panic_message(err))),
            Err(_) => Err(Error::Aborted),
        };
        match &result {
            // tendhost stops following a job that runs on: the host stays as it is, job and
            // all, for the next start to pick up.
            Err(error) if error.is_detached() => {}
            Err(error) => self.settle_failure(error).await,
            Ok(_) => {}
        }
        let job_runs_on = result.as_ref().err().is_some_and(Error::keeps_job);
        if !job_runs_on && self.job.take().is_some() {
            self.emit_job().await;
        }
        if let Some(Running { job, respond_to }) = self.running.take() {
            if job.kind == JobKind::Reattach {
                self.counted_down();
            }
            if job.origin == Origin::Schedule {
                self.reschedule = self
                    .deps
                    .refresh_interval
                    .map(|every| self.next_refresh(every));
            }
            self.answer(&job, respond_to, result).await;
        }
    }

    /// The one place a step's error turns into the host's state.
    async fn settle_failure(&mut self, error: &Error) {
        let text: Arc<str> = chain(error).into();
        let from = self.state.kind();
        match (error, from) {
            // Refused: nothing ran after the refusal, so nothing changed on the host.
            (Error::Refused(_), _) => {}
            (Error::Panicked(_) | Error::Aborted, _) => {
                self.state.force_fail(text, Utc::now());
                self.after_move(from).await;
            }
            (_, kind) if kind.is_mutating() => {
                // `Fail` is legal from every mutating state.
                let _ = self.apply(Transition::Fail { error: text }).await;
            }
            (_, StateKind::Failed) => {}
            _ => {
                // A read (refresh, plan, pre-check) failed: back to where the host rested.
                let transient = error.is_transient();
                let _ = self
                    .apply(Transition::ReadFailed {
                        error: text,
                        transient,
                    })
                    .await;
            }
        }
    }

    /// Tells the requester how `job` ended; refusals also leave as an event for the screen.
    async fn answer(
        &mut self,
        job: &Job,
        respond_to: Option<oneshot::Sender<Outcome>>,
        result: StepResult<Done>,
    ) {
        // A wave's pre-download is background work nobody asked for by hand: a host too busy
        // or failed to take one is routine, and the wave's own step says what matters.
        if let Err(Error::Refused(refusal)) = &result
            && job.kind == JobKind::Download
        {
            tracing::debug!(host = %self.id, "no download: {refusal}");
        } else if let Err(Error::Refused(refusal)) = &result {
            tracing::info!(host = %self.id, "refused {}: {refusal}", job.kind.name());
            self.emit(Event::Refused {
                host: self.id.clone(),
                job: job.kind,
                reason: refusal.0.as_str().into(),
            })
            .await;
        }
        let outcome = job.outcome(&result);
        if let Some(respond_to) = respond_to {
            // The requester may have stopped waiting (an aborted wave); nothing to do then.
            let _ = respond_to.send(outcome);
        }
    }

    /// At shutdown: steps got a child of the cancelled token; give them time to stop safely.
    async fn drain_steps(&mut self) {
        // Queries and waits stop at once on the cancelled token; an upgrade runs on until it is
        // done or abandoned (see `StepContext::abandon`), then gets SHUTDOWN_GRACE to wind down.
        let abandon = self.deps.step.abandon.clone();
        let drained = {
            let drain = async {
                loop {
                    tokio::select! {
                        biased;
                        Some(message) = self.from_steps.recv() => self.handle_step_message(message).await,
                        done = self.steps.join_next() => match done {
                            Some(done) => self.finish_step(done).await,
                            None => break,
                        },
                    }
                }
            };
            tokio::pin!(drain);
            tokio::select! {
                () = &mut drain => true,
                () = abandon.cancelled() => {
                    tokio::time::timeout(SHUTDOWN_GRACE, &mut drain).await.is_ok()
                }
            }
        };
        if !drained {
            self.steps.abort_all();
            while let Some(done) = self.steps.join_next().await {
                self.finish_step(done).await;
            }
        }
        while let Ok(message) = self.from_steps.try_recv() {
            self.handle_step_message(message).await;
        }
    }

    async fn emit(&self, event: Event) {
        self.deps.events.emit(event).await;
    }

    async fn audit(&self, action: &str, result: &str, detail: Option<&str>) {
        let record = AuditRecord::new(action, Some(&self.id), result, detail).in_wave(self.wave());
        self.deps.audit.record(record).await;
    }

    /// The wave whose job runs now, if a wave asked for it: its records name the wave.
    fn wave(&self) -> Option<&str> {
        self.running.as_ref()?.job.wave.as_deref()
    }

    /// What a real update is about to change, for history and reports: a `plan` record with
    /// the counts as its detail and the upgrades themselves.
    async fn audit_plan(&self, plan: &crate::pkg::UpgradePlan) {
        let detail = format!(
            "{} upgrades, {} installs, {} removals",
            plan.upgrades.len(),
            plan.installs.len(),
            plan.removals.len()
        );
        let record = AuditRecord {
            upgrades: Some(plan.upgrades.clone()),
            ..AuditRecord::new("plan", Some(&self.id), "planned", Some(&detail))
        }
        .in_wave(self.wave());
        self.deps.audit.record(record).await;
    }
}

fn busy(job: &Job) -> Refusal {
    let doing = match job.kind {
        JobKind::Refresh => "refreshing",
        JobKind::RefreshLists => "refreshing package lists",
        JobKind::Update { dry_run: true, .. } => "planning a dry run",
        JobKind::Update { .. } if matches!(job.origin, Origin::Wave(_)) => "running a wave step",
        JobKind::Update { .. } => "updating",
        JobKind::Reboot => "rebooting",
        JobKind::Download => "downloading packages",
        JobKind::Retry | JobKind::Acknowledge => "answering",
        JobKind::Reattach => "asking about a job an earlier run left",
        JobKind::Repair => "repairing",
        JobKind::Rollback { dry_run: true } => "asking what a rollback would do",
        JobKind::Rollback { .. } => "rolling back",
    };
    Refusal(format!("busy ({doing})"))
}

fn panic_message(err: JoinError) -> String {
    let payload = err.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}
