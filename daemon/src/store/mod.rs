//! The store: temporal nodes and edges, sync runs, analyses, findings and the
//! outbox, on SQLite (embedded default, WAL) or PostgreSQL through one code
//! path (`sqlx::Any`, `$N` placeholders, times as epoch microseconds).

mod findings;
mod http_cache;
pub(crate) mod keys;
mod lease;
mod neighbourhood;
mod outbox;
#[cfg(test)]
mod slice_tests;
mod sync;
#[cfg(test)]
mod tests;
mod tickets;
mod write;

pub use findings::{Changed, Reconciled, StateChange};
pub use http_cache::StoreResponseCache;
pub use lease::{Lease, lease_key};
pub use neighbourhood::{Endpoint, HumanKey, StoredEdge};
pub use outbox::{OutboxClaim, OutboxRow};
pub use sync::{SyncRun, SyncStats};
pub use tickets::StoreTickets;

use accessgraph_graph::{Edge, Node};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::str::FromStr;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("store: {0}")]
    Database(#[from] sqlx::Error),
    /// Schema migration failed.
    #[error("store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row does not decode (the store was written by something else).
    #[error("store row is corrupt: {0}")]
    Corrupt(String),
    /// The request contradicts what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The URL names no supported database.
    #[error("unsupported store url `{0}` (use sqlite://PATH or postgres://…)")]
    Url(String),
}

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// Shared PostgreSQL.
    Postgres,
}

/// Bytes per page of a new SQLite store (SQLite's default is 4,096). A
/// sync of millions of rows spends most of SQLite's time splitting B-tree
/// pages; larger pages split a quarter as often. Measured with SQLite on
/// this machine, 1M edge rows in one transaction: 9.3 s with 4 KiB pages,
/// 7.4 s with 16 KiB, 7.1 s with 64 KiB (which also makes every indexed
/// look-up read 64 KiB). Stores created before keep their page size.
const SQLITE_PAGE_SIZE: u32 = 16_384;

/// The advisory lock name of the stamp order ([`Store::stamp_shared`]).
const STAMP_ORDER: &str = "stamp order";

/// The in-process half of a [`StampGuard`].
enum StampLocal<'a> {
    Shared(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'a, ()>),
    Exclusive(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'a, ()>),
}

/// Holds a place in the stamp order until dropped: the in-process lock
/// and, on PostgreSQL, the session that holds the advisory lock (dropping
/// it closes the connection, which releases the lock).
pub struct StampGuard<'a> {
    _session: Option<sqlx::AnyConnection>,
    _local: StampLocal<'a>,
}

/// A handle on the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite upgrades a reading transaction to a writing one by failing
    /// with SQLITE_BUSY rather than waiting; write transactions of this
    /// process take turns here instead. PostgreSQL needs no such guard.
    write_turn: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Orders the instants syncs stamp on their rows against the instants
    /// analyses run at (see [`Store::stamp_shared`]).
    stamp_order: std::sync::Arc<tokio::sync::RwLock<()>>,
    /// Checkpoints left running by bulk writes ([`write::BulkConnection`]).
    background: write::Background,
}

/// The store's digests (row bodies, findings): hex of the first 16 bytes of
/// a SHA-256.
pub(crate) fn short_hex(digest: sha2::Sha256) -> [u8; 32] {
    use sha2::Digest;
    let mut out = [0u8; 32];
    // 16 bytes always fit 32 hex digits.
    let _ = hex::encode_to_slice(&digest.finalize()[..16], &mut out);
    out
}

/// Epoch microseconds of an instant.
pub fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// The instant of epoch microseconds.
pub fn from_micros(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros).single().unwrap_or_default()
}

impl Store {
    /// Opens (creating an SQLite file when missing) and migrates the store.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let with_mode = if rest.contains("mode=") || rest.contains(":memory:") {
                url.to_string()
            } else if rest.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, with_mode)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let options = sqlx::any::AnyConnectOptions::from_str(&url)?;
        let pool_options = match backend {
            // One writer at a time is what SQLite allows anyway; a small pool
            // keeps readers concurrent under WAL.
            Backend::Sqlite => AnyPoolOptions::new().max_connections(4).after_connect(|conn, _| {
                Box::pin(async move {
                    // Takes effect only while the file is new (the WAL
                    // header fixes it); see `SQLITE_PAGE_SIZE`.
                    sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA page_size = {SQLITE_PAGE_SIZE}")))
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 30000").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                    // A sync of millions of rows updates five B-trees; 64 MiB
                    // of page cache (default 2 MiB) keeps their hot pages in
                    // memory, and sorts / temporary indexes stay off disk.
                    sqlx::query("PRAGMA cache_size = -65536").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut *conn).await?;
                    Ok(())
                })
            }),
            Backend::Postgres => AnyPoolOptions::new().max_connections(8),
        };
        let pool = pool_options.connect_with(options).await?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let store = Store {
            pool,
            backend,
            write_turn: Default::default(),
            stamp_order: Default::default(),
            background: Default::default(),
        };
        store.backfill_node_keys().await?;
        Ok(store)
    }

    /// Fills the derived person-resolution keys (`keys.rs`) of node rows
    /// written before migration 0005, once.
    async fn backfill_node_keys(&self) -> Result<(), StoreError> {
        let pending =
            sqlx::query("SELECT value FROM store_meta WHERE key = 'node_keys'").fetch_optional(&self.pool).await?;
        let pending = match pending {
            Some(row) => row.try_get::<String, _>("value")? == "pending",
            None => false,
        };
        if !pending {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query("SELECT source, id, valid_from, body FROM nodes WHERE kind = 'human'")
            .fetch_all(&mut *tx)
            .await?;
        for row in rows {
            let body: String = row.try_get("body")?;
            let node: Node = decode_json(&body)?;
            let keys = keys::node_keys(&node);
            sqlx::query(
                "UPDATE nodes SET email_key = $1, account_key = $2, user_name_key = $3, external_id_key = $4 \
                 WHERE source = $5 AND id = $6 AND valid_from = $7",
            )
            .bind(keys.email)
            .bind(keys.account)
            .bind(keys.user_name)
            .bind(keys.external_id)
            .bind(row.try_get::<String, _>("source")?)
            .bind(row.try_get::<String, _>("id")?)
            .bind(row.try_get::<i64, _>("valid_from")?)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE store_meta SET value = 'done' WHERE key = 'node_keys'").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The column that orders a source's edges by insertion (see migration 0005).
    pub(crate) fn edge_seq_column(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "rowid",
            Backend::Postgres => "seq",
        }
    }

    /// Waits for this process's turn to run a write transaction (SQLite only).
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_turn.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Begins a transaction that will write. On SQLite it takes the write
    /// lock up front (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// first fails with "database is locked" when another connection writes
    /// in between, instead of waiting its turn.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Held (shared) by a sync from reading the instant it stamps on its
    /// rows until they are committed. An analysis takes it exclusively
    /// ([`Store::stamp_exclusive`]) to read its own instant and the current
    /// rows: every sync stamped at or before that instant has then landed,
    /// and every later one is stamped after it. Without this order, a sync
    /// stamped before an analysis but landing after it is, for the next
    /// analysis, part of the "previous snapshot" that never saw it, and the
    /// access it added is never reported as `drift.baseline`. Replicas on
    /// PostgreSQL share the order through an advisory lock (shared for
    /// syncs, exclusive for analyses) held on a connection of its own.
    pub async fn stamp_shared(&self) -> Result<StampGuard<'_>, StoreError> {
        let local = StampLocal::Shared(self.stamp_order.read().await);
        Ok(StampGuard { _session: self.stamp_session("pg_advisory_lock_shared").await?, _local: local })
    }

    /// Waits until no sync is between its stamp and its commit, and keeps
    /// new ones from stamping until dropped (see [`Store::stamp_shared`]).
    pub async fn stamp_exclusive(&self) -> Result<StampGuard<'_>, StoreError> {
        let local = StampLocal::Exclusive(self.stamp_order.write().await);
        Ok(StampGuard { _session: self.stamp_session("pg_advisory_lock").await?, _local: local })
    }

    /// On PostgreSQL, a connection out of the pool holding the stamp-order
    /// advisory lock with `function` (the server releases it when the
    /// connection closes, also when a replica dies). Taken after the
    /// in-process lock, so a process asks the server once at a time.
    async fn stamp_session(&self, function: &str) -> Result<Option<sqlx::AnyConnection>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut conn = self.pool.acquire().await?.detach();
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {function}($1)")))
            .bind(lease::lease_key(STAMP_ORDER))
            .execute(&mut conn)
            .await?;
        Ok(Some(conn))
    }

    /// The database kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for health checks.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Nodes and edges of the given sources valid at `at` (None: current).
    /// Edges come source by source in the order they were written, so that
    /// a graph built from them breaks path ties the same way every time (and
    /// the same way as a graph built from a neighbourhood, `neighbourhood.rs`).
    pub async fn load_rows(
        &self,
        sources: &[String],
        at: Option<DateTime<Utc>>,
    ) -> Result<(Vec<Node>, Vec<Edge>), StoreError> {
        let nodes = self.load_nodes(sources, at).await?;
        let mut edges = Vec::new();
        self.load_edges_into(sources, at, |chunk| edges.extend(chunk)).await?;
        Ok((nodes, edges))
    }

    /// The nodes of [`Store::load_rows`].
    pub async fn load_nodes(&self, sources: &[String], at: Option<DateTime<Utc>>) -> Result<Vec<Node>, StoreError> {
        let mut nodes = Vec::new();
        self.load_nodes_into(sources, at, |chunk| nodes.extend(chunk)).await?;
        Ok(nodes)
    }

    /// The nodes of [`Store::load_rows`], in its order, handed to `sink` a
    /// decoded chunk at a time (see [`Store::load_edges_into`]).
    pub async fn load_nodes_into(
        &self,
        sources: &[String],
        at: Option<DateTime<Utc>>,
        sink: impl FnMut(Vec<Node>),
    ) -> Result<(), StoreError> {
        self.load_into("nodes", sources, at, sink).await
    }

    /// The edges of [`Store::load_rows`], in its order, handed to `sink`
    /// a decoded chunk at a time: a graph built from them never holds every
    /// edge twice (at 2M edges, the decoded rows were as large as the graph).
    pub async fn load_edges_into(
        &self,
        sources: &[String],
        at: Option<DateTime<Utc>>,
        sink: impl FnMut(Vec<Edge>),
    ) -> Result<(), StoreError> {
        self.load_into("edges", sources, at, sink).await
    }

    /// The decoded bodies of `table`'s rows of each source valid at `at`
    /// (None: current), source by source; edges in the order they were written.
    async fn load_into<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        table: &str,
        sources: &[String],
        at: Option<DateTime<Utc>>,
        mut sink: impl FnMut(Vec<T>),
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            // One read transaction: every window sees the same snapshot.
            let mut tx = self.pool.begin().await?;
            for source in sources {
                let batches = sqlite_windows(&mut tx, None, table, source, at);
                decode_batches(batches, &mut sink).await?;
            }
            tx.rollback().await?;
            return Ok(());
        }
        let order = if table == "edges" { format!(" ORDER BY {}", self.edge_seq_column()) } else { String::new() };
        for source in sources {
            let rows = valid_rows("body", table, source, at, &order).fetch(&self.pool);
            decode_bodies(rows, &mut sink).await?;
        }
        Ok(())
    }

    /// How many (nodes, edges) [`Store::load_rows`] would give: a size to
    /// allocate once instead of growing by doubling (at 2M edges a
    /// doubling briefly held 200 MB more). Counted from the indexes.
    pub async fn count_rows(&self, sources: &[String], at: Option<DateTime<Utc>>) -> Result<(u64, u64), StoreError> {
        let mut counts = [0u64; 2];
        for (count, table) in counts.iter_mut().zip(["nodes", "edges"]) {
            for source in sources {
                let n: i64 =
                    valid_rows("COUNT(*) AS n", table, source, at, "").fetch_one(&self.pool).await?.try_get("n")?;
                *count += u64::try_from(n).unwrap_or(0);
            }
        }
        Ok((counts[0], counts[1]))
    }

    /// Records that an analysis ran at `at`.
    pub async fn record_analysis(&self, at: DateTime<Utc>, summary: &serde_json::Value) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO analyses (at, summary) VALUES ($1, $2)")
            .bind(to_micros(at))
            .bind(summary.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The latest analysis strictly before `before`: the "previous snapshot".
    pub async fn previous_analysis(&self, before: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query("SELECT MAX(at) AS at FROM analyses WHERE at < $1")
            .bind(to_micros(before))
            .fetch_one(&self.pool)
            .await?;
        let at: Option<i64> = row.try_get("at")?;
        Ok(at.map(from_micros))
    }

    /// Past analyses' summaries, oldest first (for trends).
    pub async fn analysis_history(&self, limit: i64) -> Result<Vec<(DateTime<Utc>, serde_json::Value)>, StoreError> {
        let rows = sqlx::query("SELECT at, summary FROM analyses ORDER BY at DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows.iter().rev() {
            let at: i64 = row.try_get("at")?;
            let summary: String = row.try_get("summary")?;
            out.push((from_micros(at), decode_json(&summary)?));
        }
        Ok(out)
    }
}

impl Backend {
    /// The `n`th (1-based) bind placeholder of a statement whose binds all
    /// appear in the text in the order they are bound, once each.
    ///
    /// SQLite gets anonymous `?`: while preparing, it resolves each numbered
    /// or named parameter (`?3`, `$3`) by a linear search of the ones before
    /// it, so a multi-row INSERT of thousands of `$n` spends seconds in the
    /// parser (measured: a 4,000-row, 24,000-bind INSERT took 1.2 s to
    /// prepare with `$n`, 6 ms with `?`). PostgreSQL needs `$n`.
    pub(crate) fn param(self, n: usize) -> String {
        match self {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// `first`, `first + 1`, … (`count` placeholders), comma-separated: an
    /// `IN (…)` list bound after `first - 1` other values.
    pub(crate) fn param_list(self, first: usize, count: usize) -> String {
        (first..first + count).map(|n| self.param(n)).collect::<Vec<_>>().join(", ")
    }

    /// How a bulk write's multi-row INSERT begins ([`write::BulkConnection`]).
    /// On SQLite, `OR ROLLBACK`: a constraint failure ends the whole
    /// transaction (which a bulk write abandons on any error anyway) instead
    /// of undoing one statement, so SQLite keeps no statement journal, a
    /// copy of every page each statement first touches (10 % of a first
    /// reconciliation's profile at 100k people).
    pub(crate) fn bulk_insert(self) -> &'static str {
        match self {
            Backend::Sqlite => "INSERT OR ROLLBACK INTO",
            Backend::Postgres => "INSERT INTO",
        }
    }

    /// The VALUES of a multi-row INSERT of `rows` rows of `width` columns,
    /// bound row by row: `(?, ?), (?, ?)` or `($1, $2), ($3, $4)`.
    pub(crate) fn values_clause(self, rows: usize, width: usize) -> String {
        let mut sql = String::with_capacity(rows * width * 5);
        for i in 0..rows {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&self.param_list(i * width + 1, width));
            sql.push(')');
        }
        sql
    }
}

/// The condition on a source's rows (`$1`) valid at `at` (`$2`; None:
/// current), and the number of the next free placeholder.
fn valid_clause(at: Option<DateTime<Utc>>) -> (&'static str, usize) {
    match at {
        None => ("source = $1 AND valid_to IS NULL", 2),
        Some(_) => ("source = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)", 3),
    }
}

/// `SELECT {select} FROM {table}` of one source's rows valid at `at` (None:
/// current), `tail` appended, with its values bound.
fn valid_rows<'a>(
    select: &str,
    table: &str,
    source: &'a str,
    at: Option<DateTime<Utc>>,
    tail: &str,
) -> sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments> {
    let (when, _) = valid_clause(at);
    let sql = format!("SELECT {select} FROM {table} WHERE {when}{tail}");
    let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(source);
    match at {
        None => query,
        Some(at) => query.bind(to_micros(at)),
    }
}

/// `query` with each of `values` bound in turn (the `IN (…)` lists of
/// look-ups by key or fingerprint).
pub(crate) fn bind_texts<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    values: &[&'q str],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    values.iter().fold(query, |query, value| query.bind(*value))
}

/// Rows per window of [`sqlite_windows`].
const WINDOW_ROWS: usize = DECODE_CHUNK;

/// One window of a source's rows: a JSON array of `element` per row, in
/// insertion (rowid) order.
pub(crate) struct Window {
    /// The JSON array.
    pub batch: String,
    /// How many rows it holds.
    pub rows: usize,
    /// Where it came from, for errors: table, source, and the rowid after
    /// which the window starts.
    pub origin: String,
}

/// A source's rows valid at `at` (None: current) of an SQLite table, in
/// insertion (rowid) order, [`WINDOW_ROWS`] at a time, each window one
/// JSON array built by SQLite: of `element` (an SQL expression over the
/// row), or of the stored bodies as they are when `element` is None
/// (joined, not parsed again: `json(body)` cost SQLite 1.4 s more over
/// 1.86M bodies; [`decode_window`] checks that it gets one item a row).
///
/// sqlx's SQLite driver runs each connection on its own thread and hands
/// rows to the caller one at a time through a 50-row channel: every row
/// costs a thread hand-off, and at 2M rows the hand-offs were most of a
/// read (29 % of the 1 % change's diff in `finish_task_switch` alone). A
/// window is one row. Reading the 1.86M current (key, hash, since) of the
/// bench's largest source: 2.9–3.8 s a row at a time, 1.3 s in windows.
/// Each window seeks `(source, valid_to)` past the last rowid seen, so the
/// read is linear; run it inside a transaction for one snapshot.
pub(crate) fn sqlite_windows<'c>(
    conn: &'c mut sqlx::AnyConnection,
    element: Option<&'c str>,
    table: &'c str,
    source: &'c str,
    at: Option<DateTime<Utc>>,
) -> futures_util::stream::BoxStream<'c, Result<Window, StoreError>> {
    let mut params = vec![WindowParam::Text(source)];
    params.extend(at.map(|at| WindowParam::Integer(to_micros(at))));
    json_windows(conn, window_sql(element, table, at), params, format!("{table} of source `{source}`"))
}

/// A value bound to a window's statement before the rowid it starts after.
pub(crate) enum WindowParam<'a> {
    Text(&'a str),
    Integer(i64),
}

/// The windows of a statement built by [`json_window_sql`] (see
/// [`sqlite_windows`]): `params` are bound first, then the rowid the window
/// starts after. `what` names the rows in errors.
pub(crate) fn json_windows<'c>(
    conn: &'c mut sqlx::AnyConnection,
    sql: String,
    params: Vec<WindowParam<'c>>,
    what: String,
) -> futures_util::stream::BoxStream<'c, Result<Window, StoreError>> {
    Box::pin(futures_util::stream::try_unfold((conn, Some(0i64)), move |(conn, after)| {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
        for param in &params {
            query = match param {
                WindowParam::Text(text) => query.bind(*text),
                WindowParam::Integer(value) => query.bind(*value),
            };
        }
        let origin = format!("{what} after rowid {}", after.unwrap_or_default());
        async move {
            let Some(after) = after else { return Ok(None) };
            let row = query.bind(after).fetch_one(&mut *conn).await?;
            let rows: i64 = row.try_get("n")?;
            if rows == 0 {
                return Ok(None);
            }
            let last: i64 = row.try_get("last")?;
            let rows = rows as usize;
            let window = Window { batch: row.try_get("batch")?, rows, origin };
            // A short window is the last one.
            let more = (rows == WINDOW_ROWS).then_some(last);
            Ok(Some((window, (conn, more))))
        }
    }))
}

/// Bodies decoded per blocking task.
const DECODE_CHUNK: usize = 8192;

/// Chunks decoded at once, at most: bounds the bodies held beside the rows.
const DECODE_AHEAD: usize = 4;

/// Decodes the `body` column of a stream of rows and hands the items to
/// `sink` a chunk at a time, in order. The JSON is decoded on the blocking
/// pool while the next rows are fetched: at 2M rows decoding is most of a
/// full load.
async fn decode_bodies<T: serde::de::DeserializeOwned + Send + 'static>(
    mut rows: futures_util::stream::BoxStream<'_, Result<AnyRow, sqlx::Error>>,
    mut sink: impl FnMut(Vec<T>),
) -> Result<(), StoreError> {
    use futures_util::TryStreamExt;
    let mut ahead = DecodeAhead::new();
    let mut bodies = Vec::with_capacity(DECODE_CHUNK);
    while let Some(row) = rows.try_next().await? {
        bodies.push(row.try_get::<String, _>("body")?);
        if bodies.len() == DECODE_CHUNK {
            let chunk = std::mem::replace(&mut bodies, Vec::with_capacity(DECODE_CHUNK));
            ahead.push(move || decode_all(&chunk), &mut sink).await?;
        }
    }
    ahead.push(move || decode_all(&bodies), &mut sink).await?;
    ahead.finish(&mut sink).await
}

fn decode_all<T: serde::de::DeserializeOwned>(bodies: &[String]) -> Result<Vec<T>, StoreError> {
    bodies.iter().map(|b| decode_json::<T>(b)).collect()
}

/// Decodes running on the blocking pool while the caller reads on; their
/// items reach the sink in order, with at most [`DECODE_AHEAD`] waiting.
struct DecodeAhead<T> {
    pending: std::collections::VecDeque<tokio::task::JoinHandle<Result<Vec<T>, StoreError>>>,
}

impl<T: Send + 'static> DecodeAhead<T> {
    fn new() -> DecodeAhead<T> {
        DecodeAhead { pending: std::collections::VecDeque::new() }
    }

    /// Starts `decode`; hands the oldest result to `sink` once too many wait.
    async fn push(
        &mut self,
        decode: impl FnOnce() -> Result<Vec<T>, StoreError> + Send + 'static,
        sink: &mut impl FnMut(Vec<T>),
    ) -> Result<(), StoreError> {
        self.pending.push_back(tokio::task::spawn_blocking(decode));
        if self.pending.len() > DECODE_AHEAD
            && let Some(first) = self.pending.pop_front()
        {
            sink(joined(first.await)?);
        }
        Ok(())
    }

    /// Hands every remaining result to `sink`, in order.
    async fn finish(self, sink: &mut impl FnMut(Vec<T>)) -> Result<(), StoreError> {
        for task in self.pending {
            sink(joined(task.await)?);
        }
        Ok(())
    }
}

/// The statement of one [`sqlite_windows`] window: binds the source, the
/// instant (when `at` is given) and the rowid to start after.
///
/// Current rows are found through `(source, valid_to)`, whose entries for
/// `valid_to IS NULL` are in rowid order. Rows valid at a past instant have
/// no index in rowid order (through `(source, valid_to)` each window would
/// read and sort every row of the source), so those windows walk the table
/// itself from the last rowid: one pass over the table per source.
fn window_sql(element: Option<&str>, table: &str, at: Option<DateTime<Utc>>) -> String {
    let (when, next) = valid_clause(at);
    let indexed = if at.is_some() { " NOT INDEXED" } else { "" };
    json_window_sql(element, &format!("{table}{indexed} WHERE {when}"), next)
}

/// One window over `rows` (`TABLE WHERE …`; a rowid table) past the rowid
/// bound to `$next`, in rowid order: a JSON array of `element` per row, or
/// of the rows' `body` as stored when `element` is None.
pub(crate) fn json_window_sql(element: Option<&str>, rows: &str, next: usize) -> String {
    let batch = match element {
        Some(element) => format!("json_group_array({element} ORDER BY rid)"),
        None => "'[' || group_concat(body, ',' ORDER BY rid) || ']'".to_string(),
    };
    format!(
        "SELECT {batch} AS batch, MAX(rid) AS last, COUNT(*) AS n FROM \
         (SELECT rowid AS rid, * FROM {rows} AND rowid > ${next} ORDER BY rowid LIMIT {WINDOW_ROWS})"
    )
}

/// The items of a window; an error names where it came from. A body that
/// is not one JSON value (say `{…},{…}`) gives another count of items.
pub(crate) fn decode_window<'w, T: serde::Deserialize<'w>>(window: &'w Window) -> Result<Vec<T>, StoreError> {
    let items: Vec<T> =
        serde_json::from_str(&window.batch).map_err(|e| StoreError::Corrupt(format!("{}: {e}", window.origin)))?;
    if items.len() != window.rows {
        return Err(StoreError::Corrupt(format!(
            "{}: {} rows read as {} items (a body is not one JSON value)",
            window.origin,
            window.rows,
            items.len()
        )));
    }
    Ok(items)
}

/// Decodes windows of bodies ([`sqlite_windows`]) on the blocking pool while
/// the next windows are read, and hands the items to `sink` a window at a
/// time, in order (as [`decode_bodies`] does with rows).
async fn decode_batches<T: serde::de::DeserializeOwned + Send + 'static>(
    mut windows: futures_util::stream::BoxStream<'_, Result<Window, StoreError>>,
    mut sink: impl FnMut(Vec<T>),
) -> Result<(), StoreError> {
    use futures_util::TryStreamExt;
    let mut ahead = DecodeAhead::new();
    while let Some(window) = windows.try_next().await? {
        ahead.push(move || decode_window::<T>(&window), &mut sink).await?;
    }
    ahead.finish(&mut sink).await
}

/// The result of a blocking decode; its panic goes on where it was joined.
fn joined<T>(decoded: Result<Result<T, StoreError>, tokio::task::JoinError>) -> Result<T, StoreError> {
    match decoded {
        Ok(items) => items,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(StoreError::Corrupt(format!("decoding stopped: {error}"))),
    }
}

pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn opt_time(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let value: Option<i64> = row.try_get(column)?;
    Ok(value.map(from_micros))
}
