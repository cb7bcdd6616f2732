//! The Cedar entity builder (graph/src/policy.rs) on an arbitrary small
//! graph: nodes of every kind with names, ids and attributes that may hold
//! anything (quotes, backslashes, `::`, control characters), edges of every
//! kind including membership cycles, catalog agents with tiers; then effective
//! access, `PolicyEngine::entities` and a policy evaluation over it.
#![no_main]

use std::collections::BTreeSet;

use accessgraph_graph::model::{Edge, EdgeKind, Node, NodeKind};
use accessgraph_graph::settings::{AnalysisSettings, Catalog, CatalogAgent, Tier};
use accessgraph_graph::{AccessGraph, PolicyEngine, ResolveSettings};
use arbitrary::Arbitrary;
use chrono::{DateTime, Duration, Utc};
use libfuzzer_sys::fuzz_target;

const SOURCES: [&str; 4] = ["idp", "code", "erp", "we\"ird::src"];
const KINDS: [NodeKind; 9] = [
    NodeKind::Person,
    NodeKind::Human,
    NodeKind::Agent,
    NodeKind::ServiceAccount,
    NodeKind::App,
    NodeKind::Group,
    NodeKind::Role,
    NodeKind::Resource,
    NodeKind::Credential,
];
const EDGES: [EdgeKind; 6] =
    [EdgeKind::MemberOf, EdgeKind::CanAssume, EdgeKind::Grant, EdgeKind::Owns, EdgeKind::Holds, EdgeKind::SameAs];
const ACTIONS: [&str; 4] = ["read", "write", "approve", "admin"];
const TIERS: [Tier; 3] = [Tier::Low, Tier::Medium, Tier::High];

/// Policies that read every attribute the entity builder sets and walk
/// group membership, so a malformed entity set cannot go unnoticed.
const POLICY: &str = r#"
permit (principal in Group::"code:group:g0", action, resource);
permit (principal, action == Action::"read", resource) when { resource.environment != "prod" };
forbid (principal, action == Action::"write", resource) when { principal.kind == "agent" && resource.data_domains.contains("finance") };
forbid (principal, action, resource) when { principal has risk_tier && principal.risk_tier == "high" };
permit (principal, action, resource) when { principal.system == resource.system && resource.kind == "repo" };
"#;

#[derive(Arbitrary, Debug)]
enum Text {
    /// A short name from a small set, so ids collide and edges connect.
    Small(u8),
    /// Anything.
    Free(String),
}

impl Text {
    fn get(&self) -> String {
        match self {
            Text::Small(n) => format!("n{}", n % 8),
            Text::Free(text) => text.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct NodeSpec {
    kind: u8,
    source: u8,
    key: Text,
    name: String,
    email: Option<Text>,
    subkind: Option<String>,
    environment: Option<String>,
    data_domains: Vec<String>,
    active: Option<bool>,
}

#[derive(Arbitrary, Debug)]
struct EdgeSpec {
    from: u8,
    to: u8,
    kind: u8,
    actions: Vec<(u8, Option<String>)>,
    /// Hours from now (negative: lapsed).
    expires: Option<i16>,
}

#[derive(Arbitrary, Debug)]
struct AgentSpec {
    identity: u8,
    tier: Option<u8>,
}

#[derive(Arbitrary, Debug)]
struct Shape {
    nodes: Vec<NodeSpec>,
    edges: Vec<EdgeSpec>,
    agents: Vec<AgentSpec>,
    governed: Option<Vec<u8>>,
}

fn build(shape: &Shape, now: DateTime<Utc>) -> Option<()> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut seen = BTreeSet::new();
    for spec in shape.nodes.iter().take(64) {
        let kind = KINDS[usize::from(spec.kind) % KINDS.len()];
        let source = SOURCES[usize::from(spec.source) % SOURCES.len()];
        let id = if kind == NodeKind::Person {
            format!("person:{}", spec.key.get())
        } else {
            format!("{source}:{}:{}", kind.as_str(), spec.key.get())
        };
        if !seen.insert(id.clone()) {
            continue;
        }
        let mut node = Node::new(id, kind, source, spec.name.clone());
        node.email = spec.email.as_ref().map(|e| format!("{}@acme.example", e.get()));
        node.subkind = spec.subkind.clone();
        node.environment = spec.environment.clone();
        node.data_domains = spec.data_domains.clone();
        node.active = spec.active;
        nodes.push(node);
    }
    if nodes.is_empty() {
        return None;
    }
    let id = |n: u8| nodes[usize::from(n) % nodes.len()].id.clone();
    let mut edges = Vec::new();
    for spec in shape.edges.iter().take(256) {
        let kind = EDGES[usize::from(spec.kind) % EDGES.len()];
        let mut edge = if kind == EdgeKind::Grant {
            let actions = spec.actions.iter().take(8).map(|(n, free)| match free {
                Some(text) => text.clone(),
                None => ACTIONS[usize::from(*n) % ACTIONS.len()].to_string(),
            });
            Edge::grant(id(spec.from), id(spec.to), actions)
        } else {
            Edge::new(id(spec.from), id(spec.to), kind)
        };
        edge.expires_at = spec.expires.map(|h| now + Duration::hours(i64::from(h)));
        edges.push(edge);
    }
    let agents = shape
        .agents
        .iter()
        .take(16)
        .enumerate()
        .map(|(i, spec)| CatalogAgent {
            id: format!("agent-{i}"),
            owner: None,
            controller: None,
            purpose: None,
            risk_tier: spec.tier.map(|t| TIERS[usize::from(t) % TIERS.len()]),
            allowed_systems: None,
            expires: None,
            identities: vec![id(spec.identity)],
        })
        .collect();
    let catalog = Catalog::new(agents);
    let settings = AnalysisSettings {
        catalog: catalog.clone(),
        governed: shape.governed.as_ref().map(|g| g.iter().map(|n| SOURCES[usize::from(*n) % 4].to_string()).collect()),
        ..AnalysisSettings::default()
    };
    let resolve = ResolveSettings { aliases: Vec::new(), identity_sources: BTreeSet::from(["idp".to_string()]) };
    let graph = AccessGraph::build(nodes, edges, &catalog, &resolve).ok()?;
    let access = graph.effective_access(now);
    let _ = PolicyEngine::entities(&graph, &access, &settings, now);
    let engine = PolicyEngine::parse(POLICY).ok()?;
    let _ = engine.denials(&graph, &access, &settings, now);
    Some(())
}

fuzz_target!(|shape: Shape| {
    let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    let _ = build(&shape, now);
});
