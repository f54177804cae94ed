//! Real dnf, end to end: Debian's dnf against a local rpm repository (see
//! `harness::rpmrepo`), driven through the `Executor` with tendhost's own command lines.

use tendhost::config::UpgradeMode;
use tendhost::pkg::Dnf;
use tendhost::pkg::{Error, PackageManager, UpgradeOptions};
use tokio_util::sync::CancellationToken;

use crate::harness::{line_collector, pending_rows};

use crate::harness::rpmrepo::RpmHost;

fn options(allow_removals: bool) -> UpgradeOptions {
    UpgradeOptions {
        mode: UpgradeMode::Full,
        allow_removals,
    }
}

#[tokio::test]
async fn lists_pending_with_installed_versions_and_security() {
    let host = RpmHost::new(true);
    let exec = host.executor();
    let cancel = CancellationToken::new();
    let dnf = Dnf::using_dnf();
    dnf.refresh(&exec, &cancel).await.unwrap();
    let mut pending = dnf.pending(&exec, &cancel).await.unwrap();
    assert_eq!(
        pending_rows(&mut pending),
        [
            ("kernel-core", "6.0.0-1", "6.1.0-1", false),
            ("tendhost-app", "1.0-1", "1.1-1", false),
            ("tendhost-core", "1.0-1", "1.1-1", false),
            ("tendhost-sec", "1.0-1", "1.1-1", true),
        ]
    );
}

#[tokio::test]
async fn plans_refuses_removals_then_upgrades_for_real() {
    let host = RpmHost::new(true);
    let exec = host.executor();
    let cancel = CancellationToken::new();
    let dnf = Dnf::using_dnf();

    let plan = dnf.plan(&exec, options(false), &cancel).await.unwrap();
    assert_eq!(plan.upgrades.len(), 4);
    assert!(plan.upgrades.iter().all(|p| !p.from.is_empty()), "{plan:?}");
    assert_eq!(plan.installs, ["tendhost-newdep"]);
    assert_eq!(plan.removals, ["tendhost-legacy"]);
    assert!(!dnf.reboot_status(&exec, &cancel).await.unwrap().required);

    let err = dnf
        .upgrade(&exec, options(false), None, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WouldRemove(_)), "{err}");
    assert_eq!(host.version("tendhost-app"), "1.0-1");

    let (tx, collector) = line_collector();
    let report = dnf
        .upgrade(&exec, options(true), Some(&tx), &cancel)
        .await
        .unwrap();
    drop(tx);
    let lines = collector.await.unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Upgrading") && l.contains("tendhost-app")),
        "{lines:#?}"
    );
    assert_eq!(host.version("tendhost-app"), "1.1-1");
    assert_eq!(host.version("tendhost-newdep"), "1.0-1");
    assert_eq!(host.version("tendhost-legacy"), "");
    assert!(report.reboot.required);
    assert_eq!(report.reboot.packages, ["tendhost-newdep"]);
    assert!(dnf.pending(&exec, &cancel).await.unwrap().is_empty());
}

#[tokio::test]
async fn without_needs_restarting_compares_the_running_kernel() {
    let host = RpmHost::new(false);
    let status = Dnf::using_dnf()
        .reboot_status(&host.executor(), &CancellationToken::new())
        .await
        .unwrap();
    // The newest installed kernel-core (6.0.0-1.noarch) is not the running kernel.
    assert!(status.required);
    assert_eq!(status.packages, ["kernel-core"]);
}

/// `manager = "yum"` on a host where yum is dnf (RHEL 8+): yum's spelling of the security
/// filter (`updateinfo list security`) must work there too.
#[tokio::test]
async fn yum_spelling_works_where_yum_is_dnf() {
    let host = RpmHost::new(true);
    let exec = host.executor();
    let cancel = CancellationToken::new();
    let yum = Dnf::using_yum();
    assert_eq!(yum.kind(), tendhost::pkg::ManagerKind::Yum);
    let pending = yum.pending(&exec, &cancel).await.unwrap();
    assert_eq!(pending.len(), 4);
    let secure: Vec<&str> = pending
        .iter()
        .filter(|p| p.security)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(secure, ["tendhost-sec"]);
}
