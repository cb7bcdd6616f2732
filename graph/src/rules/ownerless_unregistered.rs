//! `ownerless.unregistered`: an active non-human identity that no catalog
//! record binds (a shadow agent).

use super::ownerless_no_owner::{capitalise, kind_words};
use super::{Context, Rule};
use crate::findings::{Finding, Severity};
use crate::model::NodeKind;
use std::collections::BTreeSet;

/// See module docs.
pub struct Unregistered;

impl Rule for Unregistered {
    fn id(&self) -> &'static str {
        "ownerless.unregistered"
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for ix in ctx.graph.node_indices() {
            let node = ctx.node(ix);
            if !node.kind.is_non_human() || node.active == Some(false) || ctx.catalog_record(ix).is_some() {
                continue;
            }
            let severity = if node.kind == NodeKind::Agent { Severity::Medium } else { Severity::Low };
            let kind = kind_words(node.kind);
            let resources: BTreeSet<_> = ctx.access.of_principal(ix).map(|e| e.resource).collect();
            let credentials = ctx.graph.neighbors(ix, crate::model::EdgeKind::Holds, petgraph::Direction::Outgoing);
            findings.push(Finding::new(
                self.id(),
                severity,
                &node.id,
                &node.id,
                format!("{} {} is not in the agent catalog", capitalise(kind), ctx.describe(ix)),
                format!(
                    "The {kind} {} in source `{}` is bound by no agents.toml record, so it has no declared \
                     purpose, risk tier or allowed systems. It reaches {} and holds {}.",
                    ctx.describe(ix),
                    node.source,
                    count(resources.len(), "resource"),
                    count(credentials.len(), "credential"),
                ),
                format!(
                    "Register it in agents.toml: an `[[agent]]` record with `owner`, `purpose`, `risk_tier`, \
                     `allowed_systems` and `identities = [\"{}\"]`. If nobody claims it, disable it and revoke \
                     its credentials.",
                    node.id
                ),
                vec![vec![node.id.clone()]],
                ctx.now,
            ));
        }
        findings
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Node;
    use crate::rules::testkit::Kit;

    #[test]
    fn uncatalogued_agent_is_medium_others_low() {
        let mut kit = Kit::new();
        let bot = kit.agent("shadow", Some("alice@acme.example"));
        let sa = kit.service_account("ci", None);
        kit.nodes.push(Node::new("t:app:gh-app", NodeKind::App, "t", "GH app"));
        let db = kit.resource("db");
        kit.grant(&bot, &db, &["read", "write"]);
        kit.credential("k", &bot, kit.now, None);
        let findings = kit.run(&Unregistered);
        assert_eq!(findings.len(), 3, "{findings:#?}");
        let by = |id: &str| findings.iter().find(|f| f.subject == id).expect("finding");
        let f = by(&bot);
        assert_eq!(f.severity, Severity::Medium);
        assert_eq!(f.object, bot);
        assert!(f.title.contains("not in the agent catalog"), "{}", f.title);
        assert!(f.detail.contains("reaches 1 resource and holds 1 credential"), "{}", f.detail);
        assert!(f.remediation.contains("identities = [\"t:agent:shadow\"]"), "{}", f.remediation);
        assert_eq!(by(&sa).severity, Severity::Low);
        assert_eq!(by("t:app:gh-app").severity, Severity::Low);
    }

    #[test]
    fn catalogued_inactive_and_human_identities_do_not_fire() {
        let mut kit = Kit::new();
        let bot = kit.agent("known", None);
        kit.catalog("known", None, None, &[&bot]);
        let retired = kit.agent("retired", None);
        kit.node_mut(&retired).active = Some(false);
        kit.human("alice", "alice@acme.example");
        kit.group("ops");
        assert!(kit.run(&Unregistered).is_empty());
    }
}
