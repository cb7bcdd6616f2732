//! Crash safety: `accessgraph scan` killed with SIGKILL at seeded-random
//! points, again and again on the same store, then checked.
//!
//! The company is the demo (five snapshot sources) plus a synthetic IdP and
//! app estate (`accessgraph_daemon::synth`), whose app export alternates
//! between two versions so that every run writes: rows close and open,
//! findings resolve and reopen, events queue and go out. Sinks: `jsonl`
//! (every event) and a `webhook` on a wiremock server (critical events).
//!
//! After every kill the store must satisfy (SQLite, as the scan left it):
//!
//! - `PRAGMA integrity_check` is `ok`;
//! - **no half-written sync**: a sync is its `sync_runs` row plus the node
//!   and edge rows it opened (`valid_from` = its instant) and closed
//!   (`valid_to` = its instant). For every succeeded run, the rows stamped
//!   with its instant are exactly as many as its recorded stats say; every
//!   instant stamped on a row of a source is the instant of a succeeded run
//!   of that source (no rows without their run); a source's current slice
//!   (`valid_to IS NULL`) holds exactly the nodes + edges its latest run
//!   recorded; no run is recorded as failed (the input is valid);
//! - **findings and outbox agree**: no outbox row names a finding that does
//!   not exist; no two unresolved findings share (rule, subject, object);
//!   each finding's last lifecycle event is the event of its newest outbox
//!   row for the `jsonl` sink (which takes every finding);
//! - **sinks**: every `jsonl` line parses, names an outbox row of that sink
//!   with the same fingerprint and event, and appears once; at most one
//!   claim's run of lines (appended at once, being acknowledged when the
//!   kill came: [`RUN_LIMIT`]) is not yet marked delivered, and the clean
//!   scans acknowledge them without writing them again. Each webhook
//!   delivery names a webhook outbox row; replays
//!   are bounded by the kills (one in-flight delivery per kill at most).
//!
//! Finally two clean scans on the crashed store (at T and T + 1 min) are
//! compared with the same two scans on a fresh store: the findings of the
//! second scan (fingerprint, status, severity) are identical, and those of
//! the first are identical except `drift.baseline` (a fresh store has no
//! previous snapshot, so it dates grants instead). Every outbox row is then
//! delivered, every `jsonl` event exactly once, every webhook event at
//! least once.
//!
//! `ACCESSGRAPH_CRASH_SEED=N` replays a run's kill points.

use super::common::*;
use accessgraph_daemon::synth;
use serde_json::Value;
use sqlx::{Connection, Row, SqliteConnection};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Kills required.
const KILLS: usize = 24;
/// Most runs of the kill loop (some end before their kill point); the
/// whole test takes 40-55 s in a debug build on a loaded 2-core machine.
const MAX_RUNS: usize = 60;
/// The synthetic part: big enough that a scan takes a few hundred ms in a
/// debug build, small enough for two dozen of them.
const SIZE: synth::Size = synth::Size { people: 30, agents: 5, resources: 16, direct_grants_per_person: 5 };
const SYNTH_SEED: u64 = 11;
/// The scans' `--now`: run `i` is at T0 + i minutes.
const T0: i64 = 1_795_780_800; // 2026-11-27T12:00:00Z
const SOURCES: usize = 7;

fn at(minutes: i64) -> String {
    let secs = T0 + minutes * 60;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // 2026-11-27 is day 20_784 since the epoch; the test stays within it.
    assert_eq!(days, 20_784, "the test's instants stay on 2026-11-27");
    format!("2026-11-27T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn micros(minutes: i64) -> i64 {
    (T0 + minutes * 60) * 1_000_000
}

/// The demo plus the synthetic company, with two configs sharing the
/// inputs: `crash.toml` (store and sinks under attack) and `reference.toml`
/// (a fresh store, never interrupted).
struct Company {
    scratch: Scratch,
}

impl Company {
    fn new(hook: &str) -> Company {
        let scratch = demo_scratch();
        let synth_dir = scratch.path("synth");
        synth::generate(&synth_dir, SIZE, SYNTH_SEED).expect("generate the synthetic company");
        let demo = std::fs::read_to_string(scratch.path("accessgraph.toml")).expect("demo config");
        // One catalog and one policy: the demo's plus the synthetic ones,
        // the latter scoped to the `apps` system so the demo keeps its drift.
        let mut agents = std::fs::read_to_string(scratch.path("agents.toml")).expect("agents");
        agents.push('\n');
        agents.push_str(&std::fs::read_to_string(synth_dir.join("agents.toml")).expect("synth agents"));
        scratch.write("agents.toml", &agents);
        let mut policy = std::fs::read_to_string(scratch.path("policy.cedar")).expect("policy");
        policy.push_str(
            "\npermit (principal, action in [Action::\"read\", Action::\"write\"], resource) when { resource.system == \"apps\" };\n\
             permit (principal, action, resource) when { resource.system == \"apps\" && resource.environment == \"dev\" };\n\
             permit (principal in Group::\"idp:group:div0\", action, resource) when { resource.system == \"apps\" };\n\
             forbid (principal, action, resource) when { resource.system == \"apps\" && principal.kind == \"agent\" && resource.data_domains.contains(\"pii\") };\n",
        );
        scratch.write("policy.cedar", &policy);
        let company = Company { scratch };
        company.set_apps_version(0);
        for (name, store, events, hook) in [
            ("crash.toml", "crash.db", "crash.jsonl", Some(hook)),
            ("reference.toml", "reference.db", "reference.jsonl", None),
        ] {
            let mut text = String::new();
            for line in demo.lines() {
                if line.trim_start().starts_with("url") {
                    text.push_str(&format!("url = \"sqlite://{store}\"\n"));
                } else if line.trim_start().starts_with("governs") {
                    text.push_str("governs = [\"erp\", \"code\", \"warehouse\", \"apps\"]\n");
                } else if line.trim_start().starts_with("path") && line.contains("events.jsonl") {
                    text.push_str(&format!("path = \"{events}\"\nname = \"jsonl\"\nmin_severity = \"low\"\n"));
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
            text.push_str(
                "\n[[source]]\nname = \"idp\"\nkind = \"snapshot\"\npath = \"synth/idp.json\"\nidentity_source = true\n\n\
                 [[source]]\nname = \"apps\"\nkind = \"snapshot\"\npath = \"apps.json\"\n\n\
                 [[sod]]\nname = \"write-vs-approve-r1\"\nleft = { resource = \"apps:dataset:r1\", action = \"write\" }\n\
                 right = { resource = \"apps:dataset:r1\", action = \"approve\" }\n",
            );
            if let Some(hook) = hook {
                text.push_str(&format!(
                    "\n[[sink]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{hook}/hook\"\nmin_severity = \"critical\"\n"
                ));
            }
            company.scratch.write(name, &text);
        }
        company
    }

    fn path(&self, name: &str) -> PathBuf {
        self.scratch.path(name)
    }

    /// Version 0 is the generated export; version 1 re-points a quarter of
    /// the people's first direct grant. Written then renamed, as an exporter should.
    fn set_apps_version(&self, version: u32) {
        let (apps, _, _) = synth::apps_snapshot(SIZE, SYNTH_SEED, version * 25);
        let tmp = self.path("apps.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&apps).expect("json")).expect("write apps");
        std::fs::rename(&tmp, self.path("apps.json")).expect("rename apps");
    }

    fn spawn_scan(&self, config: &str, minutes: i64, report: &Path) -> Child {
        Command::new(binary())
            .args(["scan", "--config"])
            .arg(self.path(config))
            .args(["--now", &at(minutes), "--format", "json", "--output"])
            .arg(report)
            .env_remove("ACCESSGRAPH_CONFIG")
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.path("scan.log")).expect("log"))
            .spawn()
            .expect("the binary starts")
    }

    /// Runs a scan to the end; its report.
    fn scan(&self, config: &str, minutes: i64) -> Value {
        let report = self.path("report.json");
        let status = self.spawn_scan(config, minutes, &report).wait().expect("scan runs");
        let log = std::fs::read_to_string(self.path("scan.log")).unwrap_or_default();
        assert_eq!(status.code(), Some(0), "scan of {config} at {}: {log}", at(minutes));
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("report is JSON")
    }

    fn remove_store(&self, store: &str, events: &str) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(self.path(&format!("{store}{suffix}")));
        }
        let _ = std::fs::remove_file(self.path(events));
    }
}

/// What a check learned about where the killed scan was.
#[derive(Debug, Default)]
struct Progress {
    /// Sources whose sync of this run landed.
    synced: usize,
    /// The findings of this run were reconciled.
    reconciled: bool,
    /// The analysis of this run was recorded.
    recorded: bool,
    /// Outbox rows still undelivered.
    pending: i64,
}

impl Progress {
    fn phase(&self, store_exists: bool) -> &'static str {
        if !store_exists {
            "before the store existed"
        } else if self.synced == 0 {
            "start-up (no sync landed)"
        } else if self.synced < SOURCES {
            "syncing (some sources landed)"
        } else if !self.reconciled {
            "analysis (all synced, findings not reconciled)"
        } else if !self.recorded {
            "between reconcile and analysis record"
        } else if self.pending > 0 {
            "delivery (events pending)"
        } else {
            "after delivery"
        }
    }
}

async fn scalar_i64(conn: &mut SqliteConnection, sql: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .try_get::<i64, _>(0)
        .expect("integer")
}

/// Checks the store invariants (module docs); returns the killed run's progress.
async fn check_store(db: &Path, minutes: i64) -> Option<Progress> {
    if !db.exists() {
        return None;
    }
    let url = format!("sqlite://{}", db.display());
    let mut conn = SqliteConnection::connect(&url).await.expect("open the store");
    let integrity: Vec<String> = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .expect("integrity_check")
        .iter()
        .map(|r| r.try_get::<String, _>(0).expect("text"))
        .collect();
    assert_eq!(integrity, ["ok"], "PRAGMA integrity_check");
    let tables = scalar_i64(
        &mut conn,
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('sync_runs', 'findings', 'outbox', 'tickets', 'http_cache')",
    )
    .await;
    if tables < 5 {
        // Killed while migrating: each migration is its own transaction,
        // so the next open finishes the job (checked by the next runs).
        conn.close().await.ok();
        return Some(Progress::default());
    }

    // No half-written sync.
    let failed = scalar_i64(&mut conn, "SELECT COUNT(*) FROM sync_runs WHERE status <> 'succeeded'").await;
    assert_eq!(failed, 0, "a valid input never records a failed sync");
    let runs = sqlx::query("SELECT id, source, finished_at, stats FROM sync_runs ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .expect("sync_runs");
    let mut instants: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut latest: BTreeMap<String, (i64, u64)> = BTreeMap::new();
    for run in &runs {
        let source: String = run.get("source");
        let finished: i64 = run.get("finished_at");
        let stats: Value = serde_json::from_str(run.get::<&str, _>("stats")).expect("stats JSON");
        let count = |key: &str| stats[key].as_u64().unwrap_or(0);
        assert!(instants.insert((source.clone(), finished)), "two runs of {source} at {finished}");
        let mut opened = 0;
        let mut closed = 0;
        for table in ["nodes", "edges"] {
            for (column, total) in [("valid_from", &mut opened), ("valid_to", &mut closed)] {
                let sql = format!("SELECT COUNT(*) FROM {table} WHERE source = $1 AND {column} = $2");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(source.as_str())
                    .bind(finished)
                    .fetch_one(&mut conn)
                    .await
                    .expect("count");
                *total += row.get::<i64, _>(0) as u64;
            }
        }
        assert_eq!((opened, closed), (count("opened"), count("closed")), "rows of the {source} sync at {finished}");
        latest.insert(source, (finished, count("nodes") + count("edges")));
    }
    let stamped = sqlx::query(
        "SELECT source, valid_from AS t FROM nodes UNION SELECT source, valid_to FROM nodes WHERE valid_to IS NOT NULL \
         UNION SELECT source, valid_from FROM edges UNION SELECT source, valid_to FROM edges WHERE valid_to IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .expect("stamps");
    for row in stamped {
        let key = (row.get::<String, _>("source"), row.get::<i64, _>("t"));
        assert!(instants.contains(&key), "rows of {key:?} without their sync run");
    }
    for (source, (_, rows)) in &latest {
        let sql = "SELECT (SELECT COUNT(*) FROM nodes WHERE source = $1 AND valid_to IS NULL) \
                   + (SELECT COUNT(*) FROM edges WHERE source = $1 AND valid_to IS NULL)";
        let current: i64 = sqlx::query(sql).bind(source.as_str()).fetch_one(&mut conn).await.expect("current").get(0);
        assert_eq!(current as u64, *rows, "current slice of {source}");
    }

    // Findings and outbox.
    let orphans = scalar_i64(
        &mut conn,
        "SELECT COUNT(*) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM findings f WHERE f.fingerprint = o.fingerprint)",
    )
    .await;
    assert_eq!(orphans, 0, "outbox rows whose finding does not exist");
    let duplicates = scalar_i64(
        &mut conn,
        "SELECT COUNT(*) FROM (SELECT rule, subject, object FROM findings WHERE status <> 'resolved' \
         GROUP BY rule, subject, object HAVING COUNT(*) > 1)",
    )
    .await;
    assert_eq!(duplicates, 0, "duplicate unresolved findings");
    let disagreeing = sqlx::query(
        "SELECT f.fingerprint, f.last_event, (SELECT o.event FROM outbox o WHERE o.sink = 'jsonl' \
         AND o.fingerprint = f.fingerprint ORDER BY o.id DESC LIMIT 1) AS queued FROM findings f",
    )
    .fetch_all(&mut conn)
    .await
    .expect("findings");
    for row in disagreeing {
        let last: Option<String> = row.get("last_event");
        let queued: Option<String> = row.get("queued");
        assert!(
            last.is_some() && last == queued,
            "finding {}: last event {last:?}, newest outbox row {queued:?}",
            row.get::<String, _>("fingerprint")
        );
    }

    let synced =
        scalar_i64(&mut conn, &format!("SELECT COUNT(*) FROM sync_runs WHERE finished_at = {}", micros(minutes))).await
            as usize;
    let reconciled =
        scalar_i64(&mut conn, &format!("SELECT COUNT(*) FROM findings WHERE last_seen = {}", micros(minutes))).await
            > 0;
    let recorded =
        scalar_i64(&mut conn, &format!("SELECT COUNT(*) FROM analyses WHERE at = {}", micros(minutes))).await > 0;
    let pending = scalar_i64(&mut conn, "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").await;
    conn.close().await.ok();
    Some(Progress { synced, reconciled, recorded, pending })
}

/// One outbox row as the sinks should have seen it.
#[derive(Debug)]
struct Queued {
    sink: String,
    fingerprint: String,
    event: String,
    delivered: bool,
}

async fn outbox(db: &Path) -> BTreeMap<String, Queued> {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.expect("open the store");
    let rows = sqlx::query("SELECT id, sink, fingerprint, event, delivered_at FROM outbox")
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
    conn.close().await.ok();
    rows.iter()
        .map(|r| {
            (
                r.get::<i64, _>("id").to_string(),
                Queued {
                    sink: r.get("sink"),
                    fingerprint: r.get("fingerprint"),
                    event: r.get("event"),
                    delivered: r.get::<Option<i64>, _>("delivered_at").is_some(),
                },
            )
        })
        .collect()
}

/// Outbox rows claimed at once, whose `jsonl` lines a sink appends in one
/// write before they are acknowledged together (the pipeline's delivery
/// batch): what a kill can leave written and unacknowledged.
const RUN_LIMIT: usize = 100;

/// The `jsonl` file against the outbox; returns the event ids written.
fn check_jsonl(events: &Path, queued: &BTreeMap<String, Queued>, clean: bool) -> BTreeSet<String> {
    let text = std::fs::read_to_string(events).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "the jsonl file ends in a torn line");
    let mut seen = BTreeSet::new();
    let mut unacknowledged = 0;
    for line in text.lines() {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("jsonl line does not parse ({e}): {line}"));
        let id = event["event_id"].as_str().expect("event_id").to_string();
        assert!(seen.insert(id.clone()), "event {id} written twice");
        let row = queued.get(&id).unwrap_or_else(|| panic!("event {id} has no outbox row"));
        assert_eq!(row.sink, "jsonl");
        assert_eq!(event["fingerprint"], row.fingerprint.as_str(), "event {id}");
        assert_eq!(event["event"], row.event.as_str(), "event {id}");
        if !row.delivered {
            unacknowledged += 1;
        }
    }
    let limit = if clean { 0 } else { RUN_LIMIT };
    assert!(unacknowledged <= limit, "{unacknowledged} jsonl events written but not acknowledged");
    seen
}

async fn webhook_deliveries(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.headers.get("x-accessgraph-delivery").and_then(|v| v.to_str().ok()).map(str::to_string))
        .collect()
}

fn check_webhook(deliveries: &[String], queued: &BTreeMap<String, Queued>, kills: usize) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in deliveries {
        let row = queued.get(id).unwrap_or_else(|| panic!("webhook event {id} has no outbox row"));
        assert_eq!(row.sink, "hook", "webhook event {id}");
        *counts.entry(id).or_default() += 1;
    }
    let replays: usize = counts.values().map(|n| n - 1).sum();
    assert!(replays <= kills, "{replays} webhook replays after {kills} kills");
}

/// (fingerprint, status, severity) of a report's current findings, optionally without a rule.
fn identity(report: &Value, without: Option<&str>) -> BTreeSet<(String, String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        // Resolved entries are "resolved since the previous snapshot", which
        // depends on the history; open and muted ones are the state.
        .filter(|f| f["status"] != "resolved" && without.is_none_or(|rule| f["rule"] != rule))
        .map(|f| {
            let text = |k: &str| f[k].as_str().expect("string field").to_string();
            (text("fingerprint"), text("status"), text("severity"))
        })
        .collect()
}

#[test]
fn sigkill_at_random_points_leaves_a_consistent_store_and_loses_no_event() {
    let started = Instant::now();
    let seed = seed_from_env("ACCESSGRAPH_CRASH_SEED", 0x00C4_A511);
    let mut rng = Rng::new(seed);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let hook = runtime.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
        server
    });
    let company = Company::new(&hook.uri());
    let crash_db = company.path("crash.db");
    let crash_events = company.path("crash.jsonl");

    // Calibration: how long an uninterrupted first scan takes here.
    let calibration = Instant::now();
    company.scan("reference.toml", 0);
    let full = calibration.elapsed();
    company.remove_store("reference.db", "reference.jsonl");

    let mut estimate = full;
    let mut kills = 0usize;
    let mut completed = 0usize;
    let mut phases: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut delays = Vec::new();
    let mut minutes = 0;
    let loop_started = Instant::now();
    while kills < KILLS && minutes < MAX_RUNS as i64 {
        minutes += 1;
        company.set_apps_version(u32::from(rng.chance(0.5)));
        // Drawn over the length of the last whole run: runs vary, so some
        // finish, and their reconciliations move the findings' lifecycle on.
        let delay = Duration::from_micros(rng.below(estimate.as_micros() as u64 + 1));
        let report = company.path("killed-report.json");
        let run_started = Instant::now();
        let mut child = company.spawn_scan("crash.toml", minutes, &report);
        // Every fifth run is left alone, so that reconciliations between the
        // crashes move the findings' lifecycle on (resolve, reopen).
        let spared = minutes % 5 == 0;
        if !spared {
            std::thread::sleep(delay);
            // SIGKILL unless it already ended (it may end between the look and the kill).
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
        }
        let status = child.wait().expect("reaped");
        let killed = {
            use std::os::unix::process::ExitStatusExt;
            status.signal() == Some(9)
        };
        if !killed {
            let log = std::fs::read_to_string(company.path("scan.log")).unwrap_or_default();
            assert_eq!(status.code(), Some(0), "an uninterrupted scan after crashes: {log}");
        }
        if killed {
            kills += 1;
            delays.push(delay.as_millis() as u64);
        } else {
            completed += 1;
            // The next kill point is drawn over a run like this one.
            estimate = run_started.elapsed();
        }
        let progress = runtime.block_on(check_store(&crash_db, minutes));
        let queued = runtime.block_on(outbox(&crash_db));
        check_jsonl(&crash_events, &queued, false);
        check_webhook(&runtime.block_on(webhook_deliveries(&hook)), &queued, kills);
        if killed {
            let phase = match &progress {
                Some(p) => p.phase(true),
                None => Progress::default().phase(false),
            };
            *phases.entry(phase).or_default() += 1;
        }
    }
    eprintln!(
        "crash harness: seed {seed}, full scan {:?}, {kills} kills and {completed} completed runs in {:?}; \
         kill delays (ms) {delays:?}; kills by phase {phases:#?}",
        full,
        loop_started.elapsed()
    );
    assert!(kills >= 20, "only {kills} kills in {minutes} runs");

    // Clean scans on the crashed store and on a fresh one.
    company.set_apps_version(0);
    let first = minutes + 1;
    let second = minutes + 2;
    let crashed = [company.scan("crash.toml", first), company.scan("crash.toml", second)];
    let fresh = [company.scan("reference.toml", first), company.scan("reference.toml", second)];
    assert_eq!(
        identity(&crashed[0], Some("drift.baseline")),
        identity(&fresh[0], Some("drift.baseline")),
        "the first clean scan after the crashes"
    );
    assert_eq!(identity(&crashed[1], None), identity(&fresh[1], None), "the second clean scan after the crashes");
    assert!(!identity(&fresh[1], None).is_empty(), "the comparison compares findings");

    let progress = runtime.block_on(check_store(&crash_db, second)).expect("store");
    assert_eq!(progress.pending, 0, "every event delivered after the clean scans");
    let queued = runtime.block_on(outbox(&crash_db));
    let written = check_jsonl(&crash_events, &queued, true);
    let deliveries = runtime.block_on(webhook_deliveries(&hook));
    check_webhook(&deliveries, &queued, kills);
    let delivered: BTreeSet<&String> = deliveries.iter().collect();
    for (id, row) in &queued {
        match row.sink.as_str() {
            "jsonl" => {
                assert!(written.contains(id), "jsonl event {id} ({} {}) never written", row.event, row.fingerprint)
            }
            "hook" => assert!(delivered.contains(id), "webhook event {id} never delivered"),
            other => panic!("unexpected sink {other}"),
        }
    }
    let opened = queued.values().filter(|r| r.event == "opened").count();
    let resolved = queued.values().filter(|r| r.event == "resolved").count();
    let reopened = queued.values().filter(|r| r.event == "reopened").count();
    eprintln!(
        "crash harness: {} outbox rows ({opened} opened, {resolved} resolved, {reopened} reopened), \
         {} webhook requests for {} webhook rows; total {:?}",
        queued.len(),
        deliveries.len(),
        queued.values().filter(|r| r.sink == "hook").count(),
        started.elapsed()
    );
    assert!(resolved > 0 && reopened > 0, "the alternating input exercises the whole lifecycle");
}
