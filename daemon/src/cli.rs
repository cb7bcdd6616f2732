//! The `accessgraph` command line (CONTRACT §1).

use crate::pipeline;
use crate::query;
use crate::report::{self, Format, Report};
use crate::store::Store;
use accessgraph_config::Config;
use accessgraph_graph::{FindingStatus, Severity};
use anyhow::{Context as _, Result, anyhow};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit codes of CONTRACT §1 (4 is ours: the store or another internal step failed).
pub mod exit {
    /// Ran (findings or not).
    pub const OK: u8 = 0;
    /// Findings at or above `--fail-on`.
    pub const FINDINGS: u8 = 1;
    /// Bad config or usage.
    pub const USAGE: u8 = 2;
    /// A source failed (the report was still printed for the rest).
    pub const SOURCE_FAILED: u8 = 3;
    /// The store or another internal step failed.
    pub const INTERNAL: u8 = 4;
}

#[derive(Parser, Debug)]
#[command(
    name = "accessgraph",
    version,
    about = "Who or what could do what, and when: an access graph of people, AI agents and credentials."
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "ACCESSGRAPH_CONFIG")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Only log warnings and errors.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One full cycle: sync, analyze, record, file, print the drift report.
    Scan(ScanArgs),
    /// Validate config, catalog and policy; print every problem.
    Check,
    /// List stored findings, or mute one.
    Findings(FindingsArgs),
    /// Effective-access questions answered from the store.
    Query(QueryArgs),
    /// Export the graph.
    Export(ExportArgs),
    /// The daemon: each source on its schedule, analysis after each sync, filing, HTTP API.
    Run(crate::daemon::RunArgs),
}

#[derive(Args, Debug)]
struct ScanArgs {
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    format: Format,
    /// Write the report here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Do not deliver remediation requests now (they stay queued in the outbox).
    #[arg(long)]
    no_file: bool,
    /// Evaluate ages and expiries as of this instant (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    now: Option<DateTime<Utc>>,
    /// Exit 1 when an open finding is at or above this severity.
    #[arg(long, value_parser = parse_severity)]
    fail_on: Option<Severity>,
}

#[derive(Args, Debug)]
struct FindingsArgs {
    #[command(subcommand)]
    action: Option<FindingsAction>,
    /// open, resolved, muted or all.
    #[arg(long, default_value = "open")]
    status: String,
    /// Rule id or glob (`secret.*`).
    #[arg(long)]
    rule: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    format: Format,
}

#[derive(Subcommand, Debug)]
enum FindingsAction {
    /// Suppress a finding (nothing is filed) until a time.
    Mute {
        /// The finding's fingerprint.
        fingerprint: String,
        /// Why (kept with the finding).
        #[arg(long)]
        reason: String,
        /// RFC 3339 instant the mute expires.
        #[arg(long, value_parser = parse_time)]
        until: DateTime<Utc>,
    },
}

#[derive(Args, Debug)]
struct QueryArgs {
    #[command(subcommand)]
    question: Question,
    /// Output format.
    #[arg(long, value_enum, default_value_t = QueryFormat::Table, global = true)]
    format: QueryFormat,
    /// Evaluate expiries as of this instant (RFC 3339).
    #[arg(long, value_parser = parse_time, global = true)]
    now: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum QueryFormat {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
enum Question {
    /// Which principals can act on a resource.
    WhoCan {
        /// Resource node id.
        #[arg(long)]
        resource: String,
        /// Only this action.
        #[arg(long)]
        action: Option<String>,
        /// Answer for a past instant.
        #[arg(long, value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
    },
    /// What an identity can do.
    WhatCan {
        /// Identity node id (`person:EMAIL` or an account/agent id).
        #[arg(long)]
        identity: String,
        /// Answer for a past instant.
        #[arg(long, value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
    },
    /// The shortest access path between two nodes.
    Path {
        /// Start node id.
        #[arg(long)]
        from: String,
        /// End node id.
        #[arg(long)]
        to: String,
        /// Answer for a past instant.
        #[arg(long, value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
    },
    /// Everything a credential's holder reaches.
    BlastRadius {
        /// Credential node id.
        #[arg(long)]
        credential: String,
        /// Answer for a past instant.
        #[arg(long, value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
    },
    /// Effective access changes between two instants.
    Diff {
        /// Earlier instant.
        #[arg(long, value_parser = parse_time)]
        from: DateTime<Utc>,
        /// Later instant.
        #[arg(long, value_parser = parse_time)]
        to: DateTime<Utc>,
    },
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// Export format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    format: ExportFormat,
    /// The graph at a past instant.
    #[arg(long, value_parser = parse_time)]
    at: Option<DateTime<Utc>>,
    /// Write here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ExportFormat {
    Json,
    /// GraphML for Gephi, yEd, NetworkX.
    Graphml,
    /// Graphviz DOT.
    Dot,
    /// A Cypher script for Neo4j.
    Cypher,
}

fn parse_time(value: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{value}` is not an RFC 3339 time (e.g. 2026-11-27T00:00:00Z): {e}"))
}

fn parse_severity(value: &str) -> Result<Severity, String> {
    Severity::parse(value).ok_or_else(|| format!("`{value}` is not a severity (low, medium, high, critical)"))
}

/// An error that maps to an exit code.
#[derive(Debug)]
struct Exit(u8, anyhow::Error);

fn usage(error: impl Into<anyhow::Error>) -> Exit {
    Exit(exit::USAGE, error.into())
}

fn internal(error: impl Into<anyhow::Error>) -> Exit {
    Exit(exit::INTERNAL, error.into())
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(Exit(code, error)) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

fn init_logging(cli: &Cli) {
    let default = if cli.quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(crate::progress::log_writer);
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

fn config_path(cli: &Cli) -> Result<&Path, Exit> {
    cli.config
        .as_deref()
        .ok_or_else(|| usage(anyhow!("no configuration: pass --config FILE or set ACCESSGRAPH_CONFIG")))
}

fn load_config(cli: &Cli) -> Result<Config, Exit> {
    let path = config_path(cli)?;
    accessgraph_config::load(path).map_err(|problems| {
        usage(anyhow!(
            "invalid configuration ({} problem{}):\n{problems}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ))
    })
}

async fn open_store(config: &Config) -> Result<Store, Exit> {
    Store::open(&config.store.url).await.map_err(|e| internal(anyhow::Error::new(e).context("opening the store")))
}

fn write_output(output: Option<&Path>, text: &str) -> Result<(), Exit> {
    write_output_with(output, |out| out.write_all(text.as_bytes()))
}

/// Writes `output` (stdout when None) through `write`, buffered.
fn write_output_with(
    output: Option<&Path>,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), Exit> {
    use std::io::Write;
    match output {
        Some(path) => {
            let written = std::fs::File::create(path).and_then(|file| {
                let mut out = std::io::BufWriter::new(file);
                write(&mut out)?;
                out.flush()
            });
            written.with_context(|| format!("writing {}", path.display())).map_err(internal)
        }
        None => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            // A closed pipe (`| head`) is not an error worth a stack of messages.
            let _ = write(&mut stdout);
            let _ = stdout.flush();
            Ok(())
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8, Exit> {
    match &cli.command {
        Command::Check => check(&cli),
        Command::Scan(args) => scan(&cli, args).await,
        Command::Findings(args) => findings(&cli, args).await,
        Command::Query(args) => run_query(&cli, args).await,
        Command::Export(args) => export(&cli, args).await,
        Command::Run(args) => crate::daemon::run(load_config(&cli)?, args)
            .await
            .map(|()| exit::OK)
            .map_err(|e| Exit(e.exit_code(), e.into())),
    }
}

/// `check`: every problem (exit 2 on any), then every warning: things that
/// are valid but unsafe (secret files others can read, configs others can
/// write, strings that look like inline credentials). Warnings alone exit 0.
fn check(cli: &Cli) -> Result<u8, Exit> {
    let path = config_path(cli)?;
    let (mut problems, mut warnings) = match accessgraph_config::load(path) {
        Ok(config) => (accessgraph_config::check_secrets(&config), accessgraph_config::warnings(&config)),
        Err(problems) => (problems.0, Vec::new()),
    };
    problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    warnings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    for problem in &problems {
        println!("{problem}");
    }
    for warning in &warnings {
        let mut shown = warning.clone();
        shown.message = format!("warning: {}", warning.message);
        println!("{shown}");
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if problems.is_empty() {
        match warnings.len() {
            0 => println!("{}: ok", path.display()),
            n => println!("{}: ok, with {}", path.display(), plural(n, "warning")),
        }
        return Ok(exit::OK);
    }
    match warnings.len() {
        0 => eprintln!("{} found", plural(problems.len(), "problem")),
        n => eprintln!("{} and {} found", plural(problems.len(), "problem"), plural(n, "warning")),
    }
    Ok(exit::USAGE)
}

async fn scan(cli: &Cli, args: &ScanArgs) -> Result<u8, Exit> {
    let config = load_config(cli)?;
    let store = open_store(&config).await?;
    let now = args.now.unwrap_or_else(Utc::now);
    let text_logs = matches!(cli.log_format, LogFormat::Text);
    let progress =
        crate::progress::wanted(cli.quiet, text_logs, args.output.is_some()).then(crate::progress::Progress::start);
    let sources = match &progress {
        Some(progress) => progress.sync_all(&config, &store, now).await,
        None => pipeline::sync_all(&config, &store, now).await,
    };
    let any_failed = sources.iter().any(|s| s.error.is_some());
    let step = progress.as_ref().map(|p| p.step("analysis", "analyzing"));
    let mut cycle = pipeline::analyze_and_record(&config, &store, now, sources, None).await.map_err(internal)?;
    if let Some(step) = step {
        step.done(format!("{} findings", cycle.analysis.findings.len()));
    }
    drop(progress);
    // The report takes the findings; the graph and the access are not
    // needed while the requests are filed.
    let mut report = Report::from_cycle_for(&mut cycle, args.format);
    tracing::debug!(rss_mib = crate::memory::resident_mib(), "report built");
    drop(cycle);
    // What the analysis freed goes back before filing and rendering, which
    // would otherwise peak on top of it.
    crate::memory::release_free_heap();
    tracing::debug!(rss_mib = crate::memory::resident_mib(), "analysis released");
    if !args.no_file {
        let delivery = pipeline::deliver_outbox(&config, &store, now).await.map_err(internal)?;
        tracing::info!(delivered = delivery.delivered, failed = delivery.failed, "remediation requests filed");
    }
    if args.format == Format::Html {
        report = report.with_history(&store.analysis_history(TREND_SNAPSHOTS).await.map_err(internal)?);
    }
    write_output_with(args.output.as_deref(), |out| report.write(args.format, out))?;
    tracing::debug!(rss_mib = crate::memory::resident_mib(), "report written");
    store.settle_background().await;
    if any_failed {
        return Ok(exit::SOURCE_FAILED);
    }
    if args.fail_on.is_some_and(|threshold| report.has_open_at_or_above(threshold)) {
        return Ok(exit::FINDINGS);
    }
    Ok(exit::OK)
}

/// Past snapshots drawn in the HTML report's trend charts.
const TREND_SNAPSHOTS: i64 = 90;

async fn findings(cli: &Cli, args: &FindingsArgs) -> Result<u8, Exit> {
    let config = load_config(cli)?;
    let store = open_store(&config).await?;
    if let Some(FindingsAction::Mute { fingerprint, reason, until }) = &args.action {
        let muted = store.mute(fingerprint, reason, *until).await.map_err(internal)?;
        if !muted {
            return Err(usage(anyhow!("no open finding has fingerprint `{fingerprint}`")));
        }
        println!("muted {fingerprint} until {}", until.to_rfc3339());
        return Ok(exit::OK);
    }
    let status = match args.status.as_str() {
        "all" => None,
        other => Some(
            FindingStatus::parse(other)
                .ok_or_else(|| usage(anyhow!("--status must be open, resolved, muted or all (got `{other}`)")))?,
        ),
    };
    let list = store.findings(status, args.rule.as_deref()).await.map_err(internal)?;
    let text = match args.format {
        Format::Json => report::findings_json(&list),
        Format::Ocsf => report::findings_ocsf(&list),
        Format::Html => report::findings_html(&list, Utc::now()),
        Format::Markdown => {
            let mut rows =
                vec![["FINGERPRINT", "SEVERITY", "STATUS", "RULE", "SUBJECT", "OBJECT"].map(String::from).to_vec()];
            for f in &list {
                rows.push(vec![
                    f.fingerprint.clone(),
                    f.severity.as_str().into(),
                    f.status.as_str().into(),
                    f.rule.clone(),
                    f.subject.clone(),
                    f.object.clone(),
                ]);
            }
            crate::text::table(&rows)
        }
    };
    write_output(None, &text)?;
    Ok(exit::OK)
}

async fn run_query(cli: &Cli, args: &QueryArgs) -> Result<u8, Exit> {
    let config = load_config(cli)?;
    let store = open_store(&config).await?;
    let now = args.now.unwrap_or_else(Utc::now);
    let json = args.format == QueryFormat::Json;
    let map_err = |e: query::QueryError| match e {
        query::QueryError::UnknownNode(..) => usage(e),
        other => internal(other),
    };
    let text = match &args.question {
        Question::WhoCan { resource, action, at } => {
            let rows = query::who_can(&config, &store, resource, action.as_deref(), *at, now).await.map_err(map_err)?;
            if json {
                pretty(&serde_json::json!({ "resource": resource, "action": action, "at": at, "access": rows }))
            } else {
                query::access_table(&rows)
            }
        }
        Question::WhatCan { identity, at } => {
            let rows = query::what_can(&config, &store, identity, *at, now).await.map_err(map_err)?;
            if json {
                pretty(&serde_json::json!({ "identity": identity, "at": at, "access": rows }))
            } else {
                query::access_table(&rows)
            }
        }
        Question::BlastRadius { credential, at } => {
            let rows = query::blast_radius(&config, &store, credential, *at, now).await.map_err(map_err)?;
            if json {
                pretty(&serde_json::json!({ "credential": credential, "at": at, "access": rows }))
            } else {
                query::access_table(&rows)
            }
        }
        Question::Path { from, to, at } => {
            let found = query::path(&config, &store, from, to, *at).await.map_err(map_err)?;
            if json {
                pretty(&serde_json::json!({ "from": from, "to": to, "at": at, "path": found }))
            } else {
                match found {
                    Some(path) => format!("{}\n", crate::text::clean(&path.join(" → "))),
                    None => format!("no access path from {} to {}\n", crate::text::clean(from), crate::text::clean(to)),
                }
            }
        }
        Question::Diff { from, to } => {
            let changes = query::access_diff(&config, &store, *from, *to).await.map_err(map_err)?;
            if json {
                pretty(&serde_json::to_value(&changes).unwrap_or_default())
            } else {
                let mut rows = vec![["CHANGE", "PRINCIPAL", "ACTION", "RESOURCE"].map(String::from).to_vec()];
                for (label, list) in [("added", &changes.added), ("removed", &changes.removed)] {
                    for (p, r, a) in list {
                        rows.push(vec![label.into(), p.clone(), a.clone(), r.clone()]);
                    }
                }
                crate::text::table(&rows)
            }
        }
    };
    write_output(None, &text)?;
    Ok(exit::OK)
}

fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

async fn export(cli: &Cli, args: &ExportArgs) -> Result<u8, Exit> {
    let config = load_config(cli)?;
    let store = open_store(&config).await?;
    let graph = pipeline::load_graph(&config, &store, args.at).await.map_err(internal)?;
    let text = match args.format {
        ExportFormat::Json => crate::export::to_json(&graph),
        ExportFormat::Graphml => crate::export::to_graphml(&graph),
        ExportFormat::Dot => crate::export::to_dot(&graph),
        ExportFormat::Cypher => crate::export::to_cypher(&graph),
    };
    write_output(args.output.as_deref(), &text)?;
    Ok(exit::OK)
}
