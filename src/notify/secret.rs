//! Secrets read at delivery time from where the config points (an environment variable or a
//! file), held in a type that never prints them.

use std::path::PathBuf;

use crate::config::{SecretSource, UrlSource};

/// A token, password or secret URL. `Debug` and `Display` show `***`, so no log line, error or
/// panic message can carry it by accident; [`Secret::expose`] is the one way to the text.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    /// Text that is not secret (an ntfy server and topic) where a [`Secret`] is expected.
    pub(crate) fn public(text: String) -> Self {
        Secret(text)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Why a secret could not be read: names where it was looked for, never what was found.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the environment variable {0} is not set (or empty)")]
    Unset(String),
    #[error("reading the secret file '{}'", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secret file '{}' is empty", .0.display())]
    Empty(PathBuf),
}

/// Reads the secret now; a file's trailing newline is not part of it.
pub(crate) fn read(source: &SecretSource) -> Result<Secret, SecretError> {
    match source {
        SecretSource::Env(name) => match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => Ok(Secret(value.trim().to_string())),
            _ => Err(SecretError::Unset(name.clone())),
        },
        SecretSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
                path: path.clone(),
                source,
            })?;
            let value = text.trim();
            if value.is_empty() {
                Err(SecretError::Empty(path.clone()))
            } else {
                Ok(Secret(value.to_string()))
            }
        }
    }
}

/// The URL to deliver to: written in the config, or read like a secret.
pub(crate) fn url(source: &UrlSource) -> Result<Secret, SecretError> {
    match source {
        UrlSource::Inline(url) => Ok(Secret(url.clone())),
        UrlSource::Secret(secret) => read(secret),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let secret = read(&SecretSource::File(path.clone())).unwrap();
        assert_eq!(secret.expose(), "s3cret");
        assert_eq!(format!("{secret:?}"), "***");
        std::fs::write(&path, "\n").unwrap();
        let err = read(&SecretSource::File(path)).unwrap_err().to_string();
        assert!(err.ends_with("is empty"), "{err}");
        let err = read(&SecretSource::Env("TENDHOST_TEST_SURELY_UNSET".into()))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the environment variable TENDHOST_TEST_SURELY_UNSET is not set (or empty)"
        );
        let err = read(&SecretSource::File(dir.path().join("missing"))).unwrap_err();
        assert!(err.to_string().starts_with("reading the secret file"));
    }
}
