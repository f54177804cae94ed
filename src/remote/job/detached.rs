//! [`JobExecutor`]: an [`Executor`] that runs commands marked [`RemoteCommand::detached`] as
//! detached jobs and passes every other command through unchanged, so the package managers and
//! compose code need not know how their mutations run.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Detach, Follow, JobEnd, JobId, JobJournal, JobStart, script};
use crate::remote::Stream;
use crate::remote::{CommandOutput, Error, Executor, OutputLine, RemoteCommand};

/// How long the launcher may take (it waits up to 30 s for the wrapper itself).
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(60);
/// The first pause before following again after the connection dropped; doubled up to
/// [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(10);
/// How much of a job's log is kept for the [`CommandOutput`] callers read errors from.
const KEPT_LOG: usize = 64 * 1024;

/// Runs detached commands as jobs on the host behind `inner`, recording them in `journal`.
pub struct JobExecutor<'a> {
    pub inner: &'a dyn Executor,
    /// The host's `job_dir`: its jobs and its host lock.
    pub base: &'a str,
    pub journal: &'a dyn JobJournal,
    /// Who started the job, for anyone the host lock refuses: `tendhost on box (user, pid 7)`.
    pub holder: &'a str,
    /// How long tendhost follows a job before reporting it as outliving its bound. The job
    /// itself is never stopped for it.
    pub timeout: Duration,
    /// Stops the following (tendhost is stopping); the job runs on.
    pub detach: &'a CancellationToken,
}

impl fmt::Debug for JobExecutor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobExecutor")
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait]
impl Executor for JobExecutor<'_> {
    async fn run(
        &self,
        command: &RemoteCommand,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput, Error> {
        match command.detached {
            Some(detach) => self.run_job(command, detach, lines, cancel).await,
            None => self.inner.run(command, lines, cancel).await,
        }
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn disconnect(&self) {
        self.inner.disconnect().await;
    }
}

impl JobExecutor<'_> {
    async fn run_job(
        &self,
        command: &RemoteCommand,
        detach: Detach,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput, Error> {
        let start = JobStart {
            id: JobId::new(Utc::now()),
            label: detach.label,
            started: Utc::now(),
        };
        let id = &start.id;
        self.journal
            .starting(&start)
            .await
            .map_err(|message| Error::WriteAhead {
                job: detach.label,
                message,
            })?;
        if let Err(e) = self.launch(&start, command, cancel).await {
            self.journal.finished(id, None).await;
            return Err(e);
        }
        tracing::info!(job = %id, target = %self.inner.describe(), "started {}", detach.label);
        let mut kept = KeptLog::default();
        let (tx, mut rx) = mpsc::channel::<OutputLine>(64);
        let keep = async {
            while let Some(line) = rx.recv().await {
                kept.push(&line.line);
                if let Some(lines) = lines {
                    let _ = lines.send(line).await;
                }
            }
        };
        let follow = async {
            let end = self
                .follow(id, detach.label, 0, detach.follow, Some(&tx), cancel)
                .await;
            drop(tx);
            end
        };
        let (end, ()) = tokio::join!(follow, keep);
        let end = end?;
        match end {
            JobEnd::Exited(code) => Ok(CommandOutput {
                exit_code: u32::try_from(code).ok(),
                signal: None,
                stdout: kept.into_text(),
                ..Default::default()
            }),
            JobEnd::Vanished | JobEnd::Gone => Err(Error::JobVanished {
                job: id.to_string(),
                target: self.inner.describe(),
            }),
        }
    }

    /// Starts the job; `Err` when it could not start, with the holder when the lock was taken.
    async fn launch(
        &self,
        start: &JobStart,
        command: &RemoteCommand,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let holder = format!(
            "{}, job {} ({}) started {}",
            self.holder,
            start.id,
            start.label,
            start.started.format("%Y-%m-%d %H:%M:%S UTC")
        );
        let launcher = RemoteCommand::new(
            script::launch(self.base, &start.id, &command.script, &holder),
            LAUNCH_TIMEOUT,
        )
        .privileged();
        let out = self.inner.run(&launcher, None, cancel).await?;
        let said = out.stdout.trim();
        let marker = |what: &str| format!("{} {what}", script::END_MARKER);
        if out.success() && said.starts_with(&marker("started")) {
            return Ok(());
        }
        if out.success()
            && let Some(holder) = said.strip_prefix(&marker("locked"))
        {
            return Err(Error::HostLocked {
                target: self.inner.describe(),
                holder: holder.trim().replace('\n', " "),
            });
        }
        let detail = if said.ends_with("no-start") {
            "the job did not start within 30 s".to_string()
        } else {
            super::unexpected(self.inner, "starting the job", &out).to_string()
        };
        Err(Error::Job {
            target: self.inner.describe(),
            message: detail,
        })
    }

    /// Follows job `id`'s log from byte `from` to the job's end, sending its lines to `lines`;
    /// with [`Follow::ToTheEnd`] it starts again from the offset it had whenever the connection
    /// drops, until `timeout` has passed. Tells the journal the offset as it goes and how the
    /// job ended.
    pub async fn follow(
        &self,
        id: &JobId,
        label: &str,
        from: u64,
        mode: Follow,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<JobEnd, Error> {
        let deadline = Instant::now() + self.timeout;
        let outlived = || Error::JobOutlived {
            job: id.to_string(),
            label: label.to_string(),
            after: self.timeout,
        };
        let mut offset = from;
        let mut pause = FIRST_PAUSE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let once = self.follow_once(id, &mut offset, lines, left, cancel);
            let result = tokio::select! {
                result = once => result,
                () = self.detach.cancelled() => Err(Error::Cancelled),
            };
            match result {
                Ok(end) => {
                    self.journal.finished(id, end.exit()).await;
                    return Ok(end);
                }
                Err(Error::Cancelled) => {
                    return Err(Error::Detached {
                        job: id.to_string(),
                        label: label.to_string(),
                    });
                }
                Err(Error::Timeout(_)) => return Err(outlived()),
                // The host gone for a while (a restarting sshd, a network blip) is the case
                // this loop is for: the job runs on, so keep asking until the bound.
                Err(e)
                    if mode == Follow::ToTheEnd
                        && (e.is_transient() || matches!(e, Error::Unreachable { .. })) =>
                {
                    if Instant::now() + pause >= deadline {
                        return Err(outlived());
                    }
                    tracing::info!(job = %id, offset, "following again in {pause:?}: {e}");
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = self.detach.cancelled() => {}
                        () = cancel.cancelled() => {}
                    }
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One follow of job `id`'s log from byte `offset`: its bytes go to `lines` (stdout lines only),
    /// `offset` grows by exactly what arrived (told to `journal` after each batch), and the end
    /// comes back once the job is over. Fails
    /// with the transport's error when the connection drops; `offset` then says where to go on.
    async fn follow_once(
        &self,
        id: &JobId,
        offset: &mut u64,
        lines: Option<&mpsc::Sender<OutputLine>>,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<JobEnd, Error> {
        let command =
            RemoteCommand::new(script::follow(self.base, id, *offset), timeout).privileged();
        let (tx, mut rx) = mpsc::channel::<OutputLine>(64);
        let start = *offset;
        let mut seen = start;
        let forward = async {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                for line in batch {
                    if line.stream != Stream::Stdout {
                        continue;
                    }
                    seen += line.bytes;
                    if let Some(lines) = lines {
                        // Nobody watching the live output is fine.
                        let _ = lines.send(line).await;
                    }
                }
                self.journal.progress(id, seen).await;
            }
            seen
        };
        let run = async {
            let result = self.inner.run(&command, Some(&tx), cancel).await;
            drop(tx);
            result
        };
        let (result, seen) = tokio::join!(run, forward);
        *offset = seen;
        let out = result?;
        super::parse_end(&out.stderr).ok_or_else(|| super::unexpected(self.inner, "job log", &out))
    }
}

/// The newest [`KEPT_LOG`] bytes of a job's log, for the error a caller builds from it.
#[derive(Default)]
struct KeptLog {
    lines: VecDeque<String>,
    bytes: usize,
}

impl KeptLog {
    fn push(&mut self, line: &str) {
        self.bytes += line.len() + 1;
        self.lines.push_back(line.to_string());
        while self.bytes > KEPT_LOG
            && let Some(old) = self.lines.pop_front()
        {
            self.bytes -= old.len() + 1;
        }
    }

    fn into_text(self) -> String {
        let mut text = String::with_capacity(self.bytes);
        for line in self.lines {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }
}
