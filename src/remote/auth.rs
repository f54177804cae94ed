//! Logging in: which keys to offer, in which order, and what to say when none works.
//!
//! Order: the host's own key file(s) (from tendhost.toml, else `~/.ssh/config` IdentityFile),
//! then `TENDHOST_SSH_KEY`, then every ssh-agent identity, then the default identities
//! (tendhost's key from `tendhost keygen`, `~/.ssh/id_*`). An encrypted key file works only when
//! the agent holds it: tendhost never prompts for a passphrase. Key material and passphrases
//! never reach a message or a log line; only paths, key types and fingerprints do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use russh::client::{AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::ssh_key::PublicKey;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, decode_secret_key};

use super::Error;
use super::context::RemoteContext;
use super::known_hosts::fingerprint;
use super::ssh::handler::ClientHandler;

/// Where the key files for one host come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities {
    /// From tendhost.toml: a missing or unreadable file is an error.
    pub required: Vec<PathBuf>,
    /// From `~/.ssh/config` and the defaults: skipped when missing or encrypted.
    pub optional: Vec<PathBuf>,
}

/// A loaded key file.
enum KeyFile {
    Plain(Box<PrivateKey>),
    /// Encrypted; only its public half is usable (through the agent).
    Encrypted(PublicKey),
}

/// Authenticates `user` on `handle`, trying every source in order. Returns which one worked
/// (for logs) or [`Error::Auth`] listing what was tried, or [`Error::Key`] for a required key
/// that cannot be used.
pub(super) async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    target: &str,
    identities: &Identities,
    ctx: &RemoteContext,
) -> Result<String, Error> {
    let mut tried = Vec::new();
    let mut agent = match &ctx.agent_socket {
        Some(socket) => AgentClient::connect_uds(socket).await.ok(),
        None => None,
    };
    let agent_keys: Vec<(PublicKey, String)> = match agent.as_mut() {
        Some(agent) => agent
            .request_identities()
            .await
            .unwrap_or_default()
            .iter()
            .map(|id| (id.public_key().into_owned(), id.comment().to_string()))
            .collect(),
        None => Vec::new(),
    };

    for path in &identities.required {
        match load_key_file(path)? {
            KeyFile::Plain(key) => {
                let label = format!("key '{}'", path.display());
                if offer_key(handle, target, user, *key, &label, &mut tried).await? {
                    return Ok(label);
                }
            }
            KeyFile::Encrypted(public) => {
                let held = agent_keys
                    .iter()
                    .any(|(k, _)| k.key_data() == public.key_data());
                let Some(agent) = agent.as_mut().filter(|_| held) else {
                    return Err(Error::Key {
                        path: path.display().to_string(),
                        message: "is encrypted with a passphrase and tendhost never prompts; \
                                  load it into ssh-agent with 'ssh-add' first"
                            .into(),
                    });
                };
                let label = format!("agent key for '{}'", path.display());
                if offer_agent_key(handle, target, user, agent, public, &label, &mut tried).await? {
                    return Ok(label);
                }
            }
        }
    }

    if let Some(secret) = &ctx.env_key {
        let key = decode_env_key(secret.expose())?;
        let label = "TENDHOST_SSH_KEY".to_string();
        if offer_key(handle, target, user, key, &label, &mut tried).await? {
            return Ok(label);
        }
    }

    if let Some(agent) = agent.as_mut() {
        for (public, comment) in agent_keys {
            let label = format!("agent key '{comment}' ({})", fingerprint(&public));
            if offer_agent_key(handle, target, user, agent, public, &label, &mut tried).await? {
                return Ok(label);
            }
        }
    }

    for path in identities.optional.iter().chain(&ctx.default_identities) {
        if identities.required.contains(path) || !path.exists() {
            continue;
        }
        if let Ok(KeyFile::Plain(key)) = load_key_file(path) {
            let label = format!("key '{}'", path.display());
            if offer_key(handle, target, user, *key, &label, &mut tried).await? {
                return Ok(label);
            }
        }
    }

    Err(Error::Auth {
        target: target.to_string(),
        user: user.to_string(),
        tried: if tried.is_empty() {
            "no key: set ssh_key, run ssh-agent, or set TENDHOST_SSH_KEY".into()
        } else {
            format!("tried {}", tried.join(", "))
        },
    })
}

async fn offer_key(
    handle: &mut Handle<ClientHandler>,
    target: &str,
    user: &str,
    key: PrivateKey,
    label: &str,
    tried: &mut Vec<String>,
) -> Result<bool, Error> {
    let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
    let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
    tried.push(label.to_string());
    match handle.authenticate_publickey(user, key).await {
        Ok(result) => accepted(handle, target, result, tried),
        // Typically sshd's MaxAuthTries: it hangs up after too many offered keys. A person must
        // choose the key, so this is an auth failure, not network trouble to retry.
        Err(e) => Err(Error::Auth {
            target: target.to_string(),
            user: user.to_string(),
            tried: format!(
                "tried {}; then the server closed the connection ({e}); too many keys offered? \
                 set ssh_key for this host",
                tried.join(", ")
            ),
        }),
    }
}

/// Whether the server accepted the key. russh reports a connection that ended before the
/// server answered as a refusal too. When nothing was refused before in this login, the host
/// went away (down for a reboot, sshd restarting): a disconnect, worth another try, never
/// "this key is not authorised". After refusals it is sshd hanging up on too many keys
/// (`MaxAuthTries`), which a person must fix: an auth failure, as before.
fn accepted(
    handle: &Handle<ClientHandler>,
    target: &str,
    result: AuthResult,
    tried: &[String],
) -> Result<bool, Error> {
    match result {
        AuthResult::Success => Ok(true),
        AuthResult::Failure { .. } if handle.is_closed() && tried.len() <= 1 => {
            Err(Error::Disconnected {
                target: target.to_string(),
                message: "the connection closed during authentication".into(),
            })
        }
        AuthResult::Failure { .. } => Ok(false),
    }
}

async fn offer_agent_key(
    handle: &mut Handle<ClientHandler>,
    target: &str,
    user: &str,
    agent: &mut AgentClient<tokio::net::UnixStream>,
    public: PublicKey,
    label: &str,
    tried: &mut Vec<String>,
) -> Result<bool, Error> {
    let hash = rsa_hash(handle, public.algorithm().is_rsa()).await;
    tried.push(label.to_string());
    match handle
        .authenticate_publickey_with(user, public, hash, agent)
        .await
    {
        Ok(result) => accepted(handle, target, result, tried),
        // The agent declined (e.g. a confirm-only key): try the next source.
        Err(_) => Ok(false),
    }
}

/// rsa-sha2-512/256 when the server says it supports them, else SHA-256 (OpenSSH ≥ 7.2 does).
async fn rsa_hash(handle: &Handle<ClientHandler>, is_rsa: bool) -> Option<HashAlg> {
    if !is_rsa {
        return None;
    }
    match handle.best_supported_rsa_hash().await {
        Ok(Some(best)) => best,
        _ => Some(HashAlg::Sha256),
    }
}

fn load_key_file(path: &Path) -> Result<KeyFile, Error> {
    let key_error = |message: String| Error::Key {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| key_error(format!("cannot read: {e}")))?;
    match decode_secret_key(&text, None) {
        Ok(key) => Ok(KeyFile::Plain(Box::new(key))),
        Err(russh::keys::Error::KeyIsEncrypted) => encrypted_public_half(path, &text)
            .map(KeyFile::Encrypted)
            .ok_or_else(|| {
                key_error(
                    "is encrypted and has no readable public key ('.pub'); \
                     load it into ssh-agent with 'ssh-add' first"
                        .into(),
                )
            }),
        Err(e) => Err(key_error(format!("is not a usable private key ({e})"))),
    }
}

/// The public half of an encrypted key: from the OpenSSH container itself, else `PATH.pub`.
fn encrypted_public_half(path: &Path, text: &str) -> Option<PublicKey> {
    if let Ok(key) = PrivateKey::from_openssh(text) {
        return Some(key.public_key().clone());
    }
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    russh::keys::load_public_key(PathBuf::from(pub_path)).ok()
}

/// `TENDHOST_SSH_KEY`: base64 of a private key file (PEM/OpenSSH text is accepted as is).
fn decode_env_key(value: &str) -> Result<PrivateKey, Error> {
    let key_error = |message: &str| Error::Key {
        path: "TENDHOST_SSH_KEY".into(),
        message: message.into(),
    };
    let text = if value.trim_start().starts_with("-----BEGIN") {
        value.to_string()
    } else {
        let compact: String = value.split_whitespace().collect();
        let bytes = STANDARD
            .decode(compact)
            .map_err(|_| key_error("is not valid base64"))?;
        String::from_utf8(bytes).map_err(|_| key_error("does not decode to a key file"))?
    };
    decode_secret_key(&text, None).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => {
            key_error("holds an encrypted key; tendhost never prompts for a passphrase")
        }
        _ => key_error("does not hold a usable private key"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_key_errors_never_echo_the_value() {
        let secret = "bm90IGEga2V5"; // "not a key"
        let err = decode_env_key(secret)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("TENDHOST_SSH_KEY"), "{err}");
        assert!(!err.contains(secret), "{err}");
        let err = decode_env_key("%%%")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("base64"), "{err}");
    }
}
