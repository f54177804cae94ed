//! Engine behaviour on the simulated fleet: supervisors, refusals, panics, reboots, waves at scale,
//! snapshots and audit. The same behaviours are proven on real sshd hosts in
//! `tests/integration/engine.rs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::bus::{Event, HostCommand, StateKind, StepOutcome, WaveStatus, WaveStep};
use super::sim::{Behaviour, SimFleet};
use super::*;
use crate::config::{BatchSize, Config, FailureLimit};
use crate::store::snapshot;

pub(crate) fn fleet_config(hosts: usize, extra: &str) -> Config {
    let mut text = String::from("[fleet]\nconcurrency = 1000\nreboot_timeout = \"5s\"\n");
    for i in 0..hosts {
        text.push_str(&format!(
            "[[host]]\nname = \"h{i}\"\naddr = \"10.{}.{}.{}\"\n{extra}\n",
            i / 65536 % 256,
            i / 256 % 256,
            i % 256
        ));
    }
    Config::from_str("sim.toml", &text).unwrap()
}

pub(crate) struct Rig {
    pub engine: EngineHandle,
    pub events: mpsc::Receiver<Event>,
    pub dir: tempfile::TempDir,
}

pub(crate) fn start(config: Config, fleet: Arc<SimFleet>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    start_in(config, fleet, dir, None)
}

fn start_in(
    config: Config,
    fleet: Arc<SimFleet>,
    dir: tempfile::TempDir,
    snapshot: Option<snapshot::Snapshot>,
) -> Rig {
    let paths = Paths {
        state_dir: dir.path().to_path_buf(),
        data_dir: dir.path().to_path_buf(),
        config_dir: None,
    };
    let deps = EngineDeps {
        executor_for: fleet.executors(),
        managers: fleet.managers(),
        paths,
        snapshot,
        reboot: RebootSettings {
            poll_interval: Duration::from_millis(50),
            ..RebootSettings::default()
        },
        save_every: Duration::from_millis(100),
        periodic_refresh: false,
    };
    let (engine, events) = Engine::start(Arc::new(config), deps);
    Rig {
        engine,
        events,
        dir,
    }
}

impl Rig {
    /// Runs one step on `host` and returns its outcome, draining events meanwhile.
    pub async fn step(&mut self, host: &str, step: WaveStep) -> StepOutcome {
        let (respond_to, answer) = oneshot::channel();
        let command = HostCommand::RunStep {
            step,
            respond_to,
            stop: CancellationToken::new(),
        };
        self.engine.try_send(host, command).unwrap();
        let mut answer = std::pin::pin!(answer);
        loop {
            tokio::select! {
                outcome = &mut answer => return outcome.unwrap(),
                Some(_) = self.events.recv() => {}
            }
        }
    }

    /// Collects events until `stop` says so (or 30 s pass).
    pub async fn until(&mut self, mut stop: impl FnMut(&Event) -> bool) -> Vec<Event> {
        let mut seen = Vec::new();
        let deadline = tokio::time::sleep(Duration::from_secs(120));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                Some(event) = self.events.recv() => {
                    let done = stop(&event);
                    seen.push(event);
                    if done { return seen; }
                }
                () = &mut deadline => panic!("timed out; saw {} events, last {:?}", seen.len(), seen.last()),
            }
        }
    }

    pub async fn wave_end(&mut self) -> bus::WaveProgress {
        let events = self
            .until(|e| matches!(e, Event::Wave(p) if matches!(p.status, WaveStatus::Finished | WaveStatus::Halted | WaveStatus::Aborted)))
            .await;
        match events.last() {
            Some(Event::Wave(p)) => p.clone(),
            _ => unreachable!(),
        }
    }
}

fn state_of(events: &[Event], host: &str) -> Vec<StateKind> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StateChanged { host: h, to, .. } if &**h == host => Some(*to),
            _ => None,
        })
        .collect()
}

fn update() -> WaveStep {
    WaveStep::Update {
        dry_run: false,
        allow_removals: false,
    }
}

fn wave(hosts: Vec<HostId>, sizes: &str, max_failures: FailureLimit) -> WaveRequest {
    WaveRequest {
        hosts,
        sizes: BatchSize::parse_list(sizes).unwrap(),
        delay: Duration::ZERO,
        max_failures,
        dry_run: false,
        allow_removals: false,
    }
}

#[tokio::test]
async fn update_moves_through_the_states_and_is_audited() {
    let mut rig = start(fleet_config(1, ""), SimFleet::new());
    let (respond_to, answer) = oneshot::channel();
    rig.engine
        .try_send(
            "h0",
            HostCommand::RunStep {
                step: update(),
                respond_to,
                stop: CancellationToken::new(),
            },
        )
        .unwrap();
    let events = rig
        .until(|e| {
            matches!(
                e,
                Event::StateChanged {
                    to: StateKind::Idle,
                    from: StateKind::Updating,
                    ..
                }
            )
        })
        .await;
    assert_eq!(answer.await.unwrap(), StepOutcome::Succeeded);
    assert_eq!(
        state_of(&events, "h0"),
        [
            StateKind::Querying,
            StateKind::PendingUpdates,
            StateKind::Updating,
            StateKind::Idle
        ]
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Output { line, .. } if line.contains("Unpacking")))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::PendingRefreshed { packages, .. } if packages.len() == 2))
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let audit = std::fs::read_to_string(rig.dir.path().join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"action\":\"update\"") && audit.contains("pending_updates -> updating"),
        "{audit}"
    );
    assert!(audit.contains("updating -> idle"), "{audit}");
}

#[tokio::test]
async fn refuses_conflicting_commands_while_updating_and_reads_do_not_wait() {
    let fleet = SimFleet::new();
    fleet.set(
        "h0",
        Behaviour {
            upgrade_time: Duration::from_secs(3),
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(1, ""), fleet);
    rig.engine
        .try_send(
            "h0",
            HostCommand::Update {
                dry_run: false,
                allow_removals: false,
            },
        )
        .unwrap();
    rig.until(|e| {
        matches!(
            e,
            Event::StateChanged {
                to: StateKind::Updating,
                ..
            }
        )
    })
    .await;
    let asked = std::time::Instant::now();
    rig.engine.try_send("h0", HostCommand::Reboot).unwrap();
    let events = rig.until(|e| matches!(e, Event::Refused { .. })).await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "the refusal waited behind the upgrade"
    );
    let Some(Event::Refused {
        reason, command, ..
    }) = events.last()
    else {
        unreachable!()
    };
    assert_eq!(*command, bus::CommandKind::Reboot);
    assert_eq!(&**reason, "busy (updating)");
    assert_eq!(
        rig.engine.try_send("nope", HostCommand::Refresh),
        Err(SendError::UnknownHost)
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_panicking_step_fails_the_host_which_stays_usable_after_retry() {
    let fleet = SimFleet::new();
    fleet.set(
        "h0",
        Behaviour {
            panic_upgrade: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(1, ""), fleet.clone());
    let outcome = rig.step("h0", update()).await;
    let StepOutcome::Failed { error } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        error.contains("panicked") && error.contains("simulated bug"),
        "{error}"
    );
    fleet.set("h0", Behaviour::default());
    assert_eq!(
        rig.step("h0", WaveStep::Retry).await,
        StepOutcome::Succeeded
    );
    assert_eq!(rig.step("h0", update()).await, StepOutcome::Succeeded);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_failed_upgrade_keeps_its_context_until_retried() {
    let fleet = SimFleet::new();
    fleet.set(
        "h0",
        Behaviour {
            fail_upgrade: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(1, ""), fleet);
    let outcome = rig.step("h0", update()).await;
    assert!(
        matches!(&outcome, StepOutcome::Failed { error } if error.starts_with("upgrade: apt-get dist-upgrade failed")),
        "{outcome:?}"
    );
    let refused = rig.step("h0", WaveStep::Refresh).await;
    assert_eq!(
        refused,
        StepOutcome::Refused {
            reason: "cannot refresh: it failed; retry it first".into()
        }
    );
    assert_eq!(
        rig.step("h0", WaveStep::Acknowledge).await,
        StepOutcome::Succeeded
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
    let saved = snapshot::load(&rig.dir.path().join("snapshot.json"))
        .snapshot
        .unwrap();
    let record = &saved.hosts[0];
    let state::Phase::Failed(info) = &record.state.phase else {
        panic!("{record:?}")
    };
    assert!(info.acknowledged);
    assert_eq!(info.previous_state, StateKind::Updating);
}

#[tokio::test]
async fn reboot_round_trip_needs_a_new_boot_id() {
    let policy = "[host.policy]\nauto_reboot = true\n";
    let fleet = SimFleet::new();
    fleet.set(
        "h0",
        Behaviour {
            reboot_required: true,
            ..Behaviour::default()
        },
    );
    fleet.set(
        "h1",
        Behaviour {
            reboot_required: true,
            keep_boot_id: true,
            ..Behaviour::default()
        },
    );
    fleet.set(
        "h2",
        Behaviour {
            reboot_required: true,
            new_host_key: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(3, policy), fleet);
    assert_eq!(rig.step("h0", update()).await, StepOutcome::Succeeded);
    let outcome = rig.step("h1", update()).await;
    assert!(
        matches!(&outcome, StepOutcome::Failed { error } if error.contains("boot id did not change")),
        "{outcome:?}"
    );
    let outcome = rig.step("h2", update()).await;
    assert!(
        matches!(&outcome, StepOutcome::Failed { error } if error.contains("different host key") && !error.contains("within")),
        "{outcome:?}"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn reboot_waits_when_auto_reboot_is_off() {
    let fleet = SimFleet::new();
    fleet.set(
        "h0",
        Behaviour {
            reboot_required: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(
        fleet_config(1, "[host.policy]\nauto_reboot = false\n"),
        fleet,
    );
    let (respond_to, answer) = oneshot::channel();
    rig.engine
        .try_send(
            "h0",
            HostCommand::RunStep {
                step: update(),
                respond_to,
                stop: CancellationToken::new(),
            },
        )
        .unwrap();
    let events = rig
        .until(|e| {
            matches!(
                e,
                Event::StateChanged {
                    to: StateKind::WaitingReboot,
                    ..
                }
            )
        })
        .await;
    assert_eq!(answer.await.unwrap(), StepOutcome::Succeeded);
    let Some(Event::StateChanged {
        reason: Some(reason),
        ..
    }) = events.last()
    else {
        unreachable!()
    };
    assert!(reason.contains("auto_reboot is off"), "{reason}");
    // An explicit reboot is the operator's decision.
    assert_eq!(
        rig.step("h0", WaveStep::Reboot).await,
        StepOutcome::Succeeded
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn wave_over_ten_thousand_hosts_never_exceeds_its_batch_size() {
    let fleet = SimFleet::new();
    let started = std::time::Instant::now();
    let config = fleet_config(10_000, "");
    eprintln!("config: {:?}", started.elapsed());
    let hosts: Vec<HostId> = config.hosts.iter().map(|h| h.name.clone()).collect();
    let mut rig = start(config, fleet.clone());
    rig.engine
        .start_wave(wave(hosts, "500", FailureLimit::Count(0)))
        .unwrap();
    let end = rig.wave_end().await;
    eprintln!("wave done: {:?}", started.elapsed());
    assert_eq!(end.status, WaveStatus::Finished);
    assert_eq!(end.succeeded, 10_000);
    assert_eq!(end.batches, 20);
    assert_eq!(
        fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst),
        10_000
    );
    assert!(fleet.peak() <= 500, "peak {} hosts in flight", fleet.peak());
    assert!(
        fleet.peak() > 250,
        "batches did not run in parallel (peak {})",
        fleet.peak()
    );
    rig.engine.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn wave_canary_first_and_halts_on_max_failures() {
    let fleet = SimFleet::new();
    let config = fleet_config(20, "");
    let hosts: Vec<HostId> = config.hosts.iter().map(|h| h.name.clone()).collect();
    for bad in ["h3", "h4"] {
        fleet.set(
            bad,
            Behaviour {
                fail_upgrade: true,
                ..Behaviour::default()
            },
        );
    }
    let mut rig = start(config, fleet.clone());
    rig.engine
        .start_wave(wave(hosts, "1,5", FailureLimit::Count(1)))
        .unwrap();
    let end = rig.wave_end().await;
    assert_eq!(end.status, WaveStatus::Halted);
    assert_eq!(
        end.batch, 2,
        "halted after the batch holding the second failure"
    );
    assert_eq!((end.succeeded, end.failed), (4, 2));
    assert!(
        end.reason
            .as_deref()
            .unwrap()
            .contains("more than max_failures (1)")
    );
    assert!(fleet.peak() <= 5);
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn wave_pause_resume_and_abort() {
    let fleet = SimFleet::new();
    let config = fleet_config(6, "");
    let hosts: Vec<HostId> = config.hosts.iter().map(|h| h.name.clone()).collect();
    let mut rig = start(config, fleet.clone());
    let mut request = wave(hosts, "2", FailureLimit::Count(0));
    request.delay = Duration::from_millis(300);
    rig.engine.start_wave(request).unwrap();
    assert!(
        rig.engine
            .start_wave(wave(vec!["h0".into()], "1", FailureLimit::Count(0)))
            .is_err()
    );
    rig.until(|e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Delaying))
        .await;
    rig.engine.pause_wave().unwrap();
    rig.until(|e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Paused))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        fleet.upgrades.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "a paused wave started hosts"
    );
    rig.engine.resume_wave().unwrap();
    rig.until(|e| matches!(e, Event::Wave(p) if p.status == WaveStatus::Running && p.batch == 2))
        .await;
    rig.engine.abort_wave().unwrap();
    let end = rig.wave_end().await;
    assert_eq!(end.status, WaveStatus::Aborted);
    assert!(end.done <= 4 && end.done >= 2, "{end:?}");
    assert!(
        rig.engine.abort_wave().is_err(),
        "no wave should be running"
    );
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn snapshot_restores_state_and_fails_hosts_caught_mid_update() {
    let fleet = SimFleet::new();
    fleet.set(
        "h1",
        Behaviour {
            upgrade_time: Duration::from_secs(30),
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(2, ""), fleet.clone());
    rig.engine
        .try_send(
            "h1",
            HostCommand::Update {
                dry_run: false,
                allow_removals: false,
            },
        )
        .unwrap();
    assert_eq!(
        rig.step("h0", WaveStep::Refresh).await,
        StepOutcome::Succeeded
    );
    rig.until(|e| {
        matches!(
            e,
            Event::StateChanged {
                to: StateKind::Updating,
                ..
            }
        )
    })
    .await;
    // Let the hub save, then "kill -9": read the file as it is now, without a clean shutdown.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loaded = snapshot::load(&rig.dir.path().join("snapshot.json"));
    let saved = loaded.snapshot.unwrap();
    assert_eq!(saved.hosts[1].state.kind(), StateKind::Updating);
    let dir = tempfile::tempdir().unwrap();
    let again = start_in(fleet_config(2, ""), fleet, dir, Some(saved));
    let initial = again.engine.initial();
    assert_eq!(initial[0].state.kind(), StateKind::PendingUpdates);
    assert_eq!(initial[0].pending.len(), 2);
    assert_eq!(
        initial[1].error(),
        Some("interrupted during updating: tendhost stopped; verify the host")
    );
    again.engine.shutdown(Duration::from_secs(5)).await;
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_stops_running_steps_and_saves() {
    let fleet = SimFleet::new();
    fleet.set(
        "h0",
        Behaviour {
            upgrade_time: Duration::from_secs(60),
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(1, ""), fleet);
    rig.engine
        .try_send(
            "h0",
            HostCommand::Update {
                dry_run: false,
                allow_removals: false,
            },
        )
        .unwrap();
    rig.until(|e| {
        matches!(
            e,
            Event::StateChanged {
                to: StateKind::Updating,
                ..
            }
        )
    })
    .await;
    let started = std::time::Instant::now();
    assert!(rig.engine.shutdown(Duration::from_secs(5)).await);
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(rig.dir.path().join("snapshot.json").exists());
}
