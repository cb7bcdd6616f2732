//! Applying a source's sync: diff its fragment against the source's current
//! slice; new rows open, vanished or changed rows close, all in one
//! transaction with the sync run record. A failed sync writes only its record.

use super::{Store, StoreError, from_micros, opt_time, to_micros};
use accessgraph_graph::Fragment;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{HashMap, HashSet};

/// Rows a sync changed.
/// A failed sync stores `{}` (the column default): every count reads as 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncStats {
    /// Nodes in the fragment.
    pub nodes: u64,
    /// Edges in the fragment.
    pub edges: u64,
    /// Rows opened (new or changed).
    pub opened: u64,
    /// Rows closed (vanished or changed).
    pub closed: u64,
    /// Rows of slices the sync could not read, carried over unchanged
    /// (`Fragment::kept`; 0, and not written, for a complete sync).
    #[serde(skip_serializing_if = "is_zero")]
    pub kept: u64,
}

/// One recorded sync attempt.
#[derive(Clone, Debug, Serialize)]
pub struct SyncRun {
    /// Source name.
    pub source: String,
    /// Source kind.
    pub kind: String,
    /// `succeeded`, `partial` (some slices not read: their rows were kept;
    /// `error` says which and why) or `failed`.
    pub status: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Row counts.
    pub stats: SyncStats,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Rows per multi-row INSERT: well under both databases' bind limits.
const INSERT_BATCH: usize = 400;

fn hash(body: &str) -> String {
    hex::encode(&Sha256::digest(body.as_bytes())[..16])
}

struct Row_ {
    key: String,
    kind: &'static str,
    from_to: Option<(String, String)>,
    body: String,
    hash: String,
}

impl Store {
    /// Applies a successful sync of `source` as of `now`: complete, or
    /// partial when `fragment.kept` names slices it could not read (their
    /// rows carry over and the run is recorded as `partial`).
    pub async fn apply_sync(
        &self,
        kind: &str,
        fragment: &Fragment,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<SyncStats, StoreError> {
        let source = fragment.source.as_str();
        let mut node_rows = Vec::with_capacity(fragment.nodes.len());
        for node in &fragment.nodes {
            let body = serde_json::to_string(node).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            node_rows.push(Row_ {
                key: node.id.clone(),
                kind: node.kind.as_str(),
                from_to: None,
                hash: hash(&body),
                body,
            });
        }
        let mut edge_rows = Vec::with_capacity(fragment.edges.len());
        for edge in &fragment.edges {
            let body = serde_json::to_string(edge).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            edge_rows.push(Row_ {
                key: edge.key(),
                kind: edge.kind.as_str(),
                from_to: Some((edge.from.clone(), edge.to.clone())),
                hash: hash(&body),
                body,
            });
        }
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let latest = sqlx::query(
            "SELECT MAX(finished_at) AS at FROM sync_runs WHERE source = $1 AND status IN ('succeeded', 'partial')",
        )
        .bind(source)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(latest) = opt_time(&latest, "at")?
            && latest > now
        {
            return Err(StoreError::Conflict(format!(
                "source `{source}` already has a sync at {latest}, later than {now}; refusing to rewrite history"
            )));
        }
        let mut stats =
            SyncStats { nodes: node_rows.len() as u64, edges: edge_rows.len() as u64, ..SyncStats::default() };
        let (kept_nodes, kept_edges) = kept_rows(&mut tx, fragment).await?;
        stats.kept = (kept_nodes.len() + kept_edges.len()) as u64;
        for (table, key_column, rows, kept) in
            [("nodes", "id", &node_rows, &kept_nodes), ("edges", "edge_key", &edge_rows, &kept_edges)]
        {
            let (opened, closed) = apply_table(&mut tx, table, key_column, source, rows, kept, now).await?;
            stats.opened += opened;
            stats.closed += closed;
        }
        let stats_json = serde_json::to_string(&stats).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let error = fragment.kept_error();
        sqlx::query(
            "INSERT INTO sync_runs (source, kind, started_at, finished_at, status, stats, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(source)
        .bind(kind)
        .bind(to_micros(started_at))
        .bind(to_micros(now))
        .bind(if error.is_some() { "partial" } else { "succeeded" })
        .bind(stats_json)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(stats)
    }

    /// Records a failed sync. Nothing else changes: the source's rows stay as
    /// they were, so a failure never reads as "access removed".
    pub async fn record_failed_sync(
        &self,
        source: &str,
        kind: &str,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_runs (source, kind, started_at, finished_at, status, error) \
             VALUES ($1, $2, $3, $4, 'failed', $5)",
        )
        .bind(source)
        .bind(kind)
        .bind(to_micros(started_at))
        .bind(to_micros(now))
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest sync attempt of each source.
    pub async fn last_syncs(&self) -> Result<Vec<SyncRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, kind, status, started_at, finished_at, error, stats FROM sync_runs \
             WHERE id IN (SELECT MAX(id) FROM sync_runs GROUP BY source) ORDER BY source",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut runs = Vec::with_capacity(rows.len());
        for row in rows {
            let stats: String = row.try_get("stats")?;
            runs.push(SyncRun {
                source: row.try_get("source")?,
                kind: row.try_get("kind")?,
                status: row.try_get("status")?,
                started_at: from_micros(row.try_get("started_at")?),
                finished_at: from_micros(row.try_get("finished_at")?),
                error: row.try_get("error")?,
                stats: super::decode_json(&stats)?,
            });
        }
        Ok(runs)
    }

    /// Whether any sync of `source` (succeeded or failed) started at or after
    /// `at`: replicas use it so that one schedule tick is synced once.
    pub async fn sync_attempted_since(&self, source: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM sync_runs WHERE source = $1 AND started_at >= $2")
            .bind(source)
            .bind(to_micros(at))
            .fetch_one(&self.pool)
            .await?;
        let n: i64 = row.try_get("n")?;
        Ok(n > 0)
    }

    /// Of each source that has landed rows: its first sync that did
    /// (complete or partial), and its latest complete one (None while every
    /// sync was partial). A partial sync counts as a sync, not as fresh: an
    /// account left unread ages the source's `last_success_at`.
    pub async fn success_span(&self) -> Result<HashMap<String, (DateTime<Utc>, Option<DateTime<Utc>>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, MIN(finished_at) AS first, \
             MAX(CASE WHEN status = 'succeeded' THEN finished_at END) AS last FROM sync_runs \
             WHERE status IN ('succeeded', 'partial') GROUP BY source",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let first: i64 = row.try_get("first")?;
            let last: Option<i64> = row.try_get("last")?;
            out.insert(row.try_get("source")?, (from_micros(first), last.map(from_micros)));
        }
        Ok(out)
    }

    /// Whether a source has ever synced successfully (completely or partially).
    pub async fn has_synced(&self, source: &str) -> Result<bool, StoreError> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM sync_runs WHERE source = $1 AND status IN ('succeeded', 'partial')")
                .bind(source)
                .fetch_one(&self.pool)
                .await?;
        let n: i64 = row.try_get("n")?;
        Ok(n > 0)
    }
}

/// The current rows of `fragment.kept`'s slices that the fragment does not
/// report: (node ids, edge keys) to carry over instead of closing. See
/// [`accessgraph_graph::model::KeptSlice`] for the scope; empty (and no
/// query) for a complete sync.
async fn kept_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    fragment: &Fragment,
) -> Result<(HashSet<String>, HashSet<String>), StoreError> {
    let (mut nodes, mut edges) = (HashSet::new(), HashSet::new());
    if fragment.kept.is_empty() {
        return Ok((nodes, edges));
    }
    let covered = |id: &str| fragment.kept.iter().any(|slice| slice.covers(id));
    let reported_nodes: HashSet<&str> = fragment.nodes.iter().map(|n| n.id.as_str()).collect();
    let reported_edges: HashSet<String> = fragment.edges.iter().map(|e| e.key()).collect();
    let current = sqlx::query("SELECT edge_key, from_id, to_id FROM edges WHERE source = $1 AND valid_to IS NULL")
        .bind(fragment.source.as_str())
        .fetch_all(&mut **tx)
        .await?;
    let mut ends: HashSet<String> = HashSet::new();
    for row in current {
        let (key, from, to): (String, String, String) =
            (row.try_get("edge_key")?, row.try_get("from_id")?, row.try_get("to_id")?);
        if (covered(&from) || covered(&to)) && !reported_edges.contains(&key) {
            edges.insert(key);
            ends.insert(from);
            ends.insert(to);
        }
    }
    let current = sqlx::query("SELECT id FROM nodes WHERE source = $1 AND valid_to IS NULL")
        .bind(fragment.source.as_str())
        .fetch_all(&mut **tx)
        .await?;
    for row in current {
        let id: String = row.try_get("id")?;
        if (covered(&id) || ends.contains(&id)) && !reported_nodes.contains(id.as_str()) {
            nodes.insert(id);
        }
    }
    Ok((nodes, edges))
}

async fn apply_table(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    key_column: &str,
    source: &str,
    rows: &[Row_],
    kept: &HashSet<String>,
    now: DateTime<Utc>,
) -> Result<(u64, u64), StoreError> {
    let now_us = to_micros(now);
    let sql =
        format!("SELECT {key_column} AS k, body_hash, valid_from FROM {table} WHERE source = $1 AND valid_to IS NULL");
    let current_rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(source).fetch_all(&mut **tx).await?;
    let mut current: HashMap<String, (String, i64)> = HashMap::with_capacity(current_rows.len());
    for row in current_rows {
        current.insert(row.try_get("k")?, (row.try_get("body_hash")?, row.try_get("valid_from")?));
    }
    let mut wanted: HashMap<&str, &Row_> = HashMap::with_capacity(rows.len());
    for row in rows {
        if wanted.insert(row.key.as_str(), row).is_some() {
            return Err(StoreError::Conflict(format!("source `{source}` produced two {table} with key `{}`", row.key)));
        }
    }
    let mut closed = 0u64;
    let close_sql =
        format!("UPDATE {table} SET valid_to = $1 WHERE source = $2 AND {key_column} = $3 AND valid_to IS NULL");
    // A row opened at this very instant and changed again is replaced, not
    // closed: a zero-length interval would collide on (key, valid_from).
    let delete_sql = format!("DELETE FROM {table} WHERE source = $1 AND {key_column} = $2 AND valid_from = $3");
    let mut to_open: Vec<&Row_> = Vec::new();
    for (key, (current_hash, valid_from)) in &current {
        let keep = wanted.get(key.as_str()).is_some_and(|row| &row.hash == current_hash);
        if keep || kept.contains(key) {
            continue;
        }
        closed += 1;
        if *valid_from >= now_us {
            sqlx::query(sqlx::AssertSqlSafe(delete_sql.clone()))
                .bind(source)
                .bind(key.as_str())
                .bind(*valid_from)
                .execute(&mut **tx)
                .await?;
        } else {
            sqlx::query(sqlx::AssertSqlSafe(close_sql.clone()))
                .bind(now_us)
                .bind(source)
                .bind(key.as_str())
                .execute(&mut **tx)
                .await?;
        }
    }
    for row in rows {
        let unchanged = current.get(&row.key).is_some_and(|(hash, _)| hash == &row.hash);
        if !unchanged {
            to_open.push(row);
        }
    }
    for chunk in to_open.chunks(INSERT_BATCH) {
        let is_edge = chunk[0].from_to.is_some();
        let columns = if is_edge {
            "source, edge_key, from_id, to_id, kind, body, body_hash, valid_from"
        } else {
            "source, id, kind, body, body_hash, valid_from"
        };
        let width = if is_edge { 8 } else { 6 };
        let sql = format!("INSERT INTO {table} ({columns}) VALUES {}", super::values_clause(chunk.len(), width));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            query = query.bind(source.to_string()).bind(row.key.clone());
            if let Some((from, to)) = &row.from_to {
                query = query.bind(from.clone()).bind(to.clone());
            }
            query = query.bind(row.kind).bind(row.body.clone()).bind(row.hash.clone()).bind(now_us);
        }
        query.execute(&mut **tx).await?;
    }
    Ok((to_open.len() as u64, closed))
}
