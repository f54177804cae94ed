//! `tendhost keygen`, `host add` and `host test` through the real binary.

use std::fs;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

use crate::harness::{SshHost, SshdOptions, TestEnv, assert_exit};

/// The binary, isolated from the user running the tests: XDG dirs and HOME inside `env`, no
/// agent, no TENDHOST_SSH_KEY.
pub(super) fn tendhost(env: &TestEnv) -> Command {
    let mut cmd = Command::cargo_bin("tendhost").expect("binary built");
    cmd.env("XDG_DATA_HOME", env.xdg_data_home())
        .env("XDG_STATE_HOME", env.state_dir())
        .env("XDG_CONFIG_HOME", env.dir.path().join("xdg-config"))
        .env("HOME", env.dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("TENDHOST_SSH_KEY")
        .env_remove("TENDHOST_CONFIG")
        .current_dir(env.dir.path());
    cmd
}

/// Runs the binary with `--config config` and `args`.
pub(super) fn run(env: &TestEnv, config: &Path, args: &[&str]) -> Output {
    tendhost(env)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

pub(super) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn line_for<'a>(text: &'a str, host: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{host} ")))
        .unwrap_or_else(|| panic!("no line for '{host}' in:\n{text}"))
}

#[test]
fn host_test_names_each_kind_of_failure_and_exits_1() {
    let env = TestEnv::new();
    let good = SshHost::start(SshdOptions::default()).unwrap();
    let unknown = SshHost::start(SshdOptions::default()).unwrap();
    let mut changed = SshHost::start(SshdOptions::default()).unwrap();
    let mut down = SshHost::start(SshdOptions::default()).unwrap();
    let denied = SshHost::start(SshdOptions::default()).unwrap();
    for host in [&good, &changed, &down, &denied] {
        env.trust(host);
    }
    changed.restart_with_new_host_key().unwrap();
    down.stop();
    let stranger = env.dir.path().join("stranger_key");
    crate::harness::sshd::keygen(&stranger, "not authorised").unwrap();

    let mut body = String::from("[ssh]\nknown_hosts = \"strict\"\nconnect_timeout = \"3s\"\n\n");
    for (name, host) in [
        ("good", &good),
        ("unknown", &unknown),
        ("changed", &changed),
        ("down", &down),
    ] {
        body.push_str(&env.host_toml(name, host, "root"));
    }
    body.push_str(&format!(
        "[[host]]\nname = \"denied\"\naddr = \"{}\"\nssh_key = \"{}\"\n",
        denied.addr,
        stranger.display()
    ));
    let config = env.write_config(&body);

    let out = run(&env, &config, &["host", "test"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(line_for(&text, "good").contains("reachable"), "{text}");
    assert!(line_for(&text, "good").contains(" ms"), "{text}");
    assert!(
        line_for(&text, "unknown").contains("host key unknown"),
        "{text}"
    );
    assert!(
        line_for(&text, "unknown").contains(&unknown.host_key_fingerprint()),
        "{text}"
    );
    let changed_line = line_for(&text, "changed");
    assert!(changed_line.contains("host key changed"), "{text}");
    assert!(
        changed_line.contains(&changed.host_key_fingerprint()),
        "{text}"
    );
    assert!(line_for(&text, "down").contains("unreachable"), "{text}");
    assert!(line_for(&text, "denied").contains("auth failed"), "{text}");
    assert!(text.contains("1 reachable, 4 failed"), "{text}");

    // Selecting only the good host: exit 0. JSON: one object per host.
    let out = run(&env, &config, &["host", "test", "good", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let value: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(value["result"], "reachable");
    assert_eq!(value["type"], "host_test");

    // --accept-new learns the unknown key; a later strict run trusts it; the changed one stays refused.
    let out = run(
        &env,
        &config,
        &["host", "test", "unknown", "changed", "--accept-new"],
    );
    let text = stdout(&out);
    assert!(line_for(&text, "unknown").contains("reachable"), "{text}");
    assert!(
        line_for(&text, "changed").contains("host key changed"),
        "{text}"
    );
    let out = run(&env, &config, &["host", "test", "unknown"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // An unknown selector is a usage error.
    let out = run(&env, &config, &["host", "test", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown host 'nope'"));
}

#[test]
fn host_add_appends_and_keeps_comments_and_layout() {
    let env = TestEnv::new();
    let original = "\
# my fleet, hand written
[defaults]
user = \"admin\"     # everyone logs in as admin

[ssh]
known_hosts = \"accept-new\"

[[host]]
name = \"web\"        # the web box
addr = \"10.0.0.5\"
tags = [\"prod\"]

[host.policy]
auto_reboot = false
";
    let config = env.dir.path().join("tendhost.toml");
    fs::write(&config, original).unwrap();
    let out = run(
        &env,
        &config,
        &[
            "host",
            "add",
            "ops@10.0.0.9:2222",
            "--name",
            "db",
            "--tag",
            "db",
            "--tag",
            "prod",
        ],
    );
    assert_exit(&out, 0);
    let text = fs::read_to_string(&config).unwrap();
    assert!(text.starts_with(original), "existing text changed:\n{text}");
    assert_eq!(
        &text[original.len()..],
        "\n[[host]]\nname = \"db\"\naddr = \"10.0.0.9\"\nuser = \"ops\"\nport = 2222\ntags = [\"db\", \"prod\"]\n"
    );
    let out = run(&env, &config, &["--batch", "check"]);
    assert!(stdout(&out).contains("2 hosts"), "{}", stdout(&out));

    // A duplicate name is refused and the file left alone.
    let out = run(
        &env,
        &config,
        &["host", "add", "10.0.0.10", "--name", "web"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'web' already exists"));
    assert_eq!(fs::read_to_string(&config).unwrap(), text);
}

#[test]
fn keygen_creates_a_key_that_host_test_then_uses() {
    let env = TestEnv::new();
    let out = tendhost(&env).arg("keygen").output().unwrap();
    assert_exit(&out, 0);
    let line = stdout(&out).trim().to_string();
    assert!(line.starts_with("ssh-ed25519 AAAA"), "{line}");
    assert!(!stdout(&out).contains("PRIVATE"));
    let key = env.data_dir().join("id_ed25519");
    assert!(key.exists());

    let host = SshHost::start(SshdOptions::default()).unwrap();
    host.authorize_key(&line).unwrap();
    env.trust(&host);
    let config = env.write_config(&format!(
        "[[host]]\nname = \"h\"\naddr = \"{}\"\n",
        host.addr
    ));
    let out = run(&env, &config, &["host", "test"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A second keygen keeps the key.
    let again = tendhost(&env).arg("keygen").output().unwrap();
    assert_eq!(stdout(&again).trim(), line);
}
