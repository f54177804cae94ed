//! The post-reboot system state: `systemctl is-system-running --wait`, bounded by
//! `[host.checks] system_running_timeout`. `running` passes; `degraded` passes only when every
//! failed unit already failed before the update (the baseline), and otherwise fails naming the
//! new ones; still `starting` after the bound fails saying how long it waited.
//!
//! The failed units have one owner, the `failed_units` part ([`super::probe`]): this part runs
//! before it (so the list is taken once the boot has settled) and reads that part's section
//! with the same reader instead of listing the units a second time.

use super::probe::{Part, ProbeRequest, failed_units_section, name_list, one_line, unknown};
use super::{CheckName, CheckResult, HealthReport};
use crate::config::format_duration;
use crate::survey::sections::{Sections, marker};

const SECTION: &str = "system_running";
/// The section body when systemd does not run the host.
const NO_SYSTEMD: &str = "no-systemd";

pub(super) struct SystemRunning;

impl Part for SystemRunning {
    fn name(&self) -> CheckName {
        CheckName::SystemRunning
    }

    fn script(&self, request: &ProbeRequest<'_>) -> String {
        let secs = request.system_running_timeout.as_secs().max(1);
        // `--wait` prints nothing useful when the bound cuts it off: the state is asked again
        // without waiting, and that answer is the one read (the last line).
        format!(
            "{}\n\
             if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then\n\
             if command -v timeout >/dev/null 2>&1; then\n\
             timeout {secs} systemctl is-system-running --wait >/dev/null 2>&1\n\
             else systemctl is-system-running --wait >/dev/null 2>&1; fi\n\
             systemctl is-system-running 2>&1\n\
             else echo {NO_SYSTEMD}; fi",
            marker(SECTION)
        )
    }

    fn read(
        &self,
        request: &ProbeRequest<'_>,
        sections: &Sections,
        _report: &mut HealthReport,
    ) -> CheckResult {
        let Some(section) = sections.get(SECTION) else {
            return unknown(self.name(), request.phase);
        };
        judge(request, &section.body, sections)
    }

    #[cfg(any(test, feature = "testkit"))]
    fn healthy(&self) -> String {
        format!("@@{SECTION}\nrunning\n")
    }
}

fn judge(request: &ProbeRequest<'_>, body: &str, sections: &Sections) -> CheckResult {
    let (name, phase) = (CheckName::SystemRunning, request.phase);
    let state = body.lines().map(str::trim).rfind(|l| !l.is_empty());
    match state {
        Some(NO_SYSTEMD) => CheckResult::pass(
            name,
            phase,
            "not applicable: systemd does not run this host",
        ),
        Some("running") => CheckResult::pass(name, phase, "running"),
        Some("degraded") => degraded(request, sections),
        Some(state @ ("initializing" | "starting")) => CheckResult::fail(
            name,
            phase,
            format!(
                "still {state} after {}",
                format_duration(request.system_running_timeout)
            ),
        ),
        Some(other) => CheckResult::fail(name, phase, format!("system is {}", one_line(other))),
        None => CheckResult::fail(name, phase, "systemctl is-system-running printed nothing"),
    }
}

/// `degraded`: fine only when the units that failed had failed before the update too.
fn degraded(request: &ProbeRequest<'_>, sections: &Sections) -> CheckResult {
    let (name, phase) = (CheckName::SystemRunning, request.phase);
    if request.skip.contains(&CheckName::FailedUnits) {
        return CheckResult::pass(
            name,
            phase,
            "degraded (which units failed is not checked: failed_units is skipped)",
        );
    }
    let Some(failed) = failed_units_section(sections) else {
        return CheckResult::fail(
            name,
            phase,
            "degraded, and the failed units could not be listed",
        );
    };
    let new: Vec<String> = failed
        .iter()
        .filter(|u| request.baseline.is_none_or(|b| !b.contains(u)))
        .cloned()
        .collect();
    match (new.is_empty(), failed.is_empty()) {
        (true, false) => CheckResult::pass(
            name,
            phase,
            format!("degraded as before: {}", name_list(&failed, 5)),
        ),
        (true, true) => CheckResult::fail(name, phase, "degraded, yet no unit is listed as failed"),
        (false, _) => CheckResult::fail(
            name,
            phase,
            format!("degraded: {} failed", name_list(&new, 8)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::super::CheckPhase;
    use super::super::probe::tests::request;
    use super::*;

    fn check(body: &str, baseline: Option<&[String]>, skip: &BTreeSet<CheckName>) -> CheckResult {
        let mut request = request(CheckPhase::PostReboot, skip, baseline);
        request.system_running_timeout = Duration::from_secs(120);
        request
            .read(&format!("@@health\n{body}"))
            .unwrap()
            .get(CheckName::SystemRunning)
            .unwrap()
            .clone()
    }

    const DEGRADED: &str = "@@system_running\ndegraded\n@@failed_units\n\
        old.service loaded failed failed Old\n@@exit 0\n";

    #[test]
    fn degraded_passes_only_with_the_same_failures_as_before() {
        let skip = BTreeSet::new();
        let old = vec!["old.service".to_string()];
        let as_before = check(DEGRADED, Some(&old), &skip);
        assert!(as_before.ok, "{as_before:?}");
        assert_eq!(&*as_before.detail, "degraded as before: old.service");
        let new = check(DEGRADED, Some(&[]), &skip);
        assert!(!new.ok);
        assert_eq!(&*new.detail, "degraded: old.service failed");
        let no_baseline = check(DEGRADED, None, &skip);
        assert!(!no_baseline.ok, "{no_baseline:?}");
        let skipped: BTreeSet<_> = [CheckName::FailedUnits].into();
        assert!(check(DEGRADED, None, &skipped).ok);
    }

    #[test]
    fn running_passes_starting_fails_with_the_bound_and_no_systemd_is_not_applicable() {
        let skip = BTreeSet::new();
        assert!(check("@@system_running\nrunning\n", None, &skip).ok);
        let starting = check("@@system_running\nstarting\n", None, &skip);
        assert!(!starting.ok);
        assert_eq!(&*starting.detail, "still starting after 2m");
        let none = check("@@system_running\nno-systemd\n", None, &skip);
        assert!(none.ok && none.detail.starts_with("not applicable"));
        assert!(!check("@@system_running\nmaintenance\n", None, &skip).ok);
        assert!(!check("@@system_running\n", None, &skip).ok);
        assert!(!check("", None, &skip).ok, "a missing section passed");
        let script = SystemRunning.script(&request(CheckPhase::PostReboot, &skip, None));
        assert!(
            script.contains("timeout 60 systemctl is-system-running --wait"),
            "{script}"
        );
    }
}
