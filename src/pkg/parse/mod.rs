//! Pure parsers over captured command output: text in, typed values out, never a panic.
//!
//! Nothing here runs a command; the managers in `pkg` feed these with what their `Executor`
//! returned. Each parser is tested on real captured output under `tests/fixtures/` and fuzzed.

pub(crate) mod apt;
pub(crate) mod compose;
pub(crate) mod dnf;
pub(crate) mod os_release;
pub(crate) mod plan;
