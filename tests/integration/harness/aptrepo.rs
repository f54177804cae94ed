//! A local apt repository of generated `.deb` packages inside a [`DebRoot`]: version 1.0 of
//! each test package installed, newer versions served from `file:/repo` so apt sees real
//! upgrades, with no network.
//!
//! The packages:
//! - `tendhost-app` 1.0 → 1.1: a plain upgrade.
//! - `tendhost-kernel` 1.0 → 1.1: its postinst touches `/var/run/reboot-required` and appends
//!   its name to `reboot-required.pkgs`, as a kernel update does.
//! - `tendhost-core` 1.0 → 1.1, which depends on the NEW package `tendhost-newdep`: kept back
//!   by `apt-get upgrade`, installed by `dist-upgrade`.
//! - `tendhost-legacy` 1.0, which only works with `tendhost-core (<< 1.1)`: `dist-upgrade`
//!   removes it, so the full plan has a removal.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::debroot::{DebRoot, run};

/// One generated package.
pub struct Deb<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub depends: Option<&'a str>,
    pub postinst: Option<&'a str>,
}

const REBOOT_POSTINST: &str = "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  \
    touch /var/run/reboot-required\n  \
    echo tendhost-kernel >> /var/run/reboot-required.pkgs\nfi\n";

/// Installed first (version 1.0).
pub fn installed() -> Vec<Deb<'static>> {
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
pub fn newer() -> Vec<Deb<'static>> {
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

fn deb(name: &'static str, version: &'static str) -> Deb<'static> {
    Deb {
        name,
        version,
        depends: None,
        postinst: None,
    }
}

/// Builds `deb` with `dpkg-deb --build` into `out_dir`; returns the file name.
pub fn build(deb: &Deb<'_>, out_dir: &Path) -> String {
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
pub fn install(host: &DebRoot) {
    let staging = host.path("tmp/tendhost-installed");
    fs::create_dir_all(&staging).expect("staging dir");
    let files: Vec<String> = installed().iter().map(|d| build(d, &staging)).collect();
    let args: Vec<String> = files
        .iter()
        .map(|f| format!("/tmp/tendhost-installed/{f}"))
        .collect();
    host.sh(&format!("dpkg -i {} >/dev/null", args.join(" ")));

    let repo = host.path("repo");
    fs::create_dir_all(&repo).expect("repo dir");
    for d in newer() {
        build(&d, &repo);
    }
    let packages = run(Command::new("dpkg-scanpackages")
        .args(["--multiversion", ".", "/dev/null"])
        .current_dir(&repo));
    fs::write(repo.join("Packages"), packages).expect("Packages index");
    fs::write(
        host.path("etc/apt/sources.list"),
        "deb [trusted=yes] file:/repo ./\n",
    )
    .expect("sources.list");
}
