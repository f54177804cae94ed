//! The checks read from facts another part of tendhost already owns, so the host is not asked
//! twice: the services needing a restart and the reboot reason come from the survey that
//! follows every change (`needrestart -b`, `needs-restarting -s`, `reboot-required.pkgs`, the
//! new kernel), and the host key from the connection the probe ran over.

use super::{CheckName, CheckPhase, CheckResult};
use crate::config::RestartServices;
use crate::pkg::RebootStatus;

/// What `restart_services = "auto"` did after an update, for [`needs_restart`] to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Restart {
    /// `systemctl try-restart` of these services exited 0.
    Restarted(Vec<String>),
    /// It did not: these services were asked for, `why` is what went wrong (one line).
    Failed { services: Vec<String>, why: String },
    /// Not tried: a reboot is due, and it starts every service afresh.
    Deferred,
}

/// The services to restart after an update: those the after-change survey found running
/// replaced code, under `restart_services = "auto"` only. `None`: restart nothing.
pub(crate) fn to_restart(
    policy: RestartServices,
    services: Option<&[String]>,
) -> Option<&[String]> {
    match (policy, services) {
        (RestartServices::Auto, Some(services)) if !services.is_empty() => Some(services),
        _ => None,
    }
}

/// Services still running replaced code. After an update (no reboot follows) it is a finding
/// under `restart_services = "list"` (passes, naming them) and, under `"auto"`, what is left
/// after the restart (`restart`, read again afterwards), which fails, as does a restart that
/// failed; after a reboot every service started afresh, so any left is a failure. `None`
/// from the survey: the host has no tool to tell, said as such.
pub(crate) fn needs_restart(
    phase: CheckPhase,
    services: Option<&[String]>,
    policy: RestartServices,
    restart: Option<&Restart>,
) -> Option<CheckResult> {
    let name = CheckName::NeedsRestart;
    if policy == RestartServices::Never && phase == CheckPhase::PostUpdate {
        return None;
    }
    let list = |names: &[String]| super::probe::name_list(names, 8);
    let restarted = match restart {
        Some(Restart::Failed { services, why }) => {
            return Some(CheckResult::fail(
                name,
                phase,
                format!("could not restart {}: {why}", list(services)),
            ));
        }
        Some(Restart::Restarted(done)) => Some(format!("restarted: {}", list(done))),
        Some(Restart::Deferred) | None => None,
    };
    let Some(services) = services else {
        let unknown = "not known: neither needrestart nor needs-restarting is installed";
        return Some(CheckResult::pass(
            name,
            phase,
            match restarted {
                Some(done) => format!("{done}; {unknown}"),
                None => unknown.to_string(),
            },
        ));
    };
    if services.is_empty() {
        return Some(CheckResult::pass(
            name,
            phase,
            restarted.unwrap_or_else(|| "no service runs replaced code".to_string()),
        ));
    }
    let deferred = matches!(restart, Some(Restart::Deferred));
    let after_restart =
        phase == CheckPhase::PostUpdate && policy == RestartServices::Auto && !deferred;
    Some(match phase {
        CheckPhase::PostUpdate if deferred => CheckResult::pass(
            name,
            phase,
            format!(
                "restart needed: {} (the reboot due restarts them)",
                list(services)
            ),
        ),
        CheckPhase::PostUpdate if !after_restart => {
            CheckResult::pass(name, phase, format!("restart needed: {}", list(services)))
        }
        CheckPhase::PostUpdate => CheckResult::fail(
            name,
            phase,
            match restarted {
                Some(done) => format!("{done}; still running replaced code: {}", list(services)),
                None => format!(
                    "still running replaced code after the restart: {}",
                    list(services)
                ),
            },
        ),
        _ => CheckResult::fail(
            name,
            phase,
            format!("still running replaced code: {}", list(services)),
        ),
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
            None,
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
                RestartServices::Never,
                None
            )
            .is_none()
        );
        assert!(
            !needs_restart(
                CheckPhase::PostUpdate,
                Some(&services),
                RestartServices::Auto,
                None
            )
            .unwrap()
            .ok
        );
        assert!(
            !needs_restart(
                CheckPhase::PostReboot,
                Some(&services),
                RestartServices::Never,
                None
            )
            .unwrap()
            .ok
        );
        assert!(
            needs_restart(
                CheckPhase::PostReboot,
                Some(&[]),
                RestartServices::List,
                None
            )
            .unwrap()
            .ok
        );
        assert!(
            needs_restart(CheckPhase::PostReboot, None, RestartServices::List, None)
                .unwrap()
                .detail
                .contains("not known")
        );
    }

    #[test]
    fn auto_restarts_what_needs_it_and_says_what_it_restarted_or_why_not() {
        let services = vec!["cron.service".to_string(), "ssh.service".to_string()];
        assert_eq!(
            to_restart(RestartServices::Auto, Some(&services)),
            Some(&services[..])
        );
        assert_eq!(to_restart(RestartServices::Auto, Some(&[])), None);
        assert_eq!(to_restart(RestartServices::Auto, None), None);
        assert_eq!(to_restart(RestartServices::List, Some(&services)), None);
        assert_eq!(to_restart(RestartServices::Never, Some(&services)), None);

        let judge = |left: Option<&[String]>, restart: &Restart| {
            needs_restart(
                CheckPhase::PostUpdate,
                left,
                RestartServices::Auto,
                Some(restart),
            )
            .unwrap()
        };
        let restarted = Restart::Restarted(services.clone());
        let clean = judge(Some(&[]), &restarted);
        assert!(clean.ok, "{clean:?}");
        assert_eq!(&*clean.detail, "restarted: cron.service, ssh.service");
        let left = judge(Some(&services[1..]), &restarted);
        assert!(!left.ok);
        assert_eq!(
            &*left.detail,
            "restarted: cron.service, ssh.service; still running replaced code: ssh.service"
        );
        let failed = judge(
            Some(&services),
            &Restart::Failed {
                services: services.clone(),
                why: "systemctl exited 1: System has not been booted with systemd".into(),
            },
        );
        assert!(!failed.ok);
        assert_eq!(
            &*failed.detail,
            "could not restart cron.service, ssh.service: systemctl exited 1: System has not \
             been booted with systemd"
        );
        let unknown = judge(None, &restarted);
        assert!(unknown.ok && unknown.detail.starts_with("restarted: cron.service"));
        // A reboot is due: nothing was restarted, and what needs it is a finding, not a fault.
        let deferred = judge(Some(&services), &Restart::Deferred);
        assert!(deferred.ok, "{deferred:?}");
        assert_eq!(
            &*deferred.detail,
            "restart needed: cron.service, ssh.service (the reboot due restarts them)"
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
