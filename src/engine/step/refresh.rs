//! Reading a host: inventory, compose stacks, pending packages and whether it needs a reboot.
//! Reads change nothing on the host, so each is retried on network trouble, and a failed read
//! returns the host to where it rested (the supervisor does that), never to `Failed`.

use std::sync::Arc;

use chrono::Local;

use super::{StepContext, StepResult};
use crate::engine::bus::Event;
use crate::engine::error::Error;
use crate::engine::job::Done;
use crate::engine::schedule;
use crate::fleet::Transition;
use crate::pkg::{PendingPackage, RebootStatus, StackReport};

/// What a read of the host found.
pub(super) struct Found {
    pub pending: bool,
    pub reboot: RebootStatus,
    pub stacks: Vec<StackReport>,
}

impl StepContext {
    pub(super) async fn refresh(&self) -> StepResult<Done> {
        self.move_to(Transition::Query).await?;
        let found = self.read_host().await?;
        self.settle_query(&found).await?;
        Ok(Done::Ran)
    }

    /// Inventory, stacks, then the package manager's lists; each finding leaves as an event.
    pub(super) async fn read_host(&self) -> StepResult<Found> {
        let inventory = self
            .read_as(Error::Inventory, || {
                self.tools
                    .inventory(&self.host, self.exec.as_ref(), &self.cancel)
            })
            .await?;
        self.emit(Event::InventoryRefreshed {
            host: self.id.clone(),
            inventory: Arc::new(inventory),
        })
        .await;
        let stacks = self.inspect_stacks().await?;
        let (pending, reboot) = self.read_packages(true).await?;
        Ok(Found {
            pending: !pending.is_empty(),
            reboot,
            stacks,
        })
    }

    /// Pending packages and reboot status (refreshing the lists first when `refresh_lists`),
    /// announced as `PendingRefreshed`. A host without a manager has nothing pending.
    pub(super) async fn read_packages(
        &self,
        refresh_lists: bool,
    ) -> StepResult<(Arc<[PendingPackage]>, RebootStatus)> {
        let Some(manager) = self.manager().await? else {
            let nothing: Arc<[PendingPackage]> = Arc::from(Vec::new());
            self.emit_pending(nothing.clone(), RebootStatus::default())
                .await;
            return Ok((nothing, RebootStatus::default()));
        };
        let exec = self.exec.as_ref();
        let read = |what: &'static str| move |source| Error::Read { what, source };
        if refresh_lists {
            self.read_as(read("refreshing package lists"), || {
                manager.refresh(exec, &self.cancel)
            })
            .await?;
        }
        let mut pending = self
            .read_as(read("listing pending updates"), || {
                manager.pending(exec, &self.cancel)
            })
            .await?;
        // Managers list in their own order (apt's puts `apt-transport-https` before `apt`); every
        // consumer (console, batch JSON, snapshot) wants one stable order by name.
        pending.sort_by(|a, b| a.name.cmp(&b.name));
        let reboot = self
            .read_as(read("checking whether a reboot is required"), || {
                manager.reboot_status(exec, &self.cancel)
            })
            .await?;
        let pending: Arc<[PendingPackage]> = pending.into();
        self.emit_pending(pending.clone(), reboot.clone()).await;
        Ok((pending, reboot))
    }

    async fn emit_pending(&self, packages: Arc<[PendingPackage]>, reboot: RebootStatus) {
        self.emit(Event::PendingRefreshed {
            host: self.id.clone(),
            packages,
            reboot,
        })
        .await;
    }

    /// Leaves `Querying` for where the read says the host is.
    pub(super) async fn settle_query(&self, found: &Found) -> StepResult<()> {
        if !found.pending && found.reboot.required {
            let reason = match schedule::reboot_allowed(&self.host, Local::now().naive_local()) {
                Ok(()) => "a reboot is required".to_string(),
                Err(why) => format!("a reboot is required; {why}"),
            };
            self.move_to(Transition::NeedReboot {
                reason: reason.into(),
            })
            .await
        } else {
            self.move_to(Transition::Queried {
                pending: found.pending,
            })
            .await
        }
    }
}
