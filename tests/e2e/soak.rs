//! Soak: `accessgraph run` with four sources ticking every second against
//! mock servers that misbehave, for `ACCESSGRAPH_SOAK_SECS` seconds (default
//! 20; `ACCESSGRAPH_SOAK_SECS=300 cargo test --test tests soak -- --nocapture`
//! for the five-minute run of RELIABILITY.md).
//!
//! Sources: GitHub (the fixtures of `fixtures/github/`), SCIM (Okta
//! flavour) and OpenAI (`fixtures/{scim,openai}/`), each a wiremock server
//! whose answers go through [`Chaos`] (a seeded RNG: 10 % 5xx, 0.3 %
//! answers delayed past the client's 30 s timeout, 5 % slow answers, 1 %
//! malformed bodies), and a snapshot file that the test rewrites every 3 s,
//! alternating between a state without and a state with a never-expiring
//! key and a new `admin` grant.
//!
//! What must hold:
//!
//! - **flat resources**: the daemon's RSS and open descriptors, sampled
//!   every second from `/proc`, do not grow over the second half of the
//!   run: the median of its last third is within 20 % (RSS) and 8
//!   descriptors of the median of its first third;
//! - **every tick completes or fails cleanly**: after SIGTERM the daemon
//!   exits 0 without abandoning work; every sync it logged (succeeded or
//!   failed) is one `sync_runs` row of that outcome, every failed row has
//!   its error, and no row of a chaos-free source (the snapshot) failed;
//! - **no finding lost or duplicated**: the `jsonl` events have unique
//!   event ids, each an outbox row; per finding they follow the lifecycle
//!   (opened, then updated/resolved/reopened in order); the toggled key's
//!   `secret.standing` and the toggled grant's `drift.baseline` open once in
//!   exactly the first analysis that follows each state that adds them (as
//!   the store's validity intervals and analyses record); findings of the
//!   mocked sources never resolve after warm-up (a failed sync is not
//!   "access removed"); the open findings at the end equal those of two clean
//!   scans of the final mock state on a fresh store.

use super::common::*;
use serde_json::{Value, json};
use sqlx::{Connection, Row, SqliteConnection};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::github::mock;

/// The HTTP client's per-attempt timeout (`ClientOptions::default`).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const SCIM_TOKEN: &str = "scim-soak-token-0123456789";
const OPENAI_KEY: &str = "sk-admin-soak-openai-0123456789";
/// The toggled objects of the snapshot source.
const TOGGLED_KEY: &str = "soakfile:api_key:rot";
const TOGGLED_RESOURCE: &str = "soakfile:dataset:ledger";

/// Faults injected, counted per kind.
#[derive(Debug, Default)]
struct Injected {
    requests: AtomicU64,
    server_errors: AtomicU64,
    timeouts: AtomicU64,
    slow: AtomicU64,
    malformed: AtomicU64,
}

/// What every mock shares: the seeded RNG, the counters, the off switch.
#[derive(Debug)]
struct ChaosState {
    rng: Mutex<Rng>,
    enabled: AtomicBool,
    injected: Injected,
}

/// Wraps a mock's answer: with the shared RNG, replaces it by a 5xx, delays
/// it past the client timeout or by up to 1.5 s, or truncates its body.
struct Chaos<R> {
    inner: R,
    state: Arc<ChaosState>,
}

impl<R: Respond> Respond for Chaos<R> {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let state = &self.state;
        state.injected.requests.fetch_add(1, Ordering::Relaxed);
        if !state.enabled.load(Ordering::Relaxed) {
            return self.inner.respond(request);
        }
        let (roll, extra) = {
            let mut rng = state.rng.lock().expect("rng");
            (rng.below(1000), rng.next_u64())
        };
        match roll {
            0..100 => {
                state.injected.server_errors.fetch_add(1, Ordering::Relaxed);
                let status = [500, 502, 503, 504][(extra % 4) as usize];
                ResponseTemplate::new(status).set_body_string("upstream trouble")
            }
            100..103 => {
                state.injected.timeouts.fetch_add(1, Ordering::Relaxed);
                self.inner.respond(request).set_delay(CLIENT_TIMEOUT + Duration::from_secs(1))
            }
            103..153 => {
                state.injected.slow.fetch_add(1, Ordering::Relaxed);
                self.inner.respond(request).set_delay(Duration::from_millis(100 + extra % 1400))
            }
            153..163 => {
                state.injected.malformed.fetch_add(1, Ordering::Relaxed);
                ResponseTemplate::new(200).set_body_raw(r#"{"data": [{"id": "#, "application/json")
            }
            _ => self.inner.respond(request),
        }
    }
}

fn fixture(system: &str, name: &str) -> Value {
    let file = repo().join("fixtures").join(system).join(name);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn ok(system: &str, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(fixture(system, name))
}

struct Mocks {
    github: MockServer,
    scim: MockServer,
    openai: MockServer,
    github_token: String,
    chaos: Arc<ChaosState>,
}

async fn mocks(seed: u64) -> Mocks {
    let chaos = Arc::new(ChaosState {
        rng: Mutex::new(Rng::new(seed)),
        enabled: AtomicBool::new(true),
        injected: Injected::default(),
    });
    let wrap = |inner: ResponseTemplate| Chaos { inner, state: chaos.clone() };

    // GitHub: every route of the fixture manifest, each answer behind chaos.
    let dir = mock::fixtures_dir(env!("CARGO_MANIFEST_DIR"));
    let manifest = mock::manifest(&dir);
    let github = MockServer::start().await;
    let token = format!("Bearer {}", manifest.installation_token);
    for entry in &manifest.routes {
        let reply = mock::Reply {
            status: entry.status,
            body: mock::fixture(&dir, &entry.file),
            link: entry.link.as_ref().map(|link| link.replace("{base}", &github.uri())),
            etag: entry.etag,
            auth: mock::ExpectAuth::Exactly(token.clone()),
            headers: Vec::new(),
        };
        let route = &entry.route;
        let mut builder = Mock::given(method(route.method.as_str())).and(path(route.path.as_str()));
        for (name, value) in &route.query {
            builder = builder.and(query_param(name.as_str(), value.as_str()));
        }
        for name in &route.absent {
            builder = builder.and(query_param_is_missing(name.as_str()));
        }
        builder.respond_with(Chaos { inner: reply, state: chaos.clone() }).mount(&github).await;
    }

    let scim = MockServer::start().await;
    for (start, page) in [("1", 1), ("3", 2), ("5", 3)] {
        Mock::given(method("GET"))
            .and(path("/scim/v2/Users"))
            .and(header("authorization", format!("Bearer {SCIM_TOKEN}").as_str()))
            .and(query_param("startIndex", start))
            .respond_with(wrap(ok("scim", &format!("okta/users.page{page}.json"))))
            .mount(&scim)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups"))
        .respond_with(wrap(ok("scim", "okta/groups.json")))
        .mount(&scim)
        .await;

    let openai = MockServer::start().await;
    let get = |p: &str| {
        Mock::given(method("GET"))
            .and(path(format!("/v1/organization/{p}")))
            .and(header("authorization", format!("Bearer {OPENAI_KEY}").as_str()))
    };
    get("users")
        .and(query_param_is_missing("after"))
        .respond_with(wrap(ok("openai", "users.page1.json")))
        .mount(&openai)
        .await;
    get("users")
        .and(query_param("after", "user_bob02"))
        .respond_with(wrap(ok("openai", "users.page2.json")))
        .mount(&openai)
        .await;
    get("users")
        .and(query_param("after", "user_dave04"))
        .respond_with(wrap(ok("openai", "users.page3.json")))
        .mount(&openai)
        .await;
    get("invites").respond_with(wrap(ok("openai", "invites.json"))).mount(&openai).await;
    get("projects").respond_with(wrap(ok("openai", "projects.json"))).mount(&openai).await;
    for project in ["payments", "research"] {
        for what in ["users", "service_accounts"] {
            get(&format!("projects/proj_{project}/{what}"))
                .respond_with(wrap(ok("openai", &format!("project-{project}.{what}.json"))))
                .mount(&openai)
                .await;
        }
    }
    get("projects/proj_payments/api_keys")
        .respond_with(wrap(ok("openai", "project-payments.api_keys.json")))
        .mount(&openai)
        .await;
    get("projects/proj_research/api_keys")
        .and(query_param("owner_project_access", "any"))
        .respond_with(wrap(ok("openai", "project-research.api_keys.any.json")))
        .with_priority(1)
        .mount(&openai)
        .await;
    get("projects/proj_research/api_keys")
        .respond_with(wrap(ok("openai", "project-research.api_keys.active.json")))
        .with_priority(2)
        .mount(&openai)
        .await;
    get("admin_api_keys").respond_with(wrap(ok("openai", "admin_api_keys.json"))).mount(&openai).await;

    Mocks { github, scim, openai, github_token: manifest.installation_token, chaos }
}

/// The snapshot source: `toggled` adds a never-expiring key and an `admin` grant.
fn snapshot(toggled: bool) -> Value {
    let mut credentials = vec![json!({"id": "steady", "kind": "api_key", "holder": "bot",
        "created_at": "2026-01-01T00:00:00Z", "last_used_at": null, "expires_at": "2099-01-01T00:00:00Z"})];
    let mut grants = vec![json!({"principal": "bot", "resource": "reports", "actions": ["read"]})];
    if toggled {
        credentials.push(json!({"id": "rot", "kind": "api_key", "holder": "bot",
            "created_at": "2026-01-01T00:00:00Z", "last_used_at": null, "expires_at": null}));
        grants.push(json!({"principal": "bot", "resource": "ledger", "actions": ["admin"]}));
    }
    json!({
        "version": 1,
        "system": "soakfile",
        "identities": [
            {"id": "bot", "kind": "agent", "name": "Soak bot", "owner": "alice@acme.example", "active": true}
        ],
        "resources": [
            {"id": "reports", "kind": "dataset", "name": "Reports"},
            {"id": "ledger", "kind": "dataset", "name": "Ledger", "environment": "prod"}
        ],
        "grants": grants,
        "credentials": credentials
    })
}

fn replace_json(path: &Path, value: &Value) {
    let tmp = path.with_extension("tmp");
    write_json(&tmp, value);
    std::fs::rename(&tmp, path).expect("rename snapshot");
}

fn config_text(mocks: &Mocks, store: &str, events: &str, port: u16) -> String {
    format!(
        r#"[store]
url = "sqlite://{store}"

[[source]]
name = "github-acme"
kind = "github"
schedule = "*/1 * * * * *"
org = "acme"
base_url = "{github}"
token = {{ env = "SOAK_GITHUB_TOKEN" }}

[[source]]
name = "okta"
kind = "scim"
schedule = "*/1 * * * * *"
base_url = "{scim}/scim/v2"
token = {{ env = "SOAK_SCIM_TOKEN" }}
flavor = "okta"

[[source]]
name = "openai"
kind = "openai"
schedule = "*/1 * * * * *"
base_url = "{openai}/v1"
admin_key = {{ env = "SOAK_OPENAI_KEY" }}

[[source]]
name = "soakfile"
kind = "snapshot"
schedule = "*/1 * * * * *"
path = "soakfile.json"

[server]
listen = "127.0.0.1:{port}"

[[sink]]
kind = "jsonl"
path = "{events}"
min_severity = "low"
"#,
        github = mocks.github.uri(),
        scim = mocks.scim.uri(),
        openai = mocks.openai.uri(),
    )
}

fn secrets(mocks: &Mocks) -> [(&'static str, String); 3] {
    [
        ("SOAK_GITHUB_TOKEN", mocks.github_token.clone()),
        ("SOAK_SCIM_TOKEN", SCIM_TOKEN.to_string()),
        ("SOAK_OPENAI_KEY", OPENAI_KEY.to_string()),
    ]
}

/// One `/proc` sample of the daemon.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: f64,
    rss_kib: u64,
    fds: u64,
}

fn sample(pid: u32, at: f64) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample { at, rss_kib, fds })
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// The daemon's JSON log lines.
fn log_lines(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn micros_of(text: &str) -> i64 {
    rfc3339_micros(text).unwrap_or_else(|| panic!("not an RFC 3339 UTC instant: {text}"))
}

/// RFC 3339 (`2026-11-27T12:00:00.123456Z` or with `+00:00`) → epoch µs,
/// without a date crate in the test binary.
fn rfc3339_micros(text: &str) -> Option<i64> {
    let text = text.trim_end_matches('Z').trim_end_matches("+00:00");
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>());
    let (h, min, s) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + min * 60 + s) * 1_000_000) + frac.parse::<i64>().ok()?)
}

/// Validity intervals of a toggled object's rows, and the first analysis
/// inside each (the one that must raise the finding).
async fn first_analyses(conn: &mut SqliteConnection, table: &str, filter: &str) -> Vec<i64> {
    let sql =
        format!("SELECT valid_from, valid_to FROM {table} WHERE source = 'soakfile' AND {filter} ORDER BY valid_from");
    let intervals = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *conn).await.expect("intervals");
    let mut firsts = Vec::new();
    for row in intervals {
        let from: i64 = row.get("valid_from");
        let to: Option<i64> = row.get("valid_to");
        let first = sqlx::query("SELECT MIN(at) FROM analyses WHERE at >= $1 AND ($2 IS NULL OR at < $2)")
            .bind(from)
            .bind(to)
            .fetch_one(&mut *conn)
            .await
            .expect("analyses")
            .get::<Option<i64>, _>(0);
        let before = sqlx::query("SELECT COUNT(*) FROM analyses WHERE at < $1")
            .bind(from)
            .fetch_one(&mut *conn)
            .await
            .expect("analyses")
            .get::<i64, _>(0);
        if let Some(first) = first
            && before > 0
        {
            firsts.push(first);
        }
    }
    firsts
}

struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn open_findings(report: &Value) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["status"] == "open")
        .map(|f| (f["fingerprint"].as_str().expect("fp").to_string(), f["severity"].as_str().expect("sev").to_string()))
        .collect()
}

#[test]
fn the_daemon_under_faulty_apis_stays_flat_and_loses_no_finding() {
    let seconds: u64 = std::env::var("ACCESSGRAPH_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed = seed_from_env("ACCESSGRAPH_SOAK_SEED", 0x50A4);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mocks = runtime.block_on(mocks(seed));
    let scratch = Scratch::new();
    let snapshot_path = scratch.path("soakfile.json");
    replace_json(&snapshot_path, &snapshot(false));
    let port = free_port();
    let config = scratch.write("soak.toml", &config_text(&mocks, "soak.db", "events.jsonl", port));
    let log = scratch.path("daemon.log");
    let mut command = Command::new(binary());
    command
        .args(["run", "--log-format", "json", "--grace-period", "45", "--config"])
        .arg(&config)
        .env_remove("ACCESSGRAPH_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"));
    for (key, value) in secrets(&mocks) {
        command.env(key, value);
    }
    let mut daemon = Running { child: command.spawn().expect("the daemon starts") };
    let pid = daemon.child.id();

    // The run: sample every second, toggle the snapshot every third.
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut toggled = false;
    let mut toggles = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            matches!(daemon.child.try_wait(), Ok(None)),
            "the daemon died:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        if let Some(s) = sample(pid, started.elapsed().as_secs_f64()) {
            samples.push(s);
        }
        if samples.len() % 3 == 0 {
            toggled = !toggled;
            toggles += 1;
            replace_json(&snapshot_path, &snapshot(toggled));
        }
    }

    // Drain: the APIs recover and the snapshot settles; wait until every
    // source synced after that, plus two more ticks for analyses.
    mocks.chaos.enabled.store(false, Ordering::Relaxed);
    replace_json(&snapshot_path, &snapshot(true));
    let calm = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_micros() as i64;
    let drain = Instant::now();
    loop {
        let synced_after_calm = api_get(port, "/api/v1/sources", None).and_then(|(status, body)| {
            let sources: Value = serde_json::from_str(&body).ok()?;
            let all = sources.as_array()?.iter().all(|s| {
                s["last_sync"]["status"] == "succeeded"
                    && s["last_sync"]["started_at"].as_str().is_some_and(|t| micros_of(t) > calm)
            });
            (status == 200 && all).then_some(())
        });
        if synced_after_calm.is_some() {
            break;
        }
        assert!(
            drain.elapsed() < CLIENT_TIMEOUT + Duration::from_secs(30),
            "the sources did not recover after the faults stopped"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(3));
    let drained = drain.elapsed();

    // SIGTERM: a clean stop.
    let term = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(term.success());
    let stop = Instant::now();
    let status = loop {
        if let Some(status) = daemon.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(stop.elapsed() < Duration::from_secs(60), "the daemon did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines = log_lines(&log);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "the daemon's exit after SIGTERM:\n{log_text}");
    let message = |l: &Value| l["fields"]["message"].as_str().unwrap_or_default().to_string();
    assert!(lines.iter().any(|l| message(l) == "stopped"), "the daemon logged its stop");
    assert!(!lines.iter().any(|l| message(l).starts_with("grace period over")), "work was abandoned at SIGTERM");
    assert!(
        !lines.iter().any(|l| l["level"] == "ERROR" && message(l) == "analysis failed"),
        "an analysis failed:\n{log_text}"
    );

    // Resources: flat over the second half.
    let half = &samples[samples.len() / 2..];
    let third = (half.len() / 3).max(1);
    let early_rss = median(half[..third].iter().map(|s| s.rss_kib).collect());
    let late_rss = median(half[half.len() - third..].iter().map(|s| s.rss_kib).collect());
    let early_fds = median(half[..third].iter().map(|s| s.fds).collect());
    let late_fds = median(half[half.len() - third..].iter().map(|s| s.fds).collect());
    let injected = &mocks.chaos.injected;

    // Ticks: every logged sync is one row of the same outcome.
    let db = scratch.path("soak.db");
    let (runs, failed_without_error, firsts_key, firsts_grant, analyses) = runtime.block_on(async {
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.expect("store");
        let rows = sqlx::query("SELECT source, status, COUNT(*) AS n FROM sync_runs GROUP BY source, status")
            .fetch_all(&mut conn)
            .await
            .expect("sync_runs");
        let runs: BTreeMap<(String, String), i64> =
            rows.iter().map(|r| ((r.get("source"), r.get("status")), r.get("n"))).collect();
        let failed_without_error =
            sqlx::query("SELECT COUNT(*) FROM sync_runs WHERE status = 'failed' AND (error IS NULL OR error = '')")
                .fetch_one(&mut conn)
                .await
                .expect("count")
                .get::<i64, _>(0);
        let key = first_analyses(&mut conn, "nodes", &format!("id = '{TOGGLED_KEY}'")).await;
        let grant =
            first_analyses(&mut conn, "edges", &format!("to_id = '{TOGGLED_RESOURCE}' AND kind = 'grant'")).await;
        let analyses =
            sqlx::query("SELECT COUNT(*) FROM analyses").fetch_one(&mut conn).await.expect("n").get::<i64, _>(0);
        conn.close().await.ok();
        (runs, failed_without_error, key, grant, analyses)
    });
    let mut logged: BTreeMap<(String, String), i64> = BTreeMap::new();
    for line in &lines {
        let outcome = match message(line).as_str() {
            "source synced" => "succeeded",
            m if m.starts_with("source sync failed") => "failed",
            _ => continue,
        };
        let source = line["fields"]["source"].as_str().unwrap_or_default().to_string();
        *logged.entry((source, outcome.to_string())).or_default() += 1;
    }
    assert_eq!(logged, runs, "syncs logged vs recorded");
    assert_eq!(failed_without_error, 0, "failed runs carry their error");
    assert!(!runs.contains_key(&("soakfile".to_string(), "failed".to_string())), "the local snapshot never fails");

    // Events: unique, each an outbox row, each finding's lifecycle in order.
    let events: Vec<Value> = std::fs::read_to_string(scratch.path("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("event line"))
        .collect();
    let succeeded: i64 = runs.iter().filter(|((_, s), _)| s == "succeeded").map(|(_, n)| n).sum();
    let failed: i64 = runs.iter().filter(|((_, s), _)| s == "failed").map(|(_, n)| n).sum();
    let curve: Vec<String> = samples
        .iter()
        .filter(|s| (s.at as u64).is_multiple_of(10) || samples.len() <= 30)
        .map(|s| format!("{:.0}s {} KiB {} fds", s.at, s.rss_kib, s.fds))
        .collect();
    eprintln!(
        "soak: {seconds} s, seed {seed}; {} requests, injected {} 5xx, {} timeouts, {} slow, {} malformed; \
         sync runs {runs:?} ({succeeded} ok, {failed} failed); {analyses} analyses; {} events; {toggles} toggles; \
         drain {drained:?}; RSS second half {early_rss} -> {late_rss} KiB, fds {early_fds} -> {late_fds}; samples: {curve:?}",
        injected.requests.load(Ordering::Relaxed),
        injected.server_errors.load(Ordering::Relaxed),
        injected.timeouts.load(Ordering::Relaxed),
        injected.slow.load(Ordering::Relaxed),
        injected.malformed.load(Ordering::Relaxed),
        events.len(),
    );
    let mut ids = BTreeSet::new();
    let mut lifecycle: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for event in &events {
        assert!(ids.insert(event["event_id"].as_str().expect("id").to_string()), "duplicate event {event}");
        lifecycle
            .entry(event["fingerprint"].as_str().expect("fp").to_string())
            .or_default()
            .push((event["event"].as_str().expect("kind").to_string(), event["at"].as_str().expect("at").to_string()));
    }
    for (fingerprint, events) in &lifecycle {
        let mut open = false;
        for (i, (kind, _)) in events.iter().enumerate() {
            let fine = match kind.as_str() {
                "opened" => i == 0,
                "updated" => open,
                "resolved" => open,
                "reopened" => !open && i > 0,
                _ => false,
            };
            assert!(fine, "finding {fingerprint}: events out of order: {events:?}");
            open = kind != "resolved";
        }
    }
    let raised = |rule: &str, object: &str| -> Vec<i64> {
        let mut at: Vec<i64> = events
            .iter()
            .filter(|e| {
                e["rule"] == rule && e["object"] == object && (e["event"] == "opened" || e["event"] == "reopened")
            })
            .map(|e| micros_of(e["at"].as_str().expect("at")))
            .collect();
        at.sort_unstable();
        at
    };
    assert_eq!(raised("secret.standing", TOGGLED_KEY), firsts_key, "the toggled key's finding, raised per appearance");
    assert_eq!(
        raised("drift.baseline", TOGGLED_RESOURCE),
        firsts_grant,
        "the toggled grant's drift, raised per appearance"
    );
    // After warm-up (every source synced once), findings of the mocked
    // sources never resolve: their data never changes, only fails to arrive.
    let warm = lines.iter().filter(|l| message(l) == "source synced").fold(
        BTreeMap::<String, String>::new(),
        |mut first, l| {
            let source = l["fields"]["source"].as_str().unwrap_or_default().to_string();
            first.entry(source).or_insert_with(|| l["timestamp"].as_str().unwrap_or_default().to_string());
            first
        },
    );
    assert_eq!(warm.len(), 4, "every source synced at least once: {warm:?}");
    let warm_at = warm.values().map(|t| micros_of(t)).max().unwrap_or(0) + 2_000_000;
    for event in &events {
        let at = micros_of(event["at"].as_str().expect("at"));
        let mocked = ["subject", "object"].iter().any(|k| {
            let id = event[*k].as_str().unwrap_or_default();
            !id.starts_with("soakfile:") && !id.starts_with("person:")
        });
        if at > warm_at && mocked && event["event"] == "resolved" {
            panic!("a finding of a mocked source resolved after warm-up (a failed sync read as removal?): {event}");
        }
    }

    // The end state equals two clean scans of the final mock state.
    let envs: Vec<(&str, String)> = secrets(&mocks).into_iter().collect();
    let env_refs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let fresh = scratch.write("fresh.toml", &config_text(&mocks, "fresh.db", "fresh.jsonl", free_port()));
    let fresh = fresh.display().to_string();
    let scan = |config: &str| {
        let output = run_with_env(&["scan", "--config", config, "--format", "json", "--no-file"], &env_refs);
        assert_eq!(code(&output), 0, "clean scan: {}", stderr(&output));
        json(&output)
    };
    scan(&fresh);
    let clean = scan(&fresh);
    let stored = run_with_env(
        &["findings", "--config", &config.display().to_string(), "--status", "open", "--format", "json"],
        &env_refs,
    );
    assert_eq!(code(&stored), 0, "{}", stderr(&stored));
    assert_eq!(open_findings(&json(&stored)), open_findings(&clean), "open findings after the soak vs a clean scan");

    assert!(failed > 0 || seconds < 60, "injected faults fail some ticks in a long run");
    assert!((late_rss as f64) < early_rss as f64 * 1.2, "RSS grew over the second half: {early_rss} -> {late_rss} KiB");
    assert!(late_fds < early_fds + 8, "descriptors grew over the second half: {early_fds} -> {late_fds}");
}
