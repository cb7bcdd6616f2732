//! The connectors' response cache (ETags across syncs) on the store: one
//! slice per source, handed to a connector as a [`ResponseCache`]; and the
//! request statistics recorded with each sync run.
//!
//! A cache failure never fails a sync: it is logged and the request simply
//! goes out unconditionally.

use super::{Store, StoreError, decode_json, to_micros};
use accessgraph_connectors::RequestStats;
use accessgraph_connectors::cache::{CachedResponse, ResponseCache};
use async_trait::async_trait;
use chrono::Utc;
use sqlx::Row;
use std::collections::HashSet;

/// Keys deleted per statement when pruning: well under the bind limits.
const DELETE_BATCH: usize = 400;

/// One source's slice of the `http_cache` table.
#[derive(Clone, Debug)]
pub struct StoreResponseCache {
    store: Store,
    source: String,
}

impl Store {
    /// The response cache of `source`.
    pub fn response_cache(&self, source: &str) -> StoreResponseCache {
        StoreResponseCache { store: self.clone(), source: source.to_string() }
    }

    /// Adds what the latest sync of `source` cost its API to that sync
    /// run's record (`stats.requests` of `sync_runs`).
    pub async fn record_request_stats(&self, source: &str, requests: &RequestStats) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let row =
            sqlx::query("SELECT id, stats FROM sync_runs WHERE id = (SELECT MAX(id) FROM sync_runs WHERE source = $1)")
                .bind(source)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(()) };
        let id: i64 = row.try_get("id")?;
        let stats: String = row.try_get("stats")?;
        let mut stats: serde_json::Value = decode_json(&stats)?;
        let requests = serde_json::to_value(requests).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match stats.as_object_mut() {
            Some(object) => {
                object.insert("requests".to_string(), requests);
            }
            None => stats = serde_json::json!({ "requests": requests }),
        }
        sqlx::query("UPDATE sync_runs SET stats = $1 WHERE id = $2")
            .bind(stats.to_string())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn cache_get(&self, source: &str, key: &str) -> Result<Option<CachedResponse>, StoreError> {
        let row = sqlx::query("SELECT etag, link, body FROM http_cache WHERE source = $1 AND key = $2")
            .bind(source)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(CachedResponse { etag: row.try_get("etag")?, link: row.try_get("link")?, body: row.try_get("body")? }))
    }

    async fn cache_put(&self, source: &str, key: &str, response: &CachedResponse) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO http_cache (source, key, etag, link, body, stored_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (source, key) DO UPDATE SET etag = excluded.etag, link = excluded.link, \
             body = excluded.body, stored_at = excluded.stored_at",
        )
        .bind(source)
        .bind(key)
        .bind(response.etag.as_str())
        .bind(response.link.as_deref())
        .bind(response.body.as_slice())
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn cache_retain(&self, source: &str, keep: &HashSet<String>) -> Result<u64, StoreError> {
        let rows =
            sqlx::query("SELECT key FROM http_cache WHERE source = $1").bind(source).fetch_all(&self.pool).await?;
        let mut stale = Vec::new();
        for row in rows {
            let key: String = row.try_get("key")?;
            if !keep.contains(&key) {
                stale.push(key);
            }
        }
        let mut deleted = 0;
        for batch in stale.chunks(DELETE_BATCH) {
            let placeholders: Vec<String> = (0..batch.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!("DELETE FROM http_cache WHERE source = $1 AND key IN ({})", placeholders.join(", "));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(source);
            for key in batch {
                query = query.bind(key.as_str());
            }
            deleted += query.execute(&self.pool).await?.rows_affected();
        }
        Ok(deleted)
    }
}

#[async_trait]
impl ResponseCache for StoreResponseCache {
    async fn get(&self, key: &str) -> Option<CachedResponse> {
        match self.store.cache_get(&self.source, key).await {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(source = %self.source, error = %err, "response cache unreadable; request goes out unconditionally");
                None
            }
        }
    }

    async fn put(&self, key: &str, response: &CachedResponse) {
        if let Err(err) = self.store.cache_put(&self.source, key, response).await {
            tracing::warn!(source = %self.source, error = %err, "could not store a response in the cache");
        }
    }

    async fn retain(&self, keep: &HashSet<String>) {
        match self.store.cache_retain(&self.source, keep).await {
            Ok(deleted) => tracing::debug!(source = %self.source, deleted, "response cache pruned"),
            Err(err) => tracing::warn!(source = %self.source, error = %err, "could not prune the response cache"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdb::on_both_databases;

    on_both_databases!(http_cache_round_trips_replaces_prunes_and_keeps_sources_apart, request_stats_join_the_sync_run);

    async fn http_cache_round_trips_replaces_prunes_and_keeps_sources_apart(url: String) {
        let store = Store::open(&url).await.expect("store");
        let a = store.response_cache("gh-a");
        let b = store.response_cache("gh-b");
        assert_eq!(a.get("k1").await, None);
        let first = CachedResponse {
            etag: "\"e1\"".into(),
            link: Some("<https://x/p2>; rel=\"next\"".into()),
            // Not UTF-8: bodies are bytes.
            body: vec![0, 159, 146, 150],
        };
        a.put("k1", &first).await;
        a.put("k2", &first).await;
        assert_eq!(a.get("k1").await, Some(first.clone()));
        assert_eq!(b.get("k1").await, None, "another source's slice");
        let second = CachedResponse { etag: "\"e2\"".into(), link: None, body: b"[]".to_vec() };
        a.put("k1", &second).await;
        assert_eq!(a.get("k1").await, Some(second.clone()));
        b.put("k2", &first).await;
        a.retain(&HashSet::from(["k1".to_string()])).await;
        assert_eq!(a.get("k1").await, Some(second));
        assert_eq!(a.get("k2").await, None, "pruned");
        assert_eq!(b.get("k2").await, Some(first), "pruning one source leaves the others");
    }

    async fn request_stats_join_the_sync_run(url: String) {
        let store = Store::open(&url).await.expect("store");
        let requests = RequestStats { requests: 7, not_modified: 5, retries: 1, rate_limit_waits: 1, bytes: 1234 };
        // No run yet: nothing to attach to.
        store.record_request_stats("gh", &requests).await.expect("no run");
        let fragment = accessgraph_graph::Fragment { source: "gh".into(), ..Default::default() };
        let at = chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z").expect("time").with_timezone(&Utc);
        store.apply_sync("github", &fragment, at, at).await.expect("sync");
        store.record_request_stats("gh", &requests).await.expect("recorded");
        let stats: String = sqlx::query("SELECT stats FROM sync_runs WHERE source = $1")
            .bind("gh")
            .fetch_one(&store.pool)
            .await
            .expect("run")
            .try_get("stats")
            .expect("stats");
        let stats: serde_json::Value = serde_json::from_str(&stats).expect("json");
        assert_eq!(stats["requests"]["not_modified"], 5);
        assert_eq!(stats["nodes"], 0, "the row counts stay");
    }
}
