//! The command line surface: help, completions, man page, and clean refusals.

use assert_cmd::Command;

use crate::harness::assert_exit;

fn tendhost() -> Command {
    let mut cmd = Command::cargo_bin("tendhost").unwrap();
    cmd.env_remove("TENDHOST_CONFIG");
    cmd
}

/// A temporary dir with a `tendhost.toml` holding `body`; the dir lives as long as the guard.
fn config_in_tempdir(body: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tendhost.toml");
    std::fs::write(&config, body).unwrap();
    (dir, config)
}

#[test]
fn help_documents_the_whole_surface() {
    let out = tendhost().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--config",
        "--state-dir",
        "--read-only",
        "--batch",
        "--tag",
        "--group",
        "--exclude",
        "--batch-size",
        "--delay",
        "--max-failures",
        "--barriers",
        "--dry-run",
        "--packages",
        "--security-only",
        "--json",
        "keygen",
        "host",
        "completions",
        "man",
        "Exit codes",
    ] {
        assert!(help.contains(word), "--help lacks '{word}'");
    }
    let out = tendhost().args(["host", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("add") && help.contains("test"), "{help}");
}

#[test]
fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = tendhost().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("tendhost"));
    }
    let out = tendhost().arg("man").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH tendhost"));
}

#[test]
fn usage_errors_exit_2_without_a_panic() {
    for args in [
        vec!["--batch", "frobnicate"],
        vec!["--no-such-flag"],
        vec!["completions", "cmd.exe"],
    ] {
        let out = tendhost().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

#[test]
fn a_batch_run_logs_to_the_state_dir_and_keeps_its_files_private() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, config) =
        config_in_tempdir("[[host]]\nname = \"here\"\ntransport = \"local\"\nmanager = \"none\"\n");
    let state = dir.path().join("state");
    let out = tendhost()
        .args(["--batch", "inventory", "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let log = std::fs::read_to_string(state.join("tendhost.log")).unwrap();
    assert!(
        log.contains("idle -> querying") && log.contains("host=here"),
        "{log}"
    );
    for file in ["tendhost.log", "snapshot.json", "lock"] {
        let mode = std::fs::metadata(state.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file} is {mode:o}");
    }
    let dir_mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
}

#[test]
fn batch_and_host_test_share_one_selection_and_name_unknown_words() {
    let (dir, config) = config_in_tempdir(
        "[groups]\nweb = [\"web-1\"]\n\n\
         [[host]]\nname = \"web-1\"\ntransport = \"local\"\nmanager = \"none\"\ntags = [\"prod\"]\n\n\
         [[host]]\nname = \"db-1\"\ntransport = \"local\"\nmanager = \"none\"\ntags = [\"staging\"]\n",
    );
    let cases: [(&[&str], &str); 5] = [
        (&["db-2"], "unknown host 'db-2' (did you mean 'db-1'?)"),
        (
            &["--exclude", "wbe-1"],
            "unknown host 'wbe-1' (did you mean 'web-1'?)",
        ),
        (
            &["--group", "wbe"],
            "unknown group 'wbe' (did you mean 'web'?)",
        ),
        (
            &["--tag", "prdo"],
            "unknown tag 'prdo': no host has it (did you mean 'prod'?)",
        ),
        (
            &["--tag", "prod", "--tag", "staging"],
            "the selection matches no host",
        ),
    ];
    for command in [["--batch", "hosts"], ["host", "test"]] {
        for (selectors, message) in cases {
            let out = tendhost()
                .args(command)
                .args(selectors)
                .arg("--config")
                .arg(&config)
                .arg("--state-dir")
                .arg(dir.path().join("state"))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{command:?} {selectors:?}: {stderr}"
            );
            assert!(
                stderr.contains(&format!("tendhost: {message}")),
                "{command:?} {selectors:?}: {stderr}"
            );
        }
    }
}
