//! The orchestration core: one supervisor task per host, an event bus, waves and schedules.
//!
//! [`Engine::start`] spawns a [`host`] supervisor per configured host, the hub, the snapshot writer
//! and the audit appender, and returns an [`EngineHandle`] (commands go down) and the event
//! receiver (events come up). The engine knows nothing of the TUI or of batch output; both are
//! consumers of the same events, and the hub persists them identically for both.

pub mod bus;
mod error;
mod host;
mod hub;
mod job;
mod one_by_one;
mod predownload;
mod real;
mod schedule;
mod step;
mod wave;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::{OnceCell, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use bus::{Event, Job, JobKind, Origin, Outcome, StateKind};
pub use error::{Error, WaveError};
pub use host::{HostHandle, SHUTDOWN_GRACE};
pub use real::{RealManagers, SAVE_EVERY};
pub use wave::{ThresholdChoice, WaveQueue, WaveRequest};

use crate::config::{Config, HostConfig, HostId};
use crate::fleet::HostModel;
use crate::inventory::Inventory;
use crate::pkg::{self, SharedManager};
use crate::remote::{Executor, SharedExecutor};
use crate::store::Paths;
use crate::store::audit::{AuditRecord, AuditSink};
use crate::store::metrics::WaveMetrics;
use crate::store::snapshot::{SavedHost, SavedStatus, SavedWave, Snapshot, host_digest};
use crate::survey::{self, Survey, SurveyRequest};

/// Events waiting for the frontend. Bounded: a slow frontend slows the hosts, not memory.
const FRONTEND_QUEUE: usize = 1024;
/// Events waiting for the hub.
const BUS_QUEUE: usize = 1024;

/// Makes the executor for one host (SSH or local). Called once per host at start.
pub type ExecutorFactory = Arc<dyn Fn(&HostConfig) -> SharedExecutor + Send + Sync>;

/// Where package managers and inventory come from, so tests can inject simulated ones.
#[async_trait]
pub trait ManagerSource: Send + Sync {
    /// The package manager for `host` (detected when `manager = "auto"`); `None` for
    /// `manager = "none"`.
    async fn manager(
        &self,
        host: &HostConfig,
        exec: &dyn Executor,
        cancel: &CancellationToken,
    ) -> Result<Option<SharedManager>, pkg::Error>;

    async fn inventory(
        &self,
        host: &HostConfig,
        exec: &dyn Executor,
        cancel: &CancellationToken,
    ) -> Result<Inventory, crate::inventory::Error>;

    /// Reads the host in one round trip (see [`crate::survey`]). The default asks
    /// [`inventory`](Self::inventory), the manager and each compose stack one after another and
    /// keeps no fingerprint, for sources that have no such script (the simulated fleet).
    async fn survey(
        &self,
        host: &HostConfig,
        exec: &dyn Executor,
        request: SurveyRequest<'_>,
        cancel: &CancellationToken,
    ) -> Result<Survey, survey::Error> {
        one_by_one::survey(self, host, exec, request, cancel).await
    }

    /// The manager a survey found on `host`, without asking the host again; `None` when this
    /// source cannot make one from the kind alone (then [`manager`](Self::manager) is asked).
    fn manager_of(&self, _kind: pkg::ManagerKind) -> Option<SharedManager> {
        None
    }
}

/// How reboots are issued and verified. Configurable so test hosts can emulate a reboot.
#[derive(Debug, Clone)]
pub struct RebootSettings {
    /// Run as root on the host; expected to drop the connection.
    pub command: String,
    /// Read before and after: a reboot must change it.
    pub boot_id_path: String,
    /// Between polls while waiting for the host to go down and come back; while it stays
    /// down the pause grows to at most a second, so it is seen back within about a second.
    pub poll_interval: Duration,
}

impl Default for RebootSettings {
    fn default() -> Self {
        RebootSettings {
            command: "systemctl reboot || reboot".to_string(),
            boot_id_path: "/proc/sys/kernel/random/boot_id".to_string(),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// What the engine is built from.
#[derive(Clone)]
pub struct EngineDeps {
    pub executor_for: ExecutorFactory,
    pub managers: Arc<dyn ManagerSource>,
    pub paths: Paths,
    /// The snapshot restored at start, if any.
    pub snapshot: Option<Snapshot>,
    pub reboot: RebootSettings,
    /// How often the hub saves the snapshot while something changes.
    pub save_every: Duration,
    /// Whether to run the periodic refresh (`[fleet] refresh_interval`); batch turns it off.
    pub periodic_refresh: bool,
}

/// Why a command could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("host busy: its command queue is full")]
    Busy,
    #[error("unknown host")]
    UnknownHost,
    #[error("the engine is shutting down")]
    Stopped,
}

pub struct Engine;

/// The way in to the engine. Cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    hosts: Vec<HostHandle>,
    index: HashMap<HostId, usize>,
    initial: Vec<SavedHost>,
    /// Taken at shutdown so the hub sees the bus close once the hosts are gone.
    events: Mutex<Option<hub::Bus>>,
    audit: Mutex<Option<AuditSink>>,
    /// For notices that do not come from events (a skipped schedule); taken at shutdown so the
    /// notifier task sees its queue close.
    notifier: Mutex<Option<crate::notify::Notifier>>,
    /// Where the audit log is (written only when `[audit] enabled`), for history to read.
    audit_file: std::path::PathBuf,
    /// The running wave. A std mutex: held only to swap or read a few fields, never across await.
    wave: Mutex<Option<wave::WaveControl>>,
    next_wave: AtomicU64,
    /// The unfinished wave the restored snapshot holds, until resumed or discarded.
    saved_wave: Mutex<Option<SavedWave>>,
    /// How many hosts are still resolving a job an earlier run left.
    reattached: watch::Receiver<usize>,
    cancel: CancellationToken,
    /// Cancelled only to stop upgrades in flight (see `steps::StepContext::abandon`).
    abandon: CancellationToken,
    tracker: TaskTracker,
    /// `(guest, hypervisor)` pairs the hypervisors' inventories detected; the hub is its one
    /// writer (on every hypervisor inventory), waves and frontends read it. A std mutex: a
    /// short swap or clone, never held across an await.
    guests: hub::DetectedGuests,
}

impl Engine {
    /// Starts every host supervisor and the hub. Must be called inside a tokio runtime.
    pub fn start(config: Arc<Config>, deps: EngineDeps) -> (EngineHandle, mpsc::Receiver<Event>) {
        let cancel = CancellationToken::new();
        let abandon = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (events, bus) = hub::Bus::new(BUS_QUEUE);
        let (frontend, frontend_events) = mpsc::channel(FRONTEND_QUEUE);

        let audit_file = config
            .audit
            .file
            .clone()
            .unwrap_or_else(|| deps.paths.audit());
        // The textfile's wave gauges start from the log's past waves, read before this run's
        // appender writes to it.
        let past_waves = match (&config.metrics.textfile, config.audit.enabled) {
            (Some(_), true) => WaveMetrics::from_audit_log(&audit_file),
            _ => WaveMetrics::default(),
        };
        let audit = if config.audit.enabled {
            AuditSink::spawn_with(
                audit_file.clone(),
                config.audit.rotation.clone(),
                config.audit.syslog.clone(),
                config.audit.webhook.clone(),
                &tracker,
            )
        } else {
            AuditSink::disabled()
        };
        // A local host's apt, a check command or a hook never sees a notifier's secret.
        crate::remote::child::hide(crate::notify::hidden_vars(&config.notify));
        let notifier =
            crate::notify::Notifier::spawn(&config.notify, audit.clone(), cancel.clone(), &tracker);

        let now = Utc::now();
        let mut snapshot = deps.snapshot;
        let saved_wave = snapshot.as_mut().and_then(|s| s.wave.take());
        let mut restored: HashMap<HostId, SavedHost> = snapshot
            .map(|s| {
                s.hosts
                    .into_iter()
                    .map(|saved| (saved.model.name.clone(), saved))
                    .collect()
            })
            .unwrap_or_default();
        let initial: Vec<SavedHost> = config
            .hosts
            .iter()
            .map(|host| {
                let mut saved = restored
                    .remove(&host.name)
                    .unwrap_or_else(|| SavedHost::new(HostModel::new(host.name.clone())));
                let mut state = (*saved.model.state).clone();
                state.restore(now, saved.model.job.is_some());
                saved.model.state = Arc::new(state);
                saved
            })
            .collect();

        let holder: Arc<str> = job_holder().into();
        let with_jobs = initial.iter().filter(|s| s.model.job.is_some()).count();
        let (reattaching, reattached) = watch::channel(with_jobs);
        let reattaching = Arc::new(reattaching);
        let limit = Arc::new(Semaphore::new(config.fleet.concurrency.max(1)));
        let lists_limit = Arc::new(Semaphore::new(config.fleet.lists_concurrency.max(1)));
        let refresh_interval = config
            .fleet
            .refresh_interval
            .filter(|_| deps.periodic_refresh);
        // One permit per cluster: its hosts take turns at every change (see `HostDeps::cluster`).
        let mut clusters: HashMap<Arc<str>, Arc<Semaphore>> = HashMap::new();
        let mut hosts = Vec::with_capacity(config.hosts.len());
        for (host, saved) in config.hosts.iter().zip(&initial) {
            let host = Arc::new(host.clone());
            let step = step::StepContext {
                id: host.name.clone(),
                exec: (deps.executor_for)(&host),
                host: host.clone(),
                tools: deps.managers.clone(),
                manager: Arc::new(OnceCell::new()),
                supervisor: mpsc::channel(1).0, // replaced per step by the supervisor
                cancel: cancel.clone(),
                abandon: abandon.clone(),
                reboot: deps.reboot.clone(),
                command_timeout: config.ssh.command_timeout,
                reboot_timeout: config.fleet.reboot_timeout,
                upgrade_timeout: config.fleet.upgrade_timeout,
                holder: holder.clone(),
                outstanding: saved.model.job.clone(),
                lists_max_age: config.fleet.lists_max_age,
                lists_limit: lists_limit.clone(),
                memory: Arc::new(Mutex::new(step::refresh::Remembered::from_model(
                    &saved.model,
                ))),
                history: Arc::new(Mutex::new(saved.model.history.clone())),
                rollback: Arc::new(Mutex::new(saved.model.rollback.clone())),
                baseline: Arc::new(Mutex::new(
                    saved
                        .model
                        .health(crate::health::CheckPhase::Pre)
                        .cloned()
                        .map(Arc::new),
                )),
            };
            let last_refresh = saved.model.last_refresh;
            let host_deps = host::HostDeps {
                step,
                events: events.clone(),
                audit: audit.clone(),
                limit: limit.clone(),
                cluster: host.cluster.clone().map(|name| {
                    clusters
                        .entry(name)
                        .or_insert_with(|| Arc::new(Semaphore::new(1)))
                        .clone()
                }),
                refresh_interval,
                since_last_refresh: last_refresh.and_then(|at| (now - at).to_std().ok()),
                reattaching: reattaching.clone(),
            };
            hosts.push(HostHandle::spawn(
                host,
                (*saved.model.state).clone(),
                host_deps,
                cancel.child_token(),
                &tracker,
            ));
        }
        let index = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.id.clone(), i))
            .collect();

        let guests = hub::DetectedGuests::default();
        tracker.spawn(
            hub::Hub::new(
                &initial,
                saved_wave.clone(),
                deps.paths.snapshot(),
                deps.save_every,
                cancel.clone(),
                config.metrics.textfile.clone(),
                notifier.clone(),
            )
            .with_guests(config.clone(), guests.clone())
            .with_past_waves(past_waves)
            .run(bus, frontend),
        );

        let inner = Inner {
            config,
            hosts,
            index,
            initial,
            events: Mutex::new(Some(events)),
            audit: Mutex::new(Some(audit)),
            notifier: Mutex::new(Some(notifier)),
            audit_file,
            wave: Mutex::new(None),
            // A resumed wave keeps its id; new ones never reuse it.
            next_wave: AtomicU64::new(saved_wave.as_ref().map_or(1, |w| w.id + 1)),
            saved_wave: Mutex::new(saved_wave),
            reattached,
            cancel,
            abandon,
            tracker,
            guests,
        };
        (
            EngineHandle {
                inner: Arc::new(inner),
            },
            frontend_events,
        )
    }
}

impl EngineHandle {
    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// The live audit file (`[audit] file`, else the state dir's), whether or not it is written.
    pub fn audit_file(&self) -> &std::path::Path {
        &self.inner.audit_file
    }

    /// Every host, in config order.
    pub fn hosts(&self) -> &[HostHandle] {
        &self.inner.hosts
    }

    pub fn host(&self, id: &str) -> Option<&HostHandle> {
        self.inner.index.get(id).map(|&i| &self.inner.hosts[i])
    }

    /// Every host as restored at start (model and recent output), in config order, so a
    /// consumer opens on yesterday's picture.
    pub fn initial(&self) -> &[SavedHost] {
        &self.inner.initial
    }

    /// Waits until no host is resolving a job an earlier run left (asking the host about it, and
    /// following it to its end if it still runs), so a batch run starts, and ends, on the real
    /// picture.
    pub async fn reattached(&self) {
        let mut left = self.inner.reattached.clone();
        // The sender lives as long as the supervisors; gone means shutdown: nothing to wait for.
        let _ = left.wait_for(|n| *n == 0).await;
    }

    /// Queues `job` for `host` without waiting.
    pub fn try_send(&self, host: &str, job: Job) -> Result<(), SendError> {
        self.host(host).ok_or(SendError::UnknownHost)?.try_send(job)
    }

    /// Queues a job nobody waits for (the console learns the rest from events).
    pub fn submit(&self, host: &str, kind: JobKind, origin: Origin) -> Result<(), SendError> {
        self.try_send(host, Job::new(kind, origin))
    }

    /// Starts a wave over `request.hosts`; returns its id. Refused while another wave runs.
    /// An unfinished saved wave is discarded: the new wave's record replaces it.
    pub fn start_wave(&self, request: WaveRequest) -> Result<u64, WaveError> {
        if request.hosts.is_empty() {
            return Err(WaveError::NoHosts);
        }
        let queue = WaveQueue::of_with(&request, &self.inner.config, &self.jump_hosts());
        let id = self.inner.next_wave.fetch_add(1, Ordering::Relaxed);
        let launch = Launch {
            id,
            started_at: Utc::now(),
            resumed: None,
        };
        self.launch(request, queue, launch)?;
        lock(&self.inner.saved_wave).take();
        Ok(id)
    }

    /// The unfinished wave the restored snapshot holds (a tendhost stopped or killed
    /// mid-wave), for the frontends to offer; `None` once resumed, discarded or replaced.
    /// The guests the hypervisors' inventories show, `(guest, hypervisor)`.
    pub fn detected_guests(&self) -> Vec<(HostId, HostId)> {
        self.inner.guests.get()
    }

    /// Who carries whom now: jump hosts, declared `runs_on` and detected guests. What waves,
    /// reboots and the console's warnings go by.
    pub fn jump_hosts(&self) -> crate::config::JumpHosts {
        crate::config::JumpHosts::of_fleet(&self.inner.config, &self.detected_guests())
    }

    pub fn saved_wave(&self) -> Option<SavedWave> {
        lock(&self.inner.saved_wave).clone()
    }

    /// Resumes the saved wave under its own id: hosts whose turn is over stay done (failed
    /// ones still count toward the threshold), hosts caught in flight run again once the
    /// engine's reattach of their jobs is done, and the batch numbering goes on. A wave saved
    /// at its threshold pauses there again first. When the config changed under the plan
    /// (see [`SavedWave::differences`]) it resumes only with `accept_changes`: hosts no longer
    /// configured are dropped, changed ones run with their new config.
    pub fn resume_wave(&self, accept_changes: bool) -> Result<u64, WaveError> {
        let saved = self.saved_wave().ok_or(WaveError::NothingToResume)?;
        let config = &self.inner.config;
        let differences = saved.differences(config);
        if !differences.is_empty() && !accept_changes {
            return Err(WaveError::Stale(differences));
        }
        let hosts: Vec<HostId> = saved
            .hosts
            .iter()
            .filter_map(|h| self.host(&h.host).map(|handle| handle.id.clone()))
            .collect();
        if hosts.is_empty() {
            return Err(WaveError::NoHosts);
        }
        let request = WaveRequest::from_saved(&saved.request, hosts);
        let queue = WaveQueue::of_with(&request, config, &self.jump_hosts()).resumed(&saved);
        let ask_first = (saved.status == SavedStatus::Threshold).then(|| {
            saved
                .reason
                .clone()
                .unwrap_or_else(|| "the wave paused at its threshold".to_string())
        });
        let launch = Launch {
            id: saved.id,
            started_at: saved.started_at,
            resumed: Some(ask_first),
        };
        self.launch(request, queue, launch)?;
        lock(&self.inner.saved_wave).take();
        Ok(saved.id)
    }

    /// Forgets the saved wave (the console's "discard"), on disk too. Never waits: with the
    /// hub's queue full the record stays on disk until the next wave replaces it, and is
    /// offered again at the next start.
    pub fn discard_saved_wave(&self) {
        lock(&self.inner.saved_wave).take();
        let events = lock(&self.inner.events).clone();
        if let Some(events) = events {
            events.try_emit(Event::WaveSaved(None));
        }
    }

    fn launch(
        &self,
        request: WaveRequest,
        queue: WaveQueue,
        launch: Launch,
    ) -> Result<(), WaveError> {
        let mut slot = lock(&self.inner.wave);
        if let Some(running) = slot.as_ref()
            && !running.finished.is_cancelled()
        {
            return Err(WaveError::Running(running.id));
        }
        let events = lock(&self.inner.events).clone().ok_or(WaveError::Stopped)?;
        let audit = lock(&self.inner.audit)
            .clone()
            .unwrap_or_else(AuditSink::disabled);
        let handles = request
            .hosts
            .iter()
            .map(|id| match self.host(id) {
                Some(handle) => Ok((id.clone(), handle.clone())),
                None => Err(WaveError::UnknownHost(id.clone())),
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        let digests = self
            .inner
            .config
            .hosts
            .iter()
            .filter(|h| handles.contains_key(&h.name))
            .map(|h| (h.name.to_string(), host_digest(h)))
            .collect();
        let id = launch.id;
        let (paused, paused_rx) = watch::channel(false);
        let (decide, decisions) = mpsc::channel(1);
        let at_threshold = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let control = wave::WaveControl {
            id,
            paused,
            abort: CancellationToken::new(),
            finished: CancellationToken::new(),
            decide,
            at_threshold: at_threshold.clone(),
        };
        let (reattached, ask_first) = match launch.resumed {
            Some(ask_first) => (Some(self.inner.reattached.clone()), ask_first),
            None => (None, None),
        };
        let runner = wave::WaveRunner {
            id,
            queue,
            handles,
            request,
            download_concurrency: self.inner.config.fleet.download_concurrency,
            events,
            audit,
            paused: paused_rx,
            abort: control.abort.clone(),
            finished: control.finished.clone(),
            cancel: self.inner.cancel.clone(),
            decisions,
            at_threshold,
            started_at: launch.started_at,
            digests,
            reattached,
            ask_first,
            unsaved: false,
            threshold_reason: None,
        };
        self.inner.tracker.spawn(runner.run());
        *slot = Some(control);
        Ok(())
    }

    /// Pauses the running wave: no host starts (in batches: before the next batch) until it is
    /// resumed; hosts in flight finish.
    pub fn pause_wave(&self) -> Result<(), WaveError> {
        self.with_wave(|w| {
            w.paused.send_replace(true);
        })
    }

    /// Lets a wave paused by [`pause_wave`](Self::pause_wave) go on.
    pub fn unpause_wave(&self) -> Result<(), WaveError> {
        self.with_wave(|w| {
            w.paused.send_replace(false);
        })
    }

    /// The operator's choice for a wave paused at its threshold (`WaveStatus::Threshold`).
    /// Refused when no wave waits for one (none runs, or it is not at its threshold, or another
    /// choice came first).
    pub fn decide_wave(&self, choice: ThresholdChoice) -> Result<(), WaveError> {
        let mut taken = false;
        self.with_wave(|w| taken = w.decide(choice))?;
        if taken {
            Ok(())
        } else {
            Err(WaveError::NotAtThreshold)
        }
    }

    /// Aborts the running wave: no new host starts, in-flight hosts stop at their next safe point.
    pub fn abort_wave(&self) -> Result<(), WaveError> {
        self.with_wave(|w| w.abort.cancel())
    }

    fn with_wave(&self, f: impl FnOnce(&wave::WaveControl)) -> Result<(), WaveError> {
        match lock(&self.inner.wave).as_ref() {
            Some(w) if !w.finished.is_cancelled() => {
                f(w);
                Ok(())
            }
            _ => Err(WaveError::NotRunning),
        }
    }

    /// Records a mutating action that happened outside a host (a config change, say). A
    /// skipped schedule (`action = "schedule"`, `result = "skipped"`, detail `NAME: reason`)
    /// is also a `schedule_skipped` notice: every frontend records one, so this is where
    /// notifications learn of it.
    pub async fn audit(&self, record: AuditRecord) {
        if record.action == "schedule" && record.result == "skipped" {
            let detail = record.detail.as_deref().unwrap_or("");
            let (name, reason) = detail
                .split_once(": ")
                .unwrap_or((detail, "no reason given"));
            self.notify_schedule_skipped(name, reason);
        }
        let sink = lock(&self.inner.audit).clone();
        if let Some(sink) = sink {
            sink.record(record).await;
        }
    }

    /// Tells `[[notify]]` that the schedule `name` did not run, and why. Never waits (a full
    /// queue drops the notice) and does nothing without notifiers or once stopping.
    /// [`audit`](Self::audit) calls it for a skipped schedule's record: call one or the other.
    pub fn notify_schedule_skipped(&self, name: &str, reason: &str) {
        let notifier = lock(&self.inner.notifier).clone();
        if let Some(notifier) = notifier.filter(crate::notify::Notifier::is_enabled) {
            notifier.send(crate::notify::Notice::new(
                crate::config::NoticeKind::ScheduleSkipped,
                format!("schedule {name} skipped: {reason}"),
                Vec::new(),
            ));
        }
    }

    /// Stops everything. Queries, waits and waves stop at once; upgrades in flight are let
    /// finish for up to `grace` (killing apt half-way is worse than waiting), then abandoned.
    /// The hub saves a last snapshot. Returns false when something did not stop in time.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.inner.cancel.cancel();
        // Drop our own senders so the hub and the audit appender see their inputs close.
        lock(&self.inner.events).take();
        lock(&self.inner.audit).take();
        lock(&self.inner.notifier).take();
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_ok()
        {
            return true;
        }
        self.abandon();
        tokio::time::timeout(
            SHUTDOWN_GRACE + Duration::from_secs(5),
            self.inner.tracker.wait(),
        )
        .await
        .is_ok()
    }

    /// Stops the engine the way an operator expects: at once, normally — an upgrade running as
    /// a detached job (see `remote::job`) only stops being followed and finishes on its host.
    /// A step that cannot stop at once (an attached upgrade, as simulated hosts run them) is
    /// let finish within `[ssh] command_timeout`, after `notice` (once) said so, and abandoned
    /// on SIGINT, SIGTERM or SIGHUP. Returns false when something did not stop in time.
    pub async fn stop(&self, notice: impl FnOnce()) -> bool {
        let grace = self.inner.config.ssh.command_timeout;
        let stopping = self.shutdown(grace);
        tokio::pin!(stopping);
        tokio::select! {
            done = &mut stopping => return done,
            () = tokio::time::sleep(Duration::from_secs(1)) => notice(),
        }
        let Ok(mut signals) = crate::signals::StopSignals::new() else {
            return stopping.await;
        };
        tokio::select! {
            done = &mut stopping => done,
            () = signals.recv() => { self.abandon(); stopping.await }
        }
    }

    /// Stops upgrades in flight now (a second Ctrl-C): their hosts end up Failed with the
    /// reason, for the operator to check with `dpkg --audit` or `dnf history`.
    pub fn abandon(&self) {
        self.inner.abandon.cancel();
    }
}

/// How a wave is launched: fresh, or resumed from its record.
struct Launch {
    id: u64,
    started_at: chrono::DateTime<Utc>,
    /// `Some` when resumed; inside, the reason to ask again first when it was saved at its
    /// threshold.
    resumed: Option<Option<String>>,
}

/// Who this tendhost is, as the host lock names it to anyone it refuses.
fn job_holder() -> String {
    let machine = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "an unknown machine".to_string());
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {}", nix::unistd::getuid()), |u| u.name);
    format!(
        "tendhost on {machine} (user {user}, pid {})",
        std::process::id()
    )
}

/// The engine's std mutexes guard a few fields swapped without any `.await` inside, so a panic
/// cannot leave them half-written: a poisoned one is still sound to use.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
