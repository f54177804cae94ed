//! What is on a host: OS, kernel, uptime, installed packages and containers.
//!
//! Gathered through `osqueryi --json` when the host has it, else by a fallback probe
//! (os-release, uname, /proc/uptime, dpkg-query / rpm, docker ps). Either way the result is
//! one typed [`Inventory`]. osquery has no table of pending updates (osquery #5201): those always
//! come from the package manager (`pkg`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Facts about one host at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub os: OsInfo,
    pub kernel: String,
    pub hostname: String,
    pub uptime_secs: u64,
    /// How many packages are installed (the list itself is not kept in the snapshot).
    pub installed_packages: usize,
    pub containers: Vec<Container>,
    pub images: Vec<Image>,
    pub source: InventorySource,
    pub collected_at: DateTime<Utc>,
}

/// From `/etc/os-release` (or osquery's `os_version`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `ID`, e.g. `debian`.
    pub id: String,
    /// `ID_LIKE`, split on spaces.
    pub id_like: Vec<String>,
    /// `VERSION_ID`, e.g. `12`.
    pub version_id: String,
    /// `PRETTY_NAME`, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub pretty_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InventorySource {
    Osquery,
    Probe,
}
