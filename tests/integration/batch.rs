//! `tendhost --batch …` through the real binary against real sshd hosts: JSON lines, the table,
//! and the exit codes of DESIGN.md §3 (0 ok, 1 a host failed, 2 usage, 3 interrupted, 4 locked).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

use crate::harness::apthost::{AptHost, Packages};
use crate::harness::{SshHost, SshdOptions, TestEnv, assert_exit};

/// The binary, isolated from the user running the tests (XDG dirs and HOME inside `env`).
pub(super) fn tendhost(env: &TestEnv) -> Command {
    Command::from_std(tendhost_std(env))
}

pub(super) fn tendhost_std(env: &TestEnv) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("tendhost"));
    cmd.env("XDG_DATA_HOME", env.xdg_data_home())
        .env("XDG_STATE_HOME", env.state_dir())
        .env("HOME", env.dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("TENDHOST_SSH_KEY")
        .env_remove("TENDHOST_CONFIG")
        .arg("--config")
        .arg(env.config_path())
        .arg("--state-dir")
        .arg(env.state_dir().join("tendhost"))
        .current_dir(env.dir.path());
    cmd
}

/// Runs tendhost with `args` and checks its exit code, showing stderr when it differs.
pub(super) fn run_expecting(env: &TestEnv, args: &[&str], code: i32) -> Output {
    exits_with(tendhost(env).args(args), code)
}

/// Asserts that the run whose JSON `lines` these are reattached to a job an earlier run left
/// (its "-- tendhost: reattached to …" output line).
#[track_caller]
pub(super) fn assert_reattached(lines: &[Value]) {
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "output"
                && l["line"].as_str().unwrap_or("").contains("reattached")),
        "no reattach in {lines:#?}"
    );
}

/// Runs `cmd` and checks its exit code, showing stderr when it differs.
pub(super) fn exits_with(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}: {}\nstdout: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// Every stdout line parsed as JSON; each must have a "type".
pub(super) fn json_lines(out: &Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(value["type"].is_string(), "no type: {line}");
            value
        })
        .collect()
}

pub(super) fn host_line<'a>(lines: &'a [Value], host: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["type"] == "host" && l["host"] == host)
        .unwrap_or_else(|| panic!("no host line for '{host}' in {lines:#?}"))
}

/// auto_reboot off: these roots are chroots on the test machine, never reboot anything.
fn apt_block(env: &TestEnv, name: &str, host: &SshHost) -> String {
    format!(
        "{}manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n\n",
        env.host_toml(name, host, "root")
    )
}

#[test]
fn batch_update_prints_json_lines_a_table_and_exits_by_result() {
    let env = TestEnv::new();
    let good = AptHost::start("batch-good", Packages::Upgradable);
    let broken = AptHost::start("batch-broken", Packages::Broken);
    env.trust(&good.sshd);
    env.trust(&broken.sshd);
    let mut body = apt_block(&env, "good", &good.sshd);
    body.push_str(&apt_block(&env, "broken", &broken.sshd));
    env.write_config(&body);

    // Dry run: nothing changes, the plan and the pending packages are reported.
    let out = run_expecting(
        &env,
        &["--batch", "update", "--dry-run", "--json", "good"],
        0,
    );
    let lines = json_lines(&out);
    assert_eq!(lines.last().unwrap()["type"], "summary");
    assert_eq!(lines.last().unwrap()["ok"], 1);
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "planned" && l["dry_run"] == true)
    );
    let host = host_line(&lines, "good");
    assert_eq!(host["pending"], 3, "{host}");
    assert_eq!(host["packages"].as_array().unwrap().len(), 3);
    assert_eq!(host["state"], "pending_updates");
    assert!(host["os"].as_str().unwrap().contains("Debian"));
    assert_eq!(
        good.version("tendhost-app"),
        "1.0",
        "a dry run changed the host"
    );

    // A real update of both: one succeeds, one fails → exit 1, summary last.
    let out = run_expecting(
        &env,
        &["--batch", "update", "--json", "--allow-removals"],
        1,
    );
    let lines = json_lines(&out);
    let summary = lines.last().unwrap();
    assert_eq!(
        (
            summary["type"].as_str(),
            summary["ok"].as_u64(),
            summary["failed"].as_u64()
        ),
        (Some("summary"), Some(1), Some(1))
    );
    assert_eq!(host_line(&lines, "good")["state"], "waiting_reboot");
    assert_eq!(host_line(&lines, "good")["error"], Value::Null);
    let failed = host_line(&lines, "broken");
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["error"].as_str().unwrap().starts_with("upgrade:"),
        "{failed}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "output" && l["host"] == "good")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "state_changed" && l["to"] == "updating")
    );
    assert_eq!(good.version("tendhost-app"), "1.1");

    // The snapshot carried the failure over to the next run; the table shows it.
    let out = tendhost(&env).args(["--batch", "hosts"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("HOST"), "{table}");
    assert!(
        table
            .lines()
            // dpkg left it half-configured: its failure is one a repair fixes.
            .any(|l| l.starts_with("broken ") && l.contains("needs_repair")),
        "{table}"
    );
    assert_eq!(
        table.lines().last().unwrap(),
        "hosts: 2 ok, 0 failed, 0 skipped"
    );

    // ack then retry clear it; retrying a host that is not failed is a skip, not a failure.
    run_expecting(&env, &["--batch", "ack", "broken"], 0);
    let out = run_expecting(&env, &["--batch", "retry", "--json"], 0);
    let lines = json_lines(&out);
    assert_eq!(host_line(&lines, "broken")["state"], "idle");
    assert_eq!(host_line(&lines, "broken")["retry_count"], 1);
    assert_eq!(host_line(&lines, "good")["outcome"], "skipped");

    let audit = fs::read_to_string(env.state_dir().join("tendhost/audit.jsonl")).unwrap();
    for action in ["\"update\"", "\"ack\"", "\"retry\""] {
        assert!(audit.contains(action), "audit lacks {action}:\n{audit}");
    }
}

/// A host named "slow" whose every command hangs for 30 s before it runs, as `env`'s config.
fn slow_host(env: &TestEnv) -> SshHost {
    let wrapper = env.dir.path().join("slow.sh");
    fs::write(
        &wrapper,
        "#!/bin/sh\nsleep 30\nexec sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let slow = SshHost::start(SshdOptions {
        force_command: Some(wrapper),
        ..SshdOptions::default()
    })
    .unwrap();
    env.trust(&slow);
    env.write_config(&format!(
        "{}manager = \"none\"\n",
        env.host_toml("slow", &slow, "root")
    ));
    slow
}

#[test]
fn batch_exit_codes_for_usage_lock_and_interrupt() {
    let env = TestEnv::new();
    let _slow = slow_host(&env);

    let out = tendhost(&env)
        .args(["--batch", "update", "nosuchhost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown host 'nosuchhost'"));
    let out = tendhost(&env)
        .args(["--batch", "inventory", "--delay", "5"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "wave options outside 'wave' are a usage error"
    );

    // Another tendhost holds the state lock: exit 4, nothing touched.
    let state = env.state_dir().join("tendhost");
    fs::create_dir_all(&state).unwrap();
    let lock = tendhost::store::StateLock::acquire(&state.join("lock")).unwrap();
    let out = run_expecting(&env, &["--batch", "inventory"], 4);
    assert!(String::from_utf8_lossy(&out.stderr).contains("another tendhost"));
    drop(lock);

    // SIGINT while the host hangs: a clean stop with exit 3 and a summary line.
    let child = tendhost_std(&env)
        .args(["--batch", "inventory", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let asked = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "stopping took {:?}",
        asked.elapsed()
    );
    assert_exit(&out, 3);
    let lines = json_lines(&out);
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["interrupted"], true);
    assert!(state.join("snapshot.json").exists());
}

#[test]
fn kill_9_before_the_job_reached_the_host_fails_it_and_a_corrupt_snapshot_is_kept_aside() {
    let env = TestEnv::new();
    // The real upgrade (`apt-get -y …`) hangs; everything else runs normally.
    let host = AptHost::start_with(
        "batch-kill9",
        Packages::Upgradable,
        Some("case \"$SSH_ORIGINAL_COMMAND\" in *'apt-get -y'*) sleep 60;; esac"),
    );
    env.trust(&host.sshd);
    env.write_config(&apt_block(&env, "victim", &host.sshd));
    let state = env.state_dir().join("tendhost");

    let mut child = tendhost_std(&env)
        .args(["--batch", "update", "--json", "--allow-removals"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the snapshot on disk says the host is updating, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = fs::read_to_string(state.join("snapshot.json")).unwrap_or_default();
        if text.contains("\"state\":\"updating\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the snapshot never showed the update: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL: no chance to save anything more
    child.wait().unwrap();

    let out = run_expecting(&env, &["--batch", "hosts", "--json"], 0);
    let lines = json_lines(&out);
    let victim = host_line(&lines, "victim");
    // The job was written ahead but never reached the host (its launcher hangs): asked about
    // it, the host has no such job, and the host fails saying so.
    assert_eq!(victim["state"], "failed", "{victim}");
    assert!(
        victim["error"].as_str().unwrap().contains("vanished"),
        "{victim}"
    );

    fs::write(
        state.join("snapshot.json"),
        b"{\"version\":1,\"hosts\":[{\"na",
    )
    .unwrap();
    let out = tendhost(&env).args(["--batch", "hosts"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was not restored") && stderr.contains("kept as"),
        "{stderr}"
    );
    let kept = fs::read_dir(&state)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("snapshot.json.bad-")
        });
    assert!(kept, "the corrupt snapshot was not kept aside");
}

/// Issue 9 (`issues show 9`, "Waves keep their canary"), through the binary: with `1,100%` and
/// the first host outside its maintenance window, the next host is the canary, the rest run only
/// after it succeeded, and the summary names the skipped host with its reason.
#[test]
fn issue9_a_wave_replaces_a_skipped_canary_and_lists_it_in_the_summary() {
    use chrono::Datelike;

    let env = TestEnv::new();
    let hosts: Vec<SshHost> = (0..3)
        .map(|_| SshHost::start(SshdOptions::default()).unwrap())
        .collect();
    for host in &hosts {
        env.trust(host);
    }
    // c0's window is a minute three days from now: a wave always skips it.
    let day = (chrono::Local::now() + chrono::Duration::days(3)).weekday();
    let window = format!("{{ start = \"03:00\", end = \"03:01\", days = [\"{day}\"] }}");
    let skipped_reason = format!("outside maintenance window '{day} 03:00-03:01'");
    // c0 is outside its window; c1 (later) fails its pre-check.
    let write_config = |failing: bool| {
        let mut body = String::new();
        for (i, host) in hosts.iter().enumerate() {
            body.push_str(&env.host_toml(&format!("c{i}"), host, "root"));
            body.push_str("manager = \"none\"\n\n");
            if i == 0 {
                body.push_str(&format!("[host.policy]\nmaintenance_window = {window}\n\n"));
            }
            if i == 1 && failing {
                body.push_str("[host.checks]\npre = \"false\"\n\n");
            }
        }
        env.write_config(&body);
    };
    write_config(false);

    let out = run_expecting(
        &env,
        &["--batch", "wave", "--batch-size", "1,100%", "--json"],
        0,
    );
    let lines = json_lines(&out);
    let finished = |host: &str| {
        lines
            .iter()
            .position(|l| l["type"] == "wave_host" && l["host"] == host)
            .unwrap_or_else(|| panic!("no wave_host line for '{host}' in {lines:#?}"))
    };
    assert_eq!(lines[finished("c0")]["outcome"], "skipped");
    assert_eq!(lines[finished("c1")]["outcome"], "succeeded");
    assert_eq!(lines[finished("c2")]["outcome"], "succeeded");
    let c2_started = lines
        .iter()
        .position(|l| l["type"] == "state_changed" && l["host"] == "c2")
        .unwrap();
    assert!(
        finished("c1") < c2_started,
        "batch 2 started before the canary c1 finished: {lines:#?}"
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(
        (summary["ok"].as_u64(), summary["skipped"].as_u64()),
        (Some(2), Some(1)),
        "{summary}"
    );
    assert_eq!(summary["wave"]["status"], "finished", "{summary}");
    assert_eq!(summary["wave"]["batches"], 2, "{summary}");
    assert_eq!(
        summary["skipped_hosts"],
        serde_json::json!([{"host": "c0", "reason": skipped_reason}])
    );
    assert_eq!(host_line(&lines, "c0")["outcome"], "skipped");

    // Without --json the skipped host and its reason go to stderr.
    let out = run_expecting(&env, &["--batch", "wave", "--batch-size", "1,100%"], 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("tendhost: wave skipped 'c0': {skipped_reason}")),
        "{stderr}"
    );

    // No candidate succeeds (c0 is still outside its window, c1's pre-check fails): the wave
    // halts before batch 2 saying why, exits 1, and c2 is never touched. A failed pre-check
    // changed nothing, so it fails the wave's job without latching its host.
    write_config(true);
    let out = run_expecting(
        &env,
        &[
            "--batch",
            "wave",
            "--batch-size",
            "1,100%",
            "--max-failures",
            "5",
            "--json",
        ],
        1,
    );
    let lines = json_lines(&out);
    let summary = lines.last().unwrap();
    assert_eq!(summary["wave"]["status"], "halted", "{summary}");
    let reason = summary["wave"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "canary batch 1 had no host that succeeded (c0 skipped: {skipped_reason}, \
                 c1 failed: pre-check failed (exit 1)"
        )),
        "{reason}"
    );
    let c1 = host_line(&lines, "c1");
    assert_eq!(c1["state"], "idle", "{c1}");
    assert!(
        c1["last_error"]["error"]
            .as_str()
            .unwrap()
            .starts_with("pre-check failed (exit 1)"),
        "{c1}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l["host"] == "c2" && l["type"] != "host"),
        "batch 2 was started: {lines:#?}"
    );
    assert_eq!(host_line(&lines, "c2")["outcome"], "skipped");
}

/// Issue 10: `--batch reboot` of a host other hosts reach through (`proxy_jump`) is refused
/// before anything runs, naming the hosts behind it; `--reboot-jump-hosts` lets it go, after
/// the hosts behind it.
#[test]
fn issue10_batch_reboot_of_a_jump_host_needs_reboot_jump_hosts() {
    let env = TestEnv::new();
    let hosts: Vec<SshHost> = (0..3)
        .map(|_| SshHost::start(SshdOptions::default()).unwrap())
        .collect();
    let mut body = String::new();
    for (name, host) in ["bastion", "inner-1", "inner-2"].iter().zip(&hosts) {
        env.trust(host);
        body.push_str(&env.host_toml(name, host, "root"));
        body.push_str("manager = \"none\"\n");
        if *name != "bastion" {
            body.push_str("proxy_jump = \"bastion\"\n");
        }
        body.push('\n');
    }
    env.write_config(&body);

    let out = run_expecting(&env, &["--batch", "reboot", "--json"], 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "tendhost: refusing to reboot a host that others reach through or run on ('bastion' \
             is the jump host of 'inner-1', 'inner-2': they lose their connection); add \
             --reboot-jump-hosts"
        ),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "something ran: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The hosts behind it alone need no flag; the flag means nothing to other commands.
    run_expecting(&env, &["--batch", "reboot", "--exclude", "bastion"], 0);
    run_expecting(&env, &["--batch", "inventory", "--reboot-jump-hosts"], 2);

    // With the flag: every host is asked (none needs a reboot, so each says so), bastion last.
    let out = run_expecting(
        &env,
        &["--batch", "reboot", "--reboot-jump-hosts", "--json"],
        0,
    );
    let asked: Vec<String> = json_lines(&out)
        .iter()
        .filter(|l| l["type"] == "refused")
        .map(|l| l["host"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert_eq!(
        asked[2], "bastion",
        "bastion was asked before the hosts behind it"
    );
}

/// Issue 10: stdout and stderr into a pipe whose reader leaves after one byte
/// (`2>&1 | head -c1`), or a closed stderr (`2>&-`), never make tendhost panic (exit 101):
/// it stops writing and exits with the code its results call for.
#[test]
fn issue10_a_reader_that_goes_away_or_a_closed_stderr_never_crashes_batch_mode() {
    use std::io::Read;

    let env = TestEnv::new();
    let host = SshHost::start(SshdOptions::default()).unwrap();
    env.trust(&host);
    env.write_config(&format!(
        "{}manager = \"none\"\n",
        env.host_toml("web", &host, "root")
    ));

    for json in [false, true] {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut cmd = tendhost_std(&env);
        cmd.args(["--batch", "inventory"]);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .spawn()
            .unwrap();
        drop(cmd); // its copies of the write end, so the pipe's only writer is the child
        let mut first = [0u8; 1];
        reader.read_exact(&mut first).unwrap();
        drop(reader);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "json={json}: {status:?}");
    }

    // Only stdout's reader leaves, at once: whatever went wrong would be said on stderr.
    let out = tendhost_std(&env)
        .args(["--batch", "inventory", "--json"])
        .stdout({
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            writer
        })
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains("stdout"),
        "a broken pipe is not worth a word: {stderr}"
    );

    // stderr closed outright (`2>&-`): the table still comes out, the same as with stderr open.
    let mut open = tendhost_std(&env);
    open.args(["--batch", "inventory"]);
    let out = open.output().unwrap();
    assert_exit(&out, 0);
    let out = stderr_closed(&open).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("HOST"), "{table}");
    assert!(table.contains("inventory: 1 ok, 0 failed"), "{table}");
}

/// `cmd` run by `sh` with its stderr closed (`2>&-`), not redirected anywhere.
fn stderr_closed(cmd: &std::process::Command) -> std::process::Command {
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c")
        .arg("exec \"$0\" \"$@\" 2>&-")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => sh.env(key, value),
            None => sh.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        sh.current_dir(dir);
    }
    sh
}

/// Resets SIGHUP to its default in the child: a test run under `nohup` ignores it, the child
/// would inherit that, and tendhost rightly keeps an inherited SIG_IGN (src/signals.rs).
#[allow(unsafe_code)]
fn hup_delivered(cmd: &mut std::process::Command) {
    use nix::sys::signal::{SigHandler, Signal, signal};
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only `signal(2)`, which is async-signal-safe, runs.
    unsafe {
        cmd.pre_exec(|| {
            signal(Signal::SIGHUP, SigHandler::SigDfl)
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
}

/// Issue 10: batch mode handles SIGHUP (the ssh session that started it dropped) like SIGTERM:
/// a wave waiting on a slow host stops cleanly, exits 3 and leaves a saved snapshot.
#[test]
fn issue10_sighup_stops_a_batch_wave_cleanly_with_exit_3() {
    use std::io::BufRead;

    let env = TestEnv::new();
    let _slow = slow_host(&env);
    let mut cmd = tendhost_std(&env);
    hup_delivered(&mut cmd);
    let mut child = cmd
        .args(["--batch", "wave", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the wave's first host is busy (its command now hangs on the host).
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "tendhost ended before the wave got going: {seen:?}"
        );
        let value: Value = serde_json::from_str(&line).unwrap();
        seen.push(line);
        if value["type"] == "state_changed" && value["host"] == "slow" {
            break;
        }
    }
    let asked = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let rest: Vec<String> = stdout.lines().map(Result::unwrap).collect();
    let out = child.wait_with_output().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "stopping took {:?} (exit {:?}); stdout after the signal:\n{}\nstderr:\n{}",
        asked.elapsed(),
        out.status.code(),
        rest.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exit(&out, 3);
    let summary: Value = serde_json::from_str(rest.last().expect("a summary line")).unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["interrupted"], true);
    assert!(
        env.state_dir()
            .join("tendhost")
            .join("snapshot.json")
            .exists()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted; stopping cleanly"), "{stderr}");
}
