//! `accessgraph run`: the daemon. Each source syncs on its own cron schedule
//! (with a little jitter); after a sync the graph is re-analyzed, findings
//! reconciled and the outbox delivered; an HTTP API serves health, metrics,
//! findings and access questions. SIGTERM/SIGINT stop it cleanly, SIGHUP
//! reloads the configuration.
//!
//! Tasks (each takes its shutdown signal as an argument, mini-redis style):
//!
//! - one scheduling loop per source ([`scheduler`]): `select!` between the
//!   next cron instant and its stop signal; the sync itself runs inline, so a
//!   source never syncs twice at once and ticks missed meanwhile are dropped,
//!   not replayed;
//! - the analysis worker ([`worker`]): analyses run one at a time, coalescing
//!   the syncs that finished while one was running;
//! - the delivery worker ([`worker`]): drains the outbox now and whenever a
//!   row is due;
//! - the HTTP server ([`server`]).
//!
//! Several replicas may share one PostgreSQL store: a sync runs under the
//! source's lease and is skipped when another replica has taken this tick;
//! analyses take a lease too; the outbox is claimed with `SKIP LOCKED`.

mod metrics;
mod notify;
mod scheduler;
mod server;
mod state;
mod worker;

#[cfg(test)]
mod tests;

use crate::store::{Store, StoreError};
use accessgraph_config::Config;
use state::Shared;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// `accessgraph run` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Seconds that in-flight syncs, analyses and deliveries get to finish on
    /// SIGTERM/SIGINT; after that they are abandoned (a sync lands in one
    /// transaction, so an abandoned one writes nothing).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub grace_period: u64,
}

/// How the daemon behaves (flags, and knobs tests turn).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Time in-flight work gets on shutdown before it is abandoned.
    pub grace: Duration,
    /// Upper bound of the random delay added to each tick (it is also at
    /// most a tenth of the schedule's period), so sources on the same
    /// schedule do not all fire at once.
    pub max_jitter: Duration,
    /// Longest wait between two looks at the outbox (rows queued by other
    /// replicas, retries coming due).
    pub outbox_poll: Duration,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            grace: Duration::from_secs(30),
            max_jitter: Duration::from_secs(10),
            outbox_poll: Duration::from_secs(30),
        }
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration cannot be used (exit 2).
    #[error("{0}")]
    Config(String),
    /// The store failed at start-up.
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    /// The HTTP API could not bind its address.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

impl RunError {
    /// The process exit code (CONTRACT §1: 2 for configuration, 4 internal).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) => crate::cli::exit::USAGE,
            _ => crate::cli::exit::INTERNAL,
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT; SIGHUP reloads `config.path`.
pub async fn run(config: Config, args: &RunArgs) -> Result<(), RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(RunError::Signals)?;
    let store = Store::open(&config.store.url).await?;
    let addr = config.server.listen;
    let listener = TcpListener::bind(addr).await.map_err(|source| RunError::Listen { addr, source })?;
    let (reload_tx, reload_rx) = mpsc::channel(1);
    // The handler only forwards: loading and validating happen in `serve`.
    // A full channel means a reload is already pending, which will read the
    // newest file anyway.
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let _ = reload_tx.try_send(());
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "stopping"),
            _ = interrupt.recv() => tracing::info!(signal = "SIGINT", "stopping"),
        }
    };
    let options = RunOptions { grace: Duration::from_secs(args.grace_period), ..RunOptions::default() };
    serve(config, store, listener, options, reload_rx, shutdown).await
}

/// Runs the daemon on an open store and a bound listener until `shutdown`
/// resolves. Each message on `reloads` re-reads the configuration file
/// (`config.path`); an invalid one is logged and the running one kept.
pub async fn serve(
    config: Config,
    store: Store,
    listener: TcpListener,
    options: RunOptions,
    mut reloads: mpsc::Receiver<()>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let token = state::resolve_token(&config).map_err(RunError::Config)?;
    let local = listener.local_addr().ok();
    // Config validation refuses this already; the address actually bound is
    // checked again so no path (tests, a reload) serves the API openly.
    if let Some(why) = local.and_then(|addr| accessgraph_config::exposure_problem(addr, token.is_some())) {
        return Err(RunError::Config(format!("{}: {why}", config.path.display())));
    }
    let mut config = config;
    if let Some(local) = local {
        // The address in force is the one bound (a reload compares with it).
        config.server.listen = local;
    }
    let shared = Arc::new(Shared::new(config, token, store));
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut server_stop = stop_rx.clone();
    let app = server::router(shared.clone());
    let server = tokio::spawn(async move {
        let stopping = async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(stopping).await {
            tracing::error!(%error, "HTTP server failed");
        }
    });

    let mut workers = JoinSet::new();
    workers.spawn(worker::analysis_loop(shared.clone(), stop_rx.clone()));
    workers.spawn(worker::delivery_loop(shared.clone(), options.clone(), stop_rx.clone()));
    let mut scheduler = scheduler::Scheduler::new(shared.clone(), options.clone());
    scheduler.apply(&shared.config());
    // Data synced before a restart is analyzed now, so metrics, the report
    // and findings reflect it without waiting for the next tick.
    match shared.store.success_span().await {
        Ok(spans) if !spans.is_empty() => shared.analysis_wanted.notify_one(),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot read past syncs"),
    }
    let config = shared.config();
    tracing::info!(listen = ?local.unwrap_or(config.server.listen), sources = config.sources.len(),
        store = ?shared.store.backend(), "accessgraph daemon running");
    notify::ready();

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(()) = reloads.recv() => reload(&shared, &mut scheduler),
        }
    }

    notify::stopping();
    tracing::info!(grace_ms = options.grace.as_millis() as u64, "no new syncs; waiting for work in flight");
    scheduler.stop_all();
    let _ = stop_tx.send(true);
    let mut finished = scheduler.join(options.grace).await;
    let remaining = options.grace.saturating_sub(finished.1);
    finished.0 &= tokio::time::timeout(remaining, async { while workers.join_next().await.is_some() {} }).await.is_ok();
    if !finished.0 {
        // Dropping a sync before its commit rolls its transaction back:
        // nothing of it lands.
        tracing::warn!("grace period over: abandoning work in flight (nothing partial is written)");
        scheduler.abort();
        workers.abort_all();
        while workers.join_next().await.is_some() {}
    }
    // `stop_tx` already asked the server to stop; give open connections a moment.
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    tracing::info!("stopped");
    Ok(())
}

/// Re-reads the configuration file; keeps the running configuration when
/// the new one is invalid or cannot be applied.
fn reload(shared: &Arc<Shared>, scheduler: &mut scheduler::Scheduler) {
    let old = shared.config();
    let path = old.path.clone();
    tracing::info!(path = %path.display(), "reloading the configuration");
    let mut new = match accessgraph_config::load(&path) {
        Ok(config) => config,
        Err(problems) => {
            shared.metrics.reload("rejected");
            tracing::error!(path = %path.display(), problems = %problems,
                "configuration reload rejected; the running configuration stays in force");
            return;
        }
    };
    let token = match state::resolve_token(&new) {
        Ok(token) => token,
        Err(error) => {
            shared.metrics.reload("rejected");
            tracing::error!(%error, "configuration reload rejected; the running configuration stays in force");
            return;
        }
    };
    if new.store.url != old.store.url {
        tracing::warn!("[store] url changes take effect on restart; the running store is kept");
        new.store = old.store.clone();
    }
    if new.server.listen != old.server.listen {
        tracing::warn!(listen = %old.server.listen, "[server] listen changes take effect on restart");
        new.server.listen = old.server.listen;
    }
    // The running listener stays where it is: a reload that drops the token
    // must not open an API that listens beyond loopback.
    if let Some(why) = accessgraph_config::exposure_problem(new.server.listen, token.is_some()) {
        shared.metrics.reload("rejected");
        tracing::error!(error = %why, "configuration reload rejected; the running configuration stays in force");
        return;
    }
    shared.replace_config(new, token);
    scheduler.apply(&shared.config());
    shared.metrics.reload("applied");
    // Policy, catalog, rules or sinks may have changed: re-analyze what is stored.
    shared.analysis_wanted.notify_one();
    tracing::info!(sources = shared.config().sources.len(), "configuration reloaded");
}
