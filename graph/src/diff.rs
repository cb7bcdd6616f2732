//! What changed between two snapshots: effective access, credentials and
//! non-human identities.

use crate::access::{AccessGraph, AccessId, AccessSet};
use crate::model::{Node, NodeKind};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What changed between two effective-access sets.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AccessDiff {
    /// (principal, resource, action) present only in the later snapshot.
    pub added: Vec<(String, String, String)>,
    /// Present only in the earlier snapshot.
    pub removed: Vec<(String, String, String)>,
}

/// Diffs `before` against `after` (both sorted sets, so the output is sorted).
pub fn diff(before: &AccessSet, after: &AccessSet) -> AccessDiff {
    AccessDiff {
        added: after.difference(before).map(owned).collect(),
        removed: before.difference(after).map(owned).collect(),
    }
}

fn owned((principal, resource, action): &(AccessId, AccessId, AccessId)) -> (String, String, String) {
    (principal.to_string(), resource.to_string(), action.to_string())
}

/// One credential in a change list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CredentialChange {
    /// Node id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Credential type (`api_key`, `pat`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Node ids of the identities holding it (sorted).
    pub holders: Vec<String>,
    /// Creation (or, when reported, last rotation) time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<DateTime<Utc>>,
    /// Expiry (None: never expires).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// For a rotation by replacement, the credential it replaced; for a gone
    /// credential, why it is gone (`deleted`, `expired`, `deactivated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One non-human identity in a change list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IdentityChange {
    /// Node id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// `agent`, `service_account` or `app`.
    pub kind: String,
    /// Source name.
    pub source: String,
    /// Owner as the source or the catalog names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Credentials and non-human identities that changed between two graphs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InventoryDiff {
    /// Live now, not live before (and not a rotation).
    pub credentials_created: Vec<CredentialChange>,
    /// Re-issued in place (new creation or rotation time), or replaced by a
    /// new credential of the same type for the same holder.
    pub credentials_rotated: Vec<CredentialChange>,
    /// Live before, deleted, expired or deactivated now (and not a rotation).
    pub credentials_gone: Vec<CredentialChange>,
    /// Active non-human identities that were not there (or not active) before.
    pub identities_appeared: Vec<IdentityChange>,
    /// Active non-human identities before that are gone or inactive now.
    pub identities_disappeared: Vec<IdentityChange>,
}

impl InventoryDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.credentials_created.is_empty()
            && self.credentials_rotated.is_empty()
            && self.credentials_gone.is_empty()
            && self.identities_appeared.is_empty()
            && self.identities_disappeared.is_empty()
    }
}

fn credential_live(node: &Node, at: DateTime<Utc>) -> bool {
    node.active != Some(false) && node.expires_at.is_none_or(|expiry| expiry > at)
}

fn credential_change(graph: &AccessGraph, id: &str, note: Option<String>) -> Option<CredentialChange> {
    let ix = graph.find(id)?;
    let node = graph.node(ix);
    let mut holders: Vec<String> = graph.holders_of(ix).into_iter().map(|h| graph.node(h).id.clone()).collect();
    holders.sort();
    Some(CredentialChange {
        id: node.id.clone(),
        name: node.name.clone(),
        kind: node.subkind.clone(),
        holders,
        issued_at: node.rotated_at.or(node.created_at),
        expires_at: node.expires_at,
        note,
    })
}

fn identity_change(graph: &AccessGraph, node: &Node) -> IdentityChange {
    let owner = graph.catalog().agent_for(&node.id).and_then(|a| a.owner.clone()).or_else(|| node.owner.clone());
    IdentityChange {
        id: node.id.clone(),
        name: node.name.clone(),
        kind: node.kind.as_str().to_string(),
        source: node.source.clone(),
        owner,
    }
}

/// Credentials created, rotated and gone, and non-human identities that
/// appeared or disappeared, from the graph at `before_at` to the graph at
/// `after_at`. Every list is sorted by node id.
pub fn inventory(
    before: &AccessGraph,
    before_at: DateTime<Utc>,
    after: &AccessGraph,
    after_at: DateTime<Utc>,
) -> InventoryDiff {
    let live = |graph: &AccessGraph, at: DateTime<Utc>| -> BTreeMap<String, Option<DateTime<Utc>>> {
        graph
            .nodes()
            .filter(|n| n.kind == NodeKind::Credential && credential_live(n, at))
            .map(|n| (n.id.clone(), n.rotated_at.or(n.created_at)))
            .collect()
    };
    let old = live(before, before_at);
    let new = live(after, after_at);
    let mut created: Vec<String> = new.keys().filter(|id| !old.contains_key(*id)).cloned().collect();
    let mut gone: Vec<String> = old.keys().filter(|id| !new.contains_key(*id)).cloned().collect();
    let mut diff = InventoryDiff::default();
    for (id, issued) in &new {
        if let Some(previous) = old.get(id)
            && previous != issued
        {
            diff.credentials_rotated.extend(credential_change(after, id, None));
        }
    }
    // A new credential of the same type for a holder who lost one is the
    // usual way keys are rotated: report the pair once, as a rotation.
    let signature = |graph: &AccessGraph, id: &str| -> Option<(Option<String>, BTreeSet<String>)> {
        let change = credential_change(graph, id, None)?;
        Some((change.kind, change.holders.into_iter().collect()))
    };
    let mut replaced = BTreeSet::new();
    for new_id in created.clone() {
        let Some((kind, holders)) = signature(after, &new_id) else { continue };
        if holders.is_empty() {
            continue;
        }
        let partner = gone.iter().find(|old_id| {
            !replaced.contains(*old_id)
                && signature(before, old_id).is_some_and(|(k, h)| k == kind && !h.is_disjoint(&holders))
        });
        if let Some(old_id) = partner.cloned() {
            diff.credentials_rotated.extend(credential_change(after, &new_id, Some(format!("replaces {old_id}"))));
            replaced.insert(old_id);
            created.retain(|id| *id != new_id);
        }
    }
    gone.retain(|id| !replaced.contains(id));
    for id in created {
        diff.credentials_created.extend(credential_change(after, &id, None));
    }
    for id in gone {
        let note = match after.find(&id).map(|ix| after.node(ix)) {
            None => "deleted",
            Some(node) if node.active == Some(false) => "deactivated",
            Some(_) => "expired",
        };
        diff.credentials_gone.extend(credential_change(before, &id, Some(note.to_string())));
    }
    diff.credentials_rotated.sort_by(|a, b| a.id.cmp(&b.id));
    fn identities(graph: &AccessGraph) -> BTreeMap<String, &Node> {
        graph.nodes().filter(|n| n.kind.is_non_human() && n.active != Some(false)).map(|n| (n.id.clone(), n)).collect()
    }
    let old_ids = identities(before);
    let new_ids = identities(after);
    for (id, node) in &new_ids {
        if !old_ids.contains_key(id) {
            diff.identities_appeared.push(identity_change(after, node));
        }
    }
    for (id, node) in &old_ids {
        if !new_ids.contains_key(id) {
            diff.identities_disappeared.push(identity_change(before, node));
        }
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::ResolveSettings;
    use crate::model::Edge;
    use crate::model::EdgeKind;
    use crate::settings::Catalog;

    fn at(day: u32) -> DateTime<Utc> {
        format!("2026-11-{day:02}T00:00:00Z").parse().expect("time")
    }

    fn key(id: &str, holder: &str, created: u32) -> (Node, Edge) {
        let mut node = Node::new(format!("s:api_key:{id}"), NodeKind::Credential, "s", id);
        node.subkind = Some("api_key".into());
        node.created_at = Some(at(created));
        (node, Edge::new(format!("s:agent:{holder}"), format!("s:api_key:{id}"), EdgeKind::Holds))
    }

    fn graph(agents: &[&str], keys: Vec<(Node, Edge)>) -> AccessGraph {
        let mut nodes: Vec<Node> =
            agents.iter().map(|a| Node::new(format!("s:agent:{a}"), NodeKind::Agent, "s", *a)).collect();
        let mut edges = Vec::new();
        for (node, edge) in keys {
            nodes.push(node);
            edges.push(edge);
        }
        AccessGraph::build(nodes, edges, &Catalog::default(), &ResolveSettings::default()).expect("graph")
    }

    #[test]
    fn credentials_created_rotated_gone_and_agents_appeared() {
        let before = graph(&["a", "b", "old"], vec![key("k1", "a", 1), key("k2", "b", 1), key("k3", "a", 1)]);
        let mut expiring = key("k3", "a", 1);
        expiring.0.expires_at = Some(at(10));
        // k1 rotated in place; k2 replaced by k4 (same holder, same type);
        // k3 expired; k5 is new for a new agent; `old` disappeared.
        let after = graph(&["a", "b", "c"], vec![key("k1", "a", 15), key("k4", "b", 15), expiring, key("k5", "c", 15)]);
        let diff = inventory(&before, at(5), &after, at(20));
        let ids = |list: &[CredentialChange]| list.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&diff.credentials_created), ["s:api_key:k5"]);
        assert_eq!(ids(&diff.credentials_rotated), ["s:api_key:k1", "s:api_key:k4"]);
        assert_eq!(diff.credentials_rotated[1].note.as_deref(), Some("replaces s:api_key:k2"));
        assert_eq!(ids(&diff.credentials_gone), ["s:api_key:k3"]);
        assert_eq!(diff.credentials_gone[0].note.as_deref(), Some("expired"));
        assert_eq!(diff.identities_appeared.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["s:agent:c"]);
        assert_eq!(diff.identities_disappeared.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["s:agent:old"]);
        assert!(inventory(&after, at(20), &after, at(20)).is_empty(), "nothing changes against itself");
    }

    fn t(p: &str, r: &str, a: &str) -> (String, String, String) {
        (p.into(), r.into(), a.into())
    }

    #[test]
    fn lists_added_and_removed() {
        let set = |triples: &[(String, String, String)]| -> AccessSet {
            triples.iter().map(|(p, r, a)| (p.as_str().into(), r.as_str().into(), a.as_str().into())).collect()
        };
        let before = set(&[t("p", "r", "read"), t("p", "r", "write")]);
        let after = set(&[t("p", "r", "read"), t("q", "r", "read")]);
        let d = diff(&before, &after);
        assert_eq!(d.added, vec![t("q", "r", "read")]);
        assert_eq!(d.removed, vec![t("p", "r", "write")]);
        assert_eq!(diff(&after, &after), AccessDiff::default());
    }
}
