//! Every process tendhost starts on this machine is built here, so none of them inherits a
//! secret from tendhost's own environment: `TENDHOST_SSH_KEY` is for tendhost's SSH client, not
//! for a local host's apt, its dpkg maintainer scripts or a `[host.checks]` command.
//!
//! Removing the variable from tendhost's own environment is not possible soundly: edition 2024
//! makes `std::env::remove_var` `unsafe` (other threads may read the environment at the same
//! time) and the crate forbids `unsafe`. So the variable is read once (see
//! [`super::RemoteContext::from_config`]) and stripped from every child instead; clippy's
//! `disallowed-methods` (clippy.toml) keeps `Command::new` out of the rest of the crate.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::sync::RwLock;

use tokio::process::Command;

/// Environment variables no child process may see.
pub(crate) const SECRET_VARS: &[&str] = &[super::context::ENV_KEY];

/// Variables the config names as holding secrets (`[[notify]] token_env`, …), added by
/// [`hide`] when an engine starts. Only ever grows; a std lock held for a copy, never across
/// an await.
static HIDDEN: RwLock<BTreeSet<String>> = RwLock::new(BTreeSet::new());

/// Keeps `vars` out of every child started from now on, as [`SECRET_VARS`] are.
pub(crate) fn hide(vars: impl IntoIterator<Item = String>) {
    let mut hidden = HIDDEN
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    hidden.extend(vars);
}

/// `Command::new(program)` without tendhost's secrets in its environment.
#[allow(clippy::disallowed_methods)] // The one place a command is built.
pub(crate) fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for var in SECRET_VARS {
        command.env_remove(var);
    }
    let hidden = HIDDEN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for var in hidden.iter() {
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
        assert!(
            removed.iter().any(|v| v == "TENDHOST_SSH_KEY"),
            "{removed:?}"
        );
    }

    #[test]
    fn children_never_get_a_variable_the_config_names_as_secret() {
        hide(["TENDHOST_TEST_HIDDEN_TOKEN".to_string()]);
        let command = command("sh");
        assert!(
            command
                .as_std()
                .get_envs()
                .any(|(name, value)| name == "TENDHOST_TEST_HIDDEN_TOKEN" && value.is_none())
        );
    }
}
