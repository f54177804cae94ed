//! `[[notify]]` through the engine: the hub folds a wave's events into notices (a failed host,
//! one that needs a reboot it may not take, the wave's end) and a skipped schedule's audit
//! record becomes one too; a command hook sees them all, in order, before shutdown returns.

use super::*;

#[tokio::test]
async fn a_wave_and_a_skipped_schedule_reach_a_command_hook() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("notices");
    let notify = format!(
        "[host.policy]\nauto_reboot = false\n\n[[notify]]\nname = \"hook\"\nkind = \"command\"\n\
         command = 'printf \"%s|%s\\n\" \"$TENDHOST_EVENT\" \"$TENDHOST_SUMMARY\" >> {}'\n\
         on = [\"wave_finished\", \"wave_halted\", \"host_failed\", \"reboot_needed\", \
         \"schedule_skipped\"]\n",
        crate::remote::quote(&out.display().to_string())
    );
    let config = fleet_config_each(3, |i| {
        if i == 2 {
            notify.clone()
        } else {
            String::new()
        }
    });
    let hosts: Vec<HostId> = config.hosts.iter().map(|h| h.name.clone()).collect();
    let fleet = SimFleet::new();
    fleet.set(
        "h1",
        Behaviour {
            fail_upgrade: true,
            ..Behaviour::default()
        },
    );
    fleet.set(
        "h2",
        Behaviour {
            reboot_required: true,
            ..Behaviour::default()
        },
    );
    let mut rig = start(config, fleet);
    rig.engine
        .start_wave(wave(hosts, "3", FailureLimit::Count(5)))
        .unwrap();
    assert_eq!(rig.wave_end().await.status, WaveStatus::Finished);
    rig.engine
        .audit(AuditRecord::new(
            "schedule",
            None,
            "skipped",
            Some("sunday: missed while tendhost was not running"),
        ))
        .await;
    assert!(rig.engine.shutdown(Duration::from_secs(10)).await);
    // Drained by the hub's end, so the hook has run for every notice once shutdown returns.
    while rig.events.recv().await.is_some() {}
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let mut host_lines = lines[..2].to_vec();
    host_lines.sort_unstable();
    assert!(
        host_lines[0].starts_with("host_failed|host h1 failed: "),
        "{text}"
    );
    assert_eq!(
        host_lines[1],
        "reboot_needed|host h2 needs a reboot: auto_reboot is off for this host; reboot it when \
         convenient"
    );
    assert_eq!(
        lines[2],
        "wave_finished|wave 1 finished: 2 updated, 1 failed, 0 skipped"
    );
    assert_eq!(
        lines[3],
        "schedule_skipped|schedule sunday skipped: missed while tendhost was not running"
    );
}
