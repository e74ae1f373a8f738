//! What every remote CA backend (CFSSL, Vault/OpenBao) shares: one reqwest client per CA
//! (rustls on aws-lc-rs, no redirects, bounded answers), messages that never carry a raw
//! response body, the operator's URL allowlist and the limits on timeouts and intervals.

pub mod allow;
pub mod tls;

use std::time::{Duration, Instant};

use super::SignerError;

pub use allow::AllowedUrls;

/// The longest per-request timeout an issuer may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// The shortest health-check interval an issuer may set.
pub const MIN_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// Longest CA message (in characters) copied into a status, Event or log.
pub const MAX_MESSAGE_CHARS: usize = 200;
/// How many of the CA's error messages are quoted.
pub const MAX_MESSAGES: usize = 3;
/// Largest answer read from a remote CA; anything longer is refused unread.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// `Ok` when `url` (the spec field `field`) is an `http`/`https` URL without user information.
/// A user name or password in a URL would be repeated in every status, Event and log line
/// that names the CA (and, for a cluster issuer, in tenants' requests); credentials belong in
/// the backend's auth fields. The message never repeats the credentials.
pub fn check_url(field: &str, url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
    let Some(mut parsed) = parsed else {
        return Err(format!(
            "{field} is not an http:// or https:// URL with a host"
        ));
    };
    if parsed.username().is_empty() && parsed.password().is_none() {
        return Ok(());
    }
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    Err(format!(
        "{field} carries user information (a user name or password) before the host {:?}: \
         refused, because the URL is shown in statuses, Events and logs; put credentials in the \
         backend's auth settings (cfssl.authKey, vault.auth) and remove them from the URL",
        parsed.as_str()
    ))
}

/// Receives the duration of each remote CA round trip.
pub type Observer = std::sync::Arc<dyn Fn(Duration) + Send + Sync>;

/// A CA's own error message made safe for a status, Event or log: control characters
/// dropped, whitespace collapsed, at most [`MAX_MESSAGE_CHARS`] characters.
pub fn clean_message(s: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    let mut space = false;
    for c in s.chars() {
        let c = if c.is_whitespace() { ' ' } else { c };
        if c.is_control() || is_format_char(c) {
            continue;
        }
        if c == ' ' {
            if space || out.is_empty() {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if chars == MAX_MESSAGE_CHARS {
            out.truncate(out.trim_end().len());
            out.push('…');
            return out;
        }
        out.push(c);
        chars += 1;
    }
    out.trim_end().to_string()
}

/// Bidirectional overrides and zero-width characters that could disguise a message.
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Join up to [`MAX_MESSAGES`] cleaned messages with `; ` (empty ones dropped).
pub fn join_messages<'a>(messages: impl IntoIterator<Item = &'a str>) -> String {
    let all: Vec<String> = messages
        .into_iter()
        .map(clean_message)
        .filter(|m| !m.is_empty())
        .collect();
    let mut out = all
        .iter()
        .take(MAX_MESSAGES)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if all.len() > MAX_MESSAGES {
        out.push_str(&format!(" (and {} more)", all.len() - MAX_MESSAGES));
    }
    out
}

/// `HTTP 404 Not Found` for a status code.
pub fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("HTTP {status} {reason}"),
        None => format!("HTTP {status}"),
    }
}

/// Whether an HTTP status means "try again later" (5xx, 429).
pub fn is_retryable_status(status: u16) -> bool {
    status >= 500 || status == 429
}

/// A raw answer: status and (bounded) body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The body, at most [`MAX_BODY_BYTES`].
    pub body: Vec<u8>,
}

/// The one HTTP client of a remote CA: `tls` (trust and optional client certificate) for
/// `https://` URLs, no redirects, `timeout` per request.
pub fn client(
    tls: Option<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    let tls = tls.unwrap_or_else(|| {
        rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    });
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("building the HTTP client: {}", describe(&e)))
}

/// Send `req` and read the answer (bounded by [`MAX_BODY_BYTES`]); `what` names the call in
/// errors. Transport failures and timeouts are [`SignerError::Unavailable`].
pub async fn send(
    req: reqwest::RequestBuilder,
    what: &str,
    timeout: Duration,
    observe: Option<&Observer>,
) -> Result<Answer, SignerError> {
    let started = Instant::now();
    let call = async {
        let mut resp = req.send().await.map_err(|e| {
            SignerError::Unavailable(format!("{what}: {}", describe_timeout(&e, timeout)))
        })?;
        let status = resp.status().as_u16();
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(too_long(what, status));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            SignerError::Unavailable(format!(
                "{what}: reading the answer: {}",
                describe_timeout(&e, timeout)
            ))
        })? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_long(what, status));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, body })
    };
    // reqwest's own timeout covers the whole exchange; this one is a backstop.
    let result = tokio::time::timeout(timeout + Duration::from_secs(1), call).await;
    if let Some(observe) = observe {
        observe(started.elapsed());
    }
    result.unwrap_or_else(|_| {
        Err(SignerError::Unavailable(format!(
            "{what}: no answer within {timeout:?}"
        )))
    })
}

fn too_long(what: &str, status: u16) -> SignerError {
    SignerError::Refused(format!(
        "{what}: {} with an answer longer than {MAX_BODY_BYTES} bytes (not read)",
        status_text(status)
    ))
}

fn describe_timeout(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("no answer within {timeout:?}")
    } else {
        describe(e)
    }
}

/// A transport error and its causes, without the URL reqwest repeats (the caller names it).
pub fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut parts = Vec::new();
    if e.is_connect() {
        parts.push("cannot connect".to_string());
    } else if e.is_timeout() {
        parts.push("timed out".to_string());
    } else if e.is_redirect() {
        parts.push("redirects are not followed".to_string());
    } else {
        parts.push("request failed".to_string());
    }
    let mut source = e.source();
    while let Some(s) = source {
        let text = clean_message(&s.to_string());
        if !text.is_empty() && !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_message_strips_controls_and_truncates() {
        assert_eq!(
            clean_message("  bad\r\n\tthing\u{1b}[31m  "),
            "bad thing[31m"
        );
        assert_eq!(clean_message("a\u{202e}b\u{200b}c"), "abc");
        let long = "x".repeat(500);
        let m = clean_message(&long);
        assert_eq!(m.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(m.ends_with('…'));
        let multibyte = "é".repeat(300);
        assert!(clean_message(&multibyte).starts_with("éé"));
    }

    #[test]
    fn join_messages_bounds_the_count() {
        assert_eq!(join_messages(["a", "", "b"]), "a; b");
        assert_eq!(
            join_messages(["1", "2", "3", "4", "5"]),
            "1; 2; 3 (and 2 more)"
        );
    }

    #[test]
    fn urls_with_user_information_are_refused_without_repeating_it() {
        assert!(check_url("cfssl.url", "https://cfssl.pki.svc:8888/x").is_ok());
        for bad in [
            "https://admin:hunter2@cfssl.pki.svc:8888",
            "http://hunter2@10.0.0.5/",
            "https://:hunter2@vault.example.com",
            "https://admin%3Ahunter2@vault.example.com",
            "http://hunter2 x@10.0.0.5/",
        ] {
            let e = check_url("cfssl.url", bad).unwrap_err();
            assert!(
                e.contains("user information") && !e.contains("hunter2"),
                "{e}"
            );
        }
        for bad in [
            "ftp://hunter2",
            "http://[hunter2",
            "not a url hunter2",
            "unix:/run/hunter2",
        ] {
            let e = check_url("vault.server", bad).unwrap_err();
            assert!(!e.contains("hunter2") && e.contains("vault.server"), "{e}");
        }
    }

    #[test]
    fn status_text_and_retryable() {
        assert_eq!(status_text(404), "HTTP 404 Not Found");
        assert_eq!(status_text(599), "HTTP 599");
        assert!(is_retryable_status(503) && is_retryable_status(429));
        assert!(!is_retryable_status(400) && !is_retryable_status(403));
    }
}
