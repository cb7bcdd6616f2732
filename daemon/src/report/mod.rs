//! The drift report: one model, several renderings (Markdown, CONTRACT §6
//! JSON, OCSF Detection Findings, one self-contained HTML file).

mod catalog;
mod html;
mod json;
mod markdown;
mod ocsf;
mod svg;

pub use catalog::{CatalogCredential, CatalogEntry, CatalogIdentity, Reach, ShadowIdentity};
pub use html::findings_page as findings_html;
pub use json::findings_json;
pub use ocsf::findings_ocsf;

use crate::pipeline::{Cycle, SourceOutcome};
use accessgraph_graph::access::AccessGraph;
use accessgraph_graph::diff::InventoryDiff;
use accessgraph_graph::model::EdgeKind;
use accessgraph_graph::{Finding, FindingStatus, Posture, Severity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Output formats of `scan` and `findings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable Markdown.
    Markdown,
    /// CONTRACT §6 JSON.
    Json,
    /// OCSF 1.x Detection Findings (class 2004), one JSON object per line.
    Ocsf,
    /// One self-contained HTML file (no network, inline CSS, SVG and script).
    Html,
}

impl Format {
    /// Whether the rendering names the nodes and edges along evidence paths
    /// ([`Report::labels`], [`Report::edge_labels`]).
    fn shows_labels(self) -> bool {
        matches!(self, Format::Ocsf | Format::Html)
    }
}

/// Counts of findings by severity and rule.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    /// Open findings.
    pub open: u64,
    /// Muted findings.
    pub muted: u64,
    /// Resolved in this analysis.
    pub resolved: u64,
    /// Open by severity.
    pub by_severity: BTreeMap<String, u64>,
    /// Open by rule.
    pub by_rule: BTreeMap<String, u64>,
}

impl Counts {
    /// Counts a list of findings.
    pub fn of(findings: &[Finding]) -> Counts {
        let mut counts = Counts::default();
        for finding in findings {
            match finding.status {
                FindingStatus::Open => {
                    counts.open += 1;
                    *counts.by_severity.entry(finding.severity.as_str().to_string()).or_default() += 1;
                    *counts.by_rule.entry(finding.rule.clone()).or_default() += 1;
                }
                FindingStatus::Muted => counts.muted += 1,
                FindingStatus::Resolved => counts.resolved += 1,
            }
        }
        counts
    }
}

/// (principal, resource, action), as in [`accessgraph_graph::diff::AccessDiff`].
pub type Triple = (String, String, String);

/// Findings by severity (worst first), then by rule.
pub type Grouped<'a> = Vec<(Severity, Vec<(String, Vec<&'a Finding>)>)>;

/// One past analysis, for the posture trend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// When the analysis ran.
    pub at: DateTime<Utc>,
    /// Its posture figures (absent if the stored summary lacks them).
    pub posture: Option<Posture>,
    /// Open findings then.
    pub findings_open: Option<u64>,
    /// Open findings by severity then (recorded since reports had trends).
    pub findings_open_by_severity: BTreeMap<String, u64>,
}

/// How a node is drawn in an evidence picture.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeLabel {
    /// Human name.
    pub name: String,
    /// Node kind (`person`, `agent`, `group`, `resource`, …).
    pub kind: String,
}

/// Everything a report shows.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The instant evaluated.
    pub generated_at: DateTime<Utc>,
    /// The previous snapshot's instant.
    pub previous_snapshot: Option<DateTime<Utc>>,
    /// Sync outcome per source.
    pub sources: Vec<SourceOutcome>,
    /// Posture now.
    pub posture: Posture,
    /// Posture at the previous snapshot.
    pub previous_posture: Option<Posture>,
    /// Effective access added since the previous snapshot.
    pub access_added: Vec<Triple>,
    /// The part of `access_added` that widened access a principal already
    /// had on that resource (a new action), rather than new reach.
    pub access_widened: Vec<Triple>,
    /// Effective access removed since the previous snapshot.
    pub access_removed: Vec<Triple>,
    /// Credentials created, rotated, gone; agents appeared, disappeared.
    pub inventory: InventoryDiff,
    /// Counts.
    pub counts: Counts,
    /// Current findings (open and muted), then those resolved by this analysis.
    pub findings: Vec<Finding>,
    /// The agent catalog view: every record with what it actually reaches.
    pub catalog: Vec<CatalogEntry>,
    /// Non-human identities that no catalog record binds.
    pub uncatalogued: Vec<ShadowIdentity>,
    /// Past analyses, oldest first, this one last (filled by [`Report::with_history`]).
    #[serde(skip)]
    pub trend: Vec<TrendPoint>,
    /// Names and kinds of the nodes findings mention.
    #[serde(skip)]
    pub labels: BTreeMap<String, NodeLabel>,
    /// What connects consecutive hops of evidence paths.
    #[serde(skip)]
    pub edge_labels: BTreeMap<(String, String), String>,
}

impl Report {
    /// The report of one cycle. It takes the cycle's findings (current and
    /// resolved) instead of copying them: at 100k people a copy is 200 MB
    /// beside the analysis.
    pub fn from_cycle(cycle: &mut Cycle) -> Report {
        Report::build(cycle, true)
    }

    /// The report of one cycle that will be rendered in `format` only: the
    /// labels of evidence paths (built from the graph, and at 100k people
    /// the largest part of building a report) only if that format shows them.
    pub fn from_cycle_for(cycle: &mut Cycle, format: Format) -> Report {
        Report::build(cycle, format.shows_labels())
    }

    fn build(cycle: &mut Cycle, with_labels: bool) -> Report {
        let mut findings = std::mem::take(&mut cycle.analysis.findings);
        accessgraph_graph::analyze::sort_findings(&mut findings);
        let mut resolved = std::mem::take(&mut cycle.reconciled.resolved);
        accessgraph_graph::analyze::sort_findings(&mut resolved);
        findings.extend(resolved);
        let access_widened = widened(&cycle.changes.added, &cycle.changes.removed, &cycle.access_set);
        let (catalog, uncatalogued) =
            catalog::build(&cycle.graph, &cycle.analysis.access, &cycle.settings, &findings, cycle.now);
        let (labels, edge_labels) = if with_labels { labels(&cycle.graph, &findings) } else { Default::default() };
        Report {
            generated_at: cycle.now,
            previous_snapshot: cycle.previous.as_ref().map(|(at, _)| *at),
            sources: cycle.sources.clone(),
            posture: cycle.posture.clone(),
            previous_posture: cycle.previous.as_ref().and_then(|(_, p)| p.clone()),
            access_added: cycle.changes.added.clone(),
            access_widened,
            access_removed: cycle.changes.removed.clone(),
            inventory: cycle.inventory.clone(),
            counts: Counts::of(&findings),
            findings,
            catalog,
            uncatalogued,
            trend: Vec::new(),
            labels,
            edge_labels,
        }
    }

    /// Adds the posture trend from the store's analysis history
    /// ([`crate::store::Store::analysis_history`]); entries after this
    /// report's instant are left out, and this report is always the last point.
    pub fn with_history(mut self, history: &[(DateTime<Utc>, serde_json::Value)]) -> Report {
        let mut trend: Vec<TrendPoint> = history
            .iter()
            .filter(|(at, _)| *at < self.generated_at)
            .map(|(at, summary)| TrendPoint {
                at: *at,
                posture: serde_json::from_value(summary["posture"].clone()).ok(),
                findings_open: summary["findings_open"].as_u64(),
                findings_open_by_severity: serde_json::from_value(summary["findings_open_by_severity"].clone())
                    .unwrap_or_default(),
            })
            .collect();
        trend.push(TrendPoint {
            at: self.generated_at,
            posture: Some(self.posture.clone()),
            findings_open: Some(self.counts.open),
            findings_open_by_severity: self.counts.by_severity.clone(),
        });
        self.trend = trend;
        self
    }

    /// Whether any open finding is at or above `threshold`.
    pub fn has_open_at_or_above(&self, threshold: Severity) -> bool {
        self.findings.iter().any(|f| f.status == FindingStatus::Open && f.severity >= threshold)
    }

    /// Current (open and muted) findings grouped by severity, worst first,
    /// then by rule.
    pub fn grouped(&self) -> Grouped<'_> {
        group(self.findings.iter().filter(|f| f.status != FindingStatus::Resolved))
    }

    /// Findings resolved by this analysis.
    pub fn resolved(&self) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.status == FindingStatus::Resolved).collect()
    }

    /// Renders in a format to `out`; JSON is serialized straight into it,
    /// never held whole.
    pub fn write(&self, format: Format, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        match format {
            Format::Json => json::write(self, out),
            other => out.write_all(self.render(other).as_bytes()),
        }
    }

    /// Renders in a format.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Markdown => markdown::render(self),
            Format::Json => json::render(self),
            Format::Ocsf => ocsf::render(self),
            Format::Html => html::render(self),
        }
    }
}

/// Findings grouped by severity (worst first), then rule (alphabetical);
/// within a rule, the input order.
pub fn group<'a>(findings: impl Iterator<Item = &'a Finding>) -> Grouped<'a> {
    let mut groups: BTreeMap<std::cmp::Reverse<Severity>, BTreeMap<String, Vec<&Finding>>> = BTreeMap::new();
    for finding in findings {
        groups
            .entry(std::cmp::Reverse(finding.severity))
            .or_default()
            .entry(finding.rule.clone())
            .or_default()
            .push(finding);
    }
    groups.into_iter().map(|(severity, rules)| (severity.0, rules.into_iter().collect())).collect()
}

/// Added triples on a (principal, resource) pair that already had another
/// action before: access widened rather than new reach.
fn borrowed((p, r, a): &Triple) -> (&str, &str, &str) {
    (p.as_str(), r.as_str(), a.as_str())
}

fn widened(added: &[Triple], removed: &[Triple], current: &accessgraph_graph::AccessSet) -> Vec<Triple> {
    let added_set: BTreeSet<(&str, &str, &str)> = added.iter().map(borrowed).collect();
    // Before = (current − added) ∪ removed.
    let before_pairs: BTreeSet<(&str, &str)> = current
        .iter()
        .filter(|t| !added_set.contains(t))
        .chain(removed.iter().map(borrowed))
        .map(|(p, r, _)| (p, r))
        .collect();
    added.iter().filter(|(p, r, _)| before_pairs.contains(&(p.as_str(), r.as_str()))).cloned().collect()
}

fn edge_label(kind: EdgeKind, actions: &[String]) -> String {
    match kind {
        EdgeKind::Grant => actions.join(", "),
        EdgeKind::MemberOf => "member of".into(),
        EdgeKind::CanAssume => "can assume".into(),
        EdgeKind::Owns => "owns".into(),
        EdgeKind::Holds => "holds".into(),
        EdgeKind::SameAs => "account".into(),
    }
}

type Labels = (BTreeMap<String, NodeLabel>, BTreeMap<(String, String), String>);

/// Names and kinds of every node the findings mention, and the relation
/// between consecutive hops of their evidence paths.
fn labels(graph: &AccessGraph, findings: &[Finding]) -> Labels {
    let mut ids: BTreeSet<&str> = BTreeSet::new();
    let mut pairs: BTreeSet<(&str, &str)> = BTreeSet::new();
    for finding in findings {
        ids.insert(&finding.subject);
        ids.insert(&finding.object);
        for path in &finding.evidence {
            ids.extend(path.iter().map(String::as_str));
            for hop in path.windows(2) {
                pairs.insert((&hop[0], &hop[1]));
            }
        }
    }
    let nodes = ids
        .into_iter()
        .filter_map(|id| {
            let node = graph.node(graph.find(id)?);
            Some((id.to_string(), NodeLabel { name: node.name.clone(), kind: node.kind.as_str().to_string() }))
        })
        .collect();
    let mut edges: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for edge in graph.edges() {
        let forward = (edge.from.as_str(), edge.to.as_str());
        if pairs.contains(&forward) {
            edges.entry((edge.from.clone(), edge.to.clone())).or_default().insert(edge_label(edge.kind, &edge.actions));
        }
        // Blast-radius style paths walk from a credential to its holder.
        if edge.kind == EdgeKind::Holds && pairs.contains(&(edge.to.as_str(), edge.from.as_str())) {
            edges.entry((edge.to.clone(), edge.from.clone())).or_default().insert("held by".into());
        }
    }
    let edges =
        edges.into_iter().map(|(pair, names)| (pair, names.into_iter().collect::<Vec<_>>().join("; "))).collect();
    (nodes, edges)
}

/// Text from remote systems with control characters removed (newlines and
/// tabs become spaces); every renderer applies its own escaping on top.
pub(crate) fn plain(value: &str) -> String {
    value.chars().map(|c| if c == '\n' || c == '\t' { ' ' } else { c }).filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: &str, r: &str, a: &str) -> Triple {
        (p.into(), r.into(), a.into())
    }

    #[test]
    fn widened_is_a_new_action_on_a_pair_that_had_access() {
        let current: accessgraph_graph::AccessSet =
            [t("p", "r", "read"), t("p", "r", "write"), t("q", "r", "read"), t("s", "x", "admin")]
                .iter()
                .map(|(p, r, a)| (p.as_str(), r.as_str(), a.as_str()))
                .collect();
        let added = vec![t("p", "r", "write"), t("q", "r", "read"), t("s", "x", "admin")];
        // `s` lost `read` on `x` and gained `admin`: also widened (it had access).
        let removed = vec![t("s", "x", "read")];
        assert_eq!(widened(&added, &removed, &current), vec![t("p", "r", "write"), t("s", "x", "admin")]);
    }

    /// `scan --output` streams the report; it must be the rendered text.
    #[tokio::test]
    async fn a_written_report_is_the_rendered_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/demo.toml");
        let mut config = accessgraph_config::load(&path).expect("demo config");
        config.store.url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = crate::store::Store::open(&config.store.url).await.expect("store");
        let now: DateTime<Utc> = "2026-11-20T00:00:00Z".parse().expect("time");
        let sources = crate::pipeline::sync_all(&config, &store, now).await;
        let mut cycle = crate::pipeline::analyze_and_record(&config, &store, now, sources, None).await.expect("cycle");
        let report = Report::from_cycle(&mut cycle);
        assert!(!report.findings.is_empty() && !report.labels.is_empty() && !report.edge_labels.is_empty());
        for format in [Format::Json, Format::Markdown, Format::Ocsf] {
            let mut written = Vec::new();
            report.write(format, &mut written).expect("write");
            assert_eq!(String::from_utf8(written).expect("utf-8"), report.render(format), "{format:?}");
        }
        // `scan` builds the report for its one format: the same text, the
        // labels only where the format shows them.
        for format in [Format::Json, Format::Markdown, Format::Ocsf, Format::Html] {
            let dir = tempfile::tempdir().expect("tempdir");
            config.store.url = format!("sqlite://{}", dir.path().join("store.db").display());
            let store = crate::store::Store::open(&config.store.url).await.expect("store");
            let sources = crate::pipeline::sync_all(&config, &store, now).await;
            let mut cycle =
                crate::pipeline::analyze_and_record(&config, &store, now, sources, None).await.expect("cycle");
            let mut scanned = Report::from_cycle_for(&mut cycle, format);
            assert_eq!(scanned.labels.is_empty(), !format.shows_labels(), "{format:?}");
            // Only the syncs' durations differ between the two runs.
            scanned.sources.clone_from(&report.sources);
            assert!(scanned.render(format) == report.render(format), "{format:?} differs");
        }
    }

    #[test]
    fn grouping_is_by_severity_then_rule() {
        let now = Utc::now();
        let f = |rule: &str, severity| Finding::new(rule, severity, "s", rule, "t", "d", "r", vec![], now);
        let findings = [
            f("b.rule", Severity::Low),
            f("a.rule", Severity::Low),
            f("c.rule", Severity::Critical),
            f("a.rule", Severity::Low),
        ];
        let grouped = group(findings.iter());
        let shape: Vec<(Severity, Vec<(&str, usize)>)> = grouped
            .iter()
            .map(|(s, rules)| (*s, rules.iter().map(|(r, list)| (r.as_str(), list.len())).collect()))
            .collect();
        assert_eq!(
            shape,
            vec![(Severity::Critical, vec![("c.rule", 1)]), (Severity::Low, vec![("a.rule", 2), ("b.rule", 1)])]
        );
    }
}
