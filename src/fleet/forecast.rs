//! How long a host's update will take, from its own history, and whether that fits its
//! maintenance window. Pure: the wave plan (`crate::plan`) and the update step ask the same two
//! functions, so what the plan says would be deferred is what the wave defers.

use std::time::Duration;

use chrono::NaiveDateTime;
use serde::Serialize;

use super::history::HostHistory;
use crate::config::{HostConfig, MaintenanceWindow, format_duration};
use crate::pkg::UpgradePlan;

/// A predicted update: the package upgrade, then the reboot when one is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Prediction {
    #[serde(with = "secs")]
    pub upgrade: Duration,
    /// `None`: no reboot expected.
    #[serde(with = "secs_opt")]
    pub reboot: Option<Duration>,
    #[serde(with = "secs")]
    pub total: Duration,
}

/// Largest factor a plan's size may scale the usual upgrade time by (and its inverse the
/// smallest): a plan far bigger than any measured one is extrapolation, best kept modest.
const MOST_SCALE: f64 = 4.0;

/// Predicts `plan` on a host with `history`; `reboot_required` when the host already waits for
/// one. `None` when the history cannot say (first run: no upgrade measured yet, or a reboot
/// expected and none measured) — shown as "unknown", never guessed.
///
/// The upgrade part is the median of the recent upgrades (one slow run does not skew it),
/// scaled by the planned package count against the median count. Only half of it scales:
/// about half of an apt or dnf run is per-run cost (reading the database, the lists, triggers
/// such as man-db and initramfs), the rest grows with the packages unpacked; so a plan twice
/// the usual size is predicted at 1.5× the usual time. The reboot part is the median reboot.
pub fn predict(
    history: &HostHistory,
    plan: &UpgradePlan,
    reboot_required: bool,
) -> Option<Prediction> {
    let planned = plan.upgrades.len() + plan.installs.len();
    let upgrade = if planned == 0 {
        Duration::ZERO
    } else {
        let usual = median(history.upgrades.iter().map(|u| u.took))?;
        let usual_count = median(history.upgrades.iter().map(|u| u.packages.max(1)))?;
        let ratio = (planned as f64 / usual_count as f64).clamp(1.0 / MOST_SCALE, MOST_SCALE);
        usual.mul_f64((1.0 + ratio) / 2.0)
    };
    let reboot = match reboot_required || !plan.reboot_packages.is_empty() {
        true => Some(median(history.reboots.iter().map(|r| r.took))?),
        false => None,
    };
    Some(Prediction {
        upgrade,
        reboot,
        total: upgrade + reboot.unwrap_or_default(),
    })
}

/// What one host's update is predicted to take and how that fits its window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forecast {
    pub prediction: Option<Prediction>,
    pub fit: WindowFit,
}

/// The prediction for `host` updating to `plan` from `start` (local time), and how it fits the
/// host's window: the one decision the plan flags and the wave defers by. A reboot counts only
/// when the host reboots on its own (`auto_reboot`); otherwise it waits for the operator and
/// takes no window time.
pub fn forecast(
    host: &HostConfig,
    history: &HostHistory,
    plan: &UpgradePlan,
    reboot_required: bool,
    start: NaiveDateTime,
) -> Forecast {
    let prediction = match host.policy.auto_reboot {
        true => predict(history, plan, reboot_required),
        false => {
            let no_reboot = UpgradePlan {
                reboot_packages: Vec::new(),
                ..plan.clone()
            };
            predict(history, &no_reboot, false)
        }
    };
    let fit = window_fit(
        host.policy.maintenance_window.as_ref(),
        start,
        prediction.map(|p| p.total),
    );
    Forecast { prediction, fit }
}

/// The middle value (the lower of the two middles for an even count); `None` when empty.
fn median<T: Ord + Copy>(values: impl Iterator<Item = T>) -> Option<T> {
    let mut values: Vec<T> = values.collect();
    values.sort_unstable();
    values.get(values.len().saturating_sub(1) / 2).copied()
}

/// How an update starting at some time fits the host's maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "fit", rename_all = "snake_case")]
pub enum WindowFit {
    /// No window, no prediction (not deferred on a guess), or it ends before the window does.
    Fits,
    /// The window is closed then: the wave skips the host.
    Outside { window: String },
    /// The predicted end is past the window's end.
    Overruns(Overrun),
}

/// An update predicted to end after its window closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overrun {
    /// The window as configured: `Sat 02:00-06:00`.
    pub window: String,
    #[serde(with = "secs")]
    pub predicted: Duration,
    /// How much of the window is left at the start.
    #[serde(with = "secs")]
    pub left: Duration,
    /// How far past the window's end it would run.
    #[serde(with = "secs")]
    pub by: Duration,
    /// When the window opens next (local time).
    pub next_opening: Option<NaiveDateTime>,
}

/// Whether an update predicted to take `predicted` fits `window` when it starts at `start`
/// (local wall-clock time). The one decision behind the plan's flags and the wave's deferral.
pub fn window_fit(
    window: Option<&MaintenanceWindow>,
    start: NaiveDateTime,
    predicted: Option<Duration>,
) -> WindowFit {
    let Some(window) = window else {
        return WindowFit::Fits;
    };
    let Some(closes) = window.closes_at(start) else {
        return WindowFit::Outside {
            window: window.describe(),
        };
    };
    let Some(predicted) = predicted else {
        return WindowFit::Fits;
    };
    let left = (closes - start).to_std().unwrap_or_default();
    if predicted <= left {
        return WindowFit::Fits;
    }
    WindowFit::Overruns(Overrun {
        window: window.describe(),
        predicted,
        left,
        by: predicted - left,
        next_opening: window.next_opening(closes),
    })
}

impl Overrun {
    /// "would overrun 'Sat 02:00-06:00' by 25m".
    pub fn flag(&self) -> String {
        format!(
            "would overrun '{}' by {}",
            self.window,
            format_duration(round_up_minute(self.by))
        )
    }

    /// "deferred to its next window (Sun 02:00): predicted 40m, 25m left of 'Sat 02:00-06:00'".
    pub fn deferral(&self) -> String {
        let next = match self.next_opening {
            Some(at) => at.format("%a %H:%M").to_string(),
            None => "unknown".to_string(),
        };
        format!(
            "deferred to its next window ({next}): predicted {}, {} left of '{}'",
            format_duration(round_up_minute(self.predicted)),
            format_duration(round_down_minute(self.left)),
            self.window
        )
    }
}

/// Predictions are not to the second: whole minutes above one, seconds below.
fn round_up_minute(d: Duration) -> Duration {
    if d < Duration::from_secs(60) {
        return Duration::from_secs(d.as_secs_f64().ceil() as u64);
    }
    Duration::from_secs(d.as_secs().div_ceil(60) * 60)
}

fn round_down_minute(d: Duration) -> Duration {
    if d < Duration::from_secs(60) {
        return Duration::from_secs(d.as_secs());
    }
    Duration::from_secs(d.as_secs() / 60 * 60)
}

/// Durations in JSON as whole seconds.
pub(crate) mod secs {
    use std::time::Duration;

    pub(crate) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs_f64().round() as u64)
    }
}

pub(crate) mod secs_opt {
    use std::time::Duration;

    pub(crate) fn serialize<S: serde::Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_secs_f64().round() as u64)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveTime, Utc, Weekday};

    use super::*;
    use crate::fleet::history::Measurement;
    use crate::pkg::PendingPackage;

    fn mins(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    fn history(upgrades: &[(u64, usize)], reboots: &[u64]) -> HostHistory {
        let mut h = HostHistory::default();
        for &(m, packages) in upgrades {
            h.record(&Measurement::Upgrade {
                at: Utc::now(),
                took: mins(m),
                packages,
            });
        }
        for &m in reboots {
            h.record(&Measurement::Reboot {
                at: Utc::now(),
                took: mins(m),
            });
        }
        h
    }

    fn plan(packages: usize, reboot: &[&str]) -> UpgradePlan {
        UpgradePlan {
            upgrades: (0..packages)
                .map(|i| PendingPackage {
                    name: format!("p{i}"),
                    from: "1".into(),
                    to: "2".into(),
                    security: false,
                })
                .collect(),
            reboot_packages: reboot.iter().map(|s| s.to_string()).collect(),
            ..UpgradePlan::default()
        }
    }

    #[test]
    fn first_run_is_unknown() {
        assert_eq!(predict(&HostHistory::default(), &plan(3, &[]), false), None);
        // Upgrades measured, but a reboot expected and never measured: still unknown.
        let h = history(&[(10, 4)], &[]);
        assert_eq!(predict(&h, &plan(4, &["linux"]), false), None);
    }

    #[test]
    fn median_of_recent_upgrades_plus_median_reboot_when_one_is_expected() {
        // One slow run (60m) does not skew the median (10m).
        let h = history(&[(9, 4), (10, 4), (60, 4), (10, 4), (11, 4)], &[2, 3, 30]);
        let quiet = predict(&h, &plan(4, &[]), false).unwrap();
        assert_eq!(quiet.upgrade, mins(10));
        assert_eq!(quiet.reboot, None);
        assert_eq!(quiet.total, mins(10));
        let kernel = predict(&h, &plan(4, &["linux-image"]), false).unwrap();
        assert_eq!(kernel.reboot, Some(mins(3)));
        assert_eq!(kernel.total, mins(13));
        let waiting = predict(&h, &plan(4, &[]), true).unwrap();
        assert_eq!(waiting.total, mins(13), "a reboot already required counts");
    }

    #[test]
    fn half_the_upgrade_scales_with_the_package_count_within_bounds() {
        let h = history(&[(10, 4)], &[]);
        assert_eq!(predict(&h, &plan(8, &[]), false).unwrap().upgrade, mins(15));
        assert_eq!(
            predict(&h, &plan(1, &[]), false).unwrap().upgrade,
            mins(10).mul_f64(0.625)
        );
        // 400 packages against a usual 4: capped at 4×, so 2.5× the usual time.
        assert_eq!(
            predict(&h, &plan(400, &[]), false).unwrap().upgrade,
            mins(25)
        );
        // Nothing to upgrade: no upgrade time, whatever the history.
        assert_eq!(
            predict(&h, &plan(0, &[]), false).unwrap().total,
            Duration::ZERO
        );
    }

    fn saturday(hh: u32, mm: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 28)
            .unwrap()
            .and_hms_opt(hh, mm, 0)
            .unwrap()
    }

    fn weekend() -> MaintenanceWindow {
        MaintenanceWindow {
            start: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
            days: vec![Weekday::Sat, Weekday::Sun],
        }
    }

    #[test]
    fn an_update_that_would_end_after_the_window_overruns_it() {
        let w = weekend();
        let fit = window_fit(Some(&w), saturday(5, 35), Some(mins(40)));
        let WindowFit::Overruns(overrun) = fit else {
            panic!("{fit:?}");
        };
        assert_eq!(overrun.by, mins(15));
        assert_eq!(overrun.flag(), "would overrun 'Sat,Sun 02:00-06:00' by 15m");
        assert_eq!(
            overrun.deferral(),
            "deferred to its next window (Sun 02:00): predicted 40m, 25m left of \
             'Sat,Sun 02:00-06:00'"
        );
        assert_eq!(
            window_fit(Some(&w), saturday(5, 0), Some(mins(40))),
            WindowFit::Fits
        );
        assert_eq!(
            window_fit(Some(&w), saturday(5, 35), None),
            WindowFit::Fits,
            "no prediction: not deferred"
        );
        assert_eq!(
            window_fit(None, saturday(5, 35), Some(mins(400))),
            WindowFit::Fits
        );
        assert!(matches!(
            window_fit(Some(&w), saturday(7, 0), Some(mins(1))),
            WindowFit::Outside { .. }
        ));
    }
}
