//! `secret.stale`: a credential older than the rotation age.

use super::{Context, Rule, credential_subject, live_credentials};
use crate::findings::{Finding, Severity};

/// See module docs.
pub struct Stale;

impl Rule for Stale {
    fn id(&self) -> &'static str {
        "secret.stale"
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Finding> {
        let max_age = i64::from(ctx.settings.thresholds.secret_max_age_days);
        let mut findings = Vec::new();
        for credential in live_credentials(ctx) {
            let node = ctx.node(credential);
            let Some(since) = node.rotated_at.or(node.created_at) else {
                continue;
            };
            let age = ctx.days_since(since);
            // "Past this age": exactly at the limit is still fine.
            if (ctx.now - since) <= chrono::Duration::days(max_age) {
                continue;
            }
            let severity = if age > 4 * max_age { Severity::High } else { Severity::Medium };
            let subject = credential_subject(ctx, credential);
            let evidence = if subject == credential {
                vec![vec![node.id.clone()]]
            } else {
                vec![ctx.evidence(&[subject, credential])]
            };
            let what = if node.rotated_at.is_some() { "last rotated" } else { "created" };
            findings.push(Finding::new(
                self.id(),
                severity,
                &ctx.node(subject).id,
                &node.id,
                format!("Credential {} not rotated for {age} days", ctx.describe(credential)),
                format!(
                    "{} was {what} {} ({age} days ago); the rotation limit is {max_age} days.",
                    ctx.describe(credential),
                    since.format("%Y-%m-%d"),
                ),
                "Rotate the credential now, and replace it with a short-lived, automatically rotated one \
                 (workload identity, OIDC federation, or a secrets manager with rotation).",
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
    use chrono::Duration;

    #[test]
    fn fires_past_the_rotation_age_only() {
        let mut kit = Kit::new();
        let agent = kit.agent("bot", Some("alice@acme.example"));
        kit.credential("old", &agent, kit.now - Duration::days(91), None);
        kit.credential("edge", &agent, kit.now - Duration::days(90), None);
        kit.credential("fresh", &agent, kit.now - Duration::days(3), None);
        let findings = kit.run(&Stale);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].object, "t:api_key:old");
        assert_eq!(findings[0].subject, "t:agent:bot");
        assert_eq!(findings[0].evidence, vec![vec!["t:agent:bot".to_string(), "t:api_key:old".to_string()]]);
    }

    #[test]
    fn expired_and_revoked_credentials_do_not_fire() {
        let mut kit = Kit::new();
        let agent = kit.agent("bot", Some("alice@acme.example"));
        kit.credential("expired", &agent, kit.now - Duration::days(400), Some(kit.now - Duration::days(1)));
        let revoked = kit.credential("revoked", &agent, kit.now - Duration::days(400), None);
        kit.node_mut(&revoked).active = Some(false);
        assert!(kit.run(&Stale).is_empty());
    }

    #[test]
    fn rotation_date_wins_over_creation() {
        let mut kit = Kit::new();
        let agent = kit.agent("bot", Some("alice@acme.example"));
        let key = kit.credential("k", &agent, kit.now - Duration::days(400), None);
        kit.node_mut(&key).rotated_at = Some(kit.now - Duration::days(10));
        assert!(kit.run(&Stale).is_empty());
    }
}
