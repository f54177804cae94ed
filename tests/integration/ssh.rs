//! The SSH transport against real OpenSSH servers (see `harness::sshd`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tendhost::config::KnownHostsPolicy;
use tendhost::remote::{
    Error, OutputLine, RemoteCommand, SharedExecutor, SshExecutor, Stream, executor_for,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::harness::{
    NOPASSWD_USER, PASSWD_USER, SshHost, SshdOptions, TestEnv, client_key, start_fleet,
};

fn cmd(script: &str) -> RemoteCommand {
    RemoteCommand::new(script, Duration::from_secs(30))
}

fn start() -> SshHost {
    SshHost::start(SshdOptions::default()).expect("starting sshd")
}

/// An executor for `host` as `user`, its key trusted in `env`.
fn trusted(env: &TestEnv, host: &SshHost, user: &str) -> SharedExecutor {
    env.trust(host);
    let config = env.config(&env.host_toml("h", host, user));
    executor_for(&config.hosts[0], &env.context(&config))
}

async fn run(
    exec: &SharedExecutor,
    script: &str,
) -> Result<tendhost::remote::CommandOutput, Error> {
    exec.run(&cmd(script), None, &CancellationToken::new())
        .await
}

/// A path no command has touched yet, world-writable dir so non-root users can create it.
fn marker(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.dir.path().join("markers");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    dir.join(name)
}

#[test]
fn harness_hosts_run_commands_and_stop_cleanly() {
    let mut hosts = start_fleet(2, &SshdOptions::default()).expect("starting sshd");
    assert_ne!(hosts[0].addr, hosts[1].addr);
    let out = hosts[0]
        .openssh("root", "echo hello; exit 3")
        .expect("running ssh");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    assert_eq!(out.status.code(), Some(3));
    hosts[1].stop();
    assert!(!hosts[1].is_running());
    let out = hosts[1].openssh("root", "true").expect("running ssh");
    assert_eq!(out.status.code(), Some(255), "a stopped host still answers");
    hosts[1].restart().expect("restarting");
    let out = hosts[1].openssh("root", "true").expect("running ssh");
    assert!(out.status.success(), "{}", hosts[1].log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_returns_exit_codes_signals_and_both_streams() {
    let (host, env) = (start(), TestEnv::new());
    let exec = trusted(&env, &host, "root");
    let out = run(&exec, "echo out; echo err >&2; exit 3").await.unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_str(), out.stderr.as_str()),
        (Some(3), "out\n", "err\n")
    );
    assert!(run(&exec, "true").await.unwrap().success());
    let out = run(&exec, "kill -TERM $$").await.unwrap();
    assert_eq!(
        (out.exit_code, out.signal.as_deref()),
        (None, Some("SIGTERM"))
    );
    assert_eq!(exec.describe(), format!("root@{}:22", host.addr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_is_reused_and_carries_concurrent_commands() {
    let (host, env) = (start(), TestEnv::new());
    let exec = trusted(&env, &host, "root");
    // SSH_CONNECTION names the client's source port: the same port means the same connection.
    let first = run(&exec, "echo $SSH_CONNECTION").await.unwrap().stdout;
    let second = run(&exec, "echo $SSH_CONNECTION").await.unwrap().stdout;
    assert_eq!(first, second);
    let started = Instant::now();
    let runs = (0..10).map(|_| {
        let exec = exec.clone();
        async move { run(&exec, "sleep 0.5; echo $SSH_CONNECTION").await }
    });
    for out in futures::future::join_all(runs).await {
        assert_eq!(out.unwrap().stdout, first);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "commands ran one after another"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_streams_line_by_line_in_order_as_it_arrives() {
    let (host, env) = (start(), TestEnv::new());
    let exec = trusted(&env, &host, "root");
    let (tx, mut rx) = mpsc::channel(64);
    let started = Instant::now();
    let task = tokio::spawn({
        let exec = exec.clone();
        async move {
            // printf without newline then the rest: a line split across two data packets.
            let script =
                "echo one; printf 'tw'; sleep 0.3; echo o; echo err >&2; sleep 1; printf last";
            exec.run(&cmd(script), Some(&tx), &CancellationToken::new())
                .await
        }
    });
    let first = rx.recv().await.unwrap();
    assert_eq!(
        first,
        OutputLine {
            stream: Stream::Stdout,
            line: "one".into()
        }
    );
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "first line was held back"
    );
    assert_eq!(rx.recv().await.unwrap().line, "two");
    assert_eq!(
        rx.recv().await.unwrap(),
        OutputLine {
            stream: Stream::Stderr,
            line: "err".into()
        }
    );
    let before_last = started.elapsed();
    assert!(
        before_last < Duration::from_millis(1200),
        "lines waited for the command to end"
    );
    assert_eq!(rx.recv().await.unwrap().line, "last");
    let out = task.await.unwrap().unwrap();
    assert_eq!(out.stdout, "one\ntwo\nlast");

    // Lots of output: every line, in order, nothing lost to channel windowing.
    let (tx, mut rx) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        exec.run(&cmd("seq 1 50000"), Some(&tx), &CancellationToken::new())
            .await
    });
    let mut expected = 1;
    while let Some(line) = rx.recv().await {
        assert_eq!(line.line, expected.to_string());
        expected += 1;
    }
    assert_eq!(expected, 50001);
    assert!(task.await.unwrap().unwrap().success());
}

/// OpenSSH honours the "signal" channel request only for sessions with a privilege-separated
/// child, i.e. not for root logins (sshd: "session signalling requires privilege separation").
/// So: a non-root user's command is killed; a root command is only cut off (documented in
/// `remote::ssh::exec`). Both return at once and leave the connection usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_stops_the_remote_command_and_the_connection_stays_usable() {
    let (host, env) = (start(), TestEnv::new());
    for (user, killed) in [(NOPASSWD_USER, true), ("root", false)] {
        let exec = trusted(&env, &host, user);
        let done = marker(&env, &format!("finished-{user}"));
        let mut c = cmd(&format!("sleep 2; touch {}", done.display()));
        c.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let err = exec
            .run(&c, None, &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(run(&exec, "true").await.unwrap().success());
        if killed {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            assert!(
                !done.exists(),
                "the timed-out command kept running:\n{}",
                host.log()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_the_remote_command() {
    let (host, env) = (start(), TestEnv::new());
    let exec = trusted(&env, &host, NOPASSWD_USER);
    let done = marker(&env, "finished");
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stopper.cancel();
    });
    let started = Instant::now();
    let script = format!("sleep 2; touch {}", done.display());
    let err = exec.run(&cmd(&script), None, &cancel).await.unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!done.exists(), "the cancelled command kept running");
    assert!(run(&exec, "true").await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_host_key_is_refused_under_strict_and_nothing_runs() {
    let (host, env) = (start(), TestEnv::new());
    let config = env.config(&env.host_toml("h", &host, "root"));
    let exec = executor_for(&config.hosts[0], &env.context(&config));
    let ran = marker(&env, "ran");
    let err = run(&exec, &format!("touch {}", ran.display()))
        .await
        .unwrap_err();
    match &err {
        Error::HostKeyUnknown { fingerprint, .. } => {
            assert_eq!(fingerprint, &host.host_key_fingerprint())
        }
        other => panic!("expected an unknown host key, got {other}"),
    }
    assert!(!ran.exists(), "a command ran on an unverified host");
    assert!(!env.known_hosts().exists(), "strict mode wrote known_hosts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_key_is_always_refused_with_both_fingerprints() {
    let (mut host, env) = (start(), TestEnv::new());
    env.trust(&host);
    let old = host.host_key_fingerprint();
    host.restart_with_new_host_key().unwrap();
    let new = host.host_key_fingerprint();
    assert_ne!(old, new);
    let ran = marker(&env, "ran");
    let config = env.config(&env.host_toml("h", &host, "root"));
    for policy in [KnownHostsPolicy::Strict, KnownHostsPolicy::AcceptNew] {
        let exec = executor_for(&config.hosts[0], &env.context_with(&config, policy));
        let err = run(&exec, &format!("touch {}", ran.display()))
            .await
            .unwrap_err();
        match &err {
            Error::HostKeyChanged { expected, got, .. } => {
                assert_eq!((expected, got), (&old, &new));
                let text = err.to_string();
                assert!(text.contains(&old) && text.contains(&new), "{text}");
            }
            other => panic!("expected a changed host key under {policy:?}, got {other}"),
        }
        assert!(!ran.exists(), "a command ran on a host with a changed key");
    }
    let known = fs::read_to_string(env.known_hosts()).unwrap();
    assert_eq!(
        known.lines().count(),
        1,
        "accept-new overwrote or added a key:\n{known}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_new_learns_a_first_key_into_a_private_file() {
    let (host, env) = (start(), TestEnv::new());
    let config = env.config(&env.host_toml("h", &host, "root"));
    let exec = executor_for(
        &config.hosts[0],
        &env.context_with(&config, KnownHostsPolicy::AcceptNew),
    );
    assert!(run(&exec, "true").await.unwrap().success());
    let text = fs::read_to_string(env.known_hosts()).unwrap();
    assert_eq!(text, host.known_hosts_line());
    let mode = fs::metadata(env.known_hosts())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // Learned once: a strict executor now trusts it.
    let strict = executor_for(
        &config.hosts[0],
        &env.context_with(&config, KnownHostsPolicy::Strict),
    );
    assert!(run(&strict, "true").await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_entries_and_non_22_ports_are_understood() {
    let host = SshHost::start(SshdOptions {
        port: Some(2222),
        ..SshdOptions::default()
    })
    .unwrap();
    let env = TestEnv::new();
    let hashed = host.hashed_known_hosts_line().unwrap();
    assert!(hashed.starts_with("|1|"), "{hashed}");
    env.append_known_hosts(&hashed);
    let config = env.config(&env.host_toml("h", &host, "root"));
    let exec = executor_for(&config.hosts[0], &env.context(&config));
    assert!(run(&exec, "true").await.unwrap().success());
    assert!(exec.describe().ends_with(":2222"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_known_hosts_is_trusted_read_only() {
    let (host, env) = (start(), TestEnv::new());
    let user_file = env.dir.path().join("user_known_hosts");
    fs::write(&user_file, host.known_hosts_line()).unwrap();
    let config = env.config(&env.host_toml("h", &host, "root"));
    let mut ctx = env.context(&config);
    ctx.extra_known_hosts.push(user_file.clone());
    let exec = executor_for(&config.hosts[0], &ctx);
    assert!(run(&exec, "true").await.unwrap().success());
    assert!(!env.known_hosts().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sudo_runs_privileged_commands_for_a_non_root_user() {
    let (host, env) = (start(), TestEnv::new());
    let exec = trusted(&env, &host, NOPASSWD_USER);
    let out = run(&exec, "id -un").await.unwrap();
    assert_eq!(out.stdout, format!("{NOPASSWD_USER}\n"));
    let out = exec
        .run(&cmd("id -u; echo \"$0\""), None, &CancellationToken::new())
        .await
        .unwrap();
    assert_ne!(out.stdout.lines().next(), Some("0"));
    let privileged = cmd("id -u; echo 'it''s quoted'").privileged();
    let out = exec
        .run(&privileged, None, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.stdout, "0\nits quoted\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sudo_that_wants_a_password_is_a_clear_error() {
    let (host, env) = (start(), TestEnv::new());
    let exec = trusted(&env, &host, PASSWD_USER);
    let err = exec
        .run(&cmd("id -u").privileged(), None, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SudoNeedsPassword { .. }), "{err}");
    assert!(err.to_string().contains(PASSWD_USER));
}

/// A key pair of `kind` authorised on `host`.
fn extra_key(env: &TestEnv, host: &SshHost, kind: &str, passphrase: &str) -> PathBuf {
    let path = env.dir.path().join(format!("id_{kind}"));
    crate::harness::sshd::keygen_with(&path, kind, "extra", passphrase).unwrap();
    host.authorize_key(&fs::read_to_string(path.with_extension("pub")).unwrap())
        .unwrap();
    path
}

fn config_with_key(env: &TestEnv, host: &SshHost, key: Option<&Path>) -> tendhost::config::Config {
    env.trust(host);
    let mut body = format!(
        "[[host]]\nname = \"h\"\naddr = \"{}\"\nport = {}\nuser = \"root\"\n",
        host.addr, host.port
    );
    if let Some(key) = key {
        body.push_str(&format!("ssh_key = \"{}\"\n", key.display()));
    }
    env.config(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_and_rsa_key_files_authenticate() {
    let (host, env) = (start(), TestEnv::new());
    for kind in ["ecdsa", "rsa"] {
        let key = extra_key(&env, &host, kind, "");
        let config = config_with_key(&env, &host, Some(&key));
        let exec = executor_for(&config.hosts[0], &env.context(&config));
        assert!(run(&exec, "true").await.unwrap().success(), "{kind} key");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_key_needs_the_agent_and_the_error_says_so() {
    let (host, env) = (start(), TestEnv::new());
    let key = extra_key(&env, &host, "ed25519", "correct horse");
    let config = config_with_key(&env, &host, Some(&key));
    let exec = executor_for(&config.hosts[0], &env.context(&config));
    let err = run(&exec, "true").await.unwrap_err();
    assert!(matches!(err, Error::Key { .. }), "{err}");
    assert!(err.to_string().contains("ssh-add"), "{err}");
    assert!(!err.to_string().contains("correct horse"));

    // Once the agent holds it, the same config works.
    let agent = Agent::start(&env);
    agent.add(&key, "correct horse");
    let mut ctx = env.context(&config);
    ctx.agent_socket = Some(agent.socket.clone());
    let exec = executor_for(&config.hosts[0], &ctx);
    assert!(run(&exec, "true").await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_identities_authenticate_without_a_key_file() {
    let (host, env) = (start(), TestEnv::new());
    let key = extra_key(&env, &host, "ed25519", "");
    let config = config_with_key(&env, &host, None);
    let exec = executor_for(&config.hosts[0], &env.context(&config));
    assert!(matches!(
        run(&exec, "true").await.unwrap_err(),
        Error::Auth { .. }
    ));
    let agent = Agent::start(&env);
    agent.add(&key, "");
    fs::remove_file(&key).unwrap(); // only the agent has it now
    let mut ctx = env.context(&config);
    ctx.agent_socket = Some(agent.socket.clone());
    let exec = executor_for(&config.hosts[0], &ctx);
    assert!(run(&exec, "true").await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tendhost_ssh_key_authenticates_and_is_never_shown() {
    use base64::Engine;
    let (host, env) = (start(), TestEnv::new());
    let key = extra_key(&env, &host, "ed25519", "");
    let encoded = base64::engine::general_purpose::STANDARD.encode(fs::read(&key).unwrap());
    let config = config_with_key(&env, &host, None);
    let mut ctx = env.context(&config);
    ctx.env_key = Some(tendhost::remote::Secret::new(encoded.clone()));
    assert!(
        !format!("{ctx:?}").contains(&encoded[..20]),
        "the key leaked into Debug"
    );
    let exec = executor_for(&config.hosts[0], &ctx);
    assert!(run(&exec, "true").await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_config_supplies_hostname_port_user_and_identity() {
    let host = SshHost::start(SshdOptions {
        port: Some(2200),
        ..SshdOptions::default()
    })
    .unwrap();
    let env = TestEnv::new();
    env.trust(&host);
    let ssh_config = env.dir.path().join("ssh_config");
    fs::write(
        &ssh_config,
        format!(
            "Host box-alias\n  HostName {}\n  Port {}\n  User {NOPASSWD_USER}\n  IdentityFile {}\n",
            host.addr,
            host.port,
            client_key().unwrap().display()
        ),
    )
    .unwrap();
    let config = env.config("[[host]]\nname = \"box\"\naddr = \"box-alias\"\n");
    let mut ctx = env.context(&config);
    ctx.ssh_config = Some(ssh_config);
    let exec = executor_for(&config.hosts[0], &ctx);
    let out = run(&exec, "id -un").await.unwrap();
    assert_eq!(out.stdout, format!("{NOPASSWD_USER}\n"));
    assert_eq!(
        exec.describe(),
        format!("{NOPASSWD_USER}@{}:2200", host.addr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jump_host_tunnels_the_connection() {
    // The jump host logs its direct-tcpip requests at DEBUG1: proof the tunnel was used.
    let jump = SshHost::start(SshdOptions {
        extra_config: "LogLevel DEBUG1\n".into(),
        ..SshdOptions::default()
    })
    .unwrap();
    let target = start();
    let env = TestEnv::new();
    env.trust(&jump);
    env.trust(&target);
    let mut body = env.host_toml("bastion", &jump, "root");
    body.push_str(&env.host_toml("inner", &target, "root"));
    body.push_str("proxy_jump = \"bastion\"\n");
    let config = env.config(&body);
    let inner = config.host("inner").unwrap();
    let exec = executor_for(inner, &env.context(&config));
    let out = run(&exec, "echo via; echo $SSH_CONNECTION").await.unwrap();
    assert!(out.stdout.starts_with("via\n"), "{}", out.stdout);
    let log = jump.log();
    assert!(
        log.contains(&format!("{} port 22", target.addr)) && log.contains("direct-tcpip"),
        "jump host log shows no tunnel to {}:\n{log}",
        target.addr
    );

    // The spelled-out form `user@addr:port` works too.
    let mut body = env.host_toml("inner", &target, "root");
    body.push_str(&format!("proxy_jump = \"root@{}:22\"\n", jump.addr));
    let config = env.config(&body);
    // No configured bastion: its key comes from the same known_hosts; its key is the harness one.
    let mut ctx = env.context(&config);
    ctx.default_identities.push(client_key().unwrap());
    let exec = executor_for(&config.hosts[0], &ctx);
    assert!(run(&exec, "true").await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jump_host_with_a_changed_key_is_refused() {
    let (mut jump, target, env) = (start(), start(), TestEnv::new());
    env.trust(&jump);
    env.trust(&target);
    jump.restart_with_new_host_key().unwrap();
    let mut body = env.host_toml("bastion", &jump, "root");
    body.push_str(&env.host_toml("inner", &target, "root"));
    body.push_str("proxy_jump = \"bastion\"\n");
    let config = env.config(&body);
    let exec = executor_for(config.host("inner").unwrap(), &env.context(&config));
    let err = run(&exec, "true").await.unwrap_err();
    assert!(matches!(err, Error::HostKeyChanged { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_sshd_restarts_and_gives_up_after_three_failures() {
    let (mut host, env) = (start(), TestEnv::new());
    let exec = trusted(&env, &host, "root");
    let before = run(&exec, "echo $SSH_CONNECTION").await.unwrap().stdout;
    host.restart().unwrap();
    let after = run(&exec, "echo $SSH_CONNECTION").await.unwrap().stdout;
    assert_ne!(before, after, "expected a new connection after the restart");

    host.stop();
    let started = Instant::now();
    let err = run(&exec, "true").await.unwrap_err();
    match &err {
        Error::Unreachable { attempts, .. } => assert_eq!(*attempts, 3),
        other => panic!("expected unreachable, got {other}"),
    }
    // Backoff 100 ms then 200 ms between the three attempts.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    host.restart().unwrap();
    assert!(
        run(&exec, "true").await.unwrap().success(),
        "did not recover after the host came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_cut_off_by_a_dying_connection_is_reported_not_rerun() {
    let (mut host, env) = (start(), TestEnv::new());
    let exec = trusted(&env, &host, "root");
    let counter = marker(&env, "runs");
    let script = format!("echo x >> {}; sleep 5", counter.display());
    let task = tokio::spawn({
        let exec = exec.clone();
        async move { run(&exec, &script).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    host.stop();
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Disconnected { .. }), "{err}");
    assert_eq!(
        fs::read_to_string(&counter).unwrap(),
        "x\n",
        "the command was re-run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_executor_connect_reports_latency() {
    let (host, env) = (start(), TestEnv::new());
    env.trust(&host);
    let config = env.config(&env.host_toml("h", &host, "root"));
    let exec = SshExecutor::new(&config.hosts[0], Arc::new(env.context(&config)));
    let took = exec.connect(&CancellationToken::new()).await.unwrap();
    assert!(took < Duration::from_secs(5));
}

/// A private `ssh-agent`, killed on drop.
struct Agent {
    socket: PathBuf,
    pid: i32,
}

impl Agent {
    fn start(env: &TestEnv) -> Agent {
        let socket = env.dir.path().join("agent.sock");
        let out = Command::new("ssh-agent")
            .arg("-a")
            .arg(&socket)
            .arg("-s")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let pid = text
            .split("SSH_AGENT_PID=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("ssh-agent said: {text}"));
        Agent { socket, pid }
    }

    /// `ssh-add`, answering the passphrase prompt through SSH_ASKPASS.
    fn add(&self, key: &Path, passphrase: &str) {
        let askpass = key.with_extension("askpass");
        fs::write(&askpass, format!("#!/bin/sh\necho '{passphrase}'\n")).unwrap();
        fs::set_permissions(&askpass, fs::Permissions::from_mode(0o700)).unwrap();
        let status = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .stdin(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "ssh-add failed");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn harness_authorizes_the_non_root_test_user() {
    let host = SshHost::start(SshdOptions::default()).expect("starting sshd");
    let out = host
        .openssh(NOPASSWD_USER, "id -un; sudo -n id -u")
        .expect("ssh");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{NOPASSWD_USER}\n0\n"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
