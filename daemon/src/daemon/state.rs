//! What the daemon's tasks share: the store, the configuration in force,
//! per-source scheduling state, the latest report and the metrics.

use super::metrics::Metrics;
use crate::pipeline::SourceOutcome;
use crate::report::Report;
use crate::store::Store;
use accessgraph_config::{Config, Secret};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::sync::Notify;

/// Scheduling state of one source, as this process sees it.
#[derive(Clone, Debug, Default)]
pub(crate) struct SourceState {
    /// The first tick since the source was (re)scheduled: before it, a
    /// source that never synced does not make the daemon unready.
    pub first_tick: Option<DateTime<Utc>>,
    /// The tick the loop waits for.
    pub next_tick: Option<DateTime<Utc>>,
    /// When the sync running now started.
    pub syncing_since: Option<DateTime<Utc>>,
    /// The last sync this process ran.
    pub last: Option<SourceOutcome>,
}

/// The latest analysis this process ran.
#[derive(Debug)]
pub(crate) struct Latest {
    /// The report of that analysis.
    pub report: Report,
}

/// State shared by the scheduler, the workers and the HTTP handlers.
pub(crate) struct Shared {
    pub store: Store,
    /// Swapped whole on reload; readers clone the `Arc` and never hold the lock.
    config: RwLock<Arc<Config>>,
    /// The API token resolved from `[server] token` (re-read on reload).
    token: RwLock<Option<Secret>>,
    pub metrics: Metrics,
    sources: Mutex<BTreeMap<String, SourceState>>,
    /// One guard per source name, kept across reloads, so a sync started by
    /// a loop of the previous configuration and one of the new cannot overlap.
    running: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    latest: RwLock<Option<Arc<Latest>>>,
    /// The last analysis's access and inventory, for the next one to
    /// compare with (`pipeline::Baseline`); taken by the analysis worker.
    baseline: Mutex<Option<crate::pipeline::Baseline>>,
    /// Woken when a sync landed or the configuration changed.
    pub analysis_wanted: Notify,
    /// Woken when an analysis may have queued outbox rows.
    pub delivery_wanted: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data
    // behind; keep serving rather than poisoning the daemon.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Resolves `[server] token`: an API token that is configured but cannot be
/// read must not silently open the API.
pub(crate) fn resolve_token(config: &Config) -> Result<Option<Secret>, String> {
    match &config.server.token {
        None => Ok(None),
        Some(reference) => reference
            .resolve()
            .map(Some)
            .map_err(|error| format!("[server] token ({reference}) cannot be read: {error}")),
    }
}

impl Shared {
    pub fn new(config: Config, token: Option<Secret>, store: Store) -> Shared {
        Shared {
            store,
            config: RwLock::new(Arc::new(config)),
            token: RwLock::new(token),
            metrics: Metrics::default(),
            sources: Mutex::default(),
            running: Mutex::default(),
            latest: RwLock::new(None),
            baseline: Mutex::default(),
            analysis_wanted: Notify::new(),
            delivery_wanted: Notify::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts a reloaded configuration in force.
    pub fn replace_config(&self, config: Config, token: Option<Secret>) {
        let names: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        *self.token.write().unwrap_or_else(|p| p.into_inner()) = token;
        lock(&self.sources).retain(|name, _| names.contains(name));
    }

    /// The API token, when one is configured.
    pub fn token(&self) -> Option<Secret> {
        self.token.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The guard that a sync of `source` holds while it runs.
    pub fn sync_guard(&self, source: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.running).entry(source.to_string()).or_default().clone()
    }

    /// A copy of one source's state.
    pub fn source_state(&self, source: &str) -> SourceState {
        lock(&self.sources).get(source).cloned().unwrap_or_default()
    }

    /// Changes one source's state.
    pub fn update_source(&self, source: &str, change: impl FnOnce(&mut SourceState)) {
        change(lock(&self.sources).entry(source.to_string()).or_default());
    }

    /// The last outcome of every configured source this process synced,
    /// in config order (for the report).
    pub fn outcomes(&self, config: &Config) -> Vec<SourceOutcome> {
        let sources = lock(&self.sources);
        config.sources.iter().filter_map(|s| sources.get(&s.name).and_then(|state| state.last.clone())).collect()
    }

    /// The latest analysis' report.
    pub fn latest(&self) -> Option<Arc<Latest>> {
        self.latest.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes the kept baseline (an analysis that fails leaves none, and the
    /// next one rebuilds the previous snapshot from the store).
    pub fn take_baseline(&self) -> Option<crate::pipeline::Baseline> {
        lock(&self.baseline).take()
    }

    /// Keeps the baseline of the analysis just recorded.
    pub fn keep_baseline(&self, baseline: crate::pipeline::Baseline) {
        *lock(&self.baseline) = Some(baseline);
    }

    /// Records the latest analysis' report.
    pub fn set_latest(&self, latest: Latest) {
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(latest));
    }
}
