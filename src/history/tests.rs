//! History from records as the engine writes them, old and new.

use std::fs;

use chrono::{DateTime, TimeZone, Utc};

use super::model::{HostOutcome, WaveOutcome};
use super::*;
use crate::store::audit::{AuditRecord, Rotation, append, wave_key};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + secs, 0).unwrap()
}

fn record(
    secs: i64,
    action: &str,
    host: Option<&str>,
    result: &str,
    detail: Option<&str>,
) -> AuditRecord {
    AuditRecord {
        at: at(secs),
        user: "op".into(),
        ..AuditRecord::new(action, host, result, detail)
    }
}

/// A wave of `web1` (succeeds, 2 upgrades) and `web2` (fails) as this version writes it.
fn new_wave(start: i64, id: u64) -> Vec<AuditRecord> {
    let key = wave_key(id, at(start));
    let k = Some(key.as_str());
    let plan = AuditRecord {
        upgrades: Some(vec![
            crate::pkg::PendingPackage {
                name: "openssl".into(),
                from: "3.0.1".into(),
                to: "3.0.2".into(),
                security: true,
            },
            crate::pkg::PendingPackage {
                name: "curl".into(),
                from: "7.1".into(),
                to: "7.2".into(),
                security: false,
            },
        ]),
        ..record(
            start + 2,
            "plan",
            Some("web1"),
            "planned",
            Some("2 upgrades, 0 installs, 0 removals"),
        )
    };
    vec![
        AuditRecord {
            hosts: Some(vec!["web1".into(), "web2".into(), "web3".into()]),
            options: Some(serde_json::json!({"sizes": ["1"]})),
            ..record(
                start,
                "wave_start",
                None,
                "started",
                Some("3 hosts in 3 batches"),
            )
        }
        .in_wave(k),
        record(
            start + 1,
            "update",
            Some("web1"),
            "pending_updates -> updating",
            None,
        )
        .in_wave(k),
        plan.in_wave(k),
        record(start + 5, "state", Some("web1"), "updating -> idle", None).in_wave(k),
        record(start + 5, "wave_host", Some("web1"), "succeeded", None).in_wave(k),
        // Another host's own refresh, not part of the wave.
        record(start + 6, "state", Some("db"), "idle -> querying", None),
        record(
            start + 6,
            "update",
            Some("web2"),
            "pending_updates -> updating",
            None,
        )
        .in_wave(k),
        record(
            start + 9,
            "state",
            Some("web2"),
            "updating -> failed",
            Some("dpkg, said \"no\"\nhere"),
        )
        .in_wave(k),
        record(
            start + 9,
            "wave_host",
            Some("web2"),
            "failed",
            Some("dpkg, said \"no\"\nhere"),
        )
        .in_wave(k),
        record(
            start + 10,
            "wave_stop",
            None,
            "halted: 1 of 3 hosts failed (limit 0)",
            Some("1 succeeded, 1 failed, 0 skipped of 3"),
        )
        .in_wave(k),
    ]
}

/// A wave as tendhost wrote it before records named their wave.
fn old_wave(start: i64) -> Vec<AuditRecord> {
    vec![
        record(
            start,
            "wave_start",
            None,
            "started",
            Some("1 hosts in 1 batches"),
        ),
        record(
            start + 1,
            "update",
            Some("gone"),
            "pending_updates -> updating",
            None,
        ),
        record(
            start + 4,
            "state",
            Some("gone"),
            "updating -> waiting_reboot",
            Some("auto_reboot is off"),
        ),
        record(
            start + 5,
            "wave_stop",
            None,
            "finished",
            Some("1 succeeded, 0 failed, 0 skipped of 1"),
        ),
        record(start + 7, "ack", Some("gone"), "ok", None),
    ]
}

fn write(path: &std::path::Path, records: &[AuditRecord]) {
    append(path, records, &Rotation::default()).unwrap();
}

fn everything() -> Query {
    Query::default()
}

#[test]
fn new_records_make_waves_with_hosts_outcomes_durations_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.jsonl");
    write(&live, &new_wave(100, 1));
    let (history, stats) = load(&live, everything()).unwrap();
    assert_eq!(stats.records, 10);
    assert_eq!(history.waves.len(), 1);
    let wave = &history.waves[0];
    assert_eq!(wave.key, wave_key(1, at(100)));
    assert_eq!(wave.id, Some(1));
    assert_eq!(wave.started, at(100));
    assert_eq!(wave.finished, Some(at(110)));
    assert_eq!(wave.outcome, WaveOutcome::Halted);
    assert_eq!(
        wave.reason.as_deref(),
        Some("1 of 3 hosts failed (limit 0)")
    );
    assert_eq!(wave.duration_secs(), Some(10.0));
    let names: Vec<&str> = wave.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(
        names,
        ["web1", "web2", "web3"],
        "db's own work is no part of it"
    );
    let [web1, web2, web3] = &wave.hosts[..] else {
        panic!()
    };
    assert_eq!(web1.outcome, HostOutcome::Succeeded);
    assert_eq!(web1.duration_secs(), Some(4.0));
    assert_eq!(web1.updated(), Some(2));
    assert_eq!(web2.outcome, HostOutcome::Failed);
    assert_eq!(web2.reason.as_deref(), Some("dpkg, said \"no\"\nhere"));
    assert_eq!(web2.updated(), None);
    assert_eq!(web3.outcome, HostOutcome::NotRun);
    assert_eq!(wave.options, Some(serde_json::json!({"sizes": ["1"]})));
}

#[test]
fn old_records_without_a_wave_name_are_grouped_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.jsonl");
    let mut records = old_wave(0);
    records.extend(new_wave(100, 1));
    write(&live, &records);
    let (history, _) = load(&live, everything()).unwrap();
    assert_eq!(history.waves.len(), 2);
    let old = &history.waves[0];
    assert_eq!(old.id, None);
    assert_eq!(old.started, at(0));
    assert_eq!(old.outcome, WaveOutcome::Finished);
    assert_eq!(
        old.hosts.len(),
        1,
        "the ack after wave_stop is not part of it"
    );
    assert_eq!(old.hosts[0].host, "gone");
    assert_eq!(old.hosts[0].outcome, HostOutcome::Succeeded);
    assert_eq!(old.hosts[0].duration_secs(), Some(3.0));
    assert_eq!(old.hosts[0].updated(), None, "old records do not say");
}

#[test]
fn rotated_files_and_a_torn_live_line_lose_no_wave() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.jsonl");
    // Rotate after (almost) every record: the wave is spread over many files.
    let rotation = Rotation {
        max_size: Some(200),
        max_age: None,
        keep: 1000,
    };
    append(&live, &new_wave(100, 1), &rotation).unwrap();
    assert!(crate::store::audit::rotated_files(&live).unwrap().len() > 3);
    let mut text = fs::read_to_string(&live).unwrap();
    text.push_str("{\"at\":\"2026-");
    fs::write(&live, text).unwrap();
    let (history, stats) = load(&live, everything()).unwrap();
    assert_eq!(stats.records, 10);
    assert_eq!(stats.unreadable, 1);
    assert_eq!(history.waves.len(), 1);
    assert_eq!(history.waves[0].count(HostOutcome::Failed), 1);
    assert_eq!(history.waves[0].outcome, WaveOutcome::Halted);
}

#[test]
fn since_and_hosts_narrow_waves_and_timelines() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.jsonl");
    let mut records = old_wave(0);
    records.extend(new_wave(100, 1));
    records.extend(new_wave(200, 1));
    write(&live, &records);

    let query = Query {
        since: Some(at(150)),
        ..Query::default()
    };
    let (history, _) = load(&live, query).unwrap();
    assert_eq!(history.waves.len(), 1);
    assert_eq!(history.waves[0].started, at(200));

    let query = Query {
        hosts: HostFilter {
            only: Some(["gone".to_string()].into()),
            exclude: Default::default(),
        },
        timeline_limit: Some(2),
        ..Query::default()
    };
    let (history, _) = load(&live, query).unwrap();
    assert_eq!(history.waves.len(), 1, "only the wave that had 'gone'");
    let timeline = &history.timelines["gone"];
    let actions: Vec<&str> = timeline.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["state", "ack"], "the newest two");
    assert_eq!(
        timeline[0].wave.as_deref(),
        Some(history.waves[0].key.as_str())
    );
    assert_eq!(timeline[1].wave, None);
    assert_eq!(history.timelines.len(), 1);
}

#[test]
fn since_reads_durations_dates_and_times() {
    let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
    assert_eq!(
        parse_since("7d", now).unwrap(),
        Utc.with_ymd_and_hms(2026, 3, 3, 12, 0, 0).unwrap()
    );
    assert_eq!(
        parse_since("24h", now).unwrap(),
        Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).unwrap()
    );
    assert_eq!(
        parse_since("2026-01-31", now).unwrap(),
        Utc.with_ymd_and_hms(2026, 1, 31, 0, 0, 0).unwrap()
    );
    assert_eq!(
        parse_since("2026-01-31T10:00:00+02:00", now).unwrap(),
        Utc.with_ymd_and_hms(2026, 1, 31, 8, 0, 0).unwrap()
    );
    assert!(matches!(
        parse_since("last week", now),
        Err(HistoryError::Since(_))
    ));
}

#[test]
fn host_filter_keeps_hosts_the_config_no_longer_has() {
    let config = Config::from_str(
        "t.toml",
        r#"
[groups]
web = ["web1"]

[[host]]
name = "web1"
addr = "10.0.0.1"
tags = ["prod"]

[[host]]
name = "web2"
addr = "10.0.0.2"
"#,
    )
    .unwrap();
    let sel = |hosts: &[&str], tags: &[&str], groups: &[&str], exclude: &[&str]| Selectors {
        hosts: hosts.iter().map(|s| s.to_string()).collect(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
    };
    let all = host_filter(&config, &sel(&[], &[], &[], &[])).unwrap();
    assert!(all.is_everyone() && all.matches("anything"));
    let gone = host_filter(&config, &sel(&["old-db"], &[], &[], &[])).unwrap();
    assert!(gone.matches("old-db") && !gone.matches("web1"));
    let prod = host_filter(&config, &sel(&[], &["prod"], &[], &[])).unwrap();
    assert!(prod.matches("web1") && !prod.matches("web2") && !prod.matches("old-db"));
    let group = host_filter(&config, &sel(&["old-db"], &[], &["web"], &["web1"])).unwrap();
    assert!(group.matches("old-db") && !group.matches("web1"));
    let excluded = host_filter(&config, &sel(&[], &[], &[], &["old-db"])).unwrap();
    assert!(!excluded.matches("old-db") && excluded.matches("web2"));
    assert!(matches!(
        host_filter(&config, &sel(&[], &["prd"], &[], &[])),
        Err(SelectError::UnknownTag { .. })
    ));
    assert!(matches!(
        host_filter(&config, &sel(&[], &[], &["wbe"], &[])),
        Err(SelectError::UnknownGroup { .. })
    ));
}

#[test]
fn pick_wave_by_name_id_or_last() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.jsonl");
    let mut records = new_wave(100, 1);
    records.extend(new_wave(200, 1));
    records.extend(new_wave(300, 2));
    write(&live, &records);
    let (history, _) = load(&live, everything()).unwrap();
    assert_eq!(pick_wave(&history.waves, "last").unwrap().started, at(300));
    assert_eq!(pick_wave(&history.waves, "1").unwrap().started, at(200));
    let name = wave_key(1, at(100));
    assert_eq!(pick_wave(&history.waves, &name).unwrap().started, at(100));
    assert!(pick_wave(&history.waves, "9").is_err());
}

fn sample() -> (History, ReadStats) {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.jsonl");
    let mut records = new_wave(100, 1);
    // A host name and a reason trying markup and terminal tricks.
    records.push(
        record(150, "wave_start", None, "started", Some("1 hosts"))
            .in_wave(Some(&wave_key(2, at(150)))),
    );
    records.push(
        record(
            151,
            "wave_host",
            Some("evil|host"),
            "failed",
            Some("\u{1b}]0;pwned\u{7}[click](http://x) <b>`rm`</b>"),
        )
        .in_wave(Some(&wave_key(2, at(150)))),
    );
    write(&live, &records);
    load(&live, everything()).unwrap()
}

#[test]
fn csv_has_one_row_per_host_per_wave_and_quotes_what_needs_it() {
    let (history, _) = sample();
    let text = report::csv(&history).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, report::CSV_HEADER);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    let col = |name: &str| report::CSV_HEADER.iter().position(|h| *h == name).unwrap();
    assert_eq!(&rows[0][col("host")], "web1");
    assert_eq!(&rows[0][col("updated")], "2");
    assert_eq!(
        &rows[0][col("upgrades")],
        "openssl 3.0.1 → 3.0.2 (security); curl 7.1 → 7.2"
    );
    assert_eq!(&rows[1][col("reason")], "dpkg, said \"no\"\nhere");
    assert!(text.contains("\"dpkg, said \"\"no\"\"\nhere\""), "{text}");
    assert_eq!(&rows[2][col("outcome")], "not_run");
    assert_eq!(&rows[3][col("wave_id")], "2");
}

#[test]
fn json_document_says_what_the_waves_did() {
    let (history, stats) = sample();
    let doc = report::json_document(&history, &stats, None, at(1000));
    let waves = doc["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 2);
    assert_eq!(waves[0]["wave"], wave_key(1, at(100)));
    assert_eq!(waves[0]["id"], 1);
    assert_eq!(waves[0]["outcome"], "halted");
    assert_eq!(waves[0]["succeeded"], 1);
    assert_eq!(waves[0]["failed"], 1);
    assert_eq!(waves[0]["hosts"][0]["updated"], 2);
    assert_eq!(waves[0]["hosts"][0]["duration_secs"], 4.0);
    assert_eq!(waves[0]["hosts"][0]["upgrades"][0]["name"], "openssl");
    assert_eq!(waves[0]["hosts"][1]["reason"], "dpkg, said \"no\"\nhere");
    assert_eq!(waves[1]["outcome"], "running");
    assert_eq!(doc["records"], 12);
}

#[test]
fn markdown_is_a_change_log_with_host_text_defused() {
    let (history, stats) = sample();
    let text = report::markdown(&history, &stats, Some(at(0)), at(1000));
    assert!(text.starts_with("# tendhost report\n"), "{text}");
    assert!(text.contains("2 waves"), "{text}");
    assert!(
        text.contains("- Reason: 1 of 3 hosts failed (limit 0)"),
        "{text}"
    );
    assert!(
        text.contains("- Options: sizes: \\[\"1\"\\]"),
        "not a known format: {text}"
    );
    assert!(text.contains("| web1 | succeeded | 4.0s | 2 |"), "{text}");
    assert!(
        text.contains("- **web1**: openssl 3.0.1 → 3.0.2 (security), curl 7.1 → 7.2"),
        "{text}"
    );
    assert!(
        text.contains("- **web2** (failed): dpkg, said \"no\" here"),
        "{text}"
    );
    // Nothing a host sent becomes markup or reaches the terminal raw.
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("evil\\|host"), "{text}");
    assert!(
        text.contains("\\[click\\](http://x) \\<b\\>\\`rm\\`\\</b\\>"),
        "{text}"
    );
}

#[test]
fn the_table_keeps_host_text_on_one_clean_line() {
    let (history, _) = sample();
    let lines = report::table(&history);
    assert!(
        lines.iter().all(|l| !l.contains(['\n', '\u{1b}', '\u{7}'])),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("web2") && l.contains("dpkg, said \"no\" here")),
        "{lines:?}"
    );
}

#[test]
fn a_wave_stopped_at_its_threshold_stays_paused_and_one_cut_short_is_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.jsonl");
    let paused = wave_key(1, at(0));
    let cut = wave_key(2, at(100));
    let (p, c) = (Some(paused.as_str()), Some(cut.as_str()));
    write(
        &live,
        &[
            record(0, "wave_start", None, "started", Some("2 hosts")).in_wave(p),
            record(1, "wave_host", Some("a"), "failed", Some("boom")).in_wave(p),
            record(
                2,
                "wave_threshold",
                None,
                "paused",
                Some("1 of 2 hosts failed"),
            )
            .in_wave(p),
            record(
                3,
                "wave_stop",
                None,
                "interrupted; resumable",
                Some("0 succeeded, 1 failed, 0 skipped of 2"),
            )
            .in_wave(p),
            record(100, "wave_start", None, "started", Some("1 hosts")).in_wave(c),
            record(101, "update", Some("b"), "idle -> updating", None).in_wave(c),
            record(102, "wave_host", Some("b"), "interrupted", None).in_wave(c),
            record(103, "wave_stop", None, "interrupted; resumable", None).in_wave(c),
        ],
    );
    let (history, _) = load(&live, everything()).unwrap();
    assert_eq!(history.waves[0].outcome, WaveOutcome::Paused);
    assert_eq!(
        history.waves[0].reason.as_deref(),
        Some("1 of 2 hosts failed")
    );
    assert_eq!(history.waves[1].outcome, WaveOutcome::Interrupted);
    assert_eq!(history.waves[1].hosts[0].outcome, HostOutcome::Interrupted);
}

#[test]
fn an_unnamed_wave_never_stopped_ends_where_named_records_begin() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.jsonl");
    let mut records = vec![
        record(0, "wave_start", None, "started", Some("1 hosts")),
        record(1, "update", Some("old"), "idle -> updating", None),
        // Killed here; the next tendhost names its waves.
    ];
    records.extend(new_wave(100, 1));
    // The console's own update after the wave: no wave's.
    records.push(record(
        200,
        "update",
        Some("web1"),
        "idle -> updating",
        None,
    ));
    write(&live, &records);
    let (history, _) = load(&live, everything()).unwrap();
    assert_eq!(history.waves.len(), 2);
    assert_eq!(history.waves[0].outcome, WaveOutcome::Running);
    assert_eq!(history.waves[0].hosts.len(), 1);
    assert_eq!(history.waves[0].hosts[0].outcome, HostOutcome::Running);
    let web1 = &history.waves[1].hosts[0];
    assert_eq!(
        web1.started,
        Some(at(101)),
        "the later update is no part of it"
    );
}

#[test]
fn a_csv_cell_a_spreadsheet_would_run_gets_a_quote_first() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.jsonl");
    let key = wave_key(1, at(0));
    write(
        &live,
        &[
            record(0, "wave_start", None, "started", None).in_wave(Some(&key)),
            record(
                1,
                "wave_host",
                Some("db"),
                "failed",
                Some("=HYPERLINK(\"http://x\")"),
            )
            .in_wave(Some(&key)),
        ],
    );
    let (history, _) = load(&live, everything()).unwrap();
    let text = report::csv(&history).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let row = reader.records().next().unwrap().unwrap();
    let reason = report::CSV_HEADER
        .iter()
        .position(|h| *h == "reason")
        .unwrap();
    assert_eq!(&row[reason], "'=HYPERLINK(\"http://x\")");
}
