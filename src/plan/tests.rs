//! The composer on hand-made host models: batches with a canary, totals and the estimated
//! finish, what a plan carries through, a deferred host, hosts without a plan.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Local, NaiveDate, TimeZone};

use super::*;
use crate::config::{BatchSize, Config, FailureLimit, HostId, OnThreshold, WaveMode};
use crate::engine::WaveRequest;
use crate::fleet::{HostModel, Measurement, Plan};
use crate::pkg::{FreeSpace, PendingPackage, UpgradePlan, UpgradeScope};

/// Saturday 2026-11-28 at `hh:mm`, local time.
fn saturday(hh: u32, mm: u32) -> DateTime<Local> {
    let naive = NaiveDate::from_ymd_opt(2026, 11, 28)
        .unwrap()
        .and_hms_opt(hh, mm, 0)
        .unwrap();
    Local.from_local_datetime(&naive).earliest().unwrap()
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

fn config() -> Config {
    Config::from_str(
        "t.toml",
        "[[host]]\nname='a'\naddr='10.0.0.1'\n[host.policy]\nauto_reboot=true\n\
         [[host]]\nname='b'\naddr='10.0.0.2'\n\
         [[host]]\nname='c'\naddr='10.0.0.3'\n\
         [[host]]\nname='d'\naddr='10.0.0.4'\n[host.policy]\n\
         maintenance_window={start='02:00',end='06:00',days=['Sat','Sun']}\n",
    )
    .unwrap()
}

fn request(hosts: &[&str], defer_overruns: bool) -> WaveRequest {
    WaveRequest {
        hosts: hosts.iter().map(|h| HostId::from(*h)).collect(),
        sizes: BatchSize::parse_list("1,100%").unwrap(),
        delay: Duration::from_secs(60),
        max_failures: FailureLimit::Count(0),
        mode: WaveMode::Batches,
        dry_run: false,
        allow_removals: false,
        scope: UpgradeScope::default(),
        on_threshold: OnThreshold::Abort,
        defer_overruns,
    }
}

fn package(name: &str) -> PendingPackage {
    PendingPackage {
        name: name.into(),
        from: "1.0".into(),
        to: "1.1".into(),
        security: false,
    }
}

/// A host whose last dry run planned `upgrades`, and whose upgrades of two packages took
/// `took` minutes (reboots 2 minutes).
fn host(name: &str, upgrades: &[&str], took: Option<u64>) -> HostModel {
    let mut model = HostModel::new(name.into());
    let plan = UpgradePlan {
        upgrades: upgrades.iter().map(|p| package(p)).collect(),
        ..UpgradePlan::default()
    };
    model.pending = Some(Arc::from(plan.upgrades.clone()));
    model.plan = Some(Plan {
        plan: Arc::new(plan),
        dry_run: true,
        scope: Default::default(),
    });
    if let Some(took) = took {
        model.history.record(&Measurement::Upgrade {
            at: chrono::Utc::now(),
            took: mins(took),
            packages: 2,
        });
        model.history.record(&Measurement::Reboot {
            at: chrono::Utc::now(),
            took: mins(2),
        });
    }
    model
}

/// `a`: the canary, with a kernel (reboot), a removal, a kept-back package and too little
/// disk; `b`: known; `c`: never dry-run; `d`: 40-minute upgrades in a window closing at 06:00.
fn fleet() -> Vec<HostModel> {
    let mut a = host("a", &["tendhost-app", "tendhost-kernel"], Some(10));
    let mut plan = (*a.plan.as_ref().unwrap().plan).clone();
    plan.removals = vec!["tendhost-legacy".into()];
    plan.kept_back = vec!["tendhost-core".into()];
    plan.reboot_packages = vec!["tendhost-kernel".into()];
    plan.download_bytes = Some(5_000);
    plan.install_bytes = Some(1_000);
    plan.free_space = vec![
        FreeSpace {
            path: "/".into(),
            free_bytes: 4_000,
        },
        FreeSpace {
            path: "/var/cache/apt/archives".into(),
            free_bytes: 9_000,
        },
    ];
    a.plan = Some(Plan {
        plan: Arc::new(plan),
        dry_run: true,
        scope: Default::default(),
    });
    let c = HostModel::new("c".into());
    vec![
        a,
        host("b", &["x", "y"], Some(10)),
        c,
        host("d", &["x", "y"], Some(40)),
    ]
}

fn composed(defer: bool) -> WavePlan {
    let models = fleet();
    let refs: Vec<&HostModel> = models.iter().collect();
    compose(
        &request(&["a", "b", "c", "d"], defer),
        &refs,
        &config(),
        saturday(5, 30),
    )
}

fn entry<'a>(plan: &'a WavePlan, host: &str) -> &'a PlanHost {
    plan.hosts.iter().find(|h| &*h.host == host).unwrap()
}

#[test]
fn batches_start_with_the_canary_and_a_deferred_host_is_left_out() {
    let plan = composed(true);
    let batches: Vec<Vec<&str>> = plan
        .batches
        .iter()
        .map(|b| b.hosts.iter().map(|h| &**h).collect())
        .collect();
    assert_eq!(batches, [vec!["a"], vec!["b", "c"]]);
    let d = entry(&plan, "d");
    assert_eq!(d.batch, None);
    let HostStatus::Deferred { note, next_window } = &d.status else {
        panic!("{:?}", d.status);
    };
    // Batch 2 starts at 05:43 (canary 12m, delay 1m): 17 minutes left of d's window.
    assert_eq!(
        note,
        "deferred to its next window (Sun 02:00): predicted 40m, 17m left of 'Sat,Sun 02:00-06:00'"
    );
    assert_eq!(
        *next_window,
        Some(saturday(2, 0) + chrono::Duration::days(1))
    );
    assert_eq!(plan.totals.deferred, 1);
    // The hosts in batches come first, in batch order; the one left out last.
    let order: Vec<&str> = plan.hosts.iter().map(|h| &*h.host).collect();
    assert_eq!(order, ["a", "b", "c", "d"]);
}

#[test]
fn totals_and_the_estimated_finish_add_batches_up_one_after_another() {
    let plan = composed(true);
    let canary = &plan.batches[0];
    assert_eq!(canary.start, saturday(5, 30));
    assert_eq!(canary.predicted, mins(12), "10m upgrade + 2m reboot");
    let second = &plan.batches[1];
    assert_eq!(
        second.start,
        saturday(5, 43),
        "after the canary and the delay"
    );
    assert_eq!(second.finish, saturday(5, 53));
    assert_eq!(second.totals.unknown_duration, 1, "c has no plan");
    assert_eq!(plan.totals.estimated_finish, saturday(5, 53));
    assert_eq!(plan.totals.predicted, mins(23));
    let counts = plan.totals.counts;
    assert_eq!(counts.hosts, 3);
    assert_eq!(counts.upgrades, 4);
    assert_eq!(counts.removals, 1);
    assert_eq!(counts.reboots, 1);
    assert_eq!(counts.download_bytes, 5_000);
    assert_eq!(counts.without_plan, 1);
    assert_eq!(counts.short_of_space, 1);
    assert_eq!(entry(&plan, "b").finish, Some(saturday(5, 53)));
}

#[test]
fn a_hosts_plan_carries_through_removals_kept_back_reboot_and_space() {
    let plan = composed(true);
    let a = entry(&plan, "a");
    assert_eq!(a.batch, Some(1));
    assert_eq!(a.removals, ["tendhost-legacy"]);
    assert_eq!(a.kept_back, ["tendhost-core"]);
    assert_eq!(a.upgrades[0].from, "1.0");
    assert_eq!(a.upgrades[0].to, "1.1");
    assert_eq!(
        a.reboot,
        Some(RebootReason {
            packages: vec!["tendhost-kernel".into()],
            already_required: false
        })
    );
    assert_eq!(a.space.free_bytes, Some(4_000), "the least free path");
    assert_eq!(a.space.need_bytes, Some(6_000));
    assert_eq!(a.space.enough, Some(false));
    assert_eq!(a.prediction.unwrap().total, mins(12));
    assert_eq!(a.conffiles, None, "unknown");
}

#[test]
fn a_host_without_a_dry_run_says_so_and_still_runs() {
    let plan = composed(true);
    let c = entry(&plan, "c");
    assert!(!c.known);
    assert_eq!(c.batch, Some(2));
    assert_eq!(c.prediction, None);
    assert_eq!(c.status, HostStatus::Runs);
}

#[test]
fn overriding_the_deferral_keeps_the_host_and_flags_the_overrun() {
    let plan = composed(false);
    let d = entry(&plan, "d");
    assert_eq!(d.batch, Some(2));
    assert_eq!(
        d.status,
        HostStatus::Overruns {
            note: "would overrun 'Sat,Sun 02:00-06:00' by 23m".into()
        }
    );
    assert_eq!(plan.totals.estimated_finish, saturday(6, 23));
}

#[test]
fn a_host_outside_its_window_is_shown_as_skipped() {
    let models = fleet();
    let refs: Vec<&HostModel> = models.iter().collect();
    let plan = compose(
        &request(&["a", "d"], true),
        &refs,
        &config(),
        saturday(12, 0),
    );
    let d = entry(&plan, "d");
    assert_eq!(d.batch, None);
    assert!(matches!(&d.status, HostStatus::Outside { note } if note.contains("outside")));
    assert_eq!(plan.totals.outside_window, 1);
    assert_eq!(plan.batches.len(), 1);
}

#[test]
fn the_wave_reads_in_one_line() {
    let plan = composed(true);
    assert_eq!(
        render::totals_line(&plan),
        "wave: 3 hosts in 2 batches, 4 upgrades, 0 new, 1 removal, 1 reboot, 4.9 KiB to \
         download; predicted 23m, estimated finish Sat 05:53 (without 1 host of unknown \
         duration); 1 deferred to their next window, 1 without a dry run, 1 short of disk space"
    );
    assert_eq!(
        render::batch_line(&plan.batches[0]),
        "batch 1 (canary): 1 host, 2 upgrades, 1 removal, 1 reboot; Sat 05:30 → Sat 05:42 (12m)"
    );
    let a = entry(&plan, "a");
    assert_eq!(
        render::changes_text(a),
        "2 upgrades, 1 removal (tendhost-legacy), kept back: tendhost-core"
    );
    assert_eq!(render::reboot_text(a), "reboot (tendhost-kernel)");
    assert_eq!(
        render::space_text(a),
        "not enough space: needs 5.9 KiB, 3.9 KiB free"
    );
    assert_eq!(render::changes_text(entry(&plan, "c")), "no dry run yet");
}

#[test]
fn a_jump_host_goes_after_the_hosts_behind_it_as_the_wave_places_it() {
    let config = Config::from_str(
        "t.toml",
        "[[host]]\nname='bastion'\naddr='10.0.0.1'\n\
         [[host]]\nname='a'\naddr='10.0.1.1'\nproxy_jump='bastion'\n\
         [[host]]\nname='b'\naddr='10.0.1.2'\nproxy_jump='bastion'\n",
    )
    .unwrap();
    let plan = compose(
        &request(&["bastion", "a", "b"], true),
        &[],
        &config,
        saturday(5, 30),
    );
    let batches: Vec<Vec<&str>> = plan
        .batches
        .iter()
        .map(|b| b.hosts.iter().map(|h| &**h).collect())
        .collect();
    assert_eq!(batches, [vec!["a"], vec!["b"], vec!["bastion"]]);
    assert_eq!(plan.totals.counts.without_plan, 3, "nothing known of any");
}

#[test]
fn a_plan_of_another_scope_says_nothing_and_nothing_in_scope_is_an_empty_plan() {
    let models = fleet();
    let refs: Vec<&HostModel> = models.iter().collect();
    let mut security = request(&["a", "b"], true);
    security.scope.security_only = true;
    let plan = compose(&security, &refs, &config(), saturday(5, 30));
    // Neither host has a security update pending: known, with nothing to do.
    for host in ["a", "b"] {
        let entry = entry(&plan, host);
        assert!(entry.known && entry.upgrades.is_empty(), "{entry:?}");
    }
    // `a` has tendhost-app pending, but its plan was of everything: not a plan of this scope.
    let mut only_app = request(&["a", "b"], true);
    only_app.scope.packages = vec!["tendhost-app".into()];
    let plan = compose(&only_app, &refs, &config(), saturday(5, 30));
    assert!(
        !entry(&plan, "a").known,
        "a plan of everything is not one of tendhost-app"
    );
    assert!(entry(&plan, "b").known, "b has no tendhost-app pending");
}

#[test]
fn cluster_mates_are_planned_in_separate_batches() {
    let config = Config::from_str(
        "t.toml",
        "[clusters]\ndb = ['pg1', 'pg2']\n\
         [[host]]\nname='pg1'\naddr='10.0.0.1'\n\
         [[host]]\nname='pg2'\naddr='10.0.0.2'\n\
         [[host]]\nname='web'\naddr='10.0.0.3'\n",
    )
    .unwrap();
    let mut wave = request(&["pg1", "pg2", "web"], true);
    wave.sizes = BatchSize::parse_list("2").unwrap();
    let plan = compose(&wave, &[], &config, saturday(5, 30));
    let batches: Vec<Vec<&str>> = plan
        .batches
        .iter()
        .map(|b| b.hosts.iter().map(|h| &**h).collect())
        .collect();
    assert_eq!(
        batches,
        [vec!["pg1", "web"], vec!["pg2"]],
        "pg2 never beside pg1: web takes its place"
    );
}
