//! How tendhost runs a command on a host: the `Executor` trait and its two transports.
//!
//! Everything above this module (package managers, inventory, the engine) speaks only through
//! `Executor`, so an SSH host and the local machine behave the same and tests can substitute a
//! simulated executor. Nothing here knows about package managers or the state machine.

mod auth;
mod capture;
pub(crate) mod child;
mod context;
mod error;
mod factory;
pub mod job;
pub(crate) mod known_hosts;
mod lines;
mod local;
mod quote;
mod ssh;
pub(crate) mod ssh_config;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use capture::{STDERR_LIMIT, STDOUT_LIMIT};
pub use context::{ENV_KEY, OwnFiles, RemoteContext, Secret, keep_env_key};
pub use error::Error;
pub use factory::executor_for;
pub use lines::MAX_LINE;
pub use local::LocalExecutor;
pub use quote::quote;
pub use ssh::{HandshakeThrottle, SshExecutor};

/// Which stream a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of a command's output, sent as soon as it is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: Stream,
    /// The line without its terminator; one longer than [`MAX_LINE`] bytes is cut there and
    /// ends with `… [N bytes cut]`.
    pub line: String,
    /// How many bytes of the stream this line took, its `\n` included: more than `line.len()`
    /// when a `\r` was trimmed, invalid UTF-8 replaced or the line cut (the cut bytes count
    /// too). Summed, they give the exact byte offset a reader of a growing file resumes from
    /// (see `remote::job`). An unterminated last line is only sent when the command ended
    /// normally, so a cut connection never counts half a line.
    pub bytes: u64,
}

impl OutputLine {
    /// A line that took `line.len() + 1` bytes (for executors and tests that make lines up).
    pub fn new(stream: Stream, line: impl Into<String>) -> Self {
        let line = line.into();
        let bytes = line.len() as u64 + 1;
        OutputLine {
            stream,
            line,
            bytes,
        }
    }
}

/// A shell command to run on a host, with how to run it.
#[derive(Debug, Clone)]
pub struct RemoteCommand {
    /// A POSIX `sh` script. Anything interpolated into it must go through [`quote`].
    pub script: String,
    /// Run as root: prefixed with `sudo -n` when the login user is not root.
    pub privileged: bool,
    /// Kill the command (and report [`Error::Timeout`]) after this long. A detached job is
    /// never killed: its follower gives up instead (see [`job::JobExecutor`]).
    pub timeout: Duration,
    /// Set for commands that change the host: run as a detached job by a
    /// [`job::JobExecutor`]; any other executor runs them attached, as plain commands.
    pub detached: Option<job::Detach>,
}

impl RemoteCommand {
    pub fn new(script: impl Into<String>, timeout: Duration) -> Self {
        Self {
            script: script.into(),
            privileged: false,
            timeout,
            detached: None,
        }
    }

    pub fn privileged(mut self) -> Self {
        self.privileged = true;
        self
    }

    /// Marks a command that changes the host, to run as a detached job named `label` (always
    /// as root: jobs and the host lock live under `/var/lib/tendhost`).
    pub fn detached(mut self, label: &'static str, follow: job::Follow) -> Self {
        self.privileged = true;
        self.detached = Some(job::Detach { label, follow });
        self
    }

    /// The script as a transport hands it to the shell of a login user who is (or is not)
    /// root: wrapped by [`privileged_script`] when the command is privileged.
    pub fn script_for(&self, user_is_root: bool) -> String {
        if self.privileged {
            privileged_script(&self.script, user_is_root)
        } else {
            self.script.clone()
        }
    }
}

/// How a command ended, plus what it printed, within a bound per stream whatever the host
/// prints: parsers need the head of stdout, diagnostics the tail of stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// `None` when the process died of a signal (see `signal`).
    pub exit_code: Option<u32>,
    pub signal: Option<String>,
    /// The first [`STDOUT_LIMIT`] bytes of stdout (see `stdout_dropped`).
    pub stdout: String,
    /// The last [`STDERR_LIMIT`] bytes of stderr (see `stderr_dropped`).
    pub stderr: String,
    /// Bytes of stdout beyond [`STDOUT_LIMIT`], not kept. Non-zero means `stdout` is only the
    /// start of what the command printed: a parser must say so ([`Self::stdout_truncated`])
    /// rather than read a cut list as the whole one.
    pub stdout_dropped: u64,
    /// Bytes at the start of stderr that did not fit in [`STDERR_LIMIT`], not kept.
    pub stderr_dropped: u64,
}

/// At most this much of a command's own words goes into an error message.
const DIAGNOSTIC_LIMIT: usize = 2 * 1024;

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// `stdout` lacks the end of what the command printed (it passed [`STDOUT_LIMIT`]).
    pub fn stdout_truncated(&self) -> bool {
        self.stdout_dropped > 0
    }

    /// Where the command said what went wrong: the end of stderr, or of stdout when stderr is
    /// blank; at most the last 2 KiB of it, since it ends up in error messages and the state.
    pub fn diagnostic(&self) -> &str {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let mut start = text.len().saturating_sub(DIAGNOSTIC_LIMIT);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        &text[start..]
    }
}

/// Runs commands on one host. Implementations reuse one connection for every command.
#[async_trait]
pub trait Executor: Send + Sync + fmt::Debug {
    /// Runs `command`, sending each output line to `lines` as it arrives (when given) and
    /// returning the whole output. Cancelling `cancel` stops the command and returns
    /// [`Error::Cancelled`]. A non-zero exit is *not* an error: callers decide what it means.
    async fn run(
        &self,
        command: &RemoteCommand,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput, Error>;

    /// A short description of where commands go, e.g. `root@10.0.0.5:22` or `local`.
    fn describe(&self) -> String;

    /// Drops any open connection. The next `run` reconnects.
    async fn disconnect(&self) {}
}

/// A shareable executor, as the engine holds it.
pub type SharedExecutor = Arc<dyn Executor>;

/// Wraps `script` for execution as root when `user` is not root: `sudo -n` never prompts, so a
/// sudo that wants a password fails fast with a message we can recognise (see
/// [`Error::SudoNeedsPassword`]).
pub fn privileged_script(script: &str, user_is_root: bool) -> String {
    if user_is_root {
        script.to_string()
    } else {
        format!("sudo -n sh -c {}", quote(script))
    }
}

/// True when stderr shows that `sudo -n` refused because it needs a password.
pub fn sudo_wants_password(stderr: &str) -> bool {
    stderr.contains("sudo: a password is required")
        || stderr.contains("sudo: a terminal is required")
}
