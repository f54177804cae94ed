//! Issue 11: a host read is one round trip, and a host whose package state did not change
//! answers "unchanged" without running the heavy part. Real sshd, real apt in a Debian root;
//! every command a host runs is counted by its sshd's ForceCommand wrapper, every `apt` call by a
//! wrapper inside the root.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tendhost::config::HostConfig;
use tendhost::remote::{SharedExecutor, executor_for};
use tendhost::survey::{ListsPolicy, Survey, SurveyRequest, survey};
use tokio_util::sync::CancellationToken;

use crate::batch::{host_line, json_lines, run_expecting};
use crate::harness::TestEnv;
use crate::harness::apthost::{AptHost, BOOT_ID, Packages};

/// An apt host whose sshd counts the commands it runs into `commands`, and whose root counts
/// every `apt` call into `/apt-calls`.
struct CountedHost {
    host: AptHost,
    commands: PathBuf,
}

impl CountedHost {
    fn start(name: &str, packages: Packages, dir: &Path) -> CountedHost {
        let commands = dir.join(format!("{name}.commands"));
        let host = AptHost::start_with(
            name,
            packages,
            Some(&format!("echo run >> {}", commands.display())),
        );
        host.root.sh(
            "mv /usr/bin/apt /usr/bin/apt.real && \
             printf '#!/bin/sh\\necho \"$*\" >> /apt-calls\\nexec /usr/bin/apt.real \"$@\"\\n' > /usr/bin/apt && \
             chmod 755 /usr/bin/apt",
        );
        CountedHost { host, commands }
    }

    fn commands(&self) -> usize {
        fs::read_to_string(&self.commands)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    fn apt_calls(&self) -> usize {
        fs::read_to_string(self.host.root.path("apt-calls"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

fn request<'a>(
    host: &'a HostConfig,
    known: Option<&'a str>,
    lists: ListsPolicy,
) -> SurveyRequest<'a> {
    SurveyRequest {
        host,
        known,
        lists,
        boot_id_path: BOOT_ID,
    }
}

async fn read(exec: &SharedExecutor, request: SurveyRequest<'_>) -> Survey {
    survey(exec.as_ref(), request, &CancellationToken::new())
        .await
        .expect("survey")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue11_one_command_reads_everything_and_an_unchanged_host_answers_unchanged() {
    let env = TestEnv::new();
    let host = CountedHost::start("survey-apt", Packages::Upgradable, env.dir.path());
    env.trust(&host.host.sshd);
    let config = env.host_config("survey-apt", &host.host.sshd, "root");
    let exec = executor_for(&config, &env.context(&env.config("")));
    let hour = ListsPolicy::MaxAge(Duration::from_secs(3600));

    // First read, lists refreshed: everything in one command.
    let Survey::Read(first) = read(&exec, request(&config, None, ListsPolicy::Refresh)).await
    else {
        panic!("a first read is a full one");
    };
    assert_eq!(host.commands(), 1, "one round trip");
    let names: Vec<&str> = first
        .packages
        .as_ref()
        .expect("apt found")
        .1
        .pending
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert!(names.contains(&"tendhost-app"), "{names:?}");
    // The security origin still flags a package (aptrepo serves tendhost-kernel from one).
    let pending = &first.packages.as_ref().unwrap().1.pending;
    let kernel = pending
        .iter()
        .find(|p| p.name == "tendhost-kernel")
        .unwrap();
    assert!(kernel.security && kernel.from == "1.0", "{kernel:?}");
    assert!(
        pending
            .iter()
            .filter(|p| p.name != "tendhost-kernel")
            .all(|p| !p.security)
    );
    assert_eq!(first.inventory.os.id, "debian");
    assert!(first.inventory.installed_packages > 50);
    assert!(first.glance.refreshed_lists);
    let refreshed = first.glance.lists_refreshed.expect("lists stamp");
    assert!((chrono::Utc::now() - refreshed).num_seconds() < 60);
    let apt_calls = host.apt_calls();
    assert!(apt_calls >= 1);

    // Nothing changed: "unchanged", and apt never ran.
    let fp = first.glance.fingerprint.clone();
    let again = read(&exec, request(&config, Some(&fp), hour)).await;
    let Survey::Unchanged(glance) = again else {
        panic!("expected unchanged, got {again:?}");
    };
    assert_eq!(glance.fingerprint, fp);
    assert_eq!(host.commands(), 2);
    assert_eq!(host.apt_calls(), apt_calls, "the heavy part did not run");

    // A package installed by someone else changes the fingerprint: a full read.
    host.host
        .root
        .sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q tendhost-app >/dev/null");
    let Survey::Read(after) = read(&exec, request(&config, Some(&fp), hour)).await else {
        panic!("a changed host is read again");
    };
    let pending = &after.packages.as_ref().unwrap().1.pending;
    assert!(
        pending.iter().all(|p| p.name != "tendhost-app"),
        "{pending:?}"
    );
    assert_ne!(after.glance.fingerprint, fp);

    // So does a reboot marker.
    host.host
        .root
        .sh("touch /var/run/reboot-required; echo tendhost-kernel > /var/run/reboot-required.pkgs");
    let Survey::Read(marked) = read(
        &exec,
        request(&config, Some(&after.glance.fingerprint), hour),
    )
    .await
    else {
        panic!("a reboot marker is a change");
    };
    let reboot = &marked.packages.as_ref().unwrap().1.reboot;
    assert!(reboot.required);
    assert_eq!(reboot.packages, ["tendhost-kernel"], "the reason is kept");

    // Lists older than the policy allows: the host says so instead of reading them.
    host.host.root.sh(
        "touch -d '3 hours ago' /var/lib/tendhost/lists-refreshed /var/lib/apt/lists; \
         rm -f /var/lib/apt/periodic/update-success-stamp",
    );
    let stale = read(
        &exec,
        request(&config, Some(&marked.glance.fingerprint), hour),
    )
    .await;
    let Survey::Stale { age } = stale else {
        panic!("expected stale, got {stale:?}");
    };
    assert!(age >= Duration::from_secs(3 * 3600 - 60), "{age:?}");
    // `Keep` reads them anyway.
    let kept = read(&exec, request(&config, None, ListsPolicy::Keep)).await;
    assert!(matches!(kept, Survey::Read(_)), "{kept:?}");
}

/// A restarted tendhost (same state dir, nothing changed) asks each host one small question:
/// one command, no apt, and the same answer as the first run.
#[test]
fn issue11_restart_inventory_costs_one_command_per_host_and_runs_no_apt() {
    let env = TestEnv::new();
    let a = CountedHost::start("restart-a", Packages::Upgradable, env.dir.path());
    let b = CountedHost::start("restart-b", Packages::NeedsReboot, env.dir.path());
    let mut toml = String::new();
    for (name, host) in [("restart-a", &a), ("restart-b", &b)] {
        env.trust(&host.host.sshd);
        toml.push_str(&env.host_toml(name, &host.host.sshd, "root"));
    }
    env.write_config(&toml);

    let first = run_expecting(&env, &["--batch", "inventory", "--json"], 0);
    let first = json_lines(&first);
    let (a_commands, b_commands) = (a.commands(), b.commands());
    let (a_apt, b_apt) = (a.apt_calls(), b.apt_calls());
    assert!(a_commands >= 1 && b_commands >= 1);

    let second = run_expecting(&env, &["--batch", "inventory", "--json"], 0);
    let second = json_lines(&second);
    assert_eq!(a.commands(), a_commands + 1, "one command for restart-a");
    assert_eq!(b.commands(), b_commands + 1, "one command for restart-b");
    assert_eq!(
        (a.apt_calls(), b.apt_calls()),
        (a_apt, b_apt),
        "apt did not run"
    );
    for host in ["restart-a", "restart-b"] {
        let (before, after) = (host_line(&first, host), host_line(&second, host));
        for key in ["pending", "packages", "reboot_required", "os"] {
            assert_eq!(before[key], after[key], "{host} {key}");
        }
    }
    assert_eq!(host_line(&second, "restart-b")["reboot_required"], true);

    // `--refresh-lists` reads afresh: apt runs again.
    run_expecting(
        &env,
        &["--batch", "inventory", "--refresh-lists", "restart-a"],
        0,
    );
    assert!(a.apt_calls() > a_apt, "a forced read runs apt");
}
