//! The hub: the only receiver of host events. It folds each event into the fleet's host models
//! (the same fold every consumer uses) and keeps each host's recent output, hands
//! the snapshot writer a fresh copy at most every `save_every`, then forwards the event to the
//! frontend, so the TUI and batch persist identically.
//!
//! The snapshot writer is a separate task fed through a `watch` channel: it always writes the
//! newest encoding and never holds up the hub with disk I/O.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::bus::Event;
use crate::config::HostId;
use crate::store::snapshot::{self, SavedHost};

pub(super) struct Hub {
    records: Vec<SavedHost>,
    index: HashMap<HostId, usize>,
    path: PathBuf,
    save_every: Duration,
    dirty: bool,
    cancel: CancellationToken,
    frontend_stalled: bool,
}

/// How long the hub waits for a frontend during shutdown before it stops forwarding.
const STALL: Duration = Duration::from_millis(200);

impl Hub {
    pub(super) fn new(
        initial: &[SavedHost],
        path: PathBuf,
        save_every: Duration,
        cancel: CancellationToken,
    ) -> Self {
        let index = initial
            .iter()
            .enumerate()
            .map(|(i, r)| (r.model.name.clone(), i))
            .collect();
        Hub {
            records: initial.to_vec(),
            index,
            path,
            save_every,
            // Save once at start so a restored "interrupted" state is on disk before anything runs.
            dirty: true,
            cancel,
            frontend_stalled: false,
        }
    }

    pub(super) async fn run(
        mut self,
        mut bus: mpsc::Receiver<Event>,
        frontend: mpsc::Sender<Event>,
    ) {
        let (encoded, latest) = watch::channel::<Option<Vec<u8>>>(None);
        let writer = tokio::spawn(write_snapshots(self.path.clone(), latest));
        let save = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(save);
        loop {
            tokio::select! {
                event = bus.recv() => match event {
                    Some(event) => {
                        self.apply(&event);
                        self.forward(&frontend, event).await;
                    }
                    None => break, // every host, wave and handle is gone: shutdown
                },
                () = &mut save, if self.dirty => {
                    let began = Instant::now();
                    self.hand_over(&encoded);
                    // Encoding a large fleet takes a while and the hub does nothing else
                    // meanwhile: keep it under a tenth of the hub's time.
                    let pause = self.save_every.max(began.elapsed() * 10);
                    save.as_mut().reset(Instant::now() + pause);
                }
            }
        }
        self.hand_over(&encoded);
        drop(encoded);
        // The writer finishes the last snapshot and stops once the watch closes.
        let _ = writer.await;
    }

    fn apply(&mut self, event: &Event) {
        let Some(&i) = event.host().and_then(|host| self.index.get(host)) else {
            return;
        };
        let saved = &mut self.records[i];
        if let Event::Output { line, .. } = event {
            saved.keep_output(line);
        }
        saved.model.apply(event);
        self.dirty = true;
    }

    async fn forward(&mut self, frontend: &mpsc::Sender<Event>, event: Event) {
        if self.cancel.is_cancelled() {
            // Shutting down: the frontend may have stopped reading. Give it a moment per event
            // (batch mode drains to the end); once it stalls, stop waiting for it.
            if !self.frontend_stalled {
                let sent = tokio::time::timeout(STALL, frontend.send(event)).await;
                self.frontend_stalled = sent.is_err();
            }
            return;
        }
        tokio::select! {
            // A frontend that went away is normal at the end of a batch run.
            _ = frontend.send(event) => {}
            () = self.cancel.cancelled() => {}
        }
    }

    fn hand_over(&mut self, encoded: &watch::Sender<Option<Vec<u8>>>) {
        match snapshot::encode(&self.records) {
            Ok(bytes) => {
                encoded.send_replace(Some(bytes));
                self.dirty = false;
            }
            Err(e) => tracing::error!("encoding the snapshot: {e}"),
        }
    }
}

async fn write_snapshots(path: PathBuf, mut latest: watch::Receiver<Option<Vec<u8>>>) {
    // `changed` still reports a value sent just before the hub dropped the sender, so the last
    // snapshot is always written; it errs only once nothing new is left.
    while latest.changed().await.is_ok() {
        let bytes = latest.borrow_and_update().clone();
        if let Some(bytes) = bytes {
            let target = path.clone();
            match tokio::task::spawn_blocking(move || snapshot::save_bytes(&target, &bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("saving the snapshot '{}': {e}", path.display()),
                Err(e) => tracing::error!("saving the snapshot '{}': {e}", path.display()),
            }
        }
    }
}
