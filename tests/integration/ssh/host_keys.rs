//! Host key checking: unknown and changed keys refused, accept-new, hashed and bracketed entries.

use super::*;

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

/// Issue 10, "fail closed": under `accept-new`, a known_hosts file that exists but cannot be
/// read as text used to count as "no keys known", and the first key seen was then learnt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue10_an_unreadable_known_hosts_refuses_the_connection_and_is_left_alone() {
    let (host, env) = (start(), TestEnv::new());
    let config = env.config(&env.host_toml("h", &host, "root"));
    let ran = marker(&env, "ran");
    let touch = format!("touch {}", ran.display());

    // tendhost's own file holds bytes that are not UTF-8 (a bad copy, a disk error).
    fs::create_dir_all(env.data_dir()).unwrap();
    let garbled = b"# fleet\n127.0.0.9 ssh-ed25519 \xc3\x28\xff\n".to_vec();
    fs::write(env.known_hosts(), &garbled).unwrap();
    let exec = executor_for(
        &config.hosts[0],
        &env.context_with(&config, KnownHostsPolicy::AcceptNew),
    );
    let err = run(&exec, &touch).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::KnownHostsUnreadable { .. })
            && text.contains(&format!(
                "known_hosts '{}' is not UTF-8 text (line 2)",
                env.known_hosts().display()
            )),
        "{text}"
    );
    assert_eq!(
        fs::read(env.known_hosts()).unwrap(),
        garbled,
        "the file was changed"
    );

    // A readable own file, but the user's known_hosts is a directory.
    fs::write(env.known_hosts(), "").unwrap();
    let user_file = env.dir.path().join("user_known_hosts");
    fs::create_dir(&user_file).unwrap();
    let mut ctx = env.context_with(&config, KnownHostsPolicy::AcceptNew);
    ctx.extra_known_hosts.push(user_file.clone());
    let exec = executor_for(&config.hosts[0], &ctx);
    let err = run(&exec, &touch).await.unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "known_hosts '{}' is a directory; refusing to connect",
            user_file.display()
        )),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(env.known_hosts()).unwrap(),
        "",
        "a key was learnt"
    );
    assert!(!ran.exists(), "a command ran on an unverified host");

    // Only a missing file means "no keys yet": accept-new learns the key then.
    fs::remove_dir(&user_file).unwrap();
    assert!(run(&exec, &touch).await.unwrap().success());
    assert_eq!(
        fs::read_to_string(env.known_hosts()).unwrap(),
        host.known_hosts_line()
    );
}
