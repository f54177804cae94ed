//! Headless mode (`--batch`): the same engine as the TUI, another consumer of its events.
//!
//! One request (command + selection + options) runs to completion; results are tallied per host,
//! never fatal; the exit code is computed once at the end (DESIGN.md §3). SIGINT, SIGTERM and
//! SIGHUP stop the engine cleanly and exit 3. Output goes through [`output::Printer`]: JSON lines
//! or a table on stdout, progress on stderr. This module never talks to a host except through
//! the engine.

mod output;

use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::{BatchArgs, BatchCommand, FailedArg, ThresholdArg};
use crate::config::{
    BatchSize, Config, FailureLimit, HostId, JumpHosts, OnThreshold, WaveMode, parse_duration,
};
use crate::engine::bus::{WaveProgress, WaveStatus};
use crate::engine::{
    EngineHandle, Event, Job, JobKind, Origin, Outcome, ThresholdChoice, WaveError, WaveRequest,
};
use crate::exit::Exit;
use crate::fleet::HostModel;
use crate::fleet::select::{Selectors, select};
use crate::pkg::UpgradeScope;
use crate::signals::StopSignals;
use crate::stdio;
pub use output::Printer;

/// A validated batch invocation.
#[derive(Debug, Clone)]
pub struct Request {
    pub command: BatchCommand,
    pub hosts: Vec<HostId>,
    pub json: bool,
    pub dry_run: bool,
    pub allow_removals: bool,
    /// `--refresh-lists`: an inventory refreshes the lists and reads afresh.
    pub refresh_lists: bool,
    /// `--packages`, `--security-only`: which updates an `update` (or the wave) takes.
    pub scope: UpgradeScope,
    /// Set for `wave`.
    pub wave: Option<WaveRequest>,
    /// `wave --plan`: dry-run the selection and print the wave's plan instead of running it.
    pub plan: bool,
    /// `hosts` in the order jobs are given: for `update` and `reboot`, jump hosts after the
    /// hosts behind them (each phase waits for the one before); otherwise one phase.
    pub phases: Vec<Vec<HostId>>,
    /// Set for `wave --resume`: continue the saved wave instead of starting `wave`.
    pub resume: Option<Resume>,
    /// `reboot --reboot-jump-hosts`: hosts others reach through or run on may be rebooted too.
    pub reboot_jump_hosts: bool,
    /// `rollback --stack`: the one stack to roll back.
    pub stack: Option<Arc<str>>,
}

/// `--resume` and what goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// `--accept-changes`: go on although the config changed under the plan.
    pub accept_changes: bool,
    /// `--failed`: the choice for a wave saved at its threshold.
    pub failed: Option<ThresholdChoice>,
}

impl Request {
    /// Checks selectors and options against the config; `Err` is a usage error (exit 2), which
    /// includes a selection that matches no host.
    pub fn new(
        command: BatchCommand,
        args: &BatchArgs,
        config: &Config,
    ) -> Result<Request, String> {
        let resume = resume_of(command, args)?;
        let hosts = select(config, &Selectors::from(&args.select)).map_err(|e| e.to_string())?;
        let wave_only = args.batch_size.is_some()
            || args.delay.is_some()
            || args.max_failures.is_some()
            || args.on_threshold.is_some();
        if wave_only && command != BatchCommand::Wave {
            return Err(
                "--batch-size, --delay, --max-failures and --on-threshold only apply to 'wave'"
                    .into(),
            );
        }
        if args.since.is_some() {
            return Err("--since only applies to 'history'".into());
        }
        if args.no_defer && command != BatchCommand::Wave {
            return Err("--no-defer only applies to 'wave'".into());
        }
        if args.dry_run
            && !matches!(
                command,
                BatchCommand::Update | BatchCommand::Wave | BatchCommand::Rollback
            )
        {
            return Err("--dry-run only applies to 'update', 'wave' and 'rollback'".into());
        }
        let stack = rollback_stack(command, args, &hosts)?;
        if args.plan && command != BatchCommand::Wave {
            return Err("--plan only applies to 'wave'".into());
        }
        if args.reboot_jump_hosts && command != BatchCommand::Reboot {
            return Err("--reboot-jump-hosts only applies to 'reboot'".into());
        }
        let scope = scope_of(args)?;
        if !scope.is_everything() && !matches!(command, BatchCommand::Update | BatchCommand::Wave) {
            return Err("--packages and --security-only only apply to 'update' and 'wave'".into());
        }
        let wave = (command == BatchCommand::Wave && resume.is_none())
            .then(|| wave_request(args, config, hosts.clone(), scope.clone()))
            .transpose()?;
        let jumps = JumpHosts::of(config);
        if command == BatchCommand::Reboot && !args.reboot_jump_hosts {
            refuse_jump_host_reboots(&hosts, &jumps)?;
        }
        let phases = match command {
            BatchCommand::Update | BatchCommand::Reboot => jumps.phases(&hosts),
            _ => vec![hosts.clone()],
        };
        Ok(Request {
            command,
            hosts,
            json: args.json,
            dry_run: args.dry_run,
            allow_removals: args.allow_removals,
            refresh_lists: args.refresh_lists,
            scope,
            wave,
            plan: args.plan,
            phases,
            resume,
            reboot_jump_hosts: args.reboot_jump_hosts,
            stack,
        })
    }

    /// The job each selected host gets; `None` for commands that only report (or a wave).
    fn job(&self) -> Option<JobKind> {
        Some(match self.command {
            BatchCommand::Inventory if self.refresh_lists => JobKind::RefreshLists,
            BatchCommand::Inventory => JobKind::Refresh,
            BatchCommand::Update => JobKind::Update {
                dry_run: self.dry_run,
                allow_removals: self.allow_removals,
            },
            BatchCommand::Reboot => JobKind::Reboot,
            BatchCommand::Repair => JobKind::Repair,
            BatchCommand::Rollback => JobKind::Rollback {
                dry_run: self.dry_run,
            },
            BatchCommand::Retry => JobKind::Retry,
            BatchCommand::Ack => JobKind::Acknowledge,
            BatchCommand::Check
            | BatchCommand::Hosts
            | BatchCommand::Wave
            | BatchCommand::History => return None,
        })
    }
}

/// A rollback undoes work on purpose, so it is never fleet-wide by default: it needs hosts named
/// (or a tag or group); `--stack` names one stack of one host.
fn rollback_stack(
    command: BatchCommand,
    args: &BatchArgs,
    hosts: &[HostId],
) -> Result<Option<Arc<str>>, String> {
    if command != BatchCommand::Rollback {
        return match args.stack {
            Some(_) => Err("--stack only applies to 'rollback'".into()),
            None => Ok(None),
        };
    }
    let select = &args.select;
    if select.hosts.is_empty() && select.tags.is_empty() && select.groups.is_empty() {
        return Err(
            "rollback needs the hosts to roll back: name them (or use --tag or --group)".into(),
        );
    }
    match (&args.stack, hosts) {
        (None, _) => Ok(None),
        (Some(path), [_]) => Ok(Some(Arc::from(path.as_str()))),
        (Some(_), _) => Err(format!(
            "--stack names a stack of one host, but {} hosts are selected",
            hosts.len()
        )),
    }
}

/// A script cannot be asked again as the console asks, so rebooting a jump host needs
/// `--reboot-jump-hosts`; without it nothing runs and the refusal names whom it would cut off.
fn refuse_jump_host_reboots(hosts: &[HostId], jumps: &JumpHosts) -> Result<(), String> {
    let refused: Vec<String> = hosts
        .iter()
        .filter(|host| !jumps.behind(host).is_empty())
        .map(|host| format!("'{host}' {}", jumps.describe_reboot(host)))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(format!(
        "refusing to reboot a host that others reach through or run on ({}); add \
         --reboot-jump-hosts to reboot it after them, or leave it out with --exclude",
        refused.join("; ")
    ))
}

/// The scope `--packages` and `--security-only` ask for; a name that cannot be a package is a
/// usage error, before any host is asked.
fn scope_of(args: &BatchArgs) -> Result<UpgradeScope, String> {
    let scope = UpgradeScope::of_packages(&args.packages, args.security_only)
        .map_err(|e| format!("--packages: {e}"))?;
    // `--packages ''` (an empty variable in a script) must not widen into "everything".
    if !args.packages.is_empty() && scope.packages.is_empty() {
        return Err("--packages: names no package".into());
    }
    Ok(scope)
}

/// `--resume` continues a wave as it was planned, so nothing that would plan another may come
/// with it (a usage error rather than a silently ignored flag); `--accept-changes` and
/// `--failed` only mean something with it.
fn resume_of(command: BatchCommand, args: &BatchArgs) -> Result<Option<Resume>, String> {
    if !args.resume {
        if args.accept_changes || args.failed.is_some() {
            return Err("--accept-changes and --failed only apply with --resume".into());
        }
        return Ok(None);
    }
    if command != BatchCommand::Wave {
        return Err("--resume only applies to 'wave'".into());
    }
    let select = &args.select;
    let selects = !select.hosts.is_empty()
        || !select.tags.is_empty()
        || !select.groups.is_empty()
        || !select.exclude.is_empty();
    let plans = args.batch_size.is_some()
        || args.delay.is_some()
        || args.max_failures.is_some()
        || args.on_threshold.is_some()
        || args.barriers
        || args.dry_run
        || args.allow_removals;
    if selects || plans {
        return Err(
            "--resume continues the saved wave as it was planned: it takes no host \
                    selectors and no wave options (--batch-size, --delay, --max-failures, \
                    --on-threshold, --barriers, --dry-run, --allow-removals)"
                .into(),
        );
    }
    let failed = args.failed.map(|choice| match choice {
        FailedArg::Retry => ThresholdChoice::RetryFailed,
        FailedArg::Skip => ThresholdChoice::SkipFailed,
        FailedArg::Continue => ThresholdChoice::Continue,
    });
    Ok(Some(Resume {
        accept_changes: args.accept_changes,
        failed,
    }))
}

fn wave_request(
    args: &BatchArgs,
    config: &Config,
    hosts: Vec<HostId>,
    scope: UpgradeScope,
) -> Result<WaveRequest, String> {
    let sizes = match &args.batch_size {
        Some(text) => BatchSize::parse_list(text).map_err(|e| format!("--batch-size: {e}"))?,
        None => config.fleet.batch_size.clone(),
    };
    let delay = match &args.delay {
        Some(text) => parse_duration(text).map_err(|e| format!("--delay: {e}"))?,
        None => config.fleet.delay,
    };
    let max_failures = match &args.max_failures {
        Some(text) => FailureLimit::parse(text).map_err(|e| format!("--max-failures: {e}"))?,
        None => config.fleet.max_failures,
    };
    Ok(WaveRequest {
        hosts,
        sizes,
        delay,
        max_failures,
        mode: if args.barriers {
            WaveMode::Batches
        } else {
            config.fleet.wave_mode
        },
        dry_run: args.dry_run,
        allow_removals: args.allow_removals,
        scope,
        on_threshold: match args.on_threshold {
            Some(ThresholdArg::Pause) => OnThreshold::Pause,
            Some(ThresholdArg::Abort) => OnThreshold::Abort,
            None => config.fleet.on_threshold.unwrap_or(OnThreshold::Abort),
        },
        defer_overruns: !args.no_defer,
    })
}

/// How one host ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostResult {
    /// `hosts` only reports; nothing ran.
    Reported,
    Succeeded,
    Skipped(String),
    Failed(String),
}

/// Runs `request` on a started engine, printing as it goes; returns the exit code. Stops the
/// engine before returning.
pub async fn run(
    engine: EngineHandle,
    events: mpsc::Receiver<Event>,
    request: Request,
    printer: Printer,
) -> Exit {
    let interrupt = CancellationToken::new();
    // Listening starts here, before any host is touched, so no early signal kills us outright.
    let signals = StopSignals::new().ok();
    let watcher = tokio::spawn(watch_signals(signals, interrupt.clone()));
    let exit = Runner::new(engine, events, request, printer, interrupt)
        .run()
        .await;
    watcher.abort();
    exit
}

struct Runner {
    engine: EngineHandle,
    events: mpsc::Receiver<Event>,
    request: Request,
    printer: Printer,
    interrupt: CancellationToken,
    models: HashMap<HostId, HostModel>,
    results: HashMap<HostId, HostResult>,
    wave: Option<WaveProgress>,
    /// The progress at which the wave paused at its threshold and this run stopped (exit 5).
    threshold: Option<WaveProgress>,
}

impl Runner {
    fn new(
        engine: EngineHandle,
        events: mpsc::Receiver<Event>,
        request: Request,
        printer: Printer,
        interrupt: CancellationToken,
    ) -> Self {
        let models = engine
            .initial()
            .iter()
            .filter(|saved| request.hosts.contains(&saved.model.name))
            .map(|saved| (saved.model.name.clone(), saved.model.clone()))
            .collect();
        Runner {
            engine,
            events,
            request,
            printer,
            interrupt,
            models,
            results: HashMap::new(),
            wave: None,
            threshold: None,
        }
    }

    async fn run(mut self) -> Exit {
        if self.wait_reattached().await {
            return self.finish(true).await;
        }
        // The config's jump hosts were checked before the engine started; the guests the
        // hypervisors' inventories show are known now.
        let jumps = self.engine.jump_hosts();
        if matches!(
            self.request.command,
            BatchCommand::Update | BatchCommand::Reboot
        ) {
            if self.request.command == BatchCommand::Reboot
                && !self.request.reboot_jump_hosts
                && let Err(why) = refuse_jump_host_reboots(&self.request.hosts, &jumps)
            {
                stdio::err_line(format!("tendhost: {why}"));
                self.request.hosts.clear();
                let _ = self.finish(false).await;
                return Exit::Usage;
            }
            self.request.phases = jumps.phases(&self.request.hosts);
        }
        if let Some(resume) = self.request.resume
            && let Err(why) = self.resume(resume)
        {
            stdio::err_line(format!("tendhost: {why}"));
            self.request.hosts.clear();
            let _ = self.finish(false).await;
            return Exit::Usage;
        }
        let interrupted = match (self.request.command, self.request.job()) {
            // The plan needs every host's dry run; the engine bounds how many run at once.
            (BatchCommand::Wave, _) if self.request.plan => {
                let dry_run = JobKind::Update {
                    dry_run: true,
                    allow_removals: self.request.allow_removals,
                };
                self.run_jobs(dry_run).await
            }
            (BatchCommand::Wave, _) => self.run_wave().await,
            (_, Some(kind)) => self.run_jobs(kind).await,
            _ => {
                for host in &self.request.hosts {
                    self.results.insert(host.clone(), HostResult::Reported);
                }
                false
            }
        };
        // A retry of a host whose job outlived its bound follows that job now.
        let interrupted = interrupted || self.wait_reattached().await;
        self.finish(interrupted).await
    }

    /// Waits while hosts resolve jobs an earlier run left (printing what they do); true when
    /// interrupted meanwhile.
    async fn wait_reattached(&mut self) -> bool {
        let engine = self.engine.clone();
        let reattached = engine.reattached();
        tokio::pin!(reattached);
        loop {
            tokio::select! {
                () = &mut reattached => return false,
                Some(event) = self.events.recv() => self.handle_event(event),
                () = self.interrupt.cancelled() => return true,
            }
        }
    }

    /// Gives the selected hosts the job phase by phase (jump hosts after the hosts behind
    /// them) and waits for all; true when interrupted.
    async fn run_jobs(&mut self, kind: JobKind) -> bool {
        for phase in self.request.phases.clone() {
            if self.run_phase(kind, phase).await {
                return true;
            }
        }
        false
    }

    /// Gives every host of `phase` the job (the engine bounds concurrency) and waits for all.
    async fn run_phase(&mut self, kind: JobKind, phase: Vec<HostId>) -> bool {
        let mut answers = FuturesUnordered::new();
        for host in phase {
            let (job, answer) = Job::answered(kind, Origin::Batch);
            let job = job
                .scoped(self.request.scope.clone())
                .of_stack(self.request.stack.clone());
            match self.engine.try_send(&host, job) {
                Ok(()) => answers.push(async move { (host, answer.await) }),
                Err(e) => {
                    self.results.insert(host, HostResult::Failed(e.to_string()));
                }
            }
        }
        while !answers.is_empty() {
            tokio::select! {
                Some((host, outcome)) = answers.next() => {
                    let result = match outcome {
                        Ok(outcome) => result_of(outcome),
                        Err(_) => HostResult::Failed("stopped before finishing".into()),
                    };
                    self.results.insert(host, result);
                }
                Some(event) = self.events.recv() => self.handle_event(event),
                () = self.interrupt.cancelled() => return true,
            }
        }
        false
    }

    /// Resumes the saved wave: the selection becomes its hosts. `Err` is a usage error: no
    /// saved wave, a stale plan without `--accept-changes`, or a wave saved at its threshold
    /// without `--failed`.
    fn resume(&mut self, resume: Resume) -> Result<(), String> {
        let saved = self
            .engine
            .saved_wave()
            .ok_or_else(|| "no unfinished wave to resume".to_string())?;
        if saved.status == crate::store::snapshot::SavedStatus::Threshold && resume.failed.is_none()
        {
            let failed: Vec<String> = saved
                .hosts
                .iter()
                .filter_map(|h| match &h.stand {
                    crate::store::snapshot::Stand::Failed { error, .. } => {
                        Some(format!("{} ({})", h.host, error))
                    }
                    _ => None,
                })
                .collect();
            return Err(format!(
                "the wave paused at its threshold ({}); failed: {}; say what to do with them: \
                 --failed retry, --failed skip or --failed continue",
                saved.reason.as_deref().unwrap_or("too many failures"),
                crate::tui::sanitize::text(&failed.join(", ")).into_owned()
            ));
        }
        self.engine
            .resume_wave(resume.accept_changes)
            .map_err(|e| match e {
                WaveError::Stale(differences) => format!(
                    "the saved wave no longer fits the config: {}; add --accept-changes to \
                     resume it anyway",
                    differences.join("; ")
                ),
                other => other.to_string(),
            })?;
        stdio::err_line(format!("tendhost: resuming the {}", saved.describe()));
        self.request.hosts = saved
            .hosts
            .iter()
            .filter_map(|h| self.engine.host(&h.host).map(|handle| handle.id.clone()))
            .collect();
        Ok(())
    }

    async fn run_wave(&mut self) -> bool {
        if self.request.resume.is_none() {
            let Some(request) = self.request.wave.clone() else {
                return false;
            };
            if let Some(saved) = self.engine.saved_wave() {
                stdio::err_line(format!(
                    "tendhost: notice: discarding the unfinished {} (--resume would have \
                     continued it)",
                    saved.describe()
                ));
            }
            if let Err(e) = self.engine.start_wave(request) {
                for host in &self.request.hosts {
                    self.results
                        .insert(host.clone(), HostResult::Failed(e.to_string()));
                }
                return false;
            }
        }
        let mut choice = self.request.resume.and_then(|r| r.failed);
        loop {
            tokio::select! {
                Some(event) = self.events.recv() => {
                    let ended = matches!(&event, Event::Wave(p) if matches!(p.status,
                        WaveStatus::Finished | WaveStatus::Halted | WaveStatus::Aborted));
                    let at_threshold = match &event {
                        Event::Wave(p) if p.status == WaveStatus::Threshold => Some(p.clone()),
                        _ => None,
                    };
                    self.handle_event(event);
                    if ended {
                        return false;
                    }
                    if let Some(progress) = at_threshold {
                        // The choice given for the saved threshold answers it; any later one
                        // stops the run, the wave saved at it.
                        match choice.take() {
                            Some(choice) if self.engine.decide_wave(choice).is_ok() => {}
                            _ => {
                                self.threshold = Some(progress);
                                return false;
                            }
                        }
                    }
                }
                () = self.interrupt.cancelled() => {
                    // Not an abort: the engine's stop ends the wave with its record kept, so
                    // `--resume` continues it.
                    stdio::err_line(
                        "tendhost: the wave stops here; `tendhost --batch wave --resume` \
                         continues it",
                    );
                    return true;
                }
            }
        }
    }

    fn handle_event(&mut self, event: Event) {
        match &event {
            // Once stopped at the threshold, the wave's end as the engine stops is not news.
            Event::Wave(_) if self.threshold.is_some() => {}
            Event::Wave(progress) => self.wave = Some(progress.clone()),
            Event::WaveHostFinished { host, outcome, .. } => {
                self.results
                    .insert(host.clone(), result_of(outcome.clone()));
            }
            _ => {}
        }
        if let Some(host) = event.host() {
            let Some(model) = self.models.get_mut(host) else {
                return; // a host outside the selection
            };
            model.apply(&event);
        }
        self.printer.event(&event);
    }

    /// Stops the engine, folds in its last events, prints results and the summary.
    async fn finish(mut self, interrupted: bool) -> Exit {
        let engine = self.engine.clone();
        let stopping = tokio::spawn(async move {
            engine
                .stop(|| {
                    stdio::err_line(
                        "tendhost: waiting for host steps to stop; interrupt again to stop at \
                         once (upgrades go on on their hosts and are picked up at the next start)",
                    )
                })
                .await
        });
        while let Some(event) = self.events.recv().await {
            self.handle_event(event);
        }
        let _ = stopping.await;
        if self.request.plan
            && let Some(wave) = self.request.wave.clone()
        {
            return self.finish_plan(wave, interrupted);
        }
        let hosts = self.request.hosts.clone();
        let mut tally = output::Tally::default();
        for host in &hosts {
            let result =
                self.results
                    .get(host)
                    .cloned()
                    .unwrap_or_else(|| match self.request.command {
                        BatchCommand::Wave if !interrupted => {
                            HostResult::Skipped("the wave stopped before this host".into())
                        }
                        _ => HostResult::Failed("interrupted before it finished".into()),
                    });
            tally.add(&result);
            if let Some(model) = self.models.get(host) {
                self.printer.host(model, &result);
            }
        }
        let halted = self
            .wave
            .as_ref()
            .is_some_and(|w| w.status == WaveStatus::Halted);
        self.printer
            .summary(&tally, interrupted, self.wave.as_ref());
        if let Some(paused) = &self.threshold {
            let failed: Vec<String> = paused
                .failed_hosts
                .iter()
                .map(|f| format!("{}: {}", f.host, f.error))
                .collect();
            let text = format!(
                "tendhost: the wave paused at its threshold: {}{}",
                paused.reason.as_deref().unwrap_or("too many failures"),
                if failed.is_empty() {
                    String::new()
                } else {
                    format!("; failed: {}", failed.join(", "))
                }
            );
            // Host errors are the hosts' words: no escape sequence of theirs reaches a terminal.
            stdio::err_line(crate::tui::sanitize::text(&text).into_owned());
            stdio::err_line(
                "tendhost: continue it with `tendhost --batch wave --resume --failed \
                 retry|skip|continue`",
            );
        }
        if interrupted {
            Exit::Interrupted
        } else if self.threshold.is_some() {
            Exit::ThresholdPaused
        } else if tally.failed > 0 || halted {
            Exit::HostFailed
        } else {
            Exit::Ok
        }
    }
}

impl Runner {
    /// `wave --plan`: every dry run is in; compose the plan from the hosts as they now stand
    /// and print it. Exits 1 when a host's dry run failed (its plan is then "unknown").
    fn finish_plan(mut self, wave: WaveRequest, interrupted: bool) -> Exit {
        let mut tally = output::Tally::default();
        let mut failed = HashMap::new();
        for host in &self.request.hosts {
            let result = self
                .results
                .get(host)
                .cloned()
                .unwrap_or_else(|| HostResult::Failed("interrupted before it finished".into()));
            if let HostResult::Failed(why) = &result {
                failed.insert(host.clone(), why.clone());
            }
            tally.add(&result);
        }
        let models: Vec<&HostModel> = self.models.values().collect();
        let config = self.engine.config().clone();
        let plan = crate::plan::compose(&wave, &models, &config, chrono::Local::now());
        self.printer.plan(&plan, &failed);
        self.printer.summary(&tally, interrupted, None);
        if interrupted {
            Exit::Interrupted
        } else if tally.failed > 0 {
            Exit::HostFailed
        } else {
            Exit::Ok
        }
    }
}

/// The engine decided what the job's end means for this requester (`job.rs`); a wave's
/// refusals are hosts it passed over.
fn result_of(outcome: Outcome) -> HostResult {
    match outcome {
        Outcome::Succeeded => HostResult::Succeeded,
        Outcome::Skipped { reason } | Outcome::Refused { reason } => HostResult::Skipped(reason),
        Outcome::Failed { error } => HostResult::Failed(error),
    }
}

/// SIGINT, SIGTERM and SIGHUP (the ssh session that started a batch run went away) all mean
/// the same: stop cleanly and exit 3. Upgrades in flight are let finish (`EngineHandle::stop`).
async fn watch_signals(signals: Option<StopSignals>, interrupt: CancellationToken) {
    let Some(mut signals) = signals else {
        return;
    };
    signals.recv().await;
    stdio::err_line("tendhost: interrupted; stopping cleanly");
    interrupt.cancel();
}
