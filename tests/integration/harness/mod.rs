//! Shared test fixtures for the integration suite.
//!
//! - [`debroot`]: a debootstrapped Debian root per test host (cached base + overlay), and
//!   [`aptrepo`]: a local apt repository of generated .deb packages inside it.
//! - [`rpmrepo`]: a real rpm database and repository driven by Debian's dnf;
//!   [`dnfhost`]: a whole rpm/dnf host in a chroot (its own rpm db, cache, repos, python3-dnf).
//! - [`registry`]: a loopback docker registry and tiny locally built images, shared per process;
//!   [`compose`]: compose stacks running them, and a `docker` shim standing in for compose v2.
//! - [`vm`]: a real VM (qemu under TCG, systemd as PID 1) from an image cached once; one boots
//!   at a time.
//! - [`http_sink`]: a real HTTP/1.1 listener recording requests (and answering 500 on demand);
//!   [`smtp_sink`]: a minimal real SMTP server recording messages (for notifications).
//! - [`sshd`]: real OpenSSH hosts ([`SshHost::start`], [`start_fleet`]) torn down by pid on drop.
//! - [`TestEnv`]: a private temp dir with tendhost's data dir (known_hosts, keys), a state dir and
//!   a config file, plus helpers that turn harness hosts into a `Config` / `HostConfig` and a
//!   hermetic `RemoteContext` (no `~/.ssh`, no agent, no `TENDHOST_SSH_KEY`).
//!
//! Typical use:
//! ```ignore
//! let host = SshHost::start(SshdOptions::default())?;
//! let env = TestEnv::new();
//! env.trust(&host);                                   // or KnownHostsPolicy::AcceptNew
//! let config = env.config(&env.host_toml("web", &host, "root"));
//! let exec = tendhost::remote::executor_for(&config.hosts[0], &env.context(&config));
//! ```
#![allow(dead_code)] // Not every test module uses every helper.

pub(crate) mod apthost;
pub(crate) mod aptrepo;
pub(crate) mod compose;
pub(crate) mod debroot;
pub(crate) mod dnfhost;
pub(crate) mod http_sink;
pub(crate) mod proxmox;
pub(crate) mod registry;
pub(crate) mod rpmrepo;
pub(crate) mod smtp_sink;
pub(crate) mod sshd;
pub(crate) mod vm;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Output;

pub(crate) use sshd::{NOPASSWD_USER, PASSWD_USER, SshHost, SshdOptions, client_key, start_fleet};
use tendhost::config::{Config, HostConfig, KnownHostsPolicy};
use tendhost::pkg::PendingPackage;
use tendhost::remote::OutputLine;
use tendhost::remote::RemoteContext;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A private directory tree for one test: `data/` (known_hosts, keys), `state/`, `tendhost.toml`.
pub(crate) struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub(crate) fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tendhost-env-")
            .tempdir()
            .expect("creating a temp dir");
        fs::create_dir_all(dir.path().join("data")).expect("creating data dir");
        fs::create_dir_all(dir.path().join("state")).expect("creating state dir");
        fs::set_permissions(dir.path().join("data"), fs::Permissions::from_mode(0o700))
            .expect("chmod data dir");
        TestEnv { dir }
    }

    /// What `$XDG_DATA_HOME/tendhost` would be (set `XDG_DATA_HOME` to [`Self::xdg_data_home`]).
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data").join("tendhost")
    }

    /// Value for `XDG_DATA_HOME` when running the binary against this env.
    pub(crate) fn xdg_data_home(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// tendhost's own known_hosts for this env.
    pub(crate) fn known_hosts(&self) -> PathBuf {
        self.data_dir().join("known_hosts")
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("tendhost.toml")
    }

    /// Trusts `host`'s current key in this env's known_hosts.
    pub(crate) fn trust(&self, host: &SshHost) {
        self.append_known_hosts(&host.known_hosts_line());
    }

    pub(crate) fn append_known_hosts(&self, text: &str) {
        fs::create_dir_all(self.data_dir()).expect("creating data dir");
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.known_hosts())
            .expect("opening known_hosts");
        file.write_all(text.as_bytes())
            .expect("writing known_hosts");
    }

    /// A `[[host]]` block for `host`, logging in as `user` with the harness client key.
    pub(crate) fn host_toml(&self, name: &str, host: &SshHost, user: &str) -> String {
        format!(
            "[[host]]\nname = \"{name}\"\naddr = \"{}\"\nport = {}\nuser = \"{user}\"\n\
             ssh_key = \"{}\"\n\n",
            host.addr,
            host.port,
            client_key().expect("client key").display()
        )
    }

    /// Writes `body` (host blocks and any other tables) as this env's tendhost.toml, with
    /// `[ssh] known_hosts = "strict"` and short timeouts unless `body` has its own `[ssh]`.
    pub(crate) fn write_config(&self, body: &str) -> PathBuf {
        let mut text = String::new();
        if !body.contains("[ssh]") {
            text.push_str("[ssh]\nknown_hosts = \"strict\"\nconnect_timeout = \"5s\"\n\n");
        }
        text.push_str(body);
        fs::write(self.config_path(), text).expect("writing tendhost.toml");
        self.config_path()
    }

    /// Writes and loads a config (see [`Self::write_config`]).
    pub(crate) fn config(&self, body: &str) -> Config {
        let path = self.write_config(body);
        Config::load(&path).unwrap_or_else(|e| panic!("test config does not load: {e:?}"))
    }

    /// The config of a single harness host named `name`.
    pub(crate) fn host_config(&self, name: &str, host: &SshHost, user: &str) -> HostConfig {
        let config = self.config(&self.host_toml(name, host, user));
        config.hosts[0].clone()
    }

    /// A hermetic context using this env's known_hosts with `policy`, knowing `config`'s hosts
    /// (for `proxy_jump = "name"`), with short timeouts and backoff suited to tests, and the
    /// config's handshake limits and key exchange order.
    pub(crate) fn context_with(&self, config: &Config, policy: KnownHostsPolicy) -> RemoteContext {
        let mut ctx =
            RemoteContext::new(self.known_hosts(), policy).with_hosts(config.hosts.iter().cloned());
        ctx.connect_timeout = std::time::Duration::from_secs(5);
        ctx.command_timeout = std::time::Duration::from_secs(60);
        ctx.backoff = std::time::Duration::from_millis(100);
        ctx.handshakes = std::sync::Arc::new(tendhost::remote::HandshakeThrottle::new(
            config.ssh.max_handshakes,
            config.ssh.max_handshakes_per_server,
        ));
        ctx.kex = config.ssh.kex.clone();
        ctx
    }

    /// [`Self::context_with`] under the config's own `[ssh] known_hosts` policy.
    pub(crate) fn context(&self, config: &Config) -> RemoteContext {
        self.context_with(config, config.ssh.known_hosts)
    }
}

/// `pending` sorted by name, as `(name, from, to, security)` rows to compare with a table.
pub(crate) fn pending_rows(pending: &mut [PendingPackage]) -> Vec<(&str, &str, &str, bool)> {
    pending.sort_by(|a, b| a.name.cmp(&b.name));
    pending
        .iter()
        .map(|p| (p.name.as_str(), p.from.as_str(), p.to.as_str(), p.security))
        .collect()
}

/// A line sink to hand a streaming call, and the task collecting what it is sent: await it
/// once the sender is dropped.
pub(crate) fn line_collector() -> (mpsc::Sender<OutputLine>, JoinHandle<Vec<String>>) {
    let (tx, mut rx) = mpsc::channel::<OutputLine>(64);
    let collector = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(line) = rx.recv().await {
            all.push(line.line);
        }
        all
    });
    (tx, collector)
}

/// Asserts that a run of the binary exited with `code`, showing its stderr when it did not.
#[track_caller]
pub(crate) fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `done` every `every` until it holds, failing with `what` once `within` (a generous
/// safety net, never the proof) has passed.
#[track_caller]
pub(crate) fn wait_until(
    what: &str,
    within: std::time::Duration,
    every: std::time::Duration,
    mut done: impl FnMut() -> bool,
) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(every);
    }
}
