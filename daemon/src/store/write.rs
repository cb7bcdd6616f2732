//! Writing many rows in one transaction: statements pipelined against the
//! database, and SQLite's WAL checkpoint taken off the commit.

use super::{Backend, Store, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Row};

/// A statement's execution, handing the transaction back when it completes.
type InFlight<'t, 'c> = std::pin::Pin<
    Box<dyn Future<Output = (&'t mut sqlx::Transaction<'c, sqlx::Any>, Result<(), sqlx::Error>)> + Send + 't>,
>;

/// Statements of one transaction with at most one in flight: a statement is
/// sent to the database's worker and runs there while this thread builds the
/// next (serializing bodies, diffing keys), and is awaited before the next
/// one is sent. A first write at 100k people spent its wall time one side
/// waiting for the other; this puts both cores to work.
pub(crate) struct Pipeline<'t, 'c> {
    idle: Option<&'t mut sqlx::Transaction<'c, sqlx::Any>>,
    busy: Option<InFlight<'t, 'c>>,
}

impl<'t, 'c> Pipeline<'t, 'c> {
    pub(crate) fn new(tx: &'t mut sqlx::Transaction<'c, sqlx::Any>) -> Pipeline<'t, 'c> {
        Pipeline { idle: Some(tx), busy: None }
    }

    /// Waits for the statement in flight, then sends `query` and returns as
    /// soon as it reached the database (its error, if any, comes with the
    /// next call).
    pub(crate) async fn send(
        &mut self,
        query: sqlx::query::Query<'t, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<(), StoreError> {
        let tx = self.settle().await?;
        let mut running: InFlight<'t, 'c> = Box::pin(async move {
            let result = query.execute(&mut **tx).await.map(drop);
            (tx, result)
        });
        // One poll hands the statement to the worker thread.
        match std::future::poll_fn(|cx| std::task::Poll::Ready(running.as_mut().poll(cx))).await {
            // A failed statement ends the pipeline's use of the
            // transaction, however fast it failed.
            std::task::Poll::Ready((tx, result)) => {
                result?;
                self.idle = Some(tx);
            }
            std::task::Poll::Pending => self.busy = Some(running),
        }
        Ok(())
    }

    /// Waits for the statement in flight and hands the transaction back.
    pub(crate) async fn settle(&mut self) -> Result<&'t mut sqlx::Transaction<'c, sqlx::Any>, StoreError> {
        if let Some(running) = self.busy.take() {
            let (tx, result) = running.await;
            result?;
            return Ok(tx);
        }
        self.idle.take().ok_or_else(|| {
            StoreError::Conflict("this transaction already failed: a statement before this one was refused".to_string())
        })
    }
}

/// SQLite's own threshold (pages of WAL) for checkpointing at a commit,
/// which this store never changes except around a bulk commit.
const SQLITE_AUTOCHECKPOINT_PAGES: u32 = 1000;

/// A connection held for one transaction that writes many rows (a sync, a
/// reconciliation). On SQLite its commit skips the automatic checkpoint,
/// which would copy the whole WAL into the database file and sync both
/// before the commit returns (5.7 s of a 27 s first write of 2M edges at
/// 100k people); the checkpoint runs instead on this connection in the
/// background ([`BulkConnection::checkpoint_in_background`]), beside what
/// the caller does next. Durability is unchanged: in WAL mode with
/// `synchronous = NORMAL` a commit is never synced to disk, a checkpoint is.
///
/// A bulk connection dropped without
/// [`BulkConnection::checkpoint_in_background`] (its transaction failed or
/// was abandoned) is closed rather than pooled: an `INSERT OR ROLLBACK`
/// ([`Backend::bulk_insert`]) that failed has ended the transaction inside
/// SQLite, and sqlx, whose own rollback then fails, would hand the
/// connection out again believing it still in one.
pub(crate) struct BulkConnection {
    /// `None` once handed to the background checkpoint.
    conn: Option<PoolConnection<sqlx::Any>>,
    backend: Backend,
    background: Background,
}

impl Drop for BulkConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }
}

/// Tasks a store left running after a write returned.
#[derive(Clone, Debug, Default)]
pub(crate) struct Background(std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>);

impl Background {
    fn push(&self, task: tokio::task::JoinHandle<()>) {
        let mut tasks = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tasks.retain(|task| !task.is_finished());
        tasks.push(task);
    }
}

impl Store {
    /// Takes a connection from the pool for a bulk write.
    pub(crate) async fn bulk_connection(&self) -> Result<BulkConnection, StoreError> {
        Ok(BulkConnection {
            conn: Some(self.pool.acquire().await?),
            backend: self.backend,
            background: self.background.clone(),
        })
    }

    /// Waits for the work bulk writes left running (SQLite checkpoints). A
    /// process that exits without waiting loses nothing (an unfinished
    /// checkpoint is finished by the next one), but leaves the WAL for the
    /// next process to fold in.
    pub async fn settle_background(&self) {
        loop {
            let task = self.background.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
            match task {
                Some(task) => {
                    let _ = task.await;
                }
                None => return,
            }
        }
    }
}

impl BulkConnection {
    /// Begins the write transaction, taking SQLite's write lock up front as
    /// [`Store::begin_write`] does.
    pub(crate) async fn begin(&mut self) -> Result<sqlx::Transaction<'_, sqlx::Any>, StoreError> {
        let conn = self.conn.as_mut().ok_or_else(|| StoreError::Conflict("bulk connection already finished".into()))?;
        Ok(match self.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        })
    }

    /// Commits `tx` (begun by [`BulkConnection::begin`]) without SQLite's
    /// automatic checkpoint. Once it succeeded, follow it with
    /// [`BulkConnection::checkpoint_in_background`], which also restores the
    /// automatic checkpoint; after a failure, drop the connection (closed).
    pub(crate) async fn commit(tx: sqlx::Transaction<'_, sqlx::Any>, backend: Backend) -> Result<(), StoreError> {
        let mut tx = tx;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Checkpoints the WAL on this connection in a task of its own (SQLite;
    /// `PASSIVE`: readers and the next writer never wait for it), restores
    /// the automatic checkpoint and hands the connection back to the pool.
    /// A connection whose setting could not be restored is closed instead.
    pub(crate) fn checkpoint_in_background(self) {
        let mut this = self;
        let Some(mut conn) = this.conn.take() else { return };
        if this.backend != Backend::Sqlite {
            return;
        }
        let background = std::mem::take(&mut this.background);
        background.push(tokio::spawn(async move {
            let started = std::time::Instant::now();
            match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut *conn).await {
                Ok(row) => tracing::debug!(
                    busy = row.try_get::<i64, _>(0).unwrap_or(-1),
                    wal_pages = row.try_get::<i64, _>(1).unwrap_or(-1),
                    checkpointed_pages = row.try_get::<i64, _>(2).unwrap_or(-1),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "WAL checkpointed"
                ),
                // SQLite checkpoints again at a later commit.
                Err(error) => tracing::warn!(%error, "checkpoint after a bulk write failed"),
            }
            let restore = format!("PRAGMA wal_autocheckpoint = {SQLITE_AUTOCHECKPOINT_PAGES}");
            if let Err(error) = sqlx::query(sqlx::AssertSqlSafe(restore)).execute(&mut *conn).await {
                tracing::warn!(%error, "closing a connection whose automatic checkpoint could not be restored");
                let _ = conn.close().await;
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
        Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("store")
    }

    /// A `store_meta` value, read through the pool or a held connection.
    async fn meta_value<'e>(executor: impl sqlx::Executor<'e, Database = sqlx::Any>, key: &str) -> Option<String> {
        sqlx::query("SELECT value FROM store_meta WHERE key = $1")
            .bind(key)
            .fetch_optional(executor)
            .await
            .expect("read")
            .map(|row| row.try_get("value").expect("value"))
    }

    /// A statement that fails while the next is built still fails the
    /// transaction: its error comes with the next call, nothing after it is
    /// sent, and nothing of the transaction is stored.
    #[tokio::test]
    async fn a_statement_that_fails_in_flight_fails_the_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        let mut conn = store.bulk_connection().await.expect("connection");
        let mut tx = conn.begin().await.expect("begin");
        {
            let mut pipeline = Pipeline::new(&mut tx);
            pipeline.send(sqlx::query("INSERT INTO store_meta (key, value) VALUES ('a', '1')")).await.expect("first");
            // The same primary key again.
            let sent = pipeline.send(sqlx::query("INSERT INTO store_meta (key, value) VALUES ('a', '2')")).await;
            let failed = match sent {
                Ok(()) => pipeline.settle().await.map(drop),
                Err(error) => Err(error),
            };
            assert!(matches!(failed, Err(StoreError::Database(_))), "{failed:?}");
            let after = pipeline.send(sqlx::query("INSERT INTO store_meta (key, value) VALUES ('b', '1')")).await;
            assert!(after.is_err(), "a statement after a failed one is refused");
        }
        drop(tx);
        drop(conn);
        assert_eq!(meta_value(store.pool(), "a").await, None);
        assert_eq!(meta_value(store.pool(), "b").await, None);
    }

    /// A constraint failure of a bulk INSERT ends the transaction inside
    /// SQLite (`OR ROLLBACK`); nothing of it is stored, and the connection
    /// it left is not handed out again: every connection of the pool begins
    /// and commits writes afterwards.
    #[tokio::test]
    async fn a_bulk_insert_that_breaks_a_constraint_leaves_the_pool_usable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        let insert = format!("{} store_meta (key, value) VALUES ($1, $2), ($3, $4)", store.backend.bulk_insert());
        for attempt in 0..6 {
            let mut conn = store.bulk_connection().await.expect("connection");
            let mut tx = conn.begin().await.expect("begin");
            {
                let mut pipeline = Pipeline::new(&mut tx);
                let first = sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
                    .bind(format!("ok {attempt}"))
                    .bind("1")
                    .bind(format!("other {attempt}"))
                    .bind("1");
                pipeline.send(first).await.expect("first");
                let twice = sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
                    .bind(format!("dup {attempt}"))
                    .bind("1")
                    .bind(format!("dup {attempt}"))
                    .bind("2");
                let failed = match pipeline.send(twice).await {
                    Ok(()) => pipeline.settle().await.map(drop),
                    Err(error) => Err(error),
                };
                assert!(matches!(failed, Err(StoreError::Database(_))), "{failed:?}");
            }
            drop(tx);
            drop(conn);
            assert_eq!(meta_value(store.pool(), &format!("ok {attempt}")).await, None, "rolled back whole");
        }
        // Every pooled connection still begins, writes and commits.
        let mut held = Vec::new();
        for i in 0..4 {
            let mut conn = store.bulk_connection().await.expect("connection");
            let mut tx = conn.begin().await.expect("begin after the failures");
            sqlx::query("INSERT INTO store_meta (key, value) VALUES ($1, 'x')")
                .bind(format!("after {i}"))
                .execute(&mut *tx)
                .await
                .expect("insert");
            BulkConnection::commit(tx, store.backend).await.expect("commit");
            held.push(conn);
        }
        for conn in held {
            conn.checkpoint_in_background();
        }
        store.settle_background().await;
        for i in 0..4 {
            assert_eq!(meta_value(store.pool(), &format!("after {i}")).await.as_deref(), Some("x"));
        }
    }

    /// Statements sent through the pipeline land in order, once committed.
    #[tokio::test]
    async fn pipelined_statements_all_land() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        let mut conn = store.bulk_connection().await.expect("connection");
        let mut tx = conn.begin().await.expect("begin");
        {
            let mut pipeline = Pipeline::new(&mut tx);
            for i in 0..50 {
                let query = sqlx::query("INSERT INTO store_meta (key, value) VALUES ($1, $2)")
                    .bind(format!("k{i}"))
                    .bind(i.to_string());
                pipeline.send(query).await.expect("send");
            }
            pipeline.send(sqlx::query("UPDATE store_meta SET value = 'last' WHERE key = 'k49'")).await.expect("send");
            pipeline.settle().await.expect("settle");
        }
        BulkConnection::commit(tx, store.backend).await.expect("commit");
        conn.checkpoint_in_background();
        assert_eq!(meta_value(store.pool(), "k0").await.as_deref(), Some("0"));
        assert_eq!(meta_value(store.pool(), "k49").await.as_deref(), Some("last"));
    }

    /// A bulk commit leaves the checkpoint to a background task, which
    /// folds the whole WAL in and gives every connection of the pool its
    /// automatic checkpoint back.
    #[tokio::test]
    async fn a_bulk_commit_checkpoints_in_the_background_and_restores_the_setting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        let mut conn = store.bulk_connection().await.expect("connection");
        let mut tx = conn.begin().await.expect("begin");
        for i in 0..2_000 {
            sqlx::query("INSERT INTO store_meta (key, value) VALUES ($1, $2)")
                .bind(format!("key {i}"))
                .bind("x".repeat(500))
                .execute(&mut *tx)
                .await
                .expect("insert");
        }
        BulkConnection::commit(tx, store.backend).await.expect("commit");
        conn.checkpoint_in_background();
        store.settle_background().await;
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut conn = store.pool().acquire().await.expect("acquire");
            let pages: i64 =
                sqlx::query("PRAGMA wal_autocheckpoint").fetch_one(&mut *conn).await.expect("pragma").get(0);
            assert_eq!(pages, i64::from(SQLITE_AUTOCHECKPOINT_PAGES));
            held.push(conn);
        }
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut *held[0]).await.expect("checkpoint");
        let (busy, wal, done): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!((busy, wal), (0, done), "every frame of the WAL was already in the database");
        assert_eq!(meta_value(&mut *held[1], "key 1999").await.map(|v| v.len()), Some(500));
    }
}
