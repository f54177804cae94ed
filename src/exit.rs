//! The exit codes of DESIGN.md §3, in one place. README repeats this table.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every selected host succeeded.
    Ok = 0,
    /// At least one host failed, or a wave halted.
    HostFailed = 1,
    /// Usage or config error.
    Usage = 2,
    /// Interrupted (SIGINT, SIGTERM, SIGHUP) after a clean stop.
    Interrupted = 3,
    /// Another tendhost holds the state lock.
    Locked = 4,
    /// A wave paused at its threshold (`--on-threshold pause`); `--resume` continues it.
    ThresholdPaused = 5,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}
