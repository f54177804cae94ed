//! Every process tendhost starts on this machine is built here, so none of them inherits a
//! secret from tendhost's own environment: `TENDHOST_SSH_KEY` is for tendhost's SSH client, not
//! for a local host's apt, its dpkg maintainer scripts or a `[host.checks]` command.
//!
//! Removing the variable from tendhost's own environment is not possible soundly: edition 2024
//! makes `std::env::remove_var` `unsafe` (other threads may read the environment at the same
//! time) and the crate forbids `unsafe`. So the variable is read once (see
//! [`super::RemoteContext::from_config`]) and stripped from every child instead; clippy's
//! `disallowed-methods` (clippy.toml) keeps `Command::new` out of the rest of the crate.

use std::ffi::OsStr;

use tokio::process::Command;

/// Environment variables no child process may see.
pub(crate) const SECRET_VARS: &[&str] = &[super::context::ENV_KEY];

/// `Command::new(program)` without tendhost's secrets in its environment.
#[allow(clippy::disallowed_methods)] // The one place a command is built.
pub(crate) fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for var in SECRET_VARS {
        command.env_remove(var);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_never_get_the_ssh_key() {
        let command = command("sh");
        let removed: Vec<_> = command
            .as_std()
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_owned())
            .collect();
        assert_eq!(removed, ["TENDHOST_SSH_KEY"]);
    }
}
