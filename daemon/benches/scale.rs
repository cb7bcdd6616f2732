//! The scale benchmark (issue 9): a synthetic enterprise per size, each phase
//! timed with its peak RSS. Run: `cargo bench -p accessgraph-daemon --bench scale -- S M`
//! (sizes XS, S, M, L). Figures go to BENCHMARKS.md.

use accessgraph_connectors::snapshot::parse_and_map;
use accessgraph_daemon::store::Store;
use accessgraph_daemon::{memory, pipeline, query, synth};
use accessgraph_graph::access::AccessGraph;
use accessgraph_graph::rules::{self, Context};
use accessgraph_graph::{Fragment, PolicyEngine, analyze};
use chrono::{DateTime, Duration, Utc};
use std::time::Instant;

/// Resets the peak after handing the heap earlier phases freed back to the
/// kernel, so that a phase's RSS is what is live plus what the phase itself
/// takes (glibc keeps freed memory mapped, and a phase reusing it shows no
/// growth).
fn reset_peak() {
    memory::release_free_heap();
    // Linux: writing 5 resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The high-water mark since the last reset, in MiB.
fn peak_mib() -> f64 {
    memory::status_mib("VmHWM").unwrap_or(0.0)
}

/// Resident memory now, in MiB.
fn rss_mib() -> f64 {
    memory::status_mib("VmRSS").unwrap_or(0.0)
}

struct Phase {
    name: String,
    seconds: f64,
    peak_mib: f64,
    /// Peak minus the resident memory when the phase started: what the
    /// phase itself needed on top of what earlier phases still hold.
    growth_mib: f64,
    note: String,
}

/// Resets the peak and logs the start (`RUST_LOG=bench=info`), so that a
/// profiler can be attached to one phase.
fn phase_started(name: &str) -> f64 {
    reset_peak();
    tracing::info!(target: "bench", "phase started: {name}");
    rss_mib()
}

fn measure<T>(phases: &mut Vec<Phase>, name: &str, work: impl FnOnce() -> T) -> T {
    let before = phase_started(name);
    let started = Instant::now();
    let out = work();
    let peak = peak_mib();
    phases.push(Phase {
        name: name.into(),
        seconds: started.elapsed().as_secs_f64(),
        peak_mib: peak,
        growth_mib: (peak - before).max(0.0),
        note: String::new(),
    });
    out
}

async fn measure_async<T>(phases: &mut Vec<Phase>, name: &str, work: impl std::future::Future<Output = T>) -> T {
    let before = phase_started(name);
    let started = Instant::now();
    let out = work.await;
    let peak = peak_mib();
    phases.push(Phase {
        name: name.into(),
        seconds: started.elapsed().as_secs_f64(),
        peak_mib: peak,
        growth_mib: (peak - before).max(0.0),
        note: String::new(),
    });
    out
}

/// Attaches a note (counts) to the phase just measured.
fn note(phases: &mut [Phase], text: String) {
    if let Some(phase) = phases.last_mut() {
        phase.note = text;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Which phases a run measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    All,
    /// `--analysis-only`: the in-memory phases, no store.
    AnalysisOnly,
    /// `--writes-only`: map, then the first write and the unchanged re-sync.
    WritesOnly,
}

/// The phases that analyse the mapped fragments in memory, no store.
fn in_memory_phases(
    phases: &mut Vec<Phase>,
    config: &accessgraph_config::Config,
    fragments: &[Fragment],
    now: DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error>> {
    let resolve = pipeline::resolve_settings(config);
    let graph = measure(&mut *phases, "graph build", || {
        let nodes = fragments.iter().flat_map(|f| f.nodes.clone()).collect();
        let edges = fragments.iter().flat_map(|f| f.edges.clone()).collect();
        AccessGraph::build(nodes, edges, &config.catalog, &resolve).expect("graph builds")
    });
    let access = measure(&mut *phases, "effective access", || graph.effective_access(now));
    note(phases, format!("{} entries", access.entries().len()));
    let settings = config.analysis_settings();
    let engine = pipeline::policy_engine(config)?.ok_or("policy")?;
    let denials =
        measure(&mut *phases, "cedar evaluation", || engine.denials(&graph, &access, &settings, now).expect("cedar"));
    note(phases, format!("{} denials", denials.len()));
    for rule in rules::all() {
        let ctx = Context {
            graph: &graph,
            access: &access,
            previous: None,
            denials: Some(&denials),
            settings: &settings,
            now,
        };
        let findings = measure(&mut *phases, &format!("rule {}", rule.id()), || rule.evaluate(&ctx));
        note(phases, format!("{} findings", findings.len()));
    }
    // The daemon's case: a previous snapshot to compare with (1 % of the
    // access missing from it).
    let all = access.triples(&graph);
    let previous: accessgraph_graph::AccessSet =
        all.iter().enumerate().filter(|(i, _)| i % 100 != 0).map(|(_, t)| t).collect();
    drop(all);
    let ctx = Context {
        graph: &graph,
        access: &access,
        previous: Some(&previous),
        denials: Some(&denials),
        settings: &settings,
        now,
    };
    let rule = rules::all().into_iter().find(|r| r.id() == "drift.baseline").ok_or("drift.baseline")?;
    let findings = measure(&mut *phases, "rule drift.baseline against a previous snapshot", || rule.evaluate(&ctx));
    note(phases, format!("{} findings", findings.len()));
    drop(previous);
    drop(denials);
    let analysis = measure(&mut *phases, "full analysis (access + cedar + rules)", || {
        analyze(&graph, None, Some(&engine as &PolicyEngine), &settings, now).expect("analysis")
    });
    note(phases, format!("{} findings", analysis.findings.len()));
    drop(analysis);
    drop(access);
    drop(graph);
    Ok(())
}

async fn run_size(name: &str, mode: Mode) -> Result<(), Box<dyn std::error::Error>> {
    let size = synth::Size::named(name).ok_or("unknown size (XS, S, M, L)")?;
    let dir = tempfile::tempdir()?;
    let now: DateTime<Utc> = "2026-11-27T00:00:00Z".parse()?;
    let mut phases = Vec::new();
    let generated = measure(&mut phases, "generate", || synth::generate(dir.path(), size, 7))?;
    let config = accessgraph_config::load(&generated.config).map_err(|p| p.to_string())?;
    let idp_bytes = std::fs::read(dir.path().join("idp.json"))?;
    let apps_bytes = std::fs::read(&generated.apps_file)?;
    let fragments: Vec<Fragment> = measure(&mut phases, "map (parse + transform)", || {
        vec![
            parse_and_map("idp", "idp.json", &idp_bytes).expect("idp maps"),
            parse_and_map("apps", "apps.json", &apps_bytes).expect("apps maps"),
        ]
    });
    // A daemon holds no source file once mapped.
    drop((idp_bytes, apps_bytes));
    let edges: usize = fragments.iter().map(|f| f.edges.len()).sum();
    let nodes: usize = fragments.iter().map(|f| f.nodes.len()).sum();
    if mode != Mode::WritesOnly {
        in_memory_phases(&mut phases, &config, &fragments, now)?;
    }
    if mode == Mode::AnalysisOnly {
        print_phases(name, size, nodes, edges, &phases);
        return Ok(());
    }

    let store = Store::open(&config.store.url).await?;
    let first = measure_async(&mut phases, "store: first snapshot write", async {
        let mut opened = 0;
        for fragment in &fragments {
            opened += store.apply_sync("snapshot", fragment, now, now).await.expect("write").opened;
        }
        opened
    })
    .await;
    note(&mut phases, format!("{first} rows"));
    // The commit leaves SQLite's checkpoint running beside what comes next
    // (`BulkConnection`); what is left of it is measured here on its own.
    measure_async(&mut phases, "store: checkpoint the first write left running", store.settle_background()).await;
    note(&mut phases, "awaited; the daemon analyses meanwhile".to_string());
    let later = now + Duration::hours(1);
    let rewrite = measure_async(&mut phases, "store: unchanged re-sync", async {
        let mut written = 0;
        for fragment in &fragments {
            let stats = store.apply_sync("snapshot", fragment, later, later).await.expect("write");
            written += stats.opened + stats.closed;
        }
        written
    })
    .await;
    note(&mut phases, format!("{rewrite} rows written"));
    drop(fragments);
    if mode == Mode::WritesOnly {
        print_phases(name, size, nodes, edges, &phases);
        return Ok(());
    }
    // The daemon's first cycle: every finding is new (opened, queued).
    let first_cycle =
        measure_async(&mut phases, "first analysis: load + analysis + record (every finding new)", async {
            pipeline::analyze_and_record(&config, &store, later, Vec::new(), None).await.expect("cycle")
        })
        .await;
    note(&mut phases, format!("{} findings", first_cycle.analysis.findings.len()));
    let baseline = first_cycle.into_baseline();

    let (changed, _, _) = synth::apps_snapshot(size, 7, 1);
    let changed_bytes = serde_json::to_vec(&changed)?;
    std::fs::write(&generated.apps_file, &changed_bytes)?;
    let even_later = later + Duration::hours(1);
    let fragment =
        measure(&mut phases, "1 % change: map", || parse_and_map("apps", "apps.json", &changed_bytes).expect("maps"));
    let stats = measure_async(&mut phases, "1 % change: diff + write", async {
        store.apply_sync("snapshot", &fragment, even_later, even_later).await.expect("write")
    })
    .await;
    note(&mut phases, format!("{} opened, {} closed", stats.opened, stats.closed));
    drop(fragment);
    let findings = measure_async(
        &mut phases,
        "1 % change: load + analysis + record (previous kept in memory)",
        findings_of_cycle(&config, &store, even_later, Some(baseline)),
    )
    .await;
    note(&mut phases, format!("{findings} findings"));
    let steps = &phases[phases.len() - 3..];
    let total = Phase {
        name: "1 % change end to end (the three rows above)".into(),
        seconds: steps.iter().map(|p| p.seconds).sum(),
        peak_mib: steps.iter().map(|p| p.peak_mib).fold(0.0, f64::max),
        growth_mib: steps.iter().map(|p| p.growth_mib).fold(0.0, f64::max),
        note: String::new(),
    };
    phases.push(total);
    // A restarted daemon (or `scan`) has no baseline in memory: it rebuilds
    // the previous snapshot from the store. Another change, then that.
    let (changed, _, _) = synth::apps_snapshot(size, 7, 2);
    let changed_bytes = serde_json::to_vec(&changed)?;
    std::fs::write(&generated.apps_file, &changed_bytes)?;
    let latest = even_later + Duration::hours(1);
    let fragment = parse_and_map("apps", "apps.json", &changed_bytes).expect("maps");
    let stats = store.apply_sync("snapshot", &fragment, latest, latest).await.expect("write");
    drop(fragment);
    let findings = measure_async(
        &mut phases,
        "another change: load + analysis + record (previous rebuilt from the store)",
        findings_of_cycle(&config, &store, latest, None),
    )
    .await;
    note(&mut phases, format!("{} opened, {} closed; {findings} findings", stats.opened, stats.closed));

    let sources: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    let loaded = measure_async(&mut phases, "store: load every current row (whole graph)", async {
        let (nodes, edges) = store.load_rows(&sources, None).await.expect("load");
        nodes.len() + edges.len()
    })
    .await;
    note(&mut phases, format!("{loaded} rows"));
    // What the analysis holds: the graph, its edges streamed in from the store.
    reset_peak();
    let resident = rss_mib();
    let graph = measure_async(&mut phases, "store: load the analysis graph (edges streamed into it)", async {
        pipeline::load_graph(&config, &store, None).await.expect("graph")
    })
    .await;
    memory::release_free_heap();
    note(&mut phases, format!("the graph holds {:.0} MiB", rss_mib() - resident));
    drop(graph);

    // Answered from the store's neighbourhood of the node: cheap enough for
    // a p99 over 100 questions at every size.
    let samples = 100;
    let mut who = Vec::new();
    let mut what = Vec::new();
    for i in 0..samples {
        let r = (i * 37) % size.resources;
        let resource = format!("apps:{}:r{r}", if r % 2 == 0 { "app" } else { "dataset" });
        let started = Instant::now();
        let _ = query::who_can(&config, &store, &resource, None, None, latest).await?;
        who.push(started.elapsed().as_secs_f64() * 1000.0);
        let identity = format!("person:p{}@corp.example", (i * 101) % size.people);
        let started = Instant::now();
        let _ = query::what_can(&config, &store, &identity, None, latest).await?;
        what.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    who.sort_by(f64::total_cmp);
    what.sort_by(f64::total_cmp);

    print_phases(name, size, nodes, edges, &phases);
    println!(
        "| who-can from the store | p50 {:.1} ms, p99 {:.1} ms | | | {samples} queries |",
        percentile(&who, 0.5),
        percentile(&who, 0.99)
    );
    println!(
        "| what-can from the store | p50 {:.1} ms, p99 {:.1} ms | | | {samples} queries |",
        percentile(&what, 0.5),
        percentile(&what, 0.99)
    );
    Ok(())
}

/// The daemon's analysis at `now` (with `baseline` when it kept one): the
/// number of findings.
async fn findings_of_cycle(
    config: &accessgraph_config::Config,
    store: &Store,
    now: DateTime<Utc>,
    baseline: Option<pipeline::Baseline>,
) -> usize {
    pipeline::analyze_and_record(config, store, now, Vec::new(), baseline).await.expect("cycle").analysis.findings.len()
}

async fn queries_only(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_current_dir(dir)?;
    let config = accessgraph_config::load(std::path::Path::new("accessgraph.toml")).map_err(|p| p.to_string())?;
    let store = Store::open(&config.store.url).await?;
    let now: DateTime<Utc> = "2026-11-27T03:00:00Z".parse()?;
    for r in [0usize, 37, 74, 1] {
        let resource = format!("apps:{}:r{r}", if r % 2 == 0 { "app" } else { "dataset" });
        let started = Instant::now();
        let rows = query::who_can(&config, &store, &resource, None, None, now).await?;
        println!("who-can {resource}: {} rows in {:.1} ms", rows.len(), started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(())
}

fn print_phases(name: &str, size: synth::Size, nodes: usize, edges: usize, phases: &[Phase]) {
    println!(
        "\n## Size {name}: {} people, {} agents, {} resources; {nodes} nodes, {edges} edges\n",
        size.people, size.agents, size.resources
    );
    println!("| phase | wall time | peak RSS | of which the phase's own | note |\n|---|---|---|---|---|");
    for phase in phases {
        println!(
            "| {} | {:.3} s | {:.0} MiB | +{:.0} MiB | {} |",
            phase.name, phase.seconds, phase.peak_mib, phase.growth_mib, phase.note
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let option = |name: &str| std::env::args().skip_while(|a| a != name).nth(1);
    // `--generate DIR`: write the synthetic enterprise of the (one) size
    // into DIR and stop, to run the real binary on it
    // (`accessgraph scan --config DIR/accessgraph.toml`).
    let generate = option("--generate");
    let sizes: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-') && Some(a) != generate.as_ref() && Some(a) != option("--queries").as_ref())
        .collect();
    let sizes = if sizes.is_empty() { vec!["S".to_string()] } else { sizes };
    if let Some(dir) = generate {
        let size = synth::Size::named(&sizes[0]).ok_or("unknown size (XS, S, M, L)")?;
        let generated = synth::generate(std::path::Path::new(&dir), size, 7)?;
        println!("{}", generated.config.display());
        return Ok(());
    }
    let mode = if std::env::args().any(|a| a == "--analysis-only") {
        Mode::AnalysisOnly
    } else if std::env::args().any(|a| a == "--writes-only") {
        Mode::WritesOnly
    } else {
        Mode::All
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // `--queries DIR`: who-can against the store a kept run left in DIR
    // (statements logged with `RUST_LOG=sqlx=debug`), to profile queries.
    // `RUST_LOG=accessgraph_daemon=debug` shows the steps of each analysis.
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    if let Some(dir) = option("--queries") {
        return runtime.block_on(queries_only(std::path::Path::new(&dir)));
    }
    for size in sizes {
        runtime.block_on(run_size(&size, mode))?;
    }
    Ok(())
}
