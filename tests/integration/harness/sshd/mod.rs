//! Real OpenSSH test hosts: one `/usr/sbin/sshd -D` per host, each on its own loopback address
//! (127.77.X.Y), with its own ed25519 host key and the process-wide test client key authorised.
//!
//! Self-contained (std, nix, tempfile only) so the benchmark can include it with `#[path]`.
//! `keys` makes test keys, `procs` owns address claims and killing process trees.
//!
//! Life cycle: [`SshHost::start`] → use → drop. Drop kills the listener *and every session process
//! it forked* (sshd's per-connection children call `setsid`, so a process-group kill would miss
//! them), even when the test panicked. [`SshHost::stop`], [`SshHost::restart`] and
//! [`SshHost::restart_with_new_host_key`] cover "the host went away / came back / was
//! reinstalled". Addresses are claimed with lock files under `/tmp/tendhost-sshd-claims`, so
//! parallel test processes (several developers, several test binaries) never collide.
//!
//! Needs root (sshd privilege separation) and `/usr/sbin/sshd` (see `.ci/install-test-deps.sh`).

// Each consumer (the test binary, the benchmark) uses a different part of the harness.
#![allow(dead_code, unused_imports)]

mod keys;
mod procs;

use std::fs;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub(crate) use keys::{client_key, fingerprint, keygen, keygen_with, process_dir};
pub(crate) use procs::pid_alive;
use procs::{Claim, kill_orphans, kill_tree, signal_tree};

const SSHD: &str = "/usr/sbin/sshd";
const CLAIMS: &str = "/tmp/tendhost-sshd-claims";
/// Users the harness authorises: root and the two accounts `.ci/install-test-deps.sh` creates.
pub(crate) const NOPASSWD_USER: &str = "tendhost-nopw";
pub(crate) const PASSWD_USER: &str = "tendhost-pw";

/// How to start a test host.
#[derive(Debug, Clone, Default)]
pub(crate) struct SshdOptions {
    /// Listen port; `None` means 22 (each host has its own address, so 22 never collides).
    pub port: Option<u16>,
    /// `ForceCommand` for every session, e.g. a wrapper that runs
    /// `sh -c "$SSH_ORIGINAL_COMMAND"` inside a chroot. Note: sshd refuses "signal" requests for
    /// forced-command sessions, so a timed-out command there is cut off, not killed.
    pub force_command: Option<PathBuf>,
    /// Extra `sshd_config` lines, placed first so they win over the harness defaults
    /// (sshd keeps the first value of a keyword).
    pub extra_config: String,
    /// Additional public keys (OpenSSH one-line format) to authorise besides the test client key.
    pub extra_authorized_keys: Vec<String>,
}

/// One running (or stopped) sshd test host.
pub(crate) struct SshHost {
    pub addr: String,
    pub port: u16,
    /// The host's private directory: config, host key, pid file, log, authorized_keys.
    pub dir: PathBuf,
    options: SshdOptions,
    child: Option<Child>,
    _claim: Claim,
    _tmp: tempfile::TempDir,
}

impl SshHost {
    /// Starts a host on a fresh loopback address and waits until it accepts connections.
    pub(crate) fn start(options: SshdOptions) -> io::Result<SshHost> {
        prepare_system()?;
        let port = options.port.unwrap_or(22);
        let (addr, claim) = Claim::next(port)?;
        let tmp = tempfile::Builder::new()
            .prefix("tendhost-sshd-")
            .tempdir()?;
        let dir = tmp.path().to_path_buf();
        // Readable by the non-root test users: sshd reads authorized_keys as the target user.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        let mut host = SshHost {
            addr,
            port,
            dir,
            options,
            child: None,
            _claim: claim,
            _tmp: tmp,
        };
        host.write_host_key()?;
        host.write_authorized_keys()?;
        host.write_config()?;
        host.spawn()?;
        Ok(host)
    }

    /// `addr:port`.
    pub(crate) fn socket_addr(&self) -> SocketAddr {
        // Both parts come from the claim: a dotted-quad address and a u16.
        format!("{}:{}", self.addr, self.port)
            .parse()
            .expect("harness addresses are IPv4 literals")
    }

    /// The name OpenSSH and tendhost use for this host in known_hosts: `addr` on port 22,
    /// `[addr]:port` otherwise.
    pub(crate) fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.addr.clone()
        } else {
            format!("[{}]:{}", self.addr, self.port)
        }
    }

    /// The host's public key, `ssh-ed25519 AAAA…`.
    pub(crate) fn host_public_key(&self) -> String {
        let text =
            fs::read_to_string(self.dir.join("ssh_host_ed25519_key.pub")).unwrap_or_default();
        let mut parts = text.split_whitespace();
        format!(
            "{} {}",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        )
    }

    /// A known_hosts line trusting this host's current key.
    pub(crate) fn known_hosts_line(&self) -> String {
        format!("{} {}\n", self.known_hosts_name(), self.host_public_key())
    }

    /// The same line with the name hashed (`|1|salt|hash`), as `HashKnownHosts yes` writes it.
    pub(crate) fn hashed_known_hosts_line(&self) -> io::Result<String> {
        let file = self.dir.join("kh-to-hash");
        fs::write(&file, self.known_hosts_line())?;
        let status = Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(io::Error::other("ssh-keygen -H failed"));
        }
        fs::read_to_string(&file)
    }

    /// SHA256 fingerprint of the host key as OpenSSH prints it (`SHA256:…`).
    pub(crate) fn host_key_fingerprint(&self) -> String {
        fingerprint(&self.dir.join("ssh_host_ed25519_key.pub")).unwrap_or_default()
    }

    pub(crate) fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the host: kills every session process, then the listener, and waits for them.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_tree(child.id() as i32);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (SIGSTOP) every session process while the listener keeps accepting: open
    /// connections go silent without being closed, like a host that vanished (a VM reboot, a
    /// pulled cable) from the point of view of a client holding a connection. New connections
    /// still work. Undone by [`Self::stop`] or drop.
    pub(crate) fn freeze_sessions(&self) {
        if let Some(child) = &self.child {
            signal_tree(child.id() as i32, nix::sys::signal::Signal::SIGSTOP);
        }
    }

    /// Stops and starts again with the same address, port and host key.
    pub(crate) fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }

    /// Stops, generates a NEW host key (a reinstalled host, or a man in the middle), starts.
    pub(crate) fn restart_with_new_host_key(&mut self) -> io::Result<()> {
        self.stop();
        self.write_host_key()?;
        self.spawn()
    }

    /// Makes sshd listen on `ip` too (a free port there) and restarts it; returns the port. For
    /// a host that must be reached through an address other than its loopback claim.
    pub(crate) fn listen_also_on(&mut self, ip: &str) -> io::Result<u16> {
        let port = std::net::TcpListener::bind((ip, 0))?.local_addr()?.port();
        self.options
            .extra_config
            .push_str(&format!("\nListenAddress {ip}:{port}\n"));
        self.write_config()?;
        self.restart()?;
        Ok(port)
    }

    /// sshd's own log (`-E`), for assertion messages.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Runs `command` with OpenSSH's client as `user`, for checks that must not depend on
    /// tendhost's transport. Host keys are not checked (this is a side channel for tests).
    pub(crate) fn openssh(&self, user: &str, command: &str) -> io::Result<std::process::Output> {
        Command::new("ssh")
            .args(openssh_args(self, user))
            .arg(command)
            .stdin(Stdio::null())
            .output()
    }

    fn write_host_key(&self) -> io::Result<()> {
        let key = self.dir.join("ssh_host_ed25519_key");
        let _ = fs::remove_file(&key);
        let _ = fs::remove_file(key.with_extension("pub"));
        keygen(&key, "tendhost-test-host")
    }

    fn write_authorized_keys(&self) -> io::Result<()> {
        let mut keys = fs::read_to_string(client_key()?.with_extension("pub"))?;
        for extra in &self.options.extra_authorized_keys {
            keys.push_str(extra.trim_end());
            keys.push('\n');
        }
        let path = self.dir.join("authorized_keys");
        fs::write(&path, keys)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
    }

    /// Adds a public key (one OpenSSH line) to this host's authorized_keys; takes effect at once.
    pub(crate) fn authorize_key(&self, public_key_line: &str) -> io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("authorized_keys"))?;
        writeln!(file, "{}", public_key_line.trim_end())
    }

    fn write_config(&self) -> io::Result<()> {
        let d = self.dir.display();
        // sshd keeps the first value it reads for a keyword: the caller's lines go first so
        // they override the defaults below.
        let mut config = self.options.extra_config.clone();
        config.push('\n');
        config.push_str(&format!(
            "ListenAddress {addr}:{port}\n\
             HostKey {d}/ssh_host_ed25519_key\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\n\
             PermitRootLogin yes\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             AllowTcpForwarding yes\n\
             MaxSessions 200\n\
             SetEnv SHLVL=1\n\
             LogLevel ERROR\n",
            addr = self.addr,
            port = self.port,
        ));
        // The one keyword where sshd keeps the *last* value: the default must not follow a
        // caller's own. Generous by default: tests connect many clients at once on purpose.
        if !self.options.extra_config.contains("MaxStartups") {
            config.push_str("MaxStartups 500:30:1000\n");
        }
        if let Some(command) = &self.options.force_command {
            config.push_str(&format!("ForceCommand {}\n", command.display()));
        }
        fs::write(self.dir.join("sshd_config"), config)
    }

    fn spawn(&mut self) -> io::Result<()> {
        let config = self.dir.join("sshd_config");
        let log = self.dir.join("sshd.log");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&config)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !self.is_running() {
                self.child = None;
                return Err(io::Error::other(format!(
                    "sshd on {} exited at start: {}",
                    self.known_hosts_name(),
                    self.log()
                )));
            }
            if TcpStream::connect_timeout(&self.socket_addr(), Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        Err(io::Error::other(format!(
            "sshd on {} did not start listening",
            self.known_hosts_name()
        )))
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `count` hosts in parallel (sshd start-up is mostly waiting).
pub(crate) fn start_fleet(count: usize, options: &SshdOptions) -> io::Result<Vec<SshHost>> {
    let results: Vec<io::Result<SshHost>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .map(|_| scope.spawn(|| SshHost::start(options.clone())))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("start panicked")))
            })
            .collect()
    });
    results.into_iter().collect()
}

/// `ssh` arguments reaching `host` as `user` with the test client key, batch mode, no host key
/// checking and no user config (append the remote command).
pub(crate) fn openssh_args(host: &SshHost, user: &str) -> Vec<String> {
    let key = client_key()
        .map(|k| k.display().to_string())
        .unwrap_or_default();
    vec![
        "-F".into(),
        "/dev/null".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=no".into(),
        "-o".into(),
        "UserKnownHostsFile=/dev/null".into(),
        "-o".into(),
        "LogLevel=ERROR".into(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-i".into(),
        key,
        "-p".into(),
        host.port.to_string(),
        format!("{user}@{}", host.addr),
    ]
}

/// `/run/sshd` must exist for privilege separation; checked once per process.
fn prepare_system() -> io::Result<()> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            if !Path::new(SSHD).exists() {
                return Err(format!("{SSHD} is missing: run .ci/install-test-deps.sh"));
            }
            fs::create_dir_all("/run/sshd").map_err(|e| e.to_string())?;
            fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
            kill_orphans();
            fs::create_dir_all(CLAIMS).map_err(|e| e.to_string())?;
            fs::set_permissions(CLAIMS, fs::Permissions::from_mode(0o1777))
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(io::Error::other)
}
