//! The whole package story over tendhost's real SSH transport: a sshd test host whose sessions
//! run inside a debootstrapped Debian root (ForceCommand chroot wrapper) with the local apt
//! repository. Same assertions as `pkg_apt`, through russh instead of a local shell.

use tendhost::config::{ManagerChoice, UpgradeMode};
use tendhost::inventory::{self, InventorySource};
use tendhost::pkg::{self, ManagerKind, UpgradeOptions};
use tendhost::remote::executor_for;
use tokio_util::sync::CancellationToken;

use crate::harness::TestEnv;
use crate::harness::aptrepo;
use crate::harness::debroot::DebRoot;
use crate::harness::{line_collector, pending_rows};

#[tokio::test]
async fn apt_end_to_end_over_real_ssh() {
    let root = DebRoot::new("apt-over-ssh");
    aptrepo::install(&root);
    let sshd = root.start_sshd();
    let env = TestEnv::new();
    env.trust(&sshd);
    let config = env.config(&env.host_toml("debroot", &sshd, "root"));
    let exec = executor_for(&config.hosts[0], &env.context(&config));
    let exec = exec.as_ref();
    let cancel = CancellationToken::new();

    let inv = inventory::collect(exec, &cancel).await.unwrap();
    assert_eq!(inv.source, InventorySource::Probe);
    assert_eq!(inv.os.pretty_name, "Debian GNU/Linux 12 (bookworm)");

    let apt = pkg::detect(exec, ManagerChoice::Auto, &cancel)
        .await
        .unwrap()
        .expect("auto picks a manager");
    assert_eq!(apt.kind(), ManagerKind::Apt);
    apt.refresh(exec, &cancel).await.unwrap();
    let mut pending = apt.pending(exec, &cancel).await.unwrap();
    assert_eq!(
        pending_rows(&mut pending),
        [
            ("tendhost-app", "1.0", "1.1", false),
            ("tendhost-core", "1.0", "1.1", false),
            ("tendhost-kernel", "1.0", "1.1", true),
        ]
    );

    let full = UpgradeOptions {
        mode: UpgradeMode::Full,
        allow_removals: true,
        scope: Default::default(),
    };
    let plan = apt.plan(exec, full.clone(), &cancel).await.unwrap();
    assert_eq!(plan.removals, ["tendhost-legacy"]);
    assert_eq!(plan.installs, ["tendhost-newdep"]);

    let (tx, collector) = line_collector();
    let report = apt.upgrade(exec, full, Some(&tx), &cancel).await.unwrap();
    drop(tx);
    let lines = collector.await.unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Setting up tendhost-kernel (1.1)")),
        "{lines:#?}"
    );
    assert!(report.reboot.required);
    assert_eq!(report.reboot.packages, ["tendhost-kernel"]);
    assert_eq!(
        root.sh("dpkg-query -W -f '${Version}' tendhost-app"),
        "1.1",
        "the upgrade happened inside the root"
    );
    assert!(apt.pending(exec, &cancel).await.unwrap().is_empty());
}
