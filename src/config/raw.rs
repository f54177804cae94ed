//! Reads `tendhost.toml` into [`Config`], keeping the byte span of every key and value so each
//! problem is reported as `file:line:column: key 'k': message`.
//!
//! We walk toml's spanned tree (`DeTable`) by hand rather than through serde: that is what lets an
//! unknown key get a "did you mean" hint, lets us report *every* problem in one pass instead of the
//! first, and keeps the seed's old `[daemon]` table loadable with a warning.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::address::check_address;
use super::suggest::did_you_mean;
use super::{
    Checks, ComposeVersion, Config, ConfigError, Diagnostic, DockerSettings, HostConfig, HostId,
    ManagerChoice, Policy, RestartServices, SshExplicit, Transport, UpgradeMode,
};

const TOP_KEYS: &[&str] = &[
    "daemon", "defaults", "groups", "clusters", "host", "ssh", "fleet", "audit", "metrics", "keys",
    "schedule", "notify",
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
    "job_dir",
    "tags",
    "cluster",
    "runs_on",
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

pub(super) type Value<'i> = Spanned<DeValue<'i>>;

/// A cluster's name is shown in messages and plans: a word, like a tag.
fn valid_cluster(name: &str) -> bool {
    !name.is_empty() && !name.contains(char::is_whitespace) && !name.contains(',')
}

/// Parses and validates a whole file.
pub(super) fn load(path: PathBuf, text: &str) -> Result<Config, ConfigError> {
    let mut ctx = Ctx {
        path,
        text,
        errors: Vec::new(),
        warnings: Vec::new(),
        runs_on: Vec::new(),
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
    /// Which of `user`/`port` the file set (else `~/.ssh/config` may supply them).
    explicit: SshExplicit,
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
            explicit: SshExplicit::default(),
            ssh_key: None,
            port: 22,
            proxy_jump: None,
            manager: ManagerChoice::Auto,
            policy: Policy {
                auto_reboot: true,
                maintenance_window: None,
                upgrade_mode: UpgradeMode::Full,
                allow_removals: false,
                restart_services: RestartServices::List,
            },
            docker: DockerSettings {
                compose_version: ComposeVersion::V2,
                pull_before_update: true,
                min_image_age: None,
            },
            checks: Checks::default(),
        }
    }
}

pub(super) struct Ctx<'t> {
    path: PathBuf,
    text: &'t str,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Each host's `runs_on` as written, checked once every host is known.
    runs_on: Vec<(HostId, String, Range<usize>)>,
}

impl Ctx<'_> {
    pub(super) fn diagnostic(&self, span: Range<usize>, key: &str, message: &str) -> Diagnostic {
        let (line, column) = line_column(self.text, span.start);
        Diagnostic {
            path: self.path.clone(),
            line,
            column,
            key: key.to_string(),
            message: message.to_string(),
        }
    }

    pub(super) fn error(&mut self, span: Range<usize>, key: &str, message: &str) {
        let d = self.diagnostic(span, key, message);
        self.errors.push(d);
    }

    pub(super) fn warn(&mut self, span: Range<usize>, key: &str, message: &str) {
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
        let metrics_table = self.table(root, "", "metrics");
        let metrics = self.read_metrics(metrics_table);
        let keys_table = self.table(root, "", "keys");
        let keys = self.read_keys(keys_table);
        let schedules = self.read_schedules(root);
        let notify = self.read_notifiers(root);

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
        self.read_clusters(root, &mut hosts);
        self.check_proxy_jumps(&hosts, &host_spans);
        self.resolve_runs_on(&mut hosts);
        let _ = root_span;

        Config {
            path: self.path.clone(),
            hosts,
            groups,
            ssh,
            fleet,
            audit,
            metrics,
            log_level,
            keys,
            schedules,
            notify,
            warnings: Vec::new(),
        }
    }

    fn read_defaults(&mut self, table: &DeTable<'_>, mut d: HostDefaults) -> HostDefaults {
        self.check_keys(table, "defaults", DEFAULTS_KEYS);
        if let Some(user) = self.user(table, "defaults") {
            d.user = user;
            d.explicit.user = true;
        }
        if let Some(key) = self.string(table, "defaults", "ssh_key") {
            d.ssh_key = Some(expand_home(key.get_ref()));
        }
        if let Some(port) = self.port(table, "defaults") {
            d.port = port;
            d.explicit.port = true;
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
        let host_user = self.user(table, "host");
        let explicit = SshExplicit {
            user: d.explicit.user || host_user.is_some(),
            port: d.explicit.port || table.get("port").is_some(),
        };
        let user = host_user.unwrap_or_else(|| d.user.clone());
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
        let job_dir = match self.string(table, "host", "job_dir") {
            Some(dir) => {
                let (text, dir_span) = (dir.get_ref().to_string(), dir.span());
                if !text.starts_with('/') || text.contains(['\n', '\0']) {
                    self.error(
                        dir_span,
                        "host.job_dir",
                        &format!("'{text}' must be an absolute path"),
                    );
                }
                text
            }
            None => crate::remote::job::DEFAULT_DIR.to_string(),
        };
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
        let cluster = self.string(table, "host", "cluster").and_then(|c| {
            if valid_cluster(c.get_ref()) {
                Some(Arc::<str>::from(c.get_ref().as_str()))
            } else {
                let why = format!(
                    "'{}' is not a cluster name (no spaces or commas)",
                    c.get_ref()
                );
                self.error(c.span(), "host.cluster", &why);
                None
            }
        });
        if let Some(hypervisor) = self.string(table, "host", "runs_on") {
            self.runs_on.push((
                HostId::from(name.as_str()),
                hypervisor.get_ref().to_string(),
                hypervisor.span(),
            ));
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
            explicit,
            ssh_key,
            proxy_jump,
            transport,
            manager,
            compose_paths: compose_paths.into_iter().map(|(p, _)| p).collect(),
            job_dir,
            tags: tags.into_iter().map(|(t, _)| t).collect(),
            groups: Vec::new(),
            cluster,
            runs_on: None,
            policy,
            docker,
            checks,
        })
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

    /// `[clusters] db = ["pg1", "pg2"]`: the hosts of one exclusion group, never in flight
    /// together. The same as `cluster = "db"` on each host; a host may be in one cluster only.
    fn read_clusters(&mut self, root: &DeTable<'_>, hosts: &mut [HostConfig]) {
        let Some(table) = self.table(root, "", "clusters") else {
            return;
        };
        let index: HashMap<String, usize> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.to_string(), i))
            .collect();
        // In config order, so a "did you mean" between equally close names is always the same.
        let owned: Vec<String> = hosts.iter().map(|h| h.name.to_string()).collect();
        let names: Vec<&str> = owned.iter().map(String::as_str).collect();
        for (cluster, _) in table.iter() {
            let cluster = cluster.get_ref().to_string();
            let at = format!("clusters.{cluster}");
            if !valid_cluster(&cluster) {
                let span = table.get(cluster.as_str()).map_or(0..0, Spanned::span);
                let why = format!("'{cluster}' is not a cluster name (no spaces or commas)");
                self.error(span, &at, &why);
                continue;
            }
            for (member, span) in self.string_list(table, "clusters", &cluster) {
                let Some(&i) = index.get(&member) else {
                    let hint = did_you_mean(&member, &names);
                    self.error(span, &at, &format!("unknown host '{member}'{hint}"));
                    continue;
                };
                match hosts[i].cluster.as_deref() {
                    Some(other) if other != cluster => {
                        let why = format!(
                            "host '{member}' is already in cluster '{other}' (a host may be in one \
                             cluster only)"
                        );
                        self.error(span, &at, &why);
                    }
                    _ => hosts[i].cluster = Some(cluster.as_str().into()),
                }
            }
        }
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

    /// `runs_on = "pve1"`: the hypervisor must be another configured host, and following
    /// `runs_on` from any host must end (a guest cannot run its own hypervisor).
    fn resolve_runs_on(&mut self, hosts: &mut [HostConfig]) {
        let index: HashMap<String, usize> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.to_string(), i))
            .collect();
        let names: Vec<&str> = index.keys().map(String::as_str).collect();
        let mut errors = Vec::new();
        let mut spans: HashMap<usize, Range<usize>> = HashMap::new();
        for (guest, hypervisor, span) in std::mem::take(&mut self.runs_on) {
            let Some(&g) = index.get(&*guest) else {
                continue;
            };
            match index.get(&hypervisor) {
                None => {
                    let hint = did_you_mean(&hypervisor, &names);
                    errors.push((span, format!("unknown host '{hypervisor}'{hint}")));
                }
                Some(_) if *hypervisor == *guest => {
                    errors.push((span, format!("host '{guest}' cannot run on itself")));
                }
                Some(&h) => {
                    hosts[g].runs_on = Some(hosts[h].name.clone());
                    spans.insert(g, span);
                }
            }
        }
        for (i, host) in hosts.iter().enumerate() {
            let mut at = host.runs_on.clone();
            for _ in 0..hosts.len() {
                let Some(next) = at.as_ref().and_then(|h| index.get(&**h)) else {
                    break;
                };
                if *next == i {
                    let why = format!(
                        "host '{}' ends up running on itself through runs_on",
                        host.name
                    );
                    errors.push((spans.get(&i).cloned().unwrap_or_default(), why));
                    break;
                }
                at = hosts[*next].runs_on.clone();
            }
        }
        for (span, why) in errors {
            self.error(span, "host.runs_on", &why);
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
}

pub(super) fn join(at: &str, key: &str) -> String {
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

pub(super) fn expand_home(path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/")
        && let Some(home) = directories::BaseDirs::new()
    {
        return home.home_dir().join(rest);
    }
    PathBuf::from(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_offsets() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 10), (2, 4));
    }

    #[test]
    fn audit_rotation_and_syslog_are_read_and_bad_values_located() {
        let config = Config::from_str("t.toml", "").unwrap();
        assert_eq!(
            config.audit.rotation,
            crate::store::audit::Rotation::default()
        );
        assert_eq!(config.audit.syslog, None);
        let text = "[audit]\nmax_size = \"1KiB\"\nmax_age = \"30d\"\nkeep = 3\nsyslog = true\n";
        let config = Config::from_str("t.toml", text).unwrap();
        assert_eq!(config.audit.rotation.max_size, Some(1024));
        assert_eq!(
            config.audit.rotation.max_age,
            Some(std::time::Duration::from_secs(30 * 86_400))
        );
        assert_eq!(config.audit.rotation.keep, 3);
        assert_eq!(config.audit.syslog, Some(PathBuf::from("/dev/log")));
        let text = "[audit]\nsyslog = \"/run/t.sock\"\n";
        let config = Config::from_str("t.toml", text).unwrap();
        assert_eq!(config.audit.syslog, Some(PathBuf::from("/run/t.sock")));
        let text = "[audit]\nwebhook = \"https://logs.example.com/in\"\n";
        let config = Config::from_str("t.toml", text).unwrap();
        assert_eq!(
            config.audit.webhook.as_deref(),
            Some("https://logs.example.com/in")
        );
        let text = "[audit]\nenabled = false\nwebhook = \"https://logs.example.com/in\"\n";
        let config = Config::from_str("t.toml", text).unwrap();
        assert_eq!(config.audit.webhook, None);
        assert_eq!(
            config.warnings[0].to_string(),
            "t.toml:3:11: key 'audit.webhook': ignored: the audit log is off (enabled = false)"
        );
        let text = "[audit]\nmax_size = \"lots\"\nkeep = 0\nsyslog = 1\n";
        let Err(ConfigError::Invalid(problems)) = Config::from_str("t.toml", text) else {
            panic!("bad audit keys loaded");
        };
        let found: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("t.toml:2:12: key 'audit.max_size': 'lots' is not a size"));
        assert_eq!(
            found[1],
            "t.toml:3:8: key 'audit.keep': must be between 1 and 10000"
        );
        assert!(found[2].starts_with("t.toml:4:10: key 'audit.syslog': expected true, false"));
    }

    #[test]
    fn handshake_limits_and_kex_are_read_and_bad_values_located() {
        let config = Config::from_str("t.toml", "").unwrap();
        assert_eq!(
            (
                config.ssh.max_handshakes,
                config.ssh.max_handshakes_per_server
            ),
            (10, 4)
        );
        assert!(config.ssh.kex.is_empty());
        let text = "[ssh]\nmax_handshakes = 64\nmax_handshakes_per_server = 2\n\
                    kex = [\"mlkem768x25519-sha256\", \"curve25519-sha256\"]\n";
        let config = Config::from_str("t.toml", text).unwrap();
        assert_eq!(
            (
                config.ssh.max_handshakes,
                config.ssh.max_handshakes_per_server
            ),
            (64, 2)
        );
        assert_eq!(
            config.ssh.kex,
            ["mlkem768x25519-sha256", "curve25519-sha256"]
        );
        let text = "[ssh]\nmax_handshakes = 0\nmax_handshakes_per_server = 5000\n\
                    kex = [\"curve25519-sha256\", \"sntrup761x25519-sha512@openssh.com\"]\n";
        let Err(ConfigError::Invalid(problems)) = Config::from_str("t.toml", text) else {
            panic!("bad limits loaded");
        };
        let found: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(found.len(), 3, "{found:#?}");
        assert_eq!(
            found[0],
            "t.toml:2:18: key 'ssh.max_handshakes': must be between 1 and 4096"
        );
        assert_eq!(
            found[1],
            "t.toml:3:29: key 'ssh.max_handshakes_per_server': must be between 1 and 4096"
        );
        assert!(
            found[2].starts_with(
                "t.toml:4:29: key 'ssh.kex': 'sntrup761x25519-sha512@openssh.com' is not a key \
                 exchange tendhost implements (use curve25519-sha256, "
            ),
            "{}",
            found[2]
        );
        let Err(ConfigError::Invalid(problems)) = Config::from_str("t.toml", "[ssh]\nkex = []\n")
        else {
            panic!("an empty kex list loaded");
        };
        assert_eq!(
            problems[0].to_string(),
            "t.toml:2:7: key 'ssh.kex': an empty list (leave it out for tendhost's order)"
        );
    }

    #[test]
    fn durations_no_clock_can_add_are_refused_where_written() {
        let text = "[ssh]\ncommand_timeout = \"1000000000000d\"\nconnect_timeout = \"10s\"\n\
                    keepalive = 99999999999999\n\n[fleet]\nreboot_timeout = \"36500d1s\"\n\
                    refresh_interval = \"36500d\"\n";
        let Err(ConfigError::Invalid(problems)) = Config::from_str("t.toml", text) else {
            panic!("too long durations loaded");
        };
        let found: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "t.toml:2:19: key 'ssh.command_timeout': '1000000000000d' is too long (at most \
                 36500d)",
                "t.toml:4:13: key 'ssh.keepalive': '99999999999999' is too long (at most 36500d)",
                "t.toml:7:18: key 'fleet.reboot_timeout': '36500d1s' is too long (at most 36500d)",
            ]
        );
    }

    #[test]
    fn waves_roll_and_download_four_at_a_time_unless_told_otherwise() {
        let config = Config::from_str("t.toml", "").unwrap();
        assert_eq!(config.fleet.wave_mode, crate::config::WaveMode::Rolling);
        assert_eq!(config.fleet.download_concurrency, 4);
        let text = "[fleet]\nwave_mode = \"batches\"\ndownload_concurrency = 9\n";
        let config = Config::from_str("t.toml", text).unwrap();
        assert_eq!(config.fleet.wave_mode, crate::config::WaveMode::Batches);
        assert_eq!(config.fleet.download_concurrency, 9);
        let Err(ConfigError::Invalid(problems)) =
            Config::from_str("t.toml", "[fleet]\nwave_mode = \"serial\"\n")
        else {
            panic!("a bad wave_mode loaded");
        };
        assert_eq!(
            problems[0].to_string(),
            "t.toml:2:13: key 'fleet.wave_mode': 'serial' is not a wave mode (use 'rolling' or \
             'batches')"
        );
    }

    #[test]
    fn on_threshold_is_left_to_the_frontend_unless_set() {
        let config = Config::from_str("t.toml", "").unwrap();
        assert_eq!(config.fleet.on_threshold, None);
        for (text, want) in [
            ("pause", crate::config::OnThreshold::Pause),
            ("abort", crate::config::OnThreshold::Abort),
        ] {
            let config =
                Config::from_str("t.toml", &format!("[fleet]\non_threshold = \"{text}\"\n"))
                    .unwrap();
            assert_eq!(config.fleet.on_threshold, Some(want));
        }
        let Err(ConfigError::Invalid(problems)) =
            Config::from_str("t.toml", "[fleet]\non_threshold = \"ask\"\n")
        else {
            panic!("a bad on_threshold loaded");
        };
        assert_eq!(
            problems[0].to_string(),
            "t.toml:2:16: key 'fleet.on_threshold': 'ask' is not a threshold choice (use 'pause' \
             or 'abort')"
        );
    }

    #[test]
    fn runs_on_names_another_configured_host_without_a_loop() {
        let ok = load(
            "t.toml".into(),
            "[[host]]\nname = \"pve1\"\naddr = \"10.0.0.1\"\n\
             [[host]]\nname = \"vm1\"\naddr = \"10.0.0.2\"\nruns_on = \"pve1\"\n",
        )
        .unwrap();
        assert_eq!(ok.hosts[1].runs_on.as_deref(), Some("pve1"));
        assert_eq!(ok.hosts[0].runs_on, None);
        let errors = |text: &str| match load("t.toml".into(), text) {
            Err(ConfigError::Invalid(d)) => d
                .iter()
                .map(|d| format!("{}:{} {}: {}", d.line, d.column, d.key, d.message))
                .collect::<Vec<_>>(),
            other => panic!("expected errors, got {other:?}"),
        };
        let e = errors(
            "[[host]]\nname = \"pve1\"\naddr = \"10.0.0.1\"\n\
             [[host]]\nname = \"vm1\"\naddr = \"10.0.0.2\"\nruns_on = \"pve2\"\n",
        );
        assert_eq!(
            e,
            ["7:11 host.runs_on: unknown host 'pve2' (did you mean 'pve1'?)"]
        );
        let e = errors(
            "[[host]]\nname = \"a\"\naddr = \"10.0.0.1\"\nruns_on = \"b\"\n\
             [[host]]\nname = \"b\"\naddr = \"10.0.0.2\"\nruns_on = \"a\"\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("4:11 host.runs_on: host 'a' ends up running on itself"),
            "{e:?}"
        );
    }

    #[test]
    fn clusters_come_from_each_host_or_the_clusters_table() {
        let text = "[clusters]\ndb = [\"pg1\", \"pg2\"]\n\
                    [[host]]\nname = \"pg1\"\naddr = \"10.0.0.1\"\n\
                    [[host]]\nname = \"pg2\"\naddr = \"10.0.0.2\"\ncluster = \"db\"\n\
                    [[host]]\nname = \"web\"\naddr = \"10.0.0.3\"\ncluster = \"front\"\n\
                    [[host]]\nname = \"lone\"\naddr = \"10.0.0.4\"\n";
        let config = Config::from_str("t.toml", text).unwrap();
        let clusters: Vec<Option<&str>> =
            config.hosts.iter().map(|h| h.cluster.as_deref()).collect();
        assert_eq!(clusters, [Some("db"), Some("db"), Some("front"), None]);
    }

    #[test]
    fn a_host_in_two_clusters_or_an_unknown_member_is_an_error() {
        let text = "[clusters]\ndb = [\"pg1\", \"pg9\"]\nweb = [\"pg1\"]\n\
                    [[host]]\nname = \"pg1\"\naddr = \"10.0.0.1\"\n\
                    [[host]]\nname = \"pg2\"\naddr = \"10.0.0.2\"\ncluster = \"db\"\n\
                    [[host]]\nname = \"x\"\naddr = \"10.0.0.3\"\ncluster = \"a b\"\n";
        let Err(ConfigError::Invalid(problems)) = Config::from_str("t.toml", text) else {
            panic!("bad clusters loaded");
        };
        let found: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "t.toml:14:11: key 'host.cluster': 'a b' is not a cluster name (no spaces or \
                 commas)",
                "t.toml:2:14: key 'clusters.db': unknown host 'pg9' (did you mean 'pg2'?)",
                "t.toml:3:8: key 'clusters.web': host 'pg1' is already in cluster 'db' (a host \
                 may be in one cluster only)",
            ]
        );
    }
}
