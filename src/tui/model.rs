//! The fleet as the screen knows it: one row per host, fed only by engine [`Event`]s.
//!
//! `FleetModel::apply` is the only way engine news reaches the screen (STYLE.md §6). The model owns
//! per-host rows (state, inventory, pending packages, last error, bounded output scrollback) and
//! the latest wave progress. It knows nothing of keys, cursors or drawing, and never talks to a
//! host: commands go out through `request.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::{Config, HostId};
use crate::engine::bus::{CommandKind, Event, StateKind, StepOutcome, WaveProgress, WaveStatus};
use crate::inventory::Inventory;
use crate::pkg::{PendingPackage, RebootStatus, UpdateProgress, UpgradePlan};
use crate::tui::scrollback::Scrollback;

/// Lines of output kept per host; older lines are dropped and counted.
pub const DEFAULT_LOG_LINES: usize = 2_000;

/// Every state, in display order (also the order of the header totals).
pub const ALL_STATES: [StateKind; 8] = [
    StateKind::Idle,
    StateKind::Querying,
    StateKind::PendingUpdates,
    StateKind::Updating,
    StateKind::WaitingReboot,
    StateKind::Rebooting,
    StateKind::Verifying,
    StateKind::Failed,
];

/// What the screen knows about one host.
#[derive(Debug, Clone)]
pub struct HostRow {
    pub name: HostId,
    /// `user@addr:port` or `local`, for the detail pane.
    pub target: String,
    pub tags: Vec<String>,
    pub groups: Vec<String>,
    pub state: StateKind,
    pub since: Option<DateTime<Utc>>,
    /// The error of the last failure (kept after retry so the operator can still read it).
    pub error: Option<Arc<str>>,
    /// Why the host waits for a reboot, when it does.
    pub reboot_reason: Option<Arc<str>>,
    pub acknowledged: bool,
    pub inventory: Option<Arc<Inventory>>,
    /// `None` until the first refresh: the table shows "—", not a misleading 0.
    pub pending: Option<Arc<[PendingPackage]>>,
    pub security: usize,
    pub reboot: RebootStatus,
    /// The last plan, and whether it came from a dry run.
    pub plan: Option<(Arc<UpgradePlan>, bool)>,
    /// When an update last finished successfully.
    pub last_update: Option<DateTime<Utc>>,
    /// The last refusal, shown in the detail pane and the status line.
    pub refused: Option<(CommandKind, Arc<str>)>,
    /// How this host's part in the last wave ended ("skipped: outside its window").
    pub wave_result: Option<String>,
    pub log: Scrollback,
    /// How far the running upgrade has got, while the host is updating.
    pub progress: Option<UpdateProgress>,
    /// `[host.policy] allow_removals`: the engine lets this host's upgrades remove packages
    /// without the operator's consent per command.
    pub removals_allowed_by_policy: bool,
}

impl HostRow {
    /// The OS as the table shows it (see [`Inventory::os_label`]), nothing before an inventory.
    pub fn os_label(&self) -> String {
        self.inventory
            .as_deref()
            .map(Inventory::os_label)
            .unwrap_or_default()
    }

    /// The OS id and the ids it is like, lowercase, for `os:` filters.
    pub fn os_ids(&self) -> impl Iterator<Item = &str> {
        self.inventory.iter().flat_map(|inv| {
            std::iter::once(inv.os.id.as_str()).chain(inv.os.id_like.iter().map(String::as_str))
        })
    }

    pub fn pending_count(&self) -> Option<usize> {
        self.pending.as_ref().map(|p| p.len())
    }
}

/// The whole fleet, in config order.
#[derive(Debug, Clone)]
pub struct FleetModel {
    hosts: Vec<HostRow>,
    index: HashMap<HostId, usize>,
    totals: [usize; ALL_STATES.len()],
    wave: Option<WaveProgress>,
    /// Bumped whenever something a row, a filter or the package view depends on changes
    /// (not on plain output lines), so views can cache what they derive from rows.
    generation: u64,
}

impl FleetModel {
    /// One idle row per configured host.
    pub fn from_config(config: &Config, log_lines: usize) -> Self {
        let rows = config.hosts.iter().map(|h| {
            let target = match h.transport {
                crate::config::Transport::Local => "local".to_string(),
                crate::config::Transport::Ssh => format!("{}@{}:{}", h.user, h.addr, h.port),
            };
            let mut row = HostRow::new(
                h.name.clone(),
                target,
                h.tags.clone(),
                h.groups.clone(),
                log_lines,
            );
            row.removals_allowed_by_policy = h.policy.allow_removals;
            row
        });
        Self::from_rows(rows.collect())
    }

    pub fn from_rows(hosts: Vec<HostRow>) -> Self {
        let index = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.clone(), i))
            .collect();
        let mut totals = [0; ALL_STATES.len()];
        for host in &hosts {
            totals[state_slot(host.state)] += 1;
        }
        Self {
            hosts,
            index,
            totals,
            wave: None,
            generation: 0,
        }
    }

    pub fn hosts(&self) -> &[HostRow] {
        &self.hosts
    }

    pub fn host(&self, index: usize) -> Option<&HostRow> {
        self.hosts.get(index)
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn wave(&self) -> Option<&WaveProgress> {
        self.wave.as_ref()
    }

    /// How many hosts are in `state`.
    pub fn total(&self, state: StateKind) -> usize {
        self.totals[state_slot(state)]
    }

    /// Hosts with a step in flight; quitting now would interrupt them.
    pub fn busy_hosts(&self) -> usize {
        [
            StateKind::Querying,
            StateKind::Updating,
            StateKind::Rebooting,
            StateKind::Verifying,
        ]
        .iter()
        .map(|&s| self.total(s))
        .sum()
    }

    /// A wave that has not ended yet.
    pub fn wave_running(&self) -> bool {
        self.wave.as_ref().is_some_and(|w| {
            matches!(
                w.status,
                WaveStatus::Started
                    | WaveStatus::Running
                    | WaveStatus::Paused
                    | WaveStatus::Delaying
            )
        })
    }

    /// Sets a host's state without an event, e.g. from the snapshot read at start.
    pub fn seed_state(&mut self, name: &str, state: StateKind, error: Option<Arc<str>>) {
        if let Some(i) = self.position(name) {
            self.set_state(i, state);
            if error.is_some() {
                self.hosts[i].error = error;
            }
            self.generation += 1;
        }
    }

    /// A row to fill from the snapshot read at start. State changes go through `seed_state`
    /// (which keeps the totals right), everything else may be set here.
    pub fn seed_row(&mut self, name: &str) -> Option<&mut HostRow> {
        self.generation += 1;
        self.row_mut(name)
    }

    /// Folds one engine event into the model. Events about unknown hosts are ignored: the engine
    /// and the screen were built from the same config, so they can only come from a race at exit.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Output { host, stream, line } => {
                if let Some(row) = self.row_mut(host) {
                    if let Some(progress) = row.progress.as_mut() {
                        progress.observe(line);
                    }
                    row.log.push(*stream, line.clone());
                }
                return; // output does not change anything rows are filtered or sorted by
            }
            Event::StateChanged {
                host,
                from,
                to,
                at,
                reason,
            } => {
                let Some(i) = self.position(host) else { return };
                self.set_state(i, *to);
                let row = &mut self.hosts[i];
                row.since = Some(*at);
                row.progress = (*to == StateKind::Updating).then(|| {
                    let planned = match &row.plan {
                        Some((plan, false)) => plan.upgrades.len() + plan.installs.len(),
                        _ => row.pending_count().unwrap_or(0),
                    };
                    UpdateProgress::new(planned)
                });
                match to {
                    StateKind::Failed => {
                        row.error = reason.clone();
                        row.acknowledged = false;
                    }
                    StateKind::WaitingReboot => row.reboot_reason = reason.clone(),
                    _ => {}
                }
                if *from == StateKind::Updating
                    && matches!(to, StateKind::Idle | StateKind::WaitingReboot)
                {
                    row.last_update = Some(*at);
                }
                if *to != StateKind::WaitingReboot && *from == StateKind::Verifying {
                    row.reboot = RebootStatus::default();
                }
            }
            Event::InventoryRefreshed { host, inventory } => {
                let Some(row) = self.row_mut(host) else {
                    return;
                };
                row.inventory = Some(inventory.clone());
            }
            Event::PendingRefreshed {
                host,
                packages,
                reboot,
            } => {
                let Some(row) = self.row_mut(host) else {
                    return;
                };
                row.security = packages.iter().filter(|p| p.security).count();
                row.pending = Some(packages.clone());
                row.reboot = reboot.clone();
            }
            Event::Planned {
                host,
                plan,
                dry_run,
            } => {
                let Some(row) = self.row_mut(host) else {
                    return;
                };
                row.plan = Some((plan.clone(), *dry_run));
            }
            Event::Refused {
                host,
                command,
                reason,
            } => {
                let Some(row) = self.row_mut(host) else {
                    return;
                };
                row.refused = Some((*command, reason.clone()));
            }
            Event::Acknowledged { host } => {
                let Some(row) = self.row_mut(host) else {
                    return;
                };
                row.acknowledged = true;
            }
            Event::Wave(progress) => self.wave = Some(progress.clone()),
            Event::WaveHostFinished { host, outcome, .. } => {
                let Some(row) = self.row_mut(host) else {
                    return;
                };
                row.wave_result = Some(match outcome {
                    StepOutcome::Succeeded => "succeeded".to_string(),
                    StepOutcome::Refused { reason } => format!("refused: {reason}"),
                    StepOutcome::Skipped { reason } => format!("skipped: {reason}"),
                    StepOutcome::Failed { error } => format!("failed: {error}"),
                });
            }
        }
        self.generation += 1;
    }

    fn row_mut(&mut self, name: &str) -> Option<&mut HostRow> {
        let i = self.position(name)?;
        self.hosts.get_mut(i)
    }

    fn set_state(&mut self, i: usize, to: StateKind) {
        let row = &mut self.hosts[i];
        self.totals[state_slot(row.state)] -= 1;
        self.totals[state_slot(to)] += 1;
        row.state = to;
    }
}

impl HostRow {
    pub fn new(
        name: HostId,
        target: String,
        tags: Vec<String>,
        groups: Vec<String>,
        log_lines: usize,
    ) -> Self {
        Self {
            name,
            target,
            tags,
            groups,
            state: StateKind::Idle,
            since: None,
            error: None,
            reboot_reason: None,
            acknowledged: false,
            inventory: None,
            pending: None,
            security: 0,
            reboot: RebootStatus::default(),
            plan: None,
            last_update: None,
            refused: None,
            wave_result: None,
            log: Scrollback::new(log_lines),
            progress: None,
            removals_allowed_by_policy: false,
        }
    }
}

fn state_slot(state: StateKind) -> usize {
    // ALL_STATES lists every variant once, so this always finds it.
    ALL_STATES.iter().position(|&s| s == state).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::Stream;
    use crate::tui::testing::{fleet, pending, state_changed};

    #[test]
    fn state_changes_move_totals_and_record_errors() {
        let mut model = fleet(3);
        assert_eq!(model.total(StateKind::Idle), 3);
        model.apply(&state_changed(
            "host-01",
            StateKind::Idle,
            StateKind::Querying,
            None,
        ));
        model.apply(&state_changed(
            "host-01",
            StateKind::Querying,
            StateKind::Failed,
            Some("connection refused"),
        ));
        assert_eq!(model.total(StateKind::Idle), 2);
        assert_eq!(model.total(StateKind::Failed), 1);
        let row = model.host(1).unwrap();
        assert_eq!(row.error.as_deref(), Some("connection refused"));
        assert!(!row.acknowledged);
        model.apply(&Event::Acknowledged {
            host: "host-01".into(),
        });
        assert!(model.host(1).unwrap().acknowledged);
    }

    #[test]
    fn pending_refresh_counts_security_updates() {
        let mut model = fleet(1);
        model.apply(&pending(
            "host-00",
            &[("openssl", true), ("curl", false)],
            true,
        ));
        let row = model.host(0).unwrap();
        assert_eq!(row.pending_count(), Some(2));
        assert_eq!(row.security, 1);
        assert!(row.reboot.required);
    }

    #[test]
    fn finished_update_stamps_last_update() {
        let mut model = fleet(1);
        model.apply(&state_changed(
            "host-00",
            StateKind::PendingUpdates,
            StateKind::Updating,
            None,
        ));
        assert!(model.host(0).unwrap().last_update.is_none());
        model.apply(&state_changed(
            "host-00",
            StateKind::Updating,
            StateKind::Idle,
            None,
        ));
        assert!(model.host(0).unwrap().last_update.is_some());
    }

    #[test]
    fn output_is_bounded_and_does_not_bump_generation() {
        let mut model = FleetModel::from_rows(vec![HostRow::new(
            "a".into(),
            "local".into(),
            vec![],
            vec![],
            100,
        )]);
        let before = model.generation();
        for i in 0..250 {
            model.apply(&Event::Output {
                host: "a".into(),
                stream: Stream::Stdout,
                line: format!("line {i}").into(),
            });
        }
        let log = &model.host(0).unwrap().log;
        assert_eq!(log.len(), 100);
        assert_eq!(log.dropped(), 150);
        assert_eq!(&*log.get(0).unwrap().text, "line 150");
        assert_eq!(model.generation(), before);
    }

    #[test]
    fn an_upgrade_reports_progress_from_its_output_until_it_ends() {
        let mut model = fleet(1);
        model.apply(&pending(
            "host-00",
            &[("openssl", true), ("curl", false)],
            false,
        ));
        model.apply(&state_changed(
            "host-00",
            StateKind::PendingUpdates,
            StateKind::Updating,
            None,
        ));
        let percent = |m: &FleetModel| m.host(0).unwrap().progress.and_then(|p| p.percent());
        assert_eq!(percent(&model), Some(0));
        model.apply(&Event::Output {
            host: "host-00".into(),
            stream: Stream::Stdout,
            line: "Setting up openssl (1.1-1) ...".into(),
        });
        assert_eq!(percent(&model), Some(50));
        model.apply(&state_changed(
            "host-00",
            StateKind::Updating,
            StateKind::Idle,
            None,
        ));
        assert_eq!(
            percent(&model),
            None,
            "progress belongs to the running upgrade only"
        );
    }

    #[test]
    fn events_for_unknown_hosts_are_ignored() {
        let mut model = fleet(1);
        model.apply(&state_changed(
            "ghost",
            StateKind::Idle,
            StateKind::Failed,
            Some("x"),
        ));
        assert_eq!(model.total(StateKind::Failed), 0);
    }

    #[test]
    fn busy_and_wave_running() {
        let mut model = fleet(2);
        assert_eq!(model.busy_hosts(), 0);
        model.apply(&state_changed(
            "host-00",
            StateKind::Idle,
            StateKind::Updating,
            None,
        ));
        assert_eq!(model.busy_hosts(), 1);
        assert!(!model.wave_running());
        model.apply(&Event::Wave(crate::tui::testing::wave(WaveStatus::Paused)));
        assert!(model.wave_running());
        model.apply(&Event::Wave(crate::tui::testing::wave(
            WaveStatus::Finished,
        )));
        assert!(!model.wave_running());
    }
}
