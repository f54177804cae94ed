//! The shell text the compose updater runs: the exact `docker-compose …` (v1) or
//! `docker compose …` (v2) command lines for one stack, and the probes that print what
//! `parse::compose` reads. Every path, service name and reference goes through [`quote`].
//!
//! Pure string building; running them is `compose::ComposeUpdater`'s job.

use crate::config::ComposeVersion;
use crate::pkg::parse::compose::{CONTAINER_MARKER, IMAGE_MARKER, SERVICE_MARKER};
use crate::remote::quote;

/// `docker inspect` template of a container line (after [`CONTAINER_MARKER`]).
const CONTAINER_FORMAT: &str =
    "\t{{index .Config.Labels \"com.docker.compose.service\"}}\t{{.Image}}\t{{.Config.Image}}";
/// `docker inspect` template printing a container's image id and its reference, one a line.
const IMAGES_OF_CONTAINER: &str = "{{.Image}}\n{{.Config.Image}}";
/// `docker image inspect` template: id, every repo digest, and when it was built.
const IMAGE_FORMAT: &str = "{{.Id}}\t{{range .RepoDigests}}{{.}} {{end}}\t{{.Created}}";

/// How to reach one stack: the directory to `cd` into and the compose invocation for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StackCommand {
    /// Quoted.
    dir: String,
    /// `docker-compose` or `docker compose`, plus `-f FILE` (quoted) when the path names one.
    compose: String,
}

impl StackCommand {
    /// A path naming a `.yml`/`.yaml` file selects that file; anything else is the project
    /// directory.
    pub(super) fn new(version: ComposeVersion, path: &str) -> Self {
        let binary = match version {
            ComposeVersion::V1 => "docker-compose",
            ComposeVersion::V2 => "docker compose",
        };
        let is_file = path.ends_with(".yml") || path.ends_with(".yaml");
        let (dir, compose) = match path.rsplit_once('/').filter(|_| is_file) {
            Some((dir, file)) => {
                let dir = if dir.is_empty() { "/" } else { dir };
                (quote(dir), format!("{binary} -f {}", quote(file)))
            }
            None if is_file => (".".to_string(), format!("{binary} -f {}", quote(path))),
            None => (quote(path), binary.to_string()),
        };
        Self { dir, compose }
    }

    /// `body` run inside the stack's directory, with globbing off so unquoted lists of ids and
    /// references split into words and nothing else.
    fn script(&self, body: &str) -> String {
        format!("cd -- {} || exit 3\nset -f\n{body}", self.dir)
    }

    /// Read-only: the services of the compose file, each container's service and image, and
    /// every image those containers run or name (see `parse::compose::parse_stack`).
    pub(super) fn probe(&self) -> String {
        let compose = &self.compose;
        self.script(&format!(
            "{image_fn}\
             services=$({compose} config --services) || exit\n\
             containers=$({compose} ps -q) || exit\n\
             printf '%s\\n' \"$services\" | while IFS= read -r s; do\n\
             [ -z \"$s\" ] || printf '%s\\t%s\\n' {SERVICE_MARKER} \"$s\"\n\
             done\n\
             [ -n \"$containers\" ] || exit 0\n\
             docker inspect --format {container_format} $containers || exit\n\
             for i in $(docker inspect --format {images} $containers | sort -u); do img \"$i\"; done\n",
            image_fn = image_function(),
            container_format = quote(&format!("{CONTAINER_MARKER}{CONTAINER_FORMAT}")),
            images = quote(IMAGES_OF_CONTAINER),
        ))
    }

    /// `pull`, of one service or of all.
    pub(super) fn pull(&self, service: Option<&str>) -> String {
        let only = service
            .map(|s| format!(" {}", quote(s)))
            .unwrap_or_default();
        self.script(&format!("{} pull{only}\n", self.compose))
    }

    /// `up -d` of `services` only: the others keep their containers, running or not.
    pub(super) fn up(&self, services: &[&str]) -> String {
        self.script(&format!("{}\n", self.up_line(services)))
    }

    fn up_line(&self, services: &[&str]) -> String {
        let names: String = services.iter().map(|s| format!(" {}", quote(s))).collect();
        format!("{} up -d{names}", self.compose)
    }

    /// Puts each service's reference back on the image it ran before (pulled by its digest
    /// first when it is no longer on the host), then `up -d` of those services: one script, so
    /// it runs as one detached job.
    pub(super) fn rollback(&self, steps: &[RollbackStep]) -> String {
        let mut body = String::new();
        for step in steps {
            let id = quote(&step.restore.id);
            if let Some(digest) = step.pull.as_deref() {
                body.push_str(&format!(
                    "docker image inspect {id} >/dev/null 2>&1 || docker pull {} || exit\n",
                    quote(digest)
                ));
            }
            body.push_str(&format!(
                "docker tag {id} {} || exit\n",
                quote(&step.reference)
            ));
        }
        let services: Vec<&str> = steps.iter().map(|s| s.service.as_str()).collect();
        body.push_str(&self.up_line(&services));
        body.push('\n');
        self.script(&body)
    }
}

/// One service of a rollback: the reference to point back at `restore`, pulled by `pull` (a
/// digest) first when the image is gone from the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RollbackStep {
    pub path: String,
    pub service: String,
    /// The reference its container is created from, e.g. `reg:5000/app:latest`.
    pub reference: String,
    /// The image it runs now.
    pub running: Option<String>,
    /// The image it ran before the update: what it is put back on.
    pub restore: super::ImageRef,
    /// The digest to pull when `restore` is no longer on the host; `None` when it is there.
    pub pull: Option<String>,
}

impl RollbackStep {
    /// `web in /srv/app: 89abcdef0123 → 0123456789ab`, and how the old image is had.
    pub fn describe(&self) -> String {
        let short = super::report::short_id;
        let now = self
            .running
            .as_deref()
            .map_or("(no container)".into(), short);
        let how = match &self.pull {
            Some(digest) => format!(" (pulling {digest} first)"),
            None => String::new(),
        };
        format!(
            "{} in {}: {now} → {}{how}",
            self.service,
            self.path,
            short(&self.restore.id)
        )
    }
}

/// Points each `(image id, reference)` tag at its image: how a held service's reference is put
/// back on what it runs after a pull moved it.
pub(super) fn retag_script(tags: &[(&str, &str)]) -> String {
    tags.iter()
        .map(|(id, reference)| format!("docker tag {} {} || exit\n", quote(id), quote(reference)))
        .collect()
}

/// Marker of a service line of [`health_probe`]: `tendhost-want<TAB>SERVICE`.
pub(crate) const HEALTH_SERVICE_MARKER: &str = "tendhost-want";
/// Marker of a container line of [`health_probe`]:
/// `tendhost-state<TAB>SERVICE<TAB>STATUS<TAB>HEALTH` (HEALTH empty without a healthcheck).
pub(crate) const HEALTH_CONTAINER_MARKER: &str = "tendhost-state";
/// `docker inspect` template of a [`HEALTH_CONTAINER_MARKER`] line.
const HEALTH_FORMAT: &str = "\t{{index .Config.Labels \"com.docker.compose.service\"}}\t{{.State.Status}}\t\
    {{if .State.Health}}{{.State.Health.Status}}{{end}}";
/// How many times (2 s apart) the health probe looks again while a healthcheck is still
/// `starting`: containers started by the boot may not have run their first check yet.
const HEALTH_TRIES: u32 = 15;

/// Read-only, for the post-reboot health check (`crate::health`): the services of the stack at
/// `path`, then each of its running containers' service, status and health, looked at again
/// while a healthcheck is still starting (at most [`HEALTH_TRIES`] times). Exits non-zero when
/// compose or docker fails.
pub(crate) fn health_probe(version: ComposeVersion, path: &str) -> String {
    let stack = StackCommand::new(version, path);
    let compose = &stack.compose;
    // A healthcheck still starting ends its line with "<TAB>starting" (a literal tab below).
    stack.script(&format!(
        "services=$({compose} config --services) || exit\n\
         printf '%s\\n' \"$services\" | while IFS= read -r s; do\n\
         [ -z \"$s\" ] || printf '%s\\t%s\\n' {HEALTH_SERVICE_MARKER} \"$s\"\n\
         done\n\
         n=0\n\
         while :; do\n\
         containers=$({compose} ps -q) || exit\n\
         [ -n \"$containers\" ] || exit 0\n\
         states=$(docker inspect --format {format} $containers) || exit\n\
         n=$((n+1))\n\
         case $states in *\"\tstarting\"*) if [ $n -lt {HEALTH_TRIES} ]; then sleep 2; continue; fi;; esac\n\
         printf '%s\\n' \"$states\"\n\
         exit 0\n\
         done\n",
        format = quote(&format!("{HEALTH_CONTAINER_MARKER}{HEALTH_FORMAT}")),
    ))
}

/// Prints one image line for each of `asked` (ids or references), wherever the shell is.
pub(super) fn images_script(asked: &[&str]) -> String {
    let mut script = image_function();
    for a in asked {
        script.push_str(&format!("img {}\n", quote(a)));
    }
    script
}

/// `img X` prints X's image line; an image that is not there gets an empty id.
fn image_function() -> String {
    format!(
        "img() {{ printf '%s\\t%s\\t%s\\n' {IMAGE_MARKER} \"$1\" \
         \"$(docker image inspect --format {} \"$1\" 2>/dev/null)\"; }}\n",
        quote(IMAGE_FORMAT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_binary_and_quotes_paths() {
        let v1 = StackCommand::new(ComposeVersion::V1, "/opt/stacks/media");
        assert_eq!(
            (v1.dir.as_str(), v1.compose.as_str()),
            ("/opt/stacks/media", "docker-compose")
        );
        let v2 = StackCommand::new(ComposeVersion::V2, "/srv/my stack/compose.yaml");
        assert_eq!(
            (v2.dir.as_str(), v2.compose.as_str()),
            ("'/srv/my stack'", "docker compose -f compose.yaml")
        );
        let hostile = StackCommand::new(ComposeVersion::V2, "/srv/$(reboot)/x.yml");
        assert_eq!(hostile.dir, "'/srv/$(reboot)'");
        assert_eq!(StackCommand::new(ComposeVersion::V1, "/c.yml").dir, "/");
    }

    #[test]
    fn command_lines_are_exact_and_quoted() {
        let stack = StackCommand::new(ComposeVersion::V2, "/srv/a b/compose.yaml");
        assert_eq!(
            stack.pull(None),
            "cd -- '/srv/a b' || exit 3\nset -f\ndocker compose -f compose.yaml pull\n"
        );
        assert_eq!(
            stack.pull(Some("web")),
            "cd -- '/srv/a b' || exit 3\nset -f\ndocker compose -f compose.yaml pull web\n"
        );
        assert!(
            stack
                .up(&["web", "odd name"])
                .ends_with("\ndocker compose -f compose.yaml up -d web 'odd name'\n")
        );
        let health = health_probe(ComposeVersion::V1, "/srv/a b/compose.yaml");
        assert!(
            health.starts_with("cd -- '/srv/a b' || exit 3\n"),
            "{health}"
        );
        assert!(health.contains("docker-compose -f compose.yaml config --services"));
        assert!(health.contains("containers=$(docker-compose -f compose.yaml ps -q)"));
        let probe = stack.probe();
        assert!(probe.contains("services=$(docker compose -f compose.yaml config --services)"));
        assert!(probe.contains("containers=$(docker compose -f compose.yaml ps -q)"));
        let step = |service: &str, pull: Option<&str>| RollbackStep {
            path: "/srv/a b/compose.yaml".into(),
            service: service.into(),
            reference: "reg/app:latest".into(),
            running: Some("sha256:new".into()),
            restore: crate::pkg::ImageRef {
                id: "sha256:old".into(),
                digest: Some("reg/app@sha256:d1".into()),
            },
            pull: pull.map(String::from),
        };
        assert_eq!(
            stack.rollback(&[
                step("web", None),
                step("odd name", Some("reg/app@sha256:d1"))
            ]),
            "cd -- '/srv/a b' || exit 3\nset -f\n\
             docker tag sha256:old reg/app:latest || exit\n\
             docker image inspect sha256:old >/dev/null 2>&1 || docker pull reg/app@sha256:d1 || exit\n\
             docker tag sha256:old reg/app:latest || exit\n\
             docker compose -f compose.yaml up -d web 'odd name'\n"
        );
        assert_eq!(
            retag_script(&[("sha256:old", "reg/$(x):1")]),
            "docker tag sha256:old 'reg/$(x):1' || exit\n"
        );
        assert!(
            images_script(&["reg/app:1", "$(x)"]).ends_with("img reg/app:1\nimg '$(x)'\n"),
            "{}",
            images_script(&[])
        );
    }
}
