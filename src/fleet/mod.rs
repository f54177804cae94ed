//! The host vocabulary shared by engine, store, batch and console: the state machine, the
//! events every consumer folds, the one host model they fold them into, and what they all mean
//! by "these hosts". Knows nothing of SSH, tasks, files or the screen.

pub mod event;
pub mod forecast;
pub mod guests;
pub mod history;
mod host;
mod job;
pub mod select;
mod state;

pub use event::{Event, JobKind, Origin, Outcome, Stage, StageStatus, WaveProgress, WaveStatus};
pub use forecast::{Forecast, Overrun, Prediction, WindowFit, forecast, predict, window_fit};
pub use history::{HostHistory, Measurement};
pub use host::{HostModel, Plan, SurveyMark};
pub use job::RemoteJob;
pub use state::{FailedInfo, HostState, LastError, Phase, Refusal, StateKind, Transition};
