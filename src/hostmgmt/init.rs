//! `tendhost init`: the first minute of a new user. Writes the bundled example config (which
//! runs as is: this machine, no SSH) where tendhost will find it, never over an existing one,
//! and says how to bring in the hosts already listed in `~/.ssh/config` or an Ansible inventory.

use std::path::{Path, PathBuf};

use crate::exit::Exit;
use crate::remote::ssh_config;
use crate::stdio;
use crate::store::write_private_atomic;

/// The starter: the same file as the repository's `tendhost.toml`, so the two never drift.
const STARTER: &str = include_str!("../../tendhost.toml");

/// Where Ansible inventories usually are, checked in this order.
const INVENTORIES: &[&str] = &[
    "inventory",
    "inventory.ini",
    "inventory.yml",
    "inventory.yaml",
    "hosts.yml",
    "hosts.yaml",
    "/etc/ansible/hosts",
];

/// Writes the starter config at `target`; `explicit` when the path was asked for (then running
/// tendhost needs the same `--config`, unless it is where discovery looks anyway).
pub fn init(target: &Path, explicit: bool) -> Exit {
    if target.exists() {
        stdio::err_line(format!(
            "tendhost: '{}' already exists: edit it, or pass --config for another file",
            target.display()
        ));
        return Exit::Usage;
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(err) = std::fs::create_dir_all(dir)
    {
        stdio::err_line(format!("tendhost: creating '{}': {err}", dir.display()));
        return Exit::Usage;
    }
    if let Err(err) = write_private_atomic(target, STARTER.as_bytes()) {
        stdio::err_line(format!("tendhost: writing '{}': {err}", target.display()));
        return Exit::Usage;
    }
    let config = if explicit {
        format!(" --config {}", target.display())
    } else {
        String::new()
    };
    let mut lines = vec![
        format!(
            "wrote {} (this machine as a local host; runs as is)",
            target.display()
        ),
        String::new(),
        "next:".to_string(),
    ];
    let ssh = home().join(".ssh/config");
    let aliases = ssh_config::aliases(&ssh);
    if !aliases.is_empty() {
        lines.push(format!(
            "  tendhost{config} host import --ssh-config --dry-run   # {} host{} in {}",
            aliases.len(),
            if aliases.len() == 1 { "" } else { "s" },
            ssh.display()
        ));
    }
    for inventory in INVENTORIES
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
    {
        lines.push(format!(
            "  tendhost{config} host import --ansible-inventory {} --dry-run",
            inventory.display()
        ));
    }
    lines.push(format!(
        "  tendhost{config} host add admin@192.168.1.20 --tag web   # or one by one"
    ));
    lines.push(
        "  tendhost keygen                                    # a key to put in authorized_keys"
            .to_string(),
    );
    lines.push(format!(
        "  tendhost{config}                                   # the console"
    ));
    for line in lines {
        let _ = stdio::out_line(line);
    }
    Exit::Ok
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_is_the_bundled_config_and_is_never_written_twice() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/tendhost.toml");
        assert_eq!(init(&target, true), Exit::Ok);
        let text = std::fs::read_to_string(&target).unwrap();
        assert_eq!(text, STARTER);
        crate::config::Config::from_str(&target, &text).expect("the starter loads");
        std::fs::write(&target, "# mine\n").unwrap();
        assert_eq!(init(&target, true), Exit::Usage);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "# mine\n");
    }
}
