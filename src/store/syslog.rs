//! A copy of every audit record to the local syslog / journal (`[audit] syslog`), one datagram
//! per record on the `/dev/log` socket (or the path configured).
//!
//! Hand-written rather than a crate: the local socket takes the RFC 3164 form
//! `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG` (what glibc's `syslog(3)` sends), which is one
//! `format!`; the syslog crates bring hostname lookups, TCP/UDP transports and their own error
//! types we would not use.
//!
//! Sending never blocks the writer: the socket is non-blocking, and a record the daemon cannot
//! take right now is dropped with a counted warning (the file stays the record of truth).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};

/// `user.notice`: facility 1 (user), severity 5 (notice).
const PRIORITY: u8 = 13;

/// An open, non-blocking connection to the local syslog socket.
#[derive(Debug)]
pub(crate) struct Syslog {
    path: PathBuf,
    socket: Option<UnixDatagram>,
    dropped: u64,
}

impl Syslog {
    pub(crate) fn new(path: PathBuf) -> Self {
        Syslog {
            path,
            socket: None,
            dropped: 0,
        }
    }

    /// Sends one audit line; a failure drops it, counts it and warns, reconnecting next time.
    pub(crate) fn send(&mut self, line: &str) {
        let message = frame(line, Local::now(), std::process::id());
        match self.try_send(message.as_bytes()) {
            Ok(()) => {
                if self.dropped > 0 {
                    tracing::warn!(
                        "syslog '{}' is back; {} audit record(s) were not sent to it",
                        self.path.display(),
                        self.dropped
                    );
                    self.dropped = 0;
                }
            }
            Err(err) => {
                self.socket = None;
                self.dropped += 1;
                if self.dropped == 1 {
                    tracing::warn!(
                        "sending an audit record to syslog '{}': {err} (the file has it)",
                        self.path.display()
                    );
                }
            }
        }
    }

    fn try_send(&mut self, message: &[u8]) -> io::Result<()> {
        let socket = match self.socket.take() {
            Some(socket) => socket,
            None => connect(&self.path)?,
        };
        socket.send(message)?;
        self.socket = Some(socket);
        Ok(())
    }
}

fn connect(path: &Path) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The RFC 3164 local form; control characters in `line` cannot occur (it is JSON), so the
/// message is one line.
fn frame(line: &str, now: DateTime<Local>, pid: u32) -> String {
    format!(
        "<{PRIORITY}>{} tendhost[{pid}]: {}",
        now.format("%b %e %H:%M:%S"),
        line.trim_end()
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn frames_like_syslog_3() {
        let at = Local.with_ymd_and_hms(2026, 3, 1, 2, 3, 4).unwrap();
        assert_eq!(
            frame("{\"action\":\"update\"}\n", at, 42),
            "<13>Mar  1 02:03:04 tendhost[42]: {\"action\":\"update\"}"
        );
    }

    #[test]
    fn delivers_to_a_bound_socket_and_survives_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let mut syslog = Syslog::new(path.clone());
        syslog.send("{}");
        assert_eq!(syslog.dropped, 1);
        let server = UnixDatagram::bind(&path).unwrap();
        syslog.send("{\"a\":1}");
        assert_eq!(syslog.dropped, 0);
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(got.starts_with("<13>"), "{got}");
        assert!(got.ends_with(": {\"a\":1}"), "{got}");
    }
}
