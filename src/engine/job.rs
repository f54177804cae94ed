//! The rules of a job, decided here and nowhere else: which checks and maintenance-window rules
//! apply for whom, how a reboot is asked for, and how a job's end reads to its requester.

use super::bus::{Job, JobKind, Origin, Outcome};
use super::error::Error;

/// How a reboot may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RebootRule {
    /// The operator asked for this reboot: only the maintenance window can stop it.
    Explicit,
    /// An update found one is needed: `auto_reboot` and the window decide.
    Policy,
}

/// How a job's work ended, before it is told to the requester.
#[derive(Debug)]
pub(super) enum Done {
    Ran,
    /// Nothing to do, or not now; the reason says which.
    Skipped(String),
}

impl Job {
    /// Whether an update outside the host's maintenance window is skipped rather than run:
    /// unattended work (waves, schedules) waits for the window; an operator's or a script's
    /// explicit update does not (its reboot still does).
    pub(super) fn window_gates_update(&self) -> bool {
        matches!(self.origin, Origin::Wave(_) | Origin::Schedule)
    }

    /// The host's `[host.checks] pre` gates every real update, whoever asked; a dry run changes
    /// nothing and needs no gate.
    pub(super) fn runs_pre_check(&self) -> bool {
        matches!(self.kind, JobKind::Update { dry_run: false, .. })
    }

    /// Whether an update of a host tendhost cannot update (no package manager, no compose
    /// stacks) is refused. A wave still checks and refreshes such a host as part of the fleet;
    /// asked for directly, the update is a mistake worth saying.
    pub(super) fn refuses_nothing_to_update(&self) -> bool {
        !matches!(self.origin, Origin::Wave(_) | Origin::Schedule)
    }

    pub(super) fn reboot_rule(&self) -> RebootRule {
        match self.kind {
            JobKind::Reboot => RebootRule::Explicit,
            _ => RebootRule::Policy,
        }
    }

    /// Whether a refusal means "nothing to do" for this requester: a script that reboots, retries
    /// or acknowledges a whole selection expects most hosts not to need it.
    fn refusal_is_skip(&self) -> bool {
        self.origin == Origin::Batch
            && matches!(
                self.kind,
                JobKind::Reboot | JobKind::Retry | JobKind::Acknowledge
            )
    }

    /// What the requester is told. A wave sees refusals as such (it replaces the host); batch
    /// sees a skip or a failure, decided here rather than by every caller.
    pub(super) fn outcome(&self, result: &Result<Done, Error>) -> Outcome {
        match result {
            Ok(Done::Ran) => Outcome::Succeeded,
            Ok(Done::Skipped(reason)) => Outcome::Skipped {
                reason: reason.clone(),
            },
            Err(Error::Refused(refusal)) => {
                let reason = refusal.to_string();
                if self.refusal_is_skip() {
                    Outcome::Skipped { reason }
                } else if self.origin == Origin::Batch {
                    Outcome::Failed { error: reason }
                } else {
                    Outcome::Refused { reason }
                }
            }
            Err(error) => Outcome::Failed {
                error: crate::errors::chain(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Refusal;

    /// How `job` reads a refusal.
    fn refused(job: &Job) -> Outcome {
        job.outcome(&Err(Error::Refused(Refusal(
            "cannot reboot: it is idle".into(),
        ))))
    }

    #[test]
    fn batch_skips_refused_reboots_and_fails_refused_updates() {
        let reboot = Job::new(JobKind::Reboot, Origin::Batch);
        assert!(matches!(refused(&reboot), Outcome::Skipped { .. }));
        let update = Job::new(
            JobKind::Update {
                dry_run: false,
                allow_removals: false,
            },
            Origin::Batch,
        );
        assert!(matches!(refused(&update), Outcome::Failed { .. }));
        let wave = Job::new(JobKind::Reboot, Origin::Wave(1));
        assert!(matches!(refused(&wave), Outcome::Refused { .. }));
    }

    #[test]
    fn windows_gate_only_unattended_updates_and_pre_checks_gate_every_real_one() {
        let update = |origin| {
            Job::new(
                JobKind::Update {
                    dry_run: false,
                    allow_removals: false,
                },
                origin,
            )
        };
        assert!(update(Origin::Wave(3)).window_gates_update());
        assert!(update(Origin::Schedule).window_gates_update());
        assert!(!update(Origin::Console).window_gates_update());
        assert!(!update(Origin::Batch).window_gates_update());
        assert!(update(Origin::Console).runs_pre_check());
        let dry = Job::new(
            JobKind::Update {
                dry_run: true,
                allow_removals: false,
            },
            Origin::Wave(1),
        );
        assert!(!dry.runs_pre_check());
        assert_eq!(
            Job::new(JobKind::Reboot, Origin::Console).reboot_rule(),
            RebootRule::Explicit
        );
    }
}
