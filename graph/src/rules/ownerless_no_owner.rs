//! `ownerless.no_owner`: an active non-human identity for which neither its
//! source nor the agent catalog names an owner.

use super::{Context, Rule};
use crate::access::Owner;
use crate::findings::{Finding, Severity};
use crate::model::NodeKind;

/// See module docs.
pub struct NoOwner;

impl Rule for NoOwner {
    fn id(&self) -> &'static str {
        "ownerless.no_owner"
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for ix in ctx.graph.node_indices() {
            let node = ctx.node(ix);
            if !node.kind.is_non_human() || node.active == Some(false) {
                continue;
            }
            if *ctx.graph.owner(ix) != Owner::Missing {
                continue;
            }
            let severity = if node.kind == NodeKind::Agent { Severity::High } else { Severity::Medium };
            let kind = kind_words(node.kind);
            let record = ctx.catalog_record(ix);
            let catalog = match record {
                Some(record) => format!("its catalog record `{}` names no owner", record.id),
                None => "no agent catalog record binds it".to_string(),
            };
            let catalog_fix = match record {
                Some(record) => format!("set `owner = \"EMAIL\"` on record `{}` in agents.toml", record.id),
                None => format!("register it in agents.toml with an `owner` and `identities = [\"{}\"]`", node.id),
            };
            findings.push(Finding::new(
                self.id(),
                severity,
                &node.id,
                &node.id,
                format!("{} {} has no owner", capitalise(kind), ctx.describe(ix)),
                format!(
                    "Source `{}` reports no owner for the {kind} {}, and {catalog}: nobody is accountable for \
                     what it can do or for its credentials.",
                    node.source,
                    ctx.describe(ix),
                ),
                format!(
                    "Assign an accountable person: {catalog_fix}, or set the owner in `{}` (for example an \
                     owner tag). If nobody claims it, disable it and revoke its credentials.",
                    node.source
                ),
                vec![vec![node.id.clone()]],
                ctx.now,
            ));
        }
        findings
    }
}

/// "agent", "service account", "app".
pub(crate) fn kind_words(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Agent => "agent",
        NodeKind::ServiceAccount => "service account",
        NodeKind::App => "app",
        _ => "identity",
    }
}

pub(crate) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Node;
    use crate::rules::testkit::Kit;

    #[test]
    fn agent_without_owner_is_high_service_account_medium() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let sa = kit.service_account("ci", None);
        let findings = kit.run(&NoOwner);
        assert_eq!(findings.len(), 2, "{findings:#?}");
        let bot_f = findings.iter().find(|f| f.subject == bot).expect("agent finding");
        assert_eq!(bot_f.severity, Severity::High);
        assert_eq!(bot_f.object, bot);
        assert!(bot_f.title.starts_with("Agent bot (`t:agent:bot`) has no owner"), "{}", bot_f.title);
        assert!(bot_f.detail.contains("no agent catalog record binds it"), "{}", bot_f.detail);
        assert!(bot_f.remediation.contains("agents.toml"), "{}", bot_f.remediation);
        assert_eq!(bot_f.evidence, vec![vec![bot.clone()]]);
        let sa_f = findings.iter().find(|f| f.subject == sa).expect("service account finding");
        assert_eq!(sa_f.severity, Severity::Medium);
        assert!(sa_f.title.starts_with("Service account"), "{}", sa_f.title);
    }

    #[test]
    fn app_without_owner_is_medium() {
        let mut kit = Kit::new();
        kit.nodes.push(Node::new("t:app:ci-app", NodeKind::App, "t", "CI app"));
        let findings = kit.run(&NoOwner);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Medium);
    }

    #[test]
    fn an_owner_from_source_or_catalog_does_not_fire_even_unknown() {
        let mut kit = Kit::new();
        kit.human("alice", "alice@acme.example");
        kit.agent("source-owned", Some("alice@acme.example"));
        kit.agent("unknown-owner", Some("ghost@acme.example"));
        let catalogued = kit.agent("catalogued", None);
        kit.catalog("catalogued", Some("alice@acme.example"), None, &[&catalogued]);
        assert!(kit.run(&NoOwner).is_empty(), "an unknown owner is ownerless.owner_inactive's");
    }

    #[test]
    fn catalog_record_without_owner_is_named() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        kit.catalog("po-bot", None, None, &[&bot]);
        let findings = kit.run(&NoOwner);
        assert_eq!(findings.len(), 1);
        assert!(findings[0].detail.contains("catalog record `po-bot` names no owner"), "{}", findings[0].detail);
        assert!(findings[0].remediation.contains("record `po-bot`"), "{}", findings[0].remediation);
    }

    #[test]
    fn inactive_identities_people_and_credentials_do_not_fire() {
        let mut kit = Kit::new();
        let bot = kit.agent("retired", None);
        kit.node_mut(&bot).active = Some(false);
        kit.human("alice", "alice@acme.example");
        let sa = kit.service_account("ci", Some("alice@acme.example"));
        kit.credential("k", &sa, kit.now, None);
        assert!(kit.run(&NoOwner).is_empty());
    }
}
