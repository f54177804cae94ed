//! Pure parsers for the probes the compose updater runs: which services a stack has, which image
//! each service's containers run, and what an image (by id or by reference) is: its id and the
//! digests the registries know it by. The probes print tab-separated lines behind a marker, so
//! stray output (warnings, pull progress) is ignored.
//!
//! Knows nothing of the reports built from these lines; `pkg::compose` assembles them.

/// Marker of a service line: `tendhost-svc<TAB>SERVICE`, one per service of the compose file.
pub(crate) const SERVICE_MARKER: &str = "tendhost-svc";
/// Marker of a container line: `tendhost-ctr<TAB>SERVICE<TAB>IMAGE_ID<TAB>IMAGE_REF`.
pub(crate) const CONTAINER_MARKER: &str = "tendhost-ctr";
/// Marker of an image line: `tendhost-img<TAB>ASKED<TAB>IMAGE_ID<TAB>DIGEST DIGEST …<TAB>CREATED`,
/// where ASKED is the id or reference that was inspected; the id is empty when the image is
/// missing; CREATED is when the image was built (RFC 3339).
pub(crate) const IMAGE_MARKER: &str = "tendhost-img";

/// One container of a stack, as `docker inspect` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerProbe {
    /// The `com.docker.compose.service` label.
    pub service: String,
    pub image_id: String,
    /// The reference the container was created from (`Config.Image`), e.g. `nginx:1.27`.
    pub image_ref: Option<String>,
}

/// One image, looked up by id or by reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageProbe {
    /// What was asked for: an image id or a reference.
    pub asked: String,
    /// `None` when no such image is present.
    pub id: Option<String>,
    /// Its `RepoDigests` (`repo@sha256:…`); empty for an image that never met a registry.
    pub digests: Vec<String>,
    /// When it was built; `None` when docker did not say (or said something unreadable).
    pub created: Option<chrono::DateTime<chrono::Utc>>,
}

/// Everything one run of the stack probe printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StackProbe {
    /// In compose-file order.
    pub services: Vec<String>,
    pub containers: Vec<ContainerProbe>,
    pub images: Vec<ImageProbe>,
}

impl StackProbe {
    /// The image probed as `asked` (an id or a reference).
    pub(crate) fn image(&self, asked: &str) -> Option<&ImageProbe> {
        find_image(&self.images, asked)
    }

    /// The containers of `service`, in the order `compose ps` listed them.
    pub(crate) fn containers_of<'a>(
        &'a self,
        service: &'a str,
    ) -> impl Iterator<Item = &'a ContainerProbe> + 'a {
        self.containers.iter().filter(move |c| c.service == service)
    }
}

/// The image probed as `asked` among `images`.
pub(crate) fn find_image<'a>(images: &'a [ImageProbe], asked: &str) -> Option<&'a ImageProbe> {
    images.iter().find(|i| i.asked == asked)
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The fields after `marker` on each line that starts with it.
fn marked<'a>(text: &'a str, marker: &'a str) -> impl Iterator<Item = Vec<&'a str>> + 'a {
    text.lines().filter_map(move |line| {
        let mut fields = line.split('\t');
        (fields.next()? == marker).then(|| fields.collect())
    })
}

/// Parses the stack probe: service, container and image lines, in any order.
pub(crate) fn parse_stack(text: &str) -> StackProbe {
    let services = marked(text, SERVICE_MARKER)
        .filter_map(|f| non_empty(f.first().copied()))
        .collect();
    let containers = marked(text, CONTAINER_MARKER)
        .filter_map(|f| {
            Some(ContainerProbe {
                service: non_empty(f.first().copied())?,
                image_id: non_empty(f.get(1).copied())?,
                image_ref: non_empty(f.get(2).copied()),
            })
        })
        .collect();
    StackProbe {
        services,
        containers,
        images: parse_images(text),
    }
}

/// Parses image lines (see [`IMAGE_MARKER`]).
pub(crate) fn parse_images(text: &str) -> Vec<ImageProbe> {
    marked(text, IMAGE_MARKER)
        .filter_map(|f| {
            Some(ImageProbe {
                asked: non_empty(f.first().copied())?,
                id: non_empty(f.get(1).copied()),
                digests: f
                    .get(2)
                    .map(|d| d.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default(),
                created: f
                    .get(3)
                    .and_then(|c| chrono::DateTime::parse_from_rfc3339(c.trim()).ok())
                    .map(|c| c.to_utc()),
            })
        })
        .collect()
}

/// The repository part of an image reference: `reg:5000/app:1.2@sha256:…` → `reg:5000/app`.
/// A colon before the last `/` belongs to a registry port, not a tag.
pub(crate) fn repository(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].find(':') {
        Some(colon) => &name[..last + colon],
        None => name,
    }
}

/// The digest an image is known by in the repository of `reference`: the `RepoDigests` entry of
/// that repository, else the first one (a reference that names no repository, e.g. an id).
/// `None` for an image that was built locally and never pushed or pulled.
pub(crate) fn pick_digest(reference: Option<&str>, digests: &[String]) -> Option<String> {
    let wanted = reference.map(repository);
    digests
        .iter()
        .find(|d| Some(repository(d)) == wanted)
        .or_else(|| digests.first())
        .cloned()
}

/// The service compose blames in a failure's output, if it is one of `services`: v1 prints
/// `ERROR: for web  …` (and the same for the container, `ERROR: for proj_web_1`, which is no
/// service), compose-go's errors say `service "web" …`.
pub(crate) fn blamed_service<'a>(output: &str, services: &'a [String]) -> Option<&'a String> {
    let known = |word: &str| services.iter().find(|s| s.as_str() == word);
    output.lines().find_map(|line| {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("ERROR: for ") {
            return rest.split_whitespace().next().and_then(known);
        }
        let (_, rest) = line.split_once("service \"")?;
        rest.split('"').next().and_then(known)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_services_containers_and_images() {
        let text = "WARNING: something\n\
                    tendhost-svc\tweb\n\
                    tendhost-svc\tworker\n\
                    tendhost-ctr\tweb\tsha256:aaa\t127.0.0.1:5000/web:latest\n\
                    tendhost-img\tsha256:aaa\tsha256:aaa\t127.0.0.1:5000/web@sha256:d1 \n\
                    tendhost-img\t127.0.0.1:5000/web:latest\tsha256:aaa\t\t2026-11-30T08:15:02.123456789Z\n\
                    tendhost-img\tgone:1\t\t\n";
        let probe = parse_stack(text);
        assert_eq!(probe.services, ["web", "worker"]);
        assert_eq!(
            probe.containers,
            [ContainerProbe {
                service: "web".into(),
                image_id: "sha256:aaa".into(),
                image_ref: Some("127.0.0.1:5000/web:latest".into()),
            }]
        );
        assert_eq!(probe.containers_of("worker").count(), 0);
        let by_id = probe.image("sha256:aaa").unwrap();
        assert_eq!(by_id.digests, ["127.0.0.1:5000/web@sha256:d1"]);
        let by_ref = probe.image("127.0.0.1:5000/web:latest").unwrap();
        assert_eq!(by_ref.id.as_deref(), Some("sha256:aaa"));
        assert!(by_ref.digests.is_empty());
        assert_eq!(
            by_ref.created.map(|c| c.to_rfc3339()).as_deref(),
            Some("2026-11-30T08:15:02.123456789+00:00")
        );
        assert_eq!(by_id.created, None);
        assert_eq!(probe.image("gone:1").unwrap().id, None);
    }

    #[test]
    fn a_reference_names_its_repository() {
        assert_eq!(repository("nginx"), "nginx");
        assert_eq!(repository("nginx:1.27"), "nginx");
        assert_eq!(repository("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(
            repository("127.0.0.1:5000/a/app:v2"),
            "127.0.0.1:5000/a/app"
        );
        assert_eq!(repository("reg/app@sha256:abc"), "reg/app");
        assert_eq!(repository("reg:5000/app:v1@sha256:abc"), "reg:5000/app");
    }

    #[test]
    fn picks_the_digest_of_the_references_repository() {
        let digests = vec!["reg/other@sha256:1".to_string(), "reg/app@sha256:2".into()];
        assert_eq!(
            pick_digest(Some("reg/app:latest"), &digests).as_deref(),
            Some("reg/app@sha256:2")
        );
        assert_eq!(
            pick_digest(Some("elsewhere/app"), &digests).as_deref(),
            Some("reg/other@sha256:1"),
            "no entry for the repository: the first one"
        );
        assert_eq!(pick_digest(Some("built-here:latest"), &[]), None);
    }

    #[test]
    fn blames_only_services_of_the_stack() {
        let services = vec!["web".to_string(), "db".to_string()];
        let v1 = "Pulling web ... error\nERROR: for web  manifest for reg/web:latest not found\n";
        assert_eq!(
            blamed_service(v1, &services).map(String::as_str),
            Some("web")
        );
        let v1 = "ERROR: for app_db_1  Cannot start service db: boom\n\
                  ERROR: for db  Cannot start service db: boom\n";
        assert_eq!(
            blamed_service(v1, &services).map(String::as_str),
            Some("db")
        );
        let v2 = "service \"db\" depends on undefined service";
        assert_eq!(
            blamed_service(v2, &services).map(String::as_str),
            Some("db")
        );
        assert_eq!(blamed_service("ERROR: for cache  boom\n", &services), None);
        assert_eq!(blamed_service("ERROR: Couldn't connect\n", &services), None);
    }

    proptest! {
        #[test]
        fn never_panics(
            text in "\\PC*",
            tabs in "(tendhost-(svc|ctr|img)\t[a-z:@/\t ]{0,12}\n){0,5}",
        ) {
            let _ = parse_stack(&text);
            let _ = parse_stack(&tabs);
            let _ = repository(&text);
            let _ = blamed_service(&text, &["a".to_string()]);
        }
    }
}
