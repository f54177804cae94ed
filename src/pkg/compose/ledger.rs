//! What a rollback needs to remember about one host's stacks, across runs: per service the image
//! it ran before the last update that changed it (what a rollback restores), and the images an
//! operator rolled back from (which later updates leave alone until the reference moves on).
//!
//! Folded the same way by the host's step (which acts on it) and by every `HostModel` (which
//! shows and saves it), from the same reports; plain serde data for the snapshot.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::report::{ImageRef, ServiceChange, StackReport, short_id};

/// One image an operator rolled a service back from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub path: String,
    pub service: String,
    /// The image id (`sha256:…`) rolled back from.
    pub image: String,
    pub at: DateTime<Utc>,
}

/// A host's rollback points and rejected images.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackLedger {
    /// Per stack and service, the change of the last update that recreated it: `from` is what
    /// a rollback restores. A later update of the same service replaces its entry; a rollback
    /// keeps it (a failed rollback can be tried again, a done one has nothing left to do).
    #[serde(default)]
    pub points: Vec<ServiceChange>,
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

impl RollbackLedger {
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.rejected.is_empty()
    }

    /// An update ran over `stacks`: every service a recreated stack moved gets its new rollback
    /// point, and a rejection of it ends (it now runs an image nobody rolled back from).
    pub fn updated(&mut self, stacks: &[StackReport]) {
        for change in stacks
            .iter()
            .filter(|s| s.recreated)
            .flat_map(StackReport::changes)
        {
            self.points
                .retain(|p| !same_service(p, &change.path, &change.service));
            self.rejected
                .retain(|r| !(r.path == change.path && r.service == change.service));
            if change.from.is_some() {
                self.points.push(change);
            }
        }
    }

    /// `undone` are being rolled back at `at`: the images they had moved to are rejected.
    pub fn rolled_back(&mut self, undone: &[ServiceChange], at: DateTime<Utc>) {
        for change in undone {
            self.rejected
                .retain(|r| !(r.path == change.path && r.service == change.service));
            self.rejected.push(Rejected {
                path: change.path.clone(),
                service: change.service.clone(),
                image: change.to.id.clone(),
                at,
            });
        }
    }

    /// The rollback points of the stack at `path`, or of every stack.
    pub fn points_of<'a>(
        &'a self,
        path: Option<&'a str>,
    ) -> impl Iterator<Item = &'a ServiceChange> + 'a {
        self.points
            .iter()
            .filter(move |p| path.is_none_or(|path| p.path == path))
    }

    /// The images rejected in the stack at `path`.
    pub fn rejected_in<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a Rejected> + 'a {
        self.rejected.iter().filter(move |r| r.path == path)
    }
}

/// One service a rollback would put back, as tendhost last saw the stack (the host is asked
/// again before anything runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackPreview {
    pub path: String,
    pub service: String,
    /// The image id it ran when last seen; `None` without a container.
    pub now: Option<String>,
    /// What it goes back to.
    pub restore: ImageRef,
}

impl RollbackPreview {
    /// It already runs the image it would go back to.
    pub fn done(&self) -> bool {
        self.now.as_deref() == Some(self.restore.id.as_str())
    }

    /// `web: 0123456789ab → 89abcdef0123`, or `web: already on 89abcdef0123`.
    pub fn describe(&self) -> String {
        let to = short_id(&self.restore.id);
        match (&self.now, self.done()) {
            (_, true) => format!("{}: already on {to}", self.service),
            (Some(now), false) => format!("{}: {} → {to}", self.service, short_id(now)),
            (None, false) => format!("{}: (no container) → {to}", self.service),
        }
    }
}

impl RollbackLedger {
    /// What a rollback of `stack` (or of every stack) would do, judged from `stacks` (the
    /// stacks as last seen): one line per rollback point with an earlier image.
    pub fn preview(&self, stacks: &[StackReport], stack: Option<&str>) -> Vec<RollbackPreview> {
        self.points_of(stack)
            .filter_map(|point| {
                let restore = point.from.clone()?;
                let seen = stacks
                    .iter()
                    .find(|s| s.path == point.path)
                    .and_then(|s| s.services.iter().find(|v| v.service == point.service));
                // A report keeps what ran before its update: a recreated service runs the new.
                let now = seen.and_then(|service| {
                    let recreated = stacks
                        .iter()
                        .any(|s| s.path == point.path && s.recreated && service.changed());
                    match recreated {
                        true => service.available.as_ref(),
                        false => service.running.as_ref(),
                    }
                    .map(|image| image.id.clone())
                });
                Some(RollbackPreview {
                    path: point.path.clone(),
                    service: point.service.clone(),
                    now,
                    restore,
                })
            })
            .collect()
    }
}

fn same_service(change: &ServiceChange, path: &str, service: &str) -> bool {
    change.path == path && change.service == service
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkg::{ImageRef, ServiceImage};

    fn image(id: &str) -> Option<ImageRef> {
        Some(ImageRef {
            id: id.into(),
            digest: Some(format!("reg/web@{id}")),
        })
    }

    fn stack(path: &str, running: &str, available: &str, recreated: bool) -> StackReport {
        StackReport {
            path: path.into(),
            services: vec![ServiceImage {
                service: "web".into(),
                image: Some("reg/web:latest".into()),
                running: image(running),
                available: image(available),
                held: None,
            }],
            recreated,
        }
    }

    #[test]
    fn an_update_keeps_a_point_per_service_until_a_rollback_uses_it() {
        let mut ledger = RollbackLedger::default();
        ledger.updated(&[
            stack("/a", "v1", "v2", true),
            stack("/b", "v1", "v2", false),
        ]);
        let points: Vec<(&str, Option<&str>)> = ledger
            .points_of(None)
            .map(|p| (p.path.as_str(), p.from.as_ref().map(|f| f.id.as_str())))
            .collect();
        assert_eq!(
            points,
            [("/a", Some("v1"))],
            "only recreated stacks changed"
        );

        // A later update that changes nothing in /a keeps its point; one that moves it again
        // replaces it.
        ledger.updated(&[stack("/a", "v2", "v2", false)]);
        assert_eq!(ledger.points_of(Some("/a")).count(), 1);
        ledger.updated(&[stack("/a", "v2", "v3", true)]);
        let from: Vec<&str> = ledger
            .points_of(Some("/a"))
            .filter_map(|p| p.from.as_ref())
            .map(|f| f.id.as_str())
            .collect();
        assert_eq!(from, ["v2"]);

        let undone: Vec<ServiceChange> = ledger.points_of(Some("/a")).cloned().collect();
        let at = Utc::now();
        ledger.rolled_back(&undone, at);
        assert_eq!(
            ledger.points_of(None).count(),
            1,
            "kept: a failed rollback is retried"
        );
        assert_eq!(
            ledger.rejected,
            [Rejected {
                path: "/a".into(),
                service: "web".into(),
                image: "v3".into(),
                at
            }]
        );
        assert_eq!(ledger.rejected_in("/b").count(), 0);

        // Seen running v2 again, the preview says there is nothing left to do.
        let seen = [stack("/a", "v2", "v2", false)];
        let preview = ledger.preview(&seen, None);
        assert_eq!(preview.len(), 1);
        assert!(preview[0].done(), "{preview:?}");
        assert_eq!(preview[0].describe(), "web: already on v2");
        let preview = ledger.preview(&[stack("/a", "v3", "v3", false)], Some("/a"));
        assert_eq!(preview[0].describe(), "web: v3 → v2");
        assert!(ledger.preview(&seen, Some("/b")).is_empty());

        // The reference moved on (v4) and an update took it: the rejection is over.
        ledger.updated(&[stack("/a", "v2", "v4", true)]);
        assert!(ledger.rejected.is_empty());
        assert_eq!(ledger.points_of(Some("/a")).count(), 1);
    }
}
