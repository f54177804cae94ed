//! `tendhost host test [SELECTORS]`: connect to every selected host in parallel and say, per
//! host, reachable (with latency) / auth failed / host key unknown / host key changed /
//! unreachable. Exit 1 when any host is not reachable.
//!
//! Uses the same executors as the engine, so a green `host test` means the engine can connect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::config::{HostConfig, KnownHostsPolicy, Transport};
use crate::errors;
use crate::exit::Exit;
use crate::remote::{Error, Executor, LocalExecutor, RemoteCommand, RemoteContext, SshExecutor};
use crate::stdio;

#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    /// Learn unknown host keys (overrides `[ssh] known_hosts = "strict"`).
    pub accept_new: bool,
    pub json: bool,
    /// Most hosts tested at once.
    pub concurrency: usize,
}

/// One host's result.
#[derive(Debug)]
struct Outcome {
    host: String,
    target: String,
    result: &'static str,
    latency: Option<Duration>,
    detail: Option<String>,
}

/// Tests `hosts`, prints one line per host (or JSON), returns the exit code.
pub async fn test_hosts(hosts: &[&HostConfig], ctx: &RemoteContext, opts: &TestOptions) -> Exit {
    let mut ctx = ctx.clone();
    if opts.accept_new {
        ctx.policy = KnownHostsPolicy::AcceptNew;
    }
    // One attempt each: `host test` reports the state now, it does not ride out an outage.
    ctx.max_attempts = 1;
    let ctx = Arc::new(ctx);
    let outcomes: Vec<Outcome> = stream::iter(hosts.iter().map(|h| test_one(h, ctx.clone())))
        .buffered(opts.concurrency.max(1))
        .collect()
        .await;
    let failed = outcomes.iter().filter(|o| o.result != "reachable").count();
    let mut lines = Vec::new();
    if !opts.json {
        lines.push(format!(
            "{:<20} {:<30} {:<17} {:>8}  DETAIL",
            "HOST", "TARGET", "RESULT", "LATENCY"
        ));
    }
    for o in &outcomes {
        lines.push(if opts.json { to_json(o) } else { to_line(o) });
    }
    if !opts.json {
        lines.push(format!(
            "{} reachable, {} failed",
            outcomes.len() - failed,
            failed
        ));
    }
    // A reader that stops early (`| head -1`) has seen what it wanted.
    let _ = lines.iter().try_for_each(stdio::out_line);
    if failed == 0 {
        Exit::Ok
    } else {
        Exit::HostFailed
    }
}

async fn test_one(host: &HostConfig, ctx: Arc<RemoteContext>) -> Outcome {
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let probe = RemoteCommand::new("true", ctx.connect_timeout.max(Duration::from_secs(5)));
    let (target, result) = match host.transport {
        Transport::Local => {
            let exec = LocalExecutor::new();
            (
                exec.describe(),
                exec.run(&probe, None, &cancel).await.map(|_| ()),
            )
        }
        Transport::Ssh => {
            let exec = SshExecutor::new(host, ctx);
            let result = async {
                exec.connect(&cancel).await?;
                exec.run(&probe, None, &cancel).await?;
                Ok::<_, Error>(())
            }
            .await;
            exec.disconnect().await;
            (exec.describe(), result)
        }
    };
    let latency = started.elapsed();
    let (result, detail) = match result {
        Ok(()) => ("reachable", None),
        Err(err) => {
            let label = match &err {
                Error::Auth { .. } | Error::Key { .. } => "auth failed",
                Error::HostKeyUnknown { .. } => "host key unknown",
                Error::HostKeyChanged { .. } | Error::HostKeyRejected { .. } => "host key changed",
                Error::Connect { .. } | Error::Unreachable { .. } | Error::Timeout(_) => {
                    "unreachable"
                }
                _ => "error",
            };
            (label, Some(errors::chain(&err)))
        }
    };
    Outcome {
        host: host.name.to_string(),
        target,
        result,
        latency: (result == "reachable").then_some(latency),
        detail,
    }
}

fn to_line(o: &Outcome) -> String {
    let latency = o
        .latency
        .map(|l| format!("{} ms", l.as_millis()))
        .unwrap_or_else(|| "-".into());
    let mut line = format!(
        "{:<20} {:<30} {:<17} {:>8}",
        o.host, o.target, o.result, latency
    );
    if let Some(detail) = &o.detail {
        line.push_str("  ");
        line.push_str(detail);
    }
    line
}

fn to_json(o: &Outcome) -> String {
    serde_json::json!({
        "type": "host_test",
        "host": o.host,
        "target": o.target,
        "result": o.result,
        "ok": o.result == "reachable",
        "latency_ms": o.latency.map(|l| l.as_millis() as u64),
        "error": o.detail,
    })
    .to_string()
}
