//! Engine figures: (a) a 200-host wave on the simulated fleet (upgrades take no time, so every
//! microsecond is engine overhead), (b) 50 real sshd hosts: an inventory of all, then a dry-run
//! wave. Prints wall time, engine time per host event, peak RSS and RSS per host.
//!
//! `cargo bench --bench engine [-- SIM_HOSTS [SSH_HOSTS]]` (defaults 200 and 50; SSH_HOSTS 0 skips
//! part b). Part b needs root and openssh-server. Not a test: it prints figures, asserts little.

// Test and benchmark code: a failed unwrap is a failed run, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests start sshd, apt and tendhost itself; `remote::child` is the rule for the crate's own
// children (clippy.toml).
#![allow(clippy::disallowed_methods)]

#[path = "../tests/integration/harness/sshd/mod.rs"]
mod sshd;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tendhost::config::{BatchSize, Config, FailureLimit, HostId, KnownHostsPolicy};
use tendhost::engine::bus::{JobKind, Outcome, WaveStatus};
use tendhost::engine::testkit::{Behaviour, SimFleet};
use tendhost::engine::{Engine, EngineDeps, EngineHandle, Event, Job, Origin, WaveRequest};
use tendhost::remote::RemoteContext;
use tendhost::store::Paths;
use tokio::sync::mpsc;

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    let sim_hosts = args.next().unwrap_or(200);
    let ssh_hosts = args.next().unwrap_or(50);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        simulated(sim_hosts).await;
        if ssh_hosts > 0
            && let Err(e) = real(ssh_hosts).await
        {
            eprintln!("engine bench: sshd part skipped: {e}");
        }
    });
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn paths(dir: &std::path::Path) -> Paths {
    Paths {
        state_dir: dir.to_path_buf(),
        data_dir: dir.to_path_buf(),
        config_dir: None,
    }
}

/// Counts events until a wave ends (or `answers` are all in); returns the count.
async fn drain_until_wave_end(events: &mut mpsc::Receiver<Event>) -> usize {
    let mut count = 0;
    while let Some(event) = events.recv().await {
        count += 1;
        if matches!(&event, Event::Wave(p) if matches!(p.status, WaveStatus::Finished | WaveStatus::Halted | WaveStatus::Aborted))
        {
            break;
        }
    }
    count
}

async fn simulated(hosts: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut toml = String::from("[fleet]\nconcurrency = 4096\n[audit]\nenabled = true\n");
    for i in 0..hosts {
        let _ = write!(
            toml,
            "[[host]]\nname = \"h{i}\"\naddr = \"10.{}.{}.{}\"\n",
            i / 65536 % 256,
            i / 256 % 256,
            i % 256
        );
    }
    let config = Config::from_str("sim.toml", &toml).expect("sim config");
    let fleet = SimFleet::new();
    for i in 0..hosts {
        fleet.set(
            &format!("h{i}"),
            Behaviour {
                upgrade_time: Duration::ZERO,
                ..Behaviour::default()
            },
        );
    }
    let (rss_before, _) = memory();
    let started = Instant::now();
    let deps = fleet.engine_deps(dir.path());
    let names: Vec<HostId> = config.hosts.iter().map(|h| h.name.clone()).collect();
    let (engine, mut events) = Engine::start(Arc::new(config), deps);
    let spawned = started.elapsed();
    let wave_started = Instant::now();
    engine
        .start_wave(WaveRequest {
            hosts: names,
            sizes: BatchSize::parse_list("1,10%").expect("sizes"),
            delay: Duration::ZERO,
            max_failures: FailureLimit::Count(0),
            mode: tendhost::config::WaveMode::Rolling,
            dry_run: false,
            allow_removals: false,
            scope: tendhost::pkg::UpgradeScope::default(),
            on_threshold: tendhost::config::OnThreshold::Abort,
            defer_overruns: true,
        })
        .expect("wave");
    let count = drain_until_wave_end(&mut events).await;
    let wave = wave_started.elapsed();
    let (_, hwm) = memory();
    engine.shutdown(Duration::from_secs(10)).await;
    println!("simulated wave: {hosts} hosts, batches 1,10%, upgrades take 0 s");
    println!("  engine start (spawn {hosts} supervisors): {spawned:?}");
    println!(
        "  wave wall time: {wave:?}; {count} events ({:.1} per host)",
        count as f64 / hosts as f64
    );
    println!(
        "  engine time per host event: {:.1} us",
        wave.as_secs_f64() * 1e6 / count as f64
    );
    println!(
        "  peak RSS {} KiB (before the engine {} KiB): {:.1} KiB per host",
        hwm,
        rss_before,
        (hwm.saturating_sub(rss_before)) as f64 / hosts as f64
    );
    println!("  peak hosts in flight: {}", fleet.peak());
}

async fn run_all(
    engine: &EngineHandle,
    events: &mut mpsc::Receiver<Event>,
    step: JobKind,
) -> (usize, usize) {
    let mut answers = Vec::new();
    for host in engine.hosts() {
        let (job, answer) = Job::answered(step, Origin::Batch);
        host.try_send(job).expect("queueing");
        answers.push(answer);
    }
    let mut count = 0;
    let collect = async {
        let mut ok = 0;
        for answer in answers {
            if answer.await == Ok(Outcome::Succeeded) {
                ok += 1;
            }
        }
        ok
    };
    tokio::pin!(collect);
    loop {
        tokio::select! {
            ok = &mut collect => return (ok, count),
            Some(_) = events.recv() => count += 1,
        }
    }
}

async fn real(count: usize) -> Result<(), String> {
    let started = Instant::now();
    let hosts =
        sshd::start_fleet(count, &sshd::SshdOptions::default()).map_err(|e| e.to_string())?;
    eprintln!("started {count} sshd hosts in {:?}", started.elapsed());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let known_hosts = dir.path().join("known_hosts");
    let key = sshd::client_key().map_err(|e| e.to_string())?;
    let mut lines = String::new();
    let mut toml = String::from("[fleet]\nconcurrency = 64\n");
    for (i, host) in hosts.iter().enumerate() {
        lines.push_str(&host.known_hosts_line());
        let _ = write!(
            toml,
            "[[host]]\nname = \"h{i}\"\naddr = \"{}\"\nuser = \"root\"\nssh_key = \"{}\"\nmanager = \"none\"\n\n",
            host.addr,
            key.display()
        );
    }
    std::fs::write(&known_hosts, &lines).map_err(|e| e.to_string())?;
    let config =
        Config::from_str(dir.path().join("bench.toml"), &toml).map_err(|e| format!("{e:?}"))?;
    let ctx = RemoteContext::new(known_hosts, KnownHostsPolicy::Strict)
        .with_hosts(config.hosts.iter().cloned());
    let (rss_before, _) = memory();
    let mut deps = EngineDeps::with_context(ctx, &paths(dir.path()), None);
    deps.periodic_refresh = false;
    let names: Vec<HostId> = config.hosts.iter().map(|h| h.name.clone()).collect();
    let (engine, mut events) = Engine::start(Arc::new(config), deps);

    let t = Instant::now();
    let (ok, inventory_events) = run_all(&engine, &mut events, JobKind::Refresh).await;
    let inventory = t.elapsed();
    let t = Instant::now();
    engine
        .start_wave(WaveRequest {
            hosts: names,
            sizes: BatchSize::parse_list("1,25%").expect("sizes"),
            delay: Duration::ZERO,
            max_failures: FailureLimit::Count(0),
            mode: tendhost::config::WaveMode::Rolling,
            dry_run: true,
            allow_removals: false,
            scope: tendhost::pkg::UpgradeScope::default(),
            on_threshold: tendhost::config::OnThreshold::Abort,
            defer_overruns: true,
        })
        .map_err(|e| e.to_string())?;
    let wave_events = drain_until_wave_end(&mut events).await;
    let wave = t.elapsed();
    let (_, hwm) = memory();
    engine.shutdown(Duration::from_secs(10)).await;
    println!(
        "sshd hosts: {count} real OpenSSH servers on loopback, manager 'none' (inventory probe only)"
    );
    println!(
        "  inventory of all (first connections included): {inventory:?}, {ok}/{count} ok, {inventory_events} events"
    );
    println!("  dry-run wave 1,25% (connections reused): {wave:?}, {wave_events} events");
    println!(
        "  peak RSS {} KiB (before the engine {} KiB): {:.1} KiB per host",
        hwm,
        rss_before,
        (hwm.saturating_sub(rss_before)) as f64 / count as f64
    );
    drop(hosts);
    Ok(())
}
