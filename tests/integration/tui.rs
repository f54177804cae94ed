//! The console end to end: the real binary in a real terminal (tmux), driven by keystrokes and
//! read back with `capture-pane`, against harness sshd hosts whose sessions run inside their own
//! Debian roots with a local apt repository (`harness::apthost`).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::harness::apthost::{AptHost, Packages};
use crate::harness::debroot::DebRoot;
use crate::harness::{SshHost, SshdOptions, TestEnv};

/// One tmux server per test (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `command` in an 80×24 session with `escape-time 0`; the shell echoes the exit code
    /// and lingers so the test can read it.
    fn start(name: &str, command: &str, env: &[(&str, String)]) -> Tmux {
        let tmux = Tmux {
            socket: format!("tendhost-{name}-{}", std::process::id()),
        };
        let exports: String = env.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
        let script = format!("env {exports}{command}; echo EXIT=$?; sleep 600");
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "80",
            "-y",
            "24",
            "sh",
            "-c",
            &script,
        ]);
        tmux.run(&["set", "-sg", "escape-time", "0"]);
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running tmux (see .ci/install-test-deps.sh)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// Sends tmux key names one by one, pausing briefly as a person would.
    fn keys(&self, keys: &[&str]) {
        for key in keys {
            self.run(&["send-keys", "-t", "t", key]);
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    /// Types literal text.
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "t", "-l", text]);
        std::thread::sleep(Duration::from_millis(60));
    }

    /// Waits until the screen satisfies `check`, or fails showing the last screen.
    fn wait_for(&self, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("tendhost")
}

fn installed_version(root: &DebRoot, package: &str) -> String {
    root.sh(&format!("dpkg-query -W -f '${{Version}}' {package}"))
}

fn console_env(env: &TestEnv) -> Vec<(&'static str, String)> {
    vec![
        ("XDG_DATA_HOME", env.xdg_data_home().display().to_string()),
        ("TERM", "xterm-256color".to_string()),
        ("RUST_LOG", "tendhost=debug".to_string()),
    ]
}

fn console_command(env: &TestEnv, extra: &str) -> String {
    format!(
        "{} --config {} --state-dir {} {extra}",
        binary().display(),
        env.config_path().display(),
        env.state_dir().display()
    )
}

/// Waits until `host` has `package` at `version`, or fails naming what it has.
fn wait_for_version(host: &AptHost, package: &str, version: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while host.version(package) != version {
        assert!(
            Instant::now() < deadline,
            "{package} stayed at '{}'",
            host.version(package)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Issue 12: a package picked in the package view is updated alone on the host needing it, and
/// the update dialog's security-only toggle then takes only the security update.
#[test]
fn issue12_the_console_updates_only_picked_packages_then_only_security_ones() {
    let host = AptHost::start("tui-scope", Packages::Upgradable);
    let env = TestEnv::new();
    env.trust(&host.sshd);
    env.write_config(&format!(
        "[fleet]\nrefresh_interval = \"0\"\n\n{}manager = \"apt\"\n\n\
         [host.policy]\nauto_reboot = false\n",
        env.host_toml("scoped", &host.sshd, "root")
    ));
    let tmux = Tmux::start("scope", &console_command(&env, ""), &console_env(&env));
    tmux.wait_for("the fleet table", Duration::from_secs(20), |s| {
        s.contains("Hosts 1/1")
    });
    tmux.keys(&["r"]);
    tmux.wait_for("the confirmation", Duration::from_secs(5), |s| {
        s.contains("refresh 1 host?")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("pending updates", Duration::from_secs(60), |s| {
        s.contains("◆1")
    });
    // Security first, then by name: tendhost-kernel, tendhost-app, tendhost-core.
    tmux.keys(&["P"]);
    tmux.wait_for("the package view", Duration::from_secs(5), |s| {
        s.contains("3 pending across 1 hosts")
    });
    tmux.keys(&["j", "Space", "u"]);
    tmux.wait_for("the scoped confirmation", Duration::from_secs(5), |s| {
        s.contains("update 1 host (only tendhost-app)?")
    });
    tmux.keys(&["y"]);
    wait_for_version(&host, "tendhost-app", "1.1");
    tmux.wait_for(
        "the other two still pending",
        Duration::from_secs(60),
        |s| {
            s.contains("2 pending (1 security)") && s.contains("sent to 1 host (only tendhost-app)")
        },
    );
    assert_eq!(host.version("tendhost-kernel"), "1.0");
    assert_eq!(host.version("tendhost-core"), "1.0");

    tmux.keys(&["u"]);
    tmux.wait_for("the update confirmation", Duration::from_secs(5), |s| {
        s.contains("update 1 host?")
    });
    tmux.keys(&["S"]);
    tmux.wait_for("security only", Duration::from_secs(5), |s| {
        s.contains("update 1 host (only security updates)?") && s.contains("security only: on")
    });
    tmux.keys(&["y"]);
    wait_for_version(&host, "tendhost-kernel", "1.1");
    // Its postinst asks for a reboot, which auto_reboot = false leaves to the operator.
    tmux.wait_for("waiting for the reboot", Duration::from_secs(60), |s| {
        s.contains("◇ needs reboot")
    });
    assert_eq!(
        host.version("tendhost-core"),
        "1.0",
        "not a security update"
    );
}

#[test]
fn filters_marks_and_runs_a_dry_run_wave_on_sshd_hosts() {
    let names = ["web-1", "web-2", "db-1"];
    let fleet: Vec<AptHost> = names
        .iter()
        .map(|name| AptHost::start(&format!("tui-{name}"), Packages::Upgradable))
        .collect();
    let env = TestEnv::new();
    let hosts: Vec<&SshHost> = fleet.iter().map(|h| &h.sshd).collect();
    let mut body = String::from("[fleet]\nrefresh_interval = \"0\"\ndelay = \"0s\"\n\n");
    for (name, host) in names.iter().zip(&hosts) {
        env.trust(host);
        let tag = &name[..name.find('-').unwrap_or(name.len())];
        body.push_str(&env.host_toml(name, host, "root"));
        body.push_str(&format!("tags = [\"{tag}\"]\n\n"));
    }
    env.write_config(&body);

    let tmux = Tmux::start("wave", &console_command(&env, ""), &console_env(&env));
    tmux.wait_for("the fleet table", Duration::from_secs(20), |s| {
        s.contains("Hosts 3/3")
    });

    // Refresh every host: mark all, r, confirm.
    tmux.keys(&["*", "r"]);
    let confirm = tmux.wait_for("the confirmation", Duration::from_secs(5), |s| {
        s.contains("refresh 3 hosts?")
    });
    assert!(confirm.contains("web-1, web-2, db-1"), "{confirm}");
    tmux.keys(&["y"]);
    tmux.wait_for(
        "three hosts with pending updates",
        Duration::from_secs(90),
        |s| s.contains("◆3 pending"),
    );

    // Filter to the web hosts, mark them, open the wave dialog.
    tmux.keys(&["c", "/"]);
    tmux.type_text("tag:web");
    tmux.keys(&["Enter"]);
    let filtered = tmux.wait_for("the filter", Duration::from_secs(5), |s| {
        s.contains("Hosts 2/3")
    });
    assert!(filtered.contains("filter: tag:web"), "{filtered}");
    assert!(
        !filtered.contains("db-1 "),
        "db-1 is filtered out:\n{filtered}"
    );
    tmux.keys(&["*", "w"]);
    let dialog = tmux.wait_for("the wave dialog", Duration::from_secs(5), |s| {
        s.contains("2 marked hosts:")
    });
    assert!(dialog.contains("web-1, web-2"), "{dialog}");
    assert!(
        dialog.contains("‹ yes ›"),
        "a wave from the keyboard starts as a dry run:\n{dialog}"
    );
    tmux.keys(&["y"]);
    let done = tmux.wait_for("the wave to finish", Duration::from_secs(120), |s| {
        s.contains("wave done")
    });
    assert!(done.contains("2/2 ok"), "{done}");

    // The Pending tab of the cursor host shows the dry run's plan.
    tmux.keys(&["Tab"]);
    let pending = tmux.wait_for("the Pending tab", Duration::from_secs(5), |s| {
        s.contains("[Pending]")
    });
    assert!(pending.contains("dry run:"), "{pending}");
    assert!(pending.contains("tendhost-app"), "{pending}");

    // The plan removes tendhost-legacy: the update confirmation says the update will be refused
    // unless removals are allowed, and once allowed names what goes where.
    tmux.keys(&["u"]);
    let confirm = tmux.wait_for("the update confirmation", Duration::from_secs(5), |s| {
        s.contains("update 2 hosts?")
    });
    assert!(
        confirm.contains("web-1 would remove: tendhost-legacy"),
        "{confirm}"
    );
    assert!(
        confirm.contains("REFUSED on these 2 hosts unless removals are allowed: press R"),
        "{confirm}"
    );
    tmux.keys(&["R"]);
    let allowed = tmux.wait_for("consent to removals", Duration::from_secs(5), |s| {
        s.contains("R removals: on")
    });
    assert!(
        allowed.contains("removals ALLOWED: tendhost-legacy on web-1"),
        "{allowed}"
    );
    // Withdraw consent and go: real apt plans the removal and the engine refuses the update.
    tmux.keys(&["R", "y"]);
    tmux.wait_for("the refusal", Duration::from_secs(60), |s| {
        s.contains("update refused: the upgrade would remove 'tendhost-legacy'")
    });
    for host in &fleet {
        assert_eq!(
            installed_version(&host.root, "tendhost-app"),
            "1.0",
            "a dry run or a refused update changed a host"
        );
        assert_eq!(installed_version(&host.root, "tendhost-legacy"), "1.0");
    }

    tmux.keys(&["q"]);
    let after = tmux.wait_for("the console to exit", Duration::from_secs(30), |s| {
        s.contains("EXIT=")
    });
    assert!(after.contains("EXIT=0"), "{after}");
    assert!(
        !after.contains("Hosts 2/3"),
        "the alternate screen was left behind:\n{after}"
    );
    let audit = fs::read_to_string(env.state_dir().join("audit.jsonl")).unwrap_or_default();
    assert!(audit.contains("wave"), "the wave is audited: {audit}");
}

#[test]
fn read_only_help_resize_and_quit_with_local_hosts() {
    let env = TestEnv::new();
    env.write_config(
        "[fleet]\nrefresh_interval = \"0\"\n\n\
         [[host]]\nname = \"alpha\"\ntransport = \"local\"\ntags = [\"web\"]\n\n\
         [[host]]\nname = \"beta\"\ntransport = \"local\"\ntags = [\"db\"]\n\n\
         [keys]\nhelp = [\"?\", \"F1\"]\n",
    );
    let mut vars = console_env(&env);
    vars.push(("NO_COLOR", "1".to_string()));
    let tmux = Tmux::start("ro", &console_command(&env, "--read-only"), &vars);
    let screen = tmux.wait_for("the fleet table", Duration::from_secs(20), |s| {
        s.contains("Hosts 2/2")
    });
    assert!(screen.contains("READ-ONLY"), "{screen}");
    assert!(screen.contains("● idle"), "{screen}");

    tmux.keys(&["u"]);
    tmux.wait_for("the read-only message", Duration::from_secs(5), |s| {
        s.contains("read-only: 'update' is disabled")
    });
    // F1 comes from [keys] in the config.
    tmux.keys(&["F1"]);
    tmux.wait_for("the help overlay", Duration::from_secs(5), |s| {
        s.contains("disabled by --read-only")
    });
    tmux.keys(&["BSpace"]);
    tmux.wait_for("help to close", Duration::from_secs(5), |s| {
        !s.contains("disabled by --read-only")
    });

    // Resize the window: the table follows and gains the LAST ERROR column at 140 columns.
    tmux.run(&["resize-window", "-t", "t", "-x", "140", "-y", "30"]);
    let wide = tmux.wait_for("the wide layout", Duration::from_secs(5), |s| {
        s.contains("LAST ERROR")
    });
    assert!(wide.lines().any(|l| l.chars().count() >= 130), "{wide}");
    tmux.run(&["resize-window", "-t", "t", "-x", "80", "-y", "24"]);
    tmux.wait_for("the narrow layout", Duration::from_secs(5), |s| {
        !s.contains("LAST ERROR")
    });

    tmux.keys(&["q"]);
    let after = tmux.wait_for("the console to exit", Duration::from_secs(20), |s| {
        s.contains("EXIT=")
    });
    assert!(after.contains("EXIT=0"), "{after}");
}

#[test]
fn a_second_console_on_the_same_state_dir_is_refused() {
    let env = TestEnv::new();
    env.write_config("[[host]]\nname = \"alpha\"\ntransport = \"local\"\n");
    let tmux = Tmux::start(
        "lock",
        &console_command(&env, "--read-only"),
        &console_env(&env),
    );
    tmux.wait_for("the fleet table", Duration::from_secs(20), |s| {
        s.contains("Hosts 1/1")
    });
    let out = Command::new(binary())
        .args(["--config"])
        .arg(env.config_path())
        .arg("--state-dir")
        .arg(env.state_dir())
        .env("XDG_DATA_HOME", env.xdg_data_home())
        .output()
        .expect("running tendhost");
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another tendhost"));
    tmux.keys(&["q"]);
    tmux.wait_for("the console to exit", Duration::from_secs(20), |s| {
        s.contains("EXIT=0")
    });
}

/// Regenerates `assets/screenshot.png`'s input: a harness fleet in the console at 100×30, with
/// colours, captured by tmux into `target/screenshot.ansi`. Render it with
/// `python3 tools/screenshot.py target/screenshot.ansi assets/screenshot.png`.
/// Ignored by default: it exists to make the picture, and still fails if the scene is wrong.
#[test]
#[ignore = "run by hand to refresh the README screenshot"]
fn screenshot_of_a_harness_fleet() {
    let names = ["web-1", "web-2", "web-3", "db-1", "ci-runner"];
    let tags = [
        "web,production",
        "web,production",
        "web",
        "db,production",
        "ci",
    ];
    let fleet: Vec<AptHost> = names
        .iter()
        .map(|name| AptHost::start(&format!("shot-{name}"), Packages::Upgradable))
        .collect();
    let env = TestEnv::new();
    let hosts: Vec<&SshHost> = fleet.iter().map(|h| &h.sshd).collect();
    let mut legacy = SshHost::start(SshdOptions::default()).expect("starting sshd");
    let mut body = String::from(
        "[fleet]\nrefresh_interval = \"0\"\ndelay = \"0s\"\n\n[groups]\ncanary = [\"web-1\"]\n\n",
    );
    for ((name, host), tags) in names.iter().zip(&hosts).zip(tags) {
        env.trust(host);
        body.push_str(&env.host_toml(name, host, "root"));
        let list: Vec<String> = tags.split(',').map(|t| format!("\"{t}\"")).collect();
        body.push_str(&format!("tags = [{}]\n\n", list.join(", ")));
        if *name == "web-3" {
            // `safe` never removes packages, so the update goes ahead without consent.
            body.push_str("[host.policy]\nupgrade_mode = \"safe\"\nauto_reboot = false\n\n");
        }
    }
    env.trust(&legacy);
    body.push_str(&env.host_toml("legacy-nas", &legacy, "root"));
    body.push_str("tags = [\"storage\"]\n\n");
    env.write_config(&body);
    legacy.stop();

    let tmux = Tmux::start("shot", &console_command(&env, ""), &console_env(&env));
    tmux.run(&["resize-window", "-t", "t", "-x", "100", "-y", "30"]);
    tmux.wait_for("the fleet table", Duration::from_secs(20), |s| {
        s.contains("Hosts 6/6")
    });
    tmux.keys(&["*", "r", "y"]);
    tmux.wait_for("the refresh", Duration::from_secs(90), |s| {
        s.contains("◆5 pending") && s.contains("✖1 failed")
    });
    // A real update of web-3: its kernel package asks for a reboot, which policy holds back.
    tmux.keys(&["c", "G", "u", "y"]);
    tmux.wait_for(
        "web-3 to wait for its reboot",
        Duration::from_secs(120),
        |s| s.contains("needs reboot"),
    );
    // A dry-run wave over the production hosts, then back to the whole fleet.
    tmux.keys(&["/"]);
    tmux.type_text("tag:production");
    tmux.keys(&["Enter", "w", "y"]);
    tmux.wait_for("the wave", Duration::from_secs(120), |s| {
        s.contains("wave done")
    });
    tmux.keys(&["Escape", "g", "Space", "Space", "j", "Tab"]);
    tmux.wait_for("the Pending tab", Duration::from_secs(5), |s| {
        s.contains("[Pending]")
    });
    std::thread::sleep(Duration::from_millis(500));
    let out = tmux.run(&["capture-pane", "-e", "-p", "-t", "t"]);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshot.ansi");
    fs::write(&path, &out.stdout).expect("writing the capture");
    eprintln!("captured {}", path.display());
    tmux.keys(&["q"]);
}

/// The pid of the program the tmux pane's shell is running (the console).
fn console_pid(tmux: &Tmux) -> i32 {
    let out = tmux.run(&["display", "-p", "-t", "t", "#{pane_pid}"]);
    let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let children = fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
        .expect("reading the shell's children");
    children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the console runs under the pane's shell")
}

#[test]
fn sigterm_restores_the_terminal_and_exits_3() {
    let env = TestEnv::new();
    env.write_config("[[host]]\nname = \"alpha\"\ntransport = \"local\"\n");
    let tmux = Tmux::start("term", &console_command(&env, ""), &console_env(&env));
    tmux.wait_for("the fleet table", Duration::from_secs(20), |s| {
        s.contains("Hosts 1/1")
    });
    let pid = console_pid(&tmux);
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let after = tmux.wait_for("the console to exit", Duration::from_secs(20), |s| {
        s.contains("EXIT=")
    });
    assert!(after.contains("EXIT=3"), "{after}");
    assert!(
        !after.contains("Hosts 1/1"),
        "the alternate screen was left behind:\n{after}"
    );
}

#[test]
fn a_bad_keys_section_is_a_usage_error() {
    let env = TestEnv::new();
    env.write_config(
        "[[host]]\nname = \"alpha\"\ntransport = \"local\"\n\n[keys]\nupdte = \"U\"\n",
    );
    let out = Command::new(binary())
        .arg("--config")
        .arg(env.config_path())
        .arg("--state-dir")
        .arg(env.state_dir())
        .output()
        .expect("running tendhost");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tendhost: [keys]: unknown action 'updte' (did you mean 'update'?)"),
        "{stderr}"
    );
}

/// The pane's title as tmux keeps it (what an OSC 0 from the program would change).
fn pane_title(tmux: &Tmux) -> String {
    let out = tmux.run(&["display", "-p", "-t", "t", "#{pane_title}"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Issue 10: escape sequences a host sends (os-release, a check's output) are removed by the
/// console before they are drawn: the pane's title is not set to "pwned", the screen is not
/// cleared, and the host's words read cleanly.
#[test]
fn issue10_host_sent_escapes_never_retitle_or_clear_the_console() {
    use crate::hostile::{hostile_check, hostile_host};
    let host = hostile_host("tui-hostile");
    let env = TestEnv::new();
    env.trust(&host.sshd);
    env.write_config(&format!(
        "[fleet]\nrefresh_interval = \"0\"\n\n{}manager = \"none\"\n\n\
         [host.policy]\nauto_reboot = false\n\n[host.checks]\npre = {}\n",
        env.host_toml("evil", &host.sshd, "root"),
        hostile_check(0)
    ));
    let tmux = Tmux::start("hostile", &console_command(&env, ""), &console_env(&env));
    tmux.wait_for("the fleet table", Duration::from_secs(20), |s| {
        s.contains("Hosts 1/1")
    });
    let title = pane_title(&tmux);

    tmux.keys(&["r"]);
    tmux.wait_for("the confirmation", Duration::from_secs(5), |s| {
        s.contains("refresh 1 host?")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the inventory", Duration::from_secs(60), |s| {
        s.contains("os         Debian 12")
    });
    // A real wave runs the host's pre-check, whose output goes to the Log tab.
    tmux.keys(&["w"]);
    tmux.wait_for("the wave dialog", Duration::from_secs(5), |s| {
        s.contains("‹ yes ›")
    });
    tmux.keys(&["d"]);
    tmux.wait_for("a real wave", Duration::from_secs(5), |s| {
        s.contains("REAL: hosts are updated")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the wave to finish", Duration::from_secs(60), |s| {
        s.contains("wave done")
    });
    tmux.keys(&["Tab", "Tab"]);
    let log = tmux.wait_for("the check's output", Duration::from_secs(10), |s| {
        s.contains("check done")
    });
    assert!(!log.contains("pwned"), "{log}");
    assert!(log.contains("E: bad"), "{log}");
    assert!(
        log.contains("Hosts 1/1") && log.contains("HOST"),
        "the screen was cleared:\n{log}"
    );
    let now = pane_title(&tmux);
    assert_eq!(now, title, "the pane title changed");
    assert!(!now.contains("pwned"));

    tmux.keys(&["q"]);
    tmux.wait_for("the console to exit", Duration::from_secs(30), |s| {
        s.contains("EXIT=0")
    });
}

/// The pid of the `tendhost` process below `pid` (itself or a descendant).
fn tendhost_below(pid: i32) -> i32 {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() == "tendhost" {
        return pid;
    }
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .expect("reading the children");
    children
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .map(tendhost_below)
        .find(|&p| p > 0)
        .unwrap_or(0)
}

/// CPU time (user + system) `pid` has used, in clock ticks.
/// CPU clock ticks `pid` used so far; 0 once it is gone.
fn cpu_ticks(pid: i32) -> u64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the `(comm)`, which may hold spaces: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("a comm field") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Issue 10: when the operator's terminal goes away (tmux killed: the pty hangs up and SIGHUP
/// arrives), the console stops like on SIGTERM (exit 3), leaving the upgrade in flight to finish
/// on the host, without spinning on the dead terminal meanwhile (crossterm's reader would,
/// crossterm #793).
#[test]
fn issue10_a_dropped_terminal_stops_the_console_cleanly_without_spinning() {
    drop_the_terminal_mid_upgrade("hangup", "trap 'true' HUP");
}

/// The same with SIGHUP ignored (`nohup`, a session leader that traps it): tendhost keeps it
/// ignored, notices the dead terminal itself and stops all the same.
#[test]
fn issue10_a_dropped_terminal_stops_the_console_even_with_sighup_ignored() {
    drop_the_terminal_mid_upgrade("nohup", "trap '' HUP");
}

/// Starts an upgrade from the console (a real apt hook makes it take ~8 s on the host), kills
/// the tmux server under it, and checks that tendhost stops without burning CPU on the dead
/// terminal and exits 3, leaving the upgrade to finish on the host as its detached job. `trap`
/// is the wrapper shell's: it outlives the hang-up to record the exit code; a caught SIGHUP is
/// reset for the console, an ignored one stays ignored.
fn drop_the_terminal_mid_upgrade(name: &str, trap: &str) {
    let host = AptHost::start(&format!("tui-{name}"), Packages::Upgradable);
    fs::write(
        host.root.path("etc/apt/apt.conf.d/99tendhost-slow"),
        "DPkg::Pre-Invoke { \"sleep 8\"; };\n",
    )
    .unwrap();
    let env = TestEnv::new();
    env.trust(&host.sshd);
    env.write_config(&format!(
        "[fleet]\nrefresh_interval = \"0\"\n\n{}manager = \"apt\"\n\n\
         [host.policy]\nauto_reboot = false\n",
        env.host_toml("victim", &host.sshd, "root")
    ));
    let exit_file = env.dir.path().join("exit-code");
    let script = env.dir.path().join("console.sh");
    fs::write(
        &script,
        format!(
            "{trap}\n{}\necho $? > {}\n",
            console_command(&env, ""),
            exit_file.display()
        ),
    )
    .unwrap();
    let tmux = Tmux::start(
        name,
        &format!("sh {}", script.display()),
        &console_env(&env),
    );
    tmux.wait_for("the fleet table", Duration::from_secs(20), |s| {
        s.contains("Hosts 1/1")
    });
    tmux.keys(&["r"]);
    tmux.wait_for("the confirmation", Duration::from_secs(5), |s| {
        s.contains("refresh 1 host?")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("pending updates", Duration::from_secs(60), |s| {
        s.contains("◆1")
    });
    tmux.keys(&["u"]);
    tmux.wait_for("the update confirmation", Duration::from_secs(5), |s| {
        s.contains("update 1 host?")
    });
    tmux.keys(&["R", "y"]);
    tmux.wait_for("the upgrade", Duration::from_secs(60), |s| s.contains("▲1"));
    let pid = tendhost_below(console_pid(&tmux));
    assert!(pid > 0, "no tendhost process under the pane");

    tmux.run(&["kill-server"]);
    let log = env.state_dir().join("tendhost.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("console interrupted")
    {
        assert!(
            Instant::now() < deadline,
            "the console never noticed its terminal was gone"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Stopping must not burn a core on the dead terminal while it winds down.
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(pid).saturating_sub(before);
    assert!(
        used < 50,
        "tendhost used {used} clock ticks of CPU in 1 s while stopping"
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    while fs::read_to_string(&exit_file)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the console never exited");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(fs::read_to_string(&exit_file).unwrap().trim(), "3");
    // The upgrade was not stopped with tendhost: its job finishes on the host, and the
    // snapshot holds the job for the next start to reattach to.
    let deadline = Instant::now() + Duration::from_secs(120);
    while host.version("tendhost-app") != "1.1" {
        assert!(
            Instant::now() < deadline,
            "the upgrade never finished on the host"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let snapshot = fs::read_to_string(env.state_dir().join("snapshot.json")).unwrap_or_default();
    assert!(
        snapshot.contains("\"label\":\"apt-get upgrade\""),
        "{snapshot}"
    );
}

/// Issue 10: the console reattaches too. An upgrade started by `--batch update` is killed with
/// its tendhost (`kill -9`) mid-job; the console started next shows the host updating while
/// the job's log streams on (the job's own detail line says so), then the job's real outcome:
/// waiting for its reboot (`auto_reboot` is off), the package at its new version.
#[test]
fn issue10_the_console_reattaches_to_an_upgrade_left_running() {
    let host = AptHost::start("tui-reattach", Packages::Upgradable);
    fs::write(
        host.root.path("etc/apt/apt.conf.d/99tendhost-slow"),
        "DPkg::Pre-Invoke { \"i=1; while [ $i -le 30 ]; do echo tick-$i; i=$((i+1)); sleep 0.3; done\"; };\n",
    )
    .unwrap();
    let env = TestEnv::new();
    env.trust(&host.sshd);
    env.write_config(&format!(
        "[fleet]\nrefresh_interval = \"0\"\n\n{}manager = \"apt\"\n\n\
         [host.policy]\nauto_reboot = false\n",
        env.host_toml("victim", &host.sshd, "root")
    ));
    let mut batch = std::process::Command::new(binary())
        .args(["--config", &env.config_path().display().to_string()])
        .args(["--state-dir", &env.state_dir().display().to_string()])
        .args(["--batch", "update", "--json", "--allow-removals"])
        .env("XDG_DATA_HOME", env.xdg_data_home())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = |root: &AptHost| {
        fs::read_dir(root.root.path("var/lib/tendhost/jobs"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| fs::read_to_string(e.ok()?.path().join("log")).ok())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !log(&host).contains("tick-3\n") {
        assert!(
            Instant::now() < deadline,
            "the job never started on the host"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    batch.kill().unwrap();
    batch.wait().unwrap();

    let tmux = Tmux::start("reattach", &console_command(&env, ""), &console_env(&env));
    tmux.wait_for("the reattached job", Duration::from_secs(60), |s| {
        s.contains("▲1") && s.contains("apt-get upgrade")
    });
    tmux.wait_for("the job's real outcome", Duration::from_secs(120), |s| {
        s.contains("◇1")
    });
    assert_eq!(installed_version(&host.root, "tendhost-app"), "1.1");
    tmux.keys(&["Tab", "Tab"]);
    // dpkg ran only after the kill (the hook's ticks come first): its lines are the rest of
    // the job's log, streamed after the reattach.
    tmux.wait_for("the rest of the log", Duration::from_secs(10), |s| {
        s.contains("Unpacking tendhost-app (1.1)")
    });
}

/// Issue 12: the wave dialog's plan on real hosts. Nothing is known at first ("press D"); D
/// dry-runs them from the dialog, the preview fills in as their plans arrive, and v opens the
/// Plan view with each host's upgrades, removal and kept-back package. Nothing changes.
#[test]
fn issue12_the_wave_dialog_previews_the_plan_and_opens_the_plan_view() {
    let full = AptHost::start("tui-plan-full", Packages::Upgradable);
    let safe = AptHost::start("tui-plan-safe", Packages::Upgradable);
    let env = TestEnv::new();
    let mut body = String::from("[fleet]\nrefresh_interval = \"0\"\ndelay = \"0s\"\n\n");
    for (name, host, mode) in [("full", &full, "full"), ("safe", &safe, "safe")] {
        env.trust(&host.sshd);
        body.push_str(&env.host_toml(name, &host.sshd, "root"));
        body.push_str(&format!(
            "[host.policy]\nupgrade_mode = \"{mode}\"\nauto_reboot = false\n\n"
        ));
    }
    env.write_config(&body);

    let tmux = Tmux::start("plan", &console_command(&env, ""), &console_env(&env));
    tmux.wait_for("the fleet table", Duration::from_secs(20), |s| {
        s.contains("Hosts 2/2")
    });
    tmux.keys(&["w"]);
    tmux.wait_for("the preview", Duration::from_secs(5), |s| {
        s.contains("2 without a plan: press D to dry-run them")
    });
    tmux.keys(&["D"]);
    let preview = tmux.wait_for("both plans in the preview", Duration::from_secs(90), |s| {
        s.contains("upgrades 5 · removals 1") && !s.contains("press D")
    });
    assert!(preview.contains("plan 1·1"), "{preview}");

    tmux.keys(&["v"]);
    let view = tmux.wait_for("the Plan view", Duration::from_secs(5), |s| {
        s.contains("batch 1 (canary)")
    });
    assert!(view.contains("tendhost-app 1.0 → 1.1"), "{view}");
    assert!(view.contains("1 removal (tendhost-legacy)"), "{view}");
    assert!(view.contains("kept back: tendhost-core"), "{view}");
    tmux.keys(&["q"]);
    tmux.wait_for("the wave dialog again", Duration::from_secs(5), |s| {
        s.contains("batch sizes")
    });
    tmux.keys(&["q", "q"]);
    let after = tmux.wait_for("the console to exit", Duration::from_secs(30), |s| {
        s.contains("EXIT=")
    });
    assert!(after.contains("EXIT=0"), "{after}");
    for host in [&full, &safe] {
        assert_eq!(installed_version(&host.root, "tendhost-app"), "1.0");
        assert_eq!(installed_version(&host.root, "tendhost-legacy"), "1.0");
    }
}

/// Issue 12: a real wave whose second host fails its pre-check pauses at its threshold (the
/// console's default), the dialog names the host and why, and "skip the failed" finishes it.
#[test]
fn issue12_the_threshold_dialog_asks_and_skip_finishes_the_wave() {
    let env = TestEnv::new();
    env.write_config(
        "[fleet]\nrefresh_interval = \"0\"\nbatch_size = \"1\"\ndelay = \"0\"\n\n\
         [[host]]\nname = \"alpha\"\ntransport = \"local\"\nmanager = \"none\"\n\n\
         [[host]]\nname = \"beta\"\ntransport = \"local\"\nmanager = \"none\"\n\
         [host.checks]\npre = \"false\"\n\n\
         [[host]]\nname = \"gamma\"\ntransport = \"local\"\nmanager = \"none\"\n",
    );
    let mut vars = console_env(&env);
    vars.push(("NO_COLOR", "1".to_string()));
    let tmux = Tmux::start("threshold", &console_command(&env, ""), &vars);
    tmux.wait_for("the fleet table", Duration::from_secs(20), |s| {
        s.contains("Hosts 3/3")
    });
    // The wave dialog starts as a dry run: `d` makes it real, `y` starts it.
    tmux.keys(&["w", "d", "y"]);
    let screen = tmux.wait_for("the threshold dialog", Duration::from_secs(30), |s| {
        s.contains("paused at its threshold")
    });
    assert!(
        screen.contains("✗ beta: pre-check failed (exit 1)"),
        "{screen}"
    );
    assert!(
        screen.contains("skip the failed hosts and continue"),
        "{screen}"
    );
    tmux.keys(&["K"]);
    tmux.wait_for("the wave to finish", Duration::from_secs(30), |s| {
        s.contains(" done") && !s.contains("paused at its threshold")
    });
    tmux.keys(&["q"]);
    let after = tmux.wait_for("the console to exit", Duration::from_secs(20), |s| {
        s.contains("EXIT=")
    });
    assert!(after.contains("EXIT=0"), "{after}");
    let audit = fs::read_to_string(env.state_dir().join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"wave_threshold\"") && audit.contains("\"skip_failed\""),
        "{audit}"
    );
}

/// Issue 12: a console killed (`kill -9`) mid-wave leaves the wave saved; the console started
/// next offers it ("Resume wave started … 1/3 done"), and resuming finishes it at the host that
/// was in flight without redoing the one that had finished. Each host's pre-check appends a
/// line to its own file, so how often each ran is on disk; beta's waits for a gate the test
/// opens only after the kill.
#[test]
fn issue12_a_killed_console_offers_its_wave_and_resuming_redoes_no_finished_host() {
    let env = TestEnv::new();
    let marks = tempfile::tempdir().unwrap();
    let dir = marks.path().display().to_string();
    let pre = |name: &str, gate: bool| {
        let wait = if gate {
            format!(" && while [ ! -e {dir}/go ]; do sleep 0.1; done")
        } else {
            String::new()
        };
        format!("pre = \"echo ran >> {dir}/{name}{wait}\"")
    };
    let host = |name: &str, gate: bool| {
        format!(
            "[[host]]\nname = \"{name}\"\ntransport = \"local\"\nmanager = \"none\"\n\
             [host.checks]\n{}\n\n",
            pre(name, gate)
        )
    };
    env.write_config(&format!(
        "[fleet]\nrefresh_interval = \"0\"\nbatch_size = \"1\"\ndelay = \"0\"\n\n{}{}{}",
        host("alpha", false),
        host("beta", true),
        host("gamma", false)
    ));
    let ran = |name: &str| {
        fs::read_to_string(marks.path().join(name))
            .map(|text| text.lines().count())
            .unwrap_or(0)
    };

    let first = Tmux::start("resume-1", &console_command(&env, ""), &console_env(&env));
    first.wait_for("the fleet table", Duration::from_secs(20), |s| {
        s.contains("Hosts 3/3")
    });
    // The wave dialog starts as a dry run: `d` makes it real, `y` starts it.
    first.keys(&["w", "d", "y"]);
    // beta starts only once alpha's end is on disk; its pre-check has begun: kill now.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ran("beta") == 0 {
        assert!(Instant::now() < deadline, "beta never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = console_pid(&first);
    assert!(
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    first.wait_for("the console to die", Duration::from_secs(20), |s| {
        s.contains("EXIT=137")
    });
    drop(first);
    fs::write(marks.path().join("go"), "").unwrap();

    let second = Tmux::start("resume-2", &console_command(&env, ""), &console_env(&env));
    let offer = second.wait_for("the offer to resume", Duration::from_secs(20), |s| {
        s.contains("Resume wave started")
    });
    assert!(offer.contains("1/3 done"), "{offer}");
    second.keys(&["y"]);
    let done = second.wait_for("the wave to finish", Duration::from_secs(60), |s| {
        s.contains("wave done")
    });
    assert!(done.contains("3/3 ok"), "{done}");
    assert_eq!(ran("alpha"), 1, "alpha had finished: never redone");
    assert_eq!(ran("beta"), 2, "beta was in flight: it runs again");
    assert_eq!(ran("gamma"), 1);
    second.keys(&["q"]);
    let after = second.wait_for("the console to exit", Duration::from_secs(20), |s| {
        s.contains("EXIT=")
    });
    assert!(after.contains("EXIT=0"), "{after}");
}

/// Issue 13 in the console: a host a failed upgrade left half-configured shows "needs repair"
/// in the table and, in its detail pane, the post-update package check that found it; `F`
/// asks, then repairs it as a streamed job, and the pane shows the repair's own check passing.
#[test]
fn issue13_the_console_shows_checks_and_repairs_a_half_configured_host() {
    // tendhost-app 1.2's postinst fails: the upgrade leaves it half-configured.
    let host = AptHost::start("tui-repair", Packages::Broken);
    let env = TestEnv::new();
    env.trust(&host.sshd);
    env.write_config(&format!(
        "[fleet]\nrefresh_interval = \"0\"\n\n{}manager = \"apt\"\n\n\
         [host.policy]\nauto_reboot = false\n",
        env.host_toml("deb", &host.sshd, "root")
    ));
    let failed = std::process::Command::new(binary())
        .args(["--config", &env.config_path().display().to_string()])
        .args(["--state-dir", &env.state_dir().display().to_string()])
        .args(["--batch", "update", "--allow-removals"])
        .env("XDG_DATA_HOME", env.xdg_data_home())
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    // The operator fixed the cause; the database is still half done until a repair.
    host.root
        .sh("printf '#!/bin/sh\\nexit 0\\n' > /var/lib/dpkg/info/tendhost-app.postinst");

    let tmux = Tmux::start("repair", &console_command(&env, ""), &console_env(&env));
    let screen = tmux.wait_for("the host needing repair", Duration::from_secs(60), |s| {
        s.contains("needs repair")
    });
    assert!(
        screen
            .lines()
            .any(|l| l.contains("✗ post-update package_db") && l.contains("tendhost-app")),
        "{screen}"
    );
    tmux.keys(&["F"]);
    tmux.wait_for("the repair dialog", Duration::from_secs(10), |s| {
        s.contains(" Confirm ") && s.to_lowercase().contains("repair")
    });
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("the repaired host", Duration::from_secs(120), |s| {
        s.lines()
            .any(|l| l.contains("✓ repair") && l.contains("package_db"))
    });
    assert!(!screen.contains("needs repair"), "{screen}");
    assert_eq!(
        host.root
            .sh("dpkg-query -W -f '${Status}' tendhost-app")
            .trim(),
        "install ok installed"
    );
}
