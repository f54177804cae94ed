//! Human durations in config and on the command line: `90`, `90s`, `5m`, `1h30m`, `2d`.
//!
//! Every duration tendhost reads is bounded by [`MAX_DURATION`], so adding one to a clock
//! (`Instant + timeout`, a deadline, a doubled backoff) can never overflow and panic at run
//! time: a value too long is refused where it was written.

use std::time::Duration;

/// The longest duration accepted anywhere: 100 years (36500d). Far beyond any sensible timeout
/// or interval, and far below what `Instant` or chrono can add without overflowing.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(36_500 * 86_400);

/// Parses a duration of at most [`MAX_DURATION`]; a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let too_long = || {
        format!(
            "'{text}' is too long (at most {})",
            format_duration(MAX_DURATION)
        )
    };
    let duration = parse_unbounded(text).ok_or_else(too_long)??;
    if duration > MAX_DURATION {
        return Err(too_long());
    }
    Ok(duration)
}

/// The duration `text` says; `None` when it does not fit in a `u64` of seconds.
fn parse_unbounded(text: &str) -> Option<Result<Duration, String>> {
    if text.is_empty() {
        return Some(Err("an empty duration".into()));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .ok()
            .map(|secs| Ok(Duration::from_secs(secs)));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Some(Err(format!(
                    "'{text}' is not a duration (use e.g. 90s, 5m, 1h30m, 2d)"
                )));
            }
        };
        if number.is_empty() {
            return Some(Err(format!(
                "'{text}' is not a duration (a unit needs a number before it)"
            )));
        }
        let value: u64 = number.parse().ok()?;
        total = total.checked_add(value.checked_mul(unit)?)?;
        number.clear();
    }
    if !number.is_empty() {
        return Some(Err(format!("'{text}' ends without a unit (s, m, h or d)")));
    }
    Some(Ok(Duration::from_secs(total)))
}

/// The inverse of [`parse_duration`], compact: `1h30m`, `45s`, `0s`.
pub fn format_duration(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_seconds_and_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "m", "5x", "1h30", "-3s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn refuses_what_no_clock_can_add() {
        assert_eq!(parse_duration("36500d").unwrap(), MAX_DURATION);
        for long in [
            "36500d1s",
            "3153600001",
            "99999999999999999999",
            "99999999999999999999s",
            "200000000000000000d",
            "1000000000000d",
        ] {
            assert_eq!(
                parse_duration(long).unwrap_err(),
                format!("'{long}' is too long (at most 36500d)"),
                "{long}"
            );
        }
        // The limit is far below what a clock can take.
        assert!(
            std::time::Instant::now()
                .checked_add(MAX_DURATION * 2)
                .is_some()
        );
        assert!(chrono::Duration::from_std(MAX_DURATION * 2).is_ok());
    }

    #[test]
    fn formats_round_trip() {
        for text in ["0s", "45s", "1h30m", "2d", "1d1h1m1s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
