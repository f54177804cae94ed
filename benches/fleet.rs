//! The fleet benchmark (issue 11): tendhost next to plain OpenSSH, pssh and Ansible on the same
//! real sshd hosts with real apt, side by side in ONE run, printed as a table of figures and
//! ratios with the issue's aims beside them. Not a timed test: it asserts nothing about speed.
//!
//! ```text
//! cargo bench --bench fleet [-- HOSTS] [--dnf N] [--no-wave] [--serial N]
//! ```
//! HOSTS (default 50) harness sshd hosts, N of them dnf (default 0; issue 11's shape is
//! `-- 50 --dnf 10`), each in its own Debian root (an overlay over a cached base): apt hosts
//! with the local apt repository's updates pending, one of which sets reboot-required; dnf
//! hosts from the harness's `DnfHost` (real rpm and dnf, rpmrepo's updates pending, a new
//! `kernel-core` among them, `manager = "dnf"` since their os-release is Debian's).
//! `--no-wave` skips row 7 (two fresh fleets and ~3 minutes).
//!
//! Rows: (1) `ssh host true` for every host at once, OpenSSH's default key exchange and
//! tendhost's; (2) pssh `apt list --upgradable` / `dnf -q check-update`, `-p` = hosts; (3)
//! Ansible ad-hoc `command` of the same, forks = hosts, pipelining; (4) `tendhost --batch
//! inventory --json`, fresh state dir; (5) the same again, same state dir; (6) the engine
//! in-process: refresh all, then time a second refresh over the open connections; (7) a wave
//! with reboots, batch `--serial` (default 10): `tendhost --batch wave` vs an Ansible `serial`
//! playbook (apt dist-upgrade / the dnf module's `state: latest`, reboot module, verify), each
//! on fresh hosts in the same pending state. Every row reports wall time and the machine's CPU time (client and servers:
//! everything runs here) over it, which tells CPU-bound rows (CPU ≈ wall × cores) from waiting.
//!
//! Needs root, openssh-server, debootstrap, dpkg-dev, rpm, createrepo-c, pssh
//! (`.ci/install-test-deps.sh`) and network once: the Debian mirror for the cached roots
//! (`/var/cache/tendhost-test`, `bookworm-dnf` among them,
//! `/var/cache/tendhost-bench/apt-layer`) and PyPI for the Ansible venv
//! (`/var/cache/tendhost-bench/ansible`). Delete those to rebuild them.

// Benchmark code: a failed unwrap is a failed run, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The benchmark starts sshd, ssh, pssh, Ansible and tendhost itself; `remote::child` is the
// rule for the crate's own children (clippy.toml).
#![allow(clippy::disallowed_methods)]

// The integration harness pieces the fleet is built from (sshd hosts, cached Debian roots, the
// local apt repository), shared with the tests by path; each is used only in part here.
#[allow(dead_code, unused_imports)]
#[path = "../tests/integration/harness/aptrepo.rs"]
mod aptrepo;
#[allow(dead_code, unused_imports)]
#[path = "../tests/integration/harness/debroot.rs"]
mod debroot;
// dead code is allowed inside the file itself.
#[allow(unused_imports)]
#[path = "../tests/integration/harness/dnfhost.rs"]
mod dnfhost;
#[allow(dead_code, unused_imports)]
#[path = "../tests/integration/harness/rpmrepo.rs"]
mod rpmrepo;
#[path = "../tests/integration/harness/sshd/mod.rs"]
mod sshd;
// Where `debroot` expects them (the harness's own `mod.rs` re-exports them the same way).
use sshd::{SshHost, SshdOptions};

/// What `dnfhost` reaches through `super::` in the harness: the boot id file it shares with the
/// apt hosts (the bench's apt hosts use the same path).
mod apthost {
    pub(crate) use crate::hosts::BOOT_ID;
}

/// The harness's `wait_until` (its `mod.rs` is not shared: it declares every harness module),
/// which `dnfhost` uses to wait for the clock to pass a boot second.
pub(crate) fn wait_until(
    what: &str,
    within: Duration,
    every: Duration,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}
#[path = "fleet/hosts.rs"]
mod hosts;
#[path = "fleet/peers.rs"]
mod peers;
#[path = "fleet/tendhost.rs"]
mod tendhost_side;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hosts::{BenchHost, HostKind, RebootEmulator};

/// Everything a row needs: the hosts and the files that reach them.
pub(crate) struct Rig {
    pub dir: PathBuf,
    pub known_hosts: PathBuf,
    pub key: PathBuf,
    pub hosts: Vec<Arc<BenchHost>>,
}

impl Rig {
    fn start(dir: PathBuf, apt: usize, dnf: usize) -> Result<Rig, String> {
        let started = Instant::now();
        let hosts = hosts::start_fleet(apt, dnf)?;
        eprintln!(
            "fleet: {} hosts up in {:.1} s",
            hosts.len(),
            started.elapsed().as_secs_f64()
        );
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let known_hosts = dir.join("known_hosts");
        let lines: String = hosts.iter().map(|h| h.known_hosts_line()).collect();
        std::fs::write(&known_hosts, lines).map_err(|e| e.to_string())?;
        let key = sshd::client_key().map_err(|e| e.to_string())?;
        Ok(Rig {
            dir,
            known_hosts,
            key,
            hosts,
        })
    }
}

/// One measured row.
struct Figure {
    label: String,
    /// The fastest of the repeats.
    wall: Duration,
    /// The slowest of the repeats (the same as `wall` for a row run once).
    worst: Duration,
    /// Busy CPU seconds of the whole machine over the row (all cores, all processes).
    cpu: f64,
    ok: usize,
    of: usize,
    note: String,
}

/// Where CPU time is read from: a cpuacct cgroup holding this process and everything it starts
/// (ssh, pssh, Ansible, tendhost, and the sshd servers with their sessions), or, when one
/// cannot be made, the busy time of the whole machine (which then counts other work too).
struct CpuMeter {
    group: Option<PathBuf>,
}

const CPUACCT: &str = "/sys/fs/cgroup/cpuacct";

impl CpuMeter {
    fn get() -> &'static CpuMeter {
        static METER: std::sync::OnceLock<CpuMeter> = std::sync::OnceLock::new();
        METER.get_or_init(|| {
            let group =
                PathBuf::from(CPUACCT).join(format!("tendhost-bench-{}", std::process::id()));
            let joined = std::fs::create_dir_all(&group).is_ok()
                && std::fs::write(group.join("cgroup.procs"), std::process::id().to_string())
                    .is_ok();
            CpuMeter {
                group: joined.then_some(group),
            }
        })
    }

    fn scope(&self) -> &'static str {
        match self.group {
            Some(_) => "the benchmark's process tree: clients and servers",
            None => "the whole machine",
        }
    }

    fn seconds(&self) -> f64 {
        match &self.group {
            Some(group) => std::fs::read_to_string(group.join("cpuacct.usage"))
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .map_or(0.0, |ns| ns / 1e9),
            None => machine_busy(),
        }
    }

    /// Leaves the group and removes it (once everything it held has exited).
    fn release(&self) {
        if let Some(group) = &self.group {
            let _ = std::fs::write(
                PathBuf::from(CPUACCT).join("cgroup.procs"),
                std::process::id().to_string(),
            );
            let _ = std::fs::remove_dir(group);
        }
    }
}

/// CPU seconds used so far (see [`CpuMeter`]).
pub(crate) fn machine_cpu() -> f64 {
    CpuMeter::get().seconds()
}

/// Busy jiffies of the whole machine (`/proc/stat`, all CPUs), in seconds.
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    let busy: f64 = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, v)| v)
        .sum();
    busy / 100.0
}

/// Runs `f` once (see [`measure_best`]).
fn measure(label: &str, note: &str, f: impl FnOnce() -> (usize, usize)) -> Figure {
    let mut f = Some(f);
    measure_best(label, note, 1, |_| f.take().map_or((0, 0), |f| f()))
}

/// Runs `f(0)`, `f(1)`, … `repeats` times, timing each and the CPU over it; keeps the fastest
/// (the machine is shared with other builds: the best of a few is the one least disturbed)
/// and remembers the slowest. `f` returns (ok, of).
fn measure_best(
    label: &str,
    note: &str,
    repeats: usize,
    mut f: impl FnMut(usize) -> (usize, usize),
) -> Figure {
    eprintln!("fleet: {label} …");
    let mut best: Option<Figure> = None;
    let mut worst = Duration::ZERO;
    for rep in 0..repeats.max(1) {
        let cpu = machine_cpu();
        let started = Instant::now();
        let (ok, of) = f(rep);
        let wall = started.elapsed();
        let cpu = machine_cpu() - cpu;
        eprintln!(
            "fleet:   {:.2} s, {cpu:.1} s CPU, {ok}/{of} ok",
            wall.as_secs_f64()
        );
        worst = worst.max(wall);
        if best.as_ref().is_none_or(|b| wall < b.wall) {
            best = Some(Figure {
                label: label.to_string(),
                wall,
                worst,
                cpu,
                ok,
                of,
                note: note.to_string(),
            });
        }
    }
    let mut figure = best.expect("at least one repeat ran");
    figure.worst = worst;
    figure
}

struct Args {
    hosts: usize,
    dnf: usize,
    /// Rows 1–6 (`--wave-only` turns them off).
    reads: bool,
    wave: bool,
    serial: usize,
    /// Rows 1–6 run this many times; the fastest counts.
    repeats: usize,
}

fn args() -> Args {
    let mut args = Args {
        hosts: 50,
        dnf: 0,
        reads: true,
        wave: true,
        serial: 10,
        repeats: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--dnf" => args.dnf = it.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            "--serial" => args.serial = it.next().and_then(|n| n.parse().ok()).unwrap_or(10),
            "--no-wave" => args.wave = false,
            "--repeat" => args.repeats = it.next().and_then(|n| n.parse().ok()).unwrap_or(3),
            "--wave-only" => args.reads = false,
            other => {
                if let Ok(n) = other.parse() {
                    args.hosts = n;
                }
            }
        }
    }
    args.dnf = args.dnf.min(args.hosts);
    args
}

fn main() {
    let args = args();
    // First, so every process the benchmark starts is counted.
    let meter = CpuMeter::get();
    let apt = args.hosts - args.dnf;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let work = tempfile::Builder::new()
        .prefix("tendhost-fleet-")
        .tempdir()
        .expect("work dir");
    let mut figures = Vec::new();

    if args.reads {
        match Rig::start(work.path().join("read"), apt, args.dnf) {
            Ok(rig) => read_rows(&rig, &runtime, args.repeats, &mut figures),
            Err(e) => {
                eprintln!("fleet: {e}");
                std::process::exit(1);
            }
        }
    }
    if args.wave {
        wave_rows(&args, work.path(), &mut figures);
    }
    drop(work);
    meter.release();
    report(&args, &figures, meter.scope());
}

/// Rows 1–6 on one fleet.
fn read_rows(
    rig: &Rig,
    runtime: &tokio::runtime::Runtime,
    repeats: usize,
    figures: &mut Vec<Figure>,
) {
    let n = rig.hosts.len();
    // Warm-up, not counted: page cache, dentries, sshd binaries, the hosts' roots.
    peers::openssh_true(rig, None);
    let _ = peers::ansible_bin();

    figures.push(measure_best(
        "1  OpenSSH `ssh host true`, default kex (sntrup761x25519)",
        "handshakes: sntrup761 CPU, client and server",
        repeats,
        |_| (peers::openssh_true(rig, None), n),
    ));
    figures.push(measure_best(
        "1b OpenSSH `ssh host true`, curve25519-sha256 (tendhost's kex)",
        "handshakes: process start + curve25519",
        repeats,
        |_| (peers::openssh_true(rig, Some("curve25519-sha256")), n),
    ));
    figures.push(measure_best(
        "2  pssh apt list --upgradable / dnf -q check-update",
        "handshakes + one apt (C++) or dnf (Python) per host",
        repeats,
        |_| (peers::pssh(rig), n),
    ));
    figures.push(measure_best(
        "3  Ansible ad-hoc command, forks=hosts, pipelining",
        "Ansible's Python: a fork + module payload per host",
        repeats,
        |_| (peers::ansible_adhoc(rig), n),
    ));
    let config = tendhost_side::write_config(rig, "read", false, "");
    let inventory = ["--batch", "inventory", "--json"];
    figures.push(measure_best(
        "4  tendhost cold --batch inventory --json",
        "handshakes + one survey round trip per host (inventory, pending, reboot; dnf: one python)",
        repeats,
        |rep| {
            let out =
                tendhost_side::batch(rig, &config, &format!("state-inventory-{rep}"), &inventory);
            if !out.status.success() {
                eprintln!(
                    "fleet: cold inventory {}",
                    tendhost_side::describe_failure(&out)
                );
            }
            (tendhost_side::hosts_with_pending(&out), n)
        },
    ));
    let unthrottled = tendhost_side::write_config(
        rig,
        "read-unthrottled",
        false,
        "max_handshakes = 4096\nmax_handshakes_per_server = 4096\n",
    );
    figures.push(measure_best(
        "4b tendhost cold, handshake throttle opened (max_handshakes 4096)",
        "the same: what the throttle (10 in flight) costs here",
        repeats,
        |rep| {
            let out = tendhost_side::batch(
                rig,
                &unthrottled,
                &format!("state-unthrottled-{rep}"),
                &inventory,
            );
            (tendhost_side::hosts_with_pending(&out), n)
        },
    ));
    figures.push(measure_best(
        "5  tendhost restart: the same, same state dir",
        "handshakes + the survey again; unchanged hosts answer with their fingerprint only",
        repeats,
        |rep| {
            let out =
                tendhost_side::batch(rig, &config, &format!("state-inventory-{rep}"), &inventory);
            if !out.status.success() {
                eprintln!(
                    "fleet: restart inventory {}",
                    tendhost_side::describe_failure(&out)
                );
            }
            (tendhost_side::hosts_with_pending(&out), n)
        },
    ));
    kex_rows(rig, runtime, &config, figures);
    eprintln!("fleet: 6  tendhost engine: a refresh of all, then {repeats} more …");
    let (first, again, ok) =
        runtime.block_on(tendhost_side::console_refresh(rig, &config, repeats));
    figures.push(Figure {
        label: "6a tendhost engine: first refresh of all (connects)".into(),
        wall: first.0,
        worst: first.0,
        cpu: first.1,
        ok,
        of: n,
        note: "handshakes + the survey".into(),
    });
    let best = again
        .iter()
        .min_by_key(|(wall, _)| *wall)
        .copied()
        .unwrap_or(first);
    figures.push(Figure {
        label: "6b tendhost engine: refresh again, open connections".into(),
        wall: best.0,
        worst: again.iter().map(|(wall, _)| *wall).max().unwrap_or(best.0),
        cpu: best.1,
        ok,
        of: n,
        note: "the survey over open connections; no handshakes".into(),
    });
}

/// Handshakes one at a time to one host: what each key exchange costs (wall and CPU, client
/// and server), OpenSSH's client and tendhost's. OpenSSH 9.2's sshd has no ML-KEM (9.9+), and
/// tendhost's client has no sntrup761: each is measured where it can be.
fn kex_rows(
    rig: &Rig,
    runtime: &tokio::runtime::Runtime,
    config: &std::path::Path,
    figures: &mut Vec<Figure>,
) {
    const EACH: usize = 20;
    for kex in ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256"] {
        figures.push(measure(
            &format!(
                "K  {EACH}x in turn: OpenSSH + `true`, {}",
                kex.trim_end_matches("@openssh.com")
            ),
            "one handshake: divide by 20",
            || (peers::openssh_sequential(rig, kex, EACH), EACH),
        ));
    }
    // tendhost against OpenSSH 9.2: curve25519 only (no sntrup761 in russh, no ML-KEM in 9.2).
    let kex = "curve25519-sha256";
    {
        figures.push(measure(
            &format!("K  {EACH}x in turn: tendhost + `true`, {kex}"),
            "one handshake: divide by 20",
            || {
                (
                    runtime.block_on(tendhost_side::handshakes(rig, config, kex, EACH)),
                    EACH,
                )
            },
        ));
    }
}

/// Row 7: each side on a fresh fleet in the same pending state.
fn wave_rows(args: &Args, work: &std::path::Path, figures: &mut Vec<Figure>) {
    let apt = args.hosts - args.dnf;
    {
        let serial = args.serial;
        match Rig::start(work.join("wave-tendhost"), apt, args.dnf) {
            Ok(rig) => {
                let config = tendhost_side::write_config(&rig, "wave", true, "");
                let batch_size = serial.to_string();
                let emulator = RebootEmulator::start(&rig.hosts);
                let figure = measure(
                    &format!("7a tendhost --batch wave --batch-size {serial}, reboots"),
                    "barrier per batch: its slowest host (upgrade: dpkg, or dnf's Python; 3 s reboot)",
                    || {
                        let out = tendhost_side::batch(
                            &rig,
                            &config,
                            "state-wave",
                            &[
                                "--batch",
                                "wave",
                                "--batch-size",
                                &batch_size,
                                "--delay",
                                "0",
                                "--allow-removals",
                                "--json",
                            ],
                        );
                        if !out.status.success() {
                            eprintln!("fleet: wave {}", tendhost_side::describe_failure(&out));
                        }
                        (upgraded_and_rebooted(&rig), rig.hosts.len())
                    },
                );
                let reboots = emulator.finish();
                eprintln!("fleet:   {reboots} reboots played");
                figures.push(figure);
            }
            Err(e) => eprintln!("fleet: wave skipped: {e}"),
        }
        match Rig::start(work.join("wave-ansible"), apt, args.dnf) {
            Ok(rig) => {
                let emulator = RebootEmulator::start(&rig.hosts);
                let figure = measure(
                    &format!("7b Ansible serial: {serial}, upgrade + reboot + verify"),
                    "barrier per task per batch; reboot module's backoff polling",
                    || {
                        peers::ansible_wave(&rig, serial);
                        (upgraded_and_rebooted(&rig), rig.hosts.len())
                    },
                );
                let reboots = emulator.finish();
                eprintln!("fleet:   {reboots} reboots played");
                figures.push(figure);
            }
            Err(e) => eprintln!("fleet: Ansible wave skipped: {e}"),
        }
    }
}

/// Hosts on the new kernel package (apt: `tendhost-kernel` 1.1, dnf: `kernel-core` 6.1.0) and
/// on `tendhost-core` 1.1 (which needs a new package, and on apt removes one, on dnf obsoletes
/// one), whose boot id changed: the wave did its whole job there.
fn upgraded_and_rebooted(rig: &Rig) -> usize {
    rig.hosts
        .iter()
        .filter(|h| match h.kind {
            HostKind::Apt => {
                h.version("tendhost-kernel") == "1.1" && h.version("tendhost-core") == "1.1"
            }
            HostKind::Dnf => {
                h.version("kernel-core") == "6.1.0-1" && h.version("tendhost-core") == "1.1-1"
            }
        })
        .filter(|h| h.boot_id() != "boot-1")
        .count()
}

fn find<'a>(figures: &'a [Figure], prefix: &str) -> Option<&'a Figure> {
    figures.iter().find(|f| f.label.starts_with(prefix))
}

fn report(args: &Args, figures: &[Figure], cpu_scope: &str) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!();
    println!(
        "fleet benchmark: {} hosts ({} apt, {} dnf) on loopback, {cores} cores, one run; {}; {}",
        args.hosts,
        args.hosts - args.dnf,
        args.dnf,
        first_line("ssh", &["-V"], true),
        peers::ansible_version()
    );
    println!("cpu s: CPU time of {cpu_scope}, over the row");
    println!(
        "wall s: the fastest of {} runs of rows 1-6 (slowest in 'max s'); rows K and 7 run once",
        args.repeats
    );
    println!(
        "{:<70} {:>7} {:>7} {:>7} {:>7}  dominated by",
        "row", "wall s", "max s", "cpu s", "ok"
    );
    for f in figures {
        let cpu = format!("{:.1}", f.cpu);
        println!(
            "{:<70} {:>7.2} {:>7.2} {:>7} {:>7}  {}",
            f.label,
            f.wall.as_secs_f64(),
            f.worst.as_secs_f64(),
            cpu,
            format!("{}/{}", f.ok, f.of),
            f.note
        );
    }
    println!();
    println!("ratios (aims from issue 11; printed, not enforced):");
    let ratio = |name: &str, a: &str, b: &str, aim: f64| {
        if let (Some(a), Some(b)) = (find(figures, a), find(figures, b)) {
            let r = a.wall.as_secs_f64() / b.wall.as_secs_f64();
            println!(
                "  {name:<44} {r:>6.2}   aim <= {aim:<4}  {}",
                if r <= aim { "met" } else { "not met" }
            );
        }
    };
    ratio("cold inventory / pssh", "4 ", "2 ", 1.0);
    ratio("restart inventory / OpenSSH handshakes", "5 ", "1 ", 1.2);
    ratio("console refresh / cold inventory", "6b", "4 ", 0.1);
    ratio("wave with reboots / Ansible serial", "7a", "7b", 0.5);
}

/// The first line a program prints (stderr when `stderr`), for the table's heading.
fn first_line(program: &str, args: &[&str], stderr: bool) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let text = if stderr { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}
