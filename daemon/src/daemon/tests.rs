//! The daemon in-process: short schedules (every second) against snapshot
//! sources in temporary folders, the HTTP API on 127.0.0.1:0, reloads
//! through the reload channel, and two replicas on one PostgreSQL database.

use super::metrics::Skip;
use super::*;
use crate::testdb::{Kind, TestDb};
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::sync::oneshot;

const TOKEN: &str = "test-token-0123456789";

fn company(credentials: &[&str]) -> Value {
    let credentials: Vec<Value> = credentials
        .iter()
        .map(|id| {
            json!({"id": id, "kind": "api_key", "holder": "bot", "created_at": "2025-01-01T00:00:00Z",
                   "last_used_at": null, "expires_at": null})
        })
        .collect();
    json!({
        "version": 1,
        "system": "forge",
        "collected_at": "2026-11-20T00:00:00Z",
        "identities": [
            {"id": "alice", "kind": "human", "name": "Alice", "email": "alice@acme.example", "active": true},
            {"id": "bot", "kind": "agent", "name": "Build bot", "owner": "alice@acme.example", "active": true}
        ],
        "groups": [{"id": "eng", "name": "Engineering", "members": ["alice", "bot"]}],
        "resources": [{"id": "payments", "kind": "repo", "name": "payments", "environment": "prod"}],
        "grants": [{"principal": "eng", "resource": "payments", "actions": ["write"]}],
        "credentials": credentials
    })
}

fn write_json(path: &Path, value: &Value) {
    // Write then rename: a sync never reads a half-written file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value).expect("json")).expect("write snapshot");
    std::fs::rename(&tmp, path).expect("rename snapshot");
}

/// A scratch folder holding a config, snapshot files, a token file and the events file.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).expect("token file");
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the config: `sources` are (name, schedule, snapshot file).
    fn config(&self, store_url: &str, sources: &[(&str, &str, &str)], token: bool) -> PathBuf {
        let mut text = format!("[store]\nurl = {store_url:?}\n\n");
        for (name, schedule, file) in sources {
            text.push_str(&format!(
                "[[source]]\nname = {name:?}\nkind = \"snapshot\"\nschedule = {schedule:?}\npath = {file:?}\n\n"
            ));
        }
        if token {
            text.push_str("[server]\ntoken = { file = \"token\" }\n\n");
        }
        text.push_str("[[sink]]\nkind = \"jsonl\"\npath = \"events.jsonl\"\nmin_severity = \"low\"\n");
        let path = self.path("accessgraph.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.path("events.jsonl")).unwrap_or_default();
        text.lines().map(|line| serde_json::from_str(line).expect("event line is JSON")).collect()
    }
}

fn options() -> RunOptions {
    RunOptions {
        grace: Duration::from_secs(3),
        max_jitter: Duration::from_millis(50),
        outbox_poll: Duration::from_millis(200),
    }
}

/// A daemon serving in this process.
struct Running {
    addr: SocketAddr,
    store: Store,
    stop: Option<oneshot::Sender<()>>,
    reload: mpsc::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), RunError>>,
    client: reqwest::Client,
}

async fn start(config_path: &Path, options: RunOptions) -> Running {
    let config = accessgraph_config::load(config_path).expect("valid config");
    let store = Store::open(&config.store.url).await.expect("open store");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let (reload, reloads) = mpsc::channel(1);
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = tokio::spawn(serve(config, store.clone(), listener, options, reloads, shutdown));
    Running { addr, store, stop: Some(stop), reload, task, client: reqwest::Client::new() }
}

impl Running {
    async fn get_with(&self, path: &str, token: Option<&str>) -> (u16, String, String) {
        let mut request = self.client.get(format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        (status, content_type, response.text().await.expect("body"))
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.get_with(path, Some(TOKEN)).await;
        (status, body)
    }

    async fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {body}"))
    }

    async fn metrics(&self) -> HashMap<String, f64> {
        let (status, content_type, body) = self.get_with("/metrics", Some(TOKEN)).await;
        assert_eq!(status, 200, "{body}");
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        parse_prometheus(&body)
    }

    /// Stops the daemon; returns how long stopping took.
    async fn stop(mut self) -> Duration {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.task)
            .await
            .expect("the daemon stops")
            .expect("the task did not panic")
            .expect("the daemon ran");
        started.elapsed()
    }
}

/// Parses the Prometheus text format strictly enough to catch malformed
/// output: comments are HELP/TYPE with a valid type, every sample is
/// `name{label="value",…} number` and belongs to a declared family.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    fn valid_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name, value) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("comment without a metric name: {line}"));
            assert!(valid_name(name), "bad metric name: {line}");
            match keyword {
                Some("HELP") => assert!(value.is_some_and(|v| !v.is_empty()), "empty HELP: {line}"),
                Some("TYPE") => {
                    let kind = value.unwrap_or_default();
                    assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line}");
                    assert!(families.insert(name.to_string(), kind.to_string()).is_none(), "TYPE twice: {line}");
                }
                _ => panic!("unknown comment: {line}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let name = series.split('{').next().unwrap_or_default();
        assert!(valid_name(name), "bad sample name: {line}");
        assert!(families.contains_key(name), "sample before its TYPE: {line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("bad labels: {line}"));
            // key="value" pairs; values may hold escaped quotes.
            let mut rest = inner;
            while !rest.is_empty() {
                let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(valid_name(key), "bad label name: {line}");
                let mut end = None;
                let mut escaped = false;
                for (i, c) in after.char_indices() {
                    match (escaped, c) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.unwrap_or_else(|| panic!("unterminated label value: {line}"));
                rest = after[end + 1..].strip_prefix(',').unwrap_or(&after[end + 1..]);
            }
        }
        assert!(samples.insert(series.to_string(), value).is_none(), "sample twice: {line}");
    }
    samples
}

async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// (status, started_at in micros) of every sync run of `source`.
async fn runs(store: &Store, source: &str) -> Vec<(String, i64)> {
    let rows = sqlx::query("SELECT status, started_at FROM sync_runs WHERE source = $1 ORDER BY id")
        .bind(source)
        .fetch_all(store.pool())
        .await
        .expect("sync runs");
    rows.iter().map(|r| (r.try_get("status").expect("status"), r.try_get("started_at").expect("started"))).collect()
}

async fn count(store: &Store, sql: &str) -> i64 {
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(store.pool()).await.expect("count");
    row.try_get("n").expect("n")
}

fn sqlite_url(scratch: &Scratch) -> String {
    format!("sqlite://{}", scratch.path("store.db").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sources_sync_at_their_own_times() {
    let scratch = Scratch::new();
    write_json(&scratch.path("a.json"), &company(&["k1"]));
    write_json(&scratch.path("b.json"), &company(&["k2"]));
    let config = scratch.config(
        &sqlite_url(&scratch),
        &[("every", "*/1 * * * * *", "a.json"), ("even", "0/2 * * * * *", "b.json")],
        false,
    );
    let daemon = start(&config, options()).await;
    tokio::time::sleep(Duration::from_millis(4300)).await;
    let every = runs(&daemon.store, "every").await;
    let even = runs(&daemon.store, "even").await;
    daemon.stop().await;
    assert!(every.len() >= 3, "every second: {every:?}");
    assert!((1..=3).contains(&even.len()), "every other second: {even:?}");
    assert!(every.len() > even.len());
    assert!(every.iter().chain(&even).all(|(status, _)| status == "succeeded"));
    for (_, started) in &even {
        assert_eq!((started / 1_000_000) % 2, 0, "`even` syncs only on even seconds");
    }
    for list in [&every, &even] {
        let mut seconds: Vec<i64> = list.iter().map(|(_, s)| s / 1_000_000).collect();
        let all = seconds.len();
        seconds.dedup();
        assert_eq!(seconds.len(), all, "one sync per tick");
        // Jitter keeps a sync within a tenth of the period after its tick.
        assert!(list.iter().all(|(_, s)| s % 1_000_000 < 500_000), "{list:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sync_is_not_started_twice_and_missed_ticks_are_not_replayed() {
    let scratch = Scratch::new();
    // A FIFO makes the snapshot read block until the test writes to it.
    let fifo = scratch.path("slow.json");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    let config = scratch.config(&sqlite_url(&scratch), &[("slow", "*/1 * * * * *", "slow.json")], true);
    let daemon = start(&config, options()).await;
    eventually("the first sync starts", Duration::from_secs(3), || async {
        daemon.json("/api/v1/sources").await[0]["syncing"] == true
    })
    .await;
    // Two more ticks pass while the sync is stuck.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(runs(&daemon.store, "slow").await.is_empty(), "nothing lands while the sync runs");
    let (status, body) = daemon.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("source `slow`: its first sync is running"), "{body}");

    // Release the sync, and put a plain file in the FIFO's place for later ticks.
    let regular = scratch.path("later.json");
    write_json(&regular, &company(&["k1"]));
    let data = serde_json::to_vec(&company(&["k1"])).expect("json");
    let fifo_path = fifo.clone();
    tokio::task::spawn_blocking(move || std::fs::write(&fifo_path, data)).await.expect("join").expect("feed fifo");
    std::fs::rename(&regular, &fifo).expect("replace the fifo");

    eventually("the slow sync lands", Duration::from_secs(3), || async {
        !runs(&daemon.store, "slow").await.is_empty()
    })
    .await;
    let first_runs = runs(&daemon.store, "slow").await;
    assert_eq!(first_runs.len(), 1, "one sync, not one per tick that passed: {first_runs:?}");
    let metrics = daemon.metrics().await;
    assert!(metrics["accessgraph_sync_ticks_missed_total{source=\"slow\"}"] >= 2.0, "{metrics:?}");
    eventually("ready after the first sync", Duration::from_secs(3), || async { daemon.get("/readyz").await.0 == 200 })
        .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_already_running_skips_the_tick() {
    let scratch = Scratch::new();
    write_json(&scratch.path("a.json"), &company(&["k1"]));
    let path = scratch.config(&sqlite_url(&scratch), &[("forge", "0 0 0 1 1 *", "a.json")], false);
    let config = accessgraph_config::load(&path).expect("config");
    let store = Store::open(&config.store.url).await.expect("store");
    let shared = Shared::new(config.clone(), None, store.clone());
    let source = &config.sources[0];
    let guard = shared.sync_guard("forge");
    let held = guard.lock().await;
    scheduler::run_tick(&shared, source, chrono::Utc::now()).await;
    assert!(runs(&store, "forge").await.is_empty(), "skipped while another sync of the source runs");
    drop(held);
    let tick = chrono::Utc::now();
    scheduler::run_tick(&shared, source, tick).await;
    assert_eq!(runs(&store, "forge").await.len(), 1);
    // The same tick again (a replica whose jitter fired later) is not re-synced.
    scheduler::run_tick(&shared, source, tick).await;
    assert_eq!(runs(&store, "forge").await.len(), 1);
    let text = metrics::render(&shared).await;
    let samples = parse_prometheus(&text);
    for why in [Skip::StillRunning, Skip::AlreadySynced] {
        let key = format!("accessgraph_sync_skipped_total{{source=\"forge\",reason=\"{}\"}}", why.as_str());
        assert_eq!(samples.get(&key), Some(&1.0), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_sync_lands_nothing() {
    let scratch = Scratch::new();
    let fifo = scratch.path("slow.json");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let config = scratch.config(&sqlite_url(&scratch), &[("slow", "*/1 * * * * *", "slow.json")], false);
    let daemon = start(&config, RunOptions { grace: Duration::from_millis(300), ..options() }).await;
    eventually("the sync starts", Duration::from_secs(3), || async {
        daemon.json("/api/v1/sources").await[0]["syncing"] == true
    })
    .await;
    let store = daemon.store.clone();
    let took = daemon.stop().await;
    assert!(took < Duration::from_secs(3), "the grace period bounds the stop: {took:?}");
    // Unblock the abandoned read so the runtime can end.
    let data = serde_json::to_vec(&company(&["k1"])).expect("json");
    tokio::task::spawn_blocking(move || std::fs::write(&fifo, data)).await.expect("join").expect("feed fifo");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(runs(&store, "slow").await.is_empty(), "an abandoned sync records nothing");
    assert_eq!(count(&store, "SELECT COUNT(*) AS n FROM nodes").await, 0, "and writes no rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_answers_with_token_and_metrics_move() {
    let scratch = Scratch::new();
    write_json(&scratch.path("forge.json"), &company(&["k1"]));
    let config = scratch.config(&sqlite_url(&scratch), &[("forge", "*/1 * * * * *", "forge.json")], true);
    let daemon = start(&config, options()).await;

    // Open endpoints.
    let (status, _, body) = daemon.get_with("/healthz", None).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // Everything else needs the token.
    for path in [
        "/metrics",
        "/api/v1/sources",
        "/api/v1/findings",
        "/api/v1/who-can?resource=forge:repo:payments",
        "/api/v1/what-can?identity=forge:user:alice",
        "/api/v1/path?from=forge:user:alice&to=forge:repo:payments",
        "/reports/latest",
    ] {
        let (status, _, body) = daemon.get_with(path, None).await;
        assert_eq!(status, 401, "{path} without a token: {body}");
        let (status, _, _) = daemon.get_with(path, Some("wrong-token")).await;
        assert_eq!(status, 401, "{path} with a wrong token");
        assert!(!body.contains(TOKEN));
    }

    eventually("the first analysis", Duration::from_secs(5), || async { daemon.get("/reports/latest").await.0 == 200 })
        .await;
    let (status, body) = daemon.get("/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));

    let sources = daemon.json("/api/v1/sources").await;
    assert_eq!(sources[0]["name"], "forge");
    assert_eq!(sources[0]["kind"], "snapshot");
    assert_eq!(sources[0]["schedule"], "*/1 * * * * *");
    assert_eq!(sources[0]["last_sync"]["status"], "succeeded");
    assert_eq!(sources[0]["last_sync"]["stats"]["nodes"], 5, "{sources}");
    assert!(sources[0]["last_sync"]["started_at"].is_string());

    let findings = daemon.json("/api/v1/findings").await;
    let list = findings["findings"].as_array().expect("findings");
    assert!(list.iter().any(|f| f["rule"] == "secret.standing" && f["object"] == "forge:api_key:k1"), "{findings}");
    assert!(list.iter().all(|f| f["status"] == "open"));
    assert!(findings["summary"].is_object());
    let secret = daemon.json("/api/v1/findings?status=all&rule=secret.*").await;
    assert!(
        secret["findings"]
            .as_array()
            .expect("list")
            .iter()
            .all(|f| f["rule"].as_str().is_some_and(|r| r.starts_with("secret.")))
    );
    let (status, body) = daemon.get("/api/v1/findings?status=bogus").await;
    assert_eq!(status, 400, "{body}");

    let who = daemon.json("/api/v1/who-can?resource=forge:repo:payments&action=write").await;
    let access = who["access"].as_array().expect("access");
    assert!(access.iter().any(|row| row["principal"] == "forge:agent:bot"), "{who}");
    assert!(access.iter().all(|row| row["action"] == "write"));
    let (status, _) = daemon.get("/api/v1/who-can").await;
    assert_eq!(status, 400, "resource is required");
    let (status, body) = daemon.get("/api/v1/who-can?resource=forge:repo:nope").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = daemon.get("/api/v1/who-can?resource=forge:repo:payments&at=yesterday").await;
    assert_eq!(status, 400);
    let (status, _) = daemon.get("/api/v1/who-can?resource=forge:repo:payments&at=2000-01-01T00:00:00Z").await;
    assert_eq!(status, 404, "nothing existed then");

    let what = daemon.json("/api/v1/what-can?identity=forge:agent:bot").await;
    assert!(what["access"].as_array().expect("access").iter().any(|row| row["resource"] == "forge:repo:payments"));
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let path = daemon.json(&format!("/api/v1/path?from=forge:agent:bot&to=forge:repo:payments&at={soon}")).await;
    let hops = path["path"].as_array().expect("a path");
    assert_eq!(hops.first(), Some(&json!("forge:agent:bot")));
    assert_eq!(hops.last(), Some(&json!("forge:repo:payments")));
    let (status, _) = daemon.get("/api/v1/path?from=forge:agent:bot").await;
    assert_eq!(status, 400);

    let (status, content_type, body) = daemon.get_with("/reports/latest", Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(body.contains("secret.standing"));
    let (status, content_type, _) = daemon.get_with("/reports/latest?format=markdown", Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/markdown"));
    let (status, _) = daemon.get("/nope").await;
    assert_eq!(status, 404);

    let before = daemon.metrics().await;
    let syncs = "accessgraph_syncs_total{source=\"forge\",status=\"succeeded\"}";
    assert!(before[syncs] >= 1.0, "{before:?}");
    assert!(before.contains_key("accessgraph_sync_duration_seconds{source=\"forge\"}"));
    assert!(before.keys().any(|k| k.starts_with("accessgraph_findings_open{rule=\"secret.standing\"")), "{before:?}");
    assert_eq!(before["accessgraph_posture_standing_secrets"], 1.0);
    assert!(before.contains_key("accessgraph_posture_time_bound_share"));
    assert!(before.contains_key("accessgraph_posture_ownerless"));
    assert!(before.contains_key("accessgraph_posture_governed_systems"));
    assert_eq!(before["accessgraph_store_up"], 1.0);
    let seen = before[syncs];
    eventually("metrics move after another sync", Duration::from_secs(4), || async {
        daemon.metrics().await.get(syncs).is_some_and(|n| *n > seen)
    })
    .await;
    // A second key: the posture figures move with the next analysis.
    write_json(&scratch.path("forge.json"), &company(&["k1", "k2"]));
    eventually("posture moves", Duration::from_secs(4), || async {
        daemon.metrics().await.get("accessgraph_posture_standing_secrets") == Some(&2.0)
    })
    .await;
    eventually("the events are delivered", Duration::from_secs(4), || async {
        scratch.events().iter().any(|e| e["event"] == "opened" && e["object"] == "forge:api_key:k2")
    })
    .await;
    eventually("the outbox drains", Duration::from_secs(4), || async {
        daemon.metrics().await.get("accessgraph_outbox_pending") == Some(&0.0)
    })
    .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_a_failing_source() {
    let scratch = Scratch::new();
    write_json(&scratch.path("ok.json"), &company(&["k1"]));
    std::fs::write(scratch.path("broken.json"), "{ not json").expect("broken snapshot");
    let config = scratch.config(
        &sqlite_url(&scratch),
        &[("ok", "*/1 * * * * *", "ok.json"), ("broken", "*/1 * * * * *", "broken.json")],
        false,
    );
    let daemon = start(&config, options()).await;
    // Only the broken source is named, once the good one has synced (while
    // its first sync runs, readiness may name it too).
    eventually("the broken source fails and only it is named", Duration::from_secs(8), || async {
        let (status, body) = daemon.get("/readyz").await;
        status == 503 && body.contains("source `broken`: its last sync failed") && !body.contains("`ok`")
    })
    .await;
    let sources = daemon.json("/api/v1/sources").await;
    let broken = sources.as_array().expect("list").iter().find(|s| s["name"] == "broken").expect("broken").clone();
    assert_eq!(broken["last_sync"]["status"], "failed");
    assert!(broken["last_sync"]["error"].as_str().is_some_and(|e| e.contains("broken.json")), "{broken}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_on_reload_keeps_the_old_one() {
    let scratch = Scratch::new();
    write_json(&scratch.path("a.json"), &company(&["k1"]));
    write_json(&scratch.path("b.json"), &company(&["k2"]));
    let url = sqlite_url(&scratch);
    let config = scratch.config(&url, &[("alpha", "*/1 * * * * *", "a.json")], false);
    let daemon = start(&config, options()).await;
    eventually("alpha syncs", Duration::from_secs(3), || async { !runs(&daemon.store, "alpha").await.is_empty() })
        .await;

    std::fs::write(&config, "[store]\nurl = 42\n[[source]]\nname = \"x\"\n").expect("bad config");
    daemon.reload.send(()).await.expect("reload");
    eventually("the reload is rejected", Duration::from_secs(3), || async {
        daemon.metrics().await.get("accessgraph_config_reloads_total{result=\"rejected\"}") == Some(&1.0)
    })
    .await;
    let before = runs(&daemon.store, "alpha").await.len();
    eventually("alpha keeps syncing", Duration::from_secs(3), || async {
        runs(&daemon.store, "alpha").await.len() > before
    })
    .await;
    let names: Vec<Value> =
        daemon.json("/api/v1/sources").await.as_array().expect("list").iter().map(|s| s["name"].clone()).collect();
    assert_eq!(names, [json!("alpha")]);

    scratch.config(&url, &[("alpha", "*/1 * * * * *", "a.json"), ("beta", "*/1 * * * * *", "b.json")], false);
    daemon.reload.send(()).await.expect("reload");
    eventually("beta syncs after a good reload", Duration::from_secs(4), || async {
        !runs(&daemon.store, "beta").await.is_empty()
    })
    .await;
    assert_eq!(daemon.metrics().await.get("accessgraph_config_reloads_total{result=\"applied\"}"), Some(&1.0));
    daemon.stop().await;
}

/// Two replicas on one PostgreSQL database, a tick every second, the source
/// changing under them: each tick syncs once and each event is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sync_each_tick_once_and_deliver_each_event_once() {
    let Some(db) = TestDb::new(Kind::Postgres).await else {
        return;
    };
    let url = db.url.clone();
    let outcome = tokio::spawn(async move {
        let scratch = Scratch::new();
        write_json(&scratch.path("forge.json"), &company(&["k1"]));
        let config = scratch.config(&url, &[("forge", "*/1 * * * * *", "forge.json")], false);
        let one = start(&config, options()).await;
        let two = start(&config, options()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        write_json(&scratch.path("forge.json"), &company(&["k1", "k2"]));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        write_json(&scratch.path("forge.json"), &company(&["k2"]));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let store = one.store.clone();
        eventually("the outbox drains", Duration::from_secs(5), || async {
            count(&store, "SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL").await == 0
        })
        .await;
        let metrics = [one.metrics().await, two.metrics().await];
        one.stop().await;
        two.stop().await;

        let list = runs(&store, "forge").await;
        assert!(list.len() >= 3, "{list:?}");
        let mut per_tick: BTreeMap<i64, u32> = BTreeMap::new();
        for (_, started) in &list {
            *per_tick.entry(started / 1_000_000).or_default() += 1;
        }
        assert!(per_tick.values().all(|n| *n == 1), "one sync per tick across replicas: {per_tick:?}");
        let synced_by: Vec<f64> = metrics
            .iter()
            .map(|m| m.get("accessgraph_syncs_total{source=\"forge\",status=\"succeeded\"}").copied().unwrap_or(0.0))
            .collect();
        // Metrics were read before the stop: a tick may still land in between.
        let counted = synced_by.iter().sum::<f64>() as usize;
        assert!(counted <= list.len() && list.len() - counted <= 2, "{synced_by:?} vs {} runs", list.len());
        let skips: f64 = metrics
            .iter()
            .flat_map(|m| m.iter())
            .filter(|(k, _)| k.starts_with("accessgraph_sync_skipped_total"))
            .map(|(_, v)| *v)
            .sum();
        assert!(skips >= 1.0, "the other replica stood aside at least once");

        let rows = count(&store, "SELECT COUNT(*) AS n FROM outbox").await;
        assert_eq!(count(&store, "SELECT COUNT(*) AS n FROM outbox WHERE attempts <> 1").await, 0, "one attempt each");
        let events = scratch.events();
        assert_eq!(events.len() as i64, rows, "one line per outbox row: {events:#?}");
        let mut ids: Vec<&str> = events.iter().filter_map(|e| e["event_id"].as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), events.len(), "no event delivered twice");
        let about = |event: &str, key: &str| {
            events.iter().filter(|e| e["event"] == event && e["object"] == format!("forge:api_key:{key}")).count()
        };
        assert!(about("opened", "k2") >= 1, "{events:#?}");
        assert!(about("resolved", "k1") >= 1, "{events:#?}");
        assert_eq!(about("opened", "k1"), about("resolved", "k1"), "each finding about k1 opened and resolved");
        // Each state change is queued once, even with two analyses per change
        // (nothing reopens here, so a finding opens and resolves at most once).
        let mut seen = BTreeMap::new();
        for e in events.iter().filter(|e| e["event"] == "opened" || e["event"] == "resolved") {
            *seen.entry((e["fingerprint"].to_string(), e["event"].to_string())).or_insert(0) += 1;
        }
        assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    })
    .await;
    db.cleanup().await;
    if let Err(error) = outcome
        && error.is_panic()
    {
        std::panic::resume_unwind(error.into_panic());
    }
}
