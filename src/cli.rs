//! The command line (DESIGN.md §3): clap types only, no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::fleet::select::Selectors;

/// Keep a fleet of Debian, Fedora/RHEL and Docker Compose hosts patched from one terminal.
///
/// Without a subcommand or --batch, tendhost opens the full-screen console.
#[derive(Debug, Parser)]
#[command(name = "tendhost", version, about, long_about = None)]
#[command(after_help = "\
Config is read from --config, then $TENDHOST_CONFIG, then ./tendhost.toml, then
$XDG_CONFIG_HOME/tendhost/tendhost.toml.

Exit codes: 0 all selected hosts succeeded; 1 a host failed or a wave halted; 2 usage or config
error; 3 interrupted; 4 another tendhost holds the state lock; 5 a wave paused at its threshold
(--on-threshold pause; continue it with --batch wave --resume --failed CHOICE).")]
pub struct Cli {
    /// Config file to use instead of the usual places.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Keep snapshot, audit log, log file and lock here instead of $XDG_STATE_HOME/tendhost.
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Look, but never change a host: every mutating action is disabled.
    #[arg(long, global = true)]
    pub read_only: bool,

    /// Run COMMAND headless instead of opening the console.
    #[arg(long, value_name = "COMMAND")]
    pub batch: Option<BatchCommand>,

    /// Options for --batch.
    #[command(flatten)]
    pub batch_args: BatchArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What `--batch` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BatchCommand {
    /// Validate the config and print a summary of hosts, groups and tags.
    Check,
    /// Print the selected hosts with their last known state.
    Hosts,
    /// Gather inventory and pending packages from the selected hosts.
    Inventory,
    /// Update the selected hosts (all at once, bounded by [fleet] concurrency).
    Update,
    /// Reboot the selected hosts that need it.
    Reboot,
    /// Update the selected hosts in batches, halting on failures.
    Wave,
    /// Repair the package database of the selected hosts (`dpkg --configure -a` then
    /// `apt-get -f install`; dnf: `remove --duplicates`), then check it again.
    Repair,
    /// Put the compose services the last update moved back on the images they ran before it
    /// (`--stack PATH` for one stack), `up -d` them and check they run them; later updates
    /// leave the rolled-back images out. Needs HOST (or --tag/--group); `--dry-run` only asks.
    Rollback,
    /// Clear the failed state of the selected hosts.
    Retry,
    /// Mark the failures of the selected hosts as seen.
    Ack,
    /// Print past waves (hosts, durations, outcomes) from the audit log; given hosts, groups or
    /// tags, each selected host's timeline too. Read-only: takes no lock.
    History,
}

/// Host selection and options for `--batch`.
#[derive(Debug, Default, Clone, Args)]
pub struct BatchArgs {
    #[command(flatten)]
    pub select: SelectArgs,

    /// Print one JSON object per line on stdout instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Simulate: report what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// `inventory`: refresh the package lists first and read every host afresh, whatever
    /// `[fleet] lists_max_age` and the last read say.
    #[arg(long)]
    pub refresh_lists: bool,

    /// Let an upgrade go ahead even if it removes packages.
    #[arg(long)]
    pub allow_removals: bool,

    /// `update`, `wave`: upgrade only these packages, on the hosts where they are installed and
    /// pending (never installing one that is not), e.g. `openssl,libssl3`.
    #[arg(long, value_name = "P,…", value_delimiter = ',')]
    pub packages: Vec<String>,

    /// `update`, `wave`: take only security updates (apt: from the security suites; dnf:
    /// `--security` advisories); with `--packages`, only those of them.
    #[arg(long)]
    pub security_only: bool,

    /// `rollback`: only the compose stack at PATH (one of the host's `compose_paths`).
    #[arg(long, value_name = "PATH")]
    pub stack: Option<String>,

    /// Let `reboot` reboot hosts that other hosts reach through (`proxy_jump`); they reboot
    /// after the selected hosts behind them.
    #[arg(long)]
    pub reboot_jump_hosts: bool,

    /// Wave batch sizes, e.g. `1,5,25%` (canary first; the last size repeats).
    #[arg(long, value_name = "N|N%[,…]")]
    pub batch_size: Option<String>,

    /// Pause between wave batches, e.g. `30s`.
    #[arg(long, value_name = "SECS")]
    pub delay: Option<String>,

    /// Halt the wave when more than this many hosts failed (`N` or `N%`).
    #[arg(long, value_name = "N|N%")]
    pub max_failures: Option<String>,

    /// Run the wave in batches, each waiting for the whole previous one (Ansible's `serial`),
    /// instead of `[fleet] wave_mode` (default: a rolling window after the canary batch).
    #[arg(long)]
    pub barriers: bool,

    /// `wave`: dry-run every selected host and print the wave's plan (batches, what each host's
    /// update does, reboots, space, predicted durations, deferrals, the estimated finish);
    /// changes nothing.
    #[arg(long)]
    pub plan: bool,

    /// `wave`: start a host even when its predicted duration would overrun its maintenance
    /// window (by default it is deferred to its next window).
    #[arg(long)]
    pub no_defer: bool,
    /// What a wave does when failures pass --max-failures (or a batch has no success):
    /// `abort` halts it (exit 1); `pause` stops the run with the wave saved, exit 5, to be
    /// continued with --resume. Default: `[fleet] on_threshold`, else abort.
    #[arg(long, value_name = "pause|abort")]
    pub on_threshold: Option<ThresholdArg>,

    /// `wave`: continue the unfinished wave the snapshot holds (stopped, killed, or paused at
    /// its threshold) as it was planned; takes no selectors or wave options.
    #[arg(long)]
    pub resume: bool,

    /// With --resume: go on although the config changed since the wave started (hosts no
    /// longer configured are dropped, changed ones run with their new config).
    #[arg(long)]
    pub accept_changes: bool,

    /// `wave`: run the `[[schedule]]` of this name: its selectors and wave options (given
    /// alongside, they are refused). Waits for the state lock up to the schedule's `lock_wait`.
    #[arg(long, value_name = "NAME")]
    pub schedule: Option<String>,

    /// With --resume, for a wave paused at its threshold: retry the failed hosts, skip them,
    /// or continue with them counted.
    #[arg(long, value_name = "retry|skip|continue")]
    pub failed: Option<FailedArg>,

    /// `history`: only waves started (and entries written) since then: a duration back from
    /// now (`7d`, `24h`) or a date (`2026-01-31`, RFC 3339).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
}

/// `--on-threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ThresholdArg {
    Pause,
    Abort,
}

/// `--failed`: the operator's choice for a wave resumed at its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailedArg {
    Retry,
    Skip,
    Continue,
}

/// The selector flags as typed; [`crate::fleet::select`] gives them their meaning (HOST and
/// --group unite, --tag narrows, --exclude removes; none means all hosts).
#[derive(Debug, Default, Clone, Args)]
pub struct SelectArgs {
    /// Hosts to act on (default: all, or the members of --group).
    #[arg(value_name = "HOST")]
    pub hosts: Vec<String>,

    /// Only hosts with this tag (repeat: a host needs every tag).
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    pub tags: Vec<String>,

    /// Add the hosts of this group (repeat for more groups).
    #[arg(long = "group", short = 'g', value_name = "GROUP")]
    pub groups: Vec<String>,

    /// Leave this host out (repeatable).
    #[arg(long = "exclude", short = 'x', value_name = "HOST")]
    pub exclude: Vec<String>,
}

impl From<&SelectArgs> for Selectors {
    fn from(args: &SelectArgs) -> Self {
        Selectors {
            hosts: args.hosts.clone(),
            tags: args.tags.clone(),
            groups: args.groups.clone(),
            exclude: args.exclude.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create tendhost's own ed25519 key and print its authorized_keys line.
    Keygen {
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
    },
    /// Write a starter tendhost.toml (never over an existing one) and say how to import hosts.
    Init,
    /// Manage hosts in tendhost.toml.
    #[command(subcommand)]
    Host(HostCommand),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    Man,
    /// Scheduled waves (`[[schedule]]`): list them, install their systemd timers.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Notifications (`[[notify]]`): send a test message.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Summarize past waves from the audit log for a ticket or a change log.
    Report(ReportArgs),
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message through one notifier now; exit 0 once it is delivered.
    Test {
        /// The `[[notify]]` name.
        name: String,
    },
}

/// `tendhost report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// markdown: a change-log summary; json: one document; csv: one row per host per wave.
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Only waves started since then: a duration back from now (`7d`, `24h`) or a date
    /// (`2026-01-31`, RFC 3339).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only this wave: its name (`2026-12-03T15:48:51.123Z#1`), its id (the newest with it),
    /// or `last`.
    #[arg(long, value_name = "ID")]
    pub wave: Option<String>,
}

/// `report --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Show the configured schedules, their next run, last run and whether a timer is installed.
    List {
        /// Look for user units (~/.config/systemd/user) instead of system units.
        #[arg(long)]
        user: bool,
        /// Prefix for the unit directory (for tests and image builds).
        #[arg(long, value_name = "DIR", env = "TENDHOST_UNIT_ROOT")]
        root: Option<PathBuf>,
    },
    /// Write a systemd timer + service that runs `tendhost --batch wave --schedule NAME`.
    Install {
        /// The `[[schedule]]` name.
        name: String,
        /// Install user units (~/.config/systemd/user) instead of /etc/systemd/system.
        #[arg(long)]
        user: bool,
        /// Print the units instead of writing them.
        #[arg(long)]
        dry_run: bool,
        /// Prefix for the unit directory (for tests and image builds).
        #[arg(long, value_name = "DIR", env = "TENDHOST_UNIT_ROOT")]
        root: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Add a host to tendhost.toml, keeping its comments and layout.
    Add {
        /// `user@address[:port]` of the new host.
        #[arg(value_name = "USER@ADDR")]
        target: String,
        /// Name in tendhost (default: the address).
        #[arg(long)]
        name: Option<String>,
        /// Tags for the host (repeatable).
        #[arg(long = "tag", short = 't')]
        tags: Vec<String>,
    },
    /// Add the hosts of an OpenSSH client config or an Ansible inventory (INI or YAML), keeping
    /// tendhost.toml's comments; hosts already configured are skipped, the new ones tested.
    Import {
        /// Read the `Host` entries of this ssh config [default: ~/.ssh/config].
        #[arg(
            long,
            value_name = "FILE",
            num_args = 0..=1,
            default_missing_value = "~/.ssh/config",
            required_unless_present = "ansible_inventory",
            conflicts_with = "ansible_inventory"
        )]
        ssh_config: Option<PathBuf>,
        /// Read an Ansible inventory: groups become [groups] and tags.
        #[arg(long, value_name = "FILE")]
        ansible_inventory: Option<PathBuf>,
        /// Show what would be added; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not test the new hosts afterwards.
        #[arg(long)]
        no_test: bool,
        /// Learn the new hosts' keys while testing them (trust on first use).
        #[arg(long)]
        accept_new: bool,
        /// Tags for every imported host (repeatable).
        #[arg(long = "tag", short = 't')]
        tags: Vec<String>,
    },
    /// Connect to hosts and report reachable / auth failed / host key unknown or changed.
    Test {
        #[command(flatten)]
        select: SelectArgs,
        /// Learn the keys of hosts not yet known (trust on first use).
        #[arg(long)]
        accept_new: bool,
        /// One JSON object per host.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_a_wave() {
        let cli = Cli::try_parse_from([
            "tendhost",
            "--batch",
            "wave",
            "--tag",
            "web",
            "--tag",
            "prod",
            "--batch-size",
            "1,5,25%",
            "--max-failures",
            "10%",
            "--barriers",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.batch, Some(BatchCommand::Wave));
        assert_eq!(cli.batch_args.select.tags, ["web", "prod"]);
        assert!(cli.batch_args.packages.is_empty() && !cli.batch_args.security_only);
        assert!(cli.batch_args.json);
        assert!(cli.batch_args.barriers);
    }

    #[test]
    fn parses_a_scoped_update() {
        let cli = Cli::try_parse_from([
            "tendhost",
            "--batch",
            "update",
            "--packages",
            "openssl,libssl3",
            "--packages",
            "curl",
            "--security-only",
            "--dry-run",
        ])
        .unwrap();
        assert_eq!(cli.batch_args.packages, ["openssl", "libssl3", "curl"]);
        assert!(cli.batch_args.security_only && cli.batch_args.dry_run);
    }

    #[test]
    fn selector_flags_become_one_selection() {
        let cli = Cli::try_parse_from([
            "tendhost", "host", "test", "a", "b", "-t", "prod", "-g", "web", "-x", "c",
        ])
        .unwrap();
        let Some(Command::Host(HostCommand::Test { select, .. })) = &cli.command else {
            panic!("not host test: {cli:?}");
        };
        assert_eq!(
            Selectors::from(select),
            Selectors {
                hosts: vec!["a".into(), "b".into()],
                tags: vec!["prod".into()],
                groups: vec!["web".into()],
                exclude: vec!["c".into()],
            }
        );
    }
}
