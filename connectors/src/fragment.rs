//! Helpers shared by the transforms of API connectors: a fragment builder
//! that keeps nodes and edges unique and merges grant actions, and the text
//! helpers every admin API needs.

use accessgraph_graph::{Edge, Fragment, Node};
use hashbrown::{DefaultHashBuilder, HashTable};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

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
    edges: UniqueEdges,
}

impl Builder {
    pub(crate) fn new(source: &str) -> Builder {
        Builder {
            source: source.to_string(),
            nodes: Vec::new(),
            index: HashMap::new(),
            grants: BTreeMap::new(),
            edges: UniqueEdges::with_capacity(0),
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
        self.edges.push(edge);
    }

    pub(crate) fn finish(mut self) -> Fragment {
        for ((from, to), actions) in std::mem::take(&mut self.grants) {
            self.edge(Edge::grant(from, to, actions));
        }
        Fragment { source: self.source, nodes: self.nodes, edges: self.edges.into_vec(), kept: Vec::new() }
    }
}

/// Edges unique by key ([`Edge::key`]), in the order first added, found
/// without building a key string per edge: the key is written into a
/// reused buffer and hashed with a seeded hasher (ids come from remote
/// systems). At a million grants a `String` key per edge, hashed with
/// SipHash, was a large part of mapping a snapshot.
pub(crate) struct UniqueEdges {
    edges: Vec<Edge>,
    /// Positions in `edges`, by the hash of their key.
    by_key: HashTable<usize>,
    hasher: DefaultHashBuilder,
    key: String,
    other_key: String,
}

impl UniqueEdges {
    pub(crate) fn with_capacity(capacity: usize) -> UniqueEdges {
        UniqueEdges {
            edges: Vec::with_capacity(capacity),
            by_key: HashTable::with_capacity(capacity),
            hasher: DefaultHashBuilder::default(),
            key: String::new(),
            other_key: String::new(),
        }
    }

    /// Adds `edge` unless one with its key is there: its position, or the
    /// position of the one already there with `edge` handed back.
    pub(crate) fn find_or_add(&mut self, edge: Edge) -> Result<usize, (usize, Edge)> {
        edge.write_key(&mut self.key);
        let hash = self.hasher.hash_one(self.key.as_str());
        let UniqueEdges { edges, by_key, hasher, key, other_key } = self;
        let found = by_key.find(hash, |&at| {
            edges[at].write_key(other_key);
            other_key == key
        });
        if let Some(&at) = found {
            return Err((at, edge));
        }
        let at = edges.len();
        edges.push(edge);
        // Rehashing (only past the capacity reserved) needs each key again.
        by_key.insert_unique(hash, at, |&at| hasher.hash_one(edges[at].key().as_str()));
        Ok(at)
    }

    /// Adds an edge unless the same fact is already there.
    pub(crate) fn push(&mut self, edge: Edge) {
        let _ = self.find_or_add(edge);
    }

    pub(crate) fn get_mut(&mut self, at: usize) -> &mut Edge {
        &mut self.edges[at]
    }

    pub(crate) fn into_vec(self) -> Vec<Edge> {
        self.edges
    }
}

#[cfg(test)]
mod unique_edges_tests {
    use super::*;
    use accessgraph_graph::EdgeKind;

    /// Past its reserved capacity the table rehashes from the edges' keys;
    /// duplicates are still found afterwards, and the first one stays.
    #[test]
    fn edges_stay_unique_past_their_capacity() {
        let mut edges = UniqueEdges::with_capacity(0);
        for round in 0..2 {
            for i in 0..500 {
                edges.push(Edge::grant(format!("s:user:u{i}"), "s:repo:r", ["write", "read"]));
                let mut member = Edge::new(format!("s:user:u{i}"), "s:group:g", EdgeKind::MemberOf);
                member.conditional = round == 1;
                edges.push(member);
            }
        }
        assert_eq!(
            edges.find_or_add(Edge::grant("s:user:u1", "s:repo:r", ["read", "write"])).err().map(|e| e.0),
            Some(2)
        );
        let edges = edges.into_vec();
        assert_eq!(edges.len(), 1000);
        let keys: BTreeSet<String> = edges.iter().map(Edge::key).collect();
        assert_eq!(keys.len(), 1000);
        assert!(edges.iter().all(|e| !e.conditional), "the first edge of a key stays");
    }
}
