//! Connections that die: reconnects with backoff, unreachable hosts, cut-off commands.

use super::*;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out_and_the_host_becomes_unreachable() {
    // Accepts TCP connections but never speaks SSH.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let env = TestEnv::new();
    let config = env.config(&format!(
        "[[host]]\nname = \"mute\"\naddr = \"127.0.0.1\"\nport = {port}\n"
    ));
    let mut ctx = env.context(&config);
    ctx.connect_timeout = Duration::from_millis(300);
    let exec = executor_for(&config.hosts[0], &ctx);
    let started = Instant::now();
    let err = run(&exec, "true").await.unwrap_err();
    assert!(
        matches!(err, Error::Unreachable { attempts: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("no answer within"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_dead_connection_is_replaced() {
    let (host, env) = (start(), TestEnv::new());
    env.trust(&host);
    let config = env.config(&env.host_toml("h", &host, "root"));
    let mut ctx = env.context(&config);
    ctx.connect_timeout = Duration::from_millis(700);
    let exec = executor_for(&config.hosts[0], &ctx);
    let before = run(&exec, "echo $SSH_CONNECTION").await.unwrap().stdout;
    // The old connection stays open but never answers again; the listener still accepts.
    host.freeze_sessions();
    let started = Instant::now();
    let after = run(&exec, "echo $SSH_CONNECTION").await.unwrap().stdout;
    assert_ne!(before, after, "expected a new connection");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
