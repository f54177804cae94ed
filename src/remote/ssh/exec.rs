//! Running one command on an open session: a fresh channel per command, output forwarded line
//! by line as it arrives, exit status or signal collected, timeout and cancellation honoured.
//!
//! On timeout or cancellation tendhost asks the server to SIGKILL the command (the SSH "signal"
//! request) and closes the channel, then returns at once; the connection stays usable.
//! What happens on the host depends on OpenSSH: it delivers the signal (to the command's whole
//! process group) only for sessions of non-root users that are not privileged — for root
//! logins it refuses ("session signalling requires privilege separation"), and a `sudo`'d
//! command runs as root where the user's signal cannot reach it. In those cases the remote
//! process **keeps running** until it finishes or next writes to its closed output (SIGPIPE).
//! That is deliberate for package managers (killing dpkg mid-run can break a host), but it
//! means a timed-out or cancelled privileged step leaves the host in an unknown state: callers
//! must re-read it (and expect, e.g., a held dpkg lock) rather than assume nothing happened.

use std::time::Duration;

use russh::client::Msg;
use russh::{Channel, ChannelMsg, Sig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connect::Session;
use crate::remote::capture::Capture;
use crate::remote::lines::LineSplitter;
use crate::remote::{CommandOutput, Error, OutputLine, Stream};

/// Why a command did not produce a [`CommandOutput`].
pub(super) enum RunError {
    /// No channel could be opened: the connection is probably stale; reconnecting may help.
    Open(String),
    /// The command started (or may have): never retried blindly.
    Failed(Error),
}

/// Runs `script` on `session`.
pub(super) async fn run(
    session: &Session,
    target: &str,
    script: &str,
    lines: Option<&mpsc::Sender<OutputLine>>,
    timeout: Duration,
    open_timeout: Duration,
    cancel: &CancellationToken,
) -> Result<CommandOutput, RunError> {
    // A connection whose peer vanished without a reset (a VM that rebooted) looks open until
    // keepalives fail; a channel that is not confirmed in time means the same thing.
    let mut channel = tokio::time::timeout(open_timeout, session.handle.channel_open_session())
        .await
        .map_err(|_| RunError::Open(format!("no channel within {open_timeout:?}")))?
        .map_err(|e| RunError::Open(e.to_string()))?;
    channel
        .exec(true, script.as_bytes())
        .await
        .map_err(|e| RunError::Open(e.to_string()))?;

    let mut collector = Collector::new(lines);
    let ended = {
        let work = pump(&mut channel, &mut collector);
        tokio::select! {
            ended = work => Ended::Done(ended),
            () = tokio::time::sleep(timeout) => Ended::TimedOut,
            () = cancel.cancelled() => Ended::Cancelled,
        }
    };
    match ended {
        Ended::Done(Ok(status)) => {
            collector.finish().await;
            Ok(collector.into_output(status))
        }
        Ended::Done(Err(message)) => {
            // No `finish`: an unterminated line of a cut command may go on (see `OutputLine`).
            Err(RunError::Failed(Error::Disconnected {
                target: target.to_string(),
                message,
            }))
        }
        Ended::TimedOut => {
            stop(&channel).await;
            Err(RunError::Failed(Error::Timeout(timeout)))
        }
        Ended::Cancelled => {
            stop(&channel).await;
            Err(RunError::Failed(Error::Cancelled))
        }
    }
}

enum Ended {
    Done(Result<Status, String>),
    TimedOut,
    Cancelled,
}

#[derive(Default)]
struct Status {
    exit_code: Option<u32>,
    signal: Option<String>,
}

/// Reads channel messages until the server closes the channel.
async fn pump(channel: &mut Channel<Msg>, out: &mut Collector<'_>) -> Result<Status, String> {
    let mut status = Status::default();
    let mut ended = false;
    while let Some(message) = channel.wait().await {
        match message {
            ChannelMsg::Data { data } => out.push(Stream::Stdout, &data).await,
            // Extended data type 1 is SSH_EXTENDED_DATA_STDERR (RFC 4254 §5.2).
            ChannelMsg::ExtendedData { data, ext: 1 } => out.push(Stream::Stderr, &data).await,
            ChannelMsg::ExitStatus { exit_status } => {
                status.exit_code = Some(exit_status);
                ended = true;
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                status.signal = Some(signal_label(&signal_name));
                ended = true;
            }
            ChannelMsg::Failure => return Err("the server refused to run the command".into()),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    if ended {
        Ok(status)
    } else {
        Err("the connection closed before the command finished".into())
    }
}

/// Best effort: ask the server to kill the command, then close our end.
async fn stop(channel: &Channel<Msg>) {
    let _ = channel.signal(Sig::KILL).await;
    let _ = channel.close().await;
}

fn signal_label(sig: &Sig) -> String {
    match sig {
        Sig::Custom(name) => format!("SIG{name}"),
        other => format!("SIG{other:?}"),
    }
}

/// Splits both streams into lines across data chunks, forwards complete lines at once, and
/// keeps what the final [`CommandOutput`] holds. Memory stays bounded whatever the host prints:
/// a line is cut at `MAX_LINE` (`remote::lines`), each stream capped (`remote::capture`).
struct Collector<'a> {
    lines: Option<&'a mpsc::Sender<OutputLine>>,
    stdout: Capture,
    stderr: Capture,
    /// The current unfinished line per stream.
    partial: [LineSplitter; 2],
}

impl<'a> Collector<'a> {
    fn new(lines: Option<&'a mpsc::Sender<OutputLine>>) -> Self {
        Self {
            lines,
            stdout: Capture::stdout(),
            stderr: Capture::stderr(),
            partial: [
                LineSplitter::new(Stream::Stdout),
                LineSplitter::new(Stream::Stderr),
            ],
        }
    }

    async fn push(&mut self, stream: Stream, data: &[u8]) {
        match stream {
            Stream::Stdout => self.stdout.push(data),
            Stream::Stderr => self.stderr.push(data),
        }
        let Some(lines) = self.lines else {
            return;
        };
        for line in self.partial[stream as usize].push(data) {
            // A closed receiver only means nobody watches the live output any more.
            let _ = lines.send(line).await;
        }
    }

    /// Forwards unterminated last lines: only for a command whose exit status was seen.
    async fn finish(&mut self) {
        let Some(lines) = self.lines else {
            return;
        };
        for partial in &mut self.partial {
            if let Some(line) = partial.finish() {
                let _ = lines.send(line).await;
            }
        }
    }

    fn into_output(self, status: Status) -> CommandOutput {
        let (stdout, stdout_dropped) = self.stdout.finish();
        let (stderr, stderr_dropped) = self.stderr.finish();
        CommandOutput {
            exit_code: status.exit_code,
            signal: status.signal,
            stdout,
            stderr,
            stdout_dropped,
            stderr_dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_across_chunks_per_stream() {
        let (tx, mut rx) = mpsc::channel(16);
        let out = {
            let mut c = Collector::new(Some(&tx));
            c.push(Stream::Stdout, b"one\ntw").await;
            c.push(Stream::Stderr, b"err").await;
            c.push(Stream::Stdout, b"o\r\nthree").await;
            c.push(Stream::Stderr, b"!\n").await;
            c.finish().await;
            c.into_output(Status::default())
        };
        drop(tx);
        let mut got = Vec::new();
        while let Some(l) = rx.recv().await {
            got.push((l.stream, l.line));
        }
        assert_eq!(
            got,
            [
                (Stream::Stdout, "one".to_string()),
                (Stream::Stdout, "two".to_string()),
                (Stream::Stderr, "err!".to_string()),
                (Stream::Stdout, "three".to_string()),
            ]
        );
        assert_eq!(out.stdout, "one\ntwo\r\nthree");
        assert_eq!(out.stderr, "err!\n");
    }

    async fn received(mut rx: mpsc::Receiver<OutputLine>) -> Vec<OutputLine> {
        let mut got = Vec::new();
        while let Some(line) = rx.recv().await {
            got.push(line);
        }
        got
    }

    /// 40 MiB in one line: the live line is cut with a marker, the captured stdout stops at its
    /// limit, and the line still counts every byte it took (a follower's offset stays exact).
    #[tokio::test]
    async fn a_huge_line_is_cut_and_captured_within_bounds() {
        use crate::remote::{MAX_LINE, STDOUT_LIMIT};
        let (tx, rx) = mpsc::channel(16);
        let chunk = vec![b'a'; 32 * 1024];
        let rounds = 40 * 32;
        let out = {
            let mut c = Collector::new(Some(&tx));
            for _ in 0..rounds {
                c.push(Stream::Stdout, &chunk).await;
            }
            c.push(Stream::Stdout, b"\nafter\n").await;
            c.finish().await;
            c.into_output(Status::default())
        };
        drop(tx);
        let got = received(rx).await;
        let total = (rounds * chunk.len()) as u64;
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].line,
            format!(
                "{}… [{} bytes cut]",
                "a".repeat(MAX_LINE),
                total - MAX_LINE as u64
            )
        );
        assert_eq!(got[0].bytes, total + 1);
        assert_eq!(got[1].line, "after");
        assert_eq!(out.stdout.len(), STDOUT_LIMIT);
        assert!(out.stdout_truncated());
        assert_eq!(out.stdout_dropped, total + 7 - STDOUT_LIMIT as u64);
    }

    /// `run` calls `finish` only once the exit status was seen; on a cut connection the
    /// collector is dropped with its half line, which must not reach the follower.
    #[tokio::test]
    async fn an_unterminated_line_goes_only_with_finish() {
        let (tx, rx) = mpsc::channel(16);
        {
            let mut c = Collector::new(Some(&tx));
            c.push(Stream::Stdout, b"whole\nhal").await;
        }
        let (tx2, rx2) = mpsc::channel(16);
        {
            let mut c = Collector::new(Some(&tx2));
            c.push(Stream::Stdout, b"whole\nhal").await;
            c.finish().await;
        }
        drop((tx, tx2));
        let cut: Vec<(String, u64)> = received(rx)
            .await
            .into_iter()
            .map(|l| (l.line, l.bytes))
            .collect();
        assert_eq!(cut, [("whole".to_string(), 6)]);
        let ended: Vec<(String, u64)> = received(rx2)
            .await
            .into_iter()
            .map(|l| (l.line, l.bytes))
            .collect();
        assert_eq!(ended, [("whole".to_string(), 6), ("hal".to_string(), 3)]);
    }
}
