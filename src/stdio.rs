//! Writing to stdout and stderr without ever panicking: the only way tendhost prints.
//!
//! `println!` and `eprintln!` panic when a write fails, and writes fail in ordinary use: EPIPE
//! when the reader of a pipe went away (`tendhost --batch hosts | head -1`), EIO when the
//! terminal did (a dropped ssh session). A line to stderr is best effort: when stderr is gone
//! there is nowhere left to say so. A line to stdout returns its error, so a caller can stop
//! writing; batch mode does, quietly on a broken pipe, and still exits with the code its results
//! call for. Neither knows what the text is; escaping host text is the caller's business.

use std::fmt::Display;
use std::io::{self, Write};

/// Writes `line` and a newline to stderr, ignoring a stderr that is closed or broken.
pub fn err_line(line: impl Display) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Writes `line` and a newline to stdout and flushes, so a reader sees each line as it is made.
pub fn out_line(line: impl Display) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// Writes `bytes` to stdout as they are (a generated completion script or man page).
pub fn out_bytes(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}
