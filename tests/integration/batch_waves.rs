//! Issue 12 through the real binary: a wave paused at its threshold exits 5 and `--resume
//! --failed skip` finishes it; a `kill -9` mid-wave then `--resume` finishes it without
//! upgrading any host twice (package versions and the audit log's update records).

use std::fs;
use std::io::BufRead;
use std::process::Stdio;

use serde_json::Value;

use crate::batch::{json_lines, run_expecting, tendhost_std};
use crate::harness::apthost::{AptHost, Packages};
use crate::harness::{SshHost, SshdOptions, TestEnv};

/// How many audit records of `action` name `host`.
fn audited(env: &TestEnv, action: &str, host: &str) -> usize {
    let audit = fs::read_to_string(env.state_dir().join("tendhost/audit.jsonl")).unwrap();
    audit
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|r| r["action"] == action && r["host"] == host)
        .count()
}

fn wave_hosts(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter(|l| l["type"] == "wave_host")
        .map(|l| {
            (
                l["host"].as_str().unwrap().to_string(),
                l["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn issue12_a_wave_paused_at_its_threshold_exits_5_and_resume_skip_finishes_it() {
    let env = TestEnv::new();
    let hosts: Vec<SshHost> = (0..3)
        .map(|_| SshHost::start(SshdOptions::default()).unwrap())
        .collect();
    for host in &hosts {
        env.trust(host);
    }
    let write_config = |t2_post: Option<&str>| {
        let mut body = String::new();
        for (i, host) in hosts.iter().enumerate() {
            body.push_str(&env.host_toml(&format!("t{i}"), host, "root"));
            body.push_str("manager = \"none\"\n\n");
            if i == 1 {
                // A failed pre-check: a cheap, real failure that changes nothing.
                body.push_str("[host.checks]\npre = \"false\"\n\n");
            }
            if let (2, Some(post)) = (i, t2_post) {
                body.push_str(&format!("[host.checks]\npost = \"{post}\"\n\n"));
            }
        }
        env.write_config(&body);
    };
    write_config(None);

    let out = run_expecting(
        &env,
        &[
            "--batch",
            "wave",
            "--batch-size",
            "1",
            "--on-threshold",
            "pause",
            "--json",
        ],
        5,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the wave paused at its threshold")
            && stderr.contains("t1: pre-check failed (exit 1)")
            && stderr.contains("--resume --failed"),
        "{stderr}"
    );
    let lines = json_lines(&out);
    let summary = lines.last().unwrap();
    assert_eq!(summary["wave"]["status"], "threshold", "{summary}");
    assert_eq!(summary["failed_hosts"][0]["host"], "t1", "{summary}");
    assert_eq!(
        wave_hosts(&lines),
        [
            ("t0".to_string(), "succeeded".to_string()),
            ("t1".to_string(), "failed".to_string())
        ],
        "t2 never started"
    );

    // Resuming without saying what to do with t1 is a usage error naming it.
    let out = run_expecting(&env, &["--batch", "wave", "--resume"], 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("paused at its threshold")
            && stderr.contains("t1")
            && stderr.contains("--failed skip"),
        "{stderr}"
    );
    let out = run_expecting(&env, &["--batch", "wave", "--resume", "t2"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("takes no host selectors"));

    // The config changed under the plan: the differences, and nothing runs without consent.
    write_config(Some("true"));
    let out = run_expecting(
        &env,
        &["--batch", "wave", "--resume", "--failed", "skip"],
        2,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("host 't2' has a different config since the wave started")
            && stderr.contains("--accept-changes"),
        "{stderr}"
    );
    let out = run_expecting(
        &env,
        &[
            "--batch",
            "wave",
            "--resume",
            "--failed",
            "skip",
            "--accept-changes",
            "--json",
        ],
        0,
    );
    let lines = json_lines(&out);
    assert_eq!(
        wave_hosts(&lines),
        [("t2".to_string(), "succeeded".to_string())],
        "only t2 ran: t0 is done, t1 set aside"
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["wave"]["status"], "finished", "{summary}");

    let out = run_expecting(&env, &["--batch", "wave", "--resume"], 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no unfinished wave to resume"),
        "a finished wave leaves nothing to resume"
    );
}

#[test]
fn issue12_kill_9_mid_wave_then_resume_finishes_it_upgrading_no_host_twice() {
    let env = TestEnv::new();
    let hosts: Vec<AptHost> = (0..3)
        .map(|i| AptHost::start(&format!("resume-{i}"), Packages::Upgradable))
        .collect();
    let mut body = String::new();
    for (i, host) in hosts.iter().enumerate() {
        env.trust(&host.sshd);
        body.push_str(&format!(
            "{}manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n\n",
            env.host_toml(&format!("r{i}"), &host.sshd, "root")
        ));
    }
    env.write_config(&body);

    let mut child = tendhost_std(&env)
        .args([
            "--batch",
            "wave",
            "--batch-size",
            "1",
            "--allow-removals",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The second host started: the first one's end is on disk (it is saved before the next
    // host starts). Then kill -9: nothing more is saved.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "tendhost ended before the second host started: {seen:#?}"
        );
        let value: Value = serde_json::from_str(&line).unwrap();
        seen.push(line);
        if value["type"] == "state_changed" && value["host"] == "r1" {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        hosts[2].version("tendhost-app"),
        "1.0",
        "r2 was not reached"
    );

    let out = run_expecting(&env, &["--batch", "wave", "--resume", "--json"], 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resuming the wave started"), "{stderr}");
    let lines = json_lines(&out);
    let ran: Vec<String> = wave_hosts(&lines).into_iter().map(|(h, _)| h).collect();
    assert!(!ran.contains(&"r0".to_string()), "r0 was done: {ran:?}");
    assert!(ran.contains(&"r2".to_string()), "{ran:?}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["wave"]["status"], "finished", "{summary}");
    for (i, host) in hosts.iter().enumerate() {
        let name = format!("r{i}");
        assert_eq!(host.version("tendhost-app"), "1.1", "{name}");
        assert_eq!(
            audited(&env, "update", &name),
            1,
            "{name} was upgraded once, not twice"
        );
    }
}

/// Asserts that `--batch reboot` refuses `hypervisor` naming `guest`, and that a real wave over
/// the fleet (one batch) finishes `guest` before `hypervisor` starts; returns the wave's lines.
pub(super) fn assert_hypervisor_waits_for_its_guest(
    env: &TestEnv,
    hypervisor: &str,
    guest: &str,
) -> Vec<Value> {
    let out = run_expecting(env, &["--batch", "reboot"], 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "'{hypervisor}' is the hypervisor of '{guest}': they go down with it"
        )),
        "{stderr}"
    );
    let out = run_expecting(
        env,
        &[
            "--batch",
            "wave",
            "--json",
            "--batch-size",
            "100%",
            "--allow-removals",
        ],
        0,
    );
    let lines = json_lines(&out);
    assert_done_before_started(&lines, guest, hypervisor);
    lines
}

/// Asserts that in a wave's JSON lines `first` finished its turn before `then` was ever in
/// flight (a guest before its hypervisor).
pub(super) fn assert_done_before_started(lines: &[Value], first: &str, then: &str) {
    let done = lines
        .iter()
        .position(|l| l["type"] == "wave_host" && l["host"] == first)
        .unwrap_or_else(|| panic!("{first} never finished its turn: {lines:#?}"));
    let started = lines
        .iter()
        .position(|l| {
            l["in_flight"]
                .as_array()
                .is_some_and(|f| f.iter().any(|h| h == then))
        })
        .unwrap_or_else(|| panic!("{then} never ran: {lines:#?}"));
    assert!(done < started, "{then} ran beside {first}: {lines:#?}");
}

/// Issue 15: a hypervisor declared with `runs_on` goes after its guests in a real wave on apt
/// hosts, even with one batch of everything, and `--batch reboot` refuses it naming them.
#[test]
fn a_hypervisor_is_updated_after_its_guest_and_not_rebooted_under_it() {
    let pve = AptHost::start("pve1", Packages::Upgradable);
    let guest = AptHost::start("vm1", Packages::Upgradable);
    let env = TestEnv::new();
    let mut body = String::new();
    for (name, host) in [("pve1", &pve), ("vm1", &guest)] {
        env.trust(&host.sshd);
        body.push_str(&env.host_toml(name, &host.sshd, "root"));
        body.push_str("manager = \"apt\"\n");
        if name == "vm1" {
            body.push_str("runs_on = \"pve1\"\n");
        }
        body.push_str("\n[host.policy]\nauto_reboot = false\n\n");
    }
    env.write_config(&body);

    let lines = assert_hypervisor_waits_for_its_guest(&env, "pve1", "vm1");
    assert_eq!(wave_hosts(&lines).len(), 2, "{lines:#?}");
    assert_eq!(pve.version("tendhost-app"), "1.1");
    assert_eq!(guest.version("tendhost-app"), "1.1");
}
