//! The benchmark's fleet: real sshd hosts whose sessions run in their own Debian root with real
//! apt, set up cheaply enough to make 50 (or more) of them several times in one run.
//!
//! - The **apt layer** is built once and cached in `/var/cache/tendhost-bench/apt-layer`: on top
//!   of the harness's cached bookworm base (`debroot`, from the test harness), python3 and python3-apt (what
//!   Ansible needs on a host) from the Debian mirror, then the harness's local repository
//!   (`aptrepo`: 1.0 installed, 1.1 pending, one of them setting reboot-required), apt's
//!   lists already read (as on a host that refreshed them lately), a `reboot` that only asks for
//!   the emulated reboot, and a boot id file. Delete the directory to rebuild it.
//! - Each **host** is an overlayfs mount over that layer and the base (no copying), `/proc`
//!   mounted inside and `/proc/sys/kernel/random/boot_id` bind-mounted from
//!   `/etc/tendhost-boot-id`, so tendhost's default reboot check sees an emulated reboot; an
//!   sshd (the harness's `sshd`) whose `ForceCommand` chroots into it.
//! - [`RebootEmulator`] watches every host for the marker its `reboot` leaves and plays the
//!   reboot: sshd stops (open connections die), a new boot id, reboot-required cleared, sshd back
//!   after [`REBOOT_DOWN`].
//!
//! - A **dnf host** is the harness's [`DnfHost`] (`tests/integration/harness/dnfhost.rs`): an
//!   overlay over the cached `bookworm-dnf` base with its own rpm database (rpmrepo's 1.0
//!   packages), a local repository of the newer ones whose metadata is fetched at start (as
//!   the apt layer's lists are read), the same `reboot` and boot id file, and the boot id bound
//!   over `/proc/sys/kernel/random/boot_id` like an apt host's. Its reboot also mounts a fresh
//!   `/proc`, which is how dnf sees a new boot time. Measured: 10 of them start in ~16 s on a
//!   busy 2-core machine (each builds its rpms and reads its metadata: ~1.5 s CPU); 40 apt + 10
//!   dnf in 10–12 s on a quiet one, three fleets a run. Not layered further, so the harness's
//!   host stays the one definition of a dnf host.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::aptrepo;
use crate::debroot::{self, run};
use crate::dnfhost::{self, DnfHost};
use crate::sshd::{SshHost, SshdOptions};

const CACHE: &str = "/var/cache/tendhost-bench";
const LAYER: &str = "apt-layer";
/// Written last into a finished layer, so a half-built one is never used.
const LAYER_COMPLETE: &str = ".tendhost-layer-complete";
/// The boot id the hosts' `/proc/sys/kernel/random/boot_id` shows.
pub(crate) const BOOT_ID: &str = "/etc/tendhost-boot-id";
/// What the hosts' `reboot` does (also Ansible's `reboot_command`).
pub(crate) const REBOOT_COMMAND: &str = "touch /tendhost-reboot-requested";
/// How long an emulated reboot keeps sshd down. A real VM here takes ~40 s (HARNESS.md); a
/// short, fixed pause keeps the wave figures about scheduling, not about boot times.
pub(crate) const REBOOT_DOWN: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostKind {
    Apt,
    /// rpm and dnf (Debian's), in a root whose os-release is still Debian's: tendhost is told
    /// `manager = "dnf"`.
    Dnf,
}

/// The cached apt layer (built on first use, a minute or two, under a lock).
fn apt_layer() -> PathBuf {
    let base = debroot::base();
    let cache = Path::new(CACHE);
    fs::create_dir_all(cache).expect("creating the bench cache dir");
    let layer = cache.join(LAYER);
    let lock = fs::File::create(cache.join(".lock")).expect("creating the cache lock");
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("locking the bench cache");
    if layer.join(LAYER_COMPLETE).exists() {
        return layer;
    }
    eprintln!("fleet: building the apt layer {} (once)", layer.display());
    let tmp = cache.join(format!("{LAYER}.tmp"));
    // A build cut short leaves its mounts behind.
    let _ = Command::new("umount")
        .arg("-R")
        .arg(tmp.join("root"))
        .stderr(std::process::Stdio::null())
        .status();
    let _ = fs::remove_dir_all(&tmp);
    for sub in ["upper", "work", "root"] {
        fs::create_dir_all(tmp.join(sub)).expect("layer dirs");
    }
    let root = tmp.join("root");
    mount_overlay(&format!("{}", base.display()), &tmp, &root);
    run(Command::new("mount")
        .args(["-t", "proc", "proc"])
        .arg(root.join("proc")));
    let chroot = |script: &str| {
        run(Command::new("chroot").arg(&root).args(["sh", "-c", script]));
    };
    fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).expect("resolv.conf");
    fs::write(
        root.join("etc/apt/sources.list"),
        format!("deb {} bookworm main\n", debroot::mirror()),
    )
    .expect("sources.list");
    chroot(
        "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
         apt-get install -y -qq --no-install-recommends python3 python3-apt >/dev/null && \
         apt-get clean",
    );
    aptrepo::install_into(&root);
    chroot("apt-get update -qq");
    fs::write(
        root.join("usr/local/sbin/reboot"),
        format!("#!/bin/sh\n{REBOOT_COMMAND}\n"),
    )
    .expect("reboot");
    fs::set_permissions(
        root.join("usr/local/sbin/reboot"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("reboot mode");
    fs::write(root.join(BOOT_ID.trim_start_matches('/')), "boot-1\n").expect("boot id");
    run(Command::new("umount").arg(root.join("proc")));
    run(Command::new("umount").arg(&root));
    fs::write(tmp.join("upper").join(LAYER_COMPLETE), b"").expect("marker");
    let _ = fs::remove_dir_all(&layer);
    fs::rename(tmp.join("upper"), &layer).expect("moving the layer into place");
    let _ = fs::remove_dir_all(&tmp);
    layer
}

fn mount_overlay(lower: &str, dir: &Path, root: &Path) {
    let options = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        dir.join("upper").display(),
        dir.join("work").display()
    );
    run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(root));
}

/// One benchmark host: its root and its sshd.
pub(crate) struct BenchHost {
    pub name: String,
    pub kind: HostKind,
    /// The host's `/`, as the bench reads it.
    root: PathBuf,
    machine: Machine,
    pub addr: String,
    known_hosts_line: String,
}

/// What runs a host. Each lock is taken only to stop or restart its sshd (the reboot emulation).
enum Machine {
    Apt {
        /// Holds `upper/`, `work/`, `root/` and the sshd wrapper.
        dir: PathBuf,
        sshd: Mutex<SshHost>,
    },
    /// The harness's host: its root, its sshd and its pinned boot time.
    Dnf(Mutex<DnfHost>),
}

impl BenchHost {
    pub(crate) fn start(name: &str, kind: HostKind) -> Result<BenchHost, String> {
        match kind {
            HostKind::Apt => Ok(Self::start_apt(name)),
            HostKind::Dnf => Ok(Self::start_dnf(name)),
        }
    }

    fn start_dnf(name: &str) -> BenchHost {
        let host = DnfHost::start(name);
        let root = host.root.root().to_path_buf();
        // What the apt layer adds to its hosts: the emulated `reboot`, and lists read lately.
        let reboot = root.join("usr/local/sbin/reboot");
        fs::create_dir_all(root.join("usr/local/sbin")).expect("usr/local/sbin");
        fs::write(&reboot, format!("#!/bin/sh\n{REBOOT_COMMAND}\n")).expect("reboot");
        fs::set_permissions(&reboot, fs::Permissions::from_mode(0o755)).expect("reboot mode");
        host.makecache();
        bind_boot_id(&root);
        BenchHost {
            name: name.to_string(),
            kind: HostKind::Dnf,
            addr: host.sshd.addr.clone(),
            known_hosts_line: host.sshd.known_hosts_line(),
            root,
            machine: Machine::Dnf(Mutex::new(host)),
        }
    }

    fn start_apt(name: &str) -> BenchHost {
        let layer = apt_layer();
        let parent = Path::new(CACHE).join("hosts");
        fs::create_dir_all(&parent).expect("hosts dir");
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(&parent)
            .expect("host dir")
            .keep();
        for sub in ["upper", "work", "root"] {
            fs::create_dir_all(dir.join(sub)).expect("overlay dirs");
        }
        let root = dir.join("root");
        let lower = format!("{}:{}", layer.display(), debroot::base().display());
        mount_overlay(&lower, &dir, &root);
        run(Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(root.join("proc")));
        // Copied up now, so the bind mount below and later writes see one file.
        fs::write(root.join(BOOT_ID.trim_start_matches('/')), "boot-1\n").expect("boot id");
        bind_boot_id(&root);
        let wrapper = dir.join("chroot-wrapper");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec chroot {} sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
                root.display()
            ),
        )
        .expect("wrapper");
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("wrapper mode");
        let sshd = SshHost::start(SshdOptions {
            force_command: Some(wrapper),
            ..SshdOptions::default()
        })
        .expect("starting sshd");
        BenchHost {
            name: name.to_string(),
            kind: HostKind::Apt,
            addr: sshd.addr.clone(),
            known_hosts_line: sshd.known_hosts_line(),
            root,
            machine: Machine::Apt {
                dir,
                sshd: Mutex::new(sshd),
            },
        }
    }

    pub(crate) fn known_hosts_line(&self) -> &str {
        &self.known_hosts_line
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    pub(crate) fn boot_id(&self) -> String {
        fs::read_to_string(self.path(BOOT_ID))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The installed version of `package`: dpkg's `Version`, or rpm's `VERSION-RELEASE`.
    pub(crate) fn version(&self, package: &str) -> String {
        let query = match self.kind {
            HostKind::Apt => format!("dpkg-query -W -f '${{Version}}' {package} 2>/dev/null"),
            HostKind::Dnf => {
                format!("rpm -q --qf '%{{VERSION}}-%{{RELEASE}}' {package} 2>/dev/null")
            }
        };
        run(Command::new("chroot")
            .arg(&self.root)
            .args(["sh", "-c", &format!("{query} || true")]))
        .trim()
        .to_string()
    }

    /// Takes the host's reboot request, if it made one.
    fn take_reboot_request(&self) -> bool {
        fs::remove_file(self.path("tendhost-reboot-requested")).is_ok()
    }

    /// Plays one reboot.
    fn play_reboot(&self) {
        // The connection that asked must see the host go away, as after a real reboot.
        std::thread::sleep(Duration::from_millis(200));
        match &self.machine {
            Machine::Apt { sshd, .. } => {
                let mut sshd = sshd.lock().unwrap_or_else(|p| p.into_inner());
                sshd.stop();
                self.clear_for_boot();
                std::thread::sleep(REBOOT_DOWN);
                sshd.restart().expect("restarting sshd");
            }
            Machine::Dnf(host) => {
                let mut host = host.lock().unwrap_or_else(|p| p.into_inner());
                let down = std::time::Instant::now();
                host.sshd.stop();
                // A new boot id and a fresh /proc (dnf's boot time), bound over as at start.
                host.emulate_reboot();
                bind_boot_id(&self.root);
                std::thread::sleep(REBOOT_DOWN.saturating_sub(down.elapsed()));
                host.sshd.restart().expect("restarting sshd");
            }
        }
    }

    /// What a reboot changes on an apt host besides sshd: a new boot id, /run emptied.
    fn clear_for_boot(&self) {
        let next = format!(
            "boot-{}\n",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        fs::write(self.path(BOOT_ID), next).expect("new boot id");
        let _ = fs::remove_file(self.path("run/reboot-required"));
        let _ = fs::remove_file(self.path("run/reboot-required.pkgs"));
    }
}

/// Binds the root's boot id file over its `/proc/sys/kernel/random/boot_id`, where tendhost's
/// default reboot check reads it.
fn bind_boot_id(root: &Path) {
    run(Command::new("mount")
        .arg("--bind")
        .arg(root.join(BOOT_ID.trim_start_matches('/')))
        .arg(root.join("proc/sys/kernel/random/boot_id")));
}

impl Drop for BenchHost {
    fn drop(&mut self) {
        let boot_id = self.path("proc/sys/kernel/random/boot_id");
        match &mut self.machine {
            Machine::Apt { dir, sshd } => {
                sshd.get_mut().unwrap_or_else(|p| p.into_inner()).stop();
                for mount in [boot_id, self.root.join("proc"), self.root.clone()] {
                    let _ = Command::new("umount").arg("-l").arg(&mount).status();
                }
                let _ = fs::remove_dir_all(dir);
            }
            // The DnfHost stops its sshd and removes its root when it drops, after this.
            Machine::Dnf(_) => {
                let _ = Command::new("umount").arg("-l").arg(&boot_id).status();
            }
        }
    }
}

/// Starts `apt` apt hosts and `dnf` dnf hosts (named a0…, d0…), several at a time.
pub(crate) fn start_fleet(apt: usize, dnf: usize) -> Result<Vec<Arc<BenchHost>>, String> {
    // Built before the threads start, so they do not queue on its lock one by one.
    if apt > 0 {
        apt_layer();
    }
    if dnf > 0 {
        dnfhost::base();
    }
    let mut wanted: Vec<(String, HostKind)> =
        (0..apt).map(|i| (format!("a{i}"), HostKind::Apt)).collect();
    wanted.extend((0..dnf).map(|i| (format!("d{i}"), HostKind::Dnf)));
    let wanted = Mutex::new(wanted.into_iter().enumerate().collect::<Vec<_>>());
    let started = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                loop {
                    let next = wanted.lock().unwrap().pop();
                    let Some((i, (name, kind))) = next else { break };
                    let host = BenchHost::start(&name, kind);
                    started.lock().unwrap().push((i, host));
                }
            });
        }
    });
    let mut started = started.into_inner().unwrap();
    started.sort_by_key(|(i, _)| *i);
    started
        .into_iter()
        .map(|(_, host)| host.map(Arc::new))
        .collect()
}

/// Plays the reboots hosts ask for, each in its own thread, until dropped.
pub(crate) struct RebootEmulator {
    stop: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<usize>>,
}

impl RebootEmulator {
    pub(crate) fn start(hosts: &[Arc<BenchHost>]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let hosts = hosts.to_vec();
        let flag = stop.clone();
        let watcher = std::thread::spawn(move || {
            let mut rebooting = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                for host in &hosts {
                    if host.take_reboot_request() {
                        let host = host.clone();
                        rebooting.push(std::thread::spawn(move || host.play_reboot()));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let played = rebooting.len();
            for reboot in rebooting {
                let _ = reboot.join();
            }
            played
        });
        Self {
            stop,
            watcher: Some(watcher),
        }
    }

    /// Stops watching; returns how many reboots were played.
    pub(crate) fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.watcher.take().and_then(|w| w.join().ok()).unwrap_or(0)
    }
}

impl Drop for RebootEmulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
    }
}
