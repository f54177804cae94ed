//! tendhost's integration tests: one binary, one module per area, a shared harness.

mod harness;
mod inventory;
mod pkg_apt;
mod pkg_compose;
mod pkg_dnf;
mod pkg_quoting;
