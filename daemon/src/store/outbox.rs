//! The outbox: state changes waiting for delivery to each sink.
//!
//! Rows are delivered in order per (sink, finding): a row waits while an
//! earlier row of the same finding for the same sink is undelivered, so a
//! `resolved` never overtakes its `opened`. On PostgreSQL, several replicas
//! drain one outbox: [`Store::claim_outbox`] locks the rows it hands out
//! (`FOR UPDATE SKIP LOCKED`) inside a transaction that also records their
//! delivery, so each row goes to exactly one replica at a time.

use super::{Backend, Store, StoreError, decode_json, from_micros, to_micros};
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

/// Due, undelivered rows, not held by a mute, not behind an earlier
/// undelivered row of the same finding for the same sink.
const DUE: &str = "SELECT id, sink, payload, attempts FROM outbox WHERE delivered_at IS NULL \
     AND next_attempt_at <= $1 \
     AND NOT EXISTS (SELECT 1 FROM findings f WHERE f.fingerprint = outbox.fingerprint \
     AND f.status = 'muted' AND f.muted_until > $1) \
     AND NOT EXISTS (SELECT 1 FROM outbox earlier WHERE earlier.sink = outbox.sink \
     AND earlier.fingerprint = outbox.fingerprint AND earlier.delivered_at IS NULL AND earlier.id < outbox.id) \
     ORDER BY id LIMIT $2";

fn decode_rows(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<OutboxRow>, StoreError> {
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

/// Rows acknowledged per statement by [`OutboxClaim::delivered_all`].
const ACK_BATCH: usize = 500;

const DELIVERED: &str = "UPDATE outbox SET delivered_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2";
const FAILED: &str = "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE id = $3";

/// Rows handed to one deliverer. On PostgreSQL they stay locked (and other
/// replicas skip them) until [`OutboxClaim::finish`] commits their outcomes;
/// dropping the claim rolls back, so an interrupted delivery is retried.
/// On SQLite (one process) outcomes are written as they come.
#[derive(Debug)]
pub struct OutboxClaim {
    rows: Vec<OutboxRow>,
    tx: Option<sqlx::Transaction<'static, sqlx::Any>>,
    store: Store,
}

impl OutboxClaim {
    /// The claimed rows, oldest first.
    pub fn rows(&self) -> &[OutboxRow] {
        &self.rows
    }

    /// Acknowledges a delivery.
    pub async fn delivered(&mut self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.delivered_all(&[id], now).await
    }

    /// Acknowledges the delivery of several rows: one statement per 500
    /// instead of one each (a first analysis at 100k people queues 211k).
    pub async fn delivered_all(&mut self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        for chunk in ids.chunks(ACK_BATCH) {
            let sql = format!(
                "UPDATE outbox SET delivered_at = {}, attempts = attempts + 1, last_error = NULL WHERE id IN ({})",
                self.store.backend.param(1),
                self.store.backend.param_list(2, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to_micros(now));
            for id in chunk {
                query = query.bind(*id);
            }
            match self.tx.as_mut() {
                Some(tx) => query.execute(&mut **tx).await?,
                None => query.execute(&self.store.pool).await?,
            };
        }
        Ok(())
    }

    /// Records a failed attempt; the row is retried at `retry_at`.
    pub async fn failed(&mut self, id: i64, error: &str, retry_at: DateTime<Utc>) -> Result<(), StoreError> {
        let query = sqlx::query(FAILED).bind(error.to_string()).bind(to_micros(retry_at)).bind(id);
        match self.tx.as_mut() {
            Some(tx) => query.execute(&mut **tx).await?,
            None => query.execute(&self.store.pool).await?,
        };
        Ok(())
    }

    /// Commits the outcomes and releases the rows.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        if let Some(tx) = self.tx.take() {
            tx.commit().await?;
        }
        Ok(())
    }
}

impl Store {
    /// Pending deliveries due at `now`, oldest first. Events of a muted
    /// finding are held (not dropped) until the mute expires.
    pub async fn pending_outbox(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(DUE).bind(to_micros(now)).bind(limit).fetch_all(&self.pool).await?;
        decode_rows(rows)
    }

    /// Claims up to `limit` due rows for delivery (see [`OutboxClaim`]).
    pub async fn claim_outbox(&self, now: DateTime<Utc>, limit: i64) -> Result<OutboxClaim, StoreError> {
        match self.backend {
            Backend::Sqlite => {
                let rows = self.pending_outbox(now, limit).await?;
                Ok(OutboxClaim { rows, tx: None, store: self.clone() })
            }
            Backend::Postgres => {
                let mut tx = self.begin_write().await?;
                let sql = format!("{DUE} FOR UPDATE OF outbox SKIP LOCKED");
                let rows =
                    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to_micros(now)).bind(limit).fetch_all(&mut *tx).await?;
                Ok(OutboxClaim { rows: decode_rows(rows)?, tx: Some(tx), store: self.clone() })
            }
        }
    }

    /// Undelivered rows in total (for metrics and reports).
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL").fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }

    /// Acknowledges a delivery.
    pub async fn mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(DELIVERED).bind(to_micros(now)).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Records a failed attempt; the row is retried at `retry_at`.
    pub async fn mark_failed(&self, id: i64, error: &str, retry_at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(FAILED).bind(error).bind(to_micros(retry_at)).bind(id).execute(&self.pool).await?;
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

#[cfg(test)]
mod tests {
    /// Claims walk the undelivered rows in id order and stop at the limit,
    /// instead of sorting every undelivered row (migration 0007).
    #[tokio::test]
    async fn sqlite_claims_due_rows_in_index_order() {
        use crate::testdb::PlanValue;
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            super::Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("store");
        let plan = crate::testdb::sqlite_plan(&store, super::DUE, vec![PlanValue::Int(1), PlanValue::Int(100)]).await;
        assert!(plan.iter().any(|step| step.contains("outbox_due")), "{plan:?}");
        assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "{plan:?}");
    }
}
