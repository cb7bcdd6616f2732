//! A response cache for conditional requests across syncs.
//!
//! Connectors know no store, so the ETag cache is this small trait: the
//! daemon implements it on its store (one slice per source), tests use
//! [`MemoryCache`]. A connector sends the cached ETag as `If-None-Match` and,
//! on `304 Not Modified`, reuses the cached body — on GitHub such an answer
//! costs no rate budget.
//!
//! Rules every user of the cache keeps:
//! - only successful (2xx) responses that decoded completely are stored,
//!   never an error body or a truncated one;
//! - keys are request URLs without credentials (tokens travel in headers,
//!   never in a URL), so a key may be stored and logged.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

/// One stored response: what a later `304` stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedResponse {
    /// The `ETag` the server sent with it (sent back as `If-None-Match`).
    pub etag: String,
    /// The `Link` header it came with: a cached page still knows its next page.
    pub link: Option<String>,
    /// The body, as received.
    pub body: Vec<u8>,
}

/// Where a connector keeps responses between syncs.
///
/// Failures of the cache itself are not sync failures: an implementation
/// logs them and answers `None` (the request is then simply unconditional).
#[async_trait]
pub trait ResponseCache: Send + Sync {
    /// The stored response for `key`, if any.
    async fn get(&self, key: &str) -> Option<CachedResponse>;

    /// Stores (or replaces) the response for `key`.
    async fn put(&self, key: &str, response: &CachedResponse);

    /// Forgets every entry whose key is not in `keep`: called after a
    /// complete sync, so responses of deleted repositories do not pile up.
    async fn retain(&self, keep: &HashSet<String>);
}

/// An in-process cache, for tests, benches and one-shot runs.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, CachedResponse>>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> MemoryCache {
        MemoryCache::default()
    }

    /// Number of stored responses.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The stored keys, sorted (for tests).
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.lock().keys().cloned().collect();
        keys.sort();
        keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedResponse>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl ResponseCache for MemoryCache {
    async fn get(&self, key: &str) -> Option<CachedResponse> {
        self.lock().get(key).cloned()
    }

    async fn put(&self, key: &str, response: &CachedResponse) {
        self.lock().insert(key.to_string(), response.clone());
    }

    async fn retain(&self, keep: &HashSet<String>) {
        self.lock().retain(|key, _| keep.contains(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_cache_stores_replaces_and_retains() {
        let cache = MemoryCache::new();
        assert!(cache.get("a").await.is_none());
        let first = CachedResponse { etag: "\"1\"".into(), link: None, body: b"[]".to_vec() };
        cache.put("a", &first).await;
        cache.put("b", &first).await;
        let second =
            CachedResponse { etag: "\"2\"".into(), link: Some("<x>; rel=\"next\"".into()), body: b"[1]".to_vec() };
        cache.put("a", &second).await;
        assert_eq!(cache.get("a").await, Some(second));
        cache.retain(&HashSet::from(["a".to_string()])).await;
        assert_eq!(cache.keys(), vec!["a".to_string()]);
    }
}
