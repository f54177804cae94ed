//! `when` parsing, next runs across DST changes in Europe/Berlin, and OnCalendar= conversion.
//!
//! chrono's `Local` follows `TZ`, which is process-wide and unsafe to change while other test
//! threads read the clock. So the DST test re-runs itself in a child process with
//! `TZ=Europe/Berlin` set from the start, and only the child checks the times.

use chrono::{DateTime, Local, NaiveDate, TimeZone, Utc};

use super::*;

const BERLIN: &str = "Europe/Berlin";

/// Runs `test` (this module's test of that name) in a child process with `TZ=Europe/Berlin`;
/// returns true when the caller *is* that child and should check the times itself.
#[allow(clippy::disallowed_methods)] // Re-runs this test binary; it is given no secret.
fn in_berlin(test: &str) -> bool {
    if std::env::var("TZ").as_deref() == Ok(BERLIN) {
        return true;
    }
    assert!(
        std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists(),
        "prerequisite missing: tzdata (/usr/share/zoneinfo/Europe/Berlin)"
    );
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .env_remove("TENDHOST_SSH_KEY")
        .args([
            "--exact",
            &format!("schedule::when::tests::{test}"),
            "--nocapture",
        ])
        .env("TZ", BERLIN)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "child run in {BERLIN} failed:\n{text}"
    );
    assert!(text.contains("1 passed"), "child ran no test:\n{text}");
    false
}

fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Local> {
    let naive = NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, min, 0)
        .unwrap();
    Local.from_local_datetime(&naive).earliest().unwrap()
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn next_utc(when: &When, after: DateTime<Local>) -> DateTime<Utc> {
    when.next_after(&after).unwrap().with_timezone(&Utc)
}

#[test]
fn fires_at_local_times_across_both_dst_changes_in_berlin() {
    if !in_berlin("fires_at_local_times_across_both_dst_changes_in_berlin") {
        return;
    }
    let sunday_0300 = When::parse("Sun 03:00").unwrap();
    // Winter (CET, +01:00): 03:00 local is 02:00 UTC.
    assert_eq!(
        next_utc(&sunday_0300, local(2026, 3, 20, 12, 0)),
        utc("2026-03-22T02:00:00Z")
    );
    // Spring forward (29 March 2026, 02:00 CET → 03:00 CEST): 03:00 exists, is 01:00 UTC.
    assert_eq!(
        next_utc(&sunday_0300, local(2026, 3, 28, 12, 0)),
        utc("2026-03-29T01:00:00Z")
    );

    // 02:30 does not exist on 29 March: it runs once, at the end of the gap (03:00 CEST) …
    let in_gap = When::parse("Sun 02:30").unwrap();
    let gap_run = in_gap.next_after(&local(2026, 3, 28, 12, 0)).unwrap();
    assert_eq!(gap_run.with_timezone(&Utc), utc("2026-03-29T01:00:00Z"));
    // … and the next run is a week later at 02:30 CEST, not a second run that day.
    assert_eq!(next_utc(&in_gap, gap_run), utc("2026-04-05T00:30:00Z"));

    // Fall back (25 October 2026, 03:00 CEST → 02:00 CET): 02:30 happens twice; it runs at the
    // first (02:30 CEST = 00:30 UTC) and not again at 02:30 CET (01:30 UTC).
    let overlap_run = in_gap.next_after(&local(2026, 10, 24, 12, 0)).unwrap();
    assert_eq!(overlap_run.with_timezone(&Utc), utc("2026-10-25T00:30:00Z"));
    assert_eq!(next_utc(&in_gap, overlap_run), utc("2026-11-01T01:30:00Z"));

    // A cron expression follows the same rules: daily 02:30.
    let daily = When::parse("30 2 * * *").unwrap();
    let first = daily.next_after(&local(2026, 3, 28, 12, 0)).unwrap();
    assert_eq!(first.with_timezone(&Utc), utc("2026-03-29T01:00:00Z"));
    assert_eq!(next_utc(&daily, first), utc("2026-03-30T00:30:00Z"));
    let first = daily.next_after(&local(2026, 10, 24, 12, 0)).unwrap();
    assert_eq!(first.with_timezone(&Utc), utc("2026-10-25T00:30:00Z"));
    assert_eq!(next_utc(&daily, first), utc("2026-10-26T01:30:00Z"));
}

#[test]
fn a_run_inside_a_window_crossing_midnight_is_let_through_in_berlin() {
    if !in_berlin("a_run_inside_a_window_crossing_midnight_is_let_through_in_berlin") {
        return;
    }
    let window = crate::config::MaintenanceWindow {
        start: chrono::NaiveTime::from_hms_opt(23, 0, 0).unwrap(),
        end: chrono::NaiveTime::from_hms_opt(1, 0, 0).unwrap(),
        days: vec![chrono::Weekday::Sat],
    };
    // Saturday 23:30 and Sunday 00:15 are both in Saturday's window; Sunday 01:30 is not.
    for (text, inside) in [
        ("Sat 23:30", true),
        ("Sun 00:15", true),
        ("Sun 01:30", false),
    ] {
        let when = When::parse(text).unwrap();
        let due = when.next_after(&local(2026, 10, 23, 12, 0)).unwrap();
        assert_eq!(
            window.contains(due.naive_local()),
            inside,
            "{text} due at {due}"
        );
    }
    // Sunday 00:15 after the fall-back weekend: the window check sees local wall-clock time.
    let due = When::parse("Sun 00:15")
        .unwrap()
        .next_after(&local(2026, 10, 24, 12, 0))
        .unwrap();
    assert_eq!(due.with_timezone(&Utc), utc("2026-10-24T22:15:00Z"));
    assert!(window.contains(due.naive_local()));
}

#[test]
fn weekly_and_cron_forms_parse_and_bad_ones_say_why() {
    let w = When::parse("Mon,Thu 22:30").unwrap();
    assert_eq!(w.as_str(), "Mon,Thu 22:30");
    let monday = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap(); // a Monday
    assert_eq!(
        w.next_after(&monday).unwrap(),
        Utc.with_ymd_and_hms(2026, 6, 1, 22, 30, 0).unwrap()
    );
    assert_eq!(
        w.next_after(&Utc.with_ymd_and_hms(2026, 6, 1, 22, 30, 0).unwrap())
            .unwrap(),
        Utc.with_ymd_and_hms(2026, 6, 4, 22, 30, 0).unwrap()
    );
    assert!(When::parse("0 3 * * SUN").is_ok());
    let err = When::parse("Sunday at 3").unwrap_err();
    assert!(err.contains("neither a weekly time"), "{err}");
    let err = When::parse("Sum 03:00").unwrap_err();
    assert!(err.contains("'Sum' is not a day"), "{err}");
    let err = When::parse("Sun 25:00").unwrap_err();
    assert!(err.contains("not a time of day"), "{err}");
    let err = When::parse("61 3 * * *").unwrap_err();
    assert!(err.contains("not a valid cron expression"), "{err}");
}

#[test]
fn missed_runs_are_the_latest_due_time_since_the_last_one() {
    let w = When::parse("Sun 03:00").unwrap();
    let last = Utc.with_ymd_and_hms(2026, 5, 31, 3, 0, 0).unwrap(); // Sun
    // Nothing due yet on Saturday.
    let sat = Utc.with_ymd_and_hms(2026, 6, 6, 12, 0, 0).unwrap();
    assert_eq!(w.last_due_between(&last, &sat), None);
    // Two Sundays passed: the latest one is reported (once, not twice).
    let later = Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap();
    assert_eq!(
        w.last_due_between(&last, &later),
        Some(Utc.with_ymd_and_hms(2026, 6, 14, 3, 0, 0).unwrap())
    );
}

#[test]
fn on_calendar_is_exact_or_refused() {
    let cases = [
        ("Sun 03:00", "Sun *-*-* 03:00:00"),
        ("Mon,Thu 22:30", "Mon,Thu *-*-* 22:30:00"),
        ("30 2 * * *", "*-*-* 02:30:00"),
        ("0 3 * * 1-5", "Mon..Fri *-*-* 03:00:00"),
        ("*/15 * * * *", "*-*-* *:00/15:00"),
        ("0 4 1,15 * *", "*-*-01,15 04:00:00"),
        ("0 4 * 1-3 SUN", "Sun *-01..03-* 04:00:00"),
    ];
    for (when, expected) in cases {
        assert_eq!(
            When::parse(when).unwrap().on_calendar().unwrap(),
            expected,
            "{when}"
        );
    }
    for refused in [
        "0 4 1 * MON",
        "0-30/10 * * * *",
        "0 4 * * 5L",
        "0 4 * * MON#1",
    ] {
        let Ok(when) = When::parse(refused) else {
            continue;
        };
        let err = when.on_calendar().unwrap_err();
        assert!(
            err.contains("cannot be written exactly"),
            "{refused}: {err}"
        );
    }
}
