//! tendhost: keep a fleet patched from one terminal.
//!
//! Wiring only: command line → config → engine → TUI or batch → exit code. color-eyre lives here
//! and nowhere else; expected failures (a bad config, a held lock) are typed and mapped to the exit
//! codes of DESIGN.md §3.
#![forbid(unsafe_code)]

use tendhost::{cli, config, exit, logging, store, tui};

use std::io::Write;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};

use crate::cli::{BatchCommand, Cli, Command};
use crate::config::{Config, ConfigError};
use crate::exit::Exit;
use crate::store::Paths;

fn main() -> std::process::ExitCode {
    if let Err(report) = color_eyre::install() {
        eprintln!("tendhost: {report}");
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(report) => {
            eprintln!("tendhost: {report:?}");
            Exit::HostFailed.into()
        }
    }
}

fn run(cli: Cli) -> color_eyre::Result<Exit> {
    match &cli.command {
        Some(Command::Completions { shell }) => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "tendhost", &mut std::io::stdout());
            return Ok(Exit::Ok);
        }
        Some(Command::Man) => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            return Ok(Exit::Ok);
        }
        _ => {}
    }

    let paths = match Paths::resolve(cli.state_dir.as_deref()) {
        Ok(paths) => paths,
        Err(err) => return Ok(usage_error(&format!("resolving XDG directories: {err}"))),
    };
    let config = match load_config(&cli, &paths) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{}", prefixed(&error_chain(&err)));
            return Ok(Exit::Usage);
        }
    };
    for warning in &config.warnings {
        eprintln!("tendhost: warning: {warning}");
    }

    match (&cli.command, cli.batch) {
        (None, Some(BatchCommand::Check)) => Ok(print_check(&config)),
        (None, Some(other)) => Ok(not_yet(&format!("--batch {other:?}").to_lowercase())),
        (None, None) => run_console(&cli, &config, &paths),
        (Some(Command::Keygen { .. }), _) => Ok(not_yet("keygen")),
        (Some(Command::Host(_)), _) => Ok(not_yet("host")),
        (Some(Command::Completions { .. } | Command::Man), _) => Ok(Exit::Ok),
    }
}

/// The full-screen console. Logs go to the log file and the App log tab, never the terminal.
fn run_console(cli: &Cli, config: &Config, paths: &Paths) -> color_eyre::Result<Exit> {
    let settings = match tui::Settings::from_config(config, cli.read_only) {
        Ok(settings) => settings,
        Err(err) => return Ok(usage_error(&err.to_string())),
    };
    paths.ensure_state_dir()?;
    let _lock = match store::StateLock::acquire(&paths.lock()) {
        Ok(lock) => lock,
        Err(err @ store::LockError::Held { .. }) => {
            eprintln!("tendhost: {err}");
            return Ok(Exit::Locked);
        }
        Err(err) => return Err(err.into()),
    };
    let _log = logging::init(
        &paths.log(),
        config.log_level.as_deref(),
        Some(Box::new(tui_logger::TuiTracingSubscriberLayer)),
    )?;
    // Only fails if its mover thread cannot start; the App log tab then stays empty.
    let _ = tui_logger::init_logger(tui_logger::LevelFilter::Info);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(tui::console(config, settings))?;
    Ok(Exit::Ok)
}

/// Finds and validates the config (DESIGN.md §3 discovery order).
fn load_config(cli: &Cli, paths: &Paths) -> Result<Config, ConfigError> {
    let env = std::env::var_os("TENDHOST_CONFIG").map(PathBuf::from);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let found = config::discover(
        cli.config.as_deref(),
        env.as_deref(),
        &cwd,
        paths.config_dir.as_deref(),
    )?;
    Config::load(found.path)
}

/// `--batch check`: the config is valid; say what it holds.
fn print_check(config: &Config) -> Exit {
    let mut out = std::io::stdout().lock();
    let tags = config.tags();
    let _ = writeln!(
        out,
        "{}: ok, {} hosts, {} groups, {} tags",
        config.path.display(),
        config.hosts.len(),
        config.groups.len(),
        tags.len()
    );
    for host in &config.hosts {
        let target = match host.transport {
            config::Transport::Local => "local".to_string(),
            config::Transport::Ssh => format!("{}@{}:{}", host.user, host.addr, host.port),
        };
        let _ = writeln!(
            out,
            "  host  {:<20} {:<28} {}",
            host.name,
            target,
            host.tags.join(",")
        );
    }
    for (group, members) in &config.groups {
        let names: Vec<&str> = members.iter().map(|m| &**m).collect();
        let _ = writeln!(out, "  group {:<20} {}", group, names.join(", "));
    }
    if !tags.is_empty() {
        let _ = writeln!(out, "  tags  {}", tags.join(", "));
    }
    Exit::Ok
}

fn not_yet(what: &str) -> Exit {
    usage_error(&format!("{what} is not available yet in this build"))
}

fn usage_error(message: &str) -> Exit {
    eprintln!("tendhost: {message}");
    Exit::Usage
}

/// An error and its causes on one line: `reading config 'x': No such file or directory`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Prefixes every line of a multi-line message with `tendhost: `.
fn prefixed(message: &str) -> String {
    let lines: Vec<String> = message.lines().map(|l| format!("tendhost: {l}")).collect();
    lines.join("\n")
}
