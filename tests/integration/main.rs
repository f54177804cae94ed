//! tendhost's integration tests: one binary, one module per area (STYLE.md §11). Needs root and
//! the packages of `.ci/install-test-deps.sh`.

// Test and benchmark code: a failed unwrap is a failed run, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests start sshd, apt and tendhost itself; `remote::child` is the rule for the crate's own
// children (clippy.toml).
#![allow(clippy::disallowed_methods)]

mod harness;

// Named to sort first: libtest starts tests in name order, and the VM test is the longest (two
// boots, an update and a real reboot under software emulation). Started first, it runs beside
// the rest of the suite instead of alone after it.
#[path = "vm.rs"]
mod a_vm;

mod batch;
mod batch_compose;
mod batch_plan;
mod batch_rollback;
mod batch_scope;
mod batch_waves;
mod cli;
mod config;
mod engine;
mod health_pre;
mod history;
mod host_cmd;
mod host_import;
mod hostile;
mod inventory;
mod jobs;
mod metrics;
mod notify;
mod pkg_apt;
mod pkg_compose;
mod pkg_dnf;
mod pkg_quoting;
mod pkg_scope;
mod pkg_ssh;
mod proxmox;
mod repair;
mod schedule;
mod secrets;
mod ssh;
mod survey;
mod survey_dnf;
mod tui;
