//! `tendhost keygen`, `tendhost host add` and `tendhost host test`: setting up and checking the
//! SSH side of a fleet, outside the engine.
//!
//! Each subcommand is a function returning an [`crate::exit::Exit`] and printing its own
//! results; `main` only dispatches. Nothing here knows about the TUI or the engine.

mod add;
mod keygen;
mod select;
mod test;

pub use add::{add_host, AddError, NewHost};
pub use keygen::{keygen, Keygen, KeygenError};
pub use select::{select_hosts, SelectError};
pub use test::{test_hosts, TestOptions};
