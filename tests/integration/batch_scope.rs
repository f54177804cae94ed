//! `--batch update --packages … / --security-only` through the real binary against a real sshd
//! host with real apt (issue 12): only the named packages change (a security-only wave: only the
//! security update), a name that is not installed is never installed, a host with nothing in
//! scope is skipped with the reason, and a name that cannot be a package is a usage error before
//! any host is asked.

use crate::batch::{host_line, json_lines, run_expecting};
use crate::harness::TestEnv;
use crate::harness::apthost::{AptHost, Packages};

#[test]
fn batch_update_and_wave_take_only_their_scope_and_skip_hosts_with_none_pending() {
    let env = TestEnv::new();
    let host = AptHost::start("batch-scope", Packages::Upgradable);
    env.trust(&host.sshd);
    env.write_config(&format!(
        "{}manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n\n",
        env.host_toml("scoped", &host.sshd, "root")
    ));

    for (args, says) in [
        (
            &["--batch", "update", "--packages", "open ssl"][..],
            "'open ssl' is not a package name",
        ),
        (
            &["--batch", "update", "--packages=-y"][..],
            "'-y' is not a package name",
        ),
        (
            &["--batch", "update", "--packages="][..],
            "--packages: names no package",
        ),
        (
            &["--batch", "inventory", "--security-only"][..],
            "only apply to 'update' and 'wave'",
        ),
    ] {
        let out = run_expecting(&env, args, 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }

    // The dry run's plan is the scope's.
    let out = run_expecting(
        &env,
        &[
            "--batch",
            "update",
            "--dry-run",
            "--json",
            "--packages",
            "tendhost-app",
        ],
        0,
    );
    let lines = json_lines(&out);
    let planned = lines
        .iter()
        .find(|l| l["type"] == "planned")
        .unwrap_or_else(|| panic!("no plan in {lines:#?}"));
    let names: Vec<&str> = planned["upgrades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tendhost-app"], "{planned}");
    assert!(planned["free_space"].is_array(), "{planned}");
    assert_eq!(host.version("tendhost-app"), "1.0", "a dry run changed it");

    // tendhost-newdep is not installed there: named, it is not installed.
    let out = run_expecting(
        &env,
        &[
            "--batch",
            "update",
            "--json",
            "--packages",
            "tendhost-app,tendhost-newdep",
        ],
        0,
    );
    let lines = json_lines(&out);
    assert_eq!(host_line(&lines, "scoped")["outcome"], "succeeded");
    let summary = lines.last().unwrap();
    assert_eq!(
        summary["scope"], "tendhost-app, tendhost-newdep",
        "{summary}"
    );
    assert_eq!(host.version("tendhost-app"), "1.1");
    for package in ["tendhost-kernel", "tendhost-core", "tendhost-legacy"] {
        assert_eq!(host.version(package), "1.0", "{package} changed");
    }
    assert_eq!(host.version("tendhost-newdep"), "", "installed unasked");

    // Nothing of the scope is pending any more: skipped, with the reason.
    let out = run_expecting(
        &env,
        &["--batch", "update", "--json", "--packages", "tendhost-app"],
        0,
    );
    let lines = json_lines(&out);
    let line = host_line(&lines, "scoped");
    assert_eq!(line["outcome"], "skipped", "{line}");
    assert_eq!(line["reason"], "none of tendhost-app pending");

    // A security-only wave: its pre-download and its upgrade take only tendhost-kernel.
    let out = run_expecting(&env, &["--batch", "wave", "--json", "--security-only"], 0);
    let lines = json_lines(&out);
    assert_eq!(lines.last().unwrap()["scope"], "security updates");
    assert_eq!(host.version("tendhost-kernel"), "1.1");
    assert_eq!(
        host.version("tendhost-core"),
        "1.0",
        "not a security update"
    );
}
