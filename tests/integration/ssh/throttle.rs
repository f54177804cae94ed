//! Connection set-up throttling (issue 11): a burst of connections to one sshd, directly or
//! through it as a jump host, stays under its `MaxStartups`. Retries are off (`max_attempts =
//! 1`), so a connection sshd dropped shows as a failed host instead of being papered over.

use super::*;

/// How long sshd takes to authorise a key: long enough that a burst of connections overlaps
/// in sshd (on loopback a handshake is otherwise over before sshd accepts the next one, and
/// the rest wait in the kernel's backlog, which `MaxStartups` does not count), as a WAN link,
/// a slow agent or a directory lookup behind `AuthorizedKeysCommand` would make it.
const AUTH_DELAY: &str = "0.3";
const HOSTS: usize = 20;

/// sshd's `MaxStartups` here (N alone means N:100:N: every connection past N unauthenticated
/// ones is refused), and tendhost's `max_handshakes_per_server`. sshd counts a connection as
/// starting until its listener has read the monitor's note that auth succeeded, a little after
/// the client saw success: besides N handshakes in flight, up to N just finished may still
/// count, so a limit must stay below half of `MaxStartups` (as the default 4 does below sshd's
/// default 10). With `MaxStartups 3` and a limit of 2 this test does fail now and then.
const MAX_STARTUPS: usize = 5;
const PER_SERVER: usize = 2;

/// An sshd refusing connections past [`MAX_STARTUPS`], logging each drop at INFO ("… past
/// MaxStartups"), and authorising the client key only after [`AUTH_DELAY`]. Its key command
/// is removed on drop.
struct StrictSshd {
    sshd: SshHost,
    script: PathBuf,
}

impl std::ops::Deref for StrictSshd {
    type Target = SshHost;
    fn deref(&self) -> &SshHost {
        &self.sshd
    }
}

impl std::ops::DerefMut for StrictSshd {
    fn deref_mut(&mut self) -> &mut SshHost {
        &mut self.sshd
    }
}

impl Drop for StrictSshd {
    fn drop(&mut self) {
        self.sshd.stop();
        let _ = fs::remove_file(&self.script);
        let _ = fs::remove_file(self.asked());
    }
}

impl StrictSshd {
    /// Touched by the key command as it starts: a login has reached authentication.
    fn asked(&self) -> PathBuf {
        self.script.with_extension("asked")
    }
}

fn strict_sshd() -> StrictSshd {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    // sshd runs an AuthorizedKeysCommand only from a path no one but root can write, all the
    // way up: not under /tmp. The harness's cache dir is one. One script per sshd: tests run
    // in parallel, and rewriting a script another sshd is running breaks it.
    let dir = Path::new("/var/cache/tendhost-test");
    fs::create_dir_all(dir).unwrap();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let script = dir.join(format!("slow-authorized-keys-{}-{n}", std::process::id()));
    let key = client_key().unwrap().with_extension("pub");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch '{}'\nsleep {AUTH_DELAY}\nexec cat '{}'\n",
            script.with_extension("asked").display(),
            key.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let sshd = SshHost::start(SshdOptions {
        extra_config: format!(
            "MaxStartups {MAX_STARTUPS}\nLogLevel INFO\nAuthorizedKeysFile none\n\
             AuthorizedKeysCommand {}\nAuthorizedKeysCommandUser root\n",
            script.display()
        ),
        ..SshdOptions::default()
    })
    .unwrap();
    StrictSshd { sshd, script }
}

/// `HOSTS` configured hosts named h0…, all `host`'s address, then `tail` (e.g. a proxy_jump
/// line) in each block; `[ssh]` carries `limits`.
fn burst_config(env: &TestEnv, host: &SshHost, limits: &str, tail: &str) -> String {
    let mut body =
        format!("[ssh]\nknown_hosts = \"strict\"\nconnect_timeout = \"10s\"\n{limits}\n");
    for i in 0..HOSTS {
        body.push_str(&env.host_toml(&format!("h{i}"), host, "root"));
        body.push_str(tail);
    }
    body
}

/// Runs `true` on every `h*` host of `body` at once; returns the errors.
async fn connect_all(env: &TestEnv, body: &str) -> Vec<String> {
    let config = env.config(body);
    let mut ctx = env.context(&config);
    ctx.max_attempts = 1;
    let ctx = Arc::new(ctx);
    let executors: Vec<SharedExecutor> = config
        .hosts
        .iter()
        .filter(|h| h.name.starts_with('h'))
        .map(|h| executor_for(h, &ctx))
        .collect();
    assert_eq!(executors.len(), HOSTS);
    let runs = executors.iter().map(|e| run(e, "true"));
    futures::future::join_all(runs)
        .await
        .into_iter()
        .filter_map(|r| match r {
            Ok(out) if out.success() => None,
            Ok(out) => Some(format!("exit {:?}", out.exit_code)),
            Err(e) => Some(tendhost::errors::chain(&e)),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_hosts_on_one_sshd_all_connect_under_its_max_startups() {
    let sshd = strict_sshd();
    let env = TestEnv::new();
    env.trust(&sshd);
    let body = burst_config(
        &env,
        &sshd,
        &format!("max_handshakes_per_server = {PER_SERVER}\n"),
        "",
    );
    let failed = connect_all(&env, &body).await;
    assert!(
        failed.is_empty() && !sshd.log().contains("past MaxStartups"),
        "{} failed: {failed:#?}\n{}",
        failed.len(),
        sshd.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_hosts_behind_one_jump_host_stay_under_its_max_startups() {
    let jump = strict_sshd();
    let target = start();
    let env = TestEnv::new();
    env.trust(&jump);
    env.trust(&target);
    let mut body = burst_config(
        &env,
        &target,
        &format!("max_handshakes_per_server = {PER_SERVER}\n"),
        "proxy_jump = \"bastion\"\n",
    );
    body.push_str(&env.host_toml("bastion", &jump, "root"));
    let failed = connect_all(&env, &body).await;
    assert!(
        failed.is_empty() && !jump.log().contains("past MaxStartups"),
        "{} failed: {failed:#?}\n{}",
        failed.len(),
        jump.log()
    );
}

/// The control: the same burst with the throttle opened wide is dropped by sshd, so the two
/// tests above prove the throttle, not a lenient sshd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_throttle_the_same_burst_trips_max_startups() {
    let sshd = strict_sshd();
    let env = TestEnv::new();
    env.trust(&sshd);
    let body = burst_config(
        &env,
        &sshd,
        "max_handshakes = 100\nmax_handshakes_per_server = 100\n",
        "",
    );
    let failed = connect_all(&env, &body).await;
    assert!(
        !failed.is_empty(),
        "sshd dropped nothing: the test proves nothing\n{}\n{}",
        sshd.log(),
        fs::read_to_string(sshd.dir.join("sshd_config")).unwrap()
    );
    assert!(sshd.log().contains("past MaxStartups"), "{}", sshd.log());
}

/// A host going down (a reboot, sshd restarting) while a login is under way is a disconnect,
/// to be retried, never "authentication failed": a reboot wait gives up on the latter (found
/// by the fleet benchmark's wave, issue 11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_during_authentication_is_a_disconnect() {
    let mut sshd = strict_sshd();
    let env = TestEnv::new();
    env.trust(&sshd);
    let config = env.config(&env.host_toml("h", &sshd, "root"));
    let mut ctx = env.context(&config);
    ctx.max_attempts = 1;
    let exec = executor_for(&config.hosts[0], &ctx);
    let login = tokio::spawn(async move { run(&exec, "true").await });
    // The key command has started: the login is in authentication for AUTH_DELAY.
    let asked = sshd.asked();
    tokio::task::spawn_blocking(move || {
        crate::harness::wait_until(
            "the login to reach authentication",
            Duration::from_secs(30),
            Duration::from_millis(5),
            || asked.exists(),
        )
    })
    .await
    .unwrap();
    sshd.stop();
    let err = login.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Unreachable { last, .. } if last.contains("closed during authentication")),
        "{err:?}"
    );
}
