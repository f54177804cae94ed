//! Detached jobs: every command that changes a host (upgrades, compose pull/up, the reboot)
//! runs on the host as a job of its own, outside the SSH session that started it, so a dropped
//! connection or a killed tendhost never stops it half-way, and a later tendhost can ask how it
//! ended.
//!
//! A command marked with [`RemoteCommand::detached`] and run through a [`JobExecutor`] is:
//! written ahead into the caller's [`JobJournal`] (nothing starts unless that succeeds), started
//! detached under the host lock ([`script::launch`]), and followed: its log streams line by line
//! and, when the connection drops, the follow starts again from the byte offset it had, so no
//! line is lost or doubled. What the host does is in [`script`]; this module speaks only through
//! [`Executor`], like everything above the transports.

mod detached;
mod script;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{CommandOutput, Error, Executor, RemoteCommand};

pub use detached::JobExecutor;
pub(crate) use script::DEFAULT_DIR;

/// Reading about a job is quick; a host that does not answer in this long is not answering.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of a job's log comes with a failure, for the operator.
pub const TAIL_BYTES: u64 = 4096;

/// A job's name on its host: `20261201T030205Z-9f3a1c`. Safe as a path part and a systemd
/// unit name without quoting (it is quoted anyway).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A fresh id: the start time, then randomness so two tendhosts never pick the same one.
    pub fn new(at: DateTime<Utc>) -> Self {
        JobId(format!(
            "{}-{:06x}",
            at.format("%Y%m%dT%H%M%SZ"),
            rand::random::<u32>() & 0x00ff_ffff
        ))
    }

    /// An id read back from a snapshot. Anything but `[0-9A-Za-z-]` is refused there (see
    /// [`JobId::is_valid`]), since it becomes a path on the host.
    pub fn from_string(id: String) -> Self {
        JobId(id)
    }

    pub fn is_valid(&self) -> bool {
        !self.0.is_empty()
            && self.0.len() <= 64
            && self
                .0
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a detached command is followed once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Stream the log to the end, reconnecting from the offset when the connection drops.
    ToTheEnd,
    /// Stream until the job ends or the connection drops, and report the drop as it is: the
    /// reboot, whose job takes the connection down with the host.
    UntilDisconnect,
}

/// What makes a command a detached job: the name its records and errors carry, and how it is
/// followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detach {
    pub label: &'static str,
    pub follow: Follow,
}

/// A job about to start, as the journal records it.
#[derive(Debug, Clone)]
pub struct JobStart {
    pub id: JobId,
    pub label: &'static str,
    pub started: DateTime<Utc>,
}

/// Where a [`JobExecutor`] writes ahead and reports progress. Implemented by the engine, which
/// makes each fact durable (snapshot and audit log) before it answers.
#[async_trait::async_trait]
pub trait JobJournal: Send + Sync {
    /// The job is about to start; it starts only if this returns `Ok`, after the fact is durable.
    async fn starting(&self, job: &JobStart) -> Result<(), String>;
    /// The job's log has been shown up to byte `offset`.
    async fn progress(&self, id: &JobId, offset: u64);
    /// The job is over (`exit` is `None` when it vanished or never started).
    async fn finished(&self, id: &JobId, exit: Option<i32>);
}

/// How a job stands, as its host tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    Running {
        log_bytes: u64,
    },
    Exited {
        code: i32,
        log_bytes: u64,
    },
    /// Not running and no exit status: killed with its wrapper, or the host rebooted under it.
    Vanished,
    /// Refused by the host lock; it never ran.
    Refused,
    /// No such job on the host: pruned, or the host lost `/var/lib/tendhost`.
    Gone,
}

/// How a followed job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    Exited(i32),
    Vanished,
    Gone,
}

impl JobEnd {
    pub fn exit(self) -> Option<i32> {
        match self {
            JobEnd::Exited(code) => Some(code),
            JobEnd::Vanished | JobEnd::Gone => None,
        }
    }
}

/// Asks the host how job `id` stands.
pub async fn status(
    exec: &dyn Executor,
    base: &str,
    id: &JobId,
    cancel: &CancellationToken,
) -> Result<JobStatus, Error> {
    let out = run_query(exec, script::status(base, id), cancel).await?;
    parse_status(&out.stdout).ok_or_else(|| unexpected(exec, "job status", &out))
}

/// The last [`TAIL_BYTES`] of job `id`'s log.
pub async fn log_tail(
    exec: &dyn Executor,
    base: &str,
    id: &JobId,
    cancel: &CancellationToken,
) -> Result<String, Error> {
    Ok(run_query(exec, script::tail(base, id, TAIL_BYTES), cancel)
        .await?
        .stdout)
}

async fn run_query(
    exec: &dyn Executor,
    script: String,
    cancel: &CancellationToken,
) -> Result<CommandOutput, Error> {
    let command = RemoteCommand::new(script, QUERY_TIMEOUT).privileged();
    exec.run(&command, None, cancel).await
}

/// The error for a job script that answered something tendhost did not write.
fn unexpected(exec: &dyn Executor, what: &str, out: &CommandOutput) -> Error {
    let said = out
        .diagnostic()
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .to_string();
    Error::Job {
        target: exec.describe(),
        message: format!(
            "{what}: unexpected answer (exit {:?}): {said}",
            out.exit_code
        ),
    }
}

fn parse_status(stdout: &str) -> Option<JobStatus> {
    let line = stdout.lines().map(str::trim).find(|l| !l.is_empty())?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let bytes = |w: Option<&&str>| w.and_then(|w| w.parse::<u64>().ok());
    Some(match words.as_slice() {
        ["gone"] => JobStatus::Gone,
        ["refused"] => JobStatus::Refused,
        ["running", size] => JobStatus::Running {
            log_bytes: bytes(Some(size))?,
        },
        ["exit", code, size] => JobStatus::Exited {
            code: code.parse().ok()?,
            log_bytes: bytes(Some(size))?,
        },
        ["vanished", _] => JobStatus::Vanished,
        _ => return None,
    })
}

fn parse_end(stderr: &str) -> Option<JobEnd> {
    let line = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(script::END_MARKER))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    Some(match words.as_slice() {
        ["exit", code] => JobEnd::Exited(code.parse().ok()?),
        ["vanished"] => JobEnd::Vanished,
        ["gone"] => JobEnd::Gone,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_path_and_unit_safe() {
        let id = JobId::new(Utc::now());
        assert!(id.is_valid(), "{id}");
        assert!(!JobId::from_string("../x".into()).is_valid());
        assert!(!JobId::from_string(String::new()).is_valid());
    }

    #[test]
    fn statuses_and_ends_parse() {
        assert_eq!(
            parse_status("running 120\n"),
            Some(JobStatus::Running { log_bytes: 120 })
        );
        assert_eq!(
            parse_status("exit 100 7\n"),
            Some(JobStatus::Exited {
                code: 100,
                log_bytes: 7
            })
        );
        assert_eq!(parse_status("vanished 0"), Some(JobStatus::Vanished));
        assert_eq!(parse_status("gone"), Some(JobStatus::Gone));
        assert_eq!(parse_status("refused"), Some(JobStatus::Refused));
        assert_eq!(parse_status("sh: 1: nonsense"), None);
        assert_eq!(
            parse_end("noise\ntendhost-job: exit 3\n"),
            Some(JobEnd::Exited(3))
        );
        assert_eq!(parse_end("tendhost-job: vanished"), Some(JobEnd::Vanished));
        assert_eq!(parse_end("tendhost-job: gone"), Some(JobEnd::Gone));
        assert_eq!(parse_end("Killed"), None);
    }
}
