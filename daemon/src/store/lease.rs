//! Leases: which replica may do a piece of work that must not run twice at
//! once (a source's sync, an analysis). On PostgreSQL a lease is a session
//! advisory lock held on a connection of its own, taken out of the pool for
//! as long as the work lasts: a replica that dies (or drops the work) closes
//! that connection and the server releases the lock with it. SQLite serves one
//! process, which serializes its own work, so its leases are always granted.

use super::{Backend, Store, StoreError};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use sqlx::{Connection as _, Row};

/// A held lease; release it with [`Lease::release`] (dropping it also
/// releases it, by closing its connection).
#[derive(Debug)]
pub struct Lease {
    /// The dedicated connection that holds the advisory lock (PostgreSQL only).
    conn: Option<AnyConnection>,
    key: i64,
}

/// The advisory lock key of a lease name: 64 bits of its SHA-256, so names
/// of any length map to keys that do not collide in practice.
pub fn lease_key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("accessgraph lease:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

impl Store {
    /// Takes the lease `name` if no other session holds it; `None` when one
    /// does (another replica is doing this work right now).
    pub async fn try_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let key = lease_key(name);
        if self.backend == Backend::Sqlite {
            return Ok(Some(Lease { conn: None, key }));
        }
        let mut conn = self.pool.acquire().await?.detach();
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS ok").bind(key).fetch_one(&mut conn).await?;
        let ok: bool = row.try_get("ok")?;
        if ok {
            Ok(Some(Lease { conn: Some(conn), key }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Takes the lease `name`, waiting while another session holds it.
    pub async fn lease(&self, name: &str) -> Result<Lease, StoreError> {
        let key = lease_key(name);
        if self.backend == Backend::Sqlite {
            return Ok(Lease { conn: None, key });
        }
        let mut conn = self.pool.acquire().await?.detach();
        sqlx::query("SELECT pg_advisory_lock($1)").bind(key).execute(&mut conn).await?;
        Ok(Lease { conn: Some(conn), key })
    }
}

impl Lease {
    /// Releases the lease and closes its connection.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            // Closing the session releases the lock anyway; unlocking first
            // just makes the release explicit in the server's logs.
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(self.key).execute(&mut conn).await;
            let _ = conn.close().await;
        }
    }
}
