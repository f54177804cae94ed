//! Issue 14, history and reports: a real `--batch wave` on harness apt hosts (one upgrades,
//! one fails), then `--batch history` and `tendhost report` in every format are checked
//! against the audit file's own records: the same wave, hosts, outcomes and counts.

use std::fs;

use serde_json::Value;

use crate::batch::{json_lines, run_expecting};
use crate::harness::TestEnv;
use crate::harness::apthost::{AptHost, Packages};

fn apt_block(env: &TestEnv, name: &str, host: &AptHost) -> String {
    format!(
        "{}manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n\n",
        env.host_toml(name, &host.sshd, "root")
    )
}

/// Every record of the env's live audit file.
fn audit_records(env: &TestEnv) -> Vec<Value> {
    let path = env.state_dir().join("tendhost/audit.jsonl");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The one record with `action` for `host` (`None`: the wave's own).
fn one<'a>(records: &'a [Value], action: &str, host: Option<&str>) -> &'a Value {
    let found: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == action && r["host"].as_str() == host)
        .collect();
    assert_eq!(found.len(), 1, "{action} {host:?}: {found:?}");
    found[0]
}

#[test]
fn history_and_reports_match_the_audit_log_of_a_real_wave() {
    let env = TestEnv::new();
    let good = AptHost::start("hist-good", Packages::Upgradable);
    let broken = AptHost::start("hist-broken", Packages::Broken);
    env.trust(&good.sshd);
    env.trust(&broken.sshd);
    let mut body = apt_block(&env, "good", &good);
    body.push_str(&apt_block(&env, "broken", &broken));
    env.write_config(&body);
    run_expecting(
        &env,
        &[
            "--batch",
            "wave",
            "--allow-removals",
            "--batch-size",
            "1",
            "--max-failures",
            "5",
        ],
        1,
    );

    // What the log itself says.
    let records = audit_records(&env);
    let start = one(&records, "wave_start", None);
    let key = start["wave"].as_str().expect("wave_start names its wave");
    assert!(key.ends_with("#1"), "{key}");
    assert_eq!(start["hosts"], serde_json::json!(["good", "broken"]));
    for record in records.iter().filter(|r| r["host"].is_string()) {
        assert_eq!(record["wave"], key, "a host record of the wave: {record}");
    }
    let stop = one(&records, "wave_stop", None);
    assert_eq!(stop["result"], "finished");
    let good_end = one(&records, "wave_host", Some("good"));
    assert_eq!(good_end["result"], "succeeded");
    let broken_end = one(&records, "wave_host", Some("broken"));
    assert_eq!(broken_end["result"], "failed");
    let reason = broken_end["detail"].as_str().unwrap();
    assert!(reason.contains("apt-get upgrade failed"), "{reason}");
    let planned = one(&records, "plan", Some("good"))["upgrades"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(planned, 3, "the aptrepo's three upgrades");

    // --batch history --json: one wave line as the log says, then the summary.
    let out = run_expecting(&env, &["--batch", "history", "--json"], 0);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let wave = &lines[0];
    assert_eq!(wave["type"], "wave");
    check_wave(wave, key, start, stop, reason, planned);
    let summary = &lines[1];
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["waves"], 1);
    assert_eq!(summary["records"], records.len());
    assert_eq!(summary["unreadable"], 0);

    // A host named: its timeline is every record of it, in order.
    let out = run_expecting(&env, &["--batch", "history", "--json", "good"], 0);
    let lines = json_lines(&out);
    let entries: Vec<&Value> = lines.iter().filter(|l| l["type"] == "entry").collect();
    let of_good: Vec<&Value> = records.iter().filter(|r| r["host"] == "good").collect();
    assert_eq!(entries.len(), of_good.len(), "{entries:?}");
    for (entry, record) in entries.iter().zip(&of_good) {
        assert_eq!(entry["action"], record["action"]);
        assert_eq!(entry["result"], record["result"]);
        assert_eq!(entry["wave"], key);
    }
    assert_eq!(lines[0]["hosts"].as_array().unwrap().len(), 1, "only good");

    // --since: a date before the wave keeps it, one after drops it.
    let out = run_expecting(
        &env,
        &["--batch", "history", "--json", "--since", "2000-01-01"],
        0,
    );
    assert_eq!(json_lines(&out).last().unwrap()["waves"], 1);
    let out = run_expecting(
        &env,
        &["--batch", "history", "--json", "--since", "2999-01-01"],
        0,
    );
    assert_eq!(json_lines(&out).last().unwrap()["waves"], 0);

    // Options of other commands are refused, not ignored; so is an unknown tag.
    let out = run_expecting(&env, &["--batch", "history", "--dry-run"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dry-run does not apply"));
    let out = run_expecting(&env, &["--batch", "history", "--tag", "nope"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown tag 'nope'"));
    let out = run_expecting(&env, &["--batch", "history", "--since", "soon"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since 'soon'"));

    // The human table names the wave and both hosts.
    let out = run_expecting(&env, &["--batch", "history"], 0);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains(key) && table.contains("finished"), "{table}");
    assert!(table.contains("3 packages updated"), "{table}");

    // report --format json: one document, the same wave.
    let out = run_expecting(&env, &["report", "--format", "json"], 0);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["waves"].as_array().unwrap().len(), 1);
    check_wave(&doc["waves"][0], key, start, stop, reason, planned);

    // report --format csv: one row per host of the wave.
    let out = run_expecting(&env, &["report", "--format", "csv", "--wave", "1"], 0);
    let mut reader = csv::Reader::from_reader(&out.stdout[..]);
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][col("wave")], key);
    assert_eq!(&rows[0][col("host")], "good");
    assert_eq!(&rows[0][col("outcome")], "succeeded");
    assert_eq!(&rows[0][col("updated")], planned.to_string());
    assert_eq!(&rows[1][col("host")], "broken");
    assert_eq!(&rows[1][col("outcome")], "failed");
    assert_eq!(&rows[1][col("reason")], reason);

    // report --format markdown: the wave, what was updated, the failure and why.
    let out = run_expecting(&env, &["report", "--wave", "last"], 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("- Options: batches 1, max failures 5, rolling, removals allowed"),
        "{text}"
    );
    assert!(text.contains("— finished"), "{text}");
    assert!(text.contains("| good | succeeded |"), "{text}");
    assert!(text.contains("tendhost-app 1.0 → 1.1"), "{text}");
    assert!(
        text.contains("- **broken** (failed): upgrade: apt-get upgrade failed"),
        "{text}"
    );
    let out = run_expecting(&env, &["report", "--wave", "7"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such wave"));

    // A host taken out of the config keeps its history.
    env.write_config(&apt_block(&env, "good", &good));
    let out = run_expecting(&env, &["--batch", "history", "--json", "broken"], 0);
    let lines = json_lines(&out);
    assert_eq!(lines[0]["hosts"][0]["host"], "broken");
    assert_eq!(lines[0]["hosts"][0]["outcome"], "failed");
}

/// `wave` (a history line or a report's wave) says what the records say.
fn check_wave(wave: &Value, key: &str, start: &Value, stop: &Value, reason: &str, planned: usize) {
    assert_eq!(wave["wave"], key);
    assert_eq!(wave["id"], 1);
    assert_eq!(wave["outcome"], "finished");
    assert_eq!(wave["plan"], start["detail"]);
    assert_eq!(wave["totals"], stop["detail"]);
    assert_eq!(wave["succeeded"], 1);
    assert_eq!(wave["failed"], 1);
    let started = chrono::DateTime::parse_from_rfc3339(wave["started"].as_str().unwrap()).unwrap();
    let logged = chrono::DateTime::parse_from_rfc3339(start["at"].as_str().unwrap()).unwrap();
    assert!(
        (logged - started).num_milliseconds().abs() < 1000,
        "{started} vs {logged}"
    );
    assert_eq!(wave["finished"], stop["at"]);
    let hosts = wave["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[0]["host"], "good");
    assert_eq!(hosts[0]["outcome"], "succeeded");
    assert_eq!(hosts[0]["updated"], planned);
    assert!(hosts[0]["duration_secs"].as_f64().unwrap() > 0.0);
    assert_eq!(hosts[1]["host"], "broken");
    assert_eq!(hosts[1]["outcome"], "failed");
    assert_eq!(hosts[1]["reason"], reason);
}

/// A wave paused at its threshold reads as paused, with the hosts that never started; resumed,
/// it is the same wave (same name), finished, resumed once.
#[test]
fn a_paused_then_resumed_wave_is_one_wave_in_history() {
    use crate::harness::{SshHost, SshdOptions};
    let env = TestEnv::new();
    let hosts: Vec<SshHost> = (0..3)
        .map(|_| SshHost::start(SshdOptions::default()).unwrap())
        .collect();
    let mut body = String::new();
    for (i, host) in hosts.iter().enumerate() {
        env.trust(host);
        body.push_str(&env.host_toml(&format!("t{i}"), host, "root"));
        body.push_str("manager = \"none\"\n\n");
        if i == 1 {
            body.push_str("[host.checks]\npre = \"false\"\n\n");
        }
    }
    env.write_config(&body);
    let args = [
        "--batch",
        "wave",
        "--batch-size",
        "1",
        "--on-threshold",
        "pause",
    ];
    run_expecting(&env, &args, 5);

    let out = run_expecting(&env, &["--batch", "history", "--json"], 0);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let wave = &lines[0];
    assert_eq!(wave["outcome"], "paused", "{wave}");
    assert!(
        wave["reason"].as_str().unwrap().contains("failed"),
        "{wave}"
    );
    let outcomes: Vec<(&str, &str)> = wave["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["host"].as_str().unwrap(), h["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [("t0", "succeeded"), ("t1", "failed"), ("t2", "not_run")]
    );
    let key = wave["wave"].as_str().unwrap().to_string();

    run_expecting(
        &env,
        &["--batch", "wave", "--resume", "--failed", "skip"],
        0,
    );
    let records = audit_records(&env);
    let starts: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "wave_start")
        .collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[1]["result"], "resumed");
    assert_eq!(starts[1]["wave"], key, "a resumed wave keeps its name");

    let out = run_expecting(&env, &["report", "--format", "json"], 0);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let waves = doc["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 1, "{doc}");
    assert_eq!(waves[0]["wave"], key);
    assert_eq!(waves[0]["outcome"], "finished");
    assert_eq!(waves[0]["resumed"], 1);
    assert_eq!(waves[0]["hosts"][2]["host"], "t2");
    assert_eq!(waves[0]["hosts"][2]["outcome"], "succeeded");
    assert_eq!(waves[0]["hosts"][1]["outcome"], "failed");
}
