//! `kind = "email"` (SMTP through lettre: STARTTLS required by default, implicit TLS, or plain
//! for a local relay) and `kind = "sendmail"` (the local sendmail binary). The subject is the
//! notice's one line, the body its per-host summary.

use std::time::Duration;

use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::message::Notice;
use super::secret::{self, SecretError};
use crate::config::{SecretSource, SmtpTls};

/// Why an email was not handed over.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("building the message: {0}")]
    Build(String),
    #[error("the SMTP password")]
    Password(#[source] SecretError),
    #[error("SMTP to {server}: {why}")]
    Smtp { server: String, why: String },
    #[error("sendmail '{command}': {why}")]
    Sendmail { command: String, why: String },
    #[error("SMTP: no answer within {}s", .0.as_secs_f32())]
    Timeout(Duration),
}

/// What an SMTP delivery needs from the config.
pub(crate) struct Smtp<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) tls: SmtpTls,
    pub(crate) username: Option<&'a str>,
    pub(crate) password: Option<&'a SecretSource>,
}

/// The message: from, to, the summary as subject, the text as a plain body.
pub(crate) fn message(notice: &Notice, from: &str, to: &[String]) -> Result<Message, EmailError> {
    let mailbox = |text: &str| {
        text.parse::<Mailbox>()
            .map_err(|e| EmailError::Build(format!("'{text}': {e}")))
    };
    let mut builder = Message::builder()
        .from(mailbox(from)?)
        .subject(notice.summary.clone())
        .header(ContentType::TEXT_PLAIN);
    for address in to {
        builder = builder.to(mailbox(address)?);
    }
    let body = if notice.hosts.is_empty() {
        format!("{}\n", notice.summary)
    } else {
        format!("{}\n\n{}\n", notice.summary, notice.host_lines())
    };
    builder
        .body(body)
        .map_err(|e| EmailError::Build(e.to_string()))
}

/// Sends over SMTP, the whole conversation bounded by `timeout`.
pub(crate) async fn send_smtp(
    smtp: &Smtp<'_>,
    message: Message,
    timeout: Duration,
) -> Result<(), EmailError> {
    let server = format!("{}:{}", smtp.host, smtp.port);
    let fail = |why: String| EmailError::Smtp {
        server: server.clone(),
        why,
    };
    let params = || TlsParameters::new(smtp.host.to_string()).map_err(|e| fail(e.to_string()));
    let tls = match smtp.tls {
        SmtpTls::StartTls => Tls::Required(params()?),
        SmtpTls::Opportunistic => Tls::Opportunistic(params()?),
        SmtpTls::Implicit => Tls::Wrapper(params()?),
        SmtpTls::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host)
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (smtp.username, smtp.password) {
        let password = secret::read(password).map_err(EmailError::Password)?;
        builder = builder.credentials(Credentials::new(
            user.to_string(),
            password.expose().to_string(),
        ));
    }
    let transport = builder.build();
    match tokio::time::timeout(timeout, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(fail(crate::errors::chain(&err))),
        Err(_) => Err(EmailError::Timeout(timeout)),
    }
}

/// Hands the message to the local sendmail as `sendmail -i -f FROM -- TO…` (what lettre's
/// transport runs), started like every other child so it inherits no secret.
pub(crate) async fn send_sendmail(
    sendmail: &std::path::Path,
    message: Message,
    from: &str,
    to: &[String],
    timeout: Duration,
    hide: &[String],
) -> Result<(), EmailError> {
    let bare = |text: &str| {
        text.parse::<Mailbox>()
            .map(|m| m.email.to_string())
            .map_err(|e| EmailError::Build(format!("'{text}': {e}")))
    };
    let mut args = vec![
        "-i".to_string(),
        "-f".to_string(),
        bare(from)?,
        "--".to_string(),
    ];
    for address in to {
        args.push(bare(address)?);
    }
    let label = sendmail.display().to_string();
    super::command::run(super::command::Child {
        label: &label,
        program: sendmail.as_os_str(),
        args,
        env: Vec::new(),
        stdin: message.formatted(),
        timeout,
        hide,
    })
    .await
    .map_err(|err| EmailError::Sendmail {
        command: label.clone(),
        why: crate::errors::chain(&err),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NoticeKind;
    use crate::notify::message::NoticeHost;

    #[test]
    fn the_subject_is_the_summary_and_the_body_the_hosts() {
        let notice = Notice::new(
            NoticeKind::WaveHalted,
            "wave 2 halted: 1 failed".into(),
            vec![NoticeHost::new("db1", "failed", Some("boom"))],
        );
        let message =
            message(&notice, "tendhost@example.com", &["ops@example.com".into()]).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(
            text.contains("Subject: wave 2 halted: 1 failed\r\n"),
            "{text}"
        );
        assert!(text.contains("To: ops@example.com\r\n"), "{text}");
        assert!(text.contains("db1: failed: boom"), "{text}");
    }

    #[tokio::test]
    async fn sendmail_gets_the_envelope_as_arguments_and_the_message_on_stdin() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let sendmail = dir.path().join("sendmail");
        std::fs::write(
            &sendmail,
            format!(
                "#!/bin/sh\necho \"$*|${{HOME:-hidden}}\" > {0}\ncat >> {0}\n",
                crate::remote::quote(&out.display().to_string())
            ),
        )
        .unwrap();
        std::fs::set_permissions(&sendmail, std::fs::Permissions::from_mode(0o700)).unwrap();
        let notice = Notice::new(NoticeKind::WaveFinished, "wave 1 finished".into(), vec![]);
        let from = "Tendhost <tendhost@example.com>";
        let to = ["ops@example.com".to_string()];
        let mail = message(&notice, from, &to).unwrap();
        let hide = ["HOME".to_string()];
        send_sendmail(&sendmail, mail, from, &to, Duration::from_secs(10), &hide)
            .await
            .unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.starts_with("-i -f tendhost@example.com -- ops@example.com|hidden\n"),
            "{text}"
        );
        assert!(text.contains("Subject: wave 1 finished\r\n"), "{text}");
    }
}
