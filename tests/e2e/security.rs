//! The daemon's own attack surface, end to end.
//!
//! - Secrets never leak: a full `scan` and a short `run` against mocks of
//!   every live source and every ticket sink, with known secret values given
//!   through the environment and files and logs at `trace` in JSON. Every log
//!   line, every report and export, every ticket body and webhook the sink
//!   mocks received, the HTTP API's answers and the raw bytes of the SQLite
//!   store (and its WAL) are searched for each secret, and its base64 form.
//! - Connectors only read: the methods every source mock received.
//! - `accessgraph check` reports an API open beyond loopback as a problem
//!   and unsafe secrets as warnings, naming file and line, never the value.
//! - Terminal output strips control characters from remote names.

use super::aws_iam::live::mount_account_as;
use super::common::*;
use super::llm_saas::{ANTHROPIC_KEY, OPENAI_KEY, SCIM_TOKEN, Servers, servers};
use serde_json::{Value, json};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{any, body_string_contains, method};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::github::mock;

use mock::{ExpectAuth, GithubMock, fixtures_dir};

// In the past: the daemon treats a tick whose sync already started (at `--now`) as done.
const NOW: &str = "2025-06-01T00:00:00Z";
const LATER: &str = "2025-06-01T01:00:00Z";

const GH_TOKEN: &str = "ghp_SecE2ePatToken000000000000000000001";
const AWS_SECRET_KEY: &str = "aws-secret-e2e-SecurityTest000000000000002";
const ASSUMED_SECRET_KEY: &str = "assumed-secret-e2e-SecurityTest00000003";
const ASSUMED_SESSION_TOKEN: &str = "FwoGZXIvYXdzEsecurityE2eSessionToken0000004";
const ISSUES_TOKEN: &str = "ghp_SecE2eIssuesToken00000000000000000005";
const JIRA_EMAIL: &str = "secbot@acme.example";
const JIRA_TOKEN: &str = "jira-e2e-api-token-SecurityTest000000006";
const WEBHOOK_SECRET: &str = "whsec-e2e-SecurityTest00000000000000007";
const API_TOKEN: &str = "api-e2e-token-SecurityTest0000000000008";

/// Every request, for the sink mocks: they answer like the real systems
/// closely enough for a ticket to be filed.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Request>>>);

impl Recorder {
    fn requests(&self) -> Vec<Request> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, request: &Request) -> usize {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.push(request.clone());
        all.len()
    }
}

/// GitHub issues: no existing issue, creates answer a new number.
struct IssuesFake(Recorder);

impl Respond for IssuesFake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.0.record(request);
        let path = request.url.path();
        match request.method.as_str() {
            "GET" => ResponseTemplate::new(200).set_body_json(json!([])),
            "POST" if path == "/repos/acme/secops/issues" => {
                let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
                ResponseTemplate::new(201).set_body_json(json!({
                    "number": n, "state": "open", "labels": body["labels"].clone(),
                    "html_url": format!("https://github.example/acme/secops/issues/{n}")}))
            }
            _ => ResponseTemplate::new(200).set_body_json(json!({})),
        }
    }
}

/// Jira: no existing issue, creates answer a new key.
struct JiraFake(Recorder);

impl Respond for JiraFake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.0.record(request);
        match (request.method.as_str(), request.url.path()) {
            ("GET", "/rest/api/3/search/jql") => ResponseTemplate::new(200).set_body_json(json!({"issues": []})),
            ("POST", "/rest/api/3/issue") => {
                ResponseTemplate::new(201).set_body_json(json!({"id": n.to_string(), "key": format!("SEC-{n}")}))
            }
            ("GET", _) => ResponseTemplate::new(200).set_body_json(json!({"comments": [], "transitions": []})),
            _ => ResponseTemplate::new(204),
        }
    }
}

/// The webhook receiver: accepts everything.
struct HookFake(Recorder);

impl Respond for HookFake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.record(request);
        ResponseTemplate::new(200)
    }
}

struct World {
    scratch: Scratch,
    gh_pat: GithubMock,
    gh_app: GithubMock,
    llm: Servers,
    aws: MockServer,
    issues: Recorder,
    jira: Recorder,
    hooks: Recorder,
    _sinks: Vec<MockServer>,
    app_key: String,
    installation_token: String,
    port: u16,
}

impl World {
    /// (name, value) of every secret the scan handles, for the search.
    fn secrets(&self) -> Vec<(&'static str, String)> {
        // A line of the key's body (a leak would keep the PEM's line breaks).
        let key_line = self.app_key.lines().filter(|l| !l.starts_with("-----")).nth(1).unwrap_or_default();
        vec![
            ("github token", GH_TOKEN.into()),
            ("github app private key", key_line.to_string()),
            ("github installation token", self.installation_token.clone()),
            ("openai admin key", OPENAI_KEY.into()),
            ("anthropic admin key", ANTHROPIC_KEY.into()),
            ("scim token", SCIM_TOKEN.into()),
            ("aws secret access key", AWS_SECRET_KEY.into()),
            ("assumed role secret key", ASSUMED_SECRET_KEY.into()),
            ("assumed role session token", ASSUMED_SESSION_TOKEN.into()),
            ("github-issues sink token", ISSUES_TOKEN.into()),
            ("jira sink token", JIRA_TOKEN.into()),
            ("jira basic credentials", format!("{JIRA_EMAIL}:{JIRA_TOKEN}")),
            ("webhook secret", WEBHOOK_SECRET.into()),
            ("api token", API_TOKEN.into()),
        ]
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let missing = self.scratch.path("no-aws-config").display().to_string();
        vec![
            ("AG_SEC_GH_TOKEN", GH_TOKEN.into()),
            ("AG_E2E_SCIM_TOKEN", SCIM_TOKEN.into()),
            ("AG_E2E_OPENAI_KEY", OPENAI_KEY.into()),
            ("AG_E2E_ANTHROPIC_KEY", ANTHROPIC_KEY.into()),
            ("AG_SEC_ISSUES_TOKEN", ISSUES_TOKEN.into()),
            ("AG_SEC_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
            ("AWS_ACCESS_KEY_ID", "AKIDSECURITYE2E00001".into()),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY.into()),
            ("AWS_CONFIG_FILE", missing.clone()),
            ("AWS_SHARED_CREDENTIALS_FILE", missing),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("RUST_LOG", "trace".into()),
        ]
    }

    /// Runs `accessgraph ARGS` with every secret in the environment and
    /// trace logs in JSON (off the runtime that serves the mocks).
    async fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(binary());
        command
            .arg("--log-format")
            .arg("json")
            .args(args)
            .env_remove("ACCESSGRAPH_CONFIG")
            .env("NO_COLOR", "1")
            .envs(self.env());
        tokio::task::spawn_blocking(move || command.output().expect("the binary runs")).await.expect("run task")
    }
}

fn secret_file(scratch: &Scratch, name: &str, value: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = scratch.write(name, value);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

async fn world() -> World {
    let dir = fixtures_dir(env!("CARGO_MANIFEST_DIR"));
    let manifest = mock::manifest(&dir);
    let gh_pat = GithubMock::start(ExpectAuth::Exactly(format!("Bearer {GH_TOKEN}"))).await;
    gh_pat.mount_fixtures(&dir).await;
    let gh_app = GithubMock::start(ExpectAuth::Exactly(format!("Bearer {}", manifest.installation_token))).await;
    gh_app.mount_fixtures(&dir).await;
    let llm = servers().await;
    let aws = MockServer::start().await;
    mount_account_as(&aws, "AKIDSECURITYE2E00001", true).await;
    // The assumed account (222…) reads the same fixture with the session's key.
    mount_account_as(&aws, "ASIASECURITYE2E00001", true).await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=AssumeRole&"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("content-type", "text/xml").set_body_string(format!(
                "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
                 <Credentials><AccessKeyId>ASIASECURITYE2E00001</AccessKeyId>\
                 <SecretAccessKey>{ASSUMED_SECRET_KEY}</SecretAccessKey><SessionToken>{ASSUMED_SESSION_TOKEN}</SessionToken>\
                 <Expiration>2036-01-01T00:00:00Z</Expiration></Credentials>\
                 <AssumedRoleUser><AssumedRoleId>AROASECURITYE2E:accessgraph</AssumedRoleId>\
                 <Arn>arn:aws:sts::222222222222:assumed-role/accessgraph-audit/accessgraph</Arn></AssumedRoleUser>\
                 </AssumeRoleResult><ResponseMetadata><RequestId>5b1ae0f5-0000-4000-8000-000000000000</RequestId>\
                 </ResponseMetadata></AssumeRoleResponse>"
            )),
        )
        .mount(&aws)
        .await;

    let (issues, jira, hooks) = (Recorder::default(), Recorder::default(), Recorder::default());
    let issues_server = MockServer::start().await;
    Mock::given(any()).respond_with(IssuesFake(issues.clone())).mount(&issues_server).await;
    let jira_server = MockServer::start().await;
    Mock::given(any()).respond_with(JiraFake(jira.clone())).mount(&jira_server).await;
    let hook_server = MockServer::start().await;
    Mock::given(any()).respond_with(HookFake(hooks.clone())).mount(&hook_server).await;

    let scratch = Scratch::new();
    let app_key = std::fs::read_to_string(dir.join("test-only-app-key.pem")).expect("app key");
    secret_file(&scratch, "app-key.pem", &app_key);
    secret_file(&scratch, "jira-token", &format!("{JIRA_TOKEN}\n"));
    secret_file(&scratch, "api-token", &format!("{API_TOKEN}\n"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let schedule = "schedule = \"*/2 * * * * *\"";
    let config = format!(
        r#"[store]
url = "sqlite://store.db"

[[source]]
name = "gh"
kind = "github"
org = "acme"
base_url = "{gh_pat}"
token = {{ env = "AG_SEC_GH_TOKEN" }}
{schedule}

[[source]]
name = "gh-app"
kind = "github"
org = "acme"
base_url = "{gh_app}"
app = {{ id = 2218, installation_id = {installation}, private_key = {{ file = "app-key.pem" }} }}
{schedule}

[[source]]
name = "okta"
kind = "scim"
base_url = "{scim}/scim/v2"
token = {{ env = "AG_E2E_SCIM_TOKEN" }}
flavor = "okta"
{schedule}

[[source]]
name = "openai"
kind = "openai"
base_url = "{openai}/v1"
admin_key = {{ env = "AG_E2E_OPENAI_KEY" }}
{schedule}

[[source]]
name = "anthropic"
kind = "anthropic"
base_url = "{anthropic}"
admin_key = {{ env = "AG_E2E_ANTHROPIC_KEY" }}
{schedule}

[[source]]
name = "aws"
kind = "aws-iam"
account_name = "acme-prod"
endpoint_url = "{aws}"
assume_roles = ["arn:aws:iam::222222222222:role/accessgraph-audit"]
{schedule}

[server]
listen = "127.0.0.1:{port}"
token = {{ file = "api-token" }}

[[sink]]
kind = "jsonl"
path = "events.jsonl"
min_severity = "low"

[[sink]]
kind = "webhook"
url = "{hooks}/hook"
secret = {{ env = "AG_SEC_WEBHOOK_SECRET" }}
min_severity = "low"

[[sink]]
kind = "github-issues"
repo = "acme/secops"
token = {{ env = "AG_SEC_ISSUES_TOKEN" }}
base_url = "{issues}"
rules = ["secret.standing"]

[[sink]]
kind = "jira"
base_url = "{jira}"
project = "SEC"
issue_type = "Task"
email = "{JIRA_EMAIL}"
token = {{ file = "jira-token" }}
done_transition = "Done"
rules = ["secret.standing"]
"#,
        gh_pat = gh_pat.uri(),
        gh_app = gh_app.uri(),
        installation = manifest.installation_id,
        scim = llm.scim.uri(),
        openai = llm.openai.uri(),
        anthropic = llm.anthropic.uri(),
        aws = aws.uri(),
        hooks = hook_server.uri(),
        issues = issues_server.uri(),
        jira = jira_server.uri(),
    );
    scratch.write("accessgraph.toml", &config);
    World {
        scratch,
        gh_pat,
        gh_app,
        llm,
        aws,
        issues,
        jira,
        hooks,
        _sinks: vec![issues_server, jira_server, hook_server],
        app_key,
        installation_token: manifest.installation_token,
        port,
    }
}

/// Successful sync runs in the store (read-only, beside the daemon).
async fn succeeded_syncs(scratch: &Scratch) -> i64 {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", scratch.path("store.db").display());
    let Ok(mut connection) = sqlx::SqliteConnection::connect(&url).await else { return 0 };
    let count = sqlx::query_scalar("SELECT COUNT(*) FROM sync_runs WHERE status = 'succeeded'")
        .fetch_one(&mut connection)
        .await
        .unwrap_or(0);
    let _ = connection.close().await;
    count
}

/// Where each secret was found, if anywhere: (secret name, place).
fn search(haystacks: &[(String, Vec<u8>)], secrets: &[(&'static str, String)]) -> Vec<(String, String)> {
    // Lossy text keeps every ASCII run intact, and `str::contains` is fast
    // even in a debug build (megabytes of trace logs).
    let texts: Vec<(&String, String)> =
        haystacks.iter().map(|(place, bytes)| (place, String::from_utf8_lossy(bytes).into_owned())).collect();
    let mut found = Vec::new();
    for (name, value) in secrets {
        let encoded = base64(value.as_bytes());
        let forms = [value.as_str(), encoded.as_str(), encoded.trim_end_matches('=')];
        for (place, text) in &texts {
            if forms.iter().any(|form| !form.is_empty() && text.contains(form)) {
                found.push((name.to_string(), (*place).clone()));
            }
        }
    }
    found
}

fn output_bytes(output: &Output) -> Vec<u8> {
    let mut all = output.stdout.clone();
    all.extend_from_slice(&output.stderr);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_leak_into_logs_reports_tickets_or_the_store() {
    let world = world().await;
    let config = world.scratch.config();
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();

    // A full scan, filing to every sink.
    let scan = world.run(&["scan", "--config", &config, "--now", NOW, "--format", "json"]).await;
    haystacks.push(("scan output and trace logs".into(), output_bytes(&scan)));
    assert_eq!(code(&scan), 0, "{}", String::from_utf8_lossy(&scan.stdout));
    let report = json(&scan);
    for source in report["summary"]["sources"].as_array().expect("sources") {
        assert_eq!(source["status"], "succeeded", "{source}");
    }
    assert!(stderr(&scan).lines().count() > 100, "trace logs were written");

    // Every report and export format.
    for format in ["markdown", "html", "ocsf"] {
        let file = world.scratch.path(&format!("report.{format}"));
        let args = ["scan", "--config", config.as_str(), "--now", LATER, "--format", format, "--output"];
        let output = world.run(&[&args[..], &[file.to_str().expect("utf-8 path")]].concat()).await;
        haystacks.push((format!("scan --format {format} logs"), output_bytes(&output)));
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        haystacks.push((format!("report.{format}"), std::fs::read(&file).expect("report written")));
    }
    for format in ["markdown", "json", "ocsf", "html"] {
        let output = world.run(&["findings", "--config", &config, "--status", "all", "--format", format]).await;
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        haystacks.push((format!("findings --format {format}"), output_bytes(&output)));
    }
    for format in ["json", "graphml", "dot", "cypher"] {
        let output = world.run(&["export", "--config", &config, "--format", format]).await;
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        haystacks.push((format!("export --format {format}"), output_bytes(&output)));
    }
    for question in [
        vec!["who-can", "--resource", "gh:repo:acme/payments"],
        vec!["what-can", "--identity", "person:alice@acme.example"],
        vec!["blast-radius", "--credential", "gh:pat:25402"],
    ] {
        let args =
            [&["query", question[0], "--config", config.as_str()][..], &question[1..], &["--format", "json"]].concat();
        let output = world.run(&args).await;
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        haystacks.push((format!("query {}", question[0]), output_bytes(&output)));
    }
    let check = world.run(&["check", "--config", &config]).await;
    assert_eq!(code(&check), 0, "{}", stdout(&check));
    haystacks.push(("check".into(), output_bytes(&check)));

    // The daemon: a few ticks of every source, the API asked everything.
    let log = world.scratch.path("daemon.log");
    let before = succeeded_syncs(&world.scratch).await;
    let mut daemon = Command::new(binary())
        .args(["--log-format", "json", "run", "--config", &config, "--grace-period", "5"])
        .env_remove("ACCESSGRAPH_CONFIG")
        .envs(world.env())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(world.scratch.path("daemon.out")).expect("stdout file"))
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("the daemon starts");
    let port = world.port;
    // Two more syncs of each of the six sources, and ready.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut waited = false;
    while Instant::now() < deadline {
        let ready = tokio::task::spawn_blocking(move || api_get(port, "/readyz", None)).await.expect("get");
        if ready.is_some_and(|(status, _)| status == 200) && succeeded_syncs(&world.scratch).await >= before + 12 {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut answers = Vec::new();
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/sources", "/api/v1/findings?status=all", "/reports/latest"]
    {
        let got = tokio::task::spawn_blocking(move || api_get(port, path, Some(API_TOKEN))).await.expect("get");
        let (status, body) = got.unwrap_or_else(|| panic!("{path}: no answer"));
        assert_eq!(status, 200, "{path}: {body}");
        answers.push((format!("API {path}"), body.into_bytes()));
    }
    let denied = tokio::task::spawn_blocking(move || api_get(port, "/api/v1/findings", Some("wrong"))).await;
    assert_eq!(denied.expect("get").map(|(s, _)| s), Some(401));
    let _ = Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status();
    let exit = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = daemon.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = daemon.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .expect("wait for the daemon");
    let daemon_log = std::fs::read(&log).unwrap_or_default();
    assert!(waited, "the daemon synced every source again:\n{}", String::from_utf8_lossy(&daemon_log));
    assert_eq!(exit, Some(0), "clean stop:\n{}", String::from_utf8_lossy(&daemon_log));
    haystacks.push(("daemon logs".into(), daemon_log));
    haystacks.push(("daemon stdout".into(), std::fs::read(world.scratch.path("daemon.out")).unwrap_or_default()));
    haystacks.extend(answers);

    // What the sinks received (the Authorization headers carry the tokens
    // by design; the bodies must not).
    haystacks.push(("jsonl events".into(), std::fs::read(world.scratch.path("events.jsonl")).expect("events")));
    let (issues, jira, hooks) = (world.issues.requests(), world.jira.requests(), world.hooks.requests());
    assert!(issues.iter().any(|r| r.method.as_str() == "POST"), "github issues filed");
    assert!(jira.iter().any(|r| r.method.as_str() == "POST"), "jira issues filed");
    assert!(!hooks.is_empty(), "webhooks delivered");
    for (sink, requests) in [("github-issues", &issues), ("jira", &jira), ("webhook", &hooks)] {
        for request in requests {
            let place = format!("{sink} request body {}", describe(request));
            haystacks.push((place, request.body.clone()));
            let url = format!("{sink} request url {}", request.url);
            haystacks.push((url.clone(), url.into_bytes()));
        }
    }
    // The webhook signature is made with the secret, not of it.
    for request in &hooks {
        assert!(request.headers.contains_key("x-accessgraph-signature"), "signed webhook");
    }

    // The store, byte for byte.
    for name in ["store.db", "store.db-wal", "store.db-shm"] {
        if let Ok(bytes) = std::fs::read(world.scratch.path(name)) {
            haystacks.push((name.to_string(), bytes));
        }
    }
    assert!(haystacks.iter().any(|(p, _)| p == "store.db"), "the store file exists");

    let leaks = search(&haystacks, &world.secrets());
    assert!(leaks.is_empty(), "secrets leaked (secret, where): {leaks:#?}");

    // The same search finds a secret where one is (the search itself works).
    let planted = vec![("planted".to_string(), format!("x{}y", base64(JIRA_TOKEN.as_bytes())).into_bytes())];
    assert_eq!(search(&planted, &world.secrets()).len(), 1);

    // Connectors only read; the sinks are the only writers.
    assert!(assert_github_reads_only(&world.gh_pat.requests().await) > 20);
    let app_requests = world.gh_app.requests().await;
    assert!(assert_github_reads_only(&app_requests) > 20);
    assert!(
        app_requests.iter().any(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/access_tokens")),
        "the App exchanged its JWT for an installation token"
    );
    for (what, server) in
        [("scim", &world.llm.scim), ("openai", &world.llm.openai), ("anthropic", &world.llm.anthropic)]
    {
        let requests = server.received_requests().await.unwrap_or_default();
        assert!(assert_gets_only(what, &requests) > 2, "{what} was read");
    }
    let actions = assert_aws_reads_only(&world.aws.received_requests().await.unwrap_or_default());
    for expected in ["GetCallerIdentity", "AssumeRole", "GetAccountAuthorizationDetails", "GetCredentialReport"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
    }
}

#[test]
fn check_refuses_an_open_api_and_warns_about_unsafe_secrets_without_echoing_them() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new();
    let token = scratch.write("gh-token", "ghp_check0123456789abcdefghijklmnop\n");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let base = "[[source]]\nname = \"gh\"\nkind = \"github\"\norg = \"acme\"\n\
                base_url = \"https://ghe.acme.example/api/v3?access_token=ghp_Inline0123456789abcdefghij\"\n\
                token = { file = \"gh-token\" }\n\n";
    let config = scratch.path("accessgraph.toml").display().to_string();

    // Open beyond loopback without a token: a problem, exit 2.
    scratch.write("accessgraph.toml", &format!("{base}[server]\nlisten = \"0.0.0.0:9464\"\n"));
    let output = run(&["check", "--config", &config]);
    let text = stdout(&output);
    assert_eq!(code(&output), 2, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with(&format!("{config}:9:10: ")) && l.contains("not a loopback address")),
        "{text}"
    );
    // `run` refuses the same config with the same words.
    let output = run(&["run", "--config", &config]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("not a loopback address"), "{}", stderr(&output));

    // With a token: valid, with two warnings (exit 0).
    scratch.write(
        "accessgraph.toml",
        &format!("{base}[server]\nlisten = \"0.0.0.0:9464\"\ntoken = {{ env = \"AG_CHECK_API_TOKEN\" }}\n"),
    );
    let output = run_with_env(&["check", "--config", &config], &[("AG_CHECK_API_TOKEN", "t0ken-for-check")]);
    let text = stdout(&output);
    assert_eq!(code(&output), 0, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with(&format!("{config}:5:12: warning: ")) && l.contains("a GitHub token")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with(&format!("{config}:1: warning: ")) && l.contains("mode 0644")),
        "{text}"
    );
    assert!(text.contains("ok, with 2 warnings"), "{text}");
    assert!(!text.contains("Inline0123") && !text.contains("check0123"), "values are never shown: {text}");
}

/// A company whose names and ids carry terminal escape sequences.
fn hostile_company() -> Value {
    json!({
        "version": 1, "system": "forge", "collected_at": "2026-11-20T00:00:00Z",
        "identities": [
            {"id": "alice", "kind": "human", "name": "Alice\u{1b}]0;owned\u{7}", "email": "alice@acme.example", "active": true},
            {"id": "evil\u{1b}[2Jbot", "kind": "agent", "name": "\u{1b}[31mEvil\u{1b}[0m\r\u{9b}1A", "active": true}
        ],
        "resources": [{"id": "repo\u{1b}[5m", "kind": "repo", "name": "pay\u{1b}[8mments", "environment": "prod"}],
        "grants": [{"principal": "evil\u{1b}[2Jbot", "resource": "repo\u{1b}[5m", "actions": ["write"]}],
        "credentials": [{"id": "k\u{1b}[1m1", "kind": "api_key", "holder": "evil\u{1b}[2Jbot",
                         "created_at": "2025-01-01T00:00:00Z", "last_used_at": null, "expires_at": null}]
    })
}

fn assert_no_controls(what: &str, output: &Output) {
    assert_eq!(code(output), 0, "{what}: {}", stderr(output));
    let text = stdout(output);
    assert!(!text.trim().is_empty(), "{what} printed something");
    let bad: Vec<char> = text.chars().filter(|c| c.is_control() && *c != '\n').collect();
    assert!(bad.is_empty(), "{what} printed control characters {bad:?}:\n{}", text.escape_debug());
}

#[test]
fn terminal_output_strips_control_characters_from_remote_names() {
    let scratch = Scratch::new();
    write_json(&scratch.path("forge.json"), &hostile_company());
    scratch.write(
        "accessgraph.toml",
        "[store]\nurl = \"sqlite://store.db\"\n\n[[source]]\nname = \"forge\"\nkind = \"snapshot\"\npath = \"forge.json\"\n\n\
         [[sink]]\nkind = \"jsonl\"\npath = \"events.jsonl\"\n",
    );
    let config = scratch.config();
    let scan = run(&["scan", "--config", &config, "--now", NOW, "--no-file"]);
    assert_no_controls("scan (markdown)", &scan);
    assert!(stdout(&scan).contains("Evil"), "{}", stdout(&scan));
    let listed = run(&["findings", "--config", &config]);
    assert_no_controls("findings", &listed);
    assert!(stdout(&listed).contains("forge:agent:evil[2Jbot"), "{}", stdout(&listed));
    let agent = "forge:agent:evil\u{1b}[2Jbot";
    let repo = "forge:repo:repo\u{1b}[5m";
    assert_no_controls("who-can", &run(&["query", "who-can", "--config", &config, "--resource", repo]));
    assert_no_controls("what-can", &run(&["query", "what-can", "--config", &config, "--identity", agent]));
    let path = run(&["query", "path", "--config", &config, "--from", agent, "--to", repo]);
    assert_no_controls("path", &path);
    assert!(stdout(&path).contains("→"), "{}", stdout(&path));
    let blast = run(&["query", "blast-radius", "--config", &config, "--credential", "forge:api_key:k\u{1b}[1m1"]);
    assert_no_controls("blast-radius", &blast);
    // JSON keeps the data exact, escaped.
    let json_out = run(&["findings", "--config", &config, "--format", "json"]);
    assert_eq!(code(&json_out), 0);
    assert!(!json_out.stdout.contains(&0x1b), "JSON escapes control characters");
    assert!(stdout(&json_out).contains("\\u001b"), "and keeps them, escaped");
}
