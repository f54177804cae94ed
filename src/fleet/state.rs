//! The host state machine of DESIGN.md §5, enforced here and nowhere else.
//!
//! Pure and synchronous: a [`HostState`] plus a [`Transition`] gives the next state or a
//! [`Refusal`] with the reason. Each host's supervisor owns one `HostState` and is the only caller
//! of [`HostState::apply`]; every consumer gets a copy of the new state in the event that
//! announces it, so nobody rebuilds it from the move.
//!
//! Moves beyond the seed's list, each needed so a host that changed outside tendhost can be
//! handled: `PendingUpdates|WaitingReboot → Querying` (refresh a host that already has pending
//! updates or waits for a reboot), `Querying → WaitingReboot` (a refresh found a host that needs a
//! reboot and has nothing to install) and `Idle → Updating` (an update with no packages pending
//! still updates the host's compose stacks). A failed *read* never enters `Failed` (the seed's
//! recovery table): the host goes back to the resting state it was in, with the error kept in
//! [`HostState::last_error`]. Only a failed mutation (updating, rebooting, verifying) latches.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// After this many straight failed reads with a transient error, a host is shown unreachable.
pub(super) const UNREACHABLE_AFTER: u32 = 3;

/// The states of DESIGN.md §5, without their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    Idle,
    Querying,
    PendingUpdates,
    Updating,
    WaitingReboot,
    Rebooting,
    Verifying,
    Failed,
}

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

/// The last read (refresh, plan, pre-check) that failed, kept until a read succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub error: Arc<str>,
    pub at: DateTime<Utc>,
    /// Straight failures so far (1 for the first).
    pub tries: u32,
    /// Network trouble that retrying may fix (connection refused or reset, a timeout), as
    /// opposed to a check that said no.
    pub transient: bool,
}

/// One host's state with its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Phase {
    Idle,
    /// Reading the host; `resting` is where a failed read returns it.
    Querying {
        resting: Box<Phase>,
    },
    PendingUpdates,
    Updating,
    WaitingReboot {
        reason: Arc<str>,
    },
    Rebooting,
    Verifying,
    Failed(FailedInfo),
}

/// The state machine's whole memory for one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    pub phase: Phase,
    /// When the host entered `phase`.
    pub since: Option<DateTime<Utc>>,
    /// How often this host was retried after failing; kept across retries.
    pub retry_count: u32,
    /// When an update last finished successfully (packages and stacks done).
    pub last_update: Option<DateTime<Utc>>,
    pub last_error: Option<LastError>,
}

/// A requested move. Named for what happened, so the table below reads like DESIGN.md §5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Start reading inventory and pending packages.
    Query,
    /// The query finished; `pending` says whether anything is upgradable.
    Queried {
        pending: bool,
    },
    /// A read failed: back to the resting state, the error kept.
    ReadFailed {
        error: Arc<str>,
        transient: bool,
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
    /// A mutation failed.
    Fail {
        error: Arc<str>,
    },
    Retry,
    Acknowledge,
    /// Start repairing the package database (`dpkg --configure -a`, …): from a failed host
    /// or any resting one (a repair is idempotent), never from a busy one.
    StartRepair,
    /// The repair ran and the package database checks whole again. Not an update: the host's
    /// last update stays when it was.
    Repaired,
    /// Start rolling compose services back to their images before the last update: from a
    /// failed host (the update that broke a stack failed it) or any resting one.
    StartRollback,
    /// The rollback ran and every service runs its old image. Not an update either.
    RolledBack,
    /// A job the host failed on (tendhost could not follow it to its end) turned out to be
    /// still running or over after all: back into the state the job belongs to, so its real
    /// outcome settles the host.
    Reattach {
        rebooting: bool,
    },
}

/// Why a move was refused, in words for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl Default for HostState {
    fn default() -> Self {
        HostState {
            phase: Phase::Idle,
            since: None,
            retry_count: 0,
            last_update: None,
            last_error: None,
        }
    }
}

impl StateKind {
    /// Every state once, in display order (the console's header totals, the metrics' one-hot
    /// gauge).
    pub const ALL: [StateKind; 8] = [
        StateKind::Idle,
        StateKind::Querying,
        StateKind::PendingUpdates,
        StateKind::Updating,
        StateKind::WaitingReboot,
        StateKind::Rebooting,
        StateKind::Verifying,
        StateKind::Failed,
    ];

    /// The lowercase name used in JSON and messages (`pending_updates`).
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Idle => "idle",
            StateKind::Querying => "querying",
            StateKind::PendingUpdates => "pending_updates",
            StateKind::Updating => "updating",
            StateKind::WaitingReboot => "waiting_reboot",
            StateKind::Rebooting => "rebooting",
            StateKind::Verifying => "verifying",
            StateKind::Failed => "failed",
        }
    }

    /// A step in progress: the host must not be given another mutating command.
    pub fn is_busy(self) -> bool {
        matches!(
            self,
            StateKind::Querying | StateKind::Updating | StateKind::Rebooting | StateKind::Verifying
        )
    }

    /// A state a mutation is in: tendhost dying here leaves the host to be checked.
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            StateKind::Updating | StateKind::Rebooting | StateKind::Verifying
        )
    }
}

impl std::fmt::Display for StateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str().replace('_', " "))
    }
}

impl Phase {
    pub fn kind(&self) -> StateKind {
        match self {
            Phase::Idle => StateKind::Idle,
            Phase::Querying { .. } => StateKind::Querying,
            Phase::PendingUpdates => StateKind::PendingUpdates,
            Phase::Updating => StateKind::Updating,
            Phase::WaitingReboot { .. } => StateKind::WaitingReboot,
            Phase::Rebooting => StateKind::Rebooting,
            Phase::Verifying => StateKind::Verifying,
            Phase::Failed(_) => StateKind::Failed,
        }
    }

    /// The text that goes with the state: the error or why the host waits.
    pub fn reason(&self) -> Option<Arc<str>> {
        match self {
            Phase::WaitingReboot { reason } => Some(reason.clone()),
            Phase::Failed(info) => Some(info.error.clone()),
            _ => None,
        }
    }

    fn querying(resting: Phase) -> Phase {
        Phase::Querying {
            resting: Box::new(resting),
        }
    }
}

impl Transition {
    /// What the operator asked for, for refusal messages.
    fn verb(&self) -> &'static str {
        match self {
            Transition::Query => "refresh",
            Transition::Queried { .. } => "finish a refresh",
            Transition::ReadFailed { .. } => "record a failed read",
            Transition::StartUpdate => "update",
            Transition::Updated => "finish an update",
            Transition::NeedReboot { .. } => "wait for a reboot",
            Transition::StartReboot => "reboot",
            Transition::CameBack => "verify a reboot",
            Transition::Verified => "finish verifying",
            Transition::Fail { .. } => "fail",
            Transition::Retry => "retry",
            Transition::Acknowledge => "acknowledge",
            Transition::Reattach { .. } => "reattach to a job",
            Transition::StartRepair => "repair",
            Transition::Repaired => "finish a repair",
            Transition::StartRollback => "roll back",
            Transition::RolledBack => "finish a rollback",
        }
    }
}

impl HostState {
    pub fn kind(&self) -> StateKind {
        self.phase.kind()
    }

    /// The error of a failed host.
    pub fn error(&self) -> Option<&str> {
        match &self.phase {
            Phase::Failed(info) => Some(&info.error),
            _ => None,
        }
    }

    pub fn acknowledged(&self) -> bool {
        matches!(&self.phase, Phase::Failed(info) if info.acknowledged)
    }

    /// Reads keep failing with network trouble: the console says so, waves still try it.
    pub fn unreachable(&self) -> bool {
        self.last_error
            .as_ref()
            .is_some_and(|e| e.transient && e.tries >= UNREACHABLE_AFTER)
    }

    /// Applies `transition` at `at` if DESIGN.md §5 allows it from the current state.
    pub fn apply(&mut self, transition: Transition, at: DateTime<Utc>) -> Result<(), Refusal> {
        use Phase as P;
        use Transition as T;
        let next = match (&self.phase, transition) {
            (resting @ (P::Idle | P::PendingUpdates | P::WaitingReboot { .. }), T::Query) => {
                P::querying(resting.clone())
            }
            (P::Querying { .. }, T::Queried { pending }) => {
                self.last_error = None;
                if pending { P::PendingUpdates } else { P::Idle }
            }
            (P::Querying { resting }, T::ReadFailed { error, transient }) => {
                let resting = (**resting).clone();
                self.note_read_failure(error, transient, at);
                resting
            }
            (
                resting @ (P::Idle | P::PendingUpdates | P::WaitingReboot { .. }),
                T::ReadFailed { error, transient },
            ) => {
                let resting = resting.clone();
                self.note_read_failure(error, transient, at);
                resting
            }
            (P::Querying { .. }, T::NeedReboot { reason }) => {
                self.last_error = None;
                P::WaitingReboot { reason }
            }
            (P::Updating, T::NeedReboot { reason }) => {
                self.last_update = Some(at);
                P::WaitingReboot { reason }
            }
            (P::Idle | P::PendingUpdates, T::StartUpdate) => P::Updating,
            (P::Updating, T::Updated) => {
                self.last_update = Some(at);
                P::Idle
            }
            (P::WaitingReboot { .. }, T::StartReboot) => P::Rebooting,
            (P::Rebooting, T::CameBack) => P::Verifying,
            (P::Verifying, T::Verified) => P::Idle,
            (previous @ (P::Updating | P::Rebooting | P::Verifying), T::Fail { error }) => {
                P::Failed(FailedInfo {
                    previous_state: previous.kind(),
                    error,
                    failed_at: at,
                    acknowledged: false,
                })
            }
            (P::Failed(_), T::Retry) => {
                self.retry_count += 1;
                P::Idle
            }
            (
                P::Failed(_) | P::Idle | P::PendingUpdates | P::WaitingReboot { .. },
                T::StartRepair | T::StartRollback,
            ) => P::Updating,
            (P::Updating, T::Repaired | T::RolledBack) => P::Idle,
            (P::Failed(_), T::Reattach { rebooting }) => {
                if rebooting {
                    P::Rebooting
                } else {
                    P::Updating
                }
            }
            (P::Failed(info), T::Acknowledge) => P::Failed(FailedInfo {
                acknowledged: true,
                ..info.clone()
            }),
            (phase, transition) => return Err(refusal(phase, &transition)),
        };
        if next.kind() != self.phase.kind() {
            self.since = Some(at);
        }
        self.phase = next;
        Ok(())
    }

    fn note_read_failure(&mut self, error: Arc<str>, transient: bool, at: DateTime<Utc>) {
        let tries = self.last_error.as_ref().map_or(0, |e| e.tries) + 1;
        self.last_error = Some(LastError {
            error,
            at,
            tries,
            transient,
        });
    }

    /// Records a failure from any state. Only for what the table cannot foresee: a step that
    /// panicked, or a host found mid-mutation in a snapshot after tendhost died.
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
        self.since = Some(at);
    }

    /// After a restart: a host caught reading goes back to where it rested (a read changes
    /// nothing). One caught mid-mutation with a detached job on record stays as it was: its
    /// supervisor asks the host how the job went before anything else. Without one it cannot be
    /// trusted and is failed for the operator to verify.
    pub fn restore(&mut self, now: DateTime<Utc>, job_on_record: bool) {
        let kind = self.kind();
        if let Phase::Querying { resting } = &self.phase {
            self.phase = (**resting).clone();
        } else if kind.is_mutating() && !job_on_record {
            let error = format!("interrupted during {kind}: tendhost stopped; verify the host");
            self.force_fail(error.into(), now);
        }
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
            Phase::querying(Phase::PendingUpdates),
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
            Transition::ReadFailed {
                error: "connection refused".into(),
                transient: true,
            },
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
            },
            Transition::Retry,
            Transition::Acknowledge,
            Transition::Reattach { rebooting: false },
            Transition::Reattach { rebooting: true },
            Transition::StartRepair,
            Transition::Repaired,
            Transition::StartRollback,
            Transition::RolledBack,
        ]
    }

    /// The whole table: every (state, transition) pair, legal ones with their target.
    fn expected(from: StateKind, t: &Transition) -> Option<StateKind> {
        use StateKind as S;
        use Transition as T;
        Some(match (from, t) {
            (S::Idle | S::PendingUpdates | S::WaitingReboot, T::Query) => S::Querying,
            (S::Querying, T::Queried { pending: true }) => S::PendingUpdates,
            (S::Querying, T::Queried { pending: false }) => S::Idle,
            // Back to where the query started (the table's Querying rests on PendingUpdates).
            (S::Querying, T::ReadFailed { .. }) => S::PendingUpdates,
            (S::Idle | S::PendingUpdates | S::WaitingReboot, T::ReadFailed { .. }) => from,
            (S::Querying | S::Updating, T::NeedReboot { .. }) => S::WaitingReboot,
            (S::Idle | S::PendingUpdates, T::StartUpdate) => S::Updating,
            (S::Updating, T::Updated) => S::Idle,
            (S::WaitingReboot, T::StartReboot) => S::Rebooting,
            (S::Rebooting, T::CameBack) => S::Verifying,
            (S::Verifying, T::Verified) => S::Idle,
            (S::Updating | S::Rebooting | S::Verifying, T::Fail { .. }) => S::Failed,
            (S::Failed, T::Retry) => S::Idle,
            (S::Failed, T::Acknowledge) => S::Failed,
            (S::Failed, T::Reattach { rebooting: false }) => S::Updating,
            (S::Failed, T::Reattach { rebooting: true }) => S::Rebooting,
            (
                S::Failed | S::Idle | S::PendingUpdates | S::WaitingReboot,
                T::StartRepair | T::StartRollback,
            ) => S::Updating,
            (S::Updating, T::Repaired | T::RolledBack) => S::Idle,
            _ => return None,
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
                    ..HostState::default()
                };
                let from = phase.kind();
                let result = state.apply(t.clone(), at());
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
        // DESIGN.md §5 lists 29: the rollback's five (start from four states, finish) came later.
        assert_eq!(
            legal, 34,
            "the number of legal moves changed; update DESIGN.md §5"
        );
    }

    #[test]
    fn failure_keeps_its_context_and_retry_counts() {
        let mut state = HostState::default();
        state.apply(Transition::Query, at()).unwrap();
        state
            .apply(Transition::Queried { pending: true }, at())
            .unwrap();
        state.apply(Transition::StartUpdate, at()).unwrap();
        state
            .apply(
                Transition::Fail {
                    error: "dpkg broke".into(),
                },
                at(),
            )
            .unwrap();
        let Phase::Failed(info) = &state.phase else {
            panic!("not failed")
        };
        assert_eq!(info.previous_state, StateKind::Updating);
        assert_eq!(&*info.error, "dpkg broke");
        assert!(!info.acknowledged);
        state.apply(Transition::Acknowledge, at()).unwrap();
        assert!(state.acknowledged() && state.error() == Some("dpkg broke"));
        state.apply(Transition::Retry, at()).unwrap();
        assert_eq!(state.phase, Phase::Idle);
        assert_eq!(state.retry_count, 1);
    }

    #[test]
    fn a_failed_read_returns_to_rest_counting_tries_until_one_succeeds() {
        let mut state = HostState {
            phase: Phase::PendingUpdates,
            ..HostState::default()
        };
        for tries in 1..=UNREACHABLE_AFTER {
            assert!(!state.unreachable());
            state.apply(Transition::Query, at()).unwrap();
            state
                .apply(
                    Transition::ReadFailed {
                        error: "connection refused".into(),
                        transient: true,
                    },
                    at(),
                )
                .unwrap();
            assert_eq!(state.kind(), StateKind::PendingUpdates, "never Failed");
            assert_eq!(state.last_error.as_ref().map(|e| e.tries), Some(tries));
        }
        assert!(state.unreachable());
        state.apply(Transition::Query, at()).unwrap();
        state
            .apply(Transition::Queried { pending: false }, at())
            .unwrap();
        assert_eq!(state.last_error, None);
        assert!(!state.unreachable());
    }

    #[test]
    fn a_check_that_says_no_is_never_unreachable() {
        let mut state = HostState::default();
        for _ in 0..5 {
            state
                .apply(
                    Transition::ReadFailed {
                        error: "pre-check failed".into(),
                        transient: false,
                    },
                    at(),
                )
                .unwrap();
        }
        assert_eq!(state.kind(), StateKind::Idle);
        assert!(!state.unreachable());
    }

    #[test]
    fn since_moves_only_with_the_phase_and_updates_are_stamped() {
        let t0 = at();
        let t1 = t0 + chrono::Duration::seconds(60);
        let mut state = HostState {
            phase: Phase::PendingUpdates,
            ..HostState::default()
        };
        state.apply(Transition::StartUpdate, t0).unwrap();
        assert_eq!(state.since, Some(t0));
        state.apply(Transition::Updated, t1).unwrap();
        assert_eq!(state.since, Some(t1));
        assert_eq!(state.last_update, Some(t1));
    }

    #[test]
    fn refuses_update_while_rebooting_with_a_reason() {
        let mut state = HostState {
            phase: Phase::Rebooting,
            ..HostState::default()
        };
        let err = state.apply(Transition::StartUpdate, at()).unwrap_err();
        assert_eq!(err.0, "cannot update: it is busy (rebooting)");
        let mut state = HostState {
            phase: failed(),
            ..HostState::default()
        };
        assert_eq!(
            state.apply(Transition::Query, at()).unwrap_err().0,
            "cannot refresh: it failed; retry it first"
        );
    }

    #[test]
    fn a_repair_starts_from_failed_or_resting_and_is_not_an_update() {
        let before = at();
        let mut state = HostState {
            phase: failed(),
            last_update: Some(before),
            ..HostState::default()
        };
        state.apply(Transition::StartRepair, at()).unwrap();
        assert_eq!(state.kind(), StateKind::Updating);
        let later = at() + chrono::Duration::seconds(30);
        state.apply(Transition::Repaired, later).unwrap();
        assert_eq!(state.kind(), StateKind::Idle);
        assert_eq!(state.last_update, Some(before), "a repair is not an update");
        assert_eq!(state.retry_count, 0);
        let mut busy = HostState {
            phase: Phase::Rebooting,
            ..HostState::default()
        };
        assert_eq!(
            busy.apply(Transition::StartRepair, at()).unwrap_err().0,
            "cannot repair: it is busy (rebooting)"
        );
        let mut idle = HostState::default();
        assert_eq!(
            idle.apply(Transition::Repaired, at()).unwrap_err().0,
            "cannot finish a repair: it is idle"
        );
    }

    #[test]
    fn force_fail_works_from_any_state() {
        for phase in phases() {
            let mut state = HostState {
                phase: phase.clone(),
                ..HostState::default()
            };
            state.force_fail("panic".into(), at());
            assert_eq!(state.kind(), StateKind::Failed);
        }
    }

    #[test]
    fn restore_fails_hosts_caught_mid_update_and_rests_hosts_caught_reading() {
        let mut state = HostState {
            phase: Phase::Updating,
            ..HostState::default()
        };
        state.restore(at(), false);
        assert_eq!(
            state.error(),
            Some("interrupted during updating: tendhost stopped; verify the host")
        );
        let mut state = HostState {
            phase: Phase::querying(Phase::PendingUpdates),
            ..HostState::default()
        };
        state.restore(at(), false);
        assert_eq!(state.kind(), StateKind::PendingUpdates);
    }
}
