//! The drift report: one model, several renderings.

mod json;
mod markdown;

pub use json::findings_json;

use crate::pipeline::{Cycle, SourceOutcome};
use accessgraph_graph::{Finding, FindingStatus, Posture, Severity};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// Output formats of `scan` and `findings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable Markdown.
    Markdown,
    /// CONTRACT §6 JSON.
    Json,
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
    pub access_added: Vec<(String, String, String)>,
    /// Effective access removed since the previous snapshot.
    pub access_removed: Vec<(String, String, String)>,
    /// Counts.
    pub counts: Counts,
    /// Current findings (open and muted), then those resolved by this analysis.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The report of one cycle.
    pub fn from_cycle(cycle: &Cycle) -> Report {
        let mut findings = cycle.reconciled.current.clone();
        accessgraph_graph::analyze::sort_findings(&mut findings);
        let mut resolved = cycle.reconciled.resolved.clone();
        accessgraph_graph::analyze::sort_findings(&mut resolved);
        findings.extend(resolved);
        Report {
            generated_at: cycle.now,
            previous_snapshot: cycle.previous.as_ref().map(|(at, _)| *at),
            sources: cycle.sources.clone(),
            posture: cycle.posture.clone(),
            previous_posture: cycle.previous.as_ref().and_then(|(_, p)| p.clone()),
            access_added: cycle.changes.added.clone(),
            access_removed: cycle.changes.removed.clone(),
            counts: Counts::of(&findings),
            findings,
        }
    }

    /// Whether any open finding is at or above `threshold`.
    pub fn has_open_at_or_above(&self, threshold: Severity) -> bool {
        self.findings.iter().any(|f| f.status == FindingStatus::Open && f.severity >= threshold)
    }

    /// Renders in a format.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Markdown => markdown::render(self),
            Format::Json => json::render(self),
        }
    }
}
