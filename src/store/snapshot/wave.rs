//! The wave record of the snapshot: a wave's plan and where each of its hosts stands, saved as
//! the wave advances so a killed tendhost can resume it (`EngineHandle::resume_wave`). Its own
//! on-disk type, every field defaulted, so a snapshot without it (or from an older tendhost)
//! loads with no wave to resume. Present only while the wave is unfinished: one that finished,
//! halted or was aborted clears it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{BatchSize, Config, FailureLimit, HostConfig, OnThreshold, WaveMode};
use crate::pkg::UpgradeScope;

/// An unfinished wave as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedWave {
    pub id: u64,
    pub started_at: DateTime<Utc>,
    pub request: SavedRequest,
    /// Every selected host in selection order, with where it stands.
    pub hosts: Vec<SavedWaveHost>,
    /// The batch opened last (1-based; 0 before the first).
    #[serde(default)]
    pub batch: usize,
    #[serde(default)]
    pub status: SavedStatus,
    /// Why it paused at its threshold, when it did.
    #[serde(default)]
    pub reason: Option<String>,
    /// Each selected host's config digest (see [`host_digest`]) when the wave started: a
    /// different one now means the host would be updated differently.
    #[serde(default)]
    pub digests: BTreeMap<String, String>,
}

/// What the wave was asked to do (a `WaveRequest` without its hosts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRequest {
    pub sizes: Vec<BatchSize>,
    #[serde(default, with = "millis")]
    pub delay: Duration,
    pub max_failures: FailureLimit,
    #[serde(default)]
    pub mode: WaveMode,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub allow_removals: bool,
    #[serde(default)]
    pub scope: UpgradeScope,
    #[serde(default = "abort")]
    pub on_threshold: OnThreshold,
    #[serde(default = "yes")]
    pub defer_overruns: bool,
}

fn abort() -> OnThreshold {
    OnThreshold::Abort
}

fn yes() -> bool {
    true
}

/// Where an unfinished wave was when saved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SavedStatus {
    /// Running (or paused by the operator): it goes on where it was.
    #[default]
    Running,
    /// Paused at its threshold: resuming asks the operator's choice again.
    Threshold,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedWaveHost {
    pub host: String,
    #[serde(flatten)]
    pub stand: Stand,
}

/// Where one host of a wave stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stand", rename_all = "snake_case")]
pub enum Stand {
    Waiting,
    InFlight { batch: usize },
    Succeeded { batch: usize },
    Failed { batch: usize, error: String },
    Skipped { reason: String },
}

impl Stand {
    /// Whether the host's turn is over: a resumed wave never runs it again.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            Stand::Succeeded { .. } | Stand::Failed { .. } | Stand::Skipped { .. }
        )
    }
}

impl SavedWave {
    /// Hosts whose turn is over.
    pub fn done(&self) -> usize {
        self.hosts.iter().filter(|h| h.stand.is_done()).count()
    }

    pub fn failed(&self) -> usize {
        self.hosts
            .iter()
            .filter(|h| matches!(h.stand, Stand::Failed { .. }))
            .count()
    }

    /// The number the next batch gets: a batch with a host caught in flight runs again under
    /// its own number, as does the last one opened if none of its hosts ran yet; otherwise
    /// the one after it.
    pub fn next_batch(&self) -> usize {
        let batch_of = |stand: &Stand| match *stand {
            Stand::InFlight { batch }
            | Stand::Succeeded { batch }
            | Stand::Failed { batch, .. } => Some(batch),
            Stand::Waiting | Stand::Skipped { .. } => None,
        };
        let in_flight = self
            .hosts
            .iter()
            .filter(|h| matches!(h.stand, Stand::InFlight { .. }))
            .filter_map(|h| batch_of(&h.stand))
            .min();
        if let Some(batch) = in_flight {
            return batch;
        }
        let last_ran = self.hosts.iter().filter_map(|h| batch_of(&h.stand)).max();
        match last_ran {
            Some(ran) if ran >= self.batch => ran + 1,
            _ => self.batch.max(1),
        }
    }

    /// "wave started 03:02 — 14/42 done, 2 failed, next batch 3", for the console's offer and
    /// batch's messages (start time in local time, as the operator reads clocks).
    pub fn describe(&self) -> String {
        let started = self
            .started_at
            .with_timezone(&chrono::Local)
            .format("%H:%M");
        let mut text = format!(
            "wave started {started} — {}/{} done",
            self.done(),
            self.hosts.len()
        );
        if self.failed() > 0 {
            text.push_str(&format!(", {} failed", self.failed()));
        }
        if self.status == SavedStatus::Threshold {
            text.push_str(", paused at its threshold");
        } else {
            text.push_str(&format!(", next batch {}", self.next_batch()));
        }
        text
    }

    /// How the fleet changed under the saved plan: hosts no longer configured, hosts whose
    /// config digest changed. Empty when the plan still fits the config.
    pub fn differences(&self, config: &Config) -> Vec<String> {
        let mut differences = Vec::new();
        for saved in &self.hosts {
            let Some(host) = config.hosts.iter().find(|h| *h.name == *saved.host) else {
                differences.push(format!("host '{}' is no longer configured", saved.host));
                continue;
            };
            if let Some(digest) = self.digests.get(&saved.host)
                && *digest != host_digest(host)
            {
                differences.push(format!(
                    "host '{}' has a different config since the wave started",
                    saved.host
                ));
            }
        }
        differences
    }
}

/// A digest of what changes what an update does to `host`: how tendhost reaches it (address,
/// port, user, key, jump host, transport), its package manager, compose paths, job dir,
/// policy, docker settings and checks. Not its tags or groups. Taken over the settings' debug
/// form: a tendhost upgrade that renders them differently reports every host as changed,
/// which errs on the safe side.
pub fn host_digest(host: &HostConfig) -> String {
    let text = format!(
        "{:?}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}|{:?}|{:?}|{:?}",
        host.addr,
        host.port,
        host.user,
        host.ssh_key,
        host.proxy_jump,
        host.transport,
        host.manager,
        host.compose_paths,
        host.job_dir,
        host.policy,
        host.docker,
        host.checks,
        host.cluster,
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `Duration` as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
