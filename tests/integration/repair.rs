//! Issue 13, repair: a host whose package database is left half done shows "needs repair", an
//! update of it is refused by the pre-check with the host unchanged, and `--batch repair` runs
//! the manager's repair as a streamed detached job, checks again and rests the host (or fails
//! it honestly, still needing repair). Real dpkg/apt and real dnf/rpm behind real sshd.

use std::fs;

use serde_json::Value;

use crate::batch::{host_line, json_lines, run_expecting};
use crate::harness::TestEnv;
use crate::harness::apthost::{AptHost, Packages};
use crate::harness::dnfhost::{DnfHost, REPO_DIR};

/// `dpkg -s`'s `Status:` of `package` inside the host's root.
fn dpkg_status(host: &AptHost, package: &str) -> String {
    host.root
        .sh(&format!(
            "dpkg-query -W -f '${{Status}}' {package} 2>/dev/null || true"
        ))
        .trim()
        .to_string()
}

/// The `checked` lines of `phase`.
fn checked<'a>(lines: &'a [Value], phase: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["type"] == "checked" && l["phase"] == phase)
        .collect()
}

/// The package_db check of a `checked` line.
fn package_db(line: &Value) -> &Value {
    line["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "package_db"))
        .unwrap_or_else(|| panic!("no package_db check in {line}"))
}

fn audit(env: &TestEnv) -> Vec<Value> {
    fs::read_to_string(env.state_dir().join("tendhost/audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_half_configured_apt_host_needs_repair_is_refused_an_update_and_is_repaired() {
    // tendhost-app 1.2's postinst fails: the upgrade leaves it half-configured.
    let host = AptHost::start("repair-apt", Packages::Broken);
    let env = TestEnv::new();
    env.trust(&host.sshd);
    env.write_config(&format!(
        "{}manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n",
        env.host_toml("deb", &host.sshd, "root")
    ));

    // 1. The failed upgrade is followed by the package check: the host needs repair.
    let out = run_expecting(
        &env,
        &["--batch", "update", "--json", "--allow-removals"],
        1,
    );
    let lines = json_lines(&out);
    let line = host_line(&lines, "deb");
    assert_eq!(line["state"], "failed", "{line}");
    assert!(
        line["error"].as_str().unwrap().starts_with("upgrade:"),
        "{line}"
    );
    let needs = line["needs_repair"].as_str().unwrap_or_default();
    assert!(needs.contains("tendhost-app half-configured"), "{line}");
    let post = checked(&lines, "post_update");
    assert_eq!(post.len(), 1, "{lines:#?}");
    assert_eq!(package_db(post[0])["ok"], false);
    // The human table says so instead of a bare "failed".
    let out = run_expecting(&env, &["--batch", "hosts"], 0);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("deb ") && l.contains("needs_repair")),
        "{table}"
    );

    // 2. The cause is still there (the postinst fails again): the repair fails honestly and
    // the host still needs repair.
    let out = run_expecting(&env, &["--batch", "repair", "--json"], 1);
    let lines = json_lines(&out);
    let line = host_line(&lines, "deb");
    assert_eq!(line["state"], "failed", "{line}");
    let error = line["error"].as_str().unwrap();
    assert!(error.starts_with("repair: dpkg --configure -a"), "{error}");
    assert!(line["needs_repair"].is_string(), "{line}");
    assert!(
        lines.iter().any(|l| l["type"] == "output"
            && l["line"]
                .as_str()
                .unwrap_or("")
                .contains("configure failed")),
        "the repair's output was not streamed: {lines:#?}"
    );
    assert_eq!(package_db(checked(&lines, "repair")[0])["ok"], false);

    // 3. The operator fixed the cause: the repair configures the package and rests the host.
    host.root
        .sh("printf '#!/bin/sh\\nexit 0\\n' > /var/lib/dpkg/info/tendhost-app.postinst");
    let out = run_expecting(&env, &["--batch", "repair", "--json"], 0);
    let lines = json_lines(&out);
    let line = host_line(&lines, "deb");
    assert_eq!(line["needs_repair"], Value::Null, "{line}");
    assert_eq!(line["error"], Value::Null, "{line}");
    // Read afresh after the repair: the kernel package the failed upgrade did install asked
    // for a reboot, and the host now says so.
    assert_eq!(line["state"], "waiting_reboot", "{line}");
    assert_eq!(dpkg_status(&host, "tendhost-app"), "install ok installed");
    assert_eq!(package_db(checked(&lines, "repair")[0])["ok"], true);
    assert!(
        lines.iter().any(|l| l["type"] == "output"),
        "no streamed output: {lines:#?}"
    );

    // 4. A package unpacked but never configured (dpkg interrupted): the pre-check refuses
    // the update, naming it, and nothing else changes.
    // (Rebooted by hand, say: the host rests idle again.)
    host.root
        .sh("rm -f /var/run/reboot-required /var/run/reboot-required.pkgs");
    let out = run_expecting(&env, &["--batch", "inventory", "--json"], 0);
    assert_eq!(host_line(&json_lines(&out), "deb")["state"], "idle");
    let core_before = host.version("tendhost-core");
    host.root
        .sh("dpkg --unpack /repo/tendhost-newdep_1.0_all.deb >/dev/null 2>&1");
    assert_eq!(dpkg_status(&host, "tendhost-newdep"), "install ok unpacked");
    let out = run_expecting(
        &env,
        &["--batch", "update", "--json", "--allow-removals"],
        1,
    );
    let lines = json_lines(&out);
    let line = host_line(&lines, "deb");
    let error = line["error"]
        .as_str()
        .or(line["last_error"]["error"].as_str());
    assert!(
        error.is_some_and(|e| e.contains("tendhost-newdep unpacked")),
        "{line}"
    );
    assert_ne!(
        line["state"], "failed",
        "a refused pre-check changed nothing: {line}"
    );
    assert!(line["needs_repair"].is_string(), "{line}");
    assert_eq!(
        host.version("tendhost-core"),
        core_before,
        "the host was changed"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l["type"] == "state_changed" && l["to"] == "updating"),
        "{lines:#?}"
    );

    // ... and the repair configures it.
    let out = run_expecting(&env, &["--batch", "repair", "--json"], 0);
    let line = host_line(&json_lines(&out), "deb").clone();
    assert_eq!(line["needs_repair"], Value::Null, "{line}");
    assert_eq!(
        dpkg_status(&host, "tendhost-newdep"),
        "install ok installed"
    );

    // Every repair and its re-check is in the audit log.
    let records = audit(&env);
    let repairs = records.iter().filter(|r| r["action"] == "repair").count();
    assert!(repairs >= 4, "{records:#?}");
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "checks" && r.to_string().contains("\"repair\"")),
        "{records:#?}"
    );
    assert!(
        records.iter().any(|r| r["action"] == "job_start"
            && r["detail"].as_str().unwrap_or("").contains("(repair)"))
    );
}

#[test]
fn a_dnf_host_with_a_duplicate_package_needs_repair_and_remove_duplicates_fixes_it() {
    let host = DnfHost::start("repair-dnf");
    host.makecache();
    let env = TestEnv::new();
    env.trust(&host.sshd);
    env.write_config(&format!(
        "{}manager = \"dnf\"\n\n[host.policy]\nauto_reboot = false\n",
        env.host_toml("rpm", &host.sshd, "root")
    ));
    // What an rpm transaction cut short leaves: the new version installed beside the old.
    host.sh(&format!(
        "rpm -i --force --nodeps {REPO_DIR}/tendhost-app-1.1-1.noarch.rpm 2>/dev/null"
    ));
    let installed = host.sh("rpm -q tendhost-app");
    assert_eq!(installed.lines().count(), 2, "{installed}");

    // The pre-check of an update finds the duplicate and refuses, changing nothing.
    let out = run_expecting(
        &env,
        &["--batch", "update", "--json", "--allow-removals"],
        1,
    );
    let lines = json_lines(&out);
    let line = host_line(&lines, "rpm");
    let needs = line["needs_repair"].as_str().unwrap_or_default();
    assert!(
        needs.starts_with("dnf check:") && needs.contains("is a duplicate with"),
        "{line}"
    );
    assert_eq!(
        host.version("tendhost-core"),
        "1.0-1",
        "the host was changed"
    );

    let out = run_expecting(&env, &["--batch", "repair", "--json"], 0);
    let lines = json_lines(&out);
    let line = host_line(&lines, "rpm");
    assert_eq!(line["needs_repair"], Value::Null, "{line}");
    assert_eq!(package_db(checked(&lines, "repair")[0])["ok"], true);
    assert_eq!(
        host.sh("rpm -q tendhost-app").trim(),
        "tendhost-app-1.1-1.noarch"
    );
    assert!(
        matches!(line["state"].as_str(), Some("idle" | "pending_updates")),
        "{line}"
    );
}
