//! Docker Compose stacks: show which image each service runs ([`ComposeUpdater::inspect`]), pull
//! newer images and tell which services would change ([`ComposeUpdater::check`]), and recreate
//! (`up -d`) only those, checking afterwards that they really run the new image
//! ([`ComposeUpdater::recreate`]; [`ComposeUpdater::update`] is both). Every service is
//! recorded by image id and digest, before and after, in a [`StackReport`]; its
//! [`ServiceChange`]s are what a rollback needs.
//!
//! Speaks only through [`Executor`]; every path, service and reference is passed through
//! `quote` (see `command`). Knows nothing of apt or dnf, nor of the engine that calls it: a
//! stack is updated the same way on any host. Every error names the stack, and the service
//! where one is to blame ([`Error::Compose`]).

mod command;
mod ledger;
mod report;

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::command::RollbackStep;
pub(crate) use self::command::{HEALTH_CONTAINER_MARKER, HEALTH_SERVICE_MARKER, health_probe};
use self::command::{StackCommand, images_script, retag_script};
pub use self::ledger::{Rejected, RollbackLedger, RollbackPreview};
use self::report::verify_running;
pub use self::report::{
    HeldService, Hold, ImageRef, ServiceChange, ServiceImage, StackReport,
    short_id as short_image_id,
};
use super::Error;
use super::parse::compose::{self as parse, ImageProbe, StackProbe, find_image};
use super::step::{self, Step};
use crate::config::{ComposeVersion, DockerSettings};
use crate::remote::{Executor, OutputLine};

/// Inspects and updates the compose stacks of one host, per its `[host.docker]` settings.
#[derive(Debug, Clone, Copy)]
pub struct ComposeUpdater {
    version: ComposeVersion,
    pull_before_update: bool,
    /// `[host.docker] min_image_age`: images built more recently are held for a later run.
    min_image_age: Option<Duration>,
}

/// Wraps an error of the stack at `path` (and `service`, when one is to blame).
fn in_stack(path: &str, service: Option<&str>) -> impl FnOnce(Error) -> Error {
    let (path, service) = (path.to_string(), service.map(str::to_string));
    move |source| Error::Compose {
        path,
        service,
        source: Box::new(source),
    }
}

/// Runs a read-only probe of the stack at `path` (as root: the docker socket is root's) and
/// returns what it printed.
async fn query(
    exec: &dyn Executor,
    path: &str,
    step: &'static str,
    script: String,
    cancel: &CancellationToken,
) -> Result<String, Error> {
    Step::query(step, script)
        .privileged()
        .run_ok(exec, cancel)
        .await
        .map(|out| out.stdout)
        .map_err(in_stack(path, None))
}

impl ComposeUpdater {
    pub fn new(settings: &DockerSettings) -> Self {
        Self {
            version: settings.compose_version,
            pull_before_update: settings.pull_before_update,
            min_image_age: settings.min_image_age,
        }
    }

    /// Read-only (no pull, no `up`): the stack's services, what each runs, and what its
    /// reference points at on the host now. For inventory refreshes.
    pub async fn inspect(
        &self,
        exec: &dyn Executor,
        path: &str,
        cancel: &CancellationToken,
    ) -> Result<StackReport, Error> {
        let stack = StackCommand::new(self.version, path);
        let probe = self.probe(exec, path, &stack, cancel).await?;
        Ok(StackReport::new(path, &probe, &probe.images))
    }

    /// The script [`inspect`](Self::inspect) runs for the stack at `path`, for a survey that
    /// reads every stack of a host in one round trip; [`inspected`](Self::inspected) reads
    /// what it printed.
    pub(crate) fn inspect_script(&self, path: &str) -> String {
        StackCommand::new(self.version, path).probe()
    }

    /// The stack at `path` as [`inspect_script`](Self::inspect_script) found it: `output` is
    /// its stdout and stderr, `exit` its status.
    pub(crate) fn inspected(
        &self,
        path: &str,
        output: &str,
        exit: Option<i32>,
    ) -> Result<StackReport, Error> {
        if exit.is_some_and(|code| code != 0) {
            let out = crate::remote::CommandOutput {
                exit_code: exit.and_then(|c| u32::try_from(c).ok()),
                stderr: output.to_string(),
                ..Default::default()
            };
            return Err(in_stack(path, None)(step::failed("compose services", &out)));
        }
        let probe = parse::parse_stack(output);
        Ok(StackReport::new(path, &probe, &probe.images))
    }

    /// Pulls (when `pull_before_update`) and compares image ids; changes nothing that runs.
    /// What a dry run shows. A service whose new image is `rejected` (rolled back from) or
    /// younger than `min_image_age` is held: its tag is pointed back at what it runs, so only
    /// the services an update should move show as changed.
    pub async fn check(
        &self,
        exec: &dyn Executor,
        path: &str,
        rejected: &[Rejected],
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<StackReport, Error> {
        let stack = StackCommand::new(self.version, path);
        let probe = self.probe(exec, path, &stack, cancel).await?;
        let available = if self.pull_before_update {
            self.pull(exec, path, &stack, &probe.services, lines, cancel)
                .await?;
            let mut references: Vec<&str> = probe
                .containers
                .iter()
                .filter_map(|c| c.image_ref.as_deref())
                .collect();
            references.sort_unstable();
            references.dedup();
            if references.is_empty() {
                Vec::new()
            } else {
                let out =
                    query(exec, path, "image ids", images_script(&references), cancel).await?;
                parse::parse_images(&out)
            }
        } else {
            probe.images.clone()
        };
        let mut report = StackReport::new(path, &probe, &available);
        self.hold(&mut report, &available, rejected, Utc::now());
        let tags: Vec<(&str, &str)> = report
            .held()
            .filter_map(|(s, _)| Some((s.running.as_ref()?.id.as_str(), s.image.as_deref()?)))
            .collect();
        if !tags.is_empty() {
            query(exec, path, "compose hold", retag_script(&tags), cancel).await?;
        }
        Ok(report)
    }

    /// Marks the services of `report` whose new image must wait (see [`Hold`]).
    fn hold(
        &self,
        report: &mut StackReport,
        available: &[ImageProbe],
        rejected: &[Rejected],
        now: DateTime<Utc>,
    ) {
        for service in &mut report.services {
            let (Some(running), Some(new)) = (&service.running, &service.available) else {
                continue;
            };
            if running.id == new.id {
                continue;
            }
            let rolled_back = rejected.iter().any(|r| {
                r.path == report.path && r.service == service.service && r.image == new.id
            });
            let created = service
                .image
                .as_deref()
                .and_then(|reference| find_image(available, reference)?.created);
            service.held = if rolled_back {
                Some(Hold::RolledBack)
            } else {
                match (self.min_image_age, created) {
                    (Some(min), Some(created))
                        if (now - created).to_std().unwrap_or_default() < min =>
                    {
                        Some(Hold::TooNew { created })
                    }
                    _ => None,
                }
            };
        }
    }

    /// [`check`](Self::check), then [`recreate`](Self::recreate).
    pub async fn update(
        &self,
        exec: &dyn Executor,
        path: &str,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<StackReport, Error> {
        let report = self.check(exec, path, &[], lines, cancel).await?;
        self.recreate(exec, report, lines, cancel).await
    }

    /// `up -d` of the services a [`check`](Self::check) found with a different image (nothing
    /// runs when there are none), then a fresh look proving each of them runs it. The returned
    /// report is `recreated` when `up -d` ran.
    pub async fn recreate(
        &self,
        exec: &dyn Executor,
        mut report: StackReport,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<StackReport, Error> {
        let changed: Vec<&str> = report.changed().map(|s| s.service.as_str()).collect();
        if changed.is_empty() {
            return Ok(report);
        }
        let path = report.path.as_str();
        let stack = StackCommand::new(self.version, path);
        let services: Vec<String> = report.services.iter().map(|s| s.service.clone()).collect();
        let label = "compose up";
        self.run_up(
            exec,
            path,
            label,
            stack.up(&changed),
            &services,
            &changed,
            lines,
            cancel,
        )
        .await?;
        let after = self.probe(exec, path, &stack, cancel).await?;
        report.verify(&after)?;
        report.recreated = true;
        Ok(report)
    }

    /// What rolling back `points` (rollback points of the stack at `path`) would do, looked up
    /// on the host without changing it: per service the reference to put back, what it runs
    /// now, and whether its old image must be pulled by digest first. Fails naming a service
    /// that has no container (its reference is unknown) or whose old image is gone and was
    /// never known by a digest.
    pub async fn rollback_plan(
        &self,
        exec: &dyn Executor,
        path: &str,
        points: &[ServiceChange],
        cancel: &CancellationToken,
    ) -> Result<Vec<RollbackStep>, Error> {
        let stack = StackCommand::new(self.version, path);
        let probe = self.probe(exec, path, &stack, cancel).await?;
        let olds: Vec<&str> = points
            .iter()
            .filter_map(|p| Some(p.from.as_ref()?.id.as_str()))
            .collect();
        let present = if olds.is_empty() {
            Vec::new()
        } else {
            let out = query(exec, path, "image ids", images_script(&olds), cancel).await?;
            parse::parse_images(&out)
        };
        points
            .iter()
            .map(|point| {
                let blame = |source: Error| in_stack(path, Some(&point.service))(source);
                let Some(restore) = point.from.clone() else {
                    return Err(blame(Error::NoRollback(
                        "the update created it: there is no earlier image".into(),
                    )));
                };
                let container = probe.containers_of(&point.service).next();
                let Some(reference) = container.and_then(|c| c.image_ref.clone()) else {
                    return Err(blame(Error::NoRollback(
                        "it has no container, so its image reference is unknown".into(),
                    )));
                };
                let here = find_image(&present, &restore.id).is_some_and(|i| i.id.is_some());
                let pull = match (here, &restore.digest) {
                    (true, _) => None,
                    (false, Some(digest)) => Some(digest.clone()),
                    (false, None) => {
                        return Err(blame(Error::NoRollback(format!(
                            "its old image '{}' is gone from the host and was never pulled \
                             by a digest it could be fetched by again",
                            restore.id
                        ))));
                    }
                };
                Ok(RollbackStep {
                    path: path.to_string(),
                    service: point.service.clone(),
                    reference,
                    running: container.map(|c| c.image_id.clone()),
                    restore,
                    pull,
                })
            })
            .collect()
    }

    /// Rolls back `steps` (from [`rollback_plan`](Self::rollback_plan), all of the stack at
    /// `path`): each reference back on its old image, `up -d` of those services, then a fresh
    /// look proving each runs it. Returns the stack as that look saw it.
    pub async fn rollback(
        &self,
        exec: &dyn Executor,
        path: &str,
        steps: &[RollbackStep],
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<StackReport, Error> {
        let stack = StackCommand::new(self.version, path);
        let services: Vec<String> = steps.iter().map(|s| s.service.clone()).collect();
        let asked: Vec<&str> = services.iter().map(String::as_str).collect();
        let script = stack.rollback(steps);
        self.run_up(
            exec,
            path,
            "compose rollback",
            script,
            &services,
            &asked,
            lines,
            cancel,
        )
        .await?;
        let after = self.probe(exec, path, &stack, cancel).await?;
        verify_running(
            path,
            &after,
            steps
                .iter()
                .map(|s| (s.service.as_str(), s.restore.id.as_str())),
        )?;
        Ok(StackReport::new(path, &after, &after.images))
    }

    /// Runs `script`, which ends in an `up -d` of `asked`, as the detached job `label`. On
    /// failure the error names the service compose blamed among `services`, else the only one
    /// asked for.
    #[allow(clippy::too_many_arguments)] // one call's facts; a struct would only rename them
    async fn run_up(
        &self,
        exec: &dyn Executor,
        path: &str,
        label: &'static str,
        script: String,
        services: &[String],
        asked: &[&str],
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let out = Step::upgrade(label, script)
            .privileged()
            .streaming(lines)
            .run(exec, cancel)
            .await
            .map_err(in_stack(path, None))?;
        if out.success() {
            return Ok(());
        }
        let blamed = parse::blamed_service(&format!("{}\n{}", out.stderr, out.stdout), services)
            .map(String::as_str)
            .or(match asked {
                [only] => Some(*only),
                _ => None,
            });
        Err(in_stack(path, blamed)(step::failed(label, &out)))
    }

    /// Runs the stack probe (see [`StackCommand::probe`]).
    async fn probe(
        &self,
        exec: &dyn Executor,
        path: &str,
        stack: &StackCommand,
        cancel: &CancellationToken,
    ) -> Result<StackProbe, Error> {
        let out = query(exec, path, "compose services", stack.probe(), cancel).await?;
        Ok(parse::parse_stack(&out))
    }

    /// Pulls the whole stack at once (compose pulls in parallel). When that fails, each service
    /// is pulled alone, so the error names the one whose image cannot be had.
    async fn pull(
        &self,
        exec: &dyn Executor,
        path: &str,
        stack: &StackCommand,
        services: &[String],
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let pull = |service: Option<&str>| {
            Step::refresh("compose pull", stack.pull(service))
                .detached()
                .streaming(lines)
                .run_ok(exec, cancel)
        };
        let whole = match pull(None).await {
            Ok(_) => return Ok(()),
            // The transport failed: pulling service by service would fail the same way.
            Err(e @ Error::Remote { .. }) => return Err(in_stack(path, None)(e)),
            Err(e) => e,
        };
        for service in services {
            pull(Some(service))
                .await
                .map_err(in_stack(path, Some(service)))?;
        }
        // Every service pulled alone: the whole pull failed for a passing reason.
        tracing::warn!(path, error = %whole, "compose pull failed, then each service pulled");
        Ok(())
    }
}
