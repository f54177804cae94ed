//! Health gates: what tendhost checks on a host before it touches it, after it upgraded it and
//! after it rebooted it, beyond the operator's own `[host.checks]` commands.
//!
//! One probe per phase (see [`probe`]): a single shell script in sections, one round trip,
//! whose answer is read into a [`HealthReport`] of named [`CheckResult`]s. The engine runs it
//! (`engine::step`), announces the report (`Event::Checked`) and stops the step when a gating
//! check failed; the host model keeps the last report of each phase for the detail pane, the
//! batch JSON (`checks: [{name, phase, ok, detail}]`) and the audit log.
//!
//! Some checks are derived from facts another part of tendhost already owns instead of being
//! read twice: the services needing a restart and the reboot reason come from the survey that
//! follows every change; the host key from the connection that ran the probe.

mod compose;
pub(crate) mod derived;
mod disk;
mod kernel;
mod locks;
pub(crate) mod package_db;
pub(crate) mod probe;
mod system;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// When a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckPhase {
    /// Before the host is touched: a failure leaves it unchanged.
    Pre,
    /// After the packages (and stacks) were upgraded, without a reboot.
    PostUpdate,
    /// After the host came back from a reboot with a new boot id.
    PostReboot,
    /// After a repair (`dpkg --configure -a` …): is the package database whole again?
    Repair,
}

impl CheckPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckPhase::Pre => "pre",
            CheckPhase::PostUpdate => "post_update",
            CheckPhase::PostReboot => "post_reboot",
            CheckPhase::Repair => "repair",
        }
    }

    /// For people: "pre-update", "post-update", "post-reboot", "repair".
    pub fn label(self) -> &'static str {
        match self {
            CheckPhase::Pre => "pre-update",
            CheckPhase::PostUpdate => "post-update",
            CheckPhase::PostReboot => "post-reboot",
            CheckPhase::Repair => "repair",
        }
    }
}

/// Every check tendhost knows, the operator's `pre`/`post` commands included. The names are
/// what `[host.checks] skip = [...]`, the JSON and the audit log use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    /// Free space on `/`, `/var` and (with a kernel in the plan) `/boot` against what the plan
    /// needs plus `[host.checks] disk_margin`.
    Disk,
    /// `dpkg --audit` + `apt-get check`; `dnf check` / an unfinished transaction.
    PackageDb,
    /// A package-manager lock held by another process, and which.
    Locks,
    /// Failed systemd units; after a change only units not failed in the pre-update baseline
    /// count.
    FailedUnits,
    /// Services running replaced code (needrestart `-b`, `needs-restarting -s`), restarted by
    /// `restart_services = "auto"`.
    NeedsRestart,
    /// Whether a reboot is needed, and because of which packages.
    RebootRequired,
    /// After a reboot: the host answered with the host key tendhost knows.
    HostKey,
    /// After a reboot: the running kernel is the newest one installed.
    Kernel,
    /// After a reboot: `systemctl is-system-running` reached `running` within its bound.
    SystemRunning,
    /// After a reboot: every compose service runs again (healthy, where it has a healthcheck).
    Compose,
    /// The operator's `[host.checks] pre` command, run last before the update.
    Pre,
    /// The operator's `[host.checks] post` command.
    Post,
}

impl CheckName {
    /// The checks an operator may turn off (`skip`): all but the host key, which is security,
    /// and the operator's own commands, which are turned off by not writing them.
    pub const SKIPPABLE: &[CheckName] = &[
        CheckName::Disk,
        CheckName::PackageDb,
        CheckName::Locks,
        CheckName::FailedUnits,
        CheckName::NeedsRestart,
        CheckName::RebootRequired,
        CheckName::Kernel,
        CheckName::SystemRunning,
        CheckName::Compose,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckName::Disk => "disk",
            CheckName::PackageDb => "package_db",
            CheckName::Locks => "locks",
            CheckName::FailedUnits => "failed_units",
            CheckName::NeedsRestart => "needs_restart",
            CheckName::RebootRequired => "reboot_required",
            CheckName::HostKey => "host_key",
            CheckName::Kernel => "kernel",
            CheckName::SystemRunning => "system_running",
            CheckName::Compose => "compose",
            CheckName::Pre => "pre",
            CheckName::Post => "post",
        }
    }

    /// The skippable check called `name`.
    pub fn skippable(name: &str) -> Option<CheckName> {
        Self::SKIPPABLE.iter().copied().find(|c| c.as_str() == name)
    }

    /// The names [`skippable`](Self::skippable) knows, for did-you-mean hints.
    pub fn skippable_names() -> Vec<&'static str> {
        Self::SKIPPABLE.iter().map(|c| c.as_str()).collect()
    }
}

impl std::fmt::Display for CheckName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check's verdict. `ok: false` on a gating check stops the step that ran it; an
/// informational finding (services needing a restart under `restart_services = "list"`, a
/// reboot and its reason) is `ok: true` with what was found in `detail`.
///
/// Serialized as the JSON contract: `{name, phase, ok, detail}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: CheckName,
    pub phase: CheckPhase,
    pub ok: bool,
    /// One line for people: "/var: 1.2 GiB free, needs 300 MiB + 500 MiB margin". Text a host
    /// sent: the console sanitizes it before it shows it.
    pub detail: Arc<str>,
}

impl CheckResult {
    pub fn pass(name: CheckName, phase: CheckPhase, detail: impl Into<Arc<str>>) -> Self {
        CheckResult {
            name,
            phase,
            ok: true,
            detail: detail.into(),
        }
    }

    pub fn fail(name: CheckName, phase: CheckPhase, detail: impl Into<Arc<str>>) -> Self {
        CheckResult {
            name,
            phase,
            ok: false,
            detail: detail.into(),
        }
    }
}

/// Everything one phase found on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    pub phase: CheckPhase,
    pub at: DateTime<Utc>,
    /// In the order they ran.
    pub checks: Vec<CheckResult>,
    /// The failed systemd units seen (sorted), `None` on a host without systemd running (a
    /// container, a chroot) or when the check was skipped. The pre-update report's list is
    /// the baseline later phases compare with.
    #[serde(default)]
    pub failed_units: Option<Vec<String>>,
}

impl HealthReport {
    pub fn new(phase: CheckPhase) -> Self {
        HealthReport {
            phase,
            at: Utc::now(),
            checks: Vec::new(),
            failed_units: None,
        }
    }

    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.ok)
    }

    pub fn get(&self, name: CheckName) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The failed checks in one line: "package_db: dpkg --audit: … ; locks: …".
    pub fn failure_summary(&self) -> String {
        self.failures()
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The package database is broken (half-configured packages, an unfinished transaction):
    /// the host needs a repair, not a retry.
    pub fn needs_repair(&self) -> bool {
        self.get(CheckName::PackageDb).is_some_and(|c| !c.ok)
    }
}

/// Where the last repair-relevant verdict on a host stands: the newest report that checked
/// the package database decides, so a repair that fixed it (or an update whose post-check found
/// it whole) clears "needs repair".
pub fn needs_repair<'a>(
    reports: impl IntoIterator<Item = &'a HealthReport>,
) -> Option<&'a CheckResult> {
    reports
        .into_iter()
        .filter(|r| r.get(CheckName::PackageDb).is_some())
        .max_by_key(|r| r.at)
        .and_then(|r| r.get(CheckName::PackageDb))
        .filter(|c| !c.ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_contract_shape() {
        let check = CheckResult::fail(
            CheckName::FailedUnits,
            CheckPhase::PostReboot,
            "new: x.service",
        );
        let json = serde_json::to_value(&check).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "failed_units", "phase": "post_reboot", "ok": false, "detail": "new: x.service"})
        );
    }

    #[test]
    fn the_newest_package_db_verdict_decides_repair() {
        let mut broken = HealthReport::new(CheckPhase::Pre);
        broken.at = DateTime::from_timestamp(1_000, 0).unwrap();
        broken.checks.push(CheckResult::fail(
            CheckName::PackageDb,
            CheckPhase::Pre,
            "dpkg --audit: a",
        ));
        let mut fixed = HealthReport::new(CheckPhase::Repair);
        fixed.at = DateTime::from_timestamp(2_000, 0).unwrap();
        fixed.checks.push(CheckResult::pass(
            CheckName::PackageDb,
            CheckPhase::Repair,
            "consistent",
        ));
        let mut later = HealthReport::new(CheckPhase::PostReboot);
        later.at = DateTime::from_timestamp(3_000, 0).unwrap();
        assert!(needs_repair([&broken]).is_some());
        assert!(needs_repair([&broken, &fixed, &later]).is_none());
        assert!(broken.needs_repair() && !fixed.needs_repair());
        assert_eq!(CheckName::skippable("locks"), Some(CheckName::Locks));
        assert_eq!(CheckName::skippable("host_key"), None);
    }
}
