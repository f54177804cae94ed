//! A real rpm host without a Fedora machine: Debian's `dnf`, `rpm`, `rpmbuild` and
//! `createrepo-c` build an rpm database in a private root with version 1.0 of each test
//! package, and a repository (with `updateinfo` advisories) holding newer versions.
//!
//! Commands reach it through `sh` with a shim directory first on `PATH`: `dnf` and `rpm` there
//! are one-line wrappers adding `--installroot`/`--root`, so tendhost's own command lines run
//! unchanged against real dnf.
//!
//! The packages: `tendhost-app` 1.0 → 1.1 (bugfix advisory), `tendhost-sec` 1.0 → 1.1
//! (security advisory), `kernel-core` 6.0.0 → 6.1.0, `tendhost-core` 1.0 → 1.1 which requires
//! the NEW `tendhost-newdep` and obsoletes the installed `tendhost-legacy` (a removal).
//! `tendhost-newdep` is listed in `needs-restarting.d`, so installing it makes
//! `dnf needs-restarting -r` ask for a reboot, as a kernel does.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;
use tendhost::remote::LocalExecutor;

use super::debroot::run;

struct Rpm {
    name: &'static str,
    version: &'static str,
    extra: &'static [&'static str],
}

const INSTALLED: &[Rpm] = &[
    rpm("tendhost-app", "1.0"),
    rpm("tendhost-sec", "1.0"),
    rpm("kernel-core", "6.0.0"),
    rpm("tendhost-core", "1.0"),
    rpm("tendhost-legacy", "1.0"),
];

const NEWER: &[Rpm] = &[
    rpm("tendhost-app", "1.1"),
    rpm("tendhost-sec", "1.1"),
    rpm("kernel-core", "6.1.0"),
    Rpm {
        name: "tendhost-core",
        version: "1.1",
        extra: &[
            "Requires: tendhost-newdep",
            "Obsoletes: tendhost-legacy < 2",
        ],
    },
    rpm("tendhost-newdep", "1.0"),
];

const fn rpm(name: &'static str, version: &'static str) -> Rpm {
    Rpm {
        name,
        version,
        extra: &[],
    }
}

const UPDATEINFO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="t@example.invalid" status="stable" type="security" version="1">
    <id>TENDHOST-2026-0001</id><title>sec</title><severity>Important</severity>
    <issued date="2026-01-01 00:00:00"/><description>test</description>
    <pkglist><collection short="t"><name>t</name>
      <package name="tendhost-sec" version="1.1" release="1" epoch="0" arch="noarch">
        <filename>tendhost-sec-1.1-1.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
  <update from="t@example.invalid" status="stable" type="bugfix" version="1">
    <id>TENDHOST-2026-0002</id><title>fix</title>
    <issued date="2026-01-02 00:00:00"/><description>test</description>
    <pkglist><collection short="t"><name>t</name>
      <package name="tendhost-app" version="1.1" release="1" epoch="0" arch="noarch">
        <filename>tendhost-app-1.1-1.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
</updates>
"#;

/// One rpm host: its root, repository and shim directory; all deleted on drop.
pub(crate) struct RpmHost {
    dir: TempDir,
}

impl RpmHost {
    /// Builds packages, root and repository. `with_needs_restarting: false` hides dnf's
    /// needs-restarting plugin, as on a host without dnf-plugins-core.
    pub(crate) fn new(with_needs_restarting: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tendhost-rpm-")
            .tempdir()
            .expect("rpm host dir");
        let host = Self { dir };
        let built = build_all(&host.path("rpmbuild"));
        let root = host.root();
        fs::create_dir_all(root.join("etc/yum.repos.d")).expect("repos dir");
        run(Command::new("rpm").arg("--root").arg(&root).arg("--initdb"));
        run(Command::new("rpm")
            .arg("--root")
            .arg(&root)
            .args(["-i", "--nodeps"])
            .args(installed_files(&built)));
        let repo = host.path("repo");
        make_repo(&built, &repo);
        fs::write(
            root.join("etc/yum.repos.d/local.repo"),
            format!(
                "[local]\nname=local\nbaseurl=file://{}\ngpgcheck=0\nenabled=1\n",
                repo.display()
            ),
        )
        .expect("repo file");
        let restarting = root.join("etc/dnf/plugins/needs-restarting.d");
        fs::create_dir_all(&restarting).expect("needs-restarting.d");
        fs::write(restarting.join("tendhost.conf"), REBOOT_NAMES).expect("reboot names");

        let shim = host.path("shim");
        fs::create_dir_all(&shim).expect("shim dir");
        let hide = if with_needs_restarting {
            ""
        } else {
            " --disableplugin=needs-restarting"
        };
        let r = root.display();
        let dnf = format!(
            "#!/bin/sh\nexec /usr/bin/dnf --installroot={r} --releasever=1 \
             --setopt=reposdir={r}/etc/yum.repos.d --disableplugin=local{hide} \"$@\"\n"
        );
        write_script(&shim.join("dnf"), &dnf);
        // On RHEL/CentOS 8 and later `yum` is dnf under another name.
        write_script(&shim.join("yum"), &dnf);
        write_script(
            &shim.join("rpm"),
            &format!("#!/bin/sh\nexec /usr/bin/rpm --root={r} \"$@\"\n"),
        );
        host
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.path("root")
    }

    /// An executor whose `dnf` and `rpm` act on this host's root.
    pub(crate) fn executor(&self) -> LocalExecutor {
        LocalExecutor::with_wrapper(vec![
            "env".into(),
            format!(
                "PATH={}:/usr/sbin:/usr/bin:/sbin:/bin",
                self.path("shim").display()
            ),
            "sh".into(),
            "-c".into(),
        ])
    }

    /// `NAME VERSION-RELEASE` of an installed package, or empty.
    pub(crate) fn version(&self, name: &str) -> String {
        let out = Command::new("rpm")
            .arg("--root")
            .arg(self.root())
            .args(["-q", "--qf", "%{VERSION}-%{RELEASE}", name])
            .output()
            .expect("rpm -q");
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            String::new()
        }
    }
}

/// Builds every package of the set into `top` (an rpmbuild top dir); returns where the rpms are.
pub(crate) fn build_all(top: &Path) -> PathBuf {
    for p in INSTALLED.iter().chain(NEWER) {
        build(p, top);
    }
    top.join("RPMS/noarch")
}

/// The 1.0 rpms to install, in `built`.
pub(crate) fn installed_files(built: &Path) -> Vec<PathBuf> {
    INSTALLED.iter().map(|p| built.join(file(p))).collect()
}

/// A repository in `repo` with the newer rpms from `built`, indexed by createrepo-c, with the
/// `updateinfo` advisories added.
pub(crate) fn make_repo(built: &Path, repo: &Path) {
    fs::create_dir_all(repo).expect("repo dir");
    for p in NEWER {
        fs::copy(built.join(file(p)), repo.join(file(p))).expect("copying an rpm");
    }
    run(Command::new("createrepo_c").arg("-q").arg(repo));
    let updateinfo = repo.join("updateinfo.xml");
    fs::write(&updateinfo, UPDATEINFO).expect("updateinfo");
    run(Command::new("modifyrepo_c")
        .args(["--mdtype=updateinfo"])
        .arg(&updateinfo)
        .arg(repo.join("repodata")));
    fs::remove_file(&updateinfo).expect("removing the updateinfo source");
}

/// The names `needs-restarting.d` adds to dnf's reboot list on these hosts.
pub(crate) const REBOOT_NAMES: &str = "tendhost-newdep\n";

fn file(p: &Rpm) -> String {
    format!("{}-{}-1.noarch.rpm", p.name, p.version)
}

fn write_script(path: &Path, text: &str) {
    fs::write(path, text).expect("shim script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("shim mode");
}

fn build(p: &Rpm, top: &Path) {
    let specs = top.join("SPECS");
    fs::create_dir_all(&specs).expect("SPECS");
    let spec = specs.join(format!("{}-{}.spec", p.name, p.version));
    let mut text = format!(
        "Name: {}\nVersion: {}\nRelease: 1\nSummary: tendhost test package\nLicense: MIT\n\
         BuildArch: noarch\n",
        p.name, p.version
    );
    for line in p.extra {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!(
        "%description\ntest package\n%install\nmkdir -p %{{buildroot}}/usr/share/tendhost-test\n\
         echo {n}-{v} > %{{buildroot}}/usr/share/tendhost-test/{n}\n%files\n\
         /usr/share/tendhost-test/{n}\n",
        n = p.name,
        v = p.version
    ));
    fs::write(&spec, text).expect("spec");
    run(Command::new("rpmbuild")
        .arg("--quiet")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args(["--define", "_build_id_links none", "-bb"])
        .arg(&spec));
}
