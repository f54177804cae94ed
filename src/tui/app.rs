//! The UI task: one `select!` over terminal input, engine events and two timers.
//!
//! Engine events are drained, then drawn once; redraws happen only when something changed, at
//! most once per `FRAME_BUDGET` (a key press is drawn at once); the clock ticks only while a
//! relative time is on screen, so an idle fleet costs ~0% CPU. The app holds the engine's
//! [`EngineHandle`] and key handling (`actions.rs`) calls it directly; drawing lives in `views/`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::StreamExt;
use ratatui::backend::Backend;
use ratatui::{Frame, Terminal};
use tokio::sync::mpsc;
use tokio::time::{self, MissedTickBehavior};

use crate::engine::EngineHandle;
use crate::engine::bus::Event;
use crate::engine::bus::WaveStatus;
use crate::tui::TuiError;
use crate::tui::dialogs::{ResumeDialog, WaveDefaults};
use crate::tui::keys::KeyMap;
use crate::tui::model::FleetModel;
use crate::tui::schedules::{Notice, Scheduler};
use crate::tui::theme::Theme;
use crate::tui::view::{Overlay, Tab, ViewState};
use crate::tui::views::{self, Ctx};

/// At most one frame per this long (~60 fps): bursts of events cost one draw, not one each.
pub(super) const FRAME_BUDGET: Duration = Duration::from_millis(16);
/// Relative times ("3m ago") have minute resolution; this keeps them honest.
const CLOCK_TICK: Duration = Duration::from_secs(15);
/// tui-logger fills its buffer from its own thread; poll it only while the App log is shown.
const APP_LOG_TICK: Duration = Duration::from_millis(250);
/// Most events folded in before a frame, so a firehose cannot starve the screen.
const MAX_DRAIN: usize = 10_000;
/// The schedule timer looks at the wall clock at least this often, so a clock change or a
/// suspended laptop delays a due run by at most this much.
const SCHEDULE_RECHECK: Duration = Duration::from_secs(60);

/// Everything the console is told at start besides the fleet.
#[derive(Debug, Clone)]
pub struct Settings {
    pub read_only: bool,
    pub keys: KeyMap,
    pub theme: Theme,
    pub wave_defaults: WaveDefaults,
    /// Said on the status line when the console opens (a snapshot that could not be restored):
    /// the operator looks at the screen, not at the log.
    pub startup_warning: Option<String>,
    /// Where schedules' state lives (`schedules.json`); `None` (read-only, tests): the console
    /// shows its schedules but never starts, pauses or records them.
    pub schedule_state: Option<PathBuf>,
}

pub struct App {
    pub model: FleetModel,
    pub view: ViewState,
    pub keys: KeyMap,
    pub theme: Theme,
    /// Where key presses go: jobs with the console as their origin, and wave controls. Every
    /// call on it returns at once (a full host queue is an immediate error), so the UI task
    /// never waits on a host.
    pub(crate) engine: EngineHandle,
    pub(crate) wave_defaults: WaveDefaults,
    /// `[[schedule]]` waves this console starts by itself.
    pub(crate) scheduler: Scheduler,
    pub(crate) quit: bool,
    pub(crate) dirty: bool,
    /// History overlay loads coming back from their blocking task.
    pub(crate) history_loads: crate::tui::history::Loads,
}

impl App {
    /// The console over `model` (the rows it draws, usually restored from the engine's
    /// snapshot), asking `engine` for whatever the operator confirms.
    pub fn new(model: FleetModel, engine: EngineHandle, settings: Settings) -> Self {
        let mut view = ViewState::new(settings.read_only);
        let state_path = settings.schedule_state.filter(|_| !settings.read_only);
        let (scheduler, schedule_warning) =
            Scheduler::load(engine.config(), state_path, Utc::now());
        let mut model = model;
        model.set_detected_guests(&engine.detected_guests());
        if let Some(warning) = settings.startup_warning.or(schedule_warning) {
            view.set_status(format!("warning: {warning}"), true);
        }
        if let Some(saved) = engine.saved_wave()
            && !settings.read_only
        {
            let differences = saved.differences(engine.config());
            view.overlay = Overlay::ResumeWave(ResumeDialog { saved, differences });
        }
        Self {
            model,
            view,
            keys: settings.keys,
            theme: settings.theme,
            engine,
            wave_defaults: settings.wave_defaults,
            scheduler,
            quit: false,
            dirty: true,
            history_loads: crate::tui::history::Loads::new(),
        }
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// Folds an engine event into the model.
    pub fn apply(&mut self, event: &Event) {
        self.model.apply(event);
        if let Event::Wave(progress) = event {
            self.scheduler.on_wave(progress);
        }
        // The hub matched a hypervisor's guests before it sent this on.
        if let Event::InventoryRefreshed { inventory, .. } = event
            && inventory.hypervisor.is_some()
        {
            self.model
                .set_detected_guests(&self.engine.detected_guests());
        }
        if let Event::Wave(progress) = event
            && progress.status == WaveStatus::Threshold
            && matches!(self.view.overlay, Overlay::None)
        {
            self.view.overlay = Overlay::Threshold;
        }
        // A refusal answers something the operator just asked for: say it where they look, in
        // the words the model kept (cleaned of whatever the host sent).
        if let Event::Refused { host, job, .. } = event {
            let row = self.model.position(host).and_then(|i| self.model.host(i));
            if let Some((_, reason)) = row.and_then(|row| row.model.refused.as_ref()) {
                self.view
                    .set_status(format!("{host}: {} refused: {reason}", job.name()), true);
            }
        }
        self.dirty = true;
    }

    /// Draws the whole screen from the model and the view state.
    pub fn draw(&mut self, frame: &mut Frame) {
        if let Overlay::Packages(dialog) = &mut self.view.overlay {
            dialog.rebuild(&self.model);
        }
        // The wave's plan follows the dialog's settings and whatever the hosts reported.
        self.refresh_wave_plan();
        let ctx = Ctx {
            model: &self.model,
            keys: &self.keys,
            theme: self.theme,
            schedules: &self.scheduler,
        };
        views::render(frame, ctx, &mut self.view);
    }

    /// Runs on the real keyboard until the operator quits.
    pub async fn run<B: Backend>(
        self,
        terminal: &mut Terminal<B>,
        events: mpsc::Receiver<Event>,
    ) -> Result<(), TuiError>
    where
        B::Error: Send + Sync + 'static,
    {
        self.run_with_input(terminal, events, EventStream::new())
            .await
    }

    /// Runs until `q` is confirmed or `input` ends. `input` is crossterm's `EventStream` in
    /// production; the benchmark feeds keys through a channel to time key-to-screen latency.
    pub async fn run_with_input<B, I>(
        mut self,
        terminal: &mut Terminal<B>,
        mut events: mpsc::Receiver<Event>,
        mut input: I,
    ) -> Result<(), TuiError>
    where
        B: Backend,
        B::Error: Send + Sync + 'static,
        I: futures::Stream<Item = std::io::Result<TermEvent>> + Unpin,
    {
        let mut frame = time::interval(FRAME_BUDGET);
        frame.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut clock = time::interval(CLOCK_TICK);
        clock.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut app_log = time::interval(APP_LOG_TICK);
        app_log.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut engine_open = true;
        let missed = self.scheduler.answer_missed(&self.engine, Utc::now());
        self.show_notices(missed);
        let mut history_loaded = self.history_loads.rx.take();
        while !self.quit {
            let schedule_wake = self.scheduler.next_wake().map(until_wake);
            tokio::select! {
                // All branches are cancel-safe: EventStream::next, recv and tick lose nothing.
                input_event = input.next() => match input_event {
                    Some(Ok(event)) => {
                        self.handle_terminal_event(event);
                        // A key is answered at once rather than at the next frame tick: keys are
                        // rare, so this costs nothing and halves key-to-screen latency.
                        if self.dirty && !self.quit {
                            self.draw_now(terminal)?;
                            frame.reset();
                        }
                    }
                    Some(Err(err)) => return Err(TuiError::Input(err)),
                    None => return Ok(()), // stdin closed: nobody can press q
                },
                event = events.recv(), if engine_open => match event {
                    Some(event) => {
                        self.apply(&event);
                        let mut drained = 1;
                        while drained < MAX_DRAIN {
                            let Ok(event) = events.try_recv() else { break };
                            self.apply(&event);
                            drained += 1;
                        }
                    }
                    None => {
                        engine_open = false;
                        self.view.set_status("the engine stopped; press q to quit", true);
                        self.dirty = true;
                    }
                },
                Some(loaded) = next_load(&mut history_loaded) => self.history_loaded(loaded),
                _ = frame.tick(), if self.dirty => self.draw_now(terminal)?,
                _ = clock.tick(), if self.view.shows_relative_times => self.dirty = true,
                _ = app_log.tick(), if self.view.tab == Tab::AppLog => self.dirty = true,
                () = time::sleep(schedule_wake.unwrap_or_default()), if schedule_wake.is_some() => {
                    let started = self.scheduler.answer_due(&self.engine, Utc::now());
                    self.show_notices(started);
                }
            }
        }
        // A pause pressed just before `q` is on disk before the console is gone.
        self.scheduler.flush().await;
        Ok(())
    }

    /// What the scheduler did goes on the status line (and, through it, the log and audit).
    fn show_notices(&mut self, notices: Vec<Notice>) {
        for notice in notices {
            self.view.set_status(notice.text, notice.error);
            self.dirty = true;
        }
    }

    fn draw_now<B>(&mut self, terminal: &mut Terminal<B>) -> Result<(), TuiError>
    where
        B: Backend,
        B::Error: Send + Sync + 'static,
    {
        self.view.now = Utc::now();
        terminal
            .draw(|f| self.draw(f))
            .map_err(|e| TuiError::Draw(Box::new(e)))?;
        self.dirty = false;
        Ok(())
    }

    fn handle_terminal_event(&mut self, event: TermEvent) {
        match event {
            TermEvent::Key(key) if key.kind != KeyEventKind::Release => self.handle_key(key),
            TermEvent::Resize(..) | TermEvent::FocusGained => self.dirty = true,
            _ => {}
        }
    }
}

/// How long to sleep until `wake`: never past [`SCHEDULE_RECHECK`], so the wall clock is read
/// again even if it jumped.
fn until_wake(wake: DateTime<Utc>) -> Duration {
    (wake - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO)
        .min(SCHEDULE_RECHECK)
}

/// The next History load, or never when there is no receiver (cancel-safe: `recv` is).
async fn next_load(
    rx: &mut Option<mpsc::UnboundedReceiver<crate::tui::history::Loaded>>,
) -> Option<crate::tui::history::Loaded> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
