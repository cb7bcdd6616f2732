//! The error taxonomy: what went wrong, in the few kinds a caller acts on.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::headers::{parse_rate_limit, parse_retry_after};

/// Longest server-provided message kept in an error: enough for "Must have
/// admin rights to Repository.", short enough not to carry a whole HTML page.
const MAX_MESSAGE_CHARS: usize = 300;

/// Why a call to a remote API failed.
///
/// A few kinds, mapped from HTTP status and transport errors, because a
/// connector reacts to kinds (retry, report a bad token, report a missing
/// permission) and not to status codes. Only [`HttpError::RateLimited`] and
/// [`HttpError::Transient`] are retried ([`HttpError::is_retryable`]).
///
/// Every variant carries the request URL *without* query string or user
/// info (see [`redact_url`]); none carries a header value.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The API refused the request because of a rate limit (429, a GitHub
    /// 403 with rate-limit signals), or our own budget gate would have had to
    /// wait longer than the configured maximum.
    #[error("{url}: rate limited{}{}", fmt_status(*status), fmt_wait(*retry_after))]
    RateLimited {
        /// Request URL without query string.
        url: String,
        /// HTTP status, when a response was received.
        status: Option<u16>,
        /// How long the server (or its headers) asked us to wait.
        retry_after: Option<Duration>,
    },
    /// A failure that may go away by itself: 5xx, 408, timeouts, connection
    /// errors.
    #[error("{url}: transient failure{}: {message}", fmt_status(*status))]
    Transient {
        /// Request URL without query string.
        url: String,
        /// HTTP status, or `None` for a transport error (timeout, connect).
        status: Option<u16>,
        /// `Retry-After` sent with a 503, if any.
        retry_after: Option<Duration>,
        /// What happened.
        message: String,
    },
    /// 401: the credential is missing, wrong, expired or revoked.
    #[error("{url}: authentication failed (HTTP 401): {message}")]
    Auth {
        /// Request URL without query string.
        url: String,
        /// The server's message, if it sent one.
        message: String,
    },
    /// 403 that is not a rate limit: the credential lacks a permission.
    #[error("{url}: permission denied (HTTP 403): {message}")]
    Permission {
        /// Request URL without query string.
        url: String,
        /// The server's message, if it sent one.
        message: String,
    },
    /// 404 (GitHub also answers 404 for private resources it hides).
    #[error("{url}: not found (HTTP 404)")]
    NotFound {
        /// Request URL without query string.
        url: String,
    },
    /// The body was not the JSON we expect; `path` names where, e.g.
    /// `data[3].id`, so a fixture or an API change can be found quickly.
    #[error("{url}: malformed response body at `{path}`: {message}")]
    Decode {
        /// Request URL without query string.
        url: String,
        /// JSON path of the offending value (`.` for the document itself).
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// Any other unexpected status (400, 409, 422, a redirect not followed…).
    #[error("{url}: unexpected HTTP {status}: {message}")]
    Other {
        /// Request URL without query string.
        url: String,
        /// HTTP status.
        status: u16,
        /// The server's message, if it sent one.
        message: String,
    },
    /// Paging was stopped to avoid an endless or unsafe loop: a repeated
    /// cursor or link, too many pages, or a next link to another origin.
    #[error("{url}: pagination stopped: {message}")]
    Pagination {
        /// URL of the listing, without query string.
        url: String,
        /// Why paging stopped.
        message: String,
    },
    /// The request could not be built (bad URL, unserializable body).
    #[error("{url}: invalid request: {message}")]
    Invalid {
        /// The URL as far as it could be shown, without query string.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The client options are invalid (zero rate, bad header name or value,
    /// bad base URL). Header values are never included.
    #[error("invalid HTTP client configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
}

fn fmt_status(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

fn fmt_wait(wait: Option<Duration>) -> String {
    wait.map(|w| format!("; retry after {} ms", w.as_millis())).unwrap_or_default()
}

impl HttpError {
    /// Whether retrying the same request later may succeed: only rate limits
    /// and transient failures. Retrying a 401 or a decode error just burns the
    /// API budget.
    pub fn is_retryable(&self) -> bool {
        matches!(self, HttpError::RateLimited { .. } | HttpError::Transient { .. })
    }

    /// A short stable name of the kind, for log fields and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            HttpError::RateLimited { .. } => "rate_limited",
            HttpError::Transient { .. } => "transient",
            HttpError::Auth { .. } => "auth",
            HttpError::Permission { .. } => "permission",
            HttpError::NotFound { .. } => "not_found",
            HttpError::Decode { .. } => "decode",
            HttpError::Other { .. } => "other",
            HttpError::Pagination { .. } => "pagination",
            HttpError::Invalid { .. } => "invalid",
            HttpError::Config { .. } => "config",
        }
    }

    /// The request URL (without query string), when the error has one.
    pub fn url(&self) -> Option<&str> {
        match self {
            HttpError::RateLimited { url, .. }
            | HttpError::Transient { url, .. }
            | HttpError::Auth { url, .. }
            | HttpError::Permission { url, .. }
            | HttpError::NotFound { url }
            | HttpError::Decode { url, .. }
            | HttpError::Other { url, .. }
            | HttpError::Pagination { url, .. }
            | HttpError::Invalid { url, .. } => Some(url),
            HttpError::Config { .. } => None,
        }
    }

    /// The HTTP status of the failed response, if one was received.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::RateLimited { status, .. } | HttpError::Transient { status, .. } => *status,
            HttpError::Auth { .. } => Some(401),
            HttpError::Permission { .. } => Some(403),
            HttpError::NotFound { .. } => Some(404),
            HttpError::Other { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// How long the server asked us to wait before retrying, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpError::RateLimited { retry_after, .. } | HttpError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Replaces any occurrence of our own credentials in server-provided
    /// text: some APIs echo the key they rejected.
    pub(crate) fn scrub(mut self, secrets: &[String]) -> Self {
        let text = match &mut self {
            HttpError::Transient { message, .. }
            | HttpError::Auth { message, .. }
            | HttpError::Permission { message, .. }
            | HttpError::Decode { message, .. }
            | HttpError::Other { message, .. } => message,
            _ => return self,
        };
        for secret in secrets {
            if text.contains(secret.as_str()) {
                *text = text.replace(secret.as_str(), "[redacted]");
            }
        }
        self
    }
}

/// Shows a URL as `scheme://host[:port]/path`: query strings may carry
/// tokens or personal data (`?email=…`) and user info carries passwords, so
/// neither ever reaches an error or a log line.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        // `bob:pw@host` parses as scheme `bob`: only trust URLs with a host.
        Ok(url) if url.host_str().is_some() => {
            let host = url.host_str().unwrap_or("");
            match url.port() {
                Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
                None => format!("{}://{host}{}", url.scheme(), url.path()),
            }
        }
        _ => {
            // Not a URL (a relative path or garbage): cut query and fragment,
            // and anything up to an `@` that could be user info.
            let cut = raw.find(['?', '#']).unwrap_or(raw.len());
            let shown = &raw[..cut];
            match shown.rfind('@') {
                Some(at) => format!("…{}", &shown[at + 1..]),
                None => shown.to_string(),
            }
        }
    }
}

/// [`redact_url`], or only `scheme://host[:port]` when the path is secret
/// (webhook URLs).
pub(crate) fn show_url(raw: &str, hide_path: bool) -> String {
    if !hide_path {
        return redact_url(raw);
    }
    match url::Url::parse(raw) {
        Ok(url) if url.host_str().is_some() => {
            let host = url.host_str().unwrap_or("");
            match url.port() {
                Some(port) => format!("{}://{host}:{port}/…", url.scheme()),
                None => format!("{}://{host}/…", url.scheme()),
            }
        }
        _ => "…".to_string(),
    }
}

/// Maps a failed transport call (no usable response) to the taxonomy.
pub(crate) fn from_reqwest(err: reqwest::Error, url: &str) -> HttpError {
    let transient = err.is_timeout() || err.is_connect() || err.is_request() || err.is_body();
    let builder = err.is_builder();
    let message = error_chain(&err.without_url());
    if builder {
        HttpError::Invalid { url: url.to_string(), message }
    } else if transient {
        HttpError::Transient { url: url.to_string(), status: None, retry_after: None, message }
    } else {
        HttpError::Other { url: url.to_string(), status: 0, message }
    }
}

/// `reqwest`'s own message is terse ("error sending request"); the cause
/// ("operation timed out", "connection refused") is in the source chain.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// Maps a non-success response to the taxonomy.
///
/// 403 is ambiguous on GitHub: it is a rate limit when the response carries
/// `Retry-After`, `x-ratelimit-remaining: 0`, or a message saying so;
/// otherwise a missing permission.
pub(crate) fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], url: &str, now: SystemTime) -> HttpError {
    let url = url.to_string();
    let server_message = error_message(body);
    let message =
        server_message.clone().unwrap_or_else(|| status.canonical_reason().unwrap_or("no message").to_string());
    let retry_after = parse_retry_after(headers, now);
    let exhausted = parse_rate_limit(headers, now).filter(|info| info.remaining == 0);
    // Wait for `Retry-After` first, then the announced reset of an exhausted
    // budget (GitHub's documented order for secondary limits).
    let rate_limit_wait = retry_after.or(exhausted.and_then(|info| info.reset_after));
    match status.as_u16() {
        401 => HttpError::Auth { url, message },
        403 => {
            let says_rate_limit =
                server_message.as_deref().is_some_and(|m| m.to_ascii_lowercase().contains("rate limit"));
            if retry_after.is_some() || exhausted.is_some() {
                HttpError::RateLimited { url, status: Some(403), retry_after: rate_limit_wait }
            } else if says_rate_limit {
                // GitHub's advice for a secondary limit without headers: wait
                // at least a minute.
                HttpError::RateLimited { url, status: Some(403), retry_after: Some(Duration::from_secs(60)) }
            } else {
                HttpError::Permission { url, message }
            }
        }
        404 => HttpError::NotFound { url },
        429 => HttpError::RateLimited { url, status: Some(429), retry_after: rate_limit_wait },
        408 | 500..=599 => HttpError::Transient { url, status: Some(status.as_u16()), retry_after, message },
        304 => HttpError::Other {
            url,
            status: 304,
            message: "not modified, but the request was not conditional".to_string(),
        },
        300..=399 => HttpError::Other {
            url,
            status: status.as_u16(),
            message: "redirect not followed (another origin, or too many hops)".to_string(),
        },
        other => HttpError::Other { url, status: other, message },
    }
}

/// Pulls the human message out of the error bodies our APIs send: GitHub
/// `message`, OpenAI/Anthropic `error.message`, SCIM `detail`, Jira
/// `errorMessages[0]`. Non-JSON bodies (gateway HTML) give `None`.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = value
        .get("message")
        .and_then(|m| m.as_str())
        .or_else(|| value.pointer("/error/message").and_then(|m| m.as_str()))
        .or_else(|| value.get("error").and_then(|m| m.as_str()))
        .or_else(|| value.get("detail").and_then(|m| m.as_str()))
        .or_else(|| value.pointer("/errorMessages/0").and_then(|m| m.as_str()))?;
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(truncate(text, MAX_MESSAGE_CHARS))
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
