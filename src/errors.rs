//! One way to print an error for a person: the error and its causes on one line,
//! `connecting to web-1 (10.0.0.5:22): connection refused`.
//!
//! Module errors keep their source out of their own message (STYLE.md §8), so the chain reads
//! cleanly; a cause whose text is already in the message is not repeated.
//!
//! Error text often carries what a host printed (apt's stderr, a check's output): [`printable`]
//! makes it safe for the operator's terminal.

use std::borrow::Cow;
use std::error::Error;

/// `text` with every control character (ESC, BEL, CR, …) shown as `\u{..}` instead of sent to
/// the terminal: without ESC no escape sequence can act, and what is left reads as text. Line
/// breaks and tabs stay.
pub fn printable(text: &str) -> Cow<'_, str> {
    escape(text, |c| c.is_control() && c != '\n' && c != '\t')
}

/// [`printable`] for text that must stay one line (a table row, a progress line): line breaks
/// are escaped too, so a host cannot make up lines of its own.
pub fn printable_line(text: &str) -> Cow<'_, str> {
    escape(text, |c| c.is_control() && c != '\t')
}

fn escape(text: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.contains(&unsafe_char) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if unsafe_char(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// The last `n` non-empty lines of `text`, joined with ` / ` so an error stays on one line
/// (where apt, dnf and jobs say what went wrong).
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// `err` and every `source()` below it, joined with `: `.
pub fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    printable(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading config 'x'")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn what_a_host_printed_cannot_drive_the_terminal() {
        let hostile = "E: boom\x1b]0;owned\x07\x1b[2J\rdone\n\tnext";
        let shown = printable(hostile);
        assert!(!shown.contains(|c: char| c.is_control() && c != '\n' && c != '\t'));
        assert_eq!(
            shown,
            "E: boom\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{d}done\n\tnext"
        );
        assert!(matches!(printable("plain text"), Cow::Borrowed(_)));
        assert_eq!(printable_line("E: one\nE: two\t!"), "E: one\\u{a}E: two\t!");
        let err = Outer(std::io::Error::other("dpkg said \x1b[31mno"));
        assert_eq!(chain(&err), "reading config 'x': dpkg said \\u{1b}[31mno");
    }

    #[test]
    fn joins_causes_once() {
        let err = Outer(std::io::Error::other("permission denied"));
        assert_eq!(chain(&err), "reading config 'x': permission denied");
        let repeated = Outer(std::io::Error::other("reading config 'x'"));
        assert_eq!(chain(&repeated), "reading config 'x'");
    }
}
