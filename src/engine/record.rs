//! What is known about one host, rebuilt from events: the unit of the snapshot and of batch
//! results.
//!
//! [`HostRecord::apply`] is the only way a record changes, so the snapshot on disk, the batch
//! output and a restarted engine all see exactly what the events said. Nothing here does I/O.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::bus::{Event, StateKind};
use super::state::{FailedInfo, HostState, Phase};
use crate::config::HostId;
use crate::inventory::Inventory;
use crate::pkg::{PendingPackage, RebootStatus, UpgradePlan};

/// How many output lines per host the snapshot keeps; older ones are dropped and counted.
pub const RECENT_OUTPUT: usize = 200;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRecord {
    pub name: HostId,
    pub state: HostState,
    pub inventory: Option<Arc<Inventory>>,
    pub pending: Arc<[PendingPackage]>,
    pub reboot: RebootStatus,
    /// The last plan seen (dry run or real), so removals can be shown before an upgrade.
    pub plan: Option<Arc<UpgradePlan>>,
    pub last_refresh: Option<DateTime<Utc>>,
    /// When an upgrade last finished successfully.
    pub last_update: Option<DateTime<Utc>>,
    pub last_change: Option<DateTime<Utc>>,
    /// The newest output lines, oldest first.
    pub recent_output: VecDeque<String>,
    /// Lines dropped from `recent_output` because it was full.
    pub dropped_output: u64,
}

impl HostRecord {
    pub fn new(name: HostId) -> Self {
        HostRecord {
            name,
            state: HostState::default(),
            inventory: None,
            pending: Arc::from(Vec::new()),
            reboot: RebootStatus::default(),
            plan: None,
            last_refresh: None,
            last_update: None,
            last_change: None,
            recent_output: VecDeque::new(),
            dropped_output: 0,
        }
    }

    /// Folds one event about this host into the record. Events about other hosts are ignored.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::StateChanged {
                host,
                from,
                to,
                at,
                reason,
            } if *host == self.name => self.apply_move(*from, *to, *at, reason.clone()),
            Event::Output { host, line, .. } if *host == self.name => {
                if self.recent_output.len() >= RECENT_OUTPUT {
                    self.recent_output.pop_front();
                    self.dropped_output += 1;
                }
                self.recent_output.push_back(line.to_string());
            }
            Event::InventoryRefreshed { host, inventory } if *host == self.name => {
                self.inventory = Some(inventory.clone());
                self.last_refresh = Some(inventory.collected_at);
            }
            Event::PendingRefreshed {
                host,
                packages,
                reboot,
            } if *host == self.name => {
                self.pending = packages.clone();
                self.reboot = reboot.clone();
                self.last_refresh = Some(Utc::now());
            }
            Event::Planned { host, plan, .. } if *host == self.name => {
                self.plan = Some(plan.clone());
            }
            Event::Acknowledged { host } if *host == self.name => {
                if let Phase::Failed(info) = &mut self.state.phase {
                    info.acknowledged = true;
                }
            }
            _ => {}
        }
    }

    fn apply_move(
        &mut self,
        from: StateKind,
        to: StateKind,
        at: DateTime<Utc>,
        reason: Option<Arc<str>>,
    ) {
        let reason = reason.unwrap_or_else(|| Arc::from(""));
        self.last_change = Some(at);
        if from == to {
            return;
        }
        self.state.phase = match to {
            StateKind::Idle => Phase::Idle,
            StateKind::Querying => Phase::Querying,
            StateKind::PendingUpdates => Phase::PendingUpdates,
            StateKind::Updating => Phase::Updating,
            StateKind::WaitingReboot => Phase::WaitingReboot { reason },
            StateKind::Rebooting => Phase::Rebooting,
            StateKind::Verifying => Phase::Verifying,
            StateKind::Failed => Phase::Failed(FailedInfo {
                previous_state: from,
                error: reason,
                failed_at: at,
                acknowledged: false,
            }),
        };
        match (from, to) {
            (StateKind::Failed, StateKind::Idle) => self.state.retry_count += 1,
            (StateKind::Updating, StateKind::Idle | StateKind::WaitingReboot) => {
                self.last_update = Some(at);
                self.pending = Arc::from(Vec::new());
            }
            (StateKind::Verifying, StateKind::Idle) => self.reboot = RebootStatus::default(),
            _ => {}
        }
    }

    /// The error of a failed host.
    pub fn error(&self) -> Option<&str> {
        match &self.state.phase {
            Phase::Failed(info) => Some(&info.error),
            _ => None,
        }
    }

    /// After a restart: a host caught mid-step cannot be trusted, so it is failed for the operator
    /// to verify; a host caught querying simply goes back to idle (a query changes nothing).
    pub fn restore(&mut self, now: DateTime<Utc>) {
        let kind = self.state.kind();
        match kind {
            StateKind::Querying => self.state.phase = Phase::Idle,
            StateKind::Updating | StateKind::Rebooting | StateKind::Verifying => {
                let error = format!("interrupted during {kind}: tendhost stopped; verify the host");
                self.state.force_fail(error.into(), now);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(host: &HostId, from: StateKind, to: StateKind, reason: Option<&str>) -> Event {
        Event::StateChanged {
            host: host.clone(),
            from,
            to,
            at: Utc::now(),
            reason: reason.map(Arc::from),
        }
    }

    #[test]
    fn rebuilds_failure_context_and_retry_count_from_events() {
        let host: HostId = "web1".into();
        let mut record = HostRecord::new(host.clone());
        record.apply(&changed(
            &host,
            StateKind::PendingUpdates,
            StateKind::Updating,
            None,
        ));
        record.apply(&changed(
            &host,
            StateKind::Updating,
            StateKind::Failed,
            Some("dpkg"),
        ));
        record.apply(&Event::Acknowledged { host: host.clone() });
        assert!(matches!(&record.state.phase, Phase::Failed(i)
            if i.acknowledged && i.previous_state == StateKind::Updating && &*i.error == "dpkg"));
        record.apply(&changed(&host, StateKind::Failed, StateKind::Idle, None));
        assert_eq!(record.state.retry_count, 1);
        record.apply(&changed(
            &"other".into(),
            StateKind::Idle,
            StateKind::Querying,
            None,
        ));
        assert_eq!(record.state.kind(), StateKind::Idle);
    }

    #[test]
    fn recent_output_is_bounded_and_counts_drops() {
        let host: HostId = "web1".into();
        let mut record = HostRecord::new(host.clone());
        for i in 0..RECENT_OUTPUT + 5 {
            record.apply(&Event::Output {
                host: host.clone(),
                stream: crate::remote::Stream::Stdout,
                line: format!("line {i}").into(),
            });
        }
        assert_eq!(record.recent_output.len(), RECENT_OUTPUT);
        assert_eq!(record.dropped_output, 5);
        assert_eq!(
            record.recent_output.front().map(String::as_str),
            Some("line 5")
        );
    }

    #[test]
    fn restore_fails_hosts_caught_mid_update() {
        let mut record = HostRecord::new("web1".into());
        record.state.phase = Phase::Updating;
        record.restore(Utc::now());
        assert_eq!(
            record.error(),
            Some("interrupted during updating: tendhost stopped; verify the host")
        );
        let mut record = HostRecord::new("web2".into());
        record.state.phase = Phase::Querying;
        record.restore(Utc::now());
        assert_eq!(record.state.kind(), StateKind::Idle);
    }
}
