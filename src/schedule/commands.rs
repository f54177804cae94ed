//! `tendhost schedule list` and `tendhost schedule install NAME`.

use std::path::{Path, PathBuf};

use chrono::Local;

use super::{ScheduleStates, systemd};
use crate::config::Config;
use crate::exit::Exit;
use crate::stdio;
use crate::store::{Paths, write_private_atomic};

/// Where unit files live for `--user` or not, under `--root` (default `/`).
fn unit_dir(root: Option<&Path>, user: bool) -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    systemd::unit_dir(root.unwrap_or(Path::new("/")), user, &home)
}

/// One line per schedule: name, when, next run (local), paused, last run, timer installed.
pub fn list(config: &Config, paths: &Paths, root: Option<&Path>, user: bool) -> Exit {
    let states = match ScheduleStates::load(&paths.state_dir.join(super::STATE_FILE)) {
        Ok(s) => s,
        Err(err) => {
            stdio::err_line(format!("tendhost: {}", crate::errors::chain(&err)));
            ScheduleStates::default()
        }
    };
    if config.schedules.is_empty() {
        stdio::err_line("tendhost: no [[schedule]] in the config");
        return Exit::Ok;
    }
    let dir = unit_dir(root, user);
    let _ = stdio::out_line(format!(
        "{:<16} {:<18} {:<22} {:<7} {:<28} TIMER",
        "NAME", "WHEN", "NEXT", "PAUSED", "LAST"
    ));
    let now = Local::now();
    for s in &config.schedules {
        let state = states.get(&s.name);
        let next = s.when.next_after(&now).map_or("—".to_string(), |t| {
            t.format("%a %Y-%m-%d %H:%M").to_string()
        });
        let last = state.last_run.as_ref().map_or("—".to_string(), |r| {
            format!(
                "{} {}",
                r.started.with_timezone(&Local).format("%m-%d %H:%M"),
                r.result
            )
        });
        let timer = dir.join(format!("{}.timer", systemd::unit_stem(&s.name)));
        let installed = if timer.exists() {
            if user {
                "installed (user)"
            } else {
                "installed"
            }
        } else {
            "—"
        };
        let _ = stdio::out_line(format!(
            "{:<16} {:<18} {:<22} {:<7} {:<28} {installed}",
            s.name,
            s.when.as_str(),
            next,
            if state.paused { "yes" } else { "no" },
            last
        ));
    }
    Exit::Ok
}

/// Writes (or with `dry_run` prints) the timer and service for one schedule.
pub fn install(
    config: &Config,
    state_dir: Option<&Path>,
    name: &str,
    root: Option<&Path>,
    user: bool,
    dry_run: bool,
) -> Exit {
    let Some(schedule) = config.schedules.iter().find(|s| s.name == name) else {
        let names: Vec<&str> = config.schedules.iter().map(|s| s.name.as_str()).collect();
        let hint = crate::config::suggest::did_you_mean(name, &names);
        stdio::err_line(format!("tendhost: no [[schedule]] named '{name}'{hint}"));
        return Exit::Usage;
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => {
            stdio::err_line(format!("tendhost: finding tendhost's own path: {err}"));
            return Exit::Usage;
        }
    };
    let config_path = std::path::absolute(&config.path).unwrap_or_else(|_| config.path.clone());
    let state_dir = state_dir.map(|d| std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf()));
    let units = match systemd::render(schedule, &exe, &config_path, state_dir.as_deref()) {
        Ok(units) => units,
        Err(why) => {
            stdio::err_line(format!("tendhost: schedule '{name}': {why}"));
            return Exit::Usage;
        }
    };
    if dry_run {
        let _ = stdio::out_line(format!("# {}\n{}", units.timer_name, units.timer));
        let _ = stdio::out_line(format!("# {}\n{}", units.service_name, units.service));
        return Exit::Ok;
    }
    let dir = unit_dir(root, user);
    if let Err(err) = std::fs::create_dir_all(&dir) {
        stdio::err_line(format!("tendhost: creating '{}': {err}", dir.display()));
        return Exit::Usage;
    }
    for (file, text) in [
        (&units.timer_name, &units.timer),
        (&units.service_name, &units.service),
    ] {
        let path = dir.join(file);
        // Unit files are read by systemd, not secret: world-readable like any unit (0644).
        let written = write_private_atomic(&path, text.as_bytes()).and_then(|()| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        });
        if let Err(err) = written {
            stdio::err_line(format!("tendhost: writing '{}': {err}", path.display()));
            return Exit::Usage;
        }
        stdio::err_line(format!("tendhost: wrote {}", path.display()));
    }
    let scope = if user { "--user " } else { "" };
    stdio::err_line(format!(
        "tendhost: now run: systemctl {scope}daemon-reload && systemctl {scope}enable --now {}",
        units.timer_name
    ));
    Exit::Ok
}
