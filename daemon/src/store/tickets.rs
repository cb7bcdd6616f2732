//! Ticket sinks' local mapping (sink, fingerprint) → ticket, and the node
//! facts a ticket states, handed to the sinks as a [`TicketStore`].
//!
//! The mapping saves a label search per event and remembers what a ticket
//! last said (for "what changed" comments). It is not the source of truth:
//! the fingerprint label on the remote ticket is, so deleting rows here
//! never files a duplicate.

use super::{Store, StoreError, decode_json, to_micros};
use accessgraph_config::Config;
use accessgraph_connectors::sinks::{NodeFacts, TicketRecord, TicketStore};
use accessgraph_graph::access::{AccessGraph, Owner};
use accessgraph_graph::{Finding, NodeKind};
use async_trait::async_trait;
use chrono::Utc;
use petgraph::graph::NodeIndex;
use sqlx::Row;
use std::sync::Arc;
use tokio::sync::OnceCell;

impl Store {
    /// The mapping of one finding's ticket in one sink.
    pub async fn ticket(&self, sink: &str, fingerprint: &str) -> Result<Option<TicketRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT ticket_key, ticket_url, last_event_id, pending_event_id, rendered FROM tickets \
             WHERE sink = $1 AND fingerprint = $2",
        )
        .bind(sink)
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let rendered: Option<String> = row.try_get("rendered")?;
        let rendered: Option<Finding> = rendered.as_deref().map(decode_json).transpose()?;
        Ok(Some(TicketRecord {
            key: row.try_get("ticket_key")?,
            url: row.try_get("ticket_url")?,
            last_event_id: row.try_get("last_event_id")?,
            pending_event_id: row.try_get("pending_event_id")?,
            rendered,
        }))
    }

    /// Records (replaces) the mapping of one finding's ticket in one sink.
    pub async fn save_ticket(&self, sink: &str, fingerprint: &str, record: &TicketRecord) -> Result<(), StoreError> {
        let rendered = record
            .rendered
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO tickets (sink, fingerprint, ticket_key, ticket_url, last_event_id, pending_event_id, \
             rendered, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (sink, fingerprint) DO UPDATE SET ticket_key = excluded.ticket_key, \
             ticket_url = excluded.ticket_url, last_event_id = excluded.last_event_id, \
             pending_event_id = excluded.pending_event_id, rendered = excluded.rendered, \
             updated_at = excluded.updated_at",
        )
        .bind(sink)
        .bind(fingerprint)
        .bind(record.key.clone())
        .bind(record.url.clone())
        .bind(record.last_event_id.clone())
        .bind(record.pending_event_id.clone())
        .bind(rendered)
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every mapped ticket of a sink: `(fingerprint, key, url)`.
    pub async fn tickets_of(&self, sink: &str) -> Result<Vec<(String, Option<String>, Option<String>)>, StoreError> {
        let rows =
            sqlx::query("SELECT fingerprint, ticket_key, ticket_url FROM tickets WHERE sink = $1 ORDER BY fingerprint")
                .bind(sink)
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push((row.try_get("fingerprint")?, row.try_get("ticket_key")?, row.try_get("ticket_url")?));
        }
        Ok(out)
    }
}

/// The store as ticket sinks see it: the mapping, plus facts about nodes
/// from the current graph (built once per delivery round, on first use).
pub struct StoreTickets {
    store: Store,
    config: Arc<Config>,
    graph: OnceCell<Option<AccessGraph>>,
}

impl StoreTickets {
    /// Ticket state in `store`; node facts from the graph `config` describes.
    pub fn new(store: Store, config: Arc<Config>) -> StoreTickets {
        StoreTickets { store, config, graph: OnceCell::new() }
    }

    async fn graph(&self) -> Option<&AccessGraph> {
        self.graph
            .get_or_init(|| async {
                match crate::pipeline::load_graph(&self.config, &self.store, None).await {
                    Ok(graph) => Some(graph),
                    Err(error) => {
                        tracing::warn!(error = %error, "cannot build the graph for ticket text; tickets name ids only");
                        None
                    }
                }
            })
            .await
            .as_ref()
    }

    fn facts(&self, graph: &AccessGraph, ix: NodeIndex, depth: u8) -> NodeFacts {
        let node = graph.node(ix);
        let (owner, owner_reference) = match graph.owner(ix) {
            Owner::Known { node, .. } if depth < 2 => (Some(Box::new(self.facts(graph, *node, depth + 1))), None),
            Owner::Unknown { reference, .. } => (None, Some(reference.clone())),
            _ => (None, None),
        };
        let accounts = if node.kind == NodeKind::Person && depth < 3 {
            graph.accounts_of(ix).into_iter().map(|a| self.facts(graph, a, 3)).collect()
        } else {
            Vec::new()
        };
        NodeFacts {
            id: node.id.clone(),
            name: node.name.clone(),
            kind: node.kind.as_str().to_string(),
            source: node.source.clone(),
            source_kind: self.config.source(&node.source).map(|s| s.kind().to_string()),
            email: node.email.clone(),
            owner,
            owner_reference,
            accounts,
        }
    }
}

#[async_trait]
impl TicketStore for StoreTickets {
    async fn load(&self, sink: &str, fingerprint: &str) -> Result<Option<TicketRecord>, String> {
        self.store.ticket(sink, fingerprint).await.map_err(|e| e.to_string())
    }

    async fn save(&self, sink: &str, fingerprint: &str, record: &TicketRecord) -> Result<(), String> {
        self.store.save_ticket(sink, fingerprint, record).await.map_err(|e| e.to_string())
    }

    async fn describe(&self, node_id: &str) -> Option<NodeFacts> {
        let graph = self.graph().await?;
        let ix = graph.find(node_id)?;
        Some(self.facts(graph, ix, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdb::on_both_databases;
    use accessgraph_graph::Severity;

    on_both_databases!(mapping_round_trips_and_is_replaced);

    async fn mapping_round_trips_and_is_replaced(url: String) {
        let store = Store::open(&url).await.expect("open");
        assert_eq!(store.ticket("gh", "fp1").await.expect("load"), None);
        let finding =
            Finding::new("secret.stale", Severity::High, "s:agent:a", "s:api_key:k", "t", "d", "r", vec![], Utc::now());
        let mut record = TicketRecord { pending_event_id: Some("4".into()), ..TicketRecord::default() };
        store.save_ticket("gh", "fp1", &record).await.expect("intent");
        record.key = Some("17".into());
        record.url = Some("https://github.com/acme/secops/issues/17".into());
        record.last_event_id = Some("4".into());
        record.pending_event_id = None;
        record.rendered = Some(finding);
        store.save_ticket("gh", "fp1", &record).await.expect("replace");
        assert_eq!(store.ticket("gh", "fp1").await.expect("load"), Some(record));
        assert_eq!(store.ticket("jira", "fp1").await.expect("other sink"), None);
        let listed = store.tickets_of("gh").await.expect("list");
        assert_eq!(
            listed,
            [("fp1".to_string(), Some("17".to_string()), Some("https://github.com/acme/secops/issues/17".to_string()))]
        );
    }
}
