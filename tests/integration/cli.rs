//! The command line surface: help, completions, man page, and clean refusals.

use assert_cmd::Command;

fn tendhost() -> Command {
    let mut cmd = Command::cargo_bin("tendhost").unwrap();
    cmd.env_remove("TENDHOST_CONFIG");
    cmd
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
        "--dry-run",
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
