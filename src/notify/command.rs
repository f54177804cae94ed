//! Local children a notifier starts: `kind = "command"` (the operator's hook, run by
//! `/bin/sh -c`) and `kind = "sendmail"`. The message goes on stdin; the hook also gets it in
//! `TENDHOST_*` variables. Neither sees a notifier's secret: every variable a `*_env` key names
//! is removed from the child's environment, as `remote::child` removes `TENDHOST_SSH_KEY`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::message::Notice;

/// Why a child did not take the message.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("starting '{program}'")]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{program}' exited with {status}{}", stderr_hint(.stderr))]
    Exit {
        program: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("'{program}' did not finish within {}s (killed)", .timeout.as_secs_f32())]
    Timeout { program: String, timeout: Duration },
    #[error("waiting for '{program}'")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

fn stderr_hint(stderr: &str) -> String {
    match stderr.lines().find(|l| !l.trim().is_empty()) {
        Some(line) => format!(": {}", line.trim()),
        None => String::new(),
    }
}

/// One child to run.
pub(crate) struct Child<'a> {
    /// What the errors call it (the hook's command line, sendmail's path).
    pub(crate) label: &'a str,
    pub(crate) program: &'a std::ffi::OsStr,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(&'static str, String)>,
    pub(crate) stdin: Vec<u8>,
    pub(crate) timeout: Duration,
    /// Variables the child must not inherit (the notifiers' secrets).
    pub(crate) hide: &'a [String],
}

/// The hook's variables: what happened, in words and as JSON.
pub(crate) fn hook_env(notice: &Notice, notifier: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TENDHOST_EVENT", notice.kind.as_str().to_string()),
        ("TENDHOST_SUMMARY", notice.summary.clone()),
        ("TENDHOST_NOTIFIER", notifier.to_string()),
        ("TENDHOST_AT", notice.at.to_rfc3339()),
        (
            "TENDHOST_HOSTS",
            serde_json::to_string(&notice.hosts).unwrap_or_default(),
        ),
    ]
}

/// Runs the child to its end within its timeout (killed past it); a non-zero exit is an error.
pub(crate) async fn run(child: Child<'_>) -> Result<(), CommandError> {
    let program = child.label.to_string();
    let mut command = crate::remote::child::command(child.program);
    command
        .args(&child.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in child.hide {
        command.env_remove(var);
    }
    for (name, value) in &child.env {
        command.env(name, value);
    }
    let mut process = command.spawn().map_err(|source| CommandError::Start {
        program: program.clone(),
        source,
    })?;
    let stdin = process.stdin.take();
    let body = child.stdin;
    let work = async move {
        if let Some(mut stdin) = stdin {
            // A hook that does not read its stdin is fine: a broken pipe is not its failure.
            let _ = stdin.write_all(&body).await;
            drop(stdin);
        }
        process.wait_with_output().await
    };
    match tokio::time::timeout(child.timeout, work).await {
        Err(_) => Err(CommandError::Timeout {
            program,
            timeout: child.timeout,
        }),
        Ok(Err(source)) => Err(CommandError::Wait { program, source }),
        Ok(Ok(output)) if output.status.success() => Ok(()),
        Ok(Ok(output)) => Err(CommandError::Exit {
            program,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NoticeKind;

    #[tokio::test]
    async fn the_hook_reads_the_message_and_its_variables() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let notice = Notice::new(NoticeKind::WaveFinished, "wave 1 finished".into(), vec![]);
        let script = format!(
            "cat > {0}; echo \"$TENDHOST_EVENT|$TENDHOST_SUMMARY|${{HOME:+home}}\" >> {0}",
            crate::remote::quote(&out.display().to_string())
        );
        run(Child {
            label: "hook",
            program: "/bin/sh".as_ref(),
            args: vec!["-c".into(), script],
            env: hook_env(&notice, "n"),
            stdin: notice.text().into_bytes(),
            timeout: Duration::from_secs(10),
            hide: &["HOME".to_string()],
        })
        .await
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "wave 1 finishedwave_finished|wave 1 finished|\n"
        );
    }

    #[tokio::test]
    async fn a_failing_or_slow_hook_is_an_error_naming_it() {
        let child = |script: &str, timeout| Child {
            label: "my-hook",
            program: "/bin/sh".as_ref(),
            args: vec!["-c".into(), script.to_string()],
            env: Vec::new(),
            stdin: Vec::new(),
            timeout,
            hide: &[],
        };
        let err = run(child("echo nope >&2; exit 3", Duration::from_secs(10)))
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, "'my-hook' exited with exit status: 3: nope");
        let err = run(child("sleep 5", Duration::from_millis(100)))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("did not finish within 0.1s"), "{err}");
    }
}
