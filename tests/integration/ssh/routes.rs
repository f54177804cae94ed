//! Where connections go: ~/.ssh/config and jump hosts.

use super::*;

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

    // The spelled-out form `user@addr:port` works too, logging in with inner's own key (issue
    // 10: it used to offer no key at all, the context being hermetic).
    let mut body = env.host_toml("inner", &target, "root");
    body.push_str(&format!("proxy_jump = \"root@{}:22\"\n", jump.addr));
    let config = env.config(&body);
    let exec = executor_for(&config.hosts[0], &env.context(&config));
    assert!(run(&exec, "true").await.unwrap().success());
}

/// Issue 10: a jump host given as `user@addr[:port]` (not a configured host) logs in with the
/// key of the host behind it, here `[defaults] ssh_key`; before, it offered none and failed
/// with "no key" although the same key opened the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue10_a_jump_given_by_address_logs_in_with_the_defaults_key() {
    let jump = SshHost::start(SshdOptions {
        port: Some(2201),
        extra_config: "LogLevel DEBUG1\n".into(),
        ..SshdOptions::default()
    })
    .unwrap();
    let target = start();
    let env = TestEnv::new();
    env.trust(&jump);
    env.trust(&target);
    let config = env.config(&format!(
        "[defaults]\nssh_key = \"{}\"\nuser = \"root\"\n\n\
         [[host]]\nname = \"inner\"\naddr = \"{}\"\nport = {}\nproxy_jump = \"{}:{}\"\n",
        client_key().unwrap().display(),
        target.addr,
        target.port,
        jump.addr,
        jump.port,
    ));
    assert!(
        config.hosts[0].ssh_key.is_some(),
        "the defaults' key applies"
    );
    let ctx = env.context(&config);
    assert!(ctx.default_identities.is_empty() && ctx.env_key.is_none());
    let exec = executor_for(&config.hosts[0], &ctx);
    let out = run(&exec, "echo $SSH_CONNECTION").await.unwrap();
    assert!(out.success(), "{out:?}");
    let log = jump.log();
    assert!(
        log.contains("Accepted publickey for root") && log.contains("direct-tcpip"),
        "the jump host did not carry the connection:\n{log}"
    );
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
