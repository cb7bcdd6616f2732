//! The client: options, limiter, budget gate, retry loop and JSON decoding.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue, IF_NONE_MATCH, LINK, LOCATION};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use super::error::{classify, from_reqwest, show_url};
use super::headers::parse_rate_limit;
use super::retry::full_jitter;
use super::{Conditional, HttpError, HttpStats, Response};

/// Upper bound of a remembered budget reset (one day).
const MAX_GATE: Duration = Duration::from_secs(86_400);

/// Default headers of a client — in practice its credentials.
///
/// A map whose `Debug` shows header *names* only, so that printing a config
/// or a client can never leak a token. Values are also marked sensitive for
/// the HTTP stack (HTTP/2 never indexes them).
#[derive(Clone, Default)]
pub struct SensitiveHeaders {
    map: HeaderMap,
}

impl SensitiveHeaders {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one header (replacing a previous value). The error names the
    /// header, never the value.
    pub fn insert(&mut self, name: &str, value: &str) -> Result<(), HttpError> {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpError::Config { message: format!("invalid header name `{}`", name.escape_debug()) })?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| HttpError::Config { message: format!("invalid value for header `{header}`") })?;
        value.set_sensitive(true);
        self.map.insert(header, value);
        Ok(())
    }

    /// Builder form of [`SensitiveHeaders::insert`].
    pub fn with(mut self, name: &str, value: &str) -> Result<Self, HttpError> {
        self.insert(name, value)?;
        Ok(self)
    }

    /// `Authorization: Bearer <token>` (GitHub, OpenAI, most SCIM servers).
    pub fn bearer(token: &str) -> Result<Self, HttpError> {
        Self::new().with("authorization", &format!("Bearer {token}"))
    }

    /// The header names, for diagnostics.
    pub fn names(&self) -> Vec<String> {
        self.map.keys().map(|k| k.as_str().to_string()).collect()
    }

    /// Whether no header is set.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Strings that must never appear in an error message: each value, and
    /// its last word (the token after `Bearer`/`Basic`). Short strings are
    /// skipped: replacing `v1` everywhere would mangle messages for nothing.
    fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for value in self.map.values() {
            let Ok(text) = value.to_str() else { continue };
            for candidate in [Some(text), text.split_ascii_whitespace().last()].into_iter().flatten() {
                if candidate.len() >= 8 && !out.iter().any(|s| s == candidate) {
                    out.push(candidate.to_string());
                }
            }
        }
        // Longest first, so a whole value is replaced before its last word.
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out
    }
}

impl fmt::Debug for SensitiveHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.map.keys().map(|k| (k.as_str(), "<redacted>"))).finish()
    }
}

/// How a [`HttpClient`] behaves. One per connector instance, built from the
/// connector's config; the defaults suit the public APIs we poll.
#[derive(Clone)]
pub struct ClientOptions {
    /// Prefix for relative paths (`https://api.github.com`,
    /// `https://api.openai.com/v1`). Absolute URLs are used as given.
    pub base_url: Option<String>,
    /// Client-side limit, so a burst of requests never trips the server's
    /// secondary limits in the first place. Must be at least 1.
    pub requests_per_second: u32,
    /// Requests that may go out at once before the rate applies (≥ 1).
    pub burst: u32,
    /// Timeout of one attempt, from sending to the last body byte. A
    /// timeout is a transient error and is retried.
    pub timeout: Duration,
    /// Retries after the first attempt, for retryable errors only.
    pub max_retries: u32,
    /// Base of the exponential backoff (first retry waits up to this).
    pub base_backoff: Duration,
    /// Cap of the exponential backoff.
    pub max_backoff: Duration,
    /// Longest wait the client accepts for a rate limit (`Retry-After` or an
    /// exhausted budget); beyond it the request fails with
    /// [`HttpError::RateLimited`] instead of stalling the sync for an hour.
    pub max_rate_limit_wait: Duration,
    /// Most pages a pagination helper fetches before failing: a guard
    /// against servers that page forever.
    pub max_pages: u32,
    /// `User-Agent` (GitHub rejects requests without one).
    pub user_agent: String,
    /// Headers sent with every request: credentials, API versions.
    pub headers: SensitiveHeaders,
    /// Show only `scheme://host[:port]` of URLs in errors, logs and `Debug`:
    /// for webhook URLs whose path is itself the secret.
    pub hide_url_path: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            base_url: None,
            requests_per_second: 10,
            burst: 10,
            timeout: Duration::from_secs(30),
            max_retries: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(300),
            max_pages: 10_000,
            user_agent: concat!("accessgraph/", env!("CARGO_PKG_VERSION")).to_string(),
            headers: SensitiveHeaders::default(),
            hide_url_path: false,
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base_url = self.base_url.as_deref().map(|raw| show_url(raw, self.hide_url_path));
        f.debug_struct("ClientOptions")
            .field("base_url", &base_url)
            .field("requests_per_second", &self.requests_per_second)
            .field("burst", &self.burst)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("base_backoff", &self.base_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("max_rate_limit_wait", &self.max_rate_limit_wait)
            .field("max_pages", &self.max_pages)
            .field("user_agent", &self.user_agent)
            .field("headers", &self.headers)
            .field("hide_url_path", &self.hide_url_path)
            .finish()
    }
}

/// The HTTP client every live connector and sink uses.
///
/// Wraps `reqwest::Client` with: a governor rate limiter, a gate that waits
/// for the reset when the API says the budget is exhausted, retries with
/// full jitter for rate limits and transient errors, `Retry-After`, JSON
/// decoding that names the failing JSON path, and counters ([`HttpStats`]).
/// Cheap to clone; clones share the limiter, the gate and the counters.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: Option<Url>,
    options: ClientOptions,
    limiter: DefaultDirectRateLimiter,
    /// When the API's own budget resets, if a response said it is exhausted.
    budget_reset: Mutex<Option<Instant>>,
    stats: HttpStats,
    /// Credential strings scrubbed from server messages.
    secrets: Vec<String>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("options", &self.inner.options)
            .field("stats", &self.inner.stats.snapshot())
            .finish_non_exhaustive()
    }
}

/// A response that passed the status check, before decoding.
struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl HttpClient {
    /// Builds a client; fails on invalid options (zero rate, bad base URL).
    pub fn new(options: ClientOptions) -> Result<Self, HttpError> {
        let rate = NonZeroU32::new(options.requests_per_second)
            .ok_or(HttpError::Config { message: "requests_per_second must be at least 1".to_string() })?;
        let burst = NonZeroU32::new(options.burst)
            .ok_or(HttpError::Config { message: "burst must be at least 1".to_string() })?;
        let base_url = options
            .base_url
            .as_deref()
            .map(|raw| {
                let url = Url::parse(raw).map_err(|e| HttpError::Config {
                    message: format!("base_url {}: {e}", show_url(raw, options.hide_url_path)),
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(HttpError::Config {
                        message: format!("base_url {} is not http(s)", show_url(raw, options.hide_url_path)),
                    });
                }
                Ok(url)
            })
            .transpose()?;

        let mut default_headers = options.headers.map.clone();
        for value in default_headers.values_mut() {
            value.set_sensitive(true);
        }
        let http = reqwest::Client::builder()
            .user_agent(options.user_agent.clone())
            .default_headers(default_headers)
            .timeout(options.timeout)
            .redirect(same_origin_redirects())
            .build()
            .map_err(|e| HttpError::Config { message: format!("cannot build HTTP client: {}", e.without_url()) })?;
        let limiter = RateLimiter::direct(Quota::per_second(rate).allow_burst(burst));
        let secrets = options.headers.secrets();
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url,
                options,
                limiter,
                budget_reset: Mutex::new(None),
                stats: HttpStats::default(),
                secrets,
            }),
        })
    }

    /// Counters of requests, retries and waits, for the connector's report.
    pub fn stats(&self) -> &HttpStats {
        &self.inner.stats
    }

    /// The options this client was built with (credentials stay redacted).
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// GETs `path_or_url` (relative to `base_url`, or absolute) with `query`
    /// appended, and decodes the JSON body into `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path_or_url: &str,
        query: &[(&str, &str)],
    ) -> Result<Response<T>, HttpError> {
        let url = self.resolve(path_or_url, query)?;
        self.get_url(url).await
    }

    /// Conditional GET: sends `If-None-Match: etag` when given, so polling an
    /// unchanged resource returns [`Conditional::NotModified`] without a body.
    pub async fn get_json_conditional<T: DeserializeOwned>(
        &self,
        path_or_url: &str,
        etag: Option<&str>,
    ) -> Result<Conditional<T>, HttpError> {
        let url = self.resolve(path_or_url, &[])?;
        let shown = self.show(url.as_str());
        let etag = etag
            .map(|tag| {
                HeaderValue::from_str(tag).map_err(|_| HttpError::Invalid {
                    url: shown.clone(),
                    message: "ETag is not a valid header value".to_string(),
                })
            })
            .transpose()?;
        let conditional = etag.is_some();
        let raw = self.execute(Method::GET, &url, None, etag, &HeaderMap::new()).await?;
        if conditional && raw.status == StatusCode::NOT_MODIFIED {
            HttpStats::bump(&self.inner.stats.not_modified);
            tracing::debug!(url = %shown, "not modified");
            return Ok(Conditional::NotModified);
        }
        let response = self.decode::<T>(&shown, raw)?;
        Ok(Conditional::Modified { etag: response.etag, body: response.body })
    }

    /// Sends `body` as JSON with `method` (POST, PATCH, PUT) and
    /// decodes the JSON answer; an empty answer (204) decodes as `null`, so
    /// `T = ()` or `Option<_>` fit. For ticket sinks and webhooks.
    ///
    /// Retried like any request: a sink must tolerate a duplicate after a
    /// timeout (the ticket sinks dedupe by fingerprint label).
    pub async fn send_json<B, T>(&self, method: Method, path_or_url: &str, body: &B) -> Result<Response<T>, HttpError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let (url, raw) = self.send(method, path_or_url, body).await?;
        self.decode(&self.show(url.as_str()), raw)
    }

    /// Like [`HttpClient::send_json`], but returns the body undecoded (for
    /// endpoints answering text, or when only the status matters).
    pub async fn send_json_raw<B>(
        &self,
        method: Method,
        path_or_url: &str,
        body: &B,
    ) -> Result<Response<Vec<u8>>, HttpError>
    where
        B: Serialize + ?Sized,
    {
        let (url, raw) = self.send(method, path_or_url, body).await?;
        let shown = self.show(url.as_str());
        Ok(response_parts(&shown, raw.status, &raw.headers, raw.body))
    }

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path_or_url: &str,
        body: &B,
    ) -> Result<(Url, Raw), HttpError> {
        let url = self.resolve(path_or_url, &[])?;
        let bytes = serde_json::to_vec(body).map_err(|e| HttpError::Invalid {
            url: self.show(url.as_str()),
            message: format!("cannot serialize request body: {e}"),
        })?;
        let raw = self.execute(method, &url, Some(&bytes), None, &HeaderMap::new()).await?;
        Ok((url, raw))
    }

    /// Sends `body`, JSON already serialized, with `headers` added to this
    /// request only, and returns the answer undecoded: for a signature
    /// computed over exactly these bytes (webhooks). Header values are
    /// marked sensitive and never logged; retried like any request.
    pub async fn send_bytes_with_headers(
        &self,
        method: Method,
        path_or_url: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<Response<Vec<u8>>, HttpError> {
        let url = self.resolve(path_or_url, &[])?;
        let shown = self.show(url.as_str());
        let extra = extra_headers(&shown, headers)?;
        let raw = self.execute(method, &url, Some(body), None, &extra).await?;
        Ok(response_parts(&shown, raw.status, &raw.headers, raw.body))
    }

    /// GET with the body left undecoded, for callers that keep their own
    /// response cache (the GitHub connector's ETag cache across syncs).
    ///
    /// `etag` makes the request conditional (`If-None-Match`): a `304 Not
    /// Modified` comes back as a response with status 304 and an empty body,
    /// and counts in [`HttpStats::not_modified`]. `headers` are added to this
    /// request only (a short-lived credential, a media type); their values
    /// are marked sensitive and never logged. Limiter, budget gate, retries
    /// and the error taxonomy apply as to every request.
    pub async fn get_raw(
        &self,
        path_or_url: &str,
        query: &[(&str, &str)],
        etag: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Response<Vec<u8>>, HttpError> {
        let url = self.resolve(path_or_url, query)?;
        let shown = self.show(url.as_str());
        let extra = extra_headers(&shown, headers)?;
        let etag = etag
            .map(|tag| {
                HeaderValue::from_str(tag).map_err(|_| HttpError::Invalid {
                    url: shown.clone(),
                    message: "ETag is not a valid header value".to_string(),
                })
            })
            .transpose()?;
        let conditional = etag.is_some();
        let raw = self.execute(Method::GET, &url, None, etag, &extra).await?;
        if conditional && raw.status == StatusCode::NOT_MODIFIED {
            HttpStats::bump(&self.inner.stats.not_modified);
            tracing::debug!(url = %shown, "not modified");
        }
        Ok(response_parts(&shown, raw.status, &raw.headers, raw.body))
    }

    /// GET of an already resolved URL (pagination follows links verbatim).
    pub(crate) async fn get_url<T: DeserializeOwned>(&self, url: Url) -> Result<Response<T>, HttpError> {
        let raw = self.execute(Method::GET, &url, None, None, &HeaderMap::new()).await?;
        self.decode(&self.show(url.as_str()), raw)
    }

    /// Turns a path (relative to `base_url`) or an absolute URL plus query
    /// pairs into a URL. The base's path is kept: `/v1` + `/users` is
    /// `/v1/users`; an empty path is the base URL itself.
    pub(crate) fn resolve(&self, path_or_url: &str, query: &[(&str, &str)]) -> Result<Url, HttpError> {
        let invalid = |message: String| HttpError::Invalid { url: self.show(path_or_url), message };
        let absolute = ["http://", "https://"]
            .iter()
            .any(|scheme| path_or_url.get(..scheme.len()).is_some_and(|head| head.eq_ignore_ascii_case(scheme)));
        let mut url = if absolute {
            Url::parse(path_or_url).map_err(|e| invalid(e.to_string()))?
        } else {
            let base = self
                .inner
                .base_url
                .as_ref()
                .ok_or_else(|| invalid("relative path but no base_url configured".to_string()))?;
            // An empty path means the base itself (a webhook URL).
            let joined = if path_or_url.is_empty() {
                base.as_str().to_string()
            } else {
                format!("{}/{}", base.as_str().trim_end_matches('/'), path_or_url.trim_start_matches('/'))
            };
            Url::parse(&joined).map_err(|e| invalid(e.to_string()))?
        };
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// A URL as errors and logs may show it (see [`redact_url`]).
    ///
    /// [`redact_url`]: super::redact_url
    pub(crate) fn show(&self, raw: &str) -> String {
        show_url(raw, self.inner.options.hide_url_path)
    }

    pub(crate) fn max_pages(&self) -> u32 {
        self.inner.options.max_pages
    }

    /// The retry loop: budget gate, limiter, one attempt, then either the
    /// response, the error, or a wait and another attempt.
    async fn execute(
        &self,
        method: Method,
        url: &Url,
        body: Option<&[u8]>,
        if_none_match: Option<HeaderValue>,
        extra: &HeaderMap,
    ) -> Result<Raw, HttpError> {
        let options = &self.inner.options;
        let shown = self.show(url.as_str());
        let mut attempt: u32 = 0;
        loop {
            self.wait_for_budget(&shown).await?;
            self.inner.limiter.until_ready().await;
            HttpStats::bump(&self.inner.stats.requests);
            tracing::debug!(method = %method, url = %shown, attempt, "sending request");
            let err = match self.attempt(&method, url, &shown, body, if_none_match.as_ref(), extra).await {
                Ok(raw) => return Ok(raw),
                Err(err) => err,
            };
            if !err.is_retryable() {
                return Err(err);
            }
            if attempt >= options.max_retries {
                tracing::warn!(
                    url = %shown,
                    status = err.status(),
                    attempts = attempt + 1,
                    kind = err.kind(),
                    "giving up after retries"
                );
                return Err(err);
            }
            let wait =
                err.retry_after().unwrap_or_else(|| full_jitter(options.base_backoff, options.max_backoff, attempt));
            if wait > options.max_rate_limit_wait {
                tracing::warn!(
                    url = %shown,
                    status = err.status(),
                    wait_ms = millis(wait),
                    max_wait_ms = millis(options.max_rate_limit_wait),
                    "server asks to wait longer than allowed; not retrying"
                );
                return Err(err);
            }
            if matches!(err, HttpError::RateLimited { .. }) {
                HttpStats::bump(&self.inner.stats.rate_limit_waits);
            }
            HttpStats::bump(&self.inner.stats.retries);
            attempt += 1;
            tracing::warn!(
                url = %shown,
                status = err.status(),
                attempt,
                wait_ms = millis(wait),
                kind = err.kind(),
                "retrying request"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One request. Records the API's budget from the response headers
    /// whatever the status, then maps a failure to the taxonomy.
    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        shown: &str,
        body: Option<&[u8]>,
        if_none_match: Option<&HeaderValue>,
        extra: &HeaderMap,
    ) -> Result<Raw, HttpError> {
        let mut request = self.inner.http.request(method.clone(), url.clone());
        for (name, value) in extra {
            request = request.header(name, value.clone());
        }
        if let Some(bytes) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(bytes.to_vec());
        }
        if let Some(tag) = if_none_match {
            request = request.header(IF_NONE_MATCH, tag.clone());
        }
        let secrets = &self.inner.secrets;
        let response = request.send().await.map_err(|e| from_reqwest(e, shown).scrub(secrets))?;
        let status = response.status();
        let headers = response.headers().clone();
        self.note_budget(&headers, shown);
        // Reading the body is covered by the same timeout.
        let body = response.bytes().await.map_err(|e| from_reqwest(e, shown).scrub(secrets))?.to_vec();
        let accepted = status.is_success() || (status == StatusCode::NOT_MODIFIED && if_none_match.is_some());
        if accepted {
            Ok(Raw { status, headers, body })
        } else {
            Err(classify(status, &headers, &body, shown, SystemTime::now()).scrub(secrets))
        }
    }

    /// Remembers when an exhausted budget resets, so the *next* request
    /// waits instead of being refused.
    fn note_budget(&self, headers: &HeaderMap, shown: &str) {
        let Some(info) = parse_rate_limit(headers, SystemTime::now()) else {
            return;
        };
        let (0, Some(reset_after)) = (info.remaining, info.reset_after) else {
            return;
        };
        // A nonsensical reset (year 3000) must not overflow the clock; any
        // wait beyond `max_rate_limit_wait` fails the request anyway.
        let until = Instant::now() + reset_after.min(MAX_GATE);
        let mut gate = lock(&self.inner.budget_reset);
        if gate.is_none_or(|current| current < until) {
            *gate = Some(until);
        }
        tracing::debug!(url = %shown, reset_ms = millis(reset_after), "rate-limit budget exhausted");
    }

    /// Waits for the reset of an exhausted budget, or fails at once when the
    /// reset is further away than `max_rate_limit_wait`.
    async fn wait_for_budget(&self, shown: &str) -> Result<(), HttpError> {
        let Some(until) = *lock(&self.inner.budget_reset) else {
            return Ok(());
        };
        let now = Instant::now();
        if until <= now {
            return Ok(());
        }
        let wait = until - now;
        if wait > self.inner.options.max_rate_limit_wait {
            tracing::warn!(
                url = %shown,
                wait_ms = millis(wait),
                "rate-limit budget exhausted; reset is too far away"
            );
            return Err(HttpError::RateLimited { url: shown.to_string(), status: None, retry_after: Some(wait) });
        }
        HttpStats::bump(&self.inner.stats.rate_limit_waits);
        tracing::warn!(url = %shown, wait_ms = millis(wait), "rate-limit budget exhausted; waiting for reset");
        tokio::time::sleep_until(until).await;
        Ok(())
    }

    fn decode<T: DeserializeOwned>(&self, shown: &str, raw: Raw) -> Result<Response<T>, HttpError> {
        let body = decode_json(shown, &raw.body).map_err(|e| e.scrub(&self.inner.secrets))?;
        Ok(response_parts(shown, raw.status, &raw.headers, body))
    }
}

/// Decodes JSON and names the JSON path of the first offending value, e.g.
/// `data[3].id`. An empty body (204) decodes as `null`.
pub(crate) fn decode_json<T: DeserializeOwned>(shown: &str, bytes: &[u8]) -> Result<T, HttpError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"null" } else { bytes };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| HttpError::Decode {
        url: shown.to_string(),
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    deserializer.end().map_err(|e| HttpError::Decode {
        url: shown.to_string(),
        path: ".".to_string(),
        message: e.to_string(),
    })?;
    Ok(value)
}

fn response_parts<T>(shown: &str, status: StatusCode, headers: &HeaderMap, body: T) -> Response<T> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    Response {
        status: status.as_u16(),
        url: shown.to_string(),
        link: text(LINK),
        etag: text(ETAG),
        location: text(LOCATION),
        body,
    }
}

/// Per-request headers, values marked sensitive; errors name the header,
/// never its value.
fn extra_headers(shown: &str, headers: &[(&str, &str)]) -> Result<HeaderMap, HttpError> {
    let mut extra = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| HttpError::Invalid {
            url: shown.to_string(),
            message: format!("invalid header name `{}`", name.escape_debug()),
        })?;
        let mut value = HeaderValue::from_str(value).map_err(|_| HttpError::Invalid {
            url: shown.to_string(),
            message: format!("invalid value for header `{name}`"),
        })?;
        value.set_sensitive(true);
        extra.insert(name, value);
    }
    Ok(extra)
}

/// Follows redirects only within one origin: a redirect elsewhere would
/// carry our credential headers (e.g. `x-api-key`) to another host.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().last().is_some_and(|previous| previous.origin() == attempt.url().origin());
        if same_origin && attempt.previous().len() < 10 { attempt.follow() } else { attempt.stop() }
    })
}

/// The gate holds no invariant a panic could break, so a poisoned lock is
/// simply reused.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
