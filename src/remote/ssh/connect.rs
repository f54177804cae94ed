//! Opening one authenticated SSH session along a [`Route`]: TCP (or a direct-tcpip channel
//! through the previous jump host), key exchange with the host key check, then authentication.
//!
//! Everything here is bounded by the context's connect timeout, which starts once the
//! handshake throttle lets this endpoint's turn begin: waiting in that queue is not the host's
//! fault. A refused host key stops the handshake before any credential is offered or any
//! command sent.

use std::borrow::Cow;
use std::io;
use std::sync::{Arc, Mutex};

use russh::client::{self, Handle};
use russh::keys::Algorithm;
use russh::{Preferred, kex};
use tokio::net::TcpStream;

use super::handler::{ClientHandler, HostKeyCheck, KeyOutcome};
use super::route::{Endpoint, Route};
use crate::remote::context::RemoteContext;
use crate::remote::{Error, auth, known_hosts};

/// An authenticated connection. Channels are opened on `handle`; `via` keeps the jump host's
/// session (and so the tunnel) alive exactly as long as this one.
pub(super) struct Session {
    pub handle: Handle<ClientHandler>,
    via: Option<Arc<Session>>,
}

impl Session {
    /// True once the connection (or any jump it relies on) is gone.
    pub(super) fn is_closed(&self) -> bool {
        self.handle.is_closed() || self.via.as_ref().is_some_and(|v| v.is_closed())
    }
}

/// Key exchange order unless `[ssh] kex` says otherwise: curve25519 first. It costs a fraction
/// of the post-quantum hybrids (measured against OpenSSH 9.2: README "Connecting to many
/// hosts"), which matters when a fleet connects at once. The ML-KEM hybrid follows for servers
/// that insist on it; an operator who wants it first lists it first in `[ssh] kex`.
const KEX_ORDER: &[kex::Name] = &[
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::MLKEM768X25519_SHA256,
    kex::DH_GEX_SHA256,
    kex::DH_G16_SHA512,
    kex::DH_G14_SHA256,
    kex::EXTENSION_SUPPORT_AS_CLIENT,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
];

/// Opens the route's jumps in order, then the target through them.
pub(super) async fn open(route: &Route, ctx: &RemoteContext) -> Result<Session, Error> {
    let mut via: Option<Arc<Session>> = None;
    for hop in &route.jumps {
        via = Some(Arc::new(open_endpoint(hop, via, ctx).await?));
    }
    open_endpoint(&route.target, via, ctx).await
}

async fn open_endpoint(
    endpoint: &Endpoint,
    via: Option<Arc<Session>>,
    ctx: &RemoteContext,
) -> Result<Session, Error> {
    let target = endpoint.describe();
    let check = HostKeyCheck {
        addr: endpoint.addr.clone(),
        port: endpoint.port,
        own: ctx.known_hosts.clone(),
        extra: ctx.extra_known_hosts.clone(),
        policy: ctx.policy,
    };
    let config = Arc::new(
        client_config(ctx, &check).map_err(|unreadable| unreadable_error(unreadable, &target))?,
    );
    let (handler, outcome) = ClientHandler::new(check);
    let timed_out = || Error::Connect {
        target: target.clone(),
        source: io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {:?}", ctx.connect_timeout),
        ),
    };

    // One permit per hop, keyed by the sshd it talks to, held through TCP (or the tunnel), key
    // exchange and authentication (agent signatures included); the tunnel through a jump host
    // is that jump's sshd's work only while the jump's own handshake runs, which had its own.
    let queued = std::time::Instant::now();
    let _permit = ctx
        .handshakes
        .acquire(&format!("{}:{}", endpoint.addr, endpoint.port))
        .await;
    let waited = queued.elapsed();
    if waited > std::time::Duration::from_millis(100) {
        tracing::debug!(%target, ?waited, "waited for a handshake slot");
    }
    let handshake = async {
        let result = match &via {
            None => {
                let stream = TcpStream::connect((endpoint.addr.as_str(), endpoint.port))
                    .await
                    .map_err(|source| Error::Connect {
                        target: target.clone(),
                        source,
                    })?;
                // Small request/response packets: Nagle only adds latency.
                let _ = stream.set_nodelay(true);
                client::connect_stream(config, stream, handler).await
            }
            Some(jump) => {
                let channel = jump
                    .handle
                    .channel_open_direct_tcpip(
                        endpoint.addr.clone(),
                        u32::from(endpoint.port),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|e| Error::Ssh {
                        target: target.clone(),
                        message: format!("jump host refused the tunnel: {e}"),
                    })?;
                client::connect_stream(config, channel.into_stream(), handler).await
            }
        };
        result.map_err(|e| handshake_error(e, &outcome, &target, ctx))
    };
    let mut handle = tokio::time::timeout(ctx.connect_timeout, handshake)
        .await
        .map_err(|_| timed_out())??;

    let login = auth::authenticate(
        &mut handle,
        &endpoint.user,
        &target,
        &endpoint.identities,
        ctx,
    );
    let method = tokio::time::timeout(ctx.connect_timeout, login)
        .await
        .map_err(|_| timed_out())??;
    tracing::debug!(%target, %method, "ssh session open");
    Ok(Session { handle, via })
}

/// The russh client settings for one endpoint; an unreadable known_hosts file stops the
/// connection before a socket is opened.
fn client_config(
    ctx: &RemoteContext,
    check: &HostKeyCheck,
) -> Result<client::Config, known_hosts::Unreadable> {
    let mut preferred = Preferred {
        kex: kex_order(&ctx.kex),
        ..Preferred::default()
    };
    // Ask for a host key type we already know, as OpenSSH does, so a host with several keys
    // is verified instead of looking "unknown" (or worse, "changed").
    let known = known_hosts::known_algorithms(&check.files(), &check.addr, check.port)?;
    if !known.is_empty() {
        let same_family = |a: &Algorithm| {
            known
                .iter()
                .any(|k| k == a || (k.clone().is_rsa() && a.clone().is_rsa()))
        };
        let mut keys: Vec<Algorithm> = preferred.key.iter().cloned().collect();
        keys.sort_by_key(|a| !same_family(a));
        preferred.key = Cow::Owned(keys);
    }
    Ok(client::Config {
        preferred,
        // Zero turns keepalives off (README): russh would otherwise send them without pause.
        keepalive_interval: Some(ctx.keepalive).filter(|interval| !interval.is_zero()),
        keepalive_max: 3,
        nodelay: true,
        ..client::Config::default()
    })
}

/// The configured key exchanges (already checked against `config::KEX_ALGORITHMS`) plus the
/// extension markers every client must send, or [`KEX_ORDER`].
fn kex_order(configured: &[String]) -> Cow<'static, [kex::Name]> {
    if configured.is_empty() {
        return Cow::Borrowed(KEX_ORDER);
    }
    let mut names: Vec<kex::Name> = configured
        .iter()
        .filter_map(|name| kex::Name::try_from(name.as_str()).ok())
        .collect();
    names.extend([
        kex::EXTENSION_SUPPORT_AS_CLIENT,
        kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
    ]);
    Cow::Owned(names)
}

fn unreadable_error(unreadable: known_hosts::Unreadable, target: &str) -> Error {
    Error::KnownHostsUnreadable {
        target: target.to_string(),
        path: unreadable.path.display().to_string(),
        problem: unreadable.problem,
    }
}

/// Turns a failed handshake into the most precise error: the host key verdict when the key was
/// refused, the socket error, or the protocol message.
fn handshake_error(
    err: russh::Error,
    outcome: &Mutex<Option<KeyOutcome>>,
    target: &str,
    ctx: &RemoteContext,
) -> Error {
    let outcome = outcome.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let target = target.to_string();
    match (outcome, err) {
        (Some(KeyOutcome::Unknown { fingerprint }), _) => Error::HostKeyUnknown {
            target,
            fingerprint,
            known_hosts: ctx.known_hosts.display().to_string(),
        },
        (
            Some(KeyOutcome::Changed {
                expected,
                got,
                location,
            }),
            _,
        ) => Error::HostKeyChanged {
            target,
            expected,
            got,
            location,
        },
        (
            Some(KeyOutcome::Revoked {
                fingerprint,
                location,
            }),
            _,
        ) => Error::HostKeyRejected {
            target,
            message: format!("{fingerprint} is marked @revoked at {location}"),
        },
        (Some(KeyOutcome::Certificate), _) => Error::HostKeyRejected {
            target,
            message: "the server offered a host certificate; tendhost trusts plain keys".into(),
        },
        (
            Some(KeyOutcome::LearnFailed {
                fingerprint,
                message,
            }),
            _,
        ) => Error::HostKeyRejected {
            target,
            message: format!(
                "could not record {fingerprint} in '{}': {message}",
                ctx.known_hosts.display()
            ),
        },
        (Some(KeyOutcome::Malformed { location }), _) => Error::HostKeyRejected {
            target,
            message: format!(
                "the known_hosts entry for it at {location} cannot be parsed; fix or remove \
                 that line"
            ),
        },
        (Some(KeyOutcome::Unreadable(unreadable)), _) => unreadable_error(unreadable, &target),
        (_, russh::Error::IO(source)) => Error::Connect { target, source },
        (_, other) => Error::Ssh {
            target,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::KnownHostsPolicy;

    fn check_of(ctx: &RemoteContext) -> HostKeyCheck {
        HostKeyCheck {
            addr: "10.0.0.5".into(),
            port: 22,
            own: ctx.known_hosts.clone(),
            extra: ctx.extra_known_hosts.clone(),
            policy: ctx.policy,
        }
    }

    #[test]
    fn every_kex_the_config_accepts_is_one_russh_implements() {
        let all: Vec<String> = crate::config::KEX_ALGORITHMS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let order = kex_order(&all);
        assert_eq!(order.len(), all.len() + 2, "{order:?}");
        let first = kex_order(&["mlkem768x25519-sha256".to_string()]);
        assert_eq!(first[0], kex::MLKEM768X25519_SHA256);
        assert_eq!(kex_order(&[])[0], kex::CURVE25519);
    }

    #[test]
    fn keepalive_zero_turns_keepalives_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = RemoteContext::new(dir.path().join("kh"), KnownHostsPolicy::Strict);
        ctx.keepalive = Duration::from_secs(30);
        let config = client_config(&ctx, &check_of(&ctx)).unwrap();
        assert_eq!(config.keepalive_interval, Some(Duration::from_secs(30)));
        ctx.keepalive = Duration::ZERO;
        let config = client_config(&ctx, &check_of(&ctx)).unwrap();
        assert_eq!(config.keepalive_interval, None);
    }

    #[test]
    fn an_unreadable_known_hosts_stops_the_connection_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = RemoteContext::new(dir.path().to_path_buf(), KnownHostsPolicy::AcceptNew);
        let unreadable = client_config(&ctx, &check_of(&ctx)).unwrap_err();
        let err = unreadable_error(unreadable, "root@10.0.0.5:22").to_string();
        assert_eq!(
            err,
            format!(
                "cannot check the host key of root@10.0.0.5:22: known_hosts '{}' is a \
                 directory; refusing to connect",
                dir.path().display()
            )
        );
    }
}
