//! The `disk` check: is there room for the upgrade about to run, before anything is downloaded?
//!
//! The probe asks `df -P -B1` (POSIX columns, bytes) about `/`, the manager's package cache
//! and, when the plan holds a kernel, `/boot`; it also measures the biggest kernel+initramfs
//! pair already in `/boot`, the best guess of what a new one takes. The reader groups the paths
//! by filesystem (on a host where everything is one `/`, the needs add up there, and the margin
//! counts once) and compares each filesystem's free space with what lands on it plus
//! `[host.checks] disk_margin`.
//!
//! Paths and sizes only: nothing here knows the plan beyond [`SpaceNeeds`].

use super::probe::{Part, ProbeRequest, SpaceNeeds, one_line, unknown};
use super::{CheckName, CheckResult, HealthReport};
use crate::pkg::ManagerKind;
use crate::plan::render::bytes_text;
use crate::survey::sections::{Sections, marker};

/// What a new kernel and its initramfs take in `/boot` when none is there to measure.
const KERNEL_GUESS: u64 = 100 * 1024 * 1024;

/// The section's line before each path's `df` answer: `path ROLE PATH`.
const PATH_LINE: &str = "path";
/// A kernel+initramfs pair found in `/boot`: `kernel BYTES`.
const KERNEL_LINE: &str = "kernel";

/// Free space on the filesystems an upgrade writes to.
pub(super) struct Disk;

/// Why a path is looked at: which need lands on its filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `/`: the installed size grows here (`/usr`).
    Root,
    /// The package cache: the download lands here.
    Cache,
    /// `/boot`: a new kernel and initramfs.
    Boot,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Cache => "cache",
            Role::Boot => "boot",
        }
    }

    fn parse(word: &str) -> Option<Role> {
        [Role::Root, Role::Cache, Role::Boot]
            .into_iter()
            .find(|r| r.as_str() == word)
    }
}

/// One line of `df -P -B1`: the filesystem, its free bytes and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DfLine {
    filesystem: String,
    available: u64,
    mount: String,
}

/// Reads a `df -P` data line: `Filesystem 1-blocks Used Available Capacity Mounted-on`. A
/// filesystem or mount point may hold spaces, so the columns are found around the capacity
/// (the first word ending in `%` after three numbers).
fn df_line(line: &str) -> Option<DfLine> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let capacity = (4..words.len()).find(|&i| {
        words[i].ends_with('%') && words[i - 3..i].iter().all(|w| w.parse::<u64>().is_ok())
    })?;
    let mount = words[capacity + 1..].join(" ");
    if mount.is_empty() {
        return None;
    }
    Some(DfLine {
        filesystem: words[..capacity - 3].join(" "),
        available: words[capacity - 1].parse().ok()?,
        mount,
    })
}

/// What the section said about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PathAnswer {
    role: Role,
    path: String,
    /// `Err`: what `df` printed instead of a usage line.
    df: Result<DfLine, String>,
}

/// Reads the section: each path's `df` answer, and the biggest kernel pair in `/boot`.
fn read_section(body: &str) -> (Vec<PathAnswer>, Option<u64>) {
    let mut answers: Vec<PathAnswer> = Vec::new();
    let mut kernel: Option<u64> = None;
    let mut errors: Vec<String> = Vec::new();
    let close = |answers: &mut Vec<PathAnswer>, errors: &mut Vec<String>| {
        if let Some(last) = answers.last_mut()
            && last.df.is_err()
        {
            let said = one_line(&errors.join("\n"));
            last.df = Err(match said.is_empty() {
                true => "df gave no answer".to_string(),
                false => said,
            });
        }
        errors.clear();
    };
    for line in body.lines() {
        let mut words = line.splitn(3, ' ');
        let (first, second, rest) = (words.next(), words.next(), words.next());
        if let (Some(PATH_LINE), Some(role), Some(path)) = (first, second, rest)
            && let Some(role) = Role::parse(role)
        {
            close(&mut answers, &mut errors);
            answers.push(PathAnswer {
                role,
                path: path.to_string(),
                df: Err(String::new()),
            });
            continue;
        }
        if let (Some(KERNEL_LINE), Some(bytes), None) = (first, second, rest) {
            kernel = kernel.max(bytes.parse::<u64>().ok());
            continue;
        }
        if line.starts_with("Filesystem") {
            continue;
        }
        match (answers.last_mut(), df_line(line)) {
            (Some(last), Some(df)) if last.df.is_err() => last.df = Ok(df),
            _ => errors.push(line.to_string()),
        }
    }
    close(&mut answers, &mut errors);
    (answers, kernel)
}

/// One filesystem and everything that lands on it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Filesystem {
    mount: String,
    available: u64,
    /// The upgrade's own need, without the margin.
    needs: u64,
}

/// Groups the paths by filesystem (device and mount point), adding up their needs.
fn group(answers: &[PathAnswer], space: Option<SpaceNeeds>, kernel: u64) -> Vec<Filesystem> {
    let mut filesystems: Vec<(String, Filesystem)> = Vec::new();
    for answer in answers {
        let Ok(df) = &answer.df else { continue };
        let need = match (answer.role, space) {
            (_, None) => 0,
            (Role::Root, Some(s)) => u64::try_from(s.install_bytes).unwrap_or(0),
            (Role::Cache, Some(s)) => s.download_bytes,
            (Role::Boot, Some(s)) if s.kernel => kernel,
            (Role::Boot, Some(_)) => 0,
        };
        let key = format!("{}\0{}", df.filesystem, df.mount);
        match filesystems.iter_mut().find(|(k, _)| *k == key) {
            Some((_, fs)) => fs.needs = fs.needs.saturating_add(need),
            None => filesystems.push((
                key,
                Filesystem {
                    mount: df.mount.clone(),
                    available: df.available,
                    needs: need,
                },
            )),
        }
    }
    filesystems.into_iter().map(|(_, fs)| fs).collect()
}

/// "needs 300.0 MiB (+200.0 MiB margin)", or "needs the 200.0 MiB margin" when the upgrade
/// itself adds nothing there.
fn needs_text(needs: u64, margin: u64) -> String {
    match needs {
        0 => format!("needs the {} margin", bytes_text(margin)),
        n => format!("needs {} (+{} margin)", bytes_text(n), bytes_text(margin)),
    }
}

/// The verdict on the grouped filesystems: every short one named, or what was checked.
fn judge(filesystems: &[Filesystem], margin: u64) -> Result<String, String> {
    let line = |fs: &Filesystem| {
        format!(
            "{}: {} free, {}",
            one_line(&fs.mount),
            bytes_text(fs.available),
            needs_text(fs.needs, margin)
        )
    };
    let short: Vec<String> = filesystems
        .iter()
        .filter(|fs| fs.available < fs.needs.saturating_add(margin))
        .map(line)
        .collect();
    match short.is_empty() {
        true => Ok(filesystems.iter().map(line).collect::<Vec<_>>().join("; ")),
        false => Err(short.join("; ")),
    }
}

impl Part for Disk {
    fn name(&self) -> CheckName {
        CheckName::Disk
    }

    fn script(&self, request: &ProbeRequest<'_>) -> String {
        // The first cache directory that exists, `/var` when the manager has none yet.
        let caches = match request.manager {
            Some(ManagerKind::Apt) => "/var/cache/apt/archives /var/cache/apt /var",
            Some(ManagerKind::Dnf) => "/var/cache/dnf /var/cache/yum /var",
            Some(ManagerKind::Yum) => "/var/cache/yum /var/cache/dnf /var",
            None => "/var",
        };
        let boot = request.space.is_some_and(|s| s.kernel);
        let mut script = format!(
            "{marker}\n\
             space() {{ echo \"{PATH_LINE} $1 $2\"; df -P -B1 -- \"$2\" 2>&1; }}\n\
             space root /\n\
             for c in {caches} /; do [ -d \"$c\" ] && break; done; space cache \"$c\"\n",
            marker = marker("disk"),
        );
        if boot {
            // The biggest kernel+initramfs pair installed: Debian's `initrd.img-V`, Fedora's
            // `initramfs-V.img`.
            script.push_str(&format!(
                "if [ -d /boot ]; then space boot /boot\n\
                 for k in /boot/vmlinuz-*; do [ -f \"$k\" ] || continue; v=${{k#/boot/vmlinuz-}}\n\
                 s=$(wc -c <\"$k\"); i=0\n\
                 for f in \"/boot/initrd.img-$v\" \"/boot/initramfs-$v.img\"; do \
                 [ -f \"$f\" ] && i=$(wc -c <\"$f\"); done\n\
                 echo \"{KERNEL_LINE} $((s + i))\"; done; fi"
            ));
        }
        script
    }

    fn read(
        &self,
        request: &ProbeRequest<'_>,
        sections: &Sections,
        _report: &mut HealthReport,
    ) -> CheckResult {
        let phase = request.phase;
        let Some(section) = sections.get("disk") else {
            return unknown(self.name(), phase);
        };
        let (answers, kernel) = read_section(&section.body);
        if !answers.iter().any(|a| a.role == Role::Root) {
            return unknown(self.name(), phase);
        }
        let unread: Vec<String> = answers
            .iter()
            .filter_map(|a| match &a.df {
                Ok(_) => None,
                Err(why) => Some(format!("{}: {why}", one_line(&a.path))),
            })
            .collect();
        if !unread.is_empty() {
            return CheckResult::fail(
                self.name(),
                phase,
                format!("could not tell the free space of {}", unread.join("; ")),
            );
        }
        let filesystems = group(&answers, request.space, kernel.unwrap_or(KERNEL_GUESS));
        match judge(&filesystems, request.disk_margin) {
            Ok(checked) => CheckResult::pass(self.name(), phase, checked),
            Err(short) => CheckResult::fail(self.name(), phase, short),
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn healthy(&self) -> String {
        "@@disk\npath root /\n\
         Filesystem 1024-blocks Used Available Capacity Mounted on\n\
         /dev/vda1 21474836480 5368709120 16106127360 25% /\n\
         path cache /var/cache/apt/archives\n\
         Filesystem 1024-blocks Used Available Capacity Mounted on\n\
         /dev/vda1 21474836480 5368709120 16106127360 25% /\n"
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;
    use crate::health::CheckPhase;

    const MIB: u64 = 1024 * 1024;

    fn request(
        space: Option<SpaceNeeds>,
        margin: u64,
        skip: &BTreeSet<CheckName>,
    ) -> ProbeRequest<'_> {
        ProbeRequest {
            phase: CheckPhase::Pre,
            manager: Some(ManagerKind::Apt),
            skip,
            space,
            disk_margin: margin,
            baseline: None,
            system_running_timeout: Duration::from_secs(60),
            compose_paths: &[],
            compose_version: crate::config::ComposeVersion::V2,
        }
    }

    fn check(body: &str, space: Option<SpaceNeeds>, margin: u64) -> CheckResult {
        let skip = BTreeSet::new();
        let sections = Sections::parse(&format!("@@health\n@@disk\n{body}"));
        Disk.read(
            &request(space, margin, &skip),
            &sections,
            &mut HealthReport::new(CheckPhase::Pre),
        )
    }

    /// `/` and `/var` apart, `/boot` apart: 1 GiB, 120 MiB and 150 MiB free.
    const SPLIT: &str = "path root /\n\
        Filesystem 1-blocks Used Available Capacity Mounted on\n\
        /dev/sda1 10737418240 9663676416 1073741824 90% /\n\
        path cache /var/cache/apt/archives\n\
        Filesystem 1-blocks Used Available Capacity Mounted on\n\
        /dev/sda2 1073741824 947912704 125829120 89% /var\n\
        path boot /boot\n\
        Filesystem 1-blocks Used Available Capacity Mounted on\n\
        /dev/sda3 524288000 367001600 157286400 70% /boot\n\
        kernel 73400320\nkernel 62914560\n";

    #[test]
    fn reads_df_lines_with_spaces_in_names() {
        assert_eq!(
            df_line("/dev/mapper/vg-root 10737418240 5368709120 5368709120 50% /"),
            Some(DfLine {
                filesystem: "/dev/mapper/vg-root".into(),
                available: 5368709120,
                mount: "/".into(),
            })
        );
        assert_eq!(
            df_line("my disk 100 40 60 40% /mnt/my data"),
            Some(DfLine {
                filesystem: "my disk".into(),
                available: 60,
                mount: "/mnt/my data".into(),
            })
        );
        assert_eq!(
            df_line("Filesystem 1-blocks Used Available Capacity Mounted on"),
            None
        );
        assert_eq!(df_line("df: /nope: No such file or directory"), None);
    }

    #[test]
    fn names_each_short_filesystem_with_its_need_and_margin() {
        let space = SpaceNeeds {
            download_bytes: 100 * MIB,
            install_bytes: 300 * MIB as i64,
            kernel: true,
        };
        let result = check(SPLIT, Some(space), 50 * MIB);
        assert!(!result.ok);
        // /var: 120 MiB < 100 + 50; /boot: 150 MiB < 70 (the biggest pair) + 50 is fine; /:
        // 1 GiB ≥ 300 + 50.
        assert_eq!(
            &*result.detail,
            "/var: 120.0 MiB free, needs 100.0 MiB (+50.0 MiB margin)"
        );
        let result = check(SPLIT, Some(space), 100 * MIB);
        assert_eq!(
            &*result.detail,
            "/var: 120.0 MiB free, needs 100.0 MiB (+100.0 MiB margin); \
             /boot: 150.0 MiB free, needs 70.0 MiB (+100.0 MiB margin)"
        );
    }

    #[test]
    fn paths_on_one_filesystem_add_up_their_needs_and_the_margin_counts_once() {
        let one = "path root /\n\
            /dev/vda1 10737418240 10422845440 314572800 97% /\n\
            path cache /var/cache/apt/archives\n\
            /dev/vda1 10737418240 10422845440 314572800 97% /\n\
            path boot /boot\n\
            /dev/vda1 10737418240 10422845440 314572800 97% /\n";
        let space = SpaceNeeds {
            download_bytes: 100 * MIB,
            install_bytes: 100 * MIB as i64,
            kernel: false,
        };
        // 300 MiB free: 100 + 100 + 50 fits; the kernel guess (100 MiB) on top does not.
        let fits = check(one, Some(space), 50 * MIB);
        assert!(fits.ok, "{fits:?}");
        assert_eq!(
            &*fits.detail,
            "/: 300.0 MiB free, needs 200.0 MiB (+50.0 MiB margin)"
        );
        let kernel = SpaceNeeds {
            kernel: true,
            ..space
        };
        let short = check(one, Some(kernel), 50 * MIB);
        assert_eq!(
            &*short.detail,
            "/: 300.0 MiB free, needs 300.0 MiB (+50.0 MiB margin)"
        );
    }

    #[test]
    fn without_a_plan_the_margin_alone_is_checked_and_a_shrinking_upgrade_needs_nothing_on_root() {
        let passed = check(SPLIT, None, 100 * MIB);
        assert!(passed.ok, "{passed:?}");
        assert!(
            passed
                .detail
                .starts_with("/: 1.0 GiB free, needs the 100.0 MiB margin; /var: 120.0 MiB free"),
            "{}",
            passed.detail
        );
        let failed = check(SPLIT, None, 2048 * MIB);
        assert!(
            failed
                .detail
                .contains("/: 1.0 GiB free, needs the 2.0 GiB margin")
        );
        let shrinking = SpaceNeeds {
            download_bytes: 0,
            install_bytes: -500 * MIB as i64,
            kernel: false,
        };
        assert!(check(SPLIT, Some(shrinking), 100 * MIB).ok);
    }

    #[test]
    fn a_df_that_fails_or_a_missing_answer_cannot_tell() {
        let failed = check(
            "path root /\nsh: 1: df: not found\npath cache /var\nsh: 1: df: not found\n",
            None,
            0,
        );
        assert!(!failed.ok);
        assert_eq!(
            &*failed.detail,
            "could not tell the free space of /: sh: 1: df: not found; /var: sh: 1: df: not found"
        );
        assert!(!check("", None, 0).ok);
        let skip = BTreeSet::new();
        let missing = Disk.read(
            &request(None, 0, &skip),
            &Sections::parse("@@health\n"),
            &mut HealthReport::new(CheckPhase::Pre),
        );
        assert!(missing.detail.starts_with("could not tell"));
    }

    #[test]
    fn boot_is_probed_only_with_a_kernel_in_the_plan() {
        let skip = BTreeSet::new();
        assert!(!Disk.script(&request(None, 0, &skip)).contains("/boot"));
        let kernel = SpaceNeeds {
            kernel: true,
            ..SpaceNeeds::default()
        };
        assert!(
            Disk.script(&request(Some(kernel), 0, &skip))
                .contains("/boot/vmlinuz-")
        );
        assert!(check(&Disk.healthy().replace("@@disk\n", ""), Some(kernel), MIB).ok);
    }
}
