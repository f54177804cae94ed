//! Issue 14, metrics: a real `--batch wave` on a harness apt host with `[metrics] textfile`
//! leaves a node_exporter textfile that Prometheus' own `promtool check metrics` accepts, and
//! whose samples say what the wave did.

use std::fs;
use std::process::{Command, Stdio};

use crate::batch::run_expecting;
use crate::harness::TestEnv;
use crate::harness::apthost::{AptHost, Packages};

/// The value of the sample `series` (name and labels exactly as written), or a panic naming it.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[test]
fn a_wave_leaves_a_textfile_promtool_accepts_with_what_the_wave_did() {
    let host = AptHost::start("metrics", Packages::Upgradable);
    let env = TestEnv::new();
    env.trust(&host.sshd);
    let textfile = env.dir.path().join("textfile/tendhost.prom");
    fs::create_dir_all(textfile.parent().unwrap()).unwrap();
    env.write_config(&format!(
        "[metrics]\ntextfile = \"{}\"\n\n{}manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n",
        textfile.display(),
        env.host_toml("deb", &host.sshd, "root")
    ));
    run_expecting(&env, &["--batch", "wave", "--allow-removals"], 0);

    let text = fs::read_to_string(&textfile).expect("the wave wrote no textfile");
    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(&textfile).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| {
            panic!("running promtool ({e}): install `prometheus` (.ci/install-test-deps.sh)")
        });
    assert!(
        promtool.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );

    // Upgraded, waiting for the reboot its kernel package asked for (auto_reboot is off).
    assert_eq!(
        sample(&text, "tendhost_host_pending_updates{host=\"deb\"}"),
        0.0
    );
    assert_eq!(
        sample(&text, "tendhost_host_reboot_required{host=\"deb\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tendhost_host_state{host=\"deb\",state=\"waiting_reboot\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "tendhost_host_state{host=\"deb\",state=\"idle\"}"),
        0.0
    );
    let now = chrono::Utc::now().timestamp() as f64 + 1.0;
    let updated = sample(
        &text,
        "tendhost_host_last_update_timestamp_seconds{host=\"deb\"}",
    );
    assert!(
        updated > now - 600.0 && updated <= now,
        "{updated} vs {now}"
    );
    assert_eq!(sample(&text, "tendhost_hosts"), 1.0);
    assert_eq!(sample(&text, "tendhost_wave_running"), 0.0);
    assert_eq!(sample(&text, "tendhost_last_wave_hosts_ok"), 1.0);
    assert_eq!(
        sample(&text, "tendhost_last_wave_status{status=\"finished\"}"),
        1.0
    );

    assert_eq!(
        sample(&text, "tendhost_host_last_wave_success{host=\"deb\"}"),
        1.0
    );
    let ended = sample(&text, "tendhost_last_wave_end_timestamp_seconds");

    // A new run that runs no wave still shows the last one, read back from the audit log.
    fs::remove_file(&textfile).unwrap();
    run_expecting(&env, &["--batch", "hosts"], 0);
    let text = fs::read_to_string(&textfile).expect("`--batch hosts` wrote no textfile");
    assert_eq!(sample(&text, "tendhost_last_wave_hosts_ok"), 1.0, "{text}");
    assert_eq!(sample(&text, "tendhost_last_wave_hosts_failed"), 0.0);
    assert_eq!(
        sample(&text, "tendhost_last_wave_status{status=\"finished\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tendhost_host_last_wave_result{host=\"deb\",result=\"succeeded\"}"
        ),
        1.0
    );
    let seeded = sample(&text, "tendhost_last_wave_end_timestamp_seconds");
    assert!(
        (seeded - ended).abs() < 5.0,
        "the end of the wave as the log has it ({seeded}) vs as it was seen ({ended})"
    );
}
