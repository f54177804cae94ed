//! Issue 14, notifications: a real `--batch wave` on a harness apt host tells ntfy, a generic
//! webhook, Slack, Discord, an SMTP server and a command hook (each a real local sink), retries a
//! sink answering 500, and a dead or always-failing notifier fails nothing: the wave's exit code
//! is unchanged, the failure is logged and audited, and the token never leaks. The audit
//! webhook gets the audit records as JSON arrays. `tendhost notify test NAME` reaches its sink.

use std::fs;

use serde_json::Value;

use crate::batch::{run_expecting, tendhost};
use crate::harness::TestEnv;
use crate::harness::apthost::{AptHost, Packages};
use crate::harness::http_sink::{HttpSink, dead_port};
use crate::harness::smtp_sink::SmtpSink;

const TOKEN_VAR: &str = "TENDHOST_TEST_NOTIFY_TOKEN";
const TOKEN: &str = "tok-s3cret-7f3a";

#[test]
fn a_wave_tells_every_sink_and_a_failing_notifier_fails_nothing() {
    let host = AptHost::start("notify", Packages::Upgradable);
    let env = TestEnv::new();
    env.trust(&host.sshd);
    let sink = HttpSink::start();
    let flaky = HttpSink::failing_first(2);
    let broken = HttpSink::failing_first(usize::MAX);
    let smtp = SmtpSink::start();
    let hook_out = env.dir.path().join("hook.txt");
    let dead = dead_port();
    let notifiers = format!(
        r#"
[[notify]]
name = "phone"
kind = "ntfy"
server = "{ntfy}"
topic = "fleet"
token_env = "{TOKEN_VAR}"
on = ["wave_finished"]

[[notify]]
name = "hook"
kind = "webhook"
url = "{hook}"
on = ["wave_finished", "wave_halted", "reboot_needed", "host_failed"]

[[notify]]
name = "chat"
kind = "slack"
url = "{slack}"
on = ["wave_finished"]

[[notify]]
name = "dc"
kind = "discord"
url = "{discord}"
on = ["wave_finished"]

[[notify]]
name = "mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
tls = "none"
from = "tendhost@example.com"
to = ["ops@example.com"]
on = ["wave_finished"]

[[notify]]
name = "script"
kind = "command"
command = 'cat > {hook_out}; printf "\n%s|%s|%s\n" "$TENDHOST_EVENT" "$TENDHOST_SUMMARY" "${{{TOKEN_VAR}:-hidden}}" >> {hook_out}'
on = ["wave_finished"]

[[notify]]
name = "retried"
kind = "webhook"
url = "{flaky}"
on = ["wave_finished"]

[[notify]]
name = "dead"
kind = "webhook"
url = "http://127.0.0.1:{dead}/hook"
token_env = "{TOKEN_VAR}"
on = ["wave_finished"]

[[notify]]
name = "refusing"
kind = "discord"
url = "{refusing}"
on = ["wave_finished"]
"#,
        ntfy = sink.url("/ntfy"),
        hook = sink.url("/hook"),
        slack = sink.url("/slack"),
        discord = sink.url("/discord"),
        smtp_port = smtp.addr.port(),
        hook_out = hook_out.display(),
        flaky = flaky.url("/flaky"),
        refusing = broken.url("/refusing"),
    );
    env.write_config(&format!(
        "[audit]\nwebhook = \"{}\"\n\n{}manager = \"apt\"\n\n[host.policy]\nauto_reboot = false\n{notifiers}",
        sink.url("/audit"),
        env.host_toml("deb", &host.sshd, "root")
    ));
    let out = tendhost(&env)
        .env(TOKEN_VAR, TOKEN)
        .args(["--batch", "wave", "--allow-removals"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Upgraded, waiting for the reboot auto_reboot = false leaves to the operator: exit 0, as
    // without notifiers, although three of them fail.
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // Everything below was delivered before the process exited (shutdown's grace period).
    let summary = "wave 1 finished: 1 updated, 0 failed, 0 skipped";
    let ntfy = &sink.wait_for("/ntfy/fleet", 1)[0];
    assert_eq!(ntfy.method, "POST");
    assert_eq!(ntfy.header("title"), Some(summary));
    assert_eq!(ntfy.header("priority"), Some("default"));
    assert_eq!(ntfy.header("tags"), Some("tendhost,white_check_mark"));
    assert_eq!(
        ntfy.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(ntfy.text(), format!("{summary}\ndeb: updated"));

    let hook = sink.wait_for("/hook", 2);
    let events: Vec<Value> = hook.iter().map(|r| r.json()).collect();
    let reboot = events
        .iter()
        .find(|e| e["event"] == "reboot_needed")
        .unwrap_or_else(|| panic!("no reboot_needed in {events:#?}"));
    assert_eq!(
        reboot["summary"],
        "host deb needs a reboot: auto_reboot is off for this host; reboot it when convenient"
    );
    assert_eq!(reboot["hosts"][0]["outcome"], "waiting_reboot");
    let finished = events
        .iter()
        .find(|e| e["event"] == "wave_finished")
        .unwrap_or_else(|| panic!("no wave_finished in {events:#?}"));
    assert_eq!(finished["summary"], summary);
    assert_eq!(
        finished["hosts"],
        serde_json::json!([{"host": "deb", "outcome": "updated"}])
    );
    assert_eq!(finished["tendhost"], env!("CARGO_PKG_VERSION"));
    assert!(finished["at"].is_string());
    assert!(hook[0].header("authorization").is_none());

    let text = format!("{summary}\ndeb: updated");
    assert_eq!(
        sink.wait_for("/slack", 1)[0].json(),
        serde_json::json!({ "text": text })
    );
    assert_eq!(
        sink.wait_for("/discord", 1)[0].json(),
        serde_json::json!({ "content": text })
    );

    let mail = &smtp.wait_for(1)[0];
    assert_eq!(mail.from, "tendhost@example.com");
    assert_eq!(mail.to, ["ops@example.com"]);
    assert!(
        mail.data.contains(&format!("Subject: {summary}\r\n")),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("deb: updated"), "{}", mail.data);

    let hooked = fs::read_to_string(&hook_out).expect("the command hook did not run");
    assert_eq!(hooked, format!("{text}\nwave_finished|{summary}|hidden\n"));

    // 500, 500, then delivered; the always-refusing sink saw every attempt.
    assert_eq!(flaky.wait_for("/flaky", 3).len(), 3);
    assert_eq!(broken.wait_for("/refusing", 4).len(), 4);

    // The audit webhook: JSON arrays of the audit file's records.
    let posted: Vec<Value> = sink
        .wait_for("/audit", 1)
        .iter()
        .flat_map(|r| r.json().as_array().cloned().unwrap())
        .collect();
    assert!(
        posted.iter().any(|r| r["action"] == "wave_start"),
        "{posted:#?}"
    );

    // Failures are logged and audited, naming the notifier and the server only.
    let audit = fs::read_to_string(env.state_dir().join("tendhost/audit.jsonl")).unwrap();
    let failed: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["action"] == "notify")
        .collect();
    assert_eq!(failed.len(), 2, "{audit}");
    let details: Vec<&str> = failed
        .iter()
        .map(|r| r["detail"].as_str().unwrap())
        .collect();
    assert!(
        details.iter().any(|d| d.starts_with(&format!(
            "dead: wave_finished: POST to http://127.0.0.1:{dead}: "
        ))),
        "{details:?}"
    );
    assert!(
        details.contains(
            &format!(
                "refusing: wave_finished: POST to {}: the server answered 500",
                broken.url("")
            )
            .as_str()
        ),
        "{details:?}"
    );
    assert!(failed.iter().all(|r| r["result"] == "failed"));
    let log = fs::read_to_string(env.state_dir().join("tendhost/tendhost.log")).unwrap_or_default();
    for text in [&*stderr, &audit, &log] {
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
    }
    assert!(
        log.contains("notifier 'dead' (webhook): wave_finished not delivered"),
        "{log}"
    );
}

#[test]
fn notify_test_reaches_the_sink_or_says_why_not() {
    let env = TestEnv::new();
    let sink = HttpSink::start();
    let smtp = SmtpSink::start();
    let dead = dead_port();
    env.write_config(&format!(
        "[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\ntoken_env = \"{TOKEN_VAR}\"\n\n\
         [[notify]]\nname = \"gone\"\nkind = \"slack\"\nurl = \"http://127.0.0.1:{dead}/x\"\n\n\
         [[notify]]\nname = \"nokey\"\nkind = \"ntfy\"\nserver = \"{}\"\ntopic = \"t\"\n\
         token_env = \"TENDHOST_TEST_UNSET_TOKEN\"\n\n\
         [[notify]]\nname = \"strict\"\nkind = \"email\"\nsmtp_host = \"127.0.0.1\"\n\
         smtp_port = {}\nfrom = \"a@example.com\"\nto = \"b@example.com\"\n",
        sink.url("/test"),
        sink.url(""),
        smtp.addr.port()
    ));
    let out = run_expecting(&env, &["--batch", "check"], 0);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains(
            "  notify hook                webhook                      \
             wave_finished,wave_halted,reboot_needed,schedule_skipped\n"
        ),
        "{listed}"
    );

    let out = tendhost(&env)
        .env(TOKEN_VAR, TOKEN)
        .args(["notify", "test", "hook"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "notifier 'hook': test message delivered (1 attempt(s))\n"
    );
    let request = &sink.wait_for("/test", 1)[0];
    assert_eq!(request.json()["event"], "test");
    assert_eq!(
        request.json()["summary"],
        "tendhost test message for notifier 'hook'"
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    let out = run_expecting(&env, &["notify", "test", "gone"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "tendhost: notifier 'gone' (slack): not delivered after 4 attempt(s): POST to \
             http://127.0.0.1:{dead}: "
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("/x"), "the URL's path leaked: {stderr}");

    let out = run_expecting(&env, &["notify", "test", "nokey"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "reading the ntfy token: the environment variable TENDHOST_TEST_UNSET_TOKEN is not set"
        ),
        "{stderr}"
    );

    // tls = "starttls" (the default) is required: a server without STARTTLS gets no mail.
    let out = run_expecting(&env, &["notify", "test", "strict"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "tendhost: notifier 'strict' (email): not delivered after 4 attempt(s): SMTP to \
             127.0.0.1:{}: ",
            smtp.addr.port()
        )),
        "{stderr}"
    );
    assert!(smtp.mails().is_empty());

    let out = run_expecting(&env, &["notify", "test", "hok"], 2);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tendhost: no notifier named 'hok' (did you mean 'hook'?)\n"
    );
}
