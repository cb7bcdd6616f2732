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
    // well) and the 404 of the unprotected branch.
    assert_eq!(stats.counted, 2, "{stats:?}");
    assert_eq!(stats.requests, first_stats.requests);
    // 304s carry no body: only the budget overview is read again.
    assert_eq!(stats.bytes, fixture(&dir(), "rate-limit.json").len() as u64, "{stats:?}");
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
        let repo: Repository =
            serde_json::from_slice::<Vec<Repository>>(&fixture(&dir(), "repos.json")).expect("repos").remove(0);
        let user = |login: &str| -> User {
            let mut value: serde_json::Value =
                serde_json::from_slice::<Vec<serde_json::Value>>(&fixture(&dir(), "members-admin.json"))
                    .expect("members")
                    .remove(0);
            value["login"] = login.into();
            serde_json::from_value(value).expect("user")
        };
        let collaborator = |login: &str, role: &str| Collaborator {
            login: login.to_string(),
            id: 1,
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
            teams: Vec::new(),
            repos: vec![RepoRecords {
                repo,
                collaborators: Some(vec![collaborator("wendy", "write"), collaborator("ann", "admin")]),
                deploy_keys: Some(Vec::new()),
                protection,
                secrets: Some(Vec::new()),
            }],
            installations: None,
            pats: None,
            credential_authorizations: None,
            org_secrets: None,
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
