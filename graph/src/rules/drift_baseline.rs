//! `drift.baseline`: access added or widened since the previous snapshot.
//!
//! With a previous snapshot, an effective (principal, resource, action) absent
//! from it is added. On the first snapshot there is nothing to compare with, so
//! an entry counts as added when the grant that ends its path was made within
//! `baseline_window_days` (a grant the source does not date is not "added").

use super::{Context, Rule, code_list, days, distinct_paths, is_prod};
use crate::access::{AccessEntry, AccessSet, Link};
use crate::findings::{Finding, Severity};
use crate::model::EdgeKind;
use chrono::{DateTime, Duration, Utc};
use petgraph::graph::NodeIndex;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// See module docs.
pub struct DriftBaseline;

/// Actions that change, approve or destroy: adding one in prod is high.
const SENSITIVE: &[&str] = &["admin", "write", "approve", "delete", "bypass-review"];

struct Change<'a> {
    principal: NodeIndex,
    resource: NodeIndex,
    added: Vec<&'a AccessEntry>,
    /// When each added action's grant was made (first snapshot only).
    granted: BTreeMap<String, DateTime<Utc>>,
    kept: BTreeSet<String>,
}

impl Rule for DriftBaseline {
    fn id(&self) -> &'static str {
        "drift.baseline"
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Finding> {
        let window = Duration::days(i64::from(ctx.settings.thresholds.baseline_window_days));
        let entries = ctx.access.entries();
        // The entries added, each with the date of its grant on a first
        // snapshot. Most entries are unchanged: only the added ones, and
        // the (principal, resource) pairs they are on, cost allocations.
        let added: Vec<(usize, Option<DateTime<Utc>>)> = match ctx.previous {
            Some(previous) => {
                let before = Before::index(ctx, previous);
                (0..entries.len()).filter(|&i| !before.holds(&entries[i])).map(|i| (i, None)).collect()
            }
            None => {
                let grants = GrantIndex::of(ctx);
                (0..entries.len())
                    .filter_map(|i| {
                        let granted_at = grants.date(ctx, &entries[i])?;
                        (granted_at <= ctx.now && ctx.now - granted_at <= window).then_some((i, Some(granted_at)))
                    })
                    .collect()
            }
        };
        let mut gained: FxHashMap<NodeIndex, FxHashSet<NodeIndex>> = FxHashMap::default();
        for &(i, _) in &added {
            gained.entry(entries[i].principal).or_default().insert(entries[i].resource);
        }
        let added: FxHashMap<usize, Option<DateTime<Utc>>> = added.into_iter().collect();

        let mut changes: BTreeMap<(String, String), Change<'_>> = BTreeMap::new();
        let mut principals: Vec<NodeIndex> = gained.keys().copied().collect();
        principals.sort();
        for principal in principals {
            let resources = &gained[&principal];
            for (position, entry) in
                ctx.access.positions_of_principal(principal).filter(|(_, e)| resources.contains(&e.resource))
            {
                let principal_id = ctx.node(entry.principal).id.as_str();
                let resource_id = ctx.node(entry.resource).id.as_str();
                let change =
                    changes.entry((principal_id.to_string(), resource_id.to_string())).or_insert_with(|| Change {
                        principal: entry.principal,
                        resource: entry.resource,
                        added: Vec::new(),
                        granted: BTreeMap::new(),
                        kept: ctx.previous.map(|p| held_before(p, principal_id, resource_id)).unwrap_or_default(),
                    });
                match added.get(&position) {
                    Some(granted_at) => {
                        change.added.push(entry);
                        if let Some(at) = granted_at {
                            change.granted.insert(entry.action.to_string(), *at);
                        }
                    }
                    // First snapshot: access that is not recent was already there.
                    None if ctx.previous.is_none() => {
                        change.kept.insert(entry.action.to_string());
                    }
                    None => {}
                }
            }
        }

        let mut findings = Vec::new();
        for ((principal_id, resource_id), change) in changes {
            if change.added.is_empty() {
                continue;
            }
            let actions: BTreeSet<&str> = change.added.iter().map(|e| e.action.as_str()).collect();
            let resource = ctx.node(change.resource);
            let sensitive: Vec<&str> =
                actions.iter().copied().filter(|a| SENSITIVE.iter().any(|s| s.eq_ignore_ascii_case(a))).collect();
            let severity = if is_prod(resource) && !sensitive.is_empty() { Severity::High } else { Severity::Medium };
            let widened = !change.kept.is_empty();
            let (verb, already) = if widened {
                ("widened", format!(" (it already had {})", code_list(&change.kept)))
            } else {
                ("added", String::new())
            };
            let env = resource
                .environment
                .as_deref()
                .filter(|e| !e.is_empty())
                .map(|e| format!(" (environment `{e}`)"))
                .unwrap_or_default();
            let body = format!(
                "{} gained {} on {}{env}{already}",
                ctx.describe(change.principal),
                code_list(&actions),
                ctx.describe(change.resource),
            );
            let mut detail = match ctx.previous {
                Some(_) => format!("Since the previous snapshot, {body}."),
                None => {
                    let dates: BTreeSet<String> =
                        change.granted.values().map(|at| at.format("%Y-%m-%d").to_string()).collect();
                    let oldest = change.granted.values().min().copied().unwrap_or(ctx.now);
                    format!(
                        "{body}: there is no previous snapshot to compare with, and the grant on the path was \
                         made on {} ({} ago), within the {}-day baseline window.",
                        dates.into_iter().collect::<Vec<_>>().join(", "),
                        days(ctx.days_since(oldest)),
                        ctx.settings.thresholds.baseline_window_days,
                    )
                }
            };
            if severity == Severity::High {
                detail.push_str(&format!(" {} on a production resource is high risk.", code_list(&sensitive)));
            }
            findings.push(Finding::new(
                self.id(),
                severity,
                principal_id,
                resource_id,
                format!(
                    "Access {verb}: {} gained {} on {}",
                    ctx.describe(change.principal),
                    code_list(&actions),
                    ctx.describe(change.resource),
                ),
                detail,
                "Confirm the change was requested and approved (access request, ticket or pull request). \
                 If it was not, remove the grant or membership on the evidence path; if it was, declare it \
                 in the Cedar policy so later drift is measured against it.",
                distinct_paths(ctx, change.added.iter().copied()),
                ctx.now,
            ));
        }
        findings
    }
}

/// The actions each (principal, resource) held at the previous snapshot,
/// by the current graph's nodes (access of nodes gone since cannot be added).
struct Before {
    held: FxHashSet<(NodeIndex, NodeIndex, u32)>,
    /// Action text → a number, for the actions the previous snapshot holds.
    actions: HashMap<Arc<str>, u32>,
}

impl Before {
    fn index(ctx: &Context<'_>, previous: &AccessSet) -> Before {
        // Each id and action of the set is looked up once.
        let nodes: Vec<Option<NodeIndex>> = previous.names().iter().map(|id| ctx.graph.find(id)).collect();
        let mut actions: HashMap<Arc<str>, u32> = HashMap::new();
        let mut held = FxHashSet::default();
        for &[principal, resource, action] in previous.index_triples() {
            if let (Some(p), Some(r)) = (nodes[principal as usize], nodes[resource as usize]) {
                actions.entry(Arc::clone(&previous.names()[action as usize])).or_insert(action);
                held.insert((p, r, action));
            }
        }
        Before { held, actions }
    }

    fn holds(&self, entry: &AccessEntry) -> bool {
        self.actions
            .get(entry.action.as_str())
            .is_some_and(|&action| self.held.contains(&(entry.principal, entry.resource, action)))
    }
}

/// The actions a (principal, resource) held in the previous snapshot.
fn held_before(previous: &AccessSet, principal: &str, resource: &str) -> BTreeSet<String> {
    previous.actions_of(principal, resource).map(str::to_string).collect()
}

/// Live grant edges by (grantee, resource), to date the last hop of a path
/// on a first snapshot. Most pairs have one grant: only the others allocate.
struct GrantIndex<'g> {
    first: FxHashMap<(NodeIndex, NodeIndex), &'g Link>,
    more: FxHashMap<(NodeIndex, NodeIndex), Vec<&'g Link>>,
}

impl<'g> GrantIndex<'g> {
    fn of(ctx: &Context<'g>) -> GrantIndex<'g> {
        let mut index = GrantIndex { first: FxHashMap::default(), more: FxHashMap::default() };
        for (from, to, edge) in ctx.graph.edges_of_kind(EdgeKind::Grant) {
            if let Some(first) = index.first.insert((from, to), edge) {
                // Keep the first in `first`, in edge order, and the rest apart.
                index.first.insert((from, to), first);
                index.more.entry((from, to)).or_default().push(edge);
            }
        }
        index
    }

    /// When the grant at the end of an entry's path was made: the earliest
    /// live grant edge between the last two nodes that carries the action.
    /// None when any such edge is undated (its age is unknown, so it is not
    /// "recent").
    fn date(&self, ctx: &Context<'_>, entry: &AccessEntry) -> Option<DateTime<Utc>> {
        let key = (entry.grantee(), entry.resource);
        let first = self.first.get(&key)?;
        let mut dates = std::iter::once(*first)
            .chain(self.more.get(&key).into_iter().flatten().copied())
            .filter(|e| e.actions.contains(&entry.action) && e.expires_at.is_none_or(|at| at > ctx.now))
            .map(|e| e.granted_at)
            .peekable();
        dates.peek()?;
        dates.collect::<Option<Vec<_>>>()?.into_iter().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{AccessId, AccessSet};
    use crate::rules::testkit::Kit;

    fn triple(p: &str, r: &str, a: &str) -> (AccessId, AccessId, AccessId) {
        (p.into(), r.into(), a.into())
    }

    #[test]
    fn unchanged_access_does_not_fire() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let db = kit.resource("db");
        kit.grant(&bot, &db, &["read"]);
        kit.previous = Some(AccessSet::from([triple(&bot, &db, "read")]));
        assert!(kit.run(&DriftBaseline).is_empty());
    }

    #[test]
    fn new_access_is_added_one_finding_per_resource() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let db = kit.resource("db");
        let other = kit.resource("other");
        kit.grant(&bot, &db, &["read", "write"]);
        kit.grant(&bot, &other, &["read"]);
        kit.previous = Some(AccessSet::from([triple(&bot, &other, "read")]));
        let findings = kit.run(&DriftBaseline);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!((f.subject.as_str(), f.object.as_str()), ("t:agent:bot", "t:dataset:db"));
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.title.starts_with("Access added:"), "{}", f.title);
        assert!(f.title.contains("`read` and `write`"), "{}", f.title);
        assert!(f.detail.starts_with("Since the previous snapshot"), "{}", f.detail);
        assert_eq!(f.evidence, vec![vec![bot.clone(), db.clone()]]);
    }

    #[test]
    fn widened_access_names_what_was_there() {
        let mut kit = Kit::new();
        let alice = kit.human("alice", "alice@acme.example");
        let admins = kit.group("admins");
        let db = kit.resource("db");
        kit.node_mut(&db).environment = Some("prod".to_string());
        kit.grant(&alice, &db, &["read"]);
        kit.member(&alice, &admins);
        kit.grant(&admins, &db, &["admin"]);
        kit.previous = Some(AccessSet::from([triple("person:alice@acme.example", &db, "read")]));
        let findings = kit.run(&DriftBaseline);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.subject, "person:alice@acme.example");
        assert_eq!(f.severity, Severity::High, "admin added in prod");
        assert!(f.title.starts_with("Access widened:"), "{}", f.title);
        assert!(f.detail.contains("it already had `read`"), "{}", f.detail);
        assert_eq!(f.evidence.len(), 1, "only the added action's path: {:?}", f.evidence);
        assert!(f.evidence[0].contains(&admins));
    }

    #[test]
    fn prod_read_is_medium_and_sensitive_outside_prod_is_medium() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let prod = kit.resource("prod");
        let dev = kit.resource("dev");
        kit.node_mut(&prod).environment = Some("prod".to_string());
        kit.node_mut(&dev).environment = Some("dev".to_string());
        kit.grant(&bot, &prod, &["read"]);
        kit.grant(&bot, &dev, &["delete"]);
        kit.previous = Some(AccessSet::new());
        let findings = kit.run(&DriftBaseline);
        assert_eq!(findings.len(), 2);
        assert!(findings.iter().all(|f| f.severity == Severity::Medium), "{findings:#?}");
    }

    #[test]
    fn first_snapshot_uses_the_grant_date_within_the_window() {
        let mut kit = Kit::new();
        let now = kit.now;
        let bot = kit.agent("bot", None);
        let [inside, edge, outside, undated, future] =
            ["inside", "edge", "outside", "undated", "future"].map(|id| kit.resource(id));
        kit.grant(&bot, &inside, &["write"]).granted_at = Some(now - Duration::days(2));
        kit.grant(&bot, &edge, &["write"]).granted_at = Some(now - Duration::days(7));
        kit.grant(&bot, &outside, &["write"]).granted_at = Some(now - Duration::days(7) - Duration::seconds(1));
        kit.grant(&bot, &undated, &["write"]);
        kit.grant(&bot, &future, &["write"]).granted_at = Some(now + Duration::days(1));
        let findings = kit.run(&DriftBaseline);
        let objects: Vec<&str> = findings.iter().map(|f| f.object.as_str()).collect();
        assert_eq!(objects, vec![edge.as_str(), inside.as_str()], "{findings:#?}");
        assert!(findings[1].detail.contains("no previous snapshot"), "{}", findings[1].detail);
        assert!(findings[1].detail.contains("2026-11-25 (2 days ago)"), "{}", findings[1].detail);
        assert!(findings[1].title.starts_with("Access added:"));
    }

    #[test]
    fn first_snapshot_recent_grant_next_to_old_access_is_widening() {
        let mut kit = Kit::new();
        let now = kit.now;
        let bot = kit.agent("bot", None);
        let db = kit.resource("db");
        kit.grant(&bot, &db, &["read"]).granted_at = Some(now - Duration::days(300));
        kit.grant(&bot, &db, &["write"]).granted_at = Some(now - Duration::days(1));
        let findings = kit.run(&DriftBaseline);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert!(findings[0].title.starts_with("Access widened:"), "{}", findings[0].title);
        assert!(findings[0].title.contains("`write`") && !findings[0].title.contains("`read`"));
    }

    #[test]
    fn first_snapshot_dates_the_last_hop_of_the_path() {
        let mut kit = Kit::new();
        let now = kit.now;
        let bot = kit.agent("bot", None);
        let ops = kit.group("ops");
        let db = kit.resource("db");
        kit.member(&bot, &ops);
        kit.grant(&ops, &db, &["read"]).granted_at = Some(now - Duration::days(1));
        let findings = kit.run(&DriftBaseline);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].evidence, vec![vec![bot, ops, db]]);
    }
}
