//! One analysis: effective access, Cedar, every rule, findings in report order.

use crate::access::{AccessGraph, AccessSet, EffectiveAccess};
use crate::findings::Finding;
use crate::policy::{PolicyEngine, PolicyError};
use crate::rules::{self, Context};
use crate::settings::AnalysisSettings;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// What an analysis produced.
#[derive(Debug)]
pub struct Analysis {
    /// Effective access now.
    pub access: EffectiveAccess,
    /// Findings, most severe first, unique by fingerprint.
    pub findings: Vec<Finding>,
}

/// Runs every rule over the graph.
pub fn analyze(
    graph: &AccessGraph,
    previous: Option<&AccessSet>,
    policy: Option<&PolicyEngine>,
    settings: &AnalysisSettings,
    now: DateTime<Utc>,
) -> Result<Analysis, PolicyError> {
    let access = graph.effective_access(now);
    let denials = match policy {
        Some(engine) => Some(engine.denials(graph, &access, settings, now)?),
        None => None,
    };
    let ctx = Context { graph, access: &access, previous, denials: denials.as_deref(), settings, now };
    let mut unique: BTreeMap<String, Finding> = BTreeMap::new();
    for rule in rules::all() {
        for finding in rule.evaluate(&ctx) {
            unique.entry(finding.fingerprint.clone()).or_insert(finding);
        }
    }
    let mut findings: Vec<Finding> = unique.into_values().collect();
    sort_findings(&mut findings);
    Ok(Analysis { access, findings })
}

/// Report order: severity (worst first), then rule, subject, object.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.subject.cmp(&b.subject))
            .then_with(|| a.object.cmp(&b.object))
    });
}
