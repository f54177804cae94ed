//! Entering and leaving the full screen, and making sure we always leave.
//!
//! The terminal is restored on every exit path: [`TerminalGuard`]'s `Drop` covers returns and
//! errors, and [`install_panic_hook`] (set after color-eyre's, which it then calls) covers panics,
//! so a crash report is printed on a sane screen, not into the alternate one. A terminal that
//! went away ends the console like SIGHUP ([`gone`]), and [`park_input`] then keeps it from
//! making crossterm spin.

use std::io::{self, IsTerminal, Stdout, stdout};
use std::mem::ManuallyDrop;
use std::sync::{Once, OnceLock};
use std::time::Duration;

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub(super) type Tty = Terminal<CrosstermBackend<Stdout>>;

/// Owns the full-screen terminal; dropping it restores the user's terminal.
pub(super) struct TerminalGuard {
    /// Never dropped: ratatui's `Terminal::drop` shows the cursor and `eprintln!`s when that
    /// fails, which panics on a terminal that is gone (EIO), inside a drop, and the panic hook's
    /// own report then aborts the process. [`restore`] shows the cursor itself, quietly; the
    /// buffers left behind are freed when the process exits moments later.
    terminal: ManuallyDrop<Tty>,
}

impl TerminalGuard {
    /// Switches to raw mode and the alternate screen.
    pub(super) fn enter() -> io::Result<Self> {
        install_panic_hook();
        enable_raw_mode()?;
        // From here on, an error must undo raw mode: the guard does that once it exists.
        let guard = Self {
            terminal: ManuallyDrop::new(Terminal::new(CrosstermBackend::new(stdout()))?),
        };
        execute!(stdout(), EnterAlternateScreen, Hide)?;
        Ok(guard)
    }

    pub(super) fn terminal(&mut self) -> &mut Tty {
        &mut self.terminal
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the alternate screen and raw mode. Safe to call twice; errors are ignored because
/// there is nothing better to do with them while exiting.
pub(super) fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, Show);
}

/// How often [`gone`] looks at the terminal.
const TTY_CHECK: Duration = Duration::from_secs(2);

/// Returns once the terminal the console draws on is gone (hung up: it no longer answers as a
/// terminal), for the case no SIGHUP says so (a session leader that ignores or traps it):
/// crossterm's reader never reports a dead terminal, it spins on it. Pending forever when
/// stdout was no terminal to begin with. One `isatty` every [`TTY_CHECK`]: no cost to speak of.
pub(super) async fn gone() {
    if !stdout().is_terminal() {
        return std::future::pending().await;
    }
    let mut check = tokio::time::interval(TTY_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        check.tick().await;
        if is_gone() {
            return;
        }
    }
}

/// Whether the console's terminal has gone away (a hung-up tty is no longer a terminal).
pub(super) fn is_gone() -> bool {
    !stdout().is_terminal()
}

/// After the console ended on a signal, when the terminal may be gone (a dropped ssh session):
/// points stdin at a pipe nobody writes to. crossterm's reader thread, which outlives the
/// console until the process exits, re-reads a hung-up tty forever (read returns 0 or EIO,
/// crossterm #793) and would keep a core busy while the engine lets upgrades finish; on the
/// pipe its read just blocks. The pipe's write end is held open so reads block rather than see
/// an end of file. Best effort: nothing else reads stdin any more.
pub(super) fn park_input() {
    static WRITE_END: OnceLock<std::os::fd::OwnedFd> = OnceLock::new();
    let Ok((read, write)) = nix::unistd::pipe() else {
        return;
    };
    if nix::unistd::dup2_stdin(&read).is_ok() {
        let _ = WRITE_END.set(write);
    }
}

/// Restores the terminal before the previously installed hook (color-eyre's) prints the panic.
pub(super) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn panic_hook_restores_then_hands_over_to_the_previous_hook() {
        static PREVIOUS_RAN: AtomicBool = AtomicBool::new(false);
        // Stands in for color-eyre's hook, which main installs first.
        let original = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PREVIOUS_RAN.store(true, Ordering::SeqCst);
            original(info);
        }));
        install_panic_hook();
        let result = std::panic::catch_unwind(|| panic!("boom (expected by this test)"));
        assert!(result.is_err());
        assert!(
            PREVIOUS_RAN.load(Ordering::SeqCst),
            "the previous hook must still report"
        );
        // Restoring twice (guard drop after the hook) must be harmless.
        restore();
        restore();
    }
}
