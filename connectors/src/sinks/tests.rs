//! Ticket sinks against in-process fakes of GitHub and Jira that keep state
//! (issues, labels, comments, statuses) and answer in the APIs' wire shapes
//! (`shared/api-notes/github.md` §6.14, `jira.md`). The fakes check what
//! they are sent (required fields, label length, ADF documents) and answer
//! 400/422 when it is wrong, so a malformed request fails the test.
//!
//! Assertions are on calls made and state reached, never on durations.

use super::*;
use crate::http::{ClientOptions, HttpClient};
use accessgraph_config::{JiraSettings, Secret, SecretRef};
use accessgraph_graph::{Finding, Severity};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "ghp_testtoken000000000000000000000000";
const REPO: &str = "acme/secops";

fn fast(mut options: ClientOptions) -> ClientOptions {
    options.requests_per_second = 1000;
    options.burst = 1000;
    options.base_backoff = Duration::from_millis(1);
    options.max_backoff = Duration::from_millis(5);
    options.max_rate_limit_wait = Duration::from_secs(10);
    options.timeout = Duration::from_secs(10);
    options
}

fn finding(severity: Severity, evidence: Vec<Vec<&str>>) -> Finding {
    Finding::new(
        "secret.standing",
        severity,
        "gh:app:deployer",
        "gh:pat:9",
        "Token of @octocat never expires",
        "Created 2025-01-01; no expiry.",
        "Rotate the token.",
        evidence.into_iter().map(|p| p.into_iter().map(str::to_string).collect()).collect(),
        Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).single().unwrap_or_default(),
    )
}

fn event(kind: EventKind, id: u64, finding: &Finding) -> TicketEvent {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).single().unwrap_or_default();
    TicketEvent::new(kind, id.to_string(), finding, at)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn body_json(request: &Request) -> Option<Value> {
    serde_json::from_slice(&request.body).ok()
}

// ---------------------------------------------------------------- GitHub ---

fn simple_user(login: &str, id: u64) -> Value {
    json!({ "login": login, "id": id, "node_id": "MDQ6VXNlcjEwMDE=",
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"), "gravatar_id": "",
        "url": format!("https://api.github.com/users/{login}"), "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("https://api.github.com/users/{login}/followers"),
        "following_url": format!("https://api.github.com/users/{login}/following{{/other_user}}"),
        "gists_url": format!("https://api.github.com/users/{login}/gists{{/gist_id}}"),
        "starred_url": format!("https://api.github.com/users/{login}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("https://api.github.com/users/{login}/subscriptions"),
        "organizations_url": format!("https://api.github.com/users/{login}/orgs"),
        "repos_url": format!("https://api.github.com/users/{login}/repos"),
        "events_url": format!("https://api.github.com/users/{login}/events{{/privacy}}"),
        "received_events_url": format!("https://api.github.com/users/{login}/received_events"),
        "type": "User", "user_view_type": "public", "site_admin": false })
}

fn basic_error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()}))
}

#[derive(Debug, Clone)]
struct GhIssue {
    number: u64,
    title: String,
    body: String,
    labels: Vec<String>,
    assignees: Vec<String>,
    state: String,
    state_reason: Option<String>,
}

#[derive(Default)]
struct GhState {
    issues: Vec<GhIssue>,
    comments: BTreeMap<u64, Vec<String>>,
    /// `METHOD /path` of every request, in order.
    log: Vec<String>,
    /// Responses forced on the next requests (outages, rate limits).
    forced: VecDeque<ResponseTemplate>,
    /// Logins that cannot be assigned in the repository.
    unassignable: Vec<String>,
    /// Fail PATCH requests with this status while set.
    patch_fails: Option<u16>,
}

#[derive(Clone, Default)]
struct FakeGithub(Arc<Mutex<GhState>>);

impl GhIssue {
    fn json(&self) -> Value {
        let base = format!("https://api.github.com/repos/{REPO}/issues/{}", self.number);
        let labels: Vec<Value> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, name)| json!({"id": 300 + i, "node_id": "LA_kwDO", "name": name, "description": null,
                "url": format!("https://api.github.com/repos/{REPO}/labels/{name}"), "color": "d73a4a", "default": false}))
            .collect();
        let assignees: Vec<Value> = self.assignees.iter().map(|l| simple_user(l, 1001)).collect();
        json!({ "id": 2_200_000 + self.number, "node_id": "I_kwDOAAAAAc5AAAAB", "url": base,
            "repository_url": format!("https://api.github.com/repos/{REPO}"),
            "labels_url": format!("{base}/labels{{/name}}"), "comments_url": format!("{base}/comments"),
            "events_url": format!("{base}/events"),
            "html_url": format!("https://github.com/{REPO}/issues/{}", self.number), "number": self.number,
            "state": self.state, "state_reason": self.state_reason, "title": self.title, "body": self.body,
            "user": simple_user("secbot[bot]", 9), "labels": labels,
            "assignee": assignees.first().cloned(), "assignees": assignees, "milestone": null, "locked": false,
            "active_lock_reason": null, "comments": 0,
            "closed_at": if self.state == "closed" { json!("2026-11-21T00:00:00Z") } else { Value::Null },
            "created_at": "2026-11-20T00:00:00Z", "updated_at": "2026-11-20T00:00:00Z", "author_association": "NONE" })
    }
}

impl Respond for FakeGithub {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = lock(&self.0);
        let method = request.method.as_str().to_string();
        let path = request.url.path().to_string();
        s.log.push(format!("{method} {path}"));
        if let Some(forced) = s.forced.pop_front() {
            return forced;
        }
        let auth = request.headers.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {TOKEN}")) {
            return basic_error(401, "Bad credentials");
        }
        if request.headers.get("x-github-api-version").is_none() {
            return basic_error(400, "missing API version");
        }
        let prefix = format!("/repos/{REPO}/issues");
        let Some(rest) = path.strip_prefix(&prefix) else { return basic_error(404, "Not Found") };
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        match (method.as_str(), parts.as_slice()) {
            ("GET", []) => {
                let query: BTreeMap<String, String> = request.url.query_pairs().into_owned().collect();
                let wanted: Vec<&str> = query.get("labels").map(|l| l.split(',').collect()).unwrap_or_default();
                let state = query.get("state").map(String::as_str).unwrap_or("open");
                let list: Vec<Value> = s
                    .issues
                    .iter()
                    .filter(|i| wanted.iter().all(|w| i.labels.iter().any(|l| l == w)))
                    .filter(|i| state == "all" || i.state == state)
                    .map(GhIssue::json)
                    .collect();
                ResponseTemplate::new(200).set_body_json(list)
            }
            ("POST", []) => {
                let Some(body) = body_json(request) else { return basic_error(400, "Problems parsing JSON") };
                let Some(title) = body["title"].as_str().filter(|t| !t.is_empty()) else {
                    return basic_error(422, "Validation Failed");
                };
                let labels: Vec<String> = body["labels"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|l| l.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                if labels.iter().any(|l| l.chars().count() > 50) {
                    return basic_error(422, "Validation Failed");
                }
                let assignees: Vec<String> = body["assignees"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|l| l.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                if assignees.iter().any(|a| s.unassignable.contains(a)) {
                    return basic_error(422, "Validation Failed");
                }
                let number = 17 + s.issues.len() as u64;
                let issue = GhIssue {
                    number,
                    title: title.to_string(),
                    body: body["body"].as_str().unwrap_or_default().to_string(),
                    labels,
                    assignees,
                    state: "open".into(),
                    state_reason: None,
                };
                let json = issue.json();
                s.issues.push(issue);
                ResponseTemplate::new(201)
                    .insert_header("location", format!("https://api.github.com/repos/{REPO}/issues/{number}"))
                    .set_body_json(json)
            }
            ("PATCH", [number]) => {
                if let Some(status) = s.patch_fails {
                    return basic_error(status, "Validation Failed");
                }
                let Some(body) = body_json(request) else { return basic_error(400, "Problems parsing JSON") };
                let Some(issue) = s.issues.iter_mut().find(|i| i.number.to_string() == *number) else {
                    return basic_error(404, "Not Found");
                };
                if let Some(state) = body.get("state") {
                    match state.as_str() {
                        Some(st @ ("open" | "closed")) => issue.state = st.to_string(),
                        _ => return basic_error(422, "Validation Failed"),
                    }
                    let reason = body["state_reason"].as_str();
                    if !matches!(reason, None | Some("completed" | "not_planned" | "duplicate" | "reopened")) {
                        return basic_error(422, "Validation Failed");
                    }
                    issue.state_reason = reason.map(str::to_string);
                }
                if let Some(title) = body["title"].as_str() {
                    issue.title = title.to_string();
                }
                if let Some(text) = body["body"].as_str() {
                    issue.body = text.to_string();
                }
                ResponseTemplate::new(200).set_body_json(issue.json())
            }
            ("POST", [number, "comments"]) => {
                let Some(text) = body_json(request).and_then(|b| b["body"].as_str().map(str::to_string)) else {
                    return basic_error(422, "Validation Failed");
                };
                let Some(n) = s.issues.iter().find(|i| i.number.to_string() == *number).map(|i| i.number) else {
                    return basic_error(404, "Not Found");
                };
                s.comments.entry(n).or_default().push(text.clone());
                let id = 9000 + s.comments.values().map(Vec::len).sum::<usize>();
                ResponseTemplate::new(201).set_body_json(json!({"id": id, "node_id": "IC_kwDO",
                    "url": format!("https://api.github.com/repos/{REPO}/issues/comments/{id}"),
                    "html_url": format!("https://github.com/{REPO}/issues/{n}#issuecomment-{id}"),
                    "body": text, "user": simple_user("secbot[bot]", 9), "created_at": "2026-11-20T00:00:00Z",
                    "updated_at": "2026-11-20T00:00:00Z",
                    "issue_url": format!("https://api.github.com/repos/{REPO}/issues/{n}"),
                    "author_association": "NONE"}))
            }
            ("GET", [number, "comments"]) => {
                let n: u64 = number.parse().unwrap_or_default();
                let list: Vec<Value> = s
                    .comments
                    .get(&n)
                    .map(|c| {
                        c.iter().map(|b| json!({"id": 1, "body": b, "user": simple_user("secbot[bot]", 9)})).collect()
                    })
                    .unwrap_or_default();
                ResponseTemplate::new(200).set_body_json(list)
            }
            _ => basic_error(404, "Not Found"),
        }
    }
}

impl FakeGithub {
    async fn start() -> (MockServer, FakeGithub) {
        let server = MockServer::start().await;
        let fake = FakeGithub::default();
        Mock::given(any()).respond_with(fake.clone()).mount(&server).await;
        (server, fake)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GhState> {
        lock(&self.0)
    }

    fn calls(&self, method: &str, suffix: &str) -> usize {
        self.state().log.iter().filter(|l| l.starts_with(method) && l.ends_with(suffix)).count()
    }

    fn log_len(&self) -> usize {
        self.state().log.len()
    }
}

fn github_sink(server: &MockServer, tickets: Arc<MemoryTickets>) -> GithubIssuesSink {
    let options = fast(github_client_options(&server.uri(), TOKEN).expect("options"));
    let client = HttpClient::new(options).expect("client");
    let context = SinkContext { tickets, report_url: Some("https://accessgraph.acme.example".into()) };
    GithubIssuesSink::with_client("gh", client, REPO, vec!["security".into()], None, context)
}

#[tokio::test]
async fn github_lifecycle_files_once_comments_closes_and_reopens() {
    let (server, fake) = FakeGithub::start().await;
    let tickets = Arc::new(MemoryTickets::new());
    let sink = github_sink(&server, tickets.clone());
    let first = finding(Severity::High, vec![vec!["gh:app:deployer", "gh:pat:9"]]);

    sink.deliver(&event(EventKind::Opened, 1, &first)).await.expect("opened");
    assert_eq!(fake.calls("GET", "/issues"), 1, "searched by label before filing");
    assert_eq!(fake.calls("POST", "/issues"), 1, "filed once");
    {
        let state = fake.state();
        let issue = &state.issues[0];
        assert_eq!(issue.title, "[HIGH] secret.standing: Token of @\u{200D}octocat never expires");
        assert!(issue.labels.contains(&"security".to_string()));
        assert!(issue.labels.contains(&format!("accessgraph:{}", first.fingerprint)));
        assert!(issue.body.contains("Why it matters"), "{}", issue.body);
        assert!(issue.body.contains("https://accessgraph.acme.example/reports/latest"));
        assert!(!issue.body.contains("@octocat"), "mentions are neutralised");
    }

    // A redelivery of the same event (outbox not acknowledged): no call.
    let before = fake.log_len();
    sink.deliver(&event(EventKind::Opened, 1, &first)).await.expect("replay");
    assert_eq!(fake.log_len(), before, "an applied event makes no call");

    // Evidence changed: one comment saying what changed, title refreshed.
    let mut second = first.clone();
    second.severity = Severity::Critical;
    second.evidence.push(vec!["gh:team:ops".into(), "gh:pat:9".into()]);
    sink.deliver(&event(EventKind::Updated, 2, &second)).await.expect("updated");
    assert_eq!(fake.calls("POST", "/comments"), 1);
    {
        let state = fake.state();
        let comment = &state.comments[&17][0];
        assert!(comment.contains("high → critical"), "{comment}");
        assert!(comment.contains("gh:team:ops"), "{comment}");
        assert!(state.issues[0].title.starts_with("[CRITICAL]"));
    }

    sink.deliver(&event(EventKind::Resolved, 3, &second)).await.expect("resolved");
    {
        let state = fake.state();
        assert_eq!(state.issues[0].state, "closed");
        assert_eq!(state.issues[0].state_reason.as_deref(), Some("completed"));
        assert!(state.comments[&17][1].contains("Resolved"));
    }

    sink.deliver(&event(EventKind::Reopened, 4, &second)).await.expect("reopened");
    let state = fake.state();
    assert_eq!(state.issues[0].state, "open");
    assert_eq!(state.issues[0].state_reason.as_deref(), Some("reopened"));
    assert!(state.comments[&17][2].contains("Reopened"));
    assert_eq!(state.issues.len(), 1, "one issue for the whole lifecycle");
    assert_eq!(state.comments[&17].len(), 3);
}

#[tokio::test]
async fn github_lost_mapping_and_crash_after_create_never_duplicate() {
    let (server, fake) = FakeGithub::start().await;
    let f = finding(Severity::High, vec![vec!["gh:app:deployer", "gh:pat:9"]]);
    let tickets = Arc::new(MemoryTickets::new());
    github_sink(&server, tickets.clone()).deliver(&event(EventKind::Opened, 1, &f)).await.expect("opened");

    // Killed between "created" and "outbox marked done", and the local
    // mapping is gone too: the redelivery finds the issue by its label.
    let fresh = Arc::new(MemoryTickets::new());
    github_sink(&server, fresh.clone()).deliver(&event(EventKind::Opened, 1, &f)).await.expect("redelivery");
    assert_eq!(fake.calls("POST", "/issues"), 1, "no duplicate issue");
    assert_eq!(fresh.get("gh", &f.fingerprint).and_then(|r| r.key).as_deref(), Some("17"));

    // Mapping deleted, then an update: found by label, commented on.
    tickets.clear();
    let mut changed = f.clone();
    changed.evidence.push(vec!["gh:team:ops".into(), "gh:pat:9".into()]);
    github_sink(&server, tickets.clone()).deliver(&event(EventKind::Updated, 2, &changed)).await.expect("updated");
    assert_eq!(fake.calls("POST", "/issues"), 1);
    assert_eq!(fake.calls("POST", "/comments"), 1);
    assert_eq!(fake.state().issues.len(), 1);
}

#[tokio::test]
async fn github_failure_after_comment_does_not_comment_twice() {
    let (server, fake) = FakeGithub::start().await;
    let tickets = Arc::new(MemoryTickets::new());
    let sink = github_sink(&server, tickets.clone());
    let f = finding(Severity::High, vec![vec!["gh:app:deployer", "gh:pat:9"]]);
    sink.deliver(&event(EventKind::Opened, 1, &f)).await.expect("opened");
    // The closing comment is posted, then closing fails (not retryable).
    fake.state().patch_fails = Some(422);
    let resolved = event(EventKind::Resolved, 2, &f);
    assert!(sink.deliver(&resolved).await.is_err());
    assert_eq!(fake.calls("POST", "/comments"), 1);
    fake.state().patch_fails = None;
    sink.deliver(&resolved).await.expect("retry");
    assert_eq!(fake.calls("POST", "/comments"), 1, "the retry found its comment");
    assert_eq!(fake.state().issues[0].state, "closed");
}

#[tokio::test]
async fn github_sink_down_then_up_delivers_every_event_once_in_order() {
    let (server, fake) = FakeGithub::start().await;
    let tickets = Arc::new(MemoryTickets::new());
    let sink = github_sink(&server, tickets.clone());
    let f = finding(Severity::High, vec![vec!["gh:app:deployer", "gh:pat:9"]]);
    let mut g = f.clone();
    g.evidence.push(vec!["gh:team:ops".into(), "gh:pat:9".into()]);
    let events = [event(EventKind::Opened, 1, &f), event(EventKind::Updated, 2, &g), event(EventKind::Resolved, 3, &g)];
    // Down: every request answers 503 (more than the client retries).
    for _ in 0..8 {
        fake.state().forced.push_back(basic_error(503, "Service Unavailable"));
    }
    assert!(sink.deliver(&events[0]).await.is_err(), "down");
    assert!(sink.deliver(&events[0]).await.is_err(), "still down");
    assert_eq!(fake.state().issues.len(), 0);
    fake.state().forced.clear();
    for e in &events {
        sink.deliver(e).await.expect("up");
    }
    let state = fake.state();
    assert_eq!(state.issues.len(), 1);
    assert_eq!(state.comments[&17].len(), 2);
    assert_eq!(state.issues[0].state, "closed");
    let writes: Vec<&String> = state.log.iter().filter(|l| !l.starts_with("GET")).collect();
    let order: Vec<&str> = writes.iter().map(|l| l.as_str()).collect();
    let create = order.iter().position(|l| l.ends_with("/issues") && l.starts_with("POST"));
    let close = order.iter().rposition(|l| l.starts_with("PATCH"));
    assert!(create < close, "filed before closed: {order:?}");
}

#[tokio::test]
async fn github_500s_and_secondary_limits_are_retried() {
    let (server, fake) = FakeGithub::start().await;
    let sink = github_sink(&server, Arc::new(MemoryTickets::new()));
    {
        let mut s = fake.state();
        s.forced.push_back(basic_error(500, "Server Error"));
        s.forced.push_back(
            basic_error(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            )
            .insert_header("retry-after", "1"),
        );
    }
    let f = finding(Severity::High, vec![]);
    sink.deliver(&event(EventKind::Opened, 1, &f)).await.expect("retried");
    assert_eq!(fake.state().issues.len(), 1);
    // 500 on the search, 403 on the search retry, then search + create.
    assert_eq!(fake.calls("GET", "/issues"), 3);
}

#[tokio::test]
async fn github_assigns_the_owner_and_files_without_when_rejected() {
    let (server, fake) = FakeGithub::start().await;
    let tickets = Arc::new(MemoryTickets::new());
    let account = NodeFacts {
        id: "gh:user:alice".into(),
        name: "alice".into(),
        kind: "human".into(),
        source: "gh".into(),
        source_kind: Some("github".into()),
        ..Default::default()
    };
    let person = NodeFacts {
        id: "person:alice@acme.example".into(),
        name: "Alice".into(),
        kind: "person".into(),
        email: Some("alice@acme.example".into()),
        accounts: vec![account],
        ..Default::default()
    };
    tickets.add_node(NodeFacts {
        id: "gh:app:deployer".into(),
        name: "deployer".into(),
        kind: "app".into(),
        source: "gh".into(),
        source_kind: Some("github".into()),
        owner: Some(Box::new(person)),
        ..Default::default()
    });
    let sink = github_sink(&server, tickets.clone());
    let f = finding(Severity::High, vec![]);
    sink.deliver(&event(EventKind::Opened, 1, &f)).await.expect("opened");
    {
        let state = fake.state();
        assert_eq!(state.issues[0].assignees, ["alice"]);
        assert!(state.issues[0].body.contains("Alice"), "owner named in the body");
    }
    // Another finding, owner not assignable in the repository.
    fake.state().unassignable.push("alice".into());
    let mut other = finding(Severity::High, vec![]);
    other.fingerprint = "0123456789abcdef0123456789abcdef".into();
    sink.deliver(&event(EventKind::Opened, 2, &other)).await.expect("filed without assignee");
    let state = fake.state();
    assert_eq!(state.issues.len(), 2);
    assert!(state.issues[1].assignees.is_empty());
}

// ------------------------------------------------------------------ Jira ---

#[derive(Debug, Clone)]
struct JiraIssue {
    id: u64,
    key: String,
    summary: String,
    labels: Vec<String>,
    category: &'static str,
}

#[derive(Default)]
struct JiraState {
    issues: Vec<JiraIssue>,
    comments: BTreeMap<String, Vec<Value>>,
    log: Vec<String>,
    forced: VecDeque<ResponseTemplate>,
}

#[derive(Clone, Default)]
struct FakeJira(Arc<Mutex<JiraState>>);

fn jira_error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"errorMessages": [message], "errors": {}}))
}

fn status_json(category: &str) -> Value {
    let (id, name, cat_id, cat_name, color) = match category {
        "done" => ("10002", "Done", 3, "Done", "green"),
        "indeterminate" => ("10001", "In Progress", 4, "In Progress", "yellow"),
        _ => ("10000", "To Do", 2, "To Do", "blue-gray"),
    };
    json!({"name": name, "id": id, "statusCategory": {"id": cat_id, "key": category, "name": cat_name, "colorName": color}})
}

fn transition_json(id: &str, name: &str, to: &str) -> Value {
    json!({"id": id, "name": name, "hasScreen": false, "isAvailable": true, "isConditional": false,
        "isGlobal": true, "isInitial": false, "to": status_json(to)})
}

/// Checks an ADF document the way Jira does (roughly): a `doc` of version 1
/// whose text nodes are non-empty strings.
fn valid_adf(doc: &Value) -> bool {
    fn nodes_ok(v: &Value) -> bool {
        if v["type"] == "text" && v["text"].as_str().is_none_or(str::is_empty) {
            return false;
        }
        v["content"].as_array().is_none_or(|c| c.iter().all(nodes_ok))
    }
    doc["type"] == "doc"
        && doc["version"] == 1
        && doc["content"].as_array().is_some_and(|c| !c.is_empty())
        && nodes_ok(doc)
}

impl Respond for FakeJira {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = lock(&self.0);
        let method = request.method.as_str().to_string();
        let path = request.url.path().to_string();
        s.log.push(format!("{method} {path}"));
        if let Some(forced) = s.forced.pop_front() {
            return forced;
        }
        let auth = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        use base64::Engine;
        let expected = base64::engine::general_purpose::STANDARD.encode("bot@acme.example:jira-token");
        if auth != format!("Basic {expected}") {
            return jira_error(401, "You are not authenticated.");
        }
        let parts: Vec<&str> = path.trim_start_matches("/rest/api/3/").split('/').collect();
        match (method.as_str(), parts.as_slice()) {
            ("GET", ["search", "jql"]) => {
                let query: BTreeMap<String, String> = request.url.query_pairs().into_owned().collect();
                let jql = query.get("jql").cloned().unwrap_or_default();
                if !jql.contains("project = \"SEC\"") {
                    return jira_error(400, "unbounded JQL");
                }
                let label = jql.split("labels = \"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default();
                let issues: Vec<Value> = s
                    .issues
                    .iter()
                    .filter(|i| i.labels.iter().any(|l| l == label))
                    .map(|i| {
                        json!({"id": i.id.to_string(), "key": i.key, "expand": "",
                        "self": format!("https://acme.atlassian.net/rest/api/3/issue/{}", i.id),
                        "fields": {"summary": i.summary, "labels": i.labels, "status": status_json(i.category)}})
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"isLast": true, "issues": issues}))
            }
            ("POST", ["issue"]) => {
                let Some(body) = body_json(request) else { return jira_error(400, "bad JSON") };
                let fields = &body["fields"];
                let ok = fields["project"]["key"] == "SEC"
                    && fields["issuetype"]["name"] == "Task"
                    && fields["summary"].as_str().is_some_and(|t| !t.is_empty() && t.chars().count() <= 255)
                    && valid_adf(&fields["description"]);
                let labels: Vec<String> = fields["labels"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|l| l.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                if !ok || labels.iter().any(|l| l.contains(' ')) {
                    return jira_error(400, "Field 'description' is invalid");
                }
                let id = 10042 + s.issues.len() as u64;
                let key = format!("SEC-{}", 42 + s.issues.len());
                s.issues.push(JiraIssue {
                    id,
                    key: key.clone(),
                    summary: fields["summary"].as_str().unwrap_or_default().to_string(),
                    labels,
                    category: "new",
                });
                ResponseTemplate::new(201).set_body_json(json!({"id": id.to_string(), "key": key,
                    "self": format!("https://acme.atlassian.net/rest/api/3/issue/{id}")}))
            }
            (m, ["issue", key, rest @ ..]) => {
                let key = key.to_string();
                let Some(index) = s.issues.iter().position(|i| i.key == key) else {
                    return jira_error(404, "Issue does not exist or you do not have permission to see it.");
                };
                match (m, rest) {
                    ("GET", []) => {
                        let i = &s.issues[index];
                        ResponseTemplate::new(200).set_body_json(json!({"id": i.id.to_string(), "key": i.key,
                            "fields": {"status": status_json(i.category)}}))
                    }
                    ("PUT", []) => {
                        let Some(body) = body_json(request) else { return jira_error(400, "bad JSON") };
                        if !valid_adf(&body["fields"]["description"]) {
                            return jira_error(400, "Field 'description' is invalid");
                        }
                        if let Some(summary) = body["fields"]["summary"].as_str() {
                            s.issues[index].summary = summary.to_string();
                        }
                        ResponseTemplate::new(204)
                    }
                    ("GET", ["transitions"]) => {
                        let list = if s.issues[index].category == "done" {
                            vec![transition_json("41", "Reopen", "new")]
                        } else {
                            vec![
                                transition_json("21", "Start", "indeterminate"),
                                transition_json("31", "Close it", "done"),
                            ]
                        };
                        ResponseTemplate::new(200).set_body_json(json!({"expand": "transitions", "transitions": list}))
                    }
                    ("POST", ["transitions"]) => {
                        let id = body_json(request).and_then(|b| b["transition"]["id"].as_str().map(str::to_string));
                        let category = s.issues[index].category;
                        let to = match (category, id.as_deref()) {
                            ("done", Some("41")) => "new",
                            (c, Some("31")) if c != "done" => "done",
                            (c, Some("21")) if c != "done" => "indeterminate",
                            _ => return jira_error(400, "Transition is not valid"),
                        };
                        s.issues[index].category = to;
                        ResponseTemplate::new(204)
                    }
                    ("POST", ["comment"]) => {
                        let Some(body) = body_json(request) else { return jira_error(400, "bad JSON") };
                        if !valid_adf(&body["body"]) {
                            return jira_error(400, "Comment body is invalid");
                        }
                        s.comments.entry(key).or_default().push(body["body"].clone());
                        ResponseTemplate::new(201).set_body_json(json!({"id": "10000", "body": body["body"]}))
                    }
                    ("GET", ["comment"]) => {
                        let list: Vec<Value> = s
                            .comments
                            .get(&key)
                            .map(|c| c.iter().rev().map(|b| json!({"id": "10000", "body": b})).collect())
                            .unwrap_or_default();
                        let total = list.len();
                        ResponseTemplate::new(200)
                            .set_body_json(json!({"comments": list, "startAt": 0, "maxResults": 100, "total": total}))
                    }
                    _ => jira_error(404, "not found"),
                }
            }
            _ => jira_error(404, "not found"),
        }
    }
}

impl FakeJira {
    async fn start() -> (MockServer, FakeJira) {
        let server = MockServer::start().await;
        let fake = FakeJira::default();
        Mock::given(any()).respond_with(fake.clone()).mount(&server).await;
        (server, fake)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, JiraState> {
        lock(&self.0)
    }

    fn calls(&self, method: &str, suffix: &str) -> usize {
        self.state().log.iter().filter(|l| l.starts_with(method) && l.ends_with(suffix)).count()
    }
}

fn jira_sink(server: &MockServer, tickets: Arc<MemoryTickets>) -> JiraSink {
    let options = fast(jira_client_options(&server.uri(), "bot@acme.example", "jira-token").expect("options"));
    let client = HttpClient::new(options).expect("client");
    let settings = JiraSettings {
        base_url: server.uri(),
        project: "SEC".into(),
        issue_type: "Task".into(),
        email: "bot@acme.example".into(),
        token: SecretRef::Env("UNUSED".into()),
        done_transition: "Close it".into(),
    };
    JiraSink::with_client("jira", client, &settings, None, SinkContext { tickets, report_url: None })
}

#[tokio::test]
async fn jira_lifecycle_with_adf_labels_and_transitions() {
    let (server, fake) = FakeJira::start().await;
    let tickets = Arc::new(MemoryTickets::new());
    let sink = jira_sink(&server, tickets.clone());
    let f = finding(Severity::High, vec![vec!["gh:app:deployer", "gh:pat:9"]]);
    sink.deliver(&event(EventKind::Opened, 1, &f)).await.expect("opened");
    assert_eq!(fake.calls("GET", "/search/jql"), 1);
    assert_eq!(fake.calls("POST", "/rest/api/3/issue"), 1);
    {
        let state = fake.state();
        assert_eq!(state.issues[0].labels, ["accessgraph".to_string(), format!("accessgraph:{}", f.fingerprint)]);
        assert!(state.issues[0].summary.starts_with("[HIGH] secret.standing:"));
    }
    assert_eq!(tickets.get("jira", &f.fingerprint).and_then(|r| r.key).as_deref(), Some("SEC-42"));

    let mut g = f.clone();
    g.evidence.push(vec!["gh:team:ops".into(), "gh:pat:9".into()]);
    sink.deliver(&event(EventKind::Updated, 2, &g)).await.expect("updated");
    assert_eq!(fake.calls("POST", "/comment"), 1);
    assert!(fake.state().comments["SEC-42"][0].to_string().contains("gh:team:ops"));

    sink.deliver(&event(EventKind::Resolved, 3, &g)).await.expect("resolved");
    assert_eq!(fake.state().issues[0].category, "done", "moved by the `Close it` transition");
    // Resolving again (a replay with a lost mapping) does not transition twice.
    let fresh = Arc::new(MemoryTickets::new());
    jira_sink(&server, fresh).deliver(&event(EventKind::Resolved, 3, &g)).await.expect("idempotent");
    assert_eq!(fake.calls("POST", "/transitions"), 1);

    sink.deliver(&event(EventKind::Reopened, 4, &g)).await.expect("reopened");
    let state = fake.state();
    assert_eq!(state.issues[0].category, "new");
    assert_eq!(state.issues.len(), 1);
    assert_eq!(state.comments["SEC-42"].len(), 3, "update, close and reopen comments");
}

#[tokio::test]
async fn jira_lost_mapping_finds_the_issue_by_label() {
    let (server, fake) = FakeJira::start().await;
    let f = finding(Severity::High, vec![]);
    jira_sink(&server, Arc::new(MemoryTickets::new())).deliver(&event(EventKind::Opened, 1, &f)).await.expect("opened");
    jira_sink(&server, Arc::new(MemoryTickets::new())).deliver(&event(EventKind::Opened, 1, &f)).await.expect("again");
    assert_eq!(fake.calls("POST", "/rest/api/3/issue"), 1, "no duplicate");
    assert_eq!(fake.state().issues.len(), 1);
}

#[tokio::test]
async fn jira_429_retry_after_is_honoured() {
    let (server, fake) = FakeJira::start().await;
    fake.state().forced.push_back(
        jira_error(429, "Rate limit exceeded")
            .insert_header("retry-after", "1")
            .insert_header("ratelimit-reason", "jira-burst-based"),
    );
    let f = finding(Severity::High, vec![]);
    jira_sink(&server, Arc::new(MemoryTickets::new()))
        .deliver(&event(EventKind::Opened, 1, &f))
        .await
        .expect("retried");
    assert_eq!(fake.calls("GET", "/search/jql"), 2);
    assert_eq!(fake.state().issues.len(), 1);
}

// --------------------------------------------------------------- Webhook ---

#[tokio::test]
async fn webhook_signature_verifies_with_the_shared_secret_and_500s_are_retried() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(500)).up_to_n_times(2).with_priority(1).mount(&server).await;
    Mock::given(any()).respond_with(ResponseTemplate::new(204)).with_priority(2).mount(&server).await;
    let url = format!("{}/hooks/s3cr3t-path", server.uri());
    let client = HttpClient::new(fast(webhook_client_options(&url))).expect("client");
    let sink = WebhookSink::with_client("hook", client, Some(Secret::new("shared-secret")));
    let f = finding(Severity::High, vec![]);
    sink.deliver(&event(EventKind::Opened, 7, &f)).await.expect("delivered after retries");
    let requests = server.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 3, "two 500s, then success");
    let last = &requests[2];
    assert_eq!(last.url.path(), "/hooks/s3cr3t-path");
    let header = last.headers.get(webhook::SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(verify_signature(b"shared-secret", &last.body, header), "signature verifies");
    assert!(!verify_signature(b"other-secret", &last.body, header));
    assert!(!verify_signature(b"shared-secret", b"{}", header), "a changed body fails");
    assert_eq!(last.headers.get(webhook::DELIVERY_HEADER).and_then(|v| v.to_str().ok()), Some("7"));
    let body: Value = serde_json::from_slice(&last.body).expect("JSON body");
    assert_eq!(body["event"], "opened");
    assert_eq!(body["fingerprint"], f.fingerprint);
    assert_eq!(body["finding"]["rule"], "secret.standing");
}

#[tokio::test]
async fn webhook_errors_hide_the_url_path() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(404)).mount(&server).await;
    let url = format!("{}/hooks/s3cr3t-path", server.uri());
    let client = HttpClient::new(fast(webhook_client_options(&url))).expect("client");
    let sink = WebhookSink::with_client("hook", client, None);
    let error = sink.deliver(&event(EventKind::Opened, 1, &finding(Severity::High, vec![]))).await;
    let message = error.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(!message.is_empty());
    assert!(!message.contains("s3cr3t"), "{message}");
    let requests = server.received_requests().await.unwrap_or_default();
    assert!(requests[0].headers.get(webhook::SIGNATURE_HEADER).is_none(), "no secret, no signature");
}

/// A sink that files events one at a time and refuses the event `fail_at`.
struct OneByOne {
    fail_at: u64,
    filed: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Sink for OneByOne {
    fn name(&self) -> &str {
        "one-by-one"
    }

    async fn deliver(&self, event: &TicketEvent) -> Result<(), SinkError> {
        if event.event_id == self.fail_at.to_string() {
            return Err(SinkError::Remote("refused".into()));
        }
        lock(&self.filed).push(event.event_id.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_run_delivered_one_at_a_time_stops_at_the_first_failure() {
    let finding = finding(Severity::High, vec![vec!["a"]]);
    let events: Vec<TicketEvent> = (1..=5).map(|id| event(EventKind::Opened, id, &finding)).collect();
    let run: Vec<&TicketEvent> = events.iter().collect();
    let sink = OneByOne { fail_at: 3, filed: Mutex::new(Vec::new()) };
    let (delivered, error) = sink.deliver_all(&run).await;
    assert_eq!(delivered, 2);
    assert!(matches!(error, Some(SinkError::Remote(_))), "{error:?}");
    assert_eq!(*lock(&sink.filed), vec!["1", "2"], "nothing after the failure");
    let sink = OneByOne { fail_at: 99, filed: Mutex::new(Vec::new()) };
    let (delivered, error) = sink.deliver_all(&run).await;
    assert_eq!((delivered, error.is_none()), (5, true));
}
