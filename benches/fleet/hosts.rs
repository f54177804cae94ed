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
//! dnf hosts come from `tests/integration/harness/dnfhost.rs` once it is merged: see
//! [`HostKind::Dnf`] and [`BenchHost::start`].

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::aptrepo;
use crate::debroot::{self, run};
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
    /// Needs `harness::dnfhost` (another helper's work); until it is merged, asking for dnf
    /// hosts is an error naming it.
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
    /// Holds `upper/`, `work/`, `root/` and the sshd wrapper.
    dir: PathBuf,
    root: PathBuf,
    /// Locked only to stop or restart it (the reboot emulation) and to read its address.
    sshd: Mutex<SshHost>,
    pub addr: String,
    known_hosts_line: String,
}

impl BenchHost {
    pub(crate) fn start(name: &str, kind: HostKind) -> Result<BenchHost, String> {
        match kind {
            HostKind::Apt => Ok(Self::start_apt(name)),
            HostKind::Dnf => Err(
                "dnf hosts need tests/integration/harness/dnfhost.rs, which \
                                  is not merged yet: run with 0 dnf hosts"
                    .into(),
            ),
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
        run(Command::new("mount")
            .arg("--bind")
            .arg(root.join(BOOT_ID.trim_start_matches('/')))
            .arg(root.join("proc/sys/kernel/random/boot_id")));
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
            dir,
            root,
            sshd: Mutex::new(sshd),
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

    /// The installed version of `package`.
    pub(crate) fn version(&self, package: &str) -> String {
        run(Command::new("chroot").arg(&self.root).args([
            "sh",
            "-c",
            &format!("dpkg-query -W -f '${{Version}}' {package} 2>/dev/null || true"),
        ]))
    }

    /// Takes the host's reboot request, if it made one.
    fn take_reboot_request(&self) -> bool {
        fs::remove_file(self.path("tendhost-reboot-requested")).is_ok()
    }

    /// Plays one reboot.
    fn play_reboot(&self) {
        // The connection that asked must see the host go away, as after a real reboot.
        std::thread::sleep(Duration::from_millis(200));
        let mut sshd = self.sshd.lock().unwrap_or_else(|p| p.into_inner());
        sshd.stop();
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
        std::thread::sleep(REBOOT_DOWN);
        sshd.restart().expect("restarting sshd");
    }
}

impl Drop for BenchHost {
    fn drop(&mut self) {
        self.sshd
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .stop();
        for mount in [
            self.path("proc/sys/kernel/random/boot_id"),
            self.path("proc"),
            self.root.clone(),
        ] {
            let _ = Command::new("umount").arg("-l").arg(&mount).status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Starts `apt` apt hosts and `dnf` dnf hosts (named a0…, d0…), several at a time.
pub(crate) fn start_fleet(apt: usize, dnf: usize) -> Result<Vec<Arc<BenchHost>>, String> {
    // Built before the threads start, so they do not queue on its lock one by one.
    if apt > 0 {
        apt_layer();
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
