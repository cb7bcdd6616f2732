//! The GitHub connector against wiremock fed from `fixtures/github/`
//! (the mock in `mock.rs`): mapping, paging, the ETag cache, App auth and
//! every failure mode the issue lists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use accessgraph_config::{GithubApp, GithubSettings, SecretRef};
use accessgraph_graph::{Edge, EdgeKind, Fragment, LastUse, NodeKind};

use super::mock::{ExpectAuth, GithubMock, Reply, Route, fixture, fixtures_dir};
use super::transform::{BYPASS_REVIEW, app_actions, role_actions};
use super::{GithubConnector, Tuning};
use crate::cache::{MemoryCache, ResponseCache};
use crate::connector::{Connector, SyncError};

const TOKEN: &str = "ghp_fixtureClassicToken000000000000000";
const S: &str = "gh";

fn dir() -> PathBuf {
    fixtures_dir(env!("CARGO_MANIFEST_DIR"))
}

fn fast() -> Tuning {
    Tuning {
        requests_per_second: 10_000,
        burst: 10_000,
        concurrency: 4,
        base_backoff: Duration::from_millis(5),
        max_rate_limit_wait: Duration::from_secs(5),
    }
}

struct Setup {
    mock: GithubMock,
    settings: GithubSettings,
    _secrets: tempfile::TempDir,
}

/// A mock serving the fixture organization to a classic token.
async fn token_setup() -> Setup {
    let mock = GithubMock::start(ExpectAuth::Exactly(format!("Bearer {TOKEN}"))).await;
    mock.mount_fixtures(&dir()).await;
    let secrets = tempfile::tempdir().expect("tempdir");
    let path = secrets.path().join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).expect("token file");
    let settings =
        GithubSettings { org: "acme".into(), token: Some(SecretRef::File(path)), app: None, base_url: mock.uri() };
    Setup { mock, settings, _secrets: secrets }
}

/// A mock serving the fixture organization to the fixture GitHub App.
async fn app_setup() -> Setup {
    let manifest = super::mock::manifest(&dir());
    let mock = GithubMock::start(ExpectAuth::Exactly(format!("Bearer {}", manifest.installation_token))).await;
    mock.mount_fixtures(&dir()).await;
    let settings = GithubSettings {
        org: "acme".into(),
        token: None,
        app: Some(GithubApp {
            id: 2218,
            installation_id: manifest.installation_id,
            private_key: SecretRef::File(dir().join("test-only-app-key.pem")),
        }),
        base_url: mock.uri(),
    };
    Setup { mock, settings, _secrets: tempfile::tempdir().expect("tempdir") }
}

fn connector(settings: &GithubSettings) -> GithubConnector {
    GithubConnector::new(S, settings.clone()).with_tuning(fast())
}

fn grants(fragment: &Fragment) -> BTreeMap<(String, String), Vec<String>> {
    fragment
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::Grant)
        .map(|e| ((e.from.clone(), e.to.clone()), e.actions.clone()))
        .collect()
}

fn has_edge(fragment: &Fragment, from: &str, kind: EdgeKind, to: &str) -> bool {
    fragment.edges.iter().any(|e: &Edge| e.from == from && e.to == to && e.kind == kind)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Who holds `bypass-review` on a branch.
fn bypassers(fragment: &Fragment, branch: &str) -> BTreeSet<String> {
    fragment
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::Grant && e.to == branch && e.actions.iter().any(|a| a == BYPASS_REVIEW))
        .map(|e| e.from.clone())
        .collect()
}

#[tokio::test]
async fn github_app_auth_maps_the_fixture_organization() {
    let setup = app_setup().await;
    let fragment = connector(&setup.settings).sync().await.expect("sync");
    let node = |id: &str| fragment.nodes.iter().find(|n| n.id == id).unwrap_or_else(|| panic!("node {id}"));
    let grants = grants(&fragment);
    let grant = |from: &str, to: &str| grants.get(&(from.to_string(), to.to_string())).cloned().unwrap_or_default();
    let all = strings(&["admin", "maintain", "read", "triage", "write"]);

    // People: owners, three pages of members, the outside collaborator.
    assert_eq!(node("gh:user:alice").email.as_deref(), Some("alice@acme.example"));
    assert_eq!(node("gh:user:alice").attrs["org_role"], "owner");
    for login in ["bob", "carol", "dave", "erin", "frank"] {
        assert_eq!(node(&format!("gh:user:{login}")).attrs["org_role"], "member", "{login}");
    }
    assert_eq!(node("gh:user:eve").attrs["org_role"], "outside_collaborator");
    assert!(has_edge(&fragment, "gh:user:alice", EdgeKind::MemberOf, "gh:org_role:owner"));

    // Organization roles: owners admin everywhere, members the base permission.
    assert_eq!(grant("gh:org_role:owner", "gh:repo:acme/payments"), all);
    assert_eq!(grant("gh:org_role:member", "gh:repo:acme/legacy"), strings(&["read"]));

    // Teams, nesting, maintainers, team roles (cumulative actions).
    assert!(has_edge(&fragment, "gh:team:payments-eng", EdgeKind::MemberOf, "gh:team:platform"));
    assert!(has_edge(&fragment, "gh:user:dave", EdgeKind::MemberOf, "gh:team:payments-eng"));
    assert!(has_edge(&fragment, "gh:user:carol", EdgeKind::MemberOf, "gh:team:platform"));
    assert_eq!(grant("gh:user:carol", "gh:team:platform"), strings(&["maintain"]));
    assert_eq!(
        grant("gh:team:payments-eng", "gh:repo:acme/payments"),
        strings(&["maintain", "read", "triage", "write"])
    );
    assert_eq!(grant("gh:team:platform", "gh:repo:acme/infra"), strings(&["read", "triage", "write"]));

    // Direct collaborators.
    assert_eq!(grant("gh:user:bob", "gh:repo:acme/payments"), all);
    assert_eq!(grant("gh:user:eve", "gh:repo:acme/payments"), strings(&["read", "triage", "write"]));
    assert_eq!(node("gh:repo:acme/legacy").attrs["archived"], "true");

    // Bypass: payments requires a review but does not bind admins; infra
    // binds admins and allows the platform team; website is unprotected.
    let payments = "gh:branch:acme/payments@main";
    assert_eq!(bypassers(&fragment, payments), BTreeSet::from(["gh:org_role:owner".into(), "gh:user:bob".into()]));
    assert_eq!(node(payments).attrs["enforce_admins"], "false");
    assert_eq!(bypassers(&fragment, "gh:branch:acme/infra@main"), BTreeSet::from(["gh:team:platform".to_string()]));
    assert_eq!(
        bypassers(&fragment, "gh:branch:acme/website@main"),
        BTreeSet::from(["gh:org_role:owner".into(), "gh:user:erin".into()])
    );
    assert_eq!(node("gh:branch:acme/website@main").attrs["protection"], "unprotected");
    assert!(bypassers(&fragment, "gh:branch:acme/legacy@master").is_empty(), "archived: no pushes");

    // Deploy keys: a credential held by its own identity, owner inferred.
    let key = node("gh:deploy_key:5501");
    assert_eq!(key.kind, NodeKind::Credential);
    assert_eq!(key.owner.as_deref(), Some("gh:user:alice"));
    assert!(key.owner_inferred);
    assert!(matches!(key.last_used, LastUse::At(_)));
    assert!(has_edge(&fragment, "gh:deploy_key_holder:5501", EdgeKind::Holds, "gh:deploy_key:5501"));
    assert_eq!(grant("gh:deploy_key_holder:5501", "gh:repo:acme/payments"), strings(&["read", "write"]));
    assert_eq!(grant("gh:deploy_key_holder:5502", "gh:repo:acme/infra"), strings(&["read"]));
    assert_eq!(node("gh:deploy_key:5502").last_used, LastUse::Never);
    // Its creator left the organization.
    assert_eq!(node("gh:user:mallory").active, Some(false));

    // Apps: selected repositories, permission-derived actions.
    let app = node("gh:app:acme-ci");
    assert_eq!(app.kind, NodeKind::App);
    assert_eq!(grant("gh:app:acme-ci", "gh:repo:acme/payments"), strings(&["read", "triage", "write"]));
    assert!(grant("gh:app:acme-ci", "gh:repo:acme/infra").is_empty());

    // Tokens: fine-grained PATs (App auth reads them), SSO authorizations.
    let pat = node("gh:pat:25402");
    assert_eq!(pat.expires_at, None);
    assert_eq!(pat.last_used, LastUse::Never);
    assert!(has_edge(&fragment, "gh:user:bob", EdgeKind::Holds, "gh:pat:25402"));
    assert_eq!(node("gh:pat:25401").attrs["repositories"], "acme/payments");
    assert_eq!(node("gh:pat:classic-161195").subkind.as_deref(), Some("classic_pat"));
    assert!(has_edge(&fragment, "gh:user:bob", EdgeKind::Holds, "gh:ssh_key:161199"));
    let text = serde_json::to_string(&fragment).expect("json");
    assert!(!text.contains("71c3fc11"), "token_last_eight is never kept");

    // Actions secrets: names and dates only.
    let secret = node("gh:secret:acme/payments/AWS_ACCESS_KEY_ID");
    assert_eq!(secret.subkind.as_deref(), Some("actions_secret"));
    assert_eq!(secret.last_used, LastUse::Unknown);
    assert!(node("gh:secret:acme/NPM_TOKEN").rotated_at.is_some());

    // Three member pages, followed through GitHub-style /organizations links.
    let requests = setup.mock.requests().await;
    let pages: Vec<String> = requests
        .iter()
        .filter(|r| !r.url.path().contains("/teams/") && r.url.path().ends_with("/members"))
        .filter(|r| r.url.query().unwrap_or("").contains("role=member"))
        .map(|r| r.url.path().to_string())
        .collect();
    assert_eq!(pages, vec!["/orgs/acme/members", "/organizations/9001/members", "/organizations/9001/members"]);
    // The token is asked for once; every request used the installation token.
    assert_eq!(requests.iter().filter(|r| r.url.path().contains("access_tokens")).count(), 1);
    assert!(requests.iter().all(|r| r.url.query().is_none_or(|q| !q.contains("ghs_"))), "no token in a URL");
}

#[tokio::test]
async fn github_second_sync_is_answered_with_304s_and_spends_no_budget() {
    let setup = token_setup().await;
    let cache = Arc::new(MemoryCache::new());
    let first_connector = connector(&setup.settings).with_cache(Some(cache.clone() as Arc<dyn ResponseCache>));
    let first = first_connector.sync().await.expect("first sync");
    let first_stats = first_connector.last_stats().expect("stats");
    let cached = cache.len() as u64;
    assert!(cached > 30, "every listing page is cached ({cached})");
    assert!(cache.keys().iter().all(|k| !k.contains(TOKEN)), "keys never hold the token");
    assert_eq!(first_stats.not_modified, 0);

    let second_connector = connector(&setup.settings).with_cache(Some(cache.clone() as Arc<dyn ResponseCache>));
    let second = second_connector.sync().await.expect("second sync");
    let stats = second_connector.last_stats().expect("stats");
    assert_eq!(first, second, "the same fragment from cached pages");
    assert_eq!(stats.not_modified, cached, "every cached page answered 304");
    assert_eq!(stats.cache_hits, cached);
    // Only what GitHub sends no ETag for is counted: /rate_limit (free as
    // well) and the one GraphQL query (branch protection and rulesets of
    // every repository).
    assert_eq!(stats.counted, 2, "{stats:?}");
    assert_eq!(stats.requests, first_stats.requests);
    // 304s carry no body: only the budget overview and the GraphQL answer
    // are read again.
    let uncached = fixture(&dir(), "rate-limit.json").len() + fixture(&dir(), "graphql-branch-rules.json").len();
    assert_eq!(stats.bytes, uncached as u64, "{stats:?}");
}

fn graphql_route() -> Route {
    Route { method: "POST".into(), path: "/graphql".into(), ..Route::default() }
}

fn graphql_fixture() -> serde_json::Value {
    serde_json::from_slice(&fixture(&dir(), "graphql-branch-rules.json")).expect("fixture")
}

#[tokio::test]
async fn github_graphql_reads_every_default_branch_in_one_read_only_query() {
    let setup = token_setup().await;
    let connector = connector(&setup.settings);
    let fragment = connector.sync().await.expect("sync");
    let requests = setup.mock.requests().await;
    let posts: Vec<_> = requests.iter().filter(|r| r.url.path() == "/graphql").collect();
    assert_eq!(posts.len(), 1, "4 repositories, one query");
    let body = String::from_utf8(posts[0].body.clone()).expect("utf-8");
    assert!(body.starts_with(r#"{"query":"query BranchRules("#), "a query, never a mutation: {body}");
    assert!(!body.contains("mutation"), "{body}");
    let sent: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(sent["variables"]["n2"], "website", "owner and name are variables");
    // No REST protection reads, and deploy keys only where GraphQL counts some.
    let paths: Vec<&str> = requests.iter().map(|r| r.url.path()).collect();
    assert!(!paths.iter().any(|p| p.contains("/protection")), "{paths:?}");
    assert!(paths.contains(&"/repos/acme/payments/keys") && paths.contains(&"/repos/acme/infra/keys"));
    assert!(!paths.contains(&"/repos/acme/website/keys") && !paths.contains(&"/repos/acme/legacy/keys"));
    // Organization rulesets: the listing, then each one in full.
    for path in ["/orgs/acme/rulesets", "/orgs/acme/rulesets/9311", "/orgs/acme/rulesets/9312"] {
        assert!(paths.contains(&path), "{path}: {paths:?}");
    }
    // The same answers as the REST path: payments' repository ruleset is
    // bypassed by exactly those the classic rule lets through.
    assert_eq!(
        bypassers(&fragment, "gh:branch:acme/payments@main"),
        BTreeSet::from(["gh:org_role:owner".into(), "gh:user:bob".into()])
    );
    let payments = fragment.nodes.iter().find(|n| n.id == "gh:branch:acme/payments@main").expect("branch");
    assert_eq!(payments.attrs["rulesets"], "payments-main");
    assert_eq!(bypassers(&fragment, "gh:branch:acme/infra@main"), BTreeSet::from(["gh:team:platform".to_string()]));
    assert_eq!(
        bypassers(&fragment, "gh:branch:acme/website@main"),
        BTreeSet::from(["gh:org_role:owner".into(), "gh:user:erin".into()]),
        "the organization ruleset is only evaluated"
    );
}

#[tokio::test]
async fn github_graphql_errors_fail_the_sync_naming_the_query() {
    let setup = token_setup().await;
    let body = br#"{"data":null,"errors":[{"type":"MAX_NODE_LIMIT_EXCEEDED","message":"This query requests up to 600,000 possible nodes which exceeds the maximum limit of 500,000."}]}"#;
    let mut reply = Reply::json(body.to_vec());
    reply.etag = false;
    setup.mock.mount_first(&graphql_route(), reply, None).await;
    let cache = Arc::new(MemoryCache::new());
    let err = connector(&setup.settings)
        .with_cache(Some(cache.clone() as Arc<dyn ResponseCache>))
        .sync()
        .await
        .expect_err("GraphQL errors are failures");
    let text = err.to_string();
    assert!(text.contains("/graphql") && text.contains("BranchRules"), "{text}");
    assert!(text.contains("MAX_NODE_LIMIT_EXCEEDED") && text.contains("500,000"), "{text}");
    assert!(text.contains("acme/payments … acme/legacy"), "names the repositories: {text}");
}

#[tokio::test]
async fn github_graphql_hidden_repository_is_never_read_as_unprotected() {
    let setup = token_setup().await;
    // website: denied through GraphQL; infra: no rule visible to a
    // credential that does not administer it. Both go to REST, which
    // refuses website (403): its protection is unknown, not "unprotected".
    let mut answer = graphql_fixture();
    answer["data"]["r2"] = serde_json::Value::Null;
    answer["errors"] = serde_json::json!([{"type": "FORBIDDEN", "path": ["r2"], "locations": [{"line": 1, "column": 2}],
        "message": "Resource not accessible by integration"}]);
    answer["data"]["r1"]["viewerCanAdminister"] = false.into();
    answer["data"]["r1"]["defaultBranchRef"]["branchProtectionRule"] = serde_json::Value::Null;
    let mut reply = Reply::json(serde_json::to_vec(&answer).expect("json"));
    reply.etag = false;
    setup.mock.mount_first(&graphql_route(), reply, None).await;
    let forbidden = fixture(&dir(), "error-forbidden.json");
    setup
        .mock
        .mount_first(&Route::get("/repos/acme/website/branches/main/protection"), Reply::error(403, forbidden), None)
        .await;
    let connector = connector(&setup.settings);
    let fragment = connector.sync().await.expect("sync");
    assert!(bypassers(&fragment, "gh:branch:acme/website@main").is_empty());
    let website = fragment.nodes.iter().find(|n| n.id == "gh:branch:acme/website@main").expect("branch");
    assert_eq!(website.attrs["protection"], "unknown");
    // infra's rule, read through REST, still binds admins.
    assert_eq!(bypassers(&fragment, "gh:branch:acme/infra@main"), BTreeSet::from(["gh:team:platform".to_string()]));
    let paths: Vec<String> = setup.mock.requests().await.iter().map(|r| r.url.path().to_string()).collect();
    assert!(paths.contains(&"/repos/acme/infra/branches/main/protection".to_string()));
    assert!(paths.contains(&"/repos/acme/infra/keys".to_string()), "keys listed: the count is not trusted");
}

#[tokio::test]
async fn github_graphql_unavailable_falls_back_to_rest() {
    let setup = token_setup().await;
    let not_found = fixture(&dir(), "error-not-found.json");
    setup.mock.mount_first(&graphql_route(), Reply::error(404, not_found), None).await;
    // An organization ruleset now in force on every default branch,
    // bypassed by owners and the platform team.
    let mut ruleset: serde_json::Value =
        serde_json::from_slice(&fixture(&dir(), "org-ruleset-9311.json")).expect("fixture");
    ruleset["enforcement"] = "active".into();
    ruleset["bypass_actors"] = serde_json::json!([
        {"actor_id": null, "actor_type": "OrganizationAdmin", "bypass_mode": "always"},
        {"actor_id": 7, "actor_type": "Team", "bypass_mode": "pull_request"}
    ]);
    setup
        .mock
        .mount_first(
            &Route::get("/orgs/acme/rulesets/9311"),
            Reply::json(serde_json::to_vec(&ruleset).expect("json")),
            None,
        )
        .await;
    let connector = connector(&setup.settings);
    let fragment = connector.sync().await.expect("sync through REST");
    let paths: Vec<String> = setup.mock.requests().await.iter().map(|r| r.url.path().to_string()).collect();
    for repo in ["payments", "infra", "website"] {
        assert!(paths.contains(&format!("/repos/acme/{repo}/branches/main/protection")), "{repo}");
        assert!(paths.contains(&format!("/repos/acme/{repo}/keys")), "{repo}");
    }
    // website: no classic rule, but the ruleset leaves only the owners
    // (erin writes, but is not in platform).
    assert_eq!(bypassers(&fragment, "gh:branch:acme/website@main"), BTreeSet::from(["gh:org_role:owner".to_string()]));
    // payments: classic lets owners and bob (admin) through; of them only
    // the owners are exempt from the ruleset, and bob through platform.
    assert_eq!(
        bypassers(&fragment, "gh:branch:acme/payments@main"),
        BTreeSet::from(["gh:org_role:owner".into(), "gh:user:bob".into()])
    );
}

/// The GraphQL answer with a user among payments-main's bypass actors (as
/// GraphQL shows one: no flag, no role, `actor: null`) and, on website, a
/// repository ruleset with an `UPDATE` rule that only owners bypass.
fn graphql_with_user_and_update_rule() -> serde_json::Value {
    let mut answer = graphql_fixture();
    answer["data"]["r0"]["rulesets"]["nodes"][2]["bypassActors"]["nodes"][1] = serde_json::json!({
        "bypassMode": "ALWAYS", "organizationAdmin": false, "deployKey": false, "enterpriseOwner": false,
        "repositoryRoleDatabaseId": null, "repositoryRoleName": null, "actor": null
    });
    let website = &mut answer["data"]["r2"]["rulesets"];
    website["totalCount"] = 3.into();
    if let Some(nodes) = website["nodes"].as_array_mut() {
        nodes.push(serde_json::json!({
            "databaseId": 9402, "name": "website-main", "target": "BRANCH", "enforcement": "ACTIVE",
            "source": {"__typename": "Repository"},
            "conditions": {"refName": {"include": ["~DEFAULT_BRANCH"], "exclude": []}},
            "rules": {"totalCount": 2, "nodes": [
                {"type": "UPDATE", "parameters": {"__typename": "UpdateParameters"}},
                {"type": "NON_FAST_FORWARD", "parameters": null}
            ]},
            "bypassActors": {"totalCount": 1, "nodes": [{
                "bypassMode": "ALWAYS", "organizationAdmin": true, "deployKey": false, "enterpriseOwner": false,
                "repositoryRoleDatabaseId": null, "repositoryRoleName": null, "actor": null
            }]}
        }));
    }
    answer
}

#[tokio::test]
async fn github_graphql_update_rules_and_user_bypass_actors() {
    let setup = token_setup().await;
    let mut reply = Reply::json(serde_json::to_vec(&graphql_with_user_and_update_rule()).expect("json"));
    reply.etag = false;
    setup.mock.mount_first(&graphql_route(), reply, None).await;
    // REST names the user GraphQL could not: bob (id 1002). The shape of
    // `GET /repos/{owner}/{repo}/rulesets/{id}` (`repository-ruleset`).
    let detail = serde_json::json!({
        "id": 9401, "name": "payments-main", "target": "branch", "source_type": "Repository",
        "source": "acme/payments", "enforcement": "active",
        "bypass_actors": [
            {"actor_id": null, "actor_type": "OrganizationAdmin", "bypass_mode": "always"},
            {"actor_id": 1002, "actor_type": "User", "bypass_mode": "always"}
        ],
        "current_user_can_bypass": "always",
        "conditions": {"ref_name": {"include": ["refs/heads/main"], "exclude": []}},
        "rules": [
            {"type": "pull_request", "parameters": {
                "allowed_merge_methods": ["merge", "squash", "rebase"], "dismiss_stale_reviews_on_push": true,
                "require_code_owner_review": false, "require_last_push_approval": false,
                "required_approving_review_count": 1, "required_review_thread_resolution": false}},
            {"type": "deletion"}
        ],
        "node_id": "RRS_lACqUmVwb3NpdG9yec4AAJK5",
        "_links": {"self": {"href": "https://api.github.com/repos/acme/payments/rulesets/9401"},
                   "html": {"href": "https://github.com/acme/payments/rules/9401"}},
        "created_at": "2025-05-01T10:00:00Z", "updated_at": "2025-05-01T10:00:00Z"
    });
    let route = Route::get("/repos/acme/payments/rulesets/9401");
    setup.mock.mount_first(&route, Reply::json(serde_json::to_vec(&detail).expect("json")), None).await;
    let fragment = connector(&setup.settings).sync().await.expect("sync");
    let node = |id: &str| fragment.nodes.iter().find(|n| n.id == id).cloned().expect("branch");
    let paths: Vec<String> = setup.mock.requests().await.iter().map(|r| r.url.path().to_string()).collect();
    assert!(paths.contains(&"/repos/acme/payments/rulesets/9401".to_string()), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("/rulesets/9402")), "website's bypass actors are all named");
    let payments = node("gh:branch:acme/payments@main");
    assert_eq!(payments.attrs.get("rulesets").map(String::as_str), Some("payments-main"));
    assert!(!payments.attrs.contains_key("rulesets_unresolved"), "{:?}", payments.attrs);
    assert_eq!(
        bypassers(&fragment, "gh:branch:acme/payments@main"),
        BTreeSet::from(["gh:org_role:owner".into(), "gh:user:bob".into()])
    );
    // website: no classic rule, but only owners may update main.
    assert_eq!(bypassers(&fragment, "gh:branch:acme/website@main"), BTreeSet::from(["gh:org_role:owner".to_string()]));
    assert_eq!(node("gh:branch:acme/website@main").attrs.get("rulesets").map(String::as_str), Some("website-main"));
}

#[tokio::test]
async fn github_graphql_user_bypass_actor_unreadable_through_rest_is_not_counted() {
    let setup = token_setup().await;
    let mut reply = Reply::json(serde_json::to_vec(&graphql_with_user_and_update_rule()).expect("json"));
    reply.etag = false;
    setup.mock.mount_first(&graphql_route(), reply, None).await;
    let forbidden = fixture(&dir(), "error-forbidden.json");
    let route = Route::get("/repos/acme/payments/rulesets/9401");
    setup.mock.mount_first(&route, Reply::error(403, forbidden), None).await;
    let fragment = connector(&setup.settings).sync().await.expect("sync degrades");
    let payments = fragment.nodes.iter().find(|n| n.id == "gh:branch:acme/payments@main").expect("branch");
    assert_eq!(payments.attrs.get("rulesets_unresolved").map(String::as_str), Some("payments-main"));
    assert!(!payments.attrs.contains_key("rulesets"), "{:?}", payments.attrs);
}

#[test]
fn github_graphql_endpoint_follows_the_rest_base() {
    use super::client::graphql_endpoint;
    assert_eq!(graphql_endpoint("https://api.github.com"), "https://api.github.com/graphql");
    assert_eq!(graphql_endpoint("https://api.github.com/"), "https://api.github.com/graphql");
    assert_eq!(graphql_endpoint("https://ghe.acme.example/api/v3"), "https://ghe.acme.example/api/graphql");
    assert_eq!(graphql_endpoint("https://ghe.acme.example/api/v3/"), "https://ghe.acme.example/api/graphql");
    assert_eq!(graphql_endpoint("http://127.0.0.1:8080"), "http://127.0.0.1:8080/graphql");
}

#[tokio::test]
async fn github_changed_page_replaces_its_cache_entry() {
    let setup = token_setup().await;
    let cache = Arc::new(MemoryCache::new());
    let sync = || connector(&setup.settings).with_cache(Some(cache.clone() as Arc<dyn ResponseCache>));
    sync().sync().await.expect("first sync");
    // A new outside collaborator: a new body, hence a new ETag.
    let mut users: Vec<serde_json::Value> =
        serde_json::from_slice(&fixture(&dir(), "outside-collaborators.json")).expect("fixture");
    let mut mallory = users[0].clone();
    mallory["login"] = "mallory".into();
    mallory["id"] = 1667.into();
    users.push(mallory);
    let body = serde_json::to_vec(&users).expect("json");
    setup.mock.mount_first(&Route::get("/orgs/acme/outside_collaborators"), Reply::json(body), None).await;
    let fragment = sync().sync().await.expect("second sync");
    let mallory = fragment.nodes.iter().find(|n| n.id == "gh:user:mallory").expect("mallory");
    assert_eq!(mallory.attrs["org_role"], "outside_collaborator");
    let third = sync();
    third.sync().await.expect("third sync");
    assert_eq!(third.last_stats().expect("stats").counted, 2, "the new page is cached too");
}

#[tokio::test]
async fn github_token_auth_skips_what_needs_an_app_and_tolerates_no_sso() {
    let setup = token_setup().await;
    let forbidden = fixture(&dir(), "error-forbidden.json");
    setup.mock.mount_first(&Route::get("/orgs/acme/personal-access-tokens"), Reply::error(403, forbidden), None).await;
    let not_found = fixture(&dir(), "error-not-found.json");
    setup
        .mock
        .mount_first(&Route::get("/orgs/acme/credential-authorizations"), Reply::error(404, not_found), None)
        .await;
    let fragment = connector(&setup.settings).sync().await.expect("sync degrades");
    assert!(fragment.nodes.iter().all(|n| !n.id.starts_with("gh:pat:")), "no PATs read");
    assert!(fragment.nodes.iter().any(|n| n.id == "gh:repo:acme/payments"), "the rest is there");
}

#[tokio::test]
async fn github_secondary_rate_limit_403_waits_for_retry_after() {
    let setup = token_setup().await;
    let body = fixture(&dir(), "error-secondary-rate-limit.json");
    let route = Route::get("/orgs/acme/members").query("role", "admin");
    setup.mock.mount_first(&route, Reply::error(403, body).header("retry-after", "1"), Some(1)).await;
    let connector = connector(&setup.settings);
    connector.sync().await.expect("sync after the wait");
    let stats = connector.last_stats().expect("stats");
    assert_eq!(stats.retries, 1, "{stats:?}");
    assert_eq!(stats.rate_limit_waits, 1, "{stats:?}");
}

#[tokio::test]
async fn github_primary_limit_waits_for_the_reset() {
    let setup = token_setup().await;
    let reset = (std::time::SystemTime::now() + Duration::from_secs(1))
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let body = br#"{"message":"API rate limit exceeded for user ID 1001.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api","status":"403"}"#;
    let reply =
        Reply::error(403, body.to_vec()).header("x-ratelimit-remaining", "0").header("x-ratelimit-reset", &reset);
    setup.mock.mount_first(&Route::get("/orgs/acme/teams"), reply, Some(1)).await;
    let connector = connector(&setup.settings);
    connector.sync().await.expect("sync after the reset");
    assert!(connector.last_stats().expect("stats").rate_limit_waits >= 1);
}

#[tokio::test]
async fn github_429_and_502_are_retried() {
    let setup = token_setup().await;
    let body = fixture(&dir(), "error-secondary-rate-limit.json");
    setup
        .mock
        .mount_first(&Route::get("/orgs/acme/repos"), Reply::error(429, body).header("retry-after", "1"), Some(1))
        .await;
    let gateway = b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec();
    setup.mock.mount_first(&Route::get("/repos/acme/payments/keys"), Reply::error(502, gateway), Some(2)).await;
    let connector = connector(&setup.settings);
    let fragment = connector.sync().await.expect("sync after retries");
    assert!(fragment.nodes.iter().any(|n| n.id == "gh:deploy_key:5501"));
    let stats = connector.last_stats().expect("stats");
    assert_eq!(stats.retries, 3, "{stats:?}");
    assert_eq!(stats.rate_limit_waits, 1, "{stats:?}");
}

#[tokio::test]
async fn github_bad_credentials_fail_clearly_without_the_token() {
    let setup = token_setup().await;
    let mut settings = setup.settings.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = dir.path().join("token");
    std::fs::write(&wrong, "ghp_wrongWrongWrongWrong000000000000").expect("token");
    settings.token = Some(SecretRef::File(wrong.clone()));
    let err = connector(&settings).sync().await.expect_err("401");
    let text = err.to_string();
    assert!(matches!(err, SyncError::Read { .. }), "{err:?}");
    assert!(text.contains("HTTP 401") && text.contains("Bad credentials"), "{text}");
    assert!(text.contains("/rate_limit"), "names the endpoint: {text}");
    assert!(text.contains(&wrong.display().to_string()), "names the secret's file: {text}");
    assert!(!text.contains("ghp_wrong"), "never the token: {text}");
    // A 401 is not retried.
    assert_eq!(setup.mock.requests().await.len(), 1);
}

#[tokio::test]
async fn github_truncated_body_fails_the_sync_and_is_never_cached() {
    let setup = token_setup().await;
    let repos = fixture(&dir(), "repos.json");
    let truncated = repos[..repos.len() / 2].to_vec();
    setup.mock.mount_first(&Route::get("/orgs/acme/repos"), Reply::json(truncated), Some(1)).await;
    let cache = Arc::new(MemoryCache::new());
    let connector = connector(&setup.settings).with_cache(Some(cache.clone() as Arc<dyn ResponseCache>));
    let err = connector.sync().await.expect_err("malformed body");
    let text = err.to_string();
    assert!(text.contains("/orgs/acme/repos") && text.contains("malformed"), "{text}");
    assert!(cache.keys().iter().all(|k| !k.contains("/orgs/acme/repos")), "{:?}", cache.keys());
    // The next sync reads the (now complete) listing again.
    connector.sync().await.expect("recovered");
}

#[tokio::test]
async fn github_permission_errors_on_core_listings_fail_the_sync() {
    let setup = token_setup().await;
    let forbidden = fixture(&dir(), "error-forbidden.json");
    setup.mock.mount_first(&Route::get("/orgs/acme/teams"), Reply::error(403, forbidden), None).await;
    let err = connector(&setup.settings).sync().await.expect_err("teams are required");
    assert!(err.to_string().contains("HTTP 403"), "{err}");
}

#[test]
fn github_roles_are_cumulative() {
    assert_eq!(role_actions("pull"), Some(&["read"][..]));
    assert_eq!(role_actions("push"), Some(&["read", "triage", "write"][..]));
    assert_eq!(role_actions("admin"), Some(&["read", "triage", "write", "maintain", "admin"][..]));
    assert_eq!(role_actions("security-manager"), None);
}

#[test]
fn github_app_permissions_map_to_roles() {
    let perms = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(app_actions(&perms(&[("metadata", "read")])), None);
    assert_eq!(app_actions(&perms(&[("contents", "read")])), Some(&["read"][..]));
    assert_eq!(app_actions(&perms(&[("pull_requests", "write")])), Some(&["read", "triage"][..]));
    assert_eq!(app_actions(&perms(&[("contents", "write")])).map(|a| a.len()), Some(3));
    assert_eq!(app_actions(&perms(&[("administration", "write")])).map(|a| a.len()), Some(5));
}

mod bypass {
    use super::*;
    use crate::github::transform::map;
    use crate::github::wire::*;

    fn records(protection: Protection) -> OrgRecords {
        records_with(protection, None, None)
    }

    /// The organization of these tests: owner alice; members wendy and ann;
    /// on acme/payments wendy writes and ann administers; team `release`
    /// (id 11, no repository of its own) has wendy. User ids: [`user_id`].
    fn records_with(
        protection: Protection,
        rulesets: Option<Vec<BranchRuleset>>,
        org_rulesets: Option<Vec<BranchRuleset>>,
    ) -> OrgRecords {
        let repo: Repository =
            serde_json::from_slice::<Vec<Repository>>(&fixture(&dir(), "repos.json")).expect("repos").remove(0);
        let user = |login: &str| -> User {
            let mut value: serde_json::Value =
                serde_json::from_slice::<Vec<serde_json::Value>>(&fixture(&dir(), "members-admin.json"))
                    .expect("members")
                    .remove(0);
            value["login"] = login.into();
            value["id"] = user_id(login).into();
            serde_json::from_value(value).expect("user")
        };
        let collaborator = |login: &str, role: &str| Collaborator {
            login: login.to_string(),
            id: user_id(login),
            kind: Some("User".into()),
            email: None,
            name: None,
            permissions: None,
            role_name: role.to_string(),
        };
        OrgRecords {
            org: Organization {
                login: "acme".into(),
                id: 9001,
                default_repository_permission: Some("none".into()),
                two_factor_requirement_enabled: None,
            },
            owners: vec![user("alice")],
            members: vec![user("wendy"), user("ann")],
            outside_collaborators: Vec::new(),
            teams: vec![TeamRecords {
                team: serde_json::from_value(serde_json::json!({"id": 11, "slug": "release", "name": "Release"}))
                    .expect("team"),
                members: vec![user("wendy")],
                maintainers: Vec::new(),
                repos: Vec::new(),
            }],
            repos: vec![RepoRecords {
                repo,
                collaborators: Some(vec![collaborator("wendy", "write"), collaborator("ann", "admin")]),
                deploy_keys: Some(Vec::new()),
                protection,
                secrets: Some(Vec::new()),
                rulesets,
            }],
            installations: None,
            pats: None,
            credential_authorizations: None,
            org_secrets: None,
            org_rulesets,
        }
    }

    /// The test organization's user ids (what a REST `User` bypass actor names).
    fn user_id(login: &str) -> u64 {
        match login {
            "alice" => 101,
            "wendy" => 102,
            "ann" => 103,
            _ => 199,
        }
    }

    fn who(protection: Protection) -> BTreeSet<String> {
        let fragment = map(S, &records(protection)).expect("map");
        bypassers(&fragment, "gh:branch:acme/payments@main")
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| format!("gh:{s}")).collect()
    }

    fn rule(approvals: Option<u32>, enforce_admins: bool) -> BranchProtection {
        BranchProtection {
            enforce_admins: Some(Flag { enabled: enforce_admins }),
            required_pull_request_reviews: approvals.map(|count| RequiredReviews {
                required_approving_review_count: Some(count),
                bypass_pull_request_allowances: None,
            }),
            restrictions: None,
            lock_branch: None,
        }
    }

    #[test]
    fn github_unprotected_lets_every_writer_land() {
        assert_eq!(who(Protection::Unprotected), set(&["org_role:owner", "user:ann", "user:wendy"]));
    }

    #[test]
    fn github_required_reviews_leave_admins_unless_enforced() {
        assert_eq!(who(Protection::Protected(rule(Some(1), false))), set(&["org_role:owner", "user:ann"]));
        assert_eq!(who(Protection::Protected(rule(Some(1), true))), set(&[]));
    }

    #[test]
    fn github_zero_approvals_or_no_review_rule_is_no_review() {
        let everyone = set(&["org_role:owner", "user:ann", "user:wendy"]);
        assert_eq!(who(Protection::Protected(rule(Some(0), true))), everyone);
        assert_eq!(who(Protection::Protected(rule(None, true))), everyone);
    }

    #[test]
    fn github_push_restrictions_and_locks_narrow_the_writers() {
        let mut restricted = rule(None, true);
        restricted.restrictions =
            Some(Actors { users: vec![Login { login: "wendy".into() }], teams: Vec::new(), apps: Vec::new() });
        assert_eq!(who(Protection::Protected(restricted)), set(&["user:wendy"]));
        let mut locked = rule(Some(1), false);
        locked.lock_branch = Some(Flag { enabled: true });
        assert_eq!(who(Protection::Protected(locked)), set(&["org_role:owner", "user:ann"]));
    }

    #[test]
    fn github_bypass_allowances_are_named_actors() {
        let mut allowed = rule(Some(2), true);
        if let Some(reviews) = allowed.required_pull_request_reviews.as_mut() {
            reviews.bypass_pull_request_allowances =
                Some(Actors { users: vec![Login { login: "wendy".into() }], teams: Vec::new(), apps: Vec::new() });
        }
        assert_eq!(who(Protection::Protected(allowed)), set(&["user:wendy"]));
        assert_eq!(who(Protection::Unknown), set(&[]));
    }

    /// An organization ruleset exactly as `GET /orgs/{org}/rulesets/{id}`
    /// sends it (the REST description's `repository-ruleset`).
    fn rest_ruleset(enforcement: &str, include: &[&str], exclude: &[&str], bypass: serde_json::Value) -> BranchRuleset {
        let rules = serde_json::json!([
            {"type": "deletion"},
            {"type": "pull_request", "parameters": {
                "allowed_merge_methods": ["squash"], "dismiss_stale_reviews_on_push": true,
                "require_code_owner_review": false, "require_last_push_approval": false,
                "required_approving_review_count": 1, "required_review_thread_resolution": false}}
        ]);
        rest_ruleset_with(enforcement, include, exclude, bypass, rules)
    }

    /// The same with its own `rules`.
    fn rest_ruleset_with(
        enforcement: &str,
        include: &[&str],
        exclude: &[&str],
        bypass: serde_json::Value,
        rules: serde_json::Value,
    ) -> BranchRuleset {
        let wire = serde_json::json!({
            "id": 21, "name": "default-branch-review", "target": "branch", "source_type": "Organization",
            "source": "acme", "enforcement": enforcement, "bypass_actors": bypass,
            "conditions": {
                "ref_name": {"include": include, "exclude": exclude},
                "repository_name": {"include": ["pay*"], "exclude": ["payroll"], "protected": true}
            },
            "rules": rules,
            "node_id": "RRS_lACkVXNlcgQB",
            "_links": {"self": {"href": "https://api.github.com/orgs/acme/rulesets/21"},
                       "html": {"href": "https://github.com/organizations/acme/settings/rules/21"}},
            "created_at": "2025-08-15T08:43:03Z", "updated_at": "2025-09-23T16:29:47Z"
        });
        BranchRuleset::from_rest(&serde_json::from_value::<Ruleset>(wire).expect("repository-ruleset"))
    }

    fn team_and_owners() -> serde_json::Value {
        serde_json::json!([
            {"actor_id": 11, "actor_type": "Team", "bypass_mode": "pull_request"},
            {"actor_id": null, "actor_type": "OrganizationAdmin", "bypass_mode": "always"}
        ])
    }

    /// Bypassers with only REST organization rulesets (no GraphQL).
    fn who_org(protection: Protection, ruleset: BranchRuleset) -> BTreeSet<String> {
        let fragment = map(S, &records_with(protection, None, Some(vec![ruleset]))).expect("map");
        bypassers(&fragment, "gh:branch:acme/payments@main")
    }

    #[test]
    fn github_ruleset_bypass_team_leaves_its_members_and_owners() {
        let ruleset = rest_ruleset("active", &["~DEFAULT_BRANCH"], &[], team_and_owners());
        // Unprotected by classic rules: every writer could land; the ruleset
        // leaves the team's writer (wendy) and the owners, not admin ann.
        assert_eq!(who_org(Protection::Unprotected, ruleset.clone()), set(&["org_role:owner", "user:wendy"]));
        // Through GraphQL (a repository's own ruleset, resolved by slug).
        let mut repo_level = ruleset.clone();
        repo_level.repositories = None;
        repo_level.source_type = "Repository".into();
        repo_level.bypass = Some(vec![Bypass::Team { id: None, slug: Some("release".into()) }]);
        let fragment = map(S, &records_with(Protection::Unprotected, Some(vec![repo_level]), None)).expect("map");
        assert_eq!(bypassers(&fragment, "gh:branch:acme/payments@main"), set(&["user:wendy"]));
        let node = fragment.nodes.iter().find(|n| n.id == "gh:branch:acme/payments@main").expect("branch");
        assert_eq!(node.attrs["rulesets"], "default-branch-review");
    }

    #[test]
    fn github_ruleset_in_evaluate_or_disabled_protects_nobody() {
        let everyone = set(&["org_role:owner", "user:ann", "user:wendy"]);
        for enforcement in ["evaluate", "disabled", "enabled"] {
            let ruleset = rest_ruleset(enforcement, &["~DEFAULT_BRANCH"], &[], team_and_owners());
            assert_eq!(who_org(Protection::Unprotected, ruleset), everyone, "{enforcement}");
        }
    }

    #[test]
    fn github_ruleset_ref_and_repository_conditions() {
        let everyone = set(&["org_role:owner", "user:ann", "user:wendy"]);
        let narrowed = set(&["org_role:owner", "user:wendy"]);
        let with = |include: &[&str], exclude: &[&str]| {
            who_org(Protection::Unprotected, rest_ruleset("active", include, exclude, team_and_owners()))
        };
        assert_eq!(with(&["refs/heads/main"], &[]), narrowed);
        assert_eq!(with(&["~ALL"], &[]), narrowed);
        assert_eq!(with(&["refs/heads/ma*"], &[]), narrowed);
        assert_eq!(with(&["refs/heads/release/**"], &[]), everyone);
        assert_eq!(with(&["~DEFAULT_BRANCH"], &["refs/heads/main"]), everyone);
        assert_eq!(with(&["~ALL"], &["~DEFAULT_BRANCH"]), everyone);
        assert_eq!(with(&[], &[]), everyone, "no target: applies nowhere");
        // The repository condition: `pay*` but not `payroll`.
        let mut elsewhere = rest_ruleset("active", &["~DEFAULT_BRANCH"], &[], team_and_owners());
        elsewhere.repositories = Some(RepositoryTarget::Names { include: vec!["web*".into()], exclude: Vec::new() });
        assert_eq!(who_org(Protection::Unprotected, elsewhere), everyone);
        let mut by_id = rest_ruleset("active", &["~DEFAULT_BRANCH"], &[], team_and_owners());
        by_id.repositories = Some(RepositoryTarget::Ids(vec![42001]));
        assert_eq!(who_org(Protection::Unprotected, by_id), narrowed);
        // Custom properties cannot be evaluated here: not counted.
        let mut by_property = rest_ruleset("active", &["~DEFAULT_BRANCH"], &[], team_and_owners());
        by_property.repositories = Some(RepositoryTarget::Properties);
        assert_eq!(who_org(Protection::Unprotected, by_property), everyone);
    }

    #[test]
    fn github_ruleset_and_classic_rule_both_must_let_a_principal_through() {
        // Classic: one approval, admins not bound → owners and ann.
        let classic = || Protection::Protected(rule(Some(1), false));
        let only_team = serde_json::json!([{"actor_id": 11, "actor_type": "Team", "bypass_mode": "always"}]);
        let ruleset = rest_ruleset("active", &["~DEFAULT_BRANCH"], &[], only_team);
        assert_eq!(who_org(classic(), ruleset), set(&[]), "wendy is exempt from the ruleset only");
        let admins = serde_json::json!([{"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}]);
        let ruleset = rest_ruleset("active", &["~DEFAULT_BRANCH"], &[], admins);
        assert_eq!(who_org(classic(), ruleset), set(&["org_role:owner", "user:ann"]));
        // Role 4 is `write` (GitHub's ids are not in permission order).
        let writers =
            serde_json::json!([{"actor_id": 4, "actor_type": "RepositoryRole", "bypass_mode": "pull_request"}]);
        let ruleset = rest_ruleset("active", &["~DEFAULT_BRANCH"], &[], writers);
        assert_eq!(who_org(Protection::Unprotected, ruleset), set(&["org_role:owner", "user:ann", "user:wendy"]));
        // An owner's exemption reaches the owner through the owners group.
        let mut records = records_with(
            Protection::Unprotected,
            None,
            Some(vec![rest_ruleset("active", &["~DEFAULT_BRANCH"], &[], team_and_owners())]),
        );
        records.teams[0].members.push(records.owners[0].clone());
        let fragment = map(S, &records).expect("map");
        assert_eq!(
            bypassers(&fragment, "gh:branch:acme/payments@main"),
            set(&["org_role:owner", "user:wendy"]),
            "alice is in both: the owners group covers her"
        );
    }

    #[test]
    fn github_ruleset_with_hidden_or_unknown_bypass_actors_is_not_counted() {
        let everyone = set(&["org_role:owner", "user:ann", "user:wendy"]);
        // `bypass_actors` absent: the credential may not edit the ruleset.
        let mut hidden = rest_ruleset("active", &["~DEFAULT_BRANCH"], &[], team_and_owners());
        hidden.bypass = None;
        assert_eq!(who_org(Protection::Unprotected, hidden), everyone);
        // A custom role known only by its id.
        let custom = serde_json::json!([{"actor_id": 8812, "actor_type": "RepositoryRole", "bypass_mode": "always"}]);
        assert_eq!(
            who_org(Protection::Unprotected, rest_ruleset("active", &["~DEFAULT_BRANCH"], &[], custom)),
            everyone
        );
        // A write deploy key listed as a bypass actor keeps landing.
        let keys = serde_json::json!([{"actor_id": null, "actor_type": "DeployKey", "bypass_mode": "always"}]);
        let mut records = records_with(
            Protection::Unprotected,
            None,
            Some(vec![rest_ruleset("active", &["~DEFAULT_BRANCH"], &[], keys)]),
        );
        let key: DeployKey = serde_json::from_slice::<Vec<DeployKey>>(&fixture(&dir(), "repo-payments-keys.json"))
            .expect("keys")
            .remove(0);
        records.repos[0].deploy_keys = Some(vec![key]);
        let fragment = map(S, &records).expect("map");
        assert_eq!(bypassers(&fragment, "gh:branch:acme/payments@main"), set(&["deploy_key_holder:5501"]));
    }

    /// A REST `pull_request` rule (the description's required parameters).
    fn pull_request_rule(approvals: u32) -> serde_json::Value {
        serde_json::json!({"type": "pull_request", "parameters": {
            "allowed_merge_methods": ["merge", "squash"], "dismiss_stale_reviews_on_push": false,
            "require_code_owner_review": false, "require_last_push_approval": false,
            "required_approving_review_count": approvals, "required_review_thread_resolution": false}})
    }

    fn update_rule(fetch_and_merge: bool) -> serde_json::Value {
        serde_json::json!({"type": "update", "parameters": {"update_allows_fetch_and_merge": fetch_and_merge}})
    }

    #[test]
    fn github_ruleset_rule_types_decide_who_lands_unreviewed() {
        use serde_json::json;
        // Unprotected by classic rules: owners, ann (admin) and wendy (write)
        // land anything. A ruleset rule that stops unreviewed landing leaves
        // its bypass actors: the owners, and wendy through team `release`.
        let everyone = set(&["org_role:owner", "user:ann", "user:wendy"]);
        let narrowed = set(&["org_role:owner", "user:wendy"]);
        let cases: Vec<(&str, serde_json::Value, &BTreeSet<String>)> = vec![
            ("update", json!([update_rule(false)]), &narrowed),
            ("update, fork may sync upstream", json!([update_rule(true)]), &narrowed),
            ("pull_request, 1 approval", json!([pull_request_rule(1)]), &narrowed),
            ("pull_request, 0 approvals", json!([pull_request_rule(0)]), &everyone),
            ("pull_request 0 with update", json!([pull_request_rule(0), update_rule(false)]), &narrowed),
            ("creation", json!([{"type": "creation"}]), &everyone),
            ("deletion", json!([{"type": "deletion"}]), &everyone),
            ("non_fast_forward", json!([{"type": "non_fast_forward"}]), &everyone),
            ("required_linear_history", json!([{"type": "required_linear_history"}]), &everyone),
            ("required_signatures", json!([{"type": "required_signatures"}]), &everyone),
            (
                "required_status_checks",
                json!([{"type": "required_status_checks", "parameters": {
                    "strict_required_status_checks_policy": true, "do_not_enforce_on_create": false,
                    "required_status_checks": [{"context": "ci/build", "integration_id": 15368}]}}]),
                &everyone,
            ),
            (
                "merge_queue",
                json!([{"type": "merge_queue", "parameters": {
                    "check_response_timeout_minutes": 60, "grouping_strategy": "ALLGREEN",
                    "max_entries_to_build": 5, "max_entries_to_merge": 5, "merge_method": "SQUASH",
                    "min_entries_to_merge": 1, "min_entries_to_merge_wait_minutes": 5}}]),
                &everyone,
            ),
            (
                "required_deployments",
                json!([{"type": "required_deployments",
                        "parameters": {"required_deployment_environments": ["staging"]}}]),
                &everyone,
            ),
            (
                "commit_message_pattern",
                json!([{"type": "commit_message_pattern",
                        "parameters": {"operator": "starts_with", "pattern": "JIRA-", "negate": false}}]),
                &everyone,
            ),
            (
                "file_path_restriction",
                json!([{"type": "file_path_restriction", "parameters": {"restricted_file_paths": [".github/**"]}}]),
                &everyone,
            ),
            (
                "workflows",
                json!([{"type": "workflows", "parameters": {
                    "workflows": [{"path": ".github/workflows/ci.yml", "repository_id": 42001}]}}]),
                &everyone,
            ),
            (
                "code_scanning",
                json!([{"type": "code_scanning", "parameters": {"code_scanning_tools": [
                    {"tool": "CodeQL", "alerts_threshold": "errors",
                     "security_alerts_threshold": "high_or_higher"}]}}]),
                &everyone,
            ),
            (
                "copilot_code_review",
                json!([{"type": "copilot_code_review",
                        "parameters": {"review_on_push": true, "review_draft_pull_requests": false}}]),
                &everyone,
            ),
            ("a type this build does not know", json!([{"type": "some_future_rule"}]), &everyone),
        ];
        for (name, rules, expected) in cases {
            let ruleset = rest_ruleset_with("active", &["~DEFAULT_BRANCH"], &[], team_and_owners(), rules);
            assert_eq!(&who_org(Protection::Unprotected, ruleset), expected, "{name}");
        }
        // With the classic rule (one approval, admins not bound: owners and
        // ann), an update rule leaves only those who also bypass it.
        let update =
            rest_ruleset_with("active", &["~DEFAULT_BRANCH"], &[], team_and_owners(), json!([update_rule(false)]));
        assert_eq!(who_org(Protection::Protected(rule(Some(1), false)), update.clone()), set(&["org_role:owner"]));
        // Only on the branches it targets, and only when active.
        let elsewhere =
            rest_ruleset_with("active", &["refs/heads/release/*"], &[], team_and_owners(), json!([update_rule(false)]));
        assert_eq!(who_org(Protection::Unprotected, elsewhere), everyone);
        let evaluated =
            rest_ruleset_with("evaluate", &["~DEFAULT_BRANCH"], &[], team_and_owners(), json!([update_rule(false)]));
        assert_eq!(who_org(Protection::Unprotected, evaluated), everyone);
        let fragment = map(S, &records_with(Protection::Unprotected, None, Some(vec![update]))).expect("map");
        let node = fragment.nodes.iter().find(|n| n.id == "gh:branch:acme/payments@main").expect("branch");
        assert_eq!(node.attrs["rulesets"], "default-branch-review");
    }

    #[test]
    fn github_ruleset_user_bypass_actor_is_that_user() {
        use serde_json::json;
        let user = |login: &str| json!([{"actor_id": user_id(login), "actor_type": "User", "bypass_mode": "always"}]);
        let classic = || Protection::Protected(rule(Some(1), false));
        let cases: Vec<(&str, Protection, serde_json::Value, BTreeSet<String>)> = vec![
            ("wendy, no classic rule", Protection::Unprotected, user("wendy"), set(&["user:wendy"])),
            ("ann, no classic rule", Protection::Unprotected, user("ann"), set(&["user:ann"])),
            ("ann, classic rule lets admins through", classic(), user("ann"), set(&["user:ann"])),
            ("wendy, classic rule stops her", classic(), user("wendy"), set(&[])),
            ("a user outside the organization", Protection::Unprotected, user("mallory"), set(&[])),
        ];
        for (name, protection, bypass, expected) in cases {
            let ruleset = rest_ruleset("active", &["~DEFAULT_BRANCH"], &[], bypass);
            assert_eq!(ruleset.bypass.as_ref().map(Vec::len), Some(1), "{name}");
            assert_eq!(who_org(protection, ruleset), expected, "{name}");
        }
    }

    /// A repository ruleset exactly as the `BranchRules` query returns it.
    fn gql_ruleset(rules: serde_json::Value, bypass: serde_json::Value) -> GqlRuleset {
        let count = rules.as_array().map_or(0, Vec::len);
        serde_json::from_value(serde_json::json!({
            "databaseId": 9501, "name": "main-updates", "target": "BRANCH", "enforcement": "ACTIVE",
            "source": {"__typename": "Repository"},
            "conditions": {"refName": {"include": ["~DEFAULT_BRANCH"], "exclude": []}},
            "rules": {"totalCount": count, "nodes": rules},
            "bypassActors": bypass
        }))
        .expect("RepositoryRuleset")
    }

    /// A `RepositoryRulesetBypassActor`: owners, a role, a team, or (all
    /// `None`/`false`) what GraphQL shows for a user.
    fn gql_bypass(owners: bool, role: Option<(u64, &str)>, team: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "bypassMode": "ALWAYS", "organizationAdmin": owners, "deployKey": false, "enterpriseOwner": false,
            "repositoryRoleDatabaseId": role.map(|r| r.0), "repositoryRoleName": role.map(|r| r.1),
            "actor": team.map(|slug| serde_json::json!({"__typename": "Team", "slug": slug}))
        })
    }

    #[test]
    fn github_graphql_rule_types_read_like_rest() {
        use serde_json::json;
        let pull_request = |n: u32| json!({"type": "PULL_REQUEST", "parameters": {"__typename": "PullRequestParameters", "requiredApprovingReviewCount": n}});
        let cases: Vec<(&str, serde_json::Value, Option<u32>, bool)> = vec![
            ("UPDATE", json!([{"type": "UPDATE", "parameters": {"__typename": "UpdateParameters"}}]), None, true),
            ("LOCK_BRANCH", json!([{"type": "LOCK_BRANCH", "parameters": null}]), None, true),
            ("PULL_REQUEST 2", json!([pull_request(2)]), Some(2), false),
            ("PULL_REQUEST 0", json!([pull_request(0)]), Some(0), false),
            (
                "checks, no force push, no deletion",
                json!([
                    {"type": "REQUIRED_STATUS_CHECKS", "parameters": {"__typename": "RequiredStatusChecksParameters"}},
                    {"type": "NON_FAST_FORWARD", "parameters": null},
                    {"type": "DELETION", "parameters": null}
                ]),
                None,
                false,
            ),
            (
                "MERGE_QUEUE",
                json!([{"type": "MERGE_QUEUE", "parameters": {"__typename": "MergeQueueParameters"}}]),
                None,
                false,
            ),
            ("CREATION", json!([{"type": "CREATION", "parameters": null}]), None, false),
            (
                "UPDATE and PULL_REQUEST 1",
                json!([pull_request(1), {"type": "UPDATE", "parameters": {"__typename": "UpdateParameters"}}]),
                Some(1),
                true,
            ),
        ];
        for (name, rules, approvals, restricts) in cases {
            let view = gql_ruleset(rules, json!({"totalCount": 0, "nodes": []})).to_branch_ruleset();
            assert_eq!((view.required_approvals, view.restricts_updates), (approvals, restricts), "{name}");
            assert!(view.rules_complete, "{name}");
        }
    }

    #[test]
    fn github_graphql_bypass_actors_it_cannot_name_are_left_to_rest() {
        use serde_json::json;
        let update = json!([{"type": "UPDATE", "parameters": {"__typename": "UpdateParameters"}}]);
        let connection = |nodes: Vec<serde_json::Value>, total: usize| json!({"totalCount": total, "nodes": nodes});
        let named = connection(vec![gql_bypass(true, None, None), gql_bypass(false, None, Some("release"))], 2);
        let with_user = connection(vec![gql_bypass(true, None, None), gql_bypass(false, None, None)], 2);
        let truncated = connection(vec![gql_bypass(true, None, None)], 26);
        let cases: Vec<(&str, serde_json::Value, bool, Option<usize>)> = vec![
            ("owners and a team", named.clone(), false, Some(2)),
            ("a role", connection(vec![gql_bypass(false, Some((4, "write")), None)], 1), false, Some(1)),
            ("owners and a user", with_user.clone(), true, Some(2)),
            ("more than one page", truncated, true, None),
            ("hidden", serde_json::Value::Null, false, None),
        ];
        for (name, bypass, unsettled, seen) in cases {
            let ruleset = gql_ruleset(update.clone(), bypass);
            assert_eq!(ruleset.bypass_unsettled(), unsettled, "{name}");
            assert_eq!(ruleset.to_branch_ruleset().bypass.as_ref().map(Vec::len), seen, "{name}");
        }
        // Unnamed, the ruleset is not counted: everyone who writes lands.
        let everyone = set(&["org_role:owner", "user:ann", "user:wendy"]);
        let view = gql_ruleset(update.clone(), with_user).to_branch_ruleset();
        let fragment = map(S, &records_with(Protection::Unprotected, Some(vec![view.clone()]), None)).expect("map");
        assert_eq!(bypassers(&fragment, "gh:branch:acme/payments@main"), everyone);
        let node = fragment.nodes.iter().find(|n| n.id == "gh:branch:acme/payments@main").expect("branch");
        assert_eq!(node.attrs["rulesets_unresolved"], "main-updates");
        // Named through REST (`actor_type: User`), the user is exempt.
        let rest = rest_ruleset(
            "active",
            &["~DEFAULT_BRANCH"],
            &[],
            json!([
                {"actor_id": null, "actor_type": "OrganizationAdmin", "bypass_mode": "always"},
                {"actor_id": user_id("ann"), "actor_type": "User", "bypass_mode": "always"}
            ]),
        );
        let mut settled = view;
        settled.bypass = rest.bypass;
        let fragment = map(S, &records_with(Protection::Unprotected, Some(vec![settled]), None)).expect("map");
        assert_eq!(bypassers(&fragment, "gh:branch:acme/payments@main"), set(&["org_role:owner", "user:ann"]));
        // The same with a team named by GraphQL itself.
        let fragment = map(
            S,
            &records_with(Protection::Unprotected, Some(vec![gql_ruleset(update, named).to_branch_ruleset()]), None),
        )
        .expect("map");
        assert_eq!(bypassers(&fragment, "gh:branch:acme/payments@main"), set(&["org_role:owner", "user:wendy"]));
    }
}

#[tokio::test]
async fn github_app_token_is_renewed_before_it_expires() {
    let setup = app_setup().await;
    let manifest = super::mock::manifest(&dir());
    // A token with 2 minutes left is inside the 5-minute renewal margin:
    // the connector asks for a fresh one rather than risk a 401 mid-sync.
    let mut token: serde_json::Value = serde_json::from_slice(&fixture(&dir(), "access-token.json")).expect("fixture");
    token["expires_at"] = (chrono::Utc::now() + chrono::Duration::minutes(2)).to_rfc3339().into();
    let route = Route {
        method: "POST".into(),
        path: format!("/app/installations/{}/access_tokens", manifest.installation_id),
        ..Route::default()
    };
    let mut reply = Reply::json(serde_json::to_vec(&token).expect("json"));
    reply.status = 201;
    reply.etag = false;
    reply.auth = ExpectAuth::Jwt;
    setup.mock.mount_first(&route, reply, Some(1)).await;
    connector(&setup.settings).sync().await.expect("sync");
    let posts = setup.mock.requests().await.iter().filter(|r| r.url.path().ends_with("/access_tokens")).count();
    assert_eq!(posts, 2, "the short-lived token was replaced once, the fresh one kept");
}
