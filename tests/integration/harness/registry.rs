//! A Docker registry on loopback (Debian's `docker-registry`) and two tiny locally built image
//! versions, so a compose `pull` brings a real new image without reaching the internet.
//!
//! Both are expensive and shared: [`shared`] starts one registry and imports the two images
//! once per test process. Each test pushes them into repositories of its own ([`Fixture::repo`])
//! and so never races another test over a tag. The registry runs under a watchdog shell that
//! holds our end of a pipe: when the test process exits (however it exits) the pipe closes and
//! the watchdog stops the registry, removes the images and deletes the storage.
//!
//! Images are `docker import`s of a tarball holding one static binary that waits until it is
//! told to stop (built here with `gcc -static`) and a `/version` file; the two versions differ
//! in that file, so they have different image ids. The docker daemon trusts plain-HTTP
//! registries on 127.0.0.0/8.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::debroot::run;

/// The registry and images every compose test shares.
pub(crate) struct Fixture {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Image id of version 1 of the test image.
    pub v1: String,
    /// Image id of version 2: same tree, another `/version`.
    pub v2: String,
    /// Never waited for: it outlives the test process by design (see the module docs).
    _watchdog: Child,
}

/// The registry and images of this test process, started on first use.
pub(crate) fn shared() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(Fixture::start)
}

impl Fixture {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tendhost-registry-")
            .tempdir()
            .expect("registry dir")
            .keep();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            ),
        )
        .expect("registry config");
        // `images` is written below, once the images exist.
        let watchdog = Command::new("sh")
            .args([
                "-c",
                "docker-registry serve \"$1\" & pid=$!\n\
                 read -r _\n\
                 kill \"$pid\"; wait \"$pid\"\n\
                 [ -s \"$2/images\" ] && docker rmi -f $(cat \"$2/images\")\n\
                 rm -rf \"$2\"",
                "sh",
            ])
            .arg(&config)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let waiter = waiter(&dir);
        let tag = format!("tendhost-fixture-{}", std::process::id());
        let v1 = import_image(&dir, &waiter, &format!("{tag}:v1"), "v1");
        let v2 = import_image(&dir, &waiter, &format!("{tag}:v2"), "v2");
        assert_ne!(v1, v2);
        fs::write(dir.join("images"), format!("{v1} {v2}\n")).expect("image list");
        Fixture {
            addr,
            v1,
            v2,
            _watchdog: watchdog,
        }
    }

    /// A repository of this registry for one test (unique per process), tagged `latest`.
    pub(crate) fn repo(&self, name: &str) -> Repo {
        let repository = format!("{}/tendhost-test/{name}-{}", self.addr, std::process::id());
        Repo {
            reference: format!("{repository}:latest"),
            repository,
        }
    }
}

/// `REGISTRY/tendhost-test/NAME-PID:latest`; the local tag is removed on drop.
pub(crate) struct Repo {
    pub reference: String,
    repository: String,
}

impl Repo {
    /// Publishes `image` (an id) as the reference; returns the digest the registry knows it by
    /// (`REPOSITORY@sha256:…`), as docker records it locally.
    pub(crate) fn push(&self, image: &str) -> String {
        self.tag_locally(image);
        run(Command::new("docker").args(["push", &self.reference]));
        let digests = run(Command::new("docker").args([
            "image",
            "inspect",
            "--format",
            "{{range .RepoDigests}}{{.}} {{end}}",
            &self.reference,
        ]));
        let prefix = format!("{}@", self.repository);
        digests
            .split_whitespace()
            .find(|d| d.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no digest for {prefix} in {digests}"))
            .to_string()
    }

    /// Publishes v2 while the local tag stays on v1: what a host looks like before its update.
    /// Returns the digest of v2.
    pub(crate) fn push_newer(&self) -> String {
        let fixture = shared();
        let digest = self.push(&fixture.v2);
        self.tag_locally(&fixture.v1);
        digest
    }

    /// Points the local tag at `image` without pushing: a host that has not pulled yet.
    pub(crate) fn tag_locally(&self, image: &str) {
        run(Command::new("docker").args(["tag", image, &self.reference]));
    }

    /// The image id the local tag points at.
    pub(crate) fn local_id(&self) -> String {
        image_id(&self.reference)
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", &self.reference])
            .output();
    }
}

/// A static binary that waits until SIGTERM (so `docker stop` is instant): the whole userland
/// of the test images.
fn waiter(work: &Path) -> std::path::PathBuf {
    let src = work.join("wait.c");
    fs::write(
        &src,
        "#include <signal.h>\n#include <unistd.h>\n\
         static void stop(int sig){(void)sig;_exit(0);}\n\
         int main(void){signal(SIGTERM,stop);signal(SIGINT,stop);for(;;)pause();}\n",
    )
    .expect("wait.c");
    let bin = work.join("wait");
    run(Command::new("gcc")
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&bin)
        .arg(&src));
    bin
}

/// Imports an image whose `/version` says `version`, tagged `reference`; returns its id.
fn import_image(work: &Path, waiter: &Path, reference: &str, version: &str) -> String {
    let rootfs = work.join(format!("rootfs-{version}"));
    fs::create_dir_all(&rootfs).expect("rootfs");
    fs::copy(waiter, rootfs.join("wait")).expect("copying the waiter");
    fs::write(rootfs.join("version"), version).expect("version file");
    let tar = work.join(format!("rootfs-{version}.tar"));
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    run(Command::new("docker")
        .args(["import", "--change", "CMD [\"/wait\"]"])
        .arg(&tar)
        .arg(reference));
    image_id(reference)
}

/// The id of the local image `reference` (or id) names.
pub(crate) fn image_id(reference: &str) -> String {
    run(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", reference]))
        .trim()
        .to_string()
}
