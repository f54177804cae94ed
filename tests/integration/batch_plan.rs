//! Issue 12: `--batch wave --plan --json` through the real binary on real apt hosts: every
//! selected host is dry-run, and the plan says each host's batch, its upgrades (from → to), the
//! removal of a full upgrade and the package a safe one keeps back, and the totals; nothing on
//! the hosts changes.

use serde_json::Value;

use crate::batch::{json_lines, run_expecting};
use crate::harness::apthost::{AptHost, Packages};
use crate::harness::{SshHost, SshdOptions, TestEnv};

fn plan_host<'a>(lines: &'a [Value], host: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["type"] == "plan_host" && l["host"] == host)
        .unwrap_or_else(|| panic!("no plan_host line for '{host}' in {lines:#?}"))
}

fn names(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn issue12_wave_plan_json_shows_batches_upgrades_removal_kept_back_and_totals() {
    let env = TestEnv::new();
    let full = AptHost::start("plan-full", Packages::Upgradable);
    let safe = AptHost::start("plan-safe", Packages::Upgradable);
    env.trust(&full.sshd);
    env.trust(&safe.sshd);
    let mut body = String::new();
    for (name, host, mode) in [("full", &full, "full"), ("safe", &safe, "safe")] {
        body.push_str(&format!(
            "{}manager = \"apt\"\n\n[host.policy]\nupgrade_mode = \"{mode}\"\nauto_reboot = false\n\n",
            env.host_toml(name, &host.sshd, "root")
        ));
    }
    env.write_config(&body);

    let out = run_expecting(
        &env,
        &[
            "--batch",
            "wave",
            "--plan",
            "--json",
            "--batch-size",
            "1,100%",
            "full",
            "safe",
        ],
        0,
    );
    let lines = json_lines(&out);
    assert_eq!(lines.last().unwrap()["type"], "summary");

    let f = plan_host(&lines, "full");
    assert_eq!(f["batch"], 1, "the canary: {f}");
    assert_eq!(f["known"], true);
    let app = f["upgrades"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "tendhost-app")
        .unwrap_or_else(|| panic!("no tendhost-app upgrade: {f}"));
    assert_eq!(
        (app["from"].as_str(), app["to"].as_str()),
        (Some("1.0"), Some("1.1"))
    );
    assert_eq!(names(&f["removals"]), ["tendhost-legacy"]);
    assert_eq!(names(&f["installs"]), ["tendhost-newdep"]);
    assert_eq!(f["prediction"], Value::Null, "first run: unknown");
    assert_eq!(f["status"]["kind"], "runs");

    let s = plan_host(&lines, "safe");
    assert_eq!(s["batch"], 2, "{s}");
    assert!(names(&s["removals"]).is_empty());
    assert_eq!(names(&s["kept_back"]), ["tendhost-core"], "{s}");
    assert!(names(&s["held"]).is_empty(), "no operator holds: {s}");
    for host in [&f, &s] {
        assert_eq!(
            names(&host["reboot"]["packages"]),
            ["tendhost-kernel"],
            "a reboot is expected, and why: {host}"
        );
    }
    assert!(
        s["upgrades"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "tendhost-kernel"),
        "{s}"
    );

    let batches: Vec<&Value> = lines.iter().filter(|l| l["type"] == "plan_batch").collect();
    assert_eq!(batches.len(), 2);
    assert_eq!(names(&batches[0]["hosts"]), ["full"]);
    assert_eq!(names(&batches[1]["hosts"]), ["safe"]);
    let totals = lines
        .iter()
        .find(|l| l["type"] == "plan")
        .unwrap_or_else(|| panic!("no plan line: {lines:#?}"));
    assert_eq!(totals["hosts"], 2);
    assert_eq!(totals["batches"], 2);
    assert_eq!(totals["removals"], 1);
    assert_eq!(totals["installs"], 1);
    assert_eq!(totals["unknown_duration"], 2);
    assert!(totals["estimated_finish"].is_string(), "{totals}");

    // A plan changes nothing.
    for host in [&full, &safe] {
        assert_eq!(host.version("tendhost-app"), "1.0");
        assert_eq!(host.version("tendhost-legacy"), "1.0");
    }

    // A host whose dry run fails (its sshd is gone): the plan still comes, says so, exits 1.
    let mut gone = SshHost::start(SshdOptions::default()).expect("starting sshd");
    env.trust(&gone);
    body.push_str(&env.host_toml("gone", &gone, "root"));
    env.write_config(&body);
    gone.stop();
    let out = run_expecting(
        &env,
        &["--batch", "wave", "--plan", "--json", "full", "gone"],
        1,
    );
    let lines = json_lines(&out);
    let g = plan_host(&lines, "gone");
    assert_eq!(g["known"], false, "{g}");
    assert!(g["dry_run_error"].is_string(), "{g}");
    assert_eq!(plan_host(&lines, "full")["dry_run_error"], Value::Null);
    assert_eq!(lines.last().unwrap()["failed"], 1);

    // The same plan as a table.
    let out = run_expecting(&env, &["--batch", "wave", "--plan", "full", "safe"], 0);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("gone"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("batch 1 (canary): 1 host"), "{text}");
    assert!(text.contains("tendhost-app 1.0 → 1.1"), "{text}");
    assert!(text.contains("1 removal (tendhost-legacy)"), "{text}");
    assert!(text.contains("wave: 2 hosts in 2 batches"), "{text}");
}
