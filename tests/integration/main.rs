//! The integration suite: one binary, one module per area. Needs root and the packages of
//! `.ci/install-test-deps.sh`.

mod harness;
mod host_cmd;
mod ssh;
