//! Issue 15, compose rollback and the image cooldown through the real binary, against the real
//! Docker engine and the loopback registry of the compose tests: an update moves `web` from v1
//! to v2; `--batch rollback` (after a `--dry-run` that only asks) puts it back on v1 and proves
//! it runs it; the next update leaves v2 out (rolled back from) while nothing newer is
//! published. With `min_image_age`, an image younger than that is held, its tag pointed back at
//! what runs, until the cooldown is gone.

use serde_json::{Value, json};

use super::batch::{assert_reattached, host_line, json_lines, run_expecting};
use super::batch_compose::{docker_host_with, outdated_host, stages};
use crate::harness::compose::Stack;
use crate::harness::registry;

/// The lines of `kind` (`"type"`) in `lines`.
fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_rollback_puts_the_old_image_back_and_later_updates_leave_the_new_one_out() {
    let fixture = registry::shared();
    let (outdated, env, path) =
        outdated_host("rollback", "docker-compose.yml", Stack::dir_path, "v1");
    let stack = &outdated.stack;

    // Nothing updated yet: nothing to roll back, and the refusal says so.
    let out = run_expecting(&env, &["--batch", "rollback", "docker"], 1);
    assert!(
        stderr(&out).contains("nothing to roll back"),
        "{}",
        stderr(&out)
    );
    // Never fleet-wide by default, and a stack must be one of the host's.
    let out = run_expecting(&env, &["--batch", "rollback"], 2);
    assert!(
        stderr(&out).contains("rollback needs the hosts"),
        "{}",
        stderr(&out)
    );

    run_expecting(&env, &["--batch", "update", "docker", "--json"], 0);
    assert_eq!(stack.running_image("web"), fixture.v2);

    let out = run_expecting(
        &env,
        &[
            "--batch", "rollback", "docker", "--stack", "/nowhere", "--json",
        ],
        1,
    );
    let host = host_line(&json_lines(&out), "docker").clone();
    assert!(
        host["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no compose stack '/nowhere'")),
        "{host}"
    );

    // A dry run asks the host and says what it would do, changing nothing.
    let container = stack.container("web");
    let args = ["--batch", "rollback", "docker", "--dry-run", "--json"];
    let lines = json_lines(&run_expecting(&env, &args, 0));
    let planned = of_type(&lines, "rollback_planned");
    assert_eq!(planned.len(), 1, "{lines:#?}");
    assert_eq!(planned[0]["dry_run"], true);
    assert_eq!(
        planned[0]["steps"],
        json!([{
            "path": path,
            "service": "web",
            "reference": outdated.repo.reference,
            "running": fixture.v2,
            "restore": {"id": fixture.v1, "digest": outdated.v1_digest},
            "pull": null,
        }])
    );
    assert!(
        stages(&lines).is_empty(),
        "a dry run ran a stage: {lines:#?}"
    );
    assert_eq!(stack.container("web"), container, "a dry run recreated");

    // The rollback itself: re-tag, `up -d`, and the fresh look proves v1 runs.
    let args = [
        "--batch",
        "rollback",
        "docker",
        "--stack",
        path.as_str(),
        "--json",
    ];
    let lines = json_lines(&run_expecting(&env, &args, 0));
    assert_eq!(stack.running_image("web"), fixture.v1);
    assert_eq!(
        outdated.repo.local_id(),
        fixture.v1,
        "the tag is back on v1"
    );
    assert_eq!(stages(&lines), ["rollback:started", "rollback:done"]);
    let rolling = of_type(&lines, "rolling_back");
    assert_eq!(rolling.len(), 1, "{lines:#?}");
    assert_eq!(rolling[0]["undone"][0]["to"], fixture.v2);
    let host = host_line(&lines, "docker");
    assert_eq!(host["state"], "idle", "{host}");
    assert_eq!(host["compose_rejected"][0]["image"], fixture.v2, "{host}");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "state_changed" && l["to"] == "updating"),
        "a rollback changes the host: it runs as updating"
    );

    // The next update pulls v2 again, but leaves it out: it was rolled back from.
    let container = stack.container("web");
    let lines = json_lines(&run_expecting(
        &env,
        &["--batch", "update", "docker", "--json"],
        0,
    ));
    assert_eq!(stack.running_image("web"), fixture.v1);
    assert_eq!(
        stack.container("web"),
        container,
        "a held service was recreated"
    );
    assert_eq!(
        outdated.repo.local_id(),
        fixture.v1,
        "the pull moved the tag"
    );
    assert!(
        stages(&lines).contains(&"compose:skipped".to_string()),
        "{lines:#?}"
    );
    let host = host_line(&lines, "docker");
    assert_eq!(
        host["compose_held"],
        json!([{"path": path, "service": "web",
                "image": {"id": fixture.v2, "digest": outdated.v2_digest},
                "hold": {"reason": "rolled_back"}}]),
        "{host}"
    );
    assert_eq!(host["compose_pending"], json!([]), "{host}");

    // Rolled back already: nothing left to do, said as a skip.
    let out = run_expecting(&env, &["--batch", "rollback", "docker", "--json"], 0);
    let host = host_line(&json_lines(&out), "docker").clone();
    assert_eq!(host["outcome"], "skipped", "{host}");
    assert!(
        host["reason"]
            .as_str()
            .is_some_and(|r| r.contains("already runs")),
        "{host}"
    );
}

#[test]
fn min_image_age_holds_a_fresh_image_until_the_cooldown_is_gone() {
    let fixture = registry::shared();
    let (outdated, env, path) =
        outdated_host("cooldown", "docker-compose.yml", Stack::dir_path, "v1");
    let stack = &outdated.stack;
    // The test images are imported now: a day's cooldown holds v2.
    docker_host_with(&env, &path, "v1", "min_image_age = \"1d\"\n");

    let lines = json_lines(&run_expecting(
        &env,
        &["--batch", "update", "docker", "--json"],
        0,
    ));
    assert_eq!(stack.running_image("web"), fixture.v1);
    assert_eq!(
        outdated.repo.local_id(),
        fixture.v1,
        "a held image's tag is pointed back at what runs"
    );
    let host = host_line(&lines, "docker");
    let held = &host["compose_held"];
    assert_eq!(held[0]["service"], "web", "{host}");
    assert_eq!(held[0]["hold"]["reason"], "too_new", "{host}");
    assert!(held[0]["hold"]["created"].is_string(), "{host}");
    assert_eq!(host["compose"], json!([]), "{host}");

    // Without the cooldown the same update takes it.
    docker_host_with(&env, &path, "v1", "");
    run_expecting(&env, &["--batch", "update", "docker", "--json"], 0);
    assert_eq!(stack.running_image("web"), fixture.v2);
}

/// A `kill -9` of tendhost while a rollback's job runs on the host: the job was written ahead,
/// so the next run reattaches, follows it to its end and settles the host; the image rolled back
/// from was rejected before the job started, so it stays rejected.
#[test]
fn a_rollback_killed_mid_job_is_reattached_and_settled_by_the_next_run() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Stdio;
    use std::time::Duration;

    let fixture = registry::shared();
    let (outdated, env, _path) =
        outdated_host("rollback-kill", "docker-compose.yml", Stack::dir_path, "v1");
    let stack = &outdated.stack;
    run_expecting(&env, &["--batch", "update", "docker", "--json"], 0);
    assert_eq!(stack.running_image("web"), fixture.v2);

    // A `docker` first on PATH whose `tag` takes a while: the window to kill tendhost in.
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v docker"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let shim = tempfile::tempdir().unwrap();
    let flag = shim.path().join("tagging");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = tag ]; then : > '{}'; sleep 3; fi\nexec {} \"$@\"\n",
        flag.display(),
        real.trim()
    );
    let docker = shim.path().join("docker");
    std::fs::write(&docker, script).unwrap();
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        shim.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut child = super::batch::tendhost_std(&env)
        .args(["--batch", "rollback", "docker", "--json"])
        .env("PATH", path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::harness::wait_until(
        "the rollback's job to re-tag",
        Duration::from_secs(120),
        Duration::from_millis(50),
        || flag.exists(),
    );
    child.kill().unwrap(); // SIGKILL: tendhost gets no say
    child.wait().unwrap();
    let snapshot = std::fs::read_to_string(env.state_dir().join("tendhost/snapshot.json")).unwrap();
    assert!(
        snapshot.contains("\"label\":\"compose rollback\""),
        "{snapshot}"
    );

    // The next run (the shim gone) asks about the job, follows it and settles the host.
    let lines = json_lines(&run_expecting(&env, &["--batch", "hosts", "--json"], 0));
    assert_eq!(stack.running_image("web"), fixture.v1);
    let host = host_line(&lines, "docker");
    assert_eq!(host["state"], "idle", "{host}");
    assert_eq!(host["compose_rejected"][0]["image"], fixture.v2, "{host}");
    assert_reattached(&lines);
}
