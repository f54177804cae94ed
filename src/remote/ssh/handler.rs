//! The russh client handler: decides whether a server's host key is trusted, and records why,
//! so the connector can turn a refusal into [`super::super::Error::HostKeyUnknown`] or
//! `HostKeyChanged` with both fingerprints.
//!
//! The check runs during the key exchange, before authentication: a refused key means no
//! credential was offered and no command was sent.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use russh::client::Handler;
use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::PublicKey;

use crate::config::KnownHostsPolicy;
use crate::remote::known_hosts::{self, Verdict};

/// Serialises check-then-learn across connections, so two first connections to one host do
/// not both append it.
static LEARN_LOCK: Mutex<()> = Mutex::new(());

/// Where and how to check one endpoint's key.
#[derive(Debug, Clone)]
pub(crate) struct HostKeyCheck {
    pub addr: String,
    pub port: u16,
    /// tendhost's own known_hosts: read, and appended to under `accept-new`.
    pub own: PathBuf,
    /// Read-only files (e.g. `~/.ssh/known_hosts`).
    pub extra: Vec<PathBuf>,
    pub policy: KnownHostsPolicy,
}

impl HostKeyCheck {
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.own.clone()];
        files.extend(self.extra.iter().cloned());
        files
    }
}

/// What happened to the server's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyOutcome {
    Trusted,
    /// Learned under `accept-new`.
    Learned {
        fingerprint: String,
    },
    Unknown {
        fingerprint: String,
    },
    Changed {
        expected: String,
        got: String,
        location: String,
    },
    Revoked {
        fingerprint: String,
        location: String,
    },
    /// The server offered a certificate; tendhost trusts plain keys only.
    Certificate,
    /// `accept-new` could not write the key down, so it is not trusted either.
    LearnFailed {
        fingerprint: String,
        message: String,
    },
    /// An entry naming this host cannot be parsed (`file:line`).
    Malformed {
        location: String,
    },
    /// A known_hosts file cannot be read, so no verdict is possible.
    Unreadable(known_hosts::Unreadable),
}

/// One per connection attempt.
pub(crate) struct ClientHandler {
    check: HostKeyCheck,
    outcome: Arc<Mutex<Option<KeyOutcome>>>,
}

impl ClientHandler {
    /// The handler plus a slot where the host key outcome appears.
    pub(crate) fn new(check: HostKeyCheck) -> (Self, Arc<Mutex<Option<KeyOutcome>>>) {
        let outcome = Arc::new(Mutex::new(None));
        (
            Self {
                check,
                outcome: outcome.clone(),
            },
            outcome,
        )
    }

    fn decide(&self, key: &PublicKey) -> KeyOutcome {
        // Poisoning only means another check panicked; the files are still consistent.
        let _guard = LEARN_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let got = known_hosts::fingerprint(key);
        let verdict =
            match known_hosts::check(&self.check.files(), &self.check.addr, self.check.port, key) {
                Ok(verdict) => verdict,
                Err(unreadable) => return KeyOutcome::Unreadable(unreadable),
            };
        match verdict {
            Verdict::Trusted => KeyOutcome::Trusted,
            Verdict::Malformed { location } => KeyOutcome::Malformed { location },
            Verdict::Changed { expected, location } => KeyOutcome::Changed {
                expected,
                got,
                location,
            },
            Verdict::Revoked { location } => KeyOutcome::Revoked {
                fingerprint: got,
                location,
            },
            Verdict::Unknown => match self.check.policy {
                KnownHostsPolicy::Strict => KeyOutcome::Unknown { fingerprint: got },
                KnownHostsPolicy::AcceptNew => {
                    match known_hosts::learn(
                        &self.check.own,
                        &self.check.addr,
                        self.check.port,
                        key,
                    ) {
                        Ok(()) => {
                            tracing::info!(
                                host = %known_hosts::host_name(&self.check.addr, self.check.port),
                                fingerprint = %got,
                                "learned a new host key"
                            );
                            KeyOutcome::Learned { fingerprint: got }
                        }
                        Err(e) => KeyOutcome::LearnFailed {
                            fingerprint: got,
                            message: e.to_string(),
                        },
                    }
                }
            },
        }
    }
}

impl Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let outcome = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.decide(key),
            PublicKeyOrCertificate::Certificate(_) => KeyOutcome::Certificate,
        };
        let trusted = matches!(outcome, KeyOutcome::Trusted | KeyOutcome::Learned { .. });
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        Ok(trusted)
    }
}
