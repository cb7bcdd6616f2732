//! Unit tests of `AccessGraph`: people, owners and effective access.

use accessgraph_graph::model::{Edge, EdgeKind, Node, NodeKind};
use accessgraph_graph::settings::{Catalog, CatalogAgent};
use accessgraph_graph::{AccessEntry, AccessGraph, Owner, ResolveSettings};
use chrono::{DateTime, Duration, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).single().expect("valid time")
}

fn human(source: &str, key: &str, email: Option<&str>, active: Option<bool>) -> Node {
    let mut node = Node::new(format!("{source}:user:{key}"), NodeKind::Human, source, key);
    node.email = email.map(str::to_string);
    node.active = active;
    node
}

fn node(id: &str, kind: NodeKind) -> Node {
    let source = id.split(':').next().unwrap_or_default();
    Node::new(id, kind, source, id.rsplit(':').next().unwrap_or(id))
}

fn agent(id: &str, owner: Option<&str>) -> Node {
    let mut node = node(id, NodeKind::Agent);
    node.owner = owner.map(str::to_string);
    node
}

fn member(from: &str, to: &str) -> Edge {
    Edge::new(from, to, EdgeKind::MemberOf)
}

fn assume(from: &str, to: &str) -> Edge {
    Edge::new(from, to, EdgeKind::CanAssume)
}

fn grant(from: &str, to: &str, actions: &[&str]) -> Edge {
    Edge::grant(from, to, actions.iter().copied())
}

fn build(nodes: Vec<Node>, edges: Vec<Edge>) -> AccessGraph {
    build_with(nodes, edges, &Catalog::default(), &ResolveSettings::default())
}

fn build_with(nodes: Vec<Node>, edges: Vec<Edge>, catalog: &Catalog, resolve: &ResolveSettings) -> AccessGraph {
    AccessGraph::build(nodes, edges, catalog, resolve).expect("graph builds")
}

fn ix(graph: &AccessGraph, id: &str) -> petgraph::graph::NodeIndex {
    graph.find(id).unwrap_or_else(|| panic!("node {id} exists"))
}

/// Effective access of one principal as (resource id, action, path ids).
fn access(graph: &AccessGraph, principal: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<_> = graph
        .effective_access(now())
        .of_principal(ix(graph, principal))
        .map(|e: &AccessEntry| (graph.node(e.resource).id.clone(), e.action.to_string(), graph.path_ids(&e.path())))
        .collect();
    out.sort();
    out
}

fn ids(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn record(id: &str, owner: Option<&str>, identities: &[&str]) -> CatalogAgent {
    CatalogAgent {
        id: id.to_string(),
        owner: owner.map(str::to_string),
        controller: None,
        purpose: None,
        risk_tier: None,
        allowed_systems: None,
        expires: None,
        identities: ids(identities),
    }
}

#[test]
fn people_resolve_across_sources_whatever_the_email_case() {
    let graph = build(
        vec![
            human("github", "alice", Some("Alice@ACME.example"), Some(true)),
            human("okta", "00u1", Some(" alice@acme.example"), Some(true)),
            human("github", "bob", Some("bob@acme.example"), Some(true)),
            human("github", "ghost", None, Some(true)),
        ],
        vec![],
    );
    let alice = ix(&graph, "person:alice@acme.example");
    assert_eq!(graph.node(alice).kind, NodeKind::Person);
    assert_eq!(graph.node(alice).email.as_deref(), Some("alice@acme.example"));
    let mut accounts: Vec<String> = graph.accounts_of(alice).into_iter().map(|a| graph.node(a).id.clone()).collect();
    accounts.sort();
    assert_eq!(accounts, ids(&["github:user:alice", "okta:user:00u1"]));
    assert_eq!(graph.person_of(ix(&graph, "github:user:alice")), Some(alice));
    assert_eq!(graph.person_of(ix(&graph, "okta:user:00u1")), Some(alice));
    assert!(graph.find("person:Alice@ACME.example").is_none());
    // Accounts resolved to a person act as the person; an email-less account acts alone.
    let principals: Vec<String> = graph.principals().into_iter().map(|p| graph.node(p).id.clone()).collect();
    assert_eq!(principals, ids(&["github:user:ghost", "person:alice@acme.example", "person:bob@acme.example"]));
}

#[test]
fn an_alias_binds_an_account_without_email() {
    let resolve = ResolveSettings {
        aliases: vec![("github:user:octo-al".to_string(), "ALICE@acme.example".to_string())],
        ..ResolveSettings::default()
    };
    let graph = build_with(
        vec![
            human("okta", "alice", Some("alice@acme.example"), Some(true)),
            human("github", "octo-al", None, Some(true)),
            node("github:repo:acme/app", NodeKind::Resource),
        ],
        vec![grant("github:user:octo-al", "github:repo:acme/app", &["write"])],
        &Catalog::default(),
        &resolve,
    );
    let alice = ix(&graph, "person:alice@acme.example");
    assert_eq!(graph.person_of(ix(&graph, "github:user:octo-al")), Some(alice));
    assert_eq!(
        access(&graph, "person:alice@acme.example"),
        vec![(
            "github:repo:acme/app".to_string(),
            "write".to_string(),
            ids(&["person:alice@acme.example", "github:user:octo-al", "github:repo:acme/app"])
        )]
    );
}

#[test]
fn nested_groups_confer_access_with_the_full_path() {
    let graph = build(
        vec![
            agent("t:agent:bot", None),
            node("t:group:inner", NodeKind::Group),
            node("t:group:middle", NodeKind::Group),
            node("t:group:outer", NodeKind::Group),
            node("t:dataset:db", NodeKind::Resource),
        ],
        vec![
            member("t:agent:bot", "t:group:inner"),
            member("t:group:inner", "t:group:middle"),
            member("t:group:middle", "t:group:outer"),
            grant("t:group:outer", "t:dataset:db", &["read", "write"]),
        ],
    );
    let path = ids(&["t:agent:bot", "t:group:inner", "t:group:middle", "t:group:outer", "t:dataset:db"]);
    assert_eq!(
        access(&graph, "t:agent:bot"),
        vec![
            ("t:dataset:db".to_string(), "read".to_string(), path.clone()),
            ("t:dataset:db".to_string(), "write".to_string(), path),
        ]
    );
    let mut groups: Vec<String> =
        graph.groups_of(ix(&graph, "t:agent:bot"), now()).into_iter().map(|g| graph.node(g).id.clone()).collect();
    groups.sort();
    assert_eq!(groups, ids(&["t:group:inner", "t:group:middle", "t:group:outer"]));
}

#[test]
fn role_chains_user_role_role() {
    let graph = build(
        vec![
            human("aws", "alice", Some("alice@acme.example"), Some(true)),
            node("aws:role:dev", NodeKind::Role),
            node("aws:role:admin", NodeKind::Role),
            node("aws:resource:arn:s3:::logs", NodeKind::Resource),
            node("aws:resource:arn:s3:::prod", NodeKind::Resource),
        ],
        vec![
            assume("aws:user:alice", "aws:role:dev"),
            assume("aws:role:dev", "aws:role:admin"),
            grant("aws:role:dev", "aws:resource:arn:s3:::logs", &["read"]),
            grant("aws:role:admin", "aws:resource:arn:s3:::prod", &["admin"]),
        ],
    );
    let person = "person:alice@acme.example";
    assert_eq!(
        access(&graph, person),
        vec![
            (
                "aws:resource:arn:s3:::logs".to_string(),
                "read".to_string(),
                ids(&[person, "aws:user:alice", "aws:role:dev", "aws:resource:arn:s3:::logs"])
            ),
            (
                "aws:resource:arn:s3:::prod".to_string(),
                "admin".to_string(),
                ids(&[person, "aws:user:alice", "aws:role:dev", "aws:role:admin", "aws:resource:arn:s3:::prod"])
            ),
        ]
    );
}

#[test]
fn expired_grants_and_memberships_are_excluded() {
    let t = now();
    let mut expired_grant = grant("t:agent:bot", "t:dataset:a", &["read"]);
    expired_grant.expires_at = Some(t);
    let mut live_grant = grant("t:agent:bot", "t:dataset:b", &["read"]);
    live_grant.expires_at = Some(t + Duration::seconds(1));
    let mut expired_membership = member("t:agent:bot", "t:group:old");
    expired_membership.expires_at = Some(t - Duration::days(1));
    let mut live_membership = member("t:agent:bot", "t:group:temp");
    live_membership.expires_at = Some(t + Duration::days(3));
    let graph = build(
        vec![
            agent("t:agent:bot", None),
            node("t:group:old", NodeKind::Group),
            node("t:group:temp", NodeKind::Group),
            node("t:dataset:a", NodeKind::Resource),
            node("t:dataset:b", NodeKind::Resource),
            node("t:dataset:c", NodeKind::Resource),
            node("t:dataset:d", NodeKind::Resource),
        ],
        vec![
            expired_grant,
            live_grant,
            expired_membership,
            live_membership,
            grant("t:group:old", "t:dataset:c", &["write"]),
            grant("t:group:temp", "t:dataset:d", &["write"]),
        ],
    );
    let got: Vec<(String, String)> = access(&graph, "t:agent:bot").into_iter().map(|(r, a, _)| (r, a)).collect();
    assert_eq!(
        got,
        vec![("t:dataset:b".to_string(), "read".to_string()), ("t:dataset:d".to_string(), "write".to_string())]
    );
    // The entry carries the earliest expiry along its path.
    let effective = graph.effective_access(t);
    let d = effective
        .holds(ix(&graph, "t:agent:bot"), ix(&graph, "t:dataset:d"), "write")
        .expect("time-bound access via the group");
    assert_eq!(d.expires_at, Some(t + Duration::days(3)));
    let groups: Vec<String> =
        graph.groups_of(ix(&graph, "t:agent:bot"), t).into_iter().map(|g| graph.node(g).id.clone()).collect();
    assert_eq!(groups, ids(&["t:group:temp"]));
}

#[test]
fn cycles_in_groups_and_roles_terminate() {
    let graph = build(
        vec![
            agent("t:agent:bot", None),
            node("t:group:a", NodeKind::Group),
            node("t:group:b", NodeKind::Group),
            node("t:group:c", NodeKind::Group),
            node("t:role:r1", NodeKind::Role),
            node("t:role:r2", NodeKind::Role),
            node("t:dataset:db", NodeKind::Resource),
        ],
        vec![
            member("t:agent:bot", "t:group:a"),
            member("t:group:a", "t:group:b"),
            member("t:group:b", "t:group:c"),
            member("t:group:c", "t:group:a"),
            member("t:group:b", "t:group:b"),
            assume("t:group:c", "t:role:r1"),
            assume("t:role:r1", "t:role:r2"),
            assume("t:role:r2", "t:role:r1"),
            grant("t:role:r2", "t:dataset:db", &["admin"]),
        ],
    );
    assert_eq!(
        access(&graph, "t:agent:bot"),
        vec![(
            "t:dataset:db".to_string(),
            "admin".to_string(),
            ids(&["t:agent:bot", "t:group:a", "t:group:b", "t:group:c", "t:role:r1", "t:role:r2", "t:dataset:db"])
        )]
    );
    assert_eq!(graph.groups_of(ix(&graph, "t:agent:bot"), now()).len(), 3);
    assert_eq!(graph.groups_of(ix(&graph, "t:group:a"), now()).len(), 3, "a group in a cycle is its own ancestor");
}

#[test]
fn evidence_is_a_shortest_path() {
    let graph = build(
        vec![
            agent("t:agent:bot", None),
            node("t:group:long1", NodeKind::Group),
            node("t:group:long2", NodeKind::Group),
            node("t:group:short", NodeKind::Group),
            node("t:dataset:db", NodeKind::Resource),
        ],
        vec![
            // The long path is listed first, so insertion order does not pick it.
            member("t:agent:bot", "t:group:long1"),
            member("t:group:long1", "t:group:long2"),
            grant("t:group:long2", "t:dataset:db", &["read"]),
            member("t:agent:bot", "t:group:short"),
            grant("t:group:short", "t:dataset:db", &["read", "write"]),
        ],
    );
    let short = ids(&["t:agent:bot", "t:group:short", "t:dataset:db"]);
    assert_eq!(
        access(&graph, "t:agent:bot"),
        vec![
            ("t:dataset:db".to_string(), "read".to_string(), short.clone()),
            ("t:dataset:db".to_string(), "write".to_string(), short),
        ]
    );
    let path = graph.path(ix(&graph, "t:agent:bot"), ix(&graph, "t:dataset:db")).expect("connected");
    assert_eq!(graph.path_ids(&path).len(), 3);
}

#[test]
fn owners_resolve_by_email_node_id_and_catalog_first() {
    let mut key = node("t:api_key:k1", NodeKind::Credential);
    key.owner = Some("t:user:bob".to_string());
    key.owner_inferred = true;
    let catalog = Catalog::new(vec![
        record("po-bot", Some("bob@acme.example"), &["t:agent:catalogued"]),
        record("no-owner", None, &["t:agent:fallback"]),
    ]);
    let graph = build_with(
        vec![
            human("okta", "alice", Some("alice@acme.example"), Some(true)),
            human("t", "bob", Some("bob@acme.example"), Some(true)),
            human("t", "nomail", None, Some(true)),
            human("scim", "dan@acme.example", None, Some(true)),
            agent("t:agent:by-id-with-at", Some("scim:user:dan@acme.example")),
            agent("t:agent:by-email", Some("ALICE@acme.example")),
            agent("t:agent:by-id", Some("t:user:bob")),
            agent("t:agent:by-account-id", Some("t:user:nomail")),
            agent("t:agent:catalogued", Some("alice@acme.example")),
            agent("t:agent:fallback", Some("alice@acme.example")),
            agent("t:agent:unknown", Some("Ghost@acme.example")),
            agent("t:agent:none", None),
            key,
        ],
        vec![],
        &catalog,
        &ResolveSettings::default(),
    );
    let alice = ix(&graph, "person:alice@acme.example");
    let bob = ix(&graph, "person:bob@acme.example");
    let owner = |id: &str| graph.owner(ix(&graph, id)).clone();
    assert_eq!(owner("t:agent:by-email"), Owner::Known { node: alice, from_catalog: false, inferred: false });
    assert_eq!(
        owner("t:agent:by-id"),
        Owner::Known { node: bob, from_catalog: false, inferred: false },
        "account → person"
    );
    assert_eq!(
        owner("t:agent:by-account-id"),
        Owner::Known { node: ix(&graph, "t:user:nomail"), from_catalog: false, inferred: false }
    );
    assert_eq!(
        owner("t:agent:by-id-with-at"),
        Owner::Known { node: ix(&graph, "scim:user:dan@acme.example"), from_catalog: false, inferred: false },
        "a node id holding an `@` is not mistaken for an email"
    );
    assert_eq!(owner("t:agent:catalogued"), Owner::Known { node: bob, from_catalog: true, inferred: false });
    assert_eq!(owner("t:agent:fallback"), Owner::Known { node: alice, from_catalog: false, inferred: false });
    assert_eq!(
        owner("t:agent:unknown"),
        Owner::Unknown { reference: "Ghost@acme.example".to_string(), from_catalog: false }
    );
    assert_eq!(owner("t:agent:none"), Owner::Missing);
    assert_eq!(owner("t:api_key:k1"), Owner::Known { node: bob, from_catalog: false, inferred: true });
    // Owners become `owns` edges.
    assert!(
        graph
            .edges()
            .any(|e| e.kind == EdgeKind::Owns && e.from == "person:bob@acme.example" && e.to == "t:agent:catalogued")
    );
    assert_eq!(graph.lookup_owner_reference("person:ALICE@acme.example"), Some(alice));
}

#[test]
fn a_person_is_inactive_when_their_identity_source_says_so() {
    let resolve = ResolveSettings { identity_sources: ["okta".to_string()].into(), ..ResolveSettings::default() };
    let graph = build_with(
        vec![
            // Carol left: Okta deactivated her, GitHub still lists her as active.
            human("okta", "carol", Some("carol@acme.example"), Some(false)),
            human("github", "carol", Some("Carol@acme.example"), Some(true)),
            // Dan has no Okta account: any active account keeps him active.
            human("github", "dan", Some("dan@acme.example"), Some(true)),
            human("slack", "dan", Some("dan@acme.example"), Some(false)),
            // Erin: one of two Okta accounts active.
            human("okta", "erin", Some("erin@acme.example"), Some(true)),
            human("okta", "erin2", Some("erin@acme.example"), Some(false)),
            // Frank: every account inactive.
            human("github", "frank", Some("frank@acme.example"), Some(false)),
        ],
        vec![],
        &Catalog::default(),
        &resolve,
    );
    let active = |email: &str| graph.is_active(ix(&graph, &format!("person:{email}")));
    assert!(!active("carol@acme.example"));
    assert!(active("dan@acme.example"));
    assert!(active("erin@acme.example"));
    assert!(!active("frank@acme.example"));

    let without_idp = build(
        vec![
            human("okta", "carol", Some("carol@acme.example"), Some(false)),
            human("github", "carol", Some("carol@acme.example"), Some(true)),
        ],
        vec![],
    );
    assert!(without_idp.is_active(ix(&without_idp, "person:carol@acme.example")));
}

#[test]
fn dangling_edges_are_dropped_and_duplicate_ids_rejected() {
    let graph = build(vec![agent("t:agent:bot", None)], vec![grant("t:agent:bot", "other:repo:x", &["read"])]);
    assert!(graph.effective_access(now()).entries().is_empty());
    let duplicate = AccessGraph::build(
        vec![agent("t:agent:bot", None), agent("t:agent:bot", None)],
        vec![],
        &Catalog::default(),
        &ResolveSettings::default(),
    );
    assert!(duplicate.is_err());
}
