//! Cutting one output stream into [`OutputLine`]s with a bounded buffer, whatever a host prints.
//!
//! A line longer than [`MAX_LINE`] keeps its first `MAX_LINE` bytes and ends with a marker
//! (`… [12345 bytes cut]`); the rest is counted, never stored, so a command printing 300 MB
//! without a newline costs `MAX_LINE` bytes here. [`OutputLine::bytes`] still counts every raw
//! byte the line took, so summing them gives an exact offset into the stream. Both transports
//! (`ssh::exec`, `local`) split through this one type; it knows nothing of channels or processes.

use super::{OutputLine, Stream};

/// The longest line kept whole (8 KiB); longer ones are cut with a marker.
pub const MAX_LINE: usize = 8 * 1024;

/// The unfinished line of one stream.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    stream: Stream,
    /// The first (at most [`MAX_LINE`]) bytes of the current line.
    kept: Vec<u8>,
    /// Every byte the current line took so far, kept or not.
    taken: u64,
}

impl LineSplitter {
    pub(crate) fn new(stream: Stream) -> Self {
        Self {
            stream,
            kept: Vec::new(),
            taken: 0,
        }
    }

    /// Takes the next chunk of the stream; returns the lines it completed, in order.
    pub(crate) fn push(&mut self, mut data: &[u8]) -> Vec<OutputLine> {
        let mut done = Vec::new();
        while !data.is_empty() {
            let end = data.iter().position(|&b| b == b'\n');
            let piece = &data[..end.unwrap_or(data.len())];
            let room = MAX_LINE.saturating_sub(self.kept.len());
            self.kept.extend_from_slice(&piece[..piece.len().min(room)]);
            self.taken += piece.len() as u64;
            match end {
                Some(end) => {
                    self.taken += 1; // the `\n`
                    done.push(self.take(true));
                    data = &data[end + 1..];
                }
                None => break,
            }
        }
        done
    }

    /// The unterminated last line, if there is one. Only for a command that ended normally: a
    /// cut connection may have stopped mid-line, and that half line must not be counted.
    pub(crate) fn finish(&mut self) -> Option<OutputLine> {
        (self.taken > 0).then(|| self.take(false))
    }

    fn take(&mut self, terminated: bool) -> OutputLine {
        let bytes = std::mem::take(&mut self.taken);
        let mut kept = std::mem::take(&mut self.kept);
        let content = bytes - u64::from(terminated);
        let line = if content == kept.len() as u64 {
            let text = String::from_utf8_lossy(&kept);
            text.trim_end_matches('\r').to_string()
        } else {
            kept.truncate(char_boundary(&kept));
            let cut = content - kept.len() as u64;
            format!("{}… [{cut} bytes cut]", String::from_utf8_lossy(&kept))
        };
        OutputLine {
            stream: self.stream,
            line,
            bytes,
        }
    }
}

/// The length of the longest prefix of `bytes` that does not end inside a UTF-8 sequence, so a
/// cut never leaves half a character (shown as U+FFFD) before the marker.
pub(crate) fn char_boundary(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(4) {
        let i = len - back;
        let lead = bytes[i];
        if lead & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back for its lead
        }
        let needs = match lead {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if needs > back { i } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[OutputLine]) -> Vec<(&str, u64)> {
        lines.iter().map(|l| (l.line.as_str(), l.bytes)).collect()
    }

    #[test]
    fn splits_across_chunks_and_counts_raw_bytes() {
        let mut s = LineSplitter::new(Stream::Stdout);
        assert!(s.push(b"on").is_empty());
        let lines = s.push(b"e\r\ntwo\n\nthr");
        assert_eq!(texts(&lines), [("one", 5), ("two", 4), ("", 1)]);
        let last = s.finish().unwrap();
        assert_eq!((last.line.as_str(), last.bytes), ("thr", 3));
        assert!(s.finish().is_none(), "nothing is left once finished");
    }

    #[test]
    fn a_long_line_is_cut_with_a_marker_and_never_buffered_past_the_limit() {
        let mut s = LineSplitter::new(Stream::Stderr);
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..16 {
            assert!(s.push(&chunk).is_empty());
            assert!(s.kept.len() <= MAX_LINE, "buffered {} bytes", s.kept.len());
        }
        let lines = s.push(b"tail\nnext\n");
        let total = 16 * 64 * 1024 + 4;
        let cut = total - MAX_LINE;
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0].line,
            format!("{}… [{cut} bytes cut]", "a".repeat(MAX_LINE))
        );
        assert_eq!(lines[0].bytes, total as u64 + 1, "every raw byte counts");
        assert_eq!(texts(&lines[1..]), [("next", 5)]);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_not_cut() {
        let mut s = LineSplitter::new(Stream::Stdout);
        let mut data = vec![b'x'; MAX_LINE];
        data.push(b'\n');
        let lines = s.push(&data);
        assert_eq!(lines[0].line.len(), MAX_LINE);
        assert_eq!(lines[0].bytes, MAX_LINE as u64 + 1);
        let mut over = vec![b'x'; MAX_LINE + 1];
        over.push(b'\n');
        let lines = s.push(&over);
        assert!(
            lines[0].line.ends_with("… [1 bytes cut]"),
            "{}",
            lines[0].line
        );
        assert_eq!(lines[0].bytes, MAX_LINE as u64 + 2);
        // Unterminated and too long: cut all the same, and no terminator counted.
        s.push(&[b'y'; MAX_LINE + 10]);
        let last = s.finish().unwrap();
        assert!(last.line.ends_with("… [10 bytes cut]"), "{}", last.line);
        assert_eq!(last.bytes, MAX_LINE as u64 + 10);
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let mut s = LineSplitter::new(Stream::Stdout);
        let mut data = vec![b'a'; MAX_LINE - 1];
        data.extend_from_slice("é and more\n".as_bytes()); // 'é' straddles the limit
        let line = &s.push(&data)[0];
        assert!(!line.line.contains('\u{FFFD}'), "half a character kept");
        assert!(line.line.starts_with(&"a".repeat(MAX_LINE - 1)));
        assert!(line.line.ends_with("… [11 bytes cut]"), "{}", line.line);
        assert_eq!(line.bytes, data.len() as u64);
    }

    #[test]
    fn char_boundary_backs_off_only_from_an_incomplete_tail() {
        assert_eq!(char_boundary(b"abc"), 3);
        assert_eq!(char_boundary("aé".as_bytes()), 3);
        assert_eq!(char_boundary(&"aé".as_bytes()[..2]), 1);
        assert_eq!(char_boundary(&"a€".as_bytes()[..3]), 1);
        assert_eq!(
            char_boundary(b"a\xff"),
            2,
            "invalid bytes are lossy's business"
        );
        assert_eq!(char_boundary(b""), 0);
    }
}
