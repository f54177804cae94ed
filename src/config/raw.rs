//! Reads `tendhost.toml` into [`Config`], keeping the byte span of every key and value so each
//! problem is reported as `file:line:column: key 'k': message`.
//!
//! We walk toml's spanned tree (`DeTable`) by hand rather than through serde: that is what lets an
//! unknown key get a "did you mean" hint, lets us report *every* problem in one pass instead of the
//! first, and keeps the seed's old `[daemon]` table loadable with a warning.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Weekday;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::window::{parse_day, parse_time};
use super::{
    AuditSettings, BatchSize, Checks, ComposeVersion, Config, ConfigError, Diagnostic,
    DockerSettings, FailureLimit, FleetSettings, HostConfig, HostId, KnownHostsPolicy,
    MaintenanceWindow, ManagerChoice, Policy, SshSettings, Transport, UpgradeMode, parse_duration,
};

const TOP_KEYS: &[&str] = &[
    "daemon", "defaults", "groups", "host", "ssh", "fleet", "audit", "keys",
];
const HOST_KEYS: &[&str] = &[
    "name",
    "addr",
    "port",
    "user",
    "ssh_key",
    "proxy_jump",
    "transport",
    "manager",
    "compose_paths",
    "tags",
    "policy",
    "docker",
    "checks",
];
const DEFAULTS_KEYS: &[&str] = &[
    "user",
    "ssh_key",
    "port",
    "proxy_jump",
    "manager",
    "policy",
    "docker",
    "checks",
];
const POLICY_KEYS: &[&str] = &[
    "auto_reboot",
    "maintenance_window",
    "upgrade_mode",
    "allow_removals",
];
const WINDOW_KEYS: &[&str] = &["start", "end", "days"];
const DOCKER_KEYS: &[&str] = &["compose_version", "pull_before_update"];
const CHECK_KEYS: &[&str] = &["pre", "post"];
const SSH_KEYS: &[&str] = &[
    "known_hosts",
    "connect_timeout",
    "command_timeout",
    "keepalive",
];
const FLEET_KEYS: &[&str] = &[
    "refresh_interval",
    "batch_size",
    "delay",
    "max_failures",
    "concurrency",
    "reboot_timeout",
];
const AUDIT_KEYS: &[&str] = &["enabled", "file", "syslog", "webhook"];
const DAEMON_KEYS: &[&str] = &["bind", "log_level", "tls", "auth"];
const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

type Value<'i> = Spanned<DeValue<'i>>;

/// Parses and validates a whole file.
pub(super) fn load(path: PathBuf, text: &str) -> Result<Config, ConfigError> {
    let mut ctx = Ctx {
        path,
        text,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(err) => {
            let span = err.span().unwrap_or(0..0);
            let key = key_at(text, span.start);
            ctx.error(
                span,
                &key,
                &format!("invalid TOML: {}", first_line(err.message())),
            );
            return Err(ConfigError::Invalid(ctx.errors));
        }
    };
    let config = ctx.read_root(root.get_ref(), root.span());
    if ctx.errors.is_empty() {
        let mut config = config;
        config.warnings = ctx.warnings;
        Ok(config)
    } else {
        Err(ConfigError::Invalid(ctx.errors))
    }
}

/// The settings `[defaults]` can give every host.
#[derive(Clone)]
struct HostDefaults {
    user: String,
    ssh_key: Option<PathBuf>,
    port: u16,
    proxy_jump: Option<String>,
    manager: ManagerChoice,
    policy: Policy,
    docker: DockerSettings,
    checks: Checks,
}

impl Default for HostDefaults {
    fn default() -> Self {
        Self {
            user: "root".into(),
            ssh_key: None,
            port: 22,
            proxy_jump: None,
            manager: ManagerChoice::Auto,
            policy: Policy {
                auto_reboot: true,
                maintenance_window: None,
                upgrade_mode: UpgradeMode::Full,
                allow_removals: false,
            },
            docker: DockerSettings {
                compose_version: ComposeVersion::V2,
                pull_before_update: true,
            },
            checks: Checks::default(),
        }
    }
}

struct Ctx<'t> {
    path: PathBuf,
    text: &'t str,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn diagnostic(&self, span: Range<usize>, key: &str, message: &str) -> Diagnostic {
        let (line, column) = line_column(self.text, span.start);
        Diagnostic {
            path: self.path.clone(),
            line,
            column,
            key: key.to_string(),
            message: message.to_string(),
        }
    }

    fn error(&mut self, span: Range<usize>, key: &str, message: &str) {
        let d = self.diagnostic(span, key, message);
        self.errors.push(d);
    }

    fn warn(&mut self, span: Range<usize>, key: &str, message: &str) {
        let d = self.diagnostic(span, key, message);
        self.warnings.push(d);
    }

    fn read_root(&mut self, root: &DeTable<'_>, root_span: Range<usize>) -> Config {
        self.check_keys(root, "", TOP_KEYS);
        let log_level = self.read_daemon(root);

        let mut defaults = HostDefaults::default();
        if let Some(table) = self.table(root, "", "defaults") {
            defaults = self.read_defaults(table, defaults);
        }
        let ssh_table = self.table(root, "", "ssh");
        let ssh = self.read_ssh(ssh_table);
        let fleet_table = self.table(root, "", "fleet");
        let fleet = self.read_fleet(fleet_table);
        let audit_table = self.table(root, "", "audit");
        let audit = self.read_audit(audit_table);
        let keys_table = self.table(root, "", "keys");
        let keys = self.read_keys(keys_table);

        let mut hosts = Vec::new();
        let mut host_spans = Vec::new();
        match root.get("host") {
            None => {}
            Some(value) => match value.get_ref() {
                DeValue::Array(items) => {
                    for item in items.iter() {
                        match item.get_ref() {
                            DeValue::Table(table) => {
                                if let Some(host) = self.read_host(table, item.span(), &defaults) {
                                    host_spans.push(item.span());
                                    hosts.push(host);
                                }
                            }
                            other => self.error(
                                item.span(),
                                "host",
                                &format!("expected a table ([[host]]), found {}", other.type_str()),
                            ),
                        }
                    }
                }
                other => self.error(
                    value.span(),
                    "host",
                    &format!(
                        "expected an array of tables ([[host]]), found {}",
                        other.type_str()
                    ),
                ),
            },
        }
        self.check_duplicate_hosts(&hosts, &host_spans);
        let groups = self.read_groups(root, &mut hosts);
        self.check_proxy_jumps(&hosts, &host_spans);
        let _ = root_span;

        Config {
            path: self.path.clone(),
            hosts,
            groups,
            ssh,
            fleet,
            audit,
            log_level,
            keys,
            warnings: Vec::new(),
        }
    }

    /// `[daemon]` belongs to the old daemon design: `log_level` still applies, `bind` and
    /// disabled `tls`/`auth` load with a warning, enabling `tls` or `auth` is an error.
    fn read_daemon(&mut self, root: &DeTable<'_>) -> Option<String> {
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

    fn read_defaults(&mut self, table: &DeTable<'_>, mut d: HostDefaults) -> HostDefaults {
        self.check_keys(table, "defaults", DEFAULTS_KEYS);
        if let Some(user) = self.user(table, "defaults") {
            d.user = user;
        }
        if let Some(key) = self.string(table, "defaults", "ssh_key") {
            d.ssh_key = Some(expand_home(key.get_ref()));
        }
        if let Some(port) = self.port(table, "defaults") {
            d.port = port;
        }
        if let Some(jump) = self.proxy_jump(table, "defaults") {
            d.proxy_jump = Some(jump);
        }
        if let Some(manager) = self.manager(table, "defaults") {
            d.manager = manager;
        }
        if let Some(policy) = self.table(table, "defaults", "policy") {
            d.policy = self.read_policy(policy, "defaults.policy", d.policy);
        }
        if let Some(docker) = self.table(table, "defaults", "docker") {
            d.docker = self.read_docker(docker, "defaults.docker", d.docker);
        }
        if let Some(checks) = self.table(table, "defaults", "checks") {
            d.checks = self.read_checks(checks, "defaults.checks", d.checks);
        }
        d
    }

    fn read_host(
        &mut self,
        table: &DeTable<'_>,
        span: Range<usize>,
        d: &HostDefaults,
    ) -> Option<HostConfig> {
        self.check_keys(table, "host", HOST_KEYS);
        let errors_before = self.errors.len();
        let name = match self.string(table, "host", "name") {
            Some(name) => {
                let valid = !name.get_ref().is_empty()
                    && name
                        .get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                if !valid {
                    self.error(
                        name.span(),
                        "host.name",
                        &format!(
                            "'{}' is not a host name (letters, digits, '-', '_' and '.' only)",
                            name.get_ref()
                        ),
                    );
                }
                name.into_inner()
            }
            None => {
                if table.get("name").is_none() {
                    self.error(span.clone(), "host.name", "every [[host]] needs a name");
                }
                String::new()
            }
        };
        let transport = match self.string(table, "host", "transport") {
            None => Transport::Ssh,
            Some(t) => match t.get_ref().as_str() {
                "ssh" => Transport::Ssh,
                "local" => Transport::Local,
                other => {
                    let msg = format!("'{other}' is not a transport (use 'ssh' or 'local')");
                    self.error(t.span(), "host.transport", &msg);
                    Transport::Ssh
                }
            },
        };
        let addr = match self.string(table, "host", "addr") {
            Some(addr) => {
                if let Err(why) = check_address(addr.get_ref()) {
                    self.error(addr.span(), "host.addr", &why);
                }
                addr.into_inner()
            }
            None if transport == Transport::Local => "localhost".into(),
            None => {
                if table.get("addr").is_none() {
                    self.error(
                        span.clone(),
                        "host.addr",
                        &format!("host '{name}' needs an addr (IP address or DNS name)"),
                    );
                }
                String::new()
            }
        };
        let user = self.user(table, "host").unwrap_or_else(|| d.user.clone());
        let ssh_key = self
            .string(table, "host", "ssh_key")
            .map(|k| expand_home(k.get_ref()))
            .or_else(|| d.ssh_key.clone());
        let port = self.port(table, "host").unwrap_or(d.port);
        let proxy_jump = self
            .proxy_jump(table, "host")
            .or_else(|| d.proxy_jump.clone());
        let manager = self.manager(table, "host").unwrap_or(d.manager);
        let compose_paths = self.string_list(table, "host", "compose_paths");
        for (path, path_span) in &compose_paths {
            if !path.starts_with('/') {
                self.error(
                    path_span.clone(),
                    "host.compose_paths",
                    &format!("'{path}' must be an absolute path"),
                );
            }
        }
        let tags = self.string_list(table, "host", "tags");
        for (tag, tag_span) in &tags {
            if tag.is_empty() || tag.contains(char::is_whitespace) || tag.contains(',') {
                self.error(
                    tag_span.clone(),
                    "host.tags",
                    &format!("'{tag}' is not a tag (no spaces or commas)"),
                );
            }
        }
        let policy = match self.table(table, "host", "policy") {
            Some(p) => self.read_policy(p, "host.policy", d.policy.clone()),
            None => d.policy.clone(),
        };
        let docker = match self.table(table, "host", "docker") {
            Some(t) => self.read_docker(t, "host.docker", d.docker.clone()),
            None => d.docker.clone(),
        };
        let checks = match self.table(table, "host", "checks") {
            Some(t) => self.read_checks(t, "host.checks", d.checks.clone()),
            None => d.checks.clone(),
        };
        if self.errors.len() > errors_before && name.is_empty() {
            return None;
        }
        Some(HostConfig {
            name: HostId::from(name),
            addr,
            port,
            user,
            ssh_key,
            proxy_jump,
            transport,
            manager,
            compose_paths: compose_paths.into_iter().map(|(p, _)| p).collect(),
            tags: tags.into_iter().map(|(t, _)| t).collect(),
            groups: Vec::new(),
            policy,
            docker,
            checks,
        })
    }

    fn read_policy(&mut self, table: &DeTable<'_>, at: &str, mut policy: Policy) -> Policy {
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
        let window_key = format!("{at}.maintenance_window");
        if let Some(window) = self.table(table, at, "maintenance_window") {
            policy.maintenance_window = self.read_window(window, &window_key, table);
        }
        policy
    }

    fn read_window(
        &mut self,
        table: &DeTable<'_>,
        at: &str,
        parent: &DeTable<'_>,
    ) -> Option<MaintenanceWindow> {
        self.check_keys(table, at, WINDOW_KEYS);
        let whole = parent
            .get_key_value("maintenance_window")
            .map_or(0..0, |(k, _)| k.span());
        let mut time = |ctx: &mut Self, key: &str| {
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

    fn read_docker(
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
        docker
    }

    fn read_checks(&mut self, table: &DeTable<'_>, at: &str, mut checks: Checks) -> Checks {
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
        checks
    }

    fn read_ssh(&mut self, table: Option<&DeTable<'_>>) -> SshSettings {
        let mut ssh = SshSettings {
            known_hosts: KnownHostsPolicy::Strict,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(3600),
            keepalive: Duration::from_secs(30),
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
        ssh
    }

    fn read_fleet(&mut self, table: Option<&DeTable<'_>>) -> FleetSettings {
        let mut fleet = FleetSettings {
            refresh_interval: Some(Duration::from_secs(3600)),
            batch_size: vec![BatchSize::Count(1), BatchSize::Percent(25)],
            delay: Duration::from_secs(0),
            max_failures: FailureLimit::Count(0),
            concurrency: 32,
            reboot_timeout: Duration::from_secs(600),
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
        if let Some(n) = self.integer(table, "fleet", "concurrency") {
            if (1..=4096).contains(&n) {
                fleet.concurrency = n as usize;
            } else {
                let span = table.get("concurrency").map_or(0..0, Spanned::span);
                self.error(span, "fleet.concurrency", "must be between 1 and 4096");
            }
        }
        fleet
    }

    fn read_audit(&mut self, table: Option<&DeTable<'_>>) -> AuditSettings {
        let mut audit = AuditSettings {
            enabled: true,
            file: None,
        };
        let Some(table) = table else { return audit };
        self.check_keys(table, "audit", AUDIT_KEYS);
        if let Some(v) = self.boolean(table, "audit", "enabled") {
            audit.enabled = v;
        }
        if let Some(v) = self.string(table, "audit", "file") {
            audit.file = Some(expand_home(v.get_ref()));
        }
        if let Some(true) = self.boolean(table, "audit", "syslog") {
            let span = table.get("syslog").map_or(0..0, Spanned::span);
            self.error(span, "audit.syslog", "not supported: tendhost writes audit records to a JSON-lines file; ship that file to syslog instead");
        }
        if let Some(v) = table.get("webhook") {
            self.error(v.span(), "audit.webhook", "not supported: tendhost makes no network calls besides SSH; ship the audit file instead");
        }
        audit
    }

    fn read_keys(&mut self, table: Option<&DeTable<'_>>) -> BTreeMap<String, Vec<String>> {
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

    fn read_groups(
        &mut self,
        root: &DeTable<'_>,
        hosts: &mut [HostConfig],
    ) -> BTreeMap<String, Vec<HostId>> {
        let mut groups = BTreeMap::new();
        let Some(table) = self.table(root, "", "groups") else {
            return groups;
        };
        let index: HashMap<String, usize> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.to_string(), i))
            .collect();
        let names: Vec<&str> = index.keys().map(String::as_str).collect();
        let mut memberships: Vec<(usize, String)> = Vec::new();
        for (group, _) in table.iter() {
            let group = group.get_ref().to_string();
            let at = format!("groups.{group}");
            let mut members = Vec::new();
            for (member, span) in self.string_list(table, "groups", &group) {
                match index.get(&member) {
                    Some(&i) => {
                        if !members.iter().any(|m: &HostId| **m == *member) {
                            members.push(hosts[i].name.clone());
                            memberships.push((i, group.clone()));
                        }
                    }
                    None => {
                        let hint = did_you_mean(&member, &names);
                        self.error(span, &at, &format!("unknown host '{member}'{hint}"));
                    }
                }
            }
            groups.insert(group, members);
        }
        for (i, group) in memberships {
            hosts[i].groups.push(group);
        }
        groups
    }

    fn check_duplicate_hosts(&mut self, hosts: &[HostConfig], spans: &[Range<usize>]) {
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (host, span) in hosts.iter().zip(spans) {
            if host.name.is_empty() {
                continue;
            }
            if let Some(&earlier) = first.get(&*host.name) {
                let (line, _) = line_column(self.text, earlier);
                self.error(
                    span.clone(),
                    "host.name",
                    &format!(
                        "duplicate host name '{}' (first defined on line {line})",
                        host.name
                    ),
                );
            } else {
                first.insert(&host.name, span.start);
            }
        }
    }

    /// A `proxy_jump` naming a configured host must not name the host itself.
    fn check_proxy_jumps(&mut self, hosts: &[HostConfig], spans: &[Range<usize>]) {
        for (host, span) in hosts.iter().zip(spans) {
            if host.proxy_jump.as_deref() == Some(&*host.name) {
                self.error(
                    span.clone(),
                    "host.proxy_jump",
                    &format!("host '{}' cannot jump through itself", host.name),
                );
            }
        }
    }

    // ---- typed getters: each reports a wrong type once and returns None ----

    fn check_keys(&mut self, table: &DeTable<'_>, at: &str, allowed: &[&str]) {
        for (key, _) in table.iter() {
            let name = key.get_ref();
            if !allowed.contains(&name.as_ref()) {
                let full = join(at, name);
                let hint = did_you_mean(name, allowed);
                self.error(key.span(), &full, &format!("unknown key{hint}"));
            }
        }
    }

    fn type_error(&mut self, value: &Value<'_>, key: &str, expected: &str) {
        let found = value.get_ref().type_str();
        self.error(
            value.span(),
            key,
            &format!("expected {expected}, found {found}"),
        );
    }

    fn table<'a, 'i>(
        &mut self,
        t: &'a DeTable<'i>,
        at: &str,
        key: &str,
    ) -> Option<&'a DeTable<'i>> {
        let value = t.get(key)?;
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            _ => {
                self.type_error(value, &join(at, key), "a table");
                None
            }
        }
    }

    fn string(&mut self, t: &DeTable<'_>, at: &str, key: &str) -> Option<Spanned<String>> {
        let value = t.get(key)?;
        match value.get_ref() {
            DeValue::String(s) => Some(Spanned::new(value.span(), s.to_string())),
            _ => {
                self.type_error(value, &join(at, key), "a string");
                None
            }
        }
    }

    fn boolean(&mut self, t: &DeTable<'_>, at: &str, key: &str) -> Option<bool> {
        let value = t.get(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(value, &join(at, key), "true or false");
                None
            }
        }
    }

    fn integer(&mut self, t: &DeTable<'_>, at: &str, key: &str) -> Option<i64> {
        let value = t.get(key)?;
        match value.get_ref() {
            DeValue::Integer(i) => {
                match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.error(value.span(), &join(at, key), "number out of range");
                        None
                    }
                }
            }
            _ => {
                self.type_error(value, &join(at, key), "a whole number");
                None
            }
        }
    }

    fn duration(
        &mut self,
        t: &DeTable<'_>,
        at: &str,
        key: &str,
        zero_ok: bool,
    ) -> Option<Duration> {
        let value = t.get(key)?;
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => parse_duration(i.as_str()),
            DeValue::String(s) => parse_duration(s),
            other => Err(format!(
                "expected seconds or a duration such as \"90s\" or \"5m\", found {}",
                other.type_str()
            )),
        };
        match parsed {
            Ok(d) if d.is_zero() && !zero_ok => {
                self.error(value.span(), &join(at, key), "must be more than zero");
                None
            }
            Ok(d) => Some(d),
            Err(why) => {
                self.error(value.span(), &join(at, key), &why);
                None
            }
        }
    }

    fn string_list(&mut self, t: &DeTable<'_>, at: &str, key: &str) -> Vec<(String, Range<usize>)> {
        let Some(value) = t.get(key) else {
            return Vec::new();
        };
        let full = join(at, key);
        match value.get_ref() {
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push((s.to_string(), item.span())),
                        _ => self.type_error(item, &full, "a string"),
                    }
                }
                out
            }
            _ => {
                self.type_error(value, &full, "a list of strings");
                Vec::new()
            }
        }
    }

    fn user(&mut self, t: &DeTable<'_>, at: &str) -> Option<String> {
        let user = self.string(t, at, "user")?;
        let valid = !user.get_ref().is_empty()
            && user
                .get_ref()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            let msg = format!("'{}' is not a user name", user.get_ref());
            self.error(user.span(), &join(at, "user"), &msg);
            return None;
        }
        Some(user.into_inner())
    }

    fn port(&mut self, t: &DeTable<'_>, at: &str) -> Option<u16> {
        let n = self.integer(t, at, "port")?;
        match u16::try_from(n) {
            Ok(port) if port > 0 => Some(port),
            _ => {
                let span = t.get("port").map_or(0..0, Spanned::span);
                self.error(
                    span,
                    &join(at, "port"),
                    &format!("{n} is not a port (1-65535)"),
                );
                None
            }
        }
    }

    fn proxy_jump(&mut self, t: &DeTable<'_>, at: &str) -> Option<String> {
        let jump = self.string(t, at, "proxy_jump")?;
        match check_jump(jump.get_ref()) {
            Ok(()) => Some(jump.into_inner()),
            Err(why) => {
                self.error(jump.span(), &join(at, "proxy_jump"), &why);
                None
            }
        }
    }

    fn manager(&mut self, t: &DeTable<'_>, at: &str) -> Option<ManagerChoice> {
        let m = self.string(t, at, "manager")?;
        let choice = match m.get_ref().as_str() {
            "auto" => ManagerChoice::Auto,
            "apt" => ManagerChoice::Apt,
            "dnf" => ManagerChoice::Dnf,
            "yum" => ManagerChoice::Yum,
            "none" => ManagerChoice::None,
            other => {
                let msg = format!(
                    "'{other}' is not a package manager (use auto, apt, dnf, yum or none){}",
                    did_you_mean(other, &["auto", "apt", "dnf", "yum", "none"])
                );
                self.error(m.span(), &join(at, "manager"), &msg);
                return None;
            }
        };
        Some(choice)
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// 1-based line and character column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// For a TOML syntax error: the key being written on that line, if any, else `(syntax)`.
fn key_at(text: &str, offset: usize) -> String {
    let offset = text.floor_char_boundary(offset.min(text.len()));
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    let key = line.split('=').next().unwrap_or("").trim();
    if line.contains('=') && !key.is_empty() && !key.starts_with('[') {
        key.to_string()
    } else if let Some(header) = line.trim().strip_prefix('[') {
        header
            .trim_matches(|c| c == '[' || c == ']')
            .trim()
            .to_string()
    } else {
        "(syntax)".to_string()
    }
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message).trim()
}

/// ` (did you mean 'x'?)` when a known word is close to `word`, else nothing.
fn did_you_mean(word: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, k)) if d <= 2.max(word.len() / 3) => format!(" (did you mean '{k}'?)"),
        _ => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

/// An address is an IP (v4 or v6) or a DNS name; never a URL, a port or a user.
fn check_address(addr: &str) -> Result<(), String> {
    if addr.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let bad = || format!("'{addr}' is not an IP address or host name");
    if addr.contains('@') {
        return Err(format!("{}; put the user in 'user'", bad()));
    }
    if addr.contains(':') && !addr.contains("::") && addr.matches(':').count() == 1 {
        return Err(format!("{}; put the port in 'port'", bad()));
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let all_numeric = addr
        .split('.')
        .all(|l| l.chars().all(|c| c.is_ascii_digit()));
    if addr.len() > 253 || all_numeric || !addr.split('.').all(valid_label) {
        return Err(bad());
    }
    Ok(())
}

/// `proxy_jump`: `[user@]host[:port]`, where host is an address or a configured host's name.
fn check_jump(jump: &str) -> Result<(), String> {
    let rest = match jump.split_once('@') {
        Some((user, rest)) if !user.is_empty() => rest,
        Some(_) => return Err(format!("'{jump}' has an empty user")),
        None => jump,
    };
    let host = match rest.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!("'{jump}' has an invalid port '{port}'"));
            }
            host
        }
        _ => rest,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    check_address(host).map_err(|_| format!("'{jump}' is not [user@]host[:port]"))
}

fn expand_home(path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/") {
        if let Some(home) = directories::BaseDirs::new() {
            return home.home_dir().join(rest);
        }
    }
    PathBuf::from(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(
            did_you_mean("maintenance_windw", POLICY_KEYS),
            " (did you mean 'maintenance_window'?)"
        );
        assert_eq!(did_you_mean("colour", POLICY_KEYS), "");
    }

    #[test]
    fn locates_offsets() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 10), (2, 4));
    }

    #[test]
    fn addresses() {
        for ok in [
            "192.168.1.10",
            "::1",
            "fe80::1",
            "host-1.example.com",
            "localhost",
        ] {
            assert!(check_address(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "999.1.1.1",
            "host name",
            "root@host",
            "host:22",
            "-bad.com",
            "a..b",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jumps() {
        for ok in ["bastion", "admin@bastion:2222", "10.0.0.1", "u@[::1]:22"] {
            assert!(check_jump(ok).is_ok(), "{ok}");
        }
        for bad in ["@host", "host:0", "host:x", "a b"] {
            assert!(check_jump(bad).is_err(), "{bad}");
        }
    }
}
