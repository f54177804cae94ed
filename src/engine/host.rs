//! One supervisor task per host: the only writer of that host's state.
//!
//! Commands arrive on the host's own bounded queue ([`HostHandle::try_send`] never waits); the
//! long work runs as a step in the supervisor's `JoinSet`, so the loop keeps answering (and
//! refusing) while an upgrade runs. Every move goes through [`HostState::apply`] and leaves as one
//! `Event::StateChanged`, plus an audit record when it changes the host. A step that panics fails
//! the host with the message; the supervisor itself keeps running.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SendError;
use super::bus::{CommandKind, Event, HostCommand, StateKind, StepOutcome, WaveStep};
use super::schedule;
use super::state::{HostState, Phase, Transition};
use super::steps::{Op, StepContext};
use crate::config::{HostConfig, HostId};
use crate::store::audit::{AuditRecord, AuditSink};

/// Commands waiting for one host. Small: a full queue shows as "busy", it is not a backlog.
const COMMAND_QUEUE: usize = 8;
/// How long a step gets to stop on its own at shutdown before it is aborted.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The way in to one host. Cheap to clone; when the last clone drops, the supervisor stops.
#[derive(Debug, Clone)]
pub struct HostHandle {
    pub id: HostId,
    commands: mpsc::Sender<HostCommand>,
}

/// Everything a supervisor shares with the rest of the engine.
#[derive(Clone)]
pub(super) struct HostDeps {
    pub step: StepContext,
    pub audit: AuditSink,
    /// Bounds hosts doing non-wave work at once (`[fleet] concurrency`).
    pub limit: Arc<Semaphore>,
    pub refresh_interval: Option<Duration>,
    /// How long ago this host was last refreshed (from the snapshot), to place its first refresh.
    pub since_last_refresh: Option<Duration>,
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
        let (commands, incoming) = mpsc::channel(COMMAND_QUEUE);
        let (moves, moves_in) = mpsc::channel(16);
        let id = host.name.clone();
        let supervisor = HostSupervisor {
            id: id.clone(),
            host,
            state,
            commands: incoming,
            moves_in,
            moves,
            ops: JoinSet::new(),
            running: None,
            deps,
            cancel,
        };
        tracker.spawn(supervisor.run());
        HostHandle { id, commands }
    }

    /// Never waits. `Err(Busy)` means the queue is full; callers show it, they do not retry in a
    /// loop.
    pub fn try_send(&self, command: HostCommand) -> Result<(), SendError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Busy,
            mpsc::error::TrySendError::Closed(_) => SendError::Stopped,
        })
    }

    /// Waits for room in the queue (for the wave runner, which must not drop a step).
    pub async fn send(&self, command: HostCommand) -> Result<(), SendError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| SendError::Stopped)
    }
}

/// The step in flight, if any.
struct Running {
    op: Op,
    respond_to: Option<oneshot::Sender<StepOutcome>>,
}

struct HostSupervisor {
    id: HostId,
    host: Arc<HostConfig>,
    state: HostState,
    commands: mpsc::Receiver<HostCommand>,
    /// Moves requested by the running step. The supervisor holds a sender too, so this never
    /// closes while it runs.
    moves_in: mpsc::Receiver<Transition>,
    moves: mpsc::Sender<Transition>,
    ops: JoinSet<StepOutcome>,
    running: Option<Running>,
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
        loop {
            // `biased`: moves queued by a step are applied before its completion is handled, so
            // events leave in the order they happened. Every branch is cancel-safe (`recv`,
            // `join_next`, `sleep`).
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                Some(transition) = self.moves_in.recv() => self.handle_move(transition).await,
                Some(done) = self.ops.join_next() => self.finish_step(done).await,
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command).await,
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
                    self.periodic_refresh();
                }
            }
        }
        self.drain_steps().await;
    }

    async fn handle_command(&mut self, command: HostCommand) {
        let kind = command.kind();
        match command {
            HostCommand::Refresh => self.start(Op::Refresh, None, kind).await,
            HostCommand::Update {
                dry_run,
                allow_removals,
            } => {
                let op = Op::Update {
                    dry_run,
                    allow_removals,
                    wave: None,
                };
                self.start(op, None, kind).await;
            }
            HostCommand::Reboot => self.start(Op::Reboot, None, kind).await,
            // The outcome already left as an event (moved or refused).
            HostCommand::Retry => _ = self.instant(Transition::Retry, kind).await,
            HostCommand::Acknowledge => _ = self.instant(Transition::Acknowledge, kind).await,
            HostCommand::RunStep {
                step,
                respond_to,
                stop,
            } => {
                let op = match step {
                    WaveStep::Full {
                        dry_run,
                        allow_removals,
                    } => Op::Update {
                        dry_run,
                        allow_removals,
                        wave: Some(stop),
                    },
                    WaveStep::Update {
                        dry_run,
                        allow_removals,
                    } => Op::Update {
                        dry_run,
                        allow_removals,
                        wave: None,
                    },
                    WaveStep::Refresh => Op::Refresh,
                    WaveStep::Reboot => Op::Reboot,
                    WaveStep::Retry | WaveStep::Acknowledge => {
                        let transition = if step == WaveStep::Retry {
                            Transition::Retry
                        } else {
                            Transition::Acknowledge
                        };
                        let outcome = self.instant(transition, kind).await;
                        // The caller may have given up waiting; that is its business.
                        let _ = respond_to.send(outcome);
                        return;
                    }
                };
                self.start(op, Some(respond_to), kind).await;
            }
        }
    }

    /// Retry and acknowledge: no remote work, applied at once (unless a step is running).
    async fn instant(&mut self, transition: Transition, kind: CommandKind) -> StepOutcome {
        if let Some(running) = &self.running {
            let reason = format!("busy ({})", running.op.label());
            return self.refuse(kind, reason).await;
        }
        let acknowledging = transition == Transition::Acknowledge;
        match self.apply(transition).await {
            Ok(()) => {
                if acknowledging {
                    self.emit(Event::Acknowledged {
                        host: self.id.clone(),
                    })
                    .await;
                    self.audit("ack", "ok", None).await;
                }
                StepOutcome::Succeeded
            }
            Err(reason) => self.refuse(kind, reason).await,
        }
    }

    /// Starts `op` as a step unless the host is busy or in the wrong state.
    async fn start(
        &mut self,
        op: Op,
        respond_to: Option<oneshot::Sender<StepOutcome>>,
        kind: CommandKind,
    ) {
        // A wave reaching a host that already waits for a reboot goes straight to the reboot
        // (if policy and window allow; otherwise the host keeps waiting and the step succeeds).
        let op = match op {
            Op::Update {
                dry_run: false,
                wave: Some(stop),
                ..
            } if self.running.is_none() && self.state.kind() == StateKind::WaitingReboot => {
                Op::WaveReboot { stop }
            }
            op => op,
        };
        if let Err(reason) = self.admissible(&op) {
            let outcome = self.refuse(kind, reason).await;
            if let Some(respond_to) = respond_to {
                let _ = respond_to.send(outcome);
            }
            return;
        }
        let step = StepContext {
            moves: self.moves.clone(),
            cancel: self.cancel.child_token(),
            ..self.deps.step.clone()
        };
        // Wave steps are bounded by the wave's batch size; everything else by the fleet limit.
        let limit = match &op {
            Op::Update { wave: Some(_), .. } | Op::WaveReboot { .. } => None,
            _ => Some(self.deps.limit.clone()),
        };
        let task_op = op.clone();
        self.ops.spawn(async move {
            let _permit = match limit {
                // The semaphore is never closed, so acquiring can only succeed.
                Some(limit) => limit.acquire_owned().await.ok(),
                None => None,
            };
            step.run(task_op).await
        });
        self.running = Some(Running { op, respond_to });
    }

    /// Whether `op` may start now; the reason when not.
    fn admissible(&self, op: &Op) -> Result<(), String> {
        if let Some(running) = &self.running {
            return Err(format!("busy ({})", running.op.label()));
        }
        let mut probe = self.state.clone();
        match op {
            Op::Refresh | Op::Update { .. } => {
                // A wave still checks and refreshes such a host; only a direct update is refused.
                if matches!(op, Op::Update { wave: None, .. })
                    && self.host.manager == crate::config::ManagerChoice::None
                {
                    return Err(
                        "manager is 'none' for this host; tendhost does not update it".into(),
                    );
                }
                probe.apply(Transition::Query).map_err(|r| r.0)
            }
            Op::WaveReboot { .. } => probe.apply(Transition::StartReboot).map_err(|r| r.0),
            Op::Reboot => {
                probe
                    .apply(Transition::StartReboot)
                    .map_err(|r| match self.state.kind() {
                        StateKind::Idle | StateKind::PendingUpdates => {
                            "cannot reboot: no reboot is pending (refresh to check)".to_string()
                        }
                        _ => r.0,
                    })?;
                schedule::host_window_allows(&self.host)
                    .map_err(|why| format!("cannot reboot: {why}"))
            }
        }
    }

    async fn refuse(&mut self, command: CommandKind, reason: String) -> StepOutcome {
        tracing::info!(host = %self.id, "refused {command:?}: {reason}");
        self.emit(Event::Refused {
            host: self.id.clone(),
            command,
            reason: reason.clone().into(),
        })
        .await;
        StepOutcome::Refused { reason }
    }

    fn periodic_refresh(&mut self) {
        let idle = matches!(self.state.phase, Phase::Idle | Phase::PendingUpdates);
        if self.running.is_none() && idle {
            // Not through `start`: a periodic refresh that cannot run now is simply skipped.
            let _ = self.admissible(&Op::Refresh).map(|()| {
                let step = StepContext {
                    moves: self.moves.clone(),
                    cancel: self.cancel.child_token(),
                    ..self.deps.step.clone()
                };
                let limit = self.deps.limit.clone();
                self.ops.spawn(async move {
                    let _permit = limit.acquire_owned().await.ok();
                    step.run(Op::Refresh).await
                });
                self.running = Some(Running {
                    op: Op::Refresh,
                    respond_to: None,
                });
            });
        }
    }

    /// A move requested by the running step.
    async fn handle_move(&mut self, transition: Transition) {
        if let Transition::Fail { error, at } = &transition
            && self.state.clone().apply(transition.clone()).is_err()
        {
            // A step failed before it moved the host into a busy state (a dry-run plan
            // failing, say): the operator must still see it.
            let (error, at) = (error.clone(), *at);
            let from = self.state.kind();
            self.state.force_fail(error, at);
            self.after_move(from).await;
            return;
        }
        if let Err(refusal) = self.apply(transition).await {
            tracing::error!(host = %self.id, "a step asked for an illegal move: {refusal}");
        }
    }

    async fn apply(&mut self, transition: Transition) -> Result<(), String> {
        let from = self.state.kind();
        self.state.apply(transition).map_err(|r| r.0)?;
        self.after_move(from).await;
        Ok(())
    }

    /// Announces a move that already happened: one event, one audit record if it mutates.
    async fn after_move(&mut self, from: StateKind) {
        let to = self.state.kind();
        if from == to {
            // Acknowledging keeps the host failed: announced as `Acknowledged`, not as a move.
            return;
        }
        let reason = self.state.phase.reason();
        // The log file and the console's App log tell the story host by host; failures stand out.
        match (to, reason.as_deref()) {
            (StateKind::Failed, Some(why)) => {
                tracing::warn!(host = %self.id, "{from} -> {to}: {why}")
            }
            (_, Some(why)) => tracing::info!(host = %self.id, "{from} -> {to} ({why})"),
            (_, None) => tracing::info!(host = %self.id, "{from} -> {to}"),
        }
        self.emit(Event::StateChanged {
            host: self.id.clone(),
            from,
            to,
            at: Utc::now(),
            reason: reason.clone(),
        })
        .await;
        let reads = [
            StateKind::Idle,
            StateKind::Querying,
            StateKind::PendingUpdates,
        ];
        if !(reads.contains(&from) && reads.contains(&to)) {
            let action = match (from, to) {
                (StateKind::Failed, StateKind::Idle) => "retry",
                (_, StateKind::Updating) => "update",
                (_, StateKind::Rebooting) => "reboot",
                _ => "state",
            };
            let result = format!("{} -> {}", from.as_str(), to.as_str());
            self.audit(action, &result, reason.as_deref()).await;
        }
    }

    async fn finish_step(&mut self, done: Result<StepOutcome, JoinError>) {
        let outcome = match done {
            Ok(outcome) => outcome,
            Err(err) => {
                let error = if err.is_panic() {
                    format!("internal error: the step panicked: {}", panic_message(err))
                } else {
                    "internal error: the step was cancelled".to_string()
                };
                let from = self.state.kind();
                self.state.force_fail(error.clone().into(), Utc::now());
                self.after_move(from).await;
                StepOutcome::Failed { error }
            }
        };
        if let Some(running) = self.running.take()
            && let Some(respond_to) = running.respond_to
        {
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
                while let Some(done) = self.ops.join_next().await {
                    while let Ok(transition) = self.moves_in.try_recv() {
                        self.handle_move(transition).await;
                    }
                    self.finish_step(done).await;
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
            self.ops.abort_all();
        }
        while let Ok(transition) = self.moves_in.try_recv() {
            self.handle_move(transition).await;
        }
    }

    async fn emit(&self, event: Event) {
        // The hub outlives every supervisor; a closed bus only happens during shutdown.
        let _ = self.deps.step.events.send(event).await;
    }

    async fn audit(&self, action: &str, result: &str, detail: Option<&str>) {
        let record = AuditRecord::new(action, Some(&self.id), result, detail);
        self.deps.audit.record(record).await;
    }
}

fn panic_message(err: JoinError) -> String {
    let payload = err.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}
