//! The SCIM connector against an in-process mock server fed from
//! `fixtures/scim/` in each flavour: generic, Okta and Entra shapes.

use std::path::PathBuf;

use accessgraph_config::{ScimFlavor, ScimSettings, SecretRef};
use accessgraph_graph::model::{EdgeKind, Fragment, Node, NodeKind};
use wiremock::matchers::{bearer_token, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::ScimConnector;
use super::client::Directory;
use super::transform;
use crate::connector::{Connector, SyncError};

const TOKEN: &str = "scim-test-token-0123456789";
const ALICE: &str = "2819c223-7f76-453a-919d-413861904646";
const DAVE: &str = "5d8f0c2e-1b7a-4c4e-9f43-6a3c1e2b9d04";
const DANA: &str = "26118915-6090-4610-87e4-49d8ca9f808d";
const ERIN: &str = "7a1e9b3c-55d2-4e8f-a0c1-3b9e2d4f6a05";
const AI: &str = "e9e30dba-f08f-4109-8486-d5c6a331660a";
const ALL: &str = "f1c2d3e4-0000-4000-8000-000000000001";

fn fixture(name: &str) -> serde_json::Value {
    crate::testing::fixture("scim", name)
}

fn ok(name: &str) -> ResponseTemplate {
    // SCIM's own media type: the client must not insist on application/json.
    ResponseTemplate::new(200).set_body_raw(fixture(name).to_string(), "application/scim+json")
}

struct Setup {
    _dir: tempfile::TempDir,
    settings: ScimSettings,
}

fn setup(server: &MockServer, flavor: ScimFlavor) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let token: PathBuf = dir.path().join("scim-token");
    std::fs::write(&token, TOKEN).expect("write token");
    let settings =
        ScimSettings { base_url: format!("{}/scim/v2", server.uri()), token: SecretRef::File(token), flavor };
    Setup { _dir: dir, settings }
}

async fn sync(server: &MockServer, flavor: ScimFlavor) -> Result<Fragment, SyncError> {
    let setup = setup(server, flavor);
    ScimConnector::new("okta", setup.settings.clone()).sync().await
}

/// `/Users` in three pages of two (the server caps the page whatever
/// `count` asks), expecting `count=COUNT`.
async fn mount_users(server: &MockServer, dir: &str, count: &str) {
    for (start, page) in [("1", 1), ("3", 2), ("5", 3)] {
        Mock::given(method("GET"))
            .and(path("/scim/v2/Users"))
            .and(bearer_token(TOKEN))
            .and(query_param("startIndex", start))
            .and(query_param("count", count))
            .and(query_param_is_missing("filter"))
            .respond_with(ok(&format!("{dir}/users.page{page}.json")))
            .expect(1)
            .mount(server)
            .await;
    }
}

async fn mount_groups(server: &MockServer, dir: &str, count: &str) {
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups"))
        .and(bearer_token(TOKEN))
        .and(query_param("startIndex", "1"))
        .and(query_param("count", count))
        .respond_with(ok(&format!("{dir}/groups.json")))
        .expect(1)
        .mount(server)
        .await;
}

fn node<'f>(fragment: &'f Fragment, id: &str) -> &'f Node {
    fragment
        .nodes
        .iter()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("no node {id} in {:#?}", fragment.nodes.iter().map(|n| &n.id).collect::<Vec<_>>()))
}

fn memberships(fragment: &Fragment) -> Vec<(String, String)> {
    let mut out: Vec<_> = fragment
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::MemberOf)
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    out.sort();
    out
}

/// What every flavour's fixtures must map to: same people, same groups.
fn assert_directory(fragment: &Fragment) {
    let users = fragment.nodes.iter().filter(|n| n.kind == NodeKind::Human).count();
    assert_eq!(users, 5, "{:#?}", fragment.nodes);
    let alice = node(fragment, &format!("okta:user:{ALICE}"));
    assert_eq!(alice.name, "Alice Example");
    assert_eq!(alice.email.as_deref(), Some("alice@acme.example"), "the work email, not the personal one");
    assert_eq!(alice.active, Some(true));
    assert_eq!(alice.attrs.get("user_name").map(String::as_str), Some("alice@acme.example"));
    assert_eq!(alice.attrs.get("external_id").map(String::as_str), Some("00u1alice0000000000x7"));
    assert_eq!(alice.attrs.get("manager"), Some(&format!("okta:user:{DANA}")));
    assert_eq!(alice.attrs.get("manager_name").map(String::as_str), Some("Dana Manager"));
    assert_eq!(alice.attrs.get("department").map(String::as_str), Some("Payments"));
    let dave = node(fragment, &format!("okta:user:{DAVE}"));
    assert_eq!((dave.active, dave.email.as_deref()), (Some(false), Some("dave@acme.example")));
    let erin = node(fragment, &format!("okta:user:{ERIN}"));
    assert_eq!(erin.email.as_deref(), Some("erin@acme.example"), "userName stands in for a missing email");

    let ai = node(fragment, &format!("okta:group:{AI}"));
    assert_eq!((ai.kind, ai.name.as_str()), (NodeKind::Group, "AI Platform"));
    let u = |id: &str| format!("okta:user:{id}");
    let g = |id: &str| format!("okta:group:{id}");
    let mut expected = vec![
        (u(ALICE), g(AI)),
        (u("902c246b-6245-4190-8e05-00816be7344a"), g(AI)),
        (g(AI), g(ALL)),
        (u(DANA), g(ALL)),
        (u(ERIN), g(ALL)),
        (u(DAVE), g(ALL)),
    ];
    expected.sort();
    assert_eq!(memberships(fragment), expected, "the member deleted between pages is skipped");
}

#[tokio::test]
async fn scim_generic_pages_users_and_maps_groups() {
    let server = MockServer::start().await;
    mount_users(&server, "generic", "100").await;
    mount_groups(&server, "generic", "100").await;
    let fragment = sync(&server, ScimFlavor::Generic).await.expect("sync");
    assert_directory(&fragment);
}

#[tokio::test]
async fn scim_okta_asks_200_follows_short_pages_and_untyped_members() {
    let server = MockServer::start().await;
    // An Okta-style server refuses pages beyond its maximum.
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .and(query_param("count", "201"))
        .respond_with(ResponseTemplate::new(400).set_body_json(fixture("okta/errors.count-too-large.json")))
        .expect(0)
        .mount(&server)
        .await;
    mount_users(&server, "okta", "200").await;
    mount_groups(&server, "okta", "200").await;
    let fragment = sync(&server, ScimFlavor::Okta).await.expect("sync");
    assert_directory(&fragment);
}

#[tokio::test]
async fn scim_entra_casing_string_booleans_and_groups_read_one_by_one() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .and(query_param("startIndex", "1"))
        .respond_with(ok("entra/users.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups"))
        .and(query_param("excludedAttributes", "members"))
        .respond_with(ok("entra/groups.json"))
        .expect(1)
        .mount(&server)
        .await;
    for id in [AI, ALL] {
        Mock::given(method("GET"))
            .and(path(format!("/scim/v2/Groups/{id}")))
            .and(bearer_token(TOKEN))
            .respond_with(ok(&format!("entra/group-{id}.json")))
            .expect(1)
            .mount(&server)
            .await;
    }
    let fragment = sync(&server, ScimFlavor::Entra).await.expect("sync");
    assert_directory(&fragment);
}

#[tokio::test]
async fn scim_429_with_retry_after_then_success() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .and(query_param("startIndex", "3"))
        .respond_with(
            ResponseTemplate::new(429).insert_header("Retry-After", "0").set_body_json(fixture("errors/429.json")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_users(&server, "generic", "100").await;
    mount_groups(&server, "generic", "100").await;
    assert_directory(&sync(&server, ScimFlavor::Generic).await.expect("sync after 429"));
}

#[tokio::test]
async fn scim_401_names_the_source_never_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .respond_with(ResponseTemplate::new(401).set_body_json(fixture("errors/401.json")))
        .expect(1)
        .mount(&server)
        .await;
    let text = sync(&server, ScimFlavor::Generic).await.unwrap_err().to_string();
    assert!(text.contains("source `okta` (scim)"), "{text}");
    assert!(text.contains("HTTP 401: Unauthorized"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}

#[tokio::test]
async fn scim_malformed_user_fails_the_sync_with_its_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .respond_with(ok("errors/users.malformed.json"))
        .mount(&server)
        .await;
    mount_groups(&server, "generic", "100").await;
    match sync(&server, ScimFlavor::Generic).await {
        Err(SyncError::Invalid { location, .. }) => assert_eq!(location, "$.Users[1].id"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn scim_active_must_be_a_boolean_and_duplicates_across_pages_collapse() {
    let user = |id: &str, active: serde_json::Value| serde_json::json!({"id": id, "userName": "x@acme.example", "active": active});
    let directory = Directory {
        users: vec![user("u1", serde_json::json!("FALSE")), user("u1", serde_json::json!(true))],
        groups: Vec::new(),
    };
    let fragment = transform::map("s", &directory).expect("maps");
    assert_eq!(fragment.nodes.len(), 1, "index paging may repeat a user");
    assert_eq!(fragment.nodes[0].active, Some(false));
    let directory = Directory { users: vec![user("u1", serde_json::json!("sometimes"))], groups: Vec::new() };
    match transform::map("s", &directory) {
        Err(SyncError::Invalid { location, .. }) => assert_eq!(location, "$.Users[0].active"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}
