//! Issue 10 on a real VM (harness/vm.rs): what the chroot hosts cannot show. systemd is PID 1
//! there, so every detached job runs as a transient unit (`systemd-run`), and the reboot is a
//! real `systemctl reboot` that takes the guest down and brings it back with a new boot id.
//! Slow under TCG emulation (a boot is ~25 s, a reboot ~40 s): two scenarios on one boot, run in
//! turn by one test (the second takes the guest the first left behind).
//!
//! The image has a unit that fails at every boot ([`PRE_FAILED_UNIT`]), so both tests see a
//! degraded system before the update that the checks must not hold against it; the update
//! installs and starts [`UPDATE_UNIT`], which the second test makes fail.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::batch::{assert_reattached, host_line, json_lines, run_expecting, tendhost_std};
use crate::harness::TestEnv;
use crate::harness::vm::{ADDR, BREAK_FILE, NEXT_REPO, PORT, PRE_FAILED_UNIT, UPDATE_UNIT, Vm};
use crate::health_pre::{check, checked, names};

/// One host, the VM, logging in as root with the image's test key. Connecting takes longer
/// under emulation than on loopback sshds, hence the longer connect timeout.
fn config(env: &TestEnv, vm: &Vm, auto_reboot: bool) {
    env.write_config(&format!(
        "[ssh]\nknown_hosts = \"strict\"\nconnect_timeout = \"30s\"\n\n\
         [[host]]\nname = \"vm\"\naddr = \"{ADDR}\"\nport = {PORT}\nuser = \"root\"\n\
         ssh_key = \"{}\"\nmanager = \"apt\"\n\n[host.policy]\nauto_reboot = {auto_reboot}\n",
        vm.image.client_key().display()
    ));
    env.append_known_hosts(&vm.image.known_hosts_line());
}

/// The guest's job directories, oldest first (their names start with the start time).
fn job_ids(vm: &Vm) -> Vec<String> {
    let mut ids: Vec<String> = vm
        .ssh("ls /var/lib/tendhost/jobs 2>/dev/null || true")
        .lines()
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

/// A file of job `id` in the guest, trimmed; empty when it does not exist.
fn job_file(vm: &Vm, id: &str, file: &str) -> String {
    vm.ssh(&format!(
        "cat /var/lib/tendhost/jobs/{id}/{file} 2>/dev/null || true"
    ))
    .trim()
    .to_string()
}

/// Waits until `done` holds, failing with `what` after a generous safety net.
#[track_caller]
fn wait_until(what: &str, done: impl FnMut() -> bool) {
    crate::harness::wait_until(
        what,
        Duration::from_secs(300),
        Duration::from_millis(500),
        done,
    );
}

/// One test, one boot, two scenarios in turn: tied to one test thread (the VM is one at a time
/// anyway), so the rest of the suite runs beside it on the other threads.
#[test]
fn a_real_vm_is_updated_rebooted_verified_and_reattached_after_kill_9() {
    let vm = Vm::boot();
    update_runs_in_a_systemd_unit_then_really_reboots_and_comes_back_idle(&vm);
    kill_9_mid_upgrade_then_restart_reattaches_and_names_the_unit_the_update_broke(&vm);
    a_schedule_installed_in_the_guest_is_accepted_and_run_by_systemd(&vm);
}

/// Issue 14: `schedule install` inside the guest, where systemd is PID 1: systemd accepts the
/// timer (it computes a next elapse from `OnCalendar=`), and starting the service runs
/// `tendhost --batch wave --schedule` as systemd runs it, recorded for `schedule list`. The
/// guest's tendhost manages the guest itself (a local host), so nothing else is needed.
fn a_schedule_installed_in_the_guest_is_accepted_and_run_by_systemd(vm: &Vm) {
    let started = Instant::now();
    // Without its line tables the binary is a third of the size to push into the emulated guest.
    let binary = assert_cmd::cargo::cargo_bin("tendhost");
    let stripped = tempfile::NamedTempFile::new().unwrap();
    let strip = std::process::Command::new("strip")
        .arg("-o")
        .arg(stripped.path())
        .arg(&binary)
        .status();
    let local = match strip {
        Ok(status) if status.success() => stripped.path().to_path_buf(),
        _ => binary,
    };
    vm.copy_in(&local, "/usr/local/bin/tendhost");
    vm.ssh(
        "mkdir -p /etc/tendhost && cat > /etc/tendhost/tendhost.toml <<'EOF'\n\
         [[host]]\nname = \"self\"\ntransport = \"local\"\nmanager = \"none\"\n\n\
         [[schedule]]\nname = \"sunday\"\nwhen = \"Sun 03:00\"\nmissed = \"run\"\n\
         EOF",
    );
    let config = "--config /etc/tendhost/tendhost.toml";
    vm.ssh(&format!(
        "/usr/local/bin/tendhost {config} schedule install sunday"
    ));
    let service = vm.ssh("cat /etc/systemd/system/tendhost-schedule-sunday.service");
    assert!(
        service.contains(
            "ExecStart=/usr/local/bin/tendhost --config /etc/tendhost/tendhost.toml --batch wave \
             --schedule sunday"
        ),
        "{service}"
    );
    vm.ssh("systemctl daemon-reload && systemctl enable --now tendhost-schedule-sunday.timer");
    let next =
        vm.ssh("systemctl show -p NextElapseUSecRealtime --value tendhost-schedule-sunday.timer");
    assert!(
        next.trim().starts_with("Sun "),
        "systemd did not schedule the timer on a Sunday: {next:?}"
    );
    // A oneshot: `start` returns once the run is over.
    vm.ssh("systemctl start tendhost-schedule-sunday.service");
    let result = vm.ssh("systemctl show -p Result --value tendhost-schedule-sunday.service");
    assert_eq!(
        result.trim(),
        "success",
        "{}",
        vm.ssh("journalctl -u tendhost-schedule-sunday.service --no-pager | tail -20")
    );
    let listed = vm.ssh(&format!("/usr/local/bin/tendhost {config} schedule list"));
    let row = listed
        .lines()
        .find(|l| l.starts_with("sunday"))
        .unwrap_or_else(|| panic!("no sunday row in:\n{listed}"));
    assert!(row.contains(" ok ") && row.ends_with("installed"), "{row}");
    eprintln!(
        "vm: the schedule ran under systemd {:.1?} after copying tendhost in",
        started.elapsed()
    );
}

fn update_runs_in_a_systemd_unit_then_really_reboots_and_comes_back_idle(vm: &Vm) {
    let started = Instant::now();
    let env = TestEnv::new();
    config(&env, vm, true);
    let boot_before = vm.boot_id();
    assert_eq!(vm.version("tendhost-kernel"), "1.0");

    let out = run_expecting(
        &env,
        &["--batch", "update", "--json", "--allow-removals"],
        0,
    );
    let lines = json_lines(&out);
    let host = host_line(&lines, "vm");
    assert_eq!(host["state"], "idle", "{host}");
    assert_eq!(host["error"], serde_json::Value::Null, "{host}");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "state_changed" && l["to"] == "rebooting"),
        "{lines:#?}"
    );

    // A real reboot: a new kernel boot id, and /run (with reboot-required) is fresh.
    let boot_after = vm.boot_id();
    assert_ne!(boot_before, boot_after, "the guest did not reboot");
    assert_eq!(
        vm.ssh("test -e /var/run/reboot-required && echo yes || echo no")
            .trim(),
        "no"
    );
    assert_eq!(vm.version("tendhost-kernel"), "1.1");
    assert_eq!(vm.version("tendhost-app"), "1.1");
    assert_eq!(vm.version("tendhost-svc"), "1.1");
    assert_eq!(
        vm.ssh(&format!("systemctl is-active {UPDATE_UNIT} || true"))
            .trim(),
        "active"
    );

    // The unit failed before the update is the baseline, named by the pre-checks and held
    // against nobody; the checks after the update (before the reboot) pass.
    let pre = checked(&lines, "vm", "pre");
    let baseline = check(&pre["checks"], "failed_units", "pre");
    assert_eq!(baseline["ok"], true, "{baseline}");
    assert!(
        baseline["detail"]
            .as_str()
            .unwrap()
            .contains(PRE_FAILED_UNIT),
        "{baseline}"
    );
    let post_update = checked(&lines, "vm", "post_update");
    assert!(
        post_update["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true),
        "{post_update:#}"
    );
    let restart = check(&post_update["checks"], "needs_restart", "post_update");
    assert!(
        !restart["detail"].as_str().unwrap().contains("not known"),
        "needrestart is in the image: {restart}"
    );
    let reboot = check(&post_update["checks"], "reboot_required", "post_update");
    assert!(
        reboot["detail"]
            .as_str()
            .unwrap()
            .contains("tendhost-kernel"),
        "{reboot}"
    );

    // Every verification after the reboot ran on the real guest, and passed.
    let post_reboot = checked(&lines, "vm", "post_reboot");
    let ran = names(&post_reboot["checks"]);
    for name in [
        "host_key",
        "kernel",
        "system_running",
        "failed_units",
        "needs_restart",
        "reboot_required",
    ] {
        assert!(
            ran.contains(&name),
            "no post-reboot check {name}: {post_reboot:#}"
        );
    }
    for c in post_reboot["checks"].as_array().unwrap() {
        assert_eq!(c["ok"], true, "{c}\n{post_reboot:#}");
    }
    let running = check(&post_reboot["checks"], "kernel", "post_reboot");
    let uname = vm.ssh("uname -r");
    assert!(
        running["detail"].as_str().unwrap().contains(uname.trim()),
        "{running}"
    );
    // Degraded by the baseline's unit only, which does not count.
    let system = check(&post_reboot["checks"], "system_running", "post_reboot");
    assert_eq!(
        vm.ssh("systemctl is-system-running || true").trim(),
        "degraded",
        "{system}"
    );

    // Both jobs (the upgrade, then the reboot) ran as transient systemd units; the upgrade's
    // wrapper finished there with the script's status.
    let ids = job_ids(vm);
    assert_eq!(ids.len(), 2, "{ids:?}");
    for id in &ids {
        assert_eq!(job_file(vm, id, "runner"), "systemd", "job {id}");
    }
    assert_eq!(job_file(vm, &ids[0], "exit"), "0");
    assert!(job_file(vm, &ids[1], "script").contains("systemctl reboot"));
    // The journal (persistent in the image) saw both units in the boot before this one.
    let journal = vm.ssh("journalctl -b -1 -o cat -u 'tendhost-job-*' --no-pager 2>&1 || true");
    let units = vm.ssh(
        "journalctl -b -1 -o json-seq -u 'tendhost-job-*' --no-pager 2>/dev/null \
         | grep -o '\"UNIT\":\"tendhost-job-[^\"]*\"' | sort -u || true",
    );
    for id in &ids {
        assert!(
            units.contains(&format!("tendhost-job-{id}")),
            "no unit tendhost-job-{id} in the previous boot's journal:\n{units}\n{journal}"
        );
    }
    eprintln!(
        "vm: boot {:.1?}, whole test {:.1?}",
        vm.boot_time,
        started.elapsed()
    );
}

/// Ticks the slow hook prints before dpkg runs, one a second: long enough to find the job
/// running and kill tendhost under emulation, where every look at the guest costs a login.
const TICKS: usize = 20;

fn spawn_update(env: &TestEnv) -> Child {
    tendhost_std(env)
        .args(["--batch", "update", "--json", "--allow-removals"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// On the guest the first scenario left (everything at 1.1, rebooted): `tendhost-svc` 1.2
/// comes from the image's second repository.
fn kill_9_mid_upgrade_then_restart_reattaches_and_names_the_unit_the_update_broke(vm: &Vm) {
    let started = Instant::now();
    vm.ssh(&format!(
        "echo '{NEXT_REPO}' > /etc/apt/sources.list.d/next.list"
    ));
    let earlier = job_ids(vm);
    vm.ssh(&format!(
        "echo 'DPkg::Pre-Invoke {{ \"i=1; while [ $i -le {TICKS} ]; do echo tick-$i; \
         i=$((i+1)); sleep 1; done\"; }};' > /etc/apt/apt.conf.d/99tendhost-slow"
    ));
    // The update's unit fails to start: the verification after the upgrade must name it.
    vm.ssh(&format!("touch {BREAK_FILE}"));
    let env = TestEnv::new();
    config(&env, vm, false);
    let mut child = spawn_update(&env);
    let mut id = String::new();
    wait_until("the upgrade job started on the guest", || {
        id = job_ids(vm)
            .into_iter()
            .rfind(|j| !earlier.contains(j))
            .unwrap_or_default();
        !id.is_empty()
            && vm
                .try_ssh(&format!("test -e /var/lib/tendhost/jobs/{id}/started"))
                .is_ok()
    });
    child.kill().unwrap(); // SIGKILL: tendhost gets no say
    child.wait().unwrap();
    let unit = format!("tendhost-job-{id}");
    assert_eq!(job_file(vm, &id, "runner"), "systemd");
    assert_eq!(
        vm.ssh(&format!("systemctl is-active {unit} || true"))
            .trim(),
        "active",
        "the job's unit is not running after tendhost died"
    );
    assert!(
        job_file(vm, &id, "exit").is_empty(),
        "the job ended before tendhost was killed; the hook is too fast"
    );

    // A new run finds the job in its snapshot, follows the unit to its end, and takes its
    // outcome: the upgrade itself succeeded, then the post-update checks, against the
    // baseline the killed run took before it, found the unit the update broke.
    // `hosts` lists; the host's failure is in its line, not in the listing's exit code.
    let out = run_expecting(&env, &["--batch", "hosts", "--json"], 0);
    assert_eq!(job_file(vm, &id, "exit"), "0");
    let lines = json_lines(&out);
    assert_reattached(&lines);
    assert_eq!(vm.version("tendhost-svc"), "1.2");
    let log = job_file(vm, &id, "log");
    assert!(log.contains(&format!("tick-{TICKS}")), "{log}");
    // `--collect`: the finished unit is gone from systemd, not left failed or inactive.
    assert_eq!(
        vm.ssh(&format!(
            "systemctl show -p LoadState --value {unit} 2>/dev/null || true"
        ))
        .trim(),
        "not-found"
    );

    let post = checked(&lines, "vm", "post_update");
    let failed = check(&post["checks"], "failed_units", "post_update");
    let detail = failed["detail"].as_str().unwrap();
    assert_eq!(failed["ok"], false, "{failed}");
    assert!(detail.contains(UPDATE_UNIT), "{failed}");
    assert!(!detail.contains(PRE_FAILED_UNIT), "{failed}");
    let host = host_line(&lines, "vm");
    assert_eq!(host["state"], "failed", "{host}");
    let error = host["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(UPDATE_UNIT) && !error.contains(PRE_FAILED_UNIT),
        "{host}"
    );
    eprintln!(
        "vm: boot {:.1?}, whole test {:.1?}",
        vm.boot_time,
        started.elapsed()
    );
}
