//! The OpenAI connector against an in-process mock of the Administration
//! API, fed from `fixtures/openai/` (wire-exact payloads).

use std::path::PathBuf;

use accessgraph_config::{OpenAiSettings, SecretRef};
use accessgraph_graph::model::{Edge, EdgeKind, Fragment, LastUse, Node, NodeKind};
use chrono::{DateTime, Utc};
use wiremock::matchers::{bearer_token, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::OpenAiConnector;
use super::transform;
use super::wire::{Organization, ProjectApiKey, ProjectRecords};
use crate::connector::{Connector, SyncError};
use crate::http::HttpError;

const KEY: &str = "sk-admin-test-0123456789abcdef";

fn fixture(name: &str) -> serde_json::Value {
    crate::testing::fixture("openai", name)
}

fn ok(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(fixture(name))
}

/// A key file and settings pointing at the mock server.
struct Setup {
    _dir: tempfile::TempDir,
    settings: OpenAiSettings,
}

fn setup(server: &MockServer) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file: PathBuf = dir.path().join("openai-admin-key");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("write key");
    let settings = OpenAiSettings { admin_key: SecretRef::File(key_file), base_url: format!("{}/v1", server.uri()) };
    Setup { _dir: dir, settings }
}

async fn sync(server: &MockServer) -> Result<Fragment, SyncError> {
    let setup = setup(server);
    OpenAiConnector::new("openai", setup.settings.clone()).sync().await
}

/// Mounts the Acme organization of `fixtures/openai/`: users over three
/// pages, invites, three projects (one archived, never read), members,
/// service accounts, keys (one only visible with `owner_project_access=any`)
/// and admin keys. Every mock expects exactly one call.
async fn mount_org(server: &MockServer) {
    let get = |p: &str| Mock::given(method("GET")).and(path(format!("/v1/organization/{p}"))).and(bearer_token(KEY));
    get("users")
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("after"))
        .respond_with(ok("users.page1.json"))
        .expect(1)
        .mount(server)
        .await;
    get("users")
        .and(query_param("after", "user_bob02"))
        .respond_with(ok("users.page2.json"))
        .expect(1)
        .mount(server)
        .await;
    get("users")
        .and(query_param("after", "user_dave04"))
        .respond_with(ok("users.page3.json"))
        .expect(1)
        .mount(server)
        .await;
    get("invites").respond_with(ok("invites.json")).expect(1).mount(server).await;
    get("projects")
        .and(query_param("include_archived", "true"))
        .respond_with(ok("projects.json"))
        .expect(1)
        .mount(server)
        .await;
    for project in ["payments", "research"] {
        let id = format!("proj_{project}");
        get(&format!("projects/{id}/users"))
            .respond_with(ok(&format!("project-{project}.users.json")))
            .expect(1)
            .mount(server)
            .await;
        get(&format!("projects/{id}/service_accounts"))
            .respond_with(ok(&format!("project-{project}.service_accounts.json")))
            .expect(1)
            .mount(server)
            .await;
    }
    get("projects/proj_payments/api_keys")
        .and(query_param("owner_project_access", "any"))
        .respond_with(ok("project-payments.api_keys.json"))
        .expect(1)
        .mount(server)
        .await;
    get("projects/proj_research/api_keys")
        .and(query_param("owner_project_access", "any"))
        .respond_with(ok("project-research.api_keys.any.json"))
        .expect(1)
        .mount(server)
        .await;
    get("admin_api_keys").respond_with(ok("admin_api_keys.json")).expect(1).mount(server).await;
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
}

fn node<'f>(fragment: &'f Fragment, id: &str) -> &'f Node {
    fragment
        .nodes
        .iter()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("no node {id} in {:#?}", fragment.nodes.iter().map(|n| &n.id).collect::<Vec<_>>()))
}

fn grants(fragment: &Fragment) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = fragment
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::Grant)
        .map(|e| (e.from.clone(), e.to.clone(), e.actions.join(",")))
        .collect();
    out.sort();
    out
}

fn holds(fragment: &Fragment) -> Vec<(&str, &str)> {
    let mut out: Vec<_> =
        fragment.edges.iter().filter(|e| e.kind == EdgeKind::Holds).map(|e| (e.from.as_str(), e.to.as_str())).collect();
    out.sort();
    out
}

#[tokio::test]
async fn openai_maps_the_whole_organization() {
    let server = MockServer::start().await;
    mount_org(&server).await;
    let fragment = sync(&server).await.expect("sync");

    // Users from all three pages, with role; Dave's email kept as written.
    let alice = node(&fragment, "openai:user:user_alice01");
    assert_eq!((alice.kind, alice.name.as_str()), (NodeKind::Human, "Alice Example"));
    assert_eq!(alice.email.as_deref(), Some("alice@acme.example"));
    assert_eq!(alice.active, Some(true));
    assert_eq!(alice.attrs.get("role").map(String::as_str), Some("owner"));
    assert_eq!(node(&fragment, "openai:user:user_dave04").email.as_deref(), Some("Dave@Acme.Example"));
    node(&fragment, "openai:user:user_erin05");

    // Only the pending invite, as an inactive account that grants nothing.
    let carol = node(&fragment, "openai:invite:invite-carol03");
    assert_eq!((carol.kind, carol.active), (NodeKind::Human, Some(false)));
    assert_eq!(carol.attrs.get("invite_projects").map(String::as_str), Some("proj_payments (member)"));
    assert!(
        fragment.nodes.iter().all(|n| n.id != "openai:invite:invite-frank06" && n.id != "openai:invite:invite-erin05")
    );

    // The archived project is flagged and grants nothing.
    let legacy = node(&fragment, "openai:project:proj_legacy");
    assert_eq!(legacy.subkind.as_deref(), Some("project"));
    assert_eq!(legacy.attrs.get("archived").map(String::as_str), Some("true"));
    assert!(fragment.edges.iter().all(|e| e.to != "openai:project:proj_legacy"));

    let g =
        |from: &str, to: &str, actions: &str| (format!("openai:{from}"), format!("openai:{to}"), actions.to_string());
    assert_eq!(
        grants(&fragment),
        vec![
            g("service_account:svc_acct_deploybot", "project:proj_payments", "use"),
            // Alice is an organization owner: admin everywhere, use where a member.
            g("user:user_alice01", "project:proj_payments", "admin,use"),
            g("user:user_alice01", "project:proj_research", "admin"),
            g("user:user_bob02", "project:proj_payments", "use"),
            g("user:user_bob02", "project:proj_research", "admin,use"),
            g("user:user_erin05", "project:proj_research", "use"),
        ]
    );

    let deploy_bot = node(&fragment, "openai:service_account:svc_acct_deploybot");
    assert_eq!(deploy_bot.kind, NodeKind::ServiceAccount);
    assert_eq!(deploy_bot.owner, None, "the API names no owner for a service account");

    assert_eq!(
        holds(&fragment),
        vec![
            ("openai:service_account:svc_acct_deploybot", "openai:api_key:key_svc01"),
            ("openai:user:user_alice01", "openai:admin_key:key_admin01"),
            ("openai:user:user_alice01", "openai:api_key:key_alice01"),
            ("openai:user:user_bob02", "openai:api_key:key_bob_idle"),
            ("openai:user:user_dave04", "openai:api_key:key_dave_hidden"),
        ]
    );

    let mut expected = Node::new("openai:api_key:key_bob_idle", NodeKind::Credential, "openai", "bob-notebook");
    expected.subkind = Some("api_key".into());
    expected.owner = Some("openai:user:user_bob02".into());
    expected.created_at = Some(t("2025-02-10T10:00:00Z"));
    expected.last_used = LastUse::At(t("2026-05-11T12:00:00Z"));
    expected.attrs.insert("project".into(), "openai:project:proj_payments".into());
    expected.attrs.insert("owner_project_access".into(), "active".into());
    expected.attrs.insert("key_hint".into(), "sk-proj-bob...idl".into());
    assert_eq!(node(&fragment, "openai:api_key:key_bob_idle"), &expected);

    // The key whose owner lost project access is there, because it was
    // listed with owner_project_access=any.
    let hidden = node(&fragment, "openai:api_key:key_dave_hidden");
    assert_eq!(hidden.attrs.get("owner_project_access").map(String::as_str), Some("inactive"));
    assert_eq!(hidden.owner.as_deref(), Some("openai:user:user_dave04"));
    assert_eq!(hidden.expires_at, None, "project keys never expire");

    let svc_key = node(&fragment, "openai:api_key:key_svc01");
    assert_eq!(svc_key.owner, None, "a service account's key has no owner of its own");

    let admin = node(&fragment, "openai:admin_key:key_admin01");
    assert_eq!(admin.subkind.as_deref(), Some("admin_key"));
    assert_eq!(admin.owner.as_deref(), Some("openai:user:user_alice01"));
    assert_eq!(admin.last_used, LastUse::At(t("2026-11-26T18:00:00Z")));

    // Only the provider's redacted hints, never anything longer.
    for n in &fragment.nodes {
        for (k, v) in &n.attrs {
            assert!(!v.contains("sk-") || (k == "key_hint" && v.contains("...")), "{n:?}");
        }
    }
    // Unique ids and edge keys (the store relies on it).
    let mut ids: Vec<_> = fragment.nodes.iter().map(|n| &n.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), fragment.nodes.len());
    let mut keys: Vec<_> = fragment.edges.iter().map(Edge::key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), fragment.edges.len());
}

#[tokio::test]
async fn openai_429_with_retry_after_ms_then_success() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organization/users"))
        .and(query_param_is_missing("after"))
        .respond_with(
            ResponseTemplate::new(429).insert_header("retry-after-ms", "20").set_body_json(fixture("errors/429.json")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_org(&server).await;
    let fragment = sync(&server).await.expect("sync after a 429");
    node(&fragment, "openai:user:user_erin05");
}

#[tokio::test]
async fn openai_5xx_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organization/invites"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream connect error"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_org(&server).await;
    sync(&server).await.expect("sync after a 503");
}

#[tokio::test]
async fn openai_401_names_the_source_and_the_secret_reference_never_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organization/users"))
        .respond_with(ResponseTemplate::new(401).set_body_json(fixture("errors/401.json")))
        .expect(1) // not retried
        .mount(&server)
        .await;
    let setup = setup(&server);
    let err = OpenAiConnector::new("openai-acme", setup.settings.clone()).sync().await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("source `openai-acme`"), "{text}");
    assert!(text.contains("HTTP 401"), "{text}");
    assert!(text.contains("Admin API key"), "{text}");
    assert!(text.contains("openai-admin-key"), "names the key file: {text}");
    assert!(!text.contains(KEY), "{text}");
}

#[tokio::test]
async fn openai_403_is_a_permission_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organization/users"))
        .respond_with(ResponseTemplate::new(403).set_body_json(fixture("errors/403.json")))
        .expect(1)
        .mount(&server)
        .await;
    let text = sync(&server).await.unwrap_err().to_string();
    assert!(text.contains("may not read this (HTTP 403"), "{text}");
}

#[tokio::test]
async fn openai_malformed_body_fails_the_whole_sync_with_the_json_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organization/users"))
        .respond_with(ok("errors/users.malformed.json"))
        .mount(&server)
        .await;
    match sync(&server).await {
        Err(SyncError::Http(HttpError::Decode { path, message, .. })) => {
            assert_eq!(path, "data[1]");
            assert!(message.contains("missing field `id`"), "{message}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn openai_missing_admin_key_is_a_clear_error() {
    let server = MockServer::start().await;
    let settings =
        OpenAiSettings { admin_key: SecretRef::File(PathBuf::from("/nonexistent/openai-key")), base_url: server.uri() };
    let text = OpenAiConnector::new("openai", settings).sync().await.unwrap_err().to_string();
    assert!(text.contains("source `openai` admin_key"), "{text}");
}

fn key(id: &str, owner: serde_json::Value, last_used: Option<i64>) -> ProjectApiKey {
    serde_json::from_value(serde_json::json!({
        "object": "organization.project.api_key", "redacted_value": "sk-...", "name": id, "created_at": 1_700_000_000,
        "last_used_at": last_used, "id": id, "owner_project_access": "inactive", "owner": owner,
    }))
    .expect("key")
}

fn project(id: &str, keys: Vec<ProjectApiKey>) -> ProjectRecords {
    ProjectRecords {
        project: serde_json::from_value(
            serde_json::json!({"id": id, "object": "organization.project", "created_at": 1}),
        )
        .expect("project"),
        users: Vec::new(),
        service_accounts: Vec::new(),
        api_keys: keys,
    }
}

#[test]
fn openai_key_of_an_owner_gone_from_the_organization_gets_an_inactive_stub() {
    let owner = serde_json::json!({"type": "user", "user": {"id": "user_gone", "email": "gone@acme.example"}});
    let org = Organization { projects: vec![project("proj_a", vec![key("key_a", owner, None)])], ..Default::default() };
    let fragment = transform::map("oa", &org).expect("maps");
    let stub = node(&fragment, "oa:user:user_gone");
    assert_eq!((stub.active, stub.email.as_deref()), (Some(false), Some("gone@acme.example")));
    let key = node(&fragment, "oa:api_key:key_a");
    assert_eq!(key.last_used, LastUse::Never, "last_used_at null means never used");
    assert_eq!(key.owner.as_deref(), Some("oa:user:user_gone"));
}

#[test]
fn openai_strict_on_broken_owner_and_timestamps() {
    let owner = serde_json::json!({"type": "user"});
    let org = Organization { projects: vec![project("proj_a", vec![key("key_a", owner, None)])], ..Default::default() };
    match transform::map("oa", &org) {
        Err(SyncError::Invalid { location, .. }) => assert_eq!(location, "$.projects[0].api_keys[0].owner.user"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    let owner = serde_json::json!({"type": "service_account", "service_account": {"id": "svc"}});
    let org = Organization {
        projects: vec![project("proj_a", vec![key("key_a", owner, Some(i64::MAX))])],
        ..Default::default()
    };
    match transform::map("oa", &org) {
        Err(SyncError::Invalid { location, .. }) => assert_eq!(location, "$.projects[0].api_keys[0].last_used_at"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn openai_an_unredacted_key_value_is_never_kept() {
    let owner = serde_json::json!({"type": "service_account", "service_account": {"id": "svc"}});
    let mut whole = key("key_a", owner.clone(), None);
    whole.redacted_value = Some(format!("sk-proj-{}", "x".repeat(100)));
    let mut hint = key("key_b", owner, None);
    hint.redacted_value = Some("sk-proj-abc...def".into());
    let org = Organization { projects: vec![project("proj_a", vec![whole, hint])], ..Default::default() };
    let fragment = transform::map("oa", &org).expect("maps");
    assert_eq!(node(&fragment, "oa:api_key:key_a").attrs.get("key_hint"), None);
    assert_eq!(
        node(&fragment, "oa:api_key:key_b").attrs.get("key_hint").map(String::as_str),
        Some("sk-proj-abc...def")
    );
}

#[test]
fn openai_project_roles_map_to_actions() {
    assert_eq!(transform::project_actions("owner"), &["admin", "use"]);
    assert_eq!(transform::project_actions("member"), &["use"]);
    assert_eq!(transform::project_actions("none"), &[] as &[&str]);
    assert_eq!(transform::project_actions("Something-New"), &["use"]);
}
