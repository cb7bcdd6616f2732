//! The ticket lifecycle, once for every ticket system: which remote calls
//! an event makes, and how a redelivery avoids making them twice.
//!
//! Per fingerprint and sink: `opened` files a ticket, `updated` comments
//! with what changed, `resolved` comments and closes, `reopened` reopens
//! and comments. Before filing, the sink always searches for a ticket
//! carrying the fingerprint label (the idempotency key), so a lost mapping
//! or a crash between "created" and "outbox acknowledged" never files a
//! duplicate. Comments carry an event marker; a redelivery of an event that
//! started but was not confirmed looks for it before commenting again.

use super::context::SinkContext;
use super::ticket::{self, Doc, Facts};
use super::{EventKind, SinkError, TicketEvent};
use crate::http::HttpError;
use async_trait::async_trait;

/// A ticket as the remote system reports it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RemoteTicket {
    /// Issue number or key.
    pub key: String,
    /// Link for people.
    pub url: Option<String>,
    /// Whether it is open; `None` when not known without asking.
    pub open: Option<bool>,
}

/// A ticket to file.
pub(crate) struct NewTicket<'a> {
    pub title: String,
    pub body: Doc,
    pub label: String,
    pub facts: &'a Facts,
}

/// The few operations the lifecycle needs from a ticket system.
#[async_trait]
pub(crate) trait Tracker: Send + Sync {
    /// The ticket carrying `label`, if any (open ones preferred).
    async fn find(&self, label: &str) -> Result<Option<RemoteTicket>, SinkError>;
    /// Files a ticket.
    async fn create(&self, ticket: &NewTicket<'_>) -> Result<RemoteTicket, SinkError>;
    /// Replaces the title and description (after a change).
    async fn refresh(&self, key: &str, title: &str, body: &Doc) -> Result<(), SinkError>;
    /// Adds a comment.
    async fn comment(&self, key: &str, body: &Doc) -> Result<(), SinkError>;
    /// Whether a comment holding `marker` exists.
    async fn has_comment(&self, key: &str, marker: &str) -> Result<bool, SinkError>;
    /// Opens or closes the ticket; doing what is already done is a no-op.
    async fn set_open(&self, key: &str, open: bool) -> Result<(), SinkError>;
}

/// Whether an error says the ticket no longer exists (deleted, moved).
fn gone(error: &SinkError) -> bool {
    matches!(error, SinkError::Http(HttpError::NotFound { .. }) | SinkError::Http(HttpError::Other { status: 410, .. }))
}

fn ledger(message: String) -> SinkError {
    SinkError::Ledger(message)
}

/// Delivers one event through `tracker` for the sink named `sink`.
pub(crate) async fn deliver(
    tracker: &dyn Tracker,
    sink: &str,
    context: &SinkContext,
    report_url: Option<&str>,
    event: &TicketEvent,
) -> Result<(), SinkError> {
    let store = &context.tickets;
    let fingerprint = event.fingerprint.as_str();
    let mut record = store.load(sink, fingerprint).await.map_err(ledger)?.unwrap_or_default();
    if record.last_event_id.as_deref() == Some(event.event_id.as_str()) {
        tracing::debug!(sink, fingerprint, event_id = %event.event_id, "event already applied");
        return Ok(());
    }
    // Write ahead: a redelivery of this event after a crash or a failure
    // checks the ticket for its comment instead of commenting again.
    let replay = record.pending_event_id.as_deref() == Some(event.event_id.as_str());
    if !replay {
        record.pending_event_id = Some(event.event_id.clone());
        store.save(sink, fingerprint, &record).await.map_err(ledger)?;
    }
    let facts = Facts {
        subject: store.describe(&event.subject).await,
        object: store.describe(&event.object).await,
        report_url: report_url.map(str::to_string).or_else(|| context.report_url.clone()),
    };
    let step = Step { tracker, event, facts: &facts, replay, marker: ticket::event_marker(event) };
    let mut attempt = 0;
    let ticket = loop {
        attempt += 1;
        let (known, by_label) = match &record.key {
            Some(key) => (Some(RemoteTicket { key: key.clone(), url: record.url.clone(), open: None }), false),
            None => (tracker.find(&ticket::fingerprint_label(fingerprint)).await?, true),
        };
        match step.apply(known, by_label, record.rendered.as_ref()).await {
            Ok(ticket) => break ticket,
            // The mapped ticket was deleted or moved: forget it, and look
            // again by label (then file anew) once.
            Err(error) if gone(&error) && record.key.is_some() && attempt == 1 => {
                tracing::warn!(
                    sink,
                    fingerprint,
                    key = record.key.as_deref().unwrap_or(""),
                    "mapped ticket is gone; searching by label"
                );
                record.key = None;
                record.url = None;
                record.rendered = None;
            }
            Err(error) => return Err(error),
        }
    };
    if let Some(ticket) = ticket {
        record.key = Some(ticket.key);
        record.url = ticket.url.or(record.url.take());
    }
    record.rendered = Some(event.finding.clone());
    record.last_event_id = Some(event.event_id.clone());
    record.pending_event_id = None;
    store.save(sink, fingerprint, &record).await.map_err(ledger)?;
    Ok(())
}

/// One event's remote calls.
struct Step<'a> {
    tracker: &'a dyn Tracker,
    event: &'a TicketEvent,
    facts: &'a Facts,
    replay: bool,
    marker: String,
}

impl Step<'_> {
    /// Applies the event to the ticket found (`known`, from the mapping or
    /// by label); returns the ticket that now stands for the finding.
    async fn apply(
        &self,
        known: Option<RemoteTicket>,
        by_label: bool,
        rendered: Option<&accessgraph_graph::Finding>,
    ) -> Result<Option<RemoteTicket>, SinkError> {
        let event = self.event;
        let finding = &event.finding;
        let Some(ticket) = known else {
            if event.event == EventKind::Resolved {
                // Nothing was filed here; nothing to close.
                return Ok(None);
            }
            let new = NewTicket {
                title: ticket::title(finding),
                body: ticket::description(finding, self.facts, &self.marker),
                label: ticket::fingerprint_label(&finding.fingerprint),
                facts: self.facts,
            };
            let created = self.tracker.create(&new).await?;
            tracing::info!(fingerprint = %finding.fingerprint, key = %created.key, "ticket filed");
            return Ok(Some(created));
        };
        let key = ticket.key.as_str();
        match event.event {
            EventKind::Opened => {
                // Filed before: a redelivery after a crash, or a ticket
                // left from a lost store. A closed one is reopened.
                if by_label && ticket.open == Some(false) {
                    self.tracker.set_open(key, true).await?;
                    self.comment(key, ticket::reopened_comment(finding, event.at, &self.marker)).await?;
                }
            }
            EventKind::Updated => {
                self.comment(key, ticket::change_comment(rendered, finding, event.at, &self.marker)).await?;
                let body = ticket::description(finding, self.facts, &ticket::event_marker(event));
                self.tracker.refresh(key, &ticket::title(finding), &body).await?;
            }
            // Found by label already in the wanted state: an earlier
            // attempt (whose mapping was lost) or a person did it.
            EventKind::Resolved if by_label && ticket.open == Some(false) => {}
            EventKind::Reopened if by_label && ticket.open == Some(true) => {}
            EventKind::Resolved => {
                self.comment(key, ticket::resolved_comment(finding, event.at, &self.marker)).await?;
                self.tracker.set_open(key, false).await?;
            }
            EventKind::Reopened => {
                self.tracker.set_open(key, true).await?;
                self.comment(key, ticket::reopened_comment(finding, event.at, &self.marker)).await?;
            }
        }
        Ok(Some(ticket))
    }

    /// Comments once per event: a replay first looks for the marker.
    async fn comment(&self, key: &str, body: Doc) -> Result<(), SinkError> {
        if self.replay && self.tracker.has_comment(key, &self.marker).await? {
            tracing::debug!(key, "comment already posted by an earlier attempt");
            return Ok(());
        }
        self.tracker.comment(key, &body).await
    }
}
