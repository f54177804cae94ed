//! Issue 15, the first five minutes: `tendhost init` and `host import --ssh-config |
//! --ansible-inventory` through the real binary against real sshd hosts. What is imported
//! lands in tendhost.toml beside the user's comments, is shown first with `--dry-run`, is not
//! imported twice, and ends in a `host test` that reaches the new hosts.

use std::fs;

use crate::harness::{SshHost, SshdOptions, TestEnv, client_key};
use crate::host_cmd::{run, stdout, tendhost};

const MINE: &str = "# my fleet, my comments\n[ssh]\nknown_hosts = \"strict\"\n\n";

/// stdout of an import that exited 0 having added two hosts.
fn added_two(out: &std::process::Output) -> String {
    let text = stdout(out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}{stderr}");
    assert!(text.contains("added 2 hosts"), "{text}");
    text
}

#[test]
fn an_ssh_config_is_previewed_imported_once_and_tested() {
    let env = TestEnv::new();
    let web = SshHost::start(SshdOptions::default()).unwrap();
    let db = SshHost::start(SshdOptions::default()).unwrap();
    let known = SshHost::start(SshdOptions::default()).unwrap();
    for host in [&web, &db, &known] {
        env.trust(host);
    }
    let key = client_key().unwrap();
    fs::create_dir_all(env.dir.path().join(".ssh")).unwrap();
    fs::write(
        env.dir.path().join(".ssh/config"),
        format!(
            "# the operator's own\nHost web\n  HostName {}\n  Port {}\n  User root\n\
             Host db\n  HostName {}\n  Port {}\n\
             Host old-name\n  HostName {}\n  Port {}\n\
             Host *\n  User root\n  IdentityFile {}\n",
            web.addr,
            web.port,
            db.addr,
            db.port,
            known.addr,
            known.port,
            key.display()
        ),
    )
    .unwrap();
    // `known` is configured already, under another name.
    let config = env.write_config(&format!("{MINE}{}", env.host_toml("known", &known, "root")));
    let before = fs::read_to_string(&config).unwrap();

    let out = run(
        &env,
        &config,
        &["host", "import", "--ssh-config", "--dry-run"],
    );
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("would add 2 hosts"), "{text}");
    assert!(
        text.contains(&format!("root@{}:{}", web.addr, web.port)),
        "{text}"
    );
    assert!(
        text.contains("old-name") && text.contains("already configured as 'known'"),
        "{text}"
    );
    assert_eq!(
        fs::read_to_string(&config).unwrap(),
        before,
        "a dry run wrote"
    );

    let out = run(
        &env,
        &config,
        &["host", "import", "--ssh-config", "--tag", "lab"],
    );
    let text = added_two(&out);
    for name in ["web ", "db "] {
        let line = text
            .lines()
            .find(|l| l.starts_with(name) && l.contains("reachable"))
            .unwrap_or_else(|| panic!("no reachable line for {name} in:\n{text}"));
        assert!(line.contains("reachable"), "{line}");
    }
    let after = fs::read_to_string(&config).unwrap();
    assert!(
        after.starts_with(&before),
        "the user's text changed:\n{after}"
    );
    assert!(
        after.contains(&format!(
            "name = \"db\"\naddr = \"{}\"\nuser = \"root\"\nport = {}",
            db.addr, db.port
        )),
        "{after}"
    );
    assert!(after.contains("tags = [\"lab\"]"), "{after}");
    let audit =
        fs::read_to_string(env.state_dir().join("tendhost/audit.jsonl")).unwrap_or_default();
    assert!(audit.contains("host import --ssh-config"), "{audit}");

    let out = run(&env, &config, &["host", "import", "--ssh-config"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("nothing new to add"),
        "{}",
        stdout(&out)
    );
    assert_eq!(fs::read_to_string(&config).unwrap(), after);
}

#[test]
fn an_ansible_inventory_brings_its_groups_and_variables() {
    let env = TestEnv::new();
    let a = SshHost::start(SshdOptions::default()).unwrap();
    let b = SshHost::start(SshdOptions::default()).unwrap();
    env.trust(&a);
    env.trust(&b);
    let key = client_key().unwrap();
    let inventory = env.dir.path().join("hosts.yml");
    fs::write(
        &inventory,
        format!(
            "all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: {}\n  \
             children:\n    web:\n      hosts:\n        web1:\n          ansible_host: {}\n          ansible_port: {}\n    \
             db:\n      hosts:\n        db1:\n          ansible_host: {}\n          ansible_port: {}\n    \
             prod:\n      children:\n        web:\n        db:\n",
            key.display(),
            a.addr,
            a.port,
            b.addr,
            b.port
        ),
    )
    .unwrap();
    let config = env.write_config(MINE);
    let out = run(
        &env,
        &config,
        &[
            "host",
            "import",
            "--ansible-inventory",
            inventory.to_str().unwrap(),
        ],
    );
    let text = added_two(&out);
    assert!(text.contains("2 reachable, 0 failed"), "{text}");
    let after = fs::read_to_string(&config).unwrap();
    let loaded = tendhost::config::Config::load(&config).unwrap();
    assert_eq!(loaded.groups["prod"].len(), 2, "{after}");
    assert_eq!(&*loaded.groups["web"][0], "web1");
    let web1 = loaded.host("web1").unwrap();
    assert_eq!(web1.tags, ["web"]);
    assert_eq!(web1.ssh_key.as_deref(), Some(key.as_path()));
    // `--batch check` reads what was written as any config.
    let out = run(&env, &config, &["--batch", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn init_writes_a_starter_that_runs_and_offers_the_imports() {
    let env = TestEnv::new();
    fs::create_dir_all(env.dir.path().join(".ssh")).unwrap();
    fs::write(
        env.dir.path().join(".ssh/config"),
        "Host nas\n  HostName 10.0.0.9\n",
    )
    .unwrap();
    let out = tendhost(&env).arg("init").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let written = env.dir.path().join("xdg-config/tendhost/tendhost.toml");
    let text = stdout(&out);
    assert!(
        text.contains(&format!("wrote {}", written.display())),
        "{text}"
    );
    assert!(
        text.contains("host import --ssh-config --dry-run   # 1 host in"),
        "{text}"
    );
    // Found by discovery without --config, and valid.
    let out = tendhost(&env).args(["--batch", "check"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("this-machine"), "{}", stdout(&out));
    // Never over an existing file.
    fs::write(&written, "# edited\n").unwrap();
    let out = tendhost(&env).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(fs::read_to_string(&written).unwrap(), "# edited\n");
}
