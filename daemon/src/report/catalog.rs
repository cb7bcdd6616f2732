//! The agent catalog view: each record as declared (owner, tier, allowed
//! systems) beside what its identities actually reach and hold.

use accessgraph_graph::access::{AccessGraph, EffectiveAccess};
use accessgraph_graph::model::{EdgeKind, LastUse, NodeKind};
use accessgraph_graph::settings::AnalysisSettings;
use accessgraph_graph::{Finding, FindingStatus};
use chrono::{DateTime, NaiveDate, Utc};
use petgraph::Direction;
use serde::Serialize;
use std::collections::BTreeMap;

/// One identity a catalog record binds.
#[derive(Clone, Debug, Serialize)]
pub struct CatalogIdentity {
    /// Node id.
    pub id: String,
    /// Name in its source (empty when absent from the graph).
    pub name: String,
    /// Node kind (empty when absent).
    pub kind: String,
    /// Whether the graph holds the node.
    pub present: bool,
    /// Whether its source reports it active.
    pub active: bool,
}

/// What one identity of an agent can do on one resource.
#[derive(Clone, Debug, Serialize)]
pub struct Reach {
    /// The acting identity.
    pub identity: String,
    /// Resource node id.
    pub resource: String,
    /// Resource name.
    pub resource_name: String,
    /// Source (system) of the resource.
    pub system: String,
    /// Actions, sorted.
    pub actions: Vec<String>,
    /// Inside the record's `allowed_systems` (or the record allows any).
    pub allowed: bool,
    /// Earliest expiry of those actions (None: standing).
    pub expires_at: Option<DateTime<Utc>>,
}

/// One credential an agent's identity holds.
#[derive(Clone, Debug, Serialize)]
pub struct CatalogCredential {
    /// Node id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Credential type (`api_key`, …).
    pub kind: Option<String>,
    /// Holding identity.
    pub holder: String,
    /// Days since creation (or last rotation).
    pub age_days: Option<i64>,
    /// Expiry (None: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// Hours from creation to expiry (None: never expires or unknown creation).
    pub lifetime_hours: Option<i64>,
    /// Already expired at the report's instant.
    pub expired: bool,
    /// Never expires, or lives longer than the tier allows.
    pub over_tier_limit: bool,
    /// `never`, `not reported` or an RFC 3339 date.
    pub last_used: String,
}

/// One catalog record with what it reaches.
#[derive(Clone, Debug, Serialize)]
pub struct CatalogEntry {
    /// Catalog id.
    pub id: String,
    /// Purpose.
    pub purpose: Option<String>,
    /// Owner as declared.
    pub owner: Option<String>,
    /// `active`, `inactive`, `unknown` (no source knows the owner) or `none`.
    pub owner_status: &'static str,
    /// Second approver.
    pub controller: Option<String>,
    /// Risk tier (the default tier when the record names none).
    pub tier: String,
    /// The tier's credential lifetime limit in days.
    pub tier_max_credential_days: u32,
    /// Whether the tier needs a controller distinct from the owner.
    pub dual_control: bool,
    /// Systems the agent may reach (None: any).
    pub allowed_systems: Option<Vec<String>>,
    /// Record expiry.
    pub expires: Option<NaiveDate>,
    /// The record has expired.
    pub expired: bool,
    /// Identities it acts as.
    pub identities: Vec<CatalogIdentity>,
    /// Effective access of those identities, one row per (identity, resource).
    pub reaches: Vec<Reach>,
    /// Credentials those identities hold.
    pub credentials: Vec<CatalogCredential>,
    /// Open findings whose subject is one of its identities.
    pub open_findings: u64,
}

/// A non-human identity no catalog record binds.
#[derive(Clone, Debug, Serialize)]
pub struct ShadowIdentity {
    /// Node id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `agent`, `service_account` or `app`.
    pub kind: String,
    /// Source name.
    pub source: String,
    /// Owner as the source names it.
    pub owner: Option<String>,
    /// Number of (resource, action) it reaches.
    pub reaches: u64,
    /// Number of credentials it holds.
    pub credentials: u64,
}

fn last_used(value: LastUse) -> String {
    match value {
        LastUse::Unknown => "not reported".into(),
        LastUse::Never => "never".into(),
        LastUse::At(at) => at.format("%Y-%m-%d").to_string(),
    }
}

/// Builds the catalog view and the list of uncatalogued non-humans.
pub(super) fn build(
    graph: &AccessGraph,
    access: &EffectiveAccess,
    settings: &AnalysisSettings,
    findings: &[Finding],
    now: DateTime<Utc>,
) -> (Vec<CatalogEntry>, Vec<ShadowIdentity>) {
    let mut open_by_subject: BTreeMap<&str, u64> = BTreeMap::new();
    for finding in findings.iter().filter(|f| f.status == FindingStatus::Open) {
        *open_by_subject.entry(finding.subject.as_str()).or_default() += 1;
    }
    let mut entries = Vec::new();
    for record in &settings.catalog.agents {
        let tier = record.risk_tier.unwrap_or(settings.thresholds.default_tier);
        let limits = settings.tiers.policy(tier);
        let owner_status = match &record.owner {
            None => "none",
            Some(reference) => match graph.lookup_owner_reference(reference) {
                Some(ix) if graph.is_active(ix) => "active",
                Some(_) => "inactive",
                None => "unknown",
            },
        };
        let mut entry = CatalogEntry {
            id: record.id.clone(),
            purpose: record.purpose.clone(),
            owner: record.owner.clone(),
            owner_status,
            controller: record.controller.clone(),
            tier: tier.as_str().to_string(),
            tier_max_credential_days: limits.max_credential_days,
            dual_control: limits.dual_control,
            allowed_systems: record.allowed_systems.clone(),
            expires: record.expires,
            expired: record.expires.is_some_and(|day| day < now.date_naive()),
            identities: Vec::new(),
            reaches: Vec::new(),
            credentials: Vec::new(),
            open_findings: 0,
        };
        for id in &record.identities {
            entry.open_findings += open_by_subject.get(id.as_str()).copied().unwrap_or(0);
            let Some(ix) = graph.find(id) else {
                entry.identities.push(CatalogIdentity {
                    id: id.clone(),
                    name: String::new(),
                    kind: String::new(),
                    present: false,
                    active: false,
                });
                continue;
            };
            let node = graph.node(ix);
            entry.identities.push(CatalogIdentity {
                id: id.clone(),
                name: node.name.clone(),
                kind: node.kind.as_str().to_string(),
                present: true,
                active: graph.is_active(ix),
            });
            let mut by_resource: BTreeMap<String, Reach> = BTreeMap::new();
            for item in access.of_principal(ix) {
                let resource = graph.node(item.resource);
                let reach = by_resource.entry(resource.id.clone()).or_insert_with(|| Reach {
                    identity: id.clone(),
                    resource: resource.id.clone(),
                    resource_name: resource.name.clone(),
                    system: resource.source.clone(),
                    actions: Vec::new(),
                    allowed: record.allowed_systems.as_ref().is_none_or(|systems| systems.contains(&resource.source)),
                    expires_at: item.expires_at,
                });
                reach.actions.push(item.action.to_string());
                reach.expires_at = match (reach.expires_at, item.expires_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    _ => None,
                };
            }
            for mut reach in by_resource.into_values() {
                reach.actions.sort();
                reach.actions.dedup();
                entry.reaches.push(reach);
            }
            for key in graph.neighbors(ix, EdgeKind::Holds, Direction::Outgoing) {
                let credential = graph.node(key);
                if credential.kind != NodeKind::Credential {
                    continue;
                }
                let issued = credential.rotated_at.or(credential.created_at);
                let lifetime_hours = match (credential.created_at, credential.expires_at) {
                    (Some(created), Some(expires)) => Some((expires - created).num_hours()),
                    _ => None,
                };
                entry.credentials.push(CatalogCredential {
                    id: credential.id.clone(),
                    name: credential.name.clone(),
                    kind: credential.subkind.clone(),
                    holder: id.clone(),
                    age_days: issued.map(|at| (now - at).num_days()),
                    expires_at: credential.expires_at,
                    lifetime_hours,
                    expired: credential.expires_at.is_some_and(|at| at <= now),
                    over_tier_limit: credential.expires_at.is_none()
                        || lifetime_hours.is_some_and(|hours| hours > 24 * i64::from(limits.max_credential_days)),
                    last_used: last_used(credential.last_used),
                });
            }
        }
        entry.credentials.sort_by(|a, b| a.id.cmp(&b.id));
        entries.push(entry);
    }
    let mut shadows = Vec::new();
    for ix in graph.node_indices() {
        let node = graph.node(ix);
        if !node.kind.is_non_human() || !graph.is_active(ix) || settings.catalog.agent_for(&node.id).is_some() {
            continue;
        }
        shadows.push(ShadowIdentity {
            id: node.id.clone(),
            name: node.name.clone(),
            kind: node.kind.as_str().to_string(),
            source: node.source.clone(),
            owner: node.owner.clone(),
            reaches: access.of_principal(ix).count() as u64,
            credentials: graph.neighbors(ix, EdgeKind::Holds, Direction::Outgoing).len() as u64,
        });
    }
    shadows.sort_by(|a, b| a.id.cmp(&b.id));
    (entries, shadows)
}
