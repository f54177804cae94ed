//! View state: what the operator is looking at, apart from the fleet itself.
//!
//! Cursor, scroll, marks, filter, sort, the open tab and the open dialog live here, owned by the
//! UI task and lent `&mut` to render (STYLE.md §2). The visible row list is derived from the model
//! and cached by the model's generation, so a frame never filters 10,000 hosts twice.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::config::HostId;
use crate::engine::bus::StateKind;
use crate::tui::dialogs::{ConfirmDialog, PackagesDialog, ResumeDialog, WaveDialog};
use crate::tui::filter::Filter;
use crate::tui::model::{FleetModel, HostRow};

/// The tabs of the detail pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Inventory,
    Pending,
    Log,
    AppLog,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Inventory, Tab::Pending, Tab::Log, Tab::AppLog];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Inventory => "Inventory",
            Tab::Pending => "Pending",
            Tab::Log => "Log",
            Tab::AppLog => "App log",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }

    pub fn next(self) -> Tab {
        Tab::ALL[(self.index() + 1) % Tab::ALL.len()]
    }

    pub fn prev(self) -> Tab {
        Tab::ALL[(self.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    State,
    Pending,
    Updated,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Name => SortKey::State,
            SortKey::State => SortKey::Pending,
            SortKey::Pending => SortKey::Updated,
            SortKey::Updated => SortKey::Name,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::State => "state",
            SortKey::Pending => "pending",
            SortKey::Updated => "updated",
        }
    }
}

/// Which line editor, if any, is taking keystrokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    None,
    Filter,
    LogSearch,
}

/// A dialog over the main screen. At most one is open.
#[derive(Debug, Clone)]
pub enum Overlay {
    None,
    Help {
        scroll: usize,
    },
    Confirm(ConfirmDialog),
    Wave(WaveDialog),
    /// The wave dialog's plan, host by host; going back returns to the dialog as it was.
    Plan {
        dialog: WaveDialog,
        scroll: usize,
    },
    Packages(PackagesDialog),
    /// Past waves and a host's timeline, from the audit log (`tui::history`).
    History(crate::tui::history::HistoryView),
    /// The wave paused at its threshold: which hosts failed and why, and the four choices
    /// (read from the model's wave progress).
    Threshold,
    /// At start: the unfinished wave the snapshot holds, to resume, discard or leave.
    ResumeWave(ResumeDialog),
    /// The configured schedules: next and last runs, their results; one pauses or resumes.
    Schedules {
        cursor: usize,
    },
}

/// A message on the status line until the next key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

#[derive(Debug, Clone)]
pub struct ViewState {
    /// Index into `visible` of the cursor row.
    pub cursor: usize,
    /// The first visible row shown in the table window.
    pub offset: usize,
    /// Model indices of the hosts passing the filter, in sort order.
    visible: Vec<usize>,
    visible_key: Option<(u64, u64)>,
    /// Bumped when the filter or sort changes, to invalidate `visible`.
    view_generation: u64,
    pub marks: HashSet<HostId>,
    pub filter_text: String,
    pub filter: Filter,
    pub filter_error: Option<String>,
    pub input: Input,
    pub tab: Tab,
    pub zoomed: bool,
    /// Top line of the log window; `None` follows the newest line.
    pub log_scroll: Option<usize>,
    /// Top line of the Inventory and Pending tabs.
    pub detail_scroll: usize,
    pub search: String,
    pub search_hit: Option<usize>,
    pub sort: SortKey,
    pub overlay: Overlay,
    pub status: Option<Status>,
    pub read_only: bool,
    /// Set by render: a relative time ("3m ago") is on screen, so a slow clock tick must redraw.
    pub shows_relative_times: bool,
    /// Set by render: rows in the table window, for PgUp/PgDn.
    pub table_height: usize,
    /// Set by render: lines in the detail window, for scrolling.
    pub detail_height: usize,
    /// The clock render uses for relative times (tests pin it).
    pub now: DateTime<Utc>,
    /// Set by the app when `q` should ask first.
    pub quit_pending: bool,
}

impl ViewState {
    pub fn new(read_only: bool) -> Self {
        Self {
            cursor: 0,
            offset: 0,
            visible: Vec::new(),
            visible_key: None,
            view_generation: 0,
            marks: HashSet::new(),
            filter_text: String::new(),
            filter: Filter::default(),
            filter_error: None,
            input: Input::None,
            tab: Tab::Inventory,
            zoomed: false,
            log_scroll: None,
            detail_scroll: 0,
            search: String::new(),
            search_hit: None,
            sort: SortKey::Name,
            overlay: Overlay::None,
            status: None,
            read_only,
            shows_relative_times: false,
            table_height: 10,
            detail_height: 8,
            now: Utc::now(),
            quit_pending: false,
        }
    }

    pub fn visible(&self) -> &[usize] {
        &self.visible
    }

    /// Recomputes the visible rows when the model or the filter/sort changed, keeping the cursor
    /// on the same host when it is still visible.
    pub fn sync(&mut self, model: &FleetModel) {
        let key = (model.generation(), self.view_generation);
        if self.visible_key == Some(key) {
            return;
        }
        let current = self
            .cursor_index()
            .and_then(|i| model.host(i))
            .map(|h| h.name().clone());
        let hosts = model.hosts();
        self.visible.clear();
        self.visible
            .extend((0..hosts.len()).filter(|&i| self.filter.matches(&hosts[i])));
        sort_rows(&mut self.visible, hosts, self.sort);
        self.visible_key = Some(key);
        self.cursor = current
            .and_then(|name| self.visible.iter().position(|&i| *hosts[i].name() == name))
            .unwrap_or(self.cursor)
            .min(self.visible.len().saturating_sub(1));
    }

    /// Forces the next `sync` to recompute (filter or sort changed).
    pub fn invalidate(&mut self) {
        self.view_generation += 1;
    }

    /// The model index of the host under the cursor.
    pub fn cursor_index(&self) -> Option<usize> {
        self.visible.get(self.cursor).copied()
    }

    pub fn cursor_host<'m>(&self, model: &'m FleetModel) -> Option<&'m HostRow> {
        self.cursor_index().and_then(|i| model.host(i))
    }

    /// The hosts an action applies to: the marked ones, else the cursor host.
    pub fn targets(&self, model: &FleetModel) -> Vec<HostId> {
        if self.marks.is_empty() {
            self.cursor_host(model)
                .map(|h| vec![h.name().clone()])
                .unwrap_or_default()
        } else {
            model
                .hosts()
                .iter()
                .filter(|h| self.marks.contains(h.name()))
                .map(|h| h.name().clone())
                .collect()
        }
    }

    /// The hosts a wave covers: the marked ones, else every host the filter shows.
    pub fn wave_targets(&self, model: &FleetModel) -> (Vec<HostId>, &'static str) {
        if self.marks.is_empty() {
            let hosts = self
                .visible
                .iter()
                .filter_map(|&i| model.host(i))
                .map(|h| h.name().clone())
                .collect();
            let source = if self.filter.is_empty() {
                "all hosts"
            } else {
                "filtered hosts"
            };
            (hosts, source)
        } else {
            (self.targets(model), "marked hosts")
        }
    }

    /// Moves the cursor by `delta` rows, clamped.
    pub fn move_cursor(&mut self, delta: isize) {
        let last = self.visible.len().saturating_sub(1);
        self.cursor = self.cursor.saturating_add_signed(delta).min(last);
        self.log_scroll = None;
        self.detail_scroll = 0;
        self.search_hit = None;
    }

    pub fn set_status(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some(Status {
            text: text.into(),
            error,
        });
    }

    /// Keeps the cursor inside a window of `height` rows starting at `offset`.
    pub fn scroll_into_view(&mut self, height: usize) {
        let height = height.max(1);
        if self.cursor < self.offset {
            self.offset = self.cursor;
        } else if self.cursor >= self.offset + height {
            self.offset = self.cursor + 1 - height;
        }
        let max_offset = self.visible.len().saturating_sub(height);
        self.offset = self.offset.min(max_offset);
    }
}

fn sort_rows(rows: &mut [usize], hosts: &[HostRow], key: SortKey) {
    let state_rank = |s: StateKind| match s {
        StateKind::Failed => 0,
        StateKind::Updating | StateKind::Rebooting | StateKind::Verifying => 1,
        StateKind::Querying => 2,
        StateKind::WaitingReboot => 3,
        StateKind::PendingUpdates => 4,
        StateKind::Idle => 5,
    };
    match key {
        // Config order is the operator's order; keep it for "name".
        SortKey::Name => rows.sort_by(|&a, &b| hosts[a].name().cmp(hosts[b].name())),
        SortKey::State => {
            rows.sort_by_key(|&i| (state_rank(hosts[i].state()), hosts[i].name().clone()))
        }
        SortKey::Pending => rows.sort_by_key(|&i| {
            let h = &hosts[i];
            (
                std::cmp::Reverse(h.security()),
                std::cmp::Reverse(h.pending_count().unwrap_or(0)),
                h.name().clone(),
            )
        }),
        SortKey::Updated => {
            rows.sort_by_key(|&i| (hosts[i].model.state.last_update, hosts[i].name().clone()))
        }
    }
}
