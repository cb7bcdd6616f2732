//! Snapshot connector tests, fed from `fixtures/snapshot/` and `fixtures/demo/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use accessgraph_graph::model::{Edge, EdgeKind, Fragment, LastUse, Node, NodeKind};
use chrono::{DateTime, Utc};

use super::{SnapshotConnector, parse_and_map};
use crate::connector::{Connector, SyncError};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures().join("snapshot").join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn map_fixture(source: &str, name: &str) -> Fragment {
    parse_and_map(source, name, &fixture(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn node<'f>(fragment: &'f Fragment, id: &str) -> &'f Node {
    fragment
        .nodes
        .iter()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("no node {id} in {:#?}", fragment.nodes.iter().map(|n| &n.id).collect::<Vec<_>>()))
}

fn edges_of(fragment: &Fragment, kind: EdgeKind) -> Vec<(&str, &str)> {
    fragment.edges.iter().filter(|e| e.kind == kind).map(|e| (e.from.as_str(), e.to.as_str())).collect()
}

/// The `Invalid` error of mapping `bytes`, as (location, message).
fn invalid(file: &str, bytes: &[u8]) -> (String, String) {
    match parse_and_map("src", file, bytes) {
        Err(SyncError::Invalid { path, location, message }) => {
            assert_eq!(path, file, "the error names the file");
            (location, message)
        }
        other => panic!("{file}: expected Invalid, got {other:?} for {}", String::from_utf8_lossy(bytes)),
    }
}

#[test]
fn contract_example_maps_to_expected_nodes_and_edges() {
    let fragment = map_fixture("netsuite", "contract-example.json");
    assert_eq!(fragment.source, "netsuite");

    let mut alice = Node::new("netsuite:user:u1", NodeKind::Human, "netsuite", "Alice");
    alice.email = Some("alice@acme.example".into());
    alice.active = Some(true);
    let mut bot = Node::new("netsuite:agent:po-bot", NodeKind::Agent, "netsuite", "PO bot");
    bot.owner = Some("alice@acme.example".into());
    bot.active = Some(true);
    let buyers = Node::new("netsuite:group:buyers", NodeKind::Group, "netsuite", "Buyers");
    let approver = Node::new("netsuite:role:approver", NodeKind::Role, "netsuite", "PO approver");
    let mut po = Node::new("netsuite:dataset:po", NodeKind::Resource, "netsuite", "Purchase orders");
    po.subkind = Some("dataset".into());
    po.environment = Some("prod".into());
    po.data_domains = vec!["finance".into()];
    let mut key = Node::new("netsuite:api_key:k1", NodeKind::Credential, "netsuite", "k1");
    key.subkind = Some("api_key".into());
    key.created_at = Some(t("2025-01-01T00:00:00Z"));
    key.last_used = LastUse::Never;
    assert_eq!(fragment.nodes, vec![alice, bot, buyers, approver, po, key]);

    let mut grant = Edge::grant("netsuite:group:buyers", "netsuite:dataset:po", ["create"]);
    grant.granted_at = Some(t("2026-01-01T00:00:00Z"));
    assert_eq!(
        fragment.edges,
        vec![
            Edge::new("netsuite:user:u1", "netsuite:group:buyers", EdgeKind::MemberOf),
            Edge::new("netsuite:agent:po-bot", "netsuite:group:buyers", EdgeKind::MemberOf),
            Edge::new("netsuite:user:u1", "netsuite:role:approver", EdgeKind::CanAssume),
            grant,
            Edge::new("netsuite:agent:po-bot", "netsuite:api_key:k1", EdgeKind::Holds),
        ]
    );
}

#[test]
fn node_ids_use_the_configured_source_not_the_files_system() {
    let fragment = map_fixture("erp-eu", "contract-example.json");
    assert_eq!(fragment.source, "erp-eu");
    assert!(fragment.nodes.iter().all(|n| n.id.starts_with("erp-eu:") && n.source == "erp-eu"));
    assert!(fragment.edges.iter().all(|e| e.from.starts_with("erp-eu:") && e.to.starts_with("erp-eu:")));
}

#[test]
fn identity_kinds_owners_names_and_emails() {
    let f = map_fixture("s", "full.json");
    let alice = node(&f, "s:user:u1");
    assert_eq!(alice.kind, NodeKind::Human);
    assert_eq!(alice.email.as_deref(), Some("Alice@Acme.Example"), "trimmed, case kept for resolution to lower");
    let bob = node(&f, "s:user:u2");
    assert_eq!(bob.name, "bob@acme.example", "name falls back to the email");
    assert_eq!(bob.active, Some(false));
    assert_eq!(node(&f, "s:user:ops").active, None, "not reported");

    let bot = node(&f, "s:agent:bot");
    assert_eq!(bot.kind, NodeKind::Agent);
    assert_eq!(bot.owner.as_deref(), Some("s:user:u1"), "an id owner becomes that identity's node id");
    let sa = node(&f, "s:service_account:sa");
    assert_eq!(sa.kind, NodeKind::ServiceAccount);
    assert_eq!(sa.name, "sa", "name falls back to the id");
    assert_eq!(sa.owner.as_deref(), Some("carol@acme.example"), "an email owner is kept, trimmed");
    let app = node(&f, "s:app:gh");
    assert_eq!(app.kind, NodeKind::App);
    assert_eq!(app.owner, None, "an empty owner is no owner");
}

#[test]
fn nested_groups_and_role_chains() {
    let f = map_fixture("s", "full.json");
    assert_eq!(
        edges_of(&f, EdgeKind::MemberOf),
        vec![
            ("s:group:eng", "s:group:all"),
            ("s:user:u2", "s:group:all"), // listed twice, kept once
            ("s:user:u1", "s:group:eng"),
            ("s:agent:bot", "s:group:eng"),
        ]
    );
    assert_eq!(
        edges_of(&f, EdgeKind::CanAssume),
        vec![
            ("s:role:deployer", "s:role:admin"),
            ("s:group:eng", "s:role:deployer"),
            ("s:user:ops", "s:role:deployer"),
            ("s:role:deployer", "s:role:ops"),
        ]
    );
    assert_eq!(node(&f, "s:group:empty").kind, NodeKind::Group);
}

#[test]
fn resources_carry_kind_environment_and_domains() {
    let f = map_fixture("s", "full.json");
    let repo = node(&f, "s:repo:acme/payments");
    assert_eq!(repo.kind, NodeKind::Resource);
    assert_eq!(repo.subkind.as_deref(), Some("repo"));
    assert_eq!(repo.environment, None, "empty environment is unknown");
    assert_eq!(repo.data_domains, vec!["finance"], "deduplicated, blanks dropped");
    let customers = node(&f, "s:dataset:warehouse.customers");
    assert_eq!(customers.name, "Customers");
    assert_eq!(customers.environment.as_deref(), Some("prod"));
    assert_eq!(customers.data_domains, vec!["pii"]);
    assert_eq!(node(&f, "s:k8s-cluster_2:cluster").subkind.as_deref(), Some("k8s-cluster_2"));
}

#[test]
fn grants_resolve_principals_and_merge_duplicates() {
    let f = map_fixture("s", "full.json");
    let grants: BTreeMap<String, &Edge> =
        f.edges.iter().filter(|e| e.kind == EdgeKind::Grant).map(|e| (e.key(), e)).collect();
    assert_eq!(grants.len(), 5, "{:#?}", grants.keys());

    // Same principal, resource and (normalised) actions: one edge, the
    // latest expiry and the earliest grant time.
    let eng = grants["s:group:eng|grant|s:repo:acme/payments|read,write"];
    assert_eq!(eng.actions, vec!["read", "write"]);
    assert_eq!(eng.expires_at, Some(t("2027-01-01T00:00:00Z")));
    assert_eq!(eng.granted_at, Some(t("2026-02-01T00:00:00Z")));

    // A grant without expiry beats one with.
    let admin = grants["s:role:admin|grant|s:k8s-cluster_2:cluster|admin"];
    assert_eq!(admin.expires_at, None);
    assert_eq!(admin.granted_at, Some(t("2025-06-01T00:00:00Z")));

    let bot = grants["s:agent:bot|grant|s:dataset:warehouse.customers|read"];
    assert_eq!(bot.granted_at, Some(t("2026-11-24T09:30:00Z")));
    assert_eq!(bot.expires_at, Some(t("2026-12-24T09:30:00Z")));
    assert!(grants.contains_key("s:group:all|grant|s:repo:acme/payments|read"));
    assert!(grants.contains_key("s:user:ops|grant|s:dataset:warehouse.customers|read"), "qualified `user:ops`");
}

#[test]
fn last_used_absent_null_and_time() {
    let f = map_fixture("s", "full.json");
    assert_eq!(node(&f, "s:api_key:k-never").last_used, LastUse::Never, "null: never used");
    assert_eq!(node(&f, "s:api_key:k-used").last_used, LastUse::At(t("2026-11-19T12:00:00.5Z")), "a timestamp");
    assert_eq!(node(&f, "s:deploy_token:k-unknown").last_used, LastUse::Unknown, "absent: cannot tell");
    assert_eq!(node(&f, "s:api_key:orphan").last_used, LastUse::Unknown);
}

#[test]
fn credentials_have_times_owner_and_holder() {
    let f = map_fixture("s", "full.json");
    let used = node(&f, "s:api_key:k-used");
    assert_eq!(used.kind, NodeKind::Credential);
    assert_eq!(used.subkind.as_deref(), Some("api_key"));
    assert_eq!(used.name, "CI key");
    assert_eq!(used.owner.as_deref(), Some("s:user:u1"));
    assert_eq!(used.created_at, Some(t("2026-10-01T00:00:00Z")));
    assert_eq!(used.expires_at, Some(t("2026-12-01T00:00:00Z")));
    let never = node(&f, "s:api_key:k-never");
    assert_eq!(never.expires_at, None, "null expiry: never expires");
    let orphan = node(&f, "s:api_key:orphan");
    assert_eq!((orphan.created_at, orphan.owner.as_deref()), (None, None));
    assert_eq!(
        edges_of(&f, EdgeKind::Holds),
        vec![
            ("s:agent:bot", "s:api_key:k-never"),
            ("s:service_account:sa", "s:api_key:k-used"),
            ("s:app:gh", "s:deploy_token:k-unknown"),
        ]
    );
}

#[test]
fn empty_arrays_and_missing_sections_are_fine() {
    for name in ["minimal.json", "empty-sections.json"] {
        let f = map_fixture("s", name);
        assert_eq!((f.source.as_str(), f.nodes.len(), f.edges.len()), ("s", 0, 0), "{name}");
    }
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(fixture("contract-example.json"));
    assert_eq!(parse_and_map("n", "bom.json", &bytes).unwrap().nodes.len(), 6);
}

/// Each invalid fixture fails with the exact JSON path and a telling message.
#[test]
fn invalid_fixtures_name_the_exact_json_path() {
    let cases = [
        ("missing-field.json", "$.grants[3].actions", "missing field `actions`"),
        ("wrong-type.json", "$.grants[3].actions", "invalid type: string \"admin\", expected a sequence"),
        ("dangling-member.json", "$.groups[0].members[2]", "member `u3` is not the id of an identity or group"),
        ("dangling-owner.json", "$.identities[1].owner", "owner `alice` is not the id of an identity"),
        ("ambiguous-id.json", "$.grants[0].principal", "principal `approvers` is ambiguous"),
        ("bad-version.json", "$.version", "unsupported snapshot version 2"),
        ("bad-timestamp.json", "$.credentials[1].created_at", "`2025-01-01 00:00:00` is not an RFC 3339 timestamp"),
        ("unknown-identity-kind.json", "$.identities[1].kind", "unknown identity kind `robot`"),
    ];
    for (name, location, message) in cases {
        let file = format!("invalid/{name}");
        let (got_location, got_message) = invalid(&file, &fixture(&file));
        assert_eq!(got_location, location, "{name}: {got_message}");
        assert!(got_message.contains(message), "{name}: `{got_message}` lacks `{message}`");
    }
}

#[test]
fn ambiguous_ids_suggest_the_qualified_forms() {
    let (_, message) = invalid("a.json", &fixture("invalid/ambiguous-id.json"));
    assert!(message.contains("a group ($.groups[0])") && message.contains("a role ($.roles[0])"), "{message}");
    assert!(message.contains("`group:approvers` or `role:approvers`"), "{message}");
}

/// Smaller error cases, inline: (json, location, message fragment).
#[test]
fn inline_invalid_cases_name_the_exact_json_path() {
    let cases: &[(&str, &str, &str)] = &[
        (r#"{"identities": []}"#, "$.version", "missing field `version`"),
        (r#"{"version": "1"}"#, "$.version", "unsupported snapshot version \"1\""),
        (r#"[1]"#, "$", "invalid type: sequence, expected a JSON object"),
        (
            r#"{"version": 1, "identities": [["u1", "human"]]}"#,
            "$.identities[0]",
            "invalid type: sequence, expected a JSON object",
        ),
        (r#"{"version": 1, "grants": {"principal": "u1"}}"#, "$.grants", "invalid type: map, expected a sequence"),
        (r#"{"version": 1, "identities": [}"#, "$.identities", "expected value"),
        (r#"{"version": 1} trailing"#, "$", "trailing characters"),
        (r#"{"version": 1, "collected_at": "yesterday"}"#, "$.collected_at", "not an RFC 3339 timestamp"),
        (r#"{"version": 1, "identities": [{"kind": "human"}]}"#, "$.identities[0].id", "missing field `id`"),
        (
            r#"{"version": 1, "identities": [{"id": "a", "kind": "human", "active": "yes"}]}"#,
            "$.identities[0].active",
            "invalid type: string \"yes\", expected a boolean",
        ),
        (r#"{"version": 1, "identities": [{"id": " ", "kind": "human"}]}"#, "$.identities[0].id", "must not be empty"),
        (
            r#"{"version": 1, "identities": [{"id": "a", "kind": "human"}, {"id": "a", "kind": "agent"}]}"#,
            "$.identities[1].id",
            "duplicate identity id `a` (first at $.identities[0])",
        ),
        (r#"{"version": 1, "groups": [{"id": "g"}, {"id": "g"}]}"#, "$.groups[1].id", "duplicate group id `g`"),
        (r#"{"version": 1, "roles": [{"id": "r"}, {"id": "r"}]}"#, "$.roles[1].id", "duplicate role id `r`"),
        (
            r#"{"version": 1, "resources": [{"id": "x", "kind": "repo"}, {"id": "x", "kind": "dataset"}]}"#,
            "$.resources[1].id",
            "duplicate resource id `x`",
        ),
        (
            r#"{"version": 1, "credentials": [{"id": "k", "kind": "api_key"}, {"id": "k", "kind": "pat"}]}"#,
            "$.credentials[1].id",
            "duplicate credential id `k`",
        ),
        (
            r#"{"version": 1, "identities": [{"id": "u1", "kind": "human"}], "resources": [{"id": "u1", "kind": "user"}]}"#,
            "$.resources[0].id",
            "node id `src:user:u1` is already used by $.identities[0]",
        ),
        (
            r#"{"version": 1, "resources": [{"id": "x", "kind": "S3 Bucket"}]}"#,
            "$.resources[0].kind",
            "must be a non-empty token",
        ),
        (
            r#"{"version": 1, "resources": [{"id": "x", "kind": ""}]}"#,
            "$.resources[0].kind",
            "must be a non-empty token",
        ),
        (r#"{"version": 1, "resources": [{"id": "x"}]}"#, "$.resources[0].kind", "missing field `kind`"),
        (
            r#"{"version": 1, "credentials": [{"id": "k", "kind": "API key"}]}"#,
            "$.credentials[0].kind",
            "must be a non-empty token",
        ),
        (
            r#"{"version": 1, "groups": [{"id": "g", "members": ["g"]}]}"#,
            "$.groups[0].members[0]",
            "cannot be a member of itself",
        ),
        (
            r#"{"version": 1, "roles": [{"id": "r", "assumable_by": ["r"]}]}"#,
            "$.roles[0].assumable_by[0]",
            "cannot assume itself",
        ),
        (
            r#"{"version": 1, "roles": [{"id": "r", "assumable_by": ["nobody"]}]}"#,
            "$.roles[0].assumable_by[0]",
            "`nobody` is not the id of an identity, group or role in this file",
        ),
        (
            r#"{"version": 1, "identities": [{"id": "b", "kind": "agent", "owner": "b"}]}"#,
            "$.identities[0].owner",
            "cannot own itself",
        ),
        (
            r#"{"version": 1, "groups": [{"id": "g"}], "identities": [{"id": "b", "kind": "agent", "owner": "g"}]}"#,
            "$.identities[0].owner",
            "owner `g` is a group ($.groups[0]), but it must be an identity",
        ),
        (
            r#"{"version": 1, "groups": [{"id": "g"}], "credentials": [{"id": "k", "kind": "api_key", "holder": "g"}]}"#,
            "$.credentials[0].holder",
            "holder `g` is a group",
        ),
        (
            r#"{"version": 1, "credentials": [{"id": "k", "kind": "api_key", "holder": "ghost"}]}"#,
            "$.credentials[0].holder",
            "holder `ghost` is not the id of an identity in this file",
        ),
        (
            r#"{"version": 1, "credentials": [{"id": "k", "kind": "api_key", "owner": "ghost"}]}"#,
            "$.credentials[0].owner",
            "owner `ghost`",
        ),
        (
            r#"{"version": 1, "credentials": [{"id": "k", "kind": "api_key", "last_used_at": "2026-13-01T00:00:00Z"}]}"#,
            "$.credentials[0].last_used_at",
            "not an RFC 3339 timestamp",
        ),
        (
            r#"{"version": 1, "credentials": [{"id": "k", "kind": "api_key", "created_at": "2026-02-01T00:00:00Z", "expires_at": "2026-01-01T00:00:00Z"}]}"#,
            "$.credentials[0].expires_at",
            "expires before it was created",
        ),
        (
            r#"{"version": 1, "identities": [{"id": "a", "kind": "human"}], "resources": [{"id": "x", "kind": "repo"}],
             "grants": [{"principal": "a", "resource": "x", "actions": []}]}"#,
            "$.grants[0].actions",
            "at least one action",
        ),
        (
            r#"{"version": 1, "identities": [{"id": "a", "kind": "human"}], "resources": [{"id": "x", "kind": "repo"}],
             "grants": [{"principal": "a", "resource": "x", "actions": ["read", " "]}]}"#,
            "$.grants[0].actions[1]",
            "must not be empty",
        ),
        (
            r#"{"version": 1, "identities": [{"id": "a", "kind": "human"}], "resources": [{"id": "x", "kind": "repo"}],
             "grants": [{"principal": "a", "resource": "x", "actions": ["read", 7]}]}"#,
            "$.grants[0].actions[1]",
            "invalid type: integer `7`",
        ),
        (
            r#"{"version": 1, "identities": [{"id": "a", "kind": "human"}], "resources": [{"id": "x", "kind": "repo"}],
             "grants": [{"principal": "x", "resource": "x", "actions": ["read"]}]}"#,
            "$.grants[0].principal",
            "principal `x` is a resource ($.resources[0]), but it must be an identity, group or role",
        ),
        (
            r#"{"version": 1, "identities": [{"id": "a", "kind": "human"}], "resources": [{"id": "x", "kind": "repo"}],
             "grants": [{"principal": "a", "resource": "a", "actions": ["read"]}]}"#,
            "$.grants[0].resource",
            "resource `a` is an identity ($.identities[0]), but it must be a resource",
        ),
        (
            r#"{"version": 1, "identities": [{"id": "a", "kind": "human"}], "resources": [{"id": "x", "kind": "repo"}],
             "grants": [{"principal": "a", "resource": "y", "actions": ["read"]}]}"#,
            "$.grants[0].resource",
            "resource `y` is not the id of a resource in this file",
        ),
        (
            r#"{"version": 1, "identities": [{"id": "a", "kind": "human"}], "resources": [{"id": "x", "kind": "repo"}],
             "grants": [{"principal": "a", "resource": "x", "actions": ["read"], "granted_at": "2026-02-01T00:00:00Z", "expires_at": "2026-01-01T00:00:00Z"}]}"#,
            "$.grants[0].expires_at",
            "expires before it was granted",
        ),
        (
            r#"{"version": 1, "identities": [{"id": "a", "kind": "human"}], "resources": [{"id": "x", "kind": "repo"}],
             "grants": [{"principal": "a", "resource": "x", "actions": ["read"], "granted_at": 20260101}]}"#,
            "$.grants[0].granted_at",
            "invalid type: integer",
        ),
    ];
    for (json, location, message) in cases {
        let (got_location, got_message) = invalid("inline.json", json.as_bytes());
        assert_eq!(got_location, *location, "{json}: {got_message}");
        assert!(got_message.contains(message), "{json}: `{got_message}` lacks `{message}`");
    }
}

#[test]
fn qualified_references_disambiguate_and_may_carry_the_source() {
    let json = r#"{"version": 1,
        "identities": [{"id": "approvers", "kind": "human"}],
        "groups": [{"id": "approvers", "members": ["user:approvers"]}],
        "roles": [{"id": "approvers", "assumable_by": ["group:approvers", "src:user:approvers"]}],
        "resources": [{"id": "po", "kind": "dataset"}],
        "grants": [{"principal": "role:approvers", "resource": "src:dataset:po", "actions": ["approve"]}]}"#;
    let f = parse_and_map("src", "q.json", json.as_bytes()).unwrap();
    assert_eq!(edges_of(&f, EdgeKind::MemberOf), vec![("src:user:approvers", "src:group:approvers")]);
    assert_eq!(
        edges_of(&f, EdgeKind::CanAssume),
        vec![("src:group:approvers", "src:role:approvers"), ("src:user:approvers", "src:role:approvers")]
    );
    assert_eq!(edges_of(&f, EdgeKind::Grant), vec![("src:role:approvers", "src:dataset:po")]);
}

#[test]
fn references_may_point_forward() {
    let json = r#"{"version": 1,
        "identities": [{"id": "bot", "kind": "agent", "owner": "zed"}, {"id": "zed", "kind": "human"}],
        "groups": [{"id": "outer", "members": ["inner"]}, {"id": "inner", "members": ["zed"]}]}"#;
    let f = parse_and_map("src", "f.json", json.as_bytes()).unwrap();
    assert_eq!(node(&f, "src:agent:bot").owner.as_deref(), Some("src:user:zed"));
    assert_eq!(
        edges_of(&f, EdgeKind::MemberOf),
        vec![("src:group:inner", "src:group:outer"), ("src:user:zed", "src:group:inner")]
    );
}

#[tokio::test]
async fn connector_reads_the_file_and_maps_it() {
    let path = fixtures().join("snapshot/contract-example.json");
    let connector = SnapshotConnector::new("erp", &path);
    assert_eq!((connector.source(), connector.kind()), ("erp", "snapshot"));
    let fragment = connector.sync().await.unwrap();
    assert_eq!(fragment, map_fixture("erp", "contract-example.json"));
}

#[tokio::test]
async fn connector_reading_a_missing_file_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.json");
    let err = SnapshotConnector::new("erp", &path).sync().await.unwrap_err();
    match &err {
        SyncError::Read { path: named, message } => {
            assert_eq!(named, &path.display().to_string());
            assert!(!message.is_empty());
        }
        other => panic!("expected Read, got {other:?}"),
    }
    assert!(err.to_string().contains("gone.json"), "{err}");
}

#[tokio::test]
async fn connector_reports_invalid_content_with_the_file_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, fixture("invalid/dangling-member.json")).unwrap();
    let err = SnapshotConnector::new("erp", &path).sync().await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("bad.json") && text.contains("$.groups[0].members[2]"), "{text}");
}

/// Every file of the demo company maps; a few counts pin its shape.
#[test]
fn demo_company_files_all_map() {
    let dir = fixtures().join("demo");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let names: Vec<String> = files.iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["code", "erp", "idp", "llm-gateway", "warehouse"]);

    let mut fragments = BTreeMap::new();
    for (file, name) in files.iter().zip(&names) {
        // Source names as in config/examples/demo.toml.
        let source = if name == "idp" { "okta" } else { name.as_str() };
        let bytes = std::fs::read(file).unwrap();
        let fragment = parse_and_map(source, &file.display().to_string(), &bytes).unwrap_or_else(|err| panic!("{err}"));
        fragments.insert(source.to_string(), fragment);
    }

    let count = |source: &str, pred: &dyn Fn(&Node) -> bool| fragments[source].nodes.iter().filter(|n| pred(n)).count();
    let humans = |n: &Node| n.kind == NodeKind::Human;
    let non_humans = |n: &Node| n.kind.is_non_human();
    let agents = |n: &Node| n.kind == NodeKind::Agent;
    let credentials = |n: &Node| n.kind == NodeKind::Credential;

    // The IdP knows every person, one of whom has left.
    assert_eq!(count("okta", &humans), 16);
    assert_eq!(count("okta", &|n| n.kind == NodeKind::Human && n.active == Some(false)), 1);
    assert!(fragments["okta"].nodes.iter().filter(|n| n.kind == NodeKind::Human).all(|n| n.email.is_some()));

    // Agents across systems: 7 distinct, 10 identities (po-bot, devbot and
    // insights-bot act in two systems each).
    let agent_ids: Vec<&str> =
        fragments.values().flat_map(|f| &f.nodes).filter(|n| agents(n)).map(|n| n.id.as_str()).collect();
    assert_eq!(agent_ids.len(), 10, "{agent_ids:?}");
    // Snowflake spells them `INSIGHTS_BOT`.
    let mut distinct: Vec<String> =
        agent_ids.iter().map(|id| id.rsplit(':').next().unwrap().to_lowercase().replace('_', "-")).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 7, "{distinct:?}");

    assert_eq!(count("llm-gateway", &non_humans), 6);
    assert_eq!(count("erp", &non_humans), 3);
    assert_eq!(count("code", &non_humans), 4);
    assert_eq!(count("warehouse", &non_humans), 3);
    let total_credentials: usize = fragments.keys().map(|s| count(s, &credentials)).sum();
    assert_eq!(total_credentials, 17);

    // Last use: never (null), unknown (absent) and a time all occur.
    let last_uses: Vec<LastUse> =
        fragments.values().flat_map(|f| &f.nodes).filter(|n| credentials(n)).map(|n| n.last_used).collect();
    assert!(last_uses.contains(&LastUse::Never));
    assert!(last_uses.contains(&LastUse::Unknown));
    assert!(last_uses.iter().any(|u| matches!(u, LastUse::At(_))));

    // Nested groups and a user → role → role chain in the ERP.
    let erp = &fragments["erp"];
    assert!(erp.edges.contains(&Edge::new("erp:group:finance-managers", "erp:group:finance-all", EdgeKind::MemberOf)));
    assert!(erp.edges.contains(&Edge::new("erp:user:cdiaz", "erp:role:ap-supervisor", EdgeKind::CanAssume)));
    assert!(erp.edges.contains(&Edge::new("erp:role:ap-supervisor", "erp:role:payment-approver", EdgeKind::CanAssume)));

    // Recent grants (drift.baseline on a first scan) and grants with and without expiry.
    let now = t("2026-11-27T00:00:00Z");
    let grants: Vec<&Edge> = fragments.values().flat_map(|f| &f.edges).filter(|e| e.kind == EdgeKind::Grant).collect();
    let recent = grants.iter().filter(|e| e.granted_at.is_some_and(|g| now - g <= chrono::Duration::days(7))).count();
    assert_eq!(recent, 4, "bob's PO approval, devbot's deploy approval, slack-experiment's two grants");
    assert!(grants.iter().any(|e| e.expires_at.is_some()));
    assert!(grants.iter().any(|e| e.expires_at.is_none()));
}

/// The demo end to end (config, catalog, policy, every rule) with "now" =
/// 2026-11-27: each rule fires, and exactly the identities of
/// `fixtures/demo/README.md` get findings.
#[test]
fn demo_company_fires_every_rule_as_documented() {
    use accessgraph_config::SourceSettings;
    use accessgraph_graph::{AccessGraph, PolicyEngine, ResolveSettings, analyze};
    use std::collections::BTreeSet;

    let config_path = fixtures().join("../config/examples/demo.toml");
    let config = accessgraph_config::load(&config_path).unwrap_or_else(|problems| panic!("{problems}"));
    let (mut nodes, mut edges, mut identity_sources) = (Vec::new(), Vec::new(), BTreeSet::new());
    for source in &config.sources {
        let SourceSettings::Snapshot(settings) = &source.settings else {
            panic!("{}: the demo is snapshots only", source.name);
        };
        if settings.identity_source {
            identity_sources.insert(source.name.clone());
        }
        let bytes = std::fs::read(&settings.path).unwrap_or_else(|e| panic!("{}: {e}", settings.path.display()));
        let fragment = parse_and_map(&source.name, &settings.path.display().to_string(), &bytes).unwrap();
        nodes.extend(fragment.nodes);
        edges.extend(fragment.edges);
    }
    assert_eq!(identity_sources, BTreeSet::from(["okta".to_string()]));

    let settings = config.analysis_settings();
    let resolve = ResolveSettings { aliases: Vec::new(), identity_sources };
    let graph = AccessGraph::build(nodes, edges, &settings.catalog, &resolve).unwrap();
    let policy = PolicyEngine::parse(&config.policy.as_ref().expect("[policy]").text).unwrap();
    let analysis = analyze(&graph, None, Some(&policy), &settings, t("2026-11-27T00:00:00Z")).unwrap();

    let mut got: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for finding in &analysis.findings {
        got.entry(finding.subject.as_str()).or_default().insert(finding.rule.as_str());
    }
    let expected: BTreeMap<&str, BTreeSet<&str>> = [
        ("person:bob.martin@acme.example", &["drift.policy", "drift.baseline", "sod.violation"][..]),
        ("person:oscar.reyes@acme.example", &["drift.policy", "sod.violation"]),
        ("person:jack.turner@acme.example", &["drift.policy"]),
        // Credential findings name the holding account.
        ("code:user:jturner", &["secret.standing", "secret.unused", "secret.stale"]),
        ("okta:user:paula.james", &["secret.standing", "secret.stale"]),
        ("code:agent:devbot", &["drift.policy", "drift.baseline", "sod.violation", "secret.standing"]),
        ("llm-gateway:agent:devbot", &["drift.catalog", "secret.standing"]),
        ("warehouse:agent:INSIGHTS_BOT", &["drift.policy"]),
        ("warehouse:agent:REPORT_BOT", &["drift.catalog"]),
        ("llm-gateway:agent:support-summarizer", &["ownerless.owner_inactive", "secret.standing"]),
        (
            "erp:service_account:netsuite-integration",
            &["ownerless.owner_inactive", "secret.standing", "secret.unused", "secret.stale"],
        ),
        ("llm-gateway:agent:slack-experiment", &["ownerless.unregistered", "drift.baseline", "secret.standing"]),
        (
            "llm-gateway:service_account:eval-harness",
            &["ownerless.no_owner", "ownerless.unregistered", "secret.standing", "secret.unused", "secret.stale"],
        ),
        ("code:app:release-notes", &["ownerless.no_owner", "ownerless.unregistered"]),
        ("code:service_account:mirror-sync", &["secret.standing", "secret.stale"]),
    ]
    .into_iter()
    .map(|(subject, rules)| (subject, rules.iter().copied().collect()))
    .collect();
    assert_eq!(got, expected);

    let fired: BTreeSet<&str> = got.values().flatten().copied().collect();
    assert_eq!(fired.len(), 10, "every rule fires: {fired:?}");
    // Oscar's SoD spans two sources: his ERP and GitLab accounts are one person.
    assert!(analysis.findings.iter().any(|f| f.rule == "sod.violation"
        && f.subject == "person:oscar.reyes@acme.example"
        && f.evidence.iter().flatten().any(|id| id.starts_with("erp:"))
        && f.evidence.iter().flatten().any(|id| id.starts_with("code:"))));
}
