//! Posture figures (DESIGN.md): reported with every analysis and exported as metrics.

use crate::access::{AccessGraph, EffectiveAccess, Owner};
use crate::model::{EdgeKind, NodeKind};
use crate::settings::AnalysisSettings;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The headline numbers of one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Posture {
    /// People resolved across sources.
    pub people: u64,
    /// Non-human identities (agents, service accounts, apps).
    pub non_human_identities: u64,
    /// Of which AI agents.
    pub agents: u64,
    /// Live credentials.
    pub credentials: u64,
    /// Live credentials that never expire.
    pub standing_secrets: u64,
    /// Age in days of the oldest live never-expiring credential.
    pub oldest_standing_secret_days: Option<i64>,
    /// Effective (principal, action, resource) triples.
    pub effective_access: u64,
    /// Share of effective access that is time-bound (0..1).
    pub time_bound_share: f64,
    /// Non-human identities with no owner, an inactive owner or an unknown one.
    pub ownerless: u64,
    /// Sources under the Cedar policy.
    pub governed_systems: u64,
    /// Sources with data in this snapshot.
    pub systems: u64,
    /// Principals that are, or can become through groups and role
    /// assumption, a node its source marks `admin = "true"` (AWS IAM: `*` or
    /// `iam:*` on every resource).
    #[serde(default)]
    pub admins: u64,
}

impl Posture {
    /// Computes the figures.
    pub fn compute(
        graph: &AccessGraph,
        access: &EffectiveAccess,
        settings: &AnalysisSettings,
        has_policy: bool,
        now: DateTime<Utc>,
    ) -> Posture {
        let mut posture = Posture::default();
        let mut systems = BTreeSet::new();
        for ix in graph.node_indices() {
            let node = graph.node(ix);
            if !node.source.is_empty() {
                systems.insert(node.source.clone());
            }
            match node.kind {
                NodeKind::Person => posture.people += 1,
                kind if kind.is_non_human() => {
                    posture.non_human_identities += 1;
                    if kind == NodeKind::Agent {
                        posture.agents += 1;
                    }
                    let ownerless = match graph.owner(ix) {
                        Owner::Missing | Owner::Unknown { .. } => true,
                        Owner::Known { node, .. } => !graph.is_active(*node),
                    };
                    if ownerless && graph.is_active(ix) {
                        posture.ownerless += 1;
                    }
                }
                NodeKind::Credential if node.active != Some(false) && node.expires_at.is_none_or(|at| at > now) => {
                    posture.credentials += 1;
                    if node.expires_at.is_none() {
                        posture.standing_secrets += 1;
                        if let Some(created) = node.rotated_at.or(node.created_at) {
                            let age = (now - created).num_days();
                            posture.oldest_standing_secret_days =
                                Some(posture.oldest_standing_secret_days.map_or(age, |old| old.max(age)));
                        }
                    }
                }
                _ => {}
            }
        }
        posture.admins = graph.principals().into_iter().filter(|&p| reaches_admin(graph, p)).count() as u64;
        let entries = access.entries();
        posture.effective_access = entries.len() as u64;
        let bound = entries.iter().filter(|e| e.expires_at.is_some()).count();
        posture.time_bound_share = if entries.is_empty() { 0.0 } else { bound as f64 / entries.len() as f64 };
        posture.systems = systems.len() as u64;
        posture.governed_systems =
            if has_policy { systems.iter().filter(|s| settings.is_governed(s)).count() as u64 } else { 0 };
        posture
    }
}

/// Whether a principal is, or reaches over `same_as`, `member_of` and
/// `can_assume`, a node marked `admin = "true"`.
fn reaches_admin(graph: &AccessGraph, start: petgraph::graph::NodeIndex) -> bool {
    let mut seen = std::collections::HashSet::from([start]);
    let mut queue = vec![start];
    while let Some(ix) = queue.pop() {
        if graph.node(ix).attrs.get("admin").is_some_and(|v| v == "true") {
            return true;
        }
        for kind in [EdgeKind::SameAs, EdgeKind::MemberOf, EdgeKind::CanAssume] {
            for next in graph.neighbors(ix, kind, petgraph::Direction::Outgoing) {
                if seen.insert(next) {
                    queue.push(next);
                }
            }
        }
    }
    false
}
