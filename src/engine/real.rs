//! The production wiring of [`EngineDeps`]: SSH/local executors from `remote`, package managers
//! detected by `pkg`, inventory from `inventory`. Tests swap these for simulated ones.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{EngineDeps, ManagerSource, RebootSettings};
use crate::config::{Config, HostConfig};
use crate::inventory::{self, Inventory};
use crate::pkg::{self, SharedManager};
use crate::remote::{self, Executor, OwnFiles, RemoteContext};
use crate::store::Paths;
use crate::store::snapshot::Snapshot;
use crate::survey::{self, Survey, SurveyRequest};

/// How often the snapshot is saved while events flow: kill -9 loses at most this much.
pub const SAVE_EVERY: Duration = Duration::from_secs(2);

/// Package managers and inventory as the real hosts provide them.
pub struct RealManagers;

#[async_trait]
impl ManagerSource for RealManagers {
    async fn manager(
        &self,
        host: &HostConfig,
        exec: &dyn Executor,
        cancel: &CancellationToken,
    ) -> Result<Option<SharedManager>, pkg::Error> {
        pkg::detect(exec, host.manager, cancel).await
    }

    async fn inventory(
        &self,
        _host: &HostConfig,
        exec: &dyn Executor,
        cancel: &CancellationToken,
    ) -> Result<Inventory, inventory::Error> {
        inventory::collect(exec, cancel).await
    }

    async fn survey(
        &self,
        _host: &HostConfig,
        exec: &dyn Executor,
        request: SurveyRequest<'_>,
        cancel: &CancellationToken,
    ) -> Result<Survey, survey::Error> {
        survey::survey(exec, request, cancel).await
    }

    fn manager_of(&self, kind: pkg::ManagerKind) -> Option<SharedManager> {
        Some(pkg::manager_of(kind))
    }
}

impl EngineDeps {
    /// Real executors (`[ssh]` settings, tendhost's key and known_hosts) and real managers.
    pub fn real(config: &Config, paths: &Paths, snapshot: Option<Snapshot>) -> EngineDeps {
        let own = OwnFiles {
            known_hosts: paths.known_hosts(),
            key: paths.key(),
        };
        Self::with_context(RemoteContext::from_config(config, own), paths, snapshot)
    }

    /// [`Self::real`] with an explicit remote context (tests use a hermetic one).
    pub fn with_context(
        ctx: RemoteContext,
        paths: &Paths,
        snapshot: Option<Snapshot>,
    ) -> EngineDeps {
        EngineDeps {
            executor_for: Arc::new(move |host: &HostConfig| remote::executor_for(host, &ctx)),
            managers: Arc::new(RealManagers),
            paths: paths.clone(),
            snapshot,
            reboot: RebootSettings::default(),
            save_every: SAVE_EVERY,
            periodic_refresh: true,
        }
    }
}
