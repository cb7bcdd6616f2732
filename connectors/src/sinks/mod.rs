//! Ticket sinks: where finding state changes go (CONTRACT §7). One folder or
//! file per sink plus one line in [`build`].

mod context;
mod github_issues;
mod jira;
mod jsonl;
mod lifecycle;
pub mod ticket;
mod webhook;

#[cfg(test)]
mod tests;

pub use context::{MemoryTickets, NodeFacts, SinkContext, TicketRecord, TicketStore};
pub use github_issues::{GithubIssuesSink, github_client_options};
pub use jira::{JiraSink, jira_client_options};
pub use jsonl::JsonlSink;
pub use webhook::{WebhookSink, signature, verify as verify_signature, webhook_client_options};

use accessgraph_config::{SinkConfig, SinkSettings};
use accessgraph_graph::Finding;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A finding's state change, as every sink receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// First seen: file a ticket.
    Opened,
    /// Evidence or severity changed: comment on the ticket.
    Updated,
    /// Gone: close the ticket with a comment.
    Resolved,
    /// Came back: reopen the ticket.
    Reopened,
}

impl EventKind {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Updated => "updated",
            EventKind::Resolved => "resolved",
            EventKind::Reopened => "reopened",
        }
    }
}

/// The event object of CONTRACT §7.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TicketEvent {
    /// What happened.
    pub event: EventKind,
    /// Unique id of this event (the outbox row), so consumers can drop replays.
    pub event_id: String,
    /// The finding's fingerprint: the ticket's key.
    pub fingerprint: String,
    /// Rule id.
    pub rule: String,
    /// Severity.
    pub severity: accessgraph_graph::Severity,
    /// Subject node id.
    pub subject: String,
    /// Object node id.
    pub object: String,
    /// Finding title.
    pub title: String,
    /// When the change was observed.
    pub at: DateTime<Utc>,
    /// The finding as CONTRACT §6 prints it.
    pub finding: Finding,
}

impl TicketEvent {
    /// The event for a finding's change.
    pub fn new(event: EventKind, event_id: String, finding: &Finding, at: DateTime<Utc>) -> TicketEvent {
        TicketEvent {
            event,
            event_id,
            fingerprint: finding.fingerprint.clone(),
            rule: finding.rule.clone(),
            severity: finding.severity,
            subject: finding.subject.clone(),
            object: finding.object.clone(),
            title: finding.title.clone(),
            at,
            finding: finding.clone(),
        }
    }
}

/// Why a delivery failed. Every failure is retried later from the outbox.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Local I/O (file sinks).
    #[error("{path}: {message}")]
    Io {
        /// File.
        path: String,
        /// What failed.
        message: String,
    },
    /// The remote ticket system failed.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// This build cannot deliver to this kind of sink yet.
    #[error("sink kind `{0}` is not supported by this build")]
    Unsupported(String),
    /// The sink cannot be built from its config (e.g. its secret is unreadable).
    #[error("{0}")]
    Config(String),
    /// The ticket system answered, but not as needed (no such transition…).
    #[error("{0}")]
    Remote(String),
    /// The local ticket mapping failed.
    #[error("ticket mapping: {0}")]
    Ledger(String),
}

/// A ticket system.
#[async_trait]
pub trait Sink: Send + Sync {
    /// The configured sink name (outbox rows are addressed by it).
    fn name(&self) -> &str;

    /// Delivers one event. Must be idempotent by `(fingerprint, event_id)`:
    /// a retry after an unacknowledged success must not file twice.
    async fn deliver(&self, event: &TicketEvent) -> Result<(), SinkError>;

    /// Delivers `events` in order and stops at the first failure: how many
    /// were delivered, and the error that stopped it (None when all were).
    /// The same idempotence as [`Sink::deliver`] for every event. A sink
    /// that can take many events in one step (a file: one lock, one write,
    /// one flush) overrides it; the others deliver one at a time.
    async fn deliver_all(&self, events: &[&TicketEvent]) -> (usize, Option<SinkError>) {
        for (delivered, event) in events.iter().enumerate() {
            if let Err(error) = self.deliver(event).await {
                return (delivered, Some(error));
            }
        }
        (events.len(), None)
    }
}

/// Builds the sink a config entry describes, without a store: ticket sinks
/// keep their mapping in memory (the fingerprint label still prevents
/// duplicates).
pub fn build(config: &SinkConfig) -> Result<Box<dyn Sink>, SinkError> {
    build_with(config, &SinkContext::detached())
}

/// Builds the sink a config entry describes; ticket sinks keep their
/// mapping in `context` and link back to `report_url` (else the context's).
pub fn build_with(config: &SinkConfig, context: &SinkContext) -> Result<Box<dyn Sink>, SinkError> {
    let name = config.name.as_str();
    let report_url = config.report_url.clone().or_else(|| context.report_url.clone());
    match &config.settings {
        SinkSettings::Jsonl(settings) => Ok(Box::new(JsonlSink::new(name, settings.path.clone()))),
        SinkSettings::GithubIssues(s) => Ok(Box::new(GithubIssuesSink::new(name, s, report_url, context.clone())?)),
        SinkSettings::Jira(s) => Ok(Box::new(JiraSink::new(name, s, report_url, context.clone())?)),
        SinkSettings::Webhook(s) => Ok(Box::new(WebhookSink::new(name, s)?)),
    }
}
