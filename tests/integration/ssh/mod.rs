//! The SSH transport against real OpenSSH servers (see `harness::sshd`), one file per concern:
//! `exec` (commands, streaming, timeouts), `host_keys`, `auth`, `routes` (jump hosts,
//! ~/.ssh/config), `resilience` (reconnects, dead connections), `throttle` (handshakes in flight).

mod auth;
mod exec;
mod host_keys;
mod resilience;
mod routes;
mod throttle;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tendhost::config::KnownHostsPolicy;
use tendhost::remote::{
    Error, OutputLine, RemoteCommand, SharedExecutor, SshExecutor, Stream, executor_for,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::harness::{
    NOPASSWD_USER, PASSWD_USER, SshHost, SshdOptions, TestEnv, client_key, start_fleet,
};

fn cmd(script: &str) -> RemoteCommand {
    RemoteCommand::new(script, Duration::from_secs(30))
}

fn start() -> SshHost {
    SshHost::start(SshdOptions::default()).expect("starting sshd")
}

/// An executor for `host` as `user`, its key trusted in `env`.
fn trusted(env: &TestEnv, host: &SshHost, user: &str) -> SharedExecutor {
    env.trust(host);
    let config = env.config(&env.host_toml("h", host, user));
    executor_for(&config.hosts[0], &env.context(&config))
}

async fn run(
    exec: &SharedExecutor,
    script: &str,
) -> Result<tendhost::remote::CommandOutput, Error> {
    exec.run(&cmd(script), None, &CancellationToken::new())
        .await
}

/// A path no command has touched yet, world-writable dir so non-root users can create it.
fn marker(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.dir.path().join("markers");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    dir.join(name)
}
