//! Test keys: the process-wide client key every harness host authorises, and helpers to make
//! more (other types, encrypted) with the real `ssh-keygen`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::{io, process};

use super::procs::pid_alive;

/// The process-wide test client key (ed25519, unencrypted, 0600), authorised on every host.
pub(crate) fn client_key() -> io::Result<PathBuf> {
    static KEY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = process_dir().map_err(|e| e.to_string())?;
        let key = dir.join("client_ed25519");
        keygen(&key, "tendhost-test-client").map_err(|e| e.to_string())?;
        Ok(key)
    })
    .clone()
    .map_err(io::Error::other)
}

/// A directory private to this test process, removed from earlier dead processes on first use.
pub(crate) fn process_dir() -> io::Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::temp_dir();
        if let Ok(entries) = fs::read_dir(&base) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if let Some(pid) = name
                    .strip_prefix("tendhost-it-")
                    .and_then(|p| p.parse().ok())
                    && !pid_alive(pid)
                {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(format!("tendhost-it-{}", process::id()));
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        Ok(dir)
    })
    .clone()
    .map_err(io::Error::other)
}

/// Generates an unencrypted ed25519 key pair at `path` (+ `.pub`).
pub(crate) fn keygen(path: &Path, comment: &str) -> io::Result<()> {
    keygen_with(path, "ed25519", comment, "")
}

/// Generates a key pair of `kind` (`ed25519`, `ecdsa`, `rsa`), encrypted when `passphrase` is
/// not empty.
pub(crate) fn keygen_with(
    path: &Path,
    kind: &str,
    comment: &str,
    passphrase: &str,
) -> io::Result<()> {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("ssh-keygen -t {kind} failed")))
    }
}

/// `SHA256:…` of a public key file, via ssh-keygen.
pub(crate) fn fingerprint(public_key: &Path) -> io::Result<String> {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public_key)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| io::Error::other("no fingerprint"))
}
