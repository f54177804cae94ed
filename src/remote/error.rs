use std::time::Duration;

/// Why a command could not be run to completion on a host.
///
/// A non-zero exit status is not an error; these are the ways the transport itself fails.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connecting to {target}")]
    Connect {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ssh to {target}: {message}")]
    Ssh { target: String, message: String },
    #[error("authentication as '{user}' on {target} failed ({tried})")]
    Auth {
        target: String,
        user: String,
        tried: String,
    },
    #[error(
        "host key for {target} is unknown ({fingerprint}); refusing to connect \
         (set [ssh] known_hosts = \"accept-new\" or add it to {known_hosts})"
    )]
    HostKeyUnknown {
        target: String,
        fingerprint: String,
        known_hosts: String,
    },
    #[error(
        "host key for {target} changed; refusing to connect \
         (expected {expected}, got {got}; see {location})"
    )]
    HostKeyChanged {
        target: String,
        expected: String,
        got: String,
        location: String,
    },
    /// A known_hosts file exists but cannot be read as text: refusing is the only safe answer,
    /// since "no keys known" would let `accept-new` learn any key.
    #[error(
        "cannot check the host key of {target}: known_hosts '{path}' {problem}; refusing to \
         connect"
    )]
    KnownHostsUnreadable {
        target: String,
        path: String,
        problem: String,
    },
    #[error("host key for {target} refused: {message}")]
    HostKeyRejected { target: String, message: String },
    #[error("key file '{path}': {message}")]
    Key { path: String, message: String },
    #[error("command timed out after {0:?}")]
    Timeout(Duration),
    #[error("command cancelled")]
    Cancelled,
    #[error("sudo on {target} needs a password; allow '{user}' to run it with NOPASSWD")]
    SudoNeedsPassword { target: String, user: String },
    #[error("connection to {target} lost: {message}")]
    Disconnected { target: String, message: String },
    #[error("{target} is unreachable after {attempts} attempts: {last}")]
    Unreachable {
        target: String,
        attempts: u32,
        last: String,
    },
    #[error("starting a local command")]
    Spawn(#[source] std::io::Error),
    /// The job could not be recorded before it started, so it was not started.
    #[error("{job} not started: recording it first failed ({message})")]
    WriteAhead { job: &'static str, message: String },
    /// Another job holds the host lock (another tendhost, or an earlier job still running).
    #[error("{target} is locked by {holder}")]
    HostLocked { target: String, holder: String },
    #[error("job on {target}: {message}")]
    Job { target: String, message: String },
    #[error(
        "job {job} on {target} vanished: it is not running and left no exit status (killed, or the host rebooted under it)"
    )]
    JobVanished { job: String, target: String },
    /// tendhost stopped following; the job runs on and is picked up again at the next start.
    #[error("{label} (job {job}) left running on the host: tendhost stopped following it")]
    Detached { job: String, label: String },
    #[error("{label} (job {job}) is still running after {}; it was not stopped", crate::config::format_duration(*after))]
    JobOutlived {
        job: String,
        label: String,
        after: Duration,
    },
}

impl Error {
    /// Whether retrying later could help (network trouble), as opposed to a refusal that needs a
    /// person (a changed host key, a bad key file, sudo wanting a password).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Disconnected { .. }
                | Error::Timeout(_)
                | Error::Ssh { .. }
        )
    }
}
