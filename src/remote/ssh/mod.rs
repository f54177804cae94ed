//! The SSH transport: an [`Executor`] over one russh connection per host.
//!
//! The connection is opened on first use and reused for every later command (one channel per
//! command, so commands may run concurrently). A connection found dead is reopened with
//! exponential backoff; after `max_attempts` straight failures the run reports
//! [`Error::Unreachable`] and the next run starts afresh. Refusals that need a person (a changed
//! or unknown host key, failed authentication, an unusable key file) are reported at once and
//! never retried. A command that was running when the connection died is never re-run: it may
//! have had effects; it fails with [`Error::Disconnected`].
//!
//! Submodules: `route` (where to connect: ~/.ssh/config, jump hosts), `connect` (handshake,
//! host key check, auth), `throttle` (how many handshakes may be in flight), `handler` (the
//! russh host key callback), `exec` (one command).

mod connect;
mod exec;
pub(crate) mod handler;
mod route;
mod throttle;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

pub(super) use route::Route;
pub use throttle::HandshakeThrottle;

use self::connect::Session;
use self::exec::RunError;
use super::context::RemoteContext;
use super::{CommandOutput, Error, Executor, OutputLine, RemoteCommand, sudo_wants_password};
use crate::config::HostConfig;
use crate::errors;

/// Runs commands on one host over SSH.
pub struct SshExecutor {
    /// The resolved route, or why it could not be resolved (reported by every run).
    route: Result<Route, String>,
    host: String,
    ctx: Arc<RemoteContext>,
    /// The open session, if any. The async mutex also makes concurrent first runs share one
    /// handshake instead of racing to open several connections.
    session: Mutex<Option<Arc<Session>>>,
}

impl std::fmt::Debug for SshExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshExecutor")
            .field("host", &self.host)
            .field("target", &self.describe())
            .finish()
    }
}

impl SshExecutor {
    pub fn new(host: &HostConfig, ctx: Arc<RemoteContext>) -> Self {
        let route = route::resolve(host, &ctx).map_err(|e| e.to_string());
        Self {
            route,
            host: host.name.to_string(),
            ctx,
            session: Mutex::new(None),
        }
    }

    /// The route this executor connects along (for `host test` and diagnostics).
    pub fn route(&self) -> Option<&Route> {
        self.route.as_ref().ok()
    }

    /// Makes sure a session is open (opening one if needed) and returns how long that took.
    /// Used by `tendhost host test` to tell reachable from auth or host key failures.
    pub async fn connect(&self, cancel: &CancellationToken) -> Result<Duration, Error> {
        let started = Instant::now();
        self.session(cancel).await?;
        Ok(started.elapsed())
    }

    fn route_or_err(&self) -> Result<&Route, Error> {
        self.route.as_ref().map_err(|message| Error::Ssh {
            target: self.host.clone(),
            message: message.clone(),
        })
    }

    /// The open session, reconnecting with backoff when there is none or it died.
    async fn session(&self, cancel: &CancellationToken) -> Result<Arc<Session>, Error> {
        let route = self.route_or_err()?;
        let mut slot = tokio::select! {
            slot = self.session.lock() => slot,
            () = cancel.cancelled() => return Err(Error::Cancelled),
        };
        if let Some(session) = slot.as_ref() {
            if !session.is_closed() {
                return Ok(session.clone());
            }
            tracing::info!(host = %self.host, "ssh connection lost; reconnecting");
            *slot = None;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let opened = tokio::select! {
                opened = connect::open(route, &self.ctx) => opened,
                () = cancel.cancelled() => return Err(Error::Cancelled),
            };
            match opened {
                Ok(session) => {
                    let session = Arc::new(session);
                    *slot = Some(session.clone());
                    return Ok(session);
                }
                Err(err) if !worth_retrying(&err) => return Err(err),
                Err(err) if attempt >= self.ctx.max_attempts => {
                    return Err(Error::Unreachable {
                        target: self.describe(),
                        attempts: attempt,
                        last: errors::chain(&err),
                    });
                }
                Err(err) => {
                    let delay = self.ctx.backoff * 2u32.saturating_pow(attempt - 1);
                    tracing::warn!(
                        host = %self.host,
                        attempt,
                        error = %errors::chain(&err),
                        "ssh connect failed; retrying in {delay:?}"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = cancel.cancelled() => return Err(Error::Cancelled),
                    }
                }
            }
        }
    }

    /// Forgets `session` if it is still the current one.
    async fn invalidate(&self, session: &Arc<Session>) {
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, session)) {
            *slot = None;
        }
    }
}

/// Network trouble is retried; refusals that need a person are not.
fn worth_retrying(err: &Error) -> bool {
    matches!(
        err,
        Error::Connect { .. } | Error::Ssh { .. } | Error::Disconnected { .. }
    )
}

#[async_trait]
impl Executor for SshExecutor {
    async fn run(
        &self,
        command: &RemoteCommand,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput, Error> {
        let route = self.route_or_err()?;
        let user = &route.target.user;
        let script = command.script_for(user == "root");
        let target = self.describe();
        // A dead connection is often noticed only when a channel fails to open: then reconnect
        // once. Nothing ran yet, so this retry is safe.
        for round in 0..2 {
            let session = self.session(cancel).await?;
            let result = exec::run(
                &session,
                &target,
                &script,
                lines,
                command.timeout,
                self.ctx.connect_timeout,
                cancel,
            )
            .await;
            let output = match result {
                Ok(output) => output,
                Err(RunError::Open(message)) => {
                    self.invalidate(&session).await;
                    if round == 0 {
                        continue;
                    }
                    return Err(Error::Disconnected { target, message });
                }
                Err(RunError::Failed(err)) => {
                    if matches!(err, Error::Disconnected { .. }) {
                        self.invalidate(&session).await;
                    }
                    return Err(err);
                }
            };
            if command.privileged
                && output.exit_code == Some(1)
                && sudo_wants_password(&output.stderr)
            {
                return Err(Error::SudoNeedsPassword {
                    target,
                    user: user.clone(),
                });
            }
            return Ok(output);
        }
        unreachable!("the loop returns on its second round")
    }

    fn describe(&self) -> String {
        match &self.route {
            Ok(route) => route.target.describe(),
            Err(_) => self.host.clone(),
        }
    }

    async fn disconnect(&self) {
        let session = self.session.lock().await.take();
        if let Some(session) = session {
            let _ = session
                .handle
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        }
    }
}
