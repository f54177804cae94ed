//! `[[notify]]`: where tendhost tells someone what happened (ntfy, a webhook, Slack, Discord,
//! email, the local sendmail or a command), and for which events.
//!
//! Read the way `[[schedule]]` is: every key located, unknown ones with a "did you mean". Secrets
//! (tokens, passwords, webhook URLs that embed a token) are never written here: the config names
//! an environment variable or a file, read at delivery time (see [`SecretSource`]), so the config,
//! its `Debug` output and every message about it hold the name only.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::raw::{Ctx, expand_home, join};
use super::suggest::did_you_mean;

const AT: &str = "notify";

/// Keys every kind takes.
const COMMON_KEYS: &[&str] = &["name", "kind", "on", "timeout"];
/// Every key some kind takes: an unknown key is suggested from these, a known key the kind
/// does not take is refused naming the kind.
const ALL_KEYS: &[&str] = &[
    "name",
    "kind",
    "on",
    "timeout",
    "server",
    "topic",
    "url",
    "url_env",
    "url_file",
    "token_env",
    "token_file",
    "smtp_host",
    "smtp_port",
    "tls",
    "from",
    "to",
    "username",
    "password_env",
    "password_file",
    "sendmail",
    "command",
    // Refused with their own message (secrets are never inline), listed so they get it.
    "token",
    "password",
];
const KINDS: &[&str] = &[
    "ntfy", "webhook", "slack", "discord", "email", "sendmail", "command",
];
const TLS_MODES: &[&str] = &["starttls", "implicit", "opportunistic", "none"];

/// How long one delivery attempt may take unless `timeout` says otherwise.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// ntfy's public server, used when `server` is left out.
pub const DEFAULT_NTFY_SERVER: &str = "https://ntfy.sh";
/// Where `kind = "sendmail"` finds the binary unless `sendmail` says otherwise.
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";

/// What a notifier can be told about. The names are the config's and the webhook body's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A wave ended: finished, or aborted by the operator.
    WaveFinished,
    /// A wave halted at its failure threshold, or paused there waiting for the operator.
    WaveHalted,
    /// A host failed an update, reboot or verification.
    HostFailed,
    /// A host needs a reboot it is not taking now (outside its window, `auto_reboot` off).
    RebootNeeded,
    /// A scheduled wave did not run (missed while tendhost was down, paused, locked out).
    ScheduleSkipped,
    /// `tendhost notify test`: always delivered, whatever `on` says.
    Test,
}

impl NoticeKind {
    /// Every kind `on` may name, in the order the README lists them.
    pub const CHOOSABLE: [NoticeKind; 5] = [
        NoticeKind::WaveFinished,
        NoticeKind::WaveHalted,
        NoticeKind::HostFailed,
        NoticeKind::RebootNeeded,
        NoticeKind::ScheduleSkipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::WaveFinished => "wave_finished",
            NoticeKind::WaveHalted => "wave_halted",
            NoticeKind::HostFailed => "host_failed",
            NoticeKind::RebootNeeded => "reboot_needed",
            NoticeKind::ScheduleSkipped => "schedule_skipped",
            NoticeKind::Test => "test",
        }
    }

    /// `on` when left out: everything but `host_failed`, whose hosts a wave's own notice
    /// already lists (one message per wave, not one per failed host as well).
    pub fn default_on() -> Vec<NoticeKind> {
        Self::CHOOSABLE
            .into_iter()
            .filter(|k| *k != NoticeKind::HostFailed)
            .collect()
    }
}

/// Where a secret is read from, at each delivery (a rotated token file is picked up). Holds the
/// variable's name or the file's path, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// A URL written in the config, or (for webhook URLs that carry their token, as Slack's and
/// Discord's do) read like a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    Inline(String),
    Secret(SecretSource),
}

/// `tls` of an email notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required: the message is never sent in the clear (the default; port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// STARTTLS when the server offers it, plain otherwise.
    Opportunistic,
    /// Plain SMTP (a relay on localhost or the LAN; port 25).
    None,
}

/// Where one notifier delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// POST the text to `server/topic`.
    Ntfy {
        server: String,
        topic: String,
        token: Option<SecretSource>,
    },
    /// POST a JSON object (see `notify::message::webhook_body`).
    Webhook {
        url: UrlSource,
        token: Option<SecretSource>,
    },
    Slack {
        url: UrlSource,
    },
    Discord {
        url: UrlSource,
    },
    Email {
        smtp_host: String,
        smtp_port: u16,
        tls: SmtpTls,
        from: String,
        to: Vec<String>,
        username: Option<String>,
        password: Option<SecretSource>,
    },
    Sendmail {
        sendmail: PathBuf,
        from: String,
        to: Vec<String>,
    },
    /// Run by `/bin/sh -c`, the message on stdin and in `TENDHOST_*` variables.
    Command {
        command: String,
    },
}

/// One `[[notify]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub name: String,
    /// The events it is told about.
    pub on: Vec<NoticeKind>,
    /// How long one delivery attempt may take.
    pub timeout: Duration,
    pub target: NotifyTarget,
}

impl NotifyConfig {
    /// The `kind` as written.
    pub fn kind(&self) -> &'static str {
        match self.target {
            NotifyTarget::Ntfy { .. } => "ntfy",
            NotifyTarget::Webhook { .. } => "webhook",
            NotifyTarget::Slack { .. } => "slack",
            NotifyTarget::Discord { .. } => "discord",
            NotifyTarget::Email { .. } => "email",
            NotifyTarget::Sendmail { .. } => "sendmail",
            NotifyTarget::Command { .. } => "command",
        }
    }

    pub fn wants(&self, kind: NoticeKind) -> bool {
        kind == NoticeKind::Test || self.on.contains(&kind)
    }
}

/// The keys a kind takes besides [`COMMON_KEYS`].
fn kind_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "ntfy" => &["url", "server", "topic", "token_env", "token_file"],
        "webhook" => &["url", "url_env", "url_file", "token_env", "token_file"],
        "slack" | "discord" => &["url", "url_env", "url_file"],
        "email" => &[
            "smtp_host",
            "smtp_port",
            "tls",
            "from",
            "to",
            "username",
            "password_env",
            "password_file",
        ],
        "sendmail" => &["sendmail", "from", "to"],
        "command" => &["command"],
        _ => &[],
    }
}

impl Ctx<'_> {
    pub(super) fn read_notifiers(&mut self, root: &DeTable<'_>) -> Vec<NotifyConfig> {
        let mut out: Vec<NotifyConfig> = Vec::new();
        let Some(value) = root.get("notify") else {
            return out;
        };
        let DeValue::Array(items) = value.get_ref() else {
            self.type_error(value, AT, "an array of tables ([[notify]])");
            return out;
        };
        for item in items.iter() {
            let DeValue::Table(table) = item.get_ref() else {
                self.type_error(item, AT, "a table ([[notify]])");
                continue;
            };
            if let Some(notifier) = self.read_notifier(table, item.span()) {
                if out.iter().any(|n| n.name == notifier.name) {
                    let span = table.get("name").map_or(item.span(), Spanned::span);
                    let why = format!("notifier '{}' is defined twice", notifier.name);
                    self.error(span, "notify.name", &why);
                    continue;
                }
                out.push(notifier);
            }
        }
        out
    }

    fn read_notifier(&mut self, t: &DeTable<'_>, span: Range<usize>) -> Option<NotifyConfig> {
        self.check_keys(t, AT, ALL_KEYS);
        for secret in ["token", "password"] {
            if let Some((key, _)) = t.get_key_value(secret) {
                let why = format!(
                    "secrets are never written in the config: use {secret}_env = \"VARIABLE\" \
                     or {secret}_file = \"PATH\""
                );
                self.error(key.span(), &join(AT, secret), &why);
            }
        }
        let name = match self.string(t, AT, "name") {
            Some(n) if valid_name(n.get_ref()) => Some(n.into_inner()),
            Some(n) => {
                let why = "a notifier name is letters, digits, '-', '_' or '.'";
                self.error(n.span(), "notify.name", why);
                None
            }
            None => {
                if t.get("name").is_none() {
                    self.error(
                        span.clone(),
                        "notify.name",
                        "missing (every notifier needs one)",
                    );
                }
                None
            }
        };
        let kind = match self.string(t, AT, "kind") {
            Some(k) if KINDS.contains(&k.get_ref().as_str()) => Some(k.into_inner()),
            Some(k) => {
                let why = format!(
                    "'{}' is not a notifier kind{}",
                    k.get_ref(),
                    hint_or_list(k.get_ref(), KINDS)
                );
                self.error(k.span(), "notify.kind", &why);
                None
            }
            None => {
                if t.get("kind").is_none() {
                    let why = format!("missing (one of {})", KINDS.join(", "));
                    self.error(span.clone(), "notify.kind", &why);
                }
                None
            }
        };
        let on = self.notice_kinds(t);
        let timeout = self
            .duration(t, AT, "timeout", false)
            .unwrap_or(DEFAULT_NOTIFY_TIMEOUT);
        let kind = kind?;
        let allowed = kind_keys(&kind);
        for (key, _) in t.iter() {
            let key_name = key.get_ref().as_ref();
            let known = ALL_KEYS.contains(&key_name) && !["token", "password"].contains(&key_name);
            if known && !COMMON_KEYS.contains(&key_name) && !allowed.contains(&key_name) {
                let why = format!("not a key of kind '{kind}' notifiers");
                self.error(key.span(), &join(AT, key_name), &why);
            }
        }
        let target = self.read_target(t, &kind, span)?;
        Some(NotifyConfig {
            name: name?,
            on,
            timeout,
            target,
        })
    }

    fn notice_kinds(&mut self, t: &DeTable<'_>) -> Vec<NoticeKind> {
        if !t.contains_key("on") {
            return NoticeKind::default_on();
        }
        let names: Vec<&str> = NoticeKind::CHOOSABLE.iter().map(|k| k.as_str()).collect();
        let mut on = Vec::new();
        for (event, span) in self.string_list(t, AT, "on") {
            match NoticeKind::CHOOSABLE.iter().find(|k| k.as_str() == event) {
                Some(kind) if !on.contains(kind) => on.push(*kind),
                Some(_) => {}
                None => {
                    let why = format!("'{event}' is not an event{}", hint_or_list(&event, &names));
                    self.error(span, "notify.on", &why);
                }
            }
        }
        if on.is_empty()
            && let Some(v) = t.get("on")
            && matches!(v.get_ref(), DeValue::Array(items) if items.iter().next().is_none())
        {
            let why = "an empty list: leave 'on' out for the default, or remove the notifier";
            self.error(v.span(), "notify.on", why);
        }
        on
    }

    fn read_target(
        &mut self,
        t: &DeTable<'_>,
        kind: &str,
        span: Range<usize>,
    ) -> Option<NotifyTarget> {
        match kind {
            "ntfy" => {
                let token = self.secret(t, "token", false, &span);
                let (server, topic) = match self.string(t, AT, "url") {
                    // `url = "https://ntfy.sh/topic"`: the topic's whole URL.
                    Some(url) => {
                        let span = url.span();
                        if t.contains_key("server") || t.contains_key("topic") {
                            let why = "give url, or server and topic, not both";
                            self.error(span, "notify.url", why);
                            return None;
                        }
                        let url = self.http_url(url, "notify.url")?;
                        let url = url.trim_end_matches('/');
                        let split = url.rsplit_once('/').filter(|(s, _)| !s.ends_with('/'));
                        let Some((server, topic)) = split else {
                            let why = "a topic's URL ends in its topic (https://ntfy.sh/TOPIC)";
                            self.error(span, "notify.url", why);
                            return None;
                        };
                        (server.to_string(), Some((topic.to_string(), span)))
                    }
                    None => {
                        let server = match self.string(t, AT, "server") {
                            Some(s) => self.http_url(s, "notify.server")?,
                            None => DEFAULT_NTFY_SERVER.to_string(),
                        };
                        let topic = self.required(t, "topic", &span, "e.g. topic = \"tendhost\"");
                        let at = t.get("topic").map_or(span.clone(), Spanned::span);
                        (server, topic.map(|topic| (topic, at)))
                    }
                };
                let (topic, at) = topic?;
                if topic.is_empty() || topic.contains(['/', '?', '#', ' ']) {
                    self.error(at, "notify.topic", "a topic is one word (no '/', '?', '#')");
                    return None;
                }
                Some(NotifyTarget::Ntfy {
                    server: server.trim_end_matches('/').to_string(),
                    topic,
                    token: token?,
                })
            }
            "webhook" => {
                let url = self.url_source(t, &span);
                let token = self.secret(t, "token", false, &span);
                Some(NotifyTarget::Webhook {
                    url: url?,
                    token: token?,
                })
            }
            "slack" => Some(NotifyTarget::Slack {
                url: self.url_source(t, &span)?,
            }),
            "discord" => Some(NotifyTarget::Discord {
                url: self.url_source(t, &span)?,
            }),
            "email" => self.read_email(t, span),
            "sendmail" => {
                let sendmail = self.string(t, AT, "sendmail").map_or_else(
                    || PathBuf::from(DEFAULT_SENDMAIL),
                    |s| expand_home(s.get_ref()),
                );
                let from = self.mailbox(t, "from", &span);
                let to = self.mailboxes(t, &span);
                Some(NotifyTarget::Sendmail {
                    sendmail,
                    from: from?,
                    to: to?,
                })
            }
            "command" => {
                let command = self.required(t, "command", &span, "a command run by /bin/sh -c")?;
                if command.trim().is_empty() {
                    let at = t.get("command").map_or(span, Spanned::span);
                    self.error(at, "notify.command", "an empty command");
                    return None;
                }
                Some(NotifyTarget::Command { command })
            }
            _ => None,
        }
    }

    fn read_email(&mut self, t: &DeTable<'_>, span: Range<usize>) -> Option<NotifyTarget> {
        let smtp_host = self.required(t, "smtp_host", &span, "the SMTP server's name");
        let tls = match self.string(t, AT, "tls") {
            None => Some(SmtpTls::StartTls),
            Some(v) => match v.get_ref().as_str() {
                "starttls" => Some(SmtpTls::StartTls),
                "implicit" => Some(SmtpTls::Implicit),
                "opportunistic" => Some(SmtpTls::Opportunistic),
                "none" => Some(SmtpTls::None),
                other => {
                    let why = format!(
                        "'{other}' is not a TLS mode{}",
                        hint_or_list(other, TLS_MODES)
                    );
                    self.error(v.span(), "notify.tls", &why);
                    None
                }
            },
        };
        let port = match self.integer(t, AT, "smtp_port") {
            None => None,
            Some(n) => match u16::try_from(n) {
                Ok(p) if p > 0 => Some(p),
                _ => {
                    let at = t.get("smtp_port").map_or(span.clone(), Spanned::span);
                    self.error(at, "notify.smtp_port", "must be between 1 and 65535");
                    return None;
                }
            },
        };
        let from = self.mailbox(t, "from", &span);
        let to = self.mailboxes(t, &span);
        let username = self.string(t, AT, "username").map(Spanned::into_inner);
        let password = self.secret(t, "password", false, &span);
        if matches!(password, Some(None)) && username.is_some() {
            let at = t.get("username").map_or(span.clone(), Spanned::span);
            let why = "a username needs password_env or password_file";
            self.error(at, "notify.username", why);
            return None;
        }
        if matches!(password, Some(Some(_))) && username.is_none() {
            let key = ["password_env", "password_file"]
                .into_iter()
                .find(|k| t.contains_key(*k))
                .unwrap_or("password_env");
            let at = t.get(key).map_or(span.clone(), Spanned::span);
            self.error(at, &join(AT, key), "a password needs a username");
            return None;
        }
        let tls = tls?;
        let smtp_port = port.unwrap_or(match tls {
            SmtpTls::Implicit => 465,
            SmtpTls::StartTls | SmtpTls::Opportunistic => 587,
            SmtpTls::None => 25,
        });
        Some(NotifyTarget::Email {
            smtp_host: smtp_host?,
            smtp_port,
            tls,
            from: from?,
            to: to?,
            username,
            password: password?,
        })
    }

    /// A string key the kind cannot do without.
    fn required(
        &mut self,
        t: &DeTable<'_>,
        key: &str,
        span: &Range<usize>,
        what: &str,
    ) -> Option<String> {
        match self.string(t, AT, key) {
            Some(v) => Some(v.into_inner()),
            None => {
                if t.get(key).is_none() {
                    self.error(span.clone(), &join(AT, key), &format!("missing ({what})"));
                }
                None
            }
        }
    }

    /// `http://` or `https://`, with a host: what ureq can POST to.
    fn http_url(&mut self, v: Spanned<String>, key: &str) -> Option<String> {
        match check_http_url(v.get_ref()) {
            Ok(()) => Some(v.into_inner()),
            Err(why) => {
                self.error(v.span(), key, &why);
                None
            }
        }
    }

    /// `url`, or `url_env` / `url_file` for a URL that carries its token.
    fn url_source(&mut self, t: &DeTable<'_>, span: &Range<usize>) -> Option<UrlSource> {
        let inline = self.string(t, AT, "url");
        let secret = self.secret(t, "url", inline.is_none(), span)?;
        match (inline, secret) {
            (Some(url), None) => self.http_url(url, "notify.url").map(UrlSource::Inline),
            (None, Some(secret)) => Some(UrlSource::Secret(secret)),
            (Some(url), Some(_)) => {
                let why = "give one of url, url_env and url_file";
                self.error(url.span(), "notify.url", why);
                None
            }
            (None, None) => None,
        }
    }

    /// `{what}_env` or `{what}_file`: `Some(None)` when neither is given and `needed` is false,
    /// `None` after an error.
    fn secret(
        &mut self,
        t: &DeTable<'_>,
        what: &str,
        needed: bool,
        span: &Range<usize>,
    ) -> Option<Option<SecretSource>> {
        let env_key = format!("{what}_env");
        let file_key = format!("{what}_file");
        let env = self.string(t, AT, &env_key);
        let file = self.string(t, AT, &file_key);
        match (env, file) {
            (Some(_), Some(file)) => {
                let why = format!("give one of {env_key} and {file_key}");
                self.error(file.span(), &join(AT, &file_key), &why);
                None
            }
            (Some(var), None) => {
                let valid = !var.get_ref().is_empty()
                    && var
                        .get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                if valid {
                    Some(Some(SecretSource::Env(var.into_inner())))
                } else {
                    let why = format!("'{}' is not an environment variable name", var.get_ref());
                    self.error(var.span(), &join(AT, &env_key), &why);
                    None
                }
            }
            (None, Some(path)) => Some(Some(SecretSource::File(expand_home(path.get_ref())))),
            (None, None) if needed => {
                if !t.contains_key(env_key.as_str()) && !t.contains_key(file_key.as_str()) {
                    let why = format!("missing (give {what}, {env_key} or {file_key})");
                    self.error(span.clone(), &join(AT, what), &why);
                }
                None
            }
            (None, None) => Some(None),
        }
    }

    fn mailbox(&mut self, t: &DeTable<'_>, key: &str, span: &Range<usize>) -> Option<String> {
        let v = match self.string(t, AT, key) {
            Some(v) => v,
            None => {
                if t.get(key).is_none() {
                    let why = "missing (an address such as \"tendhost@example.com\")";
                    self.error(span.clone(), &join(AT, key), why);
                }
                return None;
            }
        };
        match v.get_ref().parse::<lettre::message::Mailbox>() {
            Ok(_) => Some(v.into_inner()),
            Err(err) => {
                let why = format!("'{}' is not an email address ({err})", v.get_ref());
                self.error(v.span(), &join(AT, key), &why);
                None
            }
        }
    }

    /// `to`: one address or a list of them.
    fn mailboxes(&mut self, t: &DeTable<'_>, span: &Range<usize>) -> Option<Vec<String>> {
        let Some(value) = t.get("to") else {
            let why = "missing (an address or a list of them)";
            self.error(span.clone(), "notify.to", why);
            return None;
        };
        let listed: Vec<(String, Range<usize>)> = match value.get_ref() {
            DeValue::String(s) => vec![(s.to_string(), value.span())],
            _ => self.string_list(t, AT, "to"),
        };
        if listed.is_empty() {
            self.error(value.span(), "notify.to", "no address to send to");
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (address, at) in listed {
            match address.parse::<lettre::message::Mailbox>() {
                Ok(_) => out.push(address),
                Err(err) => {
                    ok = false;
                    let why = format!("'{address}' is not an email address ({err})");
                    self.error(at, "notify.to", &why);
                }
            }
        }
        ok.then_some(out)
    }
}

/// `[audit] webhook` and every notifier URL: an `http://` or `https://` URL with a host.
pub(super) fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("'{url}' is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.contains(char::is_whitespace) {
        return Err(format!("'{url}' is not an http:// or https:// URL"));
    }
    Ok(())
}

/// ` (did you mean 'x'?)` for a near miss, else ` (use a, b or c)`.
fn hint_or_list(word: &str, known: &[&str]) -> String {
    let hint = did_you_mean(word, known);
    if hint.is_empty() {
        format!(" (use {})", known.join(", "))
    } else {
        hint
    }
}

/// Names show in messages, the audit log and `tendhost notify test NAME`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let Err(ConfigError::Invalid(problems)) = Config::from_str("t.toml", text) else {
            panic!("loaded: {text}");
        };
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn each_kind_is_read_with_its_keys_and_defaults() {
        let text = r#"
[[notify]]
name = "phone"
kind = "ntfy"
topic = "fleet"
token_env = "NTFY_TOKEN"

[[notify]]
name = "self-hosted"
kind = "ntfy"
url = "https://ntfy.example.com/alerts/"

[[notify]]
name = "hook"
kind = "webhook"
url = "https://example.com/hook"
token_file = "/run/secrets/hook"
on = ["host_failed", "wave_finished"]
timeout = "3s"

[[notify]]
name = "chat"
kind = "slack"
url_env = "SLACK_URL"

[[notify]]
name = "dc"
kind = "discord"
url_file = "/run/secrets/discord"

[[notify]]
name = "mail"
kind = "email"
smtp_host = "mail.example.com"
tls = "implicit"
from = "tendhost@example.com"
to = ["ops@example.com", "Alice <alice@example.com>"]
username = "tendhost"
password_env = "SMTP_PASSWORD"

[[notify]]
name = "local"
kind = "sendmail"
from = "root@localhost"
to = "ops@example.com"

[[notify]]
name = "hook2"
kind = "command"
command = "logger -t tendhost"
"#;
        let config = Config::from_str("t.toml", text).unwrap();
        let mut n = config.notify.clone();
        assert_eq!(n.len(), 8);
        assert_eq!(
            n.remove(1).target,
            NotifyTarget::Ntfy {
                server: "https://ntfy.example.com".into(),
                topic: "alerts".into(),
                token: None,
            }
        );
        assert_eq!(
            n[0].target,
            NotifyTarget::Ntfy {
                server: DEFAULT_NTFY_SERVER.into(),
                topic: "fleet".into(),
                token: Some(SecretSource::Env("NTFY_TOKEN".into())),
            }
        );
        assert_eq!(n[0].on, NoticeKind::default_on());
        assert!(!n[0].wants(NoticeKind::HostFailed) && n[0].wants(NoticeKind::Test));
        assert_eq!(n[0].timeout, DEFAULT_NOTIFY_TIMEOUT);
        assert_eq!(n[1].on, [NoticeKind::HostFailed, NoticeKind::WaveFinished]);
        assert_eq!(n[1].timeout, Duration::from_secs(3));
        assert_eq!(
            n[1].target,
            NotifyTarget::Webhook {
                url: UrlSource::Inline("https://example.com/hook".into()),
                token: Some(SecretSource::File("/run/secrets/hook".into())),
            }
        );
        assert_eq!(
            n[2].target,
            NotifyTarget::Slack {
                url: UrlSource::Secret(SecretSource::Env("SLACK_URL".into()))
            }
        );
        assert_eq!(n[3].kind(), "discord");
        let NotifyTarget::Email {
            smtp_port,
            tls,
            to,
            password,
            ..
        } = &n[4].target
        else {
            panic!("not email: {:?}", n[4]);
        };
        assert_eq!((*smtp_port, *tls), (465, SmtpTls::Implicit));
        assert_eq!(to.len(), 2);
        assert_eq!(password, &Some(SecretSource::Env("SMTP_PASSWORD".into())));
        assert_eq!(
            n[5].target,
            NotifyTarget::Sendmail {
                sendmail: DEFAULT_SENDMAIL.into(),
                from: "root@localhost".into(),
                to: vec!["ops@example.com".into()],
            }
        );
        assert_eq!(
            n[6].target,
            NotifyTarget::Command {
                command: "logger -t tendhost".into()
            }
        );
    }

    #[test]
    fn inline_secrets_are_refused_and_never_echoed() {
        let text = "[[notify]]\nname = \"x\"\nkind = \"ntfy\"\ntopic = \"t\"\ntoken = \"s3cret\"\n\n\
                    [[notify]]\nname = \"m\"\nkind = \"email\"\nsmtp_host = \"h\"\nfrom = \"a@b.c\"\n\
                    to = \"d@e.f\"\nusername = \"u\"\npassword = \"hunter2\"\n";
        let found = problems(text);
        let all = found.join("\n");
        assert!(!all.contains("s3cret") && !all.contains("hunter2"), "{all}");
        assert!(
            found.contains(
                &"t.toml:5:1: key 'notify.token': secrets are never written in the config: use \
                  token_env = \"VARIABLE\" or token_file = \"PATH\""
                    .to_string()
            ),
            "{all}"
        );
        assert!(
            all.contains("t.toml:14:1: key 'notify.password': secrets are never"),
            "{all}"
        );
        assert!(
            all.contains("t.toml:13:12: key 'notify.username': a username needs password_env"),
            "{all}"
        );
    }

    #[test]
    fn bad_notifiers_name_file_line_column_and_key() {
        let text = "[[notify]]\nname = \"a\"\nkind = \"ntfi\"\n\n\
                    [[notify]]\nname = \"b\"\nkind = \"webhook\"\nurl = \"ftp://x\"\ntopik = \"t\"\n\n\
                    [[notify]]\nname = \"c\"\nkind = \"slack\"\nurl = \"https://h/x\"\ntopic = \"t\"\n\
                    on = [\"wave_finish\"]\n\n\
                    [[notify]]\nname = \"c\"\nkind = \"discord\"\n\n\
                    [[notify]]\nname = \"e\"\nkind = \"email\"\nsmtp_host = \"h\"\ntls = \"ssl\"\n\
                    from = \"nobody\"\nto = []\n";
        let found = problems(text);
        let all = found.join("\n");
        let expect = [
            "t.toml:3:8: key 'notify.kind': 'ntfi' is not a notifier kind (did you mean 'ntfy'?)",
            "t.toml:9:1: key 'notify.topik': unknown key (did you mean 'topic'?)",
            "t.toml:8:7: key 'notify.url': 'ftp://x' is not an http:// or https:// URL",
            "t.toml:15:1: key 'notify.topic': not a key of kind 'slack' notifiers",
            "t.toml:16:7: key 'notify.on': 'wave_finish' is not an event (did you mean \
             'wave_finished'?)",
            "t.toml:18:1: key 'notify.url': missing (give url, url_env or url_file)",
            "t.toml:26:7: key 'notify.tls': 'ssl' is not a TLS mode",
            "t.toml:27:8: key 'notify.from': 'nobody' is not an email address",
            "t.toml:28:6: key 'notify.to': no address to send to",
        ];
        for e in expect {
            assert!(all.contains(e), "missing {e:?} in:\n{all}");
        }
    }

    #[test]
    fn an_ntfy_url_names_its_topic() {
        let text = "[[notify]]\nname = \"a\"\nkind = \"ntfy\"\nurl = \"https://ntfy.sh\"\n\
                    [[notify]]\nname = \"b\"\nkind = \"ntfy\"\nurl = \"https://ntfy.sh/x\"\n\
                    topic = \"y\"\n";
        assert_eq!(
            problems(text),
            [
                "t.toml:4:7: key 'notify.url': a topic's URL ends in its topic \
                 (https://ntfy.sh/TOPIC)",
                "t.toml:8:7: key 'notify.url': give url, or server and topic, not both",
            ]
        );
    }

    #[test]
    fn a_password_without_a_username_is_refused() {
        let text = "[[notify]]\nname = \"m\"\nkind = \"email\"\nsmtp_host = \"h\"\n\
                    from = \"a@b.c\"\nto = \"d@e.f\"\npassword_file = \"/run/pw\"\n";
        assert_eq!(
            problems(text),
            ["t.toml:7:17: key 'notify.password_file': a password needs a username"]
        );
    }

    #[test]
    fn a_name_used_twice_is_refused() {
        let text = "[[notify]]\nname = \"a\"\nkind = \"command\"\ncommand = \"true\"\n\
                    [[notify]]\nname = \"a\"\nkind = \"command\"\ncommand = \"true\"\n";
        assert_eq!(
            problems(text),
            ["t.toml:6:8: key 'notify.name': notifier 'a' is defined twice"]
        );
    }
}
