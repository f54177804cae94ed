//! `tendhost keygen`, `tendhost host add|import|test`: setting up and checking the
//! SSH side of a fleet, outside the engine.
//!
//! Each subcommand is a function returning an [`crate::exit::Exit`] and printing its own
//! results; `main` only dispatches. Nothing here knows about the TUI or the engine.

mod add;
pub mod import;
mod init;
mod keygen;
mod test;

pub use add::{AddError, NewHost, add_host, add_hosts};
pub use init::init;
pub use keygen::{Keygen, KeygenError, keygen};
pub use test::{TestOptions, test_hosts};
