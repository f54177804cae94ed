//! The host state machine of DESIGN.md §5, enforced here and nowhere else.
//!
//! Pure and synchronous: a [`HostState`] plus a [`Transition`] gives the next state or a
//! [`Refusal`] with the reason. The supervisor owns one `HostState` per host and is the only caller
//! of [`HostState::apply`]; it knows nothing of SSH, events or time beyond the timestamp it passes.
//!
//! Two moves go beyond the seed's list, both reached only through a refresh and both needed so a
//! host that changed outside tendhost can be handled: `PendingUpdates → Querying` (refresh a host
//! that already has pending updates) and `Querying → WaitingReboot` (a refresh found a host that
//! needs a reboot and has nothing to install).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::bus::StateKind;

/// Why a `Failed` host failed, kept until it is retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedInfo {
    /// The state the host was in when the step failed (`updating`, `rebooting`…).
    pub previous_state: StateKind,
    pub error: Arc<str>,
    pub failed_at: DateTime<Utc>,
    /// The operator has seen it (`a` in the console, `--batch ack`).
    pub acknowledged: bool,
}

/// One host's state with its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Phase {
    Idle,
    Querying,
    PendingUpdates,
    Updating,
    WaitingReboot { reason: Arc<str> },
    Rebooting,
    Verifying,
    Failed(FailedInfo),
}

/// The state machine's whole memory for one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    pub phase: Phase,
    /// How often this host was retried after failing; kept across retries.
    pub retry_count: u32,
}

/// A requested move. Named for what happened, so the table below reads like DESIGN.md §5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Start querying inventory and pending packages.
    Query,
    /// The query finished; `pending` says whether anything is upgradable.
    Queried {
        pending: bool,
    },
    /// Start upgrading.
    StartUpdate,
    /// The upgrade finished and no reboot is needed.
    Updated,
    /// A reboot is needed but may not happen now (or is about to): wait, saying why.
    NeedReboot {
        reason: Arc<str>,
    },
    StartReboot,
    /// The host went down and came back; verify it.
    CameBack,
    /// Boot id changed and the post-check passed.
    Verified,
    Fail {
        error: Arc<str>,
        at: DateTime<Utc>,
    },
    Retry,
    Acknowledge,
}

/// Why a move was refused, in words for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl Default for HostState {
    fn default() -> Self {
        HostState {
            phase: Phase::Idle,
            retry_count: 0,
        }
    }
}

impl Phase {
    pub fn kind(&self) -> StateKind {
        match self {
            Phase::Idle => StateKind::Idle,
            Phase::Querying => StateKind::Querying,
            Phase::PendingUpdates => StateKind::PendingUpdates,
            Phase::Updating => StateKind::Updating,
            Phase::WaitingReboot { .. } => StateKind::WaitingReboot,
            Phase::Rebooting => StateKind::Rebooting,
            Phase::Verifying => StateKind::Verifying,
            Phase::Failed(_) => StateKind::Failed,
        }
    }

    /// The text that goes with the state in events: the error or why the host waits.
    pub fn reason(&self) -> Option<Arc<str>> {
        match self {
            Phase::WaitingReboot { reason } => Some(reason.clone()),
            Phase::Failed(info) => Some(info.error.clone()),
            _ => None,
        }
    }
}

impl Transition {
    /// What the operator asked for, for refusal messages.
    fn verb(&self) -> &'static str {
        match self {
            Transition::Query => "refresh",
            Transition::Queried { .. } => "finish a refresh",
            Transition::StartUpdate => "update",
            Transition::Updated => "finish an update",
            Transition::NeedReboot { .. } => "wait for a reboot",
            Transition::StartReboot => "reboot",
            Transition::CameBack => "verify a reboot",
            Transition::Verified => "finish verifying",
            Transition::Fail { .. } => "fail",
            Transition::Retry => "retry",
            Transition::Acknowledge => "acknowledge",
        }
    }
}

impl HostState {
    pub fn kind(&self) -> StateKind {
        self.phase.kind()
    }

    /// Applies `transition` if DESIGN.md §5 allows it from the current state.
    pub fn apply(&mut self, transition: Transition) -> Result<(), Refusal> {
        use Phase as P;
        use Transition as T;
        let next = match (&self.phase, transition) {
            (P::Idle | P::PendingUpdates, T::Query) => P::Querying,
            (P::Querying, T::Queried { pending: true }) => P::PendingUpdates,
            (P::Querying, T::Queried { pending: false }) => P::Idle,
            (P::Querying | P::Updating, T::NeedReboot { reason }) => P::WaitingReboot { reason },
            (P::PendingUpdates, T::StartUpdate) => P::Updating,
            (P::Updating, T::Updated) => P::Idle,
            (P::WaitingReboot { .. }, T::StartReboot) => P::Rebooting,
            (P::Rebooting, T::CameBack) => P::Verifying,
            (P::Verifying, T::Verified) => P::Idle,
            (
                previous @ (P::Querying | P::Updating | P::Rebooting | P::Verifying),
                T::Fail { error, at },
            ) => P::Failed(FailedInfo {
                previous_state: previous.kind(),
                error,
                failed_at: at,
                acknowledged: false,
            }),
            (P::Failed(_), T::Retry) => {
                self.retry_count += 1;
                P::Idle
            }
            (P::Failed(info), T::Acknowledge) => P::Failed(FailedInfo {
                acknowledged: true,
                ..info.clone()
            }),
            (phase, transition) => return Err(refusal(phase, &transition)),
        };
        self.phase = next;
        Ok(())
    }

    /// Records a failure from any state. Only for what the table cannot foresee: a step that
    /// panicked, or a host found mid-step in a snapshot after tendhost died.
    pub fn force_fail(&mut self, error: Arc<str>, at: DateTime<Utc>) {
        let previous_state = match &self.phase {
            Phase::Failed(info) => info.previous_state,
            other => other.kind(),
        };
        self.phase = Phase::Failed(FailedInfo {
            previous_state,
            error,
            failed_at: at,
            acknowledged: false,
        });
    }
}

fn refusal(phase: &Phase, transition: &Transition) -> Refusal {
    let verb = transition.verb();
    let why = match phase {
        Phase::Failed(_) => "it failed; retry it first".to_string(),
        Phase::WaitingReboot { .. } if *transition == Transition::StartUpdate => {
            "it is waiting for a reboot".to_string()
        }
        p if p.kind().is_busy() => format!("it is busy ({})", p.kind()),
        p => format!("it is {}", p.kind()),
    };
    Refusal(format!("cannot {verb}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn failed() -> Phase {
        Phase::Failed(FailedInfo {
            previous_state: StateKind::Updating,
            error: "boom".into(),
            failed_at: at(),
            acknowledged: false,
        })
    }

    fn phases() -> Vec<Phase> {
        vec![
            Phase::Idle,
            Phase::Querying,
            Phase::PendingUpdates,
            Phase::Updating,
            Phase::WaitingReboot {
                reason: "auto_reboot is off".into(),
            },
            Phase::Rebooting,
            Phase::Verifying,
            failed(),
        ]
    }

    fn transitions() -> Vec<Transition> {
        vec![
            Transition::Query,
            Transition::Queried { pending: true },
            Transition::Queried { pending: false },
            Transition::StartUpdate,
            Transition::Updated,
            Transition::NeedReboot {
                reason: "outside window".into(),
            },
            Transition::StartReboot,
            Transition::CameBack,
            Transition::Verified,
            Transition::Fail {
                error: "it broke".into(),
                at: at(),
            },
            Transition::Retry,
            Transition::Acknowledge,
        ]
    }

    /// The whole table: every (state, transition) pair, legal ones with their target.
    fn expected(from: StateKind, t: &Transition) -> Option<StateKind> {
        use StateKind as S;
        use Transition as T;
        Some(match (from, t) {
            (S::Idle | S::PendingUpdates, T::Query) => S::Querying,
            (S::Querying, T::Queried { pending: true }) => S::PendingUpdates,
            (S::Querying, T::Queried { pending: false }) => S::Idle,
            (S::Querying | S::Updating, T::NeedReboot { .. }) => S::WaitingReboot,
            (S::PendingUpdates, T::StartUpdate) => S::Updating,
            (S::Updating, T::Updated) => S::Idle,
            (S::WaitingReboot, T::StartReboot) => S::Rebooting,
            (S::Rebooting, T::CameBack) => S::Verifying,
            (S::Verifying, T::Verified) => S::Idle,
            (S::Querying | S::Updating | S::Rebooting | S::Verifying, T::Fail { .. }) => S::Failed,
            (S::Failed, T::Retry | T::Acknowledge) => S::Failed,
            _ => return None,
        })
        .map(|to| match (from, t) {
            (S::Failed, T::Retry) => S::Idle,
            _ => to,
        })
    }

    #[test]
    fn every_state_and_transition_pair_follows_the_table() {
        let mut legal = 0;
        for phase in phases() {
            for t in transitions() {
                let mut state = HostState {
                    phase: phase.clone(),
                    retry_count: 2,
                };
                let from = phase.kind();
                let result = state.apply(t.clone());
                match expected(from, &t) {
                    Some(to) => {
                        legal += 1;
                        assert!(
                            result.is_ok(),
                            "{from:?} + {t:?} should be legal: {result:?}"
                        );
                        assert_eq!(state.kind(), to, "{from:?} + {t:?}");
                    }
                    None => {
                        let err = result.expect_err(&format!("{from:?} + {t:?} should be refused"));
                        assert!(err.0.starts_with("cannot "), "{err}");
                        assert_eq!(state.phase, phase, "a refused move changed the state");
                        assert_eq!(state.retry_count, 2);
                    }
                }
            }
        }
        assert_eq!(
            legal, 17,
            "the number of legal moves changed; update DESIGN.md §5"
        );
    }

    #[test]
    fn failure_keeps_its_context_and_retry_counts() {
        let mut state = HostState::default();
        state.apply(Transition::Query).unwrap();
        state.apply(Transition::Queried { pending: true }).unwrap();
        state.apply(Transition::StartUpdate).unwrap();
        state
            .apply(Transition::Fail {
                error: "dpkg broke".into(),
                at: at(),
            })
            .unwrap();
        let Phase::Failed(info) = &state.phase else {
            panic!("not failed")
        };
        assert_eq!(info.previous_state, StateKind::Updating);
        assert_eq!(&*info.error, "dpkg broke");
        assert!(!info.acknowledged);
        state.apply(Transition::Acknowledge).unwrap();
        assert!(
            matches!(&state.phase, Phase::Failed(i) if i.acknowledged && &*i.error == "dpkg broke")
        );
        state.apply(Transition::Retry).unwrap();
        assert_eq!(state.phase, Phase::Idle);
        assert_eq!(state.retry_count, 1);
    }

    #[test]
    fn refuses_update_while_rebooting_with_a_reason() {
        let mut state = HostState {
            phase: Phase::Rebooting,
            retry_count: 0,
        };
        let err = state.apply(Transition::StartUpdate).unwrap_err();
        assert_eq!(err.0, "cannot update: it is busy (rebooting)");
        let mut state = HostState {
            phase: failed(),
            retry_count: 0,
        };
        assert_eq!(
            state.apply(Transition::Query).unwrap_err().0,
            "cannot refresh: it failed; retry it first"
        );
    }

    #[test]
    fn force_fail_works_from_any_state() {
        for phase in phases() {
            let mut state = HostState {
                phase: phase.clone(),
                retry_count: 0,
            };
            state.force_fail("panic".into(), at());
            assert_eq!(state.kind(), StateKind::Failed);
        }
    }
}
