//! Maintenance windows: the local times and days a host may be updated or rebooted.

use chrono::{Datelike, Days, NaiveDateTime, NaiveTime, Weekday};

/// `start`..`end` on the given days, in local time. A window whose end is before its start
/// crosses midnight: `22:00`–`02:00` on Sat covers Saturday 22:00 to Sunday 02:00.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
    /// Days the window *opens* on. Never empty: no `days` means every day.
    pub days: Vec<Weekday>,
}

impl MaintenanceWindow {
    /// Whether `now` (local wall-clock time) falls inside the window.
    pub fn contains(&self, now: NaiveDateTime) -> bool {
        let time = now.time();
        let today = now.weekday();
        if self.start < self.end {
            self.days.contains(&today) && time >= self.start && time < self.end
        } else {
            (self.days.contains(&today) && time >= self.start)
                || (self.days.contains(&today.pred()) && time < self.end)
        }
    }

    /// When the window that `now` falls in closes; `None` when `now` is outside the window.
    pub fn closes_at(&self, now: NaiveDateTime) -> Option<NaiveDateTime> {
        if !self.contains(now) {
            return None;
        }
        let today = now.date().and_time(self.end);
        // Crossing midnight and opened today: it closes tomorrow at `end`.
        let crosses = self.start >= self.end && now.time() >= self.start;
        Some(if crosses { today + Days::new(1) } else { today })
    }

    /// The next time the window opens strictly after `now` (within the coming week).
    pub fn next_opening(&self, now: NaiveDateTime) -> Option<NaiveDateTime> {
        (0..=7)
            .filter_map(|ahead| now.date().checked_add_days(Days::new(ahead)))
            .filter(|day| self.days.contains(&day.weekday()))
            .map(|day| day.and_time(self.start))
            .find(|opening| *opening > now)
    }

    /// A short human form, e.g. `Sat,Sun 02:00-06:00`.
    pub fn describe(&self) -> String {
        let days: Vec<String> = self.days.iter().map(ToString::to_string).collect();
        let days = if self.days.len() == 7 {
            "daily".to_string()
        } else {
            days.join(",")
        };
        format!(
            "{days} {}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

/// Parses `HH:MM` (24-hour).
pub(crate) fn parse_time(text: &str) -> Result<NaiveTime, String> {
    let ok = text.len() == 5 && text.as_bytes()[2] == b':';
    ok.then(|| NaiveTime::parse_from_str(text, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| format!("'{text}' is not a time of day (use HH:MM, 24-hour)"))
}

/// Parses `Mon`, `monday`, `TUE`… .
pub(crate) fn parse_day(text: &str) -> Result<Weekday, String> {
    let lower = text.to_ascii_lowercase();
    let day = match lower.as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tues" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thurs" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => {
            return Err(format!(
                "'{text}' is not a day (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)"
            ));
        }
    };
    Ok(day)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn at(day: u32, hh: u32, mm: u32) -> NaiveDateTime {
        // 2026-11-28 is a Saturday.
        NaiveDate::from_ymd_opt(2026, 11, day)
            .unwrap()
            .and_hms_opt(hh, mm, 0)
            .unwrap()
    }

    fn window(start: &str, end: &str, days: &[Weekday]) -> MaintenanceWindow {
        MaintenanceWindow {
            start: parse_time(start).unwrap(),
            end: parse_time(end).unwrap(),
            days: days.to_vec(),
        }
    }

    #[test]
    fn same_day_window() {
        let w = window("02:00", "06:00", &[Weekday::Sat, Weekday::Sun]);
        assert!(w.contains(at(28, 2, 0)));
        assert!(w.contains(at(29, 5, 59)));
        assert!(!w.contains(at(28, 6, 0)));
        assert!(!w.contains(at(27, 3, 0)), "Friday is not in the window");
    }

    #[test]
    fn window_crossing_midnight_belongs_to_the_day_it_opens() {
        let w = window("22:00", "02:00", &[Weekday::Sat]);
        assert!(w.contains(at(28, 23, 0)));
        assert!(
            w.contains(at(29, 1, 30)),
            "Sunday early morning continues Saturday's window"
        );
        assert!(!w.contains(at(29, 23, 0)), "Sunday night is not a window");
        assert!(
            !w.contains(at(28, 1, 30)),
            "Saturday early morning belongs to Friday"
        );
    }

    #[test]
    fn knows_when_the_current_window_closes_and_the_next_one_opens() {
        let w = window("02:00", "06:00", &[Weekday::Sat, Weekday::Sun]);
        assert_eq!(w.closes_at(at(28, 3, 0)), Some(at(28, 6, 0)));
        assert_eq!(w.closes_at(at(28, 7, 0)), None);
        assert_eq!(w.next_opening(at(28, 3, 0)), Some(at(29, 2, 0)));
        assert_eq!(w.next_opening(at(27, 12, 0)), Some(at(28, 2, 0)));
        let night = window("22:00", "02:00", &[Weekday::Sat]);
        assert_eq!(night.closes_at(at(28, 23, 0)), Some(at(29, 2, 0)));
        assert_eq!(night.closes_at(at(29, 1, 0)), Some(at(29, 2, 0)));
        // Saturday 23:00 (2026-11-28) → next Saturday 22:00 (2026-12-05).
        let next = NaiveDate::from_ymd_opt(2026, 12, 5)
            .unwrap()
            .and_hms_opt(22, 0, 0)
            .unwrap();
        assert_eq!(night.next_opening(at(28, 23, 0)), Some(next));
    }

    #[test]
    fn parses_times_and_days_strictly() {
        assert!(parse_time("02:00").is_ok());
        for bad in ["2:00", "24:00", "12:60", "noon", "02:00:00"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_day("saturday").unwrap(), Weekday::Sat);
        assert!(parse_day("Caturday").is_err());
    }
}
