//! A survey made of separate reads — inventory, the package manager's refresh, pending list and
//! reboot check, each compose stack — for a [`ManagerSource`] without a one-round-trip script
//! (the simulated fleet). It keeps no fingerprint, so every read is a full one.

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::ManagerSource;
use crate::config::HostConfig;
use crate::pkg::ComposeUpdater;
use crate::remote::Executor;
use crate::survey::{Error, Findings, Glance, ListsPolicy, PackageFindings, Survey, SurveyRequest};

pub(super) async fn survey<S: ManagerSource + ?Sized>(
    source: &S,
    host: &HostConfig,
    exec: &dyn Executor,
    request: SurveyRequest<'_>,
    cancel: &CancellationToken,
) -> Result<Survey, Error> {
    let inventory = source
        .inventory(host, exec, cancel)
        .await
        .map_err(Error::Inventory)?;
    let packages_error = |what| move |source| Error::Packages { what, source };
    let manager = source
        .manager(host, exec, cancel)
        .await
        .map_err(packages_error("detecting the package manager"))?;
    let refresh = request.lists == ListsPolicy::Refresh;
    let packages = match manager {
        None => None,
        Some(manager) => {
            if refresh {
                manager
                    .refresh(exec, cancel)
                    .await
                    .map_err(packages_error("refreshing package lists"))?;
            }
            let mut pending = manager
                .pending(exec, cancel)
                .await
                .map_err(packages_error("listing pending updates"))?;
            pending.sort_by(|a, b| a.name.cmp(&b.name));
            let reboot = manager
                .reboot_status(exec, cancel)
                .await
                .map_err(packages_error("checking whether a reboot is required"))?;
            let findings = PackageFindings {
                pending,
                reboot,
                services: None,
            };
            Some((manager.kind(), findings))
        }
    };
    let composer = ComposeUpdater::new(&host.docker);
    let mut stacks = Vec::with_capacity(host.compose_paths.len());
    for path in &host.compose_paths {
        stacks.push(
            composer
                .inspect(exec, path, cancel)
                .await
                .map_err(Error::Compose)?,
        );
    }
    Ok(Survey::Read(Box::new(Findings {
        glance: Glance {
            fingerprint: String::new(),
            uptime_secs: Some(inventory.uptime_secs),
            lists_refreshed: refresh.then(Utc::now),
            refreshed_lists: refresh,
        },
        inventory,
        packages,
        stacks,
    })))
}
