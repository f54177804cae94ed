//! Diagnostics go to `tendhost.log` in the state dir, never to the terminal the TUI owns.
//!
//! The level comes from `RUST_LOG` when set, else `[daemon] log_level`, else `info`. Writes go
//! through a background writer so a slow disk never stalls a host task.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the background log writer alive; drop it last to flush.
pub struct LogGuard {
    _writer: WorkerGuard,
}

/// Installs the global subscriber writing to `log_file` (created 0600). `extra` is an additional
/// layer, such as the TUI's in-memory log pane.
pub fn init(
    log_file: &Path,
    config_level: Option<&str>,
    extra: Option<Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>>,
) -> io::Result<LogGuard> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log_file)?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("tendhost={}", config_level.unwrap_or("info"))));
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(true)
        .with_filter(filter);
    // `try_init` fails only if a subscriber is already set (tests); that one keeps working.
    let _ = tracing_subscriber::registry()
        .with(extra)
        .with(file_layer)
        .try_init();
    Ok(LogGuard { _writer: guard })
}
