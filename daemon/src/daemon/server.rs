//! The HTTP API (CONTRACT §8). Everything but `/healthz` and `/readyz`
//! requires `Authorization: Bearer TOKEN` when `[server] token` is set.
//! Answers never carry secrets: errors from the store are logged and
//! answered with a generic message.

use super::metrics;
use super::state::Shared;
use crate::query::{self, QueryError};
use crate::report::{self, Format};
use accessgraph_graph::FindingStatus;
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

type AppState = Arc<Shared>;

/// The API's routes over the daemon's shared state.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/api/v1/sources", get(sources))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/who-can", get(who_can))
        .route("/api/v1/what-can", get(what_can))
        .route("/api/v1/path", get(path))
        .route("/reports/latest", get(latest_report))
        .route_layer(middleware::from_fn_with_state(shared.clone(), require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(protected)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such path") })
        .with_state(shared)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn internal(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "API request failed");
    self::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the daemon's log")
}

fn json_text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn pretty(value: &serde_json::Value) -> Response {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    json_text(text)
}

/// Equal in time independent of where the values differ: both sides are
/// hashed first, so neither the length nor a prefix of the token leaks.
fn same_secret(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = shared.token() else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim);
    match presented {
        Some(token) if same_secret(token, expected.expose()) => next.run(request).await,
        _ => {
            let mut response = error(StatusCode::UNAUTHORIZED, "a bearer token is required");
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when the store answers and every source has synced successfully once
/// (by any replica) or is still before its first tick; else 503 with why.
async fn readyz(State(shared): State<AppState>) -> Response {
    let not_ready = |why: String| (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response();
    match tokio::time::timeout(Duration::from_secs(2), shared.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: the store does not answer");
            return not_ready("the store is unreachable".into());
        }
        Err(_) => return not_ready("the store does not answer within 2s".into()),
    }
    let spans = match shared.store.success_span().await {
        Ok(spans) => spans,
        Err(error) => {
            tracing::warn!(%error, "readiness: cannot read sync runs");
            return not_ready("cannot read sync runs from the store".into());
        }
    };
    let now = Utc::now();
    let mut reasons = Vec::new();
    for source in &shared.config().sources {
        if spans.contains_key(&source.name) {
            continue;
        }
        let state = shared.source_state(&source.name);
        if state.first_tick.is_some_and(|first| now < first) {
            continue;
        }
        let why = match (&state.syncing_since, &state.last) {
            (Some(_), _) => "its first sync is running".to_string(),
            (None, Some(last)) if last.error.is_some() => {
                format!("its last sync failed: {}", last.error.as_deref().unwrap_or_default())
            }
            _ => "it has not synced successfully yet".to_string(),
        };
        reasons.push(format!("source `{}`: {why}", source.name));
    }
    if reasons.is_empty() { (StatusCode::OK, "ready\n").into_response() } else { not_ready(reasons.join("; ")) }
}

async fn metrics_text(State(shared): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::render(&shared).await).into_response()
}

async fn sources(State(shared): State<AppState>) -> Response {
    let runs = match shared.store.last_syncs().await {
        Ok(runs) => runs,
        Err(error) => return internal(error),
    };
    let spans = match shared.store.success_span().await {
        Ok(spans) => spans,
        Err(error) => return internal(error),
    };
    let config = shared.config();
    let mut list = Vec::with_capacity(config.sources.len());
    for source in &config.sources {
        let state = shared.source_state(&source.name);
        let last_sync = runs.iter().find(|run| run.source == source.name).map(|run| {
            let mut value = json!({
                "status": run.status,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "stats": run.stats,
            });
            if let Some(error) = &run.error {
                value["error"] = json!(error);
            }
            value
        });
        list.push(json!({
            "name": source.name,
            "kind": source.kind(),
            "schedule": source.schedule.as_ref().map(|s| s.text()).unwrap_or(super::scheduler::DEFAULT_SCHEDULE),
            "next_sync_at": state.next_tick,
            "syncing": state.syncing_since.is_some(),
            "last_success_at": spans.get(&source.name).and_then(|(_, last)| *last),
            "last_sync": last_sync,
        }));
    }
    pretty(&serde_json::Value::Array(list))
}

#[derive(Debug, Deserialize)]
struct FindingsParams {
    status: Option<String>,
    rule: Option<String>,
}

async fn findings(State(shared): State<AppState>, Query(params): Query<FindingsParams>) -> Response {
    let status = match params.status.as_deref().filter(|s| !s.is_empty()).unwrap_or("open") {
        "all" => None,
        other => match FindingStatus::parse(other) {
            Some(status) => Some(status),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("status must be open, resolved, muted or all (got `{other}`)"),
                );
            }
        },
    };
    let rule = params.rule.as_deref().filter(|r| !r.is_empty());
    match shared.store.findings(status, rule).await {
        Ok(list) => json_text(report::findings_json(&list)),
        Err(e) => internal(e),
    }
}

/// A refused request: 400 with why.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, self.0)
    }
}

/// An optional `at` parameter (RFC 3339).
fn parse_at(at: Option<&str>) -> Result<Option<DateTime<Utc>>, BadRequest> {
    match at.filter(|a| !a.is_empty()) {
        None => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| BadRequest(format!("`at` is not an RFC 3339 time (e.g. 2026-11-27T00:00:00Z): `{text}`"))),
    }
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, BadRequest> {
    value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| BadRequest(format!("the `{name}` parameter is required")))
}

fn query_error(e: QueryError) -> Response {
    match e {
        QueryError::UnknownNode(..) => error(StatusCode::NOT_FOUND, e.to_string()),
        other => internal(other),
    }
}

#[derive(Debug, Deserialize)]
struct WhoCanParams {
    resource: Option<String>,
    action: Option<String>,
    at: Option<String>,
}

async fn who_can(State(shared): State<AppState>, Query(params): Query<WhoCanParams>) -> Response {
    let (resource, at) = match (required(&params.resource, "resource"), parse_at(params.at.as_deref())) {
        (Ok(resource), Ok(at)) => (resource, at),
        (Err(bad), _) | (_, Err(bad)) => return bad.into_response(),
    };
    let action = params.action.as_deref().filter(|a| !a.is_empty());
    let config = shared.config();
    match query::who_can(&config, &shared.store, resource, action, at, Utc::now()).await {
        Ok(rows) => pretty(&json!({ "resource": resource, "action": action, "at": at, "access": rows })),
        Err(e) => query_error(e),
    }
}

#[derive(Debug, Deserialize)]
struct WhatCanParams {
    identity: Option<String>,
    at: Option<String>,
}

async fn what_can(State(shared): State<AppState>, Query(params): Query<WhatCanParams>) -> Response {
    let (identity, at) = match (required(&params.identity, "identity"), parse_at(params.at.as_deref())) {
        (Ok(identity), Ok(at)) => (identity, at),
        (Err(bad), _) | (_, Err(bad)) => return bad.into_response(),
    };
    let config = shared.config();
    match query::what_can(&config, &shared.store, identity, at, Utc::now()).await {
        Ok(rows) => pretty(&json!({ "identity": identity, "at": at, "access": rows })),
        Err(e) => query_error(e),
    }
}

#[derive(Debug, Deserialize)]
struct PathParams {
    from: Option<String>,
    to: Option<String>,
    at: Option<String>,
}

async fn path(State(shared): State<AppState>, Query(params): Query<PathParams>) -> Response {
    let (from, to) = match (required(&params.from, "from"), required(&params.to, "to")) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(bad), _) | (_, Err(bad)) => return bad.into_response(),
    };
    let at = match parse_at(params.at.as_deref()) {
        Ok(at) => at,
        Err(bad) => return bad.into_response(),
    };
    let config = shared.config();
    match query::path(&config, &shared.store, from, to, at).await {
        Ok(found) => pretty(&json!({ "from": from, "to": to, "at": at, "path": found })),
        Err(e) => query_error(e),
    }
}

/// The latest drift report: HTML, or Markdown with `?format=markdown`.
#[derive(Debug, Deserialize)]
struct ReportParams {
    format: Option<String>,
}

async fn latest_report(State(shared): State<AppState>, Query(params): Query<ReportParams>) -> Response {
    let Some(latest) = shared.latest() else {
        return error(StatusCode::NOT_FOUND, "no analysis has run since the daemon started");
    };
    match params.format.as_deref() {
        Some("markdown" | "md") => {
            ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], latest.report.render(Format::Markdown))
                .into_response()
        }
        Some("json") => json_text(latest.report.render(Format::Json)),
        None | Some("" | "html") => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], latest.report.render(Format::Html)).into_response()
        }
        Some(other) => error(StatusCode::BAD_REQUEST, format!("format must be html, markdown or json (got `{other}`)")),
    }
}

#[cfg(test)]
mod unit {
    use super::super::{RunError, RunOptions, serve};
    use crate::store::Store;
    use std::time::Duration;
    use tokio::net::TcpListener;
    use tokio::sync::{mpsc, oneshot};

    #[test]
    fn secrets_compare_whole() {
        assert!(super::same_secret("s3cret", "s3cret"));
        assert!(!super::same_secret("s3cre", "s3cret"));
        assert!(!super::same_secret("", "s3cret"));
        assert!(!super::same_secret("s3cret", ""));
        assert!(!super::same_secret("S3cret", "s3cret"), "case matters");
        assert!(!super::same_secret("s3cret ", "s3cret"));
        // Differing only in the first or the last byte of a long token.
        let token = "t".repeat(64);
        assert!(!super::same_secret(&format!("x{}", &token[1..]), &token));
        assert!(!super::same_secret(&format!("{}x", &token[..63]), &token));
        assert!(super::same_secret(&token, &token));
    }

    fn write_config(dir: &std::path::Path, listen: &str, token: bool) -> std::path::PathBuf {
        let mut text = format!("[store]\nurl = \"sqlite://store.db\"\n\n[server]\nlisten = \"{listen}\"\n");
        if token {
            text.push_str("token = { file = \"token\" }\n");
        }
        let path = dir.join("accessgraph.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// The API refuses to serve beyond loopback without a token, whatever
    /// the config file said, and a reload cannot drop the token while it
    /// listens there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_open_api_beyond_loopback() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "api-token-0123456789\n").expect("token");
        let path = write_config(dir.path(), "127.0.0.1:0", false);
        let config = accessgraph_config::load(&path).expect("loopback without a token is valid");
        let store = Store::open(&config.store.url).await.expect("store");

        // Bound to every interface without a token: refused before serving.
        let listener = TcpListener::bind("0.0.0.0:0").await.expect("bind");
        let (_reload, reloads) = mpsc::channel(1);
        let refused = serve(config, store.clone(), listener, RunOptions::default(), reloads, async {}).await;
        match refused {
            Err(error @ RunError::Config(_)) => {
                let text = error.to_string();
                assert!(text.contains("not a loopback address") && text.contains("accessgraph.toml"), "{text}");
                assert_eq!(error.exit_code(), crate::cli::exit::USAGE);
            }
            other => panic!("expected a configuration error, got {other:?}"),
        }

        // With a token it serves; a reload that drops the token is rejected.
        let path = write_config(dir.path(), "0.0.0.0:0", true);
        let config = accessgraph_config::load(&path).expect("valid");
        let listener = TcpListener::bind("0.0.0.0:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (reload, reloads) = mpsc::channel(1);
        let (stop, stopped) = oneshot::channel::<()>();
        let options = RunOptions { grace: Duration::from_secs(2), ..RunOptions::default() };
        let task = tokio::spawn(serve(config, store, listener, options, reloads, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
        let status = |request: reqwest::RequestBuilder| async move {
            request.send().await.map(|r| r.status().as_u16()).unwrap_or_default()
        };
        let mut up = false;
        for _ in 0..100 {
            if status(client.get(url("/healthz"))).await == 200 {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "the daemon serves");
        assert_eq!(status(client.get(url("/api/v1/sources"))).await, 401);

        // The new file listens on loopback without a token; the running
        // listener stays on every interface, so the reload is refused.
        write_config(dir.path(), "127.0.0.1:9464", false);
        reload.send(()).await.expect("reload");
        let mut rejected = false;
        for _ in 0..100 {
            let metrics = client
                .get(url("/metrics"))
                .bearer_auth("api-token-0123456789")
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .unwrap_or_default();
            if metrics.contains("accessgraph_config_reloads_total{result=\"rejected\"} 1") {
                rejected = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(rejected, "the reload is rejected");
        assert_eq!(status(client.get(url("/api/v1/sources"))).await, 401, "the token is still required");
        assert_eq!(status(client.get(url("/api/v1/sources")).bearer_auth("api-token-0123456789")).await, 200);
        let _ = stop.send(());
        task.await.expect("daemon task").expect("clean stop");
    }
}
