//! Test databases: every store test runs against a fresh SQLite file and a
//! fresh PostgreSQL database (`CREATE DATABASE ag_<random>` on the server
//! named by `ACCESSGRAPH_TEST_POSTGRES`, dropped at the end). Without a
//! reachable server the PostgreSQL half is skipped with a notice, except
//! under CI (`CI` set), where it fails.

use sqlx::Connection as _;
use std::future::Future;
use std::time::Duration;

/// The server the PostgreSQL tests use when `ACCESSGRAPH_TEST_POSTGRES` is unset.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// A database made for one test.
pub struct TestDb {
    /// The store URL.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

fn admin_url() -> String {
    std::env::var("ACCESSGRAPH_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_string())
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (url, None),
    };
    let authority_start = main.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match main[authority_start..].find('/') {
        Some(slash) => &main[..authority_start + slash],
        None => main,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

impl TestDb {
    /// A fresh database of `kind`; `None` when PostgreSQL is unreachable outside CI.
    pub async fn new(kind: Kind) -> Option<TestDb> {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("store.db").display());
                Some(TestDb { url, _dir: Some(dir), postgres: None })
            }
            Kind::Postgres => {
                let admin = admin_url();
                let connected =
                    tokio::time::timeout(Duration::from_secs(5), sqlx::postgres::PgConnection::connect(&admin)).await;
                let mut conn = match connected {
                    Ok(Ok(conn)) => conn,
                    failed => {
                        let why = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "connection timed out".to_string(),
                        };
                        if std::env::var_os("CI").is_some() {
                            panic!("PostgreSQL at {admin} is required under CI: {why}");
                        }
                        eprintln!("notice: skipping a PostgreSQL store test: {admin} is unreachable ({why})");
                        return None;
                    }
                };
                let name = format!("ag_{:016x}", rand::random::<u64>());
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create a test database");
                let _ = conn.close().await;
                Some(TestDb { url: with_database(&admin, &name), _dir: None, postgres: Some((admin, name)) })
            }
        }
    }

    /// Drops the PostgreSQL database (SQLite's folder goes with `self`).
    pub async fn cleanup(&self) {
        if let Some((admin, name)) = &self.postgres
            && let Ok(mut conn) = sqlx::postgres::PgConnection::connect(admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

/// Runs `test` with the URL of a fresh database of `kind`, then drops the
/// database, also when the test panics (the panic is passed on).
/// The steps of SQLite's plan for `sql` (`EXPLAIN QUERY PLAN`) with `binds`
/// bound in order: what the planner tests look for an index in.
pub async fn sqlite_plan(store: &crate::store::Store, sql: &str, binds: Vec<PlanValue>) -> Vec<String> {
    let sql = format!("EXPLAIN QUERY PLAN {sql}");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in binds {
        query = match value {
            PlanValue::Int(n) => query.bind(n),
            PlanValue::Text(text) => query.bind(text),
        };
    }
    query
        .fetch_all(store.pool())
        .await
        .expect("plan")
        .iter()
        .map(|row| sqlx::Row::try_get::<String, _>(row, "detail").expect("detail"))
        .collect()
}

/// A value bound while planning.
pub enum PlanValue {
    /// An integer (instants).
    Int(i64),
    /// Text (sources, keys, ids).
    Text(String),
}

pub async fn with_db<F, Fut>(kind: Kind, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let result = tokio::spawn(test(db.url.clone())).await;
    db.cleanup().await;
    if let Err(error) = result
        && error.is_panic()
    {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Declares `NAME::sqlite` and `NAME::postgres` tests running the async fn
/// `NAME(url: String)` on each database.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::testdb::with_db($crate::testdb::Kind::Sqlite, super::$name).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::testdb::with_db($crate::testdb::Kind::Postgres, super::$name).await
            }
        }
    )*};
}
pub(crate) use on_both_databases;

#[test]
fn database_names_are_replaced() {
    assert_eq!(with_database("postgres://u@h:5432/test", "ag_1"), "postgres://u@h:5432/ag_1");
    assert_eq!(with_database("postgres://u@h/test?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}
