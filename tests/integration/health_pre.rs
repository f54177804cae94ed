//! The built-in pre-update checks (`disk`, `locks`) and the post-update restart policy through
//! the real binary against real hosts: a check that fails names itself in the JSON and the
//! audit log and leaves the host unchanged; `skip` turns it off; on dnf the checks pass and the
//! post-update checks say which services need a restart, and `restart_services = "auto"`
//! without systemd (a chroot) fails naming why, instead of hanging.

use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::batch::{host_line, json_lines, run_expecting};
use crate::harness::apthost::{AptHost, Packages};
use crate::harness::dnfhost::DnfHost;
use crate::harness::{SshHost, TestEnv};
use crate::pkg_apt::hold_lock;
use crate::survey_dnf::Mapper;

/// The `checked` line of `host`'s `phase`.
pub(crate) fn checked<'a>(lines: &'a [Value], host: &str, phase: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["type"] == "checked" && l["host"] == host && l["phase"] == phase)
        .unwrap_or_else(|| panic!("no {phase} checked line for '{host}' in {lines:#?}"))
}

/// The check `name` in a list of checks (a `checked` line's or a host line's).
pub(crate) fn check<'a>(checks: &'a Value, name: &str, phase: &str) -> &'a Value {
    checks
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {checks}"))
        .iter()
        .find(|c| c["name"] == name && c["phase"] == phase)
        .unwrap_or_else(|| panic!("no {phase} check '{name}' in {checks:#}"))
}

pub(crate) fn names(checks: &Value) -> Vec<&str> {
    checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

/// An apt host block (no reboots: these roots are chroots), with `checks` as its
/// `[host.checks]` table when not empty.
fn apt_block(env: &TestEnv, name: &str, host: &SshHost, checks: &str) -> String {
    let mut block = format!(
        "{}manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n\n",
        env.host_toml(name, host, "root")
    );
    if !checks.is_empty() {
        block.push_str(&format!("[host.checks]\n{checks}\n\n"));
    }
    block
}

#[test]
fn apt_pre_checks_stop_an_update_on_short_disk_and_a_held_lock_leaving_hosts_unchanged() {
    let env = TestEnv::new();
    let short = AptHost::start("pre-disk", Packages::Upgradable);
    let locked = AptHost::start("pre-locks", Packages::Upgradable);
    env.trust(&short.sshd);
    env.trust(&locked.sshd);
    let write = |short_checks: &str| {
        let mut body = apt_block(&env, "short", &short.sshd, short_checks);
        body.push_str(&apt_block(&env, "locked", &locked.sshd, ""));
        env.write_config(&body);
    };
    write("disk_margin = \"100TiB\"");
    // python3, outside both roots, holds `locked`'s dpkg frontend lock as apt would.
    let mut holder = hold_lock(&locked.root.path("var/lib/dpkg/lock-frontend"));
    let out = run_expecting(
        &env,
        &["--batch", "update", "--json", "--allow-removals"],
        1,
    );
    let _ = holder.kill();
    let _ = holder.wait();
    let lines = json_lines(&out);

    // short: the disk check fails naming the filesystem and the margin; the lock held on the
    // other host's copy of the same file (same inode number, another filesystem) is not its.
    let pre = checked(&lines, "short", "pre");
    assert_eq!(pre["ok"], false, "{pre}");
    let disk = check(&pre["checks"], "disk", "pre");
    assert_eq!(disk["ok"], false, "{disk}");
    let detail = disk["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("/: ")
            && detail.contains("free, needs")
            && detail.contains("(+100.0 TiB margin)"),
        "{detail}"
    );
    let locks = check(&pre["checks"], "locks", "pre");
    assert_eq!(
        locks["ok"], true,
        "another host's lock was reported: {locks}"
    );
    assert_eq!(
        names(&pre["checks"])[..3],
        ["locks", "package_db", "disk"],
        "{pre}"
    );

    // locked: python3 and its pid are named; its disk is fine under the default margin.
    let pre = checked(&lines, "locked", "pre");
    let locks = check(&pre["checks"], "locks", "pre");
    assert_eq!(locks["ok"], false, "{locks}");
    assert_eq!(
        locks["detail"],
        format!(
            "/var/lib/dpkg/lock-frontend held by python3 (pid {})",
            holder.id()
        )
    );
    assert_eq!(check(&pre["checks"], "disk", "pre")["ok"], true, "{pre}");

    // Neither host was touched, and a gate that said no is no failed host: both still wait
    // with their updates; the host lines carry the checks.
    for (name, host) in [("short", &short), ("locked", &locked)] {
        assert_eq!(host.version("tendhost-app"), "1.0", "{name} was changed");
        let line = host_line(&lines, name);
        assert_eq!(line["state"], "pending_updates", "{line}");
        assert_eq!(line["outcome"], "failed", "{line}");
    }
    let failed = check(&host_line(&lines, "short")["checks"], "disk", "pre");
    assert_eq!(failed["ok"], false);
    assert!(
        host_line(&lines, "locked")["error"]
            .as_str()
            .unwrap()
            .contains("python3"),
        "{}",
        host_line(&lines, "locked")
    );

    // The audit log keeps each report with its checks.
    let audit = fs::read_to_string(env.state_dir().join("tendhost/audit.jsonl")).unwrap();
    let records: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let record = records
        .iter()
        .find(|r| r["action"] == "checks" && r["host"] == "short")
        .unwrap_or_else(|| panic!("no checks record for 'short':\n{audit}"));
    assert_eq!(record["result"], "failed", "{record}");
    assert_eq!(check(&record["checks"], "disk", "pre")["ok"], false);

    // Skipping the disk check lets the same update run (the margin is still absurd).
    write("disk_margin = \"100TiB\"\nskip = [\"disk\"]");
    let out = run_expecting(
        &env,
        &["--batch", "update", "--json", "--allow-removals", "short"],
        0,
    );
    let lines = json_lines(&out);
    let pre = checked(&lines, "short", "pre");
    assert_eq!(pre["ok"], true, "{pre}");
    assert!(!names(&pre["checks"]).contains(&"disk"), "{pre}");
    assert_eq!(short.version("tendhost-app"), "1.1");
    assert_eq!(host_line(&lines, "short")["state"], "waiting_reboot");
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A process mapping the installed file of `package` as service `unit` does, started a second
/// before the update that replaces it (dnf compares start and install times in seconds).
fn mapping(host: &DnfHost, package: &str, unit: &str) -> Mapper {
    let mapper = Mapper::start(host, &format!("/usr/share/tendhost-test/{package}"), unit);
    let started = now_secs();
    crate::harness::wait_until(
        "a second to pass",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || now_secs() > started + 1,
    );
    mapper
}

#[test]
fn dnf_pre_checks_pass_and_post_update_checks_name_restarts_which_auto_cannot_do_without_systemd() {
    let env = TestEnv::new();
    let host = DnfHost::start("pre-dnf");
    env.trust(&host.sshd);
    let write = |restart: &str| {
        env.write_config(&format!(
            "{}manager = \"dnf\"\n\n[host.policy]\nauto_reboot = false\nrestart_services = \
             \"{restart}\"\n\n",
            env.host_toml("dnf1", &host.sshd, "root")
        ))
    };
    let unit = |package: &str| format!("tendhost-{package}-{}.service", std::process::id());

    // restart_services = "list": the update runs, and the service is named, not restarted.
    write("list");
    let app = mapping(&host, "tendhost-app", &unit("app"));
    let out = run_expecting(
        &env,
        &[
            "--batch",
            "update",
            "--json",
            "--packages",
            "tendhost-app",
            "dnf1",
        ],
        0,
    );
    drop(app);
    let lines = json_lines(&out);
    let pre = checked(&lines, "dnf1", "pre");
    assert_eq!(pre["ok"], true, "{pre}");
    assert_eq!(
        names(&pre["checks"]),
        ["locks", "package_db", "disk", "failed_units"],
        "{pre}"
    );
    let disk = check(&pre["checks"], "disk", "pre")["detail"]
        .as_str()
        .unwrap();
    // One filesystem (the chroot's overlay); dnf may give no sizes for a local repository.
    assert!(
        disk.starts_with("/: ") && !disk.contains("; ") && disk.contains("200.0 MiB margin"),
        "{disk}"
    );
    assert_eq!(host.version("tendhost-app"), "1.1-1");
    let post = checked(&lines, "dnf1", "post_update");
    assert_eq!(post["ok"], true, "{post}");
    let restart = check(&post["checks"], "needs_restart", "post_update");
    assert_eq!(
        restart["detail"],
        format!("restart needed: {}", unit("app")),
        "{restart}"
    );
    let reboot = check(&post["checks"], "reboot_required", "post_update");
    assert_eq!(reboot["ok"], true, "{reboot}");
    let checks = &host_line(&lines, "dnf1")["checks"];
    check(checks, "locks", "pre");
    check(checks, "needs_restart", "post_update");

    // restart_services = "auto": the restart is tried; with no systemd running the host (a
    // chroot) it fails quickly and says why, and the check names the service.
    write("auto");
    let sec = mapping(&host, "tendhost-sec", &unit("sec"));
    let out = run_expecting(
        &env,
        &[
            "--batch",
            "update",
            "--json",
            "--packages",
            "tendhost-sec",
            "dnf1",
        ],
        1,
    );
    drop(sec);
    let lines = json_lines(&out);
    assert_eq!(checked(&lines, "dnf1", "pre")["ok"], true);
    assert_eq!(host.version("tendhost-sec"), "1.1-1");
    let post = checked(&lines, "dnf1", "post_update");
    let restart = check(&post["checks"], "needs_restart", "post_update");
    assert_eq!(restart["ok"], false, "{restart}");
    let detail = restart["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!(
            "could not restart {}: systemctl try-restart exited ",
            unit("sec")
        )),
        "{detail}"
    );
    assert_eq!(host_line(&lines, "dnf1")["state"], "failed");
}
