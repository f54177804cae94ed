//! `[[schedule]] when`: a weekly wall-clock time (`"Sun 03:00"`, `"Mon,Thu 22:30"`) or a cron
//! expression, and when it is next due in local time.
//!
//! Both forms become one `croner` pattern, so there is a single rule for daylight-saving changes:
//! a local time that does not exist (the spring-forward gap, e.g. 02:30 in Berlin on the last
//! Sunday of March) runs at the first instant after the gap (03:00 CEST), once; a local time that
//! happens twice (the fall-back overlap, 02:30 on the last Sunday of October) runs once, at its
//! first occurrence (02:30 CEST). Nothing here reads the clock: "now" is always passed in.

use std::fmt;
use std::str::FromStr as _;

use chrono::{DateTime, LocalResult, NaiveTime, TimeZone, Timelike, Weekday};
use croner::Cron;

/// A parsed `when`: the text as written plus the pattern it stands for.
#[derive(Clone)]
pub struct When {
    text: String,
    cron: Cron,
    /// Set for the weekly form; systemd's OnCalendar= can always express it.
    weekly: Option<Weekly>,
}

/// The weekly form: days and one time of day.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Weekly {
    days: Vec<Weekday>,
    time: NaiveTime,
}

impl fmt::Debug for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "When({:?})", self.text)
    }
}

impl When {
    /// Parses either form; the error says what was expected.
    pub fn parse(text: &str) -> Result<When, String> {
        let trimmed = text.trim();
        if let Some(weekly) = parse_weekly(trimmed)? {
            let days: Vec<&str> = weekly.days.iter().map(cron_day).collect();
            let pattern = format!(
                "{} {} * * {}",
                weekly.time.minute(),
                weekly.time.hour(),
                days.join(",")
            );
            let cron = Cron::from_str(&pattern)
                .map_err(|e| format!("'{trimmed}': {e} (internal pattern '{pattern}')"))?;
            return Ok(When {
                text: trimmed.to_string(),
                cron,
                weekly: Some(weekly),
            });
        }
        let fields = trimmed.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "'{trimmed}' is neither a weekly time (e.g. \"Sun 03:00\", \"Mon,Thu 22:30\") nor a 5-field cron expression (minute hour day-of-month month day-of-week)"
            ));
        }
        let cron = Cron::from_str(trimmed)
            .map_err(|e| format!("'{trimmed}' is not a valid cron expression: {e}"))?;
        Ok(When {
            text: trimmed.to_string(),
            cron,
            weekly: None,
        })
    }

    /// The text as written, for lists and messages.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first due time strictly after `after`, in `after`'s zone (local time in production).
    ///
    /// A wall-clock time that happens twice (the fall-back overlap) is due at its first
    /// occurrence only: croner may hand back either, so the answer is normalised to the earliest
    /// instant with that local time, and a repeat of a time already due at or before `after` is
    /// passed over.
    pub fn next_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        let zone = after.timezone();
        let mut cursor = after.clone();
        // Two rounds suffice (one repeat per overlap); four is a safe bound.
        for _ in 0..4 {
            let found = self.cron.find_next_occurrence(&cursor, false).ok()?;
            let first = first_instant(&zone, &found);
            if first > *after {
                return Some(first);
            }
            cursor = found;
        }
        None
    }

    /// The latest due time in `(since, now]`, if any: a run that came due while nobody was
    /// there to start it.
    pub fn last_due_between<Tz: TimeZone>(
        &self,
        since: &DateTime<Tz>,
        now: &DateTime<Tz>,
    ) -> Option<DateTime<Tz>> {
        let last = self.cron.find_previous_occurrence(now, true).ok()?;
        // The second pass of a repeated wall-clock time is the same run as the first.
        let first = first_instant(&now.timezone(), &last);
        (first > *since).then_some(first)
    }

    /// systemd `OnCalendar=` for this time, or why it cannot be written exactly.
    ///
    /// The weekly form converts directly. A cron expression converts when its fields are plain
    /// numbers, lists, ranges, steps or `*` and it does not restrict both day-of-month and
    /// day-of-week (cron ORs those two, systemd ANDs them); anything else is refused rather than
    /// approximated.
    pub fn on_calendar(&self) -> Result<String, String> {
        if let Some(w) = &self.weekly {
            let days: Vec<&str> = w.days.iter().map(systemd_day).collect();
            return Ok(format!(
                "{} *-*-* {:02}:{:02}:00",
                days.join(","),
                w.time.hour(),
                w.time.minute()
            ));
        }
        cron_to_on_calendar(&self.text)
    }
}

/// The earliest instant whose local time is `at`'s (`at` itself unless that time is repeated).
fn first_instant<Tz: TimeZone>(zone: &Tz, at: &DateTime<Tz>) -> DateTime<Tz> {
    match zone.from_local_datetime(&at.naive_local()) {
        LocalResult::Ambiguous(a, b) => a.min(b),
        _ => at.clone(),
    }
}

/// `Mon,Thu 22:30` → days and time; `Ok(None)` when the text does not look weekly at all.
fn parse_weekly(text: &str) -> Result<Option<Weekly>, String> {
    let mut parts = text.split_whitespace();
    let (Some(days), Some(time), None) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(None);
    };
    if !days.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) || !time.contains(':') {
        return Ok(None);
    }
    let days = days
        .split(',')
        .map(crate::config::parse_day)
        .collect::<Result<Vec<_>, _>>()?;
    let time = crate::config::parse_time(time)?;
    Ok(Some(Weekly { days, time }))
}

fn cron_day(day: &Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MON",
        Weekday::Tue => "TUE",
        Weekday::Wed => "WED",
        Weekday::Thu => "THU",
        Weekday::Fri => "FRI",
        Weekday::Sat => "SAT",
        Weekday::Sun => "SUN",
    }
}

fn systemd_day(day: &Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tue",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thu",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}

/// Converts a 5-field cron expression that systemd can express exactly.
fn cron_to_on_calendar(text: &str) -> Result<String, String> {
    let f: Vec<&str> = text.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = f.as_slice() else {
        return Err(format!("'{text}' does not have 5 fields"));
    };
    let refuse = |why: &str| {
        Err(format!(
            "cron expression '{text}' cannot be written exactly as a systemd OnCalendar= ({why}); use the weekly form or a simpler expression"
        ))
    };
    if *dom != "*" && *dow != "*" {
        return refuse("cron runs when day-of-month OR day-of-week matches, systemd needs both");
    }
    let mut parts = Vec::new();
    for (name, field) in [
        ("minute", minute),
        ("hour", hour),
        ("day-of-month", dom),
        ("month", month),
    ] {
        match numeric_field(field) {
            Some(v) => parts.push(v),
            None => return refuse(&format!("{name} field '{field}'")),
        }
    }
    let days = if *dow == "*" {
        String::new()
    } else {
        match dow_field(dow) {
            Some(d) => format!("{d} "),
            None => return refuse(&format!("day-of-week field '{dow}'")),
        }
    };
    let [minute, hour, dom, month] = [&parts[0], &parts[1], &parts[2], &parts[3]];
    Ok(format!("{days}*-{month}-{dom} {hour}:{minute}:00"))
}

/// `*`, `5`, `1,15`, `1-5`, `*/15`, `0-30/10` → systemd's spelling (`..` for ranges).
fn numeric_field(field: &str) -> Option<String> {
    if field == "*" {
        return Some("*".into());
    }
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s.parse::<u32>().ok()?)),
            None => (item, None),
        };
        let range = if range == "*" {
            match step {
                Some(_) => "00".to_string(),
                None => "*".to_string(),
            }
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?);
            if step.is_some() {
                // systemd's `a..b/s` is not allowed; only `a/s`, so refuse ranges with steps.
                return None;
            }
            format!("{a:02}..{b:02}")
        } else {
            format!("{:02}", range.parse::<u32>().ok()?)
        };
        out.push(match step {
            Some(s) => format!("{range}/{s}"),
            None => range,
        });
    }
    Some(out.join(","))
}

/// `1-5`, `MON,THU`, `0`/`7` (Sunday) → `Mon..Fri`, `Mon,Thu`, `Sun`.
fn dow_field(field: &str) -> Option<String> {
    const NAMES: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let day = |s: &str| -> Option<&'static str> {
        if let Ok(n) = s.parse::<usize>() {
            return NAMES.get(n).copied();
        }
        let lower = s.to_ascii_lowercase();
        NAMES[..7]
            .iter()
            .find(|n| n.to_ascii_lowercase() == lower)
            .copied()
    };
    let mut out = Vec::new();
    for item in field.split(',') {
        if item.contains('/') || item.contains('#') || item.contains('L') {
            return None;
        }
        match item.split_once('-') {
            Some((a, b)) => out.push(format!("{}..{}", day(a)?, day(b)?)),
            None => out.push(day(item)?.to_string()),
        }
    }
    Some(out.join(","))
}

#[cfg(test)]
#[path = "when_tests.rs"]
mod tests;
