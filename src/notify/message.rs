//! What a notice says and how each kind of notifier wants it: one line saying what happened,
//! then one line per host (`host: outcome`), shaped into ntfy's, a generic webhook's, Slack's,
//! Discord's and an email's body.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::NoticeKind;

/// Discord refuses a message longer than this many characters.
pub(crate) const DISCORD_LIMIT: usize = 2000;
/// ntfy turns a body past 4096 bytes into an attachment; stay under it.
pub(crate) const NTFY_LIMIT: usize = 4000;

/// Something worth telling a person about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    /// The one line: "wave 3 finished: 12 updated, 1 failed, 2 skipped".
    pub summary: String,
    /// What happened to each host concerned, in the order it happened.
    pub hosts: Vec<NoticeHost>,
    pub at: DateTime<Utc>,
}

/// One host's part in a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeHost {
    pub host: String,
    /// One word: `updated`, `failed`, `skipped`, `refused`, `waiting_reboot`.
    pub outcome: String,
    /// The error or reason, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Notice {
    pub fn new(kind: NoticeKind, summary: String, hosts: Vec<NoticeHost>) -> Self {
        Notice {
            kind,
            summary,
            hosts,
            at: Utc::now(),
        }
    }

    /// What `tendhost notify test` sends.
    pub fn test(notifier: &str) -> Self {
        Notice::new(
            NoticeKind::Test,
            format!("tendhost test message for notifier '{notifier}'"),
            Vec::new(),
        )
    }

    /// The per-host lines: `web1: failed: dpkg returned an error code (1)`.
    pub fn host_lines(&self) -> String {
        let lines: Vec<String> = self.hosts.iter().map(NoticeHost::line).collect();
        lines.join("\n")
    }

    /// The summary line, then the per-host lines.
    pub fn text(&self) -> String {
        if self.hosts.is_empty() {
            self.summary.clone()
        } else {
            format!("{}\n{}", self.summary, self.host_lines())
        }
    }

    /// Whether this calls for attention rather than reporting (ntfy priority, email subject).
    pub(crate) fn urgent(&self) -> bool {
        matches!(self.kind, NoticeKind::WaveHalted | NoticeKind::HostFailed)
            || self.hosts.iter().any(|h| h.outcome == "failed")
    }
}

impl NoticeHost {
    pub fn new(host: &str, outcome: &str, detail: Option<&str>) -> Self {
        NoticeHost {
            host: host.to_string(),
            outcome: outcome.to_string(),
            detail: detail.map(first_line),
        }
    }

    fn line(&self) -> String {
        match &self.detail {
            Some(detail) => format!("{}: {}: {detail}", self.host, self.outcome),
            None => format!("{}: {}", self.host, self.outcome),
        }
    }
}

/// A host's error can run over lines (a command's stderr): a notice keeps the first.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

/// ntfy's body: [`Notice::text`], cut to [`NTFY_LIMIT`] bytes (at a character's boundary).
pub(crate) fn ntfy_body(notice: &Notice) -> Vec<u8> {
    let text = notice.text();
    if text.len() <= NTFY_LIMIT {
        return text.into_bytes();
    }
    let mut end = NTFY_LIMIT - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into_bytes()
}

/// ntfy's headers (`Title`, `Priority`, `Tags`); the body is [`ntfy_body`].
pub(crate) fn ntfy_headers(notice: &Notice) -> Vec<(&'static str, String)> {
    let priority = if notice.urgent() { "high" } else { "default" };
    let tags = match notice.kind {
        NoticeKind::WaveFinished if notice.urgent() => "warning",
        NoticeKind::WaveFinished => "white_check_mark",
        NoticeKind::WaveHalted | NoticeKind::HostFailed => "rotating_light",
        NoticeKind::RebootNeeded => "arrows_counterclockwise",
        NoticeKind::ScheduleSkipped => "calendar",
        NoticeKind::Test => "test_tube",
    };
    vec![
        ("Title", header_safe(&notice.summary)),
        ("Priority", priority.to_string()),
        ("Tags", format!("tendhost,{tags}")),
    ]
}

/// A header value holds visible ASCII and spaces only: the rest becomes `?` (ntfy shows the
/// body in full anyway).
fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The generic webhook's JSON object.
pub(crate) fn webhook_body(notice: &Notice) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        event: &'static str,
        summary: &'a str,
        hosts: &'a [NoticeHost],
        at: DateTime<Utc>,
        tendhost: &'static str,
    }
    let body = Body {
        event: notice.kind.as_str(),
        summary: &notice.summary,
        hosts: &notice.hosts,
        at: notice.at,
        tendhost: env!("CARGO_PKG_VERSION"),
    };
    json(&body)
}

pub(crate) fn slack_body(notice: &Notice) -> Vec<u8> {
    json(&serde_json::json!({ "text": notice.text() }))
}

/// Discord's `content`, cut to its 2000-character limit with an ellipsis saying so.
pub(crate) fn discord_body(notice: &Notice) -> Vec<u8> {
    json(&serde_json::json!({ "content": truncate(&notice.text(), DISCORD_LIMIT) }))
}

/// At most `limit` characters: a longer text keeps its start and ends in `…`.
pub(crate) fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut out: String = text.chars().take(limit.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings and a timestamp: serializing them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave() -> Notice {
        Notice::new(
            NoticeKind::WaveFinished,
            "wave 3 finished: 1 updated, 1 failed, 1 skipped".into(),
            vec![
                NoticeHost::new("web1", "updated", None),
                NoticeHost::new(
                    "db1",
                    "failed",
                    Some("dpkg returned an error code (1)\nmore"),
                ),
                NoticeHost::new("app", "skipped", Some("outside maintenance window")),
            ],
        )
    }

    #[test]
    fn the_text_is_the_summary_then_one_line_per_host() {
        assert_eq!(
            wave().text(),
            "wave 3 finished: 1 updated, 1 failed, 1 skipped\nweb1: updated\n\
             db1: failed: dpkg returned an error code (1)\napp: skipped: outside maintenance window"
        );
        assert_eq!(
            Notice::test("x").text(),
            "tendhost test message for notifier 'x'"
        );
    }

    #[test]
    fn bodies_have_each_services_shape() {
        let n = wave();
        let hook: serde_json::Value = serde_json::from_slice(&webhook_body(&n)).unwrap();
        assert_eq!(hook["event"], "wave_finished");
        assert_eq!(hook["summary"], n.summary);
        assert_eq!(hook["hosts"][1]["host"], "db1");
        assert_eq!(hook["hosts"][1]["outcome"], "failed");
        assert_eq!(
            hook["hosts"][1]["detail"],
            "dpkg returned an error code (1)"
        );
        assert!(hook["hosts"][0].get("detail").is_none());
        assert_eq!(hook["tendhost"], env!("CARGO_PKG_VERSION"));
        assert!(hook["at"].as_str().unwrap().ends_with('Z'));
        let slack: serde_json::Value = serde_json::from_slice(&slack_body(&n)).unwrap();
        assert_eq!(slack["text"], n.text());
        let discord: serde_json::Value = serde_json::from_slice(&discord_body(&n)).unwrap();
        assert_eq!(discord["content"], n.text());
        let headers = ntfy_headers(&n);
        assert_eq!(headers[0], ("Title", n.summary.clone()));
        assert_eq!(headers[1], ("Priority", "high".to_string()));
        assert_eq!(headers[2], ("Tags", "tendhost,warning".to_string()));
    }

    #[test]
    fn discord_content_stays_within_its_limit() {
        let hosts = (0..300)
            .map(|i| NoticeHost::new(&format!("host-é{i}"), "failed", Some("boom")))
            .collect();
        let n = Notice::new(NoticeKind::WaveHalted, "wave 1 halted".into(), hosts);
        assert!(n.text().chars().count() > DISCORD_LIMIT);
        let body: serde_json::Value = serde_json::from_slice(&discord_body(&n)).unwrap();
        let content = body["content"].as_str().unwrap();
        assert_eq!(content.chars().count(), DISCORD_LIMIT);
        assert!(content.ends_with('…') && content.starts_with("wave 1 halted\n"));
        let ntfy = String::from_utf8(ntfy_body(&n)).unwrap();
        assert!(
            ntfy.len() <= NTFY_LIMIT && ntfy.ends_with('…'),
            "{}",
            ntfy.len()
        );
        assert_eq!(
            ntfy_body(&Notice::test("x")),
            b"tendhost test message for notifier 'x'"
        );
    }

    #[test]
    fn ntfy_titles_are_header_safe() {
        let n = Notice::new(
            NoticeKind::HostFailed,
            "host é failed:\tx".into(),
            Vec::new(),
        );
        assert_eq!(ntfy_headers(&n)[0].1, "host ? failed:?x");
    }
}
