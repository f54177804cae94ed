//! Hosts that misbehave (issue 10), through the real binary: a check printing 300 MB without a
//! newline must cost tendhost little memory, and escape sequences in os-release or in a
//! command's output must never reach the operator's terminal raw from batch mode (the console's
//! side is in `tui.rs`).

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::batch::{host_line, json_lines, run_expecting, tendhost_std};
use crate::harness::apthost::{AptHost, Packages};
use crate::harness::{SshHost, SshdOptions, TestEnv, assert_exit};

/// The os-release name of the issue: it sets the window title to "pwned" and clears the screen.
pub(crate) const HOSTILE_PRETTY_NAME: &str = "Debian\x1b]0;pwned\x07\x1b[2J 12";

/// A check (a TOML basic string) printing escape sequences on stdout and stderr, then `exit`ing
/// with `code`.
pub(crate) fn hostile_check(code: u8) -> String {
    format!(
        r#""printf 'check\\033]0;pwned\\007\\033[2J done\\n'; printf 'E: \\033[31mbad\\033[0m\\n' >&2; exit {code}""#
    )
}

/// An apt host (its own Debian root) whose `/etc/os-release` carries [`HOSTILE_PRETTY_NAME`].
pub(crate) fn hostile_host(name: &str) -> AptHost {
    let host = AptHost::start(name, Packages::NeedsReboot);
    let release = format!(
        "PRETTY_NAME=\"{HOSTILE_PRETTY_NAME}\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"
    );
    // In a Debian root /etc/os-release is a symlink into /usr/lib: replace both.
    let etc = host.root.path("etc/os-release");
    let _ = fs::remove_file(&etc);
    fs::write(&etc, &release).unwrap();
    fs::write(host.root.path("usr/lib/os-release"), &release).unwrap();
    host
}

/// Issue 10: "a check printing 300 MB with no newline costs tendhost under 100 MB RSS"
/// (measured before: 3.2 GB). The peak (VmHWM) is read while tendhost runs; it only grows, so
/// the last reading before exit is the peak of the run.
#[test]
fn issue10_a_300mb_line_costs_tendhost_under_100mb() {
    const LIMIT_KB: u64 = 100 * 1024;
    const PRINTED: u64 = 300_000_000;
    let env = TestEnv::new();
    let host = SshHost::start(SshdOptions::default()).unwrap();
    env.trust(&host);
    env.write_config(&format!(
        "{}manager = \"none\"\n\n[host.checks]\npre = \"head -c {PRINTED} /dev/zero | tr '\\\\0' a\"\n",
        env.host_toml("loud", &host, "root")
    ));
    let child = tendhost_std(&env)
        // A wave runs the pre-check of a host with nothing to upgrade (an update would refuse).
        .args(["--batch", "wave", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let run = std::thread::spawn(move || child.wait_with_output().unwrap());
    let mut peak_kb = 0;
    while !run.is_finished() {
        // A zombie's status has no VmHWM: the last live reading stands.
        if let Some(kb) = fs::read_to_string(&status)
            .ok()
            .as_deref()
            .and_then(vm_hwm_kb)
        {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run.join().unwrap();
    assert_exit(&out, 0);
    assert!(peak_kb > 0, "VmHWM was never read");
    assert!(
        peak_kb < LIMIT_KB,
        "peak RSS {peak_kb} kB with a {PRINTED}-byte line (limit {LIMIT_KB} kB)"
    );
    // The line went through, cut: its first 8 KiB and a marker naming what was left out.
    let cut = PRINTED - tendhost::remote::MAX_LINE as u64;
    let lines = json_lines(&out);
    let shown = lines
        .iter()
        .filter(|l| l["type"] == "output" && l["host"] == "loud")
        .filter_map(|l| l["line"].as_str())
        .find(|l| l.starts_with("aaaa"))
        .unwrap_or_else(|| panic!("no output line from the check in {} lines", lines.len()));
    assert_eq!(
        shown.len(),
        tendhost::remote::MAX_LINE + format!("… [{cut} bytes cut]").len()
    );
    assert!(
        shown.ends_with(&format!("… [{cut} bytes cut]")),
        "{}",
        &shown[8000..]
    );
}

fn vm_hwm_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// No ESC, BEL, C1 CSI or other control byte besides the line break: nothing that can drive a
/// terminal.
#[track_caller]
fn assert_inert(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c.is_control() && c != '\n')
        .collect();
    assert!(bad.is_empty(), "{what} carries {bad:?}:\n{text}");
}

/// Issue 10: `PRETTY_NAME="Debian\e]0;pwned\a\e[2J 12"` reached the terminal from
/// `--batch inventory`. Human output escapes what a host sent; JSON keeps it, escaped by serde.
#[test]
fn issue10_escape_sequences_from_a_host_never_reach_batch_output_raw() {
    let env = TestEnv::new();
    let host = hostile_host("hostile-batch");
    env.trust(&host.sshd);
    env.write_config(&format!(
        "{}manager = \"none\"\n\n[host.policy]\nauto_reboot = false\n\n[host.checks]\npre = {}\n",
        env.host_toml("evil", &host.sshd, "root"),
        hostile_check(1)
    ));

    let out = run_expecting(&env, &["--batch", "inventory"], 0);
    assert_inert("inventory's table", &out.stdout);
    assert_inert("inventory's progress", &out.stderr);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("Debian\\u{1b}]0;pwned\\u{7}"),
        "the name is shown escaped, as what it is:\n{table}"
    );

    let out = run_expecting(&env, &["--batch", "inventory", "--json"], 0);
    assert_inert("inventory's JSON", &out.stdout);
    let lines = json_lines(&out);
    assert_eq!(
        host_line(&lines, "evil")["os"],
        Value::from(HOSTILE_PRETTY_NAME),
        "JSON carries the host's words unchanged"
    );

    // A failing check's output and error text, in the progress lines and the table (a wave
    // runs the pre-check of a host with nothing to upgrade; it halts on the failure).
    let out = run_expecting(&env, &["--batch", "wave"], 1);
    assert_inert("update's table", &out.stdout);
    assert_inert("update's progress", &out.stderr);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pre-check failed"), "{stderr}");
    assert!(stderr.contains("E: \\u{1b}[31mbad"), "{stderr}");
}
