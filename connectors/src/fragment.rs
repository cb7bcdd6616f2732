//! Helpers shared by the transforms of API connectors: a fragment builder
//! that keeps nodes and edges unique and merges grant actions, and the text
//! helpers every admin API needs.

use accessgraph_graph::{Edge, Fragment, Node};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The provider's hint, only when it is visibly redacted (holds `...` or
/// `…` and is short): a server that sent a whole key by mistake must not
/// get it stored.
pub(crate) fn redacted_hint(hint: Option<&str>) -> Option<String> {
    let hint = hint?.trim();
    let redacted = (hint.contains("...") || hint.contains('…')) && hint.chars().count() <= 40;
    redacted.then(|| hint.to_string())
}

pub(crate) fn non_empty(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|t| !t.is_empty()).map(str::to_string)
}

pub(crate) fn first_text(candidates: &[Option<&str>]) -> Option<String> {
    candidates.iter().find_map(|c| non_empty(*c))
}

/// Collects nodes (unique by id, first wins), grants (one edge per
/// principal and resource, actions merged) and other edges (unique by key).
pub(crate) struct Builder {
    pub(crate) source: String,
    nodes: Vec<Node>,
    index: HashMap<String, usize>,
    grants: BTreeMap<(String, String), BTreeSet<String>>,
    edges: Vec<Edge>,
    edge_keys: HashSet<String>,
}

impl Builder {
    pub(crate) fn new(source: &str) -> Builder {
        Builder {
            source: source.to_string(),
            nodes: Vec::new(),
            index: HashMap::new(),
            grants: BTreeMap::new(),
            edges: Vec::new(),
            edge_keys: HashSet::new(),
        }
    }

    pub(crate) fn has(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    pub(crate) fn add(&mut self, node: Node) {
        if !self.index.contains_key(&node.id) {
            self.index.insert(node.id.clone(), self.nodes.len());
            self.nodes.push(node);
        }
    }

    pub(crate) fn grant(&mut self, from: &str, to: &str, actions: &[&str]) {
        if actions.is_empty() {
            return;
        }
        let set = self.grants.entry((from.to_string(), to.to_string())).or_default();
        set.extend(actions.iter().map(|a| a.to_string()));
    }

    pub(crate) fn edge(&mut self, edge: Edge) {
        if self.edge_keys.insert(edge.key()) {
            self.edges.push(edge);
        }
    }

    pub(crate) fn finish(mut self) -> Fragment {
        for ((from, to), actions) in std::mem::take(&mut self.grants) {
            self.edge(Edge::grant(from, to, actions));
        }
        Fragment { source: self.source, nodes: self.nodes, edges: self.edges, kept: Vec::new() }
    }
}
