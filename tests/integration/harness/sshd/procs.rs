//! Processes and addresses: per-process claims on loopback addresses (lock files), and killing
//! whole sshd process trees — by pid, treating zombies as dead.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{CLAIMS, SSHD};

/// A loopback address held by this process: a lock file naming our pid. Stale claims (dead pid)
/// are taken over.
pub(super) struct Claim {
    file: PathBuf,
}

impl Claim {
    pub(super) fn next(port: u16) -> io::Result<(String, Claim)> {
        // Start at a pid-dependent place so concurrent processes rarely even contend.
        static NEXT: Mutex<Option<u32>> = Mutex::new(None);
        let mut next = NEXT.lock().unwrap_or_else(|p| p.into_inner());
        let start = *next.get_or_insert_with(|| (std::process::id() % 200) * 250);
        for i in 0..(254 * 256) {
            let n = (start + i) % (254 * 256);
            let addr = format!("127.77.{}.{}", n / 254, n % 254 + 1);
            let file = Path::new(CLAIMS).join(format!("{addr}:{port}"));
            if !Self::take(&file)? {
                continue;
            }
            // Someone outside the harness may hold it.
            if TcpListener::bind((addr.as_str(), port)).is_err() {
                let _ = fs::remove_file(&file);
                continue;
            }
            *next = Some(n + 1);
            return Ok((addr, Claim { file }));
        }
        Err(io::Error::other("no free loopback address for a test sshd"))
    }

    fn take(file: &Path) -> io::Result<bool> {
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(file)
            {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id())?;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(file)
                        .ok()
                        .and_then(|s| s.trim().parse().ok());
                    match owner {
                        Some(pid) if pid_alive(pid) => return Ok(false),
                        // Stale (or half-written by a dying process): remove and retry once.
                        _ => {
                            let _ = fs::remove_file(file);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
    }
}

/// Alive and not a zombie (init reaps killed daemons late here; a zombie is dead to us).
pub(crate) fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => !status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z')),
        Err(_) => false,
    }
}

/// Kills harness sshds left behind by a test process that was itself killed (SIGKILL skips
/// `Drop`): their parent died, so init adopted them (ppid 1). Live processes' hosts keep their
/// parent and are left alone.
pub(super) fn kill_orphans() {
    for pid in pids() {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        // sshd rewrites its title: "sshd: /usr/sbin/sshd -D -f /tmp/tendhost-sshd-…/sshd_config".
        if cmdline.contains(SSHD)
            && cmdline.contains("/tendhost-sshd-")
            && parent_of(pid) == Some(1)
        {
            kill_tree(pid);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// SIGKILLs every descendant of `root` (not `root` itself).
pub(super) fn kill_tree(root: i32) {
    signal_tree(root, nix::sys::signal::Signal::SIGKILL);
}

/// Sends `signal` to every descendant of `root` (not `root` itself).
pub(super) fn signal_tree(root: i32, signal: nix::sys::signal::Signal) {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for pid in pids() {
        if let Some(ppid) = parent_of(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut stack = children.get(&root).cloned().unwrap_or_default();
    let mut all = Vec::new();
    while let Some(pid) = stack.pop() {
        all.push(pid);
        if let Some(kids) = children.get(&pid) {
            stack.extend(kids);
        }
    }
    for pid in all {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// Every process id in `/proc` (none when it cannot be read).
fn pids() -> impl Iterator<Item = i32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`; comm may contain spaces and parentheses, so split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}
