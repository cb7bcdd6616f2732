//! `drift.policy`: effective access that the Cedar policy does not permit, or
//! forbids. One finding per (principal, resource), grouping the denied actions.

use super::{Context, Rule, code_list, distinct_paths, is_prod};
use crate::access::AccessEntry;
use crate::findings::{Finding, Severity};
use petgraph::graph::NodeIndex;
use std::collections::{BTreeMap, BTreeSet};

/// See module docs.
pub struct DriftPolicy;

#[derive(Default)]
struct Group<'a> {
    entries: Vec<&'a AccessEntry>,
    /// action → forbid policies that matched it (empty: nothing permits it).
    actions: BTreeMap<String, BTreeSet<String>>,
}

impl Rule for DriftPolicy {
    fn id(&self) -> &'static str {
        "drift.policy"
    }

    fn reads_denials(&self) -> bool {
        true
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Finding> {
        let Some(denials) = ctx.denials else {
            return Vec::new();
        };
        let entries = ctx.access.entries();
        let mut groups: BTreeMap<(String, String), (NodeIndex, NodeIndex, Group<'_>)> = BTreeMap::new();
        for denial in denials {
            let Some(entry) = entries.get(denial.entry) else {
                continue;
            };
            let key = (ctx.node(entry.principal).id.clone(), ctx.node(entry.resource).id.clone());
            let (_, _, group) =
                groups.entry(key).or_insert_with(|| (entry.principal, entry.resource, Group::default()));
            group.entries.push(entry);
            group.actions.entry(entry.action.to_string()).or_default().extend(denial.forbidden_by.iter().cloned());
        }
        let mut findings = Vec::new();
        for ((principal_id, resource_id), (principal, resource, group)) in groups {
            let forbidden: BTreeSet<&String> = group.actions.values().flatten().collect();
            let forbidden_actions: Vec<&String> =
                group.actions.iter().filter(|(_, by)| !by.is_empty()).map(|(action, _)| action).collect();
            let unpermitted: Vec<&String> =
                group.actions.iter().filter(|(_, by)| by.is_empty()).map(|(action, _)| action).collect();
            let prod = is_prod(ctx.node(resource));
            let severity = if prod || !forbidden.is_empty() { Severity::High } else { Severity::Medium };

            let mut why = Vec::new();
            if !forbidden_actions.is_empty() {
                why.push(format!(
                    "{} explicitly forbidden by {} {}",
                    code_list(&forbidden_actions),
                    if forbidden.len() == 1 { "policy" } else { "policies" },
                    code_list(&forbidden),
                ));
            }
            if !unpermitted.is_empty() {
                why.push(format!("{} permitted by no policy", code_list(&unpermitted)));
            }
            let env = ctx.node(resource).environment.as_deref().filter(|e| !e.is_empty());
            let shortest = group.entries.iter().min_by_key(|e| e.path_len()).map(|e| e.path());
            let detail = format!(
                "{} has {} on {}{} through {}, but the Cedar policy does not allow it: {}.",
                ctx.describe(principal),
                code_list(group.actions.keys()),
                ctx.describe(resource),
                env.map(|e| format!(" (environment `{e}`)")).unwrap_or_default(),
                if group.entries.len() == 1 { "the path in the evidence" } else { "the paths in the evidence" },
                why.join("; "),
            );
            let remediation = format!(
                "{} If the access is intended, amend the Cedar policy to permit it{}.",
                remove_hint(ctx, shortest.as_deref().unwrap_or(&[])),
                if forbidden.is_empty() {
                    String::new()
                } else {
                    format!(" (and review the forbid {})", code_list(&forbidden))
                },
            );
            findings.push(Finding::new(
                self.id(),
                severity,
                principal_id,
                resource_id,
                format!(
                    "{} has {} on {} outside the declared policy",
                    ctx.describe(principal),
                    code_list(group.actions.keys()),
                    ctx.describe(resource),
                ),
                detail,
                remediation,
                distinct_paths(ctx, group.entries.iter().copied()),
                ctx.now,
            ));
        }
        findings
    }
}

/// "Remove the grant of X on Y (or Z's membership of W)." for the shortest path.
fn remove_hint(ctx: &Context<'_>, path: &[NodeIndex]) -> String {
    let [.., grantee, resource] = path else {
        return "Remove the grant or membership on the evidence path that confers this access.".to_string();
    };
    let grant = format!("Remove the grant to `{}` on `{}`", ctx.node(*grantee).id, ctx.node(*resource).id);
    // The principal's own first hop (from its account, for a person).
    let start = usize::from(path.len() > 1 && ctx.graph.person_of(path[1]) == Some(path[0]));
    if start + 3 <= path.len() {
        format!(
            "{grant}, or the membership or role assumption of `{}` in `{}`, on the evidence path.",
            ctx.node(path[start]).id,
            ctx.node(path[start + 1]).id
        )
    } else {
        format!("{grant}.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::Kit;

    const POLICY: &str = r#"
        permit(principal in Group::"t:group:readers", action == Action::"read", resource);
        @id("no-prod-admin")
        forbid(principal, action == Action::"admin", resource) when { resource.environment == "prod" };
    "#;

    fn kit() -> Kit {
        let mut kit = Kit::new();
        kit.policy = Some(POLICY.to_string());
        kit
    }

    #[test]
    fn no_policy_no_findings() {
        let mut kit = Kit::new();
        let alice = kit.human("alice", "alice@acme.example");
        let db = kit.resource("db");
        kit.grant(&alice, &db, &["admin"]);
        assert!(kit.run(&DriftPolicy).is_empty());
    }

    #[test]
    fn permitted_access_does_not_fire() {
        let mut kit = kit();
        let alice = kit.human("alice", "alice@acme.example");
        let readers = kit.group("readers");
        let db = kit.resource("db");
        kit.member(&alice, &readers);
        kit.grant(&readers, &db, &["read"]);
        assert!(kit.run(&DriftPolicy).is_empty(), "{:#?}", kit.run(&DriftPolicy));
    }

    #[test]
    fn groups_denied_actions_per_principal_and_resource() {
        let mut kit = kit();
        let alice = kit.human("alice", "alice@acme.example");
        let readers = kit.group("readers");
        let ops = kit.group("ops");
        let db = kit.resource("db");
        kit.member(&alice, &readers);
        kit.member(&alice, &ops);
        kit.grant(&readers, &db, &["read"]);
        kit.grant(&ops, &db, &["write", "delete"]);
        let findings = kit.run(&DriftPolicy);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.rule, "drift.policy");
        assert_eq!(f.subject, "person:alice@acme.example");
        assert_eq!(f.object, "t:dataset:db");
        assert_eq!(f.severity, Severity::Medium, "not prod, no forbid");
        assert!(f.title.contains("`delete` and `write`"), "{}", f.title);
        assert!(f.detail.contains("permitted by no policy"), "{}", f.detail);
        assert!(!f.detail.contains("read"), "the permitted action is not reported: {}", f.detail);
        // Both actions come through the same path: one evidence path.
        assert_eq!(
            f.evidence,
            vec![vec![
                "person:alice@acme.example".to_string(),
                "t:user:alice".to_string(),
                "t:group:ops".to_string(),
                "t:dataset:db".to_string()
            ]]
        );
        assert!(f.remediation.contains("Remove the grant to `t:group:ops` on `t:dataset:db`"), "{}", f.remediation);
        assert!(f.remediation.contains("`t:user:alice` in `t:group:ops`"), "{}", f.remediation);
        assert!(f.remediation.contains("amend the Cedar policy"), "{}", f.remediation);
    }

    #[test]
    fn forbid_matched_is_high_and_named() {
        let mut kit = kit();
        let bot = kit.agent("bot", Some("alice@acme.example"));
        let db = kit.resource("db");
        kit.node_mut(&db).environment = Some("prod".to_string());
        kit.grant(&bot, &db, &["admin"]);
        let findings = kit.run(&DriftPolicy);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].severity, Severity::High);
        assert!(findings[0].detail.contains("forbidden by policy `no-prod-admin`"), "{}", findings[0].detail);
        assert!(findings[0].remediation.contains("review the forbid `no-prod-admin`"));
        assert_eq!(findings[0].evidence, vec![vec!["t:agent:bot".to_string(), "t:dataset:db".to_string()]]);
    }

    #[test]
    fn prod_without_forbid_is_high_dev_is_medium() {
        let mut kit = kit();
        let bot = kit.agent("bot", None);
        let prod = kit.resource("prod-db");
        let dev = kit.resource("dev-db");
        kit.node_mut(&prod).environment = Some("prod".to_string());
        kit.node_mut(&dev).environment = Some("dev".to_string());
        kit.grant(&bot, &prod, &["write"]);
        kit.grant(&bot, &dev, &["admin"]);
        let findings = kit.run(&DriftPolicy);
        assert_eq!(findings.len(), 2, "{findings:#?}");
        assert_eq!(findings[0].object, "t:dataset:dev-db");
        assert_eq!(findings[0].severity, Severity::Medium, "forbid only applies to prod");
        assert_eq!(findings[1].object, "t:dataset:prod-db");
        assert_eq!(findings[1].severity, Severity::High);
    }

    #[test]
    fn ungoverned_sources_are_not_evaluated() {
        let mut kit = kit();
        let bot = kit.agent("bot", None);
        let db = kit.resource_in("other", "db");
        kit.grant(&bot, &db, &["admin"]);
        kit.settings.governed = Some(["t".to_string()].into());
        assert!(kit.run(&DriftPolicy).is_empty());
    }

    #[test]
    fn group_cycles_do_not_break_cedar() {
        let mut kit = kit();
        let alice = kit.human("alice", "alice@acme.example");
        let readers = kit.group("readers");
        let a = kit.group("a");
        let b = kit.group("b");
        let db = kit.resource("db");
        kit.member(&alice, &a);
        kit.member(&a, &b);
        kit.member(&b, &a);
        kit.member(&b, &readers);
        kit.member(&readers, &a);
        kit.grant(&b, &db, &["read", "write"]);
        let findings = kit.run(&DriftPolicy);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert!(findings[0].title.contains("`write`") && !findings[0].title.contains("`read`"));
    }
}
