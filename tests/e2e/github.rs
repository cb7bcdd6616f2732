//! The GitHub source end to end: the binary against a mock GitHub speaking
//! the fixtures of `fixtures/github/` (GitHub App auth, ETags, paging).

use super::common::*;
use serde_json::Value;
use std::process::Output;

/// The GitHub mock server, shared by the e2e modules that need one.
#[path = "../../connectors/src/github/mock.rs"]
pub(in crate::e2e) mod mock;

use mock::{ExpectAuth, GithubMock, Reply, Route, fixtures_dir};

const NOW: &str = "2025-06-01T00:00:00Z";
const LATER: &str = "2025-06-01T01:00:00Z";

struct Setup {
    mock: GithubMock,
    scratch: Scratch,
}

async fn setup() -> Setup {
    let dir = fixtures_dir(env!("CARGO_MANIFEST_DIR"));
    let manifest = mock::manifest(&dir);
    let mock = GithubMock::start(ExpectAuth::Exactly(format!("Bearer {}", manifest.installation_token))).await;
    mock.mount_fixtures(&dir).await;
    let scratch = Scratch::new();
    let key = dir.join("test-only-app-key.pem");
    scratch.write(
        "accessgraph.toml",
        &format!(
            r#"[store]
url = "sqlite://store.db"

[[source]]
name = "github-acme"
kind = "github"
org = "acme"
base_url = "{base}"
app = {{ id = 2218, installation_id = {installation}, private_key = {{ file = {key:?} }} }}

[[sod]]
name = "merge-without-review"
left  = {{ resource = "github-acme:repo:acme/payments", action = "write" }}
right = {{ resource = "github-acme:branch:acme/payments@main", action = "bypass-review" }}

[[sink]]
kind = "jsonl"
path = "events.jsonl"
min_severity = "low"
"#,
            base = mock.uri(),
            installation = manifest.installation_id,
            key = key.display().to_string(),
        ),
    );
    Setup { mock, scratch }
}

/// Runs the binary off the runtime's threads, so the mock keeps answering.
async fn run_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .expect("the binary runs")
}

async fn scan(setup: &Setup, now: &str) -> Output {
    let args = ["scan", "--config", &setup.scratch.config(), "--now", now, "--format", "json", "--no-file"];
    run_async(args.iter().map(|s| s.to_string()).collect()).await
}

fn findings<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["findings"].as_array().expect("findings").iter().filter(|f| f["rule"] == rule).collect()
}

fn has_finding(report: &Value, rule: &str, subject: &str, object: &str) -> bool {
    findings(report, rule).iter().any(|f| f["subject"] == subject && f["object"] == object)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_org_end_to_end_through_scan() {
    let setup = setup().await;
    let output = scan(&setup, NOW).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    let source = &report["summary"]["sources"][0];
    assert_eq!(source["status"], "succeeded", "{source}");

    // A write deploy key created 2023-02-01: past the 90-day rotation age.
    assert!(
        has_finding(&report, "secret.stale", "github-acme:deploy_key_holder:5501", "github-acme:deploy_key:5501"),
        "{:#}",
        report["findings"]
    );
    // A fine-grained PAT without expiry.
    assert!(has_finding(&report, "secret.standing", "github-acme:user:bob", "github-acme:pat:25402"));
    // An App with contents: write that no catalog record claims.
    assert!(has_finding(&report, "ownerless.unregistered", "github-acme:app:acme-ci", "github-acme:app:acme-ci"));
    // Write + bypass-review on payments: its admins, since enforce_admins is off.
    let sod: Vec<&str> = findings(&report, "sod.violation").iter().filter_map(|f| f["subject"].as_str()).collect();
    assert!(sod.contains(&"github-acme:user:bob"), "repo admin: {sod:?}");
    assert!(sod.contains(&"person:alice@acme.example"), "org owner, resolved by email: {sod:?}");
    assert!(!sod.contains(&"github-acme:user:eve"), "a writer without bypass: {sod:?}");

    // The graph as exported.
    let args = ["export", "--config", &setup.scratch.config(), "--format", "json"];
    let export = run_async(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(code(&export), 0, "{}", stderr(&export));
    let graph = json(&export);
    let nodes: Vec<&str> = graph["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["id"].as_str()).collect();
    for id in [
        "github-acme:user:frank",
        "github-acme:team:payments-eng",
        "github-acme:repo:acme/legacy",
        "github-acme:branch:acme/payments@main",
        "github-acme:app:acme-ci",
        "github-acme:deploy_key:5501",
        "github-acme:pat:25402",
        "github-acme:secret:acme/NPM_TOKEN",
        "github-acme:secret:acme/payments/AWS_ACCESS_KEY_ID",
    ] {
        assert!(nodes.contains(&id), "missing {id}");
    }
    let edge = |from: &str, kind: &str, to: &str| {
        graph["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .any(|e| e["from"] == from && e["kind"] == kind && e["to"] == to)
    };
    assert!(edge("github-acme:team:payments-eng", "member_of", "github-acme:team:platform"));
    assert!(edge("github-acme:user:carol", "grant", "github-acme:team:platform"));

    // Cumulative roles: asking for `write` finds maintainers (through the
    // nested team) and admins too.
    let args = [
        "query",
        "who-can",
        "--config",
        &setup.scratch.config(),
        "--resource",
        "github-acme:repo:acme/payments",
        "--action",
        "write",
        "--format",
        "json",
    ];
    let who = run_async(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(code(&who), 0, "{}", stderr(&who));
    let text = stdout(&who);
    for principal in
        ["github-acme:user:dave", "github-acme:user:bob", "person:alice@acme.example", "github-acme:user:eve"]
    {
        assert!(text.contains(principal), "{principal} can write payments:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_second_scan_is_answered_from_the_etag_cache() {
    let setup = setup().await;
    let first = scan(&setup, NOW).await;
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let before = setup.mock.requests().await.len();

    let second = scan(&setup, LATER).await;
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let report = json(&second);
    let stats = &report["summary"]["sources"][0]["stats"];
    assert_eq!((stats["opened"].as_u64(), stats["closed"].as_u64()), (Some(0), Some(0)), "no new rows: {stats}");

    // Recorded with the sync run, and shown in the report.
    let cost = &report["summary"]["sources"][0]["requests"];
    let sent = cost["requests"].as_u64().expect("requests");
    assert_eq!(cost["not_modified"].as_u64(), Some(sent - 3), "{cost}");
    let db = format!("sqlite://{}", setup.scratch.path("store.db").display());
    let pool = sqlx::SqlitePool::connect(&db).await.expect("store");
    let stored: String = sqlx::query_scalar("SELECT stats FROM sync_runs ORDER BY id DESC LIMIT 1")
        .fetch_one(&pool)
        .await
        .expect("sync run");
    let stored: Value = serde_json::from_str(&stored).expect("stats json");
    assert_eq!(&stored["requests"], cost, "stored with the sync run");
    let cached: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM http_cache WHERE source = 'github-acme'")
        .fetch_one(&pool)
        .await
        .expect("cache rows");
    assert_eq!(cached as u64, sent - 3, "one cached page per conditional request");

    let requests = setup.mock.requests().await;
    let again = &requests[before..];
    assert_eq!(again.len(), before, "the same requests, conditionally");
    // Everything GitHub sent an ETag for went out with If-None-Match (and
    // came back 304, free); the rest: the installation token, /rate_limit
    // (free too) and the one GraphQL query that reads every default
    // branch's protection and rulesets (no more 404 per unprotected branch).
    let unconditional: Vec<String> =
        again.iter().filter(|r| !r.headers.contains_key("if-none-match")).map(|r| r.url.path().to_string()).collect();
    assert_eq!(
        unconditional,
        vec!["/app/installations/4242/access_tokens", "/rate_limit", "/graphql"],
        "{unconditional:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_failed_sync_keeps_the_previous_data() {
    let setup = setup().await;
    let first = scan(&setup, NOW).await;
    assert_eq!(code(&first), 0, "{}", stderr(&first));

    // A truncated repository listing (a new body, so not a 304).
    let repos = std::fs::read(fixtures_dir(env!("CARGO_MANIFEST_DIR")).join("repos.json")).expect("fixture");
    let truncated = repos[..repos.len() / 3].to_vec();
    setup.mock.mount_first(&Route::get("/orgs/acme/repos"), Reply::json(truncated), None).await;
    let second = scan(&setup, LATER).await;
    assert_eq!(code(&second), 3, "a source failed: {}", stderr(&second));
    let report = json(&second);
    let source = &report["summary"]["sources"][0];
    assert_eq!(source["status"], "failed");
    let error = source["error"].as_str().unwrap_or_default();
    assert!(error.contains("/orgs/acme/repos") && error.contains("malformed"), "{error}");
    assert!(!error.contains("ghs_"), "no token in errors: {error}");
    // The previous slice still answers.
    assert!(
        has_finding(&report, "secret.stale", "github-acme:deploy_key_holder:5501", "github-acme:deploy_key:5501"),
        "previous data intact"
    );
    assert!(!stderr(&second).contains("ghs_fixture"), "no token in logs");
}
