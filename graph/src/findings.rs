//! Findings: what a rule reports, with a fingerprint that survives runs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Hygiene.
    Low,
    /// Should be fixed this cycle.
    Medium,
    /// Real exposure.
    High,
    /// Exposure of a high-risk agent or a broken control.
    Critical,
}

impl Severity {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses the contract's spelling.
    pub fn parse(text: &str) -> Option<Severity> {
        match text.to_ascii_lowercase().as_str() {
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// Lifecycle state of a stored finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingStatus {
    /// Seen in the latest analysis.
    Open,
    /// Not seen any more.
    Resolved,
    /// Suppressed until its mute expires.
    Muted,
}

impl FindingStatus {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Open => "open",
            FindingStatus::Resolved => "resolved",
            FindingStatus::Muted => "muted",
        }
    }

    /// Parses the contract's spelling.
    pub fn parse(text: &str) -> Option<FindingStatus> {
        match text {
            "open" => Some(FindingStatus::Open),
            "resolved" => Some(FindingStatus::Resolved),
            "muted" => Some(FindingStatus::Muted),
            _ => None,
        }
    }
}

/// One finding (CONTRACT §6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable hex hash of rule + subject + object.
    pub fingerprint: String,
    /// Rule id (`secret.standing`).
    pub rule: String,
    /// Severity.
    pub severity: Severity,
    /// Node id of who or what the finding is about.
    pub subject: String,
    /// Node id (or rule-specific key) of what it concerns.
    pub object: String,
    /// One line.
    pub title: String,
    /// What was observed, with numbers.
    pub detail: String,
    /// What to do about it.
    pub remediation: String,
    /// Paths through the graph (node ids) that prove it.
    pub evidence: Vec<Vec<String>>,
    /// First analysis that saw it.
    pub first_seen: DateTime<Utc>,
    /// Latest analysis that saw it.
    pub last_seen: DateTime<Utc>,
    /// Lifecycle state.
    pub status: FindingStatus,
}

/// The fingerprint of a finding: identity fields only, so it survives runs,
/// restarts and reordering (STYLE habit 7).
pub fn fingerprint(rule: &str, subject: &str, object: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [rule, subject, object] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(&hasher.finalize()[..16])
}

impl Finding {
    /// A new open finding seen at `now`; the fingerprint is derived.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rule: &str,
        severity: Severity,
        subject: impl Into<String>,
        object: impl Into<String>,
        title: impl Into<String>,
        detail: impl Into<String>,
        remediation: impl Into<String>,
        evidence: Vec<Vec<String>>,
        now: DateTime<Utc>,
    ) -> Finding {
        let subject = subject.into();
        let object = object.into();
        Finding {
            fingerprint: fingerprint(rule, &subject, &object),
            rule: rule.to_string(),
            severity,
            subject,
            object,
            title: title.into(),
            detail: detail.into(),
            remediation: remediation.into(),
            evidence,
            first_seen: now,
            last_seen: now,
            status: FindingStatus::Open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_depends_on_identity_fields_only() {
        let a = fingerprint("secret.stale", "s:agent:a", "s:api_key:k");
        assert_eq!(a, fingerprint("secret.stale", "s:agent:a", "s:api_key:k"));
        assert_ne!(a, fingerprint("secret.unused", "s:agent:a", "s:api_key:k"));
        // The separator keeps ("ab","c") apart from ("a","bc").
        assert_ne!(fingerprint("r", "ab", "c"), fingerprint("r", "a", "bc"));
        assert_eq!(a.len(), 32);
    }
}
