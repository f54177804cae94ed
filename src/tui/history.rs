//! The console's History overlay (`H`): the waves of the audit log, newest first, with the
//! hosts of the wave under the cursor; Enter or Tab turns to the timeline of the host under
//! the fleet cursor. The log is read off the UI thread (`spawn_blocking`) each time the overlay
//! opens (the waves) and each time a timeline opens (that host's newest records only), so a
//! long history never stalls the screen nor fills memory; results arrive on a channel the UI
//! loop selects on.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::history::model::Entry;
use crate::history::{self, History, HostFilter, Query, ReadStats};
use crate::tui::app::App;
use crate::tui::keys::Action;
use crate::tui::view::Overlay;

/// Timeline entries kept per host for the console: enough screens to scroll, bounded memory.
const CONSOLE_TIMELINE: usize = 200;

/// What reading the audit log gave: the waves, or one host's timeline, or why not.
#[derive(Debug)]
pub(crate) enum Loaded {
    Waves(Result<(History, ReadStats), String>),
    Timeline {
        host: String,
        entries: Result<Vec<Entry>, String>,
    },
}

/// Where loads come back to the UI loop.
pub(crate) struct Loads {
    pub(crate) tx: mpsc::UnboundedSender<Loaded>,
    /// Taken by the UI loop when it starts.
    pub(crate) rx: Option<mpsc::UnboundedReceiver<Loaded>>,
}

impl Loads {
    pub(crate) fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Loads { tx, rx: Some(rx) }
    }
}

/// The overlay's state.
#[derive(Debug, Clone)]
pub struct HistoryView {
    pub(crate) history: Option<Arc<History>>,
    pub(crate) error: Option<String>,
    pub(crate) unreadable: usize,
    /// Index into the waves, newest first.
    pub(crate) cursor: usize,
    pub(crate) offset: usize,
    /// Showing this host's timeline instead of the waves.
    pub(crate) timeline: Option<String>,
    /// That host's newest records, once read; `Err` when they could not be.
    pub(crate) entries: Option<Result<Arc<[Entry]>, String>>,
    /// Lines scrolled back from the newest timeline entry.
    pub(crate) scroll: usize,
}

impl HistoryView {
    fn loading() -> Self {
        HistoryView {
            history: None,
            error: None,
            unreadable: 0,
            cursor: 0,
            offset: 0,
            timeline: None,
            entries: None,
            scroll: 0,
        }
    }

    /// The overlay over an already read history (tests, and a load that came back).
    pub(crate) fn loaded(history: History, stats: &ReadStats) -> Self {
        HistoryView {
            history: Some(Arc::new(history)),
            unreadable: stats.unreadable,
            ..HistoryView::loading()
        }
    }

    /// The waves, newest first.
    pub(crate) fn waves(&self) -> impl Iterator<Item = &history::Wave> {
        self.history.iter().flat_map(|h| h.waves.iter().rev())
    }

    fn wave_count(&self) -> usize {
        self.history.as_ref().map_or(0, |h| h.waves.len())
    }
}

impl App {
    /// Opens the overlay and starts reading the waves.
    pub(crate) fn open_history(&mut self) {
        self.view.overlay = Overlay::History(HistoryView::loading());
        self.load_history(None);
    }

    /// Reads the waves (`None`), or `host`'s timeline, off the UI thread.
    fn load_history(&self, host: Option<String>) {
        let path = self.engine.audit_file().to_path_buf();
        let done = self.history_loads.tx.clone();
        let read = move || {
            let loaded = match host {
                None => Loaded::Waves(
                    history::load(&path, Query::default()).map_err(|e| crate::errors::chain(&e)),
                ),
                Some(host) => {
                    let query = Query {
                        hosts: HostFilter {
                            only: Some([host.clone()].into()),
                            exclude: Default::default(),
                        },
                        since: None,
                        timeline_limit: Some(CONSOLE_TIMELINE),
                    };
                    let entries = history::load(&path, query)
                        .map(|(mut h, _)| h.timelines.remove(&host).unwrap_or_default())
                        .map_err(|e| crate::errors::chain(&e));
                    Loaded::Timeline { host, entries }
                }
            };
            // Gone only when the console is: nobody to show it to.
            let _ = done.send(loaded);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(read);
            }
            Err(_) => read(),
        }
    }

    /// A load came back: shown if the overlay still waits for it.
    pub(crate) fn history_loaded(&mut self, loaded: Loaded) {
        let Overlay::History(view) = &mut self.view.overlay else {
            return;
        };
        match loaded {
            Loaded::Waves(_) if view.history.is_some() || view.error.is_some() => return,
            Loaded::Waves(Ok((history, stats))) => *view = HistoryView::loaded(history, &stats),
            Loaded::Waves(Err(error)) => view.error = Some(error),
            Loaded::Timeline { host, entries } => {
                if view.timeline.as_deref() != Some(host.as_str()) {
                    return;
                }
                view.entries = Some(entries.map(Arc::from));
            }
        }
        self.dirty = true;
    }

    pub(crate) fn handle_history(&mut self, action: Action) {
        let host = self
            .view
            .cursor_host(&self.model)
            .map(|h| h.name().to_string());
        let Overlay::History(view) = &mut self.view.overlay else {
            return;
        };
        let page = 10;
        match (action, view.timeline.is_some()) {
            (Action::Back | Action::Quit | Action::History, _) => {
                self.view.overlay = Overlay::None;
            }
            (Action::Zoom | Action::NextTab | Action::PrevTab, false) => {
                view.timeline.clone_from(&host);
                view.entries = None;
                view.scroll = 0;
                if host.is_some() {
                    self.load_history(host);
                }
            }
            (Action::Zoom | Action::NextTab | Action::PrevTab, true) => view.timeline = None,
            (Action::MoveDown, false) => {
                view.cursor = (view.cursor + 1).min(view.wave_count().saturating_sub(1))
            }
            (Action::MoveUp, false) => view.cursor = view.cursor.saturating_sub(1),
            (Action::PageDown, false) => {
                view.cursor = (view.cursor + page).min(view.wave_count().saturating_sub(1))
            }
            (Action::PageUp, false) => view.cursor = view.cursor.saturating_sub(page),
            (Action::Top, false) => view.cursor = 0,
            (Action::Bottom, false) => view.cursor = view.wave_count().saturating_sub(1),
            // The timeline shows the newest entries last; scrolling goes back in time.
            (Action::MoveUp, true) => view.scroll += 1,
            (Action::MoveDown, true) => view.scroll = view.scroll.saturating_sub(1),
            (Action::PageUp, true) => view.scroll += page,
            (Action::PageDown, true) => view.scroll = view.scroll.saturating_sub(page),
            (Action::Top, true) => view.scroll = usize::MAX / 2,
            (Action::Bottom, true) => view.scroll = 0,
            _ => {}
        }
    }
}
