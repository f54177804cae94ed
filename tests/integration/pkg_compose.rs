//! Docker Compose stacks against a real docker daemon and a loopback registry: a pull brings a
//! real newer image, each service is recorded by image id and digest before and after, `up -d`
//! recreates only what changed and is checked afterwards, failures name the stack and service,
//! compose v2's exact command lines work, and hostile stack paths run nothing but what tendhost
//! meant.

use std::fs;

use tendhost::config::{ComposeVersion, DockerSettings};
use tendhost::errors::chain;
use tendhost::pkg::{self, ComposeUpdater, ImageRef, ServiceChange};
use tendhost::remote::LocalExecutor;
use tokio_util::sync::CancellationToken;

use crate::harness::compose::{Outdated, Stack, V2Shim};
use crate::harness::registry;

fn updater(version: ComposeVersion, pull_before_update: bool) -> ComposeUpdater {
    ComposeUpdater::new(&DockerSettings {
        compose_version: version,
        pull_before_update,
        min_image_age: None,
    })
}

fn image(id: &str, digest: &str) -> ImageRef {
    ImageRef {
        id: id.to_string(),
        digest: Some(digest.to_string()),
    }
}

/// The one change of service `web` from v1 to v2 of the test image.
fn web_change(path: &str, v1_digest: &str, v2_digest: &str) -> ServiceChange {
    let fixture = registry::shared();
    ServiceChange {
        path: path.to_string(),
        service: "web".into(),
        from: Some(image(&fixture.v1, v1_digest)),
        to: image(&fixture.v2, v2_digest),
    }
}

#[tokio::test]
async fn records_both_images_and_recreates_only_the_changed_service() {
    let fixture = registry::shared();
    let (web, db) = (fixture.repo("v1-web"), fixture.repo("v1-db"));
    // A hostile directory name: the stack is found and the `$(…)` never runs.
    let name = format!("th v1 {} $(touch pwned) x", std::process::id());
    let stack = Stack::new(
        &name,
        "docker-compose.yml",
        &[("web", &web.reference), ("db", &db.reference)],
    );
    let db_digest = db.push(&fixture.v1);
    let v1_digest = web.push(&fixture.v1);
    stack.up();
    let db_container = stack.container("db");
    let v2_digest = web.push_newer();
    assert_eq!(web.local_id(), fixture.v1, "locally the tag still means v1");

    let exec = LocalExecutor::new();
    let cancel = CancellationToken::new();
    let path = stack.dir_path();
    let v1 = updater(ComposeVersion::V1, true);

    // Read-only: what runs, and what the tags mean locally; nothing pulled.
    let seen = v1.inspect(&exec, &path, &cancel).await.unwrap();
    let names: Vec<&str> = seen.services.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(names, ["web", "db"]);
    let w = &seen.services[0];
    assert_eq!(w.image.as_deref(), Some(web.reference.as_str()));
    assert_eq!(w.running, Some(image(&fixture.v1, &v1_digest)));
    assert_eq!(
        w.available,
        Some(image(&fixture.v1, &v1_digest)),
        "inspect pulled"
    );
    // v1 is in two repositories; each service gets the digest of its own.
    assert_eq!(
        seen.services[1].running,
        Some(image(&fixture.v1, &db_digest))
    );
    assert_eq!(seen.changed().count(), 0);
    assert_eq!(web.local_id(), fixture.v1);

    // A check pulls and compares, and recreates nothing.
    let checked = v1.check(&exec, &path, &[], None, &cancel).await.unwrap();
    assert_eq!(
        checked.services[0].available,
        Some(image(&fixture.v2, &v2_digest))
    );
    assert!(!checked.recreated);
    assert_eq!(stack.running_image("web"), fixture.v1, "a check recreated");

    let updated = v1.update(&exec, &path, None, &cancel).await.unwrap();
    assert!(updated.recreated);
    assert_eq!(
        updated.changes().collect::<Vec<_>>(),
        [web_change(&path, &v1_digest, &v2_digest)]
    );
    assert_eq!(stack.running_image("web"), fixture.v2);
    assert_eq!(
        stack.container("db"),
        db_container,
        "the unchanged service was recreated"
    );

    // Nothing changed since: no `up -d`, the containers stay as they are.
    let web_container = stack.container("web");
    let again = v1.update(&exec, &path, None, &cancel).await.unwrap();
    assert!(!again.recreated, "{again:?}");
    assert_eq!(again.changes().count(), 0);
    assert_eq!(
        again.services[0].running,
        Some(image(&fixture.v2, &v2_digest))
    );
    assert_eq!(stack.container("web"), web_container);
    assert_eq!(stack.container("db"), db_container);
    assert!(
        !stack.dir.join("pwned").exists() && !stack.dir.parent().unwrap().join("pwned").exists(),
        "the stack path ran a command"
    );
}

/// `err` is a failure of the stack at `path`, blaming `service`, whose cause is the command of
/// `step` exiting non-zero.
fn assert_blames(err: &pkg::Error, path: &str, service: Option<&str>, step: &str) {
    let pkg::Error::Compose {
        path: p,
        service: s,
        source,
    } = err
    else {
        panic!("not a compose error: {err:?}");
    };
    assert_eq!((p.as_str(), s.as_deref()), (path, service), "{err:?}");
    assert!(
        matches!(**source, pkg::Error::CommandFailed { step: st, .. } if st == step),
        "{source:?}"
    );
    assert!(!err.is_transient(), "{err:?}");
    let blamed = service
        .map(|s| format!(", service '{s}'"))
        .unwrap_or_default();
    let text = chain(err);
    assert!(
        text.starts_with(&format!("compose stack '{path}'{blamed}: {step} failed")),
        "{text}"
    );
}

#[tokio::test]
async fn a_failing_stack_names_its_path_and_service() {
    let fixture = registry::shared();
    let web = fixture.repo("fail-web");
    let ghost = fixture.repo("fail-ghost"); // never pushed
    let stack = Stack::new(
        &format!("th fail {}", std::process::id()),
        "compose.yaml",
        &[("web", &web.reference), ("ghost", &ghost.reference)],
    );
    web.push(&fixture.v1);
    let exec = LocalExecutor::new();
    let cancel = CancellationToken::new();
    let path = stack.file_path();
    let v1 = updater(ComposeVersion::V1, true);

    // The image of one service is missing from the registry: the pull fails, naming it.
    let err = v1.update(&exec, &path, None, &cancel).await.unwrap_err();
    assert_blames(&err, &path, Some("ghost"), "compose pull");

    // A broken compose file: no service to blame, the stack is named.
    stack.write("services: [\n");
    let err = v1.inspect(&exec, &path, &cancel).await.unwrap_err();
    assert_blames(&err, &path, None, "compose services");
    let err = v1.update(&exec, &path, None, &cancel).await.unwrap_err();
    assert_blames(&err, &path, None, "compose services");

    // Two services get a new image and one cannot start: `up -d` fails, naming that one.
    let services = format!(
        "services:\n  web:\n    image: {r}\n  worker:\n    image: {r}\n",
        r = web.reference
    );
    stack.write(&services);
    stack.up();
    web.push_newer();
    stack.write(&format!("{services}    command: [\"/nonexistent\"]\n"));
    let err = v1.update(&exec, &path, None, &cancel).await.unwrap_err();
    assert_blames(&err, &path, Some("worker"), "compose up");

    let missing = format!("{}/nowhere", stack.dir_path());
    let err = v1.inspect(&exec, &missing, &cancel).await.unwrap_err();
    assert!(
        chain(&err).starts_with(&format!("compose stack '{missing}': ")),
        "{}",
        chain(&err)
    );
}

/// Debian 12 ships only compose v1; the v2 plugin is not packaged. [`V2Shim`] hands `docker
/// compose …` to `docker-compose`, so the exact v2 command lines run through a real shell and a
/// real compose (their arguments are the same in both versions).
#[tokio::test]
async fn v2_command_lines_update_a_stack() {
    let fixture = registry::shared();
    let Outdated {
        stack,
        repo: web,
        v1_digest,
        v2_digest,
    } = Outdated::new("v2-web", "compose.yaml");
    let shim = V2Shim::new();
    let exec = shim.executor();
    let cancel = CancellationToken::new();
    let path = stack.file_path();
    let v2 = updater(ComposeVersion::V2, true);

    let report = v2.update(&exec, &path, None, &cancel).await.unwrap();
    assert!(report.recreated);
    assert_eq!(
        report.changes().collect::<Vec<_>>(),
        [web_change(&path, &v1_digest, &v2_digest)]
    );
    assert_eq!(stack.running_image("web"), fixture.v2);
    let probe = ["-f compose.yaml config --services", "-f compose.yaml ps -q"];
    assert_eq!(
        shim.take_compose_calls(),
        [
            probe[0],
            probe[1],
            "-f compose.yaml pull",
            "-f compose.yaml up -d web",
            probe[0],
            probe[1],
        ]
    );

    // An `up -d` that reports success but recreates nothing is caught, naming the service.
    web.push(&fixture.v1);
    web.tag_locally(&fixture.v2);
    shim.skip_up();
    let err = v2.update(&exec, &path, None, &cancel).await.unwrap_err();
    match &err {
        pkg::Error::Compose {
            service: Some(service),
            source,
            ..
        } => {
            assert_eq!(service, "web");
            assert!(
                matches!(&**source, pkg::Error::NotRecreated { running: Some(old), expected }
                    if *old == fixture.v2 && *expected == fixture.v1),
                "{source:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(stack.running_image("web"), fixture.v2);
    assert_eq!(shim.take_compose_calls().len(), 6);

    // Read-only inspection runs only the probe.
    v2.inspect(&exec, &path, &cancel).await.unwrap();
    assert_eq!(shim.take_compose_calls(), probe);
}

#[tokio::test]
async fn hostile_stack_paths_run_nothing_extra() {
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("pwned");
    let m = marker.display();
    let hostile = [
        format!("a; touch {m}; b"),
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("it's \"quoted\" {m}"),
        format!("line\nbreak; touch {m}"),
        "with spaces and * glob".to_string(),
    ];
    let exec = LocalExecutor::new();
    let cancel = CancellationToken::new();
    let v1 = updater(ComposeVersion::V1, false);
    for (i, name) in hostile.iter().enumerate() {
        // A real stack inside a directory with a hostile name: compose must find it.
        let dir = work.path().join(name).join(format!("stack{i}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("docker-compose.yml"),
            "services:\n  svc:\n    image: tendhost-test/none:latest\n",
        )
        .unwrap();
        // Every compose script starts with the same `cd`; the pull and `up -d` of a hostile
        // path are exercised for real in the update tests above.
        let path = dir.display().to_string();
        let report = v1
            .inspect(&exec, &path, &cancel)
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {}", chain(&e)));
        assert_eq!(report.services.len(), 1, "{name:?}");
        assert_eq!(report.services[0].service, "svc");
        assert_eq!(report.services[0].running, None, "no container was created");

        // And a path that does not exist fails cleanly, naming it.
        let missing = work.path().join(format!("missing {name}"));
        let missing = missing.display().to_string();
        let err = v1.inspect(&exec, &missing, &cancel).await.unwrap_err();
        assert!(
            matches!(&err, pkg::Error::Compose { path, .. } if *path == missing),
            "{err:?}"
        );
        assert!(!marker.exists(), "{name:?} ran a command");
    }
}
