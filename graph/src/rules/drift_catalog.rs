//! `drift.catalog`: an agent reaches a system outside its catalog record's
//! `allowed_systems`, or its record has expired while it still has access.
//!
//! Each node id a record binds is checked on its own: a principal by its
//! effective access; anything else it acts as (an account that resolved to a
//! person, a role) by the access reachable from that node. Deactivated
//! identities are skipped: they cannot use what they still hold.

use super::{Context, Rule, code_list, days, distinct_paths};
use crate::access::AccessEntry;
use crate::findings::{Finding, Severity};
use crate::settings::CatalogAgent;
use petgraph::graph::NodeIndex;
use std::collections::{BTreeMap, BTreeSet};

/// See module docs.
pub struct DriftCatalog;

/// Evidence paths kept on an expiry finding (the detail gives the full count).
const MAX_EXPIRY_EVIDENCE: usize = 25;

impl Rule for DriftCatalog {
    fn id(&self) -> &'static str {
        "drift.catalog"
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for record in &ctx.settings.catalog.agents {
            for identity_id in &record.identities {
                let Some(identity) = ctx.graph.find(identity_id) else {
                    continue;
                };
                if !ctx.graph.is_active(identity) {
                    continue;
                }
                let entries = access_of(ctx, identity);
                if let Some(allowed) = &record.allowed_systems {
                    findings.extend(outside_allowed(self.id(), ctx, record, allowed, identity, &entries));
                }
                if let Some(finding) = expired(self.id(), ctx, record, identity, &entries) {
                    findings.push(finding);
                }
            }
        }
        findings
    }
}

/// What a bound node reaches now.
fn access_of(ctx: &Context<'_>, identity: NodeIndex) -> Vec<AccessEntry> {
    let node = ctx.node(identity);
    if node.kind.is_identity() && ctx.graph.person_of(identity).is_none() {
        ctx.access.of_principal(identity).cloned().collect()
    } else {
        ctx.graph.access_from(identity, ctx.now)
    }
}

fn outside_allowed(
    rule: &str,
    ctx: &Context<'_>,
    record: &CatalogAgent,
    allowed: &[String],
    identity: NodeIndex,
    entries: &[AccessEntry],
) -> Vec<Finding> {
    let mut by_resource: BTreeMap<&str, Vec<&AccessEntry>> = BTreeMap::new();
    for entry in entries {
        let resource = ctx.node(entry.resource);
        if !allowed.contains(&resource.source) {
            by_resource.entry(resource.id.as_str()).or_default().push(entry);
        }
    }
    let allowed_text =
        if allowed.is_empty() { "allows no system".to_string() } else { format!("allows only {}", code_list(allowed)) };
    by_resource
        .into_iter()
        .map(|(resource_id, entries)| {
            let resource = entries[0].resource;
            let system = &ctx.node(resource).source;
            let actions: BTreeSet<&str> = entries.iter().map(|e| e.action.as_str()).collect();
            Finding::new(
                rule,
                Severity::High,
                &ctx.node(identity).id,
                resource_id,
                format!(
                    "{} reaches {} in `{system}`, outside its allowed systems",
                    ctx.describe(identity),
                    ctx.describe(resource),
                ),
                format!(
                    "Catalog record `{}` {allowed_text}, but {} has {} on {} in system `{system}`.",
                    record.id,
                    ctx.describe(identity),
                    code_list(&actions),
                    ctx.describe(resource),
                ),
                format!(
                    "Remove the grant or membership on the evidence path that gives `{}` access to `{resource_id}`. \
                     If the agent needs `{system}`, review that with its owner and add it to `allowed_systems` \
                     of record `{}` in agents.toml.",
                    ctx.node(identity).id,
                    record.id,
                ),
                distinct_paths(ctx, entries.iter().copied()),
                ctx.now,
            )
        })
        .collect()
}

fn expired(
    rule: &str,
    ctx: &Context<'_>,
    record: &CatalogAgent,
    identity: NodeIndex,
    entries: &[AccessEntry],
) -> Option<Finding> {
    let expires = record.expires?;
    let today = ctx.now.date_naive();
    // The record is good through its `expires` day.
    if expires >= today || entries.is_empty() {
        return None;
    }
    let resources: BTreeSet<NodeIndex> = entries.iter().map(|e| e.resource).collect();
    let mut evidence = distinct_paths(ctx, entries);
    let total = evidence.len();
    evidence.truncate(MAX_EXPIRY_EVIDENCE);
    let shown = if total > evidence.len() {
        format!(" The evidence shows {} of its {total} paths.", evidence.len())
    } else {
        String::new()
    };
    Some(Finding::new(
        rule,
        Severity::High,
        &ctx.node(identity).id,
        format!("catalog:{}", record.id),
        format!(
            "{} still has access after its catalog record `{}` expired on {expires}",
            ctx.describe(identity),
            record.id,
        ),
        format!(
            "Catalog record `{}` expired on {expires} ({} ago), but {} still holds {} on {} {}.{shown}",
            record.id,
            days((today - expires).num_days()),
            ctx.describe(identity),
            if entries.len() == 1 { "1 access".to_string() } else { format!("{} accesses", entries.len()) },
            resources.len(),
            if resources.len() == 1 { "resource" } else { "resources" },
        ),
        format!(
            "Decommission the agent: disable `{}`, revoke its credentials and remove its grants and memberships. \
             If it is still needed, have its owner review it and extend `expires` of record `{}` in agents.toml.",
            ctx.node(identity).id,
            record.id,
        ),
        evidence,
        ctx.now,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::Kit;
    use chrono::NaiveDate;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    #[test]
    fn reaching_a_system_outside_allowed_systems_fires_per_resource() {
        let mut kit = Kit::new();
        let bot = kit.agent("po-bot", Some("alice@acme.example"));
        let ours = kit.resource("po");
        let theirs = kit.resource_in("github", "repo");
        let ops = kit.group("ops");
        kit.grant(&bot, &ours, &["create"]);
        kit.member(&bot, &ops);
        kit.grant(&ops, &theirs, &["read", "write"]);
        kit.catalog("po-bot", None, None, &[&bot]).allowed_systems = Some(vec!["t".to_string()]);
        let findings = kit.run(&DriftCatalog);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!((f.subject.as_str(), f.object.as_str()), (bot.as_str(), theirs.as_str()));
        assert_eq!(f.severity, Severity::High);
        assert!(f.title.contains("in `github`"), "{}", f.title);
        assert!(f.detail.contains("allows only `t`"), "{}", f.detail);
        assert!(f.detail.contains("`read` and `write`"), "{}", f.detail);
        assert!(f.remediation.contains("allowed_systems"), "{}", f.remediation);
        assert_eq!(f.evidence, vec![vec![bot.clone(), ops.clone(), theirs.clone()]]);
    }

    #[test]
    fn unrestricted_or_allowed_records_do_not_fire() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let other = kit.agent("other", None);
        let repo = kit.resource_in("github", "repo");
        kit.grant(&bot, &repo, &["read"]);
        kit.grant(&other, &repo, &["read"]);
        kit.catalog("bot", None, None, &[&bot]);
        kit.catalog("other", None, None, &[&other]).allowed_systems = Some(vec!["github".to_string()]);
        assert!(kit.run(&DriftCatalog).is_empty());
    }

    #[test]
    fn empty_allowed_systems_allows_nothing() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let db = kit.resource("db");
        kit.grant(&bot, &db, &["read"]);
        kit.catalog("bot", None, None, &[&bot]).allowed_systems = Some(Vec::new());
        let findings = kit.run(&DriftCatalog);
        assert_eq!(findings.len(), 1);
        assert!(findings[0].detail.contains("allows no system"), "{}", findings[0].detail);
    }

    #[test]
    fn access_through_an_assumed_role_counts() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let role = kit.role("deployer");
        let repo = kit.resource_in("github", "repo");
        kit.can_assume(&bot, &role);
        kit.grant(&role, &repo, &["write"]);
        kit.catalog("bot", None, None, &[&bot]).allowed_systems = Some(vec!["t".to_string()]);
        let findings = kit.run(&DriftCatalog);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].evidence, vec![vec![bot.clone(), role.clone(), repo.clone()]]);
    }

    #[test]
    fn a_bound_role_is_checked_by_what_it_reaches() {
        let mut kit = Kit::new();
        let role = kit.role("deployer");
        let repo = kit.resource_in("github", "repo");
        kit.grant(&role, &repo, &["write"]);
        kit.catalog("deployer", None, None, &[&role]).allowed_systems = Some(vec!["t".to_string()]);
        let findings = kit.run(&DriftCatalog);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].subject, role);
        assert_eq!(findings[0].evidence, vec![vec![role.clone(), repo.clone()]]);
    }

    #[test]
    fn a_bound_human_account_is_checked_through_its_own_access() {
        let mut kit = Kit::new();
        let account = kit.human("deploy-bot", "deploy-bot@acme.example");
        let repo = kit.resource_in("github", "repo");
        kit.grant(&account, &repo, &["write"]);
        kit.catalog("deploy-bot", None, None, &[&account]).allowed_systems = Some(vec!["t".to_string()]);
        let findings = kit.run(&DriftCatalog);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].subject, account);
        assert_eq!(findings[0].object, repo);
    }

    #[test]
    fn expired_record_with_access_fires_the_day_after_expiry() {
        let mut kit = Kit::new(); // now = 2026-11-27
        let bot = kit.agent("bot", None);
        let db = kit.resource("db");
        kit.grant(&bot, &db, &["read"]);
        kit.catalog("bot", None, None, &[&bot]).expires = Some(date(2026, 11, 26));
        let findings = kit.run(&DriftCatalog);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!((f.subject.as_str(), f.object.as_str()), (bot.as_str(), "catalog:bot"));
        assert_eq!(f.severity, Severity::High);
        assert!(f.detail.contains("expired on 2026-11-26 (1 day ago)"), "{}", f.detail);
        assert!(f.detail.contains("1 access on 1 resource"), "{}", f.detail);
        assert_eq!(f.evidence, vec![vec![bot.clone(), db.clone()]]);

        kit.settings.catalog.agents[0].expires = Some(date(2026, 11, 27));
        assert!(kit.run(&DriftCatalog).is_empty(), "good through its expiry day");
    }

    #[test]
    fn expired_record_without_access_or_deactivated_does_not_fire() {
        let mut kit = Kit::new();
        let idle = kit.agent("idle", None);
        let disabled = kit.agent("disabled", None);
        let db = kit.resource("db");
        kit.grant(&disabled, &db, &["read"]);
        kit.node_mut(&disabled).active = Some(false);
        kit.catalog("idle", None, None, &[&idle]).expires = Some(date(2020, 1, 1));
        kit.catalog("disabled", None, None, &[&disabled]).expires = Some(date(2020, 1, 1));
        assert!(kit.run(&DriftCatalog).is_empty());
    }

    #[test]
    fn expired_grants_are_not_access() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let db = kit.resource("db");
        let now = kit.now;
        kit.grant(&bot, &db, &["read"]).expires_at = Some(now);
        kit.catalog("bot", None, None, &[&bot]).expires = Some(date(2020, 1, 1));
        assert!(kit.run(&DriftCatalog).is_empty());
    }
}
