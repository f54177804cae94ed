//! Runs commands on this machine, for `transport = "local"` hosts.
//!
//! Same contract as SSH: line-by-line streaming, a timeout and cancellation. A command runs in
//! its own process group so a timeout or cancel stops everything it started, not just `sh`, and
//! without tendhost's secrets in its environment (see `child`).

use std::process::Stdio;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    CommandOutput, Error, Executor, OutputLine, RemoteCommand, Stream, child, sudo_wants_password,
};

/// Executes on the local machine as the user running tendhost.
#[derive(Debug, Default, Clone)]
pub struct LocalExecutor {
    /// Overrides the shell, for tests that run a host's commands inside a chroot wrapper.
    wrapper: Option<Vec<String>>,
}

impl LocalExecutor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs every script as `WRAPPER… SCRIPT` instead of `sh -c SCRIPT` (e.g. `chroot DIR sh -c`).
    pub fn with_wrapper(wrapper: Vec<String>) -> Self {
        Self {
            wrapper: Some(wrapper),
        }
    }

    fn user_is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    async fn run(
        &self,
        command: &RemoteCommand,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput, Error> {
        let script = command.script_for(Self::user_is_root());
        let mut process = match &self.wrapper {
            Some(wrapper) => {
                let mut c = child::command(&wrapper[0]);
                c.args(&wrapper[1..]).arg(&script);
                c
            }
            None => {
                let mut c = child::command("sh");
                c.arg("-c").arg(&script);
                c
            }
        };
        process
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = process.spawn().map_err(Error::Spawn)?;
        let pgid = child.id().map(|id| Pid::from_raw(id as i32));
        // Both pipes exist: they were requested as `Stdio::piped()` just above.
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Spawn(missing_pipe()))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| Error::Spawn(missing_pipe()))?;

        let collect = async {
            let (out, err) = tokio::join!(
                pump(stdout, Stream::Stdout, lines),
                pump(stderr, Stream::Stderr, lines)
            );
            let status = child.wait().await.map_err(Error::Spawn)?;
            Ok::<_, Error>((status, out, err))
        };

        let outcome = tokio::select! {
            result = collect => Some(result),
            () = cancel.cancelled() => None,
            () = tokio::time::sleep(command.timeout) => {
                stop_group(pgid);
                return Err(Error::Timeout(command.timeout));
            }
        };
        let Some(result) = outcome else {
            stop_group(pgid);
            return Err(Error::Cancelled);
        };
        let (status, stdout, stderr) = result?;
        use std::os::unix::process::ExitStatusExt;
        let output = CommandOutput {
            exit_code: status.code().map(|c| c as u32),
            signal: status.signal().map(|s| format!("signal {s}")),
            stdout,
            stderr,
        };
        if command.privileged && output.exit_code == Some(1) && sudo_wants_password(&output.stderr)
        {
            return Err(Error::SudoNeedsPassword {
                target: "local".into(),
                user: nix::unistd::User::from_uid(nix::unistd::geteuid())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .unwrap_or_else(|| "current user".into()),
            });
        }
        Ok(output)
    }

    fn describe(&self) -> String {
        "local".to_string()
    }
}

fn missing_pipe() -> std::io::Error {
    std::io::Error::other("child pipe missing")
}

/// Kills the command's whole process group. It may already be gone; that is fine.
fn stop_group(pgid: Option<Pid>) {
    if let Some(pgid) = pgid {
        let _ = killpg(pgid, Signal::SIGKILL);
    }
}

/// Reads `reader` line by line, forwarding each line as it completes and returning all of it.
async fn pump(
    reader: impl AsyncRead + Unpin,
    stream: Stream,
    lines: Option<&mpsc::Sender<OutputLine>>,
) -> String {
    let mut reader = BufReader::new(reader);
    let mut all = String::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                all.push_str(&line);
                if let Some(lines) = lines {
                    let bytes = buf.len() as u64;
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    // The receiver going away only means nobody watches the live output any more.
                    let _ = lines
                        .send(OutputLine {
                            stream,
                            line,
                            bytes,
                        })
                        .await;
                }
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn cmd(script: &str) -> RemoteCommand {
        RemoteCommand::new(script, Duration::from_secs(10))
    }

    #[tokio::test]
    async fn returns_exit_code_and_both_streams() {
        let exec = LocalExecutor::new();
        let out = exec
            .run(
                &cmd("echo out; echo err >&2; exit 3"),
                None,
                &CancellationToken::new(),
            )
            .await
            .unwrap();
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
    }

    #[tokio::test]
    async fn streams_lines_as_they_arrive() {
        let exec = LocalExecutor::new();
        let (tx, mut rx) = mpsc::channel(16);
        let started = Instant::now();
        let task = tokio::spawn(async move {
            exec.run(
                &cmd("echo one; sleep 1; echo two"),
                Some(&tx),
                &CancellationToken::new(),
            )
            .await
        });
        let first = rx.recv().await.unwrap();
        assert_eq!(first.line, "one");
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "first line was held back"
        );
        assert_eq!(rx.recv().await.unwrap().line, "two");
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn times_out_and_kills_the_whole_group() {
        let exec = LocalExecutor::new();
        let mut c = cmd("sleep 30 & sleep 30");
        c.timeout = Duration::from_millis(200);
        let started = Instant::now();
        let err = exec
            .run(&c, None, &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout(_)));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn cancellation_stops_the_command() {
        let exec = LocalExecutor::new();
        let cancel = CancellationToken::new();
        let stopper = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            stopper.cancel();
        });
        let err = exec.run(&cmd("sleep 30"), None, &cancel).await.unwrap_err();
        assert!(matches!(err, Error::Cancelled));
    }
}
