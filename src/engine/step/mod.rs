//! The long-running work of one host (refresh, the update pipeline, reboot), run as a task inside
//! the host's supervisor so the supervisor keeps answering while it runs.
//!
//! A step never owns the host's state: it asks the supervisor to move it and waits for the
//! answer, and a refused move stops the step before anything else runs on the host. Everything
//! a step emits (moves, output, findings) leaves through one ordered channel to its supervisor,
//! which puts it on the bus. Steps talk to the host only through the `Executor` and the
//! `PackageManager`; they know nothing of SSH or of who watches the events.

mod compose;
mod download;
pub(super) mod health;
mod reattach;
mod reboot;
pub(super) mod refresh;
mod repair;
mod rollback;
mod update;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OnceCell, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::bus::{Event, Job, JobKind, Stage, StageStatus};
use super::error::Error;
use super::job::Done;
use super::{ManagerSource, RebootSettings};
use crate::config::{HostConfig, HostId};
use crate::fleet::{Refusal, RemoteJob, StateKind, Transition};
use crate::pkg::SharedManager;
use crate::remote::job::{JobExecutor, JobId, JobJournal, JobStart};
use crate::remote::{CommandOutput, OutputLine, RemoteCommand, SharedExecutor};

/// How often a read that hit network trouble is tried in all, and the pause before the second
/// try (doubled after each). Mutations are never retried once started.
const READ_ATTEMPTS: u32 = 3;
const READ_BACKOFF: Duration = Duration::from_secs(1);

/// What a step tells its supervisor, in the order it happened.
#[derive(Debug)]
pub(super) enum StepMsg {
    /// Move the host; the answer says whether the move was legal.
    Move {
        transition: Transition,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// Something the step found or printed, for the bus.
    Event(Event),
    /// The step's detached job: about to start, read further, or over.
    Job(JobUpdate),
}

/// What a step tells its supervisor about its detached job (see `remote::job`).
#[derive(Debug)]
pub(super) enum JobUpdate {
    /// About to start: answered once the record is durable (audit log and snapshot), and the
    /// job starts only on `Ok`.
    Starting {
        job: RemoteJob,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Its log was shown up to `offset`.
    Progress { offset: u64 },
    /// It is over; `None` when it vanished or never started.
    Finished { exit: Option<i32> },
}

/// What a step needs, cloned from the supervisor for each step.
#[derive(Clone)]
pub(super) struct StepContext {
    pub id: HostId,
    pub host: Arc<HostConfig>,
    pub exec: SharedExecutor,
    pub tools: Arc<dyn ManagerSource>,
    /// Detected once per engine run; `None` inside means the host has no manager (`manager =
    /// "none"`).
    pub manager: Arc<OnceCell<Option<SharedManager>>>,
    /// The supervisor's inbox for this step; replaced per step by the supervisor.
    pub supervisor: mpsc::Sender<StepMsg>,
    pub cancel: CancellationToken,
    /// Stops a running upgrade. Separate from `cancel` because killing apt or dnf half-way can
    /// leave a host's package database broken: at shutdown upgrades are let finish, and only
    /// abandoned when the operator insists or the caller's grace runs out.
    pub abandon: CancellationToken,
    pub reboot: RebootSettings,
    pub command_timeout: Duration,
    pub reboot_timeout: Duration,
    /// How long a detached job is followed before it is reported as outliving its bound (it
    /// is never stopped for it): `[fleet] upgrade_timeout`.
    pub upgrade_timeout: Duration,
    /// Who this tendhost is, for anyone the host lock refuses: `tendhost on box (user root,
    /// pid 7)`.
    pub holder: Arc<str>,
    /// For a reattach: the job an earlier run left on the host.
    pub outstanding: Option<Arc<RemoteJob>>,
    /// `[fleet] lists_max_age`.
    pub lists_max_age: Duration,
    /// Shared by every host: `[fleet] lists_concurrency` refreshes at once.
    pub lists_limit: Arc<tokio::sync::Semaphore>,
    /// The host's last survey (see `refresh::Memory`).
    pub memory: refresh::Memory,
    /// The host's measured upgrades and reboots, seeded from the snapshot and kept by the
    /// steps that measure (each also emits `Event::Measured` for every other consumer): the
    /// update step predicts from it whether the host fits its window. A `std` mutex: held
    /// only to copy or push, never across an `.await`.
    pub history: Arc<std::sync::Mutex<crate::fleet::HostHistory>>,
    /// The host's rollback points and rejected images (see `pkg::RollbackLedger`), seeded from
    /// the snapshot and kept by the compose stages, which also announce every change of it. A
    /// `std` mutex: held only to copy or fold, never across an `.await`.
    pub rollback: Arc<std::sync::Mutex<crate::pkg::RollbackLedger>>,
    /// The host's last pre-update health report: the failed-unit baseline (see `health`).
    pub baseline: health::Baseline,
}

pub(super) type StepResult<T> = Result<T, Error>;

impl StepContext {
    /// Runs `job` on a host that was in `from` when the job started.
    pub(super) async fn run(self, job: Job, from: StateKind) -> StepResult<Done> {
        match job.kind {
            JobKind::Refresh => self.refresh(refresh::Read::Routine).await,
            JobKind::RefreshLists => self.refresh(refresh::Read::Afresh).await,
            JobKind::Update { .. } => self.update(&job, from).await,
            JobKind::Reboot => self.reboot(&job).await,
            JobKind::Download => self.download(&job, from).await,
            JobKind::Reattach => self.reattach(from).await,
            JobKind::Repair => self.repair().await,
            JobKind::Rollback { dry_run } => self.rollback(&job, dry_run).await,
            // Retry and acknowledge are applied by the supervisor itself.
            JobKind::Retry | JobKind::Acknowledge => Ok(Done::Ran),
        }
    }

    /// Asks the supervisor to move the host; a refusal stops the step.
    async fn move_to(&self, transition: Transition) -> StepResult<()> {
        let (reply, answer) = oneshot::channel();
        let asked = self
            .supervisor
            .send(StepMsg::Move { transition, reply })
            .await;
        match (asked, answer.await) {
            (Ok(()), Ok(result)) => result.map_err(Error::Refused),
            // The supervisor outlives its steps; it is gone only when the engine is torn down.
            _ => Err(Error::Aborted),
        }
    }

    /// Keeps `measurement` in the step's history and announces it.
    async fn measured(&self, measurement: crate::fleet::Measurement) {
        if let Ok(mut history) = self.history.lock() {
            history.record(&measurement);
        }
        self.emit(Event::Measured {
            host: self.id.clone(),
            measurement,
        })
        .await;
    }

    /// The host's history as it stands.
    fn history(&self) -> crate::fleet::HostHistory {
        // A poisoned lock only means a panic elsewhere mid-push: the data is still a history.
        match self.history.lock() {
            Ok(history) => history.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    async fn emit(&self, event: Event) {
        // The supervisor outlives its steps; a closed channel only happens at teardown.
        let _ = self.supervisor.send(StepMsg::Event(event)).await;
    }

    async fn stage(&self, stage: Stage, status: StageStatus) {
        self.emit(Event::Stage {
            host: self.id.clone(),
            stage,
            status,
        })
        .await;
    }

    /// Runs one stage: announces it, runs `work`, announces how it ended.
    async fn in_stage<T, Fut>(&self, stage: Stage, work: Fut) -> StepResult<T>
    where
        Fut: Future<Output = StepResult<T>>,
    {
        self.stage(stage, StageStatus::Started).await;
        let result = work.await;
        let status = match &result {
            Ok(_) => StageStatus::Done,
            Err(e) => StageStatus::Failed {
                error: crate::errors::chain(e).into(),
            },
        };
        self.stage(stage, status).await;
        result
    }

    /// Runs a read, trying again with backoff while it fails with network trouble: a read
    /// changes nothing, so repeating it is always safe.
    async fn read<T, F, Fut>(&self, mut attempt: F) -> StepResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = StepResult<T>>,
    {
        let mut pause = READ_BACKOFF;
        for _ in 1..READ_ATTEMPTS {
            match attempt().await {
                Err(e) if e.is_transient() && !self.cancel.is_cancelled() => {
                    tracing::info!(host = %self.id, "retrying in {pause:?}: {}", crate::errors::chain(&e));
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = self.cancel.cancelled() => return Err(e),
                    }
                    pause *= 2;
                }
                done => return done,
            }
        }
        attempt().await
    }

    /// [`read`](Self::read) of a call whose own error `map` turns into the step's.
    async fn read_as<T, E, F, Fut>(&self, map: impl Fn(E) -> Error, mut call: F) -> StepResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let map = &map;
        self.read(|| {
            let call = call();
            async move { call.await.map_err(map) }
        })
        .await
    }

    async fn manager(&self) -> StepResult<Option<SharedManager>> {
        self.read_as(Error::Detect, || async {
            self.manager
                .get_or_try_init(|| {
                    self.tools
                        .manager(&self.host, self.exec.as_ref(), &self.cancel)
                })
                .await
                .cloned()
        })
        .await
    }

    /// The record keeper for the detached jobs of `stage` (`boot_id` goes with a reboot's).
    fn journal(&self, stage: Stage, boot_id: Option<&str>) -> StageJournal<'_> {
        StageJournal {
            supervisor: &self.supervisor,
            stage,
            boot_id: boot_id.map(Arc::from),
        }
    }

    /// The host's executor, with host-changing commands run as detached jobs recorded in
    /// `journal`.
    fn jobs<'a>(&'a self, journal: &'a StageJournal<'a>) -> JobExecutor<'a> {
        JobExecutor {
            inner: self.exec.as_ref(),
            base: &self.host.job_dir,
            journal,
            holder: &self.holder,
            timeout: self.upgrade_timeout,
            detach: &self.cancel,
        }
    }

    /// Runs a `[host.checks]` command as part of `stage`; a non-zero exit stops the step.
    async fn check(&self, stage: Stage, script: &str) -> StepResult<()> {
        let command = RemoteCommand::new(script, self.command_timeout);
        let out = self
            .with_output(|lines| async move {
                self.exec.run(&command, Some(&lines), &self.cancel).await
            })
            .await
            .map_err(|source| Error::CheckUnrun { stage, source })?;
        if out.success() {
            return Ok(());
        }
        Err(Error::CheckFailed {
            stage,
            code: exit_label(&out),
            detail: last_line(out.diagnostic()),
        })
    }

    /// Runs `work` with a line sink whose lines become `Event::Output`, forwarded as they come.
    async fn with_output<'a, F, Fut, T>(&'a self, work: F) -> T
    where
        F: FnOnce(mpsc::Sender<OutputLine>) -> Fut,
        Fut: Future<Output = T> + 'a,
    {
        let (lines, mut incoming) = mpsc::channel::<OutputLine>(64);
        let forward = async {
            while let Some(line) = incoming.recv().await {
                self.emit(Event::Output {
                    host: self.id.clone(),
                    stream: line.stream,
                    line: line.line.into(),
                })
                .await;
            }
        };
        // `work` owns the only sender, so `forward` ends once `work` is done with it.
        let (result, ()) = tokio::join!(work(lines), forward);
        result
    }
}

/// A step's [`JobJournal`]: every fact goes to the supervisor, which owns the host's job record.
pub(super) struct StageJournal<'a> {
    supervisor: &'a mpsc::Sender<StepMsg>,
    stage: Stage,
    boot_id: Option<Arc<str>>,
}

impl StageJournal<'_> {
    async fn tell(&self, update: JobUpdate) {
        // The supervisor outlives its steps; a closed channel only happens at teardown.
        let _ = self.supervisor.send(StepMsg::Job(update)).await;
    }
}

#[async_trait::async_trait]
impl JobJournal for StageJournal<'_> {
    async fn starting(&self, start: &JobStart) -> Result<(), String> {
        let job = RemoteJob {
            id: start.id.clone(),
            label: start.label.into(),
            stage: self.stage,
            started: start.started,
            offset: 0,
            ended: None,
            boot_id: self.boot_id.clone(),
        };
        let (reply, answer) = oneshot::channel();
        self.tell(JobUpdate::Starting { job, reply }).await;
        answer
            .await
            .map_err(|_| "tendhost is stopping".to_string())?
    }

    async fn progress(&self, _id: &JobId, offset: u64) {
        self.tell(JobUpdate::Progress { offset }).await;
    }

    async fn finished(&self, _id: &JobId, exit: Option<i32>) {
        self.tell(JobUpdate::Finished { exit }).await;
    }
}

fn exit_label(out: &CommandOutput) -> String {
    out.exit_code
        .map_or_else(|| out.signal.clone().unwrap_or_default(), |c| c.to_string())
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
