//! A real VM for what a chroot cannot show: a real kernel, systemd as PID 1 (so detached jobs
//! take the `systemd-run` branch), a real sshd, and real `systemctl reboot`s. Facts in
//! HARNESS.md ("A real VM"): KVM hangs here, so qemu runs under TCG software emulation.
//!
//! The image is built once into [`VM_DIR`] under a file lock, from the cached debootstrap root
//! of [`debroot::base`]: the packages of [`PACKAGES`], DHCP on `ens3`, a fresh host key, root's
//! `authorized_keys` holding a test key kept beside the image, and the local apt repository of
//! [`aptrepo`] (1.0 installed, 1.1 pending, one of them asking for a reboot). Each [`Vm::boot`]
//! starts qemu with `-snapshot`, so every boot begins from the same clean disk; a reboot inside
//! the guest keeps the disk until qemu exits. Dropping the [`Vm`] kills qemu.
//!
//! One VM runs at a time, across threads and processes (a TCG guest keeps a core busy, and
//! every VM listens on the same forwarded address): [`Vm::boot`] waits for a file lock.
//! Nothing here is skipped: a missing qemu or an image that cannot be built fails the test,
//! naming what is missing.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use super::aptrepo;
use super::debroot::{self, run};

/// Where the image and its keys live between runs.
pub(crate) const VM_DIR: &str = "/var/cache/tendhost-test/vm";
/// Bumped whenever the image's recipe changes, so a cached image of an older recipe is rebuilt.
const IMAGE_VERSION: &str = "4";
/// Installed into the image, without recommends.
const PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "systemd-sysv",
    "openssh-server",
    "udev",
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    // `needrestart -b`: the services a post-update / post-reboot check names.
    "needrestart",
];
/// A unit that fails at every boot of the image: already failed before any update, so the
/// post-update and post-reboot checks must not count it against the update.
pub(crate) const PRE_FAILED_UNIT: &str = "tendhost-prefailed.service";
/// The unit `tendhost-svc` 1.1 installs, enables and starts. It fails while
/// [`BREAK_FILE`] exists: a test that creates it first gets an update that breaks a unit.
pub(crate) const UPDATE_UNIT: &str = "tendhost-check.service";
/// See [`UPDATE_UNIT`].
pub(crate) const BREAK_FILE: &str = "/etc/tendhost-break";
const UPDATE_UNIT_TEXT: &str = "[Unit]\nDescription=tendhost test: fails while /etc/tendhost-break exists\n\n\
    [Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c '! test -e /etc/tendhost-break'\n\n\
    [Install]\nWantedBy=multi-user.target\n";
/// As a packaged service's postinst does (deb-systemd-helper's work, by hand): enable and
/// (re)start it where systemd runs; a failed start does not fail the package, as with most
/// services.
const UPDATE_UNIT_POSTINST: &str = "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  \
    systemctl enable tendhost-check.service >/dev/null 2>&1 || true\n  \
    if [ -d /run/systemd/system ]; then systemctl restart tendhost-check.service || true; fi\nfi\n";
/// A second repository in the image, off until a test lists it ([`NEXT_REPO`]): `tendhost-svc`
/// 1.2, so one boot can serve a second update after the first one took everything to 1.1.
pub(crate) const NEXT_REPO: &str = "deb [trusted=yes] file:/repo-next ./";
/// The least free memory the host needs for a guest (768 MiB) beside the tests that run next
/// to it: below it the VM tests fail saying so rather than swapping into timeouts.
const MIN_AVAILABLE: u64 = 2 << 30;
/// Masked in the image. apt's daily timers would take the dpkg lock in the middle of a test
/// (they have never run in a fresh image, so they fire at boot); the others cost seconds of
/// every boot under emulation and do nothing for a test (`ifupdown-pre` waits for udev to
/// settle: `allow-hotplug ens3` brings the network up when the device appears instead).
const MASKED: &[&str] = &[
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "getty-static.service",
    "ifupdown-pre.service",
];
/// The guest's sshd, forwarded by qemu's user network.
pub(crate) const ADDR: &str = "127.0.3.1";
pub(crate) const PORT: u16 = 2222;
const QEMU: &str = "qemu-system-x86_64";
/// How long a boot may take before sshd answers: ~25 s measured, but TCG on a loaded 2-core
/// machine is slow and uneven.
const BOOT_BOUND: Duration = Duration::from_secs(300);

/// The built image: kernel, initrd, disk, and the keys to log in with.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    dir: PathBuf,
}

impl Image {
    /// The cached image, built on first use under a lock (a few minutes, once).
    pub(crate) fn get() -> Image {
        let dir = PathBuf::from(VM_DIR);
        fs::create_dir_all(&dir).expect("creating the VM cache dir");
        let marker = dir.join(".complete");
        let lock = lock(&dir.join(".build-lock"));
        if fs::read_to_string(&marker).ok().as_deref() != Some(IMAGE_VERSION) {
            let started = Instant::now();
            eprintln!("vm: building the image in {} (once)", dir.display());
            build(&dir);
            fs::write(&marker, IMAGE_VERSION).expect("marking the image complete");
            eprintln!("vm: image built in {:.0?}", started.elapsed());
        }
        drop(lock);
        Image { dir }
    }

    /// The private key root's `authorized_keys` in the image trusts.
    pub(crate) fn client_key(&self) -> PathBuf {
        self.dir.join("client_ed25519")
    }

    /// A known_hosts line for the guest's sshd as forwarded: `[addr]:port ssh-ed25519 …`.
    pub(crate) fn known_hosts_line(&self) -> String {
        let key = fs::read_to_string(self.dir.join("ssh_host_ed25519_key.pub"))
            .expect("reading the image's host key");
        let mut parts = key.split_whitespace();
        format!(
            "[{ADDR}]:{PORT} {} {}\n",
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default()
        )
    }
}

fn lock(path: &Path) -> Flock<fs::File> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()))
}

/// Mounts `/proc`, `/sys` and `/dev` inside a root for `apt-get` and the kernel's postinst
/// (initramfs-tools), and unmounts them on drop, panic or not.
struct ChrootMounts {
    root: PathBuf,
}

impl ChrootMounts {
    fn new(root: &Path) -> Self {
        let mounts = ChrootMounts {
            root: root.to_path_buf(),
        };
        run(Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(root.join("proc")));
        run(Command::new("mount")
            .args(["-t", "sysfs", "sysfs"])
            .arg(root.join("sys")));
        run(Command::new("mount")
            .args(["--bind", "/dev"])
            .arg(root.join("dev")));
        mounts
    }
}

impl Drop for ChrootMounts {
    fn drop(&mut self) {
        for sub in ["dev", "sys", "proc"] {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.root.join(sub))
                .status();
        }
    }
}

fn chroot(root: &Path, script: &str) -> String {
    run(Command::new("chroot")
        .arg(root)
        .args(["sh", "-c", script])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Builds the image's files into `dir` from a copy of the cached debootstrap root.
fn build(dir: &Path) {
    for tool in [QEMU, "mkfs.ext4", "ssh-keygen"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "vm: `{tool}` is missing; run .ci/install-test-deps.sh"
        );
    }
    let work = dir.join("build");
    let _ = Command::new("umount")
        .arg("-R")
        .arg(&work)
        .stderr(Stdio::null())
        .status();
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).expect("creating the build dir");
    let root = work.join("root");
    run(Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(debroot::base())
        .arg(&root));
    let _ = fs::remove_file(root.join(".tendhost-base-complete"));
    fs::write(
        root.join("etc/apt/sources.list"),
        format!("deb {} bookworm main\n", debroot::mirror()),
    )
    .expect("sources.list");
    fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).expect("resolv.conf");
    {
        let _mounts = ChrootMounts::new(&root);
        // No daemon starts inside the build root.
        write_exec(&root.join("usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n");
        chroot(
            &root,
            &format!(
                "apt-get update -q && apt-get install -y -q --no-install-recommends {} >/dev/null",
                PACKAGES.join(" ")
            ),
        );
        let unit_file = [(
            "lib/systemd/system/tendhost-check.service",
            UPDATE_UNIT_TEXT,
        )];
        let svc = |version| aptrepo::Deb {
            postinst: Some(UPDATE_UNIT_POSTINST),
            files: &unit_file,
            ..aptrepo::deb("tendhost-svc", version)
        };
        aptrepo::install_with(&root, &[aptrepo::deb("tendhost-svc", "1.0")], &[svc("1.1")]);
        let next = root.join("repo-next");
        fs::create_dir_all(&next).expect("repo-next dir");
        aptrepo::build(&svc("1.2"), &next);
        let packages = run(Command::new("dpkg-scanpackages")
            .args(["--multiversion", ".", "/dev/null"])
            .current_dir(&next));
        fs::write(next.join("Packages"), packages).expect("repo-next Packages index");
        chroot(
            &root,
            &format!(
                "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A && systemctl enable ssh >/dev/null 2>&1 \
                 && systemctl mask {} >/dev/null 2>&1 \
                 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d",
                MASKED.join(" ")
            ),
        );
    }
    configure(dir, &root);
    for (glob, name) in [("vmlinuz-*", "vmlinuz"), ("initrd.img-*", "initrd.img")] {
        let found = run(Command::new("sh")
            .arg("-c")
            .arg(format!("ls {}/boot/{glob} | tail -n 1", root.display())));
        let found = found.trim();
        assert!(!found.is_empty(), "vm: no /boot/{glob} in the image");
        fs::copy(found, dir.join(name)).expect("copying the kernel out");
    }
    fs::copy(
        root.join("etc/ssh/ssh_host_ed25519_key.pub"),
        dir.join("ssh_host_ed25519_key.pub"),
    )
    .expect("copying the host key out");
    let image = Image {
        dir: dir.to_path_buf(),
    };
    fs::write(dir.join("known_hosts"), image.known_hosts_line()).expect("writing known_hosts");
    let disk = dir.join("disk.img");
    let _ = fs::remove_file(&disk);
    run(Command::new("truncate").args(["-s", "3G"]).arg(&disk));
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&root)
        .arg(&disk));
    let _ = fs::remove_dir_all(&work);
}

/// The files that make the root boot on its own and let the tests in.
fn configure(dir: &Path, root: &Path) {
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().expect("a file inside the root")).expect("parent dir");
        fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    };
    write("etc/fstab", "/dev/vda / ext4 defaults 0 1\n");
    write(
        "etc/network/interfaces",
        "auto lo\niface lo inet loopback\n\nallow-hotplug ens3\niface ens3 inet dhcp\n",
    );
    write("etc/hostname", "tendhost-vm\n");
    write("etc/hosts", "127.0.0.1 localhost\n127.0.1.1 tendhost-vm\n");
    // A persistent journal: tests read the boot before a reboot with `journalctl -b -1`.
    fs::create_dir_all(root.join("var/log/journal")).expect("var/log/journal");
    // No reverse lookups of qemu's gateway on every login.
    write("etc/ssh/sshd_config.d/tendhost-test.conf", "UseDNS no\n");
    // Failed at every boot, before any update: the baseline's failed unit.
    write(
        &format!("etc/systemd/system/{PRE_FAILED_UNIT}"),
        "[Unit]\nDescription=tendhost test: always fails\n\n[Service]\nType=oneshot\n\
         ExecStart=/bin/false\n\n[Install]\nWantedBy=multi-user.target\n",
    );
    fs::create_dir_all(root.join("etc/systemd/system/multi-user.target.wants"))
        .expect("multi-user.target.wants");
    std::os::unix::fs::symlink(
        format!("/etc/systemd/system/{PRE_FAILED_UNIT}"),
        root.join(format!(
            "etc/systemd/system/multi-user.target.wants/{PRE_FAILED_UNIT}"
        )),
    )
    .expect("enabling the pre-failed unit");

    let key = dir.join("client_ed25519");
    let _ = fs::remove_file(&key);
    let _ = fs::remove_file(key.with_extension("pub"));
    super::sshd::keygen(&key, "tendhost-vm-test").expect("generating the VM test key");
    let public = fs::read_to_string(key.with_extension("pub")).expect("reading the test key");
    write("root/.ssh/authorized_keys", &public);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(root.join("root/.ssh"), fs::Permissions::from_mode(0o700))
        .expect("chmod .ssh");
}

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod +x");
}

/// A booted guest. Dropping it kills qemu (the snapshot's changes go with it).
pub(crate) struct Vm {
    pub image: Image,
    qemu: Child,
    console: PathBuf,
    /// Held for the VM's life: one VM at a time on this machine.
    _lock: Flock<fs::File>,
    /// How long the first boot took until sshd answered.
    pub boot_time: Duration,
}

impl Vm {
    /// Boots the image (building it first if needed) and waits until root can log in.
    pub(crate) fn boot() -> Vm {
        let available = available_memory();
        assert!(
            available >= MIN_AVAILABLE,
            "vm: only {} MiB of memory is free (MemAvailable); a VM test needs {} MiB",
            available >> 20,
            MIN_AVAILABLE >> 20
        );
        let image = Image::get();
        let dir = image.dir.clone();
        let lock = lock(&dir.join(".boot-lock"));
        let pidfile = dir.join("qemu.pid");
        kill_leftover(&pidfile, &dir.join("disk.img"));
        if let Err(e) = TcpListener::bind((ADDR, PORT)) {
            panic!("vm: {ADDR}:{PORT} is taken ({e}); a VM not started by this harness?");
        }
        let console = dir.join("console.log");
        let qemu = Command::new(QEMU)
            .args(["-accel", "tcg", "-m", "768", "-smp", "1"])
            .arg("-kernel")
            .arg(dir.join("vmlinuz"))
            .arg("-initrd")
            .arg(dir.join("initrd.img"))
            .args(["-append", "root=/dev/vda rw console=ttyS0"])
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format=raw",
                dir.join("disk.img").display()
            ))
            .arg("-snapshot")
            .args([
                "-netdev",
                &format!("user,id=n0,hostfwd=tcp:{ADDR}:{PORT}-:22"),
                "-device",
                "virtio-net-pci,netdev=n0",
            ])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .args(["-display", "none", "-monitor", "none"])
            .arg("-pidfile")
            .arg(&pidfile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // A file, not a pipe nobody reads while qemu runs: it could fill and stall qemu.
            .stderr(fs::File::create(dir.join("qemu.err")).expect("creating qemu.err"))
            .spawn()
            .unwrap_or_else(|e| panic!("vm: starting {QEMU} ({e}); is qemu-system-x86 installed?"));
        let started = Instant::now();
        let mut vm = Vm {
            image,
            qemu,
            console,
            _lock: lock,
            boot_time: Duration::ZERO,
        };
        vm.wait_for_ssh("the first boot");
        vm.boot_time = started.elapsed();
        eprintln!("vm: sshd answered {:.1?} after qemu started", vm.boot_time);
        vm
    }

    /// Polls until root's login answers, failing with the console's tail after [`BOOT_BOUND`]
    /// or as soon as qemu exits.
    pub(crate) fn wait_for_ssh(&mut self, what: &str) {
        let deadline = Instant::now() + BOOT_BOUND;
        loop {
            if let Ok(Some(status)) = self.qemu.try_wait() {
                let err = fs::read_to_string(self.image.dir.join("qemu.err")).unwrap_or_default();
                panic!(
                    "vm: qemu exited ({status}) during {what}: {err}\nconsole:\n{}",
                    self.console_tail()
                );
            }
            if self.try_ssh("true").is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "vm: sshd did not answer within {BOOT_BOUND:?} of {what}; console:\n{}",
                self.console_tail()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// The last lines the guest printed on its serial console.
    pub(crate) fn console_tail(&self) -> String {
        let text = fs::read_to_string(&self.console).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Runs `script` as root in the guest through OpenSSH; panics when it fails.
    pub(crate) fn ssh(&self, script: &str) -> String {
        self.try_ssh(script)
            .unwrap_or_else(|e| panic!("vm: `{script}` failed: {e}"))
    }

    /// Runs `script` as root in the guest; its stdout, or what went wrong.
    pub(crate) fn try_ssh(&self, script: &str) -> Result<String, String> {
        let known_hosts = self.image.dir.join("known_hosts");
        let out = Command::new("ssh")
            .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o"])
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"])
            .arg("-i")
            .arg(self.image.client_key())
            .args(["-p", &PORT.to_string(), &format!("root@{ADDR}"), script])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running ssh: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Copies the local file `local` to `remote` in the guest (mode 0755, renamed into place).
    pub(crate) fn copy_in(&self, local: &Path, remote: &str) {
        let known_hosts = self.image.dir.join("known_hosts");
        let file = fs::File::open(local)
            .unwrap_or_else(|e| panic!("vm: opening {}: {e}", local.display()));
        let out = Command::new("ssh")
            .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o"])
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"])
            .arg("-i")
            .arg(self.image.client_key())
            .args(["-p", &PORT.to_string(), &format!("root@{ADDR}")])
            .arg(format!(
                "cat > {remote}.part && chmod 755 {remote}.part && mv {remote}.part {remote}"
            ))
            .stdin(file)
            .output()
            .unwrap_or_else(|e| panic!("vm: running ssh: {e}"));
        assert!(
            out.status.success(),
            "vm: copying {} in: {}",
            local.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The guest kernel's boot id: a reboot changes it.
    pub(crate) fn boot_id(&self) -> String {
        self.ssh("cat /proc/sys/kernel/random/boot_id")
            .trim()
            .to_string()
    }

    /// The installed version of `package`, empty when it is not installed.
    pub(crate) fn version(&self, package: &str) -> String {
        self.ssh(&format!(
            "dpkg-query -W -f '${{Version}}' {package} 2>/dev/null || true"
        ))
        .trim()
        .to_string()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn available_memory() -> u64 {
    let meminfo = fs::read_to_string("/proc/meminfo").expect("reading /proc/meminfo");
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib << 10)
        .expect("/proc/meminfo has MemAvailable")
}

/// Kills a qemu an earlier, killed test process left running on this image (its `Drop` never
/// ran). Only under the boot lock, so it is never a live test's VM.
fn kill_leftover(pidfile: &Path, disk: &Path) {
    let Some(pid) = fs::read_to_string(pidfile)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    else {
        return;
    };
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if String::from_utf8_lossy(&cmdline).contains(&disk.display().to_string()) {
        eprintln!("vm: killing a qemu left behind (pid {pid})");
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while super::sshd::pid_alive(pid.as_raw()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let _ = fs::remove_file(pidfile);
}
