//! What tendhost learned about one stack: per service, the image its container ran and the one
//! its reference points at now, each by id and digest, and the changes an update made. These are
//! the records a later rollback needs, so they are plain serde data.
//!
//! Built from the parsed probes (`parse::compose`); runs nothing itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::pkg::Error;
use crate::pkg::parse::compose::{ImageProbe, StackProbe, find_image, pick_digest};

/// One image: its id (`sha256:…`, what a container really runs) and the digest a registry
/// knows it by (`repo@sha256:…`), if it ever met one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    pub id: String,
    /// `None` for an image built or imported locally and never pushed or pulled.
    pub digest: Option<String>,
}

/// `sha256:0123456789ab…` → `0123456789ab`, as docker shows image ids.
pub fn short_id(id: &str) -> String {
    let bare = id.strip_prefix("sha256:").unwrap_or(id);
    bare.chars().take(12).collect()
}

/// One service of a stack, with the image it ran and the one its reference points at now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceImage {
    pub service: String,
    /// The reference the service's container was created from, e.g. `reg:5000/app:latest`;
    /// `None` when the service has no container.
    pub image: Option<String>,
    /// What the service's container ran when tendhost looked, before any recreate; `None`
    /// without a container.
    pub running: Option<ImageRef>,
    /// What `image` points at on the host (after the pull, when one ran); `None` when the
    /// reference is unknown or no such image is present.
    pub available: Option<ImageRef>,
    /// Why an update leaves the service on the image it runs although `available` differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Hold>,
}

/// Why an update leaves a service where it is although its reference points at another image.
/// The local tag is pointed back at the running image, so nothing (not a manual `up -d`
/// either) picks the held one up; the next pull looks again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Hold {
    /// The operator rolled this image back: it stays out until the reference points at a
    /// different one.
    RolledBack,
    /// Built less than `[host.docker] min_image_age` ago: a later run takes it once it has
    /// aged (a fresh release is where a broken one is found).
    TooNew { created: DateTime<Utc> },
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::RolledBack => write!(f, "held: rolled back"),
            Hold::TooNew { created } => {
                write!(
                    f,
                    "held: too new (built {})",
                    created.format("%Y-%m-%d %H:%M UTC")
                )
            }
        }
    }
}

/// A service an update left on the image it runs: the image it left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldService {
    pub path: String,
    pub service: String,
    /// The image left out (what the reference pointed at after the pull).
    pub image: ImageRef,
    pub hold: Hold,
}

impl ServiceImage {
    /// A different image is there for a service that has a container, and nothing holds it.
    pub fn changed(&self) -> bool {
        self.held.is_none() && self.differs()
    }

    /// The reference points at another image than the service runs (held or not).
    fn differs(&self) -> bool {
        matches!((&self.running, &self.available), (Some(old), Some(new)) if old.id != new.id)
    }
}

/// What happened to one `compose_paths` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackReport {
    pub path: String,
    /// In compose-file order.
    pub services: Vec<ServiceImage>,
    /// `up -d` ran (because at least one service changed) and every changed service was seen
    /// running its new image afterwards.
    pub recreated: bool,
}

/// One service moved from one image to another: what a rollback would undo.
///
/// Serialized flat, as batch `--json` prints it:
/// `{"path","service","from","from_digest","to","to_digest"}` (`from*` null for a new service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ChangeRecord", into = "ChangeRecord")]
pub struct ServiceChange {
    pub path: String,
    pub service: String,
    pub from: Option<ImageRef>,
    pub to: ImageRef,
}

/// The wire shape of [`ServiceChange`].
#[derive(Serialize, Deserialize)]
struct ChangeRecord {
    path: String,
    service: String,
    from: Option<String>,
    from_digest: Option<String>,
    to: String,
    to_digest: Option<String>,
}

impl From<ServiceChange> for ChangeRecord {
    fn from(c: ServiceChange) -> Self {
        let (from, from_digest) = match c.from {
            Some(image) => (Some(image.id), image.digest),
            None => (None, None),
        };
        ChangeRecord {
            path: c.path,
            service: c.service,
            from,
            from_digest,
            to: c.to.id,
            to_digest: c.to.digest,
        }
    }
}

impl From<ChangeRecord> for ServiceChange {
    fn from(r: ChangeRecord) -> Self {
        ServiceChange {
            path: r.path,
            service: r.service,
            from: r.from.map(|id| ImageRef {
                id,
                digest: r.from_digest,
            }),
            to: ImageRef {
                id: r.to,
                digest: r.to_digest,
            },
        }
    }
}

impl StackReport {
    /// The stack at `path` as `probe` saw it, with `available` telling what each service's
    /// reference points at (the probe's own images, or a probe run after the pull).
    pub(super) fn new(path: &str, probe: &StackProbe, available: &[ImageProbe]) -> Self {
        let services = probe
            .services
            .iter()
            .map(|service| {
                let container = probe.containers_of(service).next();
                let image = container.and_then(|c| c.image_ref.clone());
                let running = container.map(|c| ImageRef {
                    id: c.image_id.clone(),
                    digest: probe
                        .image(&c.image_id)
                        .and_then(|i| pick_digest(image.as_deref(), &i.digests)),
                });
                let available = image.as_deref().and_then(|reference| {
                    let found = find_image(available, reference)?;
                    Some(ImageRef {
                        id: found.id.clone()?,
                        digest: pick_digest(Some(reference), &found.digests),
                    })
                });
                ServiceImage {
                    service: service.clone(),
                    image,
                    running,
                    available,
                    held: None,
                }
            })
            .collect();
        StackReport {
            path: path.to_string(),
            services,
            recreated: false,
        }
    }

    /// Services with a different image available (changed by the update once `recreated`).
    pub fn changed(&self) -> impl Iterator<Item = &ServiceImage> {
        self.services.iter().filter(|s| s.changed())
    }

    /// Services whose new image an update leaves for later, with why.
    pub fn held(&self) -> impl Iterator<Item = (&ServiceImage, &Hold)> {
        self.services
            .iter()
            .filter(|s| s.differs())
            .filter_map(|s| Some((s, s.held.as_ref()?)))
    }

    /// [`held`](Self::held), as records for the host model.
    pub fn held_services(&self) -> impl Iterator<Item = HeldService> + '_ {
        self.held().filter_map(|(service, hold)| {
            Some(HeldService {
                path: self.path.clone(),
                service: service.service.clone(),
                image: service.available.clone()?,
                hold: hold.clone(),
            })
        })
    }

    /// One record per changed service: old and new image, by id and digest.
    pub fn changes(&self) -> impl Iterator<Item = ServiceChange> + '_ {
        self.changed().filter_map(|s| {
            Some(ServiceChange {
                path: self.path.clone(),
                service: s.service.clone(),
                from: s.running.clone(),
                to: s.available.clone()?,
            })
        })
    }

    /// Checks, against a probe taken after `up -d`, that every container of every changed
    /// service runs its new image; the error names the first service that does not.
    pub(super) fn verify(&self, after: &StackProbe) -> Result<(), Error> {
        let changes: Vec<ServiceChange> = self.changes().collect();
        verify_running(
            &self.path,
            after,
            changes
                .iter()
                .map(|c| (c.service.as_str(), c.to.id.as_str())),
        )
    }
}

/// Checks, against a probe taken after `up -d` of the stack at `path`, that every container of
/// each `(service, image id)` runs that image; the error names the first service that does not.
pub(super) fn verify_running<'a>(
    path: &str,
    after: &StackProbe,
    expected: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), Error> {
    for (service, image) in expected {
        let running: Vec<&str> = after
            .containers_of(service)
            .map(|c| c.image_id.as_str())
            .collect();
        let stale = running.iter().find(|id| **id != image);
        if running.is_empty() || stale.is_some() {
            return Err(Error::Compose {
                path: path.to_string(),
                service: Some(service.to_string()),
                source: Box::new(Error::NotRecreated {
                    running: stale.map(|id| (*id).to_string()),
                    expected: image.to_string(),
                }),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkg::parse::compose::{parse_images, parse_stack};

    fn image(id: &str, digest: Option<&str>) -> ImageRef {
        ImageRef {
            id: id.into(),
            digest: digest.map(String::from),
        }
    }

    fn service(running: Option<&str>, available: Option<&str>) -> ServiceImage {
        ServiceImage {
            service: "web".into(),
            image: Some("web:latest".into()),
            running: running.map(|id| image(id, None)),
            available: available.map(|id| image(id, None)),
            held: None,
        }
    }

    #[test]
    fn only_a_different_id_counts_as_changed() {
        assert!(service(Some("a"), Some("b")).changed());
        assert!(!service(Some("a"), Some("a")).changed());
        assert!(!service(None, Some("a")).changed());
        assert!(!service(Some("a"), None).changed());
        let held = ServiceImage {
            held: Some(Hold::RolledBack),
            ..service(Some("a"), Some("b"))
        };
        assert!(!held.changed(), "a held image is no change");
        let stack = StackReport {
            path: "/s".into(),
            services: vec![held, service(Some("a"), Some("a"))],
            recreated: false,
        };
        let held: Vec<&str> = stack.held().map(|(s, _)| s.service.as_str()).collect();
        assert_eq!(held, ["web"]);
    }

    const PROBE: &str = "tendhost-svc\tweb\ntendhost-svc\tidle\ntendhost-svc\tlocal\n\
        tendhost-ctr\tweb\tsha256:old\treg/web:latest\n\
        tendhost-ctr\tlocal\tsha256:built\tlocal:dev\n\
        tendhost-img\tsha256:old\tsha256:old\treg/x@sha256:dx reg/web@sha256:d1 \n\
        tendhost-img\tsha256:built\tsha256:built\t\n\
        tendhost-img\treg/web:latest\tsha256:old\treg/x@sha256:dx reg/web@sha256:d1 \n\
        tendhost-img\tlocal:dev\tsha256:built\t\n";

    /// The stack of [`PROBE`] after a pull that printed `pulled` (image lines).
    fn after_pull(pulled: &str) -> StackReport {
        StackReport::new("/srv/app", &parse_stack(PROBE), &parse_images(pulled))
    }

    #[test]
    fn records_ids_and_digests_before_and_after_the_pull() {
        let report = after_pull("tendhost-img\treg/web:latest\tsha256:new\treg/web@sha256:d2\n");
        let names: Vec<&str> = report.services.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["web", "idle", "local"]);
        let web = &report.services[0];
        assert_eq!(
            web.running,
            Some(image("sha256:old", Some("reg/web@sha256:d1")))
        );
        assert_eq!(
            web.available,
            Some(image("sha256:new", Some("reg/web@sha256:d2")))
        );
        let idle = &report.services[1];
        assert_eq!(
            (&idle.image, &idle.running, &idle.available),
            (&None, &None, &None)
        );
        let local = &report.services[2];
        assert_eq!(local.running, Some(image("sha256:built", None)));
        assert_eq!(local.available, None, "the pull probe did not ask for it");

        let changes: Vec<ServiceChange> = report.changes().collect();
        assert_eq!(
            changes,
            [ServiceChange {
                path: "/srv/app".into(),
                service: "web".into(),
                from: Some(image("sha256:old", Some("reg/web@sha256:d1"))),
                to: image("sha256:new", Some("reg/web@sha256:d2")),
            }]
        );

        // Without a pull the probe's own view of the reference is what is available.
        let probe = parse_stack(PROBE);
        let inspected = StackReport::new("/srv/app", &probe, &probe.images);
        assert_eq!(inspected.changed().count(), 0);
        assert_eq!(
            inspected.services[2].available,
            Some(image("sha256:built", None))
        );
    }

    #[test]
    fn a_change_serializes_flat_and_reads_back() {
        let change = ServiceChange {
            path: "/srv/app".into(),
            service: "web".into(),
            from: Some(image("sha256:old", None)),
            to: image("sha256:new", Some("reg/web@sha256:d2")),
        };
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"path": "/srv/app", "service": "web", "from": "sha256:old",
                "from_digest": null, "to": "sha256:new", "to_digest": "reg/web@sha256:d2"})
        );
        assert_eq!(
            serde_json::from_value::<ServiceChange>(json).unwrap(),
            change
        );
    }

    #[test]
    fn verify_names_the_service_still_on_its_old_image() {
        let report = after_pull("tendhost-img\treg/web:latest\tsha256:new\t\n");
        let err = report.verify(&parse_stack(PROBE)).unwrap_err();
        assert_eq!(
            crate::errors::chain(&err),
            "compose stack '/srv/app', service 'web': 'up -d' left it on image 'sha256:old' \
             instead of 'sha256:new'"
        );
        let recreated = parse_stack("tendhost-ctr\tweb\tsha256:new\treg/web:latest\n");
        report.verify(&recreated).unwrap();
        let gone = parse_stack("tendhost-svc\tweb\n");
        let err = report.verify(&gone).unwrap_err();
        assert!(crate::errors::chain(&err).ends_with("'up -d' left it without a container"));
    }
}
