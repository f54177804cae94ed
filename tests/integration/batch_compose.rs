//! Issue 9, the compose stage through the real binary: a `transport = "local"` host (this
//! machine, `manager = "none"`) whose stacks run test images from the loopback registry. The
//! update pulls and compares before the host enters `updating`, recreates only what changed and
//! reports old and new image per service; a dry run only lists what would change; compose v2
//! runs its exact command lines; a failing stack fails the host naming stack and service.

use serde_json::{Value, json};

use super::batch::{exits_with, host_line, json_lines, run_expecting, tendhost};
use crate::harness::TestEnv;
use crate::harness::compose::{Outdated, Stack, V2Shim};
use crate::harness::registry;

/// A config with this machine as host `docker`: one stack at `path`, compose `version`, and
/// never a reboot. Its jobs and host lock live in the test's own directory: every test's
/// `docker` is this machine, and tests run in parallel.
fn docker_host(env: &TestEnv, path: &str, version: &str) {
    docker_host_with(env, path, version, "");
}

/// [`docker_host`] with more `[host.docker]` lines (`docker`, each ending in a newline).
pub(super) fn docker_host_with(env: &TestEnv, path: &str, version: &str, docker: &str) {
    env.write_config(&format!(
        "[[host]]\nname = \"docker\"\ntransport = \"local\"\nmanager = \"none\"\n\
         compose_paths = [{path}]\njob_dir = {jobs}\n\n[host.docker]\ncompose_version = \"{version}\"\n{docker}\n\
         [host.policy]\nauto_reboot = false\n",
        path = toml::Value::String(path.to_string()),
        jobs = toml::Value::String(env.dir.path().join("jobs").display().to_string())
    ));
}

/// An [`Outdated`] stack for test `name` (compose file `file`) as host `docker`'s one stack, at
/// the path `at` gives (its directory or its file), with compose `version`; and that path.
pub(super) fn outdated_host(
    name: &str,
    file: &str,
    at: fn(&Stack) -> String,
    version: &str,
) -> (Outdated, TestEnv, String) {
    let outdated = Outdated::new(name, file);
    let path = at(&outdated.stack);
    let env = TestEnv::new();
    docker_host(&env, &path, version);
    (outdated, env, path)
}

/// `stage:status` of every `"stage"` line, in order.
pub(super) fn stages(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["type"] == "stage")
        .map(|l| {
            format!(
                "{}:{}",
                l["stage"].as_str().unwrap(),
                l["status"].as_str().unwrap()
            )
        })
        .collect()
}

/// Whether the host ever entered `updating`.
fn entered_updating(lines: &[Value]) -> bool {
    lines
        .iter()
        .any(|l| l["type"] == "state_changed" && l["to"] == "updating")
}

/// The change of service `web` of `outdated`'s stack (at `path`) from v1 to v2, as JSON.
fn web_change(path: &str, outdated: &Outdated) -> Value {
    let fixture = registry::shared();
    json!([{
        "path": path,
        "service": "web",
        "from": fixture.v1,
        "from_digest": outdated.v1_digest,
        "to": fixture.v2,
        "to_digest": outdated.v2_digest,
    }])
}

/// `--batch update` of a host with only compose stacks pulls, recreates the changed service,
/// and reports old and new image (id and digest) per service in its `"host"` line; run again,
/// it recreates nothing.
#[test]
fn batch_update_recreates_a_changed_compose_service() {
    let fixture = registry::shared();
    let (outdated, env, path) =
        outdated_host("batch-web", "docker-compose.yml", Stack::dir_path, "v1");
    let stack = &outdated.stack;

    let out = run_expecting(&env, &["--batch", "update", "docker", "--json"], 0);
    let lines = json_lines(&out);
    let host = host_line(&lines, "docker");
    assert_eq!(host["compose"], web_change(&path, &outdated), "{host}");
    assert_eq!(host["compose_pending"], json!([]), "{host}");
    assert_eq!(stack.running_image("web"), fixture.v2);
    // The built-in pre-checks gate the host first; the pull and compare run before
    // `updating`, the recreate inside it.
    assert_eq!(
        stages(&lines),
        [
            "pre_check:started",
            "pre_check:done",
            "compose_check:started",
            "compose_check:done",
            "packages:skipped",
            "compose:started",
            "compose:done",
            "verify:started",
            "verify:done",
        ]
    );

    let container = stack.container("web");
    let out = run_expecting(&env, &["--batch", "update", "docker", "--json"], 0);
    let lines = json_lines(&out);
    assert_eq!(host_line(&lines, "docker")["compose"], json!([]));
    assert!(stages(&lines).contains(&"compose:skipped".to_string()));
    assert_eq!(
        stack.container("web"),
        container,
        "nothing changed, yet it was recreated"
    );
}

/// `--dry-run` pulls and compares: the host line lists the service an update would change in
/// `compose_pending`, and nothing is recreated (same container, old image, no `updating`).
#[test]
fn batch_dry_run_lists_what_would_change_and_recreates_nothing() {
    let fixture = registry::shared();
    let (outdated, env, path) =
        outdated_host("batch-dry", "docker-compose.yml", Stack::dir_path, "v1");
    let stack = &outdated.stack;
    let container = stack.container("web");

    let args = ["--batch", "update", "docker", "--dry-run", "--json"];
    let out = run_expecting(&env, &args, 0);
    let lines = json_lines(&out);
    let host = host_line(&lines, "docker");
    assert_eq!(
        host["compose_pending"],
        web_change(&path, &outdated),
        "{host}"
    );
    assert_eq!(host["compose"], json!([]), "{host}");
    assert_eq!(host["state"], "idle", "{host}");
    assert_eq!(
        stages(&lines),
        ["compose_check:started", "compose_check:done"]
    );
    assert!(!entered_updating(&lines), "a dry run entered updating");
    assert_eq!(stack.container("web"), container, "a dry run recreated");
    assert_eq!(stack.running_image("web"), fixture.v1);
    assert_eq!(
        outdated.repo.local_id(),
        fixture.v2,
        "the dry run did not pull"
    );
}

/// Compose v2 end to end: the `docker` shim first on tendhost's `PATH` turns `docker compose`
/// into `docker-compose` and logs each call, so the exact v2 command lines the engine ran are
/// checked, with the same result as v1.
#[test]
fn batch_update_runs_the_exact_compose_v2_command_lines() {
    let fixture = registry::shared();
    let (outdated, env, path) = outdated_host("batch-v2", "compose.yaml", Stack::file_path, "v2");
    let stack = &outdated.stack;
    let shim = V2Shim::new();
    let update = || {
        let mut cmd = tendhost(&env);
        cmd.env("PATH", shim.path_env())
            .args(["--batch", "update", "docker", "--json"]);
        json_lines(&exits_with(&mut cmd, 0))
    };

    let lines = update();
    let host = host_line(&lines, "docker");
    assert_eq!(host["compose"], web_change(&path, &outdated), "{host}");
    assert_eq!(stack.running_image("web"), fixture.v2);
    let probe = ["-f compose.yaml config --services", "-f compose.yaml ps -q"];
    let check = [probe[0], probe[1], "-f compose.yaml pull"];
    // The read's look, the check (probe, pull), `up -d` of the changed service, the proof, and
    // the verify stage's read of the changed host.
    let mut expected = [&probe[..], &check[..]].concat();
    expected.extend(["-f compose.yaml up -d web", probe[0], probe[1]]);
    expected.extend(probe);
    assert_eq!(shim.take_compose_calls(), expected);

    // Nothing new: the host answers the first read "unchanged" (issue 11: no look), then the
    // same check, no `up`, and the verify stage's read. The fingerprint covers every container
    // and image of this machine's docker, which the other compose tests change as they run
    // beside this one: then the first read looks again, with the same command lines.
    let container = stack.container("web");
    let lines = update();
    assert_eq!(host_line(&lines, "docker")["compose"], json!([]));
    let calls = shim.take_compose_calls();
    let unchanged = [&check[..], &probe[..]].concat();
    let looked_again = [&probe[..], &check[..], &probe[..]].concat();
    assert!(calls == unchanged || calls == looked_again, "{calls:?}");
    assert_eq!(stack.container("web"), container);
}

/// A stack that cannot be pulled stops the update before anything changes: exit 1, the error
/// names stack and service, the host stays `idle` (a read failed), no service is recreated.
/// One whose `up -d` fails fails the host (a mutation had started), naming the service, and
/// the `compose` stage says `failed`.
#[test]
fn a_failing_stack_fails_the_update_naming_stack_and_service() {
    let fixture = registry::shared();
    let app = fixture.repo("batch-fail-app");
    let ghost = fixture.repo("batch-fail-ghost"); // never pushed
    let stack = Stack::new(
        &format!("th batch-fail {}", std::process::id()),
        "compose.yaml",
        &[("web", &app.reference), ("worker", &app.reference)],
    );
    app.push(&fixture.v1);
    stack.up();
    app.push_newer();
    let services = format!(
        "services:\n  web:\n    image: {r}\n  worker:\n    image: {r}\n",
        r = app.reference
    );
    let path = stack.file_path();
    let env = TestEnv::new();
    docker_host(&env, &path, "v1");
    let containers = || (stack.container("web"), stack.container("worker"));
    let before = containers();

    stack.write(&format!(
        "{services}  ghost:\n    image: {}\n",
        ghost.reference
    ));
    let out = run_expecting(&env, &["--batch", "update", "docker", "--json"], 1);
    let lines = json_lines(&out);
    let host = host_line(&lines, "docker");
    let blamed = format!("compose stack '{path}', service 'ghost': compose pull failed");
    let error = host["error"].as_str().unwrap_or_default();
    assert!(error.contains(&blamed), "{host}");
    assert_eq!(host["state"], "idle", "{host}");
    assert!(
        host["last_error"]["error"]
            .as_str()
            .is_some_and(|e| e.contains(&blamed)),
        "{host}"
    );
    assert_eq!(
        stages(&lines),
        [
            "pre_check:started",
            "pre_check:done",
            "compose_check:started",
            "compose_check:failed"
        ]
    );
    assert!(!entered_updating(&lines));
    assert_eq!(
        containers(),
        before,
        "a stack that failed its pull was touched"
    );

    // `worker` cannot start on its new container: `up -d` fails inside `updating`.
    stack.write(&format!("{services}    command: [\"/nonexistent\"]\n"));
    let out = run_expecting(&env, &["--batch", "update", "docker", "--json"], 1);
    let lines = json_lines(&out);
    let host = host_line(&lines, "docker");
    let blamed = format!("compose stack '{path}', service 'worker': compose up failed");
    assert!(
        host["error"].as_str().is_some_and(|e| e.contains(&blamed)),
        "{host}"
    );
    assert_eq!(host["state"], "failed", "{host}");
    assert_eq!(host["outcome"], "failed", "{host}");
    let stages = stages(&lines);
    assert_eq!(
        stages[stages.len() - 2..],
        ["compose:started", "compose:failed"],
        "{stages:?}"
    );
    let failed = lines
        .iter()
        .find(|l| l["type"] == "stage" && l["stage"] == "compose" && l["status"] == "failed")
        .unwrap();
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains(&blamed)),
        "{failed}"
    );
}
