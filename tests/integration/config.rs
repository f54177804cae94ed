//! The config corpus: every file in `tests/configs/invalid/` must be refused with exit 2 and the
//! message its first line promises (`# expect: …`), located as `file:line:column`; every file in
//! `tests/configs/valid/` must load.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

use crate::harness::assert_exit;

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(kind);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn check(path: &Path) -> std::process::Output {
    Command::cargo_bin("tendhost")
        .unwrap()
        .args(["--batch", "check", "--config"])
        .arg(path)
        .env_remove("TENDHOST_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn every_broken_config_is_refused_with_a_located_message() {
    let files = corpus("invalid");
    assert!(files.len() >= 25, "the corpus shrank to {}", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let text = fs::read_to_string(path).unwrap();
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an '# expect: ' first line", path.display()));
        let out = check(path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let located = format!("tendhost: {}:", path.display());
        if out.status.code() != Some(2) {
            failures.push(format!(
                "{}: exit {:?}\n{stderr}",
                path.display(),
                out.status.code()
            ));
        } else if !stderr.contains(expected) || !stderr.contains(&located) {
            failures.push(format!(
                "{}: wanted '{expected}', got:\n{stderr}",
                path.display()
            ));
        } else if stderr.contains("panicked") {
            failures.push(format!("{}: panicked\n{stderr}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_valid_config_loads() {
    for path in corpus("valid") {
        let out = check(&path);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn seed_example_loads_with_daemon_warnings_and_a_summary() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/valid/seed.toml");
    let out = check(&seed);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("ok, 4 hosts, 3 groups, 7 tags"), "{stdout}");
    assert!(
        stdout.contains("admin@192.168.1.20:22"),
        "user override applied: {stdout}"
    );
    assert!(
        stderr.contains("warning") && stderr.contains("daemon.bind"),
        "{stderr}"
    );
}

#[test]
fn bundled_example_config_runs_as_is() {
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("tendhost.toml");
    let out = check(&bundled);
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("this-machine"));
}

#[test]
fn several_errors_are_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tendhost.toml");
    fs::write(
        &path,
        "[ssh]\nknown_hosts = \"yolo\"\n\n[[host]]\nname = \"a\"\naddr = \"bad host\"\n",
    )
    .unwrap();
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains(":2:15: key 'ssh.known_hosts'"), "{stderr}");
    assert!(stderr.contains(":6:8: key 'host.addr'"), "{stderr}");
}

#[test]
fn discovery_follows_flag_env_cwd_xdg() {
    let cwd = tempfile::tempdir().unwrap();
    let xdg = tempfile::tempdir().unwrap();
    let host = |name: &str| format!("[[host]]\nname = \"{name}\"\ntransport = \"local\"\n");
    fs::create_dir_all(xdg.path().join("tendhost")).unwrap();
    fs::write(xdg.path().join("tendhost/tendhost.toml"), host("from-xdg")).unwrap();
    let env_file = cwd.path().join("env.toml");
    fs::write(&env_file, host("from-env")).unwrap();

    let run = |with_env: bool| {
        let mut cmd = Command::cargo_bin("tendhost").unwrap();
        cmd.args(["--batch", "check"])
            .current_dir(cwd.path())
            .env("XDG_CONFIG_HOME", xdg.path())
            .env_remove("TENDHOST_CONFIG");
        if with_env {
            cmd.env("TENDHOST_CONFIG", &env_file);
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
    };
    assert!(run(false).contains("from-xdg"));
    fs::write(cwd.path().join("tendhost.toml"), host("from-cwd")).unwrap();
    assert!(run(false).contains("from-cwd"));
    assert!(run(true).contains("from-env"));
}

#[test]
fn missing_config_says_where_it_looked() {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("tendhost")
        .unwrap()
        .args(["--batch", "check"])
        .current_dir(cwd.path())
        .env("XDG_CONFIG_HOME", cwd.path().join("xdg"))
        .env_remove("TENDHOST_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no config found") && stderr.contains("tendhost.toml"),
        "{stderr}"
    );
}
