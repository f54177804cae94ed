//! The hub: the only receiver of host events. It folds each event into the fleet's host models
//! (the same fold every consumer uses) and keeps each host's recent output, hands
//! the snapshot writer a fresh copy at most every `save_every`, then forwards the event to the
//! frontend, so the TUI and batch persist identically. Each event is also shown to the
//! notifications' folder (`crate::notify`), so both frontends notify identically too. The
//! unfinished wave's record (`Event::WaveSaved`, sent by the wave runner) is saved beside the
//! hosts.
//!
//! The snapshot writer is a separate task fed through a `watch` channel: it always writes the
//! newest encoding and never holds up the hub with disk I/O. A [`Bus::persist`] (the write-ahead
//! of a detached job) hands the picture over at once and answers when a snapshot holding every
//! event sent before it is on disk.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::bus::Event;
use crate::config::HostId;
use crate::store::metrics::{self, WaveMetrics};
use crate::store::snapshot::{self, SavedHost, SavedWave};

/// What travels to the hub: events, and requests to make them durable, in one ordered queue.
#[derive(Debug)]
pub(super) enum HubMsg {
    Event(Event),
    /// Answered once a snapshot holding every event sent before this is written (fsync'd).
    Persist(oneshot::Sender<Result<(), String>>),
}

/// The sending side of the bus, for hosts and waves.
#[derive(Debug, Clone)]
pub(super) struct Bus(mpsc::Sender<HubMsg>);

impl Bus {
    pub(super) fn new(queue: usize) -> (Bus, mpsc::Receiver<HubMsg>) {
        let (tx, rx) = mpsc::channel(queue);
        (Bus(tx), rx)
    }

    /// Sends `event`; waits for room (chatty hosts slow down rather than grow memory).
    pub(super) async fn emit(&self, event: Event) {
        // The hub outlives every sender; a closed bus only happens during shutdown.
        let _ = self.0.send(HubMsg::Event(event)).await;
    }

    /// Sends `event` if the queue has room, without waiting (for the console's calls).
    pub(super) fn try_emit(&self, event: Event) -> bool {
        self.0.try_send(HubMsg::Event(event)).is_ok()
    }

    /// Waits until everything emitted before is in a snapshot on disk.
    pub(super) async fn persist(&self) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.0
            .send(HubMsg::Persist(reply))
            .await
            .map_err(|_| "tendhost is stopping".to_string())?;
        answer
            .await
            .map_err(|_| "the snapshot writer stopped".to_string())?
    }
}

/// `(guest, hypervisor)` pairs detected from the hypervisors' inventories, shared with the
/// engine handle. The hub writes it; a std mutex held for a clone or a swap only.
#[derive(Debug, Clone, Default)]
pub(super) struct DetectedGuests(std::sync::Arc<std::sync::Mutex<Vec<(HostId, HostId)>>>);

impl DetectedGuests {
    pub(super) fn get(&self) -> Vec<(HostId, HostId)> {
        match self.0.lock() {
            Ok(pairs) => pairs.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, pairs: Vec<(HostId, HostId)>) {
        match self.0.lock() {
            Ok(mut held) => *held = pairs,
            Err(poisoned) => *poisoned.into_inner() = pairs,
        }
    }
}

/// What the writer last wrote: the generation it was handed and how the write went.
type Written = (u64, Result<(), String>);

pub(super) struct Hub {
    records: Vec<SavedHost>,
    /// The unfinished wave's record, saved with the hosts; the wave runner is its one author.
    wave: Option<std::sync::Arc<SavedWave>>,
    index: HashMap<HostId, usize>,
    path: PathBuf,
    save_every: Duration,
    dirty: bool,
    cancel: CancellationToken,
    frontend_stalled: bool,
    /// Counts hand-overs, so a persist knows which write holds its events.
    generation: u64,
    /// `[metrics] textfile`: where the Prometheus view goes, if anywhere.
    metrics: Option<PathBuf>,
    waves: WaveMetrics,
    /// Something the metrics show changed since they were last handed over.
    metrics_dirty: bool,
    /// Where detected guests go, and the config they are matched against.
    guests: Option<(std::sync::Arc<crate::config::Config>, DetectedGuests)>,
    /// Turns events into notices for `[[notify]]` (a no-op without notifiers).
    notices: crate::notify::Folder,
}

/// How long the hub waits for a frontend during shutdown before it stops forwarding.
const STALL: Duration = Duration::from_millis(200);

impl Hub {
    pub(super) fn new(
        initial: &[SavedHost],
        wave: Option<SavedWave>,
        path: PathBuf,
        save_every: Duration,
        cancel: CancellationToken,
        metrics: Option<PathBuf>,
        notifier: crate::notify::Notifier,
    ) -> Self {
        let index = initial
            .iter()
            .enumerate()
            .map(|(i, r)| (r.model.name.clone(), i))
            .collect();
        let notices = crate::notify::Folder::new(
            notifier,
            initial
                .iter()
                .map(|r| (&r.model.name, r.model.state.kind())),
        );
        Hub {
            records: initial.to_vec(),
            wave: wave.map(std::sync::Arc::new),
            index,
            path,
            save_every,
            // Save once at start so a restored "interrupted" state is on disk before anything runs.
            dirty: true,
            cancel,
            frontend_stalled: false,
            generation: 0,
            metrics,
            waves: WaveMetrics::default(),
            metrics_dirty: true,
            guests: None,
            notices,
        }
    }

    /// Starts the wave gauges from what the audit log says of past waves (see
    /// `WaveMetrics::from_history`) instead of from nothing.
    pub(super) fn with_past_waves(mut self, waves: WaveMetrics) -> Self {
        self.waves = waves;
        self
    }

    /// Keeps `guests` up to date from the hypervisors' inventories (the restored ones now,
    /// then every refresh), matched against `config`'s hosts.
    pub(super) fn with_guests(
        mut self,
        config: std::sync::Arc<crate::config::Config>,
        guests: DetectedGuests,
    ) -> Self {
        self.guests = Some((config, guests));
        self.detect_guests();
        self
    }

    fn detect_guests(&self) {
        let Some((config, guests)) = &self.guests else {
            return;
        };
        let inventories = self
            .records
            .iter()
            .filter_map(|r| Some((&r.model.name, r.model.inventory.as_deref()?)));
        guests.set(crate::fleet::guests::detected(config, inventories));
    }

    pub(super) async fn run(
        mut self,
        mut bus: mpsc::Receiver<HubMsg>,
        frontend: mpsc::Sender<Event>,
    ) {
        let (encoded, latest) = watch::channel::<Option<(u64, Vec<u8>)>>(None);
        let (written_tx, written) = watch::channel::<Written>((0, Ok(())));
        let writer = tokio::spawn(write_snapshots(self.path.clone(), latest, written_tx));
        let (rendered, latest_metrics) = watch::channel::<Option<String>>(None);
        let metrics_writer = self
            .metrics
            .clone()
            .map(|path| tokio::spawn(metrics::write_metrics(path, latest_metrics)));
        let save = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(save);
        loop {
            tokio::select! {
                message = bus.recv() => match message {
                    Some(HubMsg::Event(event)) => {
                        self.apply(&event);
                        self.forward(&frontend, event).await;
                    }
                    Some(HubMsg::Persist(reply)) => {
                        let generation = self.hand_over(&encoded);
                        tokio::spawn(answer_when_written(written.clone(), generation, reply));
                    }
                    None => break, // every host, wave and handle is gone: shutdown
                },
                () = &mut save, if self.dirty => {
                    let began = Instant::now();
                    self.hand_over(&encoded);
                    self.hand_over_metrics(&rendered);
                    // Encoding a large fleet takes a while and the hub does nothing else
                    // meanwhile: keep it under a tenth of the hub's time.
                    let pause = self.save_every.max(began.elapsed() * 10);
                    save.as_mut().reset(Instant::now() + pause);
                }
            }
        }
        self.hand_over(&encoded);
        self.hand_over_metrics(&rendered);
        drop(encoded);
        drop(rendered);
        // The writers finish the last snapshot and textfile and stop once their watch closes.
        let _ = writer.await;
        if let Some(metrics_writer) = metrics_writer {
            let _ = metrics_writer.await;
        }
    }

    fn apply(&mut self, event: &Event) {
        self.notices.observe(event);
        if !matches!(event, Event::Output { .. }) {
            self.waves.apply(event, chrono::Utc::now());
            self.metrics_dirty = true;
        }
        if let Event::WaveSaved(wave) = event {
            self.wave = wave.clone();
            self.dirty = true;
            return;
        }
        let Some(&i) = event.host().and_then(|host| self.index.get(host)) else {
            return;
        };
        let saved = &mut self.records[i];
        if let Event::Output { line, .. } = event {
            saved.keep_output(line);
        }
        let was_hypervisor = saved
            .model
            .inventory
            .as_ref()
            .is_some_and(|i| i.hypervisor.is_some());
        saved.model.apply(event);
        self.dirty = true;
        // Before the event goes on to the frontend, so what it asks next sees the guests.
        if let Event::InventoryRefreshed { inventory, .. } = event
            && (was_hypervisor || inventory.hypervisor.is_some())
        {
            self.detect_guests();
        }
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

    /// Hands the metrics writer a fresh rendering when something they show changed.
    fn hand_over_metrics(&mut self, rendered: &watch::Sender<Option<String>>) {
        if self.metrics.is_none() || !self.metrics_dirty {
            return;
        }
        let hosts: Vec<_> = self.records.iter().map(|r| &r.model).collect();
        rendered.send_replace(Some(metrics::render(&hosts, &self.waves)));
        self.metrics_dirty = false;
    }

    /// Hands the current picture to the writer; returns its generation (0 when it could not be
    /// encoded, which no write ever confirms).
    fn hand_over(&mut self, encoded: &watch::Sender<Option<(u64, Vec<u8>)>>) -> u64 {
        match snapshot::encode_with_wave(&self.records, self.wave.as_deref()) {
            Ok(bytes) => {
                self.generation += 1;
                encoded.send_replace(Some((self.generation, bytes)));
                self.dirty = false;
                self.generation
            }
            Err(e) => {
                tracing::error!("encoding the snapshot: {e}");
                0
            }
        }
    }
}

/// Answers a persist once the writer has written `generation` or a newer picture (which holds
/// the same events and more).
async fn answer_when_written(
    mut written: watch::Receiver<Written>,
    generation: u64,
    reply: oneshot::Sender<Result<(), String>>,
) {
    let answer = if generation == 0 {
        Err("the snapshot could not be encoded".to_string())
    } else {
        match written.wait_for(|(done, _)| *done >= generation).await {
            Ok(done) => done.1.clone(),
            Err(_) => Err("the snapshot writer stopped".to_string()),
        }
    };
    let _ = reply.send(answer);
}

async fn write_snapshots(
    path: PathBuf,
    mut latest: watch::Receiver<Option<(u64, Vec<u8>)>>,
    written: watch::Sender<Written>,
) {
    // `changed` still reports a value sent just before the hub dropped the sender, so the last
    // snapshot is always written; it errs only once nothing new is left.
    while latest.changed().await.is_ok() {
        let handed = latest.borrow_and_update().clone();
        if let Some((generation, bytes)) = handed {
            let target = path.clone();
            let result =
                match tokio::task::spawn_blocking(move || snapshot::save_bytes(&target, &bytes))
                    .await
                {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(format!("saving the snapshot '{}': {e}", path.display())),
                    Err(e) => Err(format!("saving the snapshot '{}': {e}", path.display())),
                };
            if let Err(e) = &result {
                tracing::error!("{e}");
            }
            let _previous = written.send_replace((generation, result));
        }
    }
}
