//! Per-source scheduling: one loop per source, `select!` between the next
//! cron instant (plus jitter) and the loop's stop signal.
//!
//! The sync runs inside the loop, so a source is never synced twice at once
//! by one loop; the next tick is computed after the sync ends, so ticks that
//! passed meanwhile (or while the daemon was down) are dropped, not replayed
//! in a burst. A per-name guard covers the moment a reload replaces a loop
//! whose sync is still running. Across replicas, the source's lease and a
//! "was this tick already synced?" check make a tick sync once.

use super::RunOptions;
use super::metrics::Skip;
use super::state::Shared;
use crate::pipeline;
use accessgraph_config::{Config, Schedule, SourceConfig};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// The schedule of a source that has none: every 15 minutes.
pub(crate) const DEFAULT_SCHEDULE: &str = "0 */15 * * * *";

/// The loops of the sources in force.
pub(crate) struct Scheduler {
    shared: Arc<Shared>,
    options: RunOptions,
    tasks: JoinSet<()>,
    /// Per source: the config its loop runs with, and the loop's stop
    /// handle (dropping it stops the loop at its next wait).
    loops: HashMap<String, (SourceConfig, oneshot::Sender<()>)>,
}

impl Scheduler {
    pub fn new(shared: Arc<Shared>, options: RunOptions) -> Scheduler {
        Scheduler { shared, options, tasks: JoinSet::new(), loops: HashMap::new() }
    }

    /// Makes the running loops match `config`: unchanged sources keep their
    /// loop; changed ones get a new loop (the old one finishes a sync in
    /// progress, then stops); removed ones stop.
    pub fn apply(&mut self, config: &Config) {
        self.loops.retain(|name, (old, _)| config.sources.iter().any(|s| &s.name == name && s == old));
        for source in &config.sources {
            if self.loops.contains_key(&source.name) {
                continue;
            }
            let schedule = match &source.schedule {
                Some(schedule) => schedule.clone(),
                None => match Schedule::parse(DEFAULT_SCHEDULE) {
                    Ok(schedule) => {
                        tracing::info!(source = %source.name, schedule = DEFAULT_SCHEDULE, "no schedule; using the default");
                        schedule
                    }
                    Err(error) => {
                        tracing::error!(source = %source.name, %error, "no usable schedule; not scheduled");
                        continue;
                    }
                },
            };
            let (stop_tx, stop_rx) = oneshot::channel();
            self.loops.insert(source.name.clone(), (source.clone(), stop_tx));
            self.tasks.spawn(source_loop(
                self.shared.clone(),
                source.clone(),
                schedule,
                self.options.max_jitter,
                stop_rx,
            ));
        }
    }

    /// Stops scheduling: loops end at their next wait.
    pub fn stop_all(&mut self) {
        self.loops.clear();
    }

    /// Waits up to `grace` for the loops to end; returns whether they all
    /// did and how long it took.
    pub async fn join(&mut self, grace: Duration) -> (bool, Duration) {
        let started = std::time::Instant::now();
        let done = tokio::time::timeout(grace, async { while self.tasks.join_next().await.is_some() {} }).await;
        (done.is_ok(), started.elapsed())
    }

    /// Abandons loops still running (their syncs roll back).
    pub fn abort(&mut self) {
        self.tasks.abort_all();
    }
}

/// A random delay for `tick`: at most `max`, and at most a tenth of the gap
/// to the following tick, so jitter never pushes a sync into the next tick.
pub(crate) fn jitter(schedule: &Schedule, tick: DateTime<Utc>, max: Duration) -> Duration {
    let period = schedule.next_after(tick).and_then(|next| (next - tick).to_std().ok()).unwrap_or(max);
    let bound = (period / 10).min(max);
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::random_range(0..nanos))
}

/// Sleeps until a wall-clock instant, re-reading the clock at least every
/// minute so a clock step (NTP, suspend) does not stretch the wait.
async fn sleep_until(at: DateTime<Utc>) {
    loop {
        let Ok(wait) = (at - Utc::now()).to_std() else {
            return;
        };
        if wait.is_zero() {
            return;
        }
        tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
    }
}

/// Schedule ticks strictly between `after` and `before`.
fn ticks_between(schedule: &Schedule, after: DateTime<Utc>, before: DateTime<Utc>) -> u64 {
    schedule.cron().after(&after).take_while(|t| *t < before).take(100_000).count() as u64
}

async fn source_loop(
    shared: Arc<Shared>,
    source: SourceConfig,
    schedule: Schedule,
    max_jitter: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    let mut after = Utc::now();
    let mut first = true;
    loop {
        let Some(tick) = schedule.next_after(after) else {
            tracing::warn!(source = %source.name, schedule = schedule.text(), "the schedule fires no more");
            return;
        };
        shared.update_source(&source.name, |state| {
            state.next_tick = Some(tick);
            if first {
                state.first_tick = Some(tick);
            }
        });
        first = false;
        let fire_at = tick + chrono::Duration::from_std(jitter(&schedule, tick, max_jitter)).unwrap_or_default();
        tokio::select! {
            biased;
            _ = &mut stop => return,
            _ = sleep_until(fire_at) => {}
        }
        run_tick(&shared, &source, tick).await;
        let now = Utc::now();
        let missed = ticks_between(&schedule, tick, now);
        if missed > 0 {
            shared.metrics.missed(&source.name, missed);
            tracing::warn!(source = %source.name, missed, "the sync outlasted schedule ticks; they are skipped, not replayed");
        }
        after = now.max(tick);
    }
}

/// One tick of one source: sync unless this process or another replica is
/// already on it, then ask for an analysis.
pub(crate) async fn run_tick(shared: &Shared, source: &SourceConfig, tick: DateTime<Utc>) {
    let guard = shared.sync_guard(&source.name);
    let Ok(_running) = guard.try_lock() else {
        skip(shared, source, Skip::StillRunning);
        return;
    };
    let lease = match shared.store.try_lease(&format!("source:{}", source.name)).await {
        Ok(Some(lease)) => lease,
        Ok(None) => {
            skip(shared, source, Skip::Leased);
            return;
        }
        Err(error) => {
            tracing::error!(source = %source.name, %error, "cannot take the source's lease; tick skipped");
            skip(shared, source, Skip::StoreUnavailable);
            return;
        }
    };
    // Under the lease: a replica whose jitter fired later than ours finds
    // our run (started at or after the tick) and leaves the tick alone.
    match shared.store.sync_attempted_since(&source.name, tick).await {
        Ok(false) => {}
        Ok(true) => {
            lease.release().await;
            skip(shared, source, Skip::AlreadySynced);
            return;
        }
        Err(error) => {
            lease.release().await;
            tracing::error!(source = %source.name, %error, "cannot read past syncs; tick skipped");
            skip(shared, source, Skip::StoreUnavailable);
            return;
        }
    }
    let now = Utc::now();
    shared.update_source(&source.name, |state| state.syncing_since = Some(now));
    // `sync_source` logs the summary line (stats, duration) and records a
    // failure; a sync lands only through its one transaction.
    let outcome = pipeline::sync_source_live(&shared.store, source, now).await;
    lease.release().await;
    shared.metrics.sync(&outcome, Utc::now().timestamp_micros() as f64 / 1e6);
    shared.update_source(&source.name, |state| {
        state.syncing_since = None;
        state.last = Some(outcome);
    });
    shared.analysis_wanted.notify_one();
}

fn skip(shared: &Shared, source: &SourceConfig, why: Skip) {
    tracing::debug!(source = %source.name, reason = why.as_str(), "tick skipped");
    shared.metrics.skipped(&source.name, why);
}
