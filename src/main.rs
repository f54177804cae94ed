//! tendhost: keep a fleet patched from one terminal.
//!
//! Wiring only: command line → config → engine → TUI or batch → exit code. color-eyre lives here
//! and nowhere else; expected failures (a bad config, a held lock) are typed and mapped to the exit
//! codes of DESIGN.md §3.
// Denied, with one audited exception: taking TENDHOST_SSH_KEY out of the environment.
#![deny(unsafe_code)]

use tendhost::{
    batch, cli, config, engine, errors, exit, fleet, history, hostmgmt, logging, remote, schedule,
    stdio, store, tui,
};

use std::path::PathBuf;

use clap::{CommandFactory, Parser};

use crate::cli::{BatchCommand, Cli, Command, HostCommand, NotifyCommand, ScheduleCommand};
use crate::config::{Config, ConfigError};
use crate::exit::Exit;
use crate::store::Paths;
use crate::store::audit::AuditRecord;

fn main() -> std::process::ExitCode {
    take_secrets_from_the_environment();
    if let Err(report) = color_eyre::install() {
        stdio::err_line(format!("tendhost: {report}"));
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(report) => {
            stdio::err_line(format!("tendhost: {report:?}"));
            Exit::HostFailed.into()
        }
    }
}

/// Reads `TENDHOST_SSH_KEY` once and removes it from the environment, so nothing tendhost or a
/// dependency starts (a local host's apt and its maintainer scripts, a check) can inherit it.
/// The crate's one `unsafe`: `remove_var` races with other threads reading the environment,
/// and it runs first thing in `main`, before any thread or runtime exists.
#[allow(unsafe_code)]
fn take_secrets_from_the_environment() {
    let key = std::env::var(tendhost::remote::ENV_KEY).ok();
    // SAFETY: single-threaded here: `main` calls this before anything else (runtimes are
    // built later, in `run`).
    unsafe { std::env::remove_var(tendhost::remote::ENV_KEY) };
    tendhost::remote::keep_env_key(key);
}

fn run(cli: Cli) -> color_eyre::Result<Exit> {
    match &cli.command {
        // Made in memory, then written: clap_complete panics on a failed write (`| head`).
        Some(Command::Completions { shell }) => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "tendhost", &mut script);
            let _ = stdio::out_bytes(&script);
            return Ok(Exit::Ok);
        }
        Some(Command::Man) => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            let _ = stdio::out_bytes(&page);
            return Ok(Exit::Ok);
        }
        _ => {}
    }

    let paths = match Paths::resolve(cli.state_dir.as_deref()) {
        Ok(paths) => paths,
        Err(err) => return Ok(usage_error(&format!("resolving XDG directories: {err}"))),
    };
    // keygen and init need no config: they are often the first things a new user runs.
    if let Some(Command::Keygen { force }) = &cli.command {
        return Ok(keygen(&paths, *force));
    }
    if let Some(Command::Init) = &cli.command {
        return Ok(init(&cli, &paths));
    }
    let config = match load_config(&cli, &paths) {
        Ok(config) => config,
        Err(err) => {
            stdio::err_line(prefixed(&errors::chain(&err)));
            return Ok(Exit::Usage);
        }
    };
    for warning in &config.warnings {
        stdio::err_line(format!("tendhost: warning: {warning}"));
    }

    // One tendhost per state dir for everything that may change hosts, files or the snapshot;
    // `check` only reads the config. (`--batch` takes the lock itself, after validating.)
    let _lock = match (&cli.command, cli.batch) {
        (Some(Command::Host(_)), _) => match take_lock(&paths) {
            Ok(lock) => Some(lock),
            Err(exit) => return Ok(exit),
        },
        _ => None,
    };

    match (&cli.command, cli.batch) {
        (None, Some(BatchCommand::Check)) => Ok(print_check(&config)),
        // Read-only, like `check`: the audit log needs no lock and no engine.
        (None, Some(BatchCommand::History)) => {
            Ok(history::command::history(&config, &paths, &cli.batch_args))
        }
        (None, Some(command)) => run_batch(command, &cli, config, &paths),
        (None, None) => run_console(&cli, config, &paths),
        (Some(Command::Host(HostCommand::Add { target, name, tags })), _) => Ok(host_add(
            &config,
            &paths,
            target,
            name.clone(),
            tags.clone(),
        )),
        (
            Some(Command::Host(HostCommand::Test {
                select,
                accept_new,
                json,
            })),
            _,
        ) => {
            let chosen: Vec<&config::HostConfig> =
                match fleet::select::select(&config, &select.into()) {
                    Ok(ids) => ids.iter().filter_map(|id| config.host(id)).collect(),
                    Err(err) => return Ok(usage_error(&err.to_string())),
                };
            let own = remote::OwnFiles {
                known_hosts: paths.known_hosts(),
                key: paths.key(),
            };
            let ctx = remote::RemoteContext::from_config(&config, own);
            let opts = hostmgmt::TestOptions {
                accept_new: *accept_new,
                json: *json,
                concurrency: config.fleet.concurrency,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            Ok(runtime.block_on(hostmgmt::test_hosts(&chosen, &ctx, &opts)))
        }
        (
            Some(Command::Host(HostCommand::Import {
                ssh_config,
                ansible_inventory,
                dry_run,
                no_test,
                accept_new,
                tags,
            })),
            _,
        ) => {
            let source = match (ssh_config, ansible_inventory) {
                (_, Some(file)) => hostmgmt::import::Source::AnsibleInventory(file.clone()),
                (Some(file), None) => {
                    hostmgmt::import::Source::SshConfig(hostmgmt::import::expand_home(file))
                }
                (None, None) => return Ok(usage_error("name --ssh-config or --ansible-inventory")),
            };
            let opts = hostmgmt::import::ImportOptions {
                dry_run: *dry_run,
                no_test: *no_test,
                accept_new: *accept_new,
                tags: tags.clone(),
            };
            Ok(hostmgmt::import::run(&config, &paths, &source, &opts))
        }
        (Some(Command::Schedule(ScheduleCommand::List { user, root })), _) => Ok(
            schedule::commands::list(&config, &paths, root.as_deref(), *user),
        ),
        (
            Some(Command::Schedule(ScheduleCommand::Install {
                name,
                user,
                dry_run,
                root,
            })),
            _,
        ) => Ok(schedule::commands::install(
            &config,
            cli.state_dir.as_deref(),
            name,
            root.as_deref(),
            *user,
            *dry_run,
        )),
        (Some(Command::Notify(NotifyCommand::Test { name })), _) => {
            let runtime = tokio::runtime::Runtime::new()?;
            Ok(notify_test(&config, name, &runtime))
        }
        (Some(Command::Report(args)), _) => Ok(history::command::report(
            &config,
            &paths,
            history::command::Ask {
                select: &args.select,
                since: args.since.as_deref(),
            },
            args.wave.as_deref(),
            args.format,
        )),
        (
            Some(
                Command::Keygen { .. } | Command::Init | Command::Completions { .. } | Command::Man,
            ),
            _,
        ) => Ok(Exit::Ok),
    }
}

/// `--batch COMMAND`: validate, take the state lock, run the engine headless.
fn run_batch(
    command: BatchCommand,
    cli: &Cli,
    config: Config,
    paths: &Paths,
) -> color_eyre::Result<Exit> {
    let scheduled = match schedule::run::batch_args(command, &cli.batch_args, &config) {
        Ok(scheduled) => scheduled,
        Err(err) => return Ok(usage_error(&err)),
    };
    let args = scheduled.as_ref().map_or(&cli.batch_args, |(args, _)| args);
    let request = match batch::Request::new(command, args, &config) {
        Ok(request) => request,
        Err(err) => return Ok(usage_error(&err)),
    };
    let schedule_name = scheduled.as_ref().map(|(_, s)| s.name.clone());
    let lock_wait = scheduled.as_ref().map(|(_, s)| s.lock_wait);
    if let Some(name) = &schedule_name
        && schedule::is_paused(paths, name)
    {
        // Paused in the console (or by hand): the timer still fires; the run is a skip.
        stdio::err_line(format!(
            "tendhost: schedule '{name}' is paused; not running it"
        ));
        schedule::record_batch_skip(&config, paths, name, "paused");
        return Ok(Exit::Ok);
    }
    let _lock = match take_lock_waiting(paths, lock_wait) {
        Ok(lock) => lock,
        Err(exit) => {
            if let Some(name) = &schedule_name
                && exit == Exit::Locked
            {
                let reason = "another tendhost held the state lock past lock_wait";
                schedule::audit_batch_skip(&config, paths, name, reason);
            }
            return Ok(exit);
        }
    };
    let _log = logging::init(&paths.log(), config.log_level.as_deref(), None)?;
    let loaded = store::snapshot::load(&paths.snapshot());
    if let Some(warning) = &loaded.warning {
        stdio::err_line(format!("tendhost: warning: {warning}"));
    }
    let config = std::sync::Arc::new(config);
    let mut deps = engine::EngineDeps::real(&config, paths, loaded.snapshot);
    // A batch run is short: no periodic refresh on top of what it was asked to do.
    deps.periodic_refresh = false;
    let printer = batch::Printer::new(request.json, batch_name(command)).with_scope(&request.scope);
    let runtime = tokio::runtime::Runtime::new()?;
    let started = chrono::Utc::now();
    let exit = runtime.block_on(async move {
        let (engine, events) = engine::Engine::start(config.clone(), deps);
        batch::run(engine, events, request, printer).await
    });
    if let Some(name) = schedule_name {
        schedule::record_batch_run(paths, &name, started, exit);
    }
    Ok(exit)
}

/// Creates the state dir and takes its lock; exit 4 when another tendhost holds it.
fn take_lock(paths: &Paths) -> Result<store::StateLock, Exit> {
    take_lock_waiting(paths, None)
}

/// [`take_lock`], waiting up to `wait` (a scheduled run) while another tendhost holds it.
fn take_lock_waiting(
    paths: &Paths,
    wait: Option<std::time::Duration>,
) -> Result<store::StateLock, Exit> {
    if let Err(err) = paths.ensure_state_dir() {
        return Err(usage_error(&format!(
            "creating the state dir '{}': {err}",
            paths.state_dir.display()
        )));
    }
    let acquired = match wait {
        Some(wait) => schedule::run::acquire_lock_waiting(&paths.lock(), wait),
        None => store::StateLock::acquire(&paths.lock()),
    };
    match acquired {
        Ok(lock) => Ok(lock),
        Err(err @ store::LockError::Held { .. }) => {
            stdio::err_line(format!("tendhost: {err}"));
            Err(Exit::Locked)
        }
        Err(err) => Err(usage_error(&errors::chain(&err))),
    }
}

fn batch_name(command: BatchCommand) -> &'static str {
    match command {
        BatchCommand::Check => "check",
        BatchCommand::Hosts => "hosts",
        BatchCommand::Inventory => "inventory",
        BatchCommand::Update => "update",
        BatchCommand::Reboot => "reboot",
        BatchCommand::Wave => "wave",
        BatchCommand::Repair => "repair",
        BatchCommand::Rollback => "rollback",
        BatchCommand::Retry => "retry",
        BatchCommand::Ack => "ack",
        BatchCommand::History => "history",
    }
}

/// `tendhost notify test NAME`: exit 0 once delivered, 2 for an unknown name, 1 when the
/// delivery failed (with the error chain).
fn notify_test(config: &Config, name: &str, runtime: &tokio::runtime::Runtime) -> Exit {
    match runtime.block_on(tendhost::notify::send_test(config, name)) {
        Ok(attempts) => {
            let _ = stdio::out_line(format!(
                "notifier '{name}': test message delivered ({attempts} attempt(s))"
            ));
            Exit::Ok
        }
        Err(err @ tendhost::notify::TestError::Unknown { .. }) => usage_error(&err.to_string()),
        Err(err) => {
            stdio::err_line(format!("tendhost: {}", errors::chain(&err)));
            Exit::HostFailed
        }
    }
}

/// `tendhost keygen`: print the public line on stdout, say where the key is on stderr.
fn keygen(paths: &Paths, force: bool) -> Exit {
    match hostmgmt::keygen(paths, force) {
        Ok(key) => {
            let what = if key.created {
                "created"
            } else {
                "kept existing (use --force to replace)"
            };
            stdio::err_line(format!(
                "tendhost: {what} key '{}'; add this line to authorized_keys:",
                key.path.display()
            ));
            let _ = stdio::out_line(&key.public_line);
            Exit::Ok
        }
        Err(err) => {
            stdio::err_line(format!("tendhost: keygen: {}", errors::chain(&err)));
            Exit::HostFailed
        }
    }
}

/// `tendhost init`: the starter config where `--config`, `TENDHOST_CONFIG` or else the XDG
/// config dir says.
fn init(cli: &Cli, paths: &Paths) -> Exit {
    let asked = cli
        .config
        .clone()
        .or_else(|| std::env::var_os("TENDHOST_CONFIG").map(PathBuf::from));
    let target = match (&asked, &paths.config_dir) {
        (Some(path), _) => path.clone(),
        (None, Some(dir)) => dir.join("tendhost.toml"),
        (None, None) => {
            return usage_error("no config dir (XDG_CONFIG_HOME or HOME): pass --config PATH");
        }
    };
    hostmgmt::init(&target, asked.is_some())
}

/// `tendhost host add`: append to the config file that was loaded.
fn host_add(
    config: &Config,
    paths: &Paths,
    target: &str,
    name: Option<String>,
    tags: Vec<String>,
) -> Exit {
    let host = match hostmgmt::NewHost::parse(target, name, tags) {
        Ok(host) => host,
        Err(err) => return usage_error(&err.to_string()),
    };
    match hostmgmt::add_host(&config.path, &host) {
        Ok(_) => {
            let _ = stdio::out_line(format!(
                "added host '{}' to {}",
                host.name,
                config.path.display()
            ));
            let detail = format!("host add '{target}' to '{}'", config.path.display());
            let record = AuditRecord::new("config_change", Some(&host.name), "ok", Some(&detail));
            if let Err(err) = store::audit::append_one(config, paths, record) {
                stdio::err_line(format!("tendhost: warning: {err}"));
            }
            Exit::Ok
        }
        Err(err) => usage_error(&errors::chain(&err)),
    }
}

/// The full-screen console over the engine. Logs go to the log file and the App log tab, never
/// onto the terminal the console owns.
fn run_console(cli: &Cli, config: Config, paths: &Paths) -> color_eyre::Result<Exit> {
    let settings = match tui::Settings::from_config(&config, cli.read_only) {
        Ok(settings) => settings,
        Err(err) => return Ok(usage_error(&err.to_string())),
    };
    let _lock = match take_lock(paths) {
        Ok(lock) => lock,
        Err(exit) => return Ok(exit),
    };
    let _log = logging::init(
        &paths.log(),
        config.log_level.as_deref(),
        Some(Box::new(tui_logger::TuiTracingSubscriberLayer)),
    )?;
    // Fails only if its mover thread cannot start; the App log tab then stays empty.
    let _ = tui_logger::init_logger(tui_logger::LevelFilter::Info);
    let loaded = store::snapshot::load(&paths.snapshot());
    if let Some(warning) = &loaded.warning {
        tracing::warn!("{warning}");
    }
    let settings = tui::Settings {
        startup_warning: loaded.warning,
        schedule_state: Some(paths.state_dir.join(schedule::STATE_FILE)),
        ..settings
    };
    let config = std::sync::Arc::new(config);
    let deps = engine::EngineDeps::real(&config, paths, loaded.snapshot);
    let runtime = tokio::runtime::Runtime::new()?;
    match runtime.block_on(tui::console(config, deps, settings))? {
        tui::Ended::Quit => Ok(Exit::Ok),
        tui::Ended::Interrupted => Ok(Exit::Interrupted),
    }
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
    let tags = config.tags();
    let mut lines = vec![format!(
        "{}: ok, {} hosts, {} groups, {} tags",
        config.path.display(),
        config.hosts.len(),
        config.groups.len(),
        tags.len()
    )];
    for host in &config.hosts {
        let target = match host.transport {
            config::Transport::Local => "local".to_string(),
            config::Transport::Ssh => format!("{}@{}:{}", host.user, host.addr, host.port),
        };
        lines.push(format!(
            "  host  {:<20} {:<28} {}",
            host.name,
            target,
            host.tags.join(",")
        ));
    }
    for (group, members) in &config.groups {
        let names: Vec<&str> = members.iter().map(|m| &**m).collect();
        lines.push(format!("  group {:<20} {}", group, names.join(", ")));
    }
    if !tags.is_empty() {
        lines.push(format!("  tags  {}", tags.join(", ")));
    }
    for notifier in &config.notify {
        let on: Vec<&str> = notifier.on.iter().map(|k| k.as_str()).collect();
        lines.push(format!(
            "  notify {:<19} {:<28} {}",
            notifier.name,
            notifier.kind(),
            on.join(",")
        ));
    }
    // A reader that stops early (`| head -1`) has seen what it wanted.
    let _ = lines.iter().try_for_each(stdio::out_line);
    Exit::Ok
}

fn usage_error(message: &str) -> Exit {
    stdio::err_line(format!("tendhost: {message}"));
    Exit::Usage
}

/// Prefixes every line of a multi-line message with `tendhost: `.
fn prefixed(message: &str) -> String {
    let lines: Vec<String> = message.lines().map(|l| format!("tendhost: {l}")).collect();
    lines.join("\n")
}
