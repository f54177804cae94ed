//! Running one step of a package operation through the host's [`Executor`], and turning what
//! went wrong into a [`pkg::Error`](super::Error) that names the step.
//!
//! Knows nothing of any particular package manager.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Error;
use crate::remote::{CommandOutput, Executor, OutputLine, RemoteCommand};

/// Reading state (lists, simulations, probes): generous, but a hung host must not hang us.
pub(super) const QUERY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Downloading package lists or pulling images.
pub(super) const REFRESH_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// A whole upgrade: large ones on slow disks take a long time; a stuck one must still end.
pub(super) const UPGRADE_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// Runs `script` as the step `step`. A non-zero exit is returned, not turned into an error:
/// callers know which exit codes mean success (dnf's 100, needs-restarting's 1).
pub(super) async fn run(
    exec: &dyn Executor,
    step: &'static str,
    script: String,
    privileged: bool,
    timeout: Duration,
    lines: Option<&mpsc::Sender<OutputLine>>,
    cancel: &CancellationToken,
) -> Result<CommandOutput, Error> {
    let mut command = RemoteCommand::new(script, timeout);
    if privileged {
        command = command.privileged();
    }
    tracing::debug!(step, script = %command.script, "running");
    exec.run(&command, lines, cancel)
        .await
        .map_err(|source| Error::Remote { step, source })
}

/// [`run`] for a step where only exit 0 is success: any other exit becomes [`failed`].
pub(super) async fn run_ok(
    exec: &dyn Executor,
    step: &'static str,
    script: String,
    privileged: bool,
    timeout: Duration,
    lines: Option<&mpsc::Sender<OutputLine>>,
    cancel: &CancellationToken,
) -> Result<CommandOutput, Error> {
    let out = run(exec, step, script, privileged, timeout, lines, cancel).await?;
    if out.success() {
        Ok(out)
    } else {
        Err(failed(step, &out))
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
    let source = if output.stderr.trim().is_empty() {
        &output.stdout
    } else {
        &output.stderr
    };
    Error::CommandFailed {
        step,
        code,
        detail: tail(source, 3),
    }
}

/// The last `n` non-empty lines of `text`, joined with ` / ` so the error stays on one line.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
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
        };
        let err = failed("apt-get update", &output);
        assert_eq!(
            err.to_string(),
            "apt-get update failed (exit 100): E: two / E: three / E: four"
        );
    }
}
