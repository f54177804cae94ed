//! Readers for the tables besides `[[host]]`: `[daemon]`, `[ssh]`, `[fleet]`, `[audit]`, `[keys]`
//! and the per-host (or `[defaults]`) `policy`, `docker` and `checks` tables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Weekday;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::raw::{Ctx, Value, expand_home};
use super::window::{parse_day, parse_time};
use super::{
    AuditSettings, BatchSize, Checks, ComposeVersion, DEFAULT_MAX_HANDSHAKES,
    DEFAULT_MAX_HANDSHAKES_PER_SERVER, DockerSettings, FailureLimit, FleetSettings, KEX_ALGORITHMS,
    KnownHostsPolicy, MaintenanceWindow, MetricsSettings, OnThreshold, Policy, RestartServices,
    SshSettings, UpgradeMode, WaveMode,
};
use crate::health::CheckName;

const POLICY_KEYS: &[&str] = &[
    "auto_reboot",
    "maintenance_window",
    "upgrade_mode",
    "allow_removals",
    "restart_services",
];
const WINDOW_KEYS: &[&str] = &["start", "end", "days"];
const DOCKER_KEYS: &[&str] = &["compose_version", "pull_before_update", "min_image_age"];
const CHECK_KEYS: &[&str] = &[
    "pre",
    "post",
    "skip",
    "disk_margin",
    "system_running_timeout",
];
const SSH_KEYS: &[&str] = &[
    "known_hosts",
    "connect_timeout",
    "command_timeout",
    "keepalive",
    "max_handshakes",
    "max_handshakes_per_server",
    "kex",
];
/// Package lists younger than this are read as they are: an hour, the `cache_valid_time` most
/// Ansible playbooks use, and shorter than the twice-daily `apt-daily` timer, so what the
/// console shows is never older than what the host's own automation would fetch.
const DEFAULT_LISTS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Hosts refreshing their lists at once: enough that a fleet's morning refresh is quick, few
/// enough that one mirror (or an apt-cacher on the LAN) is not hit by the whole fleet at once.
const DEFAULT_LISTS_CONCURRENCY: usize = 8;

const FLEET_KEYS: &[&str] = &[
    "refresh_interval",
    "batch_size",
    "delay",
    "max_failures",
    "wave_mode",
    "on_threshold",
    "download_concurrency",
    "concurrency",
    "reboot_timeout",
    "upgrade_timeout",
    "lists_max_age",
    "lists_concurrency",
];
const AUDIT_KEYS: &[&str] = &[
    "enabled", "file", "syslog", "webhook", "max_size", "max_age", "keep",
];
const METRICS_KEYS: &[&str] = &["textfile"];
const DAEMON_KEYS: &[&str] = &["bind", "log_level", "tls", "auth"];
const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

impl Ctx<'_> {
    /// `[daemon]` belongs to the old daemon design: `log_level` still applies, `bind` and
    /// disabled `tls`/`auth` load with a warning, enabling `tls` or `auth` is an error.
    pub(super) fn read_daemon(&mut self, root: &DeTable<'_>) -> Option<String> {
        let daemon = self.table(root, "", "daemon")?;
        self.check_keys(daemon, "daemon", DAEMON_KEYS);
        if let Some((key, _)) = daemon.get_key_value("bind") {
            self.warn(
                key.span(),
                "daemon.bind",
                "ignored: tendhost has no network listener (the TUI runs the fleet in-process)",
            );
        }
        for part in ["tls", "auth"] {
            let key = format!("daemon.{part}");
            let Some(table) = self.table(daemon, "daemon", part) else {
                continue;
            };
            if let Some(enabled) = table.get("enabled") {
                match enabled.get_ref().as_bool() {
                    Some(true) => self.error(
                        enabled.span(),
                        &format!("{key}.enabled"),
                        "tendhost has no network listener, so there is nothing to protect with \
                         tls or auth; remove this (SSH and file permissions protect tendhost)",
                    ),
                    Some(false) => {}
                    None => self.type_error(enabled, &format!("{key}.enabled"), "a boolean"),
                }
            }
            let span = daemon.get_key_value(part).map_or(0..0, |(k, _)| k.span());
            self.warn(span, &key, "ignored: tendhost has no network listener");
        }
        let level = self.string(daemon, "daemon", "log_level")?;
        if LOG_LEVELS.contains(&level.get_ref().as_str()) {
            Some(level.into_inner())
        } else {
            self.error(
                level.span(),
                "daemon.log_level",
                &format!(
                    "'{}' is not a log level (use {})",
                    level.get_ref(),
                    LOG_LEVELS.join(", ")
                ),
            );
            None
        }
    }

    pub(super) fn read_policy(
        &mut self,
        table: &DeTable<'_>,
        at: &str,
        mut policy: Policy,
    ) -> Policy {
        self.check_keys(table, at, POLICY_KEYS);
        if let Some(v) = self.boolean(table, at, "auto_reboot") {
            policy.auto_reboot = v;
        }
        if let Some(v) = self.boolean(table, at, "allow_removals") {
            policy.allow_removals = v;
        }
        if let Some(mode) = self.string(table, at, "upgrade_mode") {
            match mode.get_ref().as_str() {
                "full" => policy.upgrade_mode = UpgradeMode::Full,
                "safe" => policy.upgrade_mode = UpgradeMode::Safe,
                other => self.error(
                    mode.span(),
                    &format!("{at}.upgrade_mode"),
                    &format!("'{other}' is not an upgrade mode (use 'full' or 'safe')"),
                ),
            }
        }
        if let Some(v) = self.string(table, at, "restart_services") {
            match v.get_ref().as_str() {
                "never" => policy.restart_services = RestartServices::Never,
                "list" => policy.restart_services = RestartServices::List,
                "auto" => policy.restart_services = RestartServices::Auto,
                other => self.error(
                    v.span(),
                    &format!("{at}.restart_services"),
                    &format!("'{other}' is not a restart policy (use 'never', 'list' or 'auto')"),
                ),
            }
        }
        let window_key = format!("{at}.maintenance_window");
        if let Some(window) = self.table(table, at, "maintenance_window") {
            policy.maintenance_window = self.read_window(window, &window_key, table);
        }
        policy
    }

    pub(super) fn read_window(
        &mut self,
        table: &DeTable<'_>,
        at: &str,
        parent: &DeTable<'_>,
    ) -> Option<MaintenanceWindow> {
        self.check_keys(table, at, WINDOW_KEYS);
        let whole = parent
            .get_key_value("maintenance_window")
            .map_or(0..0, |(k, _)| k.span());
        let time = |ctx: &mut Self, key: &str| {
            let value = ctx.string(table, at, key);
            match value {
                None => {
                    if table.get(key).is_none() {
                        ctx.error(whole.clone(), &format!("{at}.{key}"), "missing (HH:MM)");
                    }
                    None
                }
                Some(v) => match parse_time(v.get_ref()) {
                    Ok(t) => Some(t),
                    Err(why) => {
                        ctx.error(v.span(), &format!("{at}.{key}"), &why);
                        None
                    }
                },
            }
        };
        let start = time(self, "start");
        let end = time(self, "end");
        let mut days = Vec::new();
        let listed = self.string_list(table, at, "days");
        for (day, span) in &listed {
            match parse_day(day) {
                Ok(d) if !days.contains(&d) => days.push(d),
                Ok(_) => {}
                Err(why) => self.error(span.clone(), &format!("{at}.days"), &why),
            }
        }
        if listed.is_empty() {
            if let Some(v) = table.get("days") {
                self.error(
                    v.span(),
                    &format!("{at}.days"),
                    "an empty list of days; leave 'days' out to mean every day",
                );
            }
            days = vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ];
        }
        let (start, end) = (start?, end?);
        if start == end {
            self.error(
                whole,
                at,
                "start and end are equal; leave maintenance_window out to allow any time",
            );
            return None;
        }
        Some(MaintenanceWindow { start, end, days })
    }

    pub(super) fn read_docker(
        &mut self,
        table: &DeTable<'_>,
        at: &str,
        mut docker: DockerSettings,
    ) -> DockerSettings {
        self.check_keys(table, at, DOCKER_KEYS);
        if let Some(v) = self.string(table, at, "compose_version") {
            match v.get_ref().as_str() {
                "v1" => docker.compose_version = ComposeVersion::V1,
                "v2" => docker.compose_version = ComposeVersion::V2,
                other => self.error(
                    v.span(),
                    &format!("{at}.compose_version"),
                    &format!(
                        "'{other}' is not a compose version (use 'v1' for docker-compose or \
                         'v2' for docker compose)"
                    ),
                ),
            }
        }
        if let Some(v) = self.boolean(table, at, "pull_before_update") {
            docker.pull_before_update = v;
        }
        if let Some(age) = self.duration(table, at, "min_image_age", true) {
            docker.min_image_age = Some(age).filter(|a| !a.is_zero());
        }
        docker
    }

    pub(super) fn read_checks(
        &mut self,
        table: &DeTable<'_>,
        at: &str,
        mut checks: Checks,
    ) -> Checks {
        self.check_keys(table, at, CHECK_KEYS);
        for (key, slot) in [("pre", &mut checks.pre), ("post", &mut checks.post)] {
            if let Some(v) = self.string(table, at, key) {
                if v.get_ref().trim().is_empty() {
                    self.error(v.span(), &format!("{at}.{key}"), "an empty check command");
                } else {
                    *slot = Some(v.into_inner());
                }
            }
        }
        if table.contains_key("skip") {
            // Written here, the list replaces the defaults' list (as every other key does).
            checks.skip.clear();
        }
        for (name, span) in self.string_list(table, at, "skip") {
            match CheckName::skippable(&name) {
                Some(check) => {
                    checks.skip.insert(check);
                }
                None => {
                    let names = CheckName::skippable_names();
                    let hint = crate::config::suggest::did_you_mean(&name, &names);
                    self.error(
                        span,
                        &format!("{at}.skip"),
                        &format!("'{name}' is not a check that can be skipped{hint}"),
                    );
                }
            }
        }
        if let Some(v) = self.string(table, at, "disk_margin") {
            match parse_size::parse_size(v.get_ref()) {
                Ok(bytes) => checks.disk_margin = bytes,
                Err(why) => self.error(
                    v.span(),
                    &format!("{at}.disk_margin"),
                    &format!("'{}' is not a size such as \"500MiB\" ({why})", v.get_ref()),
                ),
            }
        }
        if let Some(d) = self.duration(table, at, "system_running_timeout", false) {
            checks.system_running_timeout = d;
        }
        checks
    }

    pub(super) fn read_ssh(&mut self, table: Option<&DeTable<'_>>) -> SshSettings {
        let mut ssh = SshSettings {
            known_hosts: KnownHostsPolicy::Strict,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(3600),
            keepalive: Duration::from_secs(30),
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            max_handshakes_per_server: DEFAULT_MAX_HANDSHAKES_PER_SERVER,
            kex: Vec::new(),
        };
        let Some(table) = table else { return ssh };
        self.check_keys(table, "ssh", SSH_KEYS);
        if let Some(v) = self.string(table, "ssh", "known_hosts") {
            match v.get_ref().as_str() {
                "strict" => ssh.known_hosts = KnownHostsPolicy::Strict,
                "accept-new" => ssh.known_hosts = KnownHostsPolicy::AcceptNew,
                other => self.error(
                    v.span(),
                    "ssh.known_hosts",
                    &format!("'{other}' is not a policy (use 'strict' or 'accept-new')"),
                ),
            }
        }
        if let Some(d) = self.duration(table, "ssh", "connect_timeout", false) {
            ssh.connect_timeout = d;
        }
        if let Some(d) = self.duration(table, "ssh", "command_timeout", false) {
            ssh.command_timeout = d;
        }
        if let Some(d) = self.duration(table, "ssh", "keepalive", true) {
            ssh.keepalive = d;
        }
        for key in ["max_handshakes", "max_handshakes_per_server"] {
            let Some(n) = self.integer(table, "ssh", key) else {
                continue;
            };
            if (1..=4096).contains(&n) {
                let n = n as usize;
                match key {
                    "max_handshakes" => ssh.max_handshakes = n,
                    _ => ssh.max_handshakes_per_server = n,
                }
            } else {
                let span = table.get(key).map_or(0..0, Spanned::span);
                self.error(span, &format!("ssh.{key}"), "must be between 1 and 4096");
            }
        }
        if table.contains_key("kex") {
            let names = self.string_list(table, "ssh", "kex");
            if let Some(value) = table.get("kex")
                && matches!(value.get_ref(), DeValue::Array(items) if items.iter().next().is_none())
            {
                let why = "an empty list (leave it out for tendhost's order)";
                self.error(value.span(), "ssh.kex", why);
            }
            for (name, span) in names {
                if KEX_ALGORITHMS.contains(&name.as_str()) {
                    ssh.kex.push(name);
                } else {
                    let why = format!(
                        "'{name}' is not a key exchange tendhost implements (use {})",
                        KEX_ALGORITHMS.join(", ")
                    );
                    self.error(span, "ssh.kex", &why);
                }
            }
        }
        ssh
    }

    pub(super) fn read_fleet(&mut self, table: Option<&DeTable<'_>>) -> FleetSettings {
        let mut fleet = FleetSettings {
            refresh_interval: Some(Duration::from_secs(3600)),
            batch_size: vec![BatchSize::Count(1), BatchSize::Percent(25)],
            delay: Duration::from_secs(0),
            max_failures: FailureLimit::Count(0),
            wave_mode: WaveMode::Rolling,
            on_threshold: None,
            download_concurrency: 4,
            concurrency: 32,
            reboot_timeout: Duration::from_secs(600),
            upgrade_timeout: Duration::from_secs(2 * 3600),
            lists_max_age: DEFAULT_LISTS_MAX_AGE,
            lists_concurrency: DEFAULT_LISTS_CONCURRENCY,
        };
        let Some(table) = table else { return fleet };
        self.check_keys(table, "fleet", FLEET_KEYS);
        if table.contains_key("refresh_interval") {
            // 0 turns the periodic refresh off.
            fleet.refresh_interval = self
                .duration(table, "fleet", "refresh_interval", true)
                .filter(|d| !d.is_zero());
        }
        if let Some(d) = self.duration(table, "fleet", "delay", true) {
            fleet.delay = d;
        }
        if let Some(d) = self.duration(table, "fleet", "reboot_timeout", false) {
            fleet.reboot_timeout = d;
        }
        if let Some(d) = self.duration(table, "fleet", "upgrade_timeout", false) {
            fleet.upgrade_timeout = d;
        }
        if let Some(d) = self.duration(table, "fleet", "lists_max_age", true) {
            fleet.lists_max_age = d;
        }
        if let Some(value) = table.get("batch_size") {
            let parts: Vec<&Value<'_>> = match value.get_ref() {
                DeValue::Array(items) => items.iter().collect(),
                _ => vec![value],
            };
            let mut sizes = Vec::new();
            for part in parts {
                let parsed = match part.get_ref() {
                    DeValue::Integer(i) => i
                        .as_str()
                        .parse::<usize>()
                        .map_err(|_| "a batch size must be a positive number".to_string())
                        .and_then(|n| BatchSize::parse(&n.to_string()).map(|b| vec![b])),
                    DeValue::String(s) => BatchSize::parse_list(s),
                    other => Err(format!(
                        "expected a number, a percentage string or a list, found {}",
                        other.type_str()
                    )),
                };
                match parsed {
                    Ok(more) => sizes.extend(more),
                    Err(why) => self.error(part.span(), "fleet.batch_size", &why),
                }
            }
            if !sizes.is_empty() {
                fleet.batch_size = sizes;
            }
        }
        if let Some(value) = table.get("max_failures") {
            let parsed = match value.get_ref() {
                DeValue::Integer(i) => FailureLimit::parse(i.as_str()),
                DeValue::String(s) => FailureLimit::parse(s),
                other => Err(format!(
                    "expected a number or a percentage string, found {}",
                    other.type_str()
                )),
            };
            match parsed {
                Ok(limit) => fleet.max_failures = limit,
                Err(why) => self.error(value.span(), "fleet.max_failures", &why),
            }
        }
        if let Some(mode) = self.string(table, "fleet", "wave_mode") {
            match mode.get_ref().as_str() {
                "rolling" => fleet.wave_mode = WaveMode::Rolling,
                "batches" => fleet.wave_mode = WaveMode::Batches,
                other => self.error(
                    mode.span(),
                    "fleet.wave_mode",
                    &format!("'{other}' is not a wave mode (use 'rolling' or 'batches')"),
                ),
            }
        }
        if let Some(choice) = self.string(table, "fleet", "on_threshold") {
            match choice.get_ref().as_str() {
                "pause" => fleet.on_threshold = Some(OnThreshold::Pause),
                "abort" => fleet.on_threshold = Some(OnThreshold::Abort),
                other => self.error(
                    choice.span(),
                    "fleet.on_threshold",
                    &format!("'{other}' is not a threshold choice (use 'pause' or 'abort')"),
                ),
            }
        }
        if let Some(n) = self.integer(table, "fleet", "download_concurrency") {
            if (1..=4096).contains(&n) {
                fleet.download_concurrency = n as usize;
            } else {
                let span = table
                    .get("download_concurrency")
                    .map_or(0..0, Spanned::span);
                self.error(
                    span,
                    "fleet.download_concurrency",
                    "must be between 1 and 4096",
                );
            }
        }
        if let Some(n) = self.integer(table, "fleet", "concurrency") {
            if (1..=4096).contains(&n) {
                fleet.concurrency = n as usize;
            } else {
                let span = table.get("concurrency").map_or(0..0, Spanned::span);
                self.error(span, "fleet.concurrency", "must be between 1 and 4096");
            }
        }
        if let Some(n) = self.integer(table, "fleet", "lists_concurrency") {
            if (1..=4096).contains(&n) {
                fleet.lists_concurrency = n as usize;
            } else {
                let span = table.get("lists_concurrency").map_or(0..0, Spanned::span);
                self.error(
                    span,
                    "fleet.lists_concurrency",
                    "must be between 1 and 4096",
                );
            }
        }
        fleet
    }

    pub(super) fn read_audit(&mut self, table: Option<&DeTable<'_>>) -> AuditSettings {
        let mut audit = AuditSettings {
            enabled: true,
            file: None,
            rotation: crate::store::audit::Rotation::default(),
            syslog: None,
            webhook: None,
        };
        let Some(table) = table else { return audit };
        self.check_keys(table, "audit", AUDIT_KEYS);
        if let Some(v) = self.boolean(table, "audit", "enabled") {
            audit.enabled = v;
        }
        if let Some(v) = self.string(table, "audit", "file") {
            audit.file = Some(expand_home(v.get_ref()));
        }
        if let Some(v) = self.string(table, "audit", "max_size") {
            match parse_size::parse_size(v.get_ref()) {
                Ok(0) => self.error(v.span(), "audit.max_size", "must be more than zero"),
                Ok(bytes) => audit.rotation.max_size = Some(bytes),
                Err(why) => self.error(
                    v.span(),
                    "audit.max_size",
                    &format!("'{}' is not a size such as \"50MiB\" ({why})", v.get_ref()),
                ),
            }
        }
        if let Some(d) = self.duration(table, "audit", "max_age", false) {
            audit.rotation.max_age = Some(d);
        }
        if let Some(n) = self.integer(table, "audit", "keep") {
            if (1..=10_000).contains(&n) {
                audit.rotation.keep = n as usize;
            } else {
                let span = table.get("keep").map_or(0..0, Spanned::span);
                self.error(span, "audit.keep", "must be between 1 and 10000");
            }
        }
        if let Some(v) = table.get("syslog") {
            match v.get_ref() {
                DeValue::Boolean(true) => audit.syslog = Some(PathBuf::from("/dev/log")),
                DeValue::Boolean(false) => {}
                DeValue::String(s) if !s.is_empty() => audit.syslog = Some(expand_home(s)),
                other => self.error(
                    v.span(),
                    "audit.syslog",
                    &format!(
                        "expected true, false or a socket path such as \"/dev/log\", found {}",
                        other.type_str()
                    ),
                ),
            }
        }
        if let Some(v) = self.string(table, "audit", "webhook") {
            match super::notify::check_http_url(v.get_ref()) {
                Ok(()) if !audit.enabled => {
                    let why = "ignored: the audit log is off (enabled = false)";
                    self.warn(v.span(), "audit.webhook", why);
                }
                Ok(()) => audit.webhook = Some(v.into_inner()),
                Err(why) => self.error(v.span(), "audit.webhook", &why),
            }
        }
        audit
    }

    pub(super) fn read_metrics(&mut self, table: Option<&DeTable<'_>>) -> MetricsSettings {
        let mut metrics = MetricsSettings::default();
        let Some(table) = table else { return metrics };
        self.check_keys(table, "metrics", METRICS_KEYS);
        if let Some(v) = self.string(table, "metrics", "textfile") {
            let path = expand_home(v.get_ref());
            if path.extension().is_some_and(|e| e == "prom") {
                metrics.textfile = Some(path);
            } else {
                self.error(
                    v.span(),
                    "metrics.textfile",
                    "must end in '.prom': node_exporter's textfile collector reads only those",
                );
            }
        }
        metrics
    }

    pub(super) fn read_keys(
        &mut self,
        table: Option<&DeTable<'_>>,
    ) -> BTreeMap<String, Vec<String>> {
        let mut keys = BTreeMap::new();
        let Some(table) = table else { return keys };
        for (action, value) in table.iter() {
            let at = format!("keys.{}", action.get_ref());
            let specs = match value.get_ref() {
                DeValue::String(s) => vec![s.to_string()],
                DeValue::Array(_) => self
                    .string_list(table, "keys", action.get_ref())
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect(),
                other => {
                    self.error(
                        value.span(),
                        &at,
                        &format!(
                            "expected a key or a list of keys, found {}",
                            other.type_str()
                        ),
                    );
                    continue;
                }
            };
            keys.insert(action.get_ref().to_string(), specs);
        }
        keys
    }
}
