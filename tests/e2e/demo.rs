//! The demo company, scanned as a new user would.

use super::common::*;
use std::collections::{BTreeMap, BTreeSet};

const T1: &str = "2026-11-27T12:00:00Z";
const T2: &str = "2026-11-27T13:00:00Z";

const RULES: [&str; 10] = [
    "drift.policy",
    "drift.baseline",
    "drift.catalog",
    "ownerless.no_owner",
    "ownerless.owner_inactive",
    "ownerless.unregistered",
    "secret.standing",
    "secret.unused",
    "secret.stale",
    "sod.violation",
];

fn scan_json(scratch: &Scratch, now: &str) -> serde_json::Value {
    let output = run(&["scan", "--config", &scratch.config(), "--format", "json", "--now", now]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    json(&output)
}

fn by_fingerprint(report: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    report["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| (f["fingerprint"].as_str().expect("fingerprint").to_string(), f.clone()))
        .collect()
}

#[test]
fn demo_scan_matches_the_contract_and_every_rule_fires() {
    let scratch = demo_scratch();
    let report = scan_json(&scratch, T1);
    let findings = report["findings"].as_array().expect("findings");
    assert!(!findings.is_empty());
    for finding in findings {
        for key in [
            "fingerprint",
            "rule",
            "severity",
            "subject",
            "object",
            "title",
            "detail",
            "remediation",
            "first_seen",
            "last_seen",
            "status",
        ] {
            assert!(finding[key].is_string(), "finding lacks string `{key}`: {finding}");
        }
        assert!(finding["evidence"].is_array(), "evidence is a list of paths: {finding}");
        for path in finding["evidence"].as_array().expect("evidence") {
            assert!(path.as_array().expect("path").iter().all(|hop| hop.is_string()));
        }
        assert!(["low", "medium", "high", "critical"].contains(&finding["severity"].as_str().expect("severity")));
        assert_eq!(finding["status"], "open");
        assert_eq!(finding["fingerprint"].as_str().expect("fp").len(), 32);
    }
    let fired: BTreeSet<&str> = findings.iter().filter_map(|f| f["rule"].as_str()).collect();
    for rule in RULES {
        assert!(fired.contains(rule), "rule {rule} does not fire on the demo; fired: {fired:?}");
    }
    assert!(report["summary"]["posture"]["people"].as_u64().expect("people") >= 10);
    // Several identities are clean: people with access and no finding about them.
    let subjects: BTreeSet<&str> = findings.iter().filter_map(|f| f["subject"].as_str()).collect();
    let export = run(&["export", "--config", &scratch.config(), "--format", "json"]);
    let graph = json(&export);
    let clean_people = graph["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["kind"] == "person" && !subjects.contains(n["id"].as_str().unwrap_or_default()))
        .count();
    assert!(clean_people >= 3, "expected several clean people, found {clean_people}");
}

#[test]
fn second_scan_keeps_fingerprints_and_marks_resolved_findings() {
    let scratch = demo_scratch();
    let first = by_fingerprint(&scan_json(&scratch, T1));
    let second_report = scan_json(&scratch, T2);
    let second = by_fingerprint(&second_report);
    // Nothing changed in the sources, so every finding but the first-snapshot
    // baseline ones is the same finding, with the same fingerprint.
    for (fingerprint, finding) in &first {
        let again = second.get(fingerprint).unwrap_or_else(|| panic!("{fingerprint} vanished"));
        if finding["rule"] == "drift.baseline" {
            assert_eq!(again["status"], "resolved", "baseline drift resolves once a snapshot exists");
        } else {
            assert_eq!(again["status"], "open");
            assert_eq!(again["first_seen"], finding["first_seen"], "first_seen survives");
            assert_eq!(again["last_seen"], "2026-11-27T13:00:00Z");
        }
    }
    assert_eq!(second.len(), first.len(), "no new finding appears from an unchanged company");
    assert!(second_report["summary"]["previous_snapshot"].is_string());
    // Stored findings agree with the report.
    let listed = run(&["findings", "--config", &scratch.config(), "--status", "resolved", "--format", "json"]);
    let resolved = json(&listed)["findings"].as_array().expect("findings").len();
    assert_eq!(resolved, first.values().filter(|f| f["rule"] == "drift.baseline").count());
}

#[test]
fn each_state_change_is_filed_once_to_the_jsonl_sink() {
    let scratch = demo_scratch();
    scan_json(&scratch, T1);
    let events = scratch.events();
    assert!(!events.is_empty());
    let mut opened = BTreeSet::new();
    for event in &events {
        assert_eq!(event["event"], "opened");
        assert_eq!(event["fingerprint"], event["finding"]["fingerprint"]);
        for key in ["rule", "severity", "subject", "object", "title", "at"] {
            assert!(event[key].is_string(), "event lacks {key}");
        }
        assert!(opened.insert(event["fingerprint"].as_str().expect("fp").to_string()), "opened twice");
    }
    scan_json(&scratch, T2);
    let events = scratch.events();
    let later: Vec<&serde_json::Value> = events.iter().skip(opened.len()).collect();
    assert!(!later.is_empty(), "baseline findings resolve on the second scan");
    assert!(later.iter().all(|e| e["event"] == "resolved" && e["rule"] == "drift.baseline"), "{later:#?}");
    // A third scan with nothing new files nothing.
    let before = scratch.events().len();
    scan_json(&scratch, "2026-11-27T14:00:00Z");
    assert_eq!(scratch.events().len(), before);
}

#[test]
fn no_file_queues_and_a_muted_finding_files_nothing() {
    let scratch = demo_scratch();
    let output = run(&["scan", "--config", &scratch.config(), "--format", "json", "--now", T1, "--no-file"]);
    assert_eq!(code(&output), 0);
    assert!(scratch.events().is_empty(), "--no-file delivers nothing");
    let report = json(&output);
    let target = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "secret.stale")
        .expect("a stale secret in the demo")
        .clone();
    let fingerprint = target["fingerprint"].as_str().expect("fp");
    let mute = run(&[
        "findings",
        "--config",
        &scratch.config(),
        "mute",
        fingerprint,
        "--reason",
        "rotation scheduled",
        "--until",
        "2027-01-01T00:00:00Z",
    ]);
    assert_eq!(code(&mute), 0, "{}", stderr(&mute));
    let second = scan_json(&scratch, T2);
    let muted = by_fingerprint(&second)[fingerprint].clone();
    assert_eq!(muted["status"], "muted");
    let events = scratch.events();
    assert!(!events.is_empty(), "queued events are delivered by the next filing scan");
    assert!(events.iter().all(|e| e["fingerprint"] != fingerprint), "a muted finding files nothing");
    let unknown = run(&[
        "findings",
        "--config",
        &scratch.config(),
        "mute",
        "ffff",
        "--reason",
        "x",
        "--until",
        "2027-01-01T00:00:00Z",
    ]);
    assert_eq!(code(&unknown), 2);
}

#[test]
fn fail_on_sets_exit_code_one() {
    let scratch = demo_scratch();
    let output = run(&["scan", "--config", &scratch.config(), "--now", T1, "--fail-on", "critical", "--no-file"]);
    assert_eq!(code(&output), 1, "the demo has critical findings");
    assert!(stdout(&output).starts_with("# accessgraph drift report"));
}

#[test]
fn export_json_has_the_contract_shape() {
    let scratch = demo_scratch();
    scan_json(&scratch, T1);
    let graph = json(&run(&["export", "--config", &scratch.config(), "--format", "json"]));
    let kinds = ["member_of", "can_assume", "grant", "owns", "holds", "same_as"];
    let ids: BTreeSet<&str> =
        graph["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["id"].as_str()).collect();
    for node in graph["nodes"].as_array().expect("nodes") {
        assert!(node["id"].is_string() && node["kind"].is_string() && node["name"].is_string(), "{node}");
    }
    let mut seen = BTreeSet::new();
    for edge in graph["edges"].as_array().expect("edges") {
        let kind = edge["kind"].as_str().expect("kind");
        assert!(kinds.contains(&kind), "unknown edge kind {kind}");
        assert!(ids.contains(edge["from"].as_str().expect("from")) && ids.contains(edge["to"].as_str().expect("to")));
        if kind == "grant" {
            assert!(!edge["actions"].as_array().expect("grant actions").is_empty());
        }
        seen.insert(kind);
    }
    assert_eq!(seen.len(), kinds.len(), "the demo uses every edge kind: {seen:?}");
}
