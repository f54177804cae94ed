//! tendhost's integration tests: one binary, one module per area (STYLE.md §11). Needs root and
//! the packages of `.ci/install-test-deps.sh`.

// Test and benchmark code: a failed unwrap is a failed run, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod batch;
mod batch_compose;
mod cli;
mod config;
mod engine;
mod host_cmd;
mod hostile;
mod inventory;
mod pkg_apt;
mod pkg_compose;
mod pkg_dnf;
mod pkg_quoting;
mod pkg_ssh;
mod ssh;
mod tui;
