//! Logging in: key types, encrypted keys, ssh-agent, TENDHOST_SSH_KEY, sudo.

use super::*;

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
            .arg("-q")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_keys_is_an_auth_failure_not_network_trouble() {
    let host = SshHost::start(SshdOptions {
        extra_config: "MaxAuthTries 2\n".into(),
        ..SshdOptions::default()
    })
    .unwrap();
    let env = TestEnv::new();
    let config = config_with_key(&env, &host, None);
    let mut ctx = env.context(&config);
    for i in 0..3 {
        let key = env.dir.path().join(format!("stranger{i}"));
        crate::harness::sshd::keygen(&key, "not authorised").unwrap();
        ctx.default_identities.push(key);
    }
    ctx.default_identities.push(client_key().unwrap());
    let exec = executor_for(&config.hosts[0], &ctx);
    let err = run(&exec, "true").await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err}");
    assert!(err.to_string().contains("stranger0"), "{err}");
}
