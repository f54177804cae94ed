//! What is known about one host, folded from events: the one host model that the snapshot,
//! batch results and the console's rows all use.
//!
//! [`HostModel::apply`] is the only way a model changes, and every consumer folds the same events
//! the same way, so they cannot disagree. The state itself is never rebuilt here: state-change
//! events carry the supervisor's own [`HostState`]. Nothing here does I/O.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::event::{Event, JobKind};
use super::history::HostHistory;
use super::job::RemoteJob;
use super::state::{HostState, StateKind};
use crate::config::HostId;
use crate::health::{CheckPhase, CheckResult, HealthReport};
use crate::inventory::Inventory;
use crate::pkg::{
    HeldService, PendingPackage, RebootStatus, RollbackLedger, ServiceChange, StackReport,
    UpdateProgress, UpgradePlan, UpgradeScope,
};

/// One host as tendhost knows it.
#[derive(Debug, Clone)]
pub struct HostModel {
    pub name: HostId,
    pub state: Arc<HostState>,
    pub inventory: Option<Arc<Inventory>>,
    /// `None` until the first refresh: "—", not a misleading 0.
    pub pending: Option<Arc<[PendingPackage]>>,
    pub reboot: RebootStatus,
    /// The last plan seen and whether it came from a dry run, so removals can be shown before an
    /// upgrade.
    pub plan: Option<Plan>,
    /// The compose stacks as last seen (services and the images they run). What an update
    /// would still change in them is derived from these: [`HostModel::compose_pending`].
    pub stacks: Arc<[StackReport]>,
    /// What the last update changed in the stacks: per service the old and new image.
    pub compose_changes: Arc<[ServiceChange]>,
    /// What the last compose check left for later, and why.
    pub compose_held: Arc<[HeldService]>,
    /// What a compose rollback would restore, and the images rolled back from.
    pub rollback: RollbackLedger,
    pub last_refresh: Option<DateTime<Utc>>,
    /// The last refusal, for the detail pane and the status line.
    pub refused: Option<(JobKind, Arc<str>)>,
    /// How far the running upgrade has got, read from its output.
    pub progress: Option<UpdateProgress>,
    /// The detached job of the step in flight (or left by a run that stopped), until that step
    /// settles.
    pub job: Option<Arc<RemoteJob>>,
    /// What the last one-round-trip read of the host left to compare the next one with.
    pub survey: Option<Arc<SurveyMark>>,
    /// How long the host's recent upgrades and reboots took: what predicts the next one.
    pub history: HostHistory,
    /// The last health report of each phase that ran (see `crate::health`), in phase order.
    pub health: Vec<Arc<HealthReport>>,
}

/// What a survey of the host (see `survey`) found beyond its inventory and packages: the
/// fingerprint the next read compares with, when the package lists were last refreshed, and
/// the services running replaced code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SurveyMark {
    pub fingerprint: String,
    #[serde(default)]
    pub lists_refreshed: Option<DateTime<Utc>>,
    /// `None` where the host has no tool to tell (needrestart, needs-restarting).
    #[serde(default)]
    pub services: Option<Vec<String>>,
}

/// An upgrade plan and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub plan: Arc<UpgradePlan>,
    pub dry_run: bool,
    /// Which updates it is a plan of.
    pub scope: UpgradeScope,
}

impl HostModel {
    pub fn new(name: HostId) -> Self {
        HostModel {
            name,
            state: Arc::new(HostState::default()),
            inventory: None,
            pending: None,
            reboot: RebootStatus::default(),
            plan: None,
            stacks: Arc::from(Vec::new()),
            compose_changes: Arc::from(Vec::new()),
            compose_held: Arc::from(Vec::new()),
            rollback: RollbackLedger::default(),
            last_refresh: None,
            refused: None,
            progress: None,
            job: None,
            survey: None,
            history: HostHistory::default(),
            health: Vec::new(),
        }
    }

    /// The last report of `phase`.
    pub fn health(&self, phase: CheckPhase) -> Option<&HealthReport> {
        self.health.iter().find(|r| r.phase == phase).map(|r| &**r)
    }

    /// The failed package-database check when the newest verdict on it says the host needs a
    /// repair (half-configured packages, an unfinished transaction); `None` otherwise.
    pub fn needs_repair(&self) -> Option<&CheckResult> {
        crate::health::needs_repair(self.health.iter().map(|r| &**r))
    }

    /// The host is shown as "needs repair" in place of its state: it failed or rests (a busy
    /// host shows what it does) and [`needs_repair`](Self::needs_repair) says so.
    pub fn shows_needs_repair(&self) -> bool {
        !self.kind().is_busy() && self.needs_repair().is_some()
    }

    /// Keeps `report` as the last of its phase.
    pub fn record_health(&mut self, report: Arc<HealthReport>) {
        match self.health.iter_mut().find(|r| r.phase == report.phase) {
            Some(old) => *old = report,
            None => {
                self.health.push(report);
                self.health.sort_by_key(|r| r.phase);
            }
        }
    }

    pub fn kind(&self) -> StateKind {
        self.state.kind()
    }

    pub fn pending_count(&self) -> Option<usize> {
        self.pending.as_ref().map(|p| p.len())
    }

    pub fn security_count(&self) -> usize {
        self.pending
            .as_ref()
            .map_or(0, |p| p.iter().filter(|p| p.security).count())
    }

    /// What an update would change in the stacks as last seen: per service the image it runs and
    /// the one its reference now points at (after a dry run's pull, the registry's newest).
    /// Empty once an update recreated them.
    pub fn compose_pending(&self) -> Vec<ServiceChange> {
        self.stacks
            .iter()
            .filter(|s| !s.recreated)
            .flat_map(StackReport::changes)
            .collect()
    }

    /// Folds one event about this host into the model. Events about other hosts are ignored.
    /// Returns whether anything a row is filtered or sorted by changed (output lines do not).
    pub fn apply(&mut self, event: &Event) -> bool {
        if event.host() != Some(&self.name) {
            return false;
        }
        match event {
            Event::StateChanged { to, state, .. } => {
                self.progress = (*to == StateKind::Updating).then(|| {
                    let planned = match &self.plan {
                        Some(Plan {
                            plan,
                            dry_run: false,
                            ..
                        }) => plan.upgrades.len() + plan.installs.len(),
                        _ => self.pending_count().unwrap_or(0),
                    };
                    UpdateProgress::new(planned)
                });
                self.state = state.clone();
            }
            Event::Output { line, .. } => {
                if let Some(progress) = self.progress.as_mut() {
                    progress.observe(line);
                }
                return false;
            }
            Event::Job { job, .. } => {
                self.job = job.clone();
                return false;
            }
            Event::InventoryRefreshed { inventory, .. } => {
                self.inventory = Some(inventory.clone());
                self.last_refresh = Some(inventory.collected_at);
            }
            Event::PendingRefreshed {
                packages, reboot, ..
            } => {
                self.pending = Some(packages.clone());
                self.reboot = reboot.clone();
                self.last_refresh = Some(Utc::now());
            }
            Event::Surveyed { mark, .. } => {
                self.survey = Some(mark.clone());
                self.last_refresh = Some(Utc::now());
            }
            Event::Planned {
                plan,
                dry_run,
                scope,
                ..
            } => {
                self.plan = Some(Plan {
                    plan: plan.clone(),
                    dry_run: *dry_run,
                    scope: scope.clone(),
                });
            }
            Event::Stacks {
                stacks, updated, ..
            } => {
                if *updated {
                    self.rollback.updated(stacks);
                    // An update that failed part-way reports the stacks it got to; the others
                    // stay as last seen (with what the check found still pending).
                    self.compose_changes = stacks
                        .iter()
                        .filter(|s| s.recreated)
                        .flat_map(StackReport::changes)
                        .collect();
                    let mut merged = self.stacks.to_vec();
                    for stack in stacks.iter() {
                        match merged.iter_mut().find(|s| s.path == stack.path) {
                            Some(old) => *old = stack.clone(),
                            None => merged.push(stack.clone()),
                        }
                    }
                    self.stacks = merged.into();
                } else {
                    self.stacks = stacks.clone();
                }
            }
            Event::Held { held, .. } => self.compose_held = held.clone(),
            Event::RollingBack { undone, at, .. } => self.rollback.rolled_back(undone, *at),
            Event::Refused { job, reason, .. } => self.refused = Some((*job, reason.clone())),
            Event::Measured { measurement, .. } => self.history.record(measurement),
            Event::Checked { report, .. } => self.record_health(report.clone()),
            Event::Stage { .. }
            | Event::RollbackPlanned { .. }
            | Event::WaveHostFinished { .. }
            | Event::Wave(_)
            | Event::WaveSaved(_) => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkg::{ImageRef, ServiceImage};

    fn image(id: &str) -> Option<ImageRef> {
        Some(ImageRef {
            id: id.into(),
            digest: None,
        })
    }

    /// A one-service stack at `path` running `running` while its reference points at
    /// `available`.
    fn stack(path: &str, running: &str, available: &str, recreated: bool) -> StackReport {
        StackReport {
            path: path.into(),
            services: vec![ServiceImage {
                service: "web".into(),
                image: Some("reg/web:latest".into()),
                running: image(running),
                available: image(available),
                held: None,
            }],
            recreated,
        }
    }

    fn stacks(host: &HostModel, stacks: Vec<StackReport>, updated: bool) -> Event {
        Event::Stacks {
            host: host.name.clone(),
            stacks: stacks.into(),
            updated,
        }
    }

    fn paths(changes: &[ServiceChange]) -> Vec<&str> {
        changes.iter().map(|c| c.path.as_str()).collect()
    }

    #[test]
    fn what_a_check_found_is_pending_until_an_update_recreates_it() {
        let mut host = HostModel::new("docker".into());
        let checked = vec![
            stack("/a", "old", "new", false),
            stack("/b", "old", "new", false),
        ];
        host.apply(&stacks(&host, checked, false));
        assert_eq!(paths(&host.compose_pending()), ["/a", "/b"]);
        assert!(host.compose_changes.is_empty(), "a check changed nothing");

        // The update got through `/a` and failed on `/b`: `/a` changed, `/b` is still pending.
        host.apply(&stacks(&host, vec![stack("/a", "old", "new", true)], true));
        assert_eq!(paths(&host.compose_changes), ["/a"]);
        assert_eq!(paths(&host.compose_pending()), ["/b"]);

        // A later look sees `/a` on its new image and `/b` as it was.
        let seen = vec![
            stack("/a", "new", "new", false),
            stack("/b", "old", "new", false),
        ];
        host.apply(&stacks(&host, seen, false));
        assert_eq!(paths(&host.compose_pending()), ["/b"]);
        assert_eq!(paths(&host.compose_changes), ["/a"], "kept for a rollback");

        // An update with nothing to recreate records that it changed nothing.
        let unchanged = vec![stack("/a", "new", "new", false)];
        host.apply(&stacks(&host, unchanged, true));
        assert!(host.compose_changes.is_empty());
    }
}
