//! Access questions answered from the store: who-can, what-can, path,
//! blast-radius and diff. The CLI and the HTTP API share these.

use crate::pipeline::{PipelineError, load_graph, resolve_settings};
use crate::store::{Endpoint, HumanKey, Store, StoreError, StoredEdge, keys};
use accessgraph_config::Config;
use accessgraph_graph::access::{AccessEntry, AccessGraph};
use accessgraph_graph::diff::{AccessDiff, diff};
use accessgraph_graph::model::{Edge, EdgeKind, Node, NodeKind, person_id};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Query failures.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Loading the graph failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Reading a neighbourhood from the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A neighbourhood's graph could not be built.
    #[error("graph: {0}")]
    Graph(#[from] accessgraph_graph::access::GraphError),
    /// The id names no node at that time.
    #[error("no node `{0}` in the graph{1}")]
    UnknownNode(String, String),
}

/// One row of an access answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AccessRow {
    /// Principal node id.
    pub principal: String,
    /// Principal kind.
    pub principal_kind: String,
    /// Principal name.
    pub principal_name: String,
    /// Resource node id.
    pub resource: String,
    /// Resource name.
    pub resource_name: String,
    /// Action.
    pub action: String,
    /// Evidence path.
    pub path: Vec<String>,
    /// When the access lapses (None: standing).
    pub expires_at: Option<DateTime<Utc>>,
    /// The grant is conditional.
    pub conditional: bool,
}

fn row(graph: &AccessGraph, entry: &AccessEntry) -> AccessRow {
    let principal = graph.node(entry.principal);
    let resource = graph.node(entry.resource);
    AccessRow {
        principal: principal.id.clone(),
        principal_kind: principal.kind.as_str().to_string(),
        principal_name: principal.name.clone(),
        resource: resource.id.clone(),
        resource_name: resource.name.clone(),
        action: entry.action.to_string(),
        path: graph.path_ids(&entry.path()),
        expires_at: entry.expires_at,
        conditional: entry.conditional,
    }
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| format!(" at {}", at.to_rfc3339())).unwrap_or_default()
}

fn find(graph: &AccessGraph, id: &str, at: Option<DateTime<Utc>>) -> Result<petgraph::graph::NodeIndex, QueryError> {
    graph.find(id).ok_or_else(|| QueryError::UnknownNode(id.to_string(), when(at)))
}

/// Who (which principals) can act on a resource. Reads only the resource's
/// reverse neighbourhood from the store (`Neighbourhood::reverse`), not the
/// whole graph; the answer is the whole graph's (see `neighbourhood_tests`).
pub async fn who_can(
    config: &Config,
    store: &Store,
    resource: &str,
    action: Option<&str>,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<AccessRow>, QueryError> {
    let graph = Neighbourhood::new(config, store, at).reverse(resource).await?;
    who_can_in(&graph, resource, action, at, now)
}

/// `who_can` over an already built graph (the whole one or a neighbourhood).
fn who_can_in(
    graph: &AccessGraph,
    resource: &str,
    action: Option<&str>,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<AccessRow>, QueryError> {
    let target = find(graph, resource, at)?;
    let eval = at.unwrap_or(now);
    let mut rows = Vec::new();
    for principal in graph.principals() {
        for entry in graph.access_from(principal, eval) {
            if entry.resource == target && action.is_none_or(|a| a == entry.action) {
                rows.push(row(graph, &entry));
            }
        }
    }
    rows.sort_by(|a, b| (&a.principal, &a.action).cmp(&(&b.principal, &b.action)));
    Ok(rows)
}

/// What an identity (person, account, agent, group or role) can do. Reads
/// only what the identity reaches (`Neighbourhood::forward`).
pub async fn what_can(
    config: &Config,
    store: &Store,
    identity: &str,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<AccessRow>, QueryError> {
    let graph = Neighbourhood::new(config, store, at).forward(&[identity.to_string()]).await?;
    what_can_in(&graph, identity, at, now)
}

/// `what_can` over an already built graph.
fn what_can_in(
    graph: &AccessGraph,
    identity: &str,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<AccessRow>, QueryError> {
    let start = find(graph, identity, at)?;
    let mut rows: Vec<AccessRow> = graph.access_from(start, at.unwrap_or(now)).iter().map(|e| row(graph, e)).collect();
    rows.sort_by(|a, b| (&a.resource, &a.action).cmp(&(&b.resource, &b.action)));
    Ok(rows)
}

/// Everything reachable by whoever holds a credential, through every hop.
/// Reads only the credential's holders and what they reach.
pub async fn blast_radius(
    config: &Config,
    store: &Store,
    credential: &str,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<AccessRow>, QueryError> {
    let graph = Neighbourhood::new(config, store, at).holders_forward(credential).await?;
    blast_radius_in(&graph, credential, at, now)
}

/// `blast_radius` over an already built graph.
fn blast_radius_in(
    graph: &AccessGraph,
    credential: &str,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<AccessRow>, QueryError> {
    let key = find(graph, credential, at)?;
    let mut rows = Vec::new();
    for holder in graph.holders_of(key) {
        for entry in graph.access_from(holder, at.unwrap_or(now)) {
            let mut access = row(graph, &entry);
            access.path.insert(0, graph.node(key).id.clone());
            rows.push(access);
        }
    }
    rows.sort_by(|a, b| (&a.resource, &a.action, &a.principal).cmp(&(&b.resource, &b.action, &b.principal)));
    rows.dedup_by(|a, b| a.resource == b.resource && a.action == b.action && a.principal == b.principal);
    Ok(rows)
}

/// The shortest access path between two nodes.
pub async fn path(
    config: &Config,
    store: &Store,
    from: &str,
    to: &str,
    at: Option<DateTime<Utc>>,
) -> Result<Option<Vec<String>>, QueryError> {
    let graph = load_graph(config, store, at).await?;
    let a = find(&graph, from, at)?;
    let b = find(&graph, to, at)?;
    Ok(graph.path(a, b).map(|p| graph.path_ids(&p)))
}

/// Effective access changes between two instants.
pub async fn access_diff(
    config: &Config,
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<AccessDiff, QueryError> {
    let before = load_graph(config, store, Some(from)).await?;
    let after = load_graph(config, store, Some(to)).await?;
    let before_set = before.effective_access(from).triples(&before);
    let after_set = after.effective_access(to).triples(&after);
    Ok(diff(&before_set, &after_set))
}

/// An aligned text table of access rows.
pub fn access_table(rows: &[AccessRow]) -> String {
    let mut table = vec![["PRINCIPAL", "KIND", "ACTION", "RESOURCE", "EXPIRES", "VIA"].map(String::from).to_vec()];
    for r in rows {
        table.push(vec![
            r.principal.clone(),
            r.principal_kind.clone(),
            r.action.clone(),
            r.resource.clone(),
            r.expires_at.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "standing".into()),
            r.path.join(" → "),
        ]);
    }
    crate::text::table(&table)
}

/// Whether a node kind is a person (used by callers to word answers).
pub fn is_person(kind: NodeKind) -> bool {
    kind == NodeKind::Person
}

/// The edge kinds `AccessGraph::access_from` walks before a grant.
fn is_traversal(kind: EdgeKind) -> bool {
    matches!(kind, EdgeKind::SameAs | EdgeKind::MemberOf | EdgeKind::CanAssume)
}

/// The part of the graph one question needs, read from the store by indexed
/// look-ups, then built with the same `AccessGraph::build` as the whole
/// graph so that effective access is computed by the same code.
///
/// Why the answer equals the whole graph's: `access_from(p)` is a BFS over
/// `same_as` / `member_of` / `can_assume` then one `grant`. For who-can, every
/// node on any path from a principal to the resource is an ancestor of the
/// resource, and the neighbourhood holds every ancestor with every walked
/// edge into it; a BFS restricted to a set closed under predecessors visits
/// its nodes in the same order with the same parents. For what-can, the
/// neighbourhood holds everything the identity reaches with all their
/// outgoing edges. Edges keep the whole graph's relative order (source by
/// source, insertion order: `Store::load_rows`), so ties break alike. People
/// are derived, not stored: every person involved comes with all its
/// accounts (same email, aliases, IdP identifiers) and the IdP accounts
/// that decide identifier matches, so resolution, names and `same_as`
/// edges come out as in the whole graph.
struct Neighbourhood<'a> {
    config: &'a Config,
    store: &'a Store,
    at: Option<DateTime<Utc>>,
    sources: Vec<String>,
    identity_sources: Vec<String>,
    aliases: HashMap<String, String>,
    nodes: HashMap<String, Node>,
    looked_up: HashSet<String>,
    edges: Vec<StoredEdge>,
    edge_seen: HashSet<(String, i64)>,
    /// Identifier (lower-cased) → the email it resolves to (None: ambiguous or unclaimed).
    identifiers: HashMap<String, Option<String>>,
}

impl<'a> Neighbourhood<'a> {
    fn new(config: &'a Config, store: &'a Store, at: Option<DateTime<Utc>>) -> Neighbourhood<'a> {
        let resolve = resolve_settings(config);
        let sources: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
        let identity_sources = sources.iter().filter(|s| resolve.identity_sources.contains(*s)).cloned().collect();
        Neighbourhood {
            config,
            store,
            at,
            sources,
            identity_sources,
            aliases: resolve.aliases.into_iter().collect(),
            nodes: HashMap::new(),
            looked_up: HashSet::new(),
            edges: Vec::new(),
            edge_seen: HashSet::new(),
            identifiers: HashMap::new(),
        }
    }

    /// Loads the nodes of `ids` not looked up yet.
    async fn load_nodes(&mut self, ids: impl IntoIterator<Item = &String>) -> Result<(), QueryError> {
        let wanted: Vec<String> = ids.into_iter().filter(|id| self.looked_up.insert((*id).clone())).cloned().collect();
        if wanted.is_empty() {
            return Ok(());
        }
        for node in self.store.nodes_with_ids(&self.sources, self.at, &wanted).await? {
            self.nodes.insert(node.id.clone(), node);
        }
        Ok(())
    }

    fn add_nodes(&mut self, nodes: Vec<Node>) {
        for node in nodes {
            self.looked_up.insert(node.id.clone());
            self.nodes.entry(node.id.clone()).or_insert(node);
        }
    }

    /// Keeps edges of the given kinds (each once); returns them.
    fn add_edges(&mut self, edges: Vec<StoredEdge>, keep: impl Fn(EdgeKind) -> bool) -> Vec<Edge> {
        let mut added = Vec::new();
        for stored in edges {
            if keep(stored.edge.kind) && self.edge_seen.insert((stored.source.clone(), stored.seq)) {
                added.push(stored.edge.clone());
                self.edges.push(stored);
            }
        }
        added
    }

    /// Resolves identifiers (IdP `userName` / `externalId`, lower-cased) to
    /// emails as `AccessGraph` does, loading the IdP accounts that claim them.
    async fn resolve_identifiers(&mut self, keys: &[String]) -> Result<(), QueryError> {
        let wanted: Vec<String> = keys.iter().filter(|k| !self.identifiers.contains_key(*k)).cloned().collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let mut claimants = Vec::new();
        for key in [HumanKey::UserName, HumanKey::ExternalId] {
            claimants.extend(self.store.humans_with_key(&self.identity_sources, self.at, key, &wanted).await?);
        }
        let mut claims: HashMap<String, Option<String>> = HashMap::new();
        let mut counted: HashSet<(String, &str)> = HashSet::new();
        for node in &claimants {
            let Some(email) = node.email.as_deref().filter(|e| e.contains('@')) else { continue };
            for attr in ["user_name", "external_id"] {
                let Some(value) = node.attrs.get(attr).map(|v| v.trim().to_lowercase()).filter(|v| !v.is_empty())
                else {
                    continue;
                };
                if !counted.insert((node.id.clone(), attr)) {
                    continue;
                }
                match claims.get_mut(&value) {
                    None => {
                        claims.insert(value, Some(email.to_string()));
                    }
                    Some(Some(known)) if person_id(known) == person_id(email) => {}
                    Some(slot) => *slot = None,
                }
            }
        }
        for key in wanted {
            let claim = claims.get(&key).cloned().flatten();
            self.identifiers.insert(key, claim);
        }
        self.add_nodes(claimants);
        Ok(())
    }

    /// The person id each loaded human account among `ids` resolves to.
    async fn persons_of(&mut self, ids: &[String]) -> Result<Vec<(String, String)>, QueryError> {
        let mut by_email = Vec::new();
        let mut by_identifier = Vec::new();
        for id in ids {
            let Some(node) = self.nodes.get(id).filter(|n| n.kind == NodeKind::Human) else { continue };
            let email = self.aliases.get(id).map(String::as_str).or(node.email.as_deref()).filter(|e| e.contains('@'));
            match email {
                Some(email) => by_email.push((id.clone(), person_id(email))),
                None => {
                    if let Some(key) = keys::account_key(id) {
                        by_identifier.push((id.clone(), key.to_lowercase()));
                    }
                }
            }
        }
        let keys: Vec<String> = by_identifier.iter().map(|(_, k)| k.clone()).collect();
        self.resolve_identifiers(&keys).await?;
        for (id, key) in by_identifier {
            if let Some(Some(email)) = self.identifiers.get(&key) {
                by_email.push((id, person_id(email)));
            }
        }
        Ok(by_email)
    }

    /// Loads every account of the given people (and what decides their
    /// resolution); returns the accounts that resolve to them.
    async fn accounts_of(&mut self, persons: &BTreeSet<String>) -> Result<Vec<String>, QueryError> {
        let emails: Vec<String> =
            persons.iter().filter_map(|p| p.strip_prefix("person:")).map(str::to_string).collect();
        if emails.is_empty() {
            return Ok(Vec::new());
        }
        let mut candidates: BTreeSet<String> = BTreeSet::new();
        let same_email = self.store.humans_with_key(&self.sources, self.at, HumanKey::Email, &emails).await?;
        let mut identifiers = BTreeSet::new();
        for node in &same_email {
            candidates.insert(node.id.clone());
            if self.identity_sources.contains(&node.source) {
                let node_keys = keys::node_keys(node);
                identifiers.extend(node_keys.user_name);
                identifiers.extend(node_keys.external_id);
            }
        }
        self.add_nodes(same_email);
        let aliased: Vec<String> = self
            .aliases
            .iter()
            .filter(|(_, email)| keys::email_key(email).is_some_and(|e| emails.contains(&e)))
            .map(|(account, _)| account.clone())
            .collect();
        self.load_nodes(&aliased).await?;
        candidates.extend(aliased);
        if !identifiers.is_empty() {
            let identifiers: Vec<String> = identifiers.into_iter().collect();
            let matched = self.store.humans_with_key(&self.sources, self.at, HumanKey::Account, &identifiers).await?;
            candidates.extend(matched.iter().map(|n| n.id.clone()));
            self.add_nodes(matched);
        }
        let candidates: Vec<String> = candidates.into_iter().collect();
        let resolved = self.persons_of(&candidates).await?;
        Ok(resolved.into_iter().filter(|(_, person)| persons.contains(person)).map(|(account, _)| account).collect())
    }

    /// Whether `id` names a node: a stored one or a person some account resolves to.
    async fn exists(&mut self, id: &str) -> Result<bool, QueryError> {
        self.load_nodes([&id.to_string()]).await?;
        if self.nodes.contains_key(id) {
            return Ok(true);
        }
        if id.starts_with("person:") {
            return Ok(!self.accounts_of(&BTreeSet::from([id.to_string()])).await?.is_empty());
        }
        Ok(false)
    }

    /// The graph of every loaded node and edge, edges in load order. First
    /// every loaded human account gets what decides its resolution (the IdP
    /// accounts claiming its identifier), so that no account resolves here
    /// to a person it does not resolve to in the whole graph.
    async fn build(mut self) -> Result<AccessGraph, QueryError> {
        let mut settled: HashSet<String> = HashSet::new();
        loop {
            let mut humans: Vec<String> = self
                .nodes
                .values()
                .filter(|n| n.kind == NodeKind::Human && !settled.contains(&n.id))
                .map(|n| n.id.clone())
                .collect();
            if humans.is_empty() {
                break;
            }
            humans.sort();
            settled.extend(humans.iter().cloned());
            self.persons_of(&humans).await?;
        }
        let rank: HashMap<&str, usize> = self.sources.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
        self.edges.sort_by_key(|e| (rank.get(e.source.as_str()).copied().unwrap_or(usize::MAX), e.seq));
        let mut nodes: Vec<Node> = self.nodes.into_values().collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let edges = self.edges.into_iter().map(|e| e.edge).collect();
        Ok(AccessGraph::build(nodes, edges, &self.config.catalog, &resolve_settings(self.config))?)
    }

    /// The resource and every node with a walked path to it.
    async fn reverse(mut self, resource: &str) -> Result<AccessGraph, QueryError> {
        if !self.exists(resource).await? {
            return Err(QueryError::UnknownNode(resource.to_string(), when(self.at)));
        }
        let target = vec![resource.to_string()];
        let grants = self.store.edges_at(&self.sources, self.at, Endpoint::To, &target).await?;
        let mut frontier: Vec<String> =
            self.add_edges(grants, |k| k == EdgeKind::Grant).into_iter().map(|e| e.from).collect();
        let mut ancestors: HashSet<String> = HashSet::new();
        let mut persons: BTreeSet<String> = BTreeSet::new();
        while !frontier.is_empty() {
            let fresh: Vec<String> = frontier.into_iter().filter(|id| ancestors.insert(id.clone())).collect();
            let fresh: Vec<String> = fresh.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
            if fresh.is_empty() {
                break;
            }
            self.load_nodes(&fresh).await?;
            let mut next: Vec<String> = Vec::new();
            for (_, person) in self.persons_of(&fresh).await? {
                persons.insert(person.clone());
                next.push(person);
            }
            for id in &fresh {
                if id.starts_with("person:") {
                    persons.insert(id.clone());
                }
            }
            let incoming = self.store.edges_at(&self.sources, self.at, Endpoint::To, &fresh).await?;
            next.extend(self.add_edges(incoming, is_traversal).into_iter().map(|e| e.from));
            frontier = next;
        }
        self.accounts_of(&persons).await?;
        self.build().await
    }

    /// Everything the `starts` reach, with their outgoing walked and grant edges.
    async fn forward(mut self, starts: &[String]) -> Result<AccessGraph, QueryError> {
        for start in starts {
            if !self.exists(start).await? {
                return Err(QueryError::UnknownNode(start.clone(), when(self.at)));
            }
        }
        self.walk_forward(starts.to_vec()).await?;
        self.build().await
    }

    async fn walk_forward(&mut self, starts: Vec<String>) -> Result<(), QueryError> {
        let mut visited: HashSet<String> = HashSet::new();
        let mut frontier = starts;
        let mut targets: BTreeSet<String> = BTreeSet::new();
        while !frontier.is_empty() {
            let fresh: BTreeSet<String> = frontier.into_iter().filter(|id| visited.insert(id.clone())).collect();
            if fresh.is_empty() {
                break;
            }
            let fresh: Vec<String> = fresh.into_iter().collect();
            self.load_nodes(&fresh).await?;
            let persons: BTreeSet<String> = fresh.iter().filter(|id| id.starts_with("person:")).cloned().collect();
            let mut next = self.accounts_of(&persons).await?;
            let outgoing = self.store.edges_at(&self.sources, self.at, Endpoint::From, &fresh).await?;
            for edge in self.add_edges(outgoing, |k| is_traversal(k) || k == EdgeKind::Grant) {
                if edge.kind == EdgeKind::Grant {
                    targets.insert(edge.to);
                } else {
                    next.push(edge.to);
                }
            }
            frontier = next;
        }
        self.load_nodes(&targets).await?;
        Ok(())
    }

    /// A credential, its holders and everything they reach.
    async fn holders_forward(mut self, credential: &str) -> Result<AccessGraph, QueryError> {
        if !self.exists(credential).await? {
            return Err(QueryError::UnknownNode(credential.to_string(), when(self.at)));
        }
        let incoming = self.store.edges_at(&self.sources, self.at, Endpoint::To, &[credential.to_string()]).await?;
        let holders: Vec<String> =
            self.add_edges(incoming, |k| k == EdgeKind::Holds).into_iter().map(|e| e.from).collect();
        self.walk_forward(holders).await?;
        self.build().await
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod neighbourhood_tests;
