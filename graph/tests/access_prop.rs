//! Property: effective access equals a naive reachability over the same edges
//! (memberships and role assumptions with cycles, expiries, people resolved
//! across accounts), and every evidence path is a shortest valid walk.

use accessgraph_graph::model::{Edge, EdgeKind, Node, NodeKind};
use accessgraph_graph::settings::{AnalysisSettings, Catalog};
use accessgraph_graph::{AccessGraph, PolicyEngine, ResolveSettings};
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const ACTIONS: [&str; 3] = ["admin", "read", "write"];
/// Emails humans draw from: case variants of one person, another person, none.
const EMAILS: [Option<&str>; 4] = [Some("a@x.example"), Some("A@X.Example"), Some("b@x.example"), None];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).single().expect("valid time")
}

/// 0: standing, 1: lapsed, 2: lapses later, 3: lapses exactly now (so lapsed).
fn expiry(choice: u8) -> Option<DateTime<Utc>> {
    match choice {
        0 => None,
        1 => Some(now() - Duration::days(1)),
        2 => Some(now() + Duration::days(1)),
        _ => Some(now()),
    }
}

fn live(choice: u8) -> bool {
    matches!(choice, 0 | 2)
}

#[derive(Debug, Clone)]
struct Spec {
    humans: Vec<u8>,
    agents: usize,
    groups: usize,
    roles: usize,
    resources: usize,
    members: Vec<(u8, u8, u8)>,
    assumes: Vec<(u8, u8, u8)>,
    grants: Vec<(u8, u8, u8, u8)>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec(0..4u8, 0..4),
        0..3usize,
        0..5usize,
        0..4usize,
        1..4usize,
        prop::collection::vec((any::<u8>(), any::<u8>(), 0..4u8), 0..14),
        prop::collection::vec((any::<u8>(), any::<u8>(), 0..4u8), 0..10),
        prop::collection::vec((any::<u8>(), any::<u8>(), 1..8u8, 0..4u8), 0..14),
    )
        .prop_map(|(humans, agents, groups, roles, resources, members, assumes, grants)| Spec {
            humans,
            agents,
            groups,
            roles,
            resources,
            members,
            assumes,
            grants,
        })
}

/// The graph's input, plus the model's own view of it.
struct Built {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    /// Traversal edges (member_of, can_assume, and same_as derived here), live only.
    hops: BTreeMap<String, BTreeSet<String>>,
    /// Live grants: (from, to, action).
    grants: BTreeSet<(String, String, String)>,
    principals: BTreeSet<String>,
}

fn pick(ids: &[String], raw: u8) -> Option<&String> {
    if ids.is_empty() { None } else { ids.get(usize::from(raw) % ids.len()) }
}

fn build(spec: &Spec) -> Built {
    let mut nodes = Vec::new();
    let mut hops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut principals = BTreeSet::new();
    let mut humans = Vec::new();
    for (i, &email) in spec.humans.iter().enumerate() {
        let id = format!("t:user:h{i}");
        let mut node = Node::new(&id, NodeKind::Human, "t", format!("h{i}"));
        node.email = EMAILS[usize::from(email)].map(str::to_string);
        node.active = Some(true);
        // Independent of `person_id`: people are keyed by the lower-cased email.
        match &node.email {
            Some(email) => {
                let person = format!("person:{}", email.to_lowercase());
                hops.entry(person.clone()).or_default().insert(id.clone());
                principals.insert(person);
            }
            None => {
                principals.insert(id.clone());
            }
        }
        nodes.push(node);
        humans.push(id);
    }
    let agents: Vec<String> = (0..spec.agents).map(|i| format!("t:agent:a{i}")).collect();
    let groups: Vec<String> = (0..spec.groups).map(|i| format!("t:group:g{i}")).collect();
    let roles: Vec<String> = (0..spec.roles).map(|i| format!("t:role:r{i}")).collect();
    let resources: Vec<String> = (0..spec.resources).map(|i| format!("t:dataset:d{i}")).collect();
    for id in &agents {
        nodes.push(Node::new(id, NodeKind::Agent, "t", id));
        principals.insert(id.clone());
    }
    for id in &groups {
        nodes.push(Node::new(id, NodeKind::Group, "t", id));
    }
    for id in &roles {
        nodes.push(Node::new(id, NodeKind::Role, "t", id));
    }
    for id in &resources {
        nodes.push(Node::new(id, NodeKind::Resource, "t", id));
    }
    let identities: Vec<String> = humans.iter().chain(&agents).cloned().collect();
    let member_from: Vec<String> = identities.iter().chain(&groups).cloned().collect();
    let actors: Vec<String> = member_from.iter().chain(&roles).cloned().collect();

    let mut edges = Vec::new();
    let mut live_grants = BTreeSet::new();
    let mut hop = |kind: EdgeKind, from: &String, to: &String, exp: u8, edges: &mut Vec<Edge>| {
        let mut edge = Edge::new(from, to, kind);
        edge.expires_at = expiry(exp);
        edges.push(edge);
        if live(exp) {
            hops.entry(from.clone()).or_default().insert(to.clone());
        }
    };
    for &(from, to, exp) in &spec.members {
        if let (Some(from), Some(to)) = (pick(&member_from, from), pick(&groups, to)) {
            hop(EdgeKind::MemberOf, from, to, exp, &mut edges);
        }
    }
    for &(from, to, exp) in &spec.assumes {
        if let (Some(from), Some(to)) = (pick(&actors, from), pick(&roles, to)) {
            hop(EdgeKind::CanAssume, from, to, exp, &mut edges);
        }
    }
    for &(from, to, mask, exp) in &spec.grants {
        if let (Some(from), Some(to)) = (pick(&actors, from), pick(&resources, to)) {
            let actions: Vec<&str> =
                ACTIONS.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, a)| *a).collect();
            let mut edge = Edge::grant(from, to, actions.iter().copied());
            edge.expires_at = expiry(exp);
            edges.push(edge);
            if live(exp) {
                for action in actions {
                    live_grants.insert((from.clone(), to.clone(), action.to_string()));
                }
            }
        }
    }
    Built { nodes, edges, hops, grants: live_grants, principals }
}

/// Hop distances from a start over live traversal edges (BFS).
fn distances(built: &Built, start: &str) -> BTreeMap<String, usize> {
    let mut dist = BTreeMap::from([(start.to_string(), 0)]);
    let mut queue = VecDeque::from([start.to_string()]);
    while let Some(at) = queue.pop_front() {
        let d = dist[&at];
        for next in built.hops.get(&at).into_iter().flatten() {
            if !dist.contains_key(next) {
                dist.insert(next.clone(), d + 1);
                queue.push_back(next.clone());
            }
        }
    }
    dist
}

/// Reachability as a fixpoint, written independently of the BFS above.
fn naive_access(built: &Built) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for principal in &built.principals {
        let mut reach = BTreeSet::from([principal.clone()]);
        loop {
            let more: Vec<String> = reach
                .iter()
                .flat_map(|n| built.hops.get(n).into_iter().flatten())
                .filter(|n| !reach.contains(*n))
                .cloned()
                .collect();
            if more.is_empty() {
                break;
            }
            reach.extend(more);
        }
        for (from, to, action) in &built.grants {
            if reach.contains(from) {
                out.insert((principal.clone(), to.clone(), action.clone()));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn effective_access_is_reachability_with_shortest_valid_paths(spec in spec()) {
        let built = build(&spec);
        let graph = AccessGraph::build(
            built.nodes.clone(),
            built.edges.clone(),
            &Catalog::default(),
            &ResolveSettings::default(),
        )
        .expect("graph builds");
        let access = graph.effective_access(now());

        let got: BTreeSet<(String, String, String)> =
            access.triples(&graph).iter().map(|(p, r, a)| (p.to_string(), r.to_string(), a.to_string())).collect();
        prop_assert_eq!(&got, &naive_access(&built));
        prop_assert_eq!(got.len(), access.entries().len(), "one entry per (principal, resource, action)");

        for entry in access.entries() {
            let path = graph.path_ids(&entry.path());
            let principal = &graph.node(entry.principal).id;
            let resource = &graph.node(entry.resource).id;
            prop_assert!(path.len() >= 2, "{:?}", path);
            prop_assert_eq!(&path[0], principal);
            prop_assert_eq!(path.last().expect("non-empty"), resource);
            for pair in path[..path.len() - 1].windows(2) {
                prop_assert!(
                    built.hops.get(&pair[0]).is_some_and(|next| next.contains(&pair[1])),
                    "{} -> {} is not a live hop in {:?}", pair[0], pair[1], path
                );
            }
            let grantee = &path[path.len() - 2];
            prop_assert!(
                built.grants.contains(&(grantee.clone(), resource.clone(), entry.action.to_string())),
                "no live grant of {} from {} on {}", entry.action, grantee, resource
            );
            // Shortest: no grant of this (resource, action) is closer to the principal.
            let dist = distances(&built, principal);
            let best = built
                .grants
                .iter()
                .filter(|(_, to, action)| to == resource && *action == entry.action)
                .filter_map(|(from, _, _)| dist.get(from))
                .min()
                .copied()
                .expect("reachable");
            prop_assert_eq!(path.len() - 2, best, "path {:?} is not shortest", path);
        }

        // Cedar accepts the entities whatever cycles the memberships form, and
        // membership conveys through them exactly as effective access does.
        let settings = AnalysisSettings::default();
        let permit_all = PolicyEngine::parse("permit(principal, action, resource);").expect("parses");
        let denials = permit_all.denials(&graph, &access, &settings, now()).expect("cedar evaluates");
        prop_assert!(denials.is_empty());
        let by_group = PolicyEngine::parse(r#"permit(principal in Group::"t:group:g0", action, resource);"#)
            .expect("parses");
        let denials = by_group.denials(&graph, &access, &settings, now()).expect("cedar evaluates");
        for (i, entry) in access.entries().iter().enumerate() {
            let in_g0 = graph
                .groups_of(entry.principal, now())
                .iter()
                .any(|&g| graph.node(g).id == "t:group:g0");
            prop_assert_eq!(denials.iter().any(|d| d.entry == i), !in_g0);
        }
    }
}
