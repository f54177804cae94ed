//! What tendhost can do to a host's software: list pending updates, plan and run upgrades, and
//! tell whether a reboot is needed, for apt, dnf/yum and Docker Compose stacks.
//!
//! pkg never opens a connection: every operation speaks through [`Executor`], so SSH hosts,
//! local hosts and simulated hosts behave alike. Parsers are pure functions over captured output.
//!
//! Entry points: [`detect`] picks a host's [`PackageManager`] (from the config or
//! `/etc/os-release`); [`ComposeUpdater`] inspects and updates a host's `compose_paths`.

mod apt;
mod apt_plan;
mod compose;
mod detect;
mod dnf;
pub(crate) mod parse;
mod progress;
mod step;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::remote::{self, Executor, OutputLine};

pub use apt::Apt;
pub use compose::{
    ComposeUpdater, HeldService, Hold, ImageRef, Rejected, RollbackLedger, RollbackPreview,
    RollbackStep, ServiceChange, ServiceImage, StackReport, short_image_id,
};
/// The post-reboot compose check's probe and its line markers (`crate::health::compose`).
pub(crate) use compose::{
    HEALTH_CONTAINER_MARKER as COMPOSE_HEALTH_CONTAINER,
    HEALTH_SERVICE_MARKER as COMPOSE_HEALTH_SERVICE, health_probe as compose_health_probe,
};
pub use detect::{detect, manager as manager_of, manager_for};
pub use dnf::Dnf;
pub use parse::os_release::OsInfo;
pub use progress::UpdateProgress;

/// One package with a newer version available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPackage {
    pub name: String,
    /// Installed version (`from` in DESIGN.md §3 JSON).
    pub from: String,
    /// Candidate version.
    pub to: String,
    /// Comes from a security origin / advisory.
    #[serde(default)]
    pub security: bool,
}

/// What an upgrade would do, from a dry run (`apt-get -s`, `dnf --assumeno`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradePlan {
    pub upgrades: Vec<PendingPackage>,
    /// Packages the upgrade would newly install (new dependencies).
    pub installs: Vec<String>,
    /// Packages the upgrade would remove: an upgrade with removals needs explicit consent.
    pub removals: Vec<String>,
    /// Packages the operator holds back (`apt-mark hold`, dnf versionlock or `exclude`): pending,
    /// but never upgraded.
    pub held: Vec<String>,
    /// Packages the manager keeps back on its own (apt: the upgrade would need to install or
    /// remove something the mode does not allow).
    #[serde(default)]
    pub kept_back: Vec<String>,
    /// Packages of the plan that will make the host need a reboot (a kernel, libc, systemd…):
    /// why a reboot is expected. Empty: none expected from this plan.
    #[serde(default)]
    pub reboot_packages: Vec<String>,
    /// Locally changed config files the upgrade ships anew (dpkg would prompt; tendhost keeps
    /// the local file). `None`: the manager could not tell.
    #[serde(default)]
    pub conffiles: Option<Vec<ConffilePrompt>>,
    /// Bytes still to download; `None`: unknown.
    #[serde(default)]
    pub download_bytes: Option<u64>,
    /// Change in installed size, in bytes (negative: frees space); `None`: unknown.
    #[serde(default)]
    pub install_bytes: Option<i64>,
    /// Free space where the upgrade writes (the package cache, `/`), as read with the plan.
    #[serde(default)]
    pub free_space: Vec<FreeSpace>,
}

/// A config file an upgrade would prompt about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConffilePrompt {
    pub package: String,
    pub path: String,
    /// `Some(true)`: the new package changes it (dpkg would ask); `None`: changed locally, and
    /// whether the new package changes it too is unknown (its .deb is not downloaded yet).
    pub changed_upstream: Option<bool>,
}

/// Free space on one filesystem, by the path asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeSpace {
    pub path: String,
    pub free_bytes: u64,
}

/// Which of the pending updates an upgrade takes. The default takes them all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpgradeScope {
    /// Only these packages, where they are installed and have an update (apt
    /// `--only-upgrade install`, dnf `upgrade NAME…`): a package that is not installed is never
    /// installed. Empty: every package.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Only updates from security origins (apt) or with a security advisory (dnf `--security`).
    #[serde(default)]
    pub security_only: bool,
}

impl UpgradeScope {
    /// Every pending update.
    pub fn is_everything(&self) -> bool {
        self.packages.is_empty() && !self.security_only
    }

    /// "security updates of openssl, libssl3", "openssl", "security updates", "everything".
    pub fn describe(&self) -> String {
        match (self.packages.is_empty(), self.security_only) {
            (true, false) => "everything".to_string(),
            (true, true) => "security updates".to_string(),
            (false, false) => self.packages.join(", "),
            (false, true) => format!("security updates of {}", self.packages.join(", ")),
        }
    }

    /// Whether `package` is one this scope takes: the one rule every manager, the engine and
    /// the simulated fleet apply to a pending list.
    pub fn takes(&self, package: &PendingPackage) -> bool {
        (self.packages.is_empty() || self.packages.contains(&package.name))
            && (!self.security_only || package.security)
    }

    /// The pending packages this scope takes, in their order.
    pub fn select<'a>(&self, pending: &'a [PendingPackage]) -> Vec<&'a PendingPackage> {
        pending.iter().filter(|p| self.takes(p)).collect()
    }

    /// Why an update in this scope has nothing to do: "none of openssl, libssl3 pending", "no
    /// security updates pending", "no security updates of openssl pending".
    pub fn nothing_pending(&self) -> String {
        match (self.packages.is_empty(), self.security_only) {
            (true, false) => "no packages pending".to_string(),
            (true, true) => "no security updates pending".to_string(),
            (false, false) => format!("none of {} pending", self.packages.join(", ")),
            (false, true) => format!(
                "no security updates of {} pending",
                self.packages.join(", ")
            ),
        }
    }

    /// A scope of the named packages (`--packages a,b`, the package view's picks): each name
    /// checked with [`valid_package_name`], duplicates dropped.
    pub fn of_packages<S: AsRef<str>>(
        names: impl IntoIterator<Item = S>,
        security_only: bool,
    ) -> Result<UpgradeScope, InvalidPackageName> {
        let mut packages: Vec<String> = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            if name.is_empty() {
                continue;
            }
            if !valid_package_name(name) {
                return Err(InvalidPackageName(name.to_string()));
            }
            if !packages.iter().any(|p| p == name) {
                packages.push(name.to_string());
            }
        }
        Ok(UpgradeScope {
            packages,
            security_only,
        })
    }
}

/// A name that no package manager accepts as a package name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a package name (letters, digits and . + - _ only, starting with a letter or digit)"
)]
pub struct InvalidPackageName(pub String);

/// Whether `name` can be a Debian or rpm package name: Debian allows `[a-z0-9][a-z0-9+.-]+`,
/// rpm adds upper case and `_`. Anything else (spaces, globs, shell syntax, a leading `-` that
/// would read as an option) is refused where the operator typed it, before any host sees it.
pub fn valid_package_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_'))
        && name.len() <= 255
}

/// A filesystem with less free space than an upgrade needs there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceShortfall {
    pub path: String,
    pub needed_bytes: u64,
    pub free_bytes: u64,
}

impl UpgradePlan {
    /// Where this plan needs more space than is free, the one rule every view of a plan uses:
    /// the package cache (the first `free_space` entry) must hold `download_bytes`, and `/` the
    /// growth in installed size. Unknown sizes need nothing; each path is judged on its own
    /// (whether the cache shares `/`'s filesystem is not known).
    pub fn short_of_space(&self) -> Vec<SpaceShortfall> {
        let growth = self
            .install_bytes
            .map_or(0, |b| u64::try_from(b).unwrap_or(0));
        self.free_space
            .iter()
            .enumerate()
            .filter_map(|(i, free)| {
                let needed = match (i, free.path.as_str()) {
                    (_, "/") => growth,
                    (0, _) => self.download_bytes.unwrap_or(0),
                    _ => 0,
                };
                (needed > free.free_bytes).then(|| SpaceShortfall {
                    path: free.path.clone(),
                    needed_bytes: needed,
                    free_bytes: free.free_bytes,
                })
            })
            .collect()
    }

    /// The plan, if `options` allow what it does: a plan that removes packages needs explicit
    /// consent (apt-dater drops auto-confirm in the same case). Every manager checks here.
    pub fn consented(self, options: UpgradeOptions) -> Result<UpgradePlan, Error> {
        if self.removals.is_empty() || options.allow_removals {
            Ok(self)
        } else {
            Err(Error::WouldRemove(self.removals))
        }
    }
}

/// Whether the host needs a reboot, and because of what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebootStatus {
    pub required: bool,
    /// Packages that asked for it (apt's `reboot-required.pkgs`, or the new kernel).
    pub packages: Vec<String>,
}

/// How an upgrade is to run.
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    pub mode: crate::config::UpgradeMode,
    /// Go ahead even when the plan removes packages.
    pub allow_removals: bool,
    /// Which updates to take.
    pub scope: UpgradeScope,
}

/// The result of a real upgrade.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeReport {
    pub plan: UpgradePlan,
    pub reboot: RebootStatus,
}

/// Which package manager drives a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagerKind {
    Apt,
    Dnf,
    Yum,
}

/// Failures of package operations. A variant names the step; the transport error is the source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{step}")]
    Remote {
        step: &'static str,
        #[source]
        source: remote::Error,
    },
    #[error("{step} failed (exit {code}): {detail}")]
    CommandFailed {
        step: &'static str,
        code: String,
        detail: String,
    },
    #[error("unsupported OS '{0}': tendhost knows apt, dnf and yum systems")]
    UnsupportedOs(String),
    #[error("the upgrade would remove {0:?}; allow removals to go ahead")]
    WouldRemove(Vec<String>),
    /// Another process (unattended-upgrades, packagekit, an operator's apt) held the package
    /// manager's lock for the whole bounded wait; `holder` names it where the manager said.
    #[error("the package database is locked by {} (waited {waited}s)", holder.as_deref().unwrap_or("another process"))]
    Locked { waited: u64, holder: Option<String> },
    #[error("could not understand {what}: {detail}")]
    Parse { what: &'static str, detail: String },
    /// Anything that failed on one compose stack: the stack and, where known, the service; what
    /// went wrong (a remote error, a failed command) is the source.
    #[error("compose stack '{path}'{}", service.as_ref().map(|s| format!(", service '{s}'")).unwrap_or_default())]
    Compose {
        path: String,
        service: Option<String>,
        #[source]
        source: Box<Error>,
    },
    /// A service that cannot be rolled back, and why.
    #[error("cannot roll back: {0}")]
    NoRollback(String),
    /// `up -d` succeeded but the service does not run the image it was recreated for.
    #[error("'up -d' left it {}", match running {
        Some(old) => format!("on image '{old}' instead of '{expected}'"),
        None => "without a container".to_string(),
    })]
    NotRecreated {
        running: Option<String>,
        expected: String,
    },
}

impl Error {
    /// Whether trying again later could help: the transport failed in a passing way (see
    /// [`remote::Error::is_transient`]). A command that ran and failed is never transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Remote { source, .. } => source.is_transient(),
            Error::Compose { source, .. } => source.is_transient(),
            _ => false,
        }
    }
}

/// A package manager on one host. Every method takes the host's executor.
#[async_trait]
pub trait PackageManager: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> ManagerKind;

    /// Refreshes the package lists (`apt-get update`, `dnf makecache`).
    async fn refresh(&self, exec: &dyn Executor, cancel: &CancellationToken) -> Result<(), Error>;

    /// Lists upgradable packages without changing anything.
    async fn pending(
        &self,
        exec: &dyn Executor,
        cancel: &CancellationToken,
    ) -> Result<Vec<PendingPackage>, Error>;

    /// Simulates the upgrade in `options.scope`: what a dry run shows, with every fact the
    /// manager can read in the same round trip (sizes, free space, reboot packages, conffile
    /// prompts; see [`UpgradePlan`]). The consent check right before a real upgrade reads a
    /// leaner plan of its own.
    async fn plan(
        &self,
        exec: &dyn Executor,
        options: UpgradeOptions,
        cancel: &CancellationToken,
    ) -> Result<UpgradePlan, Error>;

    /// Refreshes the lists, then downloads every package the upgrade in `options.mode` (and
    /// `options.scope`) would install into the manager's cache, changing nothing installed: a wave does this on every
    /// host at its start, so each host's turn only installs. Privileged, but not a detached job
    /// (nothing it does needs to survive tendhost), and its output is not streamed.
    async fn download(
        &self,
        exec: &dyn Executor,
        options: UpgradeOptions,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;

    /// Upgrades for real, streaming every output line to `lines`.
    async fn upgrade(
        &self,
        exec: &dyn Executor,
        options: UpgradeOptions,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<UpgradeReport, Error>;

    async fn reboot_status(
        &self,
        exec: &dyn Executor,
        cancel: &CancellationToken,
    ) -> Result<RebootStatus, Error>;

    /// Repairs what an interrupted or failed run left half done (half-configured packages,
    /// duplicates of a cut-short rpm transaction), streaming every output line to `lines`.
    /// Changes the host, so it runs as a detached job like the upgrade. Whether the database
    /// is whole afterwards is the health probe's to say, not this command's exit.
    async fn repair(
        &self,
        exec: &dyn Executor,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
}

pub type SharedManager = Arc<dyn PackageManager>;

/// An upgrade as apt and dnf run it: `plan` (refused unless `options` consent to what it
/// does: the check right before installing, whatever a caller planned earlier), then
/// `install`, then whether the host now needs a reboot. `install` is only polled once the plan
/// is consented to.
async fn planned_upgrade<M: PackageManager + ?Sized>(
    manager: &M,
    exec: &dyn Executor,
    options: UpgradeOptions,
    cancel: &CancellationToken,
    plan: impl Future<Output = Result<UpgradePlan, Error>>,
    install: impl Future<Output = Result<remote::CommandOutput, Error>>,
) -> Result<UpgradeReport, Error> {
    let plan = plan.await?.consented(options)?;
    install.await?;
    let reboot = manager.reboot_status(exec, cancel).await?;
    Ok(UpgradeReport { plan, reboot })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(name: &str, security: bool) -> PendingPackage {
        PendingPackage {
            name: name.into(),
            from: "1".into(),
            to: "2".into(),
            security,
        }
    }

    #[test]
    fn a_scope_selects_by_name_and_security_and_says_when_nothing_is_pending() {
        let list = [pending("openssl", true), pending("bash", false)];
        let names = |scope: &UpgradeScope| -> Vec<String> {
            scope.select(&list).iter().map(|p| p.name.clone()).collect()
        };
        assert_eq!(names(&UpgradeScope::default()), ["openssl", "bash"]);
        let bash = UpgradeScope::of_packages(["bash", "bash", " "], false).unwrap();
        assert_eq!(bash.packages, ["bash"], "duplicates and blanks dropped");
        assert_eq!(names(&bash), ["bash"]);
        let security = UpgradeScope::of_packages(Vec::<&str>::new(), true).unwrap();
        assert_eq!(names(&security), ["openssl"]);
        let both = UpgradeScope::of_packages(["bash"], true).unwrap();
        assert!(names(&both).is_empty());
        assert_eq!(
            both.nothing_pending(),
            "no security updates of bash pending"
        );
        let two = UpgradeScope::of_packages(["openssl", "libssl3"], false).unwrap();
        assert_eq!(two.nothing_pending(), "none of openssl, libssl3 pending");
        assert_eq!(security.nothing_pending(), "no security updates pending");
    }

    #[test]
    fn package_names_are_checked_where_they_are_typed() {
        for good in [
            "openssl",
            "libssl3",
            "g++",
            "python3.11",
            "NetworkManager",
            "lib_x-1",
        ] {
            assert!(valid_package_name(good), "{good}");
        }
        for bad in [
            "", "-y", "a b", "x;rm", "$(id)", "*", "pkg/x", ".hidden", "a'b",
        ] {
            assert!(!valid_package_name(bad), "{bad}");
        }
        let err = UpgradeScope::of_packages(["ok", "not ok"], false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'not ok' is not a package name (letters, digits and . + - _ only, starting with a \
             letter or digit)"
        );
    }

    #[test]
    fn a_plan_is_short_of_space_where_it_needs_more_than_is_free() {
        let free = |path: &str, free_bytes| FreeSpace {
            path: path.into(),
            free_bytes,
        };
        let plan = UpgradePlan {
            download_bytes: Some(500),
            install_bytes: Some(2000),
            free_space: vec![free("/var/cache/apt/archives", 400), free("/", 5000)],
            ..UpgradePlan::default()
        };
        assert_eq!(
            plan.short_of_space(),
            [SpaceShortfall {
                path: "/var/cache/apt/archives".into(),
                needed_bytes: 500,
                free_bytes: 400
            }]
        );
        let shrinking = UpgradePlan {
            install_bytes: Some(-2000),
            free_space: vec![free("/var/cache/dnf", 0), free("/", 0)],
            ..UpgradePlan::default()
        };
        assert!(
            shrinking.short_of_space().is_empty(),
            "unknown or negative needs nothing"
        );
    }

    #[test]
    fn a_plan_saved_before_the_rich_fields_still_loads() {
        let old = r#"{"upgrades":[],"installs":[],"removals":["x"],"held":["y"]}"#;
        let plan: UpgradePlan = serde_json::from_str(old).unwrap();
        assert_eq!(
            (plan.removals, plan.held),
            (vec!["x".into()], vec!["y".into()])
        );
        assert!(plan.kept_back.is_empty() && plan.conffiles.is_none());
        assert_eq!((plan.download_bytes, plan.install_bytes), (None, None));
    }
}
