//! A Docker registry on loopback (Debian's `docker-registry`) and tiny images built locally, so
//! a compose `pull` brings a real new image without reaching the internet.
//!
//! Images are `docker import`s of a tarball holding one static binary that just waits (built
//! here with `gcc -static`) and a `/version` file; two versions differ in that file, so they
//! have different image ids. The docker daemon trusts plain-HTTP registries on 127.0.0.0/8.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::debroot::run;

/// A running registry; killed and its storage deleted on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    /// The registry's storage; deleted with it.
    _storage: TempDir,
}

impl Registry {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tendhost-registry-")
            .tempdir()
            .expect("registry dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let registry = Self {
            child,
            addr,
            _storage: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not listen on {}",
                registry.addr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A static binary that waits forever: the whole userland of the test images.
fn waiter(work: &Path) -> PathBuf {
    let src = work.join("wait.c");
    fs::write(
        &src,
        "#include <unistd.h>\nint main(void){for(;;)pause();}\n",
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
pub fn import_image(reference: &str, version: &str) -> String {
    let work = tempfile::tempdir().expect("image work dir");
    let rootfs = work.path().join("rootfs");
    fs::create_dir_all(&rootfs).expect("rootfs");
    fs::copy(waiter(work.path()), rootfs.join("wait")).expect("copying the waiter");
    fs::write(rootfs.join("version"), version).expect("version file");
    let tar = work.path().join("rootfs.tar");
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

pub fn image_id(reference: &str) -> String {
    run(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", reference]))
        .trim()
        .to_string()
}
