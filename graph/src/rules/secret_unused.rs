//! `secret.unused`: a live credential idle for longer than `secret_unused_days`
//! (a never-used one counts from its creation). Where the source cannot
//! report use (`LastUse::Unknown`) the rule does not fire: it never guesses.

use super::{Context, Rule, credential_subject, credential_tier, days, live_credentials};
use crate::findings::{Finding, Severity};
use crate::model::LastUse;
use crate::settings::Tier;
use chrono::Duration;

/// See module docs.
pub struct Unused;

impl Rule for Unused {
    fn id(&self) -> &'static str {
        "secret.unused"
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Finding> {
        let limit_days = i64::from(ctx.settings.thresholds.secret_unused_days);
        let limit = Duration::days(limit_days);
        let mut findings = Vec::new();
        for credential in live_credentials(ctx) {
            let node = ctx.node(credential);
            let (title, observed) = match node.last_used {
                LastUse::Unknown => continue,
                LastUse::At(at) => {
                    // "Longer than" the threshold: exactly at it is fine.
                    if ctx.now - at <= limit {
                        continue;
                    }
                    let idle = ctx.days_since(at);
                    (
                        format!("Credential {} unused for {}", ctx.describe(credential), days(idle)),
                        format!(
                            "{} was last used {} ago, on {}",
                            ctx.describe(credential),
                            days(idle),
                            at.format("%Y-%m-%d")
                        ),
                    )
                }
                LastUse::Never => {
                    let Some(created) = node.created_at else {
                        continue;
                    };
                    if ctx.now - created <= limit {
                        continue;
                    }
                    let age = ctx.days_since(created);
                    (
                        format!("Credential {} never used in {}", ctx.describe(credential), days(age)),
                        format!(
                            "{} was never used since its creation on {} ({} ago)",
                            ctx.describe(credential),
                            created.format("%Y-%m-%d"),
                            days(age)
                        ),
                    )
                }
            };
            let tier = credential_tier(ctx, credential);
            let severity = if tier == Tier::High { Severity::High } else { Severity::Medium };
            let subject = credential_subject(ctx, credential);
            let evidence = if subject == credential {
                vec![vec![node.id.clone()]]
            } else {
                vec![ctx.evidence(&[subject, credential])]
            };
            let holder = if subject == credential {
                String::new()
            } else {
                format!(" It is held by {}.", ctx.describe(subject))
            };
            findings.push(Finding::new(
                self.id(),
                severity,
                &ctx.node(subject).id,
                &node.id,
                title,
                format!("{observed}; the limit is {} idle.{holder}", days(limit_days)),
                "Revoke the credential: an idle key is exposure without benefit. If something still needs it \
                 occasionally, confirm with its owner and replace it with short-lived credentials issued on demand.",
                evidence,
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
    fn last_use_past_the_threshold_fires_exactly_at_does_not() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let created = kit.now - Duration::days(400);
        let idle = kit.credential("idle", &bot, created, None);
        let edge = kit.credential("edge", &bot, created, None);
        let busy = kit.credential("busy", &bot, created, None);
        let now = kit.now;
        kit.node_mut(&idle).last_used = LastUse::At(now - Duration::days(91));
        kit.node_mut(&edge).last_used = LastUse::At(now - Duration::days(90));
        kit.node_mut(&busy).last_used = LastUse::At(now - Duration::hours(1));
        let findings = kit.run(&Unused);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!((f.subject.as_str(), f.object.as_str()), (bot.as_str(), idle.as_str()));
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.title.contains("unused for 91 days"), "{}", f.title);
        assert!(f.detail.contains("last used 91 days ago, on 2026-08-28"), "{}", f.detail);
        assert!(!f.detail.contains("never"), "{}", f.detail);
        assert_eq!(f.evidence, vec![vec![bot.clone(), idle.clone()]]);
    }

    #[test]
    fn never_used_counts_from_creation() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let now = kit.now;
        let old = kit.credential("old", &bot, now - Duration::days(120), None);
        let young = kit.credential("young", &bot, now - Duration::days(90), None);
        let undated = kit.credential("undated", &bot, now, None);
        for id in [&old, &young, &undated] {
            kit.node_mut(id).last_used = LastUse::Never;
        }
        kit.node_mut(&undated).created_at = None;
        let findings = kit.run(&Unused);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].object, old);
        assert!(findings[0].detail.contains("never used since its creation on 2026-07-30 (120 days ago)"));
    }

    #[test]
    fn unknown_last_use_never_fires() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        kit.credential("ancient", &bot, kit.now - Duration::days(4000), None);
        let findings = kit.run(&Unused);
        assert!(findings.is_empty(), "{findings:#?}");
        assert!(findings.iter().all(|f| !f.detail.contains("never used") && !f.title.contains("never used")));
    }

    #[test]
    fn high_tier_is_high_and_threshold_is_configurable() {
        let mut kit = Kit::new();
        kit.settings.thresholds.secret_unused_days = 10;
        let bot = kit.agent("bot", None);
        kit.catalog("bot", None, Some(Tier::High), &[&bot]);
        let key = kit.credential("k", &bot, kit.now - Duration::days(30), None);
        let now = kit.now;
        kit.node_mut(&key).last_used = LastUse::At(now - Duration::days(11));
        let findings = kit.run(&Unused);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::High);
        assert!(findings[0].detail.contains("the limit is 10 days idle"), "{}", findings[0].detail);
    }

    #[test]
    fn expired_and_revoked_credentials_do_not_fire() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let now = kit.now;
        let expired = kit.credential("expired", &bot, now - Duration::days(400), Some(now));
        let revoked = kit.credential("revoked", &bot, now - Duration::days(400), None);
        kit.node_mut(&expired).last_used = LastUse::Never;
        kit.node_mut(&revoked).last_used = LastUse::Never;
        kit.node_mut(&revoked).active = Some(false);
        assert!(kit.run(&Unused).is_empty());
    }
}
