//! The `locks` check: does another process hold a package-manager lock, and which? An upgrade
//! started now would only wait for it and fail; said before the host is touched, the operator
//! learns who is in the way ("/var/lib/dpkg/lock-frontend held by unattended-upgr (pid 812)").
//!
//! apt, dpkg and rpm take `fcntl` locks on their lock files: the holders are in `/proc/locks`,
//! a line per lock naming the holder's pid and the locked file as `MAJOR:MINOR:INODE`. The
//! probe prints each lock file's device and inode (`stat`), the `/proc/locks` lines with that
//! inode and the `comm` of their pids; the reader keeps only the lines of the same device *and*
//! inode. `/proc/locks` lists every lock of the machine, and two filesystems (two containers'
//! overlays of one image) can hold files of the same inode number: only the device tells them
//! apart. dnf and yum take pid files instead (`*_lock.pid`, `yum.pid`): one whose pid is alive
//! is held.

use std::collections::BTreeMap;

use super::probe::{Part, ProbeRequest, one_line, unknown};
use super::{CheckName, CheckResult, HealthReport};
use crate::pkg::ManagerKind;
use crate::survey::sections::{Sections, marker};

/// The `fcntl` lock files of each manager.
const APT_LOCKS: &[&str] = &[
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/dpkg/lock",
    "/var/lib/apt/lists/lock",
    "/var/cache/apt/archives/lock",
];
const RPM_LOCKS: &[&str] = &["/var/lib/rpm/.rpm.lock"];
/// dnf's and yum's pid-file locks (globs, expanded on the host).
const PID_LOCKS: &[&str] = &[
    "/var/cache/dnf/*_lock.pid",
    "/var/lib/dnf/*_lock.pid",
    "/run/*_lock.pid",
    "/run/dnf/*_lock.pid",
    "/var/run/yum.pid",
];

/// The section body when `/proc/locks` cannot be read: nobody can tell who holds what.
const NO_PROC_LOCKS: &str = "no-proc-locks";

/// Package-manager locks held by another process.
pub(super) struct Locks;

/// A `/proc/locks` line: who holds a lock on which file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcLock {
    pid: i64,
    major: u64,
    minor: u64,
    inode: u64,
}

/// Reads one `/proc/locks` line: `1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF`. A waiter
/// (`1: -> POSIX …`) holds nothing and is not a lock.
fn proc_lock(line: &str) -> Option<ProcLock> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.get(1) == Some(&"->") {
        return None;
    }
    let pid = words.get(4)?.parse().ok()?;
    let mut file = words.get(5)?.split(':');
    let major = u64::from_str_radix(file.next()?, 16).ok()?;
    let minor = u64::from_str_radix(file.next()?, 16).ok()?;
    let inode = file.next()?.parse().ok()?;
    Some(ProcLock {
        pid,
        major,
        minor,
        inode,
    })
}

/// `stat`'s `st_dev` (glibc's encoding) as the kernel's major and minor, as `/proc/locks`
/// prints them.
fn major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0xff);
    (major, minor)
}

/// What the section said.
#[derive(Debug, Default)]
struct Answer {
    /// `file DEV INO PATH`: the lock files that exist.
    files: Vec<(u64, u64, String)>,
    /// `lock LINE`: `/proc/locks` lines with one of their inode numbers.
    locks: Vec<ProcLock>,
    /// `pidfile PID PATH`: pid-file locks whose pid is alive.
    pid_files: Vec<(i64, String)>,
    /// `comm PID NAME`.
    comms: BTreeMap<i64, String>,
    /// `unreadable PATH`: a lock file `stat` could not read.
    unreadable: Vec<String>,
    no_proc_locks: bool,
}

fn read_answer(body: &str) -> Answer {
    let mut answer = Answer::default();
    for line in body.lines() {
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "file" => {
                let mut words = rest.splitn(3, ' ');
                if let (Some(Ok(dev)), Some(Ok(inode)), Some(path)) = (
                    words.next().map(str::parse),
                    words.next().map(str::parse),
                    words.next(),
                ) {
                    answer.files.push((dev, inode, path.to_string()));
                }
            }
            "lock" => answer.locks.extend(proc_lock(rest)),
            "pidfile" => {
                if let Some((Ok(pid), path)) = rest.split_once(' ').map(|(p, f)| (p.parse(), f)) {
                    answer.pid_files.push((pid, path.to_string()));
                }
            }
            "comm" => {
                if let Some((Ok(pid), name)) = rest.split_once(' ').map(|(p, n)| (p.parse(), n)) {
                    answer.comms.insert(pid, name.to_string());
                }
            }
            "unreadable" => answer.unreadable.push(rest.to_string()),
            NO_PROC_LOCKS => answer.no_proc_locks = true,
            _ => {}
        }
    }
    answer
}

impl Answer {
    /// "python3 (pid 1234)", or "pid 1234" when its name is unknown (gone meanwhile, or a
    /// lock whose owner the kernel does not name).
    fn holder(&self, pid: i64) -> String {
        match self.comms.get(&pid).map(|c| one_line(c)) {
            Some(name) if !name.is_empty() => format!("{name} (pid {pid})"),
            _ if pid <= 0 => "a process the kernel does not name".to_string(),
            _ => format!("pid {pid}"),
        }
    }

    /// Each held lock as "PATH held by NAME (pid N)", in the order the files were listed.
    fn held(&self) -> Vec<String> {
        let mut held = Vec::new();
        for (dev, inode, path) in &self.files {
            let (major, minor) = major_minor(*dev);
            let mut pids: Vec<i64> = self
                .locks
                .iter()
                .filter(|l| (l.major, l.minor, l.inode) == (major, minor, *inode))
                .map(|l| l.pid)
                .collect();
            pids.sort_unstable();
            pids.dedup();
            if !pids.is_empty() {
                let holders: Vec<String> = pids.iter().map(|&p| self.holder(p)).collect();
                held.push(format!("{} held by {}", one_line(path), holders.join(", ")));
            }
        }
        for (pid, path) in &self.pid_files {
            held.push(format!("{} held by {}", one_line(path), self.holder(*pid)));
        }
        held
    }
}

impl Part for Locks {
    fn name(&self) -> CheckName {
        CheckName::Locks
    }

    fn script(&self, request: &ProbeRequest<'_>) -> String {
        let (files, pid_files) = match request.manager {
            None => return marker("locks"),
            Some(ManagerKind::Apt) => (APT_LOCKS, &[][..]),
            Some(ManagerKind::Dnf | ManagerKind::Yum) => (RPM_LOCKS, PID_LOCKS),
        };
        // Paths are constants of this file, never host data.
        format!(
            "{marker}\n\
             if [ ! -r /proc/locks ]; then echo {NO_PROC_LOCKS}; exit 0; fi\n\
             comm() {{ echo \"comm $1 $(cat \"/proc/$1/comm\" 2>/dev/null)\"; }}\n\
             for f in {files}; do [ -e \"$f\" ] || continue\n\
             s=$(stat -L -c '%d %i' -- \"$f\") || {{ echo \"unreadable $f\"; continue; }}\n\
             set -- $s; echo \"file $1 $2 $f\"\n\
             grep -F \":$2 \" /proc/locks | while read -r line; do\n\
             echo \"lock $line\"; set -- $line; comm \"$5\"; done\n\
             done\n\
             for f in {pid_files}; do [ -f \"$f\" ] || continue\n\
             p=$(head -c 32 \"$f\" | tr -cd 0-9)\n\
             [ -n \"$p\" ] && [ -d \"/proc/$p\" ] && echo \"pidfile $p $f\" && comm \"$p\"\n\
             done; true",
            marker = marker("locks"),
            files = files.join(" "),
            pid_files = match pid_files.is_empty() {
                true => "''".to_string(),
                false => pid_files.join(" "),
            },
        )
    }

    fn read(
        &self,
        request: &ProbeRequest<'_>,
        sections: &Sections,
        _report: &mut HealthReport,
    ) -> CheckResult {
        let phase = request.phase;
        if request.manager.is_none() {
            return CheckResult::pass(
                self.name(),
                phase,
                "not applicable: the host has no package manager",
            );
        }
        let Some(section) = sections.get("locks") else {
            return unknown(self.name(), phase);
        };
        let answer = read_answer(&section.body);
        if answer.no_proc_locks {
            return CheckResult::fail(
                self.name(),
                phase,
                "could not tell: /proc/locks is not readable",
            );
        }
        let mut held = answer.held();
        held.extend(
            answer
                .unreadable
                .iter()
                .map(|path| format!("could not tell who holds {}", one_line(path))),
        );
        match held.is_empty() {
            true => CheckResult::pass(
                self.name(),
                phase,
                format!(
                    "no package-manager lock held ({} lock files checked)",
                    answer.files.len()
                ),
            ),
            false => CheckResult::fail(self.name(), phase, held.join("; ")),
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn healthy(&self) -> String {
        "@@locks\nfile 2049 131074 /var/lib/dpkg/lock-frontend\n\
         file 2049 131075 /var/lib/dpkg/lock\n"
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;
    use crate::health::CheckPhase;

    fn check(manager: Option<ManagerKind>, body: &str) -> CheckResult {
        let skip = BTreeSet::new();
        let request = ProbeRequest {
            phase: CheckPhase::Pre,
            manager,
            skip: &skip,
            space: None,
            disk_margin: 0,
            baseline: None,
            system_running_timeout: Duration::from_secs(60),
            compose_paths: &[],
            compose_version: crate::config::ComposeVersion::V2,
        };
        let sections = Sections::parse(&format!("@@health\n@@locks\n{body}"));
        Locks.read(&request, &sections, &mut HealthReport::new(CheckPhase::Pre))
    }

    #[test]
    fn reads_proc_locks_lines_and_skips_waiters() {
        assert_eq!(
            proc_lock("1: POSIX  ADVISORY  WRITE 1234 fe:01:5391570 0 EOF"),
            Some(ProcLock {
                pid: 1234,
                major: 0xfe,
                minor: 1,
                inode: 5391570
            })
        );
        assert_eq!(
            proc_lock("1: -> POSIX  ADVISORY  WRITE 99 fe:01:5391570 0 EOF"),
            None
        );
        assert_eq!(proc_lock("garbage"), None);
        // glibc's dev_t: 8:1 is 2049, 259:65536 (a large minor) spreads over both halves.
        assert_eq!(major_minor(2049), (8, 1));
        assert_eq!(major_minor((259 << 8) | (0x100 << 12)), (259, 0x100));
    }

    #[test]
    fn names_the_holder_of_a_lock_on_the_same_device_and_inode_only() {
        // 2049 is 08:01. The line on 00:2b has the same inode: another filesystem's file
        // (another container's overlay), not this host's lock.
        let body = "file 2049 131074 /var/lib/dpkg/lock-frontend\n\
            lock 3: POSIX  ADVISORY  WRITE 777 00:2b:131074 0 EOF\n\
            comm 777 apt-get\n\
            file 2049 131075 /var/lib/dpkg/lock\n";
        let passed = check(Some(ManagerKind::Apt), body);
        assert!(passed.ok, "{passed:?}");
        assert_eq!(
            &*passed.detail,
            "no package-manager lock held (2 lock files checked)"
        );
        let held = format!(
            "{body}lock 4: POSIX  ADVISORY  WRITE 1234 08:01:131074 0 EOF\n\
             comm 1234 python3\n\
             lock 5: -> POSIX  ADVISORY  WRITE 1300 08:01:131074 0 EOF\n"
        );
        let failed = check(Some(ManagerKind::Apt), &held);
        assert!(!failed.ok);
        assert_eq!(
            &*failed.detail,
            "/var/lib/dpkg/lock-frontend held by python3 (pid 1234)"
        );
    }

    #[test]
    fn a_live_dnf_pid_file_is_held_and_no_manager_is_not_applicable() {
        let failed = check(
            Some(ManagerKind::Dnf),
            "pidfile 4321 /var/cache/dnf/metadata_lock.pid\ncomm 4321 dnf\n\
             file 2049 9 /var/lib/rpm/.rpm.lock\n\
             lock 1: POSIX ADVISORY WRITE 4400 08:01:9 0 EOF\n",
        );
        assert_eq!(
            &*failed.detail,
            "/var/lib/rpm/.rpm.lock held by pid 4400; \
             /var/cache/dnf/metadata_lock.pid held by dnf (pid 4321)"
        );
        let none = check(None, "");
        assert!(none.ok && none.detail.starts_with("not applicable"));
        assert!(Locks.script(&none_request()).ends_with("@@locks'"));
        assert!(!check(Some(ManagerKind::Apt), "no-proc-locks\n").ok);
        assert!(
            check(
                Some(ManagerKind::Apt),
                &Locks.healthy().replace("@@locks\n", "")
            )
            .ok
        );
        let unreadable = check(
            Some(ManagerKind::Apt),
            "stat: cannot statx '/var/lib/dpkg/lock': Permission denied\n\
             unreadable /var/lib/dpkg/lock\n",
        );
        assert_eq!(
            &*unreadable.detail,
            "could not tell who holds /var/lib/dpkg/lock"
        );
    }

    fn none_request() -> ProbeRequest<'static> {
        static SKIP: BTreeSet<CheckName> = BTreeSet::new();
        ProbeRequest {
            phase: CheckPhase::Pre,
            manager: None,
            skip: &SKIP,
            space: None,
            disk_margin: 0,
            baseline: None,
            system_running_timeout: Duration::from_secs(60),
            compose_paths: &[],
            compose_version: crate::config::ComposeVersion::V2,
        }
    }
}
