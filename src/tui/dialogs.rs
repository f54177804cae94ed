//! The state of each dialog: what it asks, what it will send. Drawing lives in `views/`.
//!
//! A dialog never sends anything itself; `actions.rs` turns a confirmed dialog into engine calls.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{BatchSize, FailureLimit, HostId, JumpHosts, WaveMode};
use crate::engine::JobKind;
use crate::engine::WaveRequest;
use crate::pkg::UpgradeScope;
use crate::tui::model::FleetModel;

/// What a confirmation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmable {
    Host(JobKind),
    AbortWave,
    Quit { busy: usize },
}

/// "update 3 hosts: a, b, c?" with y/Enter to go, anything that means back to cancel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmDialog {
    pub what: Confirmable,
    pub hosts: Vec<HostId>,
    /// For a reboot: each chosen jump host or hypervisor with what its reboot does to the
    /// hosts behind it ("is the jump host of 'web-1', 'web-2': they lose their connection").
    /// When there are any, the dialog asks twice.
    pub jump_hosts: Vec<(HostId, String)>,
    /// How many of `jump_hosts` are hypervisors (their guests go down, not just away).
    pub hypervisors: usize,
    /// Confirmed once; now asking again about `jump_hosts`.
    pub asked_again: bool,
    /// For an update: which updates it takes (the package view's picks, the security-only
    /// toggle); every other action ignores it.
    pub scope: UpgradeScope,
    /// For a rollback of one host: the stacks it could roll back, and the one chosen (`None`:
    /// all of them).
    pub stacks: Vec<Arc<str>>,
    pub stack: Option<Arc<str>>,
}

impl ConfirmDialog {
    pub fn new(what: Confirmable, hosts: Vec<HostId>) -> Self {
        Self {
            what,
            hosts,
            jump_hosts: Vec::new(),
            hypervisors: 0,
            asked_again: false,
            scope: UpgradeScope::default(),
            stacks: Vec::new(),
            stack: None,
        }
    }

    /// A rollback of one host that can choose among `stacks` (fewer than two: nothing to
    /// choose).
    pub fn with_stacks(mut self, stacks: Vec<Arc<str>>) -> Self {
        if stacks.len() > 1 {
            self.stacks = stacks;
        }
        self
    }

    /// Moves the rollback's choice along "all stacks", then each stack in turn.
    pub fn cycle_stack(&mut self, step: isize) {
        if self.stacks.is_empty() {
            return;
        }
        let choices = self.stacks.len() + 1;
        let now = match &self.stack {
            None => 0,
            Some(chosen) => 1 + self.stacks.iter().position(|s| s == chosen).unwrap_or(0),
        };
        let next = (now as isize + step).rem_euclid(choices as isize) as usize;
        self.stack = next.checked_sub(1).map(|i| self.stacks[i].clone());
    }

    /// An update of only the updates in `scope`.
    pub fn with_scope(mut self, scope: UpgradeScope) -> Self {
        self.scope = scope;
        self
    }

    /// Flips "security updates only" for an update; other actions ignore it.
    pub fn toggle_security_only(&mut self) {
        if self.is_update() {
            self.scope.security_only = !self.scope.security_only;
        }
    }

    fn is_update(&self) -> bool {
        matches!(self.what, Confirmable::Host(JobKind::Update { .. }))
    }

    /// Notes which of the hosts to reboot carry others (other actions ignore it).
    pub fn with_jump_hosts(mut self, jumps: &JumpHosts) -> Self {
        if self.what == Confirmable::Host(JobKind::Reboot) {
            self.jump_hosts = self
                .hosts
                .iter()
                .filter(|host| !jumps.behind(host).is_empty())
                .map(|host| (host.clone(), jumps.describe_reboot(host)))
                .collect();
            self.hypervisors = self
                .jump_hosts
                .iter()
                .filter(|(host, _)| jumps.is_hypervisor(host))
                .count();
        }
        self
    }

    /// Called when the operator confirms: true when the dialog must ask again (a jump host is
    /// to be rebooted) instead of going ahead.
    pub fn ask_again(&mut self) -> bool {
        if self.jump_hosts.is_empty() || self.asked_again {
            return false;
        }
        self.asked_again = true;
        true
    }

    /// The question, naming the verb and how many hosts.
    pub fn question(&self) -> String {
        if self.asked_again {
            let names: Vec<String> = self
                .jump_hosts
                .iter()
                .map(|(h, _)| format!("'{h}'"))
                .collect();
            let one = names.len() == 1;
            let names = names.join(", ");
            return match (self.hypervisors, one) {
                (0, true) => format!(
                    "really reboot jump host {names}? every host behind it loses its connection"
                ),
                (0, false) => format!(
                    "really reboot jump hosts {names}? every host behind them loses its connection"
                ),
                (n, true) if n == self.jump_hosts.len() => {
                    format!("really reboot hypervisor {names}? its guests go down with it")
                }
                (n, false) if n == self.jump_hosts.len() => {
                    format!("really reboot hypervisors {names}? their guests go down with them")
                }
                _ => format!(
                    "really reboot {names}? every guest on them goes down and every host behind \
                     them loses its connection"
                ),
            };
        }
        match &self.what {
            Confirmable::Host(action) => {
                let n = self.hosts.len();
                let scope = match (&self.stack, self.is_update()) {
                    (Some(stack), _) => format!(" (only stack {stack})"),
                    (None, true) if !self.scope.is_everything() => {
                        format!(" (only {})", self.scope.describe())
                    }
                    (None, _) if !self.stacks.is_empty() => " (all its stacks)".to_string(),
                    (None, _) => String::new(),
                };
                format!(
                    "{} {n} host{}{scope}?",
                    action.verb(),
                    if n == 1 { "" } else { "s" }
                )
            }
            Confirmable::AbortWave => {
                "abort the wave? in-flight hosts finish their current step".to_string()
            }
            Confirmable::Quit { busy } => format!(
                "quit while {busy} host{} {} busy? upgrades in flight are let finish",
                if *busy == 1 { "" } else { "s" },
                if *busy == 1 { "is" } else { "are" }
            ),
        }
    }

    /// Flips dry run for an update; other actions ignore it.
    pub fn toggle_dry_run(&mut self) {
        if let Confirmable::Host(JobKind::Update { dry_run, .. } | JobKind::Rollback { dry_run }) =
            &mut self.what
        {
            *dry_run = !*dry_run;
        }
    }

    /// Flips the operator's consent to removals for an update; other actions ignore it.
    pub fn toggle_removals(&mut self) {
        if let Confirmable::Host(JobKind::Update { allow_removals, .. }) = &mut self.what {
            *allow_removals = !*allow_removals;
        }
    }

    /// Whether this is an update the operator allowed to remove packages.
    pub fn allows_removals(&self) -> bool {
        matches!(
            self.what,
            Confirmable::Host(JobKind::Update {
                allow_removals: true,
                ..
            })
        )
    }
}

/// Choices offered for each wave field; the config's values come first.
const BATCH_PRESETS: &[&str] = &["1", "1,5,25%", "1,25%", "10%", "25%", "50%", "100%"];
const DELAY_PRESETS: &[u64] = &[0, 10, 30, 60, 300, 900];
const FAILURE_PRESETS: &[&str] = &["0", "1", "2", "5", "10%", "25%"];

/// The wave dialog's fields, in the order the cursor visits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaveField {
    BatchSizes,
    Delay,
    MaxFailures,
    /// Rolling window or batch barriers.
    Mode,
    DryRun,
    AllowRemovals,
    /// Defer hosts predicted to overrun their window, or start them late (the override).
    Overruns,
}

impl WaveField {
    pub const ALL: [WaveField; 7] = [
        WaveField::BatchSizes,
        WaveField::Delay,
        WaveField::MaxFailures,
        WaveField::Mode,
        WaveField::DryRun,
        WaveField::AllowRemovals,
        WaveField::Overruns,
    ];
}

/// The wave settings the dialog starts from (`[fleet]` in tendhost.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveDefaults {
    pub batch_sizes: Vec<BatchSize>,
    pub delay: Duration,
    pub max_failures: FailureLimit,
    pub mode: WaveMode,
    /// `[fleet] on_threshold`, else pause: the console can ask.
    pub on_threshold: crate::config::OnThreshold,
}

/// The unfinished wave offered at start, with how the config changed under it (empty: the
/// plan still fits); resuming a changed plan accepts the changes, which the dialog lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeDialog {
    pub saved: crate::store::snapshot::SavedWave,
    pub differences: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveDialog {
    pub hosts: Vec<HostId>,
    /// "marked hosts", "filtered hosts" or "all hosts".
    pub source: &'static str,
    pub field: usize,
    batch_choices: Vec<Vec<BatchSize>>,
    batch: usize,
    delay_choices: Vec<Duration>,
    delay: usize,
    failure_choices: Vec<FailureLimit>,
    failures: usize,
    pub mode: WaveMode,
    pub dry_run: bool,
    /// Consent to upgrades that remove packages; off until the operator says otherwise.
    pub allow_removals: bool,
    /// Hosts whose predicted update would overrun their window wait for the next one; off is
    /// the operator's override.
    pub defer_overruns: bool,
    /// The wave's plan as the dialog stands, composed by the app (it holds the config) after
    /// every change and every batch of events; the preview and the Plan view draw it.
    pub preview: Option<std::sync::Arc<crate::plan::WavePlan>>,
    /// Only security updates on every host of the wave (the `S` toggle).
    pub security_only: bool,
    on_threshold: crate::config::OnThreshold,
    /// The operator was told that starting discards the unfinished saved wave, and confirms
    /// again to go ahead.
    pub discard_warned: bool,
}

impl WaveDialog {
    pub fn new(hosts: Vec<HostId>, source: &'static str, defaults: &WaveDefaults) -> Self {
        let mut batch_choices = vec![defaults.batch_sizes.clone()];
        batch_choices.extend(
            BATCH_PRESETS
                .iter()
                .filter_map(|p| BatchSize::parse_list(p).ok()),
        );
        dedup_keep_first(&mut batch_choices);
        let mut delay_choices = vec![defaults.delay];
        delay_choices.extend(DELAY_PRESETS.iter().map(|&s| Duration::from_secs(s)));
        dedup_keep_first(&mut delay_choices);
        let mut failure_choices = vec![defaults.max_failures];
        failure_choices.extend(
            FAILURE_PRESETS
                .iter()
                .filter_map(|p| FailureLimit::parse(p).ok()),
        );
        dedup_keep_first(&mut failure_choices);
        Self {
            hosts,
            source,
            field: 0,
            batch_choices,
            batch: 0,
            delay_choices,
            delay: 0,
            failure_choices,
            failures: 0,
            mode: defaults.mode,
            // A wave from the keyboard starts as a rehearsal; turning it real is one deliberate key.
            dry_run: true,
            allow_removals: false,
            defer_overruns: true,
            preview: None,
            security_only: false,
            on_threshold: defaults.on_threshold,
            discard_warned: false,
        }
    }

    pub fn current_field(&self) -> WaveField {
        WaveField::ALL[self.field.min(WaveField::ALL.len() - 1)]
    }

    pub fn move_field(&mut self, delta: isize) {
        self.field = self
            .field
            .saturating_add_signed(delta)
            .min(WaveField::ALL.len() - 1);
    }

    /// Steps the current field's value by `delta` through its choices (wrapping).
    pub fn adjust(&mut self, delta: isize) {
        fn step(i: &mut usize, len: usize, delta: isize) {
            let len = len.max(1) as isize;
            *i = ((*i as isize + delta).rem_euclid(len)) as usize;
        }
        match self.current_field() {
            WaveField::BatchSizes => step(&mut self.batch, self.batch_choices.len(), delta),
            WaveField::Mode => {
                self.mode = match self.mode {
                    WaveMode::Rolling => WaveMode::Batches,
                    WaveMode::Batches => WaveMode::Rolling,
                }
            }
            WaveField::Delay => step(&mut self.delay, self.delay_choices.len(), delta),
            WaveField::MaxFailures => step(&mut self.failures, self.failure_choices.len(), delta),
            WaveField::DryRun => self.dry_run = !self.dry_run,
            WaveField::AllowRemovals => self.allow_removals = !self.allow_removals,
            WaveField::Overruns => self.defer_overruns = !self.defer_overruns,
        }
    }

    pub fn batch_sizes(&self) -> &[BatchSize] {
        &self.batch_choices[self.batch]
    }

    pub fn delay(&self) -> Duration {
        self.delay_choices[self.delay]
    }

    pub fn max_failures(&self) -> FailureLimit {
        self.failure_choices[self.failures]
    }

    /// How the selection splits: `[1, 5, 11]` (the last size repeats until all are placed).
    pub fn plan(&self) -> Vec<usize> {
        plan_batches(self.hosts.len(), self.batch_sizes())
    }

    pub fn spec(&self) -> WaveRequest {
        WaveRequest {
            hosts: self.hosts.clone(),
            sizes: self.batch_sizes().to_vec(),
            delay: self.delay(),
            max_failures: self.max_failures(),
            mode: self.mode,
            dry_run: self.dry_run,
            allow_removals: self.allow_removals,
            scope: UpgradeScope {
                packages: Vec::new(),
                security_only: self.security_only,
            },
            on_threshold: self.on_threshold,
            defer_overruns: self.defer_overruns,
        }
    }
}

fn dedup_keep_first<T: PartialEq>(items: &mut Vec<T>) {
    let mut i = 0;
    while i < items.len() {
        if items[..i].contains(&items[i]) {
            items.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Splits `total` hosts into batches of the given sizes; the last size repeats. Mirrors the
/// engine's wave plan closely enough for a preview; the engine's plan is the one that runs.
pub(super) fn plan_batches(total: usize, sizes: &[BatchSize]) -> Vec<usize> {
    let mut batches = Vec::new();
    let mut placed = 0;
    let mut i = 0;
    while placed < total {
        let size = sizes
            .get(i)
            .or(sizes.last())
            .map_or(total, |s| s.resolve(total))
            .max(1)
            .min(total - placed);
        batches.push(size);
        placed += size;
        i += 1;
    }
    batches
}

/// One package pending somewhere in the fleet, with the hosts that need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageGroup {
    pub name: String,
    pub hosts: Vec<HostId>,
    pub security: bool,
    /// `from → to` when every host agrees, else a count of versions.
    pub versions: String,
}

/// Hosts needing a package, whether any says security, and the distinct (from, to) pairs.
type Grouping<'a> = (Vec<HostId>, bool, Vec<(&'a str, &'a str)>);

/// The fleet-wide package view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagesDialog {
    pub groups: Vec<PackageGroup>,
    pub cursor: usize,
    pub offset: usize,
    /// The model generation `groups` was built from.
    pub generation: u64,
    /// Packages picked (space) for "update only these on the hosts that need them".
    pub picked: BTreeSet<String>,
}

impl PackagesDialog {
    /// Groups every pending package by name: security first, then by how many hosts need it.
    pub fn build(model: &FleetModel) -> Self {
        let mut by_name: BTreeMap<&str, Grouping<'_>> = BTreeMap::new();
        for host in model.hosts() {
            for pkg in host.model.pending.iter().flat_map(|p| p.iter()) {
                let entry = by_name.entry(pkg.name.as_str()).or_default();
                entry.0.push(host.name().clone());
                entry.1 |= pkg.security;
                let pair = (pkg.from.as_str(), pkg.to.as_str());
                if !entry.2.contains(&pair) {
                    entry.2.push(pair);
                }
            }
        }
        let mut groups: Vec<PackageGroup> = by_name
            .into_iter()
            .map(|(name, (hosts, security, versions))| PackageGroup {
                name: name.to_string(),
                hosts,
                security,
                versions: match versions.as_slice() {
                    [(from, to)] => format!("{from} → {to}"),
                    many => format!("{} versions", many.len()),
                },
            })
            .collect();
        groups.sort_by(|a, b| {
            b.security
                .cmp(&a.security)
                .then(b.hosts.len().cmp(&a.hosts.len()))
                .then(a.name.cmp(&b.name))
        });
        Self {
            groups,
            cursor: 0,
            offset: 0,
            generation: model.generation(),
            picked: BTreeSet::new(),
        }
    }

    /// Rebuilds after the fleet changed, keeping the cursor on the same package.
    pub fn rebuild(&mut self, model: &FleetModel) {
        if self.generation == model.generation() {
            return;
        }
        let current = self.selected().map(|g| g.name.clone());
        let (cursor, offset) = (self.cursor, self.offset);
        let picked = std::mem::take(&mut self.picked);
        *self = Self::build(model);
        // A pick that is pending nowhere any more is dropped.
        self.picked = picked
            .into_iter()
            .filter(|name| self.groups.iter().any(|g| g.name == *name))
            .collect();
        self.offset = offset;
        self.cursor = current
            .and_then(|name| self.groups.iter().position(|g| g.name == name))
            .unwrap_or(cursor)
            .min(self.groups.len().saturating_sub(1));
    }

    pub fn selected(&self) -> Option<&PackageGroup> {
        self.groups.get(self.cursor)
    }

    pub fn move_cursor(&mut self, delta: isize) {
        let last = self.groups.len().saturating_sub(1);
        self.cursor = self.cursor.saturating_add_signed(delta).min(last);
    }

    /// Picks the package under the cursor, or unpicks it.
    pub fn toggle_pick(&mut self) {
        let Some(name) = self.selected().map(|g| g.name.clone()) else {
            return;
        };
        if !self.picked.remove(&name) {
            self.picked.insert(name);
        }
    }

    /// "Update only these on the hosts that need them": the picked packages (the one under the
    /// cursor when none is picked) and every host where at least one of them is pending, in
    /// the order the groups name them. `None` when the view is empty; `Some(Err)` when a
    /// host reported a name that cannot be a package name (it is never sent anywhere).
    pub fn scoped_update(
        &self,
    ) -> Option<Result<(UpgradeScope, Vec<HostId>), crate::pkg::InvalidPackageName>> {
        let chosen: Vec<&PackageGroup> = match self.picked.is_empty() {
            true => self.selected().into_iter().collect(),
            false => self
                .groups
                .iter()
                .filter(|g| self.picked.contains(&g.name))
                .collect(),
        };
        if chosen.is_empty() {
            return None;
        }
        let mut hosts: Vec<HostId> = Vec::new();
        for host in chosen.iter().flat_map(|g| g.hosts.iter()) {
            if !hosts.contains(host) {
                hosts.push(host.clone());
            }
        }
        let scope = UpgradeScope::of_packages(chosen.iter().map(|g| g.name.as_str()), false);
        Some(scope.map(|scope| (scope, hosts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::testing::{fleet, pending};

    #[test]
    fn plans_canary_then_percentages() {
        let sizes = BatchSize::parse_list("1,5,25%").unwrap();
        assert_eq!(plan_batches(42, &sizes), [1, 5, 11, 11, 11, 3]);
        assert_eq!(plan_batches(3, &sizes), [1, 2]);
        assert!(plan_batches(0, &sizes).is_empty());
    }

    #[test]
    fn wave_dialog_starts_from_config_and_dry_run() {
        let defaults = WaveDefaults {
            batch_sizes: BatchSize::parse_list("1,25%").unwrap(),
            delay: Duration::from_secs(30),
            max_failures: FailureLimit::Count(0),
            mode: WaveMode::Rolling,
            on_threshold: crate::config::OnThreshold::Pause,
        };
        let mut dialog = WaveDialog::new(vec!["a".into(), "b".into()], "marked hosts", &defaults);
        assert!(dialog.dry_run);
        assert_eq!(dialog.batch_sizes(), defaults.batch_sizes.as_slice());
        dialog.adjust(1);
        assert_eq!(dialog.batch_sizes(), [BatchSize::Count(1)]);
        dialog.adjust(-2);
        assert_eq!(dialog.batch_sizes(), [BatchSize::Percent(100)]);
        dialog.move_field(1);
        dialog.adjust(1);
        assert_eq!(dialog.delay(), Duration::from_secs(0));
        dialog.move_field(10);
        dialog.move_field(-2);
        assert_eq!(dialog.current_field(), WaveField::DryRun);
        dialog.adjust(1);
        assert!(!dialog.spec().dry_run);
        assert!(!dialog.spec().allow_removals, "removals start refused");
    }

    #[test]
    fn wave_dialog_toggles_removals_as_a_field() {
        let defaults = WaveDefaults {
            batch_sizes: BatchSize::parse_list("1").unwrap(),
            delay: Duration::ZERO,
            max_failures: FailureLimit::Count(0),
            mode: WaveMode::Rolling,
            on_threshold: crate::config::OnThreshold::Pause,
        };
        let mut dialog = WaveDialog::new(vec!["a".into()], "all hosts", &defaults);
        dialog.move_field(10);
        assert_eq!(dialog.current_field(), WaveField::Overruns);
        assert!(dialog.spec().defer_overruns, "overruns start deferred");
        dialog.adjust(1);
        assert!(!dialog.spec().defer_overruns, "the operator's override");
        dialog.move_field(-1);
        assert_eq!(dialog.current_field(), WaveField::AllowRemovals);
        dialog.adjust(1);
        assert!(dialog.spec().allow_removals);
        assert!(
            dialog.spec().dry_run,
            "the removals field leaves dry run alone"
        );
        dialog.adjust(-1);
        assert!(!dialog.spec().allow_removals);
    }

    #[test]
    fn packages_group_across_hosts_security_first() {
        let mut model = fleet(3);
        model.apply(&pending(
            "host-00",
            &[("curl", false), ("openssl", true)],
            false,
        ));
        model.apply(&pending("host-01", &[("curl", false)], false));
        model.apply(&pending(
            "host-02",
            &[("curl", false), ("zlib", false)],
            false,
        ));
        let view = PackagesDialog::build(&model);
        let names: Vec<&str> = view.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["openssl", "curl", "zlib"]);
        assert_eq!(view.groups[1].hosts.len(), 3);
        assert_eq!(view.groups[1].versions, "1.0-1 → 1.1-1");
    }

    #[test]
    fn picked_packages_update_only_themselves_on_the_hosts_needing_them() {
        let mut model = fleet(3);
        model.apply(&pending(
            "host-00",
            &[("openssl", true), ("curl", false)],
            false,
        ));
        model.apply(&pending("host-01", &[("curl", false)], false));
        model.apply(&pending("host-02", &[("zlib", false)], false));
        let mut view = PackagesDialog::build(&model);
        let (scope, hosts) = view.scoped_update().unwrap().unwrap();
        assert_eq!(scope.packages, ["openssl"], "none picked: the cursor's");
        assert_eq!(hosts, [HostId::from("host-00")]);
        view.toggle_pick();
        view.move_cursor(1);
        view.toggle_pick();
        let (scope, hosts) = view.scoped_update().unwrap().unwrap();
        assert_eq!(scope.packages, ["openssl", "curl"]);
        assert_eq!(
            hosts,
            [HostId::from("host-00"), HostId::from("host-01")],
            "each host once, zlib's not"
        );
        view.toggle_pick();
        assert_eq!(
            view.scoped_update().unwrap().unwrap().0.packages,
            ["openssl"]
        );

        let mut dialog = ConfirmDialog::new(
            Confirmable::Host(JobKind::Update {
                dry_run: false,
                allow_removals: false,
            }),
            hosts,
        )
        .with_scope(scope);
        assert_eq!(dialog.question(), "update 2 hosts (only openssl, curl)?");
        dialog.toggle_security_only();
        assert_eq!(
            dialog.question(),
            "update 2 hosts (only security updates of openssl, curl)?"
        );
        let mut reboot = ConfirmDialog::new(Confirmable::Host(JobKind::Reboot), vec!["a".into()]);
        reboot.toggle_security_only();
        assert!(reboot.scope.is_everything(), "a reboot has no scope");
    }

    #[test]
    fn update_confirmation_toggles_dry_run() {
        let mut dialog = ConfirmDialog::new(
            Confirmable::Host(JobKind::Update {
                dry_run: false,
                allow_removals: false,
            }),
            vec!["a".into(), "b".into()],
        );
        assert_eq!(dialog.question(), "update 2 hosts?");
        dialog.toggle_dry_run();
        assert_eq!(dialog.question(), "dry-run update 2 hosts?");
        assert!(!dialog.allows_removals(), "dry run leaves removals alone");
    }

    #[test]
    fn update_confirmation_toggles_removals_and_other_actions_ignore_it() {
        let mut dialog = ConfirmDialog::new(
            Confirmable::Host(JobKind::Update {
                dry_run: false,
                allow_removals: false,
            }),
            vec!["a".into()],
        );
        dialog.toggle_removals();
        assert_eq!(
            dialog.what,
            Confirmable::Host(JobKind::Update {
                dry_run: false,
                allow_removals: true
            })
        );
        assert!(dialog.allows_removals());
        dialog.toggle_removals();
        assert!(!dialog.allows_removals());
        let mut reboot = ConfirmDialog::new(Confirmable::Host(JobKind::Reboot), vec!["a".into()]);
        reboot.toggle_removals();
        assert_eq!(reboot.what, Confirmable::Host(JobKind::Reboot));
        assert!(!reboot.allows_removals());
    }

    #[test]
    fn rebooting_a_jump_host_asks_again_naming_the_hosts_behind_it() {
        let config = crate::config::Config::from_str(
            "t.toml",
            "[[host]]\nname = \"gw\"\naddr = \"10.0.0.1\"\n\
             [[host]]\nname = \"web\"\naddr = \"10.0.1.1\"\nproxy_jump = \"gw\"\n",
        )
        .unwrap();
        let jumps = JumpHosts::of(&config);
        let hosts = vec![HostId::from("gw"), HostId::from("web")];
        let mut reboot = ConfirmDialog::new(Confirmable::Host(JobKind::Reboot), hosts.clone())
            .with_jump_hosts(&jumps);
        assert_eq!(
            reboot.jump_hosts,
            [(
                "gw".into(),
                "is the jump host of 'web': they lose their connection".to_string()
            )]
        );
        assert_eq!(reboot.question(), "reboot 2 hosts?");
        assert!(reboot.ask_again(), "the first confirmation must not reboot");
        assert_eq!(
            reboot.question(),
            "really reboot jump host 'gw'? every host behind it loses its connection"
        );
        assert!(!reboot.ask_again(), "the second one goes ahead");

        // Hosts that carry nobody, or another action, ask once.
        let mut plain = ConfirmDialog::new(Confirmable::Host(JobKind::Reboot), vec!["web".into()])
            .with_jump_hosts(&jumps);
        assert!(!plain.ask_again());
        let update = ConfirmDialog::new(
            Confirmable::Host(JobKind::Update {
                dry_run: false,
                allow_removals: false,
            }),
            hosts,
        )
        .with_jump_hosts(&jumps);
        assert!(update.jump_hosts.is_empty());
    }

    #[test]
    fn rebooting_a_hypervisor_asks_again_naming_its_guests() {
        let config = crate::config::Config::from_str(
            "t.toml",
            "[[host]]\nname = \"pve1\"\naddr = \"10.0.0.1\"\n\
             [[host]]\nname = \"vm1\"\naddr = \"10.0.0.11\"\nruns_on = \"pve1\"\n\
             [[host]]\nname = \"ct2\"\naddr = \"10.0.0.12\"\nruns_on = \"pve1\"\n",
        )
        .unwrap();
        let jumps = JumpHosts::of(&config);
        let mut reboot = ConfirmDialog::new(
            Confirmable::Host(JobKind::Reboot),
            vec![HostId::from("pve1")],
        )
        .with_jump_hosts(&jumps);
        assert_eq!(
            reboot.jump_hosts[0].1,
            "is the hypervisor of 'vm1', 'ct2': they go down with it"
        );
        assert!(reboot.ask_again());
        assert_eq!(
            reboot.question(),
            "really reboot hypervisor 'pve1'? its guests go down with it"
        );
    }
}
