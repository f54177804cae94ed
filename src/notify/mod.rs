//! Notifications (`[[notify]]`): tell a person when a wave finishes or halts, a host fails or
//! needs a reboot it may not take now, or a schedule is skipped; and the `[audit] webhook`,
//! which shares the HTTP delivery.
//!
//! - [`fold`]: events into [`Notice`]s, tapped in the engine's hub (one mechanism for the console
//!   and `--batch`).
//! - [`deliver`]: the notifier task, its bounded queue, retries and shutdown grace.
//! - [`message`]: the text and each service's body; [`http`], [`email`], [`command`]: the
//!   transports; [`secret`]: tokens and passwords read from env or file, never printed.

mod command;
mod deliver;
mod email;
mod fold;
pub(crate) mod http;
mod message;
mod secret;

pub use command::CommandError;
pub(crate) use deliver::hidden_vars;
pub use deliver::{DeliveryError, Notifier, SHUTDOWN_GRACE};
pub use email::EmailError;
pub use fold::{Folder, REBOOTING_NOW};
pub use http::HttpError;
pub use message::{Notice, NoticeHost};
pub use secret::SecretError;

use crate::config::{Config, NoticeKind};

/// Why `tendhost notify test NAME` did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("no notifier named '{name}'{hint}")]
    Unknown { name: String, hint: String },
    #[error("notifier '{name}' ({kind}): not delivered after {attempts} attempt(s)")]
    Failed {
        name: String,
        kind: &'static str,
        attempts: u32,
        #[source]
        source: DeliveryError,
    },
}

/// Delivers one notice for a command that runs no engine (a scheduled run that did not start):
/// the same notifier task, retries and bounds as an engine's, waited for before returning.
/// Failures are logged; a config with no notifier that wants `notice` costs nothing.
pub fn deliver_now(config: &Config, notice: Notice) {
    if !config.notify.iter().any(|n| n.on.contains(&notice.kind)) {
        return;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::warn!("notifications: starting a runtime: {err}");
            return;
        }
    };
    runtime.block_on(async {
        let tracker = tokio_util::task::TaskTracker::new();
        let notifier = Notifier::spawn(
            &config.notify,
            crate::store::audit::AuditSink::disabled(),
            tokio_util::sync::CancellationToken::new(),
            &tracker,
        );
        notifier.send(notice);
        // The task ends once its last sender is gone and the queue is delivered.
        drop(notifier);
        tracker.close();
        tracker.wait().await;
    });
}

/// `tendhost notify test NAME`: sends a test message through that notifier now, with the same
/// retries as any notice. Returns how many attempts it took.
pub async fn send_test(config: &Config, name: &str) -> Result<u32, TestError> {
    let Some(notifier) = config.notify.iter().find(|n| n.name == name) else {
        let names: Vec<&str> = config.notify.iter().map(|n| n.name.as_str()).collect();
        let hint = if names.is_empty() {
            " (tendhost.toml has no [[notify]])".to_string()
        } else {
            crate::config::suggest::did_you_mean(name, &names)
        };
        return Err(TestError::Unknown {
            name: name.to_string(),
            hint,
        });
    };
    let hide = deliver::hidden_vars(&config.notify);
    let notice = Notice::test(name);
    debug_assert_eq!(notice.kind, NoticeKind::Test);
    deliver::deliver(notifier, &notice, &hide, || None)
        .await
        .map_err(|(source, attempts)| TestError::Failed {
            name: name.to_string(),
            kind: notifier.kind(),
            attempts,
            source,
        })
}
