//! Where tendhost's files live (DESIGN.md §7): state in `$XDG_STATE_HOME/tendhost/`, keys and
//! tendhost's own known_hosts in `$XDG_DATA_HOME/tendhost/`; `--state-dir` overrides the first.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Resolved locations of every file tendhost reads or writes besides its config.
#[derive(Debug, Clone)]
pub struct Paths {
    pub state_dir: PathBuf,
    pub data_dir: PathBuf,
    /// `$XDG_CONFIG_HOME/tendhost`, the last place config discovery looks.
    pub config_dir: Option<PathBuf>,
}

impl Paths {
    /// Resolves the XDG directories, honouring `--state-dir`.
    pub fn resolve(state_dir_override: Option<&Path>) -> io::Result<Paths> {
        let dirs = directories::ProjectDirs::from("", "", "tendhost");
        let data_dir = match &dirs {
            Some(d) => d.data_dir().to_path_buf(),
            None => {
                return Err(io::Error::other(
                    "cannot find a home directory for XDG paths",
                ));
            }
        };
        let state_dir = match (state_dir_override, &dirs) {
            (Some(dir), _) => dir.to_path_buf(),
            (None, Some(d)) => d
                .state_dir()
                .map(Path::to_path_buf)
                // macOS has no state dir; fall back to the data dir there.
                .unwrap_or_else(|| d.data_dir().join("state")),
            (None, None) => unreachable!("checked above"),
        };
        Ok(Paths {
            state_dir,
            data_dir,
            config_dir: dirs.map(|d| d.config_dir().to_path_buf()),
        })
    }

    pub fn snapshot(&self) -> PathBuf {
        self.state_dir.join("snapshot.json")
    }
    pub fn audit(&self) -> PathBuf {
        self.state_dir.join("audit.jsonl")
    }
    pub fn log(&self) -> PathBuf {
        self.state_dir.join("tendhost.log")
    }
    pub fn lock(&self) -> PathBuf {
        self.state_dir.join("lock")
    }
    pub fn key(&self) -> PathBuf {
        self.data_dir.join("id_ed25519")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.data_dir.join("known_hosts")
    }

    /// Creates the state dir (0700) if needed.
    pub fn ensure_state_dir(&self) -> io::Result<()> {
        ensure_private_dir(&self.state_dir)
    }

    /// Creates the data dir (0700) if needed.
    pub fn ensure_data_dir(&self) -> io::Result<()> {
        ensure_private_dir(&self.data_dir)
    }
}

fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Replaces `path` with `contents` so that a reader (or a crash, or kill -9) sees either the old
/// file or the new one, never a mix: write a temp file beside it (0600), fsync, rename, fsync the
/// directory.
pub fn write_private_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn state_dir_override_wins() {
        let paths = Paths::resolve(Some(Path::new("/tmp/x"))).unwrap();
        assert_eq!(paths.snapshot(), Path::new("/tmp/x/snapshot.json"));
        assert_eq!(paths.lock(), Path::new("/tmp/x/lock"));
    }

    #[test]
    fn atomic_write_is_private_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap");
        write_private_atomic(&path, b"one").unwrap();
        write_private_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file left behind"
        );
    }
}
