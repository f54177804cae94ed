//! One way to print an error for a person: the error and its causes on one line,
//! `connecting to web-1 (10.0.0.5:22): connection refused`.
//!
//! Module errors keep their source out of their own message (STYLE.md §8), so the chain reads
//! cleanly; a cause whose text is already in the message is not repeated.

use std::error::Error;

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
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading config 'x'")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn joins_causes_once() {
        let err = Outer(std::io::Error::other("permission denied"));
        assert_eq!(chain(&err), "reading config 'x': permission denied");
        let repeated = Outer(std::io::Error::other("reading config 'x'"));
        assert_eq!(chain(&repeated), "reading config 'x'");
    }
}
