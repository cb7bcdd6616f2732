//! `drift.baseline`: access added or widened since the previous snapshot.
//!
//! With a previous snapshot, an effective (principal, resource, action) absent
//! from it is added. On the first snapshot there is nothing to compare with, so
//! an entry counts as added when the grant that ends its path was made within
//! `baseline_window_days` (a grant the source does not date is not "added").

use super::{Context, Rule, code_list, days, distinct_paths, is_prod};
use crate::access::AccessEntry;
use crate::findings::{Finding, Severity};
use crate::model::{Edge, EdgeKind};
use chrono::{DateTime, Duration, Utc};
use petgraph::graph::NodeIndex;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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
        // previous: (principal, resource) → actions held then, by the
        // current graph's nodes (access of nodes gone since cannot be added).
        let mut before: HashMap<(NodeIndex, NodeIndex), BTreeSet<&str>> = HashMap::new();
        // The set shares each id (`AccessSet`): look each up once, by address.
        let mut found: HashMap<*const u8, Option<NodeIndex>> = HashMap::new();
        let mut find = |id: &crate::access::AccessId| {
            *found.entry(std::sync::Arc::as_ptr(id).cast::<u8>()).or_insert_with(|| ctx.graph.find(id))
        };
        for (principal, resource, action) in ctx.previous.into_iter().flatten() {
            if let (Some(p), Some(r)) = (find(principal), find(resource)) {
                before.entry((p, r)).or_default().insert(&**action);
            }
        }
        // First snapshot: grant edges by (from, to), to date the last hop.
        let mut grants: HashMap<(NodeIndex, NodeIndex), Vec<&Edge>> = HashMap::new();
        if ctx.previous.is_none() {
            for edge in ctx.graph.edges().filter(|e| e.kind == EdgeKind::Grant) {
                if let (Some(from), Some(to)) = (ctx.graph.find(&edge.from), ctx.graph.find(&edge.to)) {
                    grants.entry((from, to)).or_default().push(edge);
                }
            }
        }
        let verdict = |entry: &AccessEntry| -> (bool, Option<DateTime<Utc>>) {
            match ctx.previous {
                Some(_) => {
                    let held_before = before.get(&(entry.principal, entry.resource));
                    (held_before.is_none_or(|actions| !actions.contains(entry.action.as_str())), None)
                }
                None => {
                    let granted_at = grant_date(ctx, &grants, entry);
                    (granted_at.is_some_and(|at| at <= ctx.now && ctx.now - at <= window), granted_at)
                }
            }
        };

        // Most entries are unchanged: find the (principal, resource) pairs
        // that gained something first, so that only those cost allocations.
        let entries = ctx.access.entries();
        let mut added_at: Vec<(usize, Option<DateTime<Utc>>)> = Vec::new();
        let mut gained: HashSet<(NodeIndex, NodeIndex)> = HashSet::new();
        for (i, entry) in entries.iter().enumerate() {
            let (added, granted_at) = verdict(entry);
            if added {
                added_at.push((i, granted_at));
                gained.insert((entry.principal, entry.resource));
            }
        }
        let mut added_at = added_at.into_iter().peekable();
        let mut changes: BTreeMap<(String, String), Change<'_>> = BTreeMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let added = added_at.next_if(|(at, _)| *at == i);
            if !gained.contains(&(entry.principal, entry.resource)) {
                continue;
            }
            let principal_id = ctx.node(entry.principal).id.as_str();
            let resource_id = ctx.node(entry.resource).id.as_str();
            let held_before = before.get(&(entry.principal, entry.resource));
            let change = changes.entry((principal_id.to_string(), resource_id.to_string())).or_insert_with(|| Change {
                principal: entry.principal,
                resource: entry.resource,
                added: Vec::new(),
                granted: BTreeMap::new(),
                kept: held_before.into_iter().flatten().map(|a| a.to_string()).collect(),
            });
            if let Some((_, granted_at)) = added {
                change.added.push(entry);
                if let Some(at) = granted_at {
                    change.granted.insert(entry.action.to_string(), at);
                }
            } else if ctx.previous.is_none() {
                // First snapshot: access that is not recent was already there.
                change.kept.insert(entry.action.to_string());
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

/// When the grant at the end of an entry's path was made: the earliest live
/// grant edge between the last two nodes that carries the action. None when
/// any such edge is undated (its age is unknown, so it is not "recent").
fn grant_date(
    ctx: &Context<'_>,
    grants: &HashMap<(NodeIndex, NodeIndex), Vec<&Edge>>,
    entry: &AccessEntry,
) -> Option<DateTime<Utc>> {
    let key = (entry.grantee(), entry.resource);
    let mut dates = grants
        .get(&key)?
        .iter()
        .filter(|e| e.actions.iter().any(|a| *a == entry.action) && e.expires_at.is_none_or(|at| at > ctx.now))
        .map(|e| e.granted_at)
        .peekable();
    dates.peek()?;
    dates.collect::<Option<Vec<_>>>()?.into_iter().min()
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
