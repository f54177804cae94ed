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
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::{BatchArgs, BatchCommand};
use crate::config::{BatchSize, Config, FailureLimit, HostId, JumpHosts, WaveMode, parse_duration};
use crate::engine::bus::{WaveProgress, WaveStatus};
use crate::engine::{EngineHandle, Event, Job, JobKind, Origin, Outcome, WaveRequest};
use crate::exit::Exit;
use crate::fleet::HostModel;
use crate::fleet::select::{Selectors, select};
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
    /// Set for `wave`.
    pub wave: Option<WaveRequest>,
    /// `hosts` in the order jobs are given: for `update` and `reboot`, jump hosts after the
    /// hosts behind them (each phase waits for the one before); otherwise one phase.
    pub phases: Vec<Vec<HostId>>,
}

impl Request {
    /// Checks selectors and options against the config; `Err` is a usage error (exit 2), which
    /// includes a selection that matches no host.
    pub fn new(
        command: BatchCommand,
        args: &BatchArgs,
        config: &Config,
    ) -> Result<Request, String> {
        let hosts = select(config, &Selectors::from(&args.select)).map_err(|e| e.to_string())?;
        let wave_only =
            args.batch_size.is_some() || args.delay.is_some() || args.max_failures.is_some();
        if wave_only && command != BatchCommand::Wave {
            return Err("--batch-size, --delay and --max-failures only apply to 'wave'".into());
        }
        if args.dry_run && !matches!(command, BatchCommand::Update | BatchCommand::Wave) {
            return Err("--dry-run only applies to 'update' and 'wave'".into());
        }
        if args.reboot_jump_hosts && command != BatchCommand::Reboot {
            return Err("--reboot-jump-hosts only applies to 'reboot'".into());
        }
        let wave = (command == BatchCommand::Wave)
            .then(|| wave_request(args, config, hosts.clone()))
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
            wave,
            phases,
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
            BatchCommand::Retry => JobKind::Retry,
            BatchCommand::Ack => JobKind::Acknowledge,
            BatchCommand::Check | BatchCommand::Hosts | BatchCommand::Wave => return None,
        })
    }
}

/// A script cannot be asked again as the console asks, so rebooting a jump host needs
/// `--reboot-jump-hosts`; without it nothing runs and the refusal names whom it would cut off.
fn refuse_jump_host_reboots(hosts: &[HostId], jumps: &JumpHosts) -> Result<(), String> {
    let refused: Vec<String> = hosts
        .iter()
        .filter(|host| !jumps.behind(host).is_empty())
        .map(|host| format!("'{host}' carries {}", jumps.describe_behind(host)))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(format!(
        "refusing to reboot a jump host under the hosts behind it ({}); add \
         --reboot-jump-hosts to reboot it after them, or leave it out with --exclude",
        refused.join("; ")
    ))
}

fn wave_request(
    args: &BatchArgs,
    config: &Config,
    hosts: Vec<HostId>,
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
        scope: crate::pkg::UpgradeScope::default(),
        on_threshold: config
            .fleet
            .on_threshold
            .unwrap_or(crate::config::OnThreshold::Abort),
        defer_overruns: true,
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
        }
    }

    async fn run(mut self) -> Exit {
        if self.wait_reattached().await {
            return self.finish(true).await;
        }
        let interrupted = match (self.request.command, self.request.job()) {
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

    async fn run_wave(&mut self) -> bool {
        let Some(request) = self.request.wave.clone() else {
            return false;
        };
        if let Err(e) = self.engine.start_wave(request) {
            for host in &self.request.hosts {
                self.results
                    .insert(host.clone(), HostResult::Failed(e.to_string()));
            }
            return false;
        }
        loop {
            tokio::select! {
                Some(event) = self.events.recv() => {
                    let ended = matches!(&event, Event::Wave(p) if matches!(p.status,
                        WaveStatus::Finished | WaveStatus::Halted | WaveStatus::Aborted));
                    self.handle_event(event);
                    if ended {
                        return false;
                    }
                }
                () = self.interrupt.cancelled() => {
                    let _ = self.engine.abort_wave();
                    return true;
                }
            }
        }
    }

    fn handle_event(&mut self, event: Event) {
        match &event {
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
        if interrupted {
            Exit::Interrupted
        } else if tally.failed > 0 || halted {
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
