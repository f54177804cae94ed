//! The validated, immutable configuration: what `tendhost.toml` says once every default has been
//! applied and every rule checked.
//!
//! Parsing lives in `raw.rs` (TOML with byte spans, so every error can name file, line, column and
//! key); the typed values below are what the rest of tendhost sees, shared as `Arc<Config>`. Nothing
//! here opens a connection or touches the state dir.

mod address;
mod discover;
mod duration;
mod error;
mod fields;
mod jumps;
mod notify;
mod raw;
mod schedule;
mod sections;
pub(crate) mod suggest;
mod window;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use discover::{Discovered, DiscoverySource, discover};
pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, Diagnostic};
pub use jumps::JumpHosts;
pub use notify::{
    DEFAULT_NOTIFY_TIMEOUT, DEFAULT_NTFY_SERVER, DEFAULT_SENDMAIL, NoticeKind, NotifyConfig,
    NotifyTarget, SecretSource, SmtpTls, UrlSource,
};
pub use schedule::{DEFAULT_LOCK_WAIT, MissedPolicy, ScheduleConfig};
pub use window::MaintenanceWindow;
pub(crate) use window::{parse_day, parse_time};

/// A host's unique name, cheap to clone into events and log lines.
pub type HostId = Arc<str>;

/// Everything tendhost was told, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, for messages and for `host add`.
    pub path: PathBuf,
    pub hosts: Vec<HostConfig>,
    /// Group name → member host names, in file order.
    pub groups: BTreeMap<String, Vec<HostId>>,
    pub ssh: SshSettings,
    pub fleet: FleetSettings,
    pub audit: AuditSettings,
    /// `[metrics]`: the Prometheus textfile, if any.
    pub metrics: MetricsSettings,
    /// `[daemon] log_level` (the only daemon key that still means something).
    pub log_level: Option<String>,
    /// `[keys]`: action name → key specs, overriding the TUI's defaults.
    pub keys: BTreeMap<String, Vec<String>>,
    /// `[[schedule]]`, in file order.
    pub schedules: Vec<ScheduleConfig>,
    /// `[[notify]]`, in file order.
    pub notify: Vec<NotifyConfig>,
    /// Things that loaded but deserve a word (e.g. the old `[daemon]` table).
    pub warnings: Vec<Diagnostic>,
}

impl Config {
    /// Parses and validates `text`, naming `path` in every error.
    pub fn from_str(path: impl Into<PathBuf>, text: &str) -> Result<Config, ConfigError> {
        raw::load(path.into(), text)
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: impl Into<PathBuf>) -> Result<Config, ConfigError> {
        let path = path.into();
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Self::from_str(path, &text)
    }

    pub fn host(&self, name: &str) -> Option<&HostConfig> {
        self.hosts.iter().find(|h| &*h.name == name)
    }

    /// All distinct tags, sorted.
    pub fn tags(&self) -> Vec<&str> {
        let mut tags: Vec<&str> = self
            .hosts
            .iter()
            .flat_map(|h| h.tags.iter().map(String::as_str))
            .collect();
        tags.sort_unstable();
        tags.dedup();
        tags
    }
}

/// How tendhost reaches a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Ssh,
    /// Commands run on this machine, as the user running tendhost.
    Local,
}

/// Which package manager to drive; `Auto` detects it from `/etc/os-release`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagerChoice {
    Auto,
    Apt,
    Dnf,
    Yum,
    /// Inventory only; tendhost never updates this host's packages.
    None,
}

/// apt's upgrade flavour: `Full` may install new dependencies and remove packages
/// (`apt-get dist-upgrade`, like apt-dater and Ansible's `upgrade: dist`); `Safe` never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpgradeMode {
    Full,
    Safe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ComposeVersion {
    /// The standalone `docker-compose` binary.
    V1,
    /// The `docker compose` plugin.
    V2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KnownHostsPolicy {
    /// Unknown keys are refused; add them with `tendhost host test --accept-new` or ssh-keyscan.
    Strict,
    /// The first key seen is learned (trust on first use); a changed key is still refused.
    AcceptNew,
}

/// One managed host, with `[defaults]` already applied.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub name: HostId,
    /// IP address or DNS name (no port; see `port`).
    pub addr: String,
    pub port: u16,
    pub user: String,
    /// Whether tendhost.toml set `user`/`port` (for this host or in `[defaults]`); when it did
    /// not, `~/.ssh/config` may supply them.
    pub explicit: SshExplicit,
    /// Private key file; `None` means ssh-agent or `TENDHOST_SSH_KEY`.
    pub ssh_key: Option<PathBuf>,
    /// `[user@]host[:port]` of a bastion, or the name of another configured host.
    pub proxy_jump: Option<String>,
    pub transport: Transport,
    pub manager: ManagerChoice,
    pub compose_paths: Vec<String>,
    /// Where tendhost keeps its detached jobs and the host lock on the host itself (see
    /// `remote::job`). Two tendhosts only exclude each other when they use the same one.
    pub job_dir: String,
    pub tags: Vec<String>,
    /// Groups this host belongs to (reverse of `[groups]`).
    pub groups: Vec<String>,
    /// The exclusion group (`cluster = "db"`, or `[clusters] db = [...]`): no two hosts of one
    /// cluster are ever in flight at once (waves, manual updates, reboots).
    pub cluster: Option<std::sync::Arc<str>>,
    /// The hypervisor this host is a guest of (`runs_on = "pve1"`, a configured host): waves
    /// update it after its guests and never reboot it while one is in flight (see `JumpHosts`).
    pub runs_on: Option<HostId>,
    pub policy: Policy,
    pub docker: DockerSettings,
    pub checks: Checks,
}

/// Which connection settings tendhost.toml gave explicitly rather than by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SshExplicit {
    pub user: bool,
    pub port: bool,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub auto_reboot: bool,
    pub maintenance_window: Option<MaintenanceWindow>,
    pub upgrade_mode: UpgradeMode,
    /// Lets an upgrade go ahead even when it would remove packages.
    pub allow_removals: bool,
    /// What to do with services still running code an upgrade replaced.
    pub restart_services: RestartServices,
}

/// `[host.policy] restart_services`: what happens to the services an upgrade left running old
/// code (needrestart `-b`, `needs-restarting -s`) when no reboot follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RestartServices {
    /// Not even listed: the operator handles restarts another way.
    Never,
    /// Listed per host (the detail pane, the JSON), restarted by nobody. The default.
    #[default]
    List,
    /// Restarted after the update (`systemctl try-restart`), then checked again.
    Auto,
}

#[derive(Debug, Clone)]
pub struct DockerSettings {
    pub compose_version: ComposeVersion,
    pub pull_before_update: bool,
    /// Images built less than this long ago are left for a later run (a cooldown: a broken
    /// release is usually found, and replaced, within days). `None`: any age.
    pub min_image_age: Option<Duration>,
}

/// What gates an update (see `crate::health`): the built-in checks, minus those in `skip`, and
/// the operator's commands: `pre` must pass before a host is touched, `post` after.
#[derive(Debug, Clone)]
pub struct Checks {
    pub pre: Option<String>,
    pub post: Option<String>,
    /// Built-in checks turned off for the host.
    pub skip: std::collections::BTreeSet<crate::health::CheckName>,
    /// Free space wanted on top of what an upgrade needs, in bytes.
    pub disk_margin: u64,
    /// How long the post-reboot check waits for `systemctl is-system-running` to settle.
    pub system_running_timeout: Duration,
}

/// Default `[host.checks] disk_margin`: room for dpkg's and the kernel's temporary files.
pub const DEFAULT_DISK_MARGIN: u64 = 200 << 20;
/// Default `[host.checks] system_running_timeout`: a slow boot's services have settled by then.
pub const DEFAULT_SYSTEM_RUNNING_TIMEOUT: Duration = Duration::from_secs(120);

impl Default for Checks {
    fn default() -> Self {
        Checks {
            pre: None,
            post: None,
            skip: Default::default(),
            disk_margin: DEFAULT_DISK_MARGIN,
            system_running_timeout: DEFAULT_SYSTEM_RUNNING_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SshSettings {
    pub known_hosts: KnownHostsPolicy,
    pub connect_timeout: Duration,
    /// Upper bound for one remote command unless the caller sets its own.
    pub command_timeout: Duration,
    pub keepalive: Duration,
    /// Handshakes (connect, key exchange, auth) in flight at once, whatever the host.
    pub max_handshakes: usize,
    /// Handshakes in flight to one sshd (`addr:port`; a jump host is one sshd for every host
    /// behind it), kept under sshd's `MaxStartups`.
    pub max_handshakes_per_server: usize,
    /// Key exchange algorithms in order of preference; empty = tendhost's order
    /// (`curve25519-sha256` first, see README "Connecting to many hosts").
    pub kex: Vec<String>,
}

/// Default for `[ssh] max_handshakes`: enough to keep a few cores (and a LAN's latency) busy,
/// few enough that 500 hosts starting at once queue here instead of in an agent or in the
/// kernel's accept backlogs. Connections are reused afterwards, so this bounds a one-time cost.
pub const DEFAULT_MAX_HANDSHAKES: usize = 10;

/// Default for `[ssh] max_handshakes_per_server`: below half of sshd's default `MaxStartups`
/// start (10), because sshd counts a connection a little past the client's successful login
/// (up to twice the limit may count at once), so tendhost never meets its random drops and
/// leaves room for the people and tools (an operator's `ssh`, Ansible) using the same sshd.
pub const DEFAULT_MAX_HANDSHAKES_PER_SERVER: usize = 4;

/// The key exchange names `[ssh] kex` accepts: those tendhost's SSH client implements.
/// (`sntrup761x25519-sha512@openssh.com`, OpenSSH 9.0–9.8's default, is not among them.)
pub const KEX_ALGORITHMS: &[&str] = &[
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "mlkem768x25519-sha256",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group14-sha256",
];

/// A batch size in a wave: an absolute count or a share of the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BatchSize {
    Count(usize),
    Percent(u8),
}

/// When a wave halts: more than this many failed hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailureLimit {
    Count(usize),
    Percent(u8),
}

/// How a wave paces its batches after the canary batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaveMode {
    /// A window of the current batch size: a host starts as soon as another finishes, so one
    /// slow host never holds the other slots idle.
    #[default]
    Rolling,
    /// Each batch waits for the whole previous batch (Ansible's `serial`).
    Batches,
}

/// What a wave does at its threshold (more failures than `max_failures`, or a batch without a
/// success): `[fleet] on_threshold`, `--on-threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnThreshold {
    /// Stop the wave (Ansible's behaviour).
    Abort,
    /// Hold every new start and ask: continue, skip the failed hosts, retry them, or abort.
    Pause,
}

#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// Periodic inventory refresh; `None` turns it off.
    pub refresh_interval: Option<Duration>,
    pub batch_size: Vec<BatchSize>,
    pub delay: Duration,
    pub max_failures: FailureLimit,
    /// Rolling window or batch barriers (`wave_mode`).
    pub wave_mode: WaveMode,
    /// `None`: the frontend's default (the console pauses, `--batch` aborts).
    pub on_threshold: Option<OnThreshold>,
    /// Most hosts downloading a wave's packages at once: outside the wave's batch size, small
    /// so the fleet does not all hit its mirror together.
    pub download_concurrency: usize,
    /// Most hosts talked to at once outside waves (refreshes, `host test`).
    pub concurrency: usize,
    /// How long a rebooting host may take to come back.
    pub reboot_timeout: Duration,
    /// How long tendhost follows one detached job (an upgrade, a compose pull or up) before it
    /// reports the job as outliving it. The job is never stopped for it: it runs on, and a
    /// retry of the host follows it again.
    pub upgrade_timeout: Duration,
    /// Package lists older than this are refreshed before a read (`0`: every read refreshes).
    /// Upgrades always refresh first, and the operator can ask for it.
    pub lists_max_age: Duration,
    /// Most hosts refreshing their package lists at once.
    pub lists_concurrency: usize,
}

/// `[metrics]`: where the node_exporter textfile goes (none by default).
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// `textfile = "PATH"`, ending in `.prom` (node_exporter's textfile collector reads only those).
    pub textfile: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub enabled: bool,
    /// Overrides `audit.jsonl` in the state dir.
    pub file: Option<PathBuf>,
    /// When the live file is renamed aside and how many renamed files stay.
    pub rotation: crate::store::audit::Rotation,
    /// The local syslog socket every record is also sent to (`syslog = true`: `/dev/log`).
    pub syslog: Option<PathBuf>,
    /// `webhook = "URL"`: every record is also POSTed there as JSON, in batches.
    pub webhook: Option<String>,
}

impl BatchSize {
    /// Parses `5` or `25%`.
    pub fn parse(text: &str) -> Result<BatchSize, String> {
        parse_count_or_percent(text).map(|v| match v {
            CountOrPercent::Count(n) if n > 0 => Ok(BatchSize::Count(n)),
            CountOrPercent::Count(_) => Err("a batch size must be at least 1".to_string()),
            CountOrPercent::Percent(p) if p > 0 => Ok(BatchSize::Percent(p)),
            CountOrPercent::Percent(_) => Err("a batch size must be more than 0%".to_string()),
        })?
    }

    /// Parses a comma-separated list such as `1,5,25%`.
    pub fn parse_list(text: &str) -> Result<Vec<BatchSize>, String> {
        text.split(',')
            .map(|part| BatchSize::parse(part.trim()))
            .collect()
    }

    /// How many of `total` hosts this size means (a percentage rounds up, at least 1).
    pub fn resolve(self, total: usize) -> usize {
        match self {
            BatchSize::Count(n) => n,
            BatchSize::Percent(p) => (total * usize::from(p)).div_ceil(100).max(1),
        }
    }
}

impl FailureLimit {
    /// Parses `0`, `3` or `10%`.
    pub fn parse(text: &str) -> Result<FailureLimit, String> {
        Ok(match parse_count_or_percent(text)? {
            CountOrPercent::Count(n) => FailureLimit::Count(n),
            CountOrPercent::Percent(p) => FailureLimit::Percent(p),
        })
    }

    /// The number of failures tolerated out of `total` hosts (a percentage rounds down).
    pub fn resolve(self, total: usize) -> usize {
        match self {
            FailureLimit::Count(n) => n,
            FailureLimit::Percent(p) => total * usize::from(p) / 100,
        }
    }
}

enum CountOrPercent {
    Count(usize),
    Percent(u8),
}

fn parse_count_or_percent(text: &str) -> Result<CountOrPercent, String> {
    let text = text.trim();
    if let Some(number) = text.strip_suffix('%') {
        let p: u8 = number
            .trim()
            .parse()
            .map_err(|_| format!("'{text}' is not a percentage"))?;
        if p > 100 {
            return Err(format!("'{text}' is more than 100%"));
        }
        Ok(CountOrPercent::Percent(p))
    } else {
        text.parse()
            .map(CountOrPercent::Count)
            .map_err(|_| format!("'{text}' is neither a number nor a percentage"))
    }
}
