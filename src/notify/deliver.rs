//! The notifier task: notices come in through a bounded queue the engine only ever `try_send`s
//! to (a full queue drops the notice and counts it, it never holds up a wave), and each goes to
//! every notifier that wants it, all at once, each attempt bounded by the notifier's `timeout`
//! and retried with backoff. A failure is logged and written to the audit log; it never fails
//! anything else.
//!
//! At shutdown the task keeps going for [`SHUTDOWN_GRACE`] so a `--batch wave` started by a
//! timer still sends its "wave finished" before the process exits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::command::{self, CommandError};
use super::email::{self, EmailError};
use super::http::{self, HttpError, Post};
use super::message::{self, Notice};
use super::secret::{self, SecretError};
use crate::config::{NotifyConfig, NotifyTarget, SecretSource, UrlSource};
use crate::store::audit::{AuditRecord, AuditSink};

/// Notices waiting for the task: a few waves' worth; past that something is badly stuck and
/// dropping is better than holding memory or the engine.
const QUEUE: usize = 64;
/// How long pending deliveries may go on once tendhost is stopping.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why one delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("reading the {what}")]
    Secret {
        what: &'static str,
        #[source]
        source: SecretError,
    },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Email(#[from] EmailError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("not sent: tendhost stopped before it could be")]
    Stopped,
}

impl http::Transient for DeliveryError {
    fn worth_retrying(&self) -> bool {
        match self {
            DeliveryError::Http(err) => err.worth_retrying(),
            // A server that did not answer may answer next time; a bad message or a missing
            // password will not get better.
            DeliveryError::Email(err) => {
                matches!(err, EmailError::Smtp { .. } | EmailError::Timeout(_))
            }
            DeliveryError::Secret { .. } | DeliveryError::Command(_) | DeliveryError::Stopped => {
                false
            }
        }
    }
}

/// The engine's end of the notifier task. Cheap to clone; disabled (no `[[notify]]`) it drops
/// everything at no cost.
#[derive(Debug, Clone)]
pub struct Notifier {
    queue: Option<mpsc::Sender<Notice>>,
    dropped: Arc<AtomicU64>,
}

impl Notifier {
    pub fn disabled() -> Self {
        Notifier {
            queue: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Starts the task delivering to `notifiers` (disabled when there are none). It stops once
    /// every `Notifier` is dropped and the queue is empty, or [`SHUTDOWN_GRACE`] after
    /// `stopping` is cancelled, whichever is first.
    pub fn spawn(
        notifiers: &[NotifyConfig],
        audit: AuditSink,
        stopping: CancellationToken,
        tracker: &TaskTracker,
    ) -> Self {
        if notifiers.is_empty() {
            return Notifier::disabled();
        }
        let (queue, incoming) = mpsc::channel(QUEUE);
        let task = Task {
            notifiers: notifiers.into(),
            hide: hidden_vars(notifiers).into(),
            audit,
            stopping,
            deadline: Arc::new(OnceLock::new()),
        };
        tracker.spawn(task.run(incoming));
        Notifier {
            queue: Some(queue),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues `notice` without waiting; a full queue drops it, counted and logged.
    pub fn send(&self, notice: Notice) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(notice) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(notice)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    "notifications are backed up: dropped '{}' ({dropped} dropped so far)",
                    notice.summary
                );
            }
            // The task is gone only at shutdown, past its grace period.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Every environment variable a notifier reads a secret from: no child may inherit them.
pub(crate) fn hidden_vars(notifiers: &[NotifyConfig]) -> Vec<String> {
    let mut vars = Vec::new();
    let mut add = |source: &Option<SecretSource>| {
        if let Some(SecretSource::Env(name)) = source {
            vars.push(name.clone());
        }
    };
    for n in notifiers {
        match &n.target {
            NotifyTarget::Ntfy { token, .. } => add(token),
            NotifyTarget::Webhook { url, token } => {
                add(token);
                if let UrlSource::Secret(s) = url {
                    add(&Some(s.clone()));
                }
            }
            NotifyTarget::Slack { url } | NotifyTarget::Discord { url } => {
                if let UrlSource::Secret(s) = url {
                    add(&Some(s.clone()));
                }
            }
            NotifyTarget::Email { password, .. } => add(password),
            NotifyTarget::Sendmail { .. } | NotifyTarget::Command { .. } => {}
        }
    }
    vars.sort();
    vars.dedup();
    vars
}

struct Task {
    notifiers: Arc<[NotifyConfig]>,
    hide: Arc<[String]>,
    audit: AuditSink,
    stopping: CancellationToken,
    /// Set the first time a delivery sees `stopping` cancelled.
    deadline: Arc<OnceLock<Instant>>,
}

impl Task {
    async fn run(self, mut incoming: mpsc::Receiver<Notice>) {
        while let Some(notice) = incoming.recv().await {
            let wanted = self.notifiers.iter().filter(|n| n.wants(notice.kind));
            let deliveries = wanted.map(|n| self.deliver_logged(n, &notice));
            futures::future::join_all(deliveries).await;
        }
    }

    async fn deliver_logged(&self, notifier: &NotifyConfig, notice: &Notice) {
        let stopping = self.stopping.clone();
        let deadline = self.deadline.clone();
        let at = move || {
            stopping
                .is_cancelled()
                .then(|| *deadline.get_or_init(|| Instant::now() + SHUTDOWN_GRACE))
        };
        match deliver(notifier, notice, &self.hide, at).await {
            Ok(1) => {}
            Ok(tries) => tracing::info!(
                "notifier '{}': {} delivered after {tries} attempts",
                notifier.name,
                notice.kind.as_str()
            ),
            Err((err, tries)) => {
                let why = crate::errors::chain(&err);
                tracing::warn!(
                    "notifier '{}' ({}): {} not delivered ({tries} attempt(s)): {why}",
                    notifier.name,
                    notifier.kind(),
                    notice.kind.as_str()
                );
                let detail = format!("{}: {}: {why}", notifier.name, notice.kind.as_str());
                self.audit
                    .record(AuditRecord::new("notify", None, "failed", Some(&detail)))
                    .await;
            }
        }
    }
}

/// Delivers `notice` through `notifier`, retrying as [`http::retry`] does (a command hook runs
/// once: it is local, and running it twice may page twice). `deadline` gives the time left
/// (`None`: not stopping). Returns how many attempts it took, or the last error with that count.
pub(crate) async fn deliver(
    notifier: &NotifyConfig,
    notice: &Notice,
    hide: &[String],
    deadline: impl Fn() -> Option<Instant>,
) -> Result<u32, (DeliveryError, u32)> {
    if let NotifyTarget::Command { .. } = notifier.target {
        let once = async { deliver_once(notifier, notice, hide).await };
        return match deadline() {
            Some(at) => match tokio::time::timeout_at(at, once).await {
                Ok(result) => result.map(|()| 1).map_err(|e| (e, 1)),
                Err(_) => Err((DeliveryError::Stopped, 1)),
            },
            None => once.await.map(|()| 1).map_err(|e| (e, 1)),
        };
    }
    http::retry(deadline, DeliveryError::Stopped, || {
        deliver_once(notifier, notice, hide)
    })
    .await
}

/// One attempt.
async fn deliver_once(
    notifier: &NotifyConfig,
    notice: &Notice,
    hide: &[String],
) -> Result<(), DeliveryError> {
    let timeout = notifier.timeout;
    let secret = |what: &'static str, source: &SecretSource| {
        secret::read(source).map_err(|source| DeliveryError::Secret { what, source })
    };
    let url = |source: &UrlSource| {
        secret::url(source).map_err(|source| DeliveryError::Secret {
            what: "webhook URL",
            source,
        })
    };
    let json = |url, bearer, body| Post {
        url,
        content_type: "application/json",
        headers: Vec::new(),
        bearer,
        body,
        timeout,
    };
    let post = match &notifier.target {
        NotifyTarget::Ntfy {
            server,
            topic,
            token,
        } => Post {
            url: secret::Secret::public(format!("{server}/{topic}")),
            content_type: "text/plain; charset=utf-8",
            headers: message::ntfy_headers(notice),
            bearer: token
                .as_ref()
                .map(|t| secret("ntfy token", t))
                .transpose()?,
            body: message::ntfy_body(notice),
            timeout,
        },
        NotifyTarget::Webhook { url: u, token } => json(
            url(u)?,
            token
                .as_ref()
                .map(|t| secret("webhook token", t))
                .transpose()?,
            message::webhook_body(notice),
        ),
        NotifyTarget::Slack { url: u } => json(url(u)?, None, message::slack_body(notice)),
        NotifyTarget::Discord { url: u } => json(url(u)?, None, message::discord_body(notice)),
        NotifyTarget::Email {
            smtp_host,
            smtp_port,
            tls,
            from,
            to,
            username,
            password,
        } => {
            let mail = email::message(notice, from, to)?;
            let smtp = email::Smtp {
                host: smtp_host,
                port: *smtp_port,
                tls: *tls,
                username: username.as_deref(),
                password: password.as_ref(),
            };
            return Ok(email::send_smtp(&smtp, mail, timeout).await?);
        }
        NotifyTarget::Sendmail { sendmail, from, to } => {
            let mail = email::message(notice, from, to)?;
            return Ok(email::send_sendmail(sendmail, mail, from, to, timeout, hide).await?);
        }
        NotifyTarget::Command { command: line } => {
            return Ok(command::run(command::Child {
                label: line,
                program: "/bin/sh".as_ref(),
                args: vec!["-c".to_string(), line.clone()],
                env: command::hook_env(notice, &notifier.name),
                stdin: notice.text().into_bytes(),
                timeout,
                hide,
            })
            .await?);
        }
    };
    Ok(http::post(post).await?)
}
