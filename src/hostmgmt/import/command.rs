//! `tendhost host import` end to end: read the source, show the plan, write it (one validated,
//! atomic edit, audited like `host add`), then test the new hosts.

use std::path::{Path, PathBuf};

use super::{Imported, describe, plan, read_inventory, read_ssh_config};
use crate::config::Config;
use crate::exit::Exit;
use crate::hostmgmt::{TestOptions, add_hosts, test_hosts};
use crate::remote::{OwnFiles, RemoteContext};
use crate::stdio;
use crate::store::Paths;
use crate::store::audit::AuditRecord;

/// Where the hosts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    SshConfig(PathBuf),
    AnsibleInventory(PathBuf),
}

impl Source {
    fn read(&self) -> Result<Imported, super::ImportError> {
        match self {
            Source::SshConfig(path) => read_ssh_config(path),
            Source::AnsibleInventory(path) => read_inventory(path),
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::SshConfig(path) => format!("--ssh-config '{}'", path.display()),
            Source::AnsibleInventory(path) => format!("--ansible-inventory '{}'", path.display()),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Show what would be added; write nothing.
    pub dry_run: bool,
    /// Skip the `host test` of the new hosts.
    pub no_test: bool,
    /// Learn the new hosts' keys during that test (trust on first use).
    pub accept_new: bool,
    /// Tags for every imported host.
    pub tags: Vec<String>,
}

/// `~/...` as the shell would expand it (clap hands the default `~/.ssh/config` over as is).
pub fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// Runs the import; the exit code is the new hosts' test (1 when one is unreachable), or 2 for
/// a source or config that cannot be read or written.
pub fn run(config: &Config, paths: &Paths, source: &Source, opts: &ImportOptions) -> Exit {
    let imported = match source.read() {
        Ok(imported) => imported,
        Err(err) => {
            stdio::err_line(format!("tendhost: {}", crate::errors::chain(&err)));
            return Exit::Usage;
        }
    };
    let plan = plan(config, imported, &opts.tags);
    for line in describe(&plan, &config.path, opts.dry_run) {
        let _ = stdio::out_line(line);
    }
    if opts.dry_run || plan.add.is_empty() {
        return Exit::Ok;
    }
    let written = match add_hosts(&config.path, &plan.add, &plan.groups) {
        Ok(written) => written,
        Err(err) => {
            stdio::err_line(format!(
                "tendhost: nothing was written: {}",
                crate::errors::chain(&err)
            ));
            return Exit::Usage;
        }
    };
    let names: Vec<&str> = plan.add.iter().map(|h| h.name.as_str()).collect();
    let detail = format!(
        "host import {} to '{}': {}",
        source.describe(),
        config.path.display(),
        names.join(", ")
    );
    let record = AuditRecord::new("config_change", None, "ok", Some(&detail));
    if let Err(err) = crate::store::audit::append_one(&written, paths, record) {
        stdio::err_line(format!("tendhost: warning: {err}"));
    }
    let _ = stdio::out_line(format!(
        "added {} host{} to {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        config.path.display()
    ));
    if opts.no_test {
        return Exit::Ok;
    }
    let hosts: Vec<_> = names.iter().filter_map(|n| written.host(n)).collect();
    let own = OwnFiles {
        known_hosts: paths.known_hosts(),
        key: paths.key(),
    };
    let ctx = RemoteContext::from_config(&written, own);
    let test = TestOptions {
        accept_new: opts.accept_new,
        json: false,
        concurrency: written.fleet.concurrency,
    };
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(test_hosts(&hosts, &ctx, &test)),
        Err(err) => {
            stdio::err_line(format!("tendhost: starting the host test: {err}"));
            Exit::HostFailed
        }
    }
}
