//! OCSF 1.x Detection Findings (class 2004), one JSON object per line, for
//! SIEMs and data lakes. The fingerprint is `finding_info.uid`, so a finding
//! keeps one identity across its Create, Update and Close events.

use super::{Report, plain};
use accessgraph_graph::{Finding, FindingStatus, Severity};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.3.0";
/// Findings category.
pub const CATEGORY_UID: u64 = 2;
/// Detection Finding class.
pub const CLASS_UID: u64 = 2004;

/// OCSF `activity_id` of a finding event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Activity {
    Create = 1,
    Update = 2,
    Close = 3,
}

impl Activity {
    fn name(self) -> &'static str {
        match self {
            Activity::Create => "Create",
            Activity::Update => "Update",
            Activity::Close => "Close",
        }
    }
}

/// OCSF `severity_id`: 2 Low, 3 Medium, 4 High, 5 Critical.
fn severity(severity: Severity) -> (u64, &'static str) {
    match severity {
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// OCSF finding `status_id`: 1 New, 3 Suppressed, 4 Resolved.
fn status(status: FindingStatus) -> (u64, &'static str) {
    match status {
        FindingStatus::Open => (1, "New"),
        FindingStatus::Muted => (3, "Suppressed"),
        FindingStatus::Resolved => (4, "Resolved"),
    }
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Where a finding is in its lifecycle at `time`.
fn activity(finding: &Finding, time: DateTime<Utc>) -> Activity {
    match finding.status {
        FindingStatus::Resolved => Activity::Close,
        _ if finding.first_seen >= time => Activity::Create,
        _ => Activity::Update,
    }
}

fn resource(id: &str, role: &str, report: Option<&Report>) -> Value {
    let mut value = json!({ "uid": plain(id), "labels": [role] });
    if let Some(label) = report.and_then(|r| r.labels.get(id)) {
        value["name"] = json!(plain(&label.name));
        value["type"] = json!(label.kind);
    }
    value
}

/// One Detection Finding event.
fn event(finding: &Finding, time: DateTime<Utc>, report: Option<&Report>) -> Value {
    let activity = activity(finding, time);
    let (severity_id, severity_name) = severity(finding.severity);
    let (status_id, status_name) = status(finding.status);
    let evidences: Vec<Value> = finding
        .evidence
        .iter()
        .map(|path| json!({ "data": { "path": path.iter().map(|hop| plain(hop)).collect::<Vec<_>>() } }))
        .collect();
    json!({
        "activity_id": activity as u64,
        "activity_name": activity.name(),
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + activity as u64,
        "type_name": format!("Detection Finding: {}", activity.name()),
        "severity_id": severity_id,
        "severity": severity_name,
        "status_id": status_id,
        "status": status_name,
        "confidence_id": 3,
        "confidence": "High",
        "is_alert": activity != Activity::Close,
        "time": millis(time),
        "start_time": millis(finding.first_seen),
        "end_time": millis(finding.last_seen),
        "message": plain(&finding.title),
        "metadata": {
            "version": OCSF_VERSION,
            "product": {
                "name": "accessgraph",
                "vendor_name": "accessgraph",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "log_name": "findings",
        },
        "finding_info": {
            "uid": finding.fingerprint,
            "title": plain(&finding.title),
            "desc": plain(&finding.detail),
            "types": [finding.rule],
            "analytic": { "uid": finding.rule, "name": finding.rule, "type_id": 1, "type": "Rule" },
            "created_time": millis(finding.first_seen),
            "first_seen_time": millis(finding.first_seen),
            "last_seen_time": millis(finding.last_seen),
        },
        "resources": [resource(&finding.subject, "subject", report), resource(&finding.object, "object", report)],
        "evidences": evidences,
        "remediation": { "desc": plain(&finding.remediation) },
    })
}

fn lines(events: impl Iterator<Item = Value>) -> String {
    let mut out = String::new();
    for value in events {
        out.push_str(&value.to_string());
        out.push('\n');
    }
    out
}

/// Every finding of the report, at the report's instant.
pub(super) fn render(report: &Report) -> String {
    lines(report.findings.iter().map(|f| event(f, report.generated_at, Some(report))))
}

/// Stored findings (the `findings` command), each at its last sighting.
pub fn findings_ocsf(findings: &[Finding]) -> String {
    lines(findings.iter().map(|f| event(f, f.last_seen, None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_maps_to_activity_and_status() {
        let t1: DateTime<Utc> = "2026-11-27T00:00:00Z".parse().expect("time");
        let t2: DateTime<Utc> = "2026-11-28T00:00:00Z".parse().expect("time");
        let mut finding =
            Finding::new("secret.stale", Severity::High, "s:agent:a", "s:api_key:k", "t", "d", "r", vec![], t1);
        let created = event(&finding, t1, None);
        assert_eq!((created["activity_id"].as_u64(), created["type_uid"].as_u64()), (Some(1), Some(200401)));
        assert_eq!(created["severity_id"], 4);
        assert_eq!(created["status_id"], 1);
        finding.last_seen = t2;
        assert_eq!(event(&finding, t2, None)["type_uid"], 200402);
        finding.status = FindingStatus::Muted;
        assert_eq!(event(&finding, t2, None)["status_id"], 3);
        finding.status = FindingStatus::Resolved;
        let closed = event(&finding, t2, None);
        assert_eq!((closed["type_uid"].as_u64(), closed["status_id"].as_u64()), (Some(200403), Some(4)));
        assert_eq!(closed["finding_info"]["uid"], finding.fingerprint);
        assert_eq!(closed["time"], t2.timestamp_millis());
    }
}
