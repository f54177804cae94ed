//! A bounded log of one host's command output that never blocks and never loses count.
//!
//! Bounded in lines *and* bytes (lines are at most `remote::MAX_LINE` each, but 2,000 of them
//! per host on a large fleet would still be a lot). When full it drops the *oldest* line and
//! counts it (k9s #1483: a log pane must not silently drop lines under bursts), so the view can
//! say "1,204 older lines dropped". It knows nothing of hosts, events or rendering.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::remote::Stream;

/// One line as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: Stream,
    pub text: Arc<str>,
}

/// Bytes of output kept per host at most, whatever the number of lines.
pub(crate) const SCROLLBACK_BYTES: usize = 1024 * 1024;

/// The newest `capacity` lines of a host's output, within `max_bytes`.
#[derive(Debug, Clone)]
pub struct Scrollback {
    lines: VecDeque<LogLine>,
    capacity: usize,
    max_bytes: usize,
    /// The text bytes of `lines`.
    bytes: usize,
    dropped: u64,
}

impl Scrollback {
    /// At most `capacity` lines and [`SCROLLBACK_BYTES`].
    pub fn new(capacity: usize) -> Self {
        Self::with_byte_limit(capacity, SCROLLBACK_BYTES)
    }

    pub fn with_byte_limit(capacity: usize, max_bytes: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            capacity: capacity.max(1),
            max_bytes,
            bytes: 0,
            dropped: 0,
        }
    }

    /// Refills from a snapshot: `lines` oldest first, `dropped` already lost before them.
    pub fn restore(&mut self, lines: impl IntoIterator<Item = Arc<str>>, dropped: u64) {
        self.dropped = dropped;
        for line in lines {
            self.push(Stream::Stdout, line);
        }
    }

    /// Appends a line, dropping the oldest ones while a bound would be passed.
    pub fn push(&mut self, stream: Stream, text: Arc<str>) {
        while self.lines.len() >= self.capacity || self.bytes + text.len() > self.max_bytes {
            let Some(oldest) = self.lines.pop_front() else {
                break; // a single line over the byte bound is still shown
            };
            self.bytes -= oldest.text.len();
            self.dropped += 1;
        }
        self.bytes += text.len();
        self.lines.push_back(LogLine { stream, text });
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// How many of the oldest lines were dropped to respect the bound.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn get(&self, index: usize) -> Option<&LogLine> {
        self.lines.get(index)
    }

    /// The lines in `start..end` (clamped), oldest first: only what a window shows.
    pub fn window(&self, start: usize, end: usize) -> impl Iterator<Item = &LogLine> {
        let end = end.min(self.lines.len());
        let start = start.min(end);
        self.lines.range(start..end)
    }

    /// Index of the first line at or after `from` (wrapping) containing `needle`, ignoring case.
    pub fn find(&self, needle: &str, from: usize) -> Option<usize> {
        if needle.is_empty() || self.lines.is_empty() {
            return None;
        }
        let needle = needle.to_lowercase();
        let len = self.lines.len();
        (0..len)
            .map(|step| (from + step) % len)
            .find(|&i| self.lines[i].text.to_lowercase().contains(&needle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_oldest_lines_and_counts_them() {
        let mut log = Scrollback::new(3);
        for i in 0..5 {
            log.push(Stream::Stdout, format!("line {i}").into());
        }
        assert_eq!(log.len(), 3);
        assert_eq!(log.dropped(), 2);
        let kept: Vec<&str> = log.window(0, 10).map(|l| &*l.text).collect();
        assert_eq!(kept, ["line 2", "line 3", "line 4"]);
    }

    #[test]
    fn drops_the_oldest_lines_to_stay_within_its_bytes() {
        let mut log = Scrollback::with_byte_limit(100, 10);
        for text in ["aaaa", "bbbb", "cccc", "dd"] {
            log.push(Stream::Stdout, text.into());
        }
        let kept: Vec<&str> = log.window(0, 10).map(|l| &*l.text).collect();
        assert_eq!(kept, ["bbbb", "cccc", "dd"]);
        assert_eq!(log.dropped(), 1);
        log.push(Stream::Stderr, "x".repeat(50).into());
        assert_eq!(log.len(), 1, "an oversized line replaces everything");
        assert_eq!(log.dropped(), 4);
        log.push(Stream::Stdout, "y".into());
        assert_eq!((log.len(), log.dropped()), (1, 5));
    }

    #[test]
    fn find_wraps_and_ignores_case() {
        let mut log = Scrollback::new(10);
        for text in ["Setting up openssl", "done", "OPENSSL restarted"] {
            log.push(Stream::Stdout, text.into());
        }
        assert_eq!(log.find("openssl", 0), Some(0));
        assert_eq!(log.find("openssl", 1), Some(2));
        assert_eq!(log.find("openssl", 3), Some(0));
        assert_eq!(log.find("absent", 0), None);
    }
}
