//! What a ticket sink may know besides the event: the local mapping
//! fingerprint → ticket, and facts about the nodes a finding names.
//!
//! Connectors know no store, so the daemon hands each sink a
//! [`TicketStore`]. The mapping only saves calls and remembers what the
//! ticket last said: the fingerprint label on the remote ticket stays the
//! source of truth, so a lost or stale mapping never files a duplicate.

use accessgraph_graph::Finding;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What the local mapping remembers about one ticket of one sink.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TicketRecord {
    /// The ticket's key in its system (`17` for a GitHub issue, `SEC-42`
    /// in Jira); `None` while the first event is still being filed.
    pub key: Option<String>,
    /// Link to the ticket, for logs and reports.
    pub url: Option<String>,
    /// The last event whose remote calls all succeeded.
    pub last_event_id: Option<String>,
    /// An event whose remote calls started but were not all confirmed: a
    /// redelivery of it checks the ticket before commenting again.
    pub pending_event_id: Option<String>,
    /// The finding as the ticket last described it, so an update can say
    /// what changed.
    pub rendered: Option<Finding>,
}

/// A node as a ticket describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeFacts {
    /// Node id (CONTRACT §3).
    pub id: String,
    /// Human name (login, email, display name).
    pub name: String,
    /// Node kind (`human`, `agent`, `credential`, …).
    pub kind: String,
    /// Source name (empty for people).
    pub source: String,
    /// Kind of the source (`github`, `aws-iam`, …), when known.
    pub source_kind: Option<String>,
    /// Email, for people and human accounts.
    pub email: Option<String>,
    /// Resolved owner of a non-human identity or credential.
    pub owner: Option<Box<NodeFacts>>,
    /// An owner named by the source or catalog that no source knows.
    pub owner_reference: Option<String>,
    /// For a person: their accounts in every source.
    pub accounts: Vec<NodeFacts>,
}

/// The local side of ticket sinks.
///
/// Errors are plain messages: the daemon's store errors carry no secrets.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// The mapping of `fingerprint` in `sink`, if any.
    async fn load(&self, sink: &str, fingerprint: &str) -> Result<Option<TicketRecord>, String>;
    /// Records (replaces) the mapping of `fingerprint` in `sink`.
    async fn save(&self, sink: &str, fingerprint: &str, record: &TicketRecord) -> Result<(), String>;
    /// Facts about a node, for the ticket text and the assignee. `None`
    /// when the node is unknown (the ticket then shows its id only).
    async fn describe(&self, node_id: &str) -> Option<NodeFacts>;
}

/// An in-memory [`TicketStore`]: for tests, and for sinks built without a
/// store (the fingerprint label still prevents duplicates).
#[derive(Debug, Default)]
pub struct MemoryTickets {
    records: Mutex<BTreeMap<(String, String), TicketRecord>>,
    nodes: Mutex<BTreeMap<String, NodeFacts>>,
}

impl MemoryTickets {
    /// An empty store.
    pub fn new() -> MemoryTickets {
        MemoryTickets::default()
    }

    /// Adds facts about a node.
    pub fn add_node(&self, facts: NodeFacts) {
        lock(&self.nodes).insert(facts.id.clone(), facts);
    }

    /// Forgets every mapping (a lost local database).
    pub fn clear(&self) {
        lock(&self.records).clear();
    }

    /// The mapping, synchronously (tests).
    pub fn get(&self, sink: &str, fingerprint: &str) -> Option<TicketRecord> {
        lock(&self.records).get(&(sink.to_string(), fingerprint.to_string())).cloned()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl TicketStore for MemoryTickets {
    async fn load(&self, sink: &str, fingerprint: &str) -> Result<Option<TicketRecord>, String> {
        Ok(self.get(sink, fingerprint))
    }

    async fn save(&self, sink: &str, fingerprint: &str, record: &TicketRecord) -> Result<(), String> {
        lock(&self.records).insert((sink.to_string(), fingerprint.to_string()), record.clone());
        Ok(())
    }

    async fn describe(&self, node_id: &str) -> Option<NodeFacts> {
        lock(&self.nodes).get(node_id).cloned()
    }
}

/// What every sink is built with besides its own config.
#[derive(Clone)]
pub struct SinkContext {
    /// The ticket mapping and node facts.
    pub tickets: Arc<dyn TicketStore>,
    /// Where tickets link back to when the sink sets no `report_url`: the
    /// daemon's HTTP API (`[server] listen`).
    pub report_url: Option<String>,
}

impl SinkContext {
    /// A context with an in-memory mapping and no link back.
    pub fn detached() -> SinkContext {
        SinkContext { tickets: Arc::new(MemoryTickets::new()), report_url: None }
    }
}

impl std::fmt::Debug for SinkContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkContext").field("report_url", &self.report_url).finish_non_exhaustive()
    }
}
