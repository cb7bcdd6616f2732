//! The Anthropic connector against an in-process mock of the Admin API, fed
//! from `fixtures/anthropic/` (wire-exact payloads).

use std::path::PathBuf;

use accessgraph_config::{AnthropicSettings, SecretRef};
use accessgraph_graph::model::{Edge, EdgeKind, Fragment, LastUse, Node, NodeKind};
use chrono::{DateTime, Utc};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::AnthropicConnector;
use super::transform;
use super::wire::{ApiKey, Organization};
use crate::connector::{Connector, SyncError};
use crate::http::HttpError;

const KEY: &str = "sk-ant-admin01-test-0123456789abcdef";
const ALICE: &str = "user_01AliceExampleAcme0001";
const DAVE: &str = "user_01DaveDepartedAcme0004";
const PAYMENTS: &str = "wrkspc_01PaymentsAcme000000001";
const RESEARCH: &str = "wrkspc_01ResearchAcme000000002";

fn fixture(name: &str) -> serde_json::Value {
    crate::testing::fixture("anthropic", name)
}

fn ok(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(fixture(name))
}

struct Setup {
    _dir: tempfile::TempDir,
    settings: AnthropicSettings,
}

fn setup(server: &MockServer) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file: PathBuf = dir.path().join("anthropic-admin-key");
    std::fs::write(&key_file, KEY).expect("write key");
    Setup { _dir: dir, settings: AnthropicSettings { admin_key: SecretRef::File(key_file), base_url: server.uri() } }
}

async fn sync(server: &MockServer) -> Result<Fragment, SyncError> {
    let setup = setup(server);
    AnthropicConnector::new("anthropic", setup.settings.clone()).sync().await
}

/// Mounts the Acme organization of `fixtures/anthropic/`: users over three
/// pages, invites, three workspaces (one archived: its members are never
/// read), members, and keys over two pages. Every mock expects one call and
/// checks both headers.
async fn mount_org(server: &MockServer) {
    mount_org_expecting(server, true).await;
}

/// [`mount_org`]; with `strict = false` no call is required (for tests that
/// fail the sync part-way).
async fn mount_org_expecting(server: &MockServer, strict: bool) {
    let once = || -> wiremock::Times { if strict { 1.into() } else { (0..).into() } };
    let get = |p: &str| {
        Mock::given(method("GET"))
            .and(path(format!("/v1/organizations/{p}")))
            .and(header("x-api-key", KEY))
            .and(header("anthropic-version", "2023-06-01"))
    };
    get("users")
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("after_id"))
        .respond_with(ok("users.page1.json"))
        .expect(once())
        .mount(server)
        .await;
    get("users")
        .and(query_param("after_id", "user_01BobExampleAcme00002"))
        .respond_with(ok("users.page2.json"))
        .expect(once())
        .mount(server)
        .await;
    get("users")
        .and(query_param("after_id", DAVE))
        .respond_with(ok("users.page3.json"))
        .expect(once())
        .mount(server)
        .await;
    get("invites").respond_with(ok("invites.json")).expect(once()).mount(server).await;
    get("workspaces")
        .and(query_param("include_archived", "true"))
        .respond_with(ok("workspaces.json"))
        .expect(once())
        .mount(server)
        .await;
    get(&format!("workspaces/{PAYMENTS}/members"))
        .respond_with(ok("workspace-payments.members.json"))
        .expect(once())
        .mount(server)
        .await;
    get(&format!("workspaces/{RESEARCH}/members"))
        .respond_with(ok("workspace-research.members.json"))
        .expect(once())
        .mount(server)
        .await;
    get("api_keys")
        .and(query_param_is_missing("after_id"))
        .respond_with(ok("api_keys.page1.json"))
        .expect(once())
        .mount(server)
        .await;
    get("api_keys")
        .and(query_param("after_id", "apikey_01DaveResearchBatch00001"))
        .respond_with(ok("api_keys.page2.json"))
        .expect(once())
        .mount(server)
        .await;
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

fn edges(fragment: &Fragment, kind: EdgeKind) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = fragment
        .edges
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| (e.from.clone(), e.to.clone(), e.actions.join(",")))
        .collect();
    out.sort();
    out
}

fn a(id: &str) -> String {
    format!("anthropic:{id}")
}

#[tokio::test]
async fn anthropic_maps_the_whole_organization() {
    let server = MockServer::start().await;
    mount_org(&server).await;
    let fragment = sync(&server).await.expect("sync");

    let alice = node(&fragment, &a(&format!("user:{ALICE}")));
    assert_eq!(
        (alice.kind, alice.email.as_deref(), alice.active),
        (NodeKind::Human, Some("alice@acme.example"), Some(true))
    );
    assert_eq!(alice.attrs.get("role").map(String::as_str), Some("admin"));
    node(&fragment, &a("user:user_01ErinExampleAcme00005"));
    let carol = node(&fragment, &a("invite:invite_015gWxCN9Hfg2QhZwTK7Mdeu"));
    assert_eq!(carol.active, Some(false), "a pending invite is not access");
    assert!(!fragment.nodes.iter().any(|n| n.id.ends_with("invite_01ExpiredFrank000000001")));

    let payments = node(&fragment, &a(&format!("workspace:{PAYMENTS}")));
    assert_eq!((payments.subkind.as_deref(), payments.environment.as_deref()), (Some("workspace"), Some("prod")));
    let archived = node(&fragment, &a("workspace:wrkspc_01ArchivedAcme000000003"));
    assert_eq!(archived.attrs.get("archived").map(String::as_str), Some("true"));
    // The default workspace, named only by keys: by its scope id (newer
    // shape) and, for the older shape without scope, as `default`.
    let default = node(&fragment, &a("workspace:wrkspc_01DefaultAcme00000000001"));
    assert_eq!(default.name, "Default workspace");
    node(&fragment, &a("workspace:default"));

    let dave_key_identity = a("service_account:key-apikey_01DaveResearchBatch00001");
    let erin_key_identity = a("service_account:key-apikey_01ErinDefault00000000001");
    let payments_key_identity = a("service_account:key-apikey_01Rj2N8SVvo6BePZj99NhmiT");
    let admin = "admin,develop,use".to_string();
    let expected_grants = {
        let mut g = vec![
            (dave_key_identity.clone(), a(&format!("workspace:{RESEARCH}")), "use".to_string()),
            (erin_key_identity.clone(), a("workspace:default"), "use".to_string()),
            (payments_key_identity.clone(), a(&format!("workspace:{PAYMENTS}")), "use".to_string()),
            // Alice is an organization admin: admin of every active workspace.
            (a(&format!("user:{ALICE}")), a(&format!("workspace:{PAYMENTS}")), admin.clone()),
            (a(&format!("user:{ALICE}")), a(&format!("workspace:{RESEARCH}")), admin.clone()),
            (a(&format!("user:{ALICE}")), a("workspace:default"), admin.clone()),
            (a(&format!("user:{ALICE}")), a("workspace:wrkspc_01DefaultAcme00000000001"), admin.clone()),
            (a("user:user_01BobExampleAcme00002"), a(&format!("workspace:{PAYMENTS}")), "develop,use".to_string()),
            (a(&format!("user:{DAVE}")), a(&format!("workspace:{RESEARCH}")), "develop,use".to_string()),
            (a("user:user_01ErinExampleAcme00005"), a(&format!("workspace:{RESEARCH}")), "use".to_string()),
        ];
        g.sort();
        g
    };
    assert_eq!(edges(&fragment, EdgeKind::Grant), expected_grants);
    assert!(fragment.edges.iter().all(|e| !e.to.contains("wrkspc_01ArchivedAcme")), "archived grants nothing");

    // Dave's key: the owner is its creator, inferred; the holder is the key's
    // own workload identity, owned (inferred) by Dave as well.
    let mut expected =
        Node::new(a("api_key:apikey_01DaveResearchBatch00001"), NodeKind::Credential, "anthropic", "research-batch");
    expected.subkind = Some("api_key".into());
    expected.active = Some(true);
    expected.owner = Some(a(&format!("user:{DAVE}")));
    expected.owner_inferred = true;
    expected.created_at = Some(t("2025-06-01T00:00:00Z"));
    expected.last_used = LastUse::Unknown;
    for (k, v) in [
        ("created_by", a(&format!("user:{DAVE}"))),
        ("key_hint", "sk-ant-api03-Dv1...x9QA".to_string()),
        ("last_used", transform::LAST_USED_UNKNOWN.to_string()),
        ("scope", "workspace".to_string()),
        ("status", "active".to_string()),
        ("workspace", a(&format!("workspace:{RESEARCH}"))),
    ] {
        expected.attrs.insert(k.to_string(), v);
    }
    assert_eq!(node(&fragment, &a("api_key:apikey_01DaveResearchBatch00001")), &expected);
    let identity = node(&fragment, &dave_key_identity);
    assert_eq!(identity.kind, NodeKind::ServiceAccount);
    assert_eq!((identity.owner.as_deref(), identity.owner_inferred), (Some(&*a(&format!("user:{DAVE}"))), true));

    assert_eq!(
        edges(&fragment, EdgeKind::Holds),
        vec![
            (dave_key_identity.clone(), a("api_key:apikey_01DaveResearchBatch00001"), String::new()),
            (erin_key_identity.clone(), a("api_key:apikey_01ErinDefault00000000001"), String::new()),
            (payments_key_identity.clone(), a("api_key:apikey_01Rj2N8SVvo6BePZj99NhmiT"), String::new()),
        ],
        "archived and inactive keys are held by nobody"
    );
    for dead in ["apikey_01Old0000000000000000001", "apikey_01BobInactive0000000001"] {
        let key = node(&fragment, &a(&format!("api_key:{dead}")));
        assert_eq!(key.active, Some(false), "{dead}");
        assert!(key.owner_inferred);
    }
    assert!(!fragment.nodes.iter().any(|n| n.id.contains("key-apikey_01Old") || n.id.contains("key-apikey_01Bob")));
    // No key ever has a last use; attributes hold redacted hints at most.
    for n in fragment.nodes.iter().filter(|n| n.kind == NodeKind::Credential) {
        assert_eq!(n.last_used, LastUse::Unknown);
    }
    for n in &fragment.nodes {
        for (k, v) in &n.attrs {
            assert!(!v.contains("sk-ant") || (k == "key_hint" && v.contains("...")), "{n:?}");
        }
    }
    let mut keys: Vec<_> = fragment.edges.iter().map(Edge::key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), fragment.edges.len());
}

#[tokio::test]
async fn anthropic_429_with_retry_after_then_success_and_529_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations/users"))
        .and(query_param_is_missing("after_id"))
        .respond_with(
            ResponseTemplate::new(429).insert_header("retry-after", "0").set_body_json(fixture("errors/429.json")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations/invites"))
        .respond_with(ResponseTemplate::new(529).set_body_json(fixture("errors/529.json")))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_org(&server).await;
    let fragment = sync(&server).await.expect("sync after 429 and 529");
    node(&fragment, &a("user:user_01ErinExampleAcme00005"));
}

#[tokio::test]
async fn anthropic_401_names_the_source_and_never_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations/users"))
        .respond_with(ResponseTemplate::new(401).set_body_json(fixture("errors/401.json")))
        .expect(1)
        .mount(&server)
        .await;
    let setup = setup(&server);
    let text = AnthropicConnector::new("claude-acme", setup.settings.clone()).sync().await.unwrap_err().to_string();
    assert!(text.contains("source `claude-acme` (anthropic)"), "{text}");
    assert!(text.contains("HTTP 401: invalid x-api-key"), "{text}");
    assert!(!text.contains(KEY), "{text}");
}

#[tokio::test]
async fn anthropic_403_is_a_permission_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations/users"))
        .respond_with(ResponseTemplate::new(403).set_body_json(fixture("errors/403.json")))
        .mount(&server)
        .await;
    let text = sync(&server).await.unwrap_err().to_string();
    assert!(text.contains("may not read this (HTTP 403"), "{text}");
}

#[tokio::test]
async fn anthropic_malformed_body_fails_the_whole_sync() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations/api_keys"))
        .respond_with(ok("errors/api_keys.malformed.json"))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_org_expecting(&server, false).await;
    match sync(&server).await {
        Err(SyncError::Http(HttpError::Decode { path, .. })) => assert_eq!(path, "data[0].created_at"),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

fn key(json: serde_json::Value) -> ApiKey {
    let mut base = serde_json::json!({
        "type": "api_key", "id": "apikey_x", "name": "x", "status": "active",
        "created_at": "2025-01-01T00:00:00Z", "created_by": {"id": "user_gone", "type": "user"},
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), json.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(base).expect("key")
}

#[test]
fn anthropic_principals_choose_the_holder() {
    let org = Organization {
        api_keys: vec![
            key(serde_json::json!({"id": "k_user", "principal": {"type": "user_actor", "user_id": "user_u"},
                "scope": {"type": "workspace", "workspace_id": "ws1"}})),
            key(
                serde_json::json!({"id": "k_sa", "principal": {"type": "service_account_actor", "service_account_id": "svc_1"},
                "scope": {"type": "organization"}}),
            ),
        ],
        ..Default::default()
    };
    let fragment = transform::map("an", &org).expect("maps");
    let holds = edges(&fragment, EdgeKind::Holds);
    assert_eq!(
        holds,
        vec![
            ("an:service_account:svc_1".into(), "an:api_key:k_sa".into(), String::new()),
            ("an:user:user_u".into(), "an:api_key:k_user".into(), String::new()),
        ]
    );
    // The creator left the organization: an inactive stub account.
    let gone = node(&fragment, "an:user:user_gone");
    assert_eq!(gone.active, Some(false));
    // An organization-scoped key reaches every active workspace (here: ws1,
    // named by the other key).
    assert_eq!(
        edges(&fragment, EdgeKind::Grant),
        vec![("an:service_account:svc_1".into(), "an:workspace:ws1".into(), "use".into())]
    );
}

#[test]
fn anthropic_principal_without_its_id_is_invalid() {
    let org = Organization {
        api_keys: vec![key(serde_json::json!({"principal": {"type": "user_actor"}}))],
        ..Default::default()
    };
    match transform::map("an", &org) {
        Err(SyncError::Invalid { location, .. }) => assert_eq!(location, "$.api_keys[0].principal.user_id"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn anthropic_workspace_roles_map_to_actions() {
    assert_eq!(transform::workspace_actions("workspace_user"), &["use"]);
    assert_eq!(transform::workspace_actions("workspace_restricted_developer"), &["develop", "use"]);
    assert_eq!(transform::workspace_actions("workspace_admin"), &["admin", "develop", "use"]);
    assert_eq!(transform::workspace_actions("workspace_billing"), &["billing"]);
    assert_eq!(transform::workspace_actions("workspace_new_role"), &["use"]);
    assert!(transform::is_org_admin("primary_owner") && !transform::is_org_admin("developer"));
}
