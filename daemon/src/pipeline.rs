//! One cycle: sync every source, rebuild the graph from the store, analyze,
//! reconcile findings (with the outbox) and deliver. Shared by `scan` and the
//! daemon's scheduler.

use crate::store::{Reconciled, Store, StoreError, SyncStats};
use accessgraph_config::{Config, SourceConfig};
use accessgraph_connectors::sinks::{self, Sink};
use accessgraph_graph::access::{AccessGraph, AccessSet, GraphBuilder, ResolveSettings};
use accessgraph_graph::diff::Inventory;
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
    /// `succeeded`, `partial` (some slices not read, their rows kept) or `failed`.
    pub status: &'static str,
    /// Why it failed, or which slices a partial sync could not read and why
    /// (no secrets: errors carry URLs and paths only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Rows written.
    pub stats: SyncStats,
    /// What the sync cost the remote API (live sources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<accessgraph_connectors::RequestStats>,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// Syncs one source and records the outcome, its rows stamped `now` (one
/// instant for every source of a `scan`); never fails the cycle.
pub async fn sync_source(store: &Store, source: &SourceConfig, now: DateTime<Utc>) -> SourceOutcome {
    sync_source_stamped(store, source, now, Some(now)).await
}

/// The daemon's sync: started at `started`, its rows stamped with the
/// instant they are written, in the order [`Store::stamp_shared`] keeps with
/// analyses ([`analyze_live`]). Stamping the start instead would date the
/// rows before analyses that ran while the source was still being fetched
/// (seconds to minutes for a large organization) and never saw them.
pub async fn sync_source_live(store: &Store, source: &SourceConfig, started: DateTime<Utc>) -> SourceOutcome {
    sync_source_stamped(store, source, started, None).await
}

async fn sync_source_stamped(
    store: &Store,
    source: &SourceConfig,
    now: DateTime<Utc>,
    stamp: Option<DateTime<Utc>>,
) -> SourceOutcome {
    let kind = source.settings.kind().to_string();
    let started = Instant::now();
    let context = accessgraph_connectors::registry::BuildContext {
        cache: Some(std::sync::Arc::new(store.response_cache(&source.name))),
    };
    let (result, requests) = match accessgraph_connectors::registry::build(source, &context) {
        Ok(connector) => (connector.sync().await.map_err(|e| e.to_string()), connector.request_stats()),
        Err(e) => (Err(e.to_string()), None),
    };
    let result = match result {
        Ok(mut fragment) => {
            fragment.source = source.name.clone();
            let unread = fragment.kept_error();
            match store.stamp_shared().await {
                Ok(_order) => {
                    let stamp = stamp.unwrap_or_else(Utc::now);
                    store
                        .apply_sync(&kind, &fragment, now, stamp)
                        .await
                        .map(|stats| (stats, unread))
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Err(error) => Err(error),
    };
    // The fragment is gone. Its memory was allocated on the threads that
    // parsed it, whose heaps the analysis does not reuse: at 100k people a
    // scan held 1.4 GB of freed parse memory through the whole analysis.
    crate::memory::release_free_heap();
    let duration_ms = started.elapsed().as_millis() as u64;
    let outcome = match result {
        Ok((stats, unread)) => {
            match &unread {
                None => tracing::info!(source = %source.name, kind = %kind, nodes = stats.nodes, edges = stats.edges,
                    opened = stats.opened, closed = stats.closed, duration_ms, "source synced"),
                Some(error) => tracing::warn!(source = %source.name, kind = %kind, nodes = stats.nodes,
                    edges = stats.edges, opened = stats.opened, closed = stats.closed, kept = stats.kept, duration_ms,
                    error = %error, "source synced partially; the slices not read keep their stored rows"),
            }
            SourceOutcome {
                name: source.name.clone(),
                kind,
                status: if unread.is_some() { "partial" } else { "succeeded" },
                error: unread,
                stats,
                requests,
                duration_ms,
            }
        }
        Err(error) => {
            tracing::error!(source = %source.name, kind = %kind, error = %error, duration_ms, "source sync failed; its stored data is kept");
            let finished = stamp.unwrap_or_else(Utc::now);
            if let Err(store_error) = store.record_failed_sync(&source.name, &kind, now, finished, &error).await {
                tracing::error!(source = %source.name, error = %store_error, "could not record the failed sync");
            }
            SourceOutcome {
                name: source.name.clone(),
                kind,
                status: "failed",
                error: Some(error),
                stats: SyncStats::default(),
                requests,
                duration_ms,
            }
        }
    };
    if let Some(requests) = requests
        && let Err(store_error) = store.record_request_stats(&source.name, &requests).await
    {
        tracing::warn!(source = %source.name, error = %store_error, "could not record the sync's request statistics");
    }
    outcome
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
    // Streamed into the graph: the decoded rows are never all held at once.
    let (nodes, edges) = store.count_rows(&sources, at).await?;
    let capacity = |n: u64| usize::try_from(n).unwrap_or(0);
    let mut builder = GraphBuilder::with_capacity(capacity(nodes), capacity(edges));
    let mut duplicate = None;
    store
        .load_nodes_into(&sources, at, |chunk| {
            for node in chunk {
                if let Err(error) = builder.add_node(node) {
                    duplicate.get_or_insert(error);
                }
            }
        })
        .await?;
    if let Some(error) = duplicate {
        return Err(error.into());
    }
    store.load_edges_into(&sources, at, |chunk| chunk.into_iter().for_each(|edge| builder.add_edge(edge))).await?;
    Ok(builder.finish(&config.catalog, &resolve_settings(config)))
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
    /// Effective access now, as id triples (what the next cycle diffs against).
    pub access_set: AccessSet,
    /// Access changes since the previous snapshot.
    pub changes: accessgraph_graph::diff::AccessDiff,
    /// Credentials and non-human identities changed since the previous snapshot.
    pub inventory: accessgraph_graph::diff::InventoryDiff,
    /// The catalog, thresholds and tiers the analysis used (for reports).
    pub settings: accessgraph_graph::settings::AnalysisSettings,
    /// Stored lifecycle after reconciliation.
    pub reconciled: Reconciled,
    /// The credentials and non-human identities now (what the next cycle's
    /// inventory diff compares with).
    pub inventory_now: Inventory,
    /// The previous snapshot came from the kept [`Baseline`], not the store.
    pub previous_kept: bool,
    /// The config the graph was built under.
    scope: BaselineScope,
}

impl Cycle {
    /// What the next analysis compares with, kept in memory (see [`Baseline`]).
    pub fn into_baseline(self) -> Baseline {
        Baseline { at: self.now, scope: self.scope, access: self.access_set, inventory: self.inventory_now }
    }
}

/// The last analysis's effective access and inventory, kept in memory by
/// the daemon so that the next analysis need not rebuild the previous
/// snapshot's graph from the store and walk it again (at 100k people that
/// is 2.27M rows and 3.4M access entries: seconds and gigabytes a cycle).
/// Used only when it is exactly what the store would give: the previous
/// analysis recorded is this one, and the config that shapes the graph
/// (sources, aliases, identity sources, catalog) has not changed since.
#[derive(Debug)]
pub struct Baseline {
    at: DateTime<Utc>,
    scope: BaselineScope,
    access: AccessSet,
    inventory: Inventory,
}

/// What a graph built from the same rows depends on in the config.
#[derive(Debug, Clone, PartialEq)]
struct BaselineScope {
    sources: Vec<String>,
    resolve: ResolveSettings,
    catalog: accessgraph_graph::settings::Catalog,
}

impl BaselineScope {
    fn of(config: &Config) -> BaselineScope {
        BaselineScope {
            sources: config.sources.iter().map(|s| s.name.clone()).collect(),
            resolve: resolve_settings(config),
            catalog: config.catalog.clone(),
        }
    }
}

/// Rebuilds the graph from the store, analyzes it, records the analysis and
/// reconciles findings with the outbox.
/// `baseline`: the previous cycle's, when the caller kept it.
pub async fn analyze_and_record(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
    sources: Vec<SourceOutcome>,
    baseline: Option<Baseline>,
) -> Result<Cycle, PipelineError> {
    let mut step = Step::start();
    let graph = load_graph(config, store, None).await?;
    step.done("graph loaded");
    analyze_graph(config, store, graph, now, sources, baseline).await
}

/// The daemon's analysis, at the current instant: the instant and the rows
/// are read while no sync is between its stamp and its commit, so the graph
/// analyzed is exactly the rows stamped up to that instant, which is what
/// the next analysis rebuilds as its previous snapshot (see
/// [`Store::stamp_shared`]).
pub async fn analyze_live(
    config: &Config,
    store: &Store,
    sources: Vec<SourceOutcome>,
    baseline: Option<Baseline>,
) -> Result<Cycle, PipelineError> {
    let (now, graph) = {
        let _order = store.stamp_exclusive().await?;
        let now = Utc::now();
        (now, load_graph(config, store, None).await?)
    };
    analyze_graph(config, store, graph, now, sources, baseline).await
}

async fn analyze_graph(
    config: &Config,
    store: &Store,
    graph: AccessGraph,
    now: DateTime<Utc>,
    sources: Vec<SourceOutcome>,
    baseline: Option<Baseline>,
) -> Result<Cycle, PipelineError> {
    let settings = config.analysis_settings();
    let policy = policy_engine(config)?;
    let scope = BaselineScope::of(config);
    let mut step = Step::start();
    let previous_at = store.previous_analysis(now).await?;
    let inventory_now = Inventory::of(&graph, now);
    let mut inventory = Default::default();
    let mut previous_kept = false;
    let previous_set: Option<AccessSet> = match previous_at {
        Some(at) => {
            // The store keeps instants to the microsecond.
            let recorded = |b: &Baseline| b.at.timestamp_micros() == at.timestamp_micros();
            let (mut set, before) = match baseline.filter(|b| recorded(b) && b.scope == scope) {
                Some(kept) => {
                    previous_kept = true;
                    step.done("previous snapshot kept in memory");
                    (kept.access, kept.inventory)
                }
                None => {
                    let before = load_graph(config, store, Some(at)).await?;
                    step.done("previous graph loaded");
                    (before.effective_access(at).triples(&before), Inventory::of(&before, at))
                }
            };
            inventory = before.diff(&inventory_now);
            baseline_new_sources(config, store, &graph, at, now, &mut set).await?;
            step.done("previous access computed");
            Some(set)
        }
        None => None,
    };
    let mut analysis = analyze(&graph, previous_set.as_ref(), policy.as_ref(), &settings, now)?;
    step.done("analysed");
    let posture = Posture::compute(&graph, &analysis.access, &settings, policy.is_some(), now);
    let current_set = analysis.access.triples(&graph);
    let changes = match &previous_set {
        Some(before) => accessgraph_graph::diff::diff(before, &current_set),
        None => Default::default(),
    };
    drop(previous_set);
    step.done("access compared");
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
    let reconciled = store.reconcile_findings(&mut analysis.findings, now, &config.sinks).await?;
    let open = || analysis.findings.iter().filter(|f| f.status == accessgraph_graph::FindingStatus::Open);
    let mut open_by_severity = std::collections::BTreeMap::<&str, u64>::new();
    open().for_each(|f| *open_by_severity.entry(f.severity.as_str()).or_default() += 1);
    let summary = serde_json::json!({
        "posture": posture,
        "findings_open": open().count(),
        "findings_open_by_severity": open_by_severity,
        "access_added": changes.added.len(),
        "access_removed": changes.removed.len(),
    });
    step.done("findings reconciled");
    store.record_analysis(now, &summary).await?;
    Ok(Cycle {
        now,
        sources,
        graph,
        analysis,
        posture,
        previous,
        access_set: current_set,
        changes,
        inventory,
        settings,
        reconciled,
        inventory_now,
        previous_kept,
        scope,
    })
}

/// Times the steps of an analysis, logged at debug level (`RUST_LOG=accessgraph_daemon=debug`).
struct Step(Instant);

impl Step {
    fn start() -> Step {
        Step(Instant::now())
    }

    fn done(&mut self, what: &str) {
        // Fields are read only when debug logging is on.
        tracing::debug!(
            step = what,
            elapsed_ms = self.0.elapsed().as_millis() as u64,
            rss_mib = crate::memory::resident_mib(),
            "analysis step"
        );
        self.0 = Instant::now();
    }
}

/// A source whose first successful sync came after the previous snapshot is
/// new to the graph, not new access: the daemon syncs sources on their own
/// schedules, and a source added to the config joins later. Its access joins
/// the baseline instead of reading as `drift.baseline` all at once.
async fn baseline_new_sources(
    config: &Config,
    store: &Store,
    graph: &AccessGraph,
    previous_at: DateTime<Utc>,
    now: DateTime<Utc>,
    baseline: &mut AccessSet,
) -> Result<(), PipelineError> {
    let spans = store.success_span().await?;
    let new: BTreeSet<&str> = config
        .sources
        .iter()
        .filter(|s| spans.get(&s.name).is_some_and(|(first, _)| *first > previous_at))
        .map(|s| s.name.as_str())
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let access = graph.effective_access(now);
    let joined: AccessSet = access
        .entries()
        .iter()
        .filter(|entry| new.contains(graph.node(entry.resource).source.as_str()))
        .map(|entry| {
            (graph.node(entry.principal).id.as_str(), graph.node(entry.resource).id.as_str(), entry.action.as_str())
        })
        .collect();
    *baseline = baseline.union(&joined);
    Ok(())
}

/// Result of one delivery round.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Delivery {
    /// Events delivered.
    pub delivered: u64,
    /// Attempts that failed (retried later).
    pub failed: u64,
}

/// Outbox rows claimed per transaction.
const DELIVERY_BATCH: i64 = 100;

/// Delivers due outbox rows to their sinks, in order per sink; a sink that
/// fails stops its own queue for this round so events never overtake.
pub async fn deliver_outbox(config: &Config, store: &Store, now: DateTime<Utc>) -> Result<Delivery, PipelineError> {
    let mut built: Vec<Box<dyn Sink>> = Vec::new();
    let mut broken: BTreeSet<String> = BTreeSet::new();
    let context = sinks::SinkContext {
        tickets: std::sync::Arc::new(crate::store::StoreTickets::new(
            store.clone(),
            std::sync::Arc::new(config.clone()),
        )),
        report_url: Some(format!("http://{}", config.server.listen)),
    };
    for sink in &config.sinks {
        match sinks::build_with(sink, &context) {
            Ok(s) => built.push(s),
            Err(e) => {
                tracing::error!(sink = %sink.name, error = %e, "sink unavailable; its events stay queued");
                broken.insert(sink.name.clone());
            }
        }
    }
    let mut delivery = Delivery::default();
    loop {
        // Claimed rows are locked against other replicas until `finish`;
        // a batch bounds how long that lasts.
        let mut claim = store.claim_outbox(now, DELIVERY_BATCH).await?;
        if claim.rows().is_empty() {
            break;
        }
        let rows = claim.rows().to_vec();
        let mut progressed = false;
        // Each sink takes its rows of the claim as one run, in order (a
        // sink removed from the config has no run: its backlog waits).
        for sink in &built {
            if broken.contains(sink.name()) {
                continue;
            }
            let run: Vec<&crate::store::OutboxRow> = rows.iter().filter(|row| row.sink == sink.name()).collect();
            if run.is_empty() {
                continue;
            }
            let events: Vec<&sinks::TicketEvent> = run.iter().map(|row| &row.event).collect();
            let (delivered, error) = sink.deliver_all(&events).await;
            let ids: Vec<i64> = run[..delivered].iter().map(|row| row.id).collect();
            claim.delivered_all(&ids, now).await?;
            delivery.delivered += delivered as u64;
            progressed |= delivered > 0;
            if let (Some(e), Some(row)) = (error, run.get(delivered)) {
                let backoff = Duration::seconds(30 * (1i64 << row.attempts.clamp(0, 10)));
                tracing::warn!(sink = %row.sink, event = row.event.event.as_str(), fingerprint = %row.event.fingerprint,
                    attempts = row.attempts + 1, error = %e, "delivery failed; will retry");
                claim.failed(row.id, &e.to_string(), now + backoff.min(Duration::hours(6))).await?;
                broken.insert(row.sink.clone());
                delivery.failed += 1;
            }
        }
        claim.finish().await?;
        if !progressed {
            break;
        }
    }
    Ok(delivery)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn export(admin: bool) -> serde_json::Value {
        let mut grants = vec![json!({"principal": "bot", "resource": "reports", "actions": ["read"]})];
        if admin {
            grants.push(json!({"principal": "bot", "resource": "ledger", "actions": ["admin"]}));
        }
        json!({"version": 1, "system": "forge",
            "identities": [{"id": "bot", "kind": "agent", "name": "Bot", "owner": "alice@acme.example", "active": true}],
            "resources": [{"id": "reports", "kind": "dataset", "name": "Reports"},
                          {"id": "ledger", "kind": "dataset", "name": "Ledger"}],
            "grants": grants})
    }

    fn write(path: &std::path::Path, value: &serde_json::Value) {
        std::fs::write(path, serde_json::to_vec(value).expect("json")).expect("write export");
    }

    /// Two stores with the same history, one analysed with the baseline the
    /// previous cycle kept and one rebuilding it from the store: the same
    /// changes, inventory and findings. A config that shapes the graph
    /// differently makes the baseline unusable.
    #[tokio::test]
    async fn a_kept_baseline_gives_what_the_store_gives() {
        let size = crate::synth::Size::named("XS").expect("size XS");
        let t1: DateTime<Utc> = "2026-11-26T00:00:00Z".parse().expect("t1");
        let t2 = t1 + Duration::hours(1);
        let mut cycles = Vec::new();
        for keep in [true, false] {
            let dir = tempfile::tempdir().expect("tempdir");
            let generated = crate::synth::generate(dir.path(), size, 7).expect("generate");
            let config = accessgraph_config::load(&generated.config).expect("config");
            let store = Store::open(&config.store.url).await.expect("store");
            sync_all(&config, &store, t1).await;
            let first = analyze_and_record(&config, &store, t1, Vec::new(), None).await.expect("first");
            let baseline = first.into_baseline();
            let (mut changed, _, _) = crate::synth::apps_snapshot(size, 7, 5);
            // And a key deleted: the inventory diff compares the kept inventory.
            if let Some(keys) = changed["credentials"].as_array_mut() {
                keys.remove(0);
            }
            std::fs::write(&generated.apps_file, serde_json::to_vec(&changed).expect("json")).expect("write");
            sync_all(&config, &store, t2).await;
            if keep {
                let mut reshaped = config.clone();
                reshaped.aliases.push(accessgraph_config::Alias {
                    account: "apps:user:nobody".into(),
                    email: "nobody@corp.example".into(),
                });
                let dir = tempfile::tempdir().expect("tempdir");
                let other = crate::synth::generate(dir.path(), size, 7).expect("generate");
                let other_store = Store::open(&accessgraph_config::load(&other.config).expect("config").store.url)
                    .await
                    .expect("store");
                sync_all(&reshaped, &other_store, t1).await;
                let first = analyze_and_record(&reshaped, &other_store, t1, Vec::new(), None).await.expect("first");
                sync_all(&config, &other_store, t2).await;
                let cycle = analyze_and_record(&config, &other_store, t2, Vec::new(), Some(first.into_baseline()))
                    .await
                    .expect("second");
                assert!(!cycle.previous_kept, "a baseline built under another config is not used");
            }
            let cycle =
                analyze_and_record(&config, &store, t2, Vec::new(), keep.then_some(baseline)).await.expect("second");
            assert_eq!(cycle.previous_kept, keep);
            cycles.push(cycle);
        }
        let (kept, rebuilt) = (&cycles[0], &cycles[1]);
        assert!(!kept.changes.added.is_empty() && !kept.changes.removed.is_empty(), "the change moved access");
        assert_eq!(kept.changes, rebuilt.changes);
        assert_eq!(kept.inventory, rebuilt.inventory);
        assert_eq!(kept.inventory.credentials_gone.len(), 1, "{:?}", kept.inventory);
        let findings = |c: &Cycle| {
            c.analysis.findings.iter().map(|f| (f.fingerprint.clone(), f.detail.clone())).collect::<Vec<_>>()
        };
        assert!(kept.analysis.findings.iter().any(|f| f.rule == "drift.baseline"), "drift is compared");
        assert_eq!(findings(kept), findings(rebuilt));
    }

    /// The analysis's graph is streamed from the store edge by edge; it must
    /// be the graph built from the rows [`Store::load_rows`] gives, in the
    /// same order (ties in evidence paths break by it), now and in the past.
    #[tokio::test]
    async fn a_graph_streamed_from_the_store_is_the_one_built_from_its_rows() {
        let size = crate::synth::Size::named("XS").expect("size XS");
        let t1: DateTime<Utc> = "2026-11-26T00:00:00Z".parse().expect("t1");
        let t2 = t1 + Duration::hours(1);
        let dir = tempfile::tempdir().expect("tempdir");
        let generated = crate::synth::generate(dir.path(), size, 7).expect("generate");
        let config = accessgraph_config::load(&generated.config).expect("config");
        let store = Store::open(&config.store.url).await.expect("store");
        sync_all(&config, &store, t1).await;
        let (changed, _, _) = crate::synth::apps_snapshot(size, 7, 5);
        std::fs::write(&generated.apps_file, serde_json::to_vec(&changed).expect("json")).expect("write");
        sync_all(&config, &store, t2).await;
        let sources: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
        for at in [None, Some(t1)] {
            let streamed = load_graph(&config, &store, at).await.expect("streamed");
            let (nodes, edges) = store.load_rows(&sources, at).await.expect("rows");
            let counted = store.count_rows(&sources, at).await.expect("count");
            assert_eq!(counted, (nodes.len() as u64, edges.len() as u64), "the capacity hint is exact");
            let built = AccessGraph::build(nodes, edges, &config.catalog, &resolve_settings(&config)).expect("built");
            assert!(streamed.edges().count() > 100, "the graph has edges");
            assert_eq!(streamed.nodes().collect::<Vec<_>>(), built.nodes().collect::<Vec<_>>());
            assert_eq!(streamed.edges().collect::<Vec<_>>(), built.edges().collect::<Vec<_>>());
            let walk = |g: &AccessGraph| g.effective_access(t2).triples(g);
            assert_eq!(walk(&streamed), walk(&built));
        }
        let now = load_graph(&config, &store, None).await.expect("now");
        let then = load_graph(&config, &store, Some(t1)).await.expect("then");
        assert_ne!(now.edges().collect::<Vec<_>>(), then.edges().collect::<Vec<_>>(), "the change is seen");
    }

    fn baseline_on_ledger(cycle: &Cycle) -> bool {
        cycle.analysis.findings.iter().any(|f| f.rule == "drift.baseline" && f.object == "slow:dataset:ledger")
    }

    /// The daemon's interleaving: `slow` starts syncing, an analysis runs
    /// (triggered by another source) while it is still fetching, then its
    /// rows land. The access they add is new to the analysis after, which
    /// must report it: dating the rows at the sync's start made them part of
    /// the in-between analysis' snapshot, and the finding was lost.
    #[tokio::test]
    async fn access_landing_after_an_analysis_that_ran_during_its_sync_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(&dir.path().join("fast.json"), &export(false));
        write(&dir.path().join("slow.json"), &export(false));
        let config_path = dir.path().join("accessgraph.toml");
        std::fs::write(
            &config_path,
            "[store]\nurl = \"sqlite://store.db\"\n\n\
             [[source]]\nname = \"fast\"\nkind = \"snapshot\"\npath = \"fast.json\"\n\n\
             [[source]]\nname = \"slow\"\nkind = \"snapshot\"\npath = \"slow.json\"\n",
        )
        .expect("config");
        let config = accessgraph_config::load(&config_path).expect("valid config");
        let store = Store::open(&config.store.url).await.expect("store");
        for source in &config.sources {
            assert_eq!(sync_source_live(&store, source, Utc::now()).await.status, "succeeded");
        }
        let first = analyze_live(&config, &store, Vec::new(), None).await.expect("first analysis");
        assert!(!baseline_on_ledger(&first));

        write(&dir.path().join("slow.json"), &export(true));
        let started = Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        // While `slow` is still fetching, `fast` syncs and an analysis runs.
        sync_source_live(&store, &config.sources[0], Utc::now()).await;
        let between = analyze_live(&config, &store, Vec::new(), None).await.expect("analysis in between");
        assert!(!baseline_on_ledger(&between), "the grant has not landed yet");
        let slow = sync_source_live(&store, &config.sources[1], started).await;
        assert_eq!(slow.status, "succeeded");
        let after = analyze_live(&config, &store, Vec::new(), None).await.expect("analysis after");
        assert!(baseline_on_ledger(&after), "the admin grant that landed after the previous analysis is drift");
        let run = store.last_syncs().await.expect("runs").into_iter().find(|r| r.source == "slow").expect("slow run");
        assert_eq!(run.started_at.timestamp_micros(), started.timestamp_micros(), "the run keeps when it started");
        assert!(run.finished_at > between.now, "its rows are dated when they landed");
    }

    /// An analysis waits for a sync between its stamp and its commit.
    #[tokio::test]
    async fn an_analysis_instant_waits_for_syncs_in_flight() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("store");
        stamp_order_holds(&store, &store).await;
    }

    /// Across replicas too: two stores on one PostgreSQL database (two
    /// processes, as far as the server can tell) share the order.
    #[tokio::test]
    async fn replicas_share_the_stamp_order_on_postgres() {
        let Some(db) = crate::testdb::TestDb::new(crate::testdb::Kind::Postgres).await else {
            return;
        };
        let replica_a = Store::open(&db.url).await.expect("replica a");
        let replica_b = Store::open(&db.url).await.expect("replica b");
        stamp_order_holds(&replica_a, &replica_b).await;
        stamp_order_holds(&replica_b, &replica_a).await;
        // Syncs do not exclude each other.
        let one = replica_a.stamp_shared().await.expect("shared a");
        let two = tokio::time::timeout(std::time::Duration::from_secs(5), replica_b.stamp_shared()).await;
        assert!(two.is_ok(), "two syncs stamp at once");
        drop((one, two));
        db.cleanup().await;
    }

    /// A sync in flight on `syncing` holds back an analysis on `analyzing`
    /// until it lands.
    async fn stamp_order_holds(syncing: &Store, analyzing: &Store) {
        let wait = std::time::Duration::from_millis(200);
        let in_flight = syncing.stamp_shared().await.expect("shared");
        let waiting = tokio::time::timeout(wait, analyzing.stamp_exclusive()).await;
        assert!(waiting.is_err(), "the analysis waits while a sync is in flight");
        drop(in_flight);
        let taken = tokio::time::timeout(std::time::Duration::from_secs(5), analyzing.stamp_exclusive()).await;
        let analysis = taken.expect("and goes on once it landed").expect("exclusive");
        let blocked = tokio::time::timeout(wait, syncing.stamp_shared()).await;
        assert!(blocked.is_err(), "a sync does not stamp while an analysis reads");
        drop(analysis);
    }
}
