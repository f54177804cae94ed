//! The orchestration core: one supervisor task per host, an event bus, waves and schedules.
//!
//! The engine knows nothing of the TUI or of batch output; both consume its events.

pub mod bus;
