//! The analysis worker and the delivery worker.
//!
//! Analyses run one at a time in this process (one worker) and across
//! replicas (the `analysis` lease); syncs that finish while one runs are
//! covered by a single next analysis (`Notify` keeps one permit). The
//! delivery worker drains due outbox rows after each analysis, and also
//! polls for retries coming due and rows queued by other replicas.

use super::RunOptions;
use super::state::{Latest, Shared};
use crate::pipeline;
use crate::report::Report;
use chrono::Utc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Snapshots shown in the HTML report's trend charts.
const TREND_SNAPSHOTS: i64 = 90;

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A dropped sender also means stop.
    let _ = stop.wait_for(|stop| *stop).await;
}

pub(super) async fn analysis_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            _ = shared.analysis_wanted.notified() => {}
        }
        analyze(&shared).await;
        shared.delivery_wanted.notify_one();
    }
}

/// One analysis of what the store holds now.
pub(crate) async fn analyze(shared: &Shared) {
    let lease = match shared.store.lease("analysis").await {
        Ok(lease) => lease,
        Err(error) => {
            tracing::error!(%error, "cannot take the analysis lease; analysis skipped");
            shared.metrics.analysis("failed", 0.0);
            return;
        }
    };
    // The clock is read under the lease, so analyses are recorded in the
    // order they ran across replicas (and after syncs stamped before it).
    let config = shared.config();
    let started = Instant::now();
    let baseline = shared.take_baseline();
    let result = pipeline::analyze_live(&config, &shared.store, shared.outcomes(&config), baseline).await;
    lease.release().await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(mut cycle) => {
            let findings = cycle.analysis.findings.len();
            let report = Report::from_cycle(&mut cycle);
            let report = match shared.store.analysis_history(TREND_SNAPSHOTS).await {
                Ok(history) => report.with_history(&history),
                Err(_) => report,
            };
            tracing::info!(
                findings,
                changes = cycle.reconciled.changes.len(),
                queued = cycle.reconciled.outbox_rows,
                duration_ms = (seconds * 1000.0) as u64,
                "analysis recorded"
            );
            shared.set_latest(Latest { report });
            shared.keep_baseline(cycle.into_baseline());
            shared.metrics.analysis("succeeded", seconds);
        }
        Err(error) => {
            tracing::error!(%error, "analysis failed");
            shared.metrics.analysis("failed", seconds);
        }
    }
    // The graph and the analysis are gone; keep only what is held.
    crate::memory::release_free_heap();
    tracing::debug!(rss_mib = crate::memory::resident_mib(), "analysis memory returned");
}

pub(super) async fn delivery_loop(shared: Arc<Shared>, options: RunOptions, mut stop: watch::Receiver<bool>) {
    loop {
        let config = shared.config();
        let now = Utc::now();
        let mut wait = options.outbox_poll;
        match pipeline::deliver_outbox(&config, &shared.store, now).await {
            Ok(delivery) => {
                shared.metrics.delivery(delivery.delivered, delivery.failed);
                if delivery.delivered > 0 || delivery.failed > 0 {
                    tracing::info!(
                        delivered = delivery.delivered,
                        failed = delivery.failed,
                        "remediation events delivered"
                    );
                }
                // Come back when the next retry is due (rows already due but
                // held by a mute or a broken sink are not worth spinning on).
                if let Ok(Some(due)) = shared.store.next_outbox_due().await
                    && let Ok(until) = (due - Utc::now()).to_std()
                {
                    wait = wait.min(until.max(Duration::from_millis(200)));
                }
            }
            Err(error) => tracing::error!(%error, "outbox delivery failed; will retry"),
        }
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            _ = shared.delivery_wanted.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
