//! Compose stacks for tests: a stack directory (any name, hostile ones included) whose services
//! run the [`registry`](super::registry) test images, driven with the real `docker-compose`
//! (v1) and taken down on drop; and [`V2Shim`], a `docker` wrapper standing in for the compose
//! v2 plugin, which Debian 12 does not package.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use tendhost::remote::{LocalExecutor, quote};

use super::debroot::run;
use super::registry::{self, Repo};

/// A compose project in a directory of its own; `down` on drop.
pub(crate) struct Stack {
    /// The project directory.
    pub dir: PathBuf,
    /// The compose file inside it.
    pub file: PathBuf,
    _work: tempfile::TempDir,
}

impl Stack {
    /// A stack in a directory named `name` (may hold spaces and shell syntax; make it unique, it
    /// becomes the compose project name), its compose file named `file`, with one service per
    /// `(service, image reference)`.
    pub(crate) fn new(name: &str, file: &str, services: &[(&str, &str)]) -> Self {
        let work = tempfile::Builder::new()
            .prefix("tendhost-stack-")
            .tempdir()
            .expect("stack dir");
        let dir = work.path().join(name);
        fs::create_dir_all(&dir).expect("creating the stack dir");
        let mut yaml = String::from("services:\n");
        for (service, image) in services {
            yaml.push_str(&format!("  {service}:\n    image: {image}\n"));
        }
        let file = dir.join(file);
        fs::write(&file, yaml).expect("writing the compose file");
        Stack {
            dir,
            file,
            _work: work,
        }
    }

    /// Overwrites the compose file.
    pub(crate) fn write(&self, yaml: &str) {
        fs::write(&self.file, yaml).expect("writing the compose file");
    }

    /// The compose file's path as a `compose_paths` entry.
    pub(crate) fn file_path(&self) -> String {
        self.file.display().to_string()
    }

    /// The directory's path as a `compose_paths` entry.
    pub(crate) fn dir_path(&self) -> String {
        self.dir.display().to_string()
    }

    fn compose(&self) -> Command {
        let mut cmd = Command::new("docker-compose");
        cmd.arg("-f").arg(&self.file).current_dir(&self.dir);
        cmd
    }

    /// `docker-compose up -d`: every service created from what its reference means locally.
    pub(crate) fn up(&self) {
        run(self.compose().args(["up", "-d"]));
    }

    /// The id of `service`'s container, found by compose's labels (docker answers in a few ms,
    /// `docker-compose ps` takes most of a second).
    pub(crate) fn container(&self, service: &str) -> String {
        let dir = format!(
            "label=com.docker.compose.project.working_dir={}",
            self.dir.display()
        );
        let service_label = format!("label=com.docker.compose.service={service}");
        let ids = run(Command::new("docker").args([
            "ps",
            "-aq",
            "--filter",
            &dir,
            "--filter",
            &service_label,
        ]));
        let ids: Vec<&str> = ids.split_whitespace().collect();
        assert_eq!(ids.len(), 1, "{service} has not one container: {ids:?}");
        ids[0].to_string()
    }

    /// The image id `service`'s container runs.
    pub(crate) fn running_image(&self, service: &str) -> String {
        let container = self.container(service);
        run(Command::new("docker").args(["inspect", "--format", "{{.Image}}", &container]))
            .trim()
            .to_string()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.compose().args(["down", "--timeout", "1"]).output();
    }
}

/// A one-service stack (`web`) running v1 of the test image while its repository already has
/// v2: a host before its update.
pub(crate) struct Outdated {
    pub stack: Stack,
    pub repo: Repo,
    /// Digests of v1 and v2 in `repo`.
    pub v1_digest: String,
    pub v2_digest: String,
}

impl Outdated {
    /// `name` is the test's own (it names the repository and the project); `file` the compose
    /// file's name.
    pub(crate) fn new(name: &str, file: &str) -> Self {
        let fixture = registry::shared();
        let repo = fixture.repo(name);
        let stack = Stack::new(
            &format!("th {name} {}", std::process::id()),
            file,
            &[("web", &repo.reference)],
        );
        let v1_digest = repo.push(&fixture.v1);
        stack.up();
        let v2_digest = repo.push_newer();
        Outdated {
            stack,
            repo,
            v1_digest,
            v2_digest,
        }
    }
}

/// A directory holding a `docker` wrapper: `docker compose ARGS` runs `docker-compose ARGS`,
/// anything else the real docker. Every call's arguments are logged, one line each, so a test
/// can assert the exact v2 command lines tendhost ran.
pub(crate) struct V2Shim {
    dir: tempfile::TempDir,
}

impl Default for V2Shim {
    fn default() -> Self {
        Self::new()
    }
}

impl V2Shim {
    pub(crate) fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tendhost-v2shim-")
            .tempdir()
            .expect("shim dir");
        let docker = run(Command::new("sh").args(["-c", "command -v docker"]));
        let log = quote(&dir.path().join("calls").display().to_string());
        let skip_up = quote(&dir.path().join("skip-up").display().to_string());
        let script = format!(
            "#!/bin/sh\n\
             printf '%s\\n' \"$*\" >> {log}\n\
             if [ \"$1\" = compose ]; then\n\
               shift\n\
               case \" $* \" in *' up '*) [ -e {skip_up} ] && exit 0;; esac\n\
               exec docker-compose \"$@\"\n\
             fi\n\
             exec {docker} \"$@\"\n",
            docker = quote(docker.trim()),
        );
        let shim = dir.path().join("docker");
        fs::write(&shim, script).expect("writing the docker shim");
        fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).expect("shim mode");
        V2Shim { dir }
    }

    /// A local executor whose scripts find the shim first on `PATH`.
    pub(crate) fn executor(&self) -> LocalExecutor {
        LocalExecutor::with_wrapper(vec![
            "env".into(),
            format!("PATH={}", self.path_env()),
            "sh".into(),
            "-c".into(),
        ])
    }

    /// `PATH` with the shim first: for a tendhost process whose local host runs `sh -c` on
    /// this machine.
    pub(crate) fn path_env(&self) -> String {
        let rest = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        format!("{}:{rest}", self.dir.path().display())
    }

    /// From now on `docker compose … up …` succeeds without doing anything: an `up -d` that
    /// silently did not recreate.
    pub(crate) fn skip_up(&self) {
        fs::write(self.path("skip-up"), b"").expect("skip-up flag");
    }

    /// The `docker compose` calls so far, without the leading `compose`; then forgets them.
    pub(crate) fn take_compose_calls(&self) -> Vec<String> {
        let log = self.path("calls");
        let text = fs::read_to_string(&log).unwrap_or_default();
        let _ = fs::remove_file(&log);
        text.lines()
            .filter_map(|l| l.strip_prefix("compose "))
            .map(str::to_string)
            .collect()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}
