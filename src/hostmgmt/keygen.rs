//! `tendhost keygen`: a dedicated ed25519 key in the data dir, and its authorized_keys line.
//!
//! The key is unencrypted (tendhost runs unattended) and written 0600 in a 0700 directory; the
//! executor tries it by default. The private half is never printed.

use std::path::{Path, PathBuf};

use russh::keys::PrivateKey;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;

use crate::store::{Paths, write_private_atomic};

#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    #[error("creating the data dir '{path}'")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the system random generator failed")]
    Random,
    #[error("encoding the key: {0}")]
    Encode(String),
    #[error("writing '{path}'")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `keygen` did.
#[derive(Debug)]
pub struct Keygen {
    pub path: PathBuf,
    /// `ssh-ed25519 AAAA… tendhost@host`, for authorized_keys.
    pub public_line: String,
    /// False when an existing key was kept (no `--force`).
    pub created: bool,
}

/// Creates tendhost's key unless one exists (then `force` replaces it).
pub fn keygen(paths: &Paths, force: bool) -> Result<Keygen, KeygenError> {
    let path = paths.key();
    let pub_path = public_path(&path);
    if !force
        && path.exists()
        && let Ok(line) = std::fs::read_to_string(&pub_path)
    {
        return Ok(Keygen {
            path,
            public_line: line.trim().to_string(),
            created: false,
        });
    }
    paths
        .ensure_data_dir()
        .map_err(|source| KeygenError::DataDir {
            path: paths.data_dir.clone(),
            source,
        })?;
    let mut seed = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
        .map_err(|_| KeygenError::Random)?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    seed.fill(0);
    key.set_comment(comment());
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| KeygenError::Encode(e.to_string()))?;
    let public_line = key
        .public_key()
        .to_openssh()
        .map_err(|e| KeygenError::Encode(e.to_string()))?;
    let write = |p: &Path, bytes: &[u8]| {
        write_private_atomic(p, bytes).map_err(|source| KeygenError::Write {
            path: p.to_path_buf(),
            source,
        })
    };
    write(&path, private.as_bytes())?;
    write(&pub_path, format!("{public_line}\n").as_bytes())?;
    Ok(Keygen {
        path,
        public_line,
        created: true,
    })
}

fn public_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// `tendhost@<hostname>`, so the key is recognisable in authorized_keys.
fn comment() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    format!("tendhost@{host}")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn paths(dir: &Path) -> Paths {
        Paths {
            state_dir: dir.join("state"),
            data_dir: dir.join("data"),
            config_dir: None,
        }
    }

    #[test]
    fn creates_a_private_loadable_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let first = keygen(&paths, false).unwrap();
        assert!(first.created);
        assert!(first.public_line.starts_with("ssh-ed25519 AAAA"));
        let mode = std::fs::metadata(&first.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = russh::keys::load_secret_key(&first.path, None).unwrap();
        assert_eq!(loaded.public_key().to_openssh().unwrap(), first.public_line);
        let again = keygen(&paths, false).unwrap();
        assert!(!again.created);
        assert_eq!(again.public_line, first.public_line);
        let forced = keygen(&paths, true).unwrap();
        assert_ne!(forced.public_line, first.public_line);
    }
}
