//! What tendhost keeps on disk: where (`paths`), and who may write there (`lock`).
//!
//! Every file here is written atomically (temp file, fsync, rename) with mode 0600.

mod lock;
mod paths;

pub use lock::{LockError, StateLock};
pub use paths::{Paths, write_private_atomic};
