//! What each key does on each screen. Keys change view state or call the engine handle (a job
//! with the console as its origin, or a wave control); they never edit host state (that arrives
//! later as events). A refused or failed call becomes a status-line message, never a crash.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::config::HostId;
use crate::engine::bus::{StateKind, WaveStatus};
use crate::engine::{Job, JobKind, Origin, ThresholdChoice, WaveError};
use crate::tui::app::App;
use crate::tui::dialogs::{ConfirmDialog, Confirmable, PackagesDialog, WaveDialog};
use crate::tui::filter::Filter;
use crate::tui::keys::Action;
use crate::tui::view::{Input, Overlay, Tab};

impl App {
    /// Handles one key press on whatever screen is in front.
    pub fn handle_key(&mut self, key: KeyEvent) {
        self.dirty = true;
        self.view.status = None;
        // Keys may arrive before the first frame; act on the rows the operator will see.
        self.view.sync(&self.model);
        if self.view.input != Input::None {
            self.handle_input(key);
            return;
        }
        let Some(action) = self.keys.action(&key) else {
            return;
        };
        if action.is_mutating() && self.view.read_only {
            self.view.set_status(
                format!(
                    "read-only: '{}' is disabled (started with --read-only)",
                    action.name()
                ),
                true,
            );
            return;
        }
        match &self.view.overlay {
            Overlay::None => self.handle_main(action),
            Overlay::Help { .. } => self.handle_help(action),
            Overlay::Confirm(_) => self.handle_confirm(action),
            Overlay::Wave(_) => self.handle_wave(action),
            Overlay::Plan { .. } => self.handle_plan(action),
            Overlay::Packages(_) => self.handle_packages(action),
            Overlay::History(_) => self.handle_history(action),
            Overlay::Threshold => self.handle_threshold(action),
            Overlay::ResumeWave(_) => self.handle_resume(action),
            Overlay::Schedules { .. } => self.handle_schedules(action),
        }
    }

    /// The wave waits at its threshold: the operator's choice goes to the engine. Closing the
    /// dialog decides nothing (the wave keeps waiting; `p` opens it again).
    fn handle_threshold(&mut self, action: Action) {
        let (choice, verb) = match action {
            Action::WaveContinue => (ThresholdChoice::Continue, "continuing"),
            Action::WaveSkipFailed => (ThresholdChoice::SkipFailed, "skipping the failed hosts"),
            Action::WaveRetryFailed => (ThresholdChoice::RetryFailed, "retrying the failed hosts"),
            Action::AbortWave => (ThresholdChoice::Abort, "aborting"),
            Action::Back | Action::Quit => {
                self.view.overlay = Overlay::None;
                self.view.set_status(
                    format!(
                        "the wave waits at its threshold; {} to decide",
                        self.keys.first_key(Action::PauseWave)
                    ),
                    false,
                );
                return;
            }
            _ => return,
        };
        self.view.overlay = Overlay::None;
        match self.engine.decide_wave(choice) {
            Ok(()) => self.view.set_status(format!("wave: {verb}"), false),
            Err(err) => self.view.set_status(err.to_string(), true),
        }
    }

    /// The unfinished wave offered at start: resume it (accepting the listed changes),
    /// discard it, or leave it for later.
    fn handle_resume(&mut self, action: Action) {
        let Overlay::ResumeWave(dialog) = &self.view.overlay else {
            return;
        };
        let accept = !dialog.differences.is_empty();
        match action {
            Action::Confirm | Action::Zoom => {
                self.view.overlay = Overlay::None;
                match self.engine.resume_wave(accept) {
                    Ok(id) => self.view.set_status(format!("resuming wave {id}"), false),
                    Err(e) => self.view.set_status(format!("cannot resume: {e}"), true),
                }
            }
            Action::DiscardWave => {
                self.view.overlay = Overlay::None;
                self.engine.discard_saved_wave();
                self.view.set_status("discarded the unfinished wave", false);
            }
            Action::Back | Action::Quit => {
                self.view.overlay = Overlay::None;
                self.view
                    .set_status("the unfinished wave is kept; a new wave replaces it", false);
            }
            _ => {}
        }
    }

    fn handle_main(&mut self, action: Action) {
        let page = self.view.table_height.max(1) as isize;
        match action {
            Action::MoveUp => self.move_or_scroll(-1),
            Action::MoveDown => self.move_or_scroll(1),
            Action::PageUp => self.move_or_scroll(-page),
            Action::PageDown => self.move_or_scroll(page),
            Action::Top => self.move_or_scroll(isize::MIN / 2),
            Action::Bottom => self.move_or_scroll(isize::MAX / 2),
            Action::NextTab | Action::PrevTab => {
                self.view.tab = if action == Action::NextTab {
                    self.view.tab.next()
                } else {
                    self.view.tab.prev()
                };
                self.view.detail_scroll = 0;
            }
            Action::Zoom => self.view.zoomed = !self.view.zoomed,
            Action::Back => self.back(),
            Action::Filter if self.view.zoomed && self.view.tab == Tab::Log => {
                self.view.input = Input::LogSearch;
            }
            Action::Filter => self.view.input = Input::Filter,
            Action::NextMatch => self.next_match(),
            Action::Follow => {
                self.view.tab = Tab::Log;
                self.view.log_scroll = None;
                self.view.set_status("following the log", false);
            }
            Action::Mark => self.toggle_mark(),
            Action::MarkAll => self.mark_all(),
            Action::ClearMarks => self.view.marks.clear(),
            Action::Sort => {
                self.view.sort = self.view.sort.next();
                self.view.invalidate();
            }
            Action::Packages => {
                self.view.overlay = Overlay::Packages(PackagesDialog::build(&self.model));
            }
            Action::Schedules => self.view.overlay = Overlay::Schedules { cursor: 0 },
            Action::History => self.open_history(),
            Action::Refresh => self.confirm_hosts(JobKind::Refresh),
            Action::RefreshLists => self.confirm_hosts(JobKind::RefreshLists),
            Action::Update => self.confirm_hosts(JobKind::Update {
                dry_run: false,
                allow_removals: false,
            }),
            Action::Reboot => self.confirm_hosts(JobKind::Reboot),
            Action::Repair => self.confirm_hosts(JobKind::Repair),
            Action::Rollback => self.confirm_hosts(JobKind::Rollback { dry_run: false }),
            Action::Retry => self.confirm_hosts(JobKind::Retry),
            Action::Acknowledge => self.confirm_hosts(JobKind::Acknowledge),
            Action::Wave => self.open_wave(),
            Action::PauseWave => self.pause_or_resume(),
            Action::AbortWave if self.model.wave_running() => {
                self.view.overlay =
                    Overlay::Confirm(ConfirmDialog::new(Confirmable::AbortWave, Vec::new()));
            }
            Action::AbortWave => self.view.set_status("no wave is running", true),
            Action::Help => self.view.overlay = Overlay::Help { scroll: 0 },
            Action::Quit => self.ask_quit(),
            Action::Confirm
            | Action::ToggleDryRun
            | Action::ToggleRemovals
            | Action::PlanView
            | Action::DryRunMissing
            | Action::ToggleSecurityOnly
            | Action::Decrease
            | Action::Increase
            | Action::WaveContinue
            | Action::WaveSkipFailed
            | Action::WaveRetryFailed
            | Action::DiscardWave => {}
        }
    }

    fn back(&mut self) {
        if self.view.zoomed {
            self.view.zoomed = false;
        } else if !self.view.filter_text.is_empty() {
            self.set_filter(String::new());
        } else if !self.view.marks.is_empty() {
            self.view.marks.clear();
        }
    }

    fn ask_quit(&mut self) {
        let busy = self.model.busy_hosts();
        if busy > 0 || self.model.wave_running() {
            self.view.overlay =
                Overlay::Confirm(ConfirmDialog::new(Confirmable::Quit { busy }, Vec::new()));
        } else {
            self.quit = true;
        }
    }

    /// Moves the host cursor, or scrolls the detail pane when it is zoomed.
    fn move_or_scroll(&mut self, delta: isize) {
        if !self.view.zoomed {
            self.view.move_cursor(delta);
            return;
        }
        if self.view.tab == Tab::Log {
            let Some(host) = self.view.cursor_host(&self.model) else {
                return;
            };
            let height = self.view.detail_height;
            let max_top = host.log.len().saturating_sub(height);
            let top = self.view.log_scroll.unwrap_or(max_top);
            let next = top.saturating_add_signed(delta).min(max_top);
            // Scrolling back to the end resumes following, like `less +F`.
            self.view.log_scroll = (next < max_top).then_some(next);
        } else {
            self.view.detail_scroll = self.view.detail_scroll.saturating_add_signed(delta);
        }
    }

    fn toggle_mark(&mut self) {
        let Some(host) = self.view.cursor_host(&self.model) else {
            return;
        };
        let name = host.name().clone();
        if !self.view.marks.remove(&name) {
            self.view.marks.insert(name);
        }
        self.view.move_cursor(1);
    }

    fn mark_all(&mut self) {
        let names: Vec<HostId> = self
            .view
            .visible()
            .iter()
            .filter_map(|&i| self.model.host(i))
            .map(|h| h.name().clone())
            .collect();
        if names.iter().all(|n| self.view.marks.contains(n)) {
            for name in &names {
                self.view.marks.remove(name);
            }
        } else {
            self.view.marks.extend(names);
        }
    }

    fn confirm_hosts(&mut self, action: JobKind) {
        let mut hosts = self.view.targets(&self.model);
        if matches!(action, JobKind::Retry | JobKind::Acknowledge) {
            hosts.retain(|name| {
                self.model
                    .position(name)
                    .and_then(|i| self.model.host(i))
                    .is_some_and(|h| h.state() == StateKind::Failed)
            });
            if hosts.is_empty() {
                self.view
                    .set_status(format!("no failed host to {}", action.verb()), true);
                return;
            }
        }
        if action == JobKind::Repair {
            // Offered only where the package check found the database broken: on a whole one
            // the repair would do nothing, and the status line says why nothing happens.
            hosts.retain(|name| {
                self.model
                    .position(name)
                    .and_then(|i| self.model.host(i))
                    .is_some_and(|h| h.model.shows_needs_repair())
            });
            if hosts.is_empty() {
                self.view.set_status(
                    "no selected host needs repair (its last package check found the database whole, or it is busy)",
                    true,
                );
                return;
            }
        }
        let mut stacks = Vec::new();
        if matches!(action, JobKind::Rollback { .. }) {
            // Offered only where an update by tendhost left something to put back.
            let undoable = |name: &HostId| {
                self.model
                    .position(name)
                    .and_then(|i| self.model.host(i))
                    .map(|h| h.rollback_stacks())
                    .unwrap_or_default()
            };
            hosts.retain(|name| !undoable(name).is_empty());
            if hosts.is_empty() {
                self.view.set_status(
                    "nothing to roll back: no update by tendhost changed a stack of the selected hosts (or it already runs its old images)",
                    true,
                );
                return;
            }
            if let [only] = hosts.as_slice() {
                stacks = undoable(only);
            }
        }
        if hosts.is_empty() {
            self.view.set_status("no host selected", true);
            return;
        }
        let jumps = self.engine.jump_hosts();
        self.view.overlay = Overlay::Confirm(
            ConfirmDialog::new(Confirmable::Host(action), hosts)
                .with_jump_hosts(&jumps)
                .with_stacks(stacks),
        );
    }

    fn open_wave(&mut self) {
        if self.model.wave_running() {
            let (p, a) = (
                self.keys.first_key(Action::PauseWave),
                self.keys.first_key(Action::AbortWave),
            );
            self.view.set_status(
                format!("a wave is running: {p} pauses or resumes, {a} aborts"),
                true,
            );
            return;
        }
        let (hosts, source) = self.view.wave_targets(&self.model);
        if hosts.is_empty() {
            self.view.set_status("no host to run a wave on", true);
            return;
        }
        self.view.overlay = Overlay::Wave(WaveDialog::new(hosts, source, &self.wave_defaults));
    }

    fn pause_or_resume(&mut self) {
        if self.model.wave().map(|w| w.status) == Some(WaveStatus::Threshold) {
            self.view.overlay = Overlay::Threshold;
            return;
        }
        let (sent, verb) = match self.model.wave().map(|w| w.status) {
            Some(WaveStatus::Paused) => (self.engine.unpause_wave(), "resuming"),
            Some(WaveStatus::Started | WaveStatus::Running | WaveStatus::Delaying) => {
                (self.engine.pause_wave(), "pausing")
            }
            _ => {
                self.view.set_status("no wave is running", true);
                return;
            }
        };
        self.wave_control(sent, verb);
    }

    /// Says how a pause, resume or abort went: "{verb} the wave", or the engine's reason.
    fn wave_control(&mut self, sent: Result<(), WaveError>, verb: &str) {
        match sent {
            Ok(()) => self.view.set_status(format!("{verb} the wave"), false),
            Err(err) => self.view.set_status(err.to_string(), true),
        }
    }

    fn handle_help(&mut self, action: Action) {
        let Overlay::Help { scroll } = &mut self.view.overlay else {
            return;
        };
        match action {
            Action::MoveDown => *scroll += 1,
            Action::MoveUp => *scroll = scroll.saturating_sub(1),
            Action::Back | Action::Quit | Action::Help => self.view.overlay = Overlay::None,
            _ => {}
        }
    }

    fn handle_confirm(&mut self, action: Action) {
        let Overlay::Confirm(dialog) = &mut self.view.overlay else {
            return;
        };
        match action {
            Action::ToggleDryRun => dialog.toggle_dry_run(),
            Action::ToggleRemovals => dialog.toggle_removals(),
            Action::ToggleSecurityOnly => dialog.toggle_security_only(),
            Action::Decrease => dialog.cycle_stack(-1),
            Action::Increase => dialog.cycle_stack(1),
            Action::Confirm | Action::Zoom => {
                // Rebooting a jump host asks twice: the dialog stays open, asking again.
                if dialog.ask_again() {
                    return;
                }
                let dialog = dialog.clone();
                self.view.overlay = Overlay::None;
                self.run_confirmed(dialog);
            }
            Action::Back | Action::Quit => self.view.overlay = Overlay::None,
            _ => {}
        }
    }

    fn run_confirmed(&mut self, dialog: ConfirmDialog) {
        match dialog.what {
            Confirmable::Quit { .. } => self.quit = true,
            Confirmable::AbortWave => {
                let sent = self.engine.abort_wave();
                self.wave_control(sent, "aborting");
            }
            Confirmable::Host(action) => {
                let total = dialog.hosts.len();
                let mut refused = Vec::new();
                let scope = dialog.scope;
                for host in dialog.hosts {
                    let job = Job::new(action, Origin::Console)
                        .scoped(scope.clone())
                        .of_stack(dialog.stack.clone());
                    if let Err(reason) = self.engine.try_send(&host, job) {
                        refused.push(format!("{host} ({reason})"));
                    }
                }
                let removals = matches!(
                    action,
                    JobKind::Update {
                        allow_removals: true,
                        ..
                    }
                );
                let scoped = matches!(action, JobKind::Update { .. }) && !scope.is_everything();
                tracing::info!(
                    action = action.verb(),
                    hosts = total,
                    refused = refused.len(),
                    allow_removals = removals,
                    scope = scope.describe(),
                    "console request"
                );
                if refused.is_empty() {
                    let s = if total == 1 { "" } else { "s" };
                    let consent = if removals { " (removals allowed)" } else { "" };
                    let only = match scoped {
                        true => format!(" (only {})", scope.describe()),
                        false => String::new(),
                    };
                    self.view.set_status(
                        format!("{}: sent to {total} host{s}{only}{consent}", action.verb()),
                        false,
                    );
                } else {
                    self.view.set_status(
                        format!(
                            "{}: {} of {total} refused: {}",
                            action.verb(),
                            refused.len(),
                            refused.join(", ")
                        ),
                        true,
                    );
                }
            }
        }
    }

    fn handle_wave(&mut self, action: Action) {
        let Overlay::Wave(dialog) = &mut self.view.overlay else {
            return;
        };
        match action {
            Action::MoveDown | Action::NextTab => dialog.move_field(1),
            Action::MoveUp | Action::PrevTab => dialog.move_field(-1),
            Action::Decrease => dialog.adjust(-1),
            Action::Increase | Action::Mark => dialog.adjust(1),
            Action::ToggleDryRun => dialog.dry_run = !dialog.dry_run,
            Action::ToggleRemovals => dialog.allow_removals = !dialog.allow_removals,
            Action::PlanView => self.open_plan_view(),
            Action::DryRunMissing => self.dry_run_hosts_without_plan(),
            Action::ToggleSecurityOnly => dialog.security_only = !dialog.security_only,
            Action::Confirm | Action::Zoom => {
                // A new wave replaces the unfinished one a earlier run left: ask first.
                if !dialog.discard_warned
                    && let Some(saved) = self.engine.saved_wave()
                {
                    dialog.discard_warned = true;
                    let again = self.keys.first_key(Action::Confirm);
                    self.view.set_status(
                        format!(
                            "starting discards the unfinished {}; {again} again to start",
                            saved.describe()
                        ),
                        true,
                    );
                    return;
                }
                let spec = dialog.spec();
                self.view.overlay = Overlay::None;
                let (n, dry, removals) = (spec.hosts.len(), spec.dry_run, spec.allow_removals);
                match self.engine.start_wave(spec) {
                    Ok(_) => {
                        tracing::info!(
                            hosts = n,
                            dry_run = dry,
                            allow_removals = removals,
                            "wave started from the console"
                        );
                        let kind = if dry { "dry-run wave" } else { "wave" };
                        let consent = if removals { " (removals allowed)" } else { "" };
                        self.view
                            .set_status(format!("{kind} started on {n} hosts{consent}"), false);
                    }
                    Err(err) => self
                        .view
                        .set_status(format!("wave not started: {err}"), true),
                }
            }
            Action::Back | Action::Quit => self.view.overlay = Overlay::None,
            _ => {}
        }
    }

    /// The Schedules view: move, and pause or resume the schedule under the cursor (saved at
    /// once, so a restart or `schedule list` sees it).
    fn handle_schedules(&mut self, action: Action) {
        let Overlay::Schedules { cursor } = &mut self.view.overlay else {
            return;
        };
        let count = self.scheduler.rows().len();
        let last = count.saturating_sub(1);
        match action {
            Action::MoveDown => *cursor = (*cursor + 1).min(last),
            Action::MoveUp => *cursor = cursor.saturating_sub(1),
            Action::Top => *cursor = 0,
            Action::Bottom => *cursor = last,
            Action::Mark => {
                let Some(name) = self.scheduler.rows().get(*cursor).map(|r| r.name.clone()) else {
                    return;
                };
                if self.view.read_only {
                    self.view.set_status(
                        "read-only: schedules cannot be paused here (started with --read-only)",
                        true,
                    );
                    return;
                }
                match self.scheduler.toggle_pause(&name, chrono::Utc::now()) {
                    Some(true) => {
                        self.view
                            .set_status(format!("schedule '{name}' paused"), false);
                    }
                    Some(false) => {
                        self.view
                            .set_status(format!("schedule '{name}' resumed"), false);
                    }
                    None => self
                        .view
                        .set_status(format!("schedule '{name}' cannot be paused here"), true),
                }
            }
            Action::Back | Action::Quit | Action::Schedules => self.view.overlay = Overlay::None,
            _ => {}
        }
    }

    fn handle_packages(&mut self, action: Action) {
        let Overlay::Packages(dialog) = &mut self.view.overlay else {
            return;
        };
        let page = self.view.table_height.max(1) as isize;
        match action {
            Action::MoveDown => dialog.move_cursor(1),
            Action::MoveUp => dialog.move_cursor(-1),
            Action::PageDown => dialog.move_cursor(page),
            Action::PageUp => dialog.move_cursor(-page),
            Action::Top => dialog.move_cursor(isize::MIN / 2),
            Action::Bottom => dialog.move_cursor(isize::MAX / 2),
            Action::Mark => dialog.toggle_pick(),
            Action::Update => {
                // "Update only these on the hosts that need them", through the usual dialog.
                let (scope, hosts) = match dialog.scoped_update() {
                    None => return,
                    Some(Ok(chosen)) => chosen,
                    Some(Err(bad)) => {
                        self.view.set_status(format!("not updated: {bad}"), true);
                        return;
                    }
                };
                let update = JobKind::Update {
                    dry_run: false,
                    allow_removals: false,
                };
                self.view.overlay = Overlay::Confirm(
                    ConfirmDialog::new(Confirmable::Host(update), hosts).with_scope(scope),
                );
            }
            Action::Zoom | Action::Confirm => {
                let Some(group) = dialog.selected() else {
                    return;
                };
                let (name, hosts) = (group.name.clone(), group.hosts.clone());
                self.view.marks = hosts.iter().cloned().collect();
                self.view.overlay = Overlay::None;
                let n = hosts.len();
                self.view.set_status(
                    format!(
                        "marked {n} host{} needing '{name}'",
                        if n == 1 { "" } else { "s" }
                    ),
                    false,
                );
            }
            Action::Back | Action::Quit | Action::Packages => self.view.overlay = Overlay::None,
            _ => {}
        }
    }

    /// Keystrokes while the filter or log search line is open.
    fn handle_input(&mut self, key: KeyEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let filter = self.view.input == Input::Filter;
        let mut text = if filter {
            self.view.filter_text.clone()
        } else {
            self.view.search.clone()
        };
        match key.code {
            KeyCode::Enter => {
                self.view.input = Input::None;
                if !filter {
                    self.next_match();
                }
                return;
            }
            KeyCode::Esc => {
                self.view.input = Input::None;
                text.clear();
            }
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char('u') if ctrl => text.clear(),
            KeyCode::Char(c) if !ctrl => text.push(c),
            _ => return,
        }
        if filter {
            self.set_filter(text);
        } else {
            self.view.search = text;
            self.view.search_hit = None;
        }
    }

    fn set_filter(&mut self, text: String) {
        match Filter::parse(&text) {
            Ok(filter) => {
                self.view.filter = filter;
                self.view.filter_error = None;
                self.view.invalidate();
            }
            Err(err) => self.view.filter_error = Some(err.to_string()),
        }
        self.view.filter_text = text;
        self.view.cursor = 0;
        self.view.offset = 0;
    }

    fn next_match(&mut self) {
        let Some(host) = self.view.cursor_host(&self.model) else {
            return;
        };
        let from = self.view.search_hit.map_or(0, |h| h + 1);
        match host.log.find(&self.view.search, from) {
            Some(hit) => {
                self.view.search_hit = Some(hit);
                let top = hit.saturating_sub(self.view.detail_height / 2);
                self.view.log_scroll = Some(top);
                self.view.tab = Tab::Log;
            }
            None if self.view.search.is_empty() => {}
            None => {
                let text = format!("'{}' not found in {}'s log", self.view.search, host.name());
                self.view.set_status(text, true);
            }
        }
    }
}
