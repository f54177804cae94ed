//! How many SSH handshakes may be in flight: process-wide, and per sshd endpoint.
//!
//! A handshake (TCP connect or jump tunnel, key exchange, authentication, agent signatures
//! included) is the one moment a connection costs the *server* something it guards: sshd drops
//! new connections once `MaxStartups` of them are unauthenticated (default `10:30:100`: from
//! the 10th on, 30% and rising are refused), and every host behind one jump host hits that jump
//! host's sshd. Commands over open connections are not throttled here; how many hosts are
//! worked on at once is the engine's business (`[fleet] concurrency`, wave batch sizes).
//!
//! One mechanism, two [`Semaphore`]s per handshake: the endpoint's own (acquired first, so a
//! host waiting on a busy jump host does not sit on a process-wide slot others could use), then
//! the process-wide one. Both permits are held until authentication has finished or failed.
//!
//! Knows nothing of routes or sessions: callers name the endpoint (`addr:port`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{DEFAULT_MAX_HANDSHAKES, DEFAULT_MAX_HANDSHAKES_PER_SERVER};

/// The limiter shared by every executor of a process (through `RemoteContext`).
#[derive(Debug)]
pub struct HandshakeThrottle {
    all: Arc<Semaphore>,
    per_server: usize,
    /// One semaphore per `addr:port` ever connected to; a fleet's worth of small entries. A
    /// std mutex: held only to look up or insert, never across an await.
    servers: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Held while one handshake is in flight; dropping it lets the next one start.
#[derive(Debug)]
pub(crate) struct HandshakePermit {
    _server: Option<OwnedSemaphorePermit>,
    _all: Option<OwnedSemaphorePermit>,
}

impl HandshakeThrottle {
    /// At most `max` handshakes in flight, at most `per_server` of them to one endpoint (both
    /// at least 1; the config reader refuses 0).
    pub fn new(max: usize, per_server: usize) -> Self {
        Self {
            all: Arc::new(Semaphore::new(max.max(1))),
            per_server: per_server.max(1),
            servers: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a slot to handshake with `server` (`addr:port`). Cancel-safe: dropping the
    /// future gives up the place in the queue and holds nothing.
    pub(crate) async fn acquire(&self, server: &str) -> HandshakePermit {
        let semaphore = self.server(server);
        // Neither semaphore is ever closed, so acquiring cannot fail; were one closed, going
        // on unthrottled beats never connecting.
        let server = semaphore.acquire_owned().await.ok();
        let all = self.all.clone().acquire_owned().await.ok();
        HandshakePermit {
            _server: server,
            _all: all,
        }
    }

    fn server(&self, server: &str) -> Arc<Semaphore> {
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        servers
            .entry(server.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_server)))
            .clone()
    }
}

impl Default for HandshakeThrottle {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_HANDSHAKES, DEFAULT_MAX_HANDSHAKES_PER_SERVER)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// In flight now and the peak seen, overall and per server.
    #[derive(Default)]
    struct Recorder {
        now: usize,
        peak: usize,
        per_server: HashMap<String, (usize, usize)>,
    }

    async fn burst(throttle: Arc<HandshakeThrottle>, servers: &[&str], each: usize) -> Recorder {
        let recorder = Arc::new(Mutex::new(Recorder::default()));
        let mut tasks = tokio::task::JoinSet::new();
        for server in servers {
            for _ in 0..each {
                let (throttle, recorder, server) =
                    (throttle.clone(), recorder.clone(), server.to_string());
                tasks.spawn(async move {
                    let _permit = throttle.acquire(&server).await;
                    {
                        let mut r = recorder.lock().unwrap();
                        r.now += 1;
                        r.peak = r.peak.max(r.now);
                        let slot = r.per_server.entry(server.clone()).or_default();
                        slot.0 += 1;
                        slot.1 = slot.1.max(slot.0);
                    }
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    let mut r = recorder.lock().unwrap();
                    r.now -= 1;
                    r.per_server.get_mut(&server).unwrap().0 -= 1;
                });
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        Arc::into_inner(recorder).unwrap().into_inner().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limits_in_flight_and_uses_them_all() {
        let throttle = Arc::new(HandshakeThrottle::new(10, 4));
        let servers = ["10.0.0.1:22", "10.0.0.2:22", "jump:22", "10.0.0.4:2222"];
        let seen = burst(throttle, &servers, 50).await;
        assert_eq!(seen.peak, 10, "process-wide peak");
        for server in servers {
            assert_eq!(seen.per_server[server].1, 4, "peak to {server}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_busy_server_does_not_hold_slots_others_could_use() {
        // 100 handshakes queue for one jump host; one other host must still get through at
        // once, because waiting for the server's slot happens before taking a global one.
        let throttle = Arc::new(HandshakeThrottle::new(4, 2));
        let mut holders = Vec::new();
        for _ in 0..2 {
            holders.push(throttle.acquire("jump:22").await);
        }
        let waiting: Vec<_> = (0..100)
            .map(|_| {
                let throttle = throttle.clone();
                tokio::spawn(async move { throttle.acquire("JUMP:22").await })
            })
            .collect();
        tokio::task::yield_now().await;
        let other = tokio::time::timeout(Duration::from_millis(1), throttle.acquire("web:22"))
            .await
            .expect("a free server waited behind a busy one");
        drop((other, holders));
        for task in waiting {
            drop(task.await.unwrap());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_wait_holds_nothing() {
        let throttle = HandshakeThrottle::new(1, 1);
        let held = throttle.acquire("a:22").await;
        let gave_up =
            tokio::time::timeout(Duration::from_millis(5), throttle.acquire("a:22")).await;
        assert!(gave_up.is_err());
        drop(held);
        let _again = tokio::time::timeout(Duration::from_millis(5), throttle.acquire("a:22"))
            .await
            .expect("the cancelled wait kept a slot");
    }
}
