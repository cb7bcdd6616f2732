//! `secret.standing`: a credential that never expires, or whose lifetime
//! exceeds its holder's risk tier limit (`max_credential_days`).

use super::{Context, Rule, credential_subject, credential_tier, days, live_credentials};
use crate::findings::{Finding, Severity};
use crate::settings::Tier;
use chrono::Duration;

/// See module docs.
pub struct Standing;

impl Rule for Standing {
    fn id(&self) -> &'static str {
        "secret.standing"
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for credential in live_credentials(ctx) {
            let node = ctx.node(credential);
            let tier = credential_tier(ctx, credential);
            let max_days = i64::from(ctx.settings.tiers.policy(tier).max_credential_days);
            let created = node.created_at.map(|at| format!(" on {}", at.format("%Y-%m-%d"))).unwrap_or_default();
            let (title, observed) = match node.expires_at {
                None => (
                    format!("Credential {} never expires", ctx.describe(credential)),
                    format!(
                        "{} was created{} and never expires",
                        ctx.describe(credential),
                        if created.is_empty() { " (date unknown)" } else { &created },
                    ),
                ),
                Some(expires_at) => {
                    let from = node.created_at.unwrap_or(ctx.now);
                    let lifetime = expires_at - from;
                    // "Longer than" the limit: exactly at it is fine.
                    if lifetime <= Duration::days(max_days) {
                        continue;
                    }
                    let lifetime_days = ceil_days(lifetime);
                    let span = if node.created_at.is_some() {
                        format!("a lifetime of {} from its creation{created}", days(lifetime_days))
                    } else {
                        format!("{} from now (its creation date is unknown)", days(lifetime_days))
                    };
                    (
                        format!(
                            "Credential {} lives {}, over the {}-day limit",
                            ctx.describe(credential),
                            days(lifetime_days),
                            max_days
                        ),
                        format!("{} expires on {}, {span}", ctx.describe(credential), expires_at.format("%Y-%m-%d")),
                    )
                }
            };
            let subject = credential_subject(ctx, credential);
            let holder = if subject == credential {
                "It is held by no identity, so the default tier applies".to_string()
            } else {
                format!("Its holder {} is in risk tier `{}`", ctx.describe(subject), tier.as_str())
            };
            let severity = match tier {
                Tier::Low => Severity::Medium,
                Tier::Medium => Severity::High,
                Tier::High => Severity::Critical,
            };
            let remediation = if tier == Tier::High {
                format!(
                    "Tier `high` allows ephemeral, time-boxed credentials only (at most {}): issue credentials \
                     per task (workload identity, OIDC federation, STS) and revoke this one.",
                    days(max_days)
                )
            } else {
                format!(
                    "Replace it with short-lived credentials issued on demand (workload identity, OIDC federation, \
                     STS), or reissue it with an expiry of at most {}; then revoke this one.",
                    days(max_days)
                )
            };
            let evidence = if subject == credential {
                vec![vec![node.id.clone()]]
            } else {
                vec![ctx.evidence(&[subject, credential])]
            };
            findings.push(Finding::new(
                self.id(),
                severity,
                &ctx.node(subject).id,
                &node.id,
                title,
                format!("{observed}. {holder}, which allows credentials to live at most {}.", days(max_days)),
                remediation,
                evidence,
                ctx.now,
            ));
        }
        findings
    }
}

/// Whole days, rounded up: a lifetime of 30 days and an hour is 31 days.
fn ceil_days(span: Duration) -> i64 {
    let secs = span.num_seconds();
    secs / 86_400 + i64::from(secs % 86_400 > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::Kit;

    #[test]
    fn never_expiring_credential_fires_with_tier_severity() {
        let mut kit = Kit::new();
        let low = kit.agent("low", None);
        let medium = kit.agent("medium", None);
        let high = kit.agent("high", None);
        kit.catalog("medium", None, Some(Tier::Medium), &[&medium]);
        kit.catalog("high", None, Some(Tier::High), &[&high]);
        let created = kit.now - Duration::days(3);
        kit.credential("a", &low, created, None);
        kit.credential("b", &medium, created, None);
        kit.credential("c", &high, created, None);
        let findings = kit.run(&Standing);
        let got: Vec<(&str, Severity)> = findings.iter().map(|f| (f.object.as_str(), f.severity)).collect();
        assert_eq!(
            got,
            vec![
                ("t:api_key:c", Severity::Critical),
                ("t:api_key:a", Severity::Medium),
                ("t:api_key:b", Severity::High),
            ]
        );
        let f = &findings[1];
        assert_eq!(f.subject, low);
        assert!(f.title.contains("never expires"), "{}", f.title);
        assert!(f.detail.contains("created on 2026-11-24 and never expires"), "{}", f.detail);
        assert!(f.detail.contains("tier `low`") && f.detail.contains("at most 90 days"), "{}", f.detail);
        assert_eq!(f.evidence, vec![vec![low.clone(), "t:api_key:a".to_string()]]);
        assert!(findings[0].remediation.contains("ephemeral"), "{}", findings[0].remediation);
    }

    #[test]
    fn lifetime_over_the_tier_limit_fires_exactly_at_does_not() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        kit.catalog("bot", None, Some(Tier::Medium), &[&bot]);
        let created = kit.now - Duration::days(10);
        kit.credential("at", &bot, created, Some(created + Duration::days(30)));
        kit.credential("over", &bot, created, Some(created + Duration::days(30) + Duration::seconds(1)));
        let findings = kit.run(&Standing);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.object, "t:api_key:over");
        assert_eq!(f.severity, Severity::High);
        assert!(f.title.contains("lives 31 days, over the 30-day limit"), "{}", f.title);
        assert!(f.detail.contains("a lifetime of 31 days from its creation on 2026-11-17"), "{}", f.detail);
    }

    #[test]
    fn unknown_creation_measures_from_now() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let now = kit.now;
        let short = kit.credential("short", &bot, now, Some(now + Duration::days(90)));
        let long = kit.credential("long", &bot, now, Some(now + Duration::days(91)));
        kit.node_mut(&short).created_at = None;
        kit.node_mut(&long).created_at = None;
        let findings = kit.run(&Standing);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].object, long);
        assert!(
            findings[0].detail.contains("91 days from now (its creation date is unknown)"),
            "{}",
            findings[0].detail
        );
    }

    #[test]
    fn uncatalogued_holder_uses_the_default_tier() {
        let mut kit = Kit::new();
        kit.settings.thresholds.default_tier = Tier::High;
        let bot = kit.agent("bot", None);
        let now = kit.now;
        kit.credential("k", &bot, now, Some(now + Duration::days(2)));
        let findings = kit.run(&Standing);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Critical);
    }

    #[test]
    fn expired_and_revoked_credentials_do_not_fire() {
        let mut kit = Kit::new();
        let bot = kit.agent("bot", None);
        let created = kit.now - Duration::days(400);
        kit.credential("expired", &bot, created, Some(kit.now - Duration::days(1)));
        let revoked = kit.credential("revoked", &bot, created, None);
        kit.node_mut(&revoked).active = Some(false);
        assert!(kit.run(&Standing).is_empty());
    }
}
