//! Bench: the GitHub connector against a mocked organization of 1,000
//! repositories, 500 members and 50 teams, served by wiremock on 127.0.0.1
//! from the shapes of `fixtures/github/` (every object complete, as the
//! fixtures are).
//!
//! Reports requests per repository for a full sync and for an unchanged
//! re-sync answered from the ETag cache (total, and counted against the rate
//! budget, i.e. not answered 304), wall time, and peak memory (VmHWM, reset
//! before each phase through /proc/self/clear_refs).
//!
//!     cargo bench -p accessgraph-connectors --bench github_sync
//!
//! Three runs: every default branch protected; 30% unprotected; and 30%
//! unprotected without a GraphQL endpoint (the REST fallback, where GitHub
//! answers an unprotected branch with a 404, which carries no ETag and so is
//! counted on every sync). The mock answers the connector's batched GraphQL
//! query (`POST /graphql`) per repository, like GitHub.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accessgraph_config::{GithubSettings, SecretRef};
use accessgraph_connectors::Connector;
use accessgraph_connectors::cache::{MemoryCache, ResponseCache};
use accessgraph_connectors::github::{GithubConnector, GithubStats, Tuning};
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[path = "../src/github/mock.rs"]
mod mock;

use mock::{ExpectAuth, Reply, fixture, fixtures_dir};

const REPOS: usize = 1_000;
const MEMBERS: usize = 500;
const OWNERS: usize = 5;
const TEAMS: usize = 50;
const TEAM_MEMBERS: usize = 10;
const TEAM_REPOS: usize = 20;
const PAGE: usize = 100;
const TOKEN: &str = "ghp_benchToken000000000000000000000000";
const ORG_ID: u64 = 9001;

/// Every route of the organization, by `path?sorted-query` (no `per_page`),
/// and the GraphQL answers per repository.
struct Org {
    routes: HashMap<String, Reply>,
    /// Repository name → its part of a `BranchRules` answer (empty: no
    /// GraphQL endpoint, as on a GitHub Enterprise Server without it).
    graphql: HashMap<String, Value>,
}

impl Org {
    /// Answers the connector's batched query: one aliased repository per
    /// `$nN` variable, as GitHub would.
    fn graphql(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let query = body["query"].as_str().unwrap_or_default();
        let mut data = serde_json::Map::new();
        if query.starts_with("query ") {
            for (key, value) in body["variables"].as_object().into_iter().flatten() {
                let Some(index) = key.strip_prefix('n') else { continue };
                let name = value.as_str().unwrap_or_default();
                data.insert(format!("r{index}"), self.graphql.get(name).cloned().unwrap_or(Value::Null));
            }
        }
        let mut reply = Reply::json(serde_json::to_vec(&json!({ "data": data })).expect("json"));
        reply.etag = false;
        reply.auth = Builder::auth();
        reply.respond(request)
    }
}

impl Respond for Org {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if request.method.as_str() == "POST" && request.url.path() == "/graphql" && !self.graphql.is_empty() {
            return self.graphql(request);
        }
        let mut pairs: Vec<(String, String)> = request
            .url
            .query_pairs()
            .filter(|(k, _)| k != "per_page")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.sort();
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let key = if query.is_empty() {
            request.url.path().to_string()
        } else {
            format!("{}?{}", request.url.path(), query.join("&"))
        };
        match self.routes.get(&key) {
            Some(reply) => reply.respond(request),
            None => ResponseTemplate::new(404).set_body_raw(
                r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest","status":"404"}"#,
                "application/json",
            ),
        }
    }
}

fn template(name: &str, index: usize) -> Value {
    let list: Vec<Value> =
        serde_json::from_slice(&fixture(&fixtures_dir(env!("CARGO_MANIFEST_DIR")), name)).expect("fixture");
    list[index].clone()
}

/// A complete `simple-user` for `login`, from the fixture's.
fn user(login: &str, id: u64) -> Value {
    let mut value = template("outside-collaborators.json", 0);
    if let Some(object) = value.as_object_mut() {
        for field in object.values_mut() {
            if let Some(text) = field.as_str() {
                let text = text
                    .replace("/users/eve", &format!("/users/{login}"))
                    .replace("github.com/eve", &format!("github.com/{login}"))
                    .replace("1666", &id.to_string());
                *field = text.into();
            }
        }
    }
    value["login"] = login.into();
    value["id"] = id.into();
    value
}

fn repo(name: &str, id: u64) -> Value {
    let text = template("repos.json", 0).to_string().replace("payments", name).replace("42001", &id.to_string());
    serde_json::from_str(&text).expect("repo")
}

fn team(slug: &str, id: u64) -> Value {
    let mut value = template("teams.json", 0);
    let text = value.to_string().replace("platform", slug).replace("teams/7", &format!("teams/{id}"));
    value = serde_json::from_str(&text).expect("team");
    value["id"] = id.into();
    value["name"] = slug.into();
    value
}

struct Builder {
    base: String,
    routes: HashMap<String, Reply>,
}

impl Builder {
    fn auth() -> ExpectAuth {
        ExpectAuth::Exactly(format!("Bearer {TOKEN}"))
    }

    fn json(&mut self, key: &str, body: &Value) {
        let mut reply = Reply::json(serde_json::to_vec(body).expect("json"));
        reply.auth = Builder::auth();
        self.routes.insert(key.to_string(), reply);
    }

    /// A `Link`-paged array: page 1 at `first` (+`query`), later pages at
    /// `rest` (GitHub's `/organizations/ID/…` style), `PAGE` items each.
    fn paged(&mut self, first: &str, rest: &str, query: &[(&str, &str)], items: &[Value]) {
        let chunks: Vec<&[Value]> = if items.is_empty() { vec![&[]] } else { items.chunks(PAGE).collect() };
        let last = chunks.len();
        for (i, chunk) in chunks.iter().enumerate() {
            let page = i + 1;
            let mut pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            if page > 1 {
                pairs.push(("page".to_string(), page.to_string()));
            }
            pairs.sort();
            let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let path = if page == 1 { first } else { rest };
            let key = if q.is_empty() { path.to_string() } else { format!("{path}?{}", q.join("&")) };
            let mut reply = Reply::json(serde_json::to_vec(chunk).expect("json"));
            reply.auth = Builder::auth();
            if page < last {
                let mut next: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                next.push("per_page=100".to_string());
                next.push(format!("page={}", page + 1));
                reply.link = Some(format!("<{}{rest}?{}>; rel=\"next\"", self.base, next.join("&")));
            }
            self.routes.insert(key, reply);
        }
    }
}

fn organization(base: &str, unprotected_share: f64, with_graphql: bool) -> Org {
    let mut b = Builder { base: base.to_string(), routes: HashMap::new() };
    let dir = fixtures_dir(env!("CARGO_MANIFEST_DIR"));
    let raw = |name: &str| -> Value { serde_json::from_slice(&fixture(&dir, name)).expect("fixture") };
    b.json("/rate_limit", &raw("rate-limit.json"));
    b.json("/orgs/acme", &raw("org.json"));
    let users: Vec<Value> = (0..MEMBERS).map(|i| user(&format!("user{i:04}"), 10_000 + i as u64)).collect();
    b.paged("/orgs/acme/members", &format!("/organizations/{ORG_ID}/members"), &[("role", "admin")], &users[..OWNERS]);
    b.paged("/orgs/acme/members", &format!("/organizations/{ORG_ID}/members"), &[("role", "member")], &users[OWNERS..]);
    b.paged("/orgs/acme/outside_collaborators", "/orgs/acme/outside_collaborators", &[], &[user("eve", 1666)]);

    let repos: Vec<Value> = (0..REPOS).map(|i| repo(&format!("repo{i:04}"), 100_000 + i as u64)).collect();
    b.paged("/orgs/acme/repos", &format!("/organizations/{ORG_ID}/repos"), &[("type", "all")], &repos);

    let teams: Vec<Value> = (0..TEAMS).map(|i| team(&format!("team{i:02}"), 500 + i as u64)).collect();
    b.paged("/orgs/acme/teams", &format!("/organizations/{ORG_ID}/teams"), &[], &teams);
    for t in 0..TEAMS {
        let slug = format!("team{t:02}");
        let base = format!("/orgs/acme/teams/{slug}");
        let members: Vec<Value> = (0..TEAM_MEMBERS).map(|j| users[(t * TEAM_MEMBERS + j) % MEMBERS].clone()).collect();
        b.paged(&format!("{base}/members"), &format!("{base}/members"), &[("role", "member")], &members);
        b.paged(&format!("{base}/members"), &format!("{base}/members"), &[("role", "maintainer")], &[users[t].clone()]);
        let team_repos: Vec<Value> = (0..TEAM_REPOS)
            .map(|j| {
                let mut r = repos[(t * TEAM_REPOS + j) % REPOS].clone();
                r["permissions"] =
                    json!({"admin": false, "maintain": false, "push": true, "triage": true, "pull": true});
                r["role_name"] = "write".into();
                r
            })
            .collect();
        b.paged(&format!("{base}/repos"), &format!("{base}/repos"), &[], &team_repos);
    }

    let collaborator = template("repo-payments-collaborators.json", 1);
    let key = template("repo-payments-keys.json", 0);
    let protection = raw("repo-payments-protection.json");
    let secrets = raw("repo-payments-secrets.json");
    // GraphQL: payments' answer (classic rule, its own ruleset and the
    // organization's) as the template of a protected repository.
    let graphql_template = raw("graphql-branch-rules.json")["data"]["r0"].clone();
    let mut graphql = HashMap::new();
    let unprotected_of_ten = (unprotected_share * 10.0).round() as usize;
    for i in 0..REPOS {
        let name = format!("repo{i:04}");
        let base = format!("/repos/acme/{name}");
        let mut collaborators = vec![collaborator.clone()];
        let mut second = collaborator.clone();
        second["login"] = format!("user{:04}", (i * 7) % MEMBERS).into();
        collaborators.push(second);
        b.paged(
            &format!("{base}/collaborators"),
            &format!("{base}/collaborators"),
            &[("affiliation", "direct")],
            &collaborators,
        );
        let keys: Vec<Value> = if i % 10 == 0 {
            let mut k = key.clone();
            k["id"] = (900_000 + i as u64).into();
            vec![k]
        } else {
            Vec::new()
        };
        b.paged(&format!("{base}/keys"), &format!("{base}/keys"), &[], &keys);
        let protected = i % 10 >= unprotected_of_ten;
        if protected {
            let text = protection.to_string().replace("payments", &name);
            b.json(&format!("{base}/branches/main/protection"), &serde_json::from_str(&text).expect("protection"));
        }
        let mut answer = graphql_template.clone();
        answer["nameWithOwner"] = format!("acme/{name}").into();
        answer["deployKeys"]["totalCount"] = keys.len().into();
        if !protected {
            answer["defaultBranchRef"]["branchProtectionRule"] = Value::Null;
        }
        graphql.insert(name.clone(), answer);
        b.json(&format!("{base}/actions/secrets"), &secrets);
    }
    b.json("/orgs/acme/installations", &raw("installations.json"));
    b.json("/user/installations/25381/repositories", &raw("installation-25381-repositories.json"));
    b.json("/orgs/acme/personal-access-tokens", &raw("personal-access-tokens.json"));
    b.json("/orgs/acme/personal-access-tokens/25401/repositories", &Value::Array(vec![repos[0].clone()]));
    b.json("/orgs/acme/credential-authorizations", &raw("credential-authorizations.json"));
    b.json("/orgs/acme/actions/secrets", &raw("org-secrets.json"));
    let rulesets = raw("org-rulesets.json");
    b.paged("/orgs/acme/rulesets", "/orgs/acme/rulesets", &[("targets", "branch")], rulesets.as_array().expect("list"));
    for ruleset in rulesets.as_array().expect("list") {
        let id = ruleset["id"].as_u64().expect("id");
        b.json(&format!("/orgs/acme/rulesets/{id}"), &raw(&format!("org-ruleset-{id}.json")));
    }
    if !with_graphql {
        graphql.clear();
    }
    Org { routes: b.routes, graphql }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn current_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Phase {
    stats: GithubStats,
    wall: Duration,
    rss_before_kib: u64,
    peak_kib: u64,
    nodes: usize,
    edges: usize,
}

async fn phase(connector: &GithubConnector) -> Phase {
    reset_peak();
    let rss_before_kib = current_rss_kib();
    let started = Instant::now();
    let fragment = connector.sync().await.expect("sync");
    let wall = started.elapsed();
    Phase {
        stats: connector.last_stats().expect("stats"),
        wall,
        rss_before_kib,
        peak_kib: peak_rss_kib(),
        nodes: fragment.nodes.len(),
        edges: fragment.edges.len(),
    }
}

fn print(label: &str, p: &Phase) {
    let per_repo = |n: u64| n as f64 / REPOS as f64;
    println!(
        "| {label} | {} | {:.2} | {} | {:.3} | {} | {:.2} s | {:.1} MiB | {:.1} MiB | {} / {} |",
        p.stats.requests,
        per_repo(p.stats.requests),
        p.stats.counted,
        per_repo(p.stats.counted),
        p.stats.not_modified,
        p.wall.as_secs_f64(),
        p.rss_before_kib as f64 / 1024.0,
        p.peak_kib as f64 / 1024.0,
        p.nodes,
        p.edges,
    );
}

async fn scenario(title: &str, unprotected_share: f64, with_graphql: bool) {
    let server = MockServer::builder().disable_request_recording().start().await;
    Mock::given(any()).respond_with(organization(&server.uri(), unprotected_share, with_graphql)).mount(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("token");
    let settings =
        GithubSettings { org: "acme".into(), token: Some(SecretRef::File(token)), app: None, base_url: server.uri() };
    // The client-side limiter is lifted to measure the connector itself;
    // against github.com the default 10 requests/s bounds the wall time
    // (requests / 10 s).
    let tuning = Tuning { requests_per_second: 100_000, burst: 100_000, ..Tuning::default() };
    let cache = Arc::new(MemoryCache::new());
    let connector = |cache: &Arc<MemoryCache>| {
        GithubConnector::new("bench", settings.clone())
            .with_tuning(tuning.clone())
            .with_cache(Some(cache.clone() as Arc<dyn ResponseCache>))
    };
    println!("\n{title}\n");
    println!(
        "| sync | requests | per repo | counted | counted per repo | 304s | wall | RSS before | peak RSS | nodes / edges |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let full = phase(&connector(&cache)).await;
    print("full (empty cache)", &full);
    let again = phase(&connector(&cache)).await;
    print("unchanged re-sync", &again);
    println!("\ncached pages: {}, body bytes full sync: {:.1} MiB", cache.len(), full.stats.bytes as f64 / 1_048_576.0);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        println!(
            "GitHub sync bench: {REPOS} repositories, {MEMBERS} members ({OWNERS} owners), {TEAMS} teams \
             ({TEAM_MEMBERS} members, {TEAM_REPOS} repositories each), 2 collaborators per repository, \
             a deploy key on every 10th; concurrency {}",
            Tuning::default().concurrency
        );
        scenario("Every default branch protected:", 0.0, true).await;
        scenario("30% of default branches unprotected:", 0.3, true).await;
        scenario("30% unprotected, no GraphQL endpoint (REST fallback; each unprotected branch a 404):", 0.3, false)
            .await;
    });
}
