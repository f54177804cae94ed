//! `[audit] webhook`: every audit record also POSTed as JSON, batched (an array of records per
//! POST), through the notifiers' HTTP delivery (`notify::http`: bounded in time, retried with
//! backoff).
//!
//! It never holds up an action: the appender hands each written line over without waiting, into
//! a bounded queue that drops its oldest line when full (counted, logged). The file stays the
//! record of truth: a batch the server keeps refusing is dropped with a warning.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::notify::http::{self, HttpError, Post};

/// Lines waiting to be posted before the oldest is dropped.
const QUEUE: usize = 1000;
/// Most records in one POST.
const BATCH: usize = 100;
/// One POST's bound.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long queued records may still go out once the audit log closes (shutdown).
const GRACE: Duration = Duration::from_secs(10);

struct Shared {
    /// A std mutex: held to push or take a few lines, never across an await.
    queue: Mutex<VecDeque<String>>,
    wake: Notify,
    /// When the appender let go: queued records may go out until [`GRACE`] after it.
    closed_at: OnceLock<Instant>,
    dropped: AtomicU64,
}

impl Shared {
    fn new() -> Self {
        Shared {
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            closed_at: OnceLock::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// `None` while the appender runs; then the end of the grace period.
    fn deadline(&self) -> Option<Instant> {
        self.closed_at.get().map(|at| *at + GRACE)
    }
}

/// The appender's end: [`push`](Self::push) never waits. Dropping it lets the poster drain
/// what is queued (within a grace period) and stop.
pub(crate) struct AuditWebhook {
    shared: Arc<Shared>,
}

impl AuditWebhook {
    /// Starts the poster task on `tracker`.
    pub(crate) fn spawn(url: String, tracker: &TaskTracker) -> Self {
        let shared = Arc::new(Shared::new());
        tracker.spawn(post_all(url, shared.clone()));
        AuditWebhook { shared }
    }

    /// Queues written audit lines (JSON objects) for the webhook.
    pub(crate) fn push(&self, lines: &[String]) {
        {
            let mut queue = lock(&self.shared.queue);
            for line in lines {
                if queue.len() == QUEUE {
                    queue.pop_front();
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                }
                queue.push_back(line.clone());
            }
        }
        self.shared.wake.notify_one();
    }
}

impl Drop for AuditWebhook {
    fn drop(&mut self) {
        let _ = self.shared.closed_at.set(Instant::now());
        self.shared.wake.notify_one();
    }
}

async fn post_all(url: String, shared: Arc<Shared>) {
    loop {
        let batch: Vec<String> = {
            let mut queue = lock(&shared.queue);
            let n = queue.len().min(BATCH);
            queue.drain(..n).collect()
        };
        let dropped = shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                "audit webhook: {dropped} oldest record(s) dropped from a full queue (the audit \
                 file has them)"
            );
        }
        if batch.is_empty() {
            if shared.closed_at.get().is_some() {
                return;
            }
            shared.wake.notified().await;
            continue;
        }
        if shared.deadline().is_some_and(|at| at <= Instant::now()) {
            let left = lock(&shared.queue).len() + batch.len();
            tracing::warn!(
                "audit webhook: {left} record(s) not sent before tendhost stopped (the audit \
                 file has them)"
            );
            return;
        }
        let body = format!("[{}]", batch.join(",")).into_bytes();
        let post = Post {
            url: crate::notify::http::public_url(&url),
            content_type: "application/json",
            headers: Vec::new(),
            bearer: None,
            body,
            timeout: TIMEOUT,
        };
        let sent = http::retry(
            || shared.deadline(),
            HttpError::Stopped,
            || http::post(post.clone()),
        )
        .await;
        if let Err((err, tries)) = sent {
            tracing::warn!(
                "audit webhook: {} record(s) not delivered ({tries} attempt(s)): {} (the audit \
                 file has them)",
                batch.len(),
                crate::errors::chain(&err)
            );
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_its_oldest_lines() {
        let shared = Arc::new(Shared::new());
        let hook = AuditWebhook {
            shared: shared.clone(),
        };
        let lines: Vec<String> = (0..QUEUE + 5).map(|i| i.to_string()).collect();
        hook.push(&lines);
        let queue = lock(&shared.queue);
        assert_eq!(queue.len(), QUEUE);
        assert_eq!(queue.front().map(String::as_str), Some("5"));
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 5);
    }
}
