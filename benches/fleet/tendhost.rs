//! tendhost's side of the benchmark: the release/bench-profile binary for `--batch inventory`
//! (cold and restarted) and `--batch wave`, and the engine in-process for the console's
//! refresh over open connections (what the console does when `r` is pressed on all hosts).

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tendhost::config::{Config, KnownHostsPolicy};
use tendhost::engine::bus::{JobKind, Outcome};
use tendhost::engine::{Engine, EngineDeps, EngineHandle, Event, Job, Origin};
use tendhost::remote::{HandshakeThrottle, RemoteContext};
use tendhost::store::Paths;
use tokio::sync::mpsc;

use crate::Rig;
use crate::hosts::HostKind;

/// The binary cargo built for this benchmark, in the benchmark's own profile (release-like).
const BINARY: &str = env!("CARGO_BIN_EXE_tendhost");

fn data_home(rig: &Rig) -> PathBuf {
    rig.dir.join("data")
}

/// tendhost.toml for `rig` (named `name`), and tendhost's known_hosts trusting every host.
/// `extra_ssh` goes into `[ssh]` (e.g. handshake limits).
pub(crate) fn write_config(rig: &Rig, name: &str, auto_reboot: bool, extra_ssh: &str) -> PathBuf {
    let data = data_home(rig).join("tendhost");
    fs::create_dir_all(&data).expect("data dir");
    fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).expect("data dir mode");
    fs::copy(&rig.known_hosts, data.join("known_hosts")).expect("known_hosts");
    let mut toml = format!(
        "[ssh]\nknown_hosts = \"strict\"\nconnect_timeout = \"30s\"\n{extra_ssh}\n\
         [fleet]\nconcurrency = {}\nrefresh_interval = 0\ndelay = 0\n\n",
        rig.hosts.len().max(1)
    );
    for host in &rig.hosts {
        let manager = match host.kind {
            HostKind::Apt => "apt",
            HostKind::Dnf => "dnf",
        };
        let _ = write!(
            toml,
            "[[host]]\nname = \"{}\"\naddr = \"{}\"\nuser = \"root\"\nssh_key = \"{}\"\n\
             manager = \"{manager}\"\n\n[host.policy]\nauto_reboot = {auto_reboot}\n\n",
            host.name,
            host.addr,
            rig.key.display()
        );
    }
    let path = rig.dir.join(format!("{name}.toml"));
    fs::write(&path, toml).expect("tendhost.toml");
    path
}

/// Runs the binary with `args` against `config`, state in `state` (under the rig's dir).
pub(crate) fn batch(rig: &Rig, config: &Path, state: &str, args: &[&str]) -> Output {
    Command::new(BINARY)
        .env("XDG_DATA_HOME", data_home(rig))
        .env("XDG_STATE_HOME", rig.dir.join("xdg-state"))
        .env("HOME", &rig.dir)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("TENDHOST_SSH_KEY")
        .env_remove("TENDHOST_CONFIG")
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(rig.dir.join(state))
        .args(args)
        .current_dir(&rig.dir)
        .stdin(Stdio::null())
        .output()
        .expect("running tendhost")
}

/// Host lines of a `--json` run that report pending packages (what a peer's listing shows).
pub(crate) fn hosts_with_pending(out: &Output) -> usize {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "host" && v["pending"].as_u64().is_some_and(|n| n > 0))
        .count()
}

/// Why a run failed, for stderr: its exit code, the end of its stderr, and the errors its
/// `--json` host lines carry.
pub(crate) fn describe_failure(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = err.lines().rev().take(5).collect();
    let mut text = format!(
        "exit {:?}: {}",
        out.status.code(),
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["type"] == "summary" || (v["type"] == "host" && !v["error"].is_null()) {
            let _ = write!(text, "\n  {line}");
        }
    }
    text
}

/// The console's refresh in-process: start the engine, refresh every host (connecting), then
/// refresh every host `again` more times over the connections the first one opened. Returns
/// (wall, CPU seconds) of the first and of each later one, and the hosts that succeeded every
/// time.
pub(crate) async fn console_refresh(
    rig: &Rig,
    config: &Path,
    again: usize,
) -> ((Duration, f64), Vec<(Duration, f64)>, usize) {
    let config = Config::load(config).expect("bench config loads");
    let mut ctx = RemoteContext::new(
        data_home(rig).join("tendhost/known_hosts"),
        KnownHostsPolicy::Strict,
    )
    .with_hosts(config.hosts.iter().cloned());
    ctx.connect_timeout = config.ssh.connect_timeout;
    ctx.handshakes = Arc::new(HandshakeThrottle::new(
        config.ssh.max_handshakes,
        config.ssh.max_handshakes_per_server,
    ));
    let state = rig.dir.join("state-console");
    fs::create_dir_all(&state).expect("state dir");
    let paths = Paths {
        state_dir: state,
        data_dir: data_home(rig).join("tendhost"),
        config_dir: None,
    };
    let mut deps = EngineDeps::with_context(ctx, &paths, None);
    deps.periodic_refresh = false;
    let (engine, mut events) = Engine::start(Arc::new(config), deps);
    engine.reattached().await;
    let mut samples = Vec::new();
    let mut ok = usize::MAX;
    for _ in 0..=again.max(1) {
        let (cpu, started) = (crate::machine_cpu(), Instant::now());
        ok = ok.min(refresh_all(&engine, &mut events).await);
        samples.push((started.elapsed(), crate::machine_cpu() - cpu));
    }
    engine.shutdown(Duration::from_secs(10)).await;
    let first = samples.remove(0);
    (first, samples, ok)
}

/// Refreshes every host as the console does (Origin::Console), draining events meanwhile as
/// the console would; returns how many succeeded.
async fn refresh_all(engine: &EngineHandle, events: &mut mpsc::Receiver<Event>) -> usize {
    let mut answers = Vec::new();
    for host in engine.hosts() {
        let (job, answer) = Job::answered(JobKind::Refresh, Origin::Console);
        host.try_send(job).expect("queueing a refresh");
        answers.push(answer);
    }
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
            ok = &mut collect => return ok,
            Some(_) = events.recv() => {}
        }
    }
}

/// `count` fresh tendhost connections (handshake, auth, `true`, disconnect) to the first host,
/// one after another, with key exchange `kex`; returns how many succeeded.
pub(crate) async fn handshakes(rig: &Rig, config: &Path, kex: &str, count: usize) -> usize {
    let config = Config::load(config).expect("bench config loads");
    let mut ctx = RemoteContext::new(
        data_home(rig).join("tendhost/known_hosts"),
        KnownHostsPolicy::Strict,
    );
    ctx.kex = vec![kex.to_string()];
    let mut ok = 0;
    for _ in 0..count {
        let exec = tendhost::remote::executor_for(&config.hosts[0], &ctx);
        let out = exec
            .run(
                &tendhost::remote::RemoteCommand::new("true", Duration::from_secs(30)),
                None,
                &tokio_util::sync::CancellationToken::new(),
            )
            .await;
        if out.is_ok_and(|o| o.success()) {
            ok += 1;
        }
        exec.disconnect().await;
    }
    ok
}
