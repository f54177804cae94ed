//! Test harness: real hosts for the integration tests (Debian roots with a local apt repo).

pub mod aptrepo;
pub mod debroot;
pub mod registry;
pub mod rpmrepo;
