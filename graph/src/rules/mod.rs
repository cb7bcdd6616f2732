//! The rules of CONTRACT §6: one file per rule, one line per rule in [`all`].

use crate::access::{AccessEntry, AccessGraph, AccessSet, EffectiveAccess};
use crate::findings::Finding;
use crate::model::Node;
use crate::policy::Denial;
use crate::settings::{AnalysisSettings, CatalogAgent, Tier};
use chrono::{DateTime, Utc};
use petgraph::graph::NodeIndex;

mod drift_baseline;
mod drift_catalog;
mod drift_policy;
mod ownerless_no_owner;
mod ownerless_owner_inactive;
mod ownerless_unregistered;
mod secret_stale;
mod secret_standing;
mod secret_unused;
mod sod_violation;

#[cfg(test)]
pub(crate) mod testkit;

/// Everything a rule may look at. Built once per analysis.
pub struct Context<'a> {
    /// The current graph.
    pub graph: &'a AccessGraph,
    /// Effective access of every principal now.
    pub access: &'a EffectiveAccess,
    /// Effective access at the previous snapshot, when there was one.
    pub previous: Option<&'a AccessSet>,
    /// Cedar denials, when a policy is configured.
    pub denials: Option<&'a [Denial]>,
    /// Catalog, thresholds, tiers, SoD rules.
    pub settings: &'a AnalysisSettings,
    /// The instant ages and expiries are evaluated at.
    pub now: DateTime<Utc>,
}

impl Context<'_> {
    /// The node behind an index.
    pub fn node(&self, ix: NodeIndex) -> &Node {
        self.graph.node(ix)
    }

    /// The catalog record binding a node, if any.
    pub fn catalog_record(&self, ix: NodeIndex) -> Option<&CatalogAgent> {
        self.settings.catalog.agent_for(&self.graph.node(ix).id)
    }

    /// The risk tier of an identity: its catalog record's, else the default.
    pub fn tier_of(&self, ix: NodeIndex) -> Tier {
        self.catalog_record(ix).and_then(|agent| agent.risk_tier).unwrap_or(self.settings.thresholds.default_tier)
    }

    /// "Name (id)" for prose.
    pub fn describe(&self, ix: NodeIndex) -> String {
        let node = self.graph.node(ix);
        if node.name.is_empty() || node.name == node.id {
            format!("`{}`", node.id)
        } else {
            format!("{} (`{}`)", node.name, node.id)
        }
    }

    /// Evidence path as node ids.
    pub fn evidence(&self, path: &[NodeIndex]) -> Vec<String> {
        self.graph.path_ids(path)
    }

    /// Whole days from `then` to now (negative if `then` is in the future).
    pub fn days_since(&self, then: DateTime<Utc>) -> i64 {
        (self.now - then).num_days()
    }
}

/// One rule of CONTRACT §6.
pub trait Rule: Send + Sync {
    /// Rule id, e.g. `secret.standing`. Never renamed.
    fn id(&self) -> &'static str;

    /// Findings of this rule on the context.
    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Finding>;

    /// Whether the rule reads `Context::denials`. The others run while
    /// Cedar evaluates, and see no denials.
    fn reads_denials(&self) -> bool {
        false
    }
}

/// Every rule, in report order.
pub fn all() -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(drift_policy::DriftPolicy),
        Box::new(drift_baseline::DriftBaseline),
        Box::new(drift_catalog::DriftCatalog),
        Box::new(ownerless_no_owner::NoOwner),
        Box::new(ownerless_owner_inactive::OwnerInactive),
        Box::new(ownerless_unregistered::Unregistered),
        Box::new(secret_standing::Standing),
        Box::new(secret_unused::Unused),
        Box::new(secret_stale::Stale),
        Box::new(sod_violation::SodViolation),
    ]
}

/// Credentials that currently let their holder act: not expired, not revoked.
pub fn live_credentials<'a>(ctx: &'a Context<'_>) -> impl Iterator<Item = NodeIndex> + 'a {
    ctx.graph.node_indices().filter(move |&ix| {
        let node = ctx.graph.node(ix);
        node.kind == crate::model::NodeKind::Credential
            && node.active != Some(false)
            && node.expires_at.is_none_or(|at| at > ctx.now)
    })
}

/// The identity a credential finding is about: its first holder, else the credential.
pub fn credential_subject(ctx: &Context<'_>, credential: NodeIndex) -> NodeIndex {
    ctx.graph.holders_of(credential).first().copied().unwrap_or(credential)
}

/// Whether a resource is in production (`prod` or `production`, any case).
pub(crate) fn is_prod(node: &Node) -> bool {
    node.environment
        .as_deref()
        .map(str::trim)
        .is_some_and(|env| env.eq_ignore_ascii_case("prod") || env.eq_ignore_ascii_case("production"))
}

/// The distinct evidence paths of some access entries, shortest first, then by
/// ids: a stable order, so a ticket is not "updated" by a mere reordering.
pub(crate) fn distinct_paths<'e>(
    ctx: &Context<'_>,
    entries: impl IntoIterator<Item = &'e AccessEntry>,
) -> Vec<Vec<String>> {
    let mut paths: Vec<Vec<String>> = entries.into_iter().map(|entry| ctx.evidence(&entry.path())).collect();
    paths.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    paths.dedup();
    paths
}

/// "`a`, `b` and `c`" for prose.
pub(crate) fn code_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let items: Vec<String> = items.into_iter().map(|item| format!("`{}`", item.as_ref())).collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The strictest risk tier among a credential's holders (the default tier
/// when nobody holds it): a key shared with a high-tier agent is held to that tier.
pub(crate) fn credential_tier(ctx: &Context<'_>, credential: NodeIndex) -> Tier {
    ctx.graph
        .holders_of(credential)
        .into_iter()
        .map(|holder| ctx.tier_of(holder))
        .max()
        .unwrap_or_else(|| ctx.tier_of(credential))
}

/// `n day` / `n days`.
pub(crate) fn days(n: i64) -> String {
    if n == 1 { "1 day".to_string() } else { format!("{n} days") }
}
