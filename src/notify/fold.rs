//! Events into notices. The hub, the one receiver of every event for the console and `--batch`
//! alike, shows each event to a [`Folder`]; the folder remembers what it needs (each wave's
//! host outcomes, which hosts already wait for a reboot) and hands finished notices to the
//! [`Notifier`].

use std::collections::{HashMap, HashSet};

use crate::config::{HostId, NoticeKind};
use crate::fleet::{Event, Outcome, StateKind, WaveProgress, WaveStatus};

use super::Notifier;
use super::message::{Notice, NoticeHost};

/// The reason a host waits in `waiting_reboot` for the moment before a reboot it is about to
/// take: not worth telling anyone (see `engine::step::update`).
pub const REBOOTING_NOW: &str = "rebooting";

/// What the folder keeps of a running wave.
#[derive(Default)]
struct WaveLog {
    hosts: Vec<NoticeHost>,
    last: Option<WaveStatus>,
}

pub struct Folder {
    notifier: Notifier,
    waves: HashMap<u64, WaveLog>,
    /// Hosts already reported as needing a reboot, until they leave `waiting_reboot`.
    waiting: HashSet<HostId>,
}

impl Folder {
    /// `initial`: each host's state at start, so a host restored waiting for a reboot is not
    /// reported again.
    pub fn new<'a>(
        notifier: Notifier,
        initial: impl Iterator<Item = (&'a HostId, StateKind)>,
    ) -> Self {
        Folder {
            waiting: initial
                .filter(|(_, kind)| *kind == StateKind::WaitingReboot)
                .map(|(host, _)| host.clone())
                .collect(),
            notifier,
            waves: HashMap::new(),
        }
    }

    pub fn observe(&mut self, event: &Event) {
        if !self.notifier.is_enabled() {
            return;
        }
        if let Some(notice) = self.fold(event) {
            self.notifier.send(notice);
        }
    }

    fn fold(&mut self, event: &Event) -> Option<Notice> {
        match event {
            Event::WaveHostFinished {
                wave_id,
                host,
                outcome,
            } => {
                let (word, detail) = match outcome {
                    Outcome::Succeeded => ("updated", None),
                    Outcome::Failed { error } => ("failed", Some(error.as_str())),
                    Outcome::Skipped { reason } => ("skipped", Some(reason.as_str())),
                    Outcome::Refused { reason } => ("refused", Some(reason.as_str())),
                };
                let log = self.waves.entry(*wave_id).or_default();
                log.hosts.push(NoticeHost::new(host, word, detail));
                None
            }
            Event::Wave(progress) => self.wave(progress),
            Event::StateChanged {
                host,
                from,
                to,
                state,
            } => {
                let reason = state.phase.reason();
                match to {
                    StateKind::Failed if *from != StateKind::Failed => {
                        let error = reason.as_deref().unwrap_or("no reason given");
                        let line = error.lines().next().unwrap_or("");
                        Some(Notice::new(
                            NoticeKind::HostFailed,
                            format!("host {host} failed: {line}"),
                            vec![NoticeHost::new(host, "failed", Some(error))],
                        ))
                    }
                    StateKind::WaitingReboot => {
                        let why = reason.as_deref().unwrap_or("a reboot is required");
                        if why == REBOOTING_NOW || !self.waiting.insert(host.clone()) {
                            return None;
                        }
                        Some(Notice::new(
                            NoticeKind::RebootNeeded,
                            format!("host {host} needs a reboot: {why}"),
                            vec![NoticeHost::new(host, "waiting_reboot", Some(why))],
                        ))
                    }
                    // A refresh passes through querying and comes back: still waiting.
                    StateKind::Querying => None,
                    _ => {
                        self.waiting.remove(host);
                        None
                    }
                }
            }
            _ => None,
        }
    }

    fn wave(&mut self, progress: &WaveProgress) -> Option<Notice> {
        let log = self.waves.entry(progress.wave_id).or_default();
        if log.last == Some(progress.status) {
            return None;
        }
        log.last = Some(progress.status);
        let id = progress.wave_id;
        let counts = format!(
            "{} updated, {} failed, {} skipped",
            progress.succeeded, progress.failed, progress.skipped
        );
        let not_run = progress.total.saturating_sub(progress.done);
        let counts = if not_run > 0 {
            format!("{counts}, {not_run} not run")
        } else {
            counts
        };
        let reason = progress
            .reason
            .as_deref()
            .unwrap_or("its failure threshold");
        let (kind, summary, done) = match progress.status {
            WaveStatus::Finished => (
                NoticeKind::WaveFinished,
                format!("wave {id} finished: {counts}"),
                true,
            ),
            WaveStatus::Aborted => (
                NoticeKind::WaveFinished,
                format!("wave {id} aborted: {counts}"),
                true,
            ),
            WaveStatus::Halted => (
                NoticeKind::WaveHalted,
                format!("wave {id} halted: {reason} ({counts})"),
                true,
            ),
            WaveStatus::Threshold => (
                NoticeKind::WaveHalted,
                format!("wave {id} paused at its threshold: {reason} ({counts})"),
                false,
            ),
            _ => return None,
        };
        let hosts = if done {
            self.waves.remove(&id).map(|l| l.hosts).unwrap_or_default()
        } else {
            log.hosts.clone()
        };
        Some(Notice::new(kind, summary, hosts))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fleet::{FailedInfo, HostState, Phase};

    fn progress(status: WaveStatus, done: usize, reason: Option<&str>) -> Event {
        Event::Wave(WaveProgress {
            wave_id: 3,
            status,
            batch: 1,
            batches: 1,
            done,
            succeeded: 1,
            failed: 1,
            skipped: 1,
            total: 4,
            in_flight: Vec::new(),
            reason: reason.map(str::to_string),
            skipped_hosts: Arc::from(Vec::new()),
            failed_hosts: Arc::from(Vec::new()),
        })
    }

    fn finished(host: &str, outcome: Outcome) -> Event {
        Event::WaveHostFinished {
            wave_id: 3,
            host: host.into(),
            outcome,
        }
    }

    fn moved(host: &str, from: StateKind, phase: Phase) -> Event {
        let state = HostState {
            phase,
            ..HostState::default()
        };
        Event::StateChanged {
            host: host.into(),
            from,
            to: state.phase.kind(),
            state: Arc::new(state),
        }
    }

    fn folder() -> Folder {
        let waiting: HostId = "old".into();
        Folder::new(
            Notifier::disabled(),
            [(&waiting, StateKind::WaitingReboot)].into_iter(),
        )
    }

    #[test]
    fn a_wave_is_one_notice_with_every_hosts_outcome() {
        let mut f = folder();
        assert_eq!(f.fold(&progress(WaveStatus::Started, 0, None)), None);
        assert_eq!(f.fold(&finished("web1", Outcome::Succeeded)), None);
        f.fold(&finished(
            "db1",
            Outcome::Failed {
                error: "dpkg failed".into(),
            },
        ));
        f.fold(&finished(
            "app",
            Outcome::Skipped {
                reason: "outside window".into(),
            },
        ));
        let paused = f
            .fold(&progress(
                WaveStatus::Threshold,
                3,
                Some("1 failed of 4 (max 0)"),
            ))
            .unwrap();
        assert_eq!(paused.kind, NoticeKind::WaveHalted);
        assert_eq!(
            paused.summary,
            "wave 3 paused at its threshold: 1 failed of 4 (max 0) (1 updated, 1 failed, 1 \
             skipped, 1 not run)"
        );
        // The same status again (a repeated progress) is not news.
        assert_eq!(f.fold(&progress(WaveStatus::Threshold, 3, None)), None);
        f.fold(&progress(WaveStatus::Running, 3, None));
        let done = f.fold(&progress(WaveStatus::Finished, 4, None)).unwrap();
        assert_eq!(done.kind, NoticeKind::WaveFinished);
        assert_eq!(
            done.summary,
            "wave 3 finished: 1 updated, 1 failed, 1 skipped"
        );
        assert_eq!(
            done.host_lines(),
            "web1: updated\ndb1: failed: dpkg failed\napp: skipped: outside window"
        );
        assert!(f.waves.is_empty());
    }

    #[test]
    fn failures_and_reboots_are_told_once_each() {
        let mut f = folder();
        let failed = Phase::Failed(FailedInfo {
            previous_state: StateKind::Updating,
            error: "upgrade: dpkg returned an error code (1)\ndetail".into(),
            failed_at: chrono::Utc::now(),
            acknowledged: false,
        });
        let notice = f
            .fold(&moved("db1", StateKind::Updating, failed.clone()))
            .unwrap();
        assert_eq!(notice.kind, NoticeKind::HostFailed);
        assert_eq!(
            notice.summary,
            "host db1 failed: upgrade: dpkg returned an error code (1)"
        );
        assert_eq!(f.fold(&moved("db1", StateKind::Failed, failed)), None);

        let waiting = |why: &str| Phase::WaitingReboot { reason: why.into() };
        assert_eq!(
            f.fold(&moved("web1", StateKind::Updating, waiting(REBOOTING_NOW))),
            None
        );
        let notice = f
            .fold(&moved(
                "web1",
                StateKind::Updating,
                waiting("auto_reboot is off"),
            ))
            .unwrap();
        assert_eq!(
            notice.summary,
            "host web1 needs a reboot: auto_reboot is off"
        );
        // A refresh of a host still waiting, or one restored waiting, says nothing new.
        f.fold(&moved(
            "web1",
            StateKind::WaitingReboot,
            Phase::Querying {
                resting: Box::new(waiting("x")),
            },
        ));
        assert_eq!(
            f.fold(&moved("web1", StateKind::Querying, waiting("x"))),
            None
        );
        assert_eq!(
            f.fold(&moved("old", StateKind::Querying, waiting("x"))),
            None
        );
        // Rebooted and back: the next need is news again.
        f.fold(&moved("web1", StateKind::Verifying, Phase::Idle));
        assert!(
            f.fold(&moved("web1", StateKind::Updating, waiting("y")))
                .is_some()
        );
    }
}
