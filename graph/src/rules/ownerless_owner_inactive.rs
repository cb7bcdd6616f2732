//! `ownerless.owner_inactive`: an active non-human identity whose owner is
//! deprovisioned or suspended, or is named but unknown to every source.

use super::ownerless_no_owner::{capitalise, kind_words};
use super::{Context, Rule};
use crate::access::Owner;
use crate::findings::{Finding, Severity};
use crate::model::{NodeKind, person_id};

/// See module docs.
pub struct OwnerInactive;

impl Rule for OwnerInactive {
    fn id(&self) -> &'static str {
        "ownerless.owner_inactive"
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for ix in ctx.graph.node_indices() {
            let node = ctx.node(ix);
            if !node.kind.is_non_human() || node.active == Some(false) {
                continue;
            }
            let kind = kind_words(node.kind);
            let said_by = |from_catalog: bool, inferred: bool| {
                if from_catalog {
                    let record = ctx.catalog_record(ix).map(|r| r.id.as_str()).unwrap_or_default();
                    format!("declared by catalog record `{record}`")
                } else if inferred {
                    format!("inferred by source `{}` (e.g. the creator)", node.source)
                } else {
                    format!("reported by source `{}`", node.source)
                }
            };
            let (owner_id, title, detail) = match ctx.graph.owner(ix) {
                Owner::Known { node: owner, from_catalog, inferred } => {
                    if ctx.graph.is_active(*owner) {
                        continue;
                    }
                    let owner_node = ctx.node(*owner);
                    let how = if owner_node.kind == NodeKind::Person {
                        // The accounts that decided it: identity-source ones when there are any.
                        let sources = ctx.graph.identity_sources();
                        let accounts: Vec<_> = ctx.graph.accounts_of(*owner).into_iter().map(|a| ctx.node(a)).collect();
                        let authoritative: Vec<_> = accounts.iter().filter(|a| sources.contains(&a.source)).collect();
                        let deciding = if authoritative.is_empty() { accounts.iter().collect() } else { authoritative };
                        let ids: Vec<String> = deciding.iter().map(|a| format!("`{}`", a.id)).collect();
                        format!("deactivated or suspended (account {})", ids.join(", "))
                    } else {
                        "deactivated or suspended in its source".to_string()
                    };
                    (
                        owner_node.id.clone(),
                        format!(
                            "{} {} is owned by inactive {}",
                            capitalise(kind),
                            ctx.describe(ix),
                            ctx.describe(*owner)
                        ),
                        format!(
                            "The owner of the {kind} {}, {}, {}, is {how}: nobody active is accountable for it.",
                            ctx.describe(ix),
                            ctx.describe(*owner),
                            said_by(*from_catalog, *inferred),
                        ),
                    )
                }
                Owner::Unknown { reference, from_catalog } => {
                    let reference = reference.trim();
                    // An email names a person (lower-cased); anything else is a node id.
                    let owner_id = match reference.strip_prefix("person:") {
                        Some(email) => person_id(email),
                        None if reference.contains('@') && !reference.contains(':') => person_id(reference),
                        None => reference.to_string(),
                    };
                    (
                        owner_id,
                        format!("{} {} is owned by unknown `{reference}`", capitalise(kind), ctx.describe(ix)),
                        format!(
                            "The owner of the {kind} {}, `{reference}`, {}, is unknown to every identity source: \
                             deprovisioned, renamed or mistyped.",
                            ctx.describe(ix),
                            said_by(*from_catalog, false),
                        ),
                    )
                }
                Owner::Missing => continue,
            };
            let fix = match ctx.catalog_record(ix) {
                Some(record) => format!("update `owner` on record `{}` in agents.toml", record.id),
                None => format!(
                    "register it in agents.toml with an active `owner` (the catalog wins over `{}`)",
                    node.source
                ),
            };
            findings.push(Finding::new(
                self.id(),
                Severity::High,
                &node.id,
                &owner_id,
                title,
                detail,
                format!(
                    "Reassign ownership to an active person: {fix}. If nobody needs the {kind} any more, disable \
                     it and revoke its credentials."
                ),
                vec![vec![owner_id.clone(), node.id.clone()]],
                ctx.now,
            ));
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::Kit;

    #[test]
    fn active_owner_matched_case_insensitively_does_not_fire() {
        let mut kit = Kit::new();
        kit.human("alice", "alice@acme.example");
        kit.agent("bot", Some("Alice@ACME.example"));
        let sa = kit.service_account("ci", None);
        kit.catalog("ci", Some(" ALICE@acme.example "), None, &[&sa]);
        assert!(kit.run(&OwnerInactive).is_empty(), "{:#?}", kit.run(&OwnerInactive));
    }

    #[test]
    fn deprovisioned_owner_fires_high() {
        let mut kit = Kit::new();
        let bob = kit.human("bob", "bob@acme.example");
        kit.node_mut(&bob).active = Some(false);
        let bot = kit.agent("bot", Some("bob@acme.example"));
        let findings = kit.run(&OwnerInactive);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.severity, Severity::High);
        assert_eq!((f.subject.as_str(), f.object.as_str()), (bot.as_str(), "person:bob@acme.example"));
        assert_eq!(f.evidence, vec![vec!["person:bob@acme.example".to_string(), bot.clone()]]);
        assert!(f.detail.contains("reported by source `t`"), "{}", f.detail);
        assert!(f.detail.contains("`t:user:bob`"), "{}", f.detail);
        assert!(f.remediation.contains("agents.toml"), "{}", f.remediation);
    }

    #[test]
    fn owner_inactive_in_the_identity_source_fires_even_if_active_elsewhere() {
        let mut kit = Kit::new();
        let okta = kit.human_in("okta", "carol", "carol@acme.example");
        kit.human_in("github", "carol-gh", "Carol@acme.example");
        kit.node_mut(&okta).active = Some(false);
        kit.resolve.identity_sources.insert("okta".to_string());
        let bot = kit.agent("bot", None);
        kit.catalog("bot", Some("carol@acme.example"), None, &[&bot]);
        let findings = kit.run(&OwnerInactive);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].object, "person:carol@acme.example");
        assert!(findings[0].detail.contains("declared by catalog record `bot`"), "{}", findings[0].detail);
        assert!(findings[0].detail.contains("`okta:user:carol`"), "{}", findings[0].detail);

        // Without identity sources, the active GitHub account keeps her active.
        kit.resolve.identity_sources.clear();
        assert!(kit.run(&OwnerInactive).is_empty());
    }

    #[test]
    fn unknown_owner_email_fires_with_lower_cased_person_id() {
        let mut kit = Kit::new();
        kit.human("alice", "alice@acme.example");
        let bot = kit.agent("bot", Some("Ghost@Acme.Example"));
        let findings = kit.run(&OwnerInactive);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].object, "person:ghost@acme.example");
        assert_eq!(findings[0].evidence, vec![vec!["person:ghost@acme.example".to_string(), bot]]);
        assert!(findings[0].detail.contains("unknown to every identity source"), "{}", findings[0].detail);
    }

    #[test]
    fn owner_by_node_id_inactive_or_unknown() {
        let mut kit = Kit::new();
        let lead = kit.service_account("lead", Some("alice@acme.example"));
        kit.node_mut(&lead).active = Some(false);
        kit.human("alice", "alice@acme.example");
        let child = kit.agent("child", Some(&lead));
        let orphan = kit.agent("orphan", Some("t:user:nobody"));
        let scim = kit.agent("scim", Some("scim:user:Gone@acme.example"));
        let person = kit.agent("person", Some("person:Gone@ACME.example"));
        let findings = kit.run(&OwnerInactive);
        let got: Vec<(&str, &str)> = findings.iter().map(|f| (f.subject.as_str(), f.object.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (child.as_str(), lead.as_str()),
                (orphan.as_str(), "t:user:nobody"),
                (person.as_str(), "person:gone@acme.example"),
                (scim.as_str(), "scim:user:Gone@acme.example"),
            ]
        );
    }

    #[test]
    fn inactive_identities_and_missing_owners_do_not_fire() {
        let mut kit = Kit::new();
        let bot = kit.agent("retired", Some("ghost@acme.example"));
        kit.node_mut(&bot).active = Some(false);
        kit.agent("ownerless", None);
        assert!(kit.run(&OwnerInactive).is_empty());
    }
}
