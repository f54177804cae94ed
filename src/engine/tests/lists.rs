//! Issue 11: package lists are refreshed on a policy — by age, before every update, when the
//! operator asks — and never by more than `[fleet] lists_concurrency` hosts at once.

use std::sync::atomic::Ordering;

use super::*;

fn config(hosts: usize, fleet: &str) -> Config {
    let mut text = format!("[fleet]\nconcurrency = 1000\n{fleet}\n");
    for i in 0..hosts {
        text.push_str(&format!(
            "[[host]]\nname = \"h{i}\"\naddr = \"10.0.0.{i}\"\n"
        ));
    }
    Config::from_str("sim.toml", &text).unwrap()
}

async fn all(rig: &Rig, hosts: usize, kind: JobKind) {
    let answers: Vec<_> = (0..hosts)
        .map(|i| rig.send_step(&format!("h{i}"), kind))
        .collect();
    for answer in answers {
        assert_eq!(answer.await.unwrap(), Outcome::Succeeded);
    }
}

#[tokio::test(start_paused = true)]
async fn at_most_lists_concurrency_hosts_refresh_their_lists_at_once() {
    let fleet = SimFleet::new();
    for i in 0..20 {
        // Refreshes take a while, so overlapping ones are seen.
        let slow = Behaviour {
            refresh_time: Duration::from_millis(100),
            ..Behaviour::default()
        };
        fleet.set(&format!("h{i}"), slow);
    }
    let rig = start(
        config(20, "lists_max_age = \"0\"\nlists_concurrency = 3"),
        fleet.clone(),
    );
    all(&rig, 20, JobKind::Refresh).await;
    assert_eq!(fleet.refreshes.load(Ordering::SeqCst), 20);
    assert_eq!(fleet.refresh_peak.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn fresh_lists_are_read_as_they_are_and_the_operator_or_an_update_refreshes_them() {
    let fleet = SimFleet::new();
    let rig = start(config(4, "lists_max_age = \"1h\""), fleet.clone());
    // The simulated fleet keeps no fingerprint: every read is a full one, lists kept.
    all(&rig, 4, JobKind::Refresh).await;
    assert_eq!(fleet.refreshes.load(Ordering::SeqCst), 0);
    all(&rig, 4, JobKind::RefreshLists).await;
    assert_eq!(fleet.refreshes.load(Ordering::SeqCst), 4);
    all(&rig, 4, update()).await;
    assert_eq!(fleet.refreshes.load(Ordering::SeqCst), 8);
}
