//! Parsing of the response headers that steer the client: rate limits,
//! `Retry-After` and `Link`. Pure functions, so each dialect is unit-tested.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::header::HeaderMap;

/// Epoch seconds are at least this large (2001-09-09); smaller integers in a
/// `*-reset` header are delta seconds.
const EPOCH_THRESHOLD: u64 = 1_000_000_000;

/// The API's own view of our request budget, from its rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// Requests left in the current window.
    pub remaining: u64,
    /// Time until the window resets, measured from the `now` given to
    /// [`parse_rate_limit`] (zero if the reset is already past).
    pub reset_after: Option<Duration>,
}

/// How a dialect writes its reset time.
#[derive(Debug, Clone, Copy)]
enum Reset {
    /// Epoch seconds (GitHub, Okta) — or, for small integers, delta seconds;
    /// also accepts an ISO-8601 instant (Jira writes `2024-05-01T12:00Z`).
    EpochOrInstant,
    /// Delta seconds (IETF `RateLimit` header fields draft).
    DeltaSeconds,
    /// Go-style duration such as `6m0s`, `1s`, `20ms` (OpenAI).
    GoDuration,
    /// RFC 3339 instant (Anthropic).
    Rfc3339,
}

/// The dialects we understand: (remaining header, reset header, format).
///
/// Only *request* budgets: OpenAI and Anthropic also announce token budgets,
/// which admin calls do not consume.
const DIALECTS: &[(&str, &str, Reset)] = &[
    ("x-ratelimit-remaining", "x-ratelimit-reset", Reset::EpochOrInstant),
    ("x-rate-limit-remaining", "x-rate-limit-reset", Reset::EpochOrInstant),
    ("ratelimit-remaining", "ratelimit-reset", Reset::DeltaSeconds),
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", Reset::GoDuration),
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset", Reset::Rfc3339),
];

/// Reads the request budget from the rate-limit headers of any dialect we
/// know, in one place so every connector gets the same behaviour:
///
/// | remaining | reset | format |
/// |---|---|---|
/// | `x-ratelimit-remaining` | `x-ratelimit-reset` | epoch seconds (GitHub), ISO instant (Jira) |
/// | `x-rate-limit-remaining` | `x-rate-limit-reset` | epoch seconds (Okta) |
/// | `ratelimit-remaining` | `ratelimit-reset` | delta seconds (IETF draft) |
/// | `x-ratelimit-remaining-requests` | `x-ratelimit-reset-requests` | duration `6m0s` (OpenAI) |
/// | `anthropic-ratelimit-requests-remaining` | `anthropic-ratelimit-requests-reset` | RFC 3339 |
///
/// When several dialects are present, the most restrictive wins (fewest
/// remaining, then the latest reset). `None` when no dialect is present.
pub fn parse_rate_limit(headers: &HeaderMap, now: SystemTime) -> Option<RateLimitInfo> {
    let mut best: Option<RateLimitInfo> = None;
    for (remaining_name, reset_name, format) in DIALECTS {
        let Some(remaining) = header_str(headers, remaining_name)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
        else {
            continue;
        };
        // Some servers send "0.0"; budgets are whole requests.
        let remaining = remaining.floor() as u64;
        let reset_after = header_str(headers, reset_name).and_then(|v| parse_reset(v, *format, now));
        let candidate = RateLimitInfo { remaining, reset_after };
        best = Some(match best {
            None => candidate,
            Some(current) => more_restrictive(current, candidate),
        });
    }
    best
}

fn more_restrictive(a: RateLimitInfo, b: RateLimitInfo) -> RateLimitInfo {
    match a.remaining.cmp(&b.remaining) {
        std::cmp::Ordering::Less => a,
        std::cmp::Ordering::Greater => b,
        std::cmp::Ordering::Equal => {
            if b.reset_after > a.reset_after {
                b
            } else {
                a
            }
        }
    }
}

fn parse_reset(value: &str, format: Reset, now: SystemTime) -> Option<Duration> {
    match format {
        Reset::EpochOrInstant => match value.parse::<u64>() {
            Ok(n) if n >= EPOCH_THRESHOLD => {
                let at = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(n))?;
                Some(until(at, now))
            }
            Ok(n) => Some(Duration::from_secs(n)),
            Err(_) => parse_instant(value).map(|at| until(at, now)),
        },
        Reset::DeltaSeconds => parse_seconds(value),
        Reset::GoDuration => parse_go_duration(value),
        Reset::Rfc3339 => DateTime::parse_from_rfc3339(value).ok().map(|at| until(at.into(), now)),
    }
}

/// RFC 3339, or ISO 8601 without seconds (`2024-05-01T12:00Z`, Jira).
fn parse_instant(value: &str) -> Option<SystemTime> {
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Some(at.into());
    }
    let naive = value.strip_suffix('Z')?;
    NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M")
        .ok()
        .map(|at| DateTime::<Utc>::from_naive_utc_and_offset(at, Utc).into())
}

fn until(at: SystemTime, now: SystemTime) -> Duration {
    at.duration_since(now).unwrap_or(Duration::ZERO)
}

/// Non-negative decimal seconds (`1`, `1.5`).
fn parse_seconds(value: &str) -> Option<Duration> {
    let secs: f64 = value.parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

/// How long the server asked us to wait: `retry-after-ms` (milliseconds, sent
/// by OpenAI and Anthropic), else `Retry-After` as delta seconds or an
/// HTTP-date (RFC 9110 §10.2.3; a date in the past means "now").
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(ms) = header_str(headers, "retry-after-ms").and_then(parse_seconds) {
        // parse_seconds read milliseconds as seconds; scale back.
        return Some(ms / 1000);
    }
    let value = header_str(headers, "retry-after")?;
    parse_seconds(value).or_else(|| httpdate::parse_http_date(value).ok().map(|at| until(at, now)))
}

/// Parses a Go-style duration as OpenAI writes its reset headers: a sequence
/// of decimal numbers with units `h`, `m`, `s`, `ms`, `us`/`µs`, `ns`
/// (`6m0s`, `1s`, `20ms`, `1h2m3.5s`). A bare `0` is accepted.
pub fn parse_go_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value == "0" {
        return Some(Duration::ZERO);
    }
    if value.is_empty() {
        return None;
    }
    let mut total = 0.0_f64;
    let mut rest = value;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Finds the `rel="next"` target in an RFC 8288 `Link` header.
///
/// Handles several links in one header, several relation types in one `rel`
/// (`rel="next last"`), unquoted values, any case and whitespace around
/// `;`/`=`, and commas inside the `<…>` target. The target is returned
/// verbatim: it may be relative, resolve it against the request URL.
pub fn parse_link_next(header: &str) -> Option<String> {
    let mut rest = header;
    loop {
        let open = rest.find('<')?;
        let after_open = &rest[open + 1..];
        let close = after_open.find('>')?;
        let target = after_open[..close].trim();
        let (params, next) = split_outside_quotes(&after_open[close + 1..], ',');
        if split_all_outside_quotes(params, ';').any(is_rel_next) {
            return Some(target.to_string());
        }
        rest = next?;
    }
}

fn is_rel_next(param: &str) -> bool {
    let Some((name, value)) = param.split_once('=') else {
        return false;
    };
    if !name.trim().eq_ignore_ascii_case("rel") {
        return false;
    }
    let value = value.trim();
    let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
    value.split_ascii_whitespace().any(|rel| rel.eq_ignore_ascii_case("next"))
}

/// Splits at the first `sep` that is not inside double quotes.
fn split_outside_quotes(text: &str, sep: char) -> (&str, Option<&str>) {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => return (&text[..i], Some(&text[i + c.len_utf8()..])),
            _ => {}
        }
    }
    (text, None)
}

fn split_all_outside_quotes(text: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        let (head, tail) = split_outside_quotes(current, sep);
        rest = tail;
        Some(head)
    })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn at(epoch_secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(epoch_secs)
    }

    // 2025-05-20T10:00:00Z
    const NOW: u64 = 1_747_735_200;

    #[test]
    fn http_rate_limit_github_epoch_reset() {
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &(NOW + 42).to_string())]);
        let info = parse_rate_limit(&h, at(NOW)).unwrap();
        assert_eq!(info.remaining, 0);
        assert_eq!(info.reset_after, Some(Duration::from_secs(42)));
        // A reset in the past means "now".
        let info = parse_rate_limit(&h, at(NOW + 100)).unwrap();
        assert_eq!(info.reset_after, Some(Duration::ZERO));
    }

    #[test]
    fn http_rate_limit_jira_iso_reset_and_okta_dialect() {
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "2025-05-20T10:05Z")]);
        let info = parse_rate_limit(&h, at(NOW)).unwrap();
        assert_eq!(info.reset_after, Some(Duration::from_secs(300)));
        let h = headers(&[("x-rate-limit-remaining", "7"), ("x-rate-limit-reset", &(NOW + 60).to_string())]);
        let info = parse_rate_limit(&h, at(NOW)).unwrap();
        assert_eq!(info.remaining, 7);
        assert_eq!(info.reset_after, Some(Duration::from_secs(60)));
    }

    #[test]
    fn http_rate_limit_ietf_delta_seconds() {
        let h = headers(&[("ratelimit-remaining", "3"), ("ratelimit-reset", "17")]);
        let info = parse_rate_limit(&h, at(NOW)).unwrap();
        assert_eq!(info.remaining, 3);
        assert_eq!(info.reset_after, Some(Duration::from_secs(17)));
    }

    #[test]
    fn http_rate_limit_openai_durations() {
        let h = headers(&[("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "6m0s")]);
        let info = parse_rate_limit(&h, at(NOW)).unwrap();
        assert_eq!(info.remaining, 0);
        assert_eq!(info.reset_after, Some(Duration::from_secs(360)));
        assert_eq!(parse_go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_go_duration("1h2m3.5s"), Some(Duration::from_millis(3_723_500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("5x"), None);
        assert_eq!(parse_go_duration("ms"), None);
    }

    #[test]
    fn http_rate_limit_anthropic_rfc3339() {
        let h = headers(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2025-05-20T10:00:30Z"),
        ]);
        let info = parse_rate_limit(&h, at(NOW)).unwrap();
        assert_eq!(info.remaining, 0);
        assert_eq!(info.reset_after, Some(Duration::from_secs(30)));
    }

    #[test]
    fn http_rate_limit_most_restrictive_dialect_wins_and_absent_is_none() {
        let h = headers(&[
            ("ratelimit-remaining", "10"),
            ("ratelimit-reset", "5"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "2s"),
        ]);
        let info = parse_rate_limit(&h, at(NOW)).unwrap();
        assert_eq!(info.remaining, 0);
        assert_eq!(info.reset_after, Some(Duration::from_secs(2)));
        assert_eq!(parse_rate_limit(&HeaderMap::new(), at(NOW)), None);
        let garbage = headers(&[("x-ratelimit-remaining", "lots")]);
        assert_eq!(parse_rate_limit(&garbage, at(NOW)), None);
    }

    #[test]
    fn http_retry_after_seconds_date_and_ms() {
        let h = headers(&[("retry-after", "120")]);
        assert_eq!(parse_retry_after(&h, at(NOW)), Some(Duration::from_secs(120)));
        let h = headers(&[("retry-after", "Tue, 20 May 2025 10:01:30 GMT")]);
        assert_eq!(parse_retry_after(&h, at(NOW)), Some(Duration::from_secs(90)));
        // A date in the past means "retry now".
        assert_eq!(parse_retry_after(&h, at(NOW + 3600)), Some(Duration::ZERO));
        let h = headers(&[("retry-after-ms", "250"), ("retry-after", "9")]);
        assert_eq!(parse_retry_after(&h, at(NOW)), Some(Duration::from_millis(250)));
        let h = headers(&[("retry-after", "soon")]);
        assert_eq!(parse_retry_after(&h, at(NOW)), None);
        let h = headers(&[("retry-after", "-3")]);
        assert_eq!(parse_retry_after(&h, at(NOW)), None);
    }

    #[test]
    fn http_link_next_variants() {
        let github = "<https://api.github.com/organizations/9001/members?per_page=100&page=2>; rel=\"next\", \
                      <https://api.github.com/organizations/9001/members?per_page=100&page=4>; rel=\"last\"";
        assert_eq!(
            parse_link_next(github).as_deref(),
            Some("https://api.github.com/organizations/9001/members?per_page=100&page=2")
        );
        // next is not first; odd whitespace; unquoted; upper case.
        let h = "<https://x.example/a?page=1>;rel=\"prev\" ,  < https://x.example/a?page=3 > ; REL = Next";
        assert_eq!(parse_link_next(h).as_deref(), Some("https://x.example/a?page=3"));
        // Several relation types in one rel, other params, comma in the URL and
        // in a quoted title.
        let h = "<https://x.example/a?ids=1,2&page=2>; title=\"a, b; c\"; rel=\"last next\"";
        assert_eq!(parse_link_next(h).as_deref(), Some("https://x.example/a?ids=1,2&page=2"));
        // Relative target is returned verbatim.
        assert_eq!(parse_link_next("</users?page=2>; rel=\"next\"").as_deref(), Some("/users?page=2"));
        assert_eq!(parse_link_next("<https://x.example/a?page=9>; rel=\"last\""), None);
        assert_eq!(parse_link_next("<https://x.example/a>; rel=\"nextish\""), None);
        assert_eq!(parse_link_next(""), None);
        assert_eq!(parse_link_next("garbage <unclosed; rel=next"), None);
    }
}
