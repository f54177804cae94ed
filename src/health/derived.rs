//! The checks read from facts another part of tendhost already owns, so the host is not asked
//! twice: the services needing a restart and the reboot reason come from the survey that
//! follows every change (`needrestart -b`, `needs-restarting -s`, `reboot-required.pkgs`, the
//! new kernel), and the host key from the connection the probe ran over.

use super::{CheckName, CheckPhase, CheckResult};
use crate::config::RestartServices;
use crate::pkg::RebootStatus;

/// Services still running replaced code. After an update (no reboot follows) it is a finding
/// under `restart_services = "list"` (passes, naming them) and, under `"auto"`, what is left
/// after the restart, which fails; after a reboot every service started afresh, so any left
/// is a failure. `None` from the survey: the host has no tool to tell, said as such.
pub(crate) fn needs_restart(
    phase: CheckPhase,
    services: Option<&[String]>,
    policy: RestartServices,
) -> Option<CheckResult> {
    let name = CheckName::NeedsRestart;
    if policy == RestartServices::Never && phase == CheckPhase::PostUpdate {
        return None;
    }
    let Some(services) = services else {
        return Some(CheckResult::pass(
            name,
            phase,
            "not known: neither needrestart nor needs-restarting is installed",
        ));
    };
    if services.is_empty() {
        return Some(CheckResult::pass(
            name,
            phase,
            "no service runs replaced code",
        ));
    }
    let list = super::probe::name_list(services, 8);
    let after_restart = phase == CheckPhase::PostUpdate && policy == RestartServices::Auto;
    Some(match phase {
        CheckPhase::PostUpdate if !after_restart => {
            CheckResult::pass(name, phase, format!("restart needed: {list}"))
        }
        CheckPhase::PostUpdate => CheckResult::fail(
            name,
            phase,
            format!("still running replaced code after the restart: {list}"),
        ),
        _ => CheckResult::fail(name, phase, format!("still running replaced code: {list}")),
    })
}

/// Whether the host needs a reboot, and why: a finding after an update (passes, naming the
/// packages); after a reboot one still asked for is a failure (the reboot did not take).
pub(crate) fn reboot_required(phase: CheckPhase, reboot: &RebootStatus) -> CheckResult {
    let name = CheckName::RebootRequired;
    if !reboot.required {
        return CheckResult::pass(name, phase, "no reboot needed");
    }
    let why = match reboot.packages.is_empty() {
        true => "reboot required".to_string(),
        false => format!(
            "reboot required by {}",
            super::probe::name_list(&reboot.packages, 8)
        ),
    };
    match phase {
        CheckPhase::PostReboot => {
            CheckResult::fail(name, phase, format!("still {why} after the reboot"))
        }
        _ => CheckResult::pass(name, phase, why),
    }
}

/// After a reboot: the probe ran over a connection whose host key was checked against the
/// known one (a changed key fails the connection itself, as `HostKeyChanged`, before anything
/// runs), so reaching this point proves the key; `target` names the connection.
pub(crate) fn host_key(phase: CheckPhase, target: &str) -> CheckResult {
    CheckResult::pass(
        CheckName::HostKey,
        phase,
        format!("the known host key answered at {target}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_findings_follow_the_policy_and_the_phase() {
        let services = vec!["cron.service".to_string(), "ssh.service".to_string()];
        let listed = needs_restart(
            CheckPhase::PostUpdate,
            Some(&services),
            RestartServices::List,
        )
        .unwrap();
        assert!(
            listed.ok && listed.detail.contains("cron.service, ssh.service"),
            "{listed:?}"
        );
        assert!(
            needs_restart(
                CheckPhase::PostUpdate,
                Some(&services),
                RestartServices::Never
            )
            .is_none()
        );
        assert!(
            !needs_restart(
                CheckPhase::PostUpdate,
                Some(&services),
                RestartServices::Auto
            )
            .unwrap()
            .ok
        );
        assert!(
            !needs_restart(
                CheckPhase::PostReboot,
                Some(&services),
                RestartServices::Never
            )
            .unwrap()
            .ok
        );
        assert!(
            needs_restart(CheckPhase::PostReboot, Some(&[]), RestartServices::List)
                .unwrap()
                .ok
        );
        assert!(
            needs_restart(CheckPhase::PostReboot, None, RestartServices::List)
                .unwrap()
                .detail
                .contains("not known")
        );
    }

    #[test]
    fn a_reboot_is_a_finding_after_an_update_and_a_failure_after_a_reboot() {
        let reboot = RebootStatus {
            required: true,
            packages: vec!["linux-image-amd64".into()],
        };
        let after_update = reboot_required(CheckPhase::PostUpdate, &reboot);
        assert!(after_update.ok && after_update.detail.contains("linux-image-amd64"));
        assert!(!reboot_required(CheckPhase::PostReboot, &reboot).ok);
        assert!(reboot_required(CheckPhase::PostReboot, &RebootStatus::default()).ok);
    }
}
