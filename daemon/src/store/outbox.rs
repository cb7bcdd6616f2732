//! The outbox: state changes waiting for delivery to each sink.

use super::{Store, StoreError, decode_json, from_micros, to_micros};
use accessgraph_connectors::sinks::TicketEvent;
use chrono::{DateTime, Utc};
use sqlx::Row;

/// One pending delivery.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Row id (also the event id sinks dedupe by).
    pub id: i64,
    /// Sink name.
    pub sink: String,
    /// The event.
    pub event: TicketEvent,
    /// Delivery attempts so far.
    pub attempts: i64,
}

impl Store {
    /// Pending deliveries due at `now`, oldest first. Events of a muted
    /// finding are held (not dropped) until the mute expires.
    pub async fn pending_outbox(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, sink, payload, attempts FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM findings f WHERE f.fingerprint = outbox.fingerprint \
             AND f.status = 'muted' AND f.muted_until > $1) \
             ORDER BY id LIMIT $2",
        )
        .bind(to_micros(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let payload: String = row.try_get("payload")?;
            let mut event: TicketEvent = decode_json(&payload)?;
            event.event_id = id.to_string();
            out.push(OutboxRow { id, sink: row.try_get("sink")?, event, attempts: row.try_get("attempts")? });
        }
        Ok(out)
    }

    /// Undelivered rows in total (for metrics and reports).
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL").fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }

    /// Acknowledges a delivery.
    pub async fn mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET delivered_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2")
            .bind(to_micros(now))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed attempt; the row is retried at `retry_at`.
    pub async fn mark_failed(&self, id: i64, error: &str, retry_at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE id = $3")
            .bind(error)
            .bind(to_micros(retry_at))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// When the next pending row is due (for the daemon's delivery loop).
    pub async fn next_outbox_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query("SELECT MIN(next_attempt_at) AS at FROM outbox WHERE delivered_at IS NULL")
            .fetch_one(&self.pool)
            .await?;
        let at: Option<i64> = row.try_get("at")?;
        Ok(at.map(from_micros))
    }
}
