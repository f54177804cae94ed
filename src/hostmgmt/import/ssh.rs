//! `--ssh-config [FILE]`: every concrete `Host` alias of an OpenSSH client config, resolved as
//! ssh itself would resolve it (HostName, User, Port, IdentityFile, ProxyJump; first value
//! wins, Includes followed) by the same reader tendhost connects with.

use std::path::Path;

use super::{ImportError, Imported, jump_target};
use crate::hostmgmt::NewHost;
use crate::remote::ssh_config;

/// The hosts `path` sets up. A jump through another alias of the same file keeps its name, so
/// it becomes a `proxy_jump` to that (imported) host.
pub fn read_ssh_config(path: &Path) -> Result<Imported, ImportError> {
    // The reader treats a missing file as empty; an import of nothing deserves an error.
    std::fs::metadata(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Imported::default();
    for alias in ssh_config::aliases(path) {
        let resolved = ssh_config::lookup(path, &alias);
        let proxy_jump = match resolved.proxy_jump.as_deref().map(jump_target) {
            None => None,
            Some(Ok(jump)) => jump,
            Some(Err(why)) => {
                out.warnings.push(format!("'{alias}' {why}; not imported"));
                continue;
            }
        };
        // The first key ssh would offer, where it exists: a config that names keys for `Host *`
        // gives every host that key, as ssh does.
        let ssh_key = resolved
            .identity_files
            .iter()
            .find(|k| k.is_file())
            .map(|k| k.display().to_string());
        out.hosts.push(NewHost {
            name: alias.clone(),
            addr: resolved.host_name.unwrap_or_else(|| alias.clone()),
            user: resolved.user,
            port: resolved.port,
            tags: Vec::new(),
            proxy_jump,
            ssh_key,
            local: false,
        });
    }
    Ok(out)
}
