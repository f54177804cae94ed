//! Colours and symbols. Only the 16 ANSI colours are used, and every state also has a symbol and
//! a word, so the screen reads the same with `NO_COLOR` (no-color.org) or on a monochrome tty.

use ratatui::style::{Color, Modifier, Style};

use crate::engine::bus::StateKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to anything non-empty.
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self { color: !no_color }
    }

    pub fn plain() -> Self {
        Self { color: false }
    }

    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    pub fn state(&self, state: StateKind) -> Style {
        self.fg(match state {
            StateKind::Idle => Color::Green,
            StateKind::Querying | StateKind::Verifying => Color::Cyan,
            StateKind::PendingUpdates => Color::Yellow,
            StateKind::Updating => Color::LightBlue,
            StateKind::WaitingReboot | StateKind::Rebooting => Color::Magenta,
            StateKind::Failed => Color::Red,
        })
    }

    /// Security updates and reboot flags: they need the operator's eye.
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn error(&self) -> Style {
        self.fg(Color::Red)
    }

    pub fn dim(&self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan)
    }

    pub fn title(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// The cursor row: reverse video works with and without colour.
    pub fn cursor(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn marked(&self) -> Style {
        self.fg(Color::LightYellow)
    }
}

/// The symbol that carries a state without colour.
pub(super) fn state_symbol(state: StateKind) -> &'static str {
    match state {
        StateKind::Idle => "●",
        StateKind::Querying => "◌",
        StateKind::PendingUpdates => "◆",
        StateKind::Updating => "▲",
        StateKind::WaitingReboot => "◇",
        StateKind::Rebooting => "↻",
        StateKind::Verifying => "◎",
        StateKind::Failed => "✖",
    }
}

/// The word for a state, short enough for an 80-column table.
pub(super) fn state_word(state: StateKind) -> &'static str {
    match state {
        StateKind::Idle => "idle",
        StateKind::Querying => "querying",
        StateKind::PendingUpdates => "pending",
        StateKind::Updating => "updating",
        StateKind::WaitingReboot => "needs reboot",
        StateKind::Rebooting => "rebooting",
        StateKind::Verifying => "verifying",
        StateKind::Failed => "failed",
    }
}
