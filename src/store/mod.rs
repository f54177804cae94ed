//! What tendhost keeps on disk: where (`paths`), who may write there (`lock`), the fleet
//! snapshot (`snapshot`) and the audit trail (`audit`).
//!
//! Every file here is written atomically (temp file, fsync, rename) with mode 0600, except the
//! audit log, which is appended and fsynced per record and rotated by renaming (`rotate`).

pub mod audit;
mod lock;
pub(crate) mod metrics;
mod paths;
mod rotate;
pub mod snapshot;
mod syslog;
mod webhook;

pub use lock::{LockError, StateLock};
pub use paths::{Paths, write_private_atomic};
