//! The one way tendhost POSTs anything (notifiers and the `[audit] webhook`): a blocking ureq
//! call run off the async tasks, bounded in time, retried with backoff by [`retry`].
//!
//! Errors name the server only (`https://hooks.slack.com`): a webhook URL's path often is its
//! token, so it never reaches a message.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::secret::Secret;

/// Attempts per delivery: the first and three retries.
pub(crate) const ATTEMPTS: u32 = 4;
/// The pause before the first retry; each later one doubles it (0.5 s, 1 s, 2 s).
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// One POST.
#[derive(Debug, Clone)]
pub(crate) struct Post {
    pub(crate) url: Secret,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    /// Sent as `Authorization: Bearer …`.
    pub(crate) bearer: Option<Secret>,
    pub(crate) body: Vec<u8>,
    pub(crate) timeout: Duration,
}

/// Why a POST did not get a 2xx answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("POST to {to}: the server answered {status}")]
    Status { to: String, status: u16 },
    #[error("POST to {to}: {why}")]
    Transport { to: String, why: String },
    #[error("POST to {to}: no answer within {}s", .timeout.as_secs_f32())]
    Timeout { to: String, timeout: Duration },
    #[error("the POST was cut short: tendhost is stopping")]
    Stopped,
}

/// Whether another attempt may go better: a refusal that will not change (a 4xx other than
/// 408 and 429, a missing secret, a bad address) is not retried.
pub(crate) trait Transient {
    fn worth_retrying(&self) -> bool;
}

impl Transient for HttpError {
    fn worth_retrying(&self) -> bool {
        match self {
            HttpError::Status { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            HttpError::Transport { .. } | HttpError::Timeout { .. } => true,
            HttpError::Stopped => false,
        }
    }
}

/// Sends `post` once, blocking the calling thread for at most its timeout.
pub(crate) fn post_blocking(post: &Post) -> Result<(), HttpError> {
    let to = server_of(post.url.expose());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(post.timeout))
        .http_status_as_error(false)
        .user_agent(concat!("tendhost/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut request = agent
        .post(post.url.expose())
        .content_type(post.content_type);
    for (name, value) in &post.headers {
        request = request.header(*name, value);
    }
    if let Some(token) = &post.bearer {
        request = request.header("Authorization", format!("Bearer {}", token.expose()));
    }
    match request.send(&post.body[..]) {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(HttpError::Status {
            to,
            status: response.status().as_u16(),
        }),
        Err(ureq::Error::Timeout(_)) => Err(HttpError::Timeout {
            to,
            timeout: post.timeout,
        }),
        Err(err) => Err(HttpError::Transport {
            to,
            why: describe(&err),
        }),
    }
}

/// A URL from the config as a [`Post`]'s target.
pub(crate) fn public_url(url: &str) -> Secret {
    Secret::public(url.to_string())
}

/// Sends `post` on a blocking thread.
pub(crate) async fn post(post: Post) -> Result<(), HttpError> {
    let to = server_of(post.url.expose());
    match tokio::task::spawn_blocking(move || post_blocking(&post)).await {
        Ok(result) => result,
        Err(err) => Err(HttpError::Transport {
            to,
            why: format!("the sending thread failed: {err}"),
        }),
    }
}

/// Runs `attempt` up to [`ATTEMPTS`] times with doubling pauses, giving up early at `deadline`
/// (shutdown's grace period) or at an error not [worth retrying](Transient). Returns the last
/// error and how many attempts were made.
pub(crate) async fn retry<E: Transient, F, Fut>(
    deadline: impl Fn() -> Option<Instant>,
    stopped: E,
    mut attempt: F,
) -> Result<u32, (E, u32)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut pause = FIRST_BACKOFF;
    let mut tries = 0;
    let mut last = stopped;
    while tries < ATTEMPTS {
        tries += 1;
        let outcome = match deadline() {
            Some(at) => match tokio::time::timeout_at(at, attempt()).await {
                Ok(outcome) => outcome,
                Err(_) => return Err((last, tries)),
            },
            None => attempt().await,
        };
        match outcome {
            Ok(()) => return Ok(tries),
            Err(err) if !err.worth_retrying() => return Err((err, tries)),
            Err(err) => last = err,
        }
        if tries == ATTEMPTS {
            break;
        }
        let wake = Instant::now() + pause;
        if deadline().is_some_and(|at| at <= wake) {
            break;
        }
        tokio::time::sleep_until(wake).await;
        pause *= 2;
    }
    Err((last, tries))
}

/// `scheme://host[:port]` of a URL: all an error shows of it.
pub(crate) fn server_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Credentials in the authority (`user:pass@host`) are a secret too.
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{scheme}://{host}")
}

/// ureq's words, minus those that would echo the URL back.
fn describe(err: &ureq::Error) -> String {
    match err {
        ureq::Error::BadUri(_) => "not a valid URL".to_string(),
        ureq::Error::Http(_) => "the request could not be built (a bad URL or header)".to_string(),
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    impl Transient for &str {
        fn worth_retrying(&self) -> bool {
            *self != "404"
        }
    }

    #[test]
    fn errors_show_the_server_only() {
        assert_eq!(
            server_of("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            server_of("http://u:p@127.0.0.1:8080/x?t=1"),
            "http://127.0.0.1:8080"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_and_stop_at_the_deadline() {
        let calls = AtomicU32::new(0);
        let result = retry(
            || None,
            "stopped",
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 2 { Err("500") } else { Ok(()) }
            },
        )
        .await;
        assert_eq!(result, Ok(3));
        let began = Instant::now();
        let result: Result<u32, (&str, u32)> =
            retry(|| None, "stopped", || async { Err("500") }).await;
        assert_eq!(result, Err(("500", ATTEMPTS)));
        assert_eq!(began.elapsed(), Duration::from_millis(3500));
        let deadline = Instant::now() + Duration::from_millis(700);
        let result: Result<u32, (&str, u32)> =
            retry(|| Some(deadline), "stopped", || async { Err("500") }).await;
        assert_eq!(result, Err(("500", 2)));
        let result: Result<u32, (&str, u32)> =
            retry(|| None, "stopped", || async { Err("404") }).await;
        assert_eq!(
            result,
            Err(("404", 1)),
            "a refusal that will not change is not retried"
        );
        let status = |status| HttpError::Status {
            to: String::new(),
            status,
        };
        assert!(status(503).worth_retrying() && status(429).worth_retrying());
        assert!(!status(404).worth_retrying() && !status(401).worth_retrying());
    }
}
