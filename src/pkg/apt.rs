//! apt hosts (Debian, Ubuntu, Proxmox, Raspbian): refresh, list, simulate, upgrade, reboot check.
//!
//! Builds shell commands and reads their output through the pure parsers in `parse::apt`; it
//! never opens a connection itself. Every command runs with `LC_ALL=C` so the parsers read the
//! English they were written for.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::parse::apt as parse;
use super::step::{self, Step};
use super::{
    Error, ManagerKind, PackageManager, PendingPackage, RebootStatus, UpgradeOptions, UpgradePlan,
    UpgradeReport,
};
use crate::config::UpgradeMode;
use crate::remote::{self, Executor, OutputLine};

/// How long apt waits for another process's dpkg/apt lock before giving up with
/// [`Error::Locked`]: long enough for an unattended-upgrades run to finish a package, short
/// enough that an operator is told instead of watching a spinner.
pub(super) const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(120);

/// How often a refresh blocked by the lists lock tries again.
const LOCK_RETRY: Duration = Duration::from_secs(3);

/// Options every dpkg run gets: keep locally changed config files and never ask about them.
const DPKG_OPTIONS: &str = "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";

/// The apt package manager of one host.
#[derive(Debug, Clone)]
pub struct Apt {
    lock_wait: Duration,
}

impl Default for Apt {
    fn default() -> Self {
        Self {
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }
}

impl Apt {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how long to wait for a dpkg lock held by another process (whole seconds).
    pub fn with_lock_wait(lock_wait: Duration) -> Self {
        Self { lock_wait }
    }

    fn lock_option(&self) -> String {
        format!("-o DPkg::Lock::Timeout={}", self.lock_wait.as_secs())
    }

    /// Maps a failed apt run to [`Error::Locked`] when the lock was the reason.
    fn failure(&self, step: &'static str, output: &crate::remote::CommandOutput) -> Error {
        // A detached job's output (see `remote::job`) is its log: stdout and stderr in one.
        if parse::is_lock_error(&output.stderr) || parse::is_lock_error(&output.stdout) {
            Error::Locked {
                waited: self.lock_wait.as_secs(),
                holder: parse::lock_holder(&output.stderr)
                    .or_else(|| parse::lock_holder(&output.stdout)),
            }
        } else {
            step::failed(step, output)
        }
    }
}

/// apt-get's verb for an upgrade mode.
fn verb(mode: UpgradeMode) -> &'static str {
    match mode {
        UpgradeMode::Full => "dist-upgrade",
        UpgradeMode::Safe => "upgrade",
    }
}

#[async_trait]
impl PackageManager for Apt {
    fn kind(&self) -> ManagerKind {
        ManagerKind::Apt
    }

    async fn refresh(&self, exec: &dyn Executor, cancel: &CancellationToken) -> Result<(), Error> {
        const STEP: &str = "apt-get update";
        // `DPkg::Lock::Timeout` does not cover the lists lock `apt-get update` takes, so a held
        // lock is retried here, within the same bound.
        let started = Instant::now();
        loop {
            let script = format!("LC_ALL=C apt-get {} -q update", self.lock_option());
            let out = Step::refresh(STEP, script)
                .privileged()
                .run(exec, cancel)
                .await?;
            if out.success() {
                return Ok(());
            }
            let remaining = self.lock_wait.saturating_sub(started.elapsed());
            if !parse::is_lock_error(&out.stderr) || remaining.is_zero() {
                return Err(self.failure(STEP, &out));
            }
            tokio::select! {
                () = tokio::time::sleep(remaining.min(LOCK_RETRY)) => {}
                () = cancel.cancelled() => {
                    return Err(Error::Remote { step: STEP, source: remote::Error::Cancelled });
                }
            }
        }
    }

    async fn pending(
        &self,
        exec: &dyn Executor,
        cancel: &CancellationToken,
    ) -> Result<Vec<PendingPackage>, Error> {
        const STEP: &str = "apt list --upgradable";
        let script = "LC_ALL=C apt list --upgradable";
        let out = Step::query(STEP, script).run_ok(exec, cancel).await?;
        Ok(parse::parse_list_upgradable(&out.stdout))
    }

    async fn plan(
        &self,
        exec: &dyn Executor,
        options: UpgradeOptions,
        cancel: &CancellationToken,
    ) -> Result<UpgradePlan, Error> {
        const STEP: &str = "apt-get -s (dry run)";
        let script = format!(
            "LC_ALL=C apt-get -s -o Debug::NoLocking=1 {}",
            verb(options.mode)
        );
        let out = Step::query(STEP, script).run_ok(exec, cancel).await?;
        Ok(parse::parse_simulation(&out.stdout))
    }

    async fn download(
        &self,
        exec: &dyn Executor,
        options: UpgradeOptions,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        const STEP: &str = "apt-get -d (download)";
        self.refresh(exec, cancel).await?;
        // `-d` fetches into /var/cache/apt/archives and stops before dpkg; the same verb as the
        // upgrade, so exactly its packages (new dependencies of a dist-upgrade included) land.
        let script = format!(
            "DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get -d -y -q {} {}",
            self.lock_option(),
            verb(options.mode)
        );
        Step::refresh(STEP, script)
            .privileged()
            .run_ok_or(exec, cancel, |step, out| self.failure(step, out))
            .await?;
        Ok(())
    }

    async fn upgrade(
        &self,
        exec: &dyn Executor,
        options: UpgradeOptions,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<UpgradeReport, Error> {
        const STEP: &str = "apt-get upgrade";
        // `--no-remove` backs the consent check: should the plan change between the simulation
        // and the real run, apt aborts instead of removing what nobody agreed to.
        let no_remove = if options.allow_removals {
            ""
        } else {
            " --no-remove"
        };
        let script = format!(
            "DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get -y {} {DPKG_OPTIONS}{no_remove} {}",
            self.lock_option(),
            verb(options.mode)
        );
        let install = Step::upgrade(STEP, script)
            .privileged()
            .streaming(lines)
            .run_ok_or(exec, cancel, |step, out| self.failure(step, out));
        let plan = self.plan(exec, options.clone(), cancel);
        super::planned_upgrade(self, exec, options, cancel, plan, install).await
    }

    async fn reboot_status(
        &self,
        exec: &dyn Executor,
        cancel: &CancellationToken,
    ) -> Result<RebootStatus, Error> {
        const STEP: &str = "reboot-required check";
        let script = format!(
            "if [ -e /var/run/reboot-required ]; then echo {}; \
             cat /var/run/reboot-required.pkgs 2>/dev/null; fi; true",
            parse::REBOOT_MARKER
        );
        let out = Step::query(STEP, script).run_ok(exec, cancel).await?;
        let (required, packages) = parse::parse_reboot_probe(&out.stdout);
        Ok(RebootStatus { required, packages })
    }
}
