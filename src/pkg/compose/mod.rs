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
mod report;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) use self::command::{HEALTH_CONTAINER_MARKER, HEALTH_SERVICE_MARKER, health_probe};
use self::command::{StackCommand, images_script};
pub use self::report::{ImageRef, ServiceChange, ServiceImage, StackReport};
use super::Error;
use super::parse::compose::{self as parse, StackProbe};
use super::step::{self, Step};
use crate::config::{ComposeVersion, DockerSettings};
use crate::remote::{Executor, OutputLine};

/// Inspects and updates the compose stacks of one host, per its `[host.docker]` settings.
#[derive(Debug, Clone, Copy)]
pub struct ComposeUpdater {
    version: ComposeVersion,
    pull_before_update: bool,
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
    /// What a dry run shows.
    pub async fn check(
        &self,
        exec: &dyn Executor,
        path: &str,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<StackReport, Error> {
        let stack = StackCommand::new(self.version, path);
        let probe = self.probe(exec, path, &stack, cancel).await?;
        if !self.pull_before_update {
            return Ok(StackReport::new(path, &probe, &probe.images));
        }
        self.pull(exec, path, &stack, &probe.services, lines, cancel)
            .await?;
        let mut references: Vec<&str> = probe
            .containers
            .iter()
            .filter_map(|c| c.image_ref.as_deref())
            .collect();
        references.sort_unstable();
        references.dedup();
        let pulled = if references.is_empty() {
            Vec::new()
        } else {
            let out = query(exec, path, "image ids", images_script(&references), cancel).await?;
            parse::parse_images(&out)
        };
        Ok(StackReport::new(path, &probe, &pulled))
    }

    /// [`check`](Self::check), then [`recreate`](Self::recreate).
    pub async fn update(
        &self,
        exec: &dyn Executor,
        path: &str,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<StackReport, Error> {
        let report = self.check(exec, path, lines, cancel).await?;
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
        let script = stack.up(&changed);
        let out = Step::upgrade("compose up", script)
            .privileged()
            .streaming(lines)
            .run(exec, cancel)
            .await
            .map_err(in_stack(path, None))?;
        if !out.success() {
            // compose names the service that failed; else, with one service asked for, it is
            // that one.
            let services: Vec<String> = report.services.iter().map(|s| s.service.clone()).collect();
            let blamed =
                parse::blamed_service(&format!("{}\n{}", out.stderr, out.stdout), &services)
                    .map(String::as_str)
                    .or(match changed.as_slice() {
                        [only] => Some(*only),
                        _ => None,
                    });
            return Err(in_stack(path, blamed)(step::failed("compose up", &out)));
        }
        let after = self.probe(exec, path, &stack, cancel).await?;
        report.verify(&after)?;
        report.recreated = true;
        Ok(report)
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
