//! Scoped and security-only upgrades, and the rich dry-run plan (issue 12), with real apt on a
//! debootstrapped root and real dnf on an rpm root, through tendhost's own command lines.

use tendhost::config::UpgradeMode;
use tendhost::pkg::{Apt, ConffilePrompt, Dnf, PackageManager, UpgradeOptions, UpgradeScope};
use tokio_util::sync::CancellationToken;

use crate::harness::aptrepo;
use crate::harness::debroot::DebRoot;
use crate::harness::rpmrepo::RpmHost;

fn options(mode: UpgradeMode, allow_removals: bool, scope: UpgradeScope) -> UpgradeOptions {
    UpgradeOptions {
        mode,
        allow_removals,
        scope,
    }
}

fn only(names: &[&str]) -> UpgradeScope {
    UpgradeScope::of_packages(names, false).expect("valid names")
}

fn security_only() -> UpgradeScope {
    UpgradeScope {
        security_only: true,
        ..UpgradeScope::default()
    }
}

fn deb_version(host: &DebRoot, package: &str) -> String {
    host.sh(&format!(
        "dpkg-query -W -f '${{Version}} ${{db:Status-Abbrev}}' {package} 2>/dev/null || true"
    ))
    .trim()
    .to_string()
}

#[tokio::test]
async fn an_apt_dry_run_plan_tells_removals_kept_back_reboots_conffiles_sizes_and_space() {
    // Copied from its repositories as from a mirror, so `apt-get -d` fills the cache.
    let host = DebRoot::new("apt-rich-plan");
    aptrepo::install(&host);
    std::fs::write(
        host.path("etc/apt/sources.list"),
        "deb [trusted=yes] copy:/repo ./\ndeb [trusted=yes] copy:/security ./\n",
    )
    .unwrap();
    std::fs::write(host.path("etc/tendhost-app.conf"), "edited by the admin\n").unwrap();
    let exec = host.executor();
    let cancel = CancellationToken::new();
    let apt = Apt::new();
    apt.refresh(&exec, &cancel).await.unwrap();
    let everything = || options(UpgradeMode::Full, false, UpgradeScope::default());

    let full = apt.plan(&exec, everything(), &cancel).await.unwrap();
    let app = full.upgrades.iter().find(|p| p.name == "tendhost-app");
    assert_eq!(
        app.map(|p| (p.from.as_str(), p.to.as_str())),
        Some(("1.0", "1.1"))
    );
    assert_eq!(full.removals, ["tendhost-legacy"]);
    assert_eq!(full.installs, ["tendhost-newdep"]);
    assert_eq!(full.reboot_packages, ["tendhost-kernel"], "{full:?}");
    assert_eq!(
        full.conffiles,
        Some(vec![ConffilePrompt {
            package: "tendhost-app".into(),
            path: "/etc/tendhost-app.conf".into(),
            changed_upstream: None,
        }]),
        "edited locally; whether 1.1 changes it too is unknown until its .deb is fetched"
    );
    assert!(full.download_bytes.is_some_and(|b| b > 0), "{full:?}");
    assert!(full.install_bytes.is_some(), "{full:?}");
    let paths: Vec<&str> = full.free_space.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["/var/cache/apt/archives", "/"]);
    assert!(full.free_space.iter().all(|f| f.free_bytes > 0));

    let safe = apt
        .plan(
            &exec,
            options(UpgradeMode::Safe, false, UpgradeScope::default()),
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(safe.kept_back, ["tendhost-core"]);
    assert!(safe.held.is_empty() && safe.removals.is_empty());

    apt.download(&exec, everything(), &cancel).await.unwrap();
    let fetched = apt.plan(&exec, everything(), &cancel).await.unwrap();
    assert_eq!(
        fetched.conffiles,
        Some(vec![ConffilePrompt {
            package: "tendhost-app".into(),
            path: "/etc/tendhost-app.conf".into(),
            changed_upstream: Some(true),
        }]),
        "the cached 1.1 ships another /etc/tendhost-app.conf: dpkg would ask"
    );
    assert_eq!(fetched.download_bytes, Some(0), "everything is cached now");
    for package in ["tendhost-app", "tendhost-core", "tendhost-kernel"] {
        assert_eq!(
            deb_version(&host, package),
            "1.0 ii",
            "a plan changed {package}"
        );
    }
}

#[tokio::test]
async fn apt_upgrades_only_the_named_packages_then_only_the_security_ones() {
    let host = DebRoot::new("apt-scoped");
    aptrepo::install(&host);
    let exec = host.executor();
    let cancel = CancellationToken::new();
    let apt = Apt::new();
    apt.refresh(&exec, &cancel).await.unwrap();

    // tendhost-newdep is not installed: a scope naming it must not install it.
    let scope = only(&["tendhost-app", "tendhost-newdep"]);
    let plan = apt
        .plan(
            &exec,
            options(UpgradeMode::Full, false, scope.clone()),
            &cancel,
        )
        .await
        .unwrap();
    let names: Vec<&str> = plan.upgrades.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["tendhost-app"]);
    assert!(
        plan.installs.is_empty() && plan.removals.is_empty(),
        "{plan:?}"
    );
    let report = apt
        .upgrade(
            &exec,
            options(UpgradeMode::Full, false, scope),
            None,
            &cancel,
        )
        .await
        .unwrap();
    assert!(!report.reboot.required);
    assert_eq!(deb_version(&host, "tendhost-app"), "1.1 ii");
    for package in ["tendhost-kernel", "tendhost-core", "tendhost-legacy"] {
        assert_eq!(deb_version(&host, package), "1.0 ii", "{package} changed");
    }
    assert_eq!(
        deb_version(&host, "tendhost-newdep"),
        "",
        "installed unasked"
    );

    let report = apt
        .upgrade(
            &exec,
            options(UpgradeMode::Full, false, security_only()),
            None,
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(
        deb_version(&host, "tendhost-kernel"),
        "1.1 ii",
        "from the bookworm-security suite"
    );
    assert_eq!(deb_version(&host, "tendhost-core"), "1.0 ii");
    assert_eq!(deb_version(&host, "tendhost-legacy"), "1.0 ii");
    assert!(report.reboot.required, "tendhost-kernel asks for a reboot");

    // Nothing of the scope is pending any more: nothing runs, nothing changes.
    let report = apt
        .upgrade(
            &exec,
            options(UpgradeMode::Full, false, only(&["tendhost-app"])),
            None,
            &cancel,
        )
        .await
        .unwrap();
    assert!(report.plan.upgrades.is_empty());
}

#[tokio::test]
async fn dnf_upgrades_only_the_named_installed_packages_then_the_security_ones() {
    let host = RpmHost::new(true);
    let exec = host.executor();
    let cancel = CancellationToken::new();
    let dnf = Dnf::using_dnf();
    dnf.refresh(&exec, &cancel).await.unwrap();

    let everything = dnf
        .plan(
            &exec,
            options(UpgradeMode::Full, false, UpgradeScope::default()),
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(
        everything.reboot_packages,
        ["kernel-core"],
        "{everything:?}"
    );
    assert_eq!(everything.conffiles, Some(vec![]), "rpm never prompts");
    assert!(everything.download_bytes.is_some(), "{everything:?}");
    assert!(
        everything.free_space.iter().any(|f| f.path == "/"),
        "{everything:?}"
    );

    // tendhost-newdep is not installed: named, it is neither installed nor an error.
    let scope = only(&["tendhost-app", "tendhost-newdep"]);
    let plan = dnf
        .plan(
            &exec,
            options(UpgradeMode::Full, false, scope.clone()),
            &cancel,
        )
        .await
        .unwrap();
    let names: Vec<&str> = plan.upgrades.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["tendhost-app"]);
    dnf.upgrade(
        &exec,
        options(UpgradeMode::Full, false, scope),
        None,
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(host.version("tendhost-app"), "1.1-1");
    assert_eq!(host.version("tendhost-sec"), "1.0-1");
    assert_eq!(host.version("tendhost-core"), "1.0-1");
    assert_eq!(host.version("tendhost-newdep"), "", "installed unasked");

    let none = only(&["tendhost-newdep"]);
    let plan = dnf
        .plan(&exec, options(UpgradeMode::Full, false, none), &cancel)
        .await
        .unwrap();
    assert!(plan.upgrades.is_empty() && plan.installs.is_empty());

    let plan = dnf
        .plan(
            &exec,
            options(UpgradeMode::Full, false, security_only()),
            &cancel,
        )
        .await
        .unwrap();
    let names: Vec<&str> = plan.upgrades.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["tendhost-sec"], "the one with a security advisory");
    dnf.upgrade(
        &exec,
        options(UpgradeMode::Full, false, security_only()),
        None,
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(host.version("tendhost-sec"), "1.1-1");
    assert_eq!(host.version("tendhost-core"), "1.0-1");
    assert_eq!(host.version("kernel-core"), "6.0.0-1");
}
