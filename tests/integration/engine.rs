//! The engine against real sshd hosts: waves over six hosts (three with real apt in their own
//! Debian roots), a host killed mid-wave, a failing upgrade, halting on max failures, and reboot
//! round trips with a new boot id (and with a changed host key).

use std::sync::Arc;
use std::time::Duration;

use tendhost::config::{BatchSize, Config, FailureLimit, HostId};
use tendhost::engine::bus::{JobKind, Outcome, WaveProgress, WaveStatus};
use tendhost::engine::{
    Engine, EngineDeps, EngineHandle, Event, Job, Origin, RebootSettings, StateKind, WaveRequest,
};
use tendhost::store::Paths;
use tokio::sync::mpsc;

use crate::harness::apthost::{self, AptHost, Comeback, Packages};
use crate::harness::{SshHost, SshdOptions, TestEnv};

struct Rig {
    engine: EngineHandle,
    events: mpsc::Receiver<Event>,
    seen: Vec<Event>,
}

fn start_engine(env: &TestEnv, config: Config) -> Rig {
    start_engine_polling(env, config, Duration::from_millis(250))
}

/// [`start_engine`], polling a rebooting host every `poll_interval`.
fn start_engine_polling(env: &TestEnv, config: Config, poll_interval: Duration) -> Rig {
    let paths = Paths {
        state_dir: env.state_dir(),
        data_dir: env.data_dir(),
        config_dir: None,
    };
    let ctx = env.context(&config);
    let mut deps = EngineDeps::with_context(ctx, &paths, None);
    deps.periodic_refresh = false;
    deps.reboot = RebootSettings {
        command: apthost::REBOOT_COMMAND.to_string(),
        boot_id_path: apthost::BOOT_ID.to_string(),
        poll_interval,
    };
    let (engine, events) = Engine::start(Arc::new(config), deps);
    Rig {
        engine,
        events,
        seen: Vec::new(),
    }
}

impl Rig {
    /// Collects events until `stop` matches one (panics after `limit`).
    async fn until(&mut self, limit: Duration, mut stop: impl FnMut(&Event) -> bool) -> Event {
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                Some(event) = self.events.recv() => {
                    self.seen.push(event.clone());
                    if stop(&event) {
                        return event;
                    }
                }
                () = &mut deadline => panic!("timed out; last events: {:#?}", &self.seen[self.seen.len().saturating_sub(8)..]),
            }
        }
    }

    async fn wave_end(&mut self, limit: Duration) -> WaveProgress {
        match self
            .until(limit, |e| {
                matches!(e, Event::Wave(p) if matches!(p.status, WaveStatus::Finished | WaveStatus::Halted | WaveStatus::Aborted))
            })
            .await
        {
            Event::Wave(p) => p,
            _ => unreachable!(),
        }
    }

    /// Gives `host` a job from the console and waits for its outcome.
    async fn step(&mut self, host: &str, kind: JobKind, limit: Duration) -> Outcome {
        let (job, answer) = Job::answered(kind, Origin::Console);
        self.engine.try_send(host, job).expect("queueing a job");
        let mut answer = std::pin::pin!(answer);
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                outcome = &mut answer => {
                    self.settle().await;
                    return outcome.expect("supervisor answered");
                }
                Some(event) = self.events.recv() => self.seen.push(event),
                () = &mut deadline => panic!("step on '{host}' timed out; last events: {:#?}", &self.seen[self.seen.len().saturating_sub(8)..]),
            }
        }
    }

    /// Takes in the events still on their way through the hub (a step's answer comes directly).
    async fn settle(&mut self) {
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(300), self.events.recv()).await
        {
            self.seen.push(event);
        }
    }

    /// The last state each host moved to, and the reason (its error, why it waits, or the
    /// read that failed).
    fn last_state(&self, host: &str) -> (StateKind, Option<String>) {
        self.seen
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::StateChanged {
                    host: h, to, state, ..
                } if &**h == host => {
                    let reason = state
                        .phase
                        .reason()
                        .or_else(|| state.last_error.as_ref().map(|e| e.error.clone()));
                    Some((*to, reason.as_deref().map(str::to_string)))
                }
                _ => None,
            })
            .unwrap_or((StateKind::Idle, None))
    }

    fn wave_outcome(&self, host: &str) -> Option<Outcome> {
        self.seen.iter().rev().find_map(|e| match e {
            Event::WaveHostFinished {
                host: h, outcome, ..
            } if &**h == host => Some(outcome.clone()),
            _ => None,
        })
    }
}

fn apt_toml(env: &TestEnv, name: &str, host: &SshHost, policy: &str) -> String {
    format!(
        "{}manager = \"apt\"\n\n[host.policy]\n{policy}\n\n",
        env.host_toml(name, host, "root")
    )
}

fn plain_toml(env: &TestEnv, name: &str, host: &SshHost, pre: Option<&str>) -> String {
    let mut text = format!(
        "{}manager = \"none\"\n\n",
        env.host_toml(name, host, "root")
    );
    if let Some(pre) = pre {
        text.push_str(&format!("[host.checks]\npre = \"{pre}\"\n\n"));
    }
    text
}

fn names(list: &[&str]) -> Vec<HostId> {
    list.iter().map(|n| HostId::from(*n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wave_over_six_sshd_hosts_with_real_apt_a_killed_host_and_a_failing_upgrade() {
    let env = TestEnv::new();
    let good = AptHost::start("eng-good", Packages::Upgradable);
    let broken = AptHost::start("eng-broken", Packages::Broken);
    let mut plain: Vec<SshHost> = (0..4)
        .map(|_| SshHost::start(SshdOptions::default()).expect("starting sshd"))
        .collect();
    for host in [&good.sshd, &broken.sshd].into_iter().chain(plain.iter()) {
        env.trust(host);
    }
    let mut body = String::from("[fleet]\nreboot_timeout = \"20s\"\n\n");
    body.push_str(&apt_toml(&env, "good", &good.sshd, "auto_reboot = false"));
    body.push_str(&apt_toml(
        &env,
        "broken",
        &broken.sshd,
        "auto_reboot = false",
    ));
    body.push_str(&plain_toml(&env, "p1", &plain[0], None));
    body.push_str(&plain_toml(&env, "p2", &plain[1], None));
    body.push_str(&plain_toml(&env, "doomed", &plain[2], Some("sleep 6")));
    body.push_str(&plain_toml(&env, "p4", &plain[3], None));
    let mut rig = start_engine(&env, env.config(&body));

    let request = WaveRequest {
        hosts: names(&["good", "broken", "p1", "p2", "doomed", "p4"]),
        sizes: BatchSize::parse_list("1,5").unwrap(),
        delay: Duration::from_millis(200),
        max_failures: FailureLimit::Count(5),
        mode: tendhost::config::WaveMode::Batches,
        dry_run: false,
        allow_removals: true,
        scope: tendhost::pkg::UpgradeScope::default(),
        on_threshold: tendhost::config::OnThreshold::Abort,
        defer_overruns: true,
    };
    rig.engine.start_wave(request).expect("starting the wave");
    // Kill 'doomed' while its pre-check runs, in the second batch.
    rig.until(Duration::from_secs(240), |e| {
        matches!(e, Event::StateChanged { host, to: StateKind::Querying, .. } if &**host == "doomed")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    plain[2].stop();
    let end = rig.wave_end(Duration::from_secs(300)).await;

    assert_eq!(end.status, WaveStatus::Finished, "{end:?}");
    assert_eq!(
        (end.succeeded, end.failed, end.skipped),
        (4, 2, 0),
        "{end:?}"
    );
    // Real apt upgraded the good host; its kernel package asks for a reboot it may not do.
    assert_eq!(good.version("tendhost-app"), "1.1");
    assert_eq!(good.version("tendhost-kernel"), "1.1");
    let (state, reason) = rig.last_state("good");
    assert_eq!(state, StateKind::WaitingReboot);
    assert!(reason.unwrap().contains("auto_reboot is off"));
    assert!(rig.seen.iter().any(|e| matches!(e, Event::Output { host, line, .. } if &**host == "good" && line.contains("tendhost-app"))));
    // The broken upgrade failed with dpkg's complaint, and the host says so.
    let (state, reason) = rig.last_state("broken");
    assert_eq!(state, StateKind::Failed);
    let reason = reason.unwrap();
    assert!(reason.starts_with("upgrade:"), "{reason}");
    // The killed host failed in its pre-check, as a lost connection, not as a success; a
    // check changes nothing, so the host is back where it rested, the error kept (issue 9).
    assert!(
        matches!(rig.wave_outcome("doomed"), Some(Outcome::Failed { error }) if error.starts_with("pre-check")),
        "{:?}",
        rig.wave_outcome("doomed")
    );
    let (state, reason) = rig.last_state("doomed");
    assert_ne!(state, StateKind::Failed);
    assert!(
        reason.as_deref().unwrap_or("").starts_with("pre-check"),
        "{reason:?}"
    );
    for host in ["p1", "p2", "p4"] {
        assert_eq!(rig.wave_outcome(host), Some(Outcome::Succeeded), "{host}");
        assert_eq!(rig.last_state(host).0, StateKind::Idle, "{host}");
    }

    // A second wave, the (still dead) killed host first, no failure allowed: it halts after
    // the canary. (The broken host would now pass: dpkg left tendhost-app half-configured.)
    // Nothing latched the killed host, so there is nothing to retry.
    assert!(matches!(
        rig.step("doomed", JobKind::Retry, Duration::from_secs(10))
            .await,
        Outcome::Refused { .. }
    ));
    let request = WaveRequest {
        hosts: names(&["doomed", "p1", "p2"]),
        sizes: vec![BatchSize::Count(1)],
        delay: Duration::ZERO,
        max_failures: FailureLimit::Count(0),
        mode: tendhost::config::WaveMode::Batches,
        dry_run: false,
        allow_removals: true,
        scope: tendhost::pkg::UpgradeScope::default(),
        on_threshold: tendhost::config::OnThreshold::Abort,
        defer_overruns: true,
    };
    let before = rig.seen.len();
    rig.engine
        .start_wave(request)
        .expect("starting the second wave");
    let end = rig.wave_end(Duration::from_secs(240)).await;
    assert_eq!(end.status, WaveStatus::Halted, "{end:?}");
    assert_eq!((end.batch, end.failed, end.done), (1, 1, 1), "{end:?}");
    assert!(end.reason.unwrap().contains("max_failures"));
    let touched_after = rig.seen[before..].iter().any(
        |e| matches!(e, Event::StateChanged { host, .. } if &**host == "p1" || &**host == "p2"),
    );
    assert!(!touched_after, "a halted wave went on to the next batch");

    assert!(rig.engine.shutdown(Duration::from_secs(5)).await);
    let audit = std::fs::read_to_string(env.state_dir().join("audit.jsonl")).unwrap();
    for needle in ["\"wave_start\"", "\"wave_stop\"", "halted", "\"update\""] {
        assert!(audit.contains(needle), "audit lacks {needle}:\n{audit}");
    }
    let snapshot = tendhost::store::snapshot::load(&env.state_dir().join("snapshot.json"));
    let saved = snapshot.snapshot.expect("a snapshot was saved");
    let doomed = saved
        .hosts
        .iter()
        .find(|h| &*h.model.name == "doomed")
        .unwrap();
    let state = &doomed.model.state;
    assert_ne!(state.kind(), StateKind::Failed);
    // The second wave found it dead at its first read (reads come before the checks that
    // gate an update): kept as the last error, counted after the first wave's killed check.
    let last = state.last_error.as_ref().expect("the failed read is kept");
    assert!(last.error.starts_with("reading the host"), "{last:?}");
    assert!(last.tries >= 2, "both waves failed on the host: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_round_trip_over_sshd_needs_a_new_boot_id_and_reports_a_changed_host_key() {
    let env = TestEnv::new();
    let kernel = AptHost::start("eng-reboot", Packages::Upgradable);
    let rekeyed = AptHost::start("eng-rekey", Packages::NeedsReboot);
    env.trust(&kernel.sshd);
    env.trust(&rekeyed.sshd);
    let mut body = String::from("[fleet]\nreboot_timeout = \"30s\"\n\n");
    body.push_str(&apt_toml(
        &env,
        "kernel",
        &kernel.sshd,
        "auto_reboot = true",
    ));
    body.push_str(
        "[host.checks]
post = \"test -e /etc/tendhost-boot-id\"

",
    );
    body.push_str(&apt_toml(
        &env,
        "rekeyed",
        &rekeyed.sshd,
        "auto_reboot = true",
    ));
    let mut rig = start_engine(&env, env.config(&body));

    // The update pulls in the kernel package, which requires a reboot; policy allows it.
    let old_boot = kernel.boot_id();
    let emulator = std::thread::spawn(move || {
        apthost::emulate_reboot(
            kernel,
            Duration::from_secs(240),
            Duration::from_secs(2),
            Comeback::SameKey,
        )
    });
    let update = JobKind::Update {
        dry_run: false,
        allow_removals: true,
    };
    let outcome = rig.step("kernel", update, Duration::from_secs(300)).await;
    let (kernel, rebooted) = emulator.join().unwrap();
    assert!(rebooted, "the engine never asked for a reboot");
    assert_eq!(
        outcome,
        Outcome::Succeeded,
        "{:#?}",
        &rig.seen[rig.seen.len().saturating_sub(6)..]
    );
    assert_ne!(kernel.boot_id(), old_boot);
    let moves: Vec<StateKind> = rig
        .seen
        .iter()
        .filter_map(|e| match e {
            Event::StateChanged { host, to, .. } if &**host == "kernel" => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(
        moves[moves.len() - 5..],
        [
            StateKind::Updating,
            StateKind::WaitingReboot,
            StateKind::Rebooting,
            StateKind::Verifying,
            StateKind::Idle
        ]
    );

    // A host that needs a reboot and comes back with another host key: reported as such.
    assert_eq!(
        rig.step("rekeyed", JobKind::Refresh, Duration::from_secs(60))
            .await,
        Outcome::Succeeded
    );
    assert_eq!(rig.last_state("rekeyed").0, StateKind::WaitingReboot);
    let emulator = std::thread::spawn(move || {
        apthost::emulate_reboot(
            rekeyed,
            Duration::from_secs(60),
            Duration::from_secs(1),
            Comeback::NewHostKey,
        )
    });
    let outcome = rig
        .step("rekeyed", JobKind::Reboot, Duration::from_secs(120))
        .await;
    let (_rekeyed, rebooted) = emulator.join().unwrap();
    assert!(rebooted);
    let Outcome::Failed { error } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(error.contains("different host key"), "{error}");
    assert!(!error.contains("did not come back"), "{error}");
    assert_eq!(rig.last_state("rekeyed").0, StateKind::Failed);

    assert!(rig.engine.shutdown(Duration::from_secs(5)).await);
    let audit = std::fs::read_to_string(env.state_dir().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"action\":\"reboot\""), "{audit}");
}

/// Issue 11 ("waves never wait idle"): a rolling wave over three real apt hosts downloads each
/// host's packages ahead of its turn (into its own cache: the repositories are `copy:`, as a
/// mirror would be) and then upgrades them all, one at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_wave_over_sshd_pre_downloads_on_every_host_then_upgrades() {
    use tendhost::engine::bus::Stage;
    let env = TestEnv::new();
    let hosts: Vec<AptHost> = (0..3)
        .map(|i| AptHost::start(&format!("eng-dl-{i}"), Packages::Upgradable))
        .collect();
    let mut body = String::from("[fleet]\ndownload_concurrency = 2\n\n");
    for (i, host) in hosts.iter().enumerate() {
        env.trust(&host.sshd);
        std::fs::write(
            host.root.path("etc/apt/sources.list"),
            "deb [trusted=yes] copy:/repo ./\ndeb [trusted=yes] copy:/security ./\n",
        )
        .unwrap();
        body.push_str(&apt_toml(
            &env,
            &format!("dl-{i}"),
            &host.sshd,
            "auto_reboot = false\nallow_removals = true",
        ));
    }
    let mut rig = start_engine(&env, env.config(&body));
    let request = WaveRequest {
        hosts: names(&["dl-0", "dl-1", "dl-2"]),
        sizes: BatchSize::parse_list("1").unwrap(),
        delay: Duration::ZERO,
        max_failures: FailureLimit::Count(0),
        mode: tendhost::config::WaveMode::Rolling,
        dry_run: false,
        allow_removals: true,
        scope: tendhost::pkg::UpgradeScope::default(),
        on_threshold: tendhost::config::OnThreshold::Abort,
        defer_overruns: true,
    };
    rig.engine.start_wave(request).expect("starting the wave");
    let end = rig.wave_end(Duration::from_secs(300)).await;
    assert_eq!(
        (end.status, end.succeeded),
        (WaveStatus::Finished, 3),
        "{end:?}"
    );
    let stages = |host: &str| -> Vec<(Stage, String)> {
        rig.seen
            .iter()
            .filter_map(|e| match e {
                Event::Stage {
                    host: h,
                    stage,
                    status,
                } if &**h == host => Some((*stage, format!("{status:?}"))),
                _ => None,
            })
            .collect()
    };
    for host in ["dl-1", "dl-2"] {
        let stages = stages(host);
        let done = stages
            .iter()
            .position(|(s, st)| *s == Stage::Download && st == "Done")
            .unwrap_or_else(|| panic!("{host} did not download ahead: {stages:?}"));
        let packages = stages
            .iter()
            .position(|(s, _)| *s == Stage::Packages)
            .unwrap_or_else(|| panic!("{host} did not upgrade: {stages:?}"));
        assert!(done < packages, "{host}: {stages:?}");
    }
    for host in &hosts {
        assert_eq!(host.version("tendhost-app"), "1.1");
        let cached = std::fs::read_dir(host.root.path("var/cache/apt/archives"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .any(|name| name.starts_with("tendhost-app_1.1"));
        assert!(cached, "tendhost-app 1.1 went through the host's cache");
    }
    rig.engine.shutdown(Duration::from_secs(10)).await;
}

/// Issue 11: a rebooting host is seen back within about a second of its sshd answering, with
/// tendhost's default polling, over real sshd (whose handshakes cost real time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebooted_sshd_host_is_seen_back_about_a_second_after_sshd_answers() {
    let env = TestEnv::new();
    let host = AptHost::start("eng-back", Packages::NeedsReboot);
    env.trust(&host.sshd);
    let body = format!(
        "[fleet]\nreboot_timeout = \"60s\"\n\n{}",
        apt_toml(&env, "back", &host.sshd, "auto_reboot = true")
    );
    let poll = RebootSettings::default().poll_interval;
    let mut rig = start_engine_polling(&env, env.config(&body), poll);
    assert_eq!(
        rig.step("back", JobKind::Refresh, Duration::from_secs(60))
            .await,
        Outcome::Succeeded
    );
    assert_eq!(rig.last_state("back").0, StateKind::WaitingReboot);
    let emulator = std::thread::spawn(move || {
        let (host, rebooted) = apthost::emulate_reboot(
            host,
            Duration::from_secs(60),
            Duration::from_secs(3),
            Comeback::SameKey,
        );
        // `restart` returns once sshd accepts connections.
        (host, rebooted, std::time::Instant::now())
    });
    let (job, answer) = Job::answered(JobKind::Reboot, Origin::Console);
    rig.engine
        .try_send("back", job)
        .expect("queueing the reboot");
    rig.until(Duration::from_secs(90), |e| {
        matches!(e, Event::StateChanged { host, to: StateKind::Verifying, .. } if &**host == "back")
    })
    .await;
    let seen = std::time::Instant::now();
    let (_host, rebooted, answering) = emulator.join().unwrap();
    assert!(rebooted);
    let late = seen.saturating_duration_since(answering);
    eprintln!("seen back {late:?} after sshd answered again");
    assert!(
        late < Duration::from_millis(1500),
        "seen back {late:?} after sshd answered"
    );
    assert_eq!(answer.await.unwrap(), Outcome::Succeeded);
    rig.engine.shutdown(Duration::from_secs(10)).await;
}

/// Issue 11: a console refresh of a host that did not change is one small command over the
/// connection already open, and the host still shows what it has pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue11_a_refresh_of_an_unchanged_host_is_one_command_and_keeps_its_findings() {
    let env = TestEnv::new();
    let counter = env.dir.path().join("commands");
    let host = AptHost::start_with(
        "refresh-twice",
        Packages::Upgradable,
        Some(&format!("echo run >> {}", counter.display())),
    );
    env.trust(&host.sshd);
    let config = env.config(&apt_toml(&env, "refresh-twice", &host.sshd, ""));
    let mut rig = start_engine(&env, config);
    let commands = || {
        std::fs::read_to_string(&counter)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let limit = Duration::from_secs(120);
    assert_eq!(
        rig.step("refresh-twice", JobKind::Refresh, limit).await,
        Outcome::Succeeded
    );
    let first = commands();
    assert!(first >= 1);
    rig.seen.clear();
    assert_eq!(
        rig.step("refresh-twice", JobKind::Refresh, limit).await,
        Outcome::Succeeded
    );
    assert_eq!(commands(), first + 1, "one command for the second refresh");
    let pending = rig.seen.iter().rev().find_map(|e| match e {
        Event::PendingRefreshed { packages, .. } => Some(packages.len()),
        _ => None,
    });
    assert!(pending.is_some_and(|n| n >= 3), "{pending:?}");
    let (state, _) = rig.last_state("refresh-twice");
    assert_eq!(state, StateKind::PendingUpdates);
}
