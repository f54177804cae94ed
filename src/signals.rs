//! The signals that stop tendhost cleanly, in one place for the console, batch mode and the
//! engine's shutdown: SIGINT, SIGTERM, and SIGHUP (the terminal or ssh session went away).
//!
//! A SIGHUP that was ignored when tendhost started (`nohup tendhost --batch wave &`) stays
//! ignored: listening for it would replace the disposition the operator chose, and a logout
//! would then stop the run that `nohup` was meant to keep going.

use std::sync::OnceLock;

use tokio::signal::unix::{Signal, SignalKind, signal};

pub(crate) struct StopSignals {
    int: Signal,
    term: Signal,
    /// `None` when SIGHUP was ignored at start.
    hup: Option<Signal>,
}

impl StopSignals {
    /// Starts listening. Needs a tokio runtime.
    pub(crate) fn new() -> std::io::Result<Self> {
        // Read before the first listener exists: listening clears the ignored disposition.
        let hup_ignored = hangup_ignored_at_start();
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: if hup_ignored {
                None
            } else {
                Some(signal(SignalKind::hangup())?)
            },
        })
    }

    /// Waits for the next stop signal. Cancel-safe: no signal is lost by dropping this future.
    pub(crate) async fn recv(&mut self) {
        let hup = async {
            match &mut self.hup {
                Some(hup) => {
                    hup.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            () = hup => {}
        }
    }
}

/// Whether SIGHUP was ignored when this process started, read once from `/proc/self/status`
/// (`SigIgn`, a hex mask where SIGHUP is bit 0) before tendhost itself touches it.
fn hangup_ignored_at_start() -> bool {
    static IGNORED: OnceLock<bool> = OnceLock::new();
    *IGNORED.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .as_deref()
            .and_then(ignored_mask)
            .is_some_and(|mask| mask & 1 == 1)
    })
}

fn ignored_mask(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("SigIgn:"))?;
    u64::from_str_radix(line.trim_start_matches("SigIgn:").trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ignored_mask() {
        let status = "Name:\ttendhost\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001001\n";
        assert_eq!(ignored_mask(status), Some(0x1001));
        assert_eq!(ignored_mask("Name:\tx\n"), None);
    }
}
