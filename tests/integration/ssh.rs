//! The SSH transport against real OpenSSH servers (see `harness::sshd`).

use crate::harness::{SshHost, SshdOptions, start_fleet};

#[test]
fn harness_hosts_run_commands_and_stop_cleanly() {
    let mut hosts = start_fleet(2, &SshdOptions::default()).expect("starting sshd");
    assert_ne!(hosts[0].addr, hosts[1].addr);
    let out = hosts[0]
        .openssh("root", "echo hello; exit 3")
        .expect("running ssh");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    assert_eq!(out.status.code(), Some(3));
    hosts[1].stop();
    assert!(!hosts[1].is_running());
    let out = hosts[1].openssh("root", "true").expect("running ssh");
    assert_eq!(out.status.code(), Some(255), "a stopped host still answers");
    hosts[1].restart().expect("restarting");
    let out = hosts[1].openssh("root", "true").expect("running ssh");
    assert!(out.status.success(), "{}", hosts[1].log());
}

#[test]
fn harness_authorizes_the_non_root_test_user() {
    let host = SshHost::start(SshdOptions::default()).expect("starting sshd");
    let out = host
        .openssh(crate::harness::NOPASSWD_USER, "id -un; sudo -n id -u")
        .expect("ssh");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n0\n", crate::harness::NOPASSWD_USER),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
