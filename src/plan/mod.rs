//! The fleet-wide plan of a wave (issue 12): composed from what tendhost already knows of each
//! host (its last dry run, its history, its window), before anything runs. Knows nothing of
//! the screen or of how the plan is printed; `batch` and `tui` render it.

mod compose;
mod model;
pub mod render;

pub use compose::compose;
pub use model::{
    Counts, HostStatus, PlanBatch, PlanHost, PlanTotals, RebootReason, Space, WavePlan,
};

#[cfg(test)]
mod tests;
