//! Access questions answered from the store: who-can, what-can, path,
//! blast-radius and diff. The CLI and the HTTP API share these.

use crate::pipeline::{PipelineError, load_graph};
use crate::store::Store;
use accessgraph_config::Config;
use accessgraph_graph::access::{AccessEntry, AccessGraph};
use accessgraph_graph::diff::{AccessDiff, diff};
use accessgraph_graph::model::NodeKind;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Query failures.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Loading the graph failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
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

/// Who (which principals) can act on a resource.
pub async fn who_can(
    config: &Config,
    store: &Store,
    resource: &str,
    action: Option<&str>,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<AccessRow>, QueryError> {
    let graph = load_graph(config, store, at).await?;
    let target = find(&graph, resource, at)?;
    let eval = at.unwrap_or(now);
    let mut rows = Vec::new();
    for principal in graph.principals() {
        for entry in graph.access_from(principal, eval) {
            if entry.resource == target && action.is_none_or(|a| a == entry.action) {
                rows.push(row(&graph, &entry));
            }
        }
    }
    rows.sort_by(|a, b| (&a.principal, &a.action).cmp(&(&b.principal, &b.action)));
    Ok(rows)
}

/// What an identity (person, account, agent, group or role) can do.
pub async fn what_can(
    config: &Config,
    store: &Store,
    identity: &str,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<AccessRow>, QueryError> {
    let graph = load_graph(config, store, at).await?;
    let start = find(&graph, identity, at)?;
    let mut rows: Vec<AccessRow> = graph.access_from(start, at.unwrap_or(now)).iter().map(|e| row(&graph, e)).collect();
    rows.sort_by(|a, b| (&a.resource, &a.action).cmp(&(&b.resource, &b.action)));
    Ok(rows)
}

/// Everything reachable by whoever holds a credential, through every hop.
pub async fn blast_radius(
    config: &Config,
    store: &Store,
    credential: &str,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<AccessRow>, QueryError> {
    let graph = load_graph(config, store, at).await?;
    let key = find(&graph, credential, at)?;
    let mut rows = Vec::new();
    for holder in graph.holders_of(key) {
        for entry in graph.access_from(holder, at.unwrap_or(now)) {
            let mut access = row(&graph, &entry);
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
