//! The detached job tendhost started on a host (see `remote::job`), as the fleet knows it: from
//! just before it starts (written ahead) until the step that ran it has settled. A restarted
//! tendhost finds it in the snapshot and asks the host how it went.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::Stage;
use crate::remote::job::JobId;

/// One detached job on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteJob {
    pub id: JobId,
    /// What it runs, as errors name it: `apt-get upgrade`, `compose up`, `reboot`.
    pub label: Arc<str>,
    pub stage: Stage,
    pub started: DateTime<Utc>,
    /// Bytes of its log shown so far: where following it goes on.
    pub offset: u64,
    /// Set once the job is over: its exit status, `None` inside when it vanished.
    pub ended: Option<Option<i32>>,
    /// For a reboot: the boot id before it, which the reboot must change.
    pub boot_id: Option<Arc<str>>,
}

impl RemoteJob {
    /// Over, and exited 0.
    pub fn succeeded(&self) -> bool {
        self.ended == Some(Some(0))
    }
}
