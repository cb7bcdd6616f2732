//! `/metrics`: Prometheus text exposition format (version 0.0.4), written by
//! hand. Process counters live here; findings, posture and the outbox
//! backlog are read from the store at scrape time, so every replica reports
//! the shared truth.

use super::state::Shared;
use crate::pipeline::SourceOutcome;
use crate::store::SyncStats;
use accessgraph_graph::FindingStatus;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// The content type of the text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why a tick did not sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Skip {
    /// The previous sync of the source is still running in this process.
    StillRunning,
    /// Another replica holds the source's lease.
    Leased,
    /// Another replica already synced this tick.
    AlreadySynced,
    /// The store could not be asked.
    StoreUnavailable,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::StillRunning => "still_running",
            Skip::Leased => "leased_elsewhere",
            Skip::AlreadySynced => "already_synced",
            Skip::StoreUnavailable => "store_unavailable",
        }
    }
}

#[derive(Default)]
struct Inner {
    syncs: BTreeMap<(String, &'static str), u64>,
    sync_seconds_total: BTreeMap<String, f64>,
    last_duration: BTreeMap<String, f64>,
    last_success: BTreeMap<String, f64>,
    last_stats: BTreeMap<String, SyncStats>,
    skipped: BTreeMap<(String, Skip), u64>,
    /// Per source: requests, 304s, retries, rate-limit waits, bytes (HTTP sources).
    http: BTreeMap<String, [u64; 5]>,
    missed_ticks: BTreeMap<String, u64>,
    analyses: BTreeMap<&'static str, u64>,
    analysis_last_seconds: Option<f64>,
    delivered: u64,
    delivery_failures: u64,
    reloads: BTreeMap<&'static str, u64>,
}

/// Counters of this process.
#[derive(Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn sync(&self, outcome: &SourceOutcome, finished_unix: f64) {
        let seconds = outcome.duration_ms as f64 / 1000.0;
        self.with(|m| {
            *m.syncs.entry((outcome.name.clone(), outcome.status)).or_default() += 1;
            *m.sync_seconds_total.entry(outcome.name.clone()).or_default() += seconds;
            m.last_duration.insert(outcome.name.clone(), seconds);
            if let Some(requests) = &outcome.requests {
                let totals = m.http.entry(outcome.name.clone()).or_default();
                for (total, n) in totals.iter_mut().zip([
                    requests.requests,
                    requests.not_modified,
                    requests.retries,
                    requests.rate_limit_waits,
                    requests.bytes,
                ]) {
                    *total += n;
                }
            }
            if outcome.error.is_none() {
                m.last_success.insert(outcome.name.clone(), finished_unix);
                m.last_stats.insert(outcome.name.clone(), outcome.stats);
            }
        });
    }

    pub fn skipped(&self, source: &str, why: Skip) {
        self.with(|m| *m.skipped.entry((source.to_string(), why)).or_default() += 1);
    }

    pub fn missed(&self, source: &str, ticks: u64) {
        self.with(|m| *m.missed_ticks.entry(source.to_string()).or_default() += ticks);
    }

    pub fn analysis(&self, status: &'static str, seconds: f64) {
        self.with(|m| {
            *m.analyses.entry(status).or_default() += 1;
            m.analysis_last_seconds = Some(seconds);
        });
    }

    pub fn delivery(&self, delivered: u64, failed: u64) {
        self.with(|m| {
            m.delivered += delivered;
            m.delivery_failures += failed;
        });
    }

    pub fn reload(&self, result: &'static str) {
        self.with(|m| *m.reloads.entry(result).or_default() += 1);
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A float as the format writes it.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{value}")
    }
}

/// Builds one exposition: families are written whole, HELP and TYPE first.
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"{}\"", escape(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", number(value));
    }
}

/// The whole exposition.
pub(crate) async fn render(shared: &Shared) -> String {
    let mut out = Text(String::new());
    let config = shared.config();

    out.family("accessgraph_build_info", "gauge", "Version of the running accessgraph.");
    out.sample("accessgraph_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);

    out.family("accessgraph_source_syncing", "gauge", "1 while a sync of the source runs in this process.");
    for source in &config.sources {
        let syncing = shared.source_state(&source.name).syncing_since.is_some();
        out.sample(
            "accessgraph_source_syncing",
            &[("source", &source.name), ("kind", source.kind())],
            f64::from(u8::from(syncing)),
        );
    }

    // Process counters: copy them out, then write without the lock.
    let (syncs, seconds_total, last_duration, last_success, last_stats, skipped, missed, analyses, analysis_last) =
        shared.metrics.with(|m| {
            (
                m.syncs.clone(),
                m.sync_seconds_total.clone(),
                m.last_duration.clone(),
                m.last_success.clone(),
                m.last_stats.clone(),
                m.skipped.clone(),
                m.missed_ticks.clone(),
                m.analyses.clone(),
                m.analysis_last_seconds,
            )
        });
    let (delivered, delivery_failures, reloads, http) =
        shared.metrics.with(|m| (m.delivered, m.delivery_failures, m.reloads.clone(), m.http.clone()));

    out.family("accessgraph_syncs_total", "counter", "Syncs run by this process, by source and outcome.");
    for ((source, status), n) in &syncs {
        out.sample("accessgraph_syncs_total", &[("source", source), ("status", status)], *n as f64);
    }
    out.family("accessgraph_sync_duration_seconds", "gauge", "Wall time of the source's last sync.");
    for (source, seconds) in &last_duration {
        out.sample("accessgraph_sync_duration_seconds", &[("source", source)], *seconds);
    }
    out.family("accessgraph_sync_duration_seconds_total", "counter", "Wall time spent syncing the source.");
    for (source, seconds) in &seconds_total {
        out.sample("accessgraph_sync_duration_seconds_total", &[("source", source)], *seconds);
    }
    out.family(
        "accessgraph_sync_last_success_timestamp_seconds",
        "gauge",
        "Unix time the source's last successful sync (by this process) finished.",
    );
    for (source, at) in &last_success {
        out.sample("accessgraph_sync_last_success_timestamp_seconds", &[("source", source)], *at);
    }
    out.family(
        "accessgraph_sync_rows",
        "gauge",
        "Rows of the source's last successful sync: nodes, edges, opened, closed.",
    );
    for (source, stats) in &last_stats {
        for (what, n) in
            [("nodes", stats.nodes), ("edges", stats.edges), ("opened", stats.opened), ("closed", stats.closed)]
        {
            out.sample("accessgraph_sync_rows", &[("source", source), ("rows", what)], n as f64);
        }
    }
    out.family("accessgraph_sync_skipped_total", "counter", "Ticks that did not sync, by reason.");
    for ((source, why), n) in &skipped {
        out.sample("accessgraph_sync_skipped_total", &[("source", source), ("reason", why.as_str())], *n as f64);
    }
    out.family(
        "accessgraph_sync_ticks_missed_total",
        "counter",
        "Schedule ticks that passed while a sync of the source ran (dropped, not replayed).",
    );
    for (source, n) in &missed {
        out.sample("accessgraph_sync_ticks_missed_total", &[("source", source)], *n as f64);
    }
    for (i, (name, help)) in [
        ("accessgraph_http_requests_total", "HTTP requests sources sent (retries included)."),
        ("accessgraph_http_not_modified_total", "Conditional requests answered 304 Not Modified."),
        ("accessgraph_http_retries_total", "Retries after rate limits or transient failures."),
        ("accessgraph_http_rate_limit_waits_total", "Waits for an API's rate limit."),
        ("accessgraph_http_received_bytes_total", "Response body bytes received."),
    ]
    .into_iter()
    .enumerate()
    {
        out.family(name, "counter", help);
        for (source, totals) in &http {
            out.sample(name, &[("source", source)], totals[i] as f64);
        }
    }
    out.family("accessgraph_analyses_total", "counter", "Analyses run by this process, by outcome.");
    for (status, n) in &analyses {
        out.sample("accessgraph_analyses_total", &[("status", status)], *n as f64);
    }
    if let Some(seconds) = analysis_last {
        out.family("accessgraph_analysis_duration_seconds", "gauge", "Wall time of the last analysis.");
        out.sample("accessgraph_analysis_duration_seconds", &[], seconds);
    }
    out.family("accessgraph_outbox_delivered_total", "counter", "Remediation events delivered by this process.");
    out.sample("accessgraph_outbox_delivered_total", &[], delivered as f64);
    out.family(
        "accessgraph_outbox_delivery_failures_total",
        "counter",
        "Failed delivery attempts by this process (retried later).",
    );
    out.sample("accessgraph_outbox_delivery_failures_total", &[], delivery_failures as f64);
    out.family("accessgraph_config_reloads_total", "counter", "Configuration reloads, applied or rejected.");
    for (result, n) in &reloads {
        out.sample("accessgraph_config_reloads_total", &[("result", result)], *n as f64);
    }

    // The shared truth, from the store.
    let store_up = shared.store.ping().await.is_ok();
    out.family("accessgraph_store_up", "gauge", "1 when the store answers.");
    out.sample("accessgraph_store_up", &[], f64::from(u8::from(store_up)));
    if !store_up {
        return out.0;
    }
    if let Ok(counts) = shared.store.finding_counts().await {
        out.family("accessgraph_findings_open", "gauge", "Open findings by rule and severity.");
        let mut by_status: BTreeMap<&str, i64> = BTreeMap::new();
        for (status, rule, severity, n) in &counts {
            *by_status.entry(status.as_str()).or_default() += n;
            if *status == FindingStatus::Open {
                out.sample("accessgraph_findings_open", &[("rule", rule), ("severity", severity)], *n as f64);
            }
        }
        out.family("accessgraph_findings", "gauge", "Stored findings by status.");
        for status in [FindingStatus::Open, FindingStatus::Muted, FindingStatus::Resolved] {
            let n = by_status.get(status.as_str()).copied().unwrap_or(0);
            out.sample("accessgraph_findings", &[("status", status.as_str())], n as f64);
        }
    }
    if let Ok(backlog) = shared.store.outbox_backlog().await {
        out.family("accessgraph_outbox_pending", "gauge", "Remediation events waiting for delivery.");
        out.sample("accessgraph_outbox_pending", &[], backlog as f64);
    }
    if let Ok(history) = shared.store.analysis_history(1).await
        && let Some((at, summary)) = history.last()
    {
        out.family("accessgraph_last_analysis_timestamp_seconds", "gauge", "Unix time of the latest analysis.");
        out.sample("accessgraph_last_analysis_timestamp_seconds", &[], at.timestamp_micros() as f64 / 1e6);
        // Every numeric posture figure (DESIGN.md): standing secrets, share
        // of time-bound access, ownerless identities, governed systems, …
        if let Some(posture) = summary.get("posture").and_then(|p| p.as_object()) {
            for (key, value) in posture {
                let Some(value) = value.as_f64() else { continue };
                if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    continue;
                }
                let name = format!("accessgraph_posture_{key}");
                out.family(&name, "gauge", &format!("Posture figure `{key}` of the latest analysis."));
                out.sample(&name, &[], value);
            }
        }
    }
    out.0
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut text = Text(String::new());
        text.sample("m", &[("a", "x\"y\\z\nw")], 1.5);
        assert_eq!(text.0, "m{a=\"x\\\"y\\\\z\\nw\"} 1.5\n");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(3.0), "3");
    }
}
