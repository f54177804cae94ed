//! A local apt repository of generated `.deb` packages inside a [`DebRoot`]: version 1.0 of
//! each test package installed, newer versions served from `file:/repo` so apt sees real
//! upgrades, with no network.
//!
//! The packages:
//! - `tendhost-app` 1.0 → 1.1: a plain upgrade whose conffile `/etc/tendhost-app.conf` changes,
//!   so a locally edited copy would make dpkg prompt unless told what to do.
//! - `tendhost-kernel` 1.0 → 1.1: its postinst touches `/var/run/reboot-required` and appends
//!   its name to `reboot-required.pkgs`, as a kernel update does. It is served from a second
//!   repository, `file:/security`, whose Release file names the suite `bookworm-security`
//!   (origin `Debian-Security`), so apt reports it as a security update.
//! - `tendhost-core` 1.0 → 1.1, which depends on the NEW package `tendhost-newdep`: kept back
//!   by `apt-get upgrade`, installed by `dist-upgrade`.
//! - `tendhost-legacy` 1.0, which only works with `tendhost-core (<< 1.1)`: `dist-upgrade`
//!   removes it, so the full plan has a removal.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::debroot::{DebRoot, run};

/// One generated package.
pub(crate) struct Deb<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub depends: Option<&'a str>,
    pub postinst: Option<&'a str>,
    /// More files it ships: (path inside the root, contents).
    pub files: &'a [(&'a str, &'a str)],
}

const REBOOT_POSTINST: &str = "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  \
    touch /var/run/reboot-required\n  \
    echo tendhost-kernel >> /var/run/reboot-required.pkgs\nfi\n";

/// Installed first (version 1.0).
pub(crate) fn installed() -> Vec<Deb<'static>> {
    vec![
        deb("tendhost-app", "1.0"),
        deb("tendhost-kernel", "1.0"),
        deb("tendhost-core", "1.0"),
        Deb {
            depends: Some("tendhost-core (<< 1.1)"),
            ..deb("tendhost-legacy", "1.0")
        },
    ]
}

/// Served by the repository.
pub(crate) fn newer() -> Vec<Deb<'static>> {
    vec![
        deb("tendhost-app", "1.1"),
        Deb {
            postinst: Some(REBOOT_POSTINST),
            ..deb("tendhost-kernel", "1.1")
        },
        Deb {
            depends: Some("tendhost-newdep"),
            ..deb("tendhost-core", "1.1")
        },
        deb("tendhost-newdep", "1.0"),
    ]
}

pub(crate) fn deb(name: &'static str, version: &'static str) -> Deb<'static> {
    Deb {
        name,
        version,
        depends: None,
        postinst: None,
        files: &[],
    }
}

/// Builds `deb` with `dpkg-deb --build` into `out_dir`; returns the file name.
pub(crate) fn build(deb: &Deb<'_>, out_dir: &Path) -> String {
    let work = tempfile::tempdir().expect("deb work dir");
    let pkg = work.path().join("pkg");
    fs::create_dir_all(pkg.join("DEBIAN")).expect("DEBIAN dir");
    fs::create_dir_all(pkg.join("usr/share/tendhost-test")).expect("payload dir");
    fs::write(
        pkg.join("usr/share/tendhost-test").join(deb.name),
        format!("{} {}\n", deb.name, deb.version),
    )
    .expect("payload");
    let mut control = format!(
        "Package: {}\nVersion: {}\nArchitecture: all\nMaintainer: tendhost tests <t@example.invalid>\n\
         Priority: optional\nSection: misc\nDescription: tendhost test package\n",
        deb.name, deb.version
    );
    if deb.name == "tendhost-app" {
        fs::create_dir_all(pkg.join("etc")).expect("etc dir");
        fs::write(
            pkg.join("etc/tendhost-app.conf"),
            format!("shipped by {}\n", deb.version),
        )
        .expect("conffile");
        fs::write(pkg.join("DEBIAN/conffiles"), "/etc/tendhost-app.conf\n").expect("conffiles");
    }
    for (path, text) in deb.files {
        let file = pkg.join(path);
        fs::create_dir_all(file.parent().expect("a file in a directory")).expect("payload dir");
        fs::write(&file, text).expect("payload file");
    }
    if let Some(depends) = deb.depends {
        control.push_str(&format!("Depends: {depends}\n"));
    }
    fs::write(pkg.join("DEBIAN/control"), control).expect("control");
    if let Some(script) = deb.postinst {
        use std::os::unix::fs::PermissionsExt;
        let path = pkg.join("DEBIAN/postinst");
        fs::write(&path, script).expect("postinst");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("postinst mode");
    }
    let file = format!("{}_{}_all.deb", deb.name, deb.version);
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&pkg)
        .arg(out_dir.join(&file)));
    file
}

/// Installs the 1.0 packages into `host` and sets up `/repo` with the newer ones, listed as
/// `deb [trusted=yes] file:/repo ./`. apt's lists are NOT refreshed: tests call `refresh`.
pub(crate) fn install(host: &DebRoot) {
    install_into(host.root());
}

/// [`install`] into any Debian root directory (a test host's, or a VM image's while it is
/// built): dpkg runs inside it through `chroot`.
pub(crate) fn install_into(root: &Path) {
    install_with(root, &[], &[]);
}

/// [`install_into`], with `more_installed` installed beside the 1.0 packages and
/// `more_newer` served beside the newer ones (packages only a VM image has).
pub(crate) fn install_with(root: &Path, more_installed: &[Deb<'_>], more_newer: &[Deb<'_>]) {
    let staging = root.join("tmp/tendhost-installed");
    fs::create_dir_all(&staging).expect("staging dir");
    let files: Vec<String> = installed()
        .iter()
        .chain(more_installed)
        .map(|d| build(d, &staging))
        .collect();
    let args: Vec<String> = files
        .iter()
        .map(|f| format!("/tmp/tendhost-installed/{f}"))
        .collect();
    run(Command::new("chroot").arg(root).args([
        "sh",
        "-c",
        &format!("dpkg -i {} >/dev/null", args.join(" ")),
    ]));
    let _ = fs::remove_dir_all(&staging);

    let repo = root.join("repo");
    let security = root.join("security");
    for dir in [&repo, &security] {
        fs::create_dir_all(dir).expect("repo dir");
    }
    for d in newer().iter().chain(more_newer) {
        let target = if d.name == "tendhost-kernel" {
            &security
        } else {
            &repo
        };
        build(d, target);
    }
    for dir in [&repo, &security] {
        let packages = run(Command::new("dpkg-scanpackages")
            .args(["--multiversion", ".", "/dev/null"])
            .current_dir(dir));
        fs::write(dir.join("Packages"), packages).expect("Packages index");
    }
    write_security_release(&security);
    fs::write(
        root.join("etc/apt/sources.list"),
        "deb [trusted=yes] file:/repo ./\ndeb [trusted=yes] file:/security ./\n",
    )
    .expect("sources.list");
    // The lists predate the repository: they were fetched when 1.0 was current, long enough ago
    // that tendhost's lists policy (`[fleet] lists_max_age`) refreshes them before reading.
    run(Command::new("touch")
        .args(["-d", "2 days ago"])
        .arg(root.join("var/lib/apt/lists")));
    let _ = fs::remove_file(root.join("var/lib/apt/periodic/update-success-stamp"));
}

/// A flat-repository Release file naming the suite as Debian's security archive does.
fn write_security_release(dir: &Path) {
    let packages = fs::read(dir.join("Packages")).expect("reading Packages");
    let sum = run(Command::new("sha256sum").arg(dir.join("Packages")));
    let sum = sum
        .split_whitespace()
        .next()
        .expect("sha256sum prints a hash");
    fs::write(
        dir.join("Release"),
        format!(
            "Origin: Debian\nLabel: Debian-Security\nSuite: bookworm-security\n\
             Codename: bookworm-security\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nSHA256:\n \
             {sum} {} Packages\n",
            packages.len()
        ),
    )
    .expect("Release");
}
