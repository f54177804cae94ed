//! tendhost's integration tests: one binary, one module per area (STYLE.md §11).

mod harness;

mod cli;
mod config;
mod ssh;
