//! `accessgraph run` as a process: signals (SIGHUP with a bad config keeps
//! the old one, SIGTERM stops cleanly) and two replicas on one PostgreSQL
//! database. The daemon's logic is tested in-process in the daemon crate;
//! these tests check what only a real process shows.

use super::common::*;
use serde_json::{Value, json};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        "identities": [
            {"id": "alice", "kind": "human", "name": "Alice", "email": "alice@acme.example", "active": true},
            {"id": "bot", "kind": "agent", "name": "Build bot", "owner": "alice@acme.example", "active": true}
        ],
        "resources": [{"id": "payments", "kind": "repo", "name": "payments"}],
        "grants": [{"principal": "bot", "resource": "payments", "actions": ["write"]}],
        "credentials": credentials
    })
}

/// Writes then renames, so a sync never reads a half-written snapshot.
fn replace_json(path: &Path, value: &Value) {
    let tmp = path.with_extension("tmp");
    write_json(&tmp, value);
    std::fs::rename(&tmp, path).expect("rename snapshot");
}

fn config_text(store_url: &str, snapshot: &Path, events: &Path, port: u16) -> String {
    format!(
        "[store]\nurl = {store_url:?}\n\n[[source]]\nname = \"forge\"\nkind = \"snapshot\"\n\
         schedule = \"*/1 * * * * *\"\npath = {:?}\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [[sink]]\nkind = \"jsonl\"\npath = {:?}\nmin_severity = \"low\"\n",
        snapshot.display().to_string(),
        events.display().to_string(),
    )
}

/// `GET path` on 127.0.0.1:port without a token.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    api_get(port, path, None)
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for: {what}");
}

struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(config: &Path, log: std::path::PathBuf) -> Daemon {
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary())
            .args(["run", "--config", &config.display().to_string(), "--grace-period", "5"])
            .env_remove("ACCESSGRAPH_CONFIG")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("the daemon starts");
        Daemon { child, log }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status();
        assert!(status.expect("kill runs").success(), "kill -{name}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then the exit code (within `timeout`).
    fn terminate(mut self, timeout: Duration) -> i32 {
        self.signal("TERM");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the daemon did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn a_bad_config_on_sighup_keeps_the_daemon_running_and_sigterm_stops_it() {
    let scratch = Scratch::new();
    let snapshot = scratch.path("forge.json");
    replace_json(&snapshot, &company(&["k1"]));
    let port = free_port();
    let store = format!("sqlite://{}", scratch.path("store.db").display());
    let config =
        scratch.write("accessgraph.toml", &config_text(&store, &snapshot, &scratch.path("events.jsonl"), port));
    let mut daemon = Daemon::start(&config, scratch.path("daemon.log"));
    wait_for("ready", Duration::from_secs(15), || get(port, "/readyz").is_some_and(|(s, _)| s == 200));

    scratch.write("accessgraph.toml", "[store]\nurl = 42\n\n[[source]]\nname = \"x\"\n");
    daemon.signal("HUP");
    wait_for("the reload is rejected", Duration::from_secs(5), || {
        daemon.log().contains("configuration reload rejected")
    });
    assert!(daemon.running(), "a bad config does not stop the daemon:\n{}", daemon.log());
    assert_eq!(get(port, "/healthz").map(|(s, _)| s), Some(200));
    let (status, body) = get(port, "/api/v1/sources").expect("sources answer");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"forge\""), "the old config is still in force: {body}");
    // It keeps syncing on the old schedule.
    let syncs = |log: &str| log.matches("source synced").count();
    let before = syncs(&daemon.log());
    wait_for("another sync", Duration::from_secs(5), || syncs(&daemon.log()) > before);

    let log = daemon.log.clone();
    let code = daemon.terminate(Duration::from_secs(10));
    let log = std::fs::read_to_string(log).unwrap_or_default();
    assert_eq!(code, 0, "SIGTERM is a clean stop:\n{log}");
    assert!(log.contains("stopped"), "{log}");
}

/// The admin URL of the test PostgreSQL server, or None (skip) when it is
/// unreachable outside CI.
fn postgres_admin() -> Option<String> {
    let admin = std::env::var("ACCESSGRAPH_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let address = admin.split('@').nth(1).and_then(|rest| rest.split('/').next()).unwrap_or("127.0.0.1:5432");
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(address)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok());
    if reachable {
        return Some(admin);
    }
    if std::env::var_os("CI").is_some() {
        panic!("PostgreSQL at {admin} is required under CI");
    }
    eprintln!("notice: skipping the replica test: PostgreSQL at {admin} is unreachable");
    None
}

fn with_database(admin: &str, name: &str) -> String {
    let (main, query) = admin.split_once('?').map_or((admin, None), |(m, q)| (m, Some(q)));
    let start = main.find("://").map_or(0, |i| i + 3);
    let base = main[start..].find('/').map_or(main, |slash| &main[..start + slash]);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

async fn admin_exec(admin: &str, sql: String) {
    use sqlx::Connection as _;
    let mut conn = sqlx::postgres::PgConnection::connect(admin).await.expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("admin statement");
    let _ = conn.close().await;
}

#[test]
fn two_daemon_processes_on_one_postgres_sync_each_tick_once_and_file_each_event_once() {
    let Some(admin) = postgres_admin() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let name = format!("ag_e2e_{}_{nanos}", std::process::id());
    runtime.block_on(admin_exec(&admin, format!("CREATE DATABASE {name}")));
    let url = with_database(&admin, &name);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let scratch = Scratch::new();
        let snapshot = scratch.path("forge.json");
        let events = scratch.path("events.jsonl");
        replace_json(&snapshot, &company(&["k1"]));
        let ports = [free_port(), free_port()];
        let configs: Vec<_> = ports
            .iter()
            .enumerate()
            .map(|(i, port)| scratch.write(&format!("replica{i}.toml"), &config_text(&url, &snapshot, &events, *port)))
            .collect();
        // The first replica migrates the store; the second starts on it.
        let one = Daemon::start(&configs[0], scratch.path("one.log"));
        wait_for("replica one serves", Duration::from_secs(15), || get(ports[0], "/healthz").is_some());
        let two = Daemon::start(&configs[1], scratch.path("two.log"));
        wait_for("replica two serves", Duration::from_secs(15), || get(ports[1], "/healthz").is_some());
        std::thread::sleep(Duration::from_millis(1500));
        replace_json(&snapshot, &company(&["k1", "k2"]));
        std::thread::sleep(Duration::from_millis(1500));
        replace_json(&snapshot, &company(&["k2"]));
        std::thread::sleep(Duration::from_millis(2000));
        let logs = format!("{}\n---\n{}", one.log(), two.log());
        assert_eq!(one.terminate(Duration::from_secs(10)), 0, "{logs}");
        assert_eq!(two.terminate(Duration::from_secs(10)), 0, "{logs}");

        let (runs, undelivered, retried): (Vec<i64>, i64, i64) = runtime.block_on(async {
            use sqlx::{Connection as _, Row as _};
            let mut conn = sqlx::postgres::PgConnection::connect(&url).await.expect("connect");
            let runs = sqlx::query("SELECT started_at FROM sync_runs WHERE source = 'forge'")
                .fetch_all(&mut conn)
                .await
                .expect("runs")
                .iter()
                .map(|row| row.get::<i64, _>("started_at"))
                .collect();
            let undelivered: i64 = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL")
                .fetch_one(&mut conn)
                .await
                .expect("undelivered")
                .get("n");
            let retried: i64 = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE attempts > 1")
                .fetch_one(&mut conn)
                .await
                .expect("retried")
                .get("n");
            let _ = conn.close().await;
            (runs, undelivered, retried)
        });
        assert!(runs.len() >= 3, "{runs:?}\n{logs}");
        let mut ticks: Vec<i64> = runs.iter().map(|micros| micros / 1_000_000).collect();
        ticks.sort();
        let all = ticks.len();
        ticks.dedup();
        assert_eq!(ticks.len(), all, "each tick synced once across both replicas: {runs:?}");
        assert!(logs.contains("source synced"));
        assert_eq!(retried, 0, "each outbox row was delivered in one attempt");

        let lines = scratch.events();
        let mut ids: Vec<String> = lines.iter().map(|e| e["event_id"].to_string()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), lines.len(), "no event delivered twice: {lines:#?}");
        let mut changes: Vec<String> = lines.iter().map(|e| format!("{} {}", e["event"], e["fingerprint"])).collect();
        changes.sort();
        changes.dedup();
        assert_eq!(changes.len(), lines.len(), "no change enqueued twice (by both replicas): {lines:#?}");
        assert!(lines.iter().any(|e| e["event"] == "opened" && e["object"] == "forge:api_key:k2"), "{lines:#?}");
        assert!(lines.iter().any(|e| e["event"] == "resolved" && e["object"] == "forge:api_key:k1"), "{lines:#?}");
        assert_eq!(undelivered, 0, "the outbox drained");
    }));
    runtime.block_on(admin_exec(&admin, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
