//! Which config file to read (DESIGN.md §3): `--config`, then `$TENDHOST_CONFIG`, then
//! `./tendhost.toml`, then `$XDG_CONFIG_HOME/tendhost/tendhost.toml`.

use std::path::{Path, PathBuf};

use super::ConfigError;

/// Where the chosen config came from, for `check` and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoverySource {
    Flag,
    Environment,
    WorkingDir,
    XdgConfig,
}

#[derive(Debug, Clone)]
pub struct Discovered {
    pub path: PathBuf,
    pub source: DiscoverySource,
}

/// Picks the config file. An explicitly named file (flag or variable) is used even if it does
/// not exist, so the read error names it; the implicit places are only used when present.
pub fn discover(
    flag: Option<&Path>,
    env: Option<&Path>,
    cwd: &Path,
    xdg_config_dir: Option<&Path>,
) -> Result<Discovered, ConfigError> {
    if let Some(path) = flag {
        return Ok(found(path, DiscoverySource::Flag));
    }
    if let Some(path) = env.filter(|p| !p.as_os_str().is_empty()) {
        return Ok(found(path, DiscoverySource::Environment));
    }
    let local = cwd.join("tendhost.toml");
    if local.is_file() {
        return Ok(found(&local, DiscoverySource::WorkingDir));
    }
    let mut searched = vec![local];
    if let Some(dir) = xdg_config_dir {
        let xdg = dir.join("tendhost.toml");
        if xdg.is_file() {
            return Ok(found(&xdg, DiscoverySource::XdgConfig));
        }
        searched.push(xdg);
    }
    Err(ConfigError::NotFound { searched })
}

fn found(path: &Path, source: DiscoverySource) -> Discovered {
    Discovered {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_environment_beats_cwd_beats_xdg() {
        let cwd = tempfile::tempdir().unwrap();
        let xdg = tempfile::tempdir().unwrap();
        std::fs::write(cwd.path().join("tendhost.toml"), "").unwrap();
        std::fs::write(xdg.path().join("tendhost.toml"), "").unwrap();
        let flag = Path::new("/etc/flag.toml");
        let env = Path::new("/etc/env.toml");

        let pick = |f, e| discover(f, e, cwd.path(), Some(xdg.path())).unwrap();
        assert_eq!(pick(Some(flag), Some(env)).source, DiscoverySource::Flag);
        assert_eq!(pick(None, Some(env)).source, DiscoverySource::Environment);
        assert_eq!(pick(None, None).source, DiscoverySource::WorkingDir);
        std::fs::remove_file(cwd.path().join("tendhost.toml")).unwrap();
        assert_eq!(pick(None, None).source, DiscoverySource::XdgConfig);
    }

    #[test]
    fn nothing_found_lists_where_it_looked() {
        let cwd = tempfile::tempdir().unwrap();
        let err = discover(None, None, cwd.path(), None).unwrap_err();
        assert!(err.to_string().contains("tendhost.toml"));
    }
}
