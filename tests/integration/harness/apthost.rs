//! An sshd test host whose sessions run inside its own Debian root (real dpkg and apt, a local
//! repository from [`aptrepo`]), for engine and batch tests. The root also holds a fake boot id
//! file and a reboot marker, so a test can emulate a reboot: the engine's reboot command touches
//! the marker, [`emulate_reboots`] stops sshd, writes a new boot id and starts sshd again.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::aptrepo::{self, Deb};
use super::debroot::{DebRoot, run};
use super::sshd::{SshHost, SshdOptions};

/// Where the engine reads the boot id on these hosts (inside the root).
pub(crate) const BOOT_ID: &str = "/etc/tendhost-boot-id";
/// What the engine runs to reboot these hosts (inside the root).
pub(crate) const REBOOT_COMMAND: &str = "touch /tendhost-reboot-requested";

/// What a host's root holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packages {
    /// The aptrepo 1.0 packages with 1.1 upgrades pending (one sets reboot-required).
    Upgradable,
    /// Like `Upgradable`, plus `tendhost-app 1.2` whose postinst fails: the upgrade fails.
    Broken,
    /// Nothing pending, but `/var/run/reboot-required` exists.
    NeedsReboot,
}

pub(crate) struct AptHost {
    pub root: DebRoot,
    pub sshd: SshHost,
    /// Extra shell run before every session command (e.g. `sleep 30` for a hanging host).
    pub delay: Option<String>,
}

impl AptHost {
    pub(crate) fn start(name: &str, packages: Packages) -> AptHost {
        Self::start_with(name, packages, None)
    }

    /// `before` runs in the wrapper before each command (outside the root).
    pub(crate) fn start_with(name: &str, packages: Packages, before: Option<&str>) -> AptHost {
        let root = DebRoot::new(name);
        match packages {
            Packages::Upgradable => aptrepo::install(&root),
            Packages::Broken => {
                aptrepo::install(&root);
                let broken = Deb {
                    postinst: Some(
                        "#!/bin/sh\necho 'tendhost-app: configure failed' >&2\nexit 1\n",
                    ),
                    ..aptrepo::deb("tendhost-app", "1.2")
                };
                let repo = root.path("repo");
                aptrepo::build(&broken, &repo);
                let index = run(Command::new("dpkg-scanpackages")
                    .args(["--multiversion", ".", "/dev/null"])
                    .current_dir(&repo));
                fs::write(repo.join("Packages"), index).expect("Packages index");
            }
            Packages::NeedsReboot => {
                // Inside the root: its /var/run is an absolute symlink to /run.
                root.sh("touch /var/run/reboot-required; echo linux-image-test > /var/run/reboot-required.pkgs");
            }
        }
        fs::write(root.path(BOOT_ID), "boot-1\n").expect("boot id");
        let wrapper = root.path("../tendhost-wrapper.sh");
        let script = format!(
            "#!/bin/sh\n{}\nexec chroot {} sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
            before.unwrap_or(""),
            root.root().display()
        );
        fs::write(&wrapper, script).expect("wrapper");
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("wrapper mode");
        let sshd = SshHost::start(SshdOptions {
            force_command: Some(wrapper),
            ..SshdOptions::default()
        })
        .expect("starting sshd");
        AptHost {
            root,
            sshd,
            delay: before.map(str::to_string),
        }
    }

    pub(crate) fn boot_id(&self) -> String {
        fs::read_to_string(self.root.path(BOOT_ID))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// `Version Status` of an installed package, e.g. `1.1 ii `.
    pub(crate) fn version(&self, package: &str) -> String {
        self.root
            .sh(&format!(
                "dpkg-query -W -f '${{Version}}' {package} 2>/dev/null || true"
            ))
            .trim()
            .to_string()
    }

    fn reboot_requested(&self) -> PathBuf {
        self.root.path("tendhost-reboot-requested")
    }
}

/// How a reboot emulation should bring the host back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comeback {
    SameKey,
    NewHostKey,
}

/// Watches `host` for the reboot marker for up to `within`; when it appears: stops sshd,
/// writes a new boot id, clears reboot-required, stays down `down_for`, starts sshd again.
/// Returns the host and whether a reboot happened.
pub(crate) fn emulate_reboot(
    mut host: AptHost,
    within: Duration,
    down_for: Duration,
    comeback: Comeback,
) -> (AptHost, bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if host.reboot_requested().exists() {
            let _ = fs::remove_file(host.reboot_requested());
            // The connection that asked must see the host go away.
            std::thread::sleep(Duration::from_millis(200));
            host.sshd.stop();
            let next = format!(
                "boot-{}\n",
                std::process::id() as u128 * 1000 + Instant::now().elapsed().as_nanos() % 1000 + 2
            );
            fs::write(host.root.path(BOOT_ID), next).expect("new boot id");
            // A reboot empties /run; inside the root, since its /var/run links to /run.
            host.root
                .sh("rm -f /var/run/reboot-required /var/run/reboot-required.pkgs");
            std::thread::sleep(down_for);
            match comeback {
                Comeback::SameKey => host.sshd.restart().expect("restarting sshd"),
                Comeback::NewHostKey => host
                    .sshd
                    .restart_with_new_host_key()
                    .expect("restarting sshd"),
            }
            return (host, true);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (host, false)
}
