//! The shared HTTP layer every live connector and sink talks through.
//!
//! Connectors fetch and map; this module owns everything about *how* a remote
//! API is called, so that each connector stays a list of endpoints:
//!
//! - a client-side limiter (governor) plus the API's own rate-limit headers
//!   (GitHub, IETF draft, OpenAI and Anthropic dialects, parsed in one place:
//!   [`parse_rate_limit`]);
//! - retries with full jitter for transient errors only, honouring
//!   `Retry-After` ([`HttpClient`], [`full_jitter`]);
//! - a small error taxonomy mapped from HTTP status ([`HttpError`]);
//! - per-request timeouts, conditional GETs and the three pagination styles
//!   our sources use (RFC 8288 `Link`, `has_more` cursors, SCIM indexes).
//!
//! Secrets never leave the process through this layer: default headers are
//! redacted in `Debug`, errors and logs carry URLs without their query string,
//! and no header value is ever logged.

mod client;
mod error;
mod headers;
mod paging;
mod retry;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use client::decode_json;
pub use client::{ClientOptions, HttpClient, SensitiveHeaders};
pub(crate) use error::error_message;
pub use error::{HttpError, redact_url};
pub use headers::{RateLimitInfo, parse_go_duration, parse_link_next, parse_rate_limit, parse_retry_after};
pub(crate) use paging::LinkPager;
pub use paging::{CursorPage, ScimListResponse};
pub use reqwest::Method;
pub use retry::full_jitter;

/// Percent-encodes one path segment (an object id from an API response put
/// back into a URL path): everything but RFC 3986 unreserved characters, so
/// an id holding `/`, `?` or `#` cannot change which endpoint is called.
pub fn path_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A decoded response plus the few headers callers act on.
///
/// Only pagination and caching headers are kept: keeping the whole header map
/// would make it easy to log something a server echoes back.
#[derive(Debug, Clone)]
pub struct Response<T> {
    /// HTTP status code (2xx or 304; other statuses become [`HttpError`]s).
    pub status: u16,
    /// The request URL without query string, for messages.
    pub url: String,
    /// Raw `Link` header, if any (see [`parse_link_next`]).
    pub link: Option<String>,
    /// `ETag` header, if any, to send back as `If-None-Match` next time.
    pub etag: Option<String>,
    /// `Location` header, if any (e.g. the URL of a created ticket).
    pub location: Option<String>,
    /// The decoded body.
    pub body: T,
}

impl<T> Response<T> {
    /// The `rel="next"` target of the `Link` header, so that a connector can
    /// page by hand when the helpers do not fit.
    pub fn next_link(&self) -> Option<String> {
        self.link.as_deref().and_then(parse_link_next)
    }
}

/// Outcome of a conditional GET: polling an unchanged resource costs nothing
/// to decode (and, on GitHub, nothing from the primary rate limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conditional<T> {
    /// The server answered `304 Not Modified`: the caller's copy is current.
    NotModified,
    /// The resource changed (or no ETag was sent).
    Modified {
        /// The new `ETag`, to send next time.
        etag: Option<String>,
        /// The decoded body.
        body: T,
    },
}

/// Counters a connector reports after a sync, so an operator can see that a
/// source is slow because of rate limits rather than because it is broken.
///
/// Atomics so the counters can be shared by clones of one [`HttpClient`].
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Requests actually sent (each retry counts again).
    pub requests: AtomicU64,
    /// Retries after a rate-limited or transient failure.
    pub retries: AtomicU64,
    /// Waits caused by rate limits: `Retry-After`, or an exhausted budget
    /// announced by rate-limit headers.
    pub rate_limit_waits: AtomicU64,
    /// Conditional GETs answered `304 Not Modified`.
    pub not_modified: AtomicU64,
}

/// A plain copy of [`HttpStats`] at one instant, for reports and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStatsSnapshot {
    /// See [`HttpStats::requests`].
    pub requests: u64,
    /// See [`HttpStats::retries`].
    pub retries: u64,
    /// See [`HttpStats::rate_limit_waits`].
    pub rate_limit_waits: u64,
    /// See [`HttpStats::not_modified`].
    pub not_modified: u64,
}

impl HttpStats {
    /// Reads all counters (each individually; they are only statistics).
    pub fn snapshot(&self) -> HttpStatsSnapshot {
        HttpStatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            rate_limit_waits: self.rate_limit_waits.load(Ordering::Relaxed),
            not_modified: self.not_modified.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
