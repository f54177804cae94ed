//! Runs commands on this machine, for `transport = "local"` hosts.
//!
//! Same contract as SSH: line-by-line streaming, a timeout and cancellation. A command runs in
//! its own process group so a timeout or cancel stops everything it started, not just `sh`, and
//! without tendhost's secrets in its environment (see `child`).

use std::process::Stdio;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::capture::Capture;
use super::lines::LineSplitter;
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
                pump(stdout, Capture::stdout(), Stream::Stdout, lines),
                pump(stderr, Capture::stderr(), Stream::Stderr, lines)
            );
            let status = child.wait().await.map_err(Error::Spawn)?;
            // The exit status is known: now the unterminated last lines may go (see `OutputLine`).
            let (out, mut out_rest) = out;
            let (err, mut err_rest) = err;
            if let Some(lines) = lines {
                for rest in [out_rest.finish(), err_rest.finish()].into_iter().flatten() {
                    let _ = lines.send(rest).await;
                }
            }
            Ok::<_, Error>((status, out.finish(), err.finish()))
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
        let (status, (stdout, stdout_dropped), (stderr, stderr_dropped)) = result?;
        use std::os::unix::process::ExitStatusExt;
        let output = CommandOutput {
            exit_code: status.code().map(|c| c as u32),
            signal: status.signal().map(|s| format!("signal {s}")),
            stdout,
            stderr,
            stdout_dropped,
            stderr_dropped,
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

/// Reads one pipe to its end, forwarding each complete line as it arrives and keeping what
/// `capture` bounds. Returns the capture and the unfinished last line, which the caller forwards
/// only once the exit status is known. Reads in chunks, so no line is ever buffered whole.
async fn pump(
    mut reader: impl AsyncRead + Unpin,
    mut capture: Capture,
    stream: Stream,
    lines: Option<&mpsc::Sender<OutputLine>>,
) -> (Capture, LineSplitter) {
    let mut splitter = LineSplitter::new(stream);
    let mut buf = vec![0; READ_CHUNK];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        capture.push(&buf[..n]);
        if let Some(lines) = lines {
            for line in splitter.push(&buf[..n]) {
                // The receiver going away only means nobody watches the live output any more.
                let _ = lines.send(line).await;
            }
        }
    }
    (capture, splitter)
}

/// How much of a pipe is read at once.
const READ_CHUNK: usize = 32 * 1024;

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

    async fn lines_of(
        exec: &LocalExecutor,
        c: &RemoteCommand,
    ) -> (Result<CommandOutput, Error>, Vec<OutputLine>) {
        let (tx, mut rx) = mpsc::channel(16);
        let result = exec.run(c, Some(&tx), &CancellationToken::new()).await;
        drop(tx);
        let mut got = Vec::new();
        while let Some(line) = rx.recv().await {
            got.push(line);
        }
        (result, got)
    }

    #[tokio::test]
    async fn a_long_line_is_cut_but_counted_and_the_capture_bounded() {
        use crate::remote::{MAX_LINE, STDOUT_LIMIT};
        let exec = LocalExecutor::new();
        // 6 MiB without a newline, then a short line, then an unterminated end.
        let script = "head -c 6291456 /dev/zero | tr '\\0' a; printf '\\nok\\nend'";
        let (result, got) = lines_of(&exec, &cmd(script)).await;
        let out = result.unwrap();
        let long = 6 * 1024 * 1024;
        let got: Vec<(String, u64)> = got.into_iter().map(|l| (l.line, l.bytes)).collect();
        let cut = format!("{}… [{} bytes cut]", "a".repeat(MAX_LINE), long - MAX_LINE);
        assert_eq!(
            got,
            [
                (cut, long as u64 + 1),
                ("ok".to_string(), 3),
                ("end".to_string(), 3)
            ]
        );
        assert_eq!(out.stdout.len(), STDOUT_LIMIT);
        assert_eq!(out.stdout_dropped, (long + 7 - STDOUT_LIMIT) as u64);
    }

    #[tokio::test]
    async fn an_unterminated_line_of_a_timed_out_command_is_not_sent() {
        let exec = LocalExecutor::new();
        let mut c = cmd("printf 'whole\\nhalf'; sleep 30");
        c.timeout = Duration::from_millis(500);
        let (result, got) = lines_of(&exec, &c).await;
        assert!(matches!(result, Err(Error::Timeout(_))));
        let texts: Vec<&str> = got.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(texts, ["whole"]);
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
