//! What the screen asks of the engine: [`UiRequest`]s, handed to an [`EngineLink`].
//!
//! The TUI never calls SSH and never edits host state; a key press becomes a request, and the
//! engine answers later with events (or refuses now with a message). The link must not wait:
//! it is called from the UI task between frames.

use crate::config::HostId;
use crate::engine::{JobKind, WaveRequest};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiRequest {
    /// A job for one host. An update's `allow_removals` is the operator's consent, given in the
    /// confirmation: without it the engine refuses an upgrade whose plan removes packages.
    Host {
        host: HostId,
        job: JobKind,
    },
    StartWave(WaveRequest),
    PauseWave,
    ResumeWave,
    AbortWave,
}

/// Where requests go. Implementations never block: a full queue is an immediate `Err`
/// ("host busy"), shown on the status line.
pub trait EngineLink {
    fn send(&mut self, request: UiRequest) -> Result<(), String>;
}

/// Records requests instead of sending them: for tests, and for a console without an engine.
#[derive(Debug, Default)]
pub struct RecordingLink {
    pub sent: Vec<UiRequest>,
}

impl EngineLink for RecordingLink {
    fn send(&mut self, request: UiRequest) -> Result<(), String> {
        self.sent.push(request);
        Ok(())
    }
}
