//! Docker Compose stacks against a real docker daemon and a loopback registry: a pull brings a
//! real newer image, `up -d` runs only when an image id changed, and hostile stack paths run
//! nothing but what tendhost meant.

use std::fs;
use std::path::Path;
use std::process::Command;

use tendhost::config::{ComposeVersion, DockerSettings};
use tendhost::pkg::ComposeUpdater;
use tendhost::remote::LocalExecutor;
use tokio_util::sync::CancellationToken;

use crate::harness::debroot::run;
use crate::harness::registry::{Registry, image_id, import_image};

fn updater(pull_before_update: bool) -> ComposeUpdater {
    ComposeUpdater::new(&DockerSettings {
        compose_version: ComposeVersion::V1,
        pull_before_update,
    })
}

/// Stops the stack and removes the test images however the test ends.
struct Stack<'a> {
    dir: &'a Path,
    images: Vec<String>,
}

impl Drop for Stack<'_> {
    fn drop(&mut self) {
        let _ = Command::new("docker-compose")
            .args(["down", "--timeout", "1"])
            .current_dir(self.dir)
            .output();
        for image in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
    }
}

fn running_image(dir: &Path) -> String {
    let id = run(Command::new("docker-compose")
        .args(["ps", "-q", "web"])
        .current_dir(dir));
    run(Command::new("docker").args(["inspect", "--format", "{{.Image}}", id.trim()]))
        .trim()
        .to_string()
}

#[tokio::test]
async fn pulls_a_newer_image_and_recreates_only_what_changed() {
    let registry = Registry::start();
    let reference = format!("{}/tendhost-test/web:latest", registry.addr);
    let staging = format!("{}/tendhost-test/web:staging", registry.addr);
    let work = tempfile::tempdir().unwrap();
    let dir = work
        .path()
        .join(format!("tendhoststack{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("docker-compose.yml"),
        format!("services:\n  web:\n    image: {reference}\n    command: [\"/wait\"]\n"),
    )
    .unwrap();
    let mut stack = Stack {
        dir: &dir,
        images: vec![reference.clone(), staging.clone()],
    };

    // v1 in the registry and running; v2 pushed under the same tag but not present locally.
    let v1 = import_image(&reference, "v1");
    run(Command::new("docker").args(["push", &reference]));
    run(Command::new("docker-compose")
        .args(["up", "-d"])
        .current_dir(&dir));
    assert_eq!(running_image(&dir), v1);
    let v2 = import_image(&staging, "v2");
    assert_ne!(v1, v2);
    run(Command::new("docker").args(["tag", &staging, &reference]));
    run(Command::new("docker").args(["push", &reference]));
    run(Command::new("docker").args(["tag", &v1, &reference]));
    run(Command::new("docker").args(["rmi", &staging]));
    assert_eq!(image_id(&reference), v1, "locally the tag still means v1");
    stack.images.push(v2.clone());
    stack.images.push(v1.clone());

    let exec = LocalExecutor::new();
    let cancel = CancellationToken::new();
    let path = dir.display().to_string();

    let checked = updater(true)
        .check(&exec, &path, None, &cancel)
        .await
        .unwrap();
    assert_eq!(checked.services.len(), 1);
    let web = &checked.services[0];
    assert_eq!(web.service, "web");
    assert_eq!(web.image.as_deref(), Some(reference.as_str()));
    assert_eq!(web.old_id.as_deref(), Some(v1.as_str()));
    assert_eq!(
        web.new_id.as_deref(),
        Some(v2.as_str()),
        "the pull fetched v2"
    );
    assert!(!checked.recreated);
    assert_eq!(running_image(&dir), v1, "a check recreates nothing");

    let updated = updater(true)
        .update(&exec, &path, None, &cancel)
        .await
        .unwrap();
    assert!(updated.recreated);
    assert_eq!(updated.changed().count(), 1);
    assert_eq!(running_image(&dir), v2);

    // The inventory of this host now shows the recreated container and both images.
    let inv = tendhost::inventory::collect(&exec, &cancel).await.unwrap();
    let container = inv
        .containers
        .iter()
        .find(|c| c.image == reference)
        .unwrap_or_else(|| panic!("container missing from {:?}", inv.containers));
    assert_eq!(container.state, "running");
    assert!(
        inv.images
            .iter()
            .any(|i| i.id == v2 && i.tags.contains(&reference))
    );

    let again = updater(true)
        .update(&exec, &path, None, &cancel)
        .await
        .unwrap();
    assert!(!again.recreated, "nothing changed, so no up -d: {again:?}");
    assert_eq!(again.changed().count(), 0);
    drop(stack);
    drop(registry);
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
    for (i, name) in hostile.iter().enumerate() {
        // A real stack inside a directory with a hostile name: compose must find it.
        let dir = work.path().join(name).join(format!("stack{i}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("docker-compose.yml"),
            "services:\n  svc:\n    image: tendhost-test/none:latest\n",
        )
        .unwrap();
        let report = updater(false)
            .check(&exec, &dir.display().to_string(), None, &cancel)
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(report.services.len(), 1, "{name:?}");
        assert_eq!(report.services[0].service, "svc");
        assert_eq!(
            report.services[0].old_id, None,
            "no container was ever created"
        );

        // And a path that does not exist fails cleanly.
        let missing = work.path().join(format!("missing {name}"));
        assert!(
            updater(false)
                .check(&exec, &missing.display().to_string(), None, &cancel)
                .await
                .is_err()
        );
        assert!(!marker.exists(), "{name:?} ran a command");
    }
}

/// Debian 12 ships only compose v1; the v2 plugin is not packaged. A `docker` wrapper that hands
/// `docker compose …` to `docker-compose` stands in for the plugin, so the v2 command lines run
/// through a real shell and a real compose (their arguments are the same in both versions).
#[tokio::test]
async fn v2_command_lines_reach_compose() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let shim = work.path().join("shim");
    fs::create_dir_all(&shim).unwrap();
    let docker = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v docker"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let log = work.path().join("invocations");
    fs::write(
        shim.join("docker"),
        format!(
            "#!/bin/sh\necho \"$*\" >> {log}\nif [ \"$1\" = compose ]; then shift; exec docker-compose \"$@\"; fi\n\
             exec {docker} \"$@\"\n",
            log = log.display(),
            docker = docker.trim()
        ),
    )
    .unwrap();
    fs::set_permissions(shim.join("docker"), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = work.path().join("stack");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("compose.yaml"),
        "services:\n  api:\n    image: tendhost-test/none:latest\n  worker:\n    image: tendhost-test/none:latest\n",
    )
    .unwrap();
    let exec = LocalExecutor::with_wrapper(vec![
        "env".into(),
        format!("PATH={}:/usr/local/bin:/usr/bin:/bin", shim.display()),
        "sh".into(),
        "-c".into(),
    ]);
    let v2 = ComposeUpdater::new(&DockerSettings {
        compose_version: ComposeVersion::V2,
        pull_before_update: false,
    });
    let path = dir.join("compose.yaml").display().to_string();
    let report = v2
        .check(&exec, &path, None, &CancellationToken::new())
        .await
        .unwrap();
    let mut services: Vec<&str> = report.services.iter().map(|s| s.service.as_str()).collect();
    services.sort();
    assert_eq!(services, ["api", "worker"]);
    let calls = fs::read_to_string(&log).unwrap();
    assert!(
        calls
            .lines()
            .any(|l| l == "compose -f compose.yaml config --services"),
        "{calls}"
    );
}
