//! The fleet as the screen knows it: one row per host, fed only by engine [`Event`]s.
//!
//! `FleetModel::apply` is the only way engine news reaches the screen (STYLE.md §6). Each row is
//! the one host model every consumer shares ([`HostModel`], folded by the same `apply`) plus only
//! what the screen needs: where the host is, its tags and groups, a bounded output scrollback and
//! how its part in the last wave ended. It knows nothing of keys, cursors or drawing, and never
//! talks to a host: commands go out as `EngineHandle` calls from `actions.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::{Config, HostId};
use crate::engine::bus::{Event, Outcome, StageStatus, StateKind, WaveProgress, WaveStatus};
use crate::fleet::HostModel;
use crate::inventory::Inventory;
use crate::remote::Stream;
use crate::store::snapshot::SavedHost;
use crate::tui::sanitize;
use crate::tui::scrollback::Scrollback;

/// Lines of output kept per host; older lines are dropped and counted.
pub const DEFAULT_LOG_LINES: usize = 2_000;

/// Every state, in display order (also the order of the header totals).
pub(super) const ALL_STATES: [StateKind; 8] = StateKind::ALL;

/// What the screen knows about one host.
#[derive(Debug, Clone)]
pub struct HostRow {
    /// The host as every consumer knows it.
    pub model: HostModel,
    /// `user@addr:port` or `local`, for the detail pane.
    pub target: String,
    pub tags: Vec<String>,
    pub groups: Vec<String>,
    /// How this host's part in the last wave ended ("skipped: outside its window").
    pub wave_result: Option<String>,
    pub log: Scrollback,
    /// `[host.policy] allow_removals`: the engine lets this host's upgrades remove packages
    /// without the operator's consent per command.
    pub removals_allowed_by_policy: bool,
    /// The hypervisor this host runs on (`runs_on`), and the hosts that run on this one.
    pub runs_on: Option<HostId>,
    pub guests: Vec<HostId>,
    /// The same as the hypervisors' inventories found it (see `fleet::guests`).
    pub detected_runs_on: Option<HostId>,
    pub detected_guests: Vec<HostId>,
}

impl HostRow {
    pub fn name(&self) -> &HostId {
        &self.model.name
    }

    /// What a compose rollback of `stack` (or of every stack) would put back, as last seen.
    pub fn rollback_preview(&self, stack: Option<&str>) -> Vec<crate::pkg::RollbackPreview> {
        self.model.rollback.preview(&self.model.stacks, stack)
    }

    /// The stacks a rollback would change something in, in the order of their points.
    pub fn rollback_stacks(&self) -> Vec<std::sync::Arc<str>> {
        let mut stacks: Vec<std::sync::Arc<str>> = Vec::new();
        for preview in self.rollback_preview(None).iter().filter(|p| !p.done()) {
            if !stacks.iter().any(|s| **s == *preview.path) {
                stacks.push(preview.path.as_str().into());
            }
        }
        stacks
    }

    pub fn state(&self) -> StateKind {
        self.model.kind()
    }

    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.model.state.since
    }

    /// What went wrong last: the failure of a failed host, else the last failed read.
    pub fn error(&self) -> Option<&str> {
        let state = &self.model.state;
        state
            .error()
            .or_else(|| state.last_error.as_ref().map(|e| &*e.error))
    }

    pub fn acknowledged(&self) -> bool {
        self.model.state.acknowledged()
    }

    /// Why the host waits for a reboot, when it does.
    pub fn reboot_reason(&self) -> Option<Arc<str>> {
        match &self.model.state.phase {
            crate::fleet::Phase::WaitingReboot { reason } => Some(reason.clone()),
            _ => None,
        }
    }

    pub fn security(&self) -> usize {
        self.model.security_count()
    }

    /// The OS as the table shows it (see [`Inventory::os_label`]), nothing before an inventory.
    pub fn os_label(&self) -> String {
        self.model
            .inventory
            .as_deref()
            .map(Inventory::os_label)
            .unwrap_or_default()
    }

    /// The OS id and the ids it is like, lowercase, for `os:` filters.
    pub fn os_ids(&self) -> impl Iterator<Item = &str> {
        self.model.inventory.iter().flat_map(|inv| {
            std::iter::once(inv.os.id.as_str()).chain(inv.os.id_like.iter().map(String::as_str))
        })
    }

    pub fn pending_count(&self) -> Option<usize> {
        self.model.pending_count()
    }

    /// The hypervisor this host runs on, declared or detected.
    pub fn hypervisor(&self) -> Option<&HostId> {
        self.runs_on.as_ref().or(self.detected_runs_on.as_ref())
    }

    /// Every host that runs on this one, declared first.
    pub fn all_guests(&self) -> Vec<HostId> {
        let mut all = self.guests.clone();
        for guest in &self.detected_guests {
            if !all.contains(guest) {
                all.push(guest.clone());
            }
        }
        all
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
            row.runs_on = h.runs_on.clone();
            row.guests = config
                .hosts
                .iter()
                .filter(|g| g.runs_on.as_ref() == Some(&h.name))
                .map(|g| g.name.clone())
                .collect();
            row
        });
        Self::from_rows(rows.collect())
    }

    pub fn from_rows(hosts: Vec<HostRow>) -> Self {
        let index = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name().clone(), i))
            .collect();
        let mut totals = [0; ALL_STATES.len()];
        for host in &hosts {
            totals[state_slot(host.state())] += 1;
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
                    | WaveStatus::Threshold
            )
        })
    }

    /// Opens on what the engine restored (yesterday's picture): each host's model and the
    /// output it last printed.
    /// What hosts sent is cleaned for the screen here, as in [`Self::apply`].
    pub fn restore(&mut self, saved: &[SavedHost]) {
        for host in saved {
            let Some(i) = self.position(&host.model.name) else {
                continue;
            };
            let model = match sanitize::model(&host.model) {
                Ok(model) => model,
                Err(err) => {
                    tracing::error!(host = %host.model.name, "not restored: {err}");
                    continue;
                }
            };
            let before = self.hosts[i].state();
            let row = &mut self.hosts[i];
            row.model = model;
            row.log.restore(
                host.recent_output.iter().map(|l| sanitize::text(l).into()),
                host.dropped_output,
            );
            self.count_move(before, self.hosts[i].state());
        }
        self.generation += 1;
    }

    /// Folds one engine event into the model. Events about unknown hosts are ignored: the engine
    /// and the screen were built from the same config, so they can only come from a race at exit.
    ///
    /// This is where host-sent text enters the console: the event is cleaned of escape sequences
    /// and control characters first ([`sanitize`]), so no row, log line or status ever holds
    /// them.
    pub fn apply(&mut self, event: &Event) {
        let event = match sanitize::event(event) {
            Ok(event) => event,
            Err(err) => {
                tracing::error!(host = ?event.host(), "event not shown: {err}");
                return;
            }
        };
        let event = &*event;
        match event {
            Event::Wave(progress) => self.wave = Some(progress.clone()),
            Event::WaveHostFinished { host, outcome, .. } => {
                let Some(row) = self.row_mut(host) else {
                    return;
                };
                row.wave_result = Some(match outcome {
                    Outcome::Succeeded => "succeeded".to_string(),
                    Outcome::Refused { reason } => format!("refused: {reason}"),
                    Outcome::Skipped { reason } => format!("skipped: {reason}"),
                    Outcome::Failed { error } => format!("failed: {error}"),
                });
            }
            _ => {
                let Some(i) = event.host().and_then(|host| self.position(host)) else {
                    return;
                };
                let before = self.hosts[i].state();
                let row = &mut self.hosts[i];
                match event {
                    Event::Output { stream, line, .. } => row.log.push(*stream, line.clone()),
                    // The pipeline's stages read as headings between the commands' own output.
                    Event::Stage { stage, status, .. } => {
                        let status = match status {
                            StageStatus::Started => "started".to_string(),
                            StageStatus::Done => "done".to_string(),
                            StageStatus::Skipped { reason } => format!("skipped: {reason}"),
                            StageStatus::Failed { error } => format!("failed: {error}"),
                        };
                        let line = format!("── {} {status}", stage.as_str());
                        row.log.push(Stream::Stdout, line.into());
                    }
                    _ => {}
                }
                if !row.model.apply(event) {
                    return; // output does not change anything rows are filtered or sorted by
                }
                let after = row.state();
                self.count_move(before, after);
            }
        }
        self.generation += 1;
    }

    /// Shows `detected` `(guest, hypervisor)` pairs beside the declared `runs_on`: each row's
    /// hypervisor and guests, declared first.
    pub fn set_detected_guests(&mut self, detected: &[(HostId, HostId)]) {
        for row in &mut self.hosts {
            row.detected_runs_on = detected
                .iter()
                .find(|(guest, _)| guest == row.name())
                .map(|(_, hypervisor)| hypervisor.clone());
            row.detected_guests = detected
                .iter()
                .filter(|(_, hypervisor)| hypervisor == row.name())
                .map(|(guest, _)| guest.clone())
                .collect();
        }
        self.generation += 1;
    }

    fn row_mut(&mut self, name: &str) -> Option<&mut HostRow> {
        let i = self.position(name)?;
        self.hosts.get_mut(i)
    }

    fn count_move(&mut self, from: StateKind, to: StateKind) {
        self.totals[state_slot(from)] -= 1;
        self.totals[state_slot(to)] += 1;
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
            model: HostModel::new(name),
            target,
            tags,
            groups,
            wave_result: None,
            log: Scrollback::new(log_lines),
            removals_allowed_by_policy: false,
            runs_on: None,
            guests: Vec::new(),
            detected_runs_on: None,
            detected_guests: Vec::new(),
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
    use crate::tui::testing::{acknowledged, fleet, pending, state_changed};

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
        assert_eq!(row.error(), Some("connection refused"));
        assert!(!row.acknowledged());
        model.apply(&acknowledged("host-01", "connection refused"));
        assert!(model.host(1).unwrap().acknowledged());
        assert_eq!(
            model.total(StateKind::Failed),
            1,
            "acknowledging is no move"
        );
    }

    /// One host with two pending updates (`openssl`, a security one, and `curl`), updating.
    fn updating_two_packages() -> FleetModel {
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
        model
    }

    /// `host-00`'s update ends, back to idle.
    fn update_ended() -> Event {
        state_changed("host-00", StateKind::Updating, StateKind::Idle, None)
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
        assert_eq!(row.security(), 1);
        assert!(row.model.reboot.required);
    }

    /// The PEND count after an update comes from the host's own lists, read again by the
    /// update's verify stage, not from a guess in the fold (issue 9: h002 "idle, PEND 14").
    #[test]
    fn an_update_shows_what_the_host_reports_after_it() {
        let mut model = updating_two_packages();
        model.apply(&pending("host-00", &[], false));
        model.apply(&update_ended());
        let row = model.host(0).unwrap();
        assert_eq!(row.pending_count(), Some(0));
        assert_eq!(row.state(), StateKind::Idle);
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
        let mut model = updating_two_packages();
        let percent = |m: &FleetModel| m.host(0).unwrap().model.progress.and_then(|p| p.percent());
        assert_eq!(percent(&model), Some(0));
        model.apply(&Event::Output {
            host: "host-00".into(),
            stream: Stream::Stdout,
            line: "Setting up openssl (1.1-1) ...".into(),
        });
        assert_eq!(percent(&model), Some(50));
        model.apply(&update_ended());
        assert_eq!(
            percent(&model),
            None,
            "progress belongs to the running upgrade only"
        );
    }

    #[test]
    fn pipeline_stages_read_as_headings_in_the_log() {
        let mut model = fleet(1);
        let stage = |status| Event::Stage {
            host: "host-00".into(),
            stage: crate::engine::bus::Stage::Compose,
            status,
        };
        model.apply(&stage(StageStatus::Started));
        model.apply(&stage(StageStatus::Failed {
            error: "compose stack '/srv/x', service 'web': pull failed".into(),
        }));
        let log = &model.host(0).unwrap().log;
        assert_eq!(&*log.get(0).unwrap().text, "── compose started");
        assert_eq!(
            &*log.get(1).unwrap().text,
            "── compose failed: compose stack '/srv/x', service 'web': pull failed"
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

    #[test]
    fn restores_states_errors_pending_and_output_from_the_snapshot() {
        use crate::fleet::{FailedInfo, HostState, Phase};
        let mut model = fleet(2);
        let failed_state = HostState {
            phase: Phase::Failed(FailedInfo {
                previous_state: StateKind::Updating,
                error: "interrupted during updating".into(),
                failed_at: Utc::now(),
                acknowledged: true,
            }),
            ..HostState::default()
        };
        let mut failed = SavedHost::new(HostModel::new("host-01".into()));
        failed.model.state = Arc::new(failed_state);
        failed.recent_output = ["a", "b"].iter().map(|s| s.to_string()).collect();
        failed.dropped_output = 7;
        let mut pending = SavedHost::new(HostModel::new("host-00".into()));
        pending.model.state = Arc::new(HostState {
            phase: Phase::PendingUpdates,
            ..HostState::default()
        });
        pending.model.pending = Some(Arc::from(vec![crate::pkg::PendingPackage {
            name: "openssl".into(),
            from: "1".into(),
            to: "2".into(),
            security: true,
        }]));
        model.restore(&[pending, failed]);
        assert_eq!(model.total(StateKind::Failed), 1);
        assert_eq!(model.total(StateKind::PendingUpdates), 1);
        assert_eq!(model.total(StateKind::Idle), 0);
        let host = model.host(1).unwrap();
        assert!(host.acknowledged());
        assert_eq!(host.error(), Some("interrupted during updating"));
        assert_eq!(host.log.len(), 2);
        assert_eq!(host.log.dropped(), 7);
        assert_eq!(model.host(0).unwrap().security(), 1);
    }
}
