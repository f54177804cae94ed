//! Issue 10, "secrets stay put", through the real binary: a check's command line (which may
//! hold a token) never reaches error text, `--json`, the snapshot, the audit log or the log
//! file; `TENDHOST_SSH_KEY` never reaches a command tendhost runs on a local host.

use std::fs;
use std::path::Path;

use super::batch::{host_line, json_lines, run_expecting, tendhost};
use crate::harness::{SshHost, SshdOptions, TestEnv};

const TOKEN: &str = "secret-token-123";

/// Every file under `dir`, with its text (lossy), for a search.
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            let text = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
            found.push((path.display().to_string(), text));
        }
    }
    found
}

#[test]
fn issue10_a_failing_check_is_named_by_its_stage_not_its_command_line() {
    let host = SshHost::start(SshdOptions::default()).unwrap();
    let env = TestEnv::new();
    env.trust(&host);
    env.write_config(&format!(
        "{}manager = \"none\"\n\n[host.checks]\npre = \"test {TOKEN} = x\"\n",
        env.host_toml("web", &host, "root")
    ));

    // A wave gates every host it is sent to, even one with nothing to update.
    let out = run_expecting(&env, &["--batch", "wave", "--json"], 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = json_lines(&out);
    let web = host_line(&lines, "web");
    assert_eq!(web["error"], "pre-check failed (exit 1)", "{web}");
    assert!(!stdout.contains(TOKEN), "--json shows the check: {stdout}");
    assert!(!stderr.contains(TOKEN), "stderr shows the check: {stderr}");

    // The table says the same.
    let out = run_expecting(&env, &["--batch", "wave"], 1);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("pre-check failed (exit 1)"), "{table}");
    assert!(!table.contains(TOKEN), "{table}");

    // The snapshot (last error), the audit log and the log file know the failure, not the token.
    let state = files_under(&env.state_dir());
    let snapshot = state
        .iter()
        .find(|(path, _)| path.ends_with("snapshot.json"))
        .unwrap_or_else(|| panic!("no snapshot in {state:?}"));
    assert!(
        snapshot.1.contains("pre-check failed (exit 1)"),
        "{}",
        snapshot.1
    );
    for (path, text) in &state {
        assert!(
            !text.contains(TOKEN),
            "{path} holds the check's command line:\n{text}"
        );
    }
}

#[test]
fn issue10_tendhost_ssh_key_never_reaches_a_local_command() {
    let env = TestEnv::new();
    let seen = env.dir.path().join("seen-env");
    env.write_config(&format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\nmanager = \"none\"\n\n\
         [host.policy]\nauto_reboot = false\n\n[host.checks]\npre = \"env > {}\"\n",
        seen.display()
    ));
    // Not a usable key: only a local host is involved, which never decodes it.
    let secret = "c2VjcmV0LWtleS12YWx1ZQ==";
    let out = tendhost(&env)
        .env("TENDHOST_SSH_KEY", secret)
        // A wave gates every host it is sent to, even one with nothing to update.
        .args(["--batch", "wave", "--json"])
        .output()
        .unwrap();
    crate::harness::assert_exit(&out, 0);
    let prechecked = json_lines(&out)
        .iter()
        .any(|l| l["type"] == "stage" && l["stage"] == "pre_check" && l["status"] == "done");
    assert!(prechecked, "{}", String::from_utf8_lossy(&out.stdout));
    let env_seen = fs::read_to_string(&seen).expect("the pre-check ran");
    assert!(
        env_seen.contains("XDG_STATE_HOME="),
        "the check saw no environment at all: {env_seen}"
    );
    assert!(
        !env_seen.contains("TENDHOST_SSH_KEY") && !env_seen.contains(secret),
        "the check saw the key:\n{env_seen}"
    );
}

/// `main` takes `TENDHOST_SSH_KEY` out of its environment first thing; the value it kept still
/// logs the binary in (a host with no `ssh_key`, no agent, no key file under `~/.ssh`).
#[test]
fn issue10_tendhost_ssh_key_still_logs_in_after_leaving_the_environment() {
    use base64::Engine;
    let env = TestEnv::new();
    let host = SshHost::start(SshdOptions::default()).unwrap();
    env.trust(&host);
    let key = env.dir.path().join("id_env");
    crate::harness::sshd::keygen_with(&key, "ed25519", "env", "").unwrap();
    host.authorize_key(&fs::read_to_string(key.with_extension("pub")).unwrap())
        .unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(fs::read(&key).unwrap());
    fs::remove_file(&key).unwrap(); // only the environment has it now
    env.write_config(&format!(
        "[[host]]\nname = \"h\"\naddr = \"{}\"\nport = {}\nuser = \"root\"\nmanager = \"none\"\n",
        host.addr, host.port
    ));
    let out = tendhost(&env)
        .env("TENDHOST_SSH_KEY", &encoded)
        .args(["--batch", "inventory", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines = json_lines(&out);
    assert!(host_line(&lines, "h")["os"].is_string(), "{lines:#?}");
}
