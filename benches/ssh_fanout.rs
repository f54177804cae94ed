//! Fleet fan-out over real OpenSSH servers: how long one command on N hosts takes
//! (a) with fresh connections (handshakes), (b) over the reused connections, next to
//! (c) plain OpenSSH `ssh host true` for all hosts in parallel, in the same run.
//!
//! `cargo bench --bench ssh_fanout [-- HOSTS]` (default 50). Needs root and openssh-server
//! (`.ci/install-test-deps.sh`). Not a test: it prints figures and asserts nothing.

// Test and benchmark code: a failed unwrap is a failed run, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests start sshd, apt and tendhost itself; `remote::child` is the rule for the crate's own
// children (clippy.toml).
#![allow(clippy::disallowed_methods)]

#[path = "../tests/integration/harness/sshd/mod.rs"]
mod sshd;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tendhost::config::{Config, KnownHostsPolicy};
use tendhost::remote::{RemoteCommand, RemoteContext, SharedExecutor, executor_for};
use tokio_util::sync::CancellationToken;

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(count)) {
        eprintln!("ssh_fanout: {e}");
        std::process::exit(1);
    }
}

async fn run(count: usize) -> Result<(), String> {
    let started = Instant::now();
    let hosts =
        sshd::start_fleet(count, &sshd::SshdOptions::default()).map_err(|e| e.to_string())?;
    eprintln!("started {count} sshd hosts in {:?}", started.elapsed());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let known_hosts = dir.path().join("known_hosts");
    let key = sshd::client_key().map_err(|e| e.to_string())?;
    let mut lines = String::new();
    let mut toml = String::new();
    for (i, host) in hosts.iter().enumerate() {
        lines.push_str(&host.known_hosts_line());
        let _ = write!(
            toml,
            "[[host]]\nname = \"h{i}\"\naddr = \"{}\"\nuser = \"root\"\nssh_key = \"{}\"\n\n",
            host.addr,
            key.display()
        );
    }
    std::fs::write(&known_hosts, &lines).map_err(|e| e.to_string())?;
    let config =
        Config::from_str(dir.path().join("bench.toml"), &toml).map_err(|e| format!("{e:?}"))?;
    let ctx = RemoteContext::new(known_hosts.clone(), KnownHostsPolicy::Strict);
    let executors: Vec<SharedExecutor> =
        config.hosts.iter().map(|h| executor_for(h, &ctx)).collect();

    let first = fan_out(&executors).await?;
    let second = fan_out(&executors).await?;
    let openssh = openssh_all(&hosts, &known_hosts).await?;
    // Context for (b): the latency of one command on a warm connection, no contention.
    let sequential = 20;
    let started = Instant::now();
    for _ in 0..sequential {
        fan_out(&executors[..1]).await?;
    }
    let per_command = started.elapsed() / sequential;

    println!();
    println!("ssh fan-out, {count} hosts, `true` on each, all at once (wall time)");
    println!(
        "  (a) tendhost, first command (connect + handshake + auth)  {:>8.1} ms",
        ms(first)
    );
    println!(
        "  (b) tendhost, second command (reused connections)         {:>8.1} ms",
        ms(second)
    );
    println!(
        "  (c) OpenSSH `ssh -o BatchMode=yes host true`, parallel    {:>8.1} ms",
        ms(openssh)
    );
    println!(
        "  (d) one host, {sequential} commands one after another: per command       {:>8.1} ms",
        ms(per_command)
    );
    println!(
        "  aims: (a) <= (c): {}   (b) < (a)/10: {}",
        if first <= openssh { "yes" } else { "no" },
        if second * 10 < first { "yes" } else { "no" }
    );
    Ok(())
}

async fn fan_out(executors: &[SharedExecutor]) -> Result<Duration, String> {
    let started = Instant::now();
    let runs = executors.iter().map(|e| async move {
        e.run(
            &RemoteCommand::new("true", Duration::from_secs(60)),
            None,
            &CancellationToken::new(),
        )
        .await
    });
    for result in futures::future::join_all(runs).await {
        let out = result.map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(format!("remote `true` failed: {out:?}"));
        }
    }
    Ok(started.elapsed())
}

async fn openssh_all(
    hosts: &[sshd::SshHost],
    known_hosts: &std::path::Path,
) -> Result<Duration, String> {
    let key = sshd::client_key().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let runs = hosts.iter().map(|host| {
        tokio::process::Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args(["-o", "IdentitiesOnly=yes", "-i"])
            .arg(&key)
            .arg(format!("root@{}", host.addr))
            .arg("true")
            .stdin(std::process::Stdio::null())
            .output()
    });
    for out in futures::future::join_all(runs).await {
        let out = out.map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "ssh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(started.elapsed())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
