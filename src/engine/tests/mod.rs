//! Engine behaviour on the simulated fleet: supervisors, refusals, panics, reboots, waves at scale,
//! snapshots and audit. The same behaviours are proven on real sshd hosts in
//! `tests/integration/engine.rs`.

mod deferral;
mod hosts;
mod lists;
mod notify;
mod pace;
mod resume;
mod scope;
mod threshold;
mod waves;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::bus::{Event, Job, JobKind, Origin, Outcome, StateKind, WaveStatus};
use super::testkit::{Behaviour, SimFleet};
use super::*;
use crate::config::{BatchSize, Config, FailureLimit};
use crate::store::snapshot;

pub(crate) fn fleet_config(hosts: usize, extra: &str) -> Config {
    fleet_config_each(hosts, |_| extra.to_string())
}

/// A fleet of `hosts` hosts `h0`, `h1`, …; `extra(i)` is appended to host `i`'s table.
pub(crate) fn fleet_config_each(hosts: usize, extra: impl Fn(usize) -> String) -> Config {
    fleet_config_named((0..hosts).map(|i| format!("h{i}")), extra)
}

/// A fleet of the hosts `names`, in order (the console's tests name theirs `host-00`, …);
/// `extra(i)` is appended to host `i`'s table.
pub(crate) fn fleet_config_named(
    names: impl IntoIterator<Item = String>,
    extra: impl Fn(usize) -> String,
) -> Config {
    let mut text = String::from("[fleet]\nconcurrency = 1000\nreboot_timeout = \"5s\"\n");
    for (i, name) in names.into_iter().enumerate() {
        text.push_str(&format!(
            "[[host]]\nname = \"{name}\"\naddr = \"10.{}.{}.{}\"\n{}\n",
            i / 65536 % 256,
            i / 256 % 256,
            i % 256,
            extra(i)
        ));
    }
    Config::from_str("sim.toml", &text).unwrap()
}

/// A fleet whose `host` behaves as `behaviour` says (the others as by default).
pub(crate) fn fleet_where(host: &str, behaviour: Behaviour) -> Arc<SimFleet> {
    let fleet = SimFleet::new();
    fleet.set(host, behaviour);
    fleet
}

/// A fleet whose `h0` takes `upgrade_time` to upgrade.
pub(crate) fn slow_fleet(upgrade_time: Duration) -> Arc<SimFleet> {
    fleet_where(
        "h0",
        Behaviour {
            upgrade_time,
            ..Behaviour::default()
        },
    )
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

pub(crate) fn start_in(
    config: Config,
    fleet: Arc<SimFleet>,
    dir: tempfile::TempDir,
    snapshot: Option<snapshot::Snapshot>,
) -> Rig {
    let deps = EngineDeps {
        snapshot,
        reboot: RebootSettings {
            poll_interval: Duration::from_millis(50),
            ..RebootSettings::default()
        },
        save_every: Duration::from_millis(100),
        ..fleet.engine_deps(dir.path())
    };
    start_with(config, deps, dir)
}

/// An engine as `tendhost` runs it (periodic refreshes, default reboot settings, saving every
/// 2 s), on the simulated `fleet`; for tests on paused time.
pub(super) fn start_periodic(config: Config, fleet: Arc<SimFleet>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let deps = EngineDeps {
        save_every: Duration::from_secs(2),
        periodic_refresh: true,
        ..fleet.engine_deps(dir.path())
    };
    start_with(config, deps, dir)
}

fn start_with(config: Config, deps: EngineDeps, dir: tempfile::TempDir) -> Rig {
    let (engine, events) = Engine::start(Arc::new(config), deps);
    Rig {
        engine,
        events,
        dir,
    }
}

impl Rig {
    /// Gives `host` a job as the console would, but waits for its outcome (on the returned
    /// receiver): refusals stay refusals.
    pub(crate) fn send_step(&self, host: &str, kind: JobKind) -> oneshot::Receiver<Outcome> {
        self.send_job(host, kind, Origin::Console)
    }

    /// Gives `host` an update as the console does (nobody waits for its outcome).
    pub(crate) fn send_update(&self, host: &str) {
        self.engine
            .try_send(host, Job::new(update(), Origin::Console))
            .unwrap();
    }

    /// Gives `host` a job from `origin`; its outcome arrives on the returned receiver.
    pub(crate) fn send_job(
        &self,
        host: &str,
        kind: JobKind,
        origin: Origin,
    ) -> oneshot::Receiver<Outcome> {
        let (job, answer) = Job::answered(kind, origin);
        self.engine.try_send(host, job).unwrap();
        answer
    }

    /// Runs one job on `host` (see `send_step`) and returns its outcome, draining events
    /// meanwhile.
    pub(crate) async fn step(&mut self, host: &str, kind: JobKind) -> Outcome {
        self.step_from(host, kind, Origin::Console).await
    }

    /// Runs one job from `origin` and returns its outcome, draining events meanwhile.
    pub(crate) async fn step_from(&mut self, host: &str, kind: JobKind, origin: Origin) -> Outcome {
        let answer = self.send_job(host, kind, origin);
        let mut answer = std::pin::pin!(answer);
        loop {
            tokio::select! {
                outcome = &mut answer => return outcome.unwrap(),
                Some(_) = self.events.recv() => {}
            }
        }
    }

    /// Waits for the next host to start a query (each event within `within`) and names it.
    pub(crate) async fn next_query(&mut self, within: Duration) -> HostId {
        loop {
            let event = tokio::time::timeout(within, self.events.recv())
                .await
                .unwrap()
                .unwrap();
            if let Event::StateChanged {
                host,
                to: StateKind::Querying,
                ..
            } = event
            {
                return host;
            }
        }
    }

    /// Collects events until some host moves to `to`.
    pub(crate) async fn until_state(&mut self, to: StateKind) -> Vec<Event> {
        self.until(|e| matches!(e, Event::StateChanged { to: reached, .. } if *reached == to))
            .await
    }

    /// Collects events until `stop` says so, or a safety net passes: generous, because the
    /// 10,000-host waves run in real time, and on a loaded 2-core machine that is slow.
    pub(crate) async fn until(&mut self, mut stop: impl FnMut(&Event) -> bool) -> Vec<Event> {
        let mut seen = Vec::new();
        let deadline = tokio::time::sleep(Duration::from_secs(300));
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

    pub(crate) async fn wave_end(&mut self) -> bus::WaveProgress {
        let events = self.until(wave_ended).await;
        last_progress(&events)
    }
}

/// The last progress of a wave: finished, halted or aborted.
pub(crate) fn wave_ended(event: &Event) -> bool {
    matches!(event, Event::Wave(p) if matches!(p.status, WaveStatus::Finished | WaveStatus::Halted | WaveStatus::Aborted))
}

/// The progress in the last of `events` (collected until [`wave_ended`]).
pub(super) fn last_progress(events: &[Event]) -> bus::WaveProgress {
    match events.last() {
        Some(Event::Wave(p)) => p.clone(),
        _ => unreachable!("the events end with the wave's end"),
    }
}

pub(super) fn state_of(events: &[Event], host: &str) -> Vec<StateKind> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StateChanged { host: h, to, .. } if &**h == host => Some(*to),
            _ => None,
        })
        .collect()
}

pub(super) fn update() -> JobKind {
    JobKind::Update {
        dry_run: false,
        allow_removals: false,
    }
}

pub(super) fn wave(hosts: Vec<HostId>, sizes: &str, max_failures: FailureLimit) -> WaveRequest {
    WaveRequest {
        hosts,
        sizes: BatchSize::parse_list(sizes).unwrap(),
        delay: Duration::ZERO,
        max_failures,
        mode: crate::config::WaveMode::Batches,
        dry_run: false,
        allow_removals: false,
        scope: crate::pkg::UpgradeScope::default(),
        on_threshold: crate::config::OnThreshold::Abort,
        defer_overruns: true,
    }
}

#[tokio::test]
async fn snapshot_restores_state_and_fails_hosts_caught_mid_update() {
    let fleet = fleet_where(
        "h1",
        Behaviour {
            upgrade_time: Duration::from_secs(30),
            ..Behaviour::default()
        },
    );
    let mut rig = start(fleet_config(2, ""), fleet.clone());
    rig.send_update("h1");
    assert_eq!(rig.step("h0", JobKind::Refresh).await, Outcome::Succeeded);
    rig.until_state(StateKind::Updating).await;
    // Let the hub save, then "kill -9": read the file as it is now, without a clean shutdown.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loaded = snapshot::load(&rig.dir.path().join("snapshot.json"));
    let saved = loaded.snapshot.unwrap();
    assert_eq!(saved.hosts[1].model.kind(), StateKind::Updating);
    let dir = tempfile::tempdir().unwrap();
    let again = start_in(fleet_config(2, ""), fleet, dir, Some(saved));
    let initial = again.engine.initial();
    assert_eq!(initial[0].model.kind(), StateKind::PendingUpdates);
    assert_eq!(initial[0].model.pending_count(), Some(2));
    assert_eq!(
        initial[1].model.state.error(),
        Some("interrupted during updating: tendhost stopped; verify the host")
    );
    again.engine.shutdown(Duration::from_secs(5)).await;
    rig.engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_stops_running_steps_and_saves() {
    let fleet = slow_fleet(Duration::from_secs(60));
    let mut rig = start(fleet_config(1, ""), fleet);
    rig.send_update("h0");
    rig.until_state(StateKind::Updating).await;
    let started = std::time::Instant::now();
    assert!(rig.engine.shutdown(Duration::from_secs(5)).await);
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(rig.dir.path().join("snapshot.json").exists());
}
