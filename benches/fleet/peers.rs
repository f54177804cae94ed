//! The peers tendhost is measured against, run as their users would run them: plain OpenSSH
//! (`ssh host true`, one process per host, all at once), pssh (Debian's `parallel-ssh`,
//! `-p` = hosts) and Ansible (ansible-core from PyPI in a cached venv, forks = hosts,
//! pipelining on, fresh ControlPersist sockets for every run so nothing is reused across rows).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Rig;
use crate::hosts::{BOOT_ID, HostKind, REBOOT_COMMAND};

/// Where the Ansible venv is kept between runs (delete it to reinstall).
const ANSIBLE_VENV: &str = "/var/cache/tendhost-bench/ansible";
/// Pinned so figures stay comparable between runs; ansible-core 2.19 runs on Debian 12's
/// Python 3.11 (2.20 needs 3.12).
const ANSIBLE_CORE: &str = "ansible-core>=2.19,<2.20";

/// OpenSSH client options shared by every peer: no user config, the rig's key and known_hosts,
/// strict host keys, never a prompt.
fn ssh_options(rig: &Rig) -> Vec<String> {
    vec![
        "BatchMode=yes".into(),
        "StrictHostKeyChecking=yes".into(),
        format!("UserKnownHostsFile={}", rig.known_hosts.display()),
        "IdentitiesOnly=yes".into(),
        format!("IdentityFile={}", rig.key.display()),
        "LogLevel=ERROR".into(),
    ]
}

/// `ssh host true` for every host at once; `kex` overrides OpenSSH's default key exchange.
/// Returns how many succeeded.
pub(crate) fn openssh_true(rig: &Rig, kex: Option<&str>) -> usize {
    let children: Vec<_> = rig
        .hosts
        .iter()
        .map(|host| {
            let mut cmd = Command::new("ssh");
            cmd.args(["-F", "/dev/null"]);
            for option in ssh_options(rig) {
                cmd.arg("-o").arg(option);
            }
            if let Some(kex) = kex {
                cmd.arg("-o").arg(format!("KexAlgorithms={kex}"));
            }
            cmd.arg(format!("root@{}", host.addr))
                .arg("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawning ssh")
        })
        .collect();
    children
        .into_iter()
        .map(|mut c| c.wait().is_ok_and(|s| s.success()))
        .filter(|ok| *ok)
        .count()
}

/// The per-kind read command pssh and Ansible run.
fn read_command(kind: HostKind) -> &'static str {
    match kind {
        HostKind::Apt => "apt list --upgradable",
        HostKind::Dnf => "dnf -q check-update",
    }
}

/// pssh over each kind of host at once (one `parallel-ssh` per kind, concurrently, each with
/// `-p` = its hosts). Returns how many hosts listed their pending packages.
pub(crate) fn pssh(rig: &Rig) -> usize {
    let mut runs = Vec::new();
    for kind in [HostKind::Apt, HostKind::Dnf] {
        let hosts: Vec<_> = rig.hosts.iter().filter(|h| h.kind == kind).collect();
        if hosts.is_empty() {
            continue;
        }
        let tag = format!("{kind:?}").to_lowercase();
        let list = rig.dir.join(format!("pssh-{tag}.hosts"));
        let lines: String = hosts.iter().map(|h| format!("root@{}\n", h.addr)).collect();
        fs::write(&list, lines).expect("pssh hosts file");
        let out = rig.dir.join(format!("pssh-{tag}.out"));
        let _ = fs::remove_dir_all(&out);
        let mut cmd = Command::new("parallel-ssh");
        cmd.arg("-h")
            .arg(&list)
            .args(["-p", &hosts.len().to_string(), "-t", "0", "-o"])
            .arg(&out)
            .args(["-X", "-F", "-X", "/dev/null"]);
        for option in ssh_options(rig) {
            cmd.arg("-O").arg(option);
        }
        cmd.arg(read_command(kind))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        runs.push((cmd.spawn().expect("spawning parallel-ssh"), out));
    }
    let mut listed = 0;
    for (mut child, out) in runs {
        // dnf's exit 100 ("updates exist") is a failure to pssh: the output decides.
        let _ = child.wait();
        listed += count_listing(&out);
    }
    listed
}

/// Output files (one per host) that name a test package.
fn count_listing(dir: &Path) -> usize {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    fs::read_to_string(e.path()).is_ok_and(|text| text.contains("tendhost-"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// The cached Ansible venv, created on first use (pip from PyPI).
pub(crate) fn ansible_bin() -> PathBuf {
    let venv = Path::new(ANSIBLE_VENV);
    let bin = venv.join("bin");
    if !bin.join("ansible-playbook").exists() {
        eprintln!("fleet: installing {ANSIBLE_CORE} into {ANSIBLE_VENV} (once)");
        let ok = Command::new("/usr/bin/python3")
            .args(["-m", "venv"])
            .arg(venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(bin.join("pip"))
                .args(["install", "-q", ANSIBLE_CORE])
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "installing ansible-core into {ANSIBLE_VENV} failed");
    }
    bin
}

pub(crate) fn ansible_version() -> String {
    let out = Command::new(ansible_bin().join("ansible"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines().next().unwrap_or("ansible ?").to_string()
}

/// ansible.cfg and the inventory for `rig`, with ControlPersist sockets under a directory
/// private to `run`, so one run never reuses another's connections.
fn ansible_setup(rig: &Rig, run: &str) -> PathBuf {
    let dir = rig.dir.join(format!("ansible-{run}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("cp")).expect("ansible dir");
    let mut inventory = String::new();
    for kind in [HostKind::Apt, HostKind::Dnf] {
        let _ = writeln!(inventory, "[{}]", format!("{kind:?}").to_lowercase());
        for host in rig.hosts.iter().filter(|h| h.kind == kind) {
            let _ = writeln!(inventory, "{} ansible_host={}", host.name, host.addr);
        }
    }
    fs::write(dir.join("inventory"), inventory).expect("inventory");
    let ssh_args: Vec<String> = ssh_options(rig)
        .into_iter()
        .map(|o| format!("-o {o}"))
        .collect();
    let cfg = format!(
        "[defaults]\ninventory = {inv}\nforks = {forks}\nremote_user = root\n\
         private_key_file = {key}\nhost_key_checking = True\ngathering = explicit\n\
         interpreter_python = /usr/bin/python3\nretry_files_enabled = False\n\
         local_tmp = {dir}/tmp\nremote_tmp = /tmp/.ansible-tmp\n\n\
         [ssh_connection]\npipelining = True\n\
         ssh_args = -F /dev/null {args} -o ControlMaster=auto -o ControlPersist=60s\n\
         control_path_dir = {dir}/cp\n",
        inv = dir.join("inventory").display(),
        forks = rig.hosts.len(),
        key = rig.key.display(),
        dir = dir.display(),
        args = ssh_args.join(" "),
    );
    fs::write(dir.join("ansible.cfg"), cfg).expect("ansible.cfg");
    dir
}

fn ansible_command(dir: &Path, program: &str) -> Command {
    let mut cmd = Command::new(ansible_bin().join(program));
    cmd.env("ANSIBLE_CONFIG", dir.join("ansible.cfg"))
        .env("HOME", dir)
        .env_remove("SSH_AUTH_SOCK")
        .current_dir(dir)
        .stdin(Stdio::null());
    cmd
}

/// Ad-hoc `command` module, one `ansible` per kind of host at once. Returns how many hosts
/// listed their pending packages.
pub(crate) fn ansible_adhoc(rig: &Rig) -> usize {
    let dir = ansible_setup(rig, "adhoc");
    let mut runs = Vec::new();
    for kind in [HostKind::Apt, HostKind::Dnf] {
        if !rig.hosts.iter().any(|h| h.kind == kind) {
            continue;
        }
        let group = format!("{kind:?}").to_lowercase();
        let child = ansible_command(&dir, "ansible")
            .args([&group, "-o", "-m", "command", "-a", read_command(kind)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning ansible");
        runs.push(child);
    }
    let mut listed = std::collections::HashSet::new();
    for child in runs {
        let out = child.wait_with_output().expect("ansible output");
        listed.extend(hosts_listing(rig, &String::from_utf8_lossy(&out.stdout)));
    }
    listed.len()
}

/// The hosts whose part of `ansible -o` output names a test package. A host's part starts
/// with `NAME | `; a failed command (dnf's exit 100, "updates exist", is one to Ansible)
/// prints more than one line.
fn hosts_listing<'a>(rig: &'a Rig, output: &str) -> std::collections::HashSet<&'a str> {
    let mut listed = std::collections::HashSet::new();
    let mut current = None;
    for line in output.lines() {
        if let Some(host) = rig
            .hosts
            .iter()
            .find(|h| line.starts_with(&format!("{} | ", h.name)))
        {
            current = Some(host.name.as_str());
        }
        if line.contains("tendhost-")
            && let Some(host) = current
        {
            listed.insert(host);
        }
    }
    listed
}

/// The rolling upgrade Ansible users write: `serial: 10`, upgrade with fresh lists, reboot
/// when the host says so (the harness reboot: `reboot_command`, and the emulated boot id as
/// `boot_time_command`), then verify nothing is left pending. apt hosts: the `apt` module
/// (`upgrade: dist`), `/var/run/reboot-required`, `apt list --upgradable`. dnf hosts, the same
/// shape: the `dnf` module (`name: '*'`, `state: latest`, `update_cache`; `use_backend: dnf4`,
/// since without gathered facts it cannot tell dnf4 from dnf5), `dnf needs-restarting -r`
/// (exit 1: reboot), `dnf -q check-update` (exit 0: nothing left). Each task runs on every host
/// of the batch and is skipped where it is not its kind, as a mixed-fleet playbook does.
/// Returns whether it succeeded.
pub(crate) fn ansible_wave(rig: &Rig, serial: usize) -> bool {
    let dir = ansible_setup(rig, "wave");
    let playbook = format!(
        "- hosts: all\n  serial: {serial}\n  gather_facts: false\n  tasks:\n\
         \x20   - name: upgrade (apt)\n      apt:\n        upgrade: dist\n        update_cache: true\n\
         \x20     when: \"'apt' in group_names\"\n\
         \x20   - name: upgrade (dnf)\n      dnf:\n        name: '*'\n        state: latest\n\
         \x20       update_cache: true\n        use_backend: dnf4\n\
         \x20     when: \"'dnf' in group_names\"\n\
         \x20   - name: reboot needed? (apt)\n      stat:\n        path: /var/run/reboot-required\n\
         \x20     register: reboot_required\n      when: \"'apt' in group_names\"\n\
         \x20   - name: reboot needed? (dnf)\n      command: dnf needs-restarting -r\n\
         \x20     register: needs_restarting\n      failed_when: needs_restarting.rc not in [0, 1]\n\
         \x20     changed_when: false\n      when: \"'dnf' in group_names\"\n\
         \x20   - name: reboot\n      reboot:\n        reboot_command: \"{REBOOT_COMMAND}\"\n\
         \x20       boot_time_command: \"cat {BOOT_ID}\"\n        reboot_timeout: 600\n\
         \x20     when: (reboot_required.stat.exists | default(false)) or \
         (needs_restarting.rc | default(0)) == 1\n\
         \x20   - name: verify (apt)\n      shell: apt list --upgradable 2>/dev/null | grep -c tendhost- || true\n\
         \x20     register: left\n      failed_when: left.stdout != '0'\n      changed_when: false\n\
         \x20     when: \"'apt' in group_names\"\n\
         \x20   - name: verify (dnf)\n      command: dnf -q check-update\n\
         \x20     register: left_dnf\n      failed_when: left_dnf.rc != 0\n      changed_when: false\n\
         \x20     when: \"'dnf' in group_names\"\n"
    );
    fs::write(dir.join("wave.yml"), playbook).expect("playbook");
    let out = ansible_command(&dir, "ansible-playbook")
        .arg("wave.yml")
        .output()
        .expect("running ansible-playbook");
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        eprintln!(
            "fleet: ansible-playbook failed ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    out.status.success()
}

/// `count` OpenSSH connections (`ssh host true`) to the first host, one after another, with
/// key exchange `kex`; returns how many succeeded.
pub(crate) fn openssh_sequential(rig: &Rig, kex: &str, count: usize) -> usize {
    let host = &rig.hosts[0];
    (0..count)
        .filter(|_| {
            let mut cmd = Command::new("ssh");
            cmd.args(["-F", "/dev/null"]);
            for option in ssh_options(rig) {
                cmd.arg("-o").arg(option);
            }
            cmd.arg("-o")
                .arg(format!("KexAlgorithms={kex}"))
                .arg(format!("root@{}", host.addr))
                .arg("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .count()
}
