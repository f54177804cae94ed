//! The fleet-wide plan of a wave, composed before anything runs: per host its batch, what its
//! upgrade does (from its last dry run), whether it reboots and why, its space, its predicted
//! duration and where that falls against its window; per batch and for the wave the totals and
//! the estimated finish. Pure: the host models, the config and the clock come in, a
//! [`WavePlan`] goes out. `--batch wave --plan` and the console's wave dialog both show it.
//!
//! The batches are the wave queue's own ([`crate::engine::WaveQueue`], every host succeeding),
//! so jump hosts and the canary land where the wave puts them. The window decisions are
//! [`crate::fleet::forecast`]'s, the same the update step defers by.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Local};

use super::model::{
    Counts, HostStatus, PlanBatch, PlanHost, PlanTotals, RebootReason, Space, WavePlan,
};
use crate::config::{Config, HostId};
use crate::engine::{WaveQueue, WaveRequest};
use crate::fleet::{HostModel, Plan, Prediction, WindowFit, forecast};
use crate::pkg::{ServiceChange, UpgradePlan, UpgradeScope};

/// What is known of one host before it is placed.
struct Facts {
    plan: Option<UpgradePlan>,
    compose: Vec<ServiceChange>,
    reboot_required: bool,
}

/// Composes the plan of `request` from what tendhost knows of each host (`models`) at `now`.
/// A host with no model is treated as one never read.
pub fn compose(
    request: &WaveRequest,
    models: &[&HostModel],
    config: &Config,
    now: DateTime<Local>,
) -> WavePlan {
    let models: HashMap<&HostId, &HostModel> = models.iter().map(|m| (&m.name, *m)).collect();
    let facts: HashMap<HostId, Facts> = request
        .hosts
        .iter()
        .map(|host| {
            (
                host.clone(),
                facts_of(models.get(host).copied(), &request.scope),
            )
        })
        .collect();
    let history = |host: &HostId| {
        models
            .get(host)
            .map(|m| m.history.clone())
            .unwrap_or_default()
    };

    // Place the hosts; a host the wave would pass over (closed or overrun window) leaves its
    // batch to the next one, as the wave replaces it, which moves the others' starts: place
    // again until nobody more is left out.
    let mut left_out: HashMap<HostId, HostStatus> = HashMap::new();
    loop {
        let runs: Vec<HostId> = request
            .hosts
            .iter()
            .filter(|h| !left_out.contains_key(*h))
            .cloned()
            .collect();
        let batches = queue(request, config, runs).simulate();
        let timed = time_batches(&batches, request.delay, now, |host| {
            prediction_of(config, host, &facts[host], &history(host), now)
        });
        let mut newly = false;
        for (host, start) in timed.starts.iter() {
            let status = status_at(config, host, &facts[host], &history(host), *start, request);
            if matches!(
                status,
                HostStatus::Outside { .. } | HostStatus::Deferred { .. }
            ) {
                left_out.insert(host.clone(), status);
                newly = true;
            }
        }
        if !newly {
            return assemble(
                request, config, &facts, &models, batches, timed, left_out, now,
            );
        }
    }
}

/// The queue the wave itself would build for `hosts` (jump hosts and clusters placed as the
/// engine places them), so the plan shows the ordering they force.
fn queue(request: &WaveRequest, config: &Config, hosts: Vec<HostId>) -> WaveQueue {
    WaveQueue::of(
        &WaveRequest {
            hosts,
            ..request.clone()
        },
        config,
    )
}

/// What is known of one host for a wave of `scope`: its last dry run's plan when it was of
/// that scope (a plan of everything says nothing of a security-only wave), or an empty plan
/// when its last read found nothing of the scope pending.
fn facts_of(model: Option<&HostModel>, scope: &UpgradeScope) -> Facts {
    let Some(model) = model else {
        return Facts {
            plan: None,
            compose: Vec::new(),
            reboot_required: false,
        };
    };
    let plan = match (&model.plan, model.pending.as_deref()) {
        // A read found nothing of the scope pending: an update changes no package.
        (_, Some(pending)) if scope.select(pending).is_empty() => Some(UpgradePlan::default()),
        (
            Some(Plan {
                plan,
                dry_run: true,
                scope: planned,
            }),
            _,
        ) if planned == scope => Some((**plan).clone()),
        _ => None,
    };
    Facts {
        plan,
        compose: model.compose_pending(),
        reboot_required: model.reboot.required,
    }
}

fn prediction_of(
    config: &Config,
    host: &HostId,
    facts: &Facts,
    history: &crate::fleet::HostHistory,
    start: DateTime<Local>,
) -> Option<Prediction> {
    let plan = facts.plan.as_ref()?;
    let host = config.host(host)?;
    forecast(
        host,
        history,
        plan,
        facts.reboot_required,
        start.naive_local(),
    )
    .prediction
}

/// Where `host` stands if it starts at `start`, by the same decision the update step makes.
fn status_at(
    config: &Config,
    host: &HostId,
    facts: &Facts,
    history: &crate::fleet::HostHistory,
    start: DateTime<Local>,
    request: &WaveRequest,
) -> HostStatus {
    let Some(host) = config.host(host) else {
        return HostStatus::Runs;
    };
    let nothing = UpgradePlan::default();
    let plan = facts.plan.as_ref().unwrap_or(&nothing);
    let known = facts.plan.is_some();
    match forecast(
        host,
        history,
        plan,
        facts.reboot_required,
        start.naive_local(),
    )
    .fit
    {
        WindowFit::Fits => HostStatus::Runs,
        WindowFit::Outside { window } => HostStatus::Outside {
            note: format!("outside maintenance window '{window}' at its turn: the wave skips it"),
        },
        // Without a plan the prediction is a guess: it runs, as the step would decide.
        WindowFit::Overruns(_) if !known => HostStatus::Runs,
        WindowFit::Overruns(overrun) if request.defer_overruns && !request.dry_run => {
            HostStatus::Deferred {
                note: overrun.deferral(),
                next_window: overrun
                    .next_opening
                    .and_then(|at| at.and_local_timezone(Local).earliest()),
            }
        }
        WindowFit::Overruns(overrun) => HostStatus::Overruns {
            note: overrun.flag(),
        },
    }
}

/// Start times of every placed host and of every batch.
struct Timed {
    starts: Vec<(HostId, DateTime<Local>)>,
    /// Per batch: start, slowest prediction, finish.
    batches: Vec<(DateTime<Local>, Duration, DateTime<Local>)>,
    finish: DateTime<Local>,
}

/// Batches run one after another, `delay` between two; the hosts of one batch in parallel,
/// so a batch takes its slowest host's time. Rolling waves overlap batches a little; this is
/// the same estimate, on the safe side.
fn time_batches(
    batches: &[Vec<HostId>],
    delay: Duration,
    now: DateTime<Local>,
    predict: impl Fn(&HostId) -> Option<Prediction>,
) -> Timed {
    let mut at = now;
    let mut timed = Timed {
        starts: Vec::new(),
        batches: Vec::new(),
        finish: now,
    };
    for (i, batch) in batches.iter().enumerate() {
        if i > 0 {
            at += delay;
        }
        let slowest = batch
            .iter()
            .filter_map(|h| predict(h).map(|p| p.total))
            .max()
            .unwrap_or_default();
        timed.starts.extend(batch.iter().map(|h| (h.clone(), at)));
        let finish = at + slowest;
        timed.batches.push((at, slowest, finish));
        at = finish;
    }
    timed.finish = at;
    timed
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    request: &WaveRequest,
    config: &Config,
    facts: &HashMap<HostId, Facts>,
    models: &HashMap<&HostId, &HostModel>,
    batches: Vec<Vec<HostId>>,
    timed: Timed,
    left_out: HashMap<HostId, HostStatus>,
    now: DateTime<Local>,
) -> WavePlan {
    let history = |host: &HostId| {
        models
            .get(host)
            .map(|m| m.history.clone())
            .unwrap_or_default()
    };
    let starts: HashMap<&HostId, DateTime<Local>> =
        timed.starts.iter().map(|(h, at)| (h, *at)).collect();
    let batch_of: HashMap<&HostId, usize> = batches
        .iter()
        .enumerate()
        .flat_map(|(i, b)| b.iter().map(move |h| (h, i + 1)))
        .collect();
    let order = batches
        .iter()
        .flatten()
        .chain(request.hosts.iter().filter(|h| left_out.contains_key(*h)));
    let hosts: Vec<PlanHost> = order
        .map(|host| {
            let facts = &facts[host];
            let start = starts.get(host).copied();
            let status = match (left_out.get(host), start) {
                (Some(status), _) => status.clone(),
                (None, Some(start)) => {
                    status_at(config, host, facts, &history(host), start, request)
                }
                (None, None) => HostStatus::Runs,
            };
            let prediction =
                prediction_of(config, host, facts, &history(host), start.unwrap_or(now));
            let window = config
                .host(host)
                .and_then(|h| h.policy.maintenance_window.as_ref())
                .map(|w| w.describe());
            host_entry(
                host,
                batch_of.get(host).copied(),
                facts,
                prediction,
                start,
                window,
                status,
            )
        })
        .collect();
    let index: HashMap<&HostId, &PlanHost> = hosts.iter().map(|h| (&h.host, h)).collect();
    let plan_batches: Vec<PlanBatch> = batches
        .iter()
        .zip(&timed.batches)
        .enumerate()
        .map(|(i, (members, (start, predicted, finish)))| PlanBatch {
            batch: i + 1,
            hosts: members.clone(),
            start: *start,
            predicted: *predicted,
            finish: *finish,
            totals: count(members.iter().map(|h| index[h])),
        })
        .collect();
    let placed = hosts.iter().filter(|h| h.batch.is_some());
    let delay = (batches.len() > 1 && !request.delay.is_zero()).then_some(request.delay);
    let totals = PlanTotals {
        counts: count(placed),
        batches: plan_batches.len(),
        predicted: (timed.finish - now).to_std().unwrap_or_default(),
        delay,
        estimated_finish: timed.finish,
        deferred: left_out
            .values()
            .filter(|s| matches!(s, HostStatus::Deferred { .. }))
            .count(),
        outside_window: left_out
            .values()
            .filter(|s| matches!(s, HostStatus::Outside { .. }))
            .count(),
    };
    WavePlan {
        composed_at: now,
        mode: request.mode,
        hosts,
        batches: plan_batches,
        totals,
    }
}

fn host_entry(
    host: &HostId,
    batch: Option<usize>,
    facts: &Facts,
    prediction: Option<Prediction>,
    start: Option<DateTime<Local>>,
    window: Option<String>,
    status: HostStatus,
) -> PlanHost {
    let plan = facts.plan.clone().unwrap_or_default();
    let reboot =
        (facts.reboot_required || !plan.reboot_packages.is_empty()).then(|| RebootReason {
            packages: plan.reboot_packages.clone(),
            already_required: facts.reboot_required,
        });
    let space = space_of(&plan);
    let start = start.filter(|_| batch.is_some());
    PlanHost {
        host: host.clone(),
        batch,
        known: facts.plan.is_some(),
        upgrades: plan.upgrades,
        installs: plan.installs,
        removals: plan.removals,
        held: plan.held,
        kept_back: plan.kept_back,
        conffiles: plan.conffiles,
        compose: facts.compose.clone(),
        reboot,
        space,
        download_bytes: plan.download_bytes,
        prediction,
        start,
        finish: start.zip(prediction).map(|(at, p)| at + p.total),
        window,
        status,
    }
}

/// The upgrade needs its downloads plus what the installed size grows by (a shrinking upgrade
/// still needs room for its downloads); compared with the least free space of the paths read.
fn space_of(plan: &UpgradePlan) -> Space {
    let free_bytes = plan.free_space.iter().map(|f| f.free_bytes).min();
    let need_bytes = match (plan.download_bytes, plan.install_bytes) {
        (None, None) => None,
        (download, install) => Some(download.unwrap_or(0) + install.map_or(0, |i| i.max(0) as u64)),
    };
    Space {
        free_bytes,
        need_bytes,
        enough: free_bytes.zip(need_bytes).map(|(free, need)| need <= free),
    }
}

fn count<'a>(hosts: impl Iterator<Item = &'a PlanHost>) -> Counts {
    let mut counts = Counts::default();
    for host in hosts {
        counts.hosts += 1;
        counts.upgrades += host.upgrades.len();
        counts.installs += host.installs.len();
        counts.removals += host.removals.len();
        counts.reboots += usize::from(host.reboot.is_some());
        counts.without_plan += usize::from(!host.known);
        counts.unknown_duration += usize::from(host.prediction.is_none());
        counts.short_of_space += usize::from(host.space.enough == Some(false));
        counts.download_bytes += host.download_bytes.unwrap_or(0);
    }
    counts
}
