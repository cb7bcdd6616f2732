//! `sod.violation`: one principal holds both sides of a `[[sod]]` rule, or a
//! catalog agent whose tier requires dual control has no controller distinct
//! from its owner.

use super::{Context, Rule};
use crate::access::Owner;
use crate::findings::{Finding, Severity};
use crate::settings::{CatalogAgent, SodRule};
use petgraph::graph::NodeIndex;

/// See module docs.
pub struct SodViolation;

impl Rule for SodViolation {
    fn id(&self) -> &'static str {
        "sod.violation"
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for rule in &ctx.settings.sod {
            findings.extend(both_sides(self.id(), ctx, rule));
        }
        for record in &ctx.settings.catalog.agents {
            findings.extend(dual_control(self.id(), ctx, record));
        }
        findings
    }
}

fn both_sides(id: &str, ctx: &Context<'_>, rule: &SodRule) -> Vec<Finding> {
    let (Some(left), Some(right)) = (ctx.graph.find(&rule.left.resource), ctx.graph.find(&rule.right.resource)) else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    for left_entry in ctx.access.on_resource(left).filter(|e| e.action == rule.left.action) {
        let principal = left_entry.principal;
        let Some(right_entry) = ctx.access.holds(principal, right, &rule.right.action) else {
            continue;
        };
        let mut evidence = vec![ctx.evidence(&left_entry.path()), ctx.evidence(&right_entry.path())];
        evidence.dedup();
        findings.push(Finding::new(
            id,
            Severity::Critical,
            &ctx.node(principal).id,
            format!("sod:{}", rule.name),
            format!("{} holds both sides of separation-of-duties rule `{}`", ctx.describe(principal), rule.name),
            format!(
                "{} {}; rule `{}` allows no principal to hold both, so one person or agent can complete the \
                 whole flow alone.",
                ctx.describe(principal),
                if left == right {
                    format!("has both `{}` and `{}` on {}", rule.left.action, rule.right.action, ctx.describe(left))
                } else {
                    format!(
                        "has `{}` on {} and `{}` on {}",
                        rule.left.action,
                        ctx.describe(left),
                        rule.right.action,
                        ctx.describe(right)
                    )
                },
                rule.name,
            ),
            format!(
                "Remove one side: revoke the grant or membership on the evidence path that gives `{}` `{}` on `{}` \
                 or `{}` on `{}`. If both duties are truly needed, give one of them to a second person or put it \
                 behind an approval by someone else.",
                ctx.node(principal).id,
                rule.left.action,
                rule.left.resource,
                rule.right.action,
                rule.right.resource,
            ),
            evidence,
            ctx.now,
        ));
    }
    findings
}

fn dual_control(id: &str, ctx: &Context<'_>, record: &CatalogAgent) -> Option<Finding> {
    let tier = record.risk_tier.unwrap_or(ctx.settings.thresholds.default_tier);
    if !ctx.settings.tiers.policy(tier).dual_control {
        return None;
    }
    let (owner_ref, owner_node) = effective_owner(ctx, record);
    let controller = record.controller.as_deref().map(str::trim).filter(|c| !c.is_empty());
    let problem = match controller {
        None => "has no controller".to_string(),
        Some(controller) => {
            let same_text = owner_ref.as_deref().is_some_and(|owner| owner.trim().eq_ignore_ascii_case(controller));
            let same_node = owner_node.is_some() && ctx.graph.lookup_owner_reference(controller) == owner_node;
            if !(same_text || same_node) {
                return None;
            }
            format!("names its owner as its controller (`{controller}`)")
        }
    };
    let subject_ix = record.identities.first().and_then(|first| ctx.graph.find(first));
    let subject = record.identities.first().cloned().unwrap_or_else(|| format!("catalog:{}", record.id));
    let who = match subject_ix {
        Some(ix) => ctx.describe(ix),
        None => format!("Catalog agent `{}`", record.id),
    };
    let owner_text = owner_ref.map(|owner| format!("; its owner is `{}`", owner.trim())).unwrap_or_default();
    Some(Finding::new(
        id,
        Severity::High,
        &subject,
        format!("dual-control:{}", record.id),
        format!("{who}, tier `{}`, lacks dual control: its record {problem}", tier.as_str()),
        format!(
            "Risk tier `{}` requires dual control (owner plus a distinct controller), but catalog record `{}` \
             {problem}{owner_text}.",
            tier.as_str(),
            record.id,
        ),
        format!(
            "Set `controller` on record `{}` in agents.toml to a second accountable person, distinct from the \
             owner, who approves its high-risk actions. If the agent does not warrant tier `{}`, lower its \
             `risk_tier` after review.",
            record.id,
            tier.as_str(),
        ),
        vec![vec![subject.clone()]],
        ctx.now,
    ))
}

/// The record's owner, else the owner its first bound identity resolves to.
fn effective_owner(ctx: &Context<'_>, record: &CatalogAgent) -> (Option<String>, Option<NodeIndex>) {
    if let Some(owner) = &record.owner {
        return (Some(owner.clone()), ctx.graph.lookup_owner_reference(owner));
    }
    for identity in record.identities.iter().filter_map(|id| ctx.graph.find(id)) {
        match ctx.graph.owner(identity) {
            Owner::Known { node, .. } => {
                let node_ref = ctx.node(*node).email.clone().unwrap_or_else(|| ctx.node(*node).id.clone());
                return (Some(node_ref), Some(*node));
            }
            Owner::Unknown { reference, .. } => return (Some(reference.clone()), None),
            Owner::Missing => {}
        }
    }
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::Kit;
    use crate::settings::{SodSide, Tier};

    fn sod(kit: &mut Kit, left: (&str, &str), right: (&str, &str)) {
        kit.settings.sod.push(SodRule {
            name: "merge-without-review".to_string(),
            left: SodSide { resource: left.0.to_string(), action: left.1.to_string() },
            right: SodSide { resource: right.0.to_string(), action: right.1.to_string() },
        });
    }

    #[test]
    fn holding_both_sides_is_critical_one_side_is_fine() {
        let mut kit = Kit::new();
        let alice = kit.human("alice", "alice@acme.example");
        let bob = kit.human("bob", "bob@acme.example");
        let admins = kit.group("admins");
        let repo = kit.resource("repo");
        let branch = kit.resource("branch");
        kit.grant(&alice, &repo, &["write"]);
        kit.member(&alice, &admins);
        kit.grant(&admins, &branch, &["bypass-review"]);
        kit.grant(&bob, &repo, &["write"]);
        kit.grant(&bob, &branch, &["read"]);
        sod(&mut kit, (&repo, "write"), (&branch, "bypass-review"));
        let findings = kit.run(&SodViolation);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!((f.subject.as_str(), f.object.as_str()), ("person:alice@acme.example", "sod:merge-without-review"));
        assert_eq!(
            f.evidence,
            vec![
                vec!["person:alice@acme.example".to_string(), alice.clone(), repo.clone()],
                vec!["person:alice@acme.example".to_string(), alice.clone(), admins.clone(), branch.clone()],
            ]
        );
        assert!(f.detail.contains("`write` on") && f.detail.contains("`bypass-review` on"), "{}", f.detail);
        assert!(f.remediation.contains("Remove one side"), "{}", f.remediation);
    }

    #[test]
    fn same_resource_two_actions_and_unknown_resources() {
        let mut kit = Kit::new();
        let bot = kit.agent("po-bot", None);
        let po = kit.resource("po");
        kit.grant(&bot, &po, &["approve", "create"]);
        sod(&mut kit, (&po, "create"), (&po, "approve"));
        sod(&mut kit, ("t:dataset:missing", "create"), (&po, "approve"));
        let findings = kit.run(&SodViolation);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].evidence, vec![vec![bot.clone(), po.clone()]], "identical paths collapse");
        assert!(findings[0].detail.contains("has both `create` and `approve` on po"), "{}", findings[0].detail);
    }

    #[test]
    fn expired_side_does_not_count() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let po = kit.resource("po");
        let now = kit.now;
        kit.grant(&bot, &po, &["create"]);
        kit.grant(&bot, &po, &["approve"]).expires_at = Some(now - chrono::Duration::hours(1));
        sod(&mut kit, (&po, "create"), (&po, "approve"));
        assert!(kit.run(&SodViolation).is_empty());
    }

    #[test]
    fn high_tier_without_controller_or_with_owner_as_controller_fires() {
        let mut kit = Kit::new();
        kit.human("alice", "alice@acme.example");
        kit.human("dan", "dan@acme.example");
        let none = kit.agent("none", None);
        let same = kit.agent("same", None);
        let by_id = kit.agent("by-id", None);
        let good = kit.agent("good", None);
        let low = kit.agent("low", None);
        kit.catalog("none", Some("alice@acme.example"), Some(Tier::High), &[&none]);
        kit.catalog("same", Some("alice@acme.example"), Some(Tier::High), &[&same]).controller =
            Some(" Alice@ACME.example ".to_string());
        kit.catalog("by-id", Some("alice@acme.example"), Some(Tier::High), &[&by_id]).controller =
            Some("t:user:alice".to_string());
        kit.catalog("good", Some("alice@acme.example"), Some(Tier::High), &[&good]).controller =
            Some("dan@acme.example".to_string());
        kit.catalog("low", Some("alice@acme.example"), Some(Tier::Low), &[&low]);
        kit.catalog("unbound", None, Some(Tier::High), &[]);
        let findings = kit.run(&SodViolation);
        let got: Vec<(&str, &str)> = findings.iter().map(|f| (f.subject.as_str(), f.object.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("catalog:unbound", "dual-control:unbound"),
                ("t:agent:by-id", "dual-control:by-id"),
                ("t:agent:none", "dual-control:none"),
                ("t:agent:same", "dual-control:same"),
            ]
        );
        assert!(findings.iter().all(|f| f.severity == Severity::High));
        let none_f = &findings[2];
        assert!(none_f.title.starts_with("none (`t:agent:none`), tier `high`, lacks dual control"), "{}", none_f.title);
        assert!(none_f.title.contains("has no controller"), "{}", none_f.title);
        assert!(findings[0].title.starts_with("Catalog agent `unbound`"), "{}", findings[0].title);
        assert!(none_f.remediation.contains("Set `controller` on record `none`"), "{}", none_f.remediation);
        assert!(findings[3].detail.contains("names its owner as its controller"), "{}", findings[3].detail);
    }

    #[test]
    fn default_tier_and_tier_table_decide_dual_control() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", Some("alice@acme.example"));
        kit.catalog("bot", None, None, &[&bot]).controller = Some("alice@acme.example".to_string());
        assert!(kit.run(&SodViolation).is_empty(), "default tier low: no dual control");
        kit.settings.thresholds.default_tier = Tier::High;
        let findings = kit.run(&SodViolation);
        assert_eq!(findings.len(), 1, "the source's owner is compared when the record names none");
        kit.settings.tiers.high.dual_control = false;
        assert!(kit.run(&SodViolation).is_empty());
    }
}
