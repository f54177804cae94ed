//! tendhost as a library: every module of the binary, so the integration tests and the benchmark
//! can drive the real transport, config loader and engine instead of copies of them.
//!
//! `main.rs` stays wiring only; nothing here exits, and whatever prints goes through [`stdio`].
#![forbid(unsafe_code)]

pub mod batch;
pub mod cli;
pub mod config;
pub mod engine;
pub mod errors;
pub mod exit;
pub mod fleet;
pub mod health;
pub mod history;
pub mod hostmgmt;
pub mod inventory;
pub mod logging;
pub mod notify;
pub mod pkg;
pub mod plan;
pub mod remote;
pub mod schedule;
mod signals;
pub mod stdio;
pub mod store;
pub mod survey;
pub mod tui;
