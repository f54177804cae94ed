//! The health probe: one privileged `sh` script per phase, in the survey's section format
//! (`@@name` markers, `@@exit N`), and the reader that turns its answer into a
//! [`HealthReport`].
//!
//! Each check is a [`Part`]: its piece of the script and how it reads its section. A part runs
//! in a subshell of its own, so one that fails (a missing tool, a command that errs) never
//! stops the others, and a section that is missing from the answer is a check that could not
//! tell, reported as failed rather than guessed as passed (a gate that cannot see fails
//! closed). A part whose tool is absent on the host prints that it is not applicable instead
//! (no systemd in a container): that passes, saying so.
//!
//! Nothing a host sent is trusted as text: details are cut to a line of bounded length here;
//! the console sanitizes them again before it draws them.

use std::collections::BTreeSet;
use std::time::Duration;

use super::disk::Disk;
use super::locks::Locks;
use super::package_db::PackageDb;
use super::{CheckName, CheckPhase, CheckResult, HealthReport};
use crate::pkg::ManagerKind;
use crate::survey::sections::{EXIT, Sections, marker};

/// The first line of every probe's answer: without it the probe did not run at all.
pub(crate) const HEADER: &str = "health";

/// The longest detail kept from a host's text (whole lines are joined, then cut).
const DETAIL_MAX: usize = 300;

/// What a probe of one phase needs to know.
#[derive(Debug, Clone)]
// Each part reads the fields it needs; until every part is in, some are read by none.
#[allow(dead_code)]
pub(crate) struct ProbeRequest<'a> {
    pub phase: CheckPhase,
    /// The host's manager; `None` for `manager = "none"` (package checks then pass, saying so).
    pub manager: Option<ManagerKind>,
    /// `[host.checks] skip`.
    pub skip: &'a BTreeSet<CheckName>,
    /// What the upgrade about to run needs on disk (the pre phase); `None` outside it.
    pub space: Option<SpaceNeeds>,
    /// `[host.checks] disk_margin`, in bytes, added to every need.
    pub disk_margin: u64,
    /// The pre-update report's failed units: later phases count only units not in it. `None`
    /// when no baseline was taken (a reboot asked for by hand, a tendhost restarted without
    /// one): then every failed unit counts.
    pub baseline: Option<&'a [String]>,
    /// How long `systemctl is-system-running --wait` may wait after a reboot.
    pub system_running_timeout: Duration,
    /// The host's `compose_paths` (the post-reboot compose check).
    pub compose_paths: &'a [String],
    /// `[host.docker] compose_version`: how its stacks are run.
    pub compose_version: crate::config::ComposeVersion,
}

/// What an upgrade needs on disk: the download lands in the manager's cache under `/var`, the
/// installed size grows `/` (where `/usr` lives), and a kernel in the plan writes to `/boot`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SpaceNeeds {
    pub download_bytes: u64,
    /// Net growth of the installed size (negative when the upgrade frees space).
    pub install_bytes: i64,
    pub kernel: bool,
}

impl SpaceNeeds {
    /// What `plan` needs: its download, its installed-size growth, and `/boot` room when it
    /// upgrades or installs a kernel.
    pub(crate) fn of_plan(plan: &crate::pkg::UpgradePlan) -> Self {
        let kernel = plan
            .upgrades
            .iter()
            .map(|u| u.name.as_str())
            .chain(plan.installs.iter().map(String::as_str))
            .any(is_kernel_package);
        SpaceNeeds {
            download_bytes: plan.download_bytes.unwrap_or(0),
            install_bytes: plan.install_bytes.unwrap_or(0),
            kernel,
        }
    }
}

/// A package that puts a kernel (and an initramfs) into `/boot`.
pub(crate) fn is_kernel_package(name: &str) -> bool {
    name.starts_with("linux-image-")
        || name == "kernel"
        || name.starts_with("kernel-core")
        || name.starts_with("kernel-uek")
}

/// One check of the probe.
pub(crate) trait Part: Sync {
    fn name(&self) -> CheckName;
    /// Its piece of the script. It prints its section marker ([`marker`]) itself, then what
    /// it read, and may close with `@@exit N` ([`EXIT`]).
    fn script(&self, request: &ProbeRequest<'_>) -> String;
    /// Reads its section (`None` when the answer lacks it: see the module doc).
    fn read(
        &self,
        request: &ProbeRequest<'_>,
        sections: &Sections,
        report: &mut HealthReport,
    ) -> CheckResult;
    /// What the part prints on a healthy host, marker included: the simulated fleet's answer.
    #[cfg(any(test, feature = "testkit"))]
    fn healthy(&self) -> String;
}

/// The first line of every probe script, by which the simulated fleet knows one.
pub(crate) const SCRIPT_HEADER: &str = "# tendhost health probe";

/// A healthy host's answer to any probe: every part of every phase, as it prints on a host
/// with nothing wrong (sections a phase does not read are ignored).
#[cfg(any(test, feature = "testkit"))]
pub(crate) fn healthy_answer() -> String {
    let mut answer = format!("{}{HEADER}\n", crate::survey::sections::MARKER);
    let mut seen = BTreeSet::new();
    for phase in [
        CheckPhase::Pre,
        CheckPhase::PostUpdate,
        CheckPhase::PostReboot,
        CheckPhase::Repair,
    ] {
        for part in parts(phase) {
            if seen.insert(part.name()) {
                answer.push_str(&part.healthy());
            }
        }
    }
    answer
}

/// The parts each phase runs, in order. The package-database and lock checks come first: they
/// say whether anything else about packages can be trusted.
fn parts(phase: CheckPhase) -> &'static [&'static dyn Part] {
    match phase {
        CheckPhase::Pre => &[&Locks, &PackageDb, &Disk, &FailedUnits],
        CheckPhase::PostUpdate => &[&PackageDb, &FailedUnits],
        // The system state waits for the boot to settle before the failed units are listed.
        CheckPhase::PostReboot => &[
            &super::kernel::Kernel,
            &super::system::SystemRunning,
            &FailedUnits,
            &super::compose::Compose,
        ],
        // Only the question a repair answers: is the package database whole again?
        CheckPhase::Repair => &[&PackageDb],
    }
}

impl ProbeRequest<'_> {
    fn parts(&self) -> impl Iterator<Item = &'static dyn Part> + '_ {
        parts(self.phase)
            .iter()
            .copied()
            .filter(|p| !self.skip.contains(&p.name()))
    }

    /// Whether the phase runs anything on the host at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.parts().next().is_none()
    }

    /// The whole script: a header, then each part in a subshell of its own.
    pub(crate) fn script(&self) -> String {
        let mut script = format!(
            "{SCRIPT_HEADER} ({})\nexport LC_ALL=C\n{}\n",
            self.phase.as_str(),
            marker(HEADER)
        );
        for part in self.parts() {
            script.push_str("(\n");
            script.push_str(&part.script(self));
            script.push_str("\n) 2>&1\n");
        }
        script
    }

    /// Reads the probe's answer into a report of the phase.
    pub(crate) fn read(&self, output: &str) -> Result<HealthReport, ProbeError> {
        let sections = Sections::parse(output);
        if !sections.has(HEADER) {
            return Err(ProbeError::NoAnswer(crate::errors::last_lines(output, 3)));
        }
        let mut report = HealthReport::new(self.phase);
        for part in self.parts() {
            let result = part.read(self, &sections, &mut report);
            report.checks.push(result);
        }
        Ok(report)
    }
}

/// The probe did not run (its header is missing from the answer).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("the health probe did not run: {0}")]
    NoAnswer(String),
}

/// A check whose section is missing: it could not tell, which is not a pass.
pub(crate) fn unknown(name: CheckName, phase: CheckPhase) -> CheckResult {
    CheckResult::fail(
        name,
        phase,
        "could not tell: the host did not answer this check",
    )
}

/// A host's text as one bounded line: lines joined with "; ", control characters dropped.
pub(crate) fn one_line(text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let clean: String = joined.chars().filter(|c| !c.is_control()).collect();
    match clean.char_indices().nth(DETAIL_MAX) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean,
    }
}

/// Names in a list for a detail: "a.service, b.service" (at most `max`, then "and N more").
pub(crate) fn name_list(names: &[String], max: usize) -> String {
    let mut text = names
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > max {
        text.push_str(&format!(" and {} more", names.len() - max));
    }
    text
}

/// Failed systemd units. Before an update the list is the baseline (the check passes and names
/// what was already failed); afterwards only units not in the baseline fail it.
struct FailedUnits;

/// The section body when systemd does not run the host (no `/run/systemd/system`).
const NO_SYSTEMD: &str = "no-systemd";

impl Part for FailedUnits {
    fn name(&self) -> CheckName {
        CheckName::FailedUnits
    }

    fn script(&self, _request: &ProbeRequest<'_>) -> String {
        format!(
            "{}\n\
             if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then\n\
             systemctl list-units --state=failed --plain --no-legend --no-pager --full; {EXIT}\n\
             else echo {NO_SYSTEMD}; fi",
            marker("failed_units")
        )
    }

    fn read(
        &self,
        request: &ProbeRequest<'_>,
        sections: &Sections,
        report: &mut HealthReport,
    ) -> CheckResult {
        let phase = request.phase;
        let Some(section) = sections.get("failed_units") else {
            return unknown(self.name(), phase);
        };
        if section.body.trim() == NO_SYSTEMD {
            return CheckResult::pass(
                self.name(),
                phase,
                "not applicable: systemd does not run this host",
            );
        }
        if !section.succeeded() {
            let why = one_line(&section.body);
            return CheckResult::fail(self.name(), phase, format!("systemctl failed: {why}"));
        }
        let failed = failed_units(&section.body);
        report.failed_units = Some(failed.clone());
        if phase == CheckPhase::Pre {
            let detail = match failed.is_empty() {
                true => "none failed (baseline taken)".to_string(),
                false => format!(
                    "baseline: {} already failed, not counted later: {}",
                    failed.len(),
                    name_list(&failed, 5)
                ),
            };
            return CheckResult::pass(self.name(), phase, detail);
        }
        let new: Vec<String> = failed
            .iter()
            .filter(|u| request.baseline.is_none_or(|b| !b.contains(u)))
            .cloned()
            .collect();
        let old = failed.len() - new.len();
        let before = match (request.baseline, old) {
            (None, _) => " (no baseline from before the update: every failed unit counts)",
            (Some(_), 0) => "",
            (Some(_), _) => " (others failed before the update too)",
        };
        if new.is_empty() {
            let detail = match old {
                0 => "none failed".to_string(),
                n => format!(
                    "no new failures ({n} failed before the update: {})",
                    name_list(&failed, 5)
                ),
            };
            return CheckResult::pass(self.name(), phase, detail);
        }
        CheckResult::fail(
            self.name(),
            phase,
            format!("newly failed: {}{before}", name_list(&new, 8)),
        )
    }

    #[cfg(any(test, feature = "testkit"))]
    fn healthy(&self) -> String {
        Self::sample()
    }
}

impl FailedUnits {
    #[cfg(any(test, feature = "testkit"))]
    fn sample() -> String {
        "@@failed_units\n@@exit 0\n".to_string()
    }
}

/// The failed units the `failed_units` section lists, `None` when it is missing, systemd
/// does not run the host, or `systemctl` failed: for parts that judge by the same list
/// (`system_running`) without listing the units again.
pub(super) fn failed_units_section(sections: &Sections) -> Option<Vec<String>> {
    let section = sections.get("failed_units")?;
    if section.body.trim() == NO_SYSTEMD || !section.succeeded() {
        return None;
    }
    Some(failed_units(&section.body))
}

/// The unit names of `systemctl list-units --state=failed --plain --no-legend`, sorted. A
/// line is `UNIT LOAD ACTIVE SUB DESCRIPTION…`; older systemd prefixes a `●`.
fn failed_units(body: &str) -> Vec<String> {
    let mut units: Vec<String> = body
        .lines()
        .filter_map(|line| {
            line.split_whitespace()
                .find(|word| *word != "●" && *word != "*")
                .map(str::to_string)
        })
        .filter(|unit| unit.contains('.'))
        .collect();
    units.sort();
    units.dedup();
    units
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A request of `phase` on an apt host, for the parts' tests.
    pub(crate) fn request<'a>(
        phase: CheckPhase,
        skip: &'a BTreeSet<CheckName>,
        baseline: Option<&'a [String]>,
    ) -> ProbeRequest<'a> {
        ProbeRequest {
            phase,
            manager: Some(ManagerKind::Apt),
            skip,
            space: None,
            disk_margin: 0,
            baseline,
            system_running_timeout: Duration::from_secs(60),
            compose_paths: &[],
            compose_version: crate::config::ComposeVersion::V2,
        }
    }

    const UNITS: &str = "@@health\n@@failed_units\n\
        old.service  loaded failed failed Old\n\
        ● new.service loaded failed failed New thing\n@@exit 0\n";

    #[test]
    fn the_baseline_names_what_was_failed_and_later_only_new_failures_count() {
        // Only the failed units here; the package check has its tests in `package_db`.
        let skip: BTreeSet<_> = [CheckName::PackageDb].into();
        let pre = request(CheckPhase::Pre, &skip, None)
            .read("@@health\n@@failed_units\nold.service loaded failed failed Old\n@@exit 0\n")
            .unwrap();
        assert!(pre.get(CheckName::FailedUnits).unwrap().ok, "{pre:?}");
        assert_eq!(
            pre.failed_units.as_deref(),
            Some(&["old.service".to_string()][..])
        );
        let baseline = pre.failed_units.clone().unwrap();
        let post = request(CheckPhase::PostReboot, &skip, Some(&baseline))
            .read(UNITS)
            .unwrap();
        let check = post.get(CheckName::FailedUnits).unwrap();
        assert!(!check.ok);
        assert!(
            check.detail.contains("new.service") && !check.detail.contains("old.service"),
            "{}",
            check.detail
        );
        let without = request(CheckPhase::PostUpdate, &skip, None)
            .read(UNITS)
            .unwrap();
        let check = without.get(CheckName::FailedUnits).unwrap();
        assert!(
            check.detail.contains("old.service, new.service")
                || check.detail.contains("new.service, old.service"),
            "{}",
            check.detail
        );
    }

    #[test]
    fn no_systemd_passes_saying_so_a_missing_answer_fails_and_skipped_parts_do_not_run() {
        let skip: BTreeSet<_> = [CheckName::PackageDb].into();
        let req = request(CheckPhase::PostUpdate, &skip, None);
        let report = req.read("@@health\n@@failed_units\nno-systemd\n").unwrap();
        assert!(report.ok());
        assert_eq!(report.failed_units, None);
        let report = req.read("@@health\n").unwrap();
        assert!(!report.ok(), "a check that did not answer passed");
        assert!(req.read("sh: 1: syntax error").is_err());
        let skip: BTreeSet<_> = [CheckName::FailedUnits, CheckName::PackageDb].into();
        let req = request(CheckPhase::PostUpdate, &skip, None);
        assert!(req.is_empty());
        assert!(!req.script().contains("systemctl"));
    }

    #[test]
    fn a_healthy_answer_passes_every_phase() {
        let skip = BTreeSet::new();
        let baseline = Vec::new();
        for phase in [
            CheckPhase::Pre,
            CheckPhase::PostUpdate,
            CheckPhase::PostReboot,
            CheckPhase::Repair,
        ] {
            let mut req = request(phase, &skip, Some(&baseline));
            req.space = Some(SpaceNeeds::default());
            let report = req.read(&healthy_answer()).unwrap();
            assert!(report.ok(), "{phase:?}: {report:?}");
            assert!(req.script().starts_with(SCRIPT_HEADER));
        }
    }

    #[test]
    fn details_are_one_bounded_line_without_control_characters() {
        let long = format!("a\x1b[31mb\n\nc{}", "x".repeat(1000));
        let line = one_line(&long);
        assert!(!line.contains('\x1b') && !line.contains('\n'));
        assert!(line.chars().count() <= DETAIL_MAX + 1);
        assert_eq!(
            name_list(&["a".into(), "b".into(), "c".into()], 2),
            "a, b and 1 more"
        );
    }
}
