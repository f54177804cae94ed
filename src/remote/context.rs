//! What every executor needs to know besides its own host: where host keys are trusted from, the
//! policy for unknown ones, timeouts, and where credentials may come from.
//!
//! Built once in `main` from `Config` + [`OwnFiles`] (or by hand in tests, hermetically) and
//! shared by every host. It holds paths and settings, never opened connections, and knows nothing
//! of where the rest of tendhost's state lives.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::ssh::HandshakeThrottle;
use crate::config::{Config, HostConfig, KnownHostsPolicy};

/// The environment variable holding a base64 private key (for CI and containers). Read once,
/// here; never passed on to a child process (see `remote::child`).
pub const ENV_KEY: &str = "TENDHOST_SSH_KEY";

/// `TENDHOST_SSH_KEY` as `main` took it out of the environment; unset when it was not taken (a
/// library caller, a test), and then it is read where it is.
static TAKEN_ENV_KEY: std::sync::OnceLock<Option<Secret>> = std::sync::OnceLock::new();

fn env_key_now() -> Option<Secret> {
    std::env::var(ENV_KEY)
        .ok()
        .filter(|k| !k.trim().is_empty())
        .map(Secret::new)
}

/// Keeps `TENDHOST_SSH_KEY` as `main` read it just before taking it out of the process
/// environment (so no child process, whoever spawns it, can inherit it);
/// [`RemoteContext::from_config`] then uses this value. The first call wins.
pub fn keep_env_key(value: Option<String>) {
    let _ = TAKEN_ENV_KEY.set(value.filter(|k| !k.trim().is_empty()).map(Secret::new));
}

/// A secret that must never reach a log line or a snapshot: `Debug` prints `<redacted>`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// tendhost's own SSH files (DESIGN.md §7), wherever the caller keeps them.
#[derive(Debug, Clone)]
pub struct OwnFiles {
    /// tendhost's known_hosts, written when a key is learnt.
    pub known_hosts: PathBuf,
    /// tendhost's private key (`tendhost keygen`), tried before `~/.ssh/id_*`.
    pub key: PathBuf,
}

/// Shared settings for every remote executor.
#[derive(Debug, Clone)]
pub struct RemoteContext {
    /// tendhost's own known_hosts (DESIGN.md §7): read, and written when learning a key (0600).
    pub known_hosts: PathBuf,
    /// Other known_hosts files trusted read-only, e.g. `~/.ssh/known_hosts`.
    pub extra_known_hosts: Vec<PathBuf>,
    pub policy: KnownHostsPolicy,
    pub connect_timeout: Duration,
    /// Default upper bound for a command when the caller has none of its own.
    pub command_timeout: Duration,
    /// Interval of SSH keepalives on an idle connection; zero turns them off.
    pub keepalive: Duration,
    /// `~/.ssh/config`, consulted for HostName, User, Port, IdentityFile and ProxyJump.
    pub ssh_config: Option<PathBuf>,
    /// Keys tried after the host's own key and the agent: tendhost's key, `~/.ssh/id_*`.
    pub default_identities: Vec<PathBuf>,
    /// `SSH_AUTH_SOCK`.
    pub agent_socket: Option<PathBuf>,
    /// `TENDHOST_SSH_KEY`: a base64-encoded private key (for CI and containers).
    pub env_key: Option<Secret>,
    /// Configured hosts by name, so `proxy_jump = "bastion"` can name one of them.
    pub hosts: Arc<BTreeMap<String, HostConfig>>,
    /// Straight connection failures before a host is reported unreachable.
    pub max_attempts: u32,
    /// First reconnect delay; doubles with each straight failure.
    pub backoff: Duration,
    /// Handshakes in flight, process-wide and per sshd (`[ssh] max_handshakes…`). Shared by
    /// every clone of this context, so every executor of a run queues at the same gate.
    pub handshakes: Arc<HandshakeThrottle>,
    /// `[ssh] kex`: key exchanges in order of preference; empty means tendhost's own order.
    pub kex: Vec<String>,
}

impl RemoteContext {
    /// A hermetic context: only `known_hosts`, no agent, no `~/.ssh`, no environment key.
    pub fn new(known_hosts: PathBuf, policy: KnownHostsPolicy) -> Self {
        Self {
            known_hosts,
            extra_known_hosts: Vec::new(),
            policy,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(3600),
            keepalive: Duration::from_secs(30),
            ssh_config: None,
            default_identities: Vec::new(),
            agent_socket: None,
            env_key: None,
            hosts: Arc::new(BTreeMap::new()),
            max_attempts: 3,
            backoff: Duration::from_millis(500),
            handshakes: Arc::new(HandshakeThrottle::default()),
            kex: Vec::new(),
        }
    }

    /// The context for a real run: `config`'s `[ssh]` settings, tendhost's `own` files, and the
    /// user's `~/.ssh` and environment (`SSH_AUTH_SOCK`, `TENDHOST_SSH_KEY`).
    pub fn from_config(config: &Config, own: OwnFiles) -> Self {
        let mut ctx = Self::new(own.known_hosts, config.ssh.known_hosts);
        ctx.connect_timeout = config.ssh.connect_timeout;
        ctx.command_timeout = config.ssh.command_timeout;
        ctx.keepalive = config.ssh.keepalive;
        ctx.handshakes = Arc::new(HandshakeThrottle::new(
            config.ssh.max_handshakes,
            config.ssh.max_handshakes_per_server,
        ));
        ctx.kex = config.ssh.kex.clone();
        ctx.default_identities.push(own.key);
        if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
            let ssh = home.join(".ssh");
            ctx.extra_known_hosts.push(ssh.join("known_hosts"));
            ctx.ssh_config = Some(ssh.join("config"));
            for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                ctx.default_identities.push(ssh.join(name));
            }
        }
        ctx.agent_socket = std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        ctx.env_key = match TAKEN_ENV_KEY.get() {
            Some(taken) => taken.clone(),
            None => env_key_now(),
        };
        ctx.with_hosts(config.hosts.iter().cloned())
    }

    /// Registers the hosts a `proxy_jump` may name.
    pub fn with_hosts(mut self, hosts: impl IntoIterator<Item = HostConfig>) -> Self {
        self.hosts = Arc::new(hosts.into_iter().map(|h| (h.name.to_string(), h)).collect());
        self
    }
}
