//! A Debian root per test host: debootstrap `--variant=minbase bookworm` once into a cache
//! shared by every run, then give each host a cheap copy (an overlayfs mount over the cached
//! base, or `cp -a --reflink=auto` where overlay fails) with `/proc` mounted inside. Dropping a
//! [`DebRoot`] unmounts and deletes its copy.
//!
//! Commands run inside the root through `chroot ROOT sh -c SCRIPT`, i.e. the same `Executor`
//! code path as any local host.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tendhost::remote::LocalExecutor;

/// Where the debootstrapped base lives between runs.
pub(crate) const CACHE_DIR: &str = "/var/cache/tendhost-test";
const BASE_NAME: &str = "bookworm-base";
/// Written last into a finished base, so a half-built one is never used.
const COMPLETE_MARKER: &str = ".tendhost-base-complete";
const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

/// Runs `cmd`, panicking with its output when it fails: harness failures should be loud.
pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The Debian mirror this machine's apt uses, read from `/etc/apt/sources.list*` at run time.
pub(crate) fn mirror() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        if let Some(uri) = mirror_in(&text) {
            return uri;
        }
    }
    FALLBACK_MIRROR.to_string()
}

/// The first main-archive URI (not `-security`) in one-line or deb822 sources.
fn mirror_in(text: &str) -> Option<String> {
    let mut uris: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("deb ") {
            let words: Vec<&str> = rest
                .split_whitespace()
                .filter(|w| !w.starts_with('['))
                .collect();
            if let [uri, suite, ..] = words.as_slice()
                && suite.starts_with("bookworm")
                && !suite.contains("security")
            {
                return Some((*uri).to_string());
            }
        } else if let Some(rest) = line.strip_prefix("URIs:") {
            uris = rest.split_whitespace().map(String::from).collect();
        } else if let Some(rest) = line.strip_prefix("Suites:")
            && rest.split_whitespace().any(|s| s == "bookworm")
            && let Some(uri) = uris.first()
        {
            return Some(uri.clone());
        }
    }
    None
}

/// The cached base root, built on first use (a few minutes) under a lock so parallel test
/// processes never build it twice.
pub(crate) fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        cached(BASE_NAME, |tmp| {
            eprintln!("debroot: building {BASE_NAME} from {} (once)", mirror());
            run(Command::new("debootstrap")
                .args(["--variant=minbase", "bookworm"])
                .arg(tmp)
                .arg(mirror()));
        })
    })
}

/// `CACHE_DIR/name`, built by `build` into a temporary directory on first use, under the
/// cache's lock, and marked complete last, so a build cut short is started over and never
/// used; later runs find it ready.
pub(crate) fn cached(name: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let cache = Path::new(CACHE_DIR);
    fs::create_dir_all(cache).expect("creating the debroot cache dir");
    let dir = cache.join(name);
    // One lock for every cached base: `build` must not ask for another one.
    let lock_file = fs::File::create(cache.join(".lock")).expect("creating the cache lock");
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("locking the debroot cache");
    if !dir.join(COMPLETE_MARKER).exists() {
        let tmp = cache.join(format!("{name}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        build(&tmp);
        fs::write(tmp.join(COMPLETE_MARKER), b"").expect("marking the base complete");
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&tmp, &dir).expect("moving the base into place");
    }
    dir
}

/// One test host's own Debian root.
#[derive(Debug)]
pub(crate) struct DebRoot {
    /// Holds `upper/`, `work/` and `root/` (the merged view, or the copy).
    dir: PathBuf,
    root: PathBuf,
    overlay: bool,
}

impl DebRoot {
    /// A fresh copy of the cached base, with `/proc` mounted and the network apt sources gone.
    pub(crate) fn new(name: &str) -> Self {
        Self::with_base(name, base())
    }

    /// [`Self::new`] over another cached base (one built from [`base`] with more installed).
    pub(crate) fn with_base(name: &str, base: &Path) -> Self {
        let parent = Path::new(CACHE_DIR).join("hosts");
        fs::create_dir_all(&parent).expect("creating the hosts dir");
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(&parent)
            .expect("creating a host dir")
            .keep();
        let root = dir.join("root");
        for sub in ["upper", "work", "root"] {
            fs::create_dir_all(dir.join(sub)).expect("creating overlay dirs");
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        let overlay = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&root)
            .status()
            .is_ok_and(|s| s.success());
        if !overlay {
            eprintln!("debroot: overlay mount failed; copying the base instead");
            fs::remove_dir(&root).expect("removing the empty mount point");
            run(Command::new("cp")
                .args(["-a", "--reflink=auto"])
                .arg(base)
                .arg(&root));
        }
        let host = Self { dir, root, overlay };
        run(Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(host.path("proc")));
        // Tests must never reach the network: only the local repository stays.
        let _ = fs::remove_file(host.path("etc/apt/sources.list"));
        let _ = fs::remove_dir_all(host.path("etc/apt/sources.list.d"));
        fs::create_dir_all(host.path("etc/apt/sources.list.d")).expect("sources.list.d");
        host
    }

    #[allow(dead_code)] // for harness users that mount or inspect the root directly (sshd chroot)
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the root (`rel` without a leading `/`).
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// Runs `script` in the root, panicking on failure; returns stdout.
    pub(crate) fn sh(&self, script: &str) -> String {
        run(Command::new("chroot")
            .arg(&self.root)
            .args(["sh", "-c", script]))
    }

    /// An executor whose commands run inside this root.
    pub(crate) fn executor(&self) -> LocalExecutor {
        LocalExecutor::with_wrapper(vec![
            "chroot".into(),
            self.root.display().to_string(),
            "sh".into(),
            "-c".into(),
        ])
    }
}

impl DebRoot {
    /// A real sshd test host whose every session runs inside this root: a `ForceCommand`
    /// wrapper chroots and runs `sh -c "$SSH_ORIGINAL_COMMAND"` (sshd's own `ChrootDirectory`
    /// refuses roots under group-writable parents; see HARNESS.md).
    pub(crate) fn start_sshd(&self) -> super::SshHost {
        use std::os::unix::fs::PermissionsExt;
        let wrapper = self.dir.join("chroot-wrapper");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec chroot {} sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
                tendhost::remote::quote(&self.root.display().to_string())
            ),
        )
        .expect("writing the chroot wrapper");
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("wrapper mode");
        super::SshHost::start(super::SshdOptions {
            force_command: Some(wrapper),
            ..Default::default()
        })
        .expect("starting sshd for the debroot")
    }
}

impl Drop for DebRoot {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.path("proc"))
            .status();
        if self.overlay {
            let _ = Command::new("umount").arg("-l").arg(&self.root).status();
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("debroot: removing {}: {e}", self.dir.display());
        }
    }
}

#[test]
fn reads_the_mirror_from_both_source_formats() {
    let deb822 = "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\n\n\
                  Types: deb\nURIs: http://s.example/debian-security\nSuites: bookworm-security\n";
    assert_eq!(
        mirror_in(deb822).as_deref(),
        Some("http://m.example/debian")
    );
    let list = "# c\ndeb [arch=amd64] http://l.example/debian bookworm main\n";
    assert_eq!(mirror_in(list).as_deref(), Some("http://l.example/debian"));
    assert_eq!(mirror_in("deb http://x/ bookworm-security main\n"), None);
}
