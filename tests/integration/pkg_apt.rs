//! Real apt, end to end: a debootstrapped Debian root per test with a local repository of
//! generated packages (see `harness::aptrepo`), driven through the same `Executor` path as
//! any host.

use std::time::{Duration, Instant};

use tendhost::config::{ManagerChoice, UpgradeMode};
use tendhost::pkg::Apt;
use tendhost::pkg::{self, Error, ManagerKind, PackageManager, UpgradeOptions};
use tokio_util::sync::CancellationToken;

use crate::harness::aptrepo;
use crate::harness::debroot::DebRoot;
use crate::harness::{line_collector, pending_rows};

fn options(mode: UpgradeMode, allow_removals: bool) -> UpgradeOptions {
    UpgradeOptions {
        mode,
        allow_removals,
        scope: Default::default(),
    }
}

/// A root with the 1.0 packages installed and apt's lists refreshed from the local repo.
async fn prepared(name: &str) -> DebRoot {
    let host = DebRoot::new(name);
    aptrepo::install(&host);
    Apt::new()
        .refresh(&host.executor(), &CancellationToken::new())
        .await
        .expect("apt-get update against file:/repo");
    host
}

fn version(host: &DebRoot, package: &str) -> String {
    host.sh(&format!(
        "dpkg-query -W -f '${{Version}} ${{db:Status-Abbrev}}' {package} 2>/dev/null || true"
    ))
    .trim()
    .to_string()
}

#[tokio::test]
async fn lists_pending_packages_with_versions() {
    let host = prepared("apt-list").await;
    let cancel = CancellationToken::new();
    let mut pending = Apt::new().pending(&host.executor(), &cancel).await.unwrap();
    assert_eq!(
        pending_rows(&mut pending),
        [
            ("tendhost-app", "1.0", "1.1", false),
            ("tendhost-core", "1.0", "1.1", false),
            ("tendhost-kernel", "1.0", "1.1", true),
        ],
        "only the package from the bookworm-security suite is a security update"
    );
}

#[tokio::test]
async fn detects_apt_from_the_roots_os_release() {
    let host = DebRoot::new("apt-detect");
    let manager = pkg::detect(
        &host.executor(),
        ManagerChoice::Auto,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
    .expect("auto always picks a manager or fails");
    assert_eq!(manager.kind(), ManagerKind::Apt);
}

#[tokio::test]
async fn dry_runs_show_upgrades_installs_removals_and_kept_back() {
    let host = prepared("apt-plan").await;
    let exec = host.executor();
    let cancel = CancellationToken::new();
    let apt = Apt::new();

    let full = apt
        .plan(&exec, options(UpgradeMode::Full, false), &cancel)
        .await
        .unwrap();
    let mut upgraded: Vec<&str> = full.upgrades.iter().map(|p| p.name.as_str()).collect();
    upgraded.sort();
    assert_eq!(
        upgraded,
        ["tendhost-app", "tendhost-core", "tendhost-kernel"]
    );
    assert_eq!(full.installs, ["tendhost-newdep"]);
    assert_eq!(full.removals, ["tendhost-legacy"]);
    assert!(full.held.is_empty() && full.kept_back.is_empty());
    let security: Vec<&str> = full
        .upgrades
        .iter()
        .filter(|p| p.security)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(security, ["tendhost-kernel"]);

    let safe = apt
        .plan(&exec, options(UpgradeMode::Safe, false), &cancel)
        .await
        .unwrap();
    let mut upgraded: Vec<&str> = safe.upgrades.iter().map(|p| p.name.as_str()).collect();
    upgraded.sort();
    assert_eq!(upgraded, ["tendhost-app", "tendhost-kernel"]);
    assert_eq!(
        safe.kept_back,
        ["tendhost-core"],
        "a new dependency keeps it back"
    );
    assert!(safe.held.is_empty(), "nobody holds it: apt keeps it back");
    assert!(safe.installs.is_empty() && safe.removals.is_empty());
    assert_eq!(
        version(&host, "tendhost-app"),
        "1.0 ii",
        "a dry run changes nothing"
    );

    // A package on hold is kept back even by a full upgrade.
    host.sh("apt-mark hold tendhost-app >/dev/null");
    let held = apt
        .plan(&exec, options(UpgradeMode::Full, true), &cancel)
        .await
        .unwrap();
    assert_eq!(held.held, ["tendhost-app"]);
    assert!(
        held.kept_back.is_empty(),
        "a hold is not apt's own keeping back"
    );
    assert!(!held.upgrades.iter().any(|p| p.name == "tendhost-app"));
}

#[tokio::test]
async fn refuses_an_upgrade_that_would_remove_packages() {
    let host = prepared("apt-refuse").await;
    let err = Apt::new()
        .upgrade(
            &host.executor(),
            options(UpgradeMode::Full, false),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::WouldRemove(r) if r == &["tendhost-legacy".to_string()]),
        "{err}"
    );
    assert_eq!(version(&host, "tendhost-app"), "1.0 ii");
    assert_eq!(version(&host, "tendhost-legacy"), "1.0 ii");
}

#[tokio::test]
async fn upgrades_for_real_streaming_output_and_flags_the_reboot() {
    let host = prepared("apt-upgrade").await;
    let exec = host.executor();
    let cancel = CancellationToken::new();
    let apt = Apt::new();
    assert!(!apt.reboot_status(&exec, &cancel).await.unwrap().required);
    // A locally edited conffile that the new version also changes: dpkg would ask.
    std::fs::write(host.path("etc/tendhost-app.conf"), "edited by the admin\n").unwrap();

    let (lines_tx, collector) = line_collector();
    let report = apt
        .upgrade(
            &exec,
            options(UpgradeMode::Full, true),
            Some(&lines_tx),
            &cancel,
        )
        .await
        .unwrap();
    drop(lines_tx);
    let lines = collector.await.unwrap();

    assert!(
        lines
            .iter()
            .any(|l| l.contains("Setting up tendhost-app (1.1)")),
        "streamed lines: {lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("Removing tendhost-legacy")));
    assert_eq!(version(&host, "tendhost-app"), "1.1 ii");
    assert_eq!(
        std::fs::read_to_string(host.path("etc/tendhost-app.conf")).unwrap(),
        "edited by the admin\n",
        "--force-confold keeps the local conffile"
    );
    assert_eq!(
        std::fs::read_to_string(host.path("etc/tendhost-app.conf.dpkg-dist")).unwrap(),
        "shipped by 1.1\n"
    );
    assert_eq!(version(&host, "tendhost-core"), "1.1 ii");
    assert_eq!(version(&host, "tendhost-kernel"), "1.1 ii");
    assert_eq!(version(&host, "tendhost-newdep"), "1.0 ii");
    assert_eq!(version(&host, "tendhost-legacy"), "");
    assert!(report.reboot.required);
    assert_eq!(report.reboot.packages, ["tendhost-kernel"]);
    assert_eq!(
        apt.reboot_status(&exec, &cancel).await.unwrap(),
        report.reboot
    );
    assert!(apt.pending(&exec, &cancel).await.unwrap().is_empty());
}

#[tokio::test]
async fn safe_upgrade_leaves_kept_back_packages_alone() {
    let host = prepared("apt-safe").await;
    let report = Apt::new()
        .upgrade(
            &host.executor(),
            options(UpgradeMode::Safe, false),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(report.plan.kept_back, ["tendhost-core"]);
    assert_eq!(version(&host, "tendhost-app"), "1.1 ii");
    assert_eq!(version(&host, "tendhost-core"), "1.0 ii");
    assert_eq!(version(&host, "tendhost-legacy"), "1.0 ii");
    assert_eq!(version(&host, "tendhost-newdep"), "");
}

/// Another process holding `path` with an fcntl lock, as apt and dpkg take theirs.
pub(crate) fn hold_lock(path: &std::path::Path) -> std::process::Child {
    let mut holder = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(
            "import fcntl,sys,time\nf=open(sys.argv[1],'a')\nfcntl.lockf(f,fcntl.LOCK_EX)\n\
             print('locked',flush=True)\ntime.sleep(120)",
        )
        .arg(path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 holds the lock");
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "locked");
    holder
}

#[tokio::test]
async fn a_held_dpkg_lock_fails_clearly_after_a_bounded_wait() {
    let host = prepared("apt-lock").await;
    let mut holder = hold_lock(&host.path("var/lib/dpkg/lock-frontend"));

    let started = Instant::now();
    let result = Apt::with_lock_wait(Duration::from_secs(2))
        .upgrade(
            &host.executor(),
            options(UpgradeMode::Safe, false),
            None,
            &CancellationToken::new(),
        )
        .await;
    let _ = holder.kill();
    let _ = holder.wait();
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Locked { waited: 2, .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the wait is bounded"
    );
    // apt names the holder: the python3 process holding the lock, with its pid.
    assert_eq!(
        err.to_string(),
        format!(
            "the package database is locked by python3 (pid {}) (waited 2s)",
            holder.id()
        )
    );
    assert_eq!(version(&host, "tendhost-app"), "1.0 ii");
}

#[test]
fn sshd_sessions_run_inside_the_root() {
    let host = DebRoot::new("apt-sshd");
    std::fs::write(host.path("etc/tendhost-root-marker"), "inside\n").unwrap();
    let sshd = host.start_sshd();
    let out = sshd
        .openssh(
            "root",
            "cat /etc/tendhost-root-marker; test -d /work && echo escaped",
        )
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "inside\n");
}

#[tokio::test]
async fn a_held_lists_lock_stops_a_refresh_after_a_bounded_wait() {
    let host = prepared("apt-lists-lock").await;
    let mut holder = hold_lock(&host.path("var/lib/apt/lists/lock"));
    let started = Instant::now();
    let result = Apt::with_lock_wait(Duration::from_secs(4))
        .refresh(&host.executor(), &CancellationToken::new())
        .await;
    let waited = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        matches!(result, Err(Error::Locked { waited: 4, .. })),
        "{result:?}"
    );
    assert!(
        waited >= Duration::from_secs(4),
        "it waited for the lock: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(30),
        "the wait is bounded: {waited:?}"
    );
}

/// The test repository's `.deb` files in the root's apt cache, sorted (debootstrap leaves the
/// base system's there too).
fn cached_debs(host: &DebRoot) -> Vec<String> {
    let mut debs: Vec<String> = std::fs::read_dir(host.path("var/cache/apt/archives"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("tendhost-") && name.ends_with(".deb"))
        .collect();
    debs.sort();
    debs
}

/// A root whose repositories apt copies from (`copy:`), as it downloads from a mirror: a
/// `file:` repository is used in place and leaves nothing in the cache to look at.
async fn copying(name: &str) -> DebRoot {
    let host = DebRoot::new(name);
    aptrepo::install(&host);
    std::fs::write(
        host.path("etc/apt/sources.list"),
        "deb [trusted=yes] copy:/repo ./\ndeb [trusted=yes] copy:/security ./\n",
    )
    .unwrap();
    host
}

#[tokio::test]
async fn download_fetches_what_the_upgrade_needs_and_installs_nothing() {
    let host = copying("apt-download").await;
    let apt = Apt::new();
    let cancel = CancellationToken::new();
    // No refresh first: `download` refreshes the lists itself.
    apt.download(&host.executor(), options(UpgradeMode::Full, false), &cancel)
        .await
        .expect("apt-get -d dist-upgrade");
    assert_eq!(
        cached_debs(&host),
        [
            "tendhost-app_1.1_all.deb",
            "tendhost-core_1.1_all.deb",
            "tendhost-kernel_1.1_all.deb",
            "tendhost-newdep_1.0_all.deb",
        ],
        "every package of the dist-upgrade, its new dependency included"
    );
    for package in [
        "tendhost-app",
        "tendhost-core",
        "tendhost-kernel",
        "tendhost-legacy",
    ] {
        assert_eq!(version(&host, package), "1.0 ii", "{package} changed");
    }
    assert_eq!(version(&host, "tendhost-newdep"), "");
    assert!(!host.path("var/run/reboot-required").exists());
    // The upgrade after it finds its packages there and installs them.
    apt.upgrade(
        &host.executor(),
        options(UpgradeMode::Full, true),
        None,
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(version(&host, "tendhost-app"), "1.1 ii");
}

#[tokio::test]
async fn a_safe_download_leaves_out_what_a_safe_upgrade_keeps_back() {
    let host = copying("apt-download-safe").await;
    Apt::new()
        .download(
            &host.executor(),
            options(UpgradeMode::Safe, false),
            &CancellationToken::new(),
        )
        .await
        .expect("apt-get -d upgrade");
    assert_eq!(
        cached_debs(&host),
        ["tendhost-app_1.1_all.deb", "tendhost-kernel_1.1_all.deb"]
    );
    assert_eq!(version(&host, "tendhost-core"), "1.0 ii");
}
