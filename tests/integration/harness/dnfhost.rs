//! A real rpm/dnf host in a chroot: every path a survey reads (`/var/lib/rpm`, `/var/cache/dnf`,
//! `/etc/yum.repos.d`, python3's `import dnf`, `rpm`, `dnf`, `dnf needs-restarting`) is the
//! host's own, not a `--installroot` shim as in [`rpmrepo`](super::rpmrepo).
//!
//! The root is an overlay copy of a cached base: the bookworm base ([`debroot::base`]) with
//! Debian's `dnf`, `python3-dnf`, `rpm` and `dnf-plugins-core` installed from the mirror, built
//! once into `/var/cache/tendhost-test/bookworm-dnf`. rpm keeps its database in `/var/lib/rpm`
//! (`%_dbpath`, as on Fedora; Debian's default is `~/.rpmdb`) and dnf's release is `1`. Each
//! host gets its own rpm database with rpmrepo's 1.0 packages and `/srv/tendhost-repo` with the
//! newer ones, listed in `/etc/yum.repos.d/tendhost.repo`. The metadata is NOT fetched: tests
//! refresh (a survey with `ListsPolicy::Refresh`, or [`DnfHost::makecache`]).
//!
//! Boot time: dnf decides "installed since boot" by `/proc/1`'s time, which a fresh `proc`
//! mount sets when `/proc/1` is first looked up. The host mounts its `/proc` after installing
//! the 1.0 packages and keeps `/proc/1` open (so its time cannot change), then waits for the
//! next second: the 1.0 packages count as installed before boot, anything installed later as
//! after. [`DnfHost::emulate_reboot`] does it again with a new boot id.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tendhost::remote::LocalExecutor;

use super::apthost::BOOT_ID;
use super::debroot::{self, DebRoot, run};
use super::rpmrepo;
use super::sshd::{SshHost, SshdOptions};

const BASE_NAME: &str = "bookworm-dnf";
/// What the base adds to the bookworm one.
const PACKAGES: &[&str] = &["dnf", "python3-dnf", "rpm", "dnf-plugins-core"];
/// Where each host's repository of newer rpms lives, inside its root.
pub(crate) const REPO_DIR: &str = "/srv/tendhost-repo";
/// Where the counting shims log every python3 and rpm run, inside the root.
pub(crate) const RUN_LOG: &str = "/var/log/tendhost-runs.log";

/// How a host differs from the plain one.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DnfOptions {
    /// No python the survey finds can `import dnf`: `dnf` is started through a shell launcher
    /// (as dnf5's binary or a site's wrapper would be, so its `#!` names no python) and the
    /// `python3` first on `PATH` runs without site-packages (a python3 built from source in
    /// `/usr/local`, say). dnf itself still works. The survey must fall back to dnf's commands.
    pub no_python_dnf: bool,
    /// Logs every python3 (hence every dnf) and rpm process to [`RUN_LOG`].
    pub count_runs: bool,
}

/// Fields drop in order: `/proc/1` is let go and sshd stopped before the root is removed.
pub(crate) struct DnfHost {
    /// `/proc/1` of the root's current `proc` mount, held open so its time (the boot time dnf
    /// sees) stays put.
    boot: Option<fs::File>,
    pub sshd: SshHost,
    pub root: DebRoot,
    boots: u32,
}

/// The cached dnf-enabled base, built on first use (about a minute) from the bookworm base.
pub(crate) fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let bookworm = debroot::base();
        debroot::cached(BASE_NAME, |tmp| {
            eprintln!("dnfhost: building {BASE_NAME} from {} (once)", debroot::mirror());
            run(Command::new("cp").args(["-a"]).arg(bookworm).arg(tmp));
            let _ = fs::remove_file(tmp.join(".tendhost-base-complete"));
            // Installing must not start daemons on this machine.
            let policy = tmp.join("usr/sbin/policy-rc.d");
            write_script(&policy, "#!/bin/sh\nexit 101\n");
            fs::write(
                tmp.join("etc/apt/sources.list"),
                format!("deb {} bookworm main\n", debroot::mirror()),
            )
            .expect("sources.list");
            run(Command::new("mount")
                .args(["-t", "proc", "proc"])
                .arg(tmp.join("proc")));
            let installed = Command::new("chroot")
                .arg(tmp)
                .args([
                    "sh",
                    "-c",
                    &format!(
                        "export DEBIAN_FRONTEND=noninteractive; apt-get -q -o Acquire::Retries=3 update \
                         && apt-get -q -o Acquire::Retries=3 install -y --no-install-recommends {} \
                         && apt-get clean",
                        PACKAGES.join(" ")
                    ),
                ])
                .output();
            let _ = Command::new("umount").arg(tmp.join("proc")).status();
            let out = installed.expect("running apt-get in the dnf base");
            assert!(
                out.status.success(),
                "installing {PACKAGES:?} into the dnf base: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            fs::remove_file(&policy).expect("removing policy-rc.d");
            // As on Fedora: the rpm database in /var/lib/rpm, a release for $releasever, and
            // no "local" plugin copying every installed rpm into a repository.
            fs::create_dir_all(tmp.join("etc/rpm")).expect("etc/rpm");
            fs::write(tmp.join("etc/rpm/macros"), "%_dbpath /var/lib/rpm\n").expect("macros");
            fs::write(tmp.join("etc/dnf/vars/releasever"), "1\n").expect("releasever");
            let local = tmp.join("etc/dnf/plugins/local.conf");
            let text = fs::read_to_string(&local).expect("local.conf");
            fs::write(&local, text.replacen("enabled = true", "enabled = false", 1))
                .expect("local.conf");
            fs::create_dir_all(tmp.join("etc/yum.repos.d")).expect("yum.repos.d");
        })
    })
}

impl DnfHost {
    pub(crate) fn start(name: &str) -> DnfHost {
        Self::start_with(name, DnfOptions::default())
    }

    pub(crate) fn start_with(name: &str, options: DnfOptions) -> DnfHost {
        let root = DebRoot::with_base(name, base());
        let work = tempfile::tempdir().expect("rpm build dir");
        let built = rpmrepo::build_all(&work.path().join("rpmbuild"));
        let staging = root.path("tmp/tendhost-installed");
        fs::create_dir_all(&staging).expect("staging dir");
        let mut args = Vec::new();
        for file in rpmrepo::installed_files(&built) {
            let name = file.file_name().expect("an rpm file name");
            fs::copy(&file, staging.join(name)).expect("staging an rpm");
            args.push(format!(
                "/tmp/tendhost-installed/{}",
                name.to_string_lossy()
            ));
        }
        // Debian's rpm warns that it is not dpkg; the warning is all it prints.
        root.sh(&format!(
            "rpm --initdb && rpm -i --nodeps {} 2>/dev/null",
            args.join(" ")
        ));
        fs::remove_dir_all(&staging).expect("removing the staged rpms");
        rpmrepo::make_repo(&built, &root.path(REPO_DIR));
        fs::write(
            root.path("etc/yum.repos.d/tendhost.repo"),
            format!(
                "[tendhost]\nname=tendhost test packages\nbaseurl=file://{REPO_DIR}\n\
                 gpgcheck=0\nenabled=1\n"
            ),
        )
        .expect("tendhost.repo");
        let restarting = root.path("etc/dnf/plugins/needs-restarting.d");
        fs::create_dir_all(&restarting).expect("needs-restarting.d");
        fs::write(restarting.join("tendhost.conf"), rpmrepo::REBOOT_NAMES).expect("reboot names");
        if options.no_python_dnf {
            // Debian's /usr/bin/dnf is a symlink to the script dnf-3.
            fs::remove_file(root.path("usr/bin/dnf")).expect("removing the dnf link");
            write_script(
                &root.path("usr/bin/dnf"),
                "#!/bin/sh\nexec /usr/bin/python3 /usr/bin/dnf-3 \"$@\"\n",
            );
            write_script(
                &root.path("usr/local/bin/python3"),
                "#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n",
            );
        }
        if options.count_runs {
            for (tool, real) in [("python3", "python3.real"), ("rpm", "rpm.real")] {
                let path = root.path(&format!("usr/bin/{tool}"));
                let target = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                let real_path = root.path(&format!("usr/bin/{real}"));
                // The target may be an absolute symlink (resolved outside the root): copy what
                // the root's own path holds.
                run(Command::new("cp")
                    .arg("-a")
                    .arg(if target.starts_with(root.root()) {
                        &target
                    } else {
                        &path
                    })
                    .arg(&real_path));
                fs::remove_file(&path).expect("removing the tool for its shim");
                write_script(
                    &path,
                    &format!(
                        "#!/bin/sh\necho \"{tool} $*\" >> {RUN_LOG}\nexec /usr/bin/{real} \"$@\"\n"
                    ),
                );
            }
        }
        fs::write(root.path(BOOT_ID), "boot-1\n").expect("boot id");
        let sshd = SshHost::start(SshdOptions {
            force_command: Some(chroot_wrapper(&root)),
            ..SshdOptions::default()
        })
        .expect("starting sshd");
        let mut host = DnfHost {
            boot: None,
            sshd,
            root,
            boots: 1,
        };
        host.boot();
        host
    }

    /// Mounts a fresh `/proc` and pins `/proc/1`'s time as the boot time (see the module docs),
    /// then waits for the next second so anything installed from now on counts as after boot.
    fn boot(&mut self) {
        self.boot = None;
        let proc = self.root.path("proc");
        let _ = Command::new("umount").arg("-l").arg(&proc).status();
        run(Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(&proc));
        let pinned = fs::File::open(proc.join("1")).expect("opening /proc/1");
        let booted = fs::metadata(proc.join("1"))
            .and_then(|m| m.modified())
            .expect("/proc/1's time");
        let second = booted
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        self.boot = Some(pinned);
        super::wait_until(
            "the clock to pass the boot second",
            Duration::from_secs(5),
            Duration::from_millis(20),
            || now_secs() > second,
        );
    }

    /// A reboot as dnf and tendhost see it: a new boot time and a new boot id.
    pub(crate) fn emulate_reboot(&mut self) {
        self.boots += 1;
        fs::write(self.root.path(BOOT_ID), format!("boot-{}\n", self.boots)).expect("boot id");
        self.boot();
    }

    /// An executor whose commands run inside the root.
    pub(crate) fn executor(&self) -> LocalExecutor {
        self.root.executor()
    }

    /// Runs `script` inside the root, panicking on failure; returns stdout.
    pub(crate) fn sh(&self, script: &str) -> String {
        self.root.sh(script)
    }

    /// Fetches the repository metadata into dnf's cache, as a lists refresh does.
    pub(crate) fn makecache(&self) {
        self.sh("dnf -q makecache >/dev/null 2>&1");
    }

    pub(crate) fn boot_id(&self) -> String {
        fs::read_to_string(self.root.path(BOOT_ID))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// `VERSION-RELEASE` of an installed package, or empty.
    pub(crate) fn version(&self, package: &str) -> String {
        self.sh(&format!(
            "rpm -q --qf '%{{VERSION}}-%{{RELEASE}}' {package} 2>/dev/null || true"
        ))
        .trim()
        .to_string()
    }

    /// What the counting shims logged (one line per python3 or rpm process), and empties it.
    pub(crate) fn take_runs(&self) -> Vec<String> {
        let path = self.root.path(RUN_LOG);
        let text = fs::read_to_string(&path).unwrap_or_default();
        let _ = fs::remove_file(&path);
        text.lines().map(str::to_string).collect()
    }
}

/// The sshd `ForceCommand` that runs each session's command inside `root` (sshd's own
/// `ChrootDirectory` refuses roots under group-writable parents; see HARNESS.md).
fn chroot_wrapper(root: &DebRoot) -> PathBuf {
    let wrapper = root.path("../tendhost-wrapper.sh");
    write_script(
        &wrapper,
        &format!(
            "#!/bin/sh\nexec chroot {} sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
            tendhost::remote::quote(&root.root().display().to_string())
        ),
    );
    wrapper
}

fn write_script(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("script dir");
    }
    fs::write(path, text).expect("writing a script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("script mode");
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
