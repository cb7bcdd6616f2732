//! Applying a source's sync: diff its fragment against the source's current
//! slice; new rows open, vanished or changed rows close, all in one
//! transaction with the sync run record. A failed sync writes only its record.

use super::write::{BulkConnection, Pipeline};
use super::{Store, StoreError, from_micros, opt_time, to_micros};
use accessgraph_graph::Fragment;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

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
        let _turn = self.write_turn().await;
        let mut conn = self.bulk_connection().await?;
        let mut tx = conn.begin().await?;
        let latest = sqlx::query(
            "SELECT finished_at AS at, digest FROM sync_runs WHERE source = $1 AND status IN ('succeeded', 'partial') \
             ORDER BY finished_at DESC, id DESC LIMIT 1",
        )
        .bind(source)
        .fetch_optional(&mut *tx)
        .await?;
        let latest_at = latest.as_ref().map(|row| opt_time(row, "at")).transpose()?.flatten();
        let latest_digest: Option<String> =
            latest.as_ref().map(|row| row.try_get::<Option<String>, _>("digest")).transpose()?.flatten();
        if let Some(latest) = latest_at
            && latest > now
        {
            return Err(StoreError::Conflict(format!(
                "source `{source}` already has a sync at {latest}, later than {now}; refusing to rewrite history"
            )));
        }
        let mut stats = SyncStats {
            nodes: fragment.nodes.len() as u64,
            edges: fragment.edges.len() as u64,
            ..SyncStats::default()
        };
        let nodes: Vec<Item<'_>> = fragment.nodes.iter().map(Item::Node).collect();
        let edges: Vec<Item<'_>> = fragment.edges.iter().map(Item::Edge).collect();
        let node_hashes = item_hashes(&nodes)?;
        let edge_hashes = item_hashes(&edges)?;
        // Only a complete sync vouches for every row of the source.
        let digest = fragment.kept.is_empty().then(|| fragment_digest(&nodes, &node_hashes, &edges, &edge_hashes));
        if digest.is_none() || digest != latest_digest {
            let (kept_nodes, kept_edges) = kept_rows(&mut tx, fragment).await?;
            stats.kept = (kept_nodes.len() + kept_edges.len()) as u64;
            for rows in [
                TableRows { table: Table::Nodes, items: &nodes, hashes: &node_hashes, kept: &kept_nodes },
                TableRows { table: Table::Edges, items: &edges, hashes: &edge_hashes, kept: &kept_edges },
            ] {
                let (opened, closed) = apply_table(&mut tx, self.backend, source, rows, now).await?;
                stats.opened += opened;
                stats.closed += closed;
            }
        }
        let stats_json = serde_json::to_string(&stats).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let error = fragment.kept_error();
        sqlx::query(
            "INSERT INTO sync_runs (source, kind, started_at, finished_at, status, stats, error, digest) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(source)
        .bind(kind)
        .bind(to_micros(started_at))
        .bind(to_micros(now))
        .bind(if error.is_some() { "partial" } else { "succeeded" })
        .bind(stats_json)
        .bind(error)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
        let committing = std::time::Instant::now();
        let committed = BulkConnection::commit(tx, self.backend).await;
        if committed.is_ok() {
            conn.checkpoint_in_background();
        }
        committed?;
        tracing::debug!(source, elapsed_ms = committing.elapsed().as_millis() as u64, "sync committed");
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

/// The two temporal tables a sync writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Nodes,
    Edges,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Nodes => "nodes",
            Table::Edges => "edges",
        }
    }

    fn key_column(self) -> &'static str {
        match self {
            Table::Nodes => "id",
            Table::Edges => "edge_key",
        }
    }

    /// Columns after `source` and `valid_from` (which every row of a sync shares).
    fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Nodes => {
                &["id", "kind", "body", "body_hash", "email_key", "account_key", "user_name_key", "external_id_key"]
            }
            Table::Edges => &["edge_key", "from_id", "to_id", "kind", "body", "body_hash"],
        }
    }
}

/// One node or edge of a fragment.
#[derive(Clone, Copy)]
enum Item<'a> {
    Node(&'a accessgraph_graph::Node),
    Edge(&'a accessgraph_graph::Edge),
}

impl Item<'_> {
    /// Writes the row key (`Edge::key`, the node id) into `buf`, reusing it.
    fn key_into(self, buf: &mut String) {
        match self {
            Item::Node(node) => {
                buf.clear();
                buf.push_str(&node.id);
            }
            Item::Edge(edge) => edge.write_key(buf),
        }
    }

    /// Writes the JSON body into `buf`, reusing it.
    fn body_into(self, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        buf.clear();
        match self {
            Item::Node(node) => serde_json::to_writer(&mut *buf, node),
            Item::Edge(edge) => serde_json::to_writer(&mut *buf, edge),
        }
        .map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// Each item's stored content hash, in order, hashed on every core (at
/// 2.2M rows this is most of an unchanged re-sync).
fn item_hashes(items: &[Item<'_>]) -> Result<Vec<[u8; 32]>, StoreError> {
    item_hashes_on(items, accessgraph_graph::parallel::worker_threads(items.len(), 50_000))
}

fn item_hashes_on(items: &[Item<'_>], threads: usize) -> Result<Vec<[u8; 32]>, StoreError> {
    use accessgraph_graph::parallel::{even_runs, map_runs};
    let runs = even_runs(items.len(), threads);
    let parts = map_runs(runs, |run| {
        let mut body = Vec::new();
        items[run]
            .iter()
            .map(|item| {
                item.body_into(&mut body)?;
                Ok(hash_hex(&body))
            })
            .collect::<Result<Vec<_>, StoreError>>()
    });
    let mut hashes = Vec::with_capacity(items.len());
    for part in parts {
        hashes.extend(part?);
    }
    Ok(hashes)
}

/// What a complete sync wrote, in one value: SHA-256 over every node's and
/// edge's (key, content hash) in fragment order. Equal digests mean equal
/// rows; a reordered but equal fragment only costs a full diff.
fn fragment_digest(
    nodes: &[Item<'_>],
    node_hashes: &[[u8; 32]],
    edges: &[Item<'_>],
    edge_hashes: &[[u8; 32]],
) -> String {
    let mut digest = Sha256::new();
    let mut key = String::new();
    for (tag, items, hashes) in [(b'n', nodes, node_hashes), (b'e', edges, edge_hashes)] {
        digest.update([tag]);
        for (item, hash) in items.iter().zip(hashes) {
            item.key_into(&mut key);
            digest.update(key.as_bytes());
            digest.update([0]);
            digest.update(hash);
        }
    }
    hex::encode(digest.finalize())
}

/// The stored content hash of a body ([`super::short_hex`]).
fn hash_hex(body: &[u8]) -> [u8; 32] {
    super::short_hex(Sha256::new_with_prefix(body))
}

/// A row the source currently has open.
struct Current {
    /// Its body hash ([`stored_hash`]).
    hash: [u8; 32],
    valid_from: i64,
    /// The fragment has this key (unchanged or changed).
    seen: bool,
    /// The fragment has this key with another body: close and reopen.
    changed: bool,
}

/// Rows per multi-row INSERT at most (fewer when the bind limit says so).
/// Small statements win: at the bind limit (4,095 edges, 32,760 binds) each
/// statement's arguments were megabytes that sqlx converted and SQLite copied
/// and freed at once, and the allocator's consolidation dominated the write
/// (measured at M, first write of 201k rows: 3.20 s at the bind limit, 2.29 s
/// at 512 rows, 1.75 s at 128, 1.44 s at 64, 1.58 s at 32).
const ROWS_PER_INSERT: usize = 64;

/// Rows waiting for one multi-row INSERT.
struct InsertBatch<'s> {
    backend: super::Backend,
    table: Table,
    source: &'s str,
    now_us: i64,
    /// Rows per statement: [`ROWS_PER_INSERT`], or fewer at the bind limit.
    capacity: usize,
    /// SQL of a full batch, built when first needed (the common case of a
    /// large sync, so the same statement is prepared once and reused).
    full_sql: Option<String>,
    values: Vec<Option<String>>,
    rows: usize,
    written: u64,
}

impl<'s> InsertBatch<'s> {
    fn new(backend: super::Backend, table: Table, source: &'s str, now_us: i64) -> InsertBatch<'s> {
        let limit = match backend {
            super::Backend::Sqlite => 32_766,
            super::Backend::Postgres => 65_535,
        };
        let capacity = (limit / row_width(table)).clamp(1, ROWS_PER_INSERT);
        InsertBatch {
            backend,
            table,
            source,
            now_us,
            capacity,
            full_sql: None,
            values: Vec::with_capacity(capacity * table.columns().len()),
            rows: 0,
            written: 0,
        }
    }

    fn push(&mut self, item: Item<'_>, key: String, body: String, hash: &[u8; 32]) {
        let hash = String::from_utf8_lossy(hash).into_owned();
        match item {
            Item::Node(node) => {
                let keys = super::keys::node_keys(node);
                self.values.extend([
                    Some(key),
                    Some(node.kind.as_str().to_string()),
                    Some(body),
                    Some(hash),
                    keys.email,
                    keys.account,
                    keys.user_name,
                    keys.external_id,
                ]);
            }
            Item::Edge(edge) => self.values.extend([
                Some(key),
                Some(edge.from.clone()),
                Some(edge.to.clone()),
                Some(edge.kind.as_str().to_string()),
                Some(body),
                Some(hash),
            ]),
        }
        self.rows += 1;
    }

    fn is_full(&self) -> bool {
        self.rows >= self.capacity
    }

    /// Sends the waiting rows as one statement, which runs while the caller
    /// goes on with the next rows.
    async fn flush(&mut self, pipeline: &mut Pipeline<'s, '_>) -> Result<(), StoreError> {
        if self.rows == 0 {
            return Ok(());
        }
        let sql = if self.rows == self.capacity {
            self.full_sql.get_or_insert_with(|| insert_sql(self.backend, self.table, self.capacity)).clone()
        } else {
            insert_sql(self.backend, self.table, self.rows)
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        let mut values = self.values.drain(..);
        for _ in 0..self.rows {
            query = query.bind(self.source).bind(self.now_us);
            for value in values.by_ref().take(self.table.columns().len()) {
                query = query.bind(value);
            }
        }
        drop(values);
        pipeline.send(query).await?;
        self.written += self.rows as u64;
        self.rows = 0;
        Ok(())
    }
}

/// Binds per row: `source`, `valid_from`, then the table's columns.
fn row_width(table: Table) -> usize {
    table.columns().len() + 2
}

/// `INSERT [OR ROLLBACK] INTO t (source, valid_from, …) VALUES (…), (…)`
/// ([`super::Backend::bulk_insert`]), `rows` rows.
fn insert_sql(backend: super::Backend, table: Table, rows: usize) -> String {
    format!(
        "{} {} (source, valid_from, {}) VALUES {}",
        backend.bulk_insert(),
        table.name(),
        table.columns().join(", "),
        backend.values_clause(rows, row_width(table))
    )
}

/// What a sync writes to one table.
struct TableRows<'a> {
    table: Table,
    /// The fragment's items, in order.
    items: &'a [Item<'a>],
    /// Their content hashes ([`item_hashes`]).
    hashes: &'a [[u8; 32]],
    /// Keys of rows that carry over (slices the sync could not read).
    kept: &'a HashSet<String>,
}

// Closing rows by key: `+valid_to` keeps the planner off `(source,
// valid_to)`, which SQLite (no statistics) preferred, scanning every current
// row of the source for each batch of keys (2.2M rows at 100k people); the
// primary key (source, key, valid_from) finds each row directly.

/// Deletes open rows opened at or after an instant (`$2`), by key.
fn delete_opened_sql(backend: super::Backend, table: Table, keys: usize) -> String {
    format!(
        "DELETE FROM {} WHERE source = {} AND +valid_to IS NULL AND valid_from >= {} AND {} IN ({})",
        table.name(),
        backend.param(1),
        backend.param(2),
        table.key_column(),
        backend.param_list(3, keys)
    )
}

/// Closes open rows at an instant (`$1`), by key.
fn close_sql(backend: super::Backend, table: Table, keys: usize) -> String {
    format!(
        "UPDATE {} SET valid_to = {} WHERE source = {} AND +valid_to IS NULL AND {} IN ({})",
        table.name(),
        backend.param(1),
        backend.param(2),
        table.key_column(),
        backend.param_list(3, keys)
    )
}

/// Keys per `IN (…)` list when closing rows.
const CLOSE_BATCH: usize = 500;

/// Diffs one table of a source against its current rows and writes the
/// difference: unchanged rows are only hashed and compared (never
/// rewritten), new rows are inserted as they are met, changed or vanished
/// rows are closed (or, when opened at this very instant, deleted: a
/// zero-length interval would collide on (key, valid_from)) and changed
/// rows reopened.
async fn apply_table<'t>(
    tx: &'t mut sqlx::Transaction<'_, sqlx::Any>,
    backend: super::Backend,
    source: &'t str,
    rows: TableRows<'_>,
    now: DateTime<Utc>,
) -> Result<(u64, u64), StoreError> {
    let TableRows { table, items, hashes, kept } = rows;
    let now_us = to_micros(now);
    let name = table.name();
    let mut current = current_rows(tx, backend, table, source, items.len()).await?;
    let duplicate = |key: &str| StoreError::Conflict(format!("source `{source}` produced two {name} with key `{key}`"));

    // A load that at least doubles the table builds its secondary indexes
    // once at the end instead of updating them row by row.
    let deferred = match backend {
        super::Backend::Sqlite
            if bulk_load(items.len().saturating_sub(current.len()), table_rows(tx, table).await?) =>
        {
            Some(DeferredIndexes::drop(tx, table).await?)
        }
        _ => None,
    };
    let mut batch = InsertBatch::new(backend, table, source, now_us);
    let started = std::time::Instant::now();
    let mut pipeline = Pipeline::new(tx);
    let mut key = String::new();
    let mut body = Vec::new();
    // New keys met so far, by a 64-bit hash of the key → first item; exact
    // comparison on a hash match (`new_exact` holds keys whose hash collided).
    let hasher = hashbrown::DefaultHashBuilder::default();
    let mut new_keys: RowMap<u64, usize> = RowMap::default();
    let mut new_exact: HashSet<String> = HashSet::new();
    let mut other_key = String::new();
    let mut changed: Vec<usize> = Vec::new();
    for (i, (item, hash)) in items.iter().zip(hashes).enumerate() {
        item.key_into(&mut key);
        if let Some(existing) = current.get_mut(key.as_str()) {
            if existing.seen {
                return Err(duplicate(&key));
            }
            existing.seen = true;
            if existing.hash != *hash {
                existing.changed = true;
                changed.push(i);
            }
            continue;
        }
        match new_keys.entry(hasher.hash_one(key.as_str())) {
            hashbrown::hash_map::Entry::Vacant(slot) => {
                slot.insert(i);
            }
            hashbrown::hash_map::Entry::Occupied(slot) => {
                items[*slot.get()].key_into(&mut other_key);
                if other_key == key || !new_exact.insert(key.clone()) {
                    return Err(duplicate(&key));
                }
            }
        }
        item.body_into(&mut body)?;
        let text = String::from_utf8(std::mem::take(&mut body)).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        batch.push(*item, key.clone(), text, hash);
        if batch.is_full() {
            batch.flush(&mut pipeline).await?;
        }
    }
    batch.flush(&mut pipeline).await?;
    let tx = pipeline.settle().await?;

    let mut delete_keys = Vec::new();
    let mut close_keys = Vec::new();
    for (key, row) in &current {
        if (row.seen && !row.changed) || kept.contains(key) {
            continue;
        }
        if row.valid_from >= now_us { delete_keys.push(key.as_str()) } else { close_keys.push(key.as_str()) }
    }
    let closed = (delete_keys.len() + close_keys.len()) as u64;
    for chunk in delete_keys.chunks(CLOSE_BATCH) {
        let sql = delete_opened_sql(backend, table, chunk.len());
        let query = super::bind_texts(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(source).bind(now_us), chunk);
        query.execute(&mut **tx).await?;
    }
    for chunk in close_keys.chunks(CLOSE_BATCH) {
        let sql = close_sql(backend, table, chunk.len());
        let query = super::bind_texts(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_us).bind(source), chunk);
        query.execute(&mut **tx).await?;
    }

    let mut pipeline = Pipeline::new(tx);
    for i in changed {
        let item = items[i];
        item.key_into(&mut key);
        item.body_into(&mut body)?;
        let text = String::from_utf8(std::mem::take(&mut body)).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        batch.push(item, key.clone(), text, &hashes[i]);
        if batch.is_full() {
            batch.flush(&mut pipeline).await?;
        }
    }
    batch.flush(&mut pipeline).await?;
    let tx = pipeline.settle().await?;
    tracing::debug!(
        table = name,
        opened = batch.written,
        closed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "rows written"
    );
    if let Some(deferred) = deferred {
        let started = std::time::Instant::now();
        deferred.rebuild(tx).await?;
        tracing::debug!(table = name, elapsed_ms = started.elapsed().as_millis() as u64, "indexes rebuilt");
    }
    Ok((batch.written, closed))
}

/// New rows from which a load may rebuild indexes instead of updating them.
const BULK_LOAD_MIN_ROWS: usize = 20_000;

/// Whether inserting about `new_rows` into a table of `table_rows` rows
/// should drop its secondary indexes and build them again afterwards.
/// Building an index sorts its entries once; updating it row by row seeks a
/// random leaf for each entry, splits pages and, once the page cache is
/// full of dirty pages, writes them to the WAL and reads them back (a
/// profile of the first write at 100k people: 18 % of samples in index
/// seeks, 15 % in page splits, 11 % in spilling the cache). First write at
/// 100k people, 16 KiB pages: 21.7–23.6 s with the indexes kept, 17.1–18.3 s
/// rebuilt (and about 130 MiB more at its peak, the sort). Rebuilding costs
/// in proportion to the whole table, so only a load that at least doubles
/// it pays off: a first sync, never a small change.
fn bulk_load(new_rows: usize, table_rows: i64) -> bool {
    new_rows >= BULK_LOAD_MIN_ROWS && new_rows as i64 >= table_rows
}

/// Rows in a table, near enough: the largest rowid (rows are appended and
/// seldom deleted), read from the end of the table's B-tree instead of
/// counting millions of rows. SQLite only.
async fn table_rows(tx: &mut sqlx::Transaction<'_, sqlx::Any>, table: Table) -> Result<i64, StoreError> {
    let sql = format!("SELECT COALESCE(MAX(rowid), 0) AS n FROM {}", table.name());
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&mut **tx).await?;
    Ok(row.try_get("n")?)
}

/// The secondary indexes of a table, dropped for a bulk load inside its
/// transaction and built again from their own `CREATE INDEX` text before it
/// commits: a failed load rolls back to the indexes as they were, and an
/// index a later migration adds is rebuilt without this code knowing it.
/// The primary key stays (it is the table's constraint, and closing rows
/// finds them through it). SQLite only: its readers keep their snapshot
/// while the writer's transaction runs (PostgreSQL would lock the table).
struct DeferredIndexes {
    create: Vec<String>,
}

impl DeferredIndexes {
    async fn drop(tx: &mut sqlx::Transaction<'_, sqlx::Any>, table: Table) -> Result<DeferredIndexes, StoreError> {
        let rows = sqlx::query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL ORDER BY name",
        )
        .bind(table.name())
        .fetch_all(&mut **tx)
        .await?;
        let mut create = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get("name")?;
            create.push(row.try_get("sql")?);
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX \"{}\"", name.replace('"', "\"\""))))
                .persistent(false)
                .execute(&mut **tx)
                .await?;
        }
        Ok(DeferredIndexes { create })
    }

    async fn rebuild(self, tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
        for sql in self.create {
            sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false).execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// The source's open rows of `table` by key, streamed into the map (at
/// 2.2M rows, holding every row first doubled the memory of the diff); on
/// SQLite a window of rows at a time ([`super::sqlite_windows`]).
async fn current_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: super::Backend,
    table: Table,
    source: &str,
    expected: usize,
) -> Result<RowMap<String, Current>, StoreError> {
    use futures_util::TryStreamExt;
    let key_column = table.key_column();
    let mut current: RowMap<String, Current> = RowMap::with_capacity_and_hasher(expected, Default::default());
    let open = |hash: &str, valid_from| Current { hash: stored_hash(hash), valid_from, seen: false, changed: false };
    if backend == super::Backend::Sqlite {
        let element = format!("json_array({key_column}, body_hash, valid_from)");
        let mut windows = super::sqlite_windows(tx, Some(&element), table.name(), source, None);
        while let Some(window) = windows.try_next().await? {
            let rows: Vec<CurrentRow<'_>> = super::decode_window(&window)?;
            current.extend(rows.into_iter().map(|CurrentRow(key, hash, valid_from)| (key, open(&hash, valid_from))));
        }
        return Ok(current);
    }
    let sql = format!(
        "SELECT {key_column} AS k, body_hash, valid_from FROM {} WHERE source = $1 AND valid_to IS NULL",
        table.name()
    );
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(source).fetch(&mut **tx);
    while let Some(row) = rows.try_next().await? {
        let hash: String = row.try_get("body_hash")?;
        current.insert(row.try_get("k")?, open(&hash, row.try_get("valid_from")?));
    }
    Ok(current)
}

/// Maps keyed by row keys, with a seeded hasher (foldhash's): keys come
/// from remote systems, and SipHash showed in a large diff's profile.
type RowMap<K, V> = hashbrown::HashMap<K, V>;

/// (key, body hash, valid from) of a current row in an SQLite window; the
/// hash (hex, never escaped) is read in place.
#[derive(Deserialize)]
struct CurrentRow<'a>(String, #[serde(borrow)] std::borrow::Cow<'a, str>, i64);

/// A stored body hash as the diff compares it. One of another length (not
/// written by this version) reads as all zeros, which no hash equals: its
/// row is rewritten rather than taken as unchanged.
fn stored_hash(hex: &str) -> [u8; 32] {
    hex.as_bytes().try_into().unwrap_or([0; 32])
}

#[cfg(test)]
mod unit_tests {
    use super::*;
    use accessgraph_graph::model::{Edge, EdgeKind};

    /// A stored hash this version did not write never equals a new one.
    #[test]
    fn a_stored_hash_of_another_length_reads_as_changed() {
        let body = b"{}";
        let written = hash_hex(body);
        assert_eq!(stored_hash(std::str::from_utf8(&written).expect("hex")), written);
        assert_ne!(stored_hash("abc"), written);
        assert_ne!(stored_hash(&"0".repeat(64)), written);
    }

    #[test]
    fn row_keys_are_the_models_keys() {
        let edges = [
            Edge::grant("a:user:x", "a:repo:y", ["write", "read"]),
            Edge::new("a:user:x", "a:group:g", EdgeKind::MemberOf),
            Edge::grant("a:user:x", "a:repo:y", ["admin"]),
        ];
        let mut buf = String::from("stale");
        for edge in &edges {
            Item::Edge(edge).key_into(&mut buf);
            assert_eq!(buf, edge.key());
        }
    }

    #[test]
    fn hashes_on_several_threads_equal_one_by_one() {
        let edges: Vec<accessgraph_graph::Edge> = (0..1000)
            .map(|i| accessgraph_graph::Edge::grant(format!("s:user:u{i}"), format!("s:repo:r{}", i % 7), ["read"]))
            .collect();
        let items: Vec<Item<'_>> = edges.iter().map(Item::Edge).collect();
        let mut body = Vec::new();
        let one_by_one: Vec<[u8; 32]> = items
            .iter()
            .map(|item| {
                item.body_into(&mut body).expect("serializes");
                hash_hex(&body)
            })
            .collect();
        for threads in [1, 2, 3, 16] {
            assert_eq!(item_hashes_on(&items, threads).expect("hashes"), one_by_one);
        }
    }

    /// Closing rows goes through the primary key on SQLite, not through
    /// `(source, valid_to)` (every current row of the source).
    #[tokio::test]
    async fn sqlite_closes_rows_through_the_primary_key() {
        use crate::testdb::PlanValue;
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            super::super::Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("store");
        for table in [Table::Nodes, Table::Edges] {
            for sql in [
                delete_opened_sql(super::super::Backend::Sqlite, table, CLOSE_BATCH),
                close_sql(super::super::Backend::Sqlite, table, CLOSE_BATCH),
            ] {
                let mut binds = vec![PlanValue::Int(1), PlanValue::Text("s".into())];
                binds.extend((0..CLOSE_BATCH).map(|i| PlanValue::Text(format!("k{i}"))));
                let plan = crate::testdb::sqlite_plan(&store, &sql, binds).await;
                let wanted = format!("sqlite_autoindex_{}_1", table.name());
                assert!(plan.iter().any(|step| step.contains(&wanted)), "{sql}: {plan:?}");
            }
        }
    }

    #[test]
    fn only_a_load_that_doubles_the_table_rebuilds_its_indexes() {
        assert!(bulk_load(2_000_000, 0));
        assert!(bulk_load(BULK_LOAD_MIN_ROWS, BULK_LOAD_MIN_ROWS as i64));
        assert!(!bulk_load(BULK_LOAD_MIN_ROWS - 1, 0), "a small first sync keeps its indexes");
        assert!(!bulk_load(20_000, 2_000_000), "a 1 % change keeps them");
    }

    /// A fragment of `edges` grants (one per user) over the bulk-load size.
    fn big_fragment(edges: usize) -> accessgraph_graph::Fragment {
        use accessgraph_graph::model::{Node, NodeKind};
        let mut fragment = accessgraph_graph::Fragment { source: "big".into(), ..Default::default() };
        fragment.nodes.push(Node::new("big:repo:r", NodeKind::Resource, "big", "r"));
        for i in 0..edges {
            fragment.nodes.push(Node::new(format!("big:user:u{i}"), NodeKind::Human, "big", format!("u{i}")));
            fragment.edges.push(Edge::grant(format!("big:user:u{i}"), "big:repo:r", ["read"]));
        }
        fragment
    }

    async fn sqlite_store(dir: &tempfile::TempDir) -> super::super::Store {
        super::super::Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("store")
    }

    /// Every index of the temporal tables as (name, CREATE text), and
    /// whether SQLite finds each index consistent with its table.
    async fn indexes(store: &super::super::Store) -> (Vec<(String, String)>, String) {
        let rows = sqlx::query(
            "SELECT name, COALESCE(sql, '') AS sql FROM sqlite_master WHERE type = 'index' \
             AND tbl_name IN ('nodes', 'edges') ORDER BY name",
        )
        .fetch_all(store.pool())
        .await
        .expect("indexes");
        let indexes =
            rows.iter().map(|row| (row.try_get("name").expect("name"), row.try_get("sql").expect("sql"))).collect();
        let check = sqlx::query("PRAGMA integrity_check").fetch_one(store.pool()).await.expect("integrity check");
        (indexes, check.try_get(0).expect("result"))
    }

    /// Where an index starts in the file: a rebuilt index starts elsewhere.
    async fn root_page(store: &super::super::Store, index: &str) -> i64 {
        let row = sqlx::query("SELECT rootpage FROM sqlite_master WHERE name = $1")
            .bind(index)
            .fetch_one(store.pool())
            .await
            .expect("root page");
        row.try_get("rootpage").expect("rootpage")
    }

    #[tokio::test]
    async fn a_bulk_load_builds_the_same_indexes_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        let (before, _) = indexes(&store).await;
        assert!(before.iter().any(|(name, _)| name == "edges_to"), "{before:?}");
        let pages = root_page(&store, "edges_to").await;
        let mut fragment = big_fragment(BULK_LOAD_MIN_ROWS + 10);
        let now = Utc::now();
        let stats = store.apply_sync("snapshot", &fragment, now, now).await.expect("bulk load");
        assert_eq!(stats.opened as usize, fragment.nodes.len() + fragment.edges.len());
        assert_eq!(indexes(&store).await, (before.clone(), "ok".to_string()));
        let rebuilt = root_page(&store, "edges_to").await;
        assert_ne!(rebuilt, pages, "the index was built anew");
        // A small change after it updates the rebuilt indexes in place.
        fragment.edges.truncate(fragment.edges.len() - 3);
        let later = now + chrono::Duration::seconds(1);
        let stats = store.apply_sync("snapshot", &fragment, later, later).await.expect("small change");
        assert_eq!((stats.opened, stats.closed), (0, 3));
        assert_eq!(indexes(&store).await, (before, "ok".to_string()));
        assert_eq!(root_page(&store, "edges_to").await, rebuilt, "a small change keeps the index");
        let (nodes, edges) = store.load_rows(&["big".to_string()], None).await.expect("load");
        assert_eq!(nodes.len(), fragment.nodes.len());
        assert_eq!(edges, fragment.edges, "edges load in the order they were written");
    }

    #[tokio::test]
    async fn a_failed_bulk_load_leaves_the_indexes_and_no_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        let before = indexes(&store).await;
        let pages = root_page(&store, "edges_to").await;
        let mut fragment = big_fragment(BULK_LOAD_MIN_ROWS + 10);
        // Met after the indexes were dropped: the transaction rolls back.
        let again = fragment.edges[0].clone();
        fragment.edges.push(again);
        let now = Utc::now();
        let failed = store.apply_sync("snapshot", &fragment, now, now).await;
        assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
        assert_eq!(indexes(&store).await, before);
        assert_eq!(root_page(&store, "edges_to").await, pages, "the dropped index came back as it was");
        let (nodes, edges) = store.load_rows(&["big".to_string()], None).await.expect("load");
        assert!(nodes.is_empty() && edges.is_empty());
        // The failure met statements in flight; the store writes on after it.
        fragment.edges.pop();
        let stats = store.apply_sync("snapshot", &fragment, now, now).await.expect("a sync after the failure");
        assert_eq!(stats.opened as usize, fragment.nodes.len() + fragment.edges.len());
        store.settle_background().await;
        assert_eq!(indexes(&store).await, before);
    }

    /// A new store takes the larger page; the WAL keeps it once written.
    #[tokio::test]
    async fn a_new_sqlite_store_has_larger_pages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        let row = sqlx::query("PRAGMA page_size").fetch_one(store.pool()).await.expect("page size");
        let size: i64 = row.try_get(0).expect("size");
        assert_eq!(size, i64::from(super::super::SQLITE_PAGE_SIZE));
        let journal = sqlx::query("PRAGMA journal_mode").fetch_one(store.pool()).await.expect("journal mode");
        assert_eq!(journal.try_get::<String, _>(0).expect("mode"), "wal");
    }

    #[test]
    fn insert_statements_bind_in_text_order() {
        assert_eq!(
            insert_sql(super::super::Backend::Postgres, Table::Edges, 2),
            "INSERT INTO edges (source, valid_from, edge_key, from_id, to_id, kind, body, body_hash) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8), ($9, $10, $11, $12, $13, $14, $15, $16)"
        );
        assert_eq!(
            insert_sql(super::super::Backend::Sqlite, Table::Edges, 2),
            "INSERT OR ROLLBACK INTO edges (source, valid_from, edge_key, from_id, to_id, kind, body, body_hash) VALUES \
             (?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?)"
        );
        assert_eq!(super::super::Backend::Postgres.param_list(3, 2), "$3, $4");
    }
}
