//! The fleet snapshot: every host's record (state, inventory, pending packages, failure context,
//! recent output) in one versioned JSON file, written atomically with mode 0600.
//!
//! The engine's hub decides when to save; this module only knows the format. A snapshot that
//! cannot be read is renamed aside with a message saying where it went, never silently replaced.

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::paths::write_private_atomic;
use crate::engine::HostRecord;

/// Bump when the format changes; add a migration from the old number in [`load`].
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub saved_at: DateTime<Utc>,
    pub hosts: Vec<HostRecord>,
}

/// What was found at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub snapshot: Option<Snapshot>,
    /// Set when the file could not be used: what happened and where it was moved.
    pub warning: Option<String>,
}

impl Snapshot {
    pub fn new(hosts: Vec<HostRecord>) -> Self {
        Snapshot {
            version: FORMAT_VERSION,
            saved_at: Utc::now(),
            hosts,
        }
    }
}

/// Serialises `snapshot` for [`save_bytes`] (split so the caller can do it off the hot path).
pub fn encode(snapshot: &Snapshot) -> io::Result<Vec<u8>> {
    encode_records(&snapshot.hosts)
}

/// Serialises records as a snapshot without copying them first.
pub fn encode_records(hosts: &[HostRecord]) -> io::Result<Vec<u8>> {
    #[derive(Serialize)]
    struct SnapshotRef<'a> {
        version: u32,
        saved_at: DateTime<Utc>,
        hosts: &'a [HostRecord],
    }
    let snapshot = SnapshotRef {
        version: FORMAT_VERSION,
        saved_at: Utc::now(),
        hosts,
    };
    serde_json::to_vec(&snapshot).map_err(io::Error::other)
}

pub fn save_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_private_atomic(path, bytes)
}

/// Reads the snapshot at `path`. Missing is fine (a first run); unreadable or from an unknown
/// format version is moved aside to `snapshot.json.bad-TIMESTAMP` and reported.
pub fn load(path: &Path) -> Loaded {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::default(),
        Err(e) => return set_aside(path, &format!("it could not be read ({e})")),
    };
    #[derive(Deserialize)]
    struct Header {
        version: u32,
    }
    let version = match serde_json::from_slice::<Header>(&bytes) {
        Ok(header) => header.version,
        Err(e) => return set_aside(path, &format!("it is corrupt ({e})")),
    };
    if version != FORMAT_VERSION {
        return set_aside(
            path,
            &format!(
                "it has format version {version} and this tendhost reads version {FORMAT_VERSION}"
            ),
        );
    }
    match serde_json::from_slice::<Snapshot>(&bytes) {
        Ok(snapshot) => Loaded {
            snapshot: Some(snapshot),
            warning: None,
        },
        Err(e) => set_aside(path, &format!("it is corrupt ({e})")),
    }
}

fn set_aside(path: &Path, why: &str) -> Loaded {
    let aside = aside_path(path);
    let warning = match std::fs::rename(path, &aside) {
        Ok(()) => format!(
            "snapshot '{}' was not restored: {why}; it was kept as '{}' and tendhost starts with a fresh picture",
            path.display(),
            aside.display()
        ),
        Err(e) => format!(
            "snapshot '{}' was not restored: {why}; moving it aside failed ({e})",
            path.display()
        ),
    };
    Loaded {
        snapshot: None,
        warning: Some(warning),
    }
}

fn aside_path(path: &Path) -> PathBuf {
    let stamp = Utc::now().format("%Y%m%dT%H%M%S");
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".bad-{stamp}"));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::engine::state::Phase;

    #[test]
    fn round_trips_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        let mut record = HostRecord::new("web1".into());
        record.state.phase = Phase::PendingUpdates;
        record.recent_output.push_back("hello".into());
        save_bytes(&path, &encode(&Snapshot::new(vec![record])).unwrap()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = load(&path);
        assert!(loaded.warning.is_none());
        let snapshot = loaded.snapshot.unwrap();
        assert_eq!(snapshot.hosts[0].state.phase, Phase::PendingUpdates);
        assert_eq!(snapshot.hosts[0].recent_output[0], "hello");
    }

    #[test]
    fn corrupt_snapshot_is_kept_aside_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        std::fs::write(&path, b"{\"version\": 1, \"hosts\": [tru").unwrap();
        let loaded = load(&path);
        assert!(loaded.snapshot.is_none());
        let warning = loaded.warning.unwrap();
        assert!(
            warning.contains("corrupt") && warning.contains("kept as"),
            "{warning}"
        );
        assert!(!path.exists());
        let kept: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(kept.len(), 1);
        let aside = kept[0].as_ref().unwrap().path();
        assert!(aside.to_string_lossy().contains("snapshot.json.bad-"));
        assert_eq!(
            std::fs::read(aside).unwrap(),
            b"{\"version\": 1, \"hosts\": [tru"
        );
    }

    #[test]
    fn unknown_version_is_rejected_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        std::fs::write(&path, b"{\"version\": 99, \"hosts\": []}").unwrap();
        let warning = load(&path).warning.unwrap();
        assert!(warning.contains("format version 99"), "{warning}");
        assert!(!path.exists());
    }

    #[test]
    fn missing_snapshot_is_a_first_run() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(&dir.path().join("snapshot.json"));
        assert!(loaded.snapshot.is_none() && loaded.warning.is_none());
    }
}
