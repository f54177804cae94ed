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
        scope: Default::default(),
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

/// Issue 10 with real dnf: the upgrade runs as a detached job through `JobExecutor`; when the
/// follower is stopped mid-upgrade (tendhost quitting or killed), the job runs on to its end on
/// the host, and asking about it afterwards gives its real outcome.
#[tokio::test]
async fn a_dnf_upgrade_runs_as_a_detached_job_that_outlives_its_follower() {
    use std::sync::Mutex;
    use tendhost::remote::job::{self, JobExecutor, JobId, JobJournal, JobStart, JobStatus};

    #[derive(Default)]
    struct Journal {
        started: Mutex<Option<JobId>>,
        offsets: Mutex<Vec<u64>>,
    }
    #[async_trait::async_trait]
    impl JobJournal for Journal {
        async fn starting(&self, job: &JobStart) -> Result<(), String> {
            *self.started.lock().unwrap() = Some(job.id.clone());
            Ok(())
        }
        async fn progress(&self, _id: &JobId, offset: u64) {
            self.offsets.lock().unwrap().push(offset);
        }
        async fn finished(&self, _id: &JobId, _exit: Option<i32>) {}
    }

    let host = RpmHost::new(true);
    // dnf's upgrade takes a while on this host: its shim waits before the real dnf runs.
    let shim = host.path("shim/dnf");
    let text = std::fs::read_to_string(&shim).unwrap();
    std::fs::write(
        &shim,
        text.replacen(
            "exec ",
            "case \"$*\" in *'-y upgrade'*) echo waiting; sleep 4;; esac\nexec ",
            1,
        ),
    )
    .unwrap();
    let inner = host.executor();
    let jobs = tempfile::tempdir().unwrap();
    let base = jobs.path().to_str().unwrap().to_string();
    let journal = Journal::default();
    let detach = CancellationToken::new();
    let exec = JobExecutor {
        inner: &inner,
        base: &base,
        journal: &journal,
        holder: "tendhost test",
        timeout: std::time::Duration::from_secs(120),
        detach: &detach,
    };
    let cancel = CancellationToken::new();
    let dnf = Dnf::using_dnf();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let upgrade = dnf.upgrade(&exec, options(true), Some(&tx), &cancel);
    let stop_following = async {
        // Once the job has printed its first line, tendhost "goes away".
        while let Some(line) = rx.recv().await {
            if line.line.contains("waiting") {
                detach.cancel();
                break;
            }
        }
    };
    let (result, ()) = tokio::join!(upgrade, stop_following);
    let err = result.unwrap_err();
    assert!(
        tendhost::errors::chain(&err).contains("left running on the host"),
        "{err}"
    );
    let id = journal.started.lock().unwrap().clone().unwrap();
    assert!(journal.offsets.lock().unwrap().iter().any(|&o| o > 0));
    // The job goes on without its follower and ends well.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        let status = job::status(&inner, &base, &id, &cancel).await.unwrap();
        if !matches!(status, JobStatus::Running { .. }) {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the job never ended");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        matches!(status, JobStatus::Exited { code: 0, .. }),
        "{status:?}"
    );
    assert_eq!(host.version("tendhost-app"), "1.1-1");
    let tail = job::log_tail(&inner, &base, &id, &cancel).await.unwrap();
    assert!(
        tail.contains("Complete!") || tail.contains("Upgraded"),
        "{tail}"
    );
}

/// Issue 10: dnf's lock held by another process (dnf-automatic, packagekit) stops an upgrade
/// after a bounded wait, naming the holder and its pid as dnf tells them; nothing changes.
#[tokio::test]
async fn a_held_dnf_lock_fails_clearly_after_a_bounded_wait_naming_its_holder() {
    let host = RpmHost::new(true);
    // dnf's own lock protocol: a pid file naming a live process.
    let mut holder = std::process::Command::new("sleep")
        .arg("120")
        .spawn()
        .unwrap();
    let lock = host.root().join("var/lib/dnf/rpmdb_lock.pid");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, holder.id().to_string()).unwrap();
    let started = std::time::Instant::now();
    let result = Dnf::using_dnf()
        .with_lock_wait(std::time::Duration::from_secs(4))
        .upgrade(
            &host.executor(),
            options(true),
            None,
            &CancellationToken::new(),
        )
        .await;
    let _ = holder.kill();
    let _ = holder.wait();
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Locked { waited: 4, .. }), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the wait is bounded"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the package database is locked by sleep (pid {}) (waited 4s)",
            holder.id()
        )
    );
    assert_eq!(host.version("tendhost-app"), "1.0-1");
}

#[tokio::test]
async fn download_only_changes_nothing_installed() {
    let host = RpmHost::new(true);
    let exec = host.executor();
    let cancel = CancellationToken::new();
    let dnf = Dnf::using_dnf();
    let before: Vec<String> = [
        "tendhost-app",
        "tendhost-core",
        "tendhost-legacy",
        "kernel-core",
    ]
    .iter()
    .map(|p| host.version(p))
    .collect();
    dnf.download(&exec, options(false), &cancel)
        .await
        .expect("dnf upgrade --downloadonly");
    let after: Vec<String> = [
        "tendhost-app",
        "tendhost-core",
        "tendhost-legacy",
        "kernel-core",
    ]
    .iter()
    .map(|p| host.version(p))
    .collect();
    assert_eq!(after, before, "--downloadonly installed something");
    assert_eq!(host.version("tendhost-app"), "1.0-1");
    assert_eq!(host.version("tendhost-newdep"), "");
    assert_eq!(dnf.pending(&exec, &cancel).await.unwrap().len(), 4);
}
