//! Running one step of a package operation through the host's [`Executor`], and turning what
//! went wrong into a [`pkg::Error`](super::Error) that names the step.
//!
//! Knows nothing of any particular package manager.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Error;
use crate::remote::job::Follow;
use crate::remote::{CommandOutput, Executor, OutputLine, RemoteCommand};

/// Reading state (lists, simulations, probes): generous, but a hung host must not hang us.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Downloading package lists or pulling images.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// A whole upgrade run attached (no job executor: tests, `host test`). Run as a detached job,
/// the engine's `[fleet] upgrade_timeout` bounds how long it is followed instead.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// One step of a package operation: a script, how it runs, and the name its errors carry.
/// Built with [`query`](Self::query), [`refresh`](Self::refresh) or [`upgrade`](Self::upgrade)
/// (which set the timeout), then run with [`run`](Self::run) or [`run_ok`](Self::run_ok).
pub(super) struct Step<'a> {
    name: &'static str,
    command: RemoteCommand,
    lines: Option<&'a mpsc::Sender<OutputLine>>,
    /// A query's stdout is parsed: one cut at `remote::STDOUT_LIMIT` is an error, not a
    /// shorter list.
    parsed: bool,
}

impl<'a> Step<'a> {
    /// Reads state (lists, simulations, probes).
    pub(super) fn query(name: &'static str, script: impl Into<String>) -> Self {
        Self {
            parsed: true,
            ..Self::new(name, script, QUERY_TIMEOUT)
        }
    }

    /// Downloads package lists or pulls images.
    pub(super) fn refresh(name: &'static str, script: impl Into<String>) -> Self {
        Self::new(name, script, REFRESH_TIMEOUT)
    }

    /// Changes what is installed or running: a detached job on the host (see `remote::job`).
    pub(super) fn upgrade(name: &'static str, script: impl Into<String>) -> Self {
        Self::new(name, script, UPGRADE_TIMEOUT).detached()
    }

    /// Runs as a detached job on the host, named after the step: for steps that change the host
    /// but are not upgrades (pulling images).
    pub(super) fn detached(mut self) -> Self {
        self.command = self.command.detached(self.name, Follow::ToTheEnd);
        self
    }

    fn new(name: &'static str, script: impl Into<String>, timeout: Duration) -> Self {
        Self {
            name,
            command: RemoteCommand::new(script, timeout),
            lines: None,
            parsed: false,
        }
    }

    /// Runs as root (through `sudo -n` for a login user who is not).
    pub(super) fn privileged(mut self) -> Self {
        self.command = self.command.privileged();
        self
    }

    /// Sends every output line to `lines` as it comes.
    pub(super) fn streaming(mut self, lines: Option<&'a mpsc::Sender<OutputLine>>) -> Self {
        self.lines = lines;
        self
    }

    /// Runs the step. A non-zero exit is returned, not turned into an error: callers know which
    /// exit codes mean success (dnf's 100, needs-restarting's 1).
    pub(super) async fn run(
        self,
        exec: &dyn Executor,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput, Error> {
        let step = self.name;
        tracing::debug!(step, script = %self.command.script, "running");
        let out = exec
            .run(&self.command, self.lines, cancel)
            .await
            .map_err(|source| Error::Remote { step, source })?;
        if self.parsed && out.stdout_truncated() {
            return Err(Error::Parse {
                what: step,
                detail: format!(
                    "its output passed {} MiB and was cut",
                    crate::remote::STDOUT_LIMIT >> 20
                ),
            });
        }
        Ok(out)
    }

    /// [`run`](Self::run) for a step where only exit 0 is success: any other exit becomes
    /// [`failed`].
    pub(super) async fn run_ok(
        self,
        exec: &dyn Executor,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput, Error> {
        self.run_ok_or(exec, cancel, failed).await
    }

    /// [`run_ok`](Self::run_ok), with `fail` saying what a non-zero exit means (apt's held lock).
    pub(super) async fn run_ok_or(
        self,
        exec: &dyn Executor,
        cancel: &CancellationToken,
        fail: impl FnOnce(&'static str, &CommandOutput) -> Error,
    ) -> Result<CommandOutput, Error> {
        let step = self.name;
        let out = self.run(exec, cancel).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(fail(step, &out))
        }
    }
}

/// The error for a step whose command exited unsuccessfully: the exit code and the last lines of
/// stderr (or stdout when stderr is empty), which is where apt and dnf say what went wrong.
pub(super) fn failed(step: &'static str, output: &CommandOutput) -> Error {
    let code = match (&output.exit_code, &output.signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => signal.clone(),
        (None, None) => "unknown".to_string(),
    };
    Error::CommandFailed {
        step,
        code,
        detail: crate::errors::last_lines(output.diagnostic(), 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_the_step_and_keeps_the_last_lines() {
        let output = CommandOutput {
            exit_code: Some(100),
            signal: None,
            stdout: String::new(),
            stderr: "W: one\nE: two\n\nE: three\nE: four\n".into(),
            ..CommandOutput::default()
        };
        let err = failed("apt-get update", &output);
        assert_eq!(
            err.to_string(),
            "apt-get update failed (exit 100): E: two / E: three / E: four"
        );
    }
}
