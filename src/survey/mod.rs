//! Reading a host in one round trip: one remote script gathers everything the console and
//! `--batch inventory` show (the inventory, pending packages with versions and security flags,
//! whether a reboot is needed and why, services running old code, compose stacks) and prints it
//! in sections ([`sections`]) that one parser reads.
//!
//! The script first prints a *fingerprint* of what the answer depends on (the package database,
//! the package lists, the boot id, the reboot-required files, compose files and image ids). When
//! it equals the one tendhost kept from the last read, the host answers "unchanged" and the heavy
//! part never runs: a restarted tendhost or a console refresh costs one small command per host.
//!
//! Package lists are refreshed on a policy ([`ListsPolicy`]), not on every read. The script
//! refuses to read from lists older than the policy allows ([`Survey::Stale`]) so that the
//! caller, who rations refreshes across the fleet, decides when to refresh them.
//!
//! Knows the shell and the output of apt, dnf and compose; never opens a connection (everything
//! goes through [`Executor`]) and never decides what a host's state is.

// An error is made at most once per host read, never in a loop: its size does not matter, and
// boxing `pkg::Error` would only hide what failed behind one more indirection.
#![allow(clippy::result_large_err)]

mod apt;
mod dnf;
mod script;
pub(crate) mod sections;

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use self::sections::Sections;
use crate::config::{HostConfig, ManagerChoice};
use crate::inventory::{self, Inventory};
use crate::pkg::{self, ManagerKind, PendingPackage, RebootStatus, StackReport};
use crate::remote::{self, Executor, RemoteCommand};

/// A survey reads and, when asked, downloads package lists: bounded like a list refresh.
const SURVEY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// When the host's package lists are refreshed before they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListsPolicy {
    /// Refresh them now (before an upgrade, or because the operator asked).
    Refresh,
    /// Read them as they are unless older than this; older ones make the survey answer
    /// [`Survey::Stale`] without reading.
    MaxAge(Duration),
    /// Read them as they are, however old.
    Keep,
}

/// What a survey asks for.
#[derive(Debug, Clone, Copy)]
pub struct SurveyRequest<'a> {
    pub host: &'a HostConfig,
    /// The fingerprint of the last read, when it is still trusted.
    pub known: Option<&'a str>,
    pub lists: ListsPolicy,
    /// Where the host's boot id is read (a reboot changes it, and with it the fingerprint).
    pub boot_id_path: &'a str,
}

/// What the host answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Survey {
    /// Nothing the answer depends on changed since the read `fingerprint` names.
    Unchanged(Glance),
    /// The lists are older than [`ListsPolicy::MaxAge`]: nothing was read.
    Stale { age: Duration },
    /// A full read.
    Read(Box<Findings>),
}

/// The few facts even an "unchanged" answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glance {
    pub fingerprint: String,
    pub uptime_secs: Option<u64>,
    /// When the package lists were last refreshed, as far as the host can tell.
    pub lists_refreshed: Option<DateTime<Utc>>,
    /// Whether this survey refreshed them.
    pub refreshed_lists: bool,
}

/// Everything a full read found.
#[derive(Debug, Clone, PartialEq)]
pub struct Findings {
    pub glance: Glance,
    pub inventory: Inventory,
    /// The host's manager and what it said; `None` for `manager = "none"`.
    pub packages: Option<(ManagerKind, PackageFindings)>,
    pub stacks: Vec<StackReport>,
}

/// What a package manager said about a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageFindings {
    /// Sorted by name.
    pub pending: Vec<PendingPackage>,
    pub reboot: RebootStatus,
    /// Services running code an upgrade replaced (needrestart, needs-restarting); `None` where
    /// the host has no tool to tell.
    pub services: Option<Vec<String>>,
}

/// Why a survey failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the host")]
    Remote(#[source] remote::Error),
    #[error("reading the host: its output passed {} MiB and was cut", remote::STDOUT_LIMIT >> 20)]
    TooLarge,
    #[error("reading the host: the survey did not run (exit {code}): {detail}")]
    NotRun { code: String, detail: String },
    #[error(transparent)]
    Inventory(inventory::Error),
    /// The package manager could not refresh or list (the source names the step).
    #[error("{what}")]
    Packages {
        what: &'static str,
        #[source]
        source: pkg::Error,
    },
    #[error("reading compose stacks")]
    Compose(#[source] pkg::Error),
}

impl Error {
    /// Whether trying again later could help (network trouble, never a command that failed).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Remote(e) => e.is_transient(),
            Error::Packages { source, .. } | Error::Compose(source) => source.is_transient(),
            Error::Inventory(inventory::Error::Remote { source, .. }) => source.is_transient(),
            _ => false,
        }
    }
}

/// Surveys one host: one command, privileged (refreshing lists and reading dnf's cache need
/// root; `sudo -n` for a login user who is not).
pub async fn survey(
    exec: &dyn Executor,
    request: SurveyRequest<'_>,
    cancel: &CancellationToken,
) -> Result<Survey, Error> {
    let plan = script::Plan::new(request);
    let command = RemoteCommand::new(plan.script(), SURVEY_TIMEOUT).privileged();
    let out = exec
        .run(&command, None, cancel)
        .await
        .map_err(Error::Remote)?;
    if out.stdout_truncated() {
        return Err(Error::TooLarge);
    }
    let sections = Sections::parse(&out.stdout);
    if !sections.has(script::HEADER) || !out.success() {
        return Err(Error::NotRun {
            code: out
                .exit_code
                .map_or_else(|| out.signal.clone().unwrap_or_default(), |c| c.to_string()),
            detail: crate::errors::last_lines(out.diagnostic(), 3),
        });
    }
    plan.read(&sections)
}

/// The manager a host's config names, or `None` for `manager = "none"`; `auto` is decided by
/// the host's os-release once it is read.
fn configured_manager(choice: ManagerChoice) -> Option<Option<ManagerKind>> {
    match choice {
        ManagerChoice::None => None,
        ManagerChoice::Auto => Some(None),
        ManagerChoice::Apt => Some(Some(ManagerKind::Apt)),
        ManagerChoice::Dnf => Some(Some(ManagerKind::Dnf)),
        ManagerChoice::Yum => Some(Some(ManagerKind::Yum)),
    }
}
