//! The one-round-trip survey on a real dnf host (`harness::dnfhost`, a chroot with its own rpm
//! database, dnf cache and python3-dnf): pending packages with installed versions and security
//! flags, reboot and services from ONE python process, the cache-only fallback where
//! `import dnf` fails, and the fingerprint.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tendhost::config::{HostConfig, ManagerChoice};
use tendhost::pkg::ManagerKind;
use tendhost::remote::{Executor, executor_for};
use tendhost::survey::{self, Findings, ListsPolicy, PackageFindings, Survey, SurveyRequest};
use tokio_util::sync::CancellationToken;

use crate::harness::apthost::BOOT_ID;
use crate::harness::dnfhost::{DnfHost, DnfOptions};
use crate::harness::{TestEnv, pending_rows};

/// The rows every fresh host shows: rpmrepo's packages, `tendhost-sec` with its advisory.
const FRESH: [(&str, &str, &str, bool); 4] = [
    ("kernel-core", "6.0.0-1", "6.1.0-1", false),
    ("tendhost-app", "1.0-1", "1.1-1", false),
    ("tendhost-core", "1.0-1", "1.1-1", false),
    ("tendhost-sec", "1.0-1", "1.1-1", true),
];

/// A config for `host` with `manager = "dnf"` (its os-release stays Debian's).
fn config(env: &TestEnv, host: &DnfHost) -> HostConfig {
    let mut config = env.host_config("dnf1", &host.sshd, "root");
    config.manager = ManagerChoice::Dnf;
    config
}

async fn survey_with(
    exec: &dyn Executor,
    host: &HostConfig,
    known: Option<&str>,
) -> Result<Survey, survey::Error> {
    let request = SurveyRequest {
        host,
        known,
        lists: ListsPolicy::Keep,
        boot_id_path: BOOT_ID,
    };
    survey::survey(exec, request, &CancellationToken::new()).await
}

async fn read(exec: &dyn Executor, host: &HostConfig) -> Findings {
    match survey_with(exec, host, None).await.unwrap() {
        Survey::Read(findings) => *findings,
        other => panic!("expected a full read, got {other:?}"),
    }
}

fn packages(findings: &Findings) -> PackageFindings {
    let (kind, packages) = findings.packages.clone().expect("a dnf answer");
    assert_eq!(kind, ManagerKind::Dnf);
    packages
}

/// The python3 processes the counting shim saw (dnf runs on python3, so these are dnf's too).
fn python_runs(host: &DnfHost) -> Vec<String> {
    host.take_runs()
        .into_iter()
        .filter(|l| l.starts_with("python3"))
        .collect()
}

#[tokio::test]
async fn one_python_process_reads_pending_security_and_reboot() {
    let mut host = DnfHost::start_with(
        "dnf-api",
        DnfOptions {
            count_runs: true,
            ..DnfOptions::default()
        },
    );
    host.makecache();
    let env = TestEnv::new();
    let config = config(&env, &host);
    let exec = host.executor();
    host.take_runs();

    let mut found = packages(&read(&exec, &config).await);
    assert_eq!(
        python_runs(&host),
        ["python3 -"],
        "one python, no dnf command"
    );
    assert_eq!(pending_rows(&mut found.pending), FRESH);
    assert!(!found.reboot.required, "{:?}", found.reboot);
    assert_eq!(found.services, Some(Vec::new()));

    // A new kernel installed after boot asks for a reboot, naming it.
    host.sh("dnf -y -q upgrade kernel-core >/dev/null 2>&1");
    assert_eq!(host.version("kernel-core"), "6.1.0-1");
    host.take_runs();
    let mut found = packages(&read(&exec, &config).await);
    assert_eq!(python_runs(&host), ["python3 -"]);
    assert!(found.reboot.required);
    assert_eq!(found.reboot.packages, ["kernel-core"]);
    assert_eq!(pending_rows(&mut found.pending), FRESH[1..]);

    // So does a name from needs-restarting.d (tendhost-newdep, pulled in by tendhost-core).
    host.emulate_reboot();
    assert!(!packages(&read(&exec, &config).await).reboot.required);
    host.sh("dnf -y -q upgrade tendhost-core >/dev/null 2>&1");
    let found = packages(&read(&exec, &config).await);
    assert_eq!(found.reboot.packages, ["tendhost-newdep"]);
}

#[tokio::test]
async fn falls_back_to_dnf_commands_when_python_cannot_import_dnf() {
    let host = DnfHost::start_with(
        "dnf-noapi",
        DnfOptions {
            no_python_dnf: true,
            count_runs: true,
        },
    );
    host.makecache();
    let env = TestEnv::new();
    let config = config(&env, &host);
    host.take_runs();

    let mut found = packages(&read(&host.executor(), &config).await);
    let runs = python_runs(&host);
    assert_eq!(
        runs[0], "python3 -S -",
        "the API was tried first: {runs:#?}"
    );
    assert!(
        runs[1..].iter().any(|r| r.contains("check-update")),
        "then dnf's commands: {runs:#?}"
    );
    assert_eq!(pending_rows(&mut found.pending), FRESH);
    assert!(!found.reboot.required);
    assert_eq!(found.services, None, "dnf's commands name no services here");
}

#[tokio::test]
async fn a_version_lock_holds_a_package_back_on_both_paths() {
    let env = TestEnv::new();
    for options in [
        DnfOptions::default(),
        DnfOptions {
            no_python_dnf: true,
            ..DnfOptions::default()
        },
    ] {
        let host = DnfHost::start_with("dnf-lock", options);
        host.makecache();
        let config = config(&env, &host);
        let exec = host.executor();
        let known = read(&exec, &config).await.glance.fingerprint;
        host.sh("dnf -q versionlock add tendhost-app >/dev/null 2>&1");
        let Survey::Read(findings) = survey_with(&exec, &config, Some(&known)).await.unwrap()
        else {
            panic!("a new lock must change the fingerprint");
        };
        let mut found = packages(&findings);
        let rows = pending_rows(&mut found.pending);
        assert_eq!(rows, [FRESH[0], FRESH[2], FRESH[3]], "{options:?}");
    }
}

#[tokio::test]
async fn a_missing_metadata_cache_is_an_error_until_a_refresh_fetches_it() {
    let host = DnfHost::start("dnf-nocache");
    let env = TestEnv::new();
    let config = config(&env, &host);
    let exec = host.executor();
    let err = survey_with(&exec, &config, None).await.unwrap_err();
    let text = tendhost::errors::chain(&err);
    assert!(
        matches!(err, survey::Error::Packages { .. }) && text.contains("no cache for 'tendhost'"),
        "{text}"
    );

    let request = SurveyRequest {
        host: &config,
        known: None,
        lists: ListsPolicy::Refresh,
        boot_id_path: BOOT_ID,
    };
    let Survey::Read(findings) = survey::survey(&exec, request, &CancellationToken::new())
        .await
        .unwrap()
    else {
        panic!("expected a full read after the refresh");
    };
    assert!(findings.glance.refreshed_lists);
    assert_eq!(pending_rows(&mut packages(&findings).pending), FRESH);
}

#[tokio::test]
async fn over_ssh_the_fingerprint_answers_unchanged_until_an_upgrade() {
    let host = DnfHost::start("dnf-ssh");
    host.makecache();
    let env = TestEnv::new();
    env.trust(&host.sshd);
    let config = env.config(&format!(
        "{}manager = \"dnf\"\n",
        env.host_toml("dnf1", &host.sshd, "root")
    ));
    let exec = executor_for(&config.hosts[0], &env.context(&config));
    let host_config = &config.hosts[0];

    let first = read(exec.as_ref(), host_config).await;
    let mut found = packages(&first);
    assert_eq!(pending_rows(&mut found.pending), FRESH);
    let fingerprint = first.glance.fingerprint.clone();

    match survey_with(exec.as_ref(), host_config, Some(&fingerprint))
        .await
        .unwrap()
    {
        Survey::Unchanged(glance) => assert_eq!(glance.fingerprint, fingerprint),
        other => panic!("expected unchanged, got {other:?}"),
    }

    host.sh("dnf -y -q upgrade tendhost-app >/dev/null 2>&1");
    match survey_with(exec.as_ref(), host_config, Some(&fingerprint))
        .await
        .unwrap()
    {
        Survey::Read(findings) => {
            assert_ne!(findings.glance.fingerprint, fingerprint);
            let mut found = packages(&findings);
            let rows = pending_rows(&mut found.pending);
            assert!(!rows.iter().any(|r| r.0 == "tendhost-app"), "{rows:?}");
        }
        other => panic!("expected a read after the upgrade, got {other:?}"),
    }
}

#[tokio::test]
async fn names_the_service_whose_process_maps_a_replaced_file() {
    let host = DnfHost::start("dnf-services");
    host.makecache();
    let env = TestEnv::new();
    let config = config(&env, &host);
    let service = format!("tendhost-test-{}.service", std::process::id());
    let mapper = Mapper::start(&host, "/usr/share/tendhost-test/tendhost-app", &service);
    // The upgrade must fall in a later second than the process start (dnf compares seconds).
    let started = now_secs();
    crate::harness::wait_until(
        "a second to pass",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || now_secs() > started + 1,
    );
    assert_eq!(
        packages(&read(&host.executor(), &config).await).services,
        Some(Vec::new())
    );

    host.sh("dnf -y -q upgrade tendhost-app >/dev/null 2>&1");
    let found = packages(&read(&host.executor(), &config).await);
    assert_eq!(found.services, Some(vec![service]));
    drop(mapper);
}

/// A process inside the host that maps one file (as a daemon maps its libraries), in a
/// systemd-style cgroup `system.slice/UNIT`; killed and its cgroup removed on drop.
pub(crate) struct Mapper {
    child: Child,
    cgroup: PathBuf,
}

impl Mapper {
    pub(crate) fn start(host: &DnfHost, file: &str, unit: &str) -> Mapper {
        let hierarchy = [
            "/sys/fs/cgroup/systemd",
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|h| h.join("cgroup.procs").exists())
        .expect("a cgroup hierarchy to put the process in");
        let cgroup = hierarchy.join("system.slice").join(unit);
        std::fs::create_dir_all(&cgroup).expect("creating the unit's cgroup");
        let program = format!(
            "import mmap, sys, time\nf = open({file:?}, 'rb')\n\
             m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\nprint('mapped', flush=True)\n\
             time.sleep(600)\n"
        );
        let mut child = Command::new("chroot")
            .arg(host.root.root())
            .args(["python3", "-c", &program])
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the mapping process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("reading the mapper's first line");
        assert_eq!(line.trim(), "mapped");
        std::fs::write(cgroup.join("cgroup.procs"), child.id().to_string())
            .expect("moving the process into the unit's cgroup");
        Mapper { child, cgroup }
    }
}

impl Drop for Mapper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir(&self.cgroup);
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Prints the wall time of one full survey on a chroot dnf host, the python path against the
/// cache-only commands. Figures, not a timed test: `--ignored` runs it.
#[tokio::test]
#[ignore = "prints figures; run with --ignored"]
async fn figures_survey_wall_time_python_vs_cache_only() {
    let env = TestEnv::new();
    for (label, options) in [
        ("python api", DnfOptions::default()),
        (
            "cache-only commands",
            DnfOptions {
                no_python_dnf: true,
                ..DnfOptions::default()
            },
        ),
    ] {
        let host = DnfHost::start_with("dnf-figures", options);
        host.makecache();
        let config = config(&env, &host);
        let exec = host.executor();
        read(&exec, &config).await; // warm the page cache
        let mut times = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            read(&exec, &config).await;
            times.push(start.elapsed());
        }
        times.sort();
        eprintln!(
            "survey on a chroot dnf host, {label}: median {:?}, min {:?}, max {:?} (5 runs)",
            times[2], times[0], times[4]
        );
        if label == "python api" {
            let known = read(&exec, &config).await.glance.fingerprint;
            let mut times = Vec::new();
            for _ in 0..5 {
                let start = Instant::now();
                let answer = survey_with(&exec, &config, Some(&known)).await.unwrap();
                times.push(start.elapsed());
                assert!(matches!(answer, Survey::Unchanged(_)), "{answer:?}");
            }
            times.sort();
            eprintln!(
                "survey on a chroot dnf host, unchanged answer: median {:?}, min {:?}, max {:?} \
                 (5 runs)",
                times[2], times[0], times[4]
            );
        }
    }
}
