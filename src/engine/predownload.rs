//! A wave's pre-downloads (issue 11): at the start of a real wave every selected host gets a
//! `Download` job, in the order the wave will take the hosts, a few at a time outside the wave's
//! batch size, so each host's turn only installs. The wave runner and the download task share
//! one small record per host; whoever comes first decides: a host whose turn comes while its
//! download is still queued drops it, and one whose download runs waits for it (its supervisor
//! would refuse the wave's step as busy meanwhile).
//!
//! Knows nothing of batches or outcomes: it only talks to host supervisors through their
//! handles, like the runner.

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::bus::{Job, JobKind, Origin};
use super::host::HostHandle;
use crate::config::HostId;
use crate::pkg::UpgradeScope;

/// Where one host's pre-download stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    Queued,
    /// Sent to the host; its turn waits for the answer.
    Running,
    /// Done, failed, refused, or dropped because the host's turn came first.
    Over,
}

/// The wave's pre-downloads: every selected host, in the order the wave will take them, at most
/// `download_concurrency` at once, each a `Download` job on the host's own supervisor (so it
/// never overlaps other work there). Shared by the download task and each host's turn; the
/// `watch` per host makes "take it if still queued" one atomic step for either side.
#[derive(Clone)]
pub(super) struct Downloads {
    order: Arc<[HostId]>,
    phases: Arc<HashMap<HostId, watch::Sender<Fetch>>>,
    /// The wave's scope: each host fetches only what its update will take.
    scope: UpgradeScope,
}

impl Downloads {
    pub(super) fn new(order: Vec<HostId>, scope: UpgradeScope) -> Downloads {
        let phases = order
            .iter()
            .map(|host| (host.clone(), watch::Sender::new(Fetch::Queued)))
            .collect();
        Downloads {
            order: order.into(),
            phases: Arc::new(phases),
            scope,
        }
    }

    /// The host's turn came: a queued download is dropped, a running one waited for.
    pub(super) async fn claim(&self, host: &HostId) {
        let Some(phase) = self.phases.get(host) else {
            return;
        };
        phase.send_if_modified(|p| take(p, Fetch::Queued, Fetch::Over));
        let mut seen = phase.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        let _ = seen.wait_for(|p| *p != Fetch::Running).await;
    }

    /// Downloads on every host whose turn has not come, `limit` at once, until all are over or
    /// `no_more` is cancelled: then none starts and the running ones are stopped (their job's
    /// stop token) and waited for, so no host's turn waits on a download nobody follows.
    pub(super) async fn run(
        self,
        handles: HashMap<HostId, HostHandle>,
        wave_id: u64,
        wave_key: Arc<str>,
        limit: usize,
        no_more: CancellationToken,
    ) {
        // Each fetch owns what it needs (collected first: a borrowing closure inside the
        // future would make it not `Send`); at most `limit` of them run at a time.
        let fetches: Vec<_> = self
            .order
            .iter()
            .map(|host| {
                let handle = handles.get(host).cloned();
                fetch(
                    self.phases.clone(),
                    host.clone(),
                    handle,
                    (wave_id, wave_key.clone()),
                    self.scope.clone(),
                    no_more.clone(),
                )
            })
            .collect();
        stream::iter(fetches)
            .buffer_unordered(limit.max(1))
            .collect::<()>()
            .await;
    }
}

/// One host's pre-download, unless its turn came first or the wave no longer needs it.
async fn fetch(
    phases: Arc<HashMap<HostId, watch::Sender<Fetch>>>,
    host: HostId,
    handle: Option<HostHandle>,
    (wave_id, wave_key): (u64, Arc<str>),
    scope: UpgradeScope,
    no_more: CancellationToken,
) {
    let (Some(phase), Some(handle)) = (phases.get(&host), handle) else {
        return;
    };
    if no_more.is_cancelled() || !phase.send_if_modified(|p| take(p, Fetch::Queued, Fetch::Running))
    {
        phase.send_if_modified(|p| take(p, Fetch::Queued, Fetch::Over));
        return;
    }
    let (job, answer) = Job::answered(JobKind::Download, Origin::Wave(wave_id));
    if handle
        .send(job.stopped_by(no_more).scoped(scope).in_wave(wave_key))
        .await
        .is_ok()
    {
        // Whatever the answer (done, failed, refused), the host's turn may come now.
        let _ = answer.await;
    }
    phase.send_replace(Fetch::Over);
}

/// Moves `phase` from `from` to `to`; says whether it did.
fn take(phase: &mut Fetch, from: Fetch, to: Fetch) -> bool {
    let moved = *phase == from;
    if moved {
        *phase = to;
    }
    moved
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_turn_drops_a_queued_download_and_waits_for_a_running_one() {
        let downloads = Downloads::new(vec!["a".into(), "b".into()], UpgradeScope::default());
        downloads.claim(&"a".into()).await;
        assert_eq!(*downloads.phases["a"].borrow(), Fetch::Over, "dropped");
        downloads.phases["b"].send_replace(Fetch::Running);
        let turn = tokio::spawn({
            let downloads = downloads.clone();
            async move { downloads.claim(&"b".into()).await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!turn.is_finished(), "b's turn went ahead of its download");
        downloads.phases["b"].send_replace(Fetch::Over);
        turn.await.unwrap();
        // A host the wave did not select has no download to wait for.
        downloads.claim(&"c".into()).await;
    }
}
