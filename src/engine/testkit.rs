//! A simulated fleet for unit and scale tests: an `Executor` that answers the engine's own
//! commands (boot id, reboot, checks) and a `PackageManager` whose behaviour each host chooses.
//! It records how many upgrades run at once, so tests can prove a wave's batch cap.
//!
//! For unit tests, scale tests and the benchmark only; tendhost itself never builds one. Every
//! feature proven with it is also proven against real sshd hosts.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{EngineDeps, ExecutorFactory, ManagerSource, RebootSettings, SAVE_EVERY};
use crate::config::{HostConfig, HostId};
use crate::inventory::{Inventory, InventorySource, OsInfo};
use crate::pkg::{
    self, ManagerKind, PackageManager, PendingPackage, RebootStatus, SharedManager, UpgradeOptions,
    UpgradePlan, UpgradeReport, UpgradeScope,
};
use crate::remote::{self, CommandOutput, Executor, OutputLine, RemoteCommand, SharedExecutor};
use crate::store::Paths;

/// How one simulated host behaves.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub pending: usize,
    pub upgrade_time: Duration,
    pub fail_upgrade: bool,
    pub panic_upgrade: bool,
    pub reboot_required: bool,
    /// How long a reboot keeps the host away.
    pub down_for: Duration,
    /// The reboot does not change the boot id (a reboot that did not happen).
    pub keep_boot_id: bool,
    /// The host comes back with another host key.
    pub new_host_key: bool,
    /// Removals the upgrade plan reports.
    pub removals: Vec<String>,
    /// Reads fail as if the host refused connections (network trouble).
    pub offline: bool,
    /// How long a wave's pre-download takes.
    pub download_time: Duration,
    pub fail_download: bool,
    /// How long refreshing the package lists takes.
    pub refresh_time: Duration,
    /// The host is a hypervisor with these guests (its inventory says so).
    pub hypervisor: Option<crate::inventory::Hypervisor>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            pending: 2,
            upgrade_time: Duration::from_millis(50),
            fail_upgrade: false,
            panic_upgrade: false,
            reboot_required: false,
            down_for: Duration::from_millis(300),
            keep_boot_id: false,
            new_host_key: false,
            removals: Vec::new(),
            offline: false,
            download_time: Duration::ZERO,
            fail_download: false,
            refresh_time: Duration::ZERO,
            hypervisor: None,
        }
    }
}

/// The whole simulated fleet: behaviours, plus counters shared by every host.
#[derive(Debug, Default)]
pub struct SimFleet {
    pub behaviours: Mutex<HashMap<String, Behaviour>>,
    pub in_flight: AtomicUsize,
    pub peak: AtomicUsize,
    pub upgrades: AtomicUsize,
    /// Inventory reads asked for, answered or not.
    pub reads: AtomicUsize,
    /// Package-list refreshes: running now, the most at once, and how many in all.
    pub refreshing: AtomicUsize,
    pub refresh_peak: AtomicUsize,
    pub refreshes: AtomicUsize,
    /// Every upgrade's start and end, in the order they happened (a std mutex: pushed to and
    /// copied, never held across an await).
    pub upgrade_log: Mutex<Vec<(String, Upgrade)>>,
    pub downloading: AtomicUsize,
    /// Most pre-downloads at once.
    pub download_peak: AtomicUsize,
    /// Every pre-download's start and end, in the order they happened (a std mutex, as above).
    pub download_log: Mutex<Vec<(String, Upgrade)>>,
    /// The scope of every upgrade and pre-download, by host, in the order they ran (a std
    /// mutex, as above).
    pub scopes: Mutex<Vec<(String, &'static str, UpgradeScope)>>,
}

/// One entry of [`SimFleet::upgrade_log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    Started,
    /// Finished, failed or cancelled: the host is no longer upgrading.
    Ended,
}

impl SimFleet {
    pub fn new() -> Arc<Self> {
        Arc::new(SimFleet::default())
    }

    pub fn set(&self, host: &str, behaviour: Behaviour) {
        self.behaviours
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(host.to_string(), behaviour);
    }

    fn behaviour(&self, host: &str) -> Behaviour {
        self.behaviours
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(host)
            .cloned()
            .unwrap_or_default()
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// A copy of [`SimFleet::download_log`].
    pub fn downloads_in_order(&self) -> Vec<(String, Upgrade)> {
        self.download_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn log_download(&self, host: &str, mark: Upgrade) {
        self.download_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((host.to_string(), mark));
    }

    /// A copy of [`SimFleet::scopes`]: `(host, "upgrade" | "download", scope)`.
    pub fn scopes_seen(&self) -> Vec<(String, &'static str, UpgradeScope)> {
        self.scopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn log_scope(&self, host: &str, what: &'static str, scope: &UpgradeScope) {
        self.scopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((host.to_string(), what, scope.clone()));
    }

    /// A copy of [`SimFleet::upgrade_log`].
    pub fn upgrades_in_order(&self) -> Vec<(String, Upgrade)> {
        self.upgrade_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn log_upgrade(&self, host: &str, mark: Upgrade) {
        self.upgrade_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((host.to_string(), mark));
    }

    pub fn executors(self: &Arc<Self>) -> ExecutorFactory {
        let fleet = self.clone();
        Arc::new(move |host: &HostConfig| -> SharedExecutor {
            Arc::new(SimExecutor {
                host: host.name.clone(),
                fleet: fleet.clone(),
                machine: Mutex::new(Machine {
                    boot: 1,
                    down_until: None,
                    key_changed: false,
                }),
            })
        })
    }
}

#[derive(Debug)]
struct Machine {
    boot: u32,
    down_until: Option<Instant>,
    key_changed: bool,
}

#[derive(Debug)]
pub struct SimExecutor {
    host: HostId,
    fleet: Arc<SimFleet>,
    machine: Mutex<Machine>,
}

#[async_trait]
impl Executor for SimExecutor {
    async fn run(
        &self,
        command: &RemoteCommand,
        _lines: Option<&mpsc::Sender<OutputLine>>,
        _cancel: &CancellationToken,
    ) -> Result<CommandOutput, remote::Error> {
        let behaviour = self.fleet.behaviour(&self.host);
        let target = self.host.to_string();
        let mut machine = self
            .machine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if machine.down_until.is_some_and(|t| Instant::now() < t) {
            return Err(remote::Error::Connect {
                target,
                source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            });
        }
        if machine.key_changed {
            return Err(remote::Error::HostKeyChanged {
                target,
                expected: "SHA256:old".into(),
                got: "SHA256:new".into(),
                location: "known_hosts:1".into(),
            });
        }
        let script = command.script.as_str();
        if script.starts_with(crate::health::probe::SCRIPT_HEADER) {
            return Ok(ok(&crate::health::probe::healthy_answer()));
        }
        if script.starts_with("cat ") {
            return Ok(ok(&format!("boot-{}\n", machine.boot)));
        }
        if script.contains("reboot") {
            machine.down_until = Some(Instant::now() + behaviour.down_for);
            if !behaviour.keep_boot_id {
                machine.boot += 1;
            }
            machine.key_changed = behaviour.new_host_key;
            return Err(remote::Error::Disconnected {
                target,
                message: "connection closed".into(),
            });
        }
        let code = script
            .strip_prefix("exit ")
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(0);
        Ok(CommandOutput {
            exit_code: Some(code),
            stderr: if code == 0 {
                String::new()
            } else {
                "check said no\n".into()
            },
            ..Default::default()
        })
    }

    fn describe(&self) -> String {
        format!("sim:{}", self.host)
    }
}

fn ok(stdout: &str) -> CommandOutput {
    CommandOutput {
        exit_code: Some(0),
        stdout: stdout.to_string(),
        ..Default::default()
    }
}

impl SimFleet {
    /// The manager source to put in `EngineDeps::managers`.
    pub fn managers(self: &Arc<Self>) -> Arc<dyn ManagerSource> {
        Arc::new(SimSource(self.clone()))
    }

    /// What an engine over this fleet is built from: its state and data in `dir`, no snapshot,
    /// the default reboot settings and save interval, no periodic refresh. Callers change the
    /// fields they need.
    pub fn engine_deps(self: &Arc<Self>, dir: &Path) -> EngineDeps {
        EngineDeps {
            executor_for: self.executors(),
            managers: self.managers(),
            paths: Paths {
                state_dir: dir.to_path_buf(),
                data_dir: dir.to_path_buf(),
                config_dir: None,
            },
            snapshot: None,
            reboot: RebootSettings::default(),
            save_every: SAVE_EVERY,
            periodic_refresh: false,
        }
    }
}

struct SimSource(Arc<SimFleet>);

#[async_trait]
impl ManagerSource for SimSource {
    async fn manager(
        &self,
        host: &HostConfig,
        _exec: &dyn Executor,
        _cancel: &CancellationToken,
    ) -> Result<Option<SharedManager>, pkg::Error> {
        Ok(Some(Arc::new(SimManager {
            host: host.name.to_string(),
            fleet: self.0.clone(),
            upgraded: Mutex::new(Vec::new()),
        })))
    }

    async fn inventory(
        &self,
        host: &HostConfig,
        _exec: &dyn Executor,
        _cancel: &CancellationToken,
    ) -> Result<Inventory, crate::inventory::Error> {
        self.0.reads.fetch_add(1, Ordering::SeqCst);
        if self.0.behaviour(&host.name).offline {
            return Err(crate::inventory::Error::Remote {
                step: "inventory",
                source: remote::Error::Connect {
                    target: host.name.to_string(),
                    source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
                },
            });
        }
        Ok(Inventory {
            os: OsInfo {
                id: "debian".into(),
                id_like: Vec::new(),
                version_id: "12".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            },
            kernel: "6.1.0".into(),
            hostname: host.name.to_string(),
            uptime_secs: 100,
            installed_packages: 300,
            containers: Vec::new(),
            images: Vec::new(),
            source: InventorySource::Probe,
            collected_at: Utc::now(),
            hypervisor: self.0.behaviour(&host.name).hypervisor,
        })
    }
}

#[derive(Debug)]
struct SimManager {
    host: String,
    fleet: Arc<SimFleet>,
    /// Packages upgraded already: no longer pending.
    upgraded: Mutex<Vec<String>>,
}

impl SimManager {
    /// `pkg0`, `pkg1`…, `pkg0` a security update, less what was upgraded.
    fn packages(&self) -> Vec<PendingPackage> {
        let upgraded = self
            .upgraded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        (0..self.fleet.behaviour(&self.host).pending)
            .map(|i| PendingPackage {
                name: format!("pkg{i}"),
                from: "1.0".into(),
                to: "1.1".into(),
                security: i == 0,
            })
            .filter(|p| !upgraded.contains(&p.name))
            .collect()
    }

    /// The pending packages `scope` takes.
    fn in_scope(&self, scope: &UpgradeScope) -> Vec<PendingPackage> {
        self.packages()
            .into_iter()
            .filter(|p| scope.takes(p))
            .collect()
    }
}

#[async_trait]
impl PackageManager for SimManager {
    fn kind(&self) -> ManagerKind {
        ManagerKind::Apt
    }

    async fn repair(
        &self,
        _exec: &dyn Executor,
        _lines: Option<&mpsc::Sender<OutputLine>>,
        _cancel: &CancellationToken,
    ) -> Result<(), pkg::Error> {
        Ok(())
    }

    async fn refresh(
        &self,
        _exec: &dyn Executor,
        _cancel: &CancellationToken,
    ) -> Result<(), pkg::Error> {
        let fleet = &self.fleet;
        let refresh_time = fleet.behaviour(&self.host).refresh_time;
        let now = fleet.refreshing.fetch_add(1, Ordering::SeqCst) + 1;
        fleet.refresh_peak.fetch_max(now, Ordering::SeqCst);
        fleet.refreshes.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(refresh_time).await;
        fleet.refreshing.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }

    async fn pending(
        &self,
        _exec: &dyn Executor,
        _cancel: &CancellationToken,
    ) -> Result<Vec<PendingPackage>, pkg::Error> {
        Ok(self.packages())
    }

    async fn plan(
        &self,
        _exec: &dyn Executor,
        options: UpgradeOptions,
        _cancel: &CancellationToken,
    ) -> Result<UpgradePlan, pkg::Error> {
        Ok(UpgradePlan {
            upgrades: self.in_scope(&options.scope),
            removals: self.fleet.behaviour(&self.host).removals,
            ..Default::default()
        })
    }

    async fn download(
        &self,
        _exec: &dyn Executor,
        options: UpgradeOptions,
        cancel: &CancellationToken,
    ) -> Result<(), pkg::Error> {
        let behaviour = self.fleet.behaviour(&self.host);
        self.fleet.log_scope(&self.host, "download", &options.scope);
        let now = self.fleet.downloading.fetch_add(1, Ordering::SeqCst) + 1;
        self.fleet.download_peak.fetch_max(now, Ordering::SeqCst);
        self.fleet.log_download(&self.host, Upgrade::Started);
        let cancelled = tokio::select! {
            () = tokio::time::sleep(behaviour.download_time) => false,
            () = cancel.cancelled() => true,
        };
        self.fleet.downloading.fetch_sub(1, Ordering::SeqCst);
        self.fleet.log_download(&self.host, Upgrade::Ended);
        if cancelled {
            return Err(pkg::Error::Remote {
                step: "apt-get -d (download)",
                source: remote::Error::Cancelled,
            });
        }
        if behaviour.fail_download {
            return Err(pkg::Error::CommandFailed {
                step: "apt-get -d (download)",
                code: "100".into(),
                detail: "E: Failed to fetch http://deb.example/pool/pkg0.deb".into(),
            });
        }
        Ok(())
    }

    async fn upgrade(
        &self,
        _exec: &dyn Executor,
        options: UpgradeOptions,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<UpgradeReport, pkg::Error> {
        let behaviour = self.fleet.behaviour(&self.host);
        self.fleet.log_scope(&self.host, "upgrade", &options.scope);
        let now = self.fleet.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.fleet.peak.fetch_max(now, Ordering::SeqCst);
        self.fleet.upgrades.fetch_add(1, Ordering::SeqCst);
        self.fleet.log_upgrade(&self.host, Upgrade::Started);
        if let Some(lines) = lines {
            let _ = lines
                .send(OutputLine::new(
                    remote::Stream::Stdout,
                    format!("Unpacking pkg0 on {}", self.host),
                ))
                .await;
        }
        let cancelled = tokio::select! {
            () = tokio::time::sleep(behaviour.upgrade_time) => false,
            () = cancel.cancelled() => true,
        };
        self.fleet.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.fleet.log_upgrade(&self.host, Upgrade::Ended);
        if cancelled {
            // As the real managers report a command stopped half-way.
            return Err(pkg::Error::Remote {
                step: "apt-get dist-upgrade",
                source: remote::Error::Cancelled,
            });
        }
        if behaviour.panic_upgrade {
            panic!("simulated bug in the upgrade of {}", self.host);
        }
        if behaviour.fail_upgrade {
            return Err(pkg::Error::CommandFailed {
                step: "apt-get dist-upgrade",
                code: "100".into(),
                detail: "E: Sub-process /usr/bin/dpkg returned an error code (1)".into(),
            });
        }
        let taken = self.in_scope(&options.scope);
        self.upgraded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(taken.iter().map(|p| p.name.clone()));
        Ok(UpgradeReport {
            plan: UpgradePlan {
                upgrades: taken,
                ..UpgradePlan::default()
            },
            reboot: RebootStatus {
                required: behaviour.reboot_required,
                packages: if behaviour.reboot_required {
                    vec!["linux-image".into()]
                } else {
                    Vec::new()
                },
            },
        })
    }

    async fn reboot_status(
        &self,
        _exec: &dyn Executor,
        _cancel: &CancellationToken,
    ) -> Result<RebootStatus, pkg::Error> {
        Ok(RebootStatus::default())
    }
}
