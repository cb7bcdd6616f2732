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
///
/// Cedar evaluation and the rules that do not read its denials run at the
/// same time on two threads; the findings do not depend on it.
pub fn analyze(
    graph: &AccessGraph,
    previous: Option<&AccessSet>,
    policy: Option<&PolicyEngine>,
    settings: &AnalysisSettings,
    now: DateTime<Utc>,
) -> Result<Analysis, PolicyError> {
    let access = graph.effective_access(now);
    let ctx = Context { graph, access: &access, previous, denials: None, settings, now };
    let (rules_with_denials, rules_without): (Vec<_>, Vec<_>) =
        rules::all().into_iter().partition(|rule| rule.reads_denials());
    let evaluate = |rules: &[Box<dyn rules::Rule>], ctx: &Context<'_>| -> Vec<Finding> {
        rules.iter().flat_map(|rule| rule.evaluate(ctx)).collect()
    };
    let (denials, mut findings) = std::thread::scope(|scope| {
        let cedar = scope.spawn(|| policy.map(|engine| engine.denials(graph, &access, settings, now)).transpose());
        let findings = evaluate(&rules_without, &ctx);
        let denials = cedar.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (denials, findings)
    });
    let denials = denials?;
    findings.extend(evaluate(&rules_with_denials, &Context { denials: denials.as_deref(), ..ctx }));
    let mut unique: BTreeMap<String, Finding> = BTreeMap::new();
    for finding in findings {
        unique.entry(finding.fingerprint.clone()).or_insert(finding);
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
