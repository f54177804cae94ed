//! Issue 14, schedules headless: `schedule install` writes a timer and service whose command
//! line, run as systemd would run it, patches a real apt host and is remembered for `schedule
//! list`; a paused schedule's run is a recorded skip, and a run that cannot get the state lock
//! waits its `lock_wait`, then reports (exit 4) and is audited.

use std::fs;
use std::path::Path;
use std::process::Command;

use tendhost::schedule::{STATE_FILE, ScheduleStates};

use crate::batch::{exits_with, run_expecting};
use crate::harness::TestEnv;
use crate::harness::apthost::{AptHost, Packages};

/// The unit's `ExecStart=` split into arguments: the test's paths need no systemd quoting,
/// which the unit-rendering unit tests cover.
fn exec_start(service: &str) -> Vec<String> {
    let line = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart= in:\n{service}"));
    assert!(!line.contains('"'), "unexpected quoting: {line}");
    line.split(' ').map(str::to_string).collect()
}

/// The service's command, in the clean environment a system unit gets (no terminal, no agent,
/// no TENDHOST_* from the shell that installed it) plus this env's XDG dirs.
fn as_systemd_would(env: &TestEnv, exec: &[String]) -> assert_cmd::Command {
    let mut cmd = Command::new(&exec[0]);
    cmd.args(&exec[1..])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", env.dir.path())
        .env("XDG_DATA_HOME", env.xdg_data_home())
        .env("XDG_STATE_HOME", env.state_dir())
        .current_dir("/");
    assert_cmd::Command::from_std(cmd)
}

fn audit(state_dir: &Path) -> String {
    fs::read_to_string(state_dir.join("audit.jsonl")).unwrap_or_default()
}

#[test]
fn an_installed_schedule_runs_its_wave_as_systemd_would_and_honours_pause_and_lock() {
    let host = AptHost::start("sched", Packages::Upgradable);
    let env = TestEnv::new();
    env.trust(&host.sshd);
    let notices = env.dir.path().join("notices.txt");
    env.write_config(&format!(
        "[[notify]]\nname = \"hook\"\nkind = \"command\"\ncommand = \"cat >> {}\"\n\
         on = [\"schedule_skipped\"]\n\n\
         {}manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n\n\
         [[schedule]]\nname = \"sunday\"\nwhen = \"Sun 03:00\"\nhosts = [\"deb\"]\n\
         batch_size = \"1\"\nallow_removals = true\nmissed = \"run\"\nlock_wait = \"2s\"\n",
        notices.display(),
        env.host_toml("deb", &host.sshd, "root")
    ));
    let root = env.dir.path().join("root");
    let state_dir = env.state_dir().join("tendhost");
    run_expecting(
        &env,
        &[
            "schedule",
            "install",
            "sunday",
            "--root",
            root.to_str().unwrap(),
        ],
        0,
    );

    let units = root.join("etc/systemd/system");
    let timer = fs::read_to_string(units.join("tendhost-schedule-sunday.timer")).unwrap();
    let service = fs::read_to_string(units.join("tendhost-schedule-sunday.service")).unwrap();
    assert!(
        timer.contains("\nOnCalendar=Sun *-*-* 03:00:00\n"),
        "{timer}"
    );
    assert!(
        timer.contains("\nPersistent=true\n"),
        "missed = run: {timer}"
    );
    assert!(
        timer.contains("\nUnit=tendhost-schedule-sunday.service\n"),
        "{timer}"
    );
    assert!(timer.contains("\nWantedBy=timers.target\n"), "{timer}");
    assert!(service.contains("\nType=oneshot\n"), "{service}");
    let exec = exec_start(&service);
    let config = env.config_path();
    let expected = [
        assert_cmd::cargo::cargo_bin("tendhost")
            .display()
            .to_string(),
        "--config".into(),
        config.display().to_string(),
        "--state-dir".into(),
        state_dir.display().to_string(),
        "--batch".into(),
        "wave".into(),
        "--schedule".into(),
        "sunday".into(),
    ];
    assert_eq!(exec, expected);
    let listed = run_expecting(
        &env,
        &["schedule", "list", "--root", root.to_str().unwrap()],
        0,
    );
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.contains("installed"), "{listed}");

    // The timer fires: the host is patched and the run remembered.
    assert_eq!(host.version("tendhost-app"), "1.0");
    let out = exits_with(&mut as_systemd_would(&env, &exec), 0);
    assert_eq!(
        host.version("tendhost-app"),
        "1.1",
        "the scheduled wave did not patch: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let states = ScheduleStates::load(&state_dir.join(STATE_FILE)).unwrap();
    let last = states
        .get("sunday")
        .last_run
        .expect("the run was not remembered");
    assert_eq!(last.result, "ok");
    let listed = run_expecting(
        &env,
        &["schedule", "list", "--root", root.to_str().unwrap()],
        0,
    );
    let row = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .find(|l| l.starts_with("sunday"))
        .unwrap()
        .to_string();
    assert!(row.contains(" ok "), "{row}");

    // Paused (as the console's Schedules view does): the run is a skip, audited, exit 0.
    let mut paused = states.clone();
    paused.entry("sunday").paused = true;
    paused.save(&state_dir.join(STATE_FILE)).unwrap();
    let out = exits_with(&mut as_systemd_would(&env, &exec), 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("schedule 'sunday' is paused"), "{stderr}");
    let after = ScheduleStates::load(&state_dir.join(STATE_FILE)).unwrap();
    assert_eq!(
        after.get("sunday").last_run.unwrap().result,
        "skipped: paused"
    );
    let log = audit(&state_dir);
    assert!(
        log.lines().any(|l| l.contains("\"action\":\"schedule\"")
            && l.contains("\"result\":\"skipped\"")
            && l.contains("sunday: paused")),
        "{log}"
    );
    // And said through [[notify]], though no engine ran.
    let told = fs::read_to_string(&notices).unwrap_or_default();
    assert!(told.contains("schedule sunday skipped: paused"), "{told}");

    // Another tendhost holds the state lock: the run waits lock_wait, then reports it.
    let mut resumed = after.clone();
    resumed.entry("sunday").paused = false;
    resumed.save(&state_dir.join(STATE_FILE)).unwrap();
    let held = tendhost::store::StateLock::acquire(&state_dir.join("lock")).unwrap();
    let out = exits_with(&mut as_systemd_would(&env, &exec), 4);
    drop(held);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is using the state dir"), "{stderr}");
    let log = audit(&state_dir);
    assert!(
        log.lines()
            .any(|l| l.contains("sunday: another tendhost held the state lock")),
        "{log}"
    );
    let told = fs::read_to_string(&notices).unwrap_or_default();
    assert!(
        told.contains("schedule sunday skipped: another tendhost held the state lock"),
        "{told}"
    );
}
