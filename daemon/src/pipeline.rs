//! One cycle: sync every source, rebuild the graph from the store, analyze,
//! reconcile findings (with the outbox) and deliver. Shared by `scan` and the
//! daemon's scheduler.

use crate::store::{Reconciled, Store, StoreError, SyncStats};
use accessgraph_config::{Config, SourceConfig};
use accessgraph_connectors::sinks::{self, Sink};
use accessgraph_graph::access::{AccessGraph, AccessSet, ResolveSettings};
use accessgraph_graph::{Analysis, PolicyEngine, Posture, analyze};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Instant;

/// Pipeline failures that stop the cycle (a failing source does not).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The graph could not be built from stored rows.
    #[error("graph: {0}")]
    Graph(#[from] accessgraph_graph::access::GraphError),
    /// The Cedar policy could not be evaluated.
    #[error(transparent)]
    Policy(#[from] accessgraph_graph::policy::PolicyError),
}

/// How one source's sync went.
#[derive(Clone, Debug, Serialize)]
pub struct SourceOutcome {
    /// Source name.
    pub name: String,
    /// Source kind.
    pub kind: String,
    /// `succeeded` or `failed`.
    pub status: &'static str,
    /// Why it failed (no secrets: errors carry URLs and paths only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Rows written.
    pub stats: SyncStats,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// Syncs one source and records the outcome; never fails the cycle.
pub async fn sync_source(store: &Store, source: &SourceConfig, now: DateTime<Utc>) -> SourceOutcome {
    let kind = source.settings.kind().to_string();
    let started = Instant::now();
    let result = match accessgraph_connectors::registry::build(source) {
        Ok(connector) => connector.sync().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let result = match result {
        Ok(mut fragment) => {
            fragment.source = source.name.clone();
            store.apply_sync(&kind, &fragment, now, now).await.map_err(|e| e.to_string())
        }
        Err(error) => Err(error),
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(stats) => {
            tracing::info!(source = %source.name, kind = %kind, nodes = stats.nodes, edges = stats.edges,
                opened = stats.opened, closed = stats.closed, duration_ms, "source synced");
            SourceOutcome { name: source.name.clone(), kind, status: "succeeded", error: None, stats, duration_ms }
        }
        Err(error) => {
            tracing::error!(source = %source.name, kind = %kind, error = %error, duration_ms, "source sync failed; its stored data is kept");
            if let Err(store_error) = store.record_failed_sync(&source.name, &kind, now, now, &error).await {
                tracing::error!(source = %source.name, error = %store_error, "could not record the failed sync");
            }
            SourceOutcome {
                name: source.name.clone(),
                kind,
                status: "failed",
                error: Some(error),
                stats: SyncStats::default(),
                duration_ms,
            }
        }
    }
}

/// Syncs every source concurrently.
pub async fn sync_all(config: &Config, store: &Store, now: DateTime<Utc>) -> Vec<SourceOutcome> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, source) in config.sources.iter().enumerate() {
        let store = store.clone();
        let source = source.clone();
        tasks.spawn(async move { (i, sync_source(&store, &source, now).await) });
    }
    let mut outcomes = Vec::with_capacity(config.sources.len());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => tracing::error!(error = %e, "sync task panicked"),
        }
    }
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes.into_iter().map(|(_, o)| o).collect()
}

/// Person resolution settings from the config.
pub fn resolve_settings(config: &Config) -> ResolveSettings {
    ResolveSettings {
        aliases: config.aliases.iter().map(|a| (a.account.clone(), a.email.clone())).collect(),
        identity_sources: config
            .sources
            .iter()
            .filter(|s| s.settings.is_identity_source())
            .map(|s| s.name.clone())
            .collect(),
    }
}

/// The graph as the store holds it now (`at` None) or at a past instant.
pub async fn load_graph(
    config: &Config,
    store: &Store,
    at: Option<DateTime<Utc>>,
) -> Result<AccessGraph, PipelineError> {
    let sources: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    let (nodes, edges) = store.load_rows(&sources, at).await?;
    Ok(AccessGraph::build(nodes, edges, &config.catalog, &resolve_settings(config))?)
}

/// The parsed policy, if one is configured (config validation parsed it once already).
pub fn policy_engine(config: &Config) -> Result<Option<PolicyEngine>, PipelineError> {
    match &config.policy {
        Some(policy) => Ok(Some(PolicyEngine::parse(&policy.text)?)),
        None => Ok(None),
    }
}

/// Everything one analysis produced.
#[derive(Debug)]
pub struct Cycle {
    /// The instant evaluated.
    pub now: DateTime<Utc>,
    /// Per-source sync outcomes (empty when only re-analyzing).
    pub sources: Vec<SourceOutcome>,
    /// The graph analyzed.
    pub graph: AccessGraph,
    /// Effective access and findings.
    pub analysis: Analysis,
    /// Posture figures now.
    pub posture: Posture,
    /// The previous snapshot's instant and posture, when there was one.
    pub previous: Option<(DateTime<Utc>, Option<Posture>)>,
    /// Access changes since the previous snapshot.
    pub changes: accessgraph_graph::diff::AccessDiff,
    /// Stored lifecycle after reconciliation.
    pub reconciled: Reconciled,
}

/// Rebuilds the graph from the store, analyzes it, records the analysis and
/// reconciles findings with the outbox.
pub async fn analyze_and_record(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
    sources: Vec<SourceOutcome>,
) -> Result<Cycle, PipelineError> {
    let graph = load_graph(config, store, None).await?;
    let settings = config.analysis_settings();
    let policy = policy_engine(config)?;
    let previous_at = store.previous_analysis(now).await?;
    let previous_set: Option<AccessSet> = match previous_at {
        Some(at) => {
            let before = load_graph(config, store, Some(at)).await?;
            Some(before.effective_access(at).triples(&before))
        }
        None => None,
    };
    let analysis = analyze(&graph, previous_set.as_ref(), policy.as_ref(), &settings, now)?;
    let posture = Posture::compute(&graph, &analysis.access, &settings, policy.is_some(), now);
    let current_set = analysis.access.triples(&graph);
    let changes = match &previous_set {
        Some(before) => accessgraph_graph::diff::diff(before, &current_set),
        None => Default::default(),
    };
    let previous = match previous_at {
        Some(at) => {
            let history = store.analysis_history(50).await?;
            let posture = history
                .into_iter()
                .rfind(|(when, _)| *when == at)
                .and_then(|(_, summary)| serde_json::from_value(summary["posture"].clone()).ok());
            Some((at, posture))
        }
        None => None,
    };
    let reconciled = store.reconcile_findings(&analysis.findings, now, &config.sinks).await?;
    let summary = serde_json::json!({
        "posture": posture,
        "findings_open": reconciled.current.iter().filter(|f| f.status == accessgraph_graph::FindingStatus::Open).count(),
        "access_added": changes.added.len(),
        "access_removed": changes.removed.len(),
    });
    store.record_analysis(now, &summary).await?;
    Ok(Cycle { now, sources, graph, analysis, posture, previous, changes, reconciled })
}

/// Result of one delivery round.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Delivery {
    /// Events delivered.
    pub delivered: u64,
    /// Attempts that failed (retried later).
    pub failed: u64,
}

/// Delivers due outbox rows to their sinks, in order per sink; a sink that
/// fails stops its own queue for this round so events never overtake.
pub async fn deliver_outbox(config: &Config, store: &Store, now: DateTime<Utc>) -> Result<Delivery, PipelineError> {
    let mut built: Vec<Box<dyn Sink>> = Vec::new();
    let mut broken: BTreeSet<String> = BTreeSet::new();
    for sink in &config.sinks {
        match sinks::build(sink) {
            Ok(s) => built.push(s),
            Err(e) => {
                tracing::error!(sink = %sink.name, error = %e, "sink unavailable; its events stay queued");
                broken.insert(sink.name.clone());
            }
        }
    }
    let mut delivery = Delivery::default();
    loop {
        let rows = store.pending_outbox(now, 500).await?;
        if rows.is_empty() {
            break;
        }
        let mut progressed = false;
        for row in rows {
            if broken.contains(&row.sink) {
                continue;
            }
            let Some(sink) = built.iter().find(|s| s.name() == row.sink) else {
                // A sink removed from the config: its backlog waits, harmlessly.
                continue;
            };
            match sink.deliver(&row.event).await {
                Ok(()) => {
                    store.mark_delivered(row.id, now).await?;
                    delivery.delivered += 1;
                    progressed = true;
                }
                Err(e) => {
                    let backoff = Duration::seconds(30 * (1i64 << row.attempts.clamp(0, 10)));
                    tracing::warn!(sink = %row.sink, event = row.event.event.as_str(), fingerprint = %row.event.fingerprint,
                        attempts = row.attempts + 1, error = %e, "delivery failed; will retry");
                    store.mark_failed(row.id, &e.to_string(), now + backoff.min(Duration::hours(6))).await?;
                    broken.insert(row.sink.clone());
                    delivery.failed += 1;
                }
            }
        }
        if !progressed {
            break;
        }
    }
    Ok(delivery)
}
