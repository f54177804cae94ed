//! The systemd timer + service pair that runs one schedule headless.
//!
//! The service runs `tendhost --config ABS --batch wave --schedule NAME`; the timer's
//! `OnCalendar=` comes from the schedule's `when` (refused when it cannot be exact).
//! `Persistent=` follows `missed`: systemd then starts a run missed while the machine was off.

use std::path::{Path, PathBuf};

use crate::config::{MissedPolicy, ScheduleConfig};

/// The two unit files, named and rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Units {
    pub timer_name: String,
    pub timer: String,
    pub service_name: String,
    pub service: String,
    /// The service's command line, argument by argument (what `ExecStart=` says).
    pub exec: Vec<String>,
}

/// `tendhost-schedule-NAME`: the stem of both unit names.
pub fn unit_stem(schedule: &str) -> String {
    format!("tendhost-schedule-{schedule}")
}

/// Where units go: `/etc/systemd/system`, or `~/.config/systemd/user` with `--user`, both
/// under `root` (a test's temp dir; `/` otherwise).
pub fn unit_dir(root: &Path, user: bool, home: &Path) -> PathBuf {
    if user {
        let home = home.strip_prefix("/").unwrap_or(home);
        root.join(home).join(".config/systemd/user")
    } else {
        root.join("etc/systemd/system")
    }
}

/// Renders the units; `Err` says why `when` has no exact `OnCalendar=`.
pub fn render(
    schedule: &ScheduleConfig,
    exe: &Path,
    config: &Path,
    state_dir: Option<&Path>,
) -> Result<Units, String> {
    let on_calendar = schedule.when.on_calendar()?;
    let stem = unit_stem(&schedule.name);
    let mut exec = vec![
        exe.display().to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    if let Some(dir) = state_dir {
        exec.push("--state-dir".into());
        exec.push(dir.display().to_string());
    }
    exec.extend(["--batch", "wave", "--schedule", &schedule.name].map(String::from));
    let exec_line = exec.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
    let persistent = schedule.missed == MissedPolicy::Run;
    let service = format!(
        "# Written by `tendhost schedule install {name}`.\n\
         [Unit]\n\
         Description=tendhost schedule '{name}' ({when})\n\
         Wants=network-online.target\n\
         After=network-online.target\n\n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={exec_line}\n",
        name = schedule.name,
        when = schedule.when.as_str(),
    );
    let timer = format!(
        "# Written by `tendhost schedule install {name}`.\n\
         [Unit]\n\
         Description=Run tendhost schedule '{name}' ({when})\n\n\
         [Timer]\n\
         OnCalendar={on_calendar}\n\
         Persistent={persistent}\n\
         Unit={stem}.service\n\n\
         [Install]\n\
         WantedBy=timers.target\n",
        name = schedule.name,
        when = schedule.when.as_str(),
    );
    Ok(Units {
        timer_name: format!("{stem}.timer"),
        timer,
        service_name: format!("{stem}.service"),
        service,
        exec,
    })
}

/// systemd's command-line quoting: plain words stay bare, anything else goes in double quotes
/// with `\` and `"` escaped (and `%` doubled, systemd's specifier escape).
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.,:=@+".contains(c));
    if plain {
        return arg.to_string();
    }
    let mut out = String::from("\"");
    for c in arg.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '%' => out.push_str("%%"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    use super::*;

    fn schedule(when: &str, missed: &str) -> ScheduleConfig {
        let text =
            format!("[[schedule]]\nname = \"sun\"\nwhen = \"{when}\"\nmissed = \"{missed}\"\n");
        Config::from_str("t.toml", &text)
            .unwrap()
            .schedules
            .remove(0)
    }

    #[test]
    fn units_run_the_schedule_with_an_exact_calendar() {
        let units = render(
            &schedule("Sun 03:00", "run"),
            Path::new("/usr/bin/tendhost"),
            Path::new("/etc/my tendhost.toml"),
            None,
        )
        .unwrap();
        assert_eq!(units.timer_name, "tendhost-schedule-sun.timer");
        assert!(
            units.timer.contains("\nOnCalendar=Sun *-*-* 03:00:00\n"),
            "{}",
            units.timer
        );
        assert!(units.timer.contains("\nPersistent=true\n"));
        assert!(units.service.contains(
            "\nExecStart=/usr/bin/tendhost --config \"/etc/my tendhost.toml\" --batch wave --schedule sun\n"
        ), "{}", units.service);
    }

    #[test]
    fn a_cron_systemd_cannot_express_is_refused() {
        let err = render(
            &schedule("0 4 1 * MON", "skip"),
            Path::new("/t"),
            Path::new("/c"),
            None,
        )
        .unwrap_err();
        assert!(err.contains("cannot be written exactly"), "{err}");
    }

    #[test]
    fn user_units_go_under_home_and_system_units_under_etc() {
        let root = Path::new("/tmp/r");
        assert_eq!(
            unit_dir(root, false, Path::new("/home/a")),
            Path::new("/tmp/r/etc/systemd/system")
        );
        assert_eq!(
            unit_dir(root, true, Path::new("/home/a")),
            Path::new("/tmp/r/home/a/.config/systemd/user")
        );
    }
}
