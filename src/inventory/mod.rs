//! What is on a host: OS, kernel, uptime, installed packages and containers.
//!
//! Gathered through `osqueryi --json` when the host has it, else by a fallback probe
//! (os-release, uname, /proc/uptime, dpkg-query / rpm, docker ps). Either way the result is
//! one typed [`Inventory`]. osquery has no table of pending updates (osquery #5201): those always
//! come from the package manager (`pkg`).

mod osquery;
mod probe;
mod proxmox;

pub use proxmox::{Guest, GuestKind, Hypervisor};

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::remote::{self, Executor, RemoteCommand};

/// The OS part of an inventory. Defined by `pkg`, which picks a package manager from it, so that
/// pkg never depends on the inventory it feeds.
pub use crate::pkg::OsInfo;

/// Inventory reads a few files and lists; a host that takes longer is stuck.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(120);

/// Why an inventory could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("collecting inventory ({step})")]
    Remote {
        step: &'static str,
        #[source]
        source: remote::Error,
    },
    #[error("inventory probe failed (exit {code}): {detail}")]
    ProbeFailed { code: String, detail: String },
    #[error("could not understand the inventory probe's output (no os-release found)")]
    Unparsable,
    #[error("collecting inventory ({step}): its output passed {} MiB and was cut", remote::STDOUT_LIMIT >> 20)]
    TooLarge { step: &'static str },
}

/// Collects one host's inventory: through `osqueryi --json` when the host has osquery and it
/// answers, otherwise through the fallback probe. Never privileged: everything it reads is
/// world-readable (docker facts need the login user to reach the docker socket).
pub async fn collect(exec: &dyn Executor, cancel: &CancellationToken) -> Result<Inventory, Error> {
    // One round trip in the common case: the host picks osquery or the probe itself.
    let script = format!(
        "if command -v osqueryi >/dev/null 2>&1; then\n{}\nelse\n{}\nfi\n{}",
        osquery::SCRIPT,
        probe::SCRIPT,
        proxmox::SCRIPT
    );
    let out = run(exec, "inventory", script, cancel).await?;
    let hypervisor = proxmox::parse(&out.stdout);
    let with_hypervisor = |inventory: Inventory| Inventory {
        hypervisor: hypervisor.clone(),
        ..inventory
    };
    if let Some(inventory) = osquery::parse(&out.stdout).filter(|i| !i.os.id.is_empty()) {
        return Ok(with_hypervisor(inventory));
    }
    if out.success()
        && probe::is_probe_output(&out.stdout)
        && let Some(inventory) = probe::parse(&out.stdout)
    {
        return Ok(with_hypervisor(inventory));
    }
    // osquery is there but did not answer usefully: ask the probe directly.
    let out = run(exec, "probe", probe::SCRIPT.to_string(), cancel).await?;
    if !out.success() {
        let code = out
            .exit_code
            .map_or_else(|| "signal".into(), |c| c.to_string());
        let detail = out
            .diagnostic()
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_string();
        return Err(Error::ProbeFailed { code, detail });
    }
    probe::parse(&out.stdout)
        .map(with_hypervisor)
        .ok_or(Error::Unparsable)
}

/// The inventory part of a one-round-trip survey (see `survey`): the probe always (it is cheap
/// and needs nothing), and osquery's answer too where the host has it, behind `@@osquery`.
pub(crate) fn survey_script() -> String {
    format!(
        "( {probe} )\n( {proxmox} )\nif command -v osqueryi >/dev/null 2>&1; then\necho @@osquery\n( {osquery} )\nfi",
        probe = probe::SCRIPT,
        proxmox = proxmox::SCRIPT,
        osquery = osquery::SCRIPT
    )
}

/// Reads what [`survey_script`] printed: osquery's answer when it has the OS, else the probe's.
pub(crate) fn from_survey(text: &str) -> Result<Inventory, Error> {
    let (probe_text, osquery_text) = match text.split_once("\n@@osquery\n") {
        Some((probe, osquery)) => (probe, Some(osquery)),
        None => (text, None),
    };
    let hypervisor = proxmox::parse(probe_text);
    if let Some(inventory) = osquery_text
        .and_then(osquery::parse)
        .filter(|i| !i.os.id.is_empty())
    {
        return Ok(Inventory {
            hypervisor,
            ..inventory
        });
    }
    probe::parse(probe_text)
        .map(|inventory| Inventory {
            hypervisor,
            ..inventory
        })
        .ok_or(Error::Unparsable)
}

async fn run(
    exec: &dyn Executor,
    step: &'static str,
    script: String,
    cancel: &CancellationToken,
) -> Result<remote::CommandOutput, Error> {
    let out = exec
        .run(&RemoteCommand::new(script, COLLECT_TIMEOUT), None, cancel)
        .await
        .map_err(|source| Error::Remote { step, source })?;
    // A cut list would be read as a shorter one.
    if out.stdout_truncated() {
        return Err(Error::TooLarge { step });
    }
    Ok(out)
}

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
    /// Set on a hypervisor (Proxmox VE): its guests, which configured hosts are matched to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypervisor: Option<Hypervisor>,
}

impl Inventory {
    /// An inventory being read through `source` now, with no facts yet: what the parsers fill.
    fn reading(source: InventorySource) -> Self {
        Self {
            os: OsInfo::default(),
            kernel: String::new(),
            hostname: String::new(),
            uptime_secs: 0,
            installed_packages: 0,
            containers: Vec::new(),
            images: Vec::new(),
            source,
            collected_at: Utc::now(),
            hypervisor: None,
        }
    }

    /// An empty inventory, for tests elsewhere in the crate.
    #[cfg(test)]
    pub(crate) fn reading_for_tests(source: InventorySource) -> Self {
        Self::reading(source)
    }

    /// The OS as a table shows it: `Debian 12`, else the OS's own pretty name.
    pub fn os_label(&self) -> String {
        let name = os_name(&self.os.id);
        match (name.is_empty(), self.os.version_id.is_empty()) {
            (true, _) => self.os.pretty_name.clone(),
            (false, true) => name,
            (false, false) => format!("{name} {}", self.os.version_id),
        }
    }
}

/// A short display name for an os-release `ID`: the usual spelling for the families tendhost
/// knows, else the ID capitalised.
fn os_name(id: &str) -> String {
    match id {
        "debian" => "Debian".into(),
        "ubuntu" => "Ubuntu".into(),
        "fedora" => "Fedora".into(),
        "centos" => "CentOS".into(),
        "rhel" => "RHEL".into(),
        "rocky" => "Rocky".into(),
        "almalinux" => "Alma".into(),
        "" => String::new(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_os(id: &str, version_id: &str, pretty_name: &str) -> Inventory {
        Inventory {
            os: OsInfo {
                id: id.into(),
                id_like: Vec::new(),
                version_id: version_id.into(),
                pretty_name: pretty_name.into(),
            },
            ..Inventory::reading(InventorySource::Probe)
        }
    }

    #[test]
    fn os_labels_use_short_names_then_the_version() {
        let cases = [
            (
                "debian",
                "12",
                "Debian GNU/Linux 12 (bookworm)",
                "Debian 12",
            ),
            ("almalinux", "9.4", "AlmaLinux 9.4", "Alma 9.4"),
            ("rhel", "", "Red Hat Enterprise Linux", "RHEL"),
            ("arch", "", "Arch Linux", "Arch"),
            ("", "", "Something Odd", "Something Odd"),
        ];
        for (id, version, pretty, label) in cases {
            assert_eq!(with_os(id, version, pretty).os_label(), label, "{id}");
        }
    }
}
