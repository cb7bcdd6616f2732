//! A GitHub REST mock on wiremock, fed from `fixtures/github/routes.json`.
//!
//! Shared (through `#[path]`) by the connector's tests, the end-to-end test
//! and the bench, so all three speak the same wire format: bodies are the
//! fixture files, every answer carries GitHub's `x-ratelimit-*` headers,
//! 2xx listings carry an `ETag` and answer a matching `If-None-Match` with a
//! bodiless `304`, `link` headers point back at the mock, and a request
//! without the expected `Authorization` gets GitHub's 401 body.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// `x-ratelimit-reset` of every answer (2030-01-01, epoch seconds).
pub const RATE_RESET: &str = "1893456000";

const BAD_CREDENTIALS: &str =
    r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}"#;

/// The `Authorization` a route expects.
#[derive(Clone, Debug)]
pub enum ExpectAuth {
    /// Exactly this header value (`Bearer …`).
    Exactly(String),
    /// A GitHub App JWT (`Bearer ey…`): the installation-token endpoint.
    Jwt,
    /// Anything.
    Any,
}

/// One answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes (JSON, or deliberately broken JSON).
    pub body: Vec<u8>,
    /// `link` header.
    pub link: Option<String>,
    /// Send an `ETag` (and honour `If-None-Match`).
    pub etag: bool,
    /// Expected `Authorization`.
    pub auth: ExpectAuth,
    /// More headers (`retry-after`, `x-ratelimit-remaining: 0`, …).
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// A 200 JSON answer with an ETag, accepting any credential.
    pub fn json(body: impl Into<Vec<u8>>) -> Reply {
        Reply { status: 200, body: body.into(), link: None, etag: true, auth: ExpectAuth::Any, headers: Vec::new() }
    }

    /// An error answer (no ETag).
    pub fn error(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply { status, etag: false, ..Reply::json(body) }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// The ETag the mock gives a body (stable within and across runs).
pub fn etag_of(body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    format!("W/\"{:016x}\"", hasher.finish())
}

fn with_rate_headers(template: ResponseTemplate) -> ResponseTemplate {
    template
        .insert_header("x-ratelimit-limit", "5000")
        .insert_header("x-ratelimit-remaining", "4990")
        .insert_header("x-ratelimit-used", "10")
        .insert_header("x-ratelimit-reset", RATE_RESET)
        .insert_header("x-ratelimit-resource", "core")
        .insert_header("x-github-request-id", "0000:0000:0000:0000:00000000")
}

impl Respond for Reply {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let given = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        let authorized = match &self.auth {
            ExpectAuth::Exactly(expected) => given == expected,
            ExpectAuth::Jwt => given.starts_with("Bearer ey"),
            ExpectAuth::Any => true,
        };
        if !authorized {
            return with_rate_headers(ResponseTemplate::new(401)).set_body_raw(BAD_CREDENTIALS, "application/json");
        }
        let etag = (self.etag && (200..300).contains(&self.status)).then(|| etag_of(&self.body));
        if let Some(tag) = &etag
            && request.headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(tag.as_str())
        {
            return with_rate_headers(ResponseTemplate::new(304)).insert_header("etag", tag.as_str());
        }
        let mut template = with_rate_headers(ResponseTemplate::new(self.status))
            .set_body_raw(self.body.clone(), "application/json; charset=utf-8");
        if let Some(tag) = etag {
            template = template.insert_header("etag", tag.as_str());
        }
        if let Some(link) = &self.link {
            template = template.insert_header("link", link.as_str());
        }
        for (name, value) in &self.headers {
            template = template.insert_header(name.as_str(), value.as_str());
        }
        template
    }
}

/// Which requests a route answers.
#[derive(Clone, Debug, Default)]
pub struct Route {
    /// `GET`, `POST`.
    pub method: String,
    /// Path (`/orgs/acme/members`).
    pub path: String,
    /// Query parameters that must be present with these values.
    pub query: BTreeMap<String, String>,
    /// Query parameters that must be absent.
    pub absent: Vec<String>,
}

impl Route {
    /// A GET of `path`, any query.
    pub fn get(path: &str) -> Route {
        Route { method: "GET".to_string(), path: path.to_string(), ..Route::default() }
    }

    /// Requires a query parameter.
    pub fn query(mut self, name: &str, value: &str) -> Route {
        self.query.insert(name.to_string(), value.to_string());
        self
    }

    fn mock(&self) -> wiremock::MockBuilder {
        let mut builder = Mock::given(method(self.method.as_str())).and(path(self.path.as_str()));
        for (name, value) in &self.query {
            builder = builder.and(query_param(name.as_str(), value.as_str()));
        }
        for name in &self.absent {
            builder = builder.and(query_param_is_missing(name.as_str()));
        }
        builder
    }
}

/// The running mock.
pub struct GithubMock {
    /// The wiremock server (127.0.0.1, random port).
    pub server: MockServer,
    /// `Authorization` expected on API calls.
    pub auth: ExpectAuth,
}

/// The fixture manifest (read without serde derives: the end-to-end test
/// crate has only `serde_json`).
#[derive(Debug)]
pub struct Manifest {
    /// Organization login.
    pub org: String,
    /// The App installation the end-to-end test authenticates as.
    pub installation_id: u64,
    /// The installation token the mock hands out.
    pub installation_token: String,
    /// Routes with their answers' files.
    pub routes: Vec<ManifestRoute>,
}

/// One route of the manifest.
#[derive(Debug)]
pub struct ManifestRoute {
    /// Which requests.
    pub route: Route,
    /// Body file.
    pub file: String,
    /// Status.
    pub status: u16,
    /// `link`, with `{base}` for the mock's URL.
    pub link: Option<String>,
    /// `jwt` for the installation-token endpoint.
    pub auth: Option<String>,
    /// Whether 2xx answers carry an ETag.
    pub etag: bool,
}

/// Reads the manifest of a fixtures folder.
pub fn manifest(dir: &Path) -> Manifest {
    let text = std::fs::read_to_string(dir.join("routes.json")).expect("fixtures/github/routes.json");
    let value: serde_json::Value = serde_json::from_str(&text).expect("routes.json parses");
    let text_of = |v: &serde_json::Value, key: &str| v[key].as_str().map(str::to_string);
    let routes = value["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|entry| {
            let strings = |key: &str| -> BTreeMap<String, String> {
                entry[key]
                    .as_object()
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
                    .unwrap_or_default()
            };
            ManifestRoute {
                route: Route {
                    method: text_of(entry, "method").expect("method"),
                    path: text_of(entry, "path").expect("path"),
                    query: strings("query"),
                    absent: entry["absent"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                        .unwrap_or_default(),
                },
                file: text_of(entry, "file").expect("file"),
                status: entry["status"].as_u64().and_then(|s| u16::try_from(s).ok()).expect("status"),
                link: text_of(entry, "link"),
                auth: text_of(entry, "auth"),
                etag: entry["etag"].as_bool().unwrap_or(true),
            }
        })
        .collect();
    Manifest {
        org: text_of(&value, "org").expect("org"),
        installation_id: value["installation_id"].as_u64().expect("installation_id"),
        installation_token: text_of(&value, "installation_token").expect("installation_token"),
        routes,
    }
}

/// Reads a fixture file.
pub fn fixture(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

impl GithubMock {
    /// Starts an empty mock expecting `auth` on API calls.
    pub async fn start(auth: ExpectAuth) -> GithubMock {
        GithubMock { server: MockServer::start().await, auth }
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Answers `route` with `reply` (the mock's expected credential unless
    /// the reply names one), at wiremock's default priority.
    pub async fn mount(&self, route: &Route, reply: Reply) {
        self.mount_with(route, reply, 5, None).await;
    }

    /// Answers `route` first, `times` times (or always), ahead of the
    /// fixtures: for failure injection.
    pub async fn mount_first(&self, route: &Route, reply: Reply, times: Option<u64>) {
        self.mount_with(route, reply, 1, times).await;
    }

    async fn mount_with(&self, route: &Route, mut reply: Reply, priority: u8, times: Option<u64>) {
        if matches!(reply.auth, ExpectAuth::Any) {
            reply.auth = self.auth.clone();
        }
        let mut mock = route.mock().respond_with(reply).with_priority(priority);
        if let Some(times) = times {
            mock = mock.up_to_n_times(times);
        }
        mock.mount(&self.server).await;
    }

    /// Mounts every route of a fixtures folder.
    pub async fn mount_fixtures(&self, dir: &Path) -> Manifest {
        let manifest = manifest(dir);
        for entry in &manifest.routes {
            let auth = match entry.auth.as_deref() {
                Some("jwt") => ExpectAuth::Jwt,
                _ => self.auth.clone(),
            };
            let reply = Reply {
                status: entry.status,
                body: fixture(dir, &entry.file),
                link: entry.link.as_ref().map(|link| link.replace("{base}", &self.uri())),
                etag: entry.etag,
                auth,
                headers: Vec::new(),
            };
            self.mount(&entry.route, reply).await;
        }
        manifest
    }

    /// Every request received so far.
    pub async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }
}

/// Where the fixtures live, from a crate's manifest folder.
pub fn fixtures_dir(manifest_dir: &str) -> PathBuf {
    let here = Path::new(manifest_dir);
    for candidate in [here.join("fixtures/github"), here.join("../fixtures/github")] {
        if candidate.join("routes.json").exists() {
            return candidate;
        }
    }
    panic!("fixtures/github not found from {manifest_dir}");
}
