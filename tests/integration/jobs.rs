//! Issue 10 (`issues show 10`): upgrades run as detached jobs on the host. Through the real
//! binary against real sshd hosts with real apt: a `kill -9` of tendhost mid-upgrade, a
//! connection that drops mid-job, and two tendhost instances on one host.
//!
//! The upgrades are made slow with a real apt hook (`DPkg::Pre-Invoke`) that prints numbered
//! lines, so a test can act while the job runs and check every line arrived exactly once.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::batch::{
    assert_reattached, host_line, json_lines, run_expecting, tendhost, tendhost_std,
};
use crate::harness::apthost::{AptHost, Packages};
use crate::harness::{TestEnv, assert_exit};

/// Ticks the hook prints before dpkg runs, one every 0.3 s.
const TICKS: usize = 25;

/// An apt host whose upgrade prints `tick-1` … `tick-25` (0.3 s apart) before dpkg runs.
fn slow_host(name: &str) -> AptHost {
    let host = AptHost::start(name, Packages::Upgradable);
    fs::write(
        host.root.path("etc/apt/apt.conf.d/99tendhost-slow"),
        format!(
            "DPkg::Pre-Invoke {{ \"i=1; while [ $i -le {TICKS} ]; do echo tick-$i; i=$((i+1)); sleep 0.3; done\"; }};\n"
        ),
    )
    .unwrap();
    host
}

fn config(env: &TestEnv, host: &AptHost) {
    env.write_config(&format!(
        "{}manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n",
        env.host_toml("victim", &host.sshd, "root")
    ));
    env.trust(&host.sshd);
}

fn spawn_update(env: &TestEnv) -> Child {
    tendhost_std(env)
        .args(["--batch", "update", "--json", "--allow-removals"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The job directories on the host (inside its root).
fn job_dirs(host: &AptHost) -> Vec<PathBuf> {
    fs::read_dir(host.root.path("var/lib/tendhost/jobs"))
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Waits until `done` holds, failing with `what` after a generous safety net.
#[track_caller]
fn wait_until(what: &str, done: impl FnMut() -> bool) {
    crate::harness::wait_until(
        what,
        Duration::from_secs(120),
        Duration::from_millis(100),
        done,
    );
}

fn snapshot(env: &TestEnv) -> String {
    fs::read_to_string(env.state_dir().join("tendhost/snapshot.json")).unwrap_or_default()
}

fn ticks_in(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["type"] == "output")
        .filter_map(|l| l["line"].as_str())
        .filter(|l| l.starts_with("tick-"))
        .map(str::to_string)
        .collect()
}

#[test]
fn kill_9_mid_upgrade_then_restart_shows_the_jobs_real_outcome() {
    let env = TestEnv::new();
    let host = slow_host("jobs-kill9");
    config(&env, &host);
    let mut child = spawn_update(&env);
    // The write-ahead: the job is in the snapshot before it starts on the host.
    wait_until("the job in the snapshot", || {
        snapshot(&env).contains("\"label\":\"apt-get upgrade\"")
    });
    wait_until("the job on the host", || !job_dirs(&host).is_empty());
    child.kill().unwrap(); // SIGKILL: tendhost gets no say
    child.wait().unwrap();
    let job = job_dirs(&host).remove(0);
    assert!(
        !job.join("exit").exists(),
        "the job ended before tendhost was killed; the hook is too fast"
    );
    let audit = fs::read_to_string(env.state_dir().join("tendhost/audit.jsonl")).unwrap();
    assert!(audit.contains("\"job_start\""), "{audit}");

    // The job goes on without tendhost; a new run reattaches and follows it to its end.
    let out = run_expecting(&env, &["--batch", "hosts", "--json"], 0);
    assert!(
        job.join("exit").exists(),
        "reattach returned before the job ended"
    );
    assert_eq!(fs::read_to_string(job.join("exit")).unwrap().trim(), "0");
    let lines = json_lines(&out);
    let victim = host_line(&lines, "victim");
    // The upgrade succeeded and one package asked for a reboot (auto_reboot is off).
    assert_eq!(victim["state"], "waiting_reboot", "{victim}");
    assert_eq!(host.version("tendhost-app"), "1.1");
    assert_reattached(&lines);
    let audit = fs::read_to_string(env.state_dir().join("tendhost/audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"job_end\"") && audit.contains("exit 0"),
        "{audit}"
    );
    // Nothing left to resolve: the next run does not reattach again.
    let out = run_expecting(&env, &["--batch", "hosts", "--json"], 0);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("reattached"),
        "reattached twice"
    );
    assert!(!snapshot(&env).contains("\"label\":\"apt-get upgrade\""));
}

#[test]
fn a_dropped_connection_mid_job_resumes_from_the_offset_with_no_line_lost_or_doubled() {
    let env = TestEnv::new();
    let mut host = slow_host("jobs-drop");
    config(&env, &host);
    let child = spawn_update(&env);
    wait_until("the job on the host", || {
        job_dirs(&host).first().is_some_and(|d| {
            fs::read_to_string(d.join("log")).is_ok_and(|log| log.contains("tick-5\n"))
        })
    });
    // The host's sshd goes away for a few seconds (every session with it); the job does not.
    host.sshd.stop();
    std::thread::sleep(Duration::from_secs(2)); // the outage itself, not a wait for a result
    host.sshd.restart().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines = json_lines(&out);
    let ticks = ticks_in(&lines);
    let expected: Vec<String> = (1..=TICKS).map(|i| format!("tick-{i}")).collect();
    assert_eq!(ticks, expected, "lines lost or doubled across the drop");
    let victim = host_line(&lines, "victim");
    assert_eq!(victim["outcome"], "succeeded", "{victim}");
}

#[test]
fn a_second_tendhost_is_refused_by_the_host_lock_naming_the_first() {
    let first = TestEnv::new();
    let second = TestEnv::new();
    let host = slow_host("jobs-lock");
    config(&first, &host);
    // The built-in locks check would refuse the second first (naming the first's apt-get):
    // turned off here, so the host lock behind it is what answers.
    second.write_config(&format!(
        "{}manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n\n\
         [host.checks]\nskip = [\"locks\"]\n",
        second.host_toml("victim", &host.sshd, "root")
    ));
    second.trust(&host.sshd);
    let child = spawn_update(&first);
    wait_until("the first job running", || {
        job_dirs(&host)
            .first()
            .is_some_and(|d| d.join("started").exists())
    });
    let out = tendhost(&second)
        .args(["--batch", "update", "--json", "--allow-removals"])
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let lines = json_lines(&out);
    let victim = host_line(&lines, "victim");
    let error = victim["error"].as_str().unwrap_or_default().to_string();
    let pid = child.id().to_string();
    assert!(
        error.contains("is locked by tendhost on")
            && error.contains(&pid)
            && error.contains("job "),
        "{error}"
    );
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(host.version("tendhost-app"), "1.1");
}

#[test]
fn a_job_that_failed_while_tendhost_was_away_fails_the_host_with_its_own_error() {
    let env = TestEnv::new();
    let host = AptHost::start("jobs-broken", Packages::Broken);
    fs::write(
        host.root.path("etc/apt/apt.conf.d/99tendhost-slow"),
        "DPkg::Pre-Invoke { \"sleep 4\"; };\n",
    )
    .unwrap();
    config(&env, &host);
    let mut child = spawn_update(&env);
    wait_until("the job on the host", || {
        job_dirs(&host)
            .first()
            .is_some_and(|d| d.join("started").exists())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let job = job_dirs(&host).remove(0);
    // Let the job end on its own first: the restart finds it over, not running.
    wait_until("the job to end without tendhost", || {
        job.join("exit").exists()
    });
    let out = run_expecting(&env, &["--batch", "hosts", "--json"], 0);
    let lines = json_lines(&out);
    let victim = host_line(&lines, "victim");
    assert_eq!(victim["state"], "failed", "{victim}");
    let error = victim["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("apt-get upgrade") && error.contains("failed (exit 100)"),
        "{error}"
    );
    assert!(error.contains("tendhost-app"), "no log tail in: {error}");
}

#[test]
fn a_job_outliving_upgrade_timeout_is_reported_not_killed_and_the_next_run_takes_its_outcome() {
    let env = TestEnv::new();
    let host = slow_host("jobs-outlive");
    env.write_config(&format!(
        "[fleet]\nupgrade_timeout = \"2s\"\n\n{}manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n",
        env.host_toml("victim", &host.sshd, "root")
    ));
    env.trust(&host.sshd);
    let out = tendhost(&env)
        .args(["--batch", "update", "--json", "--allow-removals"])
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let lines = json_lines(&out);
    let error = host_line(&lines, "victim")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("still running after 2s") && error.contains("not stopped"),
        "{error}"
    );
    let job = job_dirs(&host).remove(0);
    // Not killed: it finishes on its own.
    wait_until("the job to finish on the host", || {
        job.join("exit").exists()
    });
    assert_eq!(fs::read_to_string(job.join("exit")).unwrap().trim(), "0");
    // The next run asks about the job left behind and takes its real outcome (the retry then
    // has nothing left to retry).
    let out = run_expecting(&env, &["--batch", "retry", "--json"], 0);
    let lines = json_lines(&out);
    assert_eq!(
        host_line(&lines, "victim")["state"],
        "waiting_reboot",
        "{lines:#?}"
    );
    assert_eq!(host.version("tendhost-app"), "1.1");
}
