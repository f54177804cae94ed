//! When things may happen: maintenance windows (in local time) and the periodic refresh timer
//! with jitter so a large fleet is never queried all at once. Pure functions; the supervisor owns
//! the timers.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use chrono::{Local, NaiveDateTime};

use crate::config::{HostConfig, MaintenanceWindow};

/// Whether a host may be disrupted (updated in a wave, rebooted) at `now` (local wall-clock time).
/// `Err` carries the reason, for `WaitingReboot` and for skipped wave hosts.
pub(super) fn window_allows(
    window: Option<&MaintenanceWindow>,
    now: NaiveDateTime,
) -> Result<(), String> {
    match window {
        Some(w) if !w.contains(now) => {
            Err(format!("outside maintenance window '{}'", w.describe()))
        }
        _ => Ok(()),
    }
}

/// [`window_allows`] for a host, right now.
pub(super) fn host_window_allows(host: &HostConfig) -> Result<(), String> {
    window_allows(
        host.policy.maintenance_window.as_ref(),
        Local::now().naive_local(),
    )
}

/// Whether a reboot that is required may happen on its own (after an update or in a wave).
pub(super) fn reboot_allowed(host: &HostConfig, now: NaiveDateTime) -> Result<(), String> {
    if !host.policy.auto_reboot {
        return Err("auto_reboot is off for this host; reboot it when convenient".to_string());
    }
    window_allows(host.policy.maintenance_window.as_ref(), now)
}

/// How long a fleet that has never been seen (or not for a whole interval) takes to be queried
/// at start: hosts are spread over this window so a large fleet is not hit in one instant, and
/// the operator still sees inventories within seconds of opening the console.
pub(super) const STARTUP_SPREAD: Duration = Duration::from_secs(5);

/// The delay before a host's first periodic refresh.
///
/// A host whose last refresh is unknown or older than `interval` is due now: it gets a slot in
/// the first [`STARTUP_SPREAD`]. Otherwise it waits out the rest of its interval. Either way its
/// offset is a fixed fraction derived from the host's name, so hosts stay spread out and keep
/// their slot across restarts.
pub(super) fn first_refresh_delay(
    host: &str,
    interval: Duration,
    since_last: Option<Duration>,
) -> Duration {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    host.hash(&mut hasher);
    let fraction = (hasher.finish() % 10_000) as f64 / 10_000.0;
    match since_last {
        Some(age) if age < interval => (interval - age).max(STARTUP_SPREAD.mul_f64(fraction)),
        _ => STARTUP_SPREAD.min(interval).mul_f64(fraction),
    }
}

/// The delay until the next refresh: `interval` ± 10%, so slots drift apart instead of lining up
/// again after hosts were refreshed together (after a wave, say). `random` is in `[0, 1)`.
pub(super) fn next_refresh_delay(interval: Duration, random: f64) -> Duration {
    interval.mul_f64(0.9 + 0.2 * random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Weekday};

    use super::*;
    use crate::config::Config;

    fn saturday(hh: u32, mm: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 28)
            .unwrap()
            .and_hms_opt(hh, mm, 0)
            .unwrap()
    }

    fn window() -> MaintenanceWindow {
        MaintenanceWindow {
            start: chrono::NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            end: chrono::NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
            days: vec![Weekday::Sat],
        }
    }

    #[test]
    fn window_check_gives_a_reason_outside_and_allows_inside() {
        let w = window();
        assert!(window_allows(Some(&w), saturday(23, 0)).is_ok());
        let err = window_allows(Some(&w), saturday(12, 0)).unwrap_err();
        assert_eq!(err, "outside maintenance window 'Sat 22:00-02:00'");
        assert!(window_allows(None, saturday(12, 0)).is_ok());
    }

    #[test]
    fn reboot_needs_auto_reboot_and_the_window() {
        let config = Config::from_str(
            "t.toml",
            "[[host]]\nname='a'\naddr='10.0.0.1'\n[host.policy]\nauto_reboot=true\n\
             maintenance_window={start='22:00',end='02:00',days=['Sat']}\n\
             [[host]]\nname='b'\naddr='10.0.0.2'\n[host.policy]\nauto_reboot=false\n",
        )
        .unwrap();
        let a = config.host("a").unwrap();
        let b = config.host("b").unwrap();
        assert!(reboot_allowed(a, saturday(23, 30)).is_ok());
        assert!(
            reboot_allowed(a, saturday(10, 0))
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            reboot_allowed(b, saturday(23, 30))
                .unwrap_err()
                .contains("auto_reboot")
        );
    }

    #[test]
    fn stale_or_unknown_hosts_are_refreshed_at_start_spread_over_a_few_seconds() {
        let interval = Duration::from_secs(3600);
        let delays: Vec<Duration> = (0..1000)
            .map(|i| first_refresh_delay(&format!("host{i}"), interval, None))
            .collect();
        assert!(delays.iter().all(|d| *d < STARTUP_SPREAD));
        // Ten buckets of half a second each get roughly a tenth of the hosts.
        let mut buckets = [0usize; 10];
        for d in &delays {
            buckets[(d.as_millis() / 500) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (50..=150).contains(&n)),
            "{buckets:?}"
        );
        assert_eq!(
            first_refresh_delay("web1", interval, None),
            first_refresh_delay("web1", interval, None)
        );
        let stale = Some(Duration::from_secs(7200));
        assert!(first_refresh_delay("web1", interval, stale) < STARTUP_SPREAD);
    }

    #[test]
    fn recently_refreshed_hosts_wait_out_their_interval() {
        let interval = Duration::from_secs(3600);
        let ten_minutes_ago = Some(Duration::from_secs(600));
        assert_eq!(
            first_refresh_delay("web1", interval, ten_minutes_ago),
            Duration::from_secs(3000)
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let interval = Duration::from_secs(100);
        assert_eq!(next_refresh_delay(interval, 0.0), Duration::from_secs(90));
        assert_eq!(next_refresh_delay(interval, 0.5), Duration::from_secs(100));
        assert!(next_refresh_delay(interval, 0.999) <= Duration::from_secs(110));
    }
}
