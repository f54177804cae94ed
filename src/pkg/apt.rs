//! apt hosts (Debian, Ubuntu, Proxmox, Raspbian): refresh, list, simulate, upgrade, reboot check.
//!
//! Builds shell commands and reads their output through the pure parsers in `parse::apt`; it
//! never opens a connection itself. Every command runs with `LC_ALL=C` so the parsers read the
//! English they were written for.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::apt_plan;
use super::parse::apt as parse;
use super::step::{self, Step};
use super::{
    Error, ManagerKind, PackageManager, PendingPackage, RebootStatus, UpgradeOptions, UpgradePlan,
    UpgradeReport, UpgradeScope,
};
use crate::config::UpgradeMode;
use crate::remote::{self, Executor, OutputLine, quote};
use crate::survey::sections::{Sections, marker};

/// How long apt waits for another process's dpkg/apt lock before giving up with
/// [`Error::Locked`]: long enough for an unattended-upgrades run to finish a package, short
/// enough that an operator is told instead of watching a spinner.
pub(super) const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(120);

/// How often a refresh blocked by the lists lock tries again.
const LOCK_RETRY: Duration = Duration::from_secs(3);

/// Options every dpkg run gets: keep locally changed config files and never ask about them.
const DPKG_OPTIONS: &str = "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";

/// The environment of every run that changes packages: no prompt, C messages (parsed), and
/// needrestart's apt hook listing only: what gets restarted after an update is
/// `restart_services`'s say, not needrestart's default (which restarts services itself).
const CHANGE_ENV: &str = "DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l LC_ALL=C";

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

    /// What an upgrade in `options` acts on. A scoped one reads the pending list and the holds
    /// (one round trip) and takes the pending packages the scope selects (security ones: those
    /// whose candidate comes from a security suite, see `parse::parse_list_upgradable`),
    /// leaving out holds: `install` of a held package would fail the whole run.
    async fn target(
        &self,
        exec: &dyn Executor,
        options: &UpgradeOptions,
        cancel: &CancellationToken,
    ) -> Result<Target, Error> {
        const STEP: &str = "apt list --upgradable";
        if options.scope.is_everything() {
            return Ok(Target::Everything(options.mode));
        }
        let script = format!(
            "export LC_ALL=C\n{}; apt list --upgradable 2>/dev/null; echo \"@@exit $?\"\n\
             {}; apt-mark showhold 2>/dev/null; true",
            marker("list"),
            marker("holds")
        );
        let out = Step::query(STEP, script).run_ok(exec, cancel).await?;
        let sections = Sections::parse(&out.stdout);
        let list = sections.get("list").ok_or_else(|| Error::Parse {
            what: STEP,
            detail: "no list printed".into(),
        })?;
        if !list.succeeded() {
            return Err(list.failure(STEP));
        }
        Ok(scoped_target(
            &options.scope,
            &parse::parse_list_upgradable(&list.body),
            sections.body("holds"),
        ))
    }

    /// The plan of `target`, lean (the consent check) or rich (a dry run), in one round trip.
    async fn simulate(
        &self,
        exec: &dyn Executor,
        target: &Target,
        rich: bool,
        cancel: &CancellationToken,
    ) -> Result<UpgradePlan, Error> {
        const STEP: &str = "apt-get -s (dry run)";
        let Some(action) = target.action() else {
            return Ok(target.empty_plan());
        };
        let script = apt_plan::script(&action, rich);
        let out = Step::query(STEP, script).run_ok(exec, cancel).await?;
        let mut plan = apt_plan::read(&out.stdout, STEP)?;
        if let Target::Only { held, .. } = target {
            plan.held.extend(held.iter().cloned());
        }
        Ok(plan)
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

/// What an apt command acts on, from the upgrade's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Every pending package: the mode's verb.
    Everything(UpgradeMode),
    /// Only these pending packages, through `install --only-upgrade` (which never installs a
    /// package that is not installed); empty when the scope takes nothing on this host. As with
    /// any `apt-get install`, new dependencies of a named package come along whatever the upgrade
    /// mode; removals still need consent (`--no-remove` and the plan's check).
    Only {
        names: Vec<String>,
        /// Packages the scope names that the operator holds: not upgraded, shown as held.
        held: Vec<String>,
    },
}

impl Target {
    /// apt-get's verb and arguments, names quoted; `None` when there is nothing to do.
    fn action(&self) -> Option<String> {
        match self {
            Target::Everything(mode) => Some(verb(*mode).to_string()),
            Target::Only { names, .. } if names.is_empty() => None,
            Target::Only { names, .. } => {
                let quoted: Vec<String> = names.iter().map(|n| quote(n)).collect();
                Some(format!("install --only-upgrade {}", quoted.join(" ")))
            }
        }
    }

    /// The plan of a target that does nothing: the scope's held packages, nothing else.
    fn empty_plan(&self) -> UpgradePlan {
        UpgradePlan {
            held: match self {
                Target::Only { held, .. } => held.clone(),
                Target::Everything(_) => Vec::new(),
            },
            ..UpgradePlan::default()
        }
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
        let target = self.target(exec, &options, cancel).await?;
        self.simulate(exec, &target, true, cancel).await
    }

    async fn download(
        &self,
        exec: &dyn Executor,
        options: UpgradeOptions,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        const STEP: &str = "apt-get -d (download)";
        self.refresh(exec, cancel).await?;
        let Some(action) = self.target(exec, &options, cancel).await?.action() else {
            return Ok(());
        };
        // `-d` fetches into /var/cache/apt/archives and stops before dpkg; the same action as
        // the upgrade, so exactly its packages (new dependencies of a dist-upgrade included)
        // land.
        let script = format!(
            "DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get -d -y -q {} {action}",
            self.lock_option(),
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
        let target = self.target(exec, &options, cancel).await?;
        let Some(action) = target.action() else {
            // The scope takes nothing here: nothing to install, and nothing changed.
            let reboot = self.reboot_status(exec, cancel).await?;
            return Ok(UpgradeReport {
                plan: target.empty_plan(),
                reboot,
            });
        };
        let script = format!(
            "{CHANGE_ENV} apt-get -y {} {DPKG_OPTIONS}{no_remove} {action}",
            self.lock_option(),
        );
        let install = Step::upgrade(STEP, script)
            .privileged()
            .streaming(lines)
            .run_ok_or(exec, cancel, |step, out| self.failure(step, out));
        let plan = self.simulate(exec, &target, false, cancel);
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

    async fn repair(
        &self,
        exec: &dyn Executor,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        const STEP: &str = "dpkg --configure -a && apt-get -f install";
        // What dpkg itself says to run after an interruption, then apt's fix for the
        // dependencies left broken; both keep locally changed config files as the upgrade does.
        let script = format!(
            "export {CHANGE_ENV}
             dpkg --force-confdef --force-confold --configure -a &&              apt-get -y {} {DPKG_OPTIONS} -f install",
            self.lock_option(),
        );
        Step::upgrade(STEP, script)
            .privileged()
            .streaming(lines)
            .run_ok_or(exec, cancel, |step, out| self.failure(step, out))
            .await?;
        Ok(())
    }
}

/// The packages of `pending` that `scope` takes, held ones apart (`holds`: `apt-mark showhold`).
fn scoped_target(scope: &UpgradeScope, pending: &[PendingPackage], holds: &str) -> Target {
    let holds: Vec<&str> = holds.split_whitespace().collect();
    let (held, names): (Vec<String>, Vec<String>) = scope
        .select(pending)
        .into_iter()
        .map(|p| p.name.clone())
        .partition(|name| holds.contains(&name.as_str()));
    Target::Only { names, held }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(name: &str, security: bool) -> PendingPackage {
        PendingPackage {
            name: name.into(),
            from: "1.0".into(),
            to: "1.1".into(),
            security,
        }
    }

    #[test]
    fn a_scope_takes_pending_names_and_leaves_holds_and_other_packages() {
        let list = [
            pending("openssl", true),
            pending("libssl3", true),
            pending("bash", false),
            pending("held-one", true),
        ];
        let scope =
            UpgradeScope::of_packages(["openssl", "bash", "nope", "held-one"], false).unwrap();
        let target = scoped_target(&scope, &list, "held-one\n");
        assert_eq!(
            target,
            Target::Only {
                names: vec!["openssl".into(), "bash".into()],
                held: vec!["held-one".into()],
            },
            "a name not pending (not installed, or up to date) is never named to apt"
        );
        assert_eq!(
            target.action().unwrap(),
            "install --only-upgrade openssl bash"
        );
        let security = UpgradeScope {
            security_only: true,
            ..UpgradeScope::default()
        };
        assert_eq!(
            scoped_target(&security, &list, "").action().unwrap(),
            "install --only-upgrade openssl libssl3 held-one"
        );
        let both = UpgradeScope::of_packages(["bash", "openssl"], true).unwrap();
        assert_eq!(
            scoped_target(&both, &list, "").action().unwrap(),
            "install --only-upgrade openssl",
            "packages and security-only: the intersection"
        );
        let none = UpgradeScope::of_packages(["nope"], false).unwrap();
        assert_eq!(scoped_target(&none, &list, "").action(), None);
        assert_eq!(
            Target::Everything(UpgradeMode::Safe).action().unwrap(),
            "upgrade"
        );
    }
}
