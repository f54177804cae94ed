//! What a command printed, kept for [`CommandOutput`](super::CommandOutput) within a byte bound
//! per stream, so a host printing without end costs a fixed amount of memory.
//!
//! The two streams keep different ends because they serve different readers: parsers read
//! stdout from its start (a package list is read top down), diagnostics read the end of stderr
//! (where apt and dnf say what went wrong). What does not fit is counted, not stored.

use std::collections::VecDeque;

use super::lines::char_boundary;

/// stdout kept per command: its first 4 MiB (package lists and simulations are far smaller).
pub const STDOUT_LIMIT: usize = 4 * 1024 * 1024;
/// stderr kept per command: its last 256 KiB.
pub const STDERR_LIMIT: usize = 256 * 1024;

/// Which part of a stream is kept when it is longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Head,
    Tail,
}

/// One stream's bytes within its bound.
#[derive(Debug)]
pub(crate) struct Capture {
    keep: Keep,
    limit: usize,
    bytes: VecDeque<u8>,
    dropped: u64,
}

impl Capture {
    /// Keeps the first [`STDOUT_LIMIT`] bytes.
    pub(crate) fn stdout() -> Self {
        Self::new(Keep::Head, STDOUT_LIMIT)
    }

    /// Keeps the last [`STDERR_LIMIT`] bytes.
    pub(crate) fn stderr() -> Self {
        Self::new(Keep::Tail, STDERR_LIMIT)
    }

    fn new(keep: Keep, limit: usize) -> Self {
        Self {
            keep,
            limit,
            bytes: VecDeque::new(),
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        match self.keep {
            Keep::Head => {
                let room = self.limit - self.bytes.len();
                let taken = data.len().min(room);
                self.bytes.extend(&data[..taken]);
                self.dropped += (data.len() - taken) as u64;
            }
            Keep::Tail => {
                let skipped = data.len().saturating_sub(self.limit);
                let data = &data[skipped..];
                let excess = (self.bytes.len() + data.len()).saturating_sub(self.limit);
                self.bytes.drain(..excess);
                self.bytes.extend(data);
                self.dropped += (skipped + excess) as u64;
            }
        }
    }

    /// The text kept and how many bytes were not. A cut never leaves half a character at the
    /// edge it was cut on.
    pub(crate) fn finish(self) -> (String, u64) {
        let mut bytes = Vec::from(self.bytes);
        let mut dropped = self.dropped;
        if dropped > 0 {
            let edge = match self.keep {
                Keep::Head => bytes.len() - char_boundary(&bytes),
                Keep::Tail => bytes
                    .iter()
                    .take(3)
                    .take_while(|&&b| b & 0xC0 == 0x80)
                    .count(),
            };
            match self.keep {
                Keep::Head => bytes.truncate(bytes.len() - edge),
                Keep::Tail => {
                    bytes.drain(..edge);
                }
            }
            dropped += edge as u64;
        }
        let text = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        (text, dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_keeps_its_head_and_counts_the_rest() {
        let mut c = Capture::new(Keep::Head, 8);
        c.push(b"hello ");
        c.push(b"world, and more");
        assert_eq!(c.finish(), ("hello wo".to_string(), 13));
    }

    #[test]
    fn stderr_keeps_its_tail_and_counts_the_rest() {
        let mut c = Capture::new(Keep::Tail, 8);
        c.push(b"E: first\n");
        c.push(b"E: last\n");
        assert_eq!(c.finish(), ("E: last\n".to_string(), 9));
        let mut big = Capture::new(Keep::Tail, 4);
        big.push(b"0123456789");
        assert_eq!(big.finish(), ("6789".to_string(), 6));
    }

    #[test]
    fn nothing_is_dropped_within_the_limit() {
        let mut c = Capture::stderr();
        c.push("ünïcode\n".as_bytes());
        assert_eq!(c.finish(), ("ünïcode\n".to_string(), 0));
    }

    #[test]
    fn cuts_fall_between_characters() {
        let mut head = Capture::new(Keep::Head, 4);
        head.push("abcé".as_bytes()); // 'é' is bytes 4 and 5: only its first fits
        assert_eq!(head.finish(), ("abc".to_string(), 2));
        let mut tail = Capture::new(Keep::Tail, 4);
        tail.push("éabc".as_bytes()); // only the second byte of 'é' fits
        assert_eq!(tail.finish(), ("abc".to_string(), 2));
    }
}
