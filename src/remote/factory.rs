//! Picks the transport for a host: the one place that maps `transport = "…"` to an executor.

use std::sync::Arc;

use super::context::RemoteContext;
use super::ssh::SshExecutor;
use super::{LocalExecutor, SharedExecutor};
use crate::config::{HostConfig, Transport};

/// The executor for `host`: [`LocalExecutor`] for `transport = "local"`, else SSH. Cheap: no
/// connection is opened until the first command.
pub fn executor_for(host: &HostConfig, ctx: &RemoteContext) -> SharedExecutor {
    match host.transport {
        Transport::Local => Arc::new(LocalExecutor::new()),
        Transport::Ssh => Arc::new(SshExecutor::new(host, Arc::new(ctx.clone()))),
    }
}
