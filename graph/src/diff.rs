//! What changed between two snapshots: effective access, credentials and
//! non-human identities.

use crate::access::{AccessGraph, AccessSet};
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

fn owned((principal, resource, action): (&str, &str, &str)) -> (String, String, String) {
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

fn credential_change(graph: &AccessGraph, node: &Node) -> CredentialChange {
    let mut holders: Vec<String> = match graph.find(&node.id) {
        Some(ix) => graph.holders_of(ix).into_iter().map(|h| graph.node(h).id.clone()).collect(),
        None => Vec::new(),
    };
    holders.sort();
    CredentialChange {
        id: node.id.clone(),
        name: node.name.clone(),
        kind: node.subkind.clone(),
        holders,
        issued_at: node.rotated_at.or(node.created_at),
        expires_at: node.expires_at,
        note: None,
    }
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

/// One credential as an inventory diff needs it.
#[derive(Clone, Debug, PartialEq)]
struct CredentialState {
    change: CredentialChange,
    /// Live at the snapshot's instant (not deactivated, not expired).
    live: bool,
    /// The source says it is inactive.
    deactivated: bool,
}

/// What an inventory diff reads of one snapshot: every credential and the
/// active non-human identities. Small (thousands of records where the
/// graph holds millions of edges), so the daemon keeps the last one in
/// memory instead of rebuilding the previous graph to compare with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inventory {
    credentials: BTreeMap<String, CredentialState>,
    identities: BTreeMap<String, IdentityChange>,
}

impl Inventory {
    /// The inventory of `graph` at `at`.
    pub fn of(graph: &AccessGraph, at: DateTime<Utc>) -> Inventory {
        let mut inventory = Inventory::default();
        for node in graph.nodes() {
            if node.kind == NodeKind::Credential {
                let state = CredentialState {
                    change: credential_change(graph, node),
                    live: credential_live(node, at),
                    deactivated: node.active == Some(false),
                };
                inventory.credentials.insert(node.id.clone(), state);
            } else if node.kind.is_non_human() && node.active != Some(false) {
                inventory.identities.insert(node.id.clone(), identity_change(graph, node));
            }
        }
        inventory
    }

    fn live(&self) -> BTreeMap<&str, Option<DateTime<Utc>>> {
        self.credentials.iter().filter(|(_, c)| c.live).map(|(id, c)| (id.as_str(), c.change.issued_at)).collect()
    }

    fn change(&self, id: &str, note: Option<String>) -> Option<CredentialChange> {
        self.credentials.get(id).map(|c| CredentialChange { note, ..c.change.clone() })
    }

    /// Credentials created, rotated and gone, and non-human identities that
    /// appeared or disappeared, from `self` to `after`. Every list is sorted
    /// by node id.
    pub fn diff(&self, after: &Inventory) -> InventoryDiff {
        let old = self.live();
        let new = after.live();
        let mut created: Vec<&str> = new.keys().filter(|id| !old.contains_key(*id)).copied().collect();
        let mut gone: Vec<&str> = old.keys().filter(|id| !new.contains_key(*id)).copied().collect();
        let mut diff = InventoryDiff::default();
        for (id, issued) in &new {
            if let Some(previous) = old.get(id)
                && previous != issued
            {
                diff.credentials_rotated.extend(after.change(id, None));
            }
        }
        // A new credential of the same type for a holder who lost one is the
        // usual way keys are rotated: report the pair once, as a rotation.
        let signature = |inventory: &Inventory, id: &str| -> Option<(Option<String>, BTreeSet<String>)> {
            let change = &inventory.credentials.get(id)?.change;
            Some((change.kind.clone(), change.holders.iter().cloned().collect()))
        };
        let mut replaced = BTreeSet::new();
        for new_id in created.clone() {
            let Some((kind, holders)) = signature(after, new_id) else { continue };
            if holders.is_empty() {
                continue;
            }
            let partner = gone.iter().find(|old_id| {
                !replaced.contains(*old_id)
                    && signature(self, old_id).is_some_and(|(k, h)| k == kind && !h.is_disjoint(&holders))
            });
            if let Some(&old_id) = partner {
                diff.credentials_rotated.extend(after.change(new_id, Some(format!("replaces {old_id}"))));
                replaced.insert(old_id);
                created.retain(|id| *id != new_id);
            }
        }
        gone.retain(|id| !replaced.contains(id));
        for id in created {
            diff.credentials_created.extend(after.change(id, None));
        }
        for id in gone {
            let note = match after.credentials.get(id) {
                None => "deleted",
                Some(state) if state.deactivated => "deactivated",
                Some(_) => "expired",
            };
            diff.credentials_gone.extend(self.change(id, Some(note.to_string())));
        }
        diff.credentials_rotated.sort_by(|a, b| a.id.cmp(&b.id));
        for (id, identity) in &after.identities {
            if !self.identities.contains_key(id) {
                diff.identities_appeared.push(identity.clone());
            }
        }
        for (id, identity) in &self.identities {
            if !after.identities.contains_key(id) {
                diff.identities_disappeared.push(identity.clone());
            }
        }
        diff
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
    Inventory::of(before, before_at).diff(&Inventory::of(after, after_at))
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
            triples.iter().map(|(p, r, a)| (p.as_str(), r.as_str(), a.as_str())).collect()
        };
        let before = set(&[t("p", "r", "read"), t("p", "r", "write")]);
        let after = set(&[t("p", "r", "read"), t("q", "r", "read")]);
        let d = diff(&before, &after);
        assert_eq!(d.added, vec![t("q", "r", "read")]);
        assert_eq!(d.removed, vec![t("p", "r", "write")]);
        assert_eq!(diff(&after, &after), AccessDiff::default());
    }
}
