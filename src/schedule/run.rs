//! `--batch wave --schedule NAME`: the schedule's wave as command-line options, a bounded wait
//! for the state lock, and the run's outcome recorded in the schedule state.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::{BatchArgs, BatchCommand};
use crate::config::{Config, ScheduleConfig};
use crate::engine::WaveRequest;
use crate::store::{LockError, StateLock};

/// How often a waiting run tries the lock again (headless, so a short sleep loop is fine).
const LOCK_RETRY: Duration = Duration::from_millis(500);

/// The schedule named by `--schedule`, with its options in place of the command line's.
///
/// Selectors or wave options typed next to `--schedule` are refused, so what runs is what the
/// config says (and what `schedule list` shows).
pub fn batch_args<'c>(
    command: BatchCommand,
    args: &BatchArgs,
    config: &'c Config,
) -> Result<Option<(BatchArgs, &'c ScheduleConfig)>, String> {
    let Some(name) = &args.schedule else {
        return Ok(None);
    };
    if command != BatchCommand::Wave {
        return Err("--schedule only applies to --batch wave".into());
    }
    let Some(schedule) = config.schedules.iter().find(|s| &s.name == name) else {
        let names: Vec<&str> = config.schedules.iter().map(|s| s.name.as_str()).collect();
        let hint = crate::config::suggest::did_you_mean(name, &names);
        return Err(format!("no [[schedule]] named '{name}'{hint}"));
    };
    let s = &args.select;
    let typed = !s.hosts.is_empty()
        || !s.tags.is_empty()
        || !s.groups.is_empty()
        || !s.exclude.is_empty()
        || args.batch_size.is_some()
        || args.delay.is_some()
        || args.max_failures.is_some()
        || !args.packages.is_empty()
        || args.security_only
        || args.resume
        || args.plan
        || args.allow_removals;
    if typed {
        return Err(format!(
            "--schedule '{name}' takes its selectors and wave options from the config; drop the others"
        ));
    }
    let mut out = args.clone();
    out.select.hosts = schedule.select.hosts.clone();
    out.select.tags = schedule.select.tags.clone();
    out.select.groups = schedule.select.groups.clone();
    out.select.exclude = schedule.select.exclude.clone();
    out.batch_size = schedule.batch_size.clone();
    out.delay = schedule.delay.clone();
    out.max_failures = schedule.max_failures.clone();
    out.packages = schedule.packages.clone();
    out.security_only = schedule.security_only;
    out.dry_run = args.dry_run || schedule.dry_run;
    out.allow_removals = args.allow_removals || schedule.allow_removals;
    Ok(Some((out, schedule)))
}

/// The wave schedule `name` runs, as the console starts it: built from the same options
/// `--batch wave --schedule NAME` gets, so both frontends run the same wave. `Err` says why
/// it cannot run (a selection that matches no host, say).
pub fn wave_request(config: &Config, name: &str) -> Result<WaveRequest, String> {
    let args = BatchArgs {
        schedule: Some(name.to_string()),
        ..BatchArgs::default()
    };
    let (args, _) = batch_args(BatchCommand::Wave, &args, config)?
        .ok_or_else(|| format!("no [[schedule]] named '{name}'"))?;
    crate::batch::Request::new(BatchCommand::Wave, &args, config)?
        .wave
        .ok_or_else(|| format!("schedule '{name}' plans no wave"))
}

/// Takes the state lock, waiting up to `wait` while another tendhost holds it.
pub fn acquire_lock_waiting(path: &Path, wait: Duration) -> Result<StateLock, LockError> {
    let deadline = Instant::now() + wait;
    loop {
        match StateLock::acquire(path) {
            Err(LockError::Held { .. }) if Instant::now() < deadline => thread::sleep(LOCK_RETRY),
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_str(
            "t.toml",
            "[[host]]\nname = \"a\"\naddr = \"10.0.0.1\"\n\n[[schedule]]\nname = \"sun\"\nwhen = \"Sun 03:00\"\nhosts = [\"a\"]\nbatch_size = \"1\"\nsecurity_only = true\ndry_run = true\nallow_removals = true\n",
        )
        .unwrap()
    }

    #[test]
    fn a_schedule_becomes_the_waves_options() {
        let config = config();
        let args = BatchArgs {
            schedule: Some("sun".into()),
            json: true,
            ..BatchArgs::default()
        };
        let (args, s) = batch_args(BatchCommand::Wave, &args, &config)
            .unwrap()
            .unwrap();
        assert_eq!(s.name, "sun");
        assert_eq!(args.select.hosts, ["a"]);
        assert_eq!(args.batch_size.as_deref(), Some("1"));
        assert!(args.security_only && args.dry_run && args.json && args.allow_removals);
    }

    #[test]
    fn the_console_gets_the_same_wave_as_the_batch_run() {
        let config = config();
        let wave = wave_request(&config, "sun").unwrap();
        assert_eq!(wave.hosts.len(), 1);
        assert_eq!(&*wave.hosts[0], "a");
        assert!(wave.dry_run && wave.scope.security_only);
        let err = wave_request(&config, "mon").unwrap_err();
        assert!(err.contains("no [[schedule]] named 'mon'"), "{err}");
    }

    #[test]
    fn unknown_schedules_and_extra_options_are_refused() {
        let config = config();
        let mut args = BatchArgs {
            schedule: Some("sunday".into()),
            ..BatchArgs::default()
        };
        let err = batch_args(BatchCommand::Wave, &args, &config).unwrap_err();
        assert!(err.contains("no [[schedule]] named 'sunday'"), "{err}");
        args.schedule = Some("sun".into());
        args.select.tags = vec!["web".into()];
        let err = batch_args(BatchCommand::Wave, &args, &config).unwrap_err();
        assert!(err.contains("drop the others"), "{err}");
        let err = batch_args(BatchCommand::Update, &args, &config).unwrap_err();
        assert!(err.contains("only applies to --batch wave"), "{err}");
    }

    #[test]
    fn a_held_lock_is_waited_for_then_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = StateLock::acquire(&path).unwrap();
        let started = Instant::now();
        let err = acquire_lock_waiting(&path, Duration::from_millis(600)).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(600));
        drop(held);
        assert!(acquire_lock_waiting(&path, Duration::from_secs(5)).is_ok());
    }
}
