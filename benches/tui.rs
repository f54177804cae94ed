//! Console benchmarks (run once: `cargo bench --bench tui`).
//!
//! 1. Frame time: the fleet table at 10,000 hosts drawn into a `TestBackend`, steady and right
//!    after the fleet changed (filter and sort recomputed). Aim: under 2 ms.
//! 2. Key-to-screen latency: the real `App` loop (frame cap, drain-then-draw) over 1,000 hosts,
//!    200 of which stream output as fast as the bounded event channel takes it; a key goes in
//!    through the same input stream crossterm would feed, and the clock stops when the backend
//!    receives the cell that shows the cursor moved. Aim: under 16 ms.
//!
//! The app holds a started engine over the simulated fleet, as the console holds the real one;
//! the benchmarks only move the cursor, so it is never asked anything.

// Test and benchmark code: a failed unwrap is a failed run, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use tendhost::config::{BatchSize, Config, FailureLimit};
use tendhost::engine::bus::{Event, StateKind};
use tendhost::engine::testkit::SimFleet;
use tendhost::engine::{Engine, EngineHandle};
use tendhost::fleet::{HostState, Phase};
use tendhost::remote::Stream;
use tendhost::tui::{App, FleetModel, KeyMap, Settings, Theme, WaveDefaults};
use tokio::sync::mpsc;

fn settings() -> Settings {
    Settings {
        read_only: false,
        keys: KeyMap::defaults(),
        theme: Theme { color: true },
        wave_defaults: WaveDefaults {
            batch_sizes: vec![BatchSize::Count(1)],
            delay: Duration::ZERO,
            max_failures: FailureLimit::Count(0),
            mode: tendhost::config::WaveMode::Rolling,
            on_threshold: tendhost::config::OnThreshold::Pause,
        },
        startup_warning: None,
        schedule_state: None,
    }
}

/// `n` hosts `host-00000`, … tagged `web` and one of 40 racks, and a started engine over them
/// on the simulated fleet.
struct Sim {
    config: Arc<Config>,
    engine: EngineHandle,
    _events: mpsc::Receiver<Event>,
    _dir: tempfile::TempDir,
}

impl Sim {
    /// Must be called inside the tokio runtime.
    fn start(n: usize) -> Sim {
        let mut toml = String::new();
        for i in 0..n {
            let _ = write!(
                toml,
                "[[host]]\nname = \"host-{i:05}\"\naddr = \"10.{}.{}.{}\"\ntags = [\"web\", \"rack{}\"]\n",
                i / 65536,
                i / 256 % 256,
                i % 256,
                i % 40
            );
        }
        let config = Arc::new(Config::from_str("sim.toml", &toml).expect("sim config"));
        let dir = tempfile::tempdir().expect("temp dir");
        let deps = SimFleet::new().engine_deps(dir.path());
        let (engine, events) = Engine::start(config.clone(), deps);
        Sim {
            config,
            engine,
            _events: events,
            _dir: dir,
        }
    }

    /// The console over this fleet, every third host with updates pending.
    fn app(&self) -> App {
        App::new(fleet(&self.config), self.engine.clone(), settings())
    }
}

fn fleet(config: &Config) -> FleetModel {
    let n = config.hosts.len();
    let mut model = FleetModel::from_config(config, 2_000);
    for i in (0..n).step_by(3) {
        model.apply(&moved(
            format!("host-{i:05}"),
            StateKind::Idle,
            Phase::PendingUpdates,
        ));
    }
    model
}

/// A state change as a supervisor announces it: the whole new state.
fn moved(host: String, from: StateKind, phase: Phase) -> Event {
    let state = HostState {
        phase,
        since: Some(Utc::now()),
        ..HostState::default()
    };
    Event::StateChanged {
        host: host.into(),
        from,
        to: state.kind(),
        state: Arc::new(state),
    }
}

async fn frame_time() {
    let sim = Sim::start(10_000);
    let mut app = sim.app();
    for (w, h) in [(80u16, 24u16), (200, 60)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test backend");
        terminal.draw(|f| app.draw(f)).expect("draw");
        let frames = 2_000;
        let start = Instant::now();
        for i in 0..frames {
            // Move the cursor so every frame really changes.
            app.handle_key(key(if i % 2 == 0 { 'j' } else { 'k' }));
            terminal.draw(|f| app.draw(f)).expect("draw");
        }
        let steady = start.elapsed() / frames;
        let frames = 200;
        let start = Instant::now();
        for i in 0..frames {
            // A state change bumps the model: the 10,000-row filter and sort are redone.
            let host = format!("host-{:05}", (i * 7) % 10_000);
            let to = if i % 2 == 0 {
                Phase::Querying {
                    resting: Box::new(Phase::Idle),
                }
            } else {
                Phase::Idle
            };
            app.apply(&moved(host, StateKind::Idle, to));
            terminal.draw(|f| app.draw(f)).expect("draw");
        }
        let changed = start.elapsed() / frames;
        println!(
            "frame {w}x{h}, 10,000 hosts: {:.3} ms steady, {:.3} ms after a fleet change",
            steady.as_secs_f64() * 1e3,
            changed.as_secs_f64() * 1e3
        );
    }
    drop(app);
    sim.engine.shutdown(Duration::from_secs(5)).await;
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// A `TestBackend` that timestamps when the cursor marker reaches a watched cell.
struct Probe {
    inner: TestBackend,
    watch: Arc<Mutex<Watch>>,
}

#[derive(Default)]
struct Watch {
    /// (x, y) to look for "›" at, and when the key was sent.
    target: Option<(u16, u16, Instant)>,
    latencies: Vec<Duration>,
    frames: usize,
}

impl Backend for Probe {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let cells: Vec<(u16, u16, &Cell)> = content.collect();
        let mut watch = self.watch.lock().expect("probe lock");
        watch.frames += 1;
        if let Some((x, y, sent)) = watch.target
            && cells
                .iter()
                .any(|(cx, cy, c)| *cx == x && *cy == y && c.symbol() == "›")
        {
            watch.latencies.push(sent.elapsed());
            watch.target = None;
        }
        drop(watch);
        self.inner
            .draw(cells.into_iter())
            .map_err(|e| io::Error::other(e.to_string()))
    }
    fn hide_cursor(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn show_cursor(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn get_cursor_position(&mut self) -> io::Result<Position> {
        Ok(Position::ORIGIN)
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, _: P) -> io::Result<()> {
        Ok(())
    }
    fn clear(&mut self) -> io::Result<()> {
        self.inner
            .clear()
            .map_err(|e| io::Error::other(e.to_string()))
    }
    fn clear_region(&mut self, t: ClearType) -> io::Result<()> {
        self.inner
            .clear_region(t)
            .map_err(|e| io::Error::other(e.to_string()))
    }
    fn size(&self) -> io::Result<Size> {
        self.inner
            .size()
            .map_err(|e| io::Error::other(e.to_string()))
    }
    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner
            .window_size()
            .map_err(|e| io::Error::other(e.to_string()))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

async fn latency() {
    const HOSTS: usize = 1_000;
    const STREAMING: usize = 200;
    const PRESSES: usize = 200;
    let watch = Arc::new(Mutex::new(Watch::default()));
    let backend = Probe {
        inner: TestBackend::new(80, 24),
        watch: watch.clone(),
    };
    let mut terminal = Terminal::new(backend).expect("probe backend");
    let sim = Sim::start(HOSTS);
    let mut app = sim.app();
    // Show the Log tab of the cursor host, which is one of the streaming ones.
    app.handle_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    app.handle_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    let (events_tx, events) = mpsc::channel(1024);
    let (keys_tx, keys_rx) = mpsc::unbounded_channel::<io::Result<TermEvent>>();
    let input = tokio_stream_from(keys_rx);
    let sent_lines = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let producer = {
        let sent_lines = sent_lines.clone();
        tokio::spawn(async move {
            let line: Arc<str> =
                Arc::from("Unpacking libssl3:amd64 (3.0.15-1~deb12u1) over (3.0.14-1~deb12u1) ...");
            let names: Vec<Arc<str>> = (0..STREAMING)
                .map(|i| Arc::from(format!("host-{i:05}")))
                .collect();
            'outer: loop {
                for host in &names {
                    let event = Event::Output {
                        host: host.clone(),
                        stream: Stream::Stdout,
                        line: line.clone(),
                    };
                    if events_tx.send(event).await.is_err() {
                        break 'outer;
                    }
                    sent_lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
    };
    let ui = tokio::spawn(async move {
        app.run_with_input(&mut terminal, events, input)
            .await
            .expect("app loop");
    });
    // Let the stream reach steady state, then press j/k alternately and time each one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start_lines = sent_lines.load(std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    // The cursor row of host-00000 is y=3 (header, border, column titles); j moves it to y=4.
    for i in 0..PRESSES {
        let (c, y) = if i % 2 == 0 { ('j', 4) } else { ('k', 3) };
        watch.lock().expect("probe lock").target = Some((1, y, Instant::now()));
        keys_tx.send(Ok(TermEvent::Key(key(c)))).expect("ui alive");
        let deadline = Instant::now() + Duration::from_secs(2);
        while watch.lock().expect("probe lock").target.is_some() {
            assert!(
                Instant::now() < deadline,
                "key {i} never reached the screen"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        // Random phase against the frame clock, like a human typing.
        tokio::time::sleep(Duration::from_millis(3 + (i as u64 * 7) % 23)).await;
    }
    let elapsed = started.elapsed();
    let lines = sent_lines.load(std::sync::atomic::Ordering::Relaxed) - start_lines;
    keys_tx
        .send(Ok(TermEvent::Key(key('q'))))
        .expect("ui alive");
    drop(keys_tx);
    let _ = ui.await;
    producer.abort();
    sim.engine.shutdown(Duration::from_secs(5)).await;
    let watch = watch.lock().expect("probe lock");
    let mut l = watch.latencies.clone();
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "key-to-screen, {HOSTS} hosts, {STREAMING} streaming ({:.0} lines/s, {} frames in {:.1}s): \
         median {:.2} ms, p95 {:.2} ms, max {:.2} ms over {} keys",
        lines as f64 / elapsed.as_secs_f64(),
        watch.frames,
        elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.95),
        pct(1.0),
        l.len()
    );
}

fn tokio_stream_from(
    mut rx: mpsc::UnboundedReceiver<io::Result<TermEvent>>,
) -> impl futures::Stream<Item = io::Result<TermEvent>> + Unpin {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx))).fuse()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        frame_time().await;
        latency().await;
    });
}
