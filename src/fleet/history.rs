//! How long this host's real work took: the last few package upgrades and reboots, measured by
//! the step that did them and folded into the host model from [`Event::Measured`]. The
//! predictor ([`super::forecast`]) reads it; the snapshot keeps it, so a restarted tendhost
//! still knows. Bounded: only the recent past says how the host behaves now.
//!
//! [`Event::Measured`]: super::Event::Measured

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many upgrades and how many reboots are kept.
pub const HISTORY_KEEP: usize = 10;

/// One piece of measured work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Measurement {
    /// A real package upgrade: the Packages stage from start to done.
    Upgrade {
        at: DateTime<Utc>,
        took: Duration,
        /// Packages the plan upgraded or installed.
        packages: usize,
    },
    /// A reboot: issued → back with a new boot id and verified.
    Reboot { at: DateTime<Utc>, took: Duration },
}

/// A finished upgrade, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeRecord {
    pub at: DateTime<Utc>,
    pub took: Duration,
    pub packages: usize,
}

/// A finished reboot, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebootRecord {
    pub at: DateTime<Utc>,
    pub took: Duration,
}

/// The host's recent upgrades and reboots, oldest first, at most [`HISTORY_KEEP`] of each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostHistory {
    #[serde(default)]
    pub upgrades: VecDeque<UpgradeRecord>,
    #[serde(default)]
    pub reboots: VecDeque<RebootRecord>,
}

impl HostHistory {
    /// Keeps `measurement`, dropping the oldest of its kind past [`HISTORY_KEEP`].
    pub fn record(&mut self, measurement: &Measurement) {
        match measurement {
            Measurement::Upgrade { at, took, packages } => {
                push_bounded(
                    &mut self.upgrades,
                    UpgradeRecord {
                        at: *at,
                        took: *took,
                        packages: *packages,
                    },
                );
            }
            Measurement::Reboot { at, took } => {
                push_bounded(
                    &mut self.reboots,
                    RebootRecord {
                        at: *at,
                        took: *took,
                    },
                );
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.upgrades.is_empty() && self.reboots.is_empty()
    }
}

fn push_bounded<T>(records: &mut VecDeque<T>, record: T) {
    records.push_back(record);
    while records.len() > HISTORY_KEEP {
        records.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_ten_of_each_kind() {
        let mut history = HostHistory::default();
        for i in 0..15u64 {
            history.record(&Measurement::Upgrade {
                at: Utc::now(),
                took: Duration::from_secs(i),
                packages: 1,
            });
        }
        history.record(&Measurement::Reboot {
            at: Utc::now(),
            took: Duration::from_secs(40),
        });
        assert_eq!(history.upgrades.len(), HISTORY_KEEP);
        assert_eq!(
            history.upgrades[0].took,
            Duration::from_secs(5),
            "oldest dropped"
        );
        assert_eq!(history.reboots.len(), 1);
    }
}
