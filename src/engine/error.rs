//! Why a job did not do what it was asked, typed until it is shown. Each variant names the stage
//! and the thing involved; the cause is the `#[source]` and is not repeated in the message, so
//! [`crate::errors::chain`] prints a clean line for the screen, the log and `--json`.

use crate::fleet::{Refusal, Stage};
use crate::{inventory, pkg, remote};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The supervisor refused the job or one of its moves; nothing ran on the host after it.
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("inventory")]
    Inventory(#[source] inventory::Error),
    #[error(transparent)]
    Survey(crate::survey::Error),
    #[error("detecting the package manager")]
    Detect(#[source] pkg::Error),
    #[error("{what}")]
    Read {
        what: &'static str,
        #[source]
        source: pkg::Error,
    },
    #[error("planning the upgrade")]
    Plan(#[source] pkg::Error),
    #[error("upgrade")]
    Upgrade(#[source] pkg::Error),
    #[error("compose")]
    Compose(#[source] pkg::Error),
    /// The repair command (`dpkg --configure -a`, …) failed.
    #[error("repair")]
    Repair(#[source] pkg::Error),
    /// A health gate failed (see `crate::health`): each failed check named with what it found.
    #[error("{phase} checks failed: {failures}", phase = phase.label())]
    Health {
        phase: crate::health::CheckPhase,
        failures: String,
    },
    /// The health probe could not be run on the host.
    #[error("{phase} checks", phase = phase.label())]
    HealthUnrun {
        phase: crate::health::CheckPhase,
        #[source]
        source: remote::Error,
    },
    /// The health probe ran but did not answer as a probe does.
    #[error("{phase} checks: {detail}", phase = phase.label())]
    HealthNoAnswer {
        phase: crate::health::CheckPhase,
        detail: String,
    },
    /// A `[host.checks]` command could not be run. Named by its stage, never by its command
    /// line: a check may carry a token (`curl -H "Authorization: …"`), and this text reaches the
    /// screen, the log, `--json` and the snapshot.
    #[error("{stage}", stage = stage_label(*.stage))]
    CheckUnrun {
        stage: Stage,
        #[source]
        source: remote::Error,
    },
    /// A `[host.checks]` command ran and said no; named by its stage like [`Error::CheckUnrun`].
    #[error("{stage} failed (exit {code}){detail}", stage = stage_label(*.stage), detail = colon(detail))]
    CheckFailed {
        stage: Stage,
        code: String,
        /// The last line the check printed, if any.
        detail: String,
    },
    #[error("rebooting: {what}")]
    Reboot {
        what: &'static str,
        #[source]
        source: remote::Error,
    },
    /// The reboot command said no; named, not quoted, like a check.
    #[error("rebooting: the reboot command failed (exit {code}){detail}", detail = colon(detail))]
    RebootCommand { code: i32, detail: String },
    /// Waiting for the host to go down or come back ran out, or something waiting cannot fix.
    #[error("rebooting: {0}")]
    RebootWait(String),
    #[error("verifying: the boot id did not change ('{0}')")]
    BootIdUnchanged(String),
    /// A detached job left by an earlier run could not be asked about: the host stays failed
    /// with the job kept, to be asked again on retry.
    #[error(
        "interrupted during {label} (job {job}): tendhost stopped and the host could not be asked how it ended; verify the host"
    )]
    Unasked {
        job: String,
        label: String,
        #[source]
        source: remote::Error,
    },
    /// A detached job ended badly while nobody followed it.
    #[error("{label} (job {job}) failed (exit {code}): {tail}")]
    JobFailed {
        job: String,
        label: String,
        code: i32,
        tail: String,
    },
    #[error(
        "{label} (job {job}) vanished: it left no exit status (killed, or the host rebooted under it)"
    )]
    JobVanished { job: String, label: String },
    #[error("internal error: the step panicked: {0}")]
    Panicked(String),
    #[error("internal error: the step was cancelled")]
    Aborted,
}

/// `": detail"`, or nothing when a command printed nothing.
fn colon(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

fn stage_label(stage: Stage) -> &'static str {
    match stage {
        Stage::PreCheck => "pre-check",
        Stage::Verify => "post-check",
        other => other.as_str(),
    }
}

/// Why a wave could not be started or steered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaveError {
    #[error("wave {0} is still running")]
    Running(u64),
    #[error("no hosts selected for the wave")]
    NoHosts,
    #[error("unknown host '{0}'")]
    UnknownHost(crate::config::HostId),
    #[error("the engine is shutting down")]
    Stopped,
    #[error("no wave is running")]
    NotRunning,
    #[error("the wave is not waiting at its threshold")]
    NotAtThreshold,
    #[error("no unfinished wave to resume")]
    NothingToResume,
    /// The saved plan is older than its fleet: what changed, to be confirmed first.
    #[error("the saved wave's plan no longer fits the config: {}", .0.join("; "))]
    Stale(Vec<String>),
}

impl Error {
    /// The step ended while its detached job may still run on the host (tendhost stopped
    /// following it, it outlived its bound, or the host could not be asked): the job's record
    /// is kept so the next start or retry asks again.
    pub fn keeps_job(&self) -> bool {
        if matches!(self, Error::Unasked { .. }) {
            return true;
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = cause {
            if let Some(remote::Error::Detached { .. } | remote::Error::JobOutlived { .. }) =
                err.downcast_ref::<remote::Error>()
            {
                return true;
            }
            cause = err.source();
        }
        false
    }

    /// tendhost stopped following a job that runs on (or stopped while asking about one): not
    /// a failure of the host.
    pub fn is_detached(&self) -> bool {
        if let Error::Unasked {
            source: remote::Error::Cancelled,
            ..
        } = self
        {
            return true;
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = cause {
            if let Some(remote::Error::Detached { .. }) = err.downcast_ref::<remote::Error>() {
                return true;
            }
            cause = err.source();
        }
        false
    }

    /// Network trouble that trying again later may fix (connection refused or reset, a
    /// timeout), as opposed to a host or a person saying no.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Inventory(inventory::Error::Remote { source, .. })
            | Error::Unasked { source, .. }
            | Error::CheckUnrun { source, .. }
            | Error::HealthUnrun { source, .. }
            | Error::Reboot { source, .. } => source.is_transient(),
            Error::Survey(e) => e.is_transient(),
            Error::Detect(e)
            | Error::Read { source: e, .. }
            | Error::Plan(e)
            | Error::Upgrade(e)
            | Error::Repair(e)
            | Error::Compose(e) => e.is_transient(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn checks_are_named_by_stage_never_by_their_command_line() {
        let failed = Error::CheckFailed {
            stage: Stage::PreCheck,
            code: "1".into(),
            detail: String::new(),
        };
        assert_eq!(failed.to_string(), "pre-check failed (exit 1)");
        let failed = Error::CheckFailed {
            stage: Stage::Verify,
            code: "22".into(),
            detail: "curl: (22) The requested URL returned error: 503".into(),
        };
        assert_eq!(
            failed.to_string(),
            "post-check failed (exit 22): curl: (22) The requested URL returned error: 503"
        );
        let unrun = Error::CheckUnrun {
            stage: Stage::PreCheck,
            source: remote::Error::Timeout(Duration::from_secs(5)),
        };
        assert_eq!(
            crate::errors::chain(&unrun),
            "pre-check: command timed out after 5s"
        );
    }

    #[test]
    fn the_reboot_command_is_named_not_quoted() {
        let err = Error::RebootCommand {
            code: 1,
            detail: "Failed to reboot: Access denied".into(),
        };
        assert_eq!(
            err.to_string(),
            "rebooting: the reboot command failed (exit 1): Failed to reboot: Access denied"
        );
    }

    #[test]
    fn a_job_left_running_keeps_its_record_and_a_stop_is_no_failure() {
        let detached = Error::Upgrade(pkg::Error::Remote {
            step: "apt-get upgrade",
            source: remote::Error::Detached {
                job: "j".into(),
                label: "apt-get upgrade".into(),
            },
        });
        assert!(detached.is_detached() && detached.keeps_job());
        let outlived = Error::Upgrade(pkg::Error::Remote {
            step: "apt-get upgrade",
            source: remote::Error::JobOutlived {
                job: "j".into(),
                label: "apt-get upgrade".into(),
                after: Duration::from_secs(2),
            },
        });
        assert!(!outlived.is_detached() && outlived.keeps_job());
        let unasked = |source| Error::Unasked {
            job: "j".into(),
            label: "reboot".into(),
            source,
        };
        let stopping = unasked(remote::Error::Cancelled);
        assert!(stopping.is_detached() && stopping.keeps_job());
        let refused = unasked(remote::Error::Connect {
            target: "h".into(),
            source: std::io::Error::other("refused"),
        });
        assert!(!refused.is_detached() && refused.keeps_job() && refused.is_transient());
        let failed = Error::JobFailed {
            job: "j".into(),
            label: "apt-get upgrade".into(),
            code: 100,
            tail: "E: boom".into(),
        };
        assert!(!failed.keeps_job() && !failed.is_detached());
    }
}
