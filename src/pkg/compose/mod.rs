//! Docker Compose stacks: pull newer images, tell which services would change, and recreate
//! (`up -d`) only when one did, reporting each service's old → new image id.
//!
//! Speaks only through [`Executor`]; every path and image reference is passed through [`quote`].
//! Knows nothing of apt or dnf: a stack is updated the same way on any host.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Error;
use super::parse::compose::{self as parse, IMAGE_MARKER, SERVICE_MARKER};
use super::step::{self, QUERY_TIMEOUT, REFRESH_TIMEOUT, UPGRADE_TIMEOUT};
use crate::config::{ComposeVersion, DockerSettings};
use crate::remote::{Executor, OutputLine, quote};

/// One service of a stack, with the image it ran before and the one it would run now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceImage {
    pub service: String,
    /// The image reference the service's container was created from, e.g. `nginx:1.27`.
    pub image: Option<String>,
    /// Image id the running container uses; `None` when the service has no container.
    pub old_id: Option<String>,
    /// Image id the reference points at after the pull.
    pub new_id: Option<String>,
}

impl ServiceImage {
    /// A newer image is there for a service that has a container.
    pub fn changed(&self) -> bool {
        matches!((&self.old_id, &self.new_id), (Some(old), Some(new)) if old != new)
    }
}

/// What happened to one `compose_paths` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeReport {
    pub path: String,
    pub services: Vec<ServiceImage>,
    /// `up -d` ran because at least one service changed.
    pub recreated: bool,
}

impl ComposeReport {
    pub fn changed(&self) -> impl Iterator<Item = &ServiceImage> {
        self.services.iter().filter(|s| s.changed())
    }
}

/// Updates the compose stacks of one host, per its `[host.docker]` settings.
#[derive(Debug, Clone, Copy)]
pub struct ComposeUpdater {
    version: ComposeVersion,
    pull_before_update: bool,
}

impl ComposeUpdater {
    pub fn new(settings: &DockerSettings) -> Self {
        Self {
            version: settings.compose_version,
            pull_before_update: settings.pull_before_update,
        }
    }

    /// `cd` into the stack and the compose invocation for it. A path naming a `.yml`/`.yaml`
    /// file selects that file; anything else is the project directory.
    fn compose(&self, path: &str) -> (String, String) {
        let binary = match self.version {
            ComposeVersion::V1 => "docker-compose",
            ComposeVersion::V2 => "docker compose",
        };
        let is_file = path.ends_with(".yml") || path.ends_with(".yaml");
        match path.rsplit_once('/').filter(|_| is_file) {
            Some((dir, file)) => {
                let dir = if dir.is_empty() { "/" } else { dir };
                (quote(dir), format!("{binary} -f {}", quote(file)))
            }
            None if is_file => (".".to_string(), format!("{binary} -f {}", quote(path))),
            None => (quote(path), binary.to_string()),
        }
    }

    /// Pulls (when configured) and compares image ids; changes nothing that is running.
    pub async fn check(
        &self,
        exec: &dyn Executor,
        path: &str,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<ComposeReport, Error> {
        let (dir, compose) = self.compose(path);
        let script = format!(
            "cd -- {dir} || exit 3\n\
             {compose} config --services | while IFS= read -r s; do\n\
               c=$({compose} ps -q \"$s\" 2>/dev/null | head -n 1)\n\
               if [ -n \"$c\" ]; then\n\
                 printf '{SERVICE_MARKER}\\t%s\\t%s\\n' \"$s\" \
                 \"$(docker inspect --format '{{{{.Image}}}}\t{{{{.Config.Image}}}}' \"$c\")\"\n\
               else printf '{SERVICE_MARKER}\\t%s\\t\\t\\n' \"$s\"; fi\n\
             done"
        );
        let out = step::run(
            exec,
            "compose services",
            script,
            true,
            QUERY_TIMEOUT,
            None,
            cancel,
        )
        .await?;
        if !out.success() {
            return Err(step::failed("compose services", &out));
        }
        let probes = parse::parse_services(&out.stdout);

        if self.pull_before_update {
            let script = format!("cd -- {dir} || exit 3\n{compose} pull");
            let out = step::run(
                exec,
                "compose pull",
                script,
                true,
                REFRESH_TIMEOUT,
                lines,
                cancel,
            )
            .await?;
            if !out.success() {
                return Err(step::failed("compose pull", &out));
            }
        }

        let refs: Vec<&str> = probes
            .iter()
            .filter_map(|p| p.image_ref.as_deref())
            .collect();
        let ids = self.image_ids(exec, &refs, cancel).await?;
        let services = probes
            .into_iter()
            .map(|p| {
                let new_id = p.image_ref.as_ref().and_then(|r| {
                    ids.iter()
                        .find(|(reference, _)| reference == r)
                        .and_then(|(_, id)| id.clone())
                });
                ServiceImage {
                    service: p.service,
                    image: p.image_ref,
                    old_id: p.image_id,
                    new_id,
                }
            })
            .collect();
        Ok(ComposeReport {
            path: path.to_string(),
            services,
            recreated: false,
        })
    }

    /// [`check`](Self::check), then `up -d` when at least one service has a newer image.
    pub async fn update(
        &self,
        exec: &dyn Executor,
        path: &str,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<ComposeReport, Error> {
        let mut report = self.check(exec, path, lines, cancel).await?;
        if report.changed().next().is_none() {
            return Ok(report);
        }
        let (dir, compose) = self.compose(path);
        let script = format!("cd -- {dir} || exit 3\n{compose} up -d");
        let out = step::run(
            exec,
            "compose up",
            script,
            true,
            UPGRADE_TIMEOUT,
            lines,
            cancel,
        )
        .await?;
        if !out.success() {
            return Err(step::failed("compose up", &out));
        }
        report.recreated = true;
        Ok(report)
    }

    /// Every stack of a host in order; `dry_run` only checks. Stops at the first failure so an
    /// operator sees which stack broke before later ones are touched.
    pub async fn update_all(
        &self,
        exec: &dyn Executor,
        paths: &[String],
        dry_run: bool,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<Vec<ComposeReport>, Error> {
        let mut reports = Vec::with_capacity(paths.len());
        for path in paths {
            let report = if dry_run {
                self.check(exec, path, lines, cancel).await?
            } else {
                self.update(exec, path, lines, cancel).await?
            };
            reports.push(report);
        }
        Ok(reports)
    }

    async fn image_ids(
        &self,
        exec: &dyn Executor,
        refs: &[&str],
        cancel: &CancellationToken,
    ) -> Result<Vec<(String, Option<String>)>, Error> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let script: String = refs
            .iter()
            .map(|r| {
                let r = quote(r);
                format!(
                    "printf '{IMAGE_MARKER}\\t%s\\t%s\\n' {r} \
                     \"$(docker image inspect --format '{{{{.Id}}}}' {r} 2>/dev/null)\"\n"
                )
            })
            .collect();
        let out = step::run(exec, "image ids", script, true, QUERY_TIMEOUT, None, cancel).await?;
        if !out.success() {
            return Err(step::failed("image ids", &out));
        }
        Ok(parse::parse_images(&out.stdout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn updater(version: ComposeVersion) -> ComposeUpdater {
        ComposeUpdater::new(&DockerSettings {
            compose_version: version,
            pull_before_update: true,
        })
    }

    #[test]
    fn picks_the_binary_and_quotes_paths() {
        let v1 = updater(ComposeVersion::V1);
        assert_eq!(
            v1.compose("/opt/stacks/media"),
            ("/opt/stacks/media".into(), "docker-compose".into())
        );
        let v2 = updater(ComposeVersion::V2);
        assert_eq!(
            v2.compose("/srv/my stack/compose.yaml"),
            (
                "'/srv/my stack'".into(),
                "docker compose -f compose.yaml".into()
            )
        );
        assert_eq!(v2.compose("$(reboot)").0, "'$(reboot)'");
    }

    #[test]
    fn only_a_different_id_counts_as_changed() {
        let s = |old: Option<&str>, new: Option<&str>| ServiceImage {
            service: "web".into(),
            image: Some("web:latest".into()),
            old_id: old.map(String::from),
            new_id: new.map(String::from),
        };
        assert!(s(Some("a"), Some("b")).changed());
        assert!(!s(Some("a"), Some("a")).changed());
        assert!(!s(None, Some("a")).changed());
        assert!(!s(Some("a"), None).changed());
    }
}
