//! The console's one guard between what hosts send and the operator's terminal.
//!
//! Every string a host can influence (os-release names, package names and versions, error
//! text, output lines, compose services and images, refusal and skip reasons) reaches the screen
//! through [`FleetModel`](super::model::FleetModel), which folds engine events and restored
//! snapshots into rows. The model passes each event and each restored host through here first,
//! so the views only ever see clean text: escape sequences (CSI, OSC such as a window title,
//! DCS…) are removed whole by anstream's parser, then any control character left is dropped
//! (tab and line breaks become a space, so words stay apart on one screen line). ratatui would
//! drop lone control characters itself, but not the printable rest of a sequence, and the
//! console must not depend on a widget library for its safety.
//!
//! Payload types are cleaned through their serde form, so a field added to `Inventory` or
//! `HostState` later is covered without touching this file; the event and model matches below
//! are exhaustive, so a new event or model field does not compile until it is considered here.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::engine::bus::{Event, Outcome, StageStatus, WaveProgress};
use crate::fleet::{HostModel, Plan};

/// A payload whose serde form did not read back: it is not shown rather than shown raw.
#[derive(Debug, thiserror::Error)]
#[error("host data could not be cleaned for the screen")]
pub(crate) struct Unclean(#[source] serde_json::Error);

/// `text` without escape sequences or control characters (tab and line breaks become spaces).
pub(crate) fn text(text: &str) -> Cow<'_, str> {
    if !text.contains(char::is_control) {
        return Cow::Borrowed(text);
    }
    let stripped = anstream::adapter::strip_str(text).to_string();
    Cow::Owned(
        stripped
            .chars()
            .filter_map(|c| match c {
                '\t' | '\n' | '\r' => Some(' '),
                c if c.is_control() => None,
                c => Some(c),
            })
            .collect(),
    )
}

/// `event` with every host-sent string cleaned; borrowed when nothing needed it.
pub(crate) fn event(event: &Event) -> Result<Cow<'_, Event>, Unclean> {
    let changed = match event {
        Event::StateChanged {
            host,
            from,
            to,
            state,
        } => cleaned(&**state)?.map(|state| Event::StateChanged {
            host: host.clone(),
            from: *from,
            to: *to,
            state: Arc::new(state),
        }),
        Event::Output { host, stream, line } => arc(line).map(|line| Event::Output {
            host: host.clone(),
            stream: *stream,
            line,
        }),
        Event::InventoryRefreshed { host, inventory } => {
            cleaned(&**inventory)?.map(|inventory| Event::InventoryRefreshed {
                host: host.clone(),
                inventory: Arc::new(inventory),
            })
        }
        Event::PendingRefreshed {
            host,
            packages,
            reboot,
        } => match (cleaned(packages)?, cleaned(reboot)?) {
            (None, None) => None,
            (new_packages, new_reboot) => Some(Event::PendingRefreshed {
                host: host.clone(),
                packages: new_packages.unwrap_or_else(|| packages.clone()),
                reboot: new_reboot.unwrap_or_else(|| reboot.clone()),
            }),
        },
        Event::Planned {
            host,
            plan,
            dry_run,
            scope,
        } => cleaned(&**plan)?.map(|plan| Event::Planned {
            host: host.clone(),
            plan: Arc::new(plan),
            dry_run: *dry_run,
            // tendhost's own words (the operator's package names, checked as names).
            scope: scope.clone(),
        }),
        Event::Surveyed { host, mark } => cleaned(&**mark)?.map(|mark| Event::Surveyed {
            host: host.clone(),
            mark: Arc::new(mark),
        }),
        Event::Stacks {
            host,
            stacks,
            updated,
        } => cleaned(stacks)?.map(|stacks| Event::Stacks {
            host: host.clone(),
            stacks,
            updated: *updated,
        }),
        Event::RollbackPlanned {
            host,
            steps,
            dry_run,
        } => cleaned(steps)?.map(|steps| Event::RollbackPlanned {
            host: host.clone(),
            steps,
            dry_run: *dry_run,
        }),
        Event::Held { host, held } => cleaned(held)?.map(|held| Event::Held {
            host: host.clone(),
            held,
        }),
        Event::RollingBack { host, undone, at } => {
            cleaned(undone)?.map(|undone| Event::RollingBack {
                host: host.clone(),
                undone,
                at: *at,
            })
        }
        Event::Stage {
            host,
            stage,
            status,
        } => stage_status(status).map(|status| Event::Stage {
            host: host.clone(),
            stage: *stage,
            status,
        }),
        Event::Refused { host, job, reason } => arc(reason).map(|reason| Event::Refused {
            host: host.clone(),
            job: *job,
            reason,
        }),
        // A job's label and id are tendhost's own words (the id checked when read back).
        // The console reads the saved wave from the engine, sanitized where it shows it.
        Event::Job { .. } | Event::WaveSaved(_) => None,
        // Durations and times tendhost measured itself.
        Event::Measured { .. } => None,
        // Check details quote what the host printed (unit names, lock holders, dpkg's words).
        Event::Checked { host, report } => cleaned(&**report)?.map(|report| Event::Checked {
            host: host.clone(),
            report: Arc::new(report),
        }),
        Event::Wave(progress) => wave(progress).map(Event::Wave),
        Event::WaveHostFinished {
            wave_id,
            host,
            outcome: result,
        } => outcome(result).map(|outcome| Event::WaveHostFinished {
            wave_id: *wave_id,
            host: host.clone(),
            outcome,
        }),
    };
    Ok(changed.map_or(Cow::Borrowed(event), Cow::Owned))
}

/// A restored host (yesterday's snapshot, written from what hosts sent) with its strings
/// cleaned.
pub(crate) fn model(model: &HostModel) -> Result<HostModel, Unclean> {
    let HostModel {
        name,
        state,
        inventory,
        pending,
        reboot,
        plan,
        stacks,
        compose_changes,
        compose_held,
        rollback,
        last_refresh,
        refused,
        progress,
        job,
        survey,
        history,
        health,
    } = model;
    Ok(HostModel {
        name: name.clone(),
        state: Arc::new(whole(&**state)?),
        inventory: match inventory {
            Some(inventory) => Some(Arc::new(whole(&**inventory)?)),
            None => None,
        },
        pending: pending.as_ref().map(whole).transpose()?,
        reboot: whole(reboot)?,
        plan: match plan {
            Some(plan) => Some(Plan {
                plan: Arc::new(whole(&*plan.plan)?),
                dry_run: plan.dry_run,
                scope: plan.scope.clone(),
            }),
            None => None,
        },
        stacks: whole(stacks)?,
        compose_changes: whole(compose_changes)?,
        compose_held: whole(compose_held)?,
        rollback: whole(rollback)?,
        last_refresh: *last_refresh,
        refused: refused
            .as_ref()
            .map(|(job, reason)| (*job, arc(reason).unwrap_or_else(|| reason.clone()))),
        progress: *progress,
        job: job.clone(),
        survey: match survey {
            Some(mark) => Some(Arc::new(whole(&**mark)?)),
            None => None,
        },
        history: history.clone(),
        health: health
            .iter()
            .map(|report| whole(&**report).map(Arc::new))
            .collect::<Result<_, _>>()?,
    })
}

/// `value` cleaned, or a copy of it when nothing needed cleaning.
fn whole<T: Clone + Serialize + DeserializeOwned>(value: &T) -> Result<T, Unclean> {
    Ok(cleaned(value)?.unwrap_or_else(|| value.clone()))
}

/// `value` with every string in its serde form cleaned; `None` when none needed it.
fn cleaned<T: Serialize + DeserializeOwned>(value: &T) -> Result<Option<T>, Unclean> {
    let mut tree = serde_json::to_value(value).map_err(Unclean)?;
    if !clean_tree(&mut tree) {
        return Ok(None);
    }
    serde_json::from_value(tree).map(Some).map_err(Unclean)
}

/// Cleans every string (and map key) in `tree`; says whether any changed.
fn clean_tree(tree: &mut Value) -> bool {
    match tree {
        Value::String(s) => match text(s) {
            Cow::Owned(clean) => {
                *s = clean;
                true
            }
            Cow::Borrowed(_) => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |any, v| clean_tree(v) | any),
        Value::Object(map) => {
            let dirty_keys = map.keys().any(|k| k.contains(char::is_control));
            if dirty_keys {
                let entries = std::mem::take(map);
                *map = entries
                    .into_iter()
                    .map(|(k, v)| (text(&k).into_owned(), v))
                    .collect();
            }
            map.values_mut()
                .fold(dirty_keys, |any, v| clean_tree(v) | any)
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A cleaned copy of `s`, or `None` when it was clean.
fn arc(s: &Arc<str>) -> Option<Arc<str>> {
    match text(s) {
        Cow::Owned(clean) => Some(clean.into()),
        Cow::Borrowed(_) => None,
    }
}

fn owned(s: &str) -> Option<String> {
    match text(s) {
        Cow::Owned(clean) => Some(clean),
        Cow::Borrowed(_) => None,
    }
}

fn stage_status(status: &StageStatus) -> Option<StageStatus> {
    match status {
        StageStatus::Started | StageStatus::Done => None,
        StageStatus::Skipped { reason } => {
            arc(reason).map(|reason| StageStatus::Skipped { reason })
        }
        StageStatus::Failed { error } => arc(error).map(|error| StageStatus::Failed { error }),
    }
}

fn outcome(outcome: &Outcome) -> Option<Outcome> {
    match outcome {
        Outcome::Succeeded => None,
        Outcome::Refused { reason } => owned(reason).map(|reason| Outcome::Refused { reason }),
        Outcome::Skipped { reason } => owned(reason).map(|reason| Outcome::Skipped { reason }),
        Outcome::Failed { error } => owned(error).map(|error| Outcome::Failed { error }),
    }
}

/// A wave's own words are tendhost's, but its halt and skip reasons quote host errors.
fn wave(progress: &WaveProgress) -> Option<WaveProgress> {
    let reason = progress.reason.as_deref().and_then(owned);
    let skips_dirty = progress
        .skipped_hosts
        .iter()
        .any(|s| s.reason.contains(char::is_control));
    let failures_dirty = progress
        .failed_hosts
        .iter()
        .any(|f| f.error.contains(char::is_control));
    if reason.is_none() && !skips_dirty && !failures_dirty {
        return None;
    }
    let mut clean = progress.clone();
    if failures_dirty {
        clean.failed_hosts = progress
            .failed_hosts
            .iter()
            .map(|f| {
                let mut f = f.clone();
                f.error = arc(&f.error).unwrap_or(f.error);
                f
            })
            .collect();
    }
    if reason.is_some() {
        clean.reason = reason;
    }
    if skips_dirty {
        clean.skipped_hosts = progress
            .skipped_hosts
            .iter()
            .map(|s| {
                let mut s = s.clone();
                s.reason = arc(&s.reason).unwrap_or(s.reason);
                s
            })
            .collect();
    }
    Some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostId;
    use crate::fleet::{FailedInfo, HostState, Phase, StateKind};
    use crate::inventory::{Container, Inventory, InventorySource, OsInfo};
    use crate::pkg::PendingPackage;
    use crate::remote::Stream;

    /// The title-setting, screen-clearing name of issue 10, with a C1 CSI and a DEL for luck.
    const HOSTILE: &str = "Debian\x1b]0;pwned\x07\x1b[2J 12\u{9b}31m\x7f";

    fn assert_clean(text: &str) {
        assert!(
            !text.contains(|c: char| c.is_control()),
            "a control character is left in {text:?}"
        );
        assert!(
            !text.contains("pwned"),
            "an OSC payload is left in {text:?}"
        );
    }

    #[test]
    fn escape_sequences_go_whole_and_controls_go() {
        let clean = text(HOSTILE);
        assert_clean(&clean);
        assert!(clean.starts_with("Debian 12"), "{clean:?}");
        assert_eq!(text("a\tb\r\nc\x07"), "a b  c");
        assert_eq!(text("\x1b[1;31mE:\x1b[0m broken"), "E: broken");
        assert!(matches!(text("plain, ünïcode"), Cow::Borrowed(_)));
    }

    fn host() -> HostId {
        HostId::from("web-1")
    }

    #[test]
    fn every_string_of_an_inventory_is_cleaned() {
        let inventory = Inventory {
            os: OsInfo {
                id: "debian".into(),
                pretty_name: HOSTILE.into(),
                ..OsInfo::default()
            },
            kernel: format!("6.1{HOSTILE}"),
            hostname: "web-1".into(),
            uptime_secs: 1,
            installed_packages: 2,
            containers: vec![Container {
                id: "c1".into(),
                name: format!("app{HOSTILE}"),
                image: format!("reg/app{HOSTILE}"),
                state: "running".into(),
            }],
            images: Vec::new(),
            source: InventorySource::Probe,
            collected_at: chrono::Utc::now(),
            hypervisor: None,
        };
        let event = Event::InventoryRefreshed {
            host: host(),
            inventory: Arc::new(inventory),
        };
        let Event::InventoryRefreshed { inventory, .. } = &*super::event(&event).unwrap() else {
            panic!("the event changed kind");
        };
        for s in [
            &inventory.os.pretty_name,
            &inventory.kernel,
            &inventory.containers[0].name,
            &inventory.containers[0].image,
        ] {
            assert_clean(s);
        }
        assert_eq!(inventory.installed_packages, 2, "numbers survive");
    }

    #[test]
    fn packages_errors_lines_and_reasons_are_cleaned() {
        let events = [
            Event::PendingRefreshed {
                host: host(),
                packages: vec![PendingPackage {
                    name: format!("libssl{HOSTILE}"),
                    from: "1".into(),
                    to: HOSTILE.into(),
                    security: true,
                }]
                .into(),
                reboot: Default::default(),
            },
            Event::Output {
                host: host(),
                stream: Stream::Stderr,
                line: HOSTILE.into(),
            },
            Event::StateChanged {
                host: host(),
                from: StateKind::Updating,
                to: StateKind::Failed,
                state: Arc::new(HostState {
                    phase: Phase::Failed(FailedInfo {
                        previous_state: StateKind::Updating,
                        error: HOSTILE.into(),
                        failed_at: chrono::Utc::now(),
                        acknowledged: false,
                    }),
                    ..HostState::default()
                }),
            },
            Event::Refused {
                host: host(),
                job: crate::engine::JobKind::Refresh,
                reason: HOSTILE.into(),
            },
            Event::WaveHostFinished {
                wave_id: 1,
                host: host(),
                outcome: Outcome::Failed {
                    error: HOSTILE.into(),
                },
            },
        ];
        for event in &events {
            let clean = super::event(event).unwrap();
            assert!(matches!(clean, Cow::Owned(_)), "{event:?} was not cleaned");
            // Debug shows a control character as `\u{..}`.
            let debug = format!("{clean:?}");
            assert!(
                !debug.contains("\\u{") && !debug.contains("pwned"),
                "{debug}"
            );
        }
        if let Event::PendingRefreshed { packages, .. } = &*super::event(&events[0]).unwrap() {
            assert!(packages[0].security, "flags survive");
            assert!(packages[0].name.starts_with("libsslDebian 12"));
        }
    }

    #[test]
    fn a_clean_event_is_borrowed() {
        let event = Event::Output {
            host: host(),
            stream: Stream::Stdout,
            line: "Setting up openssl (3.0.15) ...".into(),
        };
        assert!(matches!(super::event(&event).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn a_restored_model_is_cleaned() {
        let mut saved = HostModel::new(host());
        saved.refused = Some((crate::engine::JobKind::Reboot, HOSTILE.into()));
        saved.reboot.packages = vec![HOSTILE.into()];
        let clean = model(&saved).unwrap();
        assert_clean(&clean.refused.unwrap().1);
        assert_clean(&clean.reboot.packages[0]);
    }
}
