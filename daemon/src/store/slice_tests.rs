//! Partial syncs (`Fragment::kept`): the slice a sync could not read keeps
//! its rows, the rest lands, and the run is recorded as `partial`. On both
//! databases.

use super::*;
use crate::testdb::on_both_databases;
use accessgraph_graph::model::{Edge, EdgeKind, Fragment, KeptSlice, Node, NodeKind};
use chrono::{Duration, TimeZone};
use std::collections::BTreeSet;

fn t(day: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single().expect("valid time") + Duration::days(day)
}

const A: &str = "111111111111";
const B: &str = "222222222222";

fn node(kind: &str, key: &str, node_kind: NodeKind) -> Node {
    Node::new(format!("aws:{kind}:{key}"), node_kind, "aws", key)
}

fn grant(from: &str, to: &str, action: &str) -> Edge {
    Edge::grant(format!("aws:{from}"), format!("aws:{to}"), [action])
}

fn edge(from: &str, to: &str, kind: EdgeKind) -> Edge {
    Edge::new(format!("aws:{from}"), format!("aws:{to}"), kind)
}

/// Account A's slice: `alice_action` is what alice holds on the shared bucket
/// (None: no grant), plus `extra` users. Alice may become B's ops role, an
/// edge only a sync that read B can report (`with_b`).
fn account_a(alice_action: Option<&str>, extra: &[&str], with_b: bool) -> (Vec<Node>, Vec<Edge>) {
    let mut nodes = vec![node("user", &format!("{A}/alice"), NodeKind::Human)];
    let mut edges = Vec::new();
    if with_b {
        edges.push(edge(&format!("user:{A}/alice"), &format!("role:{B}/ops"), EdgeKind::CanAssume));
    }
    if let Some(action) = alice_action {
        nodes.push(node("resource", "arn:aws:s3:::shared", NodeKind::Resource));
        edges.push(grant(&format!("user:{A}/alice"), "resource:arn:aws:s3:::shared", action));
    }
    for user in extra {
        nodes.push(node("user", &format!("{A}/{user}"), NodeKind::Human));
    }
    (nodes, edges)
}

/// Account B's slice: bob holds a key, reads the shared bucket and may
/// become ops; ops (an agent role) writes B's own buckets.
fn account_b(bob: bool) -> (Vec<Node>, Vec<Edge>) {
    let mut nodes = vec![
        node("role", &format!("{B}/ops"), NodeKind::Agent),
        node("resource", &format!("{B}/arn:aws:s3:::*"), NodeKind::Resource),
        node("resource", "arn:aws:s3:::shared", NodeKind::Resource),
    ];
    let mut edges = vec![grant(&format!("role:{B}/ops"), &format!("resource:{B}/arn:aws:s3:::*"), "s3:*")];
    if bob {
        nodes.push(node("user", &format!("{B}/bob"), NodeKind::Human));
        nodes.push(node("access_key", "AKIABOB", NodeKind::Credential));
        edges.push(edge(&format!("user:{B}/bob"), "access_key:AKIABOB", EdgeKind::Holds));
        edges.push(grant(&format!("user:{B}/bob"), "resource:arn:aws:s3:::shared", "s3:GetObject"));
        edges.push(edge(&format!("user:{B}/bob"), &format!("role:{B}/ops"), EdgeKind::CanAssume));
    }
    (nodes, edges)
}

fn fragment(parts: &[(Vec<Node>, Vec<Edge>)], kept: Vec<KeptSlice>) -> Fragment {
    let mut nodes: Vec<Node> = Vec::new();
    let mut edges: Vec<Edge> = Vec::new();
    for (n, e) in parts {
        for node in n {
            if !nodes.iter().any(|have| have.id == node.id) {
                nodes.push(node.clone());
            }
        }
        edges.extend(e.iter().cloned());
    }
    Fragment { source: "aws".into(), nodes, edges, kept }
}

fn slice_b() -> KeptSlice {
    KeptSlice {
        name: format!("account {B}"),
        prefixes: ["user", "group", "role", "policy", "resource"].iter().map(|k| format!("aws:{k}:{B}/")).collect(),
        error: "sts:AssumeRole: AccessDenied".into(),
    }
}

async fn current(store: &Store) -> (BTreeSet<String>, BTreeSet<String>) {
    let (nodes, edges) = store.load_rows(&["aws".into()], None).await.expect("rows");
    (nodes.into_iter().map(|n| n.id).collect(), edges.into_iter().map(|e| e.key()).collect())
}

fn keys(parts: &[(Vec<Node>, Vec<Edge>)]) -> (BTreeSet<String>, BTreeSet<String>) {
    let whole = fragment(parts, Vec::new());
    (whole.nodes.into_iter().map(|n| n.id).collect(), whole.edges.iter().map(Edge::key).collect())
}

on_both_databases!(a_kept_slice_carries_over_while_the_rest_lands);

async fn a_kept_slice_carries_over_while_the_rest_lands(url: String) {
    let store = Store::open(&url).await.expect("open");
    // t1: both accounts read.
    let both = [account_a(Some("s3:GetObject"), &[], true), account_b(true)];
    store.apply_sync("aws-iam", &fragment(&both, Vec::new()), t(1), t(1)).await.expect("complete sync");
    assert_eq!(current(&store).await, keys(&both));

    // t2: B cannot be read. A changes: alice loses her grant on the shared
    // bucket (which only B's kept rows still reference) and carol arrives.
    let a2 = account_a(None, &["carol"], false);
    let stats = store
        .apply_sync("aws-iam", &fragment(std::slice::from_ref(&a2), vec![slice_b()]), t(2), t(2))
        .await
        .expect("partial sync");
    let (nodes, edges) = current(&store).await;
    let (b_nodes, b_edges) = keys(&[account_b(true)]);
    assert!(b_nodes.is_subset(&nodes), "B's nodes, its key and the shared bucket it reads stay: {nodes:?}");
    assert!(b_edges.is_subset(&edges), "B's edges stay: {edges:?}");
    let cross = format!("aws:user:{A}/alice|can_assume|aws:role:{B}/ops");
    assert!(edges.contains(&cross), "an edge into B's slice is B's too");
    assert!(nodes.contains(&format!("aws:user:{A}/carol")), "A's new user lands");
    let alice_grant = format!("aws:user:{A}/alice|grant|aws:resource:arn:aws:s3:::shared|s3:GetObject");
    assert!(!edges.contains(&alice_grant), "A's removed grant closes");
    assert_eq!((stats.opened, stats.closed), (1, 1), "carol opened, alice's grant closed");
    assert_eq!(stats.kept, (b_nodes.len() + b_edges.len() + 1) as u64, "B's rows and the edge into B");
    let (before, _) = store.load_rows(&["aws".into()], Some(t(1))).await.expect("t1");
    assert!(before.iter().any(|n| n.id == format!("aws:user:{B}/bob")));
    let runs = store.last_syncs().await.expect("runs");
    assert_eq!(runs[0].status, "partial");
    assert_eq!(runs[0].error.as_deref(), Some("account 222222222222: sts:AssumeRole: AccessDenied"));
    // A partial sync counts as a sync (ordering, first sync, readiness) but
    // not as a complete one for freshness.
    assert!(store.has_synced("aws").await.expect("synced"));
    assert_eq!(store.success_span().await.expect("span").get("aws"), Some(&(t(1), Some(t(1)))));
    let older = store.apply_sync("aws-iam", &fragment(&both, Vec::new()), t(1), t(1) + Duration::hours(1)).await;
    assert!(older.is_err(), "a partial sync orders history like any other");

    // t3: B recovers, without bob: B's changes land now.
    let recovered = [account_a(None, &["carol"], true), account_b(false)];
    let stats = store.apply_sync("aws-iam", &fragment(&recovered, Vec::new()), t(3), t(3)).await.expect("recovered");
    assert_eq!(current(&store).await, keys(&recovered));
    assert_eq!(stats.kept, 0);
    assert_eq!(stats.closed, 5, "bob, his key and his three edges close: {stats:?}");
    let runs = store.last_syncs().await.expect("runs");
    assert_eq!((runs[0].status.as_str(), runs[0].error.as_deref()), ("succeeded", None));
    assert_eq!(store.success_span().await.expect("span").get("aws"), Some(&(t(1), Some(t(3)))));
}
