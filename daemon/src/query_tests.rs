//! Answers read from a neighbourhood equal the whole graph's: who-can,
//! what-can and blast-radius on the demo company (with aliases, IdP
//! identifiers and a history added) and on a synthetic S enterprise after a
//! 1 % change, now and at past instants. The whole-graph answer is
//! computed by the same row code over `load_graph`.

use super::*;
use crate::store::Store;
use accessgraph_config::Alias;
use accessgraph_graph::Fragment;
use chrono::Duration;
use std::path::Path;

fn t(text: &str) -> DateTime<Utc> {
    text.parse().expect("instant")
}

/// Every who-can / what-can / blast-radius answer from the store equals the
/// whole graph's, at `at`; returns how many rows were compared.
async fn assert_same_answers(
    config: &Config,
    store: &Store,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    sample: usize,
) -> usize {
    let full = load_graph(config, store, at).await.expect("whole graph");
    // The whole graph's effective access, once: what every principal reaches.
    let access = full.effective_access(at.unwrap_or(now));
    let who_can_whole = |id: &str, action: Option<&str>| {
        let mut rows: Vec<AccessRow> = match full.find(id) {
            Some(target) => access
                .on_resource(target)
                .filter(|e| action.is_none_or(|a| a == e.action))
                .map(|e| row(&full, e))
                .collect(),
            None => Vec::new(),
        };
        rows.sort_by(|a, b| (&a.principal, &a.action).cmp(&(&b.principal, &b.action)));
        rows
    };
    let mut ids: Vec<(String, NodeKind)> = full.nodes().map(|n| (n.id.clone(), n.kind)).collect();
    ids.sort();
    // A deterministic spread over every kind when sampling.
    let step = (ids.len() / sample.max(1)).max(1);
    let mut rows = 0;
    for (i, (id, kind)) in ids.iter().enumerate() {
        if sample < ids.len() && i % step != 0 {
            continue;
        }
        let expected = who_can_whole(id, None);
        let got = who_can(config, store, id, None, at, now).await.expect("who-can");
        assert_eq!(got, expected, "who-can {id} at {at:?}");
        rows += got.len();
        if *kind == NodeKind::Resource {
            let expected = who_can_whole(id, Some("write"));
            assert_eq!(who_can(config, store, id, Some("write"), at, now).await.expect("who-can write"), expected);
        }
        let expected = what_can_in(&full, id, at, now).expect("whole what-can");
        let got = what_can(config, store, id, at, now).await.expect("what-can");
        assert_eq!(got, expected, "what-can {id} at {at:?}");
        rows += got.len();
        if *kind == NodeKind::Credential {
            let expected = blast_radius_in(&full, id, at, now).expect("whole blast radius");
            let got = blast_radius(config, store, id, at, now).await.expect("blast radius");
            assert_eq!(got, expected, "blast-radius {id} at {at:?}");
            rows += got.len();
        }
    }
    for missing in ["nowhere:repo:none", "person:nobody@nowhere.example"] {
        assert!(matches!(who_can(config, store, missing, None, at, now).await, Err(QueryError::UnknownNode(..))));
        assert!(matches!(what_can(config, store, missing, at, now).await, Err(QueryError::UnknownNode(..))));
    }
    rows
}

fn demo_config(dir: &Path) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/demo.toml");
    let mut config = accessgraph_config::load(&path).expect("demo config");
    config.store.url = format!("sqlite://{}", dir.join("store.db").display());
    config
}

/// Human account `SOURCE:user:KEY` with no email.
fn bare_account(source: &str, key: &str, name: &str) -> Node {
    Node::new(format!("{source}:user:{key}"), NodeKind::Human, source, name)
}

crate::testdb::on_both_databases!(demo_company_answers_match_the_whole_graph_now_and_in_the_past);

/// Both databases: the look-ups are written per backend (placeholders,
/// SQLite's index hints).
async fn demo_company_answers_match_the_whole_graph_now_and_in_the_past(url: String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = demo_config(dir.path());
    config.store.url = url;
    let store = Store::open(&config.store.url).await.expect("store");
    let t1 = t("2026-11-20T00:00:00Z");
    let outcomes = crate::pipeline::sync_all(&config, &store, t1).await;
    assert!(outcomes.iter().all(|o| o.status == "succeeded"), "{outcomes:?}");

    // A second snapshot: IdP identifiers (one of them claimed by two
    // people: ambiguous), accounts without email that resolve by them, an
    // alias, and some of the ERP's edges dropped.
    let t2 = t("2026-11-22T00:00:00Z");
    let (mut okta_nodes, okta_edges) = store.load_rows(&["okta".into()], None).await.expect("okta");
    let mut humans: Vec<usize> = (0..okta_nodes.len()).filter(|&i| okta_nodes[i].kind == NodeKind::Human).collect();
    humans.sort_by(|&a, &b| okta_nodes[a].id.cmp(&okta_nodes[b].id));
    let (first, second, third) = (humans[0], humans[1], humans[2]);
    okta_nodes[first].attrs.insert("user_name".into(), "First.Login".into());
    okta_nodes[first].attrs.insert("external_id".into(), "00UFIRST".into());
    okta_nodes[second].attrs.insert("user_name".into(), "shared".into());
    okta_nodes[third].attrs.insert("external_id".into(), "Shared".into());
    let okta = Fragment { source: "okta".into(), nodes: okta_nodes.clone(), edges: okta_edges, ..Default::default() };
    store.apply_sync("snapshot", &okta, t2, t2).await.expect("okta with identifiers");

    let (mut code_nodes, mut code_edges) = store.load_rows(&["code".into()], None).await.expect("code");
    let repo = code_nodes.iter().find(|n| n.kind == NodeKind::Resource).expect("a repo").id.clone();
    let group = code_nodes.iter().find(|n| n.kind == NodeKind::Group).expect("a group").id.clone();
    for (key, action) in [("first.login", "admin"), ("00ufirst", "read"), ("shared", "write"), ("zed", "approve")] {
        code_nodes.push(bare_account("code", key, &format!("Bare {key}")));
        code_edges.push(Edge::grant(format!("code:user:{key}"), repo.clone(), [action]));
        code_edges.push(Edge::new(format!("code:user:{key}"), group.clone(), EdgeKind::MemberOf));
    }
    let code = Fragment { source: "code".into(), nodes: code_nodes, edges: code_edges, ..Default::default() };
    store.apply_sync("snapshot", &code, t2, t2).await.expect("code with bare accounts");
    let alias_email = okta_nodes[third].email.clone().expect("an IdP email");
    config.aliases.push(Alias { account: "code:user:zed".into(), email: alias_email.to_uppercase() });

    let (erp_nodes, erp_edges) = store.load_rows(&["erp".into()], None).await.expect("erp");
    let kept = erp_edges.into_iter().enumerate().filter(|(i, _)| i % 3 != 0).map(|(_, e)| e).collect();
    store
        .apply_sync(
            "snapshot",
            &Fragment { source: "erp".into(), nodes: erp_nodes, edges: kept, ..Default::default() },
            t2,
            t2,
        )
        .await
        .expect("erp with fewer edges");

    let now = t("2026-11-27T00:00:00Z");
    let mut compared = 0;
    for at in [None, Some(t1), Some(t1 + Duration::days(1)), Some(t2)] {
        compared += assert_same_answers(&config, &store, at, now, usize::MAX).await;
    }
    assert!(compared > 500, "the answers compared are not trivial: {compared} rows");

    // The accounts without email resolve through the IdP identifiers (and the
    // alias), so their person is the principal; the ambiguous one stays an account.
    let rows = who_can(&config, &store, &repo, None, None, now).await.expect("who-can repo");
    let first_person = person_id(okta_nodes[first].email.as_deref().expect("email"));
    assert!(rows.iter().any(|r| r.principal == first_person && r.action == "admin"), "{rows:#?}");
    assert!(rows.iter().any(|r| r.principal == "code:user:shared"), "ambiguous identifier: {rows:#?}");
    assert!(rows.iter().any(|r| r.principal == person_id(&alias_email) && r.action == "approve"), "alias");
}

#[tokio::test]
async fn synthetic_enterprise_answers_match_the_whole_graph_after_a_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = crate::synth::Size::named("S").expect("size S");
    let generated = crate::synth::generate(dir.path(), size, 7).expect("generate");
    let config = accessgraph_config::load(&generated.config).expect("config");
    let store = Store::open(&config.store.url).await.expect("store");
    let t1 = t("2026-11-26T00:00:00Z");
    let outcomes = crate::pipeline::sync_all(&config, &store, t1).await;
    assert!(outcomes.iter().all(|o| o.status == "succeeded"), "{outcomes:?}");
    let (changed, _, _) = crate::synth::apps_snapshot(size, 7, 1);
    std::fs::write(&generated.apps_file, serde_json::to_vec(&changed).expect("json")).expect("write");
    let t2 = t1 + Duration::hours(1);
    let outcomes = crate::pipeline::sync_all(&config, &store, t2).await;
    assert!(outcomes.iter().all(|o| o.status == "succeeded"), "{outcomes:?}");
    assert!(outcomes.iter().any(|o| o.stats.opened > 0 && o.stats.closed > 0), "the change moved grants");

    let now = t("2026-11-27T00:00:00Z");
    let mut compared = 0;
    for at in [None, Some(t1)] {
        compared += assert_same_answers(&config, &store, at, now, 80).await;
    }
    assert!(compared > 1000, "the answers compared are not trivial: {compared} rows");
}
