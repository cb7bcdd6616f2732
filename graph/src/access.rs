//! The in-memory access graph: nodes of every source, people resolved across
//! sources, owners resolved, and effective access as the closure over
//! `same_as`, `member_of*` and `can_assume*` followed by one `grant`.

use crate::model::{Edge, EdgeKind, Node, NodeKind, person_id};
use crate::parallel;
use crate::settings::Catalog;
use chrono::{DateTime, Utc};
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;

/// How accounts become people.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResolveSettings {
    /// `[[identity.alias]]`: account node id → email.
    pub aliases: Vec<(String, String)>,
    /// Sources that are the truth about who still works here (IdP, SCIM).
    pub identity_sources: BTreeSet<String>,
}

/// Who owns a non-human identity, and who said so.
#[derive(Clone, Debug, PartialEq)]
pub enum Owner {
    /// Neither the source nor the catalog names an owner.
    Missing,
    /// The owner is a known node.
    Known {
        /// The owner's node.
        node: NodeIndex,
        /// True when the catalog declared it, false when the source did.
        from_catalog: bool,
        /// True when the source only implies it (e.g. a key's creator).
        inferred: bool,
    },
    /// An owner is named but no source knows it.
    Unknown {
        /// The owner reference as written.
        reference: String,
        /// True when the catalog declared it.
        from_catalog: bool,
    },
}

/// An edge as the graph keeps it: its endpoints are the graph's own, and
/// its action list is shared by every edge with the same list. At 2M
/// edges the endpoint ids and per-edge action strings of [`Edge`] were
/// most of the graph's memory (about 300 bytes an edge, now 64).
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// Relation.
    pub kind: EdgeKind,
    /// Actions of a grant, sorted and unique, interned graph-wide.
    pub actions: Arc<[Action]>,
    /// When a grant was made, if the source says.
    pub granted_at: Option<DateTime<Utc>>,
    /// When a grant or membership lapses (None: standing).
    pub expires_at: Option<DateTime<Utc>>,
    /// The grant only holds under conditions the source attaches.
    pub conditional: bool,
}

impl Link {
    /// Whether the edge still holds at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// The graph of every current node and edge, with people and owners resolved.
#[derive(Debug, Default)]
pub struct AccessGraph {
    graph: DiGraph<Node, Link>,
    index: HashMap<String, NodeIndex>,
    person_of: FxHashMap<NodeIndex, NodeIndex>,
    owners: FxHashMap<NodeIndex, Owner>,
    catalog: Catalog,
    identity_sources: BTreeSet<String>,
    /// The action list of every edge without actions.
    no_actions: Arc<[Action]>,
}

/// Builds an [`AccessGraph`] edge by edge, so that a caller streaming
/// edges from a store never holds them all as [`Edge`]s beside the graph.
pub struct GraphBuilder {
    graph: DiGraph<Node, Link>,
    index: HashMap<String, NodeIndex>,
    /// Each distinct action, allocated once (walks deduplicate by it).
    actions: HashMap<String, Action>,
    /// Each distinct action list, allocated once.
    lists: HashMap<Vec<String>, Arc<[Action]>>,
}

impl GraphBuilder {
    /// An empty graph with room for `nodes` nodes and `edges` edges (hints:
    /// it grows past them). Add every node before the edges between them.
    pub fn with_capacity(nodes: usize, edges: usize) -> GraphBuilder {
        let mut lists = HashMap::new();
        lists.insert(Vec::new(), Arc::from(Vec::new()));
        GraphBuilder {
            graph: DiGraph::with_capacity(nodes, edges),
            index: HashMap::with_capacity(nodes),
            actions: HashMap::new(),
            lists,
        }
    }

    /// Adds a node; ids are unique.
    pub fn add_node(&mut self, node: Node) -> Result<(), GraphError> {
        if self.index.contains_key(&node.id) {
            return Err(GraphError::DuplicateNode(node.id));
        }
        let id = node.id.clone();
        let ix = self.graph.add_node(node);
        self.index.insert(id, ix);
        Ok(())
    }

    /// Adds an edge. One whose endpoints are unknown is dropped (a source
    /// may reference an object another source owns that has not synced).
    pub fn add_edge(&mut self, edge: Edge) {
        let (Some(&from), Some(&to)) = (self.index.get(&edge.from), self.index.get(&edge.to)) else {
            return;
        };
        let actions = match self.lists.get(&edge.actions) {
            Some(list) => Arc::clone(list),
            None => {
                let interned = &mut self.actions;
                let list: Arc<[Action]> = edge
                    .actions
                    .iter()
                    .map(|a| match interned.get(a.as_str()) {
                        Some(action) => action.clone(),
                        None => interned.entry(a.clone()).or_insert_with(|| Action::new(a)).clone(),
                    })
                    .collect();
                self.lists.insert(edge.actions, Arc::clone(&list));
                list
            }
        };
        let link = Link {
            kind: edge.kind,
            actions,
            granted_at: edge.granted_at,
            expires_at: edge.expires_at,
            conditional: edge.conditional,
        };
        self.graph.add_edge(from, to, link);
    }

    /// Resolves people and owners: the graph is complete.
    pub fn finish(self, catalog: &Catalog, resolve: &ResolveSettings) -> AccessGraph {
        let no_actions = self.lists.get(&Vec::new()).cloned().unwrap_or_default();
        let mut built = AccessGraph {
            graph: self.graph,
            index: self.index,
            person_of: FxHashMap::default(),
            owners: FxHashMap::default(),
            catalog: catalog.clone(),
            identity_sources: resolve.identity_sources.clone(),
            no_actions,
        };
        built.resolve_people(resolve);
        built.resolve_owners();
        built
    }
}

/// Errors building a graph from rows.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Two nodes share an id.
    #[error("duplicate node id `{0}`")]
    DuplicateNode(String),
}

impl AccessGraph {
    /// Builds the graph. Edges whose endpoints are unknown are dropped (a
    /// source may reference an object another source owns that has not synced).
    pub fn build(
        nodes: Vec<Node>,
        edges: Vec<Edge>,
        catalog: &Catalog,
        resolve: &ResolveSettings,
    ) -> Result<AccessGraph, GraphError> {
        let mut builder = GraphBuilder::with_capacity(nodes.len(), edges.len());
        for node in nodes {
            builder.add_node(node)?;
        }
        for edge in edges {
            builder.add_edge(edge);
        }
        Ok(builder.finish(catalog, resolve))
    }

    /// A derived edge: no actions, no times.
    fn bare_link(&self, kind: EdgeKind) -> Link {
        Link { kind, actions: Arc::clone(&self.no_actions), granted_at: None, expires_at: None, conditional: false }
    }

    fn resolve_people(&mut self, resolve: &ResolveSettings) {
        let aliases: HashMap<&str, &str> =
            resolve.aliases.iter().map(|(account, email)| (account.as_str(), email.as_str())).collect();
        let identifiers = self.identity_source_identifiers(&resolve.identity_sources);
        let mut accounts: BTreeMap<String, Vec<NodeIndex>> = BTreeMap::new();
        let mut explained: Vec<(NodeIndex, String)> = Vec::new();
        for ix in self.graph.node_indices() {
            let node = &self.graph[ix];
            if node.kind != NodeKind::Human {
                continue;
            }
            // Emails first (an alias overrides the account's own), then the
            // IdP's `userName`/`externalId` for accounts that carry no email.
            let email =
                aliases.get(node.id.as_str()).copied().or(node.email.as_deref()).filter(|email| email.contains('@'));
            let email = match email {
                Some(email) => Some(email.to_string()),
                None => account_key(&node.id).and_then(|key| identifiers.get(&key.to_lowercase())).and_then(|found| {
                    let (email, how) = found.as_ref()?;
                    explained.push((ix, how.clone()));
                    Some(email.clone())
                }),
            };
            if let Some(email) = email {
                accounts.entry(person_id(&email)).or_default().push(ix);
            }
        }
        for (ix, how) in explained {
            self.graph[ix].attrs.insert("resolved_by".to_string(), how);
        }
        for (pid, mut members) in accounts {
            members.sort_by(|a, b| self.graph[*a].id.cmp(&self.graph[*b].id));
            let email = pid.trim_start_matches("person:").to_string();
            let person_ix = match self.index.get(&pid) {
                Some(&ix) => ix,
                None => {
                    let first = &self.graph[members[0]];
                    let name = if first.name.is_empty() { email.clone() } else { first.name.clone() };
                    let mut person = Node::new(pid.clone(), NodeKind::Person, "", name);
                    person.email = Some(email);
                    let ix = self.graph.add_node(person);
                    self.index.insert(pid.clone(), ix);
                    ix
                }
            };
            for account in members {
                let link = self.bare_link(EdgeKind::SameAs);
                self.graph.add_edge(person_ix, account, link);
                self.person_of.insert(account, person_ix);
            }
        }
        for ix in self.graph.node_indices().collect::<Vec<_>>() {
            if self.graph[ix].kind == NodeKind::Person {
                let active = self.compute_person_active(ix);
                self.graph[ix].active = Some(active);
            }
        }
    }

    /// `userName` and `externalId` (attrs `user_name`, `external_id`, as the
    /// SCIM connector writes them) of identity-source accounts with an
    /// email, lower-cased → (email, explanation); `None` when two accounts
    /// claim the same identifier for different emails (ambiguous: not used).
    fn identity_source_identifiers(
        &self,
        identity_sources: &BTreeSet<String>,
    ) -> HashMap<String, Option<(String, String)>> {
        let mut out: HashMap<String, Option<(String, String)>> = HashMap::new();
        for node in self.graph.node_weights() {
            if node.kind != NodeKind::Human || !identity_sources.contains(&node.source) {
                continue;
            }
            let Some(email) = node.email.as_deref().filter(|email| email.contains('@')) else { continue };
            for attr in ["user_name", "external_id"] {
                let Some(value) = node.attrs.get(attr).map(|v| v.trim().to_lowercase()).filter(|v| !v.is_empty())
                else {
                    continue;
                };
                let how = format!("{attr} of {}", node.id);
                match out.get_mut(&value) {
                    None => {
                        out.insert(value, Some((email.to_string(), how)));
                    }
                    Some(Some((known, _))) if person_id(known) == person_id(email) => {}
                    Some(slot) => *slot = None,
                }
            }
        }
        out
    }

    /// A person is active if any of their IdP accounts is; with no IdP account,
    /// if any account is.
    fn compute_person_active(&self, person: NodeIndex) -> bool {
        let accounts: Vec<&Node> = self
            .graph
            .edges_directed(person, Direction::Outgoing)
            .filter(|e| e.weight().kind == EdgeKind::SameAs)
            .map(|e| &self.graph[e.target()])
            .collect();
        let authoritative: Vec<&&Node> =
            accounts.iter().filter(|n| self.identity_sources.contains(&n.source)).collect();
        if authoritative.is_empty() {
            accounts.iter().any(|n| n.active != Some(false))
        } else {
            authoritative.iter().any(|n| n.active != Some(false))
        }
    }

    /// Finds the node an owner reference names: an email (a person) or a node id.
    pub fn lookup_owner_reference(&self, reference: &str) -> Option<NodeIndex> {
        let reference = reference.trim();
        // A node id as written first (ids such as `scim:user:a@b.example` hold
        // an `@`), then an email or a `person:` id, whatever their case.
        let ix = match self.index.get(reference) {
            Some(&ix) => ix,
            None => {
                let email = reference.strip_prefix("person:").unwrap_or(reference);
                if !email.contains('@') {
                    return None;
                }
                self.index.get(&person_id(email)).copied()?
            }
        };
        Some(self.person_of.get(&ix).copied().unwrap_or(ix))
    }

    fn resolve_owners(&mut self) {
        let mut owners = FxHashMap::default();
        let mut owns_edges = Vec::new();
        for ix in self.graph.node_indices() {
            let node = &self.graph[ix];
            if !node.kind.is_non_human() && node.kind != NodeKind::Credential {
                continue;
            }
            let catalog_owner = self.catalog.agent_for(&node.id).and_then(|a| a.owner.clone());
            let (reference, from_catalog, inferred) = match (catalog_owner, &node.owner) {
                (Some(owner), _) => (owner, true, false),
                (None, Some(owner)) => (owner.clone(), false, node.owner_inferred),
                (None, None) => {
                    owners.insert(ix, Owner::Missing);
                    continue;
                }
            };
            let owner = match self.lookup_owner_reference(&reference) {
                Some(owner_ix) => {
                    owns_edges.push((owner_ix, ix));
                    Owner::Known { node: owner_ix, from_catalog, inferred }
                }
                None => Owner::Unknown { reference, from_catalog },
            };
            owners.insert(ix, owner);
        }
        for (owner, owned) in owns_edges {
            let link = self.bare_link(EdgeKind::Owns);
            self.graph.add_edge(owner, owned, link);
        }
        self.owners = owners;
    }

    /// The node behind an index.
    pub fn node(&self, ix: NodeIndex) -> &Node {
        &self.graph[ix]
    }

    /// The index of a node id.
    pub fn find(&self, id: &str) -> Option<NodeIndex> {
        self.index.get(id).copied()
    }

    /// Every node index.
    pub fn node_indices(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.node_indices()
    }

    /// Every node.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> + '_ {
        self.graph.node_weights()
    }

    /// Every edge, including the derived `same_as` and `owns`, as an
    /// [`Edge`] of its own (built on demand: the graph keeps [`Link`]s).
    pub fn edges(&self) -> impl Iterator<Item = Edge> + '_ {
        self.graph.edge_references().map(|e| {
            let link = e.weight();
            Edge {
                from: self.graph[e.source()].id.clone(),
                to: self.graph[e.target()].id.clone(),
                kind: link.kind,
                actions: link.actions.iter().map(|a| a.as_str().to_string()).collect(),
                granted_at: link.granted_at,
                expires_at: link.expires_at,
                conditional: link.conditional,
            }
        })
    }

    /// Every edge of one kind with its endpoints.
    pub fn edges_of_kind(&self, kind: EdgeKind) -> impl Iterator<Item = (NodeIndex, NodeIndex, &Link)> + '_ {
        self.graph
            .edge_references()
            .filter(move |e| e.weight().kind == kind)
            .map(|e| (e.source(), e.target(), e.weight()))
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// The catalog the graph was built with.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The person an account resolves to.
    pub fn person_of(&self, account: NodeIndex) -> Option<NodeIndex> {
        self.person_of.get(&account).copied()
    }

    /// The accounts of a person.
    pub fn accounts_of(&self, person: NodeIndex) -> Vec<NodeIndex> {
        self.neighbors(person, EdgeKind::SameAs, Direction::Outgoing)
    }

    /// Owner resolution of a non-human identity or credential.
    pub fn owner(&self, ix: NodeIndex) -> &Owner {
        self.owners.get(&ix).unwrap_or(&Owner::Missing)
    }

    /// Whether an identity (or person) is active.
    pub fn is_active(&self, ix: NodeIndex) -> bool {
        self.graph[ix].active != Some(false)
    }

    /// Neighbours over edges of one kind.
    pub fn neighbors(&self, ix: NodeIndex, kind: EdgeKind, direction: Direction) -> Vec<NodeIndex> {
        let mut out: Vec<NodeIndex> = self
            .graph
            .edges_directed(ix, direction)
            .filter(|e| e.weight().kind == kind)
            .map(|e| if direction == Direction::Outgoing { e.target() } else { e.source() })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The identities holding a credential.
    pub fn holders_of(&self, credential: NodeIndex) -> Vec<NodeIndex> {
        self.neighbors(credential, EdgeKind::Holds, Direction::Incoming)
    }

    /// Who acts: people, and every identity not resolved to a person.
    pub fn principals(&self) -> Vec<NodeIndex> {
        let mut out: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|&ix| self.graph[ix].kind.is_identity() && !self.person_of.contains_key(&ix))
            .collect();
        out.sort_by(|a, b| self.graph[*a].id.cmp(&self.graph[*b].id));
        out
    }

    /// Groups a principal belongs to, transitively (through its accounts for a person).
    pub fn groups_of(&self, principal: NodeIndex, now: DateTime<Utc>) -> Vec<NodeIndex> {
        let mut groups = BTreeSet::new();
        // Every node is expanded once: `same_as` edges come from remote data
        // too and may loop (an account `same_as` itself, two accounts naming
        // each other), as `member_of` edges may.
        let mut expanded = HashSet::from([principal]);
        let mut queue = VecDeque::from([principal]);
        while let Some(ix) = queue.pop_front() {
            for edge in self.graph.edges_directed(ix, Direction::Outgoing) {
                let kind = edge.weight().kind;
                if !(kind == EdgeKind::MemberOf || kind == EdgeKind::SameAs) || !edge.weight().is_live(now) {
                    continue;
                }
                let target = edge.target();
                if kind == EdgeKind::MemberOf {
                    groups.insert(target);
                }
                if expanded.insert(target) {
                    queue.push_back(target);
                }
            }
        }
        groups.into_iter().collect()
    }

    /// Effective access of one starting node (principal, account, group or role),
    /// one entry per (resource, action) with the shortest path as evidence.
    pub fn access_from(&self, start: NodeIndex, now: DateTime<Utc>) -> Vec<AccessEntry> {
        let mut walker = Walker::new(self, now);
        let mut scratch = Scratch::default();
        walker.fill(start, &mut scratch);
        let mut out = Vec::new();
        walker.walk(start, &mut out, &mut scratch);
        out
    }

    /// Effective access of every principal.
    ///
    /// Each node's live outgoing edges are read once and each distinct
    /// action string is allocated once, however many principals reach the
    /// node: an admin who may become 600 roles costs 600 node visits, and
    /// the entries it gets share their action and their route.
    ///
    /// Runs on every core: every node's edges are read in parallel into
    /// shared, read-only hops; each principal's entries are bounded; the
    /// principals are split into contiguous runs of about equal work,
    /// walked in parallel, and the runs joined in principal order, so the
    /// result does not depend on the number of threads.
    pub fn effective_access(&self, now: DateTime<Utc>) -> EffectiveAccess {
        self.effective_access_in(now, None)
    }

    /// [`AccessGraph::effective_access`] on `threads` threads (None: as many
    /// as the work and the cores call for).
    fn effective_access_in(&self, now: DateTime<Utc>, threads: Option<usize>) -> EffectiveAccess {
        let threads = threads.unwrap_or_else(|| parallel::worker_threads(self.graph.edge_count(), 100_000));
        let walker = Walker::read_all(self, now, threads);
        let principals = self.principals();
        let bounds: Vec<usize> = parallel::map_runs(parallel::even_runs(principals.len(), threads), |run| {
            let mut scratch = Scratch::default();
            principals[run].iter().map(|&p| walker.bound(p, &mut scratch)).collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect();
        let mut parts = parallel::map_runs(parallel::balanced_runs(&bounds, threads), |run| {
            // Size each run's entries once: a growing vector of millions of
            // entries would briefly hold three times its size while it moves.
            let mut out = Vec::with_capacity(bounds[run.clone()].iter().sum());
            let mut scratch = Scratch::default();
            for &principal in &principals[run] {
                walker.walk(principal, &mut out, &mut scratch);
            }
            out
        });
        let entries = if parts.len() == 1 {
            let mut only = parts.pop().unwrap_or_default();
            only.shrink_to_fit();
            only
        } else {
            let mut entries = Vec::with_capacity(parts.iter().map(Vec::len).sum());
            for part in parts {
                entries.extend(part);
            }
            entries
        };
        EffectiveAccess::new(entries)
    }

    /// Shortest path between two nodes over the edges that confer access
    /// (a credential stands for its holders).
    pub fn path(&self, from: NodeIndex, to: NodeIndex) -> Option<Vec<NodeIndex>> {
        let mut parent: FxHashMap<NodeIndex, NodeIndex> = FxHashMap::default();
        let mut queue = VecDeque::from([from]);
        while let Some(ix) = queue.pop_front() {
            if ix == to {
                return Some(path_to(&parent, from, ix));
            }
            let mut next: Vec<NodeIndex> = self
                .graph
                .edges_directed(ix, Direction::Outgoing)
                .filter(|e| {
                    matches!(
                        e.weight().kind,
                        EdgeKind::SameAs | EdgeKind::MemberOf | EdgeKind::CanAssume | EdgeKind::Grant
                    )
                })
                .map(|e| e.target())
                .collect();
            if self.graph[ix].kind == NodeKind::Credential {
                next.extend(self.holders_of(ix));
            }
            next.sort();
            for target in next {
                if target != from && !parent.contains_key(&target) {
                    parent.insert(target, ix);
                    queue.push_back(target);
                }
            }
        }
        None
    }

    /// Node ids of a path, for evidence.
    pub fn path_ids(&self, path: &[NodeIndex]) -> Vec<String> {
        path.iter().map(|&ix| self.graph[ix].id.clone()).collect()
    }

    /// Sources that are identity sources of truth.
    pub fn identity_sources(&self) -> &BTreeSet<String> {
        &self.identity_sources
    }
}

/// The KEY of a `SOURCE:KIND:KEY` node id.
fn account_key(id: &str) -> Option<&str> {
    id.splitn(3, ':').nth(2).filter(|key| !key.is_empty())
}

fn min_time(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A node's outgoing edges that matter to effective access, live at the
/// instant walked, in edge-id order (the order evidence is chosen in).
struct Hops<'g> {
    /// Each grant.
    grants: Vec<HopGrant<'g>>,
    /// (target, expiry) of each `same_as`, `member_of` and `can_assume`.
    next: Vec<(NodeIndex, Option<DateTime<Utc>>)>,
    /// Number of (resource, action) pairs of the grants: a bound on the
    /// entries the node contributes.
    actions: usize,
}

/// A grant edge as a walk needs it.
struct HopGrant<'g> {
    resource: NodeIndex,
    actions: &'g [Action],
    expires_at: Option<DateTime<Utc>>,
    conditional: bool,
}

/// Walks effective access from start nodes, reading each node's edges once.
struct Walker<'g> {
    graph: &'g AccessGraph,
    now: DateTime<Utc>,
    hops: Vec<Option<Hops<'g>>>,
}

/// Per-walk state, reused between start nodes to spare allocations.
#[derive(Default)]
struct Scratch {
    parent: FxHashMap<NodeIndex, NodeIndex>,
    expiry: FxHashMap<NodeIndex, Option<DateTime<Utc>>>,
    seen: FxHashSet<(NodeIndex, usize)>,
    queue: VecDeque<NodeIndex>,
}

impl Scratch {
    fn reset(&mut self, start: NodeIndex) {
        self.parent.clear();
        self.expiry.clear();
        self.seen.clear();
        self.queue.clear();
        self.expiry.insert(start, None);
        self.queue.push_back(start);
    }
}

impl<'g> Walker<'g> {
    fn new(graph: &'g AccessGraph, now: DateTime<Utc>) -> Walker<'g> {
        Walker { graph, now, hops: Vec::new() }
    }

    /// A walker with every node's hops read up front, on `threads` threads.
    fn read_all(graph: &'g AccessGraph, now: DateTime<Utc>, threads: usize) -> Walker<'g> {
        let runs = parallel::even_runs(graph.graph.node_count(), threads);
        let hops = parallel::map_runs(runs, |run| {
            run.map(|i| Some(read_hops(graph, now, NodeIndex::new(i)))).collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect();
        Walker { graph, now, hops }
    }

    /// Reads the hops of every node `start` reaches that were not read yet.
    fn fill(&mut self, start: NodeIndex, scratch: &mut Scratch) {
        if self.hops.len() < self.graph.graph.node_count() {
            self.hops.resize_with(self.graph.graph.node_count(), || None);
        }
        scratch.reset(start);
        while let Some(ix) = scratch.queue.pop_front() {
            let Some(slot) = self.hops.get_mut(ix.index()) else { continue };
            let (graph, now) = (self.graph, self.now);
            let hops = slot.get_or_insert_with(|| read_hops(graph, now, ix));
            for &(target, _) in &hops.next {
                if target != start && !scratch.parent.contains_key(&target) {
                    scratch.parent.insert(target, ix);
                    scratch.queue.push_back(target);
                }
            }
        }
    }

    /// The hops of `ix` as read by [`Walker::read_all`] or [`Walker::fill`].
    /// Every node a walk reaches was read, so none is missing; were one, it
    /// would contribute nothing.
    fn read(&self, ix: NodeIndex) -> &Hops<'g> {
        static NONE: Hops<'static> = Hops { grants: Vec::new(), next: Vec::new(), actions: 0 };
        let hops = self.hops.get(ix.index()).and_then(Option::as_ref);
        debug_assert!(hops.is_some(), "walk before its hops were read");
        hops.unwrap_or(&NONE)
    }

    /// How many entries `start` may get at most: the grant actions of every
    /// node it reaches (duplicates not removed).
    fn bound(&self, start: NodeIndex, scratch: &mut Scratch) -> usize {
        scratch.reset(start);
        let mut bound = 0;
        while let Some(ix) = scratch.queue.pop_front() {
            let hops = self.read(ix);
            bound += hops.actions;
            for &(target, _) in &hops.next {
                if target != start && !scratch.parent.contains_key(&target) {
                    scratch.parent.insert(target, ix);
                    scratch.queue.push_back(target);
                }
            }
        }
        bound
    }

    /// Appends the entries of `start` to `out`: breadth first over
    /// `same_as`, `member_of` and `can_assume`, then one grant; the first
    /// path found to a (resource, action) is its evidence. Entries come
    /// out ordered by resource, then action.
    ///
    /// Reads the hops [`Walker::bound`] read: call it for `start` first.
    fn walk(&self, start: NodeIndex, out: &mut Vec<AccessEntry>, scratch: &mut Scratch) {
        scratch.reset(start);
        let begin = out.len();
        while let Some(ix) = scratch.queue.pop_front() {
            let expiry_here = scratch.expiry.get(&ix).copied().flatten();
            let hops = self.read(ix);
            let mut route: Option<Arc<Vec<NodeIndex>>> = None;
            for HopGrant { resource, actions, expires_at, conditional } in &hops.grants {
                for action in actions.iter() {
                    if !scratch.seen.insert((*resource, action.key())) {
                        continue;
                    }
                    let route = route.get_or_insert_with(|| Arc::new(path_to(&scratch.parent, start, ix)));
                    out.push(AccessEntry {
                        principal: start,
                        resource: *resource,
                        action: action.clone(),
                        route: Arc::clone(route),
                        expires_at: min_time(expiry_here, *expires_at),
                        conditional: *conditional,
                    });
                }
            }
            for &(target, expires_at) in &hops.next {
                if target == start || scratch.parent.contains_key(&target) {
                    continue;
                }
                scratch.parent.insert(target, ix);
                scratch.expiry.insert(target, min_time(expiry_here, expires_at));
                scratch.queue.push_back(target);
            }
        }
        out[begin..].sort_unstable_by(|a, b| a.resource.cmp(&b.resource).then_with(|| a.action.cmp(&b.action)));
    }
}

/// A node's live outgoing hops, in edge-id order.
fn read_hops(graph: &AccessGraph, now: DateTime<Utc>, ix: NodeIndex) -> Hops<'_> {
    let mut edges: Vec<_> =
        graph.graph.edges_directed(ix, Direction::Outgoing).filter(|e| e.weight().is_live(now)).collect();
    edges.sort_by_key(|e| e.id());
    let mut hops = Hops { grants: Vec::new(), next: Vec::new(), actions: 0 };
    for edge in edges {
        let link = edge.weight();
        match link.kind {
            EdgeKind::Grant => {
                hops.actions += link.actions.len();
                hops.grants.push(HopGrant {
                    resource: edge.target(),
                    actions: &link.actions,
                    expires_at: link.expires_at,
                    conditional: link.conditional,
                });
            }
            EdgeKind::SameAs | EdgeKind::MemberOf | EdgeKind::CanAssume => {
                hops.next.push((edge.target(), link.expires_at));
            }
            EdgeKind::Owns | EdgeKind::Holds => {}
        }
    }
    hops
}

fn path_to(parent: &FxHashMap<NodeIndex, NodeIndex>, start: NodeIndex, end: NodeIndex) -> Vec<NodeIndex> {
    let mut path = vec![end];
    let mut cursor = end;
    while cursor != start {
        match parent.get(&cursor) {
            Some(&up) => {
                path.push(up);
                cursor = up;
            }
            None => break,
        }
    }
    path.reverse();
    path
}

/// An action of a grant (`read`, `s3:GetObject`). Entries share one
/// allocation per distinct action instead of a string each: effective access
/// of a large account runs to millions of entries.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Action(Arc<String>);

impl Action {
    /// An action from its text.
    pub fn new(text: &str) -> Action {
        Action(Arc::new(text.to_string()))
    }

    /// The action's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Identity of the shared allocation: equal for the copies of one
    /// interned action, which is what a walk deduplicates by.
    pub(crate) fn key(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

impl std::ops::Deref for Action {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Action {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Action {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Action {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Action {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Action> for str {
    fn eq(&self, other: &Action) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Action> for &str {
    fn eq(&self, other: &Action) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Action> for String {
    fn eq(&self, other: &Action) -> bool {
        self.as_str() == other.as_str()
    }
}

impl From<&Action> for String {
    fn from(action: &Action) -> String {
        action.as_str().to_string()
    }
}

/// One effective (principal, action, resource) with the path that confers it.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessEntry {
    /// Who.
    pub principal: NodeIndex,
    /// On what.
    pub resource: NodeIndex,
    /// Which action.
    pub action: Action,
    /// principal → … → the node holding the grant; shared by every entry
    /// granted on that node to that principal.
    route: Arc<Vec<NodeIndex>>,
    /// Earliest expiry along the path (None: standing).
    pub expires_at: Option<DateTime<Utc>>,
    /// The grant is conditional.
    pub conditional: bool,
}

impl AccessEntry {
    /// principal → … → resource: the evidence path, built on demand.
    pub fn path(&self) -> Vec<NodeIndex> {
        let mut path = Vec::with_capacity(self.route.len() + 1);
        path.extend_from_slice(&self.route);
        path.push(self.resource);
        path
    }

    /// Nodes on the path, the principal and the resource included.
    pub fn path_len(&self) -> usize {
        self.route.len() + 1
    }

    /// The node whose grant confers the access: the last hop before the resource.
    pub fn grantee(&self) -> NodeIndex {
        self.route.last().copied().unwrap_or(self.principal)
    }
}

/// Effective access of every principal, indexed both ways.
#[derive(Clone, Debug, Default)]
pub struct EffectiveAccess {
    entries: Vec<AccessEntry>,
    by_principal: FxHashMap<NodeIndex, Vec<u32>>,
    by_resource: FxHashMap<NodeIndex, Vec<u32>>,
}

impl EffectiveAccess {
    /// Indexes entries.
    pub fn new(entries: Vec<AccessEntry>) -> EffectiveAccess {
        let mut by_principal: FxHashMap<NodeIndex, Vec<u32>> = FxHashMap::default();
        let mut by_resource: FxHashMap<NodeIndex, Vec<u32>> = FxHashMap::default();
        for (i, entry) in entries.iter().enumerate() {
            by_principal.entry(entry.principal).or_default().push(i as u32);
            by_resource.entry(entry.resource).or_default().push(i as u32);
        }
        EffectiveAccess { entries, by_principal, by_resource }
    }

    /// Every entry.
    pub fn entries(&self) -> &[AccessEntry] {
        &self.entries
    }

    /// Entries of one principal.
    pub fn of_principal(&self, principal: NodeIndex) -> impl Iterator<Item = &AccessEntry> + '_ {
        self.by_principal.get(&principal).into_iter().flatten().map(|&i| &self.entries[i as usize])
    }

    /// Entries of one principal with their positions in [`EffectiveAccess::entries`].
    pub fn positions_of_principal(&self, principal: NodeIndex) -> impl Iterator<Item = (usize, &AccessEntry)> + '_ {
        self.by_principal.get(&principal).into_iter().flatten().map(|&i| (i as usize, &self.entries[i as usize]))
    }

    /// Entries on one resource.
    pub fn on_resource(&self, resource: NodeIndex) -> impl Iterator<Item = &AccessEntry> + '_ {
        self.by_resource.get(&resource).into_iter().flatten().map(|&i| &self.entries[i as usize])
    }

    /// Whether a principal holds an action on a resource.
    pub fn holds(&self, principal: NodeIndex, resource: NodeIndex, action: &str) -> Option<&AccessEntry> {
        self.of_principal(principal).find(|e| e.resource == resource && e.action == action)
    }

    /// The (principal id, resource id, action) triples, for diffs between
    /// snapshots. Each distinct id and action is allocated once and shared.
    pub fn triples(&self, graph: &AccessGraph) -> AccessSet {
        let mut names: Vec<AccessId> = Vec::new();
        let mut nodes: FxHashMap<NodeIndex, u32> = FxHashMap::default();
        // Actions are shared allocations: one look-up per distinct one.
        let mut actions: FxHashMap<usize, u32> = FxHashMap::default();
        let mut triples = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            let mut node = |ix: NodeIndex| {
                *nodes.entry(ix).or_insert_with(|| {
                    names.push(AccessId::from(graph.node(ix).id.as_str()));
                    (names.len() - 1) as u32
                })
            };
            let (principal, resource) = (node(entry.principal), node(entry.resource));
            let action = *actions.entry(entry.action.key()).or_insert_with(|| {
                names.push(AccessId::from(entry.action.as_str()));
                (names.len() - 1) as u32
            });
            triples.push([principal, resource, action]);
        }
        AccessSet::from_parts(names, triples)
    }
}

pub use crate::access_set::{AccessId, AccessSet};

#[cfg(test)]
mod parallel_tests {
    use crate::rules::testkit::Kit;

    /// Any number of threads gives the entries of one thread, in the same order.
    #[test]
    fn parallel_walks_equal_one_walk() {
        let mut kit = Kit::new();
        let groups: Vec<_> = (0..5).map(|g| kit.group(&format!("g{g}"))).collect();
        let resources: Vec<_> = (0..7).map(|r| kit.resource(&format!("r{r}"))).collect();
        for (g, group) in groups.iter().enumerate() {
            kit.grant(group, &resources[g], &["read"]);
            kit.grant(group, &resources[(g + 3) % 7], &["write", "read"]);
            if g > 0 {
                kit.member(group, &groups[g - 1]);
            }
        }
        for i in 0..40 {
            let user = kit.human(&format!("u{i}"), &format!("u{i}@acme.example"));
            kit.member(&user, &groups[i % 5]);
            if i % 3 == 0 {
                kit.grant(&user, &resources[i % 7], &["admin"]);
            }
        }
        let graph = kit.graph();
        let one = graph.effective_access_in(kit.now, Some(1));
        assert!(one.entries().len() > 100, "the case is not trivial: {}", one.entries().len());
        for threads in [2, 3, 8, 64] {
            assert_eq!(graph.effective_access_in(kit.now, Some(threads)).entries(), one.entries());
        }
    }
}

#[cfg(test)]
mod link_tests {
    use super::*;

    /// The graph keeps millions of links: one that grows (a `String`, a
    /// `Vec` of its own) shows at 100k people as hundreds of megabytes.
    #[test]
    fn a_link_stays_small() {
        assert!(std::mem::size_of::<Link>() <= 48, "{}", std::mem::size_of::<Link>());
    }

    /// Edges with equal action lists share one list, and equal actions one
    /// allocation across lists (walks deduplicate by it); `edges()` gives
    /// back what was built.
    #[test]
    fn action_lists_are_shared_and_edges_come_back() {
        let nodes = ["a", "b", "r"].map(|k| Node::new(format!("t:user:{k}"), NodeKind::Human, "t", k));
        let mut nodes = nodes.to_vec();
        nodes[2].kind = NodeKind::Resource;
        let mut edges = vec![
            Edge::grant("t:user:a", "t:user:r", ["read", "write"]),
            Edge::grant("t:user:b", "t:user:r", ["read", "write"]),
            Edge::grant("t:user:b", "t:user:r", ["read"]),
        ];
        edges[2].expires_at = Some("2030-01-01T00:00:00Z".parse().expect("time"));
        let graph =
            AccessGraph::build(nodes, edges.clone(), &Catalog::default(), &ResolveSettings::default()).expect("builds");
        let links: Vec<&Link> = graph.edges_of_kind(EdgeKind::Grant).map(|(_, _, link)| link).collect();
        assert_eq!(links.len(), 3);
        let read = |link: &Link| link.actions.iter().find(|a| a.as_str() == "read").map(Action::key);
        let pairs: Vec<_> = links.iter().filter(|l| l.actions.len() == 2).collect();
        assert!(Arc::ptr_eq(&pairs[0].actions, &pairs[1].actions), "one list for equal lists");
        assert!(links.iter().all(|l| read(l) == read(links[0])), "one allocation per action");
        let mut back: Vec<Edge> = graph.edges().filter(|e| e.kind == EdgeKind::Grant).collect();
        back.sort_by(|x, y| (&x.from, &x.actions).cmp(&(&y.from, &y.actions)));
        edges.sort_by(|x, y| (&x.from, &x.actions).cmp(&(&y.from, &y.actions)));
        assert_eq!(back, edges);
    }
}

#[cfg(test)]
mod identifier_tests {
    use super::*;

    fn human(source: &str, key: &str, email: Option<&str>) -> Node {
        let mut node = Node::new(format!("{source}:user:{key}"), NodeKind::Human, source, key);
        node.email = email.map(str::to_string);
        node
    }

    fn scim(key: &str, email: &str, user_name: &str, external_id: &str, active: bool) -> Node {
        let mut node = human("idp", key, Some(email));
        node.active = Some(active);
        node.attrs.insert("user_name".into(), user_name.into());
        node.attrs.insert("external_id".into(), external_id.into());
        node
    }

    fn settings() -> ResolveSettings {
        ResolveSettings { aliases: Vec::new(), identity_sources: BTreeSet::from(["idp".to_string()]) }
    }

    #[test]
    fn accounts_without_email_resolve_by_scim_user_name_or_external_id() {
        let nodes = vec![
            scim("u1", "Alice@Acme.example", "alice.a", "00u1ALICE", true),
            scim("u2", "dave@acme.example", "dave.d", "00u1dave", false),
            human("git", "ALICE.A", None),
            human("erp", "00u1dave", None),
            human("wiki", "nobody", None),
        ];
        let graph = AccessGraph::build(nodes, Vec::new(), &Catalog::default(), &settings()).expect("builds");
        let person_of = |id: &str| graph.person_of(graph.find(id).expect("node")).map(|p| graph.node(p).id.clone());
        assert_eq!(person_of("git:user:ALICE.A").as_deref(), Some("person:alice@acme.example"));
        assert_eq!(person_of("erp:user:00u1dave").as_deref(), Some("person:dave@acme.example"));
        assert_eq!(person_of("wiki:user:nobody"), None);
        let git = graph.node(graph.find("git:user:ALICE.A").expect("node"));
        assert_eq!(git.attrs.get("resolved_by").map(String::as_str), Some("user_name of idp:user:u1"));
        // The IdP decides: Dave is inactive although his ERP account says nothing.
        let dave = graph.find("person:dave@acme.example").expect("person");
        assert!(!graph.is_active(dave));
        // The path from the person to the account shows the resolution.
        let alice = graph.find("person:alice@acme.example").expect("person");
        let path = graph.path(alice, graph.find("git:user:ALICE.A").expect("node")).expect("path");
        assert_eq!(graph.path_ids(&path), vec!["person:alice@acme.example", "git:user:ALICE.A"]);
    }

    #[test]
    fn emails_and_aliases_win_and_ambiguous_identifiers_are_not_used() {
        let nodes = vec![
            scim("u1", "alice@acme.example", "shared", "00u1", true),
            scim("u2", "bob@acme.example", "shared", "00u2", true),
            human("git", "shared", None),
            human("erp", "00u1", Some("carol@acme.example")),
            human("crm", "00u2", None),
        ];
        let mut resolve = settings();
        resolve.aliases.push(("crm:user:00u2".into(), "erin@acme.example".into()));
        let graph = AccessGraph::build(nodes, Vec::new(), &Catalog::default(), &resolve).expect("builds");
        let person_of = |id: &str| graph.person_of(graph.find(id).expect("node")).map(|p| graph.node(p).id.clone());
        assert_eq!(person_of("git:user:shared"), None, "two IdP accounts claim `shared`");
        assert_eq!(person_of("erp:user:00u1").as_deref(), Some("person:carol@acme.example"));
        assert_eq!(person_of("crm:user:00u2").as_deref(), Some("person:erin@acme.example"));
        // Non-identity sources do not vouch for anyone.
        let nodes = vec![scim("u1", "alice@acme.example", "alice.a", "00u1", true), human("git", "alice.a", None)];
        let graph =
            AccessGraph::build(nodes, Vec::new(), &Catalog::default(), &ResolveSettings::default()).expect("builds");
        assert_eq!(graph.person_of(graph.find("git:user:alice.a").expect("node")), None);
    }
}

#[cfg(test)]
mod loop_tests {
    use super::*;
    use crate::policy::PolicyEngine;
    use crate::settings::AnalysisSettings;

    fn settings() -> ResolveSettings {
        ResolveSettings { aliases: Vec::new(), identity_sources: BTreeSet::from(["idp".to_string()]) }
    }

    /// The `cedar_entities` fuzz target's timeout input (2026-11-27): one
    /// agent with a live `same_as` edge to itself and a grant to itself.
    /// `groups_of` queued the agent again on every visit and
    /// `PolicyEngine::entities` never returned.
    #[test]
    fn groups_of_ends_on_an_account_same_as_itself() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("time");
        let id = "we\"ird::src:agent:";
        let mut agent = Node::new(id, NodeKind::Agent, "we\"ird::src", "");
        agent.subkind = Some(String::new());
        agent.environment = Some(String::new());
        agent.data_domains = vec![String::new(), String::new()];
        agent.active = Some(false);
        let mut same_as = Edge::new(id, id, EdgeKind::SameAs);
        same_as.expires_at = Some(now + chrono::Duration::hours(30816));
        let grant = Edge::grant(id, id, ["read"]);
        let graph =
            AccessGraph::build(vec![agent], vec![same_as, grant], &Catalog::default(), &settings()).expect("builds");
        let ix = graph.find(id).expect("node");
        assert!(graph.groups_of(ix, now).is_empty());
        let access = graph.effective_access(now);
        let entities = PolicyEngine::entities(&graph, &access, &AnalysisSettings::default(), now);
        assert!(entities.is_ok(), "{:?}", entities.err());
    }

    /// Two accounts naming each other `same_as` still reach their groups,
    /// once each.
    #[test]
    fn groups_of_ends_on_a_same_as_cycle_and_keeps_the_groups() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("time");
        let nodes = vec![
            Node::new("a:user:x", NodeKind::Human, "a", "x"),
            Node::new("b:user:x", NodeKind::Human, "b", "x"),
            Node::new("b:group:g", NodeKind::Group, "b", "g"),
            Node::new("b:group:h", NodeKind::Group, "b", "h"),
        ];
        let edges = vec![
            Edge::new("a:user:x", "b:user:x", EdgeKind::SameAs),
            Edge::new("b:user:x", "a:user:x", EdgeKind::SameAs),
            Edge::new("b:user:x", "b:group:g", EdgeKind::MemberOf),
            Edge::new("b:group:g", "b:group:h", EdgeKind::MemberOf),
            Edge::new("b:group:h", "b:group:g", EdgeKind::MemberOf),
        ];
        let graph = AccessGraph::build(nodes, edges, &Catalog::default(), &settings()).expect("builds");
        let groups: Vec<String> = graph
            .groups_of(graph.find("a:user:x").expect("node"), now)
            .into_iter()
            .map(|ix| graph.node(ix).id.clone())
            .collect();
        assert_eq!(groups, vec!["b:group:g", "b:group:h"]);
    }
}
