//! What tendhost remembers about schedules between runs: paused or not, and the last run with
//! its result. Kept in `schedules.json` under the state dir (0600, atomic writes), never in the
//! config, so pausing a schedule does not rewrite tendhost.toml.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::write_private_atomic;

/// The file name under the state dir.
pub const STATE_FILE: &str = "schedules.json";

/// All schedules' remembered state, by schedule name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleStates {
    #[serde(default)]
    pub schedules: BTreeMap<String, ScheduleState>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    #[serde(default)]
    pub paused: bool,
    /// The due time the last run answered (started, skipped or missed), for missed-run detection.
    #[serde(default)]
    pub last_due: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_run: Option<LastRun>,
}

/// One finished (or skipped) run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    /// `ok`, `failed`, `halted`, `paused`, `skipped: …`, `locked`.
    pub result: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading schedule state '{path}'")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("schedule state '{path}' is not valid")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing schedule state '{path}'")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ScheduleStates {
    /// Reads the file; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Parse {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes atomically, 0600 (it is tendhost's own bookkeeping; nobody else reads it).
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|source| StateError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        bytes.push(b'\n');
        write_private_atomic(path, &bytes).map_err(|source| StateError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn get(&self, name: &str) -> ScheduleState {
        self.schedules.get(name).cloned().unwrap_or_default()
    }

    pub fn entry(&mut self, name: &str) -> &mut ScheduleState {
        self.schedules.entry(name.to_string()).or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn state_round_trips_privately_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        assert_eq!(
            ScheduleStates::load(&path).unwrap(),
            ScheduleStates::default()
        );
        let mut states = ScheduleStates::default();
        states.entry("sun").paused = true;
        states.entry("sun").last_run = Some(LastRun {
            started: Utc::now(),
            finished: None,
            result: "ok".into(),
        });
        states.save(&path).unwrap();
        assert_eq!(ScheduleStates::load(&path).unwrap(), states);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
