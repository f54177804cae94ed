//! The full-screen console: a pure view over a model fed by engine events (DESIGN.md §8).
//!
//! The TUI never calls SSH and never edits host state. Engine news arrives only through
//! `FleetModel::apply`; a confirmed key press is one call on the `EngineHandle` (a job with
//! `Origin::Console`, or a wave control) that returns at once. Render never awaits and does no
//! I/O. Layout: `terminal` (enter/restore), `app` (the loop), `actions` (what keys do), `model`
//! (the fleet), `view` (cursor, marks, dialogs), `keys` (the one keymap table), `filter`,
//! `dialogs`, `views/` (drawing).

mod actions;
mod app;
mod dialogs;
mod filter;
mod history;
mod keys;
mod model;
mod plan_preview;
pub(crate) mod sanitize;
mod schedules;
mod scrollback;
mod terminal;
mod theme;
mod view;
mod views;

#[cfg(test)]
mod app_tests;
#[cfg(test)]
mod schedule_tests;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod wave_prompt_tests;

use tokio::sync::mpsc;

pub use app::{App, Settings};
pub use dialogs::WaveDefaults;
pub use keys::{KeyError, KeyMap};
pub use model::{DEFAULT_LOG_LINES, FleetModel, HostRow};
pub use theme::Theme;

use std::sync::Arc;

use crate::config::Config;
use crate::engine::bus::Event;
use crate::engine::{Engine, EngineDeps, EngineHandle};

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("setting up the terminal")]
    Terminal(#[source] std::io::Error),
    #[error("reading the keyboard")]
    Input(#[source] std::io::Error),
    #[error("drawing the screen")]
    Draw(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Settings {
    /// Settings from the config: `[keys]` overrides (which may be wrong: that is a usage error),
    /// `[fleet]` wave defaults, `NO_COLOR`.
    pub fn from_config(config: &Config, read_only: bool) -> Result<Settings, KeyError> {
        Ok(Settings {
            read_only,
            keys: KeyMap::new(&config.keys)?,
            theme: Theme::from_env(),
            wave_defaults: WaveDefaults {
                batch_sizes: config.fleet.batch_size.clone(),
                delay: config.fleet.delay,
                max_failures: config.fleet.max_failures,
                mode: config.fleet.wave_mode,
                on_threshold: config
                    .fleet
                    .on_threshold
                    .unwrap_or(crate::config::OnThreshold::Pause),
            },
            startup_warning: None,
            schedule_state: None,
        })
    }
}

/// How the console ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The operator quit.
    Quit,
    /// SIGINT, SIGTERM or SIGHUP, or the terminal went away (a dropped ssh session): stopped
    /// cleanly all the same.
    Interrupted,
}

/// Takes over the terminal, runs the console until the operator quits or a signal arrives, and
/// gives the terminal back on every path (return, error, signal, panic).
pub async fn run(
    model: FleetModel,
    engine: EngineHandle,
    events: mpsc::Receiver<Event>,
    settings: Settings,
) -> Result<Ended, TuiError> {
    // Installed before the screen changes, so a signal can never leave it half set up.
    let mut signals = crate::signals::StopSignals::new().map_err(TuiError::Terminal)?;
    let mut guard = terminal::TerminalGuard::enter().map_err(TuiError::Terminal)?;
    let app = App::new(model, engine, settings);
    // Dropping the app future on a signal is safe: every branch of its select! is cancel-safe
    // and it owns nothing that needs more than Drop.
    let result = tokio::select! {
        result = app.run(guard.terminal(), events) => match result {
            Ok(()) => Ok(Ended::Quit),
            // Drawing on a terminal that went away (SIGHUP ignored, so no signal said so) fails
            // with EIO: that is the terminal gone, not a console error.
            Err(_) if terminal::is_gone() => Ok(Ended::Interrupted),
            Err(e) => Err(e),
        },
        () = signals.recv() => Ok(Ended::Interrupted),
        () = terminal::gone() => Ok(Ended::Interrupted),
    };
    drop(guard);
    if let Ok(Ended::Interrupted) = result {
        terminal::park_input();
    }
    result
}

/// The console over the configured fleet: starts the engine, opens the screen on the engine's
/// restored picture, and stops the engine once the screen is gone (upgrades in flight go on as
/// detached jobs on their hosts, picked up at the next start: see `EngineHandle::stop`).
pub async fn console(
    config: Arc<Config>,
    deps: EngineDeps,
    settings: Settings,
) -> Result<Ended, TuiError> {
    let (engine, events) = Engine::start(config.clone(), deps);
    let mut model = FleetModel::from_config(&config, DEFAULT_LOG_LINES);
    model.restore(engine.initial());
    tracing::info!(
        hosts = model.hosts().len(),
        read_only = settings.read_only,
        "console started"
    );
    let result = run(model, engine.clone(), events, settings).await;
    if let Ok(Ended::Interrupted) = result {
        tracing::info!(
            "console interrupted (a signal, or its terminal went away); stopping the engine"
        );
    }
    // The terminal may be gone (SIGHUP): `stdio` never panics on a dead one.
    let notice = || {
        crate::stdio::err_line(
            "tendhost: waiting for host steps to stop; press Ctrl-C to stop at once (upgrades \
             go on on their hosts and are picked up at the next start)",
        )
    };
    if !engine.stop(notice).await {
        tracing::warn!("some host steps did not stop within the shutdown grace period");
    }
    result
}
