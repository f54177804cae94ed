//! Waiting out a reboot, the Ansible way (DESIGN.md §9): see the host go away, see it come back,
//! and trust only a changed boot id. Each phase has its own timeout, and a host key that changed
//! across the reboot is reported as such, never as a timeout (ansible #77353).

use std::time::Duration;

use tokio::time::Instant;

use super::steps::StepContext;
use crate::config::format_duration;
use crate::errors::chain;
use crate::remote;

/// Polls until the host answers with a boot id other than `old` (returned), or fails with the
/// phase that went wrong.
pub(super) async fn wait_for_new_boot(ctx: &StepContext, old: &str) -> Result<String, String> {
    let timeout = ctx.reboot_timeout;
    ctx.exec.disconnect().await;

    // Phase 1: the host goes away (or is already back with a new boot id).
    let deadline = Instant::now() + timeout;
    loop {
        match ctx.boot_id().await {
            Ok(id) if id != old => return Ok(id),
            Ok(_) => {}
            Err(e) if is_fatal(&e) => return Err(fatal_message(&e)),
            Err(_) => break,
        }
        // A fresh connection per poll: a connection that survived would hide the reboot.
        ctx.exec.disconnect().await;
        if Instant::now() >= deadline {
            return Err(format!(
                "rebooting: the host did not go down within {}",
                format_duration(timeout)
            ));
        }
        pause(ctx, ctx.reboot.poll_interval).await?;
    }

    // Phase 2: the host comes back.
    let deadline = Instant::now() + timeout;
    loop {
        pause(ctx, ctx.reboot.poll_interval).await?;
        match ctx.boot_id().await {
            Ok(id) => return Ok(id),
            Err(e) if is_fatal(&e) => return Err(fatal_message(&e)),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "rebooting: the host did not come back within {} (last error: {})",
                    format_duration(timeout),
                    chain(&e)
                ));
            }
            Err(_) => ctx.exec.disconnect().await,
        }
    }
}

/// Errors that waiting longer cannot fix.
fn is_fatal(err: &remote::Error) -> bool {
    matches!(
        err,
        remote::Error::HostKeyChanged { .. }
            | remote::Error::HostKeyUnknown { .. }
            | remote::Error::Auth { .. }
            | remote::Error::Key { .. }
            | remote::Error::SudoNeedsPassword { .. }
            | remote::Error::Cancelled
    )
}

fn fatal_message(err: &remote::Error) -> String {
    match err {
        remote::Error::HostKeyChanged { .. } => {
            format!(
                "rebooting: the host came back with a different host key: {}",
                chain(err)
            )
        }
        _ => format!("rebooting: {}", chain(err)),
    }
}

async fn pause(ctx: &StepContext, period: Duration) -> Result<(), String> {
    tokio::select! {
        () = tokio::time::sleep(period) => Ok(()),
        () = ctx.cancel.cancelled() => Err("rebooting: cancelled".to_string()),
    }
}
