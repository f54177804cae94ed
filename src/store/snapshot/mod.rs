//! The fleet snapshot: every host's model (state, inventory, pending packages, stacks, failure
//! context) and its recent output, in one versioned JSON file written atomically with mode 0600.
//!
//! The engine's hub decides when to save; this module owns the format. The file has its own
//! types ([`disk`]), so engine internals can change without the format changing; older formats
//! are migrated ([`v1`]). A snapshot that cannot be used is renamed aside with a message saying
//! where it went, never silently replaced, and the hosts it says failed (or were caught
//! mid-update) stay failed: their state is salvaged from the kept file where it is readable.

mod disk;
mod v1;
mod wave;

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::paths::write_private_atomic;
use crate::fleet::{FailedInfo, HostModel, HostState, Phase, StateKind};
use disk::DiskHost;
pub use wave::{SavedRequest, SavedStatus, SavedWave, SavedWaveHost, Stand, host_digest};

/// Bump when the format changes; add a migration from the old number in [`load`].
pub const FORMAT_VERSION: u32 = 2;

/// How many output lines per host the snapshot keeps; older ones are dropped and counted.
pub const RECENT_OUTPUT: usize = 200;
/// How many bytes of output per host the snapshot keeps at most, whatever the lines' length
/// (each is at most `remote::MAX_LINE`): older lines are dropped and counted.
pub const RECENT_OUTPUT_BYTES: usize = 64 * 1024;

/// What a snapshot holds, in memory.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub saved_at: Option<DateTime<Utc>>,
    pub hosts: Vec<SavedHost>,
    /// The unfinished wave, if one was running (see [`SavedWave`]).
    pub wave: Option<SavedWave>,
}

/// One host as saved: its model and the newest lines of its output.
#[derive(Debug, Clone)]
pub struct SavedHost {
    pub model: HostModel,
    /// The newest output lines, oldest first, at most [`RECENT_OUTPUT`] and
    /// [`RECENT_OUTPUT_BYTES`].
    pub recent_output: VecDeque<String>,
    /// Lines dropped from `recent_output` because it was full.
    pub dropped_output: u64,
}

impl SavedHost {
    pub fn new(model: HostModel) -> Self {
        SavedHost {
            model,
            recent_output: VecDeque::new(),
            dropped_output: 0,
        }
    }

    /// Keeps one more output line, dropping (and counting) the oldest while there are too many
    /// lines or bytes.
    pub fn keep_output(&mut self, line: &str) {
        let mut bytes = line.len() + self.recent_output.iter().map(String::len).sum::<usize>();
        while self.recent_output.len() >= RECENT_OUTPUT || bytes > RECENT_OUTPUT_BYTES {
            let Some(oldest) = self.recent_output.pop_front() else {
                break;
            };
            bytes -= oldest.len();
            self.dropped_output += 1;
        }
        self.recent_output.push_back(line.to_string());
    }
}

/// What was found at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub snapshot: Option<Snapshot>,
    /// Set when the file could not be used as it was: what happened and where it was moved.
    pub warning: Option<String>,
}

#[derive(Serialize)]
struct Written<'a> {
    version: u32,
    saved_at: DateTime<Utc>,
    hosts: Vec<DiskHost>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wave: Option<&'a SavedWave>,
}

#[derive(Deserialize)]
struct OnDisk<H> {
    #[serde(default)]
    saved_at: Option<DateTime<Utc>>,
    hosts: Vec<H>,
    #[serde(default)]
    wave: Option<SavedWave>,
}

/// Serialises hosts as a snapshot (split from [`save_bytes`] so the caller can do it off the
/// hot path).
pub fn encode(hosts: &[SavedHost]) -> io::Result<Vec<u8>> {
    encode_with_wave(hosts, None)
}

/// [`encode`], with the unfinished wave's record.
pub fn encode_with_wave(hosts: &[SavedHost], wave: Option<&SavedWave>) -> io::Result<Vec<u8>> {
    let snapshot = Written {
        version: FORMAT_VERSION,
        saved_at: Utc::now(),
        hosts: hosts.iter().map(DiskHost::from).collect(),
        wave,
    };
    serde_json::to_vec(&snapshot).map_err(io::Error::other)
}

pub fn save_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_private_atomic(path, bytes)
}

/// Reads the snapshot at `path`. Missing is fine (a first run); version 1 is migrated; unreadable
/// or from an unknown format version is moved aside to `snapshot.json.bad-TIMESTAMP` and
/// reported, keeping the failures it records.
pub fn load(path: &Path) -> Loaded {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::default(),
        Err(e) => return set_aside(path, &[], &format!("it could not be read ({e})")),
    };
    #[derive(Deserialize)]
    struct Header {
        version: u32,
    }
    let version = match serde_json::from_slice::<Header>(&bytes) {
        Ok(header) => header.version,
        Err(e) => return set_aside(path, &bytes, &format!("it is corrupt ({e})")),
    };
    let decoded = match version {
        1 => serde_json::from_slice::<OnDisk<v1::V1Host>>(&bytes).map(|s| OnDisk {
            saved_at: s.saved_at,
            hosts: s.hosts.into_iter().map(DiskHost::from).collect(),
            wave: s.wave,
        }),
        FORMAT_VERSION => serde_json::from_slice::<OnDisk<DiskHost>>(&bytes),
        newer => {
            let why = format!(
                "it has format version {newer} and this tendhost reads versions 1 to {FORMAT_VERSION}"
            );
            return set_aside(path, &bytes, &why);
        }
    };
    match decoded {
        Ok(snapshot) => Loaded {
            snapshot: Some(Snapshot {
                saved_at: snapshot.saved_at,
                hosts: snapshot.hosts.into_iter().map(SavedHost::from).collect(),
                wave: snapshot.wave,
            }),
            warning: None,
        },
        Err(e) => set_aside(path, &bytes, &format!("it is corrupt ({e})")),
    }
}

/// Moves an unusable snapshot aside and salvages from it the hosts that must not be forgotten:
/// those that failed, were caught mid-update, or had a detached job in flight.
fn set_aside(path: &Path, bytes: &[u8], why: &str) -> Loaded {
    let aside = aside_path(path);
    let salvaged = salvage(bytes);
    let kept = match salvaged.len() {
        0 => "tendhost starts with a fresh picture".to_string(),
        n => format!("the {n} failed or interrupted hosts it records stay failed"),
    };
    let warning = match std::fs::rename(path, &aside) {
        Ok(()) => format!(
            "snapshot '{}' was not restored: {why}; it was kept as '{}' and {kept}",
            path.display(),
            aside.display()
        ),
        Err(e) => format!(
            "snapshot '{}' was not restored: {why}; moving it aside failed ({e})",
            path.display()
        ),
    };
    Loaded {
        snapshot: (!salvaged.is_empty()).then_some(Snapshot {
            saved_at: None,
            hosts: salvaged,
            wave: None,
        }),
        warning: Some(warning),
    }
}

/// Whatever hosts of a damaged file can still be read as failed or mid-mutation, field by
/// field, whichever version wrote it (both versions keep `state.phase.state`).
fn salvage(bytes: &[u8]) -> Vec<SavedHost> {
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(bytes) else {
        return Vec::new();
    };
    let Some(Value::Array(hosts)) = root.get("hosts") else {
        return Vec::new();
    };
    hosts.iter().filter_map(salvage_host).collect()
}

fn salvage_host(host: &Value) -> Option<SavedHost> {
    let name = host.get("name")?.as_str()?;
    // A job in flight is the one fact no damage may erase: a restarted tendhost asks about it.
    let job = host
        .get("job")
        .and_then(|j| serde_json::from_value::<crate::fleet::RemoteJob>(j.clone()).ok())
        .filter(|j| j.id.is_valid());
    let phase = host.get("state")?.get("phase")?;
    let text = |key: &str| phase.get(key).and_then(Value::as_str);
    let kind: StateKind = serde_json::from_value(phase.get("state")?.clone()).ok()?;
    let phase = match kind {
        StateKind::Failed => Phase::Failed(FailedInfo {
            previous_state: text("previous_state")
                .and_then(|s| serde_json::from_value(Value::from(s)).ok())
                .unwrap_or(StateKind::Updating),
            error: text("error")
                .unwrap_or("failed (details lost with the snapshot)")
                .into(),
            failed_at: text("failed_at")
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(Utc::now),
            acknowledged: phase
                .get("acknowledged")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }),
        StateKind::Updating => Phase::Updating,
        StateKind::Rebooting => Phase::Rebooting,
        StateKind::Verifying => Phase::Verifying,
        _ if job.is_some() => Phase::Idle,
        _ => return None,
    };
    let mut model = HostModel::new(name.into());
    model.state = std::sync::Arc::new(HostState {
        phase,
        ..HostState::default()
    });
    model.job = job.map(std::sync::Arc::new);
    Some(SavedHost::new(model))
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
    use std::sync::Arc;

    use super::*;

    fn saved(name: &str, phase: Phase) -> SavedHost {
        let mut model = HostModel::new(name.into());
        model.state = Arc::new(HostState {
            phase,
            ..HostState::default()
        });
        SavedHost::new(model)
    }

    fn failed() -> Phase {
        Phase::Failed(FailedInfo {
            previous_state: StateKind::Updating,
            error: "dpkg broke".into(),
            failed_at: Utc::now(),
            acknowledged: true,
        })
    }

    #[test]
    fn round_trips_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        let mut host = saved("web1", Phase::PendingUpdates);
        let at = Utc::now();
        host.model.state = Arc::new(HostState {
            phase: Phase::PendingUpdates,
            since: Some(at),
            last_update: Some(at - chrono::Duration::days(2)),
            retry_count: 3,
            last_error: None,
        });
        host.keep_output("hello");
        host.model
            .history
            .record(&crate::fleet::Measurement::Reboot {
                at,
                took: std::time::Duration::from_secs(42),
            });
        save_bytes(&path, &encode(&[host]).unwrap()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = load(&path);
        assert!(loaded.warning.is_none());
        let snapshot = loaded.snapshot.unwrap();
        assert_eq!(snapshot.hosts[0].model.state.phase, Phase::PendingUpdates);
        // "since" and the last update survive a restart.
        assert_eq!(snapshot.hosts[0].model.state.since, Some(at));
        assert_eq!(
            snapshot.hosts[0].model.state.last_update,
            Some(at - chrono::Duration::days(2))
        );
        assert_eq!(snapshot.hosts[0].model.state.retry_count, 3);
        assert_eq!(snapshot.hosts[0].recent_output[0], "hello");
        // The measured history predicts the next update after a restart.
        let reboots = &snapshot.hosts[0].model.history.reboots;
        assert_eq!(reboots.len(), 1);
        assert_eq!(reboots[0].took, std::time::Duration::from_secs(42));
    }

    #[test]
    fn recent_output_is_bounded_and_counts_drops() {
        let mut host = saved("web1", Phase::Idle);
        for i in 0..RECENT_OUTPUT + 5 {
            host.keep_output(&format!("line {i}"));
        }
        assert_eq!(host.recent_output.len(), RECENT_OUTPUT);
        assert_eq!(host.dropped_output, 5);
        assert_eq!(
            host.recent_output.front().map(String::as_str),
            Some("line 5")
        );
    }

    #[test]
    fn recent_output_is_bounded_in_bytes_too() {
        let mut host = saved("web1", Phase::Idle);
        let long = "x".repeat(crate::remote::MAX_LINE);
        for _ in 0..20 {
            host.keep_output(&long);
        }
        let kept: usize = host.recent_output.iter().map(String::len).sum();
        assert!(kept <= RECENT_OUTPUT_BYTES, "{kept} bytes kept");
        assert_eq!(host.recent_output.len(), RECENT_OUTPUT_BYTES / long.len());
        assert_eq!(host.dropped_output, 20 - host.recent_output.len() as u64);
    }

    /// A file the first tendhost wrote (format 1, the serde of its `HostRecord`).
    const V1: &str = r#"{"version":1,"saved_at":"2026-11-30T10:00:00Z","hosts":[
        {"name":"web1","state":{"phase":{"state":"failed","previous_state":"updating",
          "error":"dpkg broke","failed_at":"2026-11-30T09:00:00Z","acknowledged":false},
          "retry_count":2},
         "inventory":null,"pending":[],"reboot":{"required":false,"packages":[]},"plan":null,
         "last_refresh":null,"last_update":"2026-11-29T08:00:00Z",
         "last_change":"2026-11-30T09:00:00Z","recent_output":["E: dpkg"],"dropped_output":3},
        {"name":"web2","state":{"phase":{"state":"pending_updates"},"retry_count":0},
         "inventory":null,"pending":[{"name":"openssl","from":"1","to":"2","security":true}],
         "reboot":{"required":false,"packages":[]},"plan":null,
         "last_refresh":"2026-11-30T09:30:00Z","last_update":null,
         "last_change":"2026-11-30T09:30:00Z","recent_output":[],"dropped_output":0}]}"#;

    #[test]
    fn version_1_is_migrated_keeping_failures_times_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        std::fs::write(&path, V1).unwrap();
        let loaded = load(&path);
        assert!(loaded.warning.is_none(), "{:?}", loaded.warning);
        let hosts = loaded.snapshot.unwrap().hosts;
        let web1 = &hosts[0].model;
        assert_eq!(web1.state.error(), Some("dpkg broke"));
        assert_eq!(web1.state.retry_count, 2);
        assert_eq!(
            web1.state.since.unwrap().to_rfc3339(),
            "2026-11-30T09:00:00+00:00"
        );
        assert!(web1.state.last_update.is_some());
        assert_eq!(
            web1.pending_count(),
            None,
            "never refreshed: unknown, not 0"
        );
        assert_eq!(hosts[0].dropped_output, 3);
        assert_eq!(hosts[1].model.pending_count(), Some(1));
        assert_eq!(hosts[1].model.kind(), StateKind::PendingUpdates);
    }

    #[test]
    fn corrupt_snapshot_is_kept_aside_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        std::fs::write(&path, b"{\"version\": 2, \"hosts\": [tru").unwrap();
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
            b"{\"version\": 2, \"hosts\": [tru"
        );
    }

    #[test]
    fn a_damaged_or_newer_snapshot_keeps_its_failed_and_interrupted_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        let mut bytes = encode(&[
            saved("broken", failed()),
            saved("busy", Phase::Updating),
            saved("fine", Phase::Idle),
        ])
        .unwrap();
        // A field this version cannot read makes the file unusable as a whole.
        let text = String::from_utf8(bytes).unwrap().replacen(
            "\"dropped_output\":0",
            "\"dropped_output\":\"many\"",
            1,
        );
        bytes = text.into_bytes();
        std::fs::write(&path, &bytes).unwrap();
        let loaded = load(&path);
        let warning = loaded.warning.unwrap();
        assert!(warning.contains("stay failed"), "{warning}");
        let hosts = loaded.snapshot.unwrap().hosts;
        let names: Vec<_> = hosts.iter().map(|h| h.model.name.to_string()).collect();
        assert_eq!(names, ["broken", "busy"]);
        assert_eq!(hosts[0].model.state.error(), Some("dpkg broke"));
        assert!(hosts[0].model.state.acknowledged());
        assert_eq!(hosts[1].model.kind(), StateKind::Updating);

        let newer = String::from_utf8(encode(&[saved("broken", failed())]).unwrap())
            .unwrap()
            .replacen("\"version\":2", "\"version\":99", 1);
        std::fs::write(&path, newer).unwrap();
        let loaded = load(&path);
        assert!(loaded.warning.unwrap().contains("format version 99"));
        assert_eq!(
            loaded.snapshot.unwrap().hosts[0].model.state.error(),
            Some("dpkg broke")
        );
    }

    #[test]
    fn missing_snapshot_is_a_first_run() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(&dir.path().join("snapshot.json"));
        assert!(loaded.snapshot.is_none() && loaded.warning.is_none());
    }
}
