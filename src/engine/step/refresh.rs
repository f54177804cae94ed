//! Reading a host: one survey (see `crate::survey`) answers inventory, compose stacks, pending
//! packages and whether it needs a reboot, or says nothing changed since the last read.
//! Reads change nothing on the host, so each is retried on network trouble, and a failed read
//! returns the host to where it rested (the supervisor does that), never to `Failed`.
//!
//! Package lists are refreshed by policy: before every upgrade, when the operator asks, and when
//! they are older than `[fleet] lists_max_age`; at most `lists_concurrency` hosts refresh at once.

use std::sync::{Arc, Mutex};

use chrono::{Local, Utc};

use super::{StepContext, StepResult};
use crate::engine::bus::Event;
use crate::engine::error::Error;
use crate::engine::job::Done;
use crate::engine::schedule;
use crate::fleet::{HostModel, SurveyMark, Transition};
use crate::inventory::Inventory;
use crate::pkg::{PendingPackage, RebootStatus, StackReport};
use crate::survey::{Findings, Glance, ListsPolicy, Survey, SurveyRequest};

/// What a read of the host found.
pub(super) struct Found {
    pub pending: bool,
    /// What is pending, as announced: a scoped update takes its packages from here.
    pub packages: Arc<[PendingPackage]>,
    pub reboot: RebootStatus,
    pub stacks: Vec<StackReport>,
    /// Services running code an upgrade replaced; `None` where the host has no tool to tell.
    pub services: Option<Vec<String>>,
}

/// What a read does with the package lists and with the last read's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// A refresh: lists by `lists_max_age`; "unchanged" trusted.
    Routine,
    /// Before an upgrade: lists refreshed first; "unchanged" trusted.
    BeforeUpgrade,
    /// The operator asked: lists refreshed and everything read afresh.
    Afresh,
    /// After the host was changed (an upgrade, a reboot): lists as they are, read afresh.
    AfterChange,
}

/// The last survey of one host, kept so an "unchanged" answer can be announced as what it
/// stands for. Shared by the host's steps; seeded from the snapshot at start.
pub(in crate::engine) type Memory = Arc<Mutex<Option<Arc<Remembered>>>>;

/// A survey's findings, as last announced.
#[derive(Debug)]
pub(in crate::engine) struct Remembered {
    mark: SurveyMark,
    inventory: Arc<Inventory>,
    pending: Arc<[PendingPackage]>,
    reboot: RebootStatus,
    stacks: Arc<[StackReport]>,
}

impl Remembered {
    /// What a restored host model says the last survey found; `None` when it has no
    /// fingerprint or lacks a finding (then the next read is a full one).
    pub(in crate::engine) fn from_model(model: &HostModel) -> Option<Arc<Remembered>> {
        let mark = model.survey.as_deref()?;
        if mark.fingerprint.is_empty() {
            return None;
        }
        Some(Arc::new(Remembered {
            mark: mark.clone(),
            inventory: model.inventory.clone()?,
            pending: model.pending.clone()?,
            reboot: model.reboot.clone(),
            stacks: model.stacks.clone(),
        }))
    }
}

impl StepContext {
    pub(super) async fn refresh(&self, read: Read) -> StepResult<Done> {
        self.move_to(Transition::Query).await?;
        let found = self.read_host(read).await?;
        self.settle_query(&found).await?;
        Ok(Done::Ran)
    }

    /// Surveys the host; every finding leaves as an event.
    pub(super) async fn read_host(&self, read: Read) -> StepResult<Found> {
        let remembered = match read {
            Read::Routine | Read::BeforeUpgrade => self.remembered(),
            Read::Afresh | Read::AfterChange => None,
        };
        let max_age = self.lists_max_age;
        let mut lists = match read {
            Read::BeforeUpgrade | Read::Afresh => ListsPolicy::Refresh,
            Read::AfterChange => ListsPolicy::Keep,
            Read::Routine if max_age.is_zero() => ListsPolicy::Refresh,
            Read::Routine => {
                // Known to be too old already: refresh without asking the host first.
                let refreshed = remembered.as_ref().and_then(|r| r.mark.lists_refreshed);
                match refreshed.and_then(|at| (Utc::now() - at).to_std().ok()) {
                    Some(age) if age > max_age => ListsPolicy::Refresh,
                    _ => ListsPolicy::MaxAge(max_age),
                }
            }
        };
        let known = remembered.as_ref().map(|r| r.mark.fingerprint.clone());
        loop {
            let request = SurveyRequest {
                host: &self.host,
                known: known.as_deref(),
                lists,
                boot_id_path: &self.reboot.boot_id_path,
            };
            // Refreshes are rationed across the fleet; reads are not.
            let _permit = match lists {
                ListsPolicy::Refresh => self.lists_limit.acquire().await.ok(),
                _ => None,
            };
            let survey = self
                .read_as(Error::Survey, || {
                    self.tools
                        .survey(&self.host, self.exec.as_ref(), request, &self.cancel)
                })
                .await?;
            match survey {
                Survey::Stale { age } => {
                    tracing::debug!(host = %self.id, ?age, "package lists are stale: refreshing");
                    lists = ListsPolicy::Refresh;
                }
                Survey::Unchanged(glance) => match &remembered {
                    Some(remembered) => {
                        return Ok(self.announce_unchanged(remembered, glance).await);
                    }
                    // Only a known fingerprint can be unchanged; a host that says so anyway is
                    // not believed.
                    None => {
                        return Err(Error::Survey(crate::survey::Error::NotRun {
                            code: "0".into(),
                            detail: "the host answered \"unchanged\" to a first read".into(),
                        }));
                    }
                },
                Survey::Read(findings) => return Ok(self.announce_read(*findings).await),
            }
        }
    }

    fn remembered(&self) -> Option<Arc<Remembered>> {
        // A poisoned lock only means a step panicked mid-update: the next read is a full one.
        self.memory.lock().ok().and_then(|m| m.clone())
    }

    fn remember(&self, remembered: Option<Arc<Remembered>>) {
        if let Ok(mut memory) = self.memory.lock() {
            *memory = remembered;
        }
    }

    async fn announce_read(&self, findings: Findings) -> Found {
        let Findings {
            glance,
            inventory,
            packages,
            stacks,
        } = findings;
        let inventory = Arc::new(inventory);
        self.emit(Event::InventoryRefreshed {
            host: self.id.clone(),
            inventory: inventory.clone(),
        })
        .await;
        let stacks: Arc<[StackReport]> = stacks.into();
        if !stacks.is_empty() {
            self.announce_stacks(&stacks, false).await;
        }
        let (pending, reboot, services) = match packages {
            Some((kind, found)) => {
                if let Some(manager) = self.tools.manager_of(kind) {
                    // The manager the survey found; an upgrade needs no detection of its own.
                    let _ = self.manager.set(Some(manager));
                }
                (found.pending, found.reboot, found.services)
            }
            None => (Vec::new(), RebootStatus::default(), None),
        };
        let pending: Arc<[PendingPackage]> = pending.into();
        self.emit_pending(pending.clone(), reboot.clone()).await;
        let mark = SurveyMark {
            fingerprint: glance.fingerprint,
            lists_refreshed: glance.lists_refreshed,
            services,
        };
        self.emit(Event::Surveyed {
            host: self.id.clone(),
            mark: Arc::new(mark.clone()),
        })
        .await;
        let found = Found {
            pending: !pending.is_empty(),
            packages: pending.clone(),
            reboot: reboot.clone(),
            stacks: stacks.to_vec(),
            services: mark.services.clone(),
        };
        self.remember((!mark.fingerprint.is_empty()).then(|| {
            Arc::new(Remembered {
                mark,
                inventory,
                pending,
                reboot,
                stacks,
            })
        }));
        found
    }

    /// Announces what the last read found, as current: the host said nothing it depends on
    /// changed. Only the uptime and the lists' age are new.
    async fn announce_unchanged(&self, remembered: &Remembered, glance: Glance) -> Found {
        let mut inventory = (*remembered.inventory).clone();
        if let Some(uptime) = glance.uptime_secs {
            inventory.uptime_secs = uptime;
        }
        inventory.collected_at = Utc::now();
        self.emit(Event::InventoryRefreshed {
            host: self.id.clone(),
            inventory: Arc::new(inventory),
        })
        .await;
        if !remembered.stacks.is_empty() {
            self.announce_stacks(&remembered.stacks, false).await;
        }
        self.emit_pending(remembered.pending.clone(), remembered.reboot.clone())
            .await;
        let mark = SurveyMark {
            lists_refreshed: glance.lists_refreshed.or(remembered.mark.lists_refreshed),
            ..remembered.mark.clone()
        };
        self.emit(Event::Surveyed {
            host: self.id.clone(),
            mark: Arc::new(mark.clone()),
        })
        .await;
        let found = Found {
            pending: !remembered.pending.is_empty(),
            packages: remembered.pending.clone(),
            reboot: remembered.reboot.clone(),
            stacks: remembered.stacks.to_vec(),
            services: mark.services.clone(),
        };
        self.remember(Some(Arc::new(Remembered {
            mark,
            inventory: remembered.inventory.clone(),
            pending: remembered.pending.clone(),
            reboot: remembered.reboot.clone(),
            stacks: remembered.stacks.clone(),
        })));
        found
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
