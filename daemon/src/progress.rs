//! Progress on an interactive terminal: one line per source while `scan`
//! syncs, then the analysis. Nothing is drawn when stderr or the report's
//! destination is not a terminal, with `--quiet`, or with JSON logs; log
//! lines written meanwhile go through [`log_writer`], which lifts the bars
//! out of the way so the two never interleave.

use crate::pipeline::{self, SourceOutcome};
use crate::store::Store;
use accessgraph_config::Config;
use chrono::{DateTime, Utc};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

/// The bars being drawn, if any (log lines must suspend them).
static ACTIVE: Mutex<Option<MultiProgress>> = Mutex::new(None);

fn set_active(multi: Option<MultiProgress>) {
    if let Ok(mut active) = ACTIVE.lock() {
        *active = multi;
    }
}

/// Whether `scan` should draw progress: a person is watching stderr and the
/// report does not go into a pipe or file through stdout.
pub fn wanted(quiet: bool, text_logs: bool, report_to_file: bool) -> bool {
    !quiet && text_logs && std::io::stderr().is_terminal() && (report_to_file || std::io::stdout().is_terminal())
}

/// Log output on stderr that suspends any progress bars while it writes.
pub fn log_writer() -> LogWriter {
    LogWriter { buffer: Vec::new() }
}

/// Buffers one log event and writes it on drop (tracing formats each event
/// into one writer, then drops it).
pub struct LogWriter {
    buffer: Vec<u8>,
}

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let write = || {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(&self.buffer);
            let _ = stderr.flush();
        };
        let multi = ACTIVE.lock().ok().and_then(|active| active.clone());
        match multi {
            Some(multi) => multi.suspend(write),
            None => write(),
        }
    }
}

/// Progress bars of one `scan`; dropping it stops drawing.
pub struct Progress {
    multi: MultiProgress,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Progress {
    /// Starts drawing on stderr.
    pub fn start() -> Progress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        set_active(Some(multi.clone()));
        Progress { multi }
    }

    fn spinner(&self, prefix: &str, message: String, width: usize) -> ProgressBar {
        let template = format!("{{spinner:.cyan}} {{prefix:<{width}.bold}}  {{wide_msg}} {{elapsed:>4}}");
        let bar = self.multi.add(
            ProgressBar::new_spinner()
                .with_style(style(&template))
                .with_prefix(crate::text::clean(prefix))
                .with_message(message),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    /// [`pipeline::sync_all`] with one bar per source.
    pub async fn sync_all(&self, config: &Config, store: &Store, now: DateTime<Utc>) -> Vec<SourceOutcome> {
        let width = config.sources.iter().map(|s| s.name.chars().count()).max().unwrap_or(0).max(9);
        let mut tasks = tokio::task::JoinSet::new();
        for (i, source) in config.sources.iter().enumerate() {
            let bar = self.spinner(&source.name, format!("syncing ({})", source.settings.kind()), width);
            let store = store.clone();
            let source = source.clone();
            tasks.spawn(async move {
                let outcome = pipeline::sync_source(&store, &source, now).await;
                let done = match &outcome.error {
                    None => format!(
                        "{} nodes, {} edges; {} opened, {} closed ({} ms)",
                        outcome.stats.nodes,
                        outcome.stats.edges,
                        outcome.stats.opened,
                        outcome.stats.closed,
                        outcome.duration_ms
                    ),
                    Some(error) => format!("failed: {}", crate::text::clean(error)),
                };
                let template = if outcome.error.is_none() {
                    format!("\u{2714} {{prefix:<{width}.bold}}  {{wide_msg}}")
                } else {
                    format!("\u{2718} {{prefix:<{width}.bold.red}}  {{wide_msg:.red}}")
                };
                bar.set_style(style(&template));
                bar.finish_with_message(done);
                (i, outcome)
            });
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

    /// A spinner for a step after the syncs (analysis, filing).
    pub fn step(&self, name: &str, message: &str) -> Step {
        Step { bar: self.spinner(name, message.to_string(), 9) }
    }
}

/// One step's spinner.
pub struct Step {
    bar: ProgressBar,
}

impl Step {
    /// Marks the step done with a summary.
    pub fn done(self, message: String) {
        self.bar.set_style(style("\u{2714} {prefix:<9.bold}  {wide_msg}"));
        self.bar.finish_with_message(message);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        set_active(None);
    }
}
