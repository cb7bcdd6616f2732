//! The store's behaviour, identical on SQLite and PostgreSQL: every test here
//! runs on both (see `crate::testdb`).

use super::*;
use crate::testdb::on_both_databases;
use accessgraph_config::SinkConfig;
use accessgraph_connectors::sinks::EventKind;
use accessgraph_graph::model::{Edge, EdgeKind, Fragment, Node, NodeKind};
use accessgraph_graph::{Finding, FindingStatus, Severity};
use chrono::{Duration, TimeZone};

fn t(day: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single().expect("valid time") + Duration::days(day)
}

fn person(key: &str, name: &str) -> Node {
    Node::new(format!("forge:user:{key}"), NodeKind::Human, "forge", name)
}

/// A source with the repo, the given users and one grant per user.
fn fragment(users: &[(&str, &str, &str)]) -> Fragment {
    let mut nodes = vec![Node::new("forge:repo:payments", NodeKind::Resource, "forge", "payments")];
    let mut edges = Vec::new();
    for (key, name, action) in users {
        nodes.push(person(key, name));
        edges.push(Edge::grant(format!("forge:user:{key}"), "forge:repo:payments", [*action]));
    }
    Fragment { source: "forge".into(), nodes, edges, ..Default::default() }
}

async fn count(store: &Store, table: &str) -> i64 {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
        .fetch_one(store.pool())
        .await
        .expect("count");
    row.try_get("n").expect("n")
}

fn ids(nodes: &[Node]) -> Vec<&str> {
    let mut ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    ids.sort();
    ids
}

on_both_databases!(
    apply_sync_opens_closes_and_keeps_history,
    unchanged_resync_writes_nothing,
    digest_skips_only_an_identical_complete_sync,
    failed_sync_changes_nothing,
    reconcile_lifecycle,
    findings_compare_by_digest_and_rows_without_digests_by_body,
    many_findings_resolve_in_batches,
    open_findings_across_windows_are_all_compared,
    a_sink_that_filed_a_ticket_hears_its_later_changes,
    mute_holds_events_until_it_expires,
    outbox_pending_and_marks,
    outbox_claims_are_exclusive,
    concurrent_reconciliations_queue_each_event_once,
    leases_are_exclusive,
    analyses_are_recorded,
);

async fn apply_sync_opens_closes_and_keeps_history(url: String) {
    let store = Store::open(&url).await.expect("open");
    let first = fragment(&[("alice", "Alice", "read"), ("bob", "Bob", "admin")]);
    let stats = store.apply_sync("snapshot", &first, t(1), t(1)).await.expect("first sync");
    assert_eq!(stats, SyncStats { nodes: 3, edges: 2, opened: 5, closed: 0, kept: 0 });

    // Bob and his grant vanish; Alice is renamed (a changed row closes and reopens).
    let second = fragment(&[("alice", "Alice A.", "read")]);
    let stats = store.apply_sync("snapshot", &second, t(3), t(3)).await.expect("second sync");
    assert_eq!(stats, SyncStats { nodes: 2, edges: 1, opened: 1, closed: 3, kept: 0 });

    let (nodes, edges) = store.load_rows(&["forge".into()], None).await.expect("current");
    assert_eq!(ids(&nodes), ["forge:repo:payments", "forge:user:alice"]);
    assert_eq!(edges.len(), 1);
    assert!(nodes.iter().any(|n| n.name == "Alice A."));

    let (nodes, edges) = store.load_rows(&["forge".into()], Some(t(2))).await.expect("at t2");
    assert_eq!(ids(&nodes), ["forge:repo:payments", "forge:user:alice", "forge:user:bob"]);
    assert_eq!(edges.len(), 2);
    assert!(nodes.iter().any(|n| n.name == "Alice"), "the old version of Alice at t2");
    assert!(edges.iter().any(|e| e.kind == EdgeKind::Grant && e.actions == ["admin"]));

    // [valid_from, valid_to): the instant of the change already sees the new state.
    let (nodes, _) = store.load_rows(&["forge".into()], Some(t(3))).await.expect("at t3");
    assert_eq!(nodes.len(), 2);
    let (nodes, edges) = store.load_rows(&["forge".into()], Some(t(0))).await.expect("before");
    assert!(nodes.is_empty() && edges.is_empty());
    let (nodes, _) = store.load_rows(&["other".into()], None).await.expect("other source");
    assert!(nodes.is_empty());

    // History is not rewritten by a sync older than the latest one.
    let error = store.apply_sync("snapshot", &first, t(2), t(2)).await.expect_err("older sync");
    assert!(matches!(error, StoreError::Conflict(_)), "{error}");

    // A change at the very instant a row opened replaces it (no zero-length interval).
    let third = fragment(&[("alice", "Alice B.", "read")]);
    store.apply_sync("snapshot", &third, t(3), t(3)).await.expect("same-instant sync");
    let (nodes, _) = store.load_rows(&["forge".into()], Some(t(3))).await.expect("at t3 again");
    assert!(nodes.iter().any(|n| n.name == "Alice B."));
    assert_eq!(count(&store, "nodes").await, 4, "repo, Alice (old), Bob (closed), Alice B.");

    let runs = store.last_syncs().await.expect("last syncs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "succeeded");
    assert_eq!(runs[0].finished_at, t(3));
    assert_eq!(runs[0].stats.nodes, 2);
    let spans = store.success_span().await.expect("spans");
    assert_eq!(spans.get("forge"), Some(&(t(1), Some(t(3)))));
}

/// A full load decodes in chunks on the blocking pool: across several
/// chunks, every row comes back once, in insertion order.
#[tokio::test]
async fn a_load_across_decode_chunks_keeps_every_row_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("open");
    let count = DECODE_CHUNK * (DECODE_AHEAD + 2) + 5;
    let mut data = fragment(&[]);
    data.edges = (0..count).map(|i| Edge::grant(format!("forge:user:u{i}"), "forge:repo:payments", ["read"])).collect();
    store.apply_sync("snapshot", &data, t(1), t(1)).await.expect("write");
    let (nodes, edges) = store.load_rows(&["forge".into()], None).await.expect("load");
    assert_eq!(nodes.len(), 1);
    assert_eq!(edges, data.edges);
    // Another source's rows between them, and a change: every third edge
    // gone, new ones after. The past instant still loads as it was.
    let mut other = data.clone();
    other.source = "other".into();
    store.apply_sync("snapshot", &other, t(2), t(2)).await.expect("write other");
    let mut changed = data.clone();
    changed.edges = data.edges.iter().enumerate().filter(|(i, _)| i % 3 != 0).map(|(_, e)| e.clone()).collect();
    changed
        .edges
        .extend((0..DECODE_CHUNK).map(|i| Edge::grant(format!("forge:user:n{i}"), "forge:repo:payments", ["read"])));
    store.apply_sync("snapshot", &changed, t(3), t(3)).await.expect("change");
    let (_, then) = store.load_rows(&["forge".into()], Some(t(2))).await.expect("load then");
    assert_eq!(then, data.edges);
    let (_, now) = store.load_rows(&["forge".into()], None).await.expect("load now");
    assert_eq!(now, changed.edges);
    let (_, both) = store.load_rows(&["forge".into(), "other".into()], Some(t(2))).await.expect("both");
    assert_eq!(both.len(), 2 * data.edges.len());
}

async fn unchanged_resync_writes_nothing(url: String) {
    let store = Store::open(&url).await.expect("open");
    let data = fragment(&[("alice", "Alice", "read"), ("bob", "Bob", "write")]);
    store.apply_sync("snapshot", &data, t(1), t(1)).await.expect("first");
    let before = (count(&store, "nodes").await, count(&store, "edges").await);
    let stats = store.apply_sync("snapshot", &data, t(2), t(2)).await.expect("again");
    assert_eq!((stats.opened, stats.closed), (0, 0));
    assert_eq!((count(&store, "nodes").await, count(&store, "edges").await), before);
    let (nodes, edges) = store.load_rows(&["forge".into()], Some(t(1))).await.expect("t1");
    assert_eq!((nodes.len(), edges.len()), (3, 2), "rows stay open from their first sync");
    assert!(store.has_synced("forge").await.expect("has synced"));
    assert!(!store.has_synced("other").await.expect("other"));
}

/// Each sync run's digest, oldest first.
async fn digests(store: &Store) -> Vec<Option<String>> {
    sqlx::query("SELECT digest FROM sync_runs ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("digests")
        .iter()
        .map(|row| row.try_get("digest").expect("digest"))
        .collect()
}

async fn current_keys(store: &Store) -> (Vec<String>, Vec<String>) {
    let (nodes, edges) = store.load_rows(&["forge".into()], None).await.expect("rows");
    let mut edge_keys: Vec<String> = edges.iter().map(Edge::key).collect();
    edge_keys.sort();
    (ids(&nodes).into_iter().map(str::to_string).collect(), edge_keys)
}

async fn digest_skips_only_an_identical_complete_sync(url: String) {
    let store = Store::open(&url).await.expect("open");
    let a = fragment(&[("alice", "Alice", "read"), ("bob", "Bob", "write")]);
    let b = fragment(&[("alice", "Alice", "admin")]);
    store.apply_sync("snapshot", &a, t(1), t(1)).await.expect("a");
    let rows_of_a = current_keys(&store).await;

    let stats = store.apply_sync("snapshot", &a, t(2), t(2)).await.expect("a again");
    assert_eq!((stats.opened, stats.closed), (0, 0));
    let recorded = digests(&store).await;
    assert!(recorded[0].is_some(), "a complete sync records its digest");
    assert_eq!(recorded[0], recorded[1], "an identical fragment has the same digest");

    let stats = store.apply_sync("snapshot", &b, t(3), t(3)).await.expect("b");
    assert_eq!((stats.opened, stats.closed), (1, 3), "alice's grant changed; bob and his grant left");
    assert_ne!(digests(&store).await[2], recorded[0]);

    // A again: its digest is not the latest one, so it is diffed and lands.
    let stats = store.apply_sync("snapshot", &a, t(4), t(4)).await.expect("a once more");
    assert_eq!((stats.opened, stats.closed), (3, 1));
    assert_eq!(current_keys(&store).await, rows_of_a);

    // A partial sync vouches for no digest: the next complete sync diffs.
    let mut partial = b.clone();
    partial.kept = vec![accessgraph_graph::model::KeptSlice {
        name: "bob's corner".into(),
        prefixes: vec!["forge:user:bob".into()],
        error: "403".into(),
    }];
    store.apply_sync("snapshot", &partial, t(5), t(5)).await.expect("partial");
    assert_eq!(digests(&store).await[4], None);
    let stats = store.apply_sync("snapshot", &a, t(6), t(6)).await.expect("a after partial");
    assert_eq!((stats.opened, stats.closed), (1, 1), "only alice's grant differs from the partial sync's rows");
    assert_eq!(current_keys(&store).await, rows_of_a);

    // The same rows in another order: a different digest, a diff, no writes.
    let mut reordered = a.clone();
    reordered.nodes.reverse();
    reordered.edges.reverse();
    let stats = store.apply_sync("snapshot", &reordered, t(7), t(7)).await.expect("reordered");
    assert_eq!((stats.opened, stats.closed), (0, 0));
    assert_eq!(current_keys(&store).await, rows_of_a);
}

async fn failed_sync_changes_nothing(url: String) {
    let store = Store::open(&url).await.expect("open");
    let data = fragment(&[("alice", "Alice", "read")]);
    store.apply_sync("snapshot", &data, t(1), t(1)).await.expect("first");
    let before = store.load_rows(&["forge".into()], None).await.expect("before");
    let node_rows = count(&store, "nodes").await;
    store.record_failed_sync("forge", "snapshot", t(2), t(2), "forge.json: no such file").await.expect("failed");
    assert_eq!(store.load_rows(&["forge".into()], None).await.expect("after"), before);
    assert_eq!(count(&store, "nodes").await, node_rows);
    let runs = store.last_syncs().await.expect("runs");
    assert_eq!(runs[0].status, "failed");
    assert_eq!(runs[0].error.as_deref(), Some("forge.json: no such file"));
    assert!(store.has_synced("forge").await.expect("still synced once"));
    assert!(store.sync_attempted_since("forge", t(2)).await.expect("since t2"));
    assert!(!store.sync_attempted_since("forge", t(2) + Duration::seconds(1)).await.expect("after t2"));
    assert_eq!(store.success_span().await.expect("span").get("forge"), Some(&(t(1), Some(t(1)))));
}

fn finding(subject: &str, severity: Severity, evidence: &str, at: DateTime<Utc>) -> Finding {
    Finding::new(
        "secret.standing",
        severity,
        subject,
        format!("{subject}-key"),
        "A key that never expires",
        "detail",
        "rotate it",
        vec![vec![subject.to_string(), evidence.to_string()]],
        at,
    )
}

fn sinks() -> Vec<SinkConfig> {
    vec![SinkConfig::default_jsonl(std::path::Path::new("/nonexistent"))]
}

fn events(reconciled: &Reconciled, current: &[Finding]) -> Vec<(&'static str, String)> {
    reconciled.events(current).map(|(kind, f)| (kind.as_str(), f.subject.clone())).collect()
}

async fn reconcile_lifecycle(url: String) {
    let store = Store::open(&url).await.expect("open");
    let sinks = sinks();
    let a = |at, evidence| finding("a", Severity::High, evidence, at);
    let b = |at| finding("b", Severity::Medium, "x", at);

    let mut current = [a(t(1), "x"), b(t(1))];
    let first = store.reconcile_findings(&mut current, t(1), &sinks).await.expect("t1");
    assert_eq!(events(&first, &current), [("opened", "a".into()), ("opened", "b".into())]);
    assert_eq!(first.outbox_rows, 2);

    let mut current = [a(t(2), "x"), b(t(2))];
    let same = store.reconcile_findings(&mut current, t(2), &sinks).await.expect("t2");
    assert!(same.changes.is_empty() && same.outbox_rows == 0);
    assert!(current.iter().all(|f| f.first_seen == t(1) && f.last_seen == t(2)));
    // Unchanged findings are not rewritten: the store moves one instant.
    let stored = store.findings(Some(FindingStatus::Open), None).await.expect("open");
    assert!(stored.len() == 2 && stored.iter().all(|f| f.last_seen == t(2)), "{stored:?}");
    let written: i64 = sqlx::query("SELECT MAX(last_seen) AS at FROM findings")
        .fetch_one(store.pool())
        .await
        .expect("rows")
        .try_get("at")
        .expect("at");
    assert_eq!(written, t(1).timestamp_micros(), "no row rewritten");

    let mut current = [a(t(3), "y")];
    let changed = store.reconcile_findings(&mut current, t(3), &sinks).await.expect("t3");
    assert_eq!(events(&changed, &current), [("updated", "a".into()), ("resolved", "b".into())]);
    let resolved = store.findings(Some(FindingStatus::Resolved), None).await.expect("resolved");
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].subject, "b");
    assert_eq!(resolved[0].last_seen, t(2), "last seen by the reconciliation before");
    let open = store.findings(Some(FindingStatus::Open), None).await.expect("open");
    assert!(open.iter().all(|f| f.last_seen == t(3)), "{open:?}");

    let mut current = [a(t(4), "y"), b(t(4))];
    let back = store.reconcile_findings(&mut current, t(4), &sinks).await.expect("t4");
    assert_eq!(events(&back, &current), [("reopened", "b".into())]);
    let open = store.findings(Some(FindingStatus::Open), None).await.expect("open");
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].subject, "a", "worst first");
    let b_again = open.iter().find(|f| f.subject == "b").expect("b");
    assert_eq!(b_again.first_seen, t(1), "a reopened finding keeps its history");

    assert!(store.findings(None, Some("secret.*")).await.expect("glob").len() == 2);
    assert!(store.findings(None, Some("drift.*")).await.expect("glob").is_empty());
    let counts = store.finding_counts().await.expect("counts");
    assert_eq!(
        counts,
        [
            (FindingStatus::Open, "secret.standing".into(), "high".into(), 1),
            (FindingStatus::Open, "secret.standing".into(), "medium".into(), 1),
        ]
    );
    assert_eq!(store.outbox_backlog().await.expect("backlog"), 5);
}

/// The digests of a finding's (material, record) columns, by subject.
async fn finding_digests(store: &Store) -> Vec<(String, Option<String>, Option<String>)> {
    let rows = sqlx::query("SELECT subject, material_digest, record_digest FROM findings ORDER BY subject")
        .fetch_all(store.pool())
        .await
        .expect("rows");
    rows.iter()
        .map(|r| (r.try_get("subject").expect("s"), r.try_get("material_digest").ok(), r.try_get("record_digest").ok()))
        .map(|(s, m, r): (String, Option<Option<String>>, Option<Option<String>>)| (s, m.flatten(), r.flatten()))
        .collect()
}

/// A reconciliation compares digests, not bodies: a wording change is
/// stored silently, an evidence change is an update. Rows written before
/// digests were kept (NULL) are compared through their body, exactly as
/// before, and gain digests when next written.
async fn findings_compare_by_digest_and_rows_without_digests_by_body(url: String) {
    let store = Store::open(&url).await.expect("open");
    let sinks = sinks();
    let a = |at, evidence| finding("a", Severity::High, evidence, at);
    let b = |at| finding("b", Severity::Medium, "x", at);
    store.reconcile_findings(&mut [a(t(1), "x"), b(t(1))], t(1), &sinks).await.expect("t1");
    let written = finding_digests(&store).await;
    assert!(written.iter().all(|(_, m, r)| m.as_ref().is_some_and(|m| m.len() == 32) && r.is_some()), "{written:?}");
    assert_ne!(written[0].1, written[1].1, "different evidence, different digests");

    // As a store migrated from before digests holds them.
    sqlx::query("UPDATE findings SET material_digest = NULL, record_digest = NULL")
        .execute(store.pool())
        .await
        .expect("forget digests");
    let mut reworded = b(t(2));
    reworded.title = "A key that has never expired".into();
    let mut current = [a(t(2), "x"), reworded];
    let same = store.reconcile_findings(&mut current, t(2), &sinks).await.expect("t2");
    assert!(same.changes.is_empty(), "unchanged through the body: {:?}", events(&same, &current));
    let digests = finding_digests(&store).await;
    assert_eq!(digests[0], ("a".into(), None, None), "an unchanged row is not rewritten");
    assert_eq!(digests[1].1, written[1].1, "the reworded row has its digests again");
    assert_ne!(digests[1].2, written[1].2, "and a new record digest");
    let stored = store.findings(Some(FindingStatus::Open), None).await.expect("open");
    assert!(stored.iter().any(|f| f.title == "A key that has never expired"), "the wording is stored");

    let mut current = [a(t(3), "y")];
    let changed = store.reconcile_findings(&mut current, t(3), &sinks).await.expect("t3");
    assert_eq!(events(&changed, &current), [("updated", "a".into()), ("resolved", "b".into())]);
    assert_eq!(changed.resolved[0].title, "A key that has never expired", "a resolution carries the stored body");
    let digests = finding_digests(&store).await;
    assert!(digests[0].1.is_some() && digests[0].1 != written[0].1, "{digests:?}");
}

/// More open findings than one SQLite window holds: every one is found
/// again (no event), and the one gone is the one resolved.
async fn open_findings_across_windows_are_all_compared(url: String) {
    let store = Store::open(&url).await.expect("open");
    let sinks = sinks();
    let many: Vec<Finding> = (0..8300).map(|i| finding(&format!("s{i:05}"), Severity::Low, "x", t(1))).collect();
    store.reconcile_findings(&mut many.clone(), t(1), &sinks).await.expect("t1");
    let same = store.reconcile_findings(&mut many.clone(), t(2), &sinks).await.expect("t2");
    assert!(same.changes.is_empty(), "{} changes", same.changes.len());
    let mut fewer = many[1..].to_vec();
    let gone = store.reconcile_findings(&mut fewer, t(3), &sinks).await.expect("t3");
    assert_eq!(events(&gone, &fewer), [("resolved", "s00000".into())]);
    assert!(fewer.iter().all(|f| f.first_seen == t(1)));
}

/// A sink that filed a finding's ticket is told of its later changes even
/// once the finding falls below its filter; a finding it never filed goes
/// to it only by its filter.
async fn a_sink_that_filed_a_ticket_hears_its_later_changes(url: String) {
    let store = Store::open(&url).await.expect("open");
    let all = SinkConfig { name: "all".into(), min_severity: Severity::Low, ..sinks().remove(0) };
    let high = SinkConfig { name: "high".into(), min_severity: Severity::High, ..sinks().remove(0) };
    let sinks = [all, high];
    let queued = |store: &Store| {
        let pool = store.pool().clone();
        async move {
            let rows = sqlx::query(
                "SELECT sink, subject, event FROM outbox o JOIN findings f USING (fingerprint) ORDER BY o.id",
            )
            .fetch_all(&pool)
            .await
            .expect("outbox");
            rows.iter()
                .map(|r| {
                    let (sink, subject, event): (String, String, String) = (
                        r.try_get("sink").expect("s"),
                        r.try_get("subject").expect("s"),
                        r.try_get("event").expect("e"),
                    );
                    format!("{sink} {subject} {event}")
                })
                .collect::<Vec<_>>()
        }
    };
    store
        .reconcile_findings(
            &mut [finding("a", Severity::High, "x", t(1)), finding("b", Severity::Low, "x", t(1))],
            t(1),
            &sinks,
        )
        .await
        .expect("t1");
    assert_eq!(queued(&store).await, ["all a opened", "high a opened", "all b opened"]);
    let mut current = [finding("a", Severity::Low, "x", t(2)), finding("b", Severity::Low, "y", t(2))];
    store.reconcile_findings(&mut current, t(2), &sinks).await.expect("t2");
    assert_eq!(queued(&store).await[3..], ["all a updated", "high a updated", "all b updated"]);
    store.reconcile_findings(&mut [], t(3), &sinks).await.expect("t3");
    // Resolutions come in fingerprint order.
    let mut resolved = queued(&store).await[6..].to_vec();
    resolved.sort();
    assert_eq!(resolved, ["all a resolved", "all b resolved", "high a resolved"]);
}

/// Resolutions are written in batches (several, here): every finding gone
/// is resolved once, last seen by the reconciliation before. Findings that
/// come back are found among the resolved ones (looked up in batches too)
/// and reopened with their first sighting.
async fn many_findings_resolve_in_batches(url: String) {
    let store = Store::open(&url).await.expect("open");
    let sinks = sinks();
    let many: Vec<Finding> = (0..1100).map(|i| finding(&format!("s{i}"), Severity::Medium, "x", t(1))).collect();
    store.reconcile_findings(&mut many.clone(), t(1), &sinks).await.expect("t1");
    store.reconcile_findings(&mut many.clone(), t(2), &sinks).await.expect("t2");
    let gone = store.reconcile_findings(&mut many[..50].to_vec(), t(3), &sinks).await.expect("t3");
    assert_eq!(gone.resolved.len(), 1050);
    assert_eq!(gone.changes.iter().filter(|(e, _)| e.as_str() == "resolved").count(), 1050);
    let resolved = store.findings(Some(FindingStatus::Resolved), None).await.expect("resolved");
    assert_eq!(resolved.len(), 1050);
    assert!(resolved.iter().all(|f| f.last_seen == t(2) && f.first_seen == t(1)), "{:?}", resolved.first());
    let open = store.findings(Some(FindingStatus::Open), None).await.expect("open");
    assert!(open.len() == 50 && open.iter().all(|f| f.last_seen == t(3)));
    let back = store.reconcile_findings(&mut many[..60].to_vec(), t(4), &sinks).await.expect("t4");
    assert_eq!(back.changes.iter().filter(|(e, _)| e.as_str() == "reopened").count(), 10);
    let mut all = many.clone();
    let again = store.reconcile_findings(&mut all, t(5), &sinks).await.expect("t5");
    assert_eq!(again.changes.iter().filter(|(e, _)| e.as_str() == "reopened").count(), 1040);
    assert!(all.iter().all(|f| f.first_seen == t(1) && f.status == FindingStatus::Open), "{:?}", all.last());
    assert!(store.findings(Some(FindingStatus::Resolved), None).await.expect("none resolved").is_empty());
}

async fn mute_holds_events_until_it_expires(url: String) {
    let store = Store::open(&url).await.expect("open");
    let sinks = sinks();
    let a = |at, evidence| finding("a", Severity::High, evidence, at);
    store.reconcile_findings(&mut [a(t(1), "x")], t(1), &sinks).await.expect("t1");
    let fingerprint = a(t(1), "x").fingerprint;
    assert!(store.mute(&fingerprint, "accepted risk", t(5)).await.expect("mute"));
    assert!(!store.mute("no-such-fingerprint", "x", t(5)).await.expect("mute unknown"));
    assert!(store.pending_outbox(t(2), 10).await.expect("pending").is_empty(), "events of a muted finding wait");

    let mut current = [a(t(2), "y")];
    let muted = store.reconcile_findings(&mut current, t(2), &sinks).await.expect("t2");
    assert!(muted.changes.is_empty(), "a muted finding files nothing");
    assert_eq!(current[0].status, FindingStatus::Muted);
    assert_eq!(store.findings(Some(FindingStatus::Muted), None).await.expect("muted").len(), 1);

    let mut current = [a(t(6), "y")];
    store.reconcile_findings(&mut current, t(6), &sinks).await.expect("t6");
    assert_eq!(current[0].status, FindingStatus::Open);
    let pending = store.pending_outbox(t(6), 10).await.expect("pending after expiry");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].event.event, EventKind::Opened);
}

async fn outbox_pending_and_marks(url: String) {
    let store = Store::open(&url).await.expect("open");
    let sinks = sinks();
    let a = finding("a", Severity::High, "x", t(1));
    let b = finding("b", Severity::High, "x", t(1));
    store.reconcile_findings(&mut [a.clone(), b.clone()], t(1), &sinks).await.expect("t1");
    let pending = store.pending_outbox(t(1), 10).await.expect("pending");
    assert_eq!(pending.len(), 2);
    assert!(pending[0].id < pending[1].id);
    assert_eq!(pending[0].event.event_id, pending[0].id.to_string());
    assert_eq!(pending[0].sink, "jsonl");
    assert_eq!(pending[0].attempts, 0);
    let (first, second) = (pending[0].clone(), pending[1].clone());

    store.mark_failed(first.id, "sink down", t(1) + Duration::minutes(1)).await.expect("failed");
    let now: Vec<i64> = store.pending_outbox(t(1), 10).await.expect("p").iter().map(|r| r.id).collect();
    assert_eq!(now, [second.id], "a failed row waits for its retry time");
    store.mark_delivered(second.id, t(1)).await.expect("delivered");
    assert!(store.pending_outbox(t(1), 10).await.expect("p").is_empty());
    assert_eq!(store.next_outbox_due().await.expect("due"), Some(t(1) + Duration::minutes(1)));
    let retry = store.pending_outbox(t(1) + Duration::minutes(2), 10).await.expect("retry");
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);

    // The finding resolves while its `opened` is still undelivered: the
    // `resolved` row waits behind it, whatever the retry times.
    store.reconcile_findings(&mut [b.clone()], t(2), &sinks).await.expect("t2");
    let due = store.pending_outbox(t(3), 10).await.expect("due at t3");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].id, due[0].event.event), (first.id, EventKind::Opened));
    let mut claim = store.claim_outbox(t(3), 10).await.expect("claim");
    assert_eq!(claim.rows().len(), 1);
    claim.delivered(first.id, t(3)).await.expect("delivered in claim");
    claim.finish().await.expect("finish");
    let due = store.pending_outbox(t(3), 10).await.expect("due after");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event.event, EventKind::Resolved);
    assert_eq!(store.outbox_backlog().await.expect("backlog"), 1);

    // A claim dropped before `finish` leaves its rows to be delivered again
    // on PostgreSQL (rolled back); on SQLite each mark lands as it is made.
    let mut claim = store.claim_outbox(t(3), 10).await.expect("claim again");
    let id = claim.rows()[0].id;
    claim.failed(id, "boom", t(4)).await.expect("failed in claim");
    drop(claim);
    let expected = match store.backend() {
        Backend::Postgres => 1,
        Backend::Sqlite => 0,
    };
    assert_eq!(store.pending_outbox(t(3), 10).await.expect("after drop").len(), expected);
    store.claim_outbox(t(5), 10).await.expect("empty claim").finish().await.expect("finish empty");

    // Many rows acknowledged at once, across statements; the others stay.
    let many: Vec<Finding> = (0..1200).map(|i| finding(&format!("m{i}"), Severity::High, "x", t(6))).collect();
    store.reconcile_findings(&mut many.clone(), t(6), &sinks).await.expect("t6");
    let mut claim = store.claim_outbox(t(7), 2000).await.expect("claim many");
    let rows: Vec<(i64, i64)> = claim.rows().iter().map(|r| (r.id, r.attempts)).collect();
    assert!(rows.len() > 1100, "{}", rows.len());
    let (acked, left) = rows.split_at(1100);
    let ids: Vec<i64> = acked.iter().map(|(id, _)| *id).collect();
    claim.delivered_all(&ids, t(7)).await.expect("delivered all");
    claim.finish().await.expect("finish many");
    let pending: Vec<i64> = store.pending_outbox(t(7), 5000).await.expect("left").iter().map(|r| r.id).collect();
    assert_eq!(pending, left.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    let row = sqlx::query("SELECT delivered_at, attempts FROM outbox WHERE id = $1")
        .bind(ids[1099])
        .fetch_one(store.pool())
        .await
        .expect("row");
    assert_eq!(row.try_get::<Option<i64>, _>("delivered_at").expect("at"), Some(to_micros(t(7))));
    assert_eq!(row.try_get::<i64, _>("attempts").expect("attempts"), acked[1099].1 + 1);
}

async fn outbox_claims_are_exclusive(url: String) {
    let store = Store::open(&url).await.expect("open");
    let other = Store::open(&url).await.expect("second replica");
    let findings: Vec<Finding> = (0..4).map(|i| finding(&format!("f{i}"), Severity::High, "x", t(1))).collect();
    store.reconcile_findings(&mut findings.clone(), t(1), &sinks()).await.expect("t1");
    let mut mine = store.claim_outbox(t(1), 2).await.expect("claim");
    assert_eq!(mine.rows().len(), 2);
    let theirs = other.claim_outbox(t(1), 10).await.expect("other claim");
    let mine_ids: Vec<i64> = mine.rows().iter().map(|r| r.id).collect();
    let their_ids: Vec<i64> = theirs.rows().iter().map(|r| r.id).collect();
    if store.backend() == Backend::Postgres {
        assert_eq!(their_ids.len(), 2, "the other replica skips locked rows");
        assert!(their_ids.iter().all(|id| !mine_ids.contains(id)), "{mine_ids:?} vs {their_ids:?}");
    }
    drop(theirs);
    for id in mine_ids {
        mine.delivered(id, t(1)).await.expect("delivered");
    }
    mine.finish().await.expect("finish");
    assert_eq!(store.outbox_backlog().await.expect("backlog"), 2);
}

async fn concurrent_reconciliations_queue_each_event_once(url: String) {
    let store = Store::open(&url).await.expect("open");
    // Two replicas on PostgreSQL; one process (one write turn) on SQLite.
    let other = match store.backend() {
        Backend::Postgres => Store::open(&url).await.expect("second replica"),
        Backend::Sqlite => store.clone(),
    };
    let sinks = sinks();
    let findings: Vec<Finding> = (0..20).map(|i| finding(&format!("f{i}"), Severity::High, "x", t(1))).collect();
    store.reconcile_findings(&mut findings.clone(), t(1), &sinks).await.expect("t1");
    let changed: Vec<Finding> = findings.iter().map(|f| finding(&f.subject, Severity::High, "y", t(2))).collect();
    let (mut mine, mut theirs) = (changed.clone(), changed);
    let (one, two) = tokio::join!(
        store.reconcile_findings(&mut mine, t(2), &sinks),
        other.reconcile_findings(&mut theirs, t(2), &sinks)
    );
    let total = one.expect("one").outbox_rows + two.expect("two").outbox_rows;
    assert_eq!(total, 20, "each `updated` is queued once");
    assert_eq!(store.outbox_backlog().await.expect("backlog"), 40);
}

async fn leases_are_exclusive(url: String) {
    let store = Store::open(&url).await.expect("open");
    let other = Store::open(&url).await.expect("second replica");
    let lease = store.try_lease("source:forge").await.expect("lease").expect("granted");
    let second = other.try_lease("source:forge").await.expect("second");
    let unrelated = other.try_lease("source:other").await.expect("unrelated").expect("other names are free");
    match store.backend() {
        Backend::Postgres => assert!(second.is_none(), "held by the first replica"),
        Backend::Sqlite => assert!(second.is_some(), "one process: leases are always granted"),
    }
    if let Some(second) = second {
        second.release().await;
    }
    unrelated.release().await;
    lease.release().await;
    let again = other.try_lease("source:forge").await.expect("after release").expect("free again");
    // A replica that dies drops its connection, and the lease with it.
    drop(again);
    let mut regained = None;
    for _ in 0..50 {
        if let Some(lease) = store.try_lease("source:forge").await.expect("retry") {
            regained = Some(lease);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    regained.expect("a dropped lease is released").release().await;
    let waited = store.lease("analysis").await.expect("blocking lease");
    waited.release().await;
    assert_ne!(lease_key("a"), lease_key("b"));
}

async fn analyses_are_recorded(url: String) {
    let store = Store::open(&url).await.expect("open");
    assert_eq!(store.previous_analysis(t(1)).await.expect("none"), None);
    store.record_analysis(t(1), &serde_json::json!({"n": 1})).await.expect("t1");
    store.record_analysis(t(2), &serde_json::json!({"n": 2})).await.expect("t2");
    assert_eq!(store.previous_analysis(t(2)).await.expect("prev"), Some(t(1)));
    assert_eq!(store.previous_analysis(t(3)).await.expect("prev"), Some(t(2)));
    let history = store.analysis_history(1).await.expect("history");
    assert_eq!(history, [(t(2), serde_json::json!({"n": 2}))]);
    store.ping().await.expect("ping");
}

/// Each window of a load seeks past the last row it read: through
/// `(source, valid_to)` for current rows, through the rowid for rows valid
/// at an instant; never a scan and sort of the whole source per window.
#[tokio::test]
async fn sqlite_windows_seek_past_the_last_row() {
    use crate::testdb::PlanValue;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("open");
    for table in ["nodes", "edges"] {
        for at in [None, Some(t(1))] {
            let sql = window_sql(None, table, at);
            let mut binds = vec![PlanValue::Text("forge".into())];
            binds.extend(at.map(|at| PlanValue::Int(to_micros(at))));
            binds.push(PlanValue::Int(0));
            let plan = crate::testdb::sqlite_plan(&store, &sql, binds).await;
            let seek = match at {
                None => format!("SEARCH {table} USING INDEX {table}_current (source=? AND valid_to=? AND rowid>?)"),
                Some(_) => format!("SEARCH {table} USING INTEGER PRIMARY KEY (rowid>?)"),
            };
            assert!(plan.contains(&seek), "{sql}: {plan:?}");
            assert!(!plan.iter().any(|step| step == "USE TEMP B-TREE FOR ORDER BY"), "{sql}: {plan:?}");
        }
    }
}

/// The reconciliation's windows of open findings walk the table by rowid:
/// through the status index each window would read and sort every open
/// finding again.
#[tokio::test]
async fn open_findings_windows_seek_past_the_last_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("open");
    let sql = super::findings::open_findings_window_sql();
    let plan = crate::testdb::sqlite_plan(&store, &sql, vec![crate::testdb::PlanValue::Int(0)]).await;
    assert!(plan.iter().any(|step| step == "SEARCH findings USING INTEGER PRIMARY KEY (rowid>?)"), "{plan:?}");
    assert!(!plan.iter().any(|step| step == "USE TEMP B-TREE FOR ORDER BY"), "{plan:?}");
    // The sinks holding a ticket: looked up, not read from the whole outbox.
    let sql = "SELECT DISTINCT fingerprint, sink FROM outbox WHERE fingerprint IN ($1, $2)";
    let binds = vec![crate::testdb::PlanValue::Text("a".into()), crate::testdb::PlanValue::Text("b".into())];
    let plan = crate::testdb::sqlite_plan(&store, sql, binds).await;
    assert!(
        plan.iter().any(|step| step.starts_with("SEARCH outbox USING COVERING INDEX outbox_fingerprint")),
        "{plan:?}"
    );
}

/// A stored body that does not decode is an error that says where it is,
/// whether it is not JSON at all or JSON of the wrong shape.
#[tokio::test]
async fn a_corrupt_row_names_its_table_and_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("open");
    store.apply_sync("snapshot", &fragment(&[("ada", "Ada", "read")]), t(1), t(1)).await.expect("write");
    let edge = serde_json::to_string(&Edge::grant("forge:user:ada", "forge:repo:payments", ["read"])).expect("json");
    // Not JSON; JSON of another shape; two edges in one body.
    for body in ["not json".to_string(), r#"{"from": 1}"#.to_string(), format!("{edge},{edge}")] {
        sqlx::query("UPDATE edges SET body = $1").bind(&body).execute(store.pool()).await.expect("corrupt");
        for at in [None, Some(t(2))] {
            match store.load_rows(&["forge".into()], at).await {
                Err(StoreError::Corrupt(message)) => {
                    assert!(message.contains("edges of source `forge`"), "{message}");
                }
                other => panic!("{body} at {at:?}: {other:?}"),
            }
        }
    }
}
