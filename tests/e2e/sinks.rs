//! Remediation requests through the binary: a `github-issues` sink against a
//! stateful fake of GitHub's issues API (wire shapes of
//! `shared/api-notes/github.md` §6.14), across scans at fixed instants.

use super::common::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "e2e-token-0123456789";

#[derive(Default)]
struct State {
    /// Issues as GitHub would return them.
    issues: Vec<Value>,
    /// (issue number, comment body).
    comments: Vec<(u64, String)>,
    /// `METHOD /path` of every request.
    log: Vec<String>,
    /// GitHub is down: every request answers 503.
    down: bool,
}

#[derive(Clone, Default)]
struct FakeGithub(Arc<Mutex<State>>);

fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"message": message,
        "documentation_url": "https://docs.github.com/rest", "status": status.to_string()}))
}

fn user(login: &str) -> Value {
    json!({"login": login, "id": 9, "node_id": "MDQ6VXNlcjk=", "avatar_url": "https://avatars.githubusercontent.com/u/9",
        "gravatar_id": "", "url": format!("https://api.github.com/users/{login}"), "html_url": format!("https://github.com/{login}"),
        "type": "Bot", "site_admin": false})
}

fn has_label(issue: &Value, label: &str) -> bool {
    issue["labels"].as_array().is_some_and(|ls| ls.iter().any(|l| l["name"] == label))
}

impl Respond for FakeGithub {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let method = request.method.as_str().to_string();
        let path = request.url.path().to_string();
        s.log.push(format!("{method} {path}"));
        if s.down {
            return error(503, "Service Unavailable");
        }
        if request.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {TOKEN}")) {
            return error(401, "Bad credentials");
        }
        let Some(rest) = path.strip_prefix("/repos/acme/secops/issues") else { return error(404, "Not Found") };
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        match (method.as_str(), parts.as_slice()) {
            ("GET", []) => {
                let label = request.url.query_pairs().find(|(k, _)| k == "labels").map(|(_, v)| v.into_owned());
                let list: Vec<&Value> =
                    s.issues.iter().filter(|i| label.as_deref().is_none_or(|l| has_label(i, l))).collect();
                ResponseTemplate::new(200).set_body_json(list)
            }
            ("POST", []) => {
                let Some(title) = body["title"].as_str() else { return error(422, "Validation Failed") };
                let labels = body["labels"].as_array().cloned().unwrap_or_default();
                if labels.iter().any(|l| l.as_str().is_none_or(|l| l.len() > 50)) {
                    return error(422, "Validation Failed");
                }
                let number = 17 + s.issues.len() as u64;
                let issue = json!({"id": 2_200_000 + number, "node_id": "I_kwDO", "number": number,
                    "url": format!("https://api.github.com/repos/acme/secops/issues/{number}"),
                    "repository_url": "https://api.github.com/repos/acme/secops",
                    "labels_url": format!("https://api.github.com/repos/acme/secops/issues/{number}/labels{{/name}}"),
                    "comments_url": format!("https://api.github.com/repos/acme/secops/issues/{number}/comments"),
                    "events_url": format!("https://api.github.com/repos/acme/secops/issues/{number}/events"),
                    "html_url": format!("https://github.com/acme/secops/issues/{number}"),
                    "state": "open", "state_reason": null, "title": title, "body": body["body"],
                    "user": user("secbot[bot]"),
                    "labels": labels.iter().map(|l| json!({"id": 301, "node_id": "LA_kwDO", "name": l,
                        "url": "https://api.github.com/repos/acme/secops/labels/x", "description": null,
                        "color": "d73a4a", "default": false})).collect::<Vec<_>>(),
                    "assignee": null, "assignees": [], "milestone": null, "locked": false, "active_lock_reason": null,
                    "comments": 0, "closed_at": null, "created_at": "2026-11-20T00:00:00Z",
                    "updated_at": "2026-11-20T00:00:00Z", "author_association": "NONE"});
                s.issues.push(issue.clone());
                ResponseTemplate::new(201).set_body_json(issue)
            }
            ("PATCH", [number]) => {
                let Some(issue) =
                    s.issues.iter_mut().find(|i| i["number"].as_u64().is_some_and(|n| n.to_string() == *number))
                else {
                    return error(404, "Not Found");
                };
                for key in ["state", "state_reason", "title", "body"] {
                    if let Some(value) = body.get(key) {
                        issue[key] = value.clone();
                    }
                }
                ResponseTemplate::new(200).set_body_json(issue.clone())
            }
            ("POST", [number, "comments"]) => {
                let n: u64 = number.parse().unwrap_or_default();
                let text = body["body"].as_str().unwrap_or_default().to_string();
                s.comments.push((n, text.clone()));
                ResponseTemplate::new(201).set_body_json(json!({"id": 1, "body": text, "user": user("secbot[bot]")}))
            }
            ("GET", [number, "comments"]) => {
                let n: u64 = number.parse().unwrap_or_default();
                let list: Vec<Value> =
                    s.comments.iter().filter(|(i, _)| *i == n).map(|(_, b)| json!({"id": 1, "body": b})).collect();
                ResponseTemplate::new(200).set_body_json(list)
            }
            _ => error(404, "Not Found"),
        }
    }
}

impl FakeGithub {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn writes(&self) -> Vec<String> {
        self.with(|s| s.log.iter().filter(|l| !l.starts_with("GET")).cloned().collect())
    }
}

/// The agent's catalog record: its risk tier sets the finding's severity
/// (`low` → medium, `medium` → high), the change a ticket is told about.
fn catalog(scratch: &Scratch, tier: &str) {
    scratch.write(
        "agents.toml",
        &format!(
            "[[agent]]\nid = \"build-bot\"\nowner = \"alice@acme.example\"\npurpose = \"Builds\"\n\
             risk_tier = \"{tier}\"\nallowed_systems = [\"forge\"]\nidentities = [\"forge:agent:bot\"]\n"
        ),
    );
}

fn company(with_key: bool) -> Value {
    let credentials = if with_key {
        json!([{"id": "k1", "kind": "api_key", "name": "deploy key", "holder": "bot",
                "created_at": "2026-11-01T00:00:00Z", "last_used_at": "2026-11-19T00:00:00Z", "expires_at": null}])
    } else {
        json!([])
    };
    json!({
        "version": 1, "system": "forge", "collected_at": "2026-11-20T00:00:00Z",
        "identities": [
            {"id": "u1", "kind": "human", "name": "Alice", "email": "alice@acme.example", "active": true},
            {"id": "bot", "kind": "agent", "name": "Build bot @octocat", "owner": "alice@acme.example", "active": true}
        ],
        "groups": [{"id": "eng", "name": "Engineering", "members": ["u1", "bot"]}],
        "resources": [{"id": "repo", "kind": "repo", "name": "payments", "environment": "prod"}],
        "grants": [{"principal": "eng", "resource": "repo", "actions": ["read"]}],
        "credentials": credentials
    })
}

/// Runs one scan at `now` (off the async runtime: the fake answers on it).
async fn scan(scratch_config: &str, now: &str) {
    let args: Vec<String> =
        ["scan", "--config", scratch_config, "--now", now, "--format", "json"].iter().map(|s| s.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run_with_env(&refs, &[("AG_GH_TOKEN", TOKEN)])
    })
    .await
    .expect("scan task");
    assert_eq!(code(&output), 0, "scan at {now} failed:\n{}", stderr(&output));
}

async fn sql(scratch: &Scratch, statement: &str) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", scratch.path("store.db").display());
    let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("open store");
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string())).execute(&mut connection).await.expect("sql");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_issues_follow_the_finding_lifecycle_across_scans() {
    let server = MockServer::start().await;
    let fake = FakeGithub::default();
    Mock::given(any()).respond_with(fake.clone()).mount(&server).await;
    let scratch = Scratch::new();
    let forge = scratch.path("forge.json");
    write_json(&forge, &company(true));
    catalog(&scratch, "low");
    scratch.write(
        "accessgraph.toml",
        &format!(
            "[store]\nurl = \"sqlite://store.db\"\n\n[catalog]\npath = \"agents.toml\"\n\n[[source]]\nname = \"forge\"\nkind = \"snapshot\"\npath = \"forge.json\"\n\n\
             [[sink]]\nkind = \"github-issues\"\nrepo = \"acme/secops\"\ntoken = {{ env = \"AG_GH_TOKEN\" }}\n\
             base_url = \"{uri}\"\nlabels = [\"security\"]\nrules = [\"secret.standing\"]\n\
             report_url = \"https://accessgraph.acme.example\"\n\n\
             [[sink]]\nname = \"urgent\"\nkind = \"webhook\"\nurl = \"{uri}/hook\"\nmin_severity = \"critical\"\n",
            uri = server.uri()
        ),
    );
    let config = scratch.config();

    // Opened: one issue, found by nobody first, carrying the fingerprint label.
    scan(&config, "2026-11-20T00:00:00Z").await;
    assert_eq!(fake.writes(), ["POST /repos/acme/secops/issues"], "one issue filed, nothing else");
    let (fingerprint, body) = fake.with(|s| {
        let issue = &s.issues[0];
        let label = issue["labels"]
            .as_array()
            .and_then(|ls| ls.iter().find_map(|l| l["name"].as_str()?.strip_prefix("accessgraph:").map(str::to_string)))
            .expect("fingerprint label");
        (label, issue["body"].as_str().unwrap_or_default().to_string())
    });
    assert!(fake.with(|s| s.issues[0]["title"].as_str().unwrap_or_default().starts_with("[MEDIUM] secret.standing:")));
    assert!(body.contains("https://accessgraph.acme.example/reports/latest"), "{body}");
    assert!(body.contains("Alice"), "the owner is named: {body}");
    assert!(!body.contains("@octocat"), "mentions are neutralised: {body}");
    assert!(!body.contains(TOKEN));

    // Unchanged rescan: no call at all.
    let calls = fake.with(|s| s.log.len());
    scan(&config, "2026-11-20T06:00:00Z").await;
    assert_eq!(fake.with(|s| s.log.len()), calls, "an unchanged scan makes no call");

    // Killed between "created" and "outbox marked done", mapping lost too:
    // the redelivery finds the issue by its label and files nothing.
    sql(&scratch, "UPDATE outbox SET delivered_at = NULL WHERE event = 'opened'").await;
    sql(&scratch, "DELETE FROM tickets").await;
    scan(&config, "2026-11-20T07:00:00Z").await;
    assert!(fake.with(|s| s.log.len()) > calls, "the opened event was delivered again");
    assert_eq!(fake.with(|s| s.issues.len()), 1, "no duplicate issue");
    assert_eq!(fake.writes().len(), 1);

    // The finding changes (its severity): exactly one comment.
    catalog(&scratch, "medium");
    scan(&config, "2026-11-21T00:00:00Z").await;
    assert_eq!(fake.with(|s| s.comments.len()), 1, "one comment for the change");
    let comment = fake.with(|s| s.comments[0].1.clone());
    assert!(comment.contains("medium → high"), "the comment says what changed: {comment}");
    assert!(fake.with(|s| s.issues[0]["title"].as_str().unwrap_or_default().starts_with("[HIGH]")));
    assert_eq!(fake.with(|s| s.issues.len()), 1);

    // Resolved: closing comment, closed.
    write_json(&forge, &company(false));
    scan(&config, "2026-11-22T00:00:00Z").await;
    assert_eq!(fake.with(|s| s.issues[0]["state"].clone()), "closed");
    assert!(fake.with(|s| s.comments.last().is_some_and(|(_, b)| b.contains("Resolved"))));

    // Came back: reopened with a comment.
    write_json(&forge, &company(true));
    scan(&config, "2026-11-23T00:00:00Z").await;
    assert_eq!(fake.with(|s| s.issues[0]["state"].clone()), "open");
    assert!(fake.with(|s| s.comments.last().is_some_and(|(_, b)| b.contains("Reopened"))));
    let comments_before = fake.with(|s| s.comments.len());

    // GitHub down for two scans while the finding changes and resolves.
    fake.with(|s| s.down = true);
    catalog(&scratch, "low");
    scan(&config, "2026-11-24T00:00:00Z").await;
    write_json(&forge, &company(false));
    scan(&config, "2026-11-25T00:00:00Z").await;
    assert_eq!(fake.with(|s| s.comments.len()), comments_before, "nothing reached GitHub");
    assert_eq!(fake.with(|s| s.issues[0]["state"].clone()), "open");
    // Back up: both events, once each, in order.
    fake.with(|s| s.down = false);
    scan(&config, "2026-11-26T00:00:00Z").await;
    let comments = fake.with(|s| s.comments.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>());
    assert_eq!(comments.len(), comments_before + 2, "update and close, once each");
    assert!(comments[comments_before].contains("changed"), "update first: {:?}", &comments[comments_before..]);
    assert!(comments[comments_before + 1].contains("Resolved"), "then the close");
    assert_eq!(fake.with(|s| s.issues[0]["state"].clone()), "closed");

    // A scan with nothing new delivers nothing again.
    let calls = fake.with(|s| s.log.len());
    scan(&config, "2026-11-27T00:00:00Z").await;
    assert_eq!(fake.with(|s| s.log.len()), calls);

    // Mapping deleted, finding back: found by label, reopened, no new issue.
    sql(&scratch, "DELETE FROM tickets").await;
    write_json(&forge, &company(true));
    scan(&config, "2026-11-28T00:00:00Z").await;
    assert_eq!(fake.with(|s| s.issues.len()), 1, "one issue for the whole story");
    assert_eq!(fake.with(|s| s.issues[0]["state"].clone()), "open");

    // The filtered webhook (critical only) never received anything, and
    // every request was for the fingerprint's own issue.
    assert!(fake.with(|s| s.log.iter().all(|l| !l.contains("/hook"))));
    assert!(fake.with(|s| s.issues.iter().all(|i| has_label(i, &format!("accessgraph:{fingerprint}")))));
}
