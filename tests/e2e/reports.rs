//! Reports, exports and access questions as a security analyst uses them:
//! golden reports of the demo, OCSF, what changed between snapshots, HTML
//! escaping, GraphML/DOT/Cypher exports, `--at` and `query diff`, progress.

use super::common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

const DEMO_NOW: &str = "2026-11-27T00:00:00Z";
const DEMO_LATER: &str = "2026-11-27T06:00:00Z";
const T1: &str = "2026-11-20T00:00:00Z";
const BETWEEN: &str = "2026-11-21T00:00:00Z";
const T2: &str = "2026-11-22T00:00:00Z";
const EVIL: &str = "<img src=x onerror=alert(1)>";

fn ok(args: &[&str]) -> std::process::Output {
    let output = run(args);
    assert_eq!(code(&output), 0, "accessgraph {args:?}\nstderr: {}", stderr(&output));
    output
}

// ---------------------------------------------------------------- golden files

/// Compares with `tests/golden/NAME`; `UPDATE_GOLDEN=1` rewrites it instead.
/// On a difference the actual output lands in `target/test-artifacts/golden/`.
fn golden(name: &str, actual: &str) {
    let path = repo().join("tests/golden").join(name);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create tests/golden");
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} is missing ({e}): run with UPDATE_GOLDEN=1 to create it", path.display()));
    if expected == actual {
        return;
    }
    let artifacts = repo().join("target/test-artifacts/golden");
    let _ = std::fs::create_dir_all(&artifacts);
    let _ = std::fs::write(artifacts.join(name), actual);
    let line = expected
        .lines()
        .zip(actual.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    panic!(
        "{name} differs from the golden file at line {}:\n  expected: {:?}\n  actual:   {:?}\n(expected {} lines, got {}; actual output written to {}; UPDATE_GOLDEN=1 accepts it)",
        line + 1,
        expected.lines().nth(line).unwrap_or("<end of file>"),
        actual.lines().nth(line).unwrap_or("<end of file>"),
        expected.lines().count(),
        actual.lines().count(),
        artifacts.join(name).display()
    );
}

/// Wall-clock durations are the only thing a fixed `--now` does not pin.
fn without_durations(mut report: Value) -> String {
    if let Some(sources) = report["summary"]["sources"].as_array_mut() {
        for source in sources {
            source["duration_ms"] = json!(0);
        }
    }
    let mut text = serde_json::to_string_pretty(&report).expect("json");
    text.push('\n');
    text
}

#[test]
fn golden_demo_reports_in_markdown_json_and_ocsf() {
    // Three stores, one per format, so each is the first snapshot.
    let markdown = demo_scratch();
    let text = stdout(&ok(&["scan", "--config", &markdown.config(), "--now", DEMO_NOW, "--no-file"]));
    golden("demo.md", &text);

    let json_scratch = demo_scratch();
    let output = ok(&["scan", "--config", &json_scratch.config(), "--now", DEMO_NOW, "--no-file", "--format", "json"]);
    golden("demo.json", &without_durations(json(&output)));

    let ocsf = demo_scratch();
    let output = ok(&["scan", "--config", &ocsf.config(), "--now", DEMO_NOW, "--no-file", "--format", "ocsf"]);
    golden("demo.ocsf.jsonl", &stdout(&output));

    // The second snapshot of an unchanged company: nothing changed, and the
    // first-snapshot baseline findings resolve.
    let output = ok(&["scan", "--config", &markdown.config(), "--now", DEMO_LATER, "--no-file"]);
    golden("demo-second.md", &stdout(&output));
}

#[test]
fn markdown_groups_findings_by_severity_then_rule() {
    let scratch = demo_scratch();
    let text = stdout(&ok(&["scan", "--config", &scratch.config(), "--now", DEMO_NOW, "--no-file"]));
    let findings = &text[text.find("## Findings").expect("findings section")..];
    let mut severities = Vec::new();
    let mut rules_in_severity: Vec<String> = Vec::new();
    for line in findings.lines() {
        if let Some(rest) = line.strip_prefix("### ") {
            severities.push(rest.split(' ').next().unwrap_or_default().to_string());
            rules_in_severity.clear();
        } else if let Some(rest) = line.strip_prefix("#### `") {
            let rule = rest.split('`').next().unwrap_or_default().to_string();
            assert!(!rules_in_severity.contains(&rule), "rule {rule} appears twice under one severity");
            if let Some(previous) = rules_in_severity.last() {
                assert!(previous < &rule, "rules sorted within a severity: {previous} then {rule}");
            }
            rules_in_severity.push(rule);
        }
    }
    assert_eq!(severities, ["CRITICAL", "HIGH", "MEDIUM", "LOW"]);
    assert!(text.contains("## Agent catalog"), "the catalog view is in the Markdown report too");
}

// ---------------------------------------------------------------- OCSF

#[test]
fn ocsf_lines_carry_the_required_attributes_of_class_2004() {
    let scratch = demo_scratch();
    let report =
        json(&ok(&["scan", "--config", &scratch.config(), "--now", DEMO_NOW, "--no-file", "--format", "json"]));
    let expected: BTreeMap<String, Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| (f["fingerprint"].as_str().expect("fp").to_string(), f.clone()))
        .collect();
    let output = ok(&["findings", "--config", &scratch.config(), "--format", "ocsf"]);
    let text = stdout(&output);
    assert!(!text.is_empty());
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        validate_detection_finding(&event);
        let uid = event["finding_info"]["uid"].as_str().expect("uid").to_string();
        let finding = expected.get(&uid).unwrap_or_else(|| panic!("finding_info.uid {uid} is no fingerprint"));
        let severity_id = match finding["severity"].as_str().expect("severity") {
            "low" => 2,
            "medium" => 3,
            "high" => 4,
            _ => 5,
        };
        assert_eq!(event["severity_id"], severity_id, "{line}");
        assert_eq!(event["finding_info"]["title"], finding["title"]);
        assert_eq!(event["finding_info"]["types"], json!([finding["rule"]]));
        assert_eq!(event["resources"][0]["uid"], finding["subject"]);
        assert_eq!(event["resources"][1]["uid"], finding["object"]);
        assert_eq!(event["evidences"].as_array().map(Vec::len), finding["evidence"].as_array().map(Vec::len));
        assert_eq!(event["activity_id"], 1, "first sighting is Create");
        assert_eq!(event["status_id"], 1, "open is New");
        assert!(seen.insert(uid), "one event per finding");
    }
    assert_eq!(seen.len(), expected.len(), "every finding is an event");
    // The scan's own OCSF output agrees.
    let scan = ok(&["scan", "--config", &scratch.config(), "--now", DEMO_LATER, "--no-file", "--format", "ocsf"]);
    let mut activities = BTreeSet::new();
    for line in stdout(&scan).lines() {
        let event: Value = serde_json::from_str(line).expect("json line");
        validate_detection_finding(&event);
        activities.insert(event["activity_id"].as_u64().expect("activity"));
    }
    assert_eq!(activities, BTreeSet::from([2, 3]), "seen again is Update, resolved baseline drift is Close");
}

/// The attributes OCSF 1.x requires of a Detection Finding (class 2004), and
/// the enumerations they draw from.
fn validate_detection_finding(event: &Value) {
    let context = event.to_string();
    assert_eq!(event["class_uid"], 2004, "{context}");
    assert_eq!(event["category_uid"], 2, "{context}");
    let activity = event["activity_id"].as_u64().expect("activity_id is an integer");
    assert!([1, 2, 3].contains(&activity), "{context}");
    assert_eq!(event["type_uid"].as_u64(), Some(2004 * 100 + activity), "type_uid = class_uid * 100 + activity_id");
    let severity = event["severity_id"].as_u64().expect("severity_id is an integer");
    assert!((0..=6).contains(&severity) || severity == 99);
    assert!(event["time"].as_i64().expect("time is epoch milliseconds") > 1_700_000_000_000);
    let version = event["metadata"]["version"].as_str().expect("metadata.version");
    assert!(version.starts_with("1.") && version.split('.').count() == 3, "semver 1.x: {version}");
    let product = &event["metadata"]["product"];
    assert!(product["name"].is_string() && product["vendor_name"].is_string(), "metadata.product: {context}");
    let info = &event["finding_info"];
    assert_eq!(info["uid"].as_str().map(str::len), Some(32), "finding_info.uid is the fingerprint");
    assert!(info["title"].is_string() && info["analytic"]["type_id"].is_u64());
    let status = event["status_id"].as_u64().expect("status_id");
    assert!([1, 2, 3, 4, 5, 6, 99].contains(&status));
    for (id, name) in [("activity_id", "activity_name"), ("severity_id", "severity"), ("status_id", "status")] {
        assert!(event[id].is_u64() && event[name].is_string(), "{id} comes with its caption {name}");
    }
    for resource in event["resources"].as_array().expect("resources") {
        assert!(resource["uid"].is_string());
    }
    for evidence in event["evidences"].as_array().expect("evidences") {
        assert!(evidence["data"]["path"].is_array());
    }
}

// ---------------------------------------------------------------- what changed

fn company(v2: bool) -> Value {
    let mut identities = vec![
        json!({"id": "u1", "kind": "human", "name": "Alice", "email": "alice@acme.example", "active": true}),
        json!({"id": "u2", "kind": "human", "name": "Bob", "email": "bob@acme.example", "active": true}),
        json!({"id": "bot", "kind": "agent", "name": "Build bot", "owner": "alice@acme.example", "active": true}),
    ];
    let mut grants = vec![
        json!({"principal": "eng", "resource": "payments", "actions": ["read"]}),
        json!({"principal": "u2", "resource": "handbook", "actions": ["read"]}),
    ];
    let key = |id: &str, holder: &str, created: &str| {
        json!({"id": id, "kind": "api_key", "holder": holder, "created_at": created,
               "last_used_at": "2026-11-19T00:00:00Z", "expires_at": "2026-12-15T00:00:00Z"})
    };
    let mut credentials = Vec::new();
    if v2 {
        identities.push(json!({"id": "deploy-bot", "kind": "agent", "name": "Deploy bot", "owner": "alice@acme.example", "active": true}));
        grants.push(json!({"principal": "u2", "resource": "handbook", "actions": ["write"]}));
        grants.push(json!({"principal": "bot", "resource": "handbook", "actions": ["read"]}));
        credentials.push(key("k1b", "bot", "2026-11-21T00:00:00Z"));
        credentials.push(key("k2", "bot", "2026-11-21T12:00:00Z"));
        credentials.push(key("k9", "deploy-bot", "2026-11-21T00:00:00Z"));
    } else {
        identities.push(
            json!({"id": "old-bot", "kind": "agent", "name": "Old bot", "owner": "alice@acme.example", "active": true}),
        );
        grants.push(json!({"principal": "old-bot", "resource": "handbook", "actions": ["read"]}));
        credentials.push(key("k1", "bot", "2026-11-01T00:00:00Z"));
        credentials.push(key("k2", "bot", "2026-10-20T00:00:00Z"));
        credentials
            .push(json!({"id": "k3", "kind": "token", "holder": "old-bot", "created_at": "2026-09-01T00:00:00Z"}));
    }
    json!({
        "version": 1,
        "system": "forge",
        "collected_at": "2026-11-20T00:00:00Z",
        "identities": identities,
        "groups": [{"id": "eng", "name": "Engineering", "members": ["u1", "u2", "bot"]}],
        "resources": [
            {"id": "payments", "kind": "repo", "name": "payments", "environment": "prod"},
            {"id": "handbook", "kind": "wiki", "name": "Handbook"}
        ],
        "grants": grants,
        "credentials": credentials
    })
}

fn forge(value: &Value) -> Scratch {
    let scratch = Scratch::new();
    write_json(&scratch.path("forge.json"), value);
    scratch.write(
        "accessgraph.toml",
        "[store]\nurl = \"sqlite://store.db\"\n\n[[source]]\nname = \"forge\"\nkind = \"snapshot\"\npath = \"forge.json\"\n\n[[sink]]\nkind = \"jsonl\"\npath = \"events.jsonl\"\n",
    );
    scratch
}

/// The forge company scanned at T1, changed, and scanned at T2.
fn changed_forge() -> (Scratch, Value) {
    let scratch = forge(&company(false));
    ok(&["scan", "--config", &scratch.config(), "--now", T1, "--no-file"]);
    write_json(&scratch.path("forge.json"), &company(true));
    let report = json(&ok(&["scan", "--config", &scratch.config(), "--now", T2, "--no-file", "--format", "json"]));
    (scratch, report)
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array().expect("list").iter().map(|item| item["id"].as_str().expect("id")).collect()
}

fn t(principal: &str, resource: &str, action: &str) -> Value {
    json!([principal, resource, action])
}

#[test]
fn what_changed_lists_access_credentials_and_agents() {
    let (scratch, report) = changed_forge();
    let changes = &report["changes"];
    let bob = "person:bob@acme.example";
    let handbook = "forge:wiki:handbook";
    assert_eq!(
        changes["access_added"],
        json!([t("forge:agent:bot", handbook, "read"), t(bob, handbook, "write")]),
        "{changes:#}"
    );
    assert_eq!(changes["access_widened"], json!([t(bob, handbook, "write")]), "Bob could read before: widened");
    assert_eq!(changes["access_removed"], json!([t("forge:agent:old-bot", handbook, "read")]));
    assert_eq!(ids(&changes["credentials_created"]), ["forge:api_key:k9"]);
    assert_eq!(ids(&changes["credentials_rotated"]), ["forge:api_key:k1b", "forge:api_key:k2"]);
    assert_eq!(changes["credentials_rotated"][0]["note"], "replaces forge:api_key:k1");
    assert_eq!(ids(&changes["credentials_gone"]), ["forge:token:k3"]);
    assert_eq!(changes["credentials_gone"][0]["note"], "deleted");
    assert_eq!(ids(&changes["identities_appeared"]), ["forge:agent:deploy-bot"]);
    assert_eq!(ids(&changes["identities_disappeared"]), ["forge:agent:old-bot"]);
    assert_eq!(report["summary"]["credentials_rotated"], 2);

    // The same in Markdown and HTML, at the next (unchanged) snapshot nothing.
    let markdown = stdout(&ok(&["scan", "--config", &scratch.config(), "--now", "2026-11-23T00:00:00Z", "--no-file"]));
    assert!(markdown.contains("No change in effective access."), "{markdown}");
    assert!(markdown.contains("No credential created, rotated or gone; no agent appeared or disappeared."));
}

#[test]
fn what_changed_in_markdown_and_html() {
    let scratch = forge(&company(false));
    ok(&["scan", "--config", &scratch.config(), "--now", T1, "--no-file"]);
    write_json(&scratch.path("forge.json"), &company(true));
    let markdown = stdout(&ok(&["scan", "--config", &scratch.config(), "--now", T2, "--no-file"]));
    let changed = &markdown[markdown.find("## What changed since last time").expect("section")..];
    for expected in [
        "**Access added** (1):\n\n- `forge:agent:bot` read `forge:wiki:handbook`",
        "**Access widened** (1):\n\n- `person:bob@acme.example` write `forge:wiki:handbook`",
        "**Access removed** (1):\n\n- `forge:agent:old-bot` read `forge:wiki:handbook`",
        "**Credentials created** (1):\n\n- `forge:api_key:k9`",
        "**Credentials rotated** (2):",
        "— replaces forge:api_key:k1",
        "**Credentials gone** (1):\n\n- `forge:token:k3`",
        "**Agents and other non-human identities appeared** (1):\n\n- `forge:agent:deploy-bot` Deploy bot (agent",
        "**Agents and other non-human identities disappeared** (1):\n\n- `forge:agent:old-bot` Old bot (agent",
    ] {
        assert!(changed.contains(expected), "missing {expected:?} in:\n{changed}");
    }
    let html_path = scratch.path("report.html");
    let html_path_text = html_path.display().to_string();
    ok(&[
        "scan",
        "--config",
        &scratch.config(),
        "--now",
        "2026-11-23T00:00:00Z",
        "--no-file",
        "--format",
        "html",
        "--output",
        &html_path_text,
    ]);
    let html = std::fs::read_to_string(&html_path).expect("html written");
    assert!(html.contains("No change in effective access, credentials or non-human identities."));
    assert_eq!(html.matches("<circle class=\"dot s-total\"").count(), 3, "three snapshots in the trend chart");
}

// ---------------------------------------------------------------- HTML safety

fn evil_company() -> Value {
    json!({
        "version": 1,
        "system": "forge",
        "collected_at": "2026-11-20T00:00:00Z",
        "identities": [
            {"id": "u1", "kind": "human", "name": "Alice", "email": "alice@acme.example", "active": true},
            {"id": "bot\"><script>alert(2)</script>", "kind": "agent", "name": "<script>alert(3)</script>", "active": true}
        ],
        "groups": [{"id": "eng", "name": "Eng ' \" & <b>", "members": ["u1", "bot\"><script>alert(2)</script>"]}],
        "resources": [{"id": EVIL, "kind": "repo", "name": EVIL}],
        // Granted a day ago: `drift.baseline` reports it, so the repo is in a finding.
        "grants": [{"principal": "eng", "resource": EVIL, "actions": ["write", "<svg onload=alert(4)>"],
                    "granted_at": "2026-11-19T00:00:00Z"}],
        "credentials": [{"id": "k\u{1}1<i>", "kind": "api_key", "holder": "bot\"><script>alert(2)</script>",
                         "created_at": "2025-01-01T00:00:00Z", "last_used_at": null, "expires_at": null}]
    })
}

/// The parts of an HTML page that could run code or load something.
fn assert_inert(html: &str) {
    assert!(!html.contains("<img"), "an <img> tag from remote text survived");
    assert!(!html.contains("<svg onload"), "an <svg onload> from remote text survived");
    assert!(!html.contains("<b>"), "markup from remote text survived");
    assert_eq!(html.matches("<script").count(), 1, "only the page's own script");
    assert!(html.contains("<script>\n(function () {"), "the page's script has no src");
    for forbidden in ["<link rel=\"stylesheet\"", "@import", "url(http", "<iframe", "<object", "<embed"] {
        assert!(!html.contains(forbidden), "{forbidden} in a self-contained page");
    }
    // Escaped text has no `<`, so every `<` opens a real tag: none loads anything.
    // Attribute values are always double-quoted, so outside quotes are names.
    for tag in html.split('<').skip(1).map(|rest| rest.split('>').next().unwrap_or_default()) {
        let parts: Vec<&str> = tag.split('"').collect();
        for (i, outside) in parts.iter().enumerate().step_by(2) {
            let value = parts.get(i + 1).copied().unwrap_or_default();
            assert!(!outside.ends_with(" src="), "a tag that loads: <{tag}>");
            if outside.ends_with(" href=") {
                assert!(value.starts_with('#') || value.starts_with("data:"), "a link that leaves the page: <{tag}>");
            }
        }
    }
    let no_xmlns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!no_xmlns.contains("http://") && !no_xmlns.contains("https://"), "no network reference at all");
    assert!(
        html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'sha256-")
    );
}

#[test]
fn html_report_escapes_everything_from_remote_systems() {
    let scratch = forge(&evil_company());
    let path = scratch.path("report.html").display().to_string();
    ok(&["scan", "--config", &scratch.config(), "--now", T1, "--no-file", "--format", "html", "--output", &path]);
    let html = std::fs::read_to_string(&path).expect("report written");
    assert_inert(&html);
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "the repo name renders as text");
    assert!(html.contains("&lt;script&gt;alert(3)&lt;/script&gt;"));
    assert!(html.contains("bot&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"), "ids escaped in attributes too");
    // Findings listed from the store, as a page, too.
    let output = ok(&["findings", "--config", &scratch.config(), "--format", "html"]);
    assert_inert(&stdout(&output));
    assert!(stdout(&output).contains("&lt;img src=x onerror=alert(1)&gt;"));
    // Markdown neutralises tags as well.
    let markdown = stdout(&ok(&["scan", "--config", &scratch.config(), "--now", T2, "--no-file"]));
    assert!(!markdown.contains("<img") && !markdown.contains("<script"), "{markdown}");
}

#[test]
fn html_report_of_the_demo_has_every_section() {
    let scratch = demo_scratch();
    ok(&["scan", "--config", &scratch.config(), "--now", DEMO_NOW, "--no-file"]);
    let path = scratch.path("report.html").display().to_string();
    ok(&[
        "scan",
        "--config",
        &scratch.config(),
        "--now",
        DEMO_LATER,
        "--no-file",
        "--format",
        "html",
        "--output",
        &path,
    ]);
    let html = std::fs::read_to_string(&path).expect("report");
    assert_inert(&html);
    let report = json(&ok(&["findings", "--config", &scratch.config(), "--format", "json"]));
    let findings = report["findings"].as_array().expect("findings");
    assert!(!findings.is_empty());
    for finding in findings {
        let fp = finding["fingerprint"].as_str().expect("fp");
        assert!(
            html.contains(&format!(
                "<details class=\"finding sev-{}\" id=\"f-{fp}\"",
                finding["severity"].as_str().expect("sev")
            )),
            "card for {fp}"
        );
        assert!(html.contains(&format!("<tr data-fp=\"{fp}\"")), "table row for {fp}");
    }
    let cards = html.matches("<details class=\"finding").count();
    assert_eq!(cards, findings.len(), "one card per open finding");
    assert!(
        html.matches("<svg class=\"evidence\"").count()
            >= findings.iter().filter(|f| f["evidence"].as_array().is_some_and(|e| !e.is_empty())).count()
    );
    for section in
        ["id=\"posture\"", "id=\"trend\"", "id=\"changes\"", "id=\"findings\"", "id=\"catalog\"", "id=\"sources\""]
    {
        assert!(html.contains(section), "{section}");
    }
    // The catalog view: every record, with owner, tier, reach and credentials.
    for agent in ["po-bot", "devbot", "report-bot", "support-summarizer"] {
        assert!(html.contains(&format!("<article class=\"agent\" data-agent=\"{agent}\"")), "{agent}");
    }
    assert!(html.contains("outside allowed systems"), "devbot's gateway identity reaches outside `code`");
    assert!(html.contains("record expired"), "report-bot's record lapsed");
    assert!(html.contains("Not in the catalog"), "shadow identities are listed");
    assert!(html.contains("jack.turner@acme.example <span class=\"badge warn\">inactive</span>"), "an owner who left");
    assert_eq!(html.matches("<circle class=\"dot s-total\"").count(), 2, "two snapshots in the trend");
}

// ---------------------------------------------------------------- exports

fn tricky_company() -> Value {
    json!({
        "version": 1,
        "system": "forge",
        "collected_at": "2026-11-20T00:00:00Z",
        "identities": [
            {"id": "u\"1\\", "kind": "human", "name": "Al \"the\" \\ <pal> & co\nnext", "email": "al@acme.example", "active": true},
            {"id": "bot'; DROP", "kind": "agent", "name": "it's a bot", "owner": "al@acme.example", "active": true}
        ],
        "groups": [{"id": "g<&>", "name": "G", "members": ["u\"1\\", "bot'; DROP"]}],
        "resources": [{"id": EVIL, "kind": "repo", "name": "repo -> \"x\""}],
        "grants": [{"principal": "g<&>", "resource": EVIL, "actions": ["read", "write"], "expires_at": "2027-01-01T00:00:00Z"}],
        "credentials": [{"id": "k\\n1", "kind": "api_key", "holder": "bot'; DROP", "created_at": "2026-11-01T00:00:00Z"}]
    })
}

fn export(scratch: &Scratch, format: &str) -> String {
    stdout(&ok(&["export", "--config", &scratch.config(), "--format", format]))
}

fn dot_binary() -> Option<PathBuf> {
    let output = Command::new("dot").arg("-V").output().ok()?;
    output.status.success().then(|| PathBuf::from("dot"))
}

fn check_exports(scratch: &Scratch) {
    let graph: Value = serde_json::from_str(&export(scratch, "json")).expect("json export");
    let node_ids: BTreeSet<String> =
        graph["nodes"].as_array().expect("nodes").iter().map(|n| n["id"].as_str().expect("id").to_string()).collect();
    let edge_count = graph["edges"].as_array().expect("edges").len();
    assert!(!node_ids.is_empty() && edge_count > 0);

    let graphml = export(scratch, "graphml");
    let document =
        roxmltree::Document::parse(&graphml).unwrap_or_else(|e| panic!("GraphML is not XML: {e}\n{graphml}"));
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "graphml");
    let graph_element = root.children().find(|n| n.has_tag_name("graph")).expect("<graph>");
    assert_eq!(graph_element.attribute("edgedefault"), Some("directed"));
    let xml_nodes: BTreeSet<String> = graph_element
        .children()
        .filter(|n| n.has_tag_name("node"))
        .map(|n| n.attribute("id").expect("node id").to_string())
        .collect();
    let xml_edges: Vec<(String, String)> = graph_element
        .children()
        .filter(|n| n.has_tag_name("edge"))
        .map(|e| {
            (e.attribute("source").expect("source").to_string(), e.attribute("target").expect("target").to_string())
        })
        .collect();
    assert_eq!(xml_nodes, node_ids, "GraphML node ids round-trip exactly");
    assert_eq!(xml_edges.len(), edge_count, "one GraphML edge per exported edge");
    assert!(xml_edges.iter().all(|(s, t)| xml_nodes.contains(s) && xml_nodes.contains(t)), "edges meet nodes");

    let dot = export(scratch, "dot");
    assert!(dot.starts_with("digraph accessgraph {") && dot.trim_end().ends_with('}'));
    assert_eq!(dot.matches("\" -> \"").count(), edge_count, "one DOT edge per exported edge");
    match dot_binary() {
        Some(binary) => {
            let path = scratch.path("graph.dot");
            std::fs::write(&path, &dot).expect("write dot");
            let output = Command::new(binary).arg("-Tsvg").arg(&path).output().expect("dot runs");
            assert!(
                output.status.success(),
                "dot rejected the export: {}\n{dot}",
                String::from_utf8_lossy(&output.stderr)
            );
            let svg = String::from_utf8_lossy(&output.stdout);
            assert_eq!(svg.matches("class=\"node\"").count(), node_ids.len(), "Graphviz drew every node once");
            assert_eq!(svg.matches("class=\"edge\"").count(), edge_count, "and every edge");
        }
        None if std::env::var_os("CI").is_some() => panic!("Graphviz `dot` is not installed; .ci/run installs it"),
        None => eprintln!("notice: Graphviz `dot` not installed; skipping the `dot -Tsvg` check"),
    }

    let cypher = export(scratch, "cypher");
    assert!(cypher.contains("CREATE CONSTRAINT accessgraph_node_id IF NOT EXISTS"));
    let rows = cypher.lines().filter(|l| l.trim_start().starts_with("{id: '")).count();
    assert_eq!(rows, node_ids.len(), "one node row per node");
    let edge_rows = cypher.lines().filter(|l| l.trim_start().starts_with("{from: '")).count();
    assert_eq!(edge_rows, edge_count, "one edge row per edge");
}

#[test]
fn exports_parse_with_expected_counts_on_the_demo() {
    let scratch = demo_scratch();
    ok(&["scan", "--config", &scratch.config(), "--now", DEMO_NOW, "--no-file"]);
    check_exports(&scratch);
}

#[test]
fn exports_escape_awkward_ids() {
    let scratch = forge(&tricky_company());
    ok(&["scan", "--config", &scratch.config(), "--now", T1, "--no-file"]);
    check_exports(&scratch);
    let cypher = export(&scratch, "cypher");
    assert!(cypher.contains(r#"'forge:agent:bot\'; DROP'"#), "quotes escaped in Cypher literals");
    assert!(cypher.contains(r#"'forge:api_key:k\\n1'"#), "backslashes escaped in Cypher literals");
    let dot = export(&scratch, "dot");
    assert!(dot.contains(r#""forge:user:u\"1\\""#), "quotes and backslashes escaped in DOT ids");
}

// ---------------------------------------------------------------- queries

fn query(scratch: &Scratch, args: &[&str]) -> Value {
    let config = scratch.config();
    let mut full = vec!["query"];
    full.extend_from_slice(args);
    full.extend(["--config", config.as_str(), "--format", "json"]);
    json(&ok(&full))
}

fn access(answer: &Value) -> BTreeSet<(String, String)> {
    answer["access"]
        .as_array()
        .expect("access")
        .iter()
        .map(|a| (a["resource"].as_str().expect("r").to_string(), a["action"].as_str().expect("a").to_string()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter().map(|(r, a)| (r.to_string(), a.to_string())).collect()
}

#[test]
fn at_answers_before_and_after_a_change_differently() {
    let (scratch, _) = changed_forge();
    let payments = "forge:repo:payments";
    let handbook = "forge:wiki:handbook";
    // what-can
    let before = query(&scratch, &["what-can", "--identity", "forge:agent:bot", "--at", BETWEEN]);
    let after = query(&scratch, &["what-can", "--identity", "forge:agent:bot", "--at", T2]);
    let now = query(&scratch, &["what-can", "--identity", "forge:agent:bot"]);
    assert_eq!(access(&before), pairs(&[(payments, "read")]));
    assert_eq!(access(&after), pairs(&[(payments, "read"), (handbook, "read")]));
    assert_eq!(access(&now), access(&after), "no --at is now");
    // who-can
    let who = |at: &str| -> BTreeSet<String> {
        query(&scratch, &["who-can", "--resource", handbook, "--at", at])["access"]
            .as_array()
            .expect("access")
            .iter()
            .map(|a| format!("{} {}", a["principal"].as_str().expect("p"), a["action"].as_str().expect("a")))
            .collect()
    };
    assert_eq!(
        who(BETWEEN),
        BTreeSet::from(["forge:agent:old-bot read".to_string(), "person:bob@acme.example read".to_string()])
    );
    assert_eq!(
        who(T2),
        BTreeSet::from([
            "forge:agent:bot read".to_string(),
            "person:bob@acme.example read".to_string(),
            "person:bob@acme.example write".to_string()
        ])
    );
    // blast-radius of a key that existed throughout
    let before = query(&scratch, &["blast-radius", "--credential", "forge:api_key:k2", "--at", BETWEEN]);
    let after = query(&scratch, &["blast-radius", "--credential", "forge:api_key:k2", "--at", T2]);
    assert_eq!(access(&before), pairs(&[(payments, "read")]));
    assert_eq!(access(&after), pairs(&[(payments, "read"), (handbook, "read")]));
    assert_eq!(after["access"][0]["path"][0], "forge:api_key:k2", "the path starts at the key");
    // a key that is gone now is unknown now, known in the past
    let gone = run(&["query", "blast-radius", "--config", &scratch.config(), "--credential", "forge:api_key:k1"]);
    assert_eq!(code(&gone), 2, "unknown now: {}", stderr(&gone));
    let past = query(&scratch, &["blast-radius", "--credential", "forge:api_key:k1", "--at", BETWEEN]);
    assert_eq!(access(&past), pairs(&[(payments, "read")]));
    // path
    let path = |at: &str| {
        query(&scratch, &["path", "--from", "forge:agent:bot", "--to", handbook, "--at", at])["path"].clone()
    };
    assert_eq!(path(BETWEEN), Value::Null, "no path before");
    assert_eq!(path(T2), json!(["forge:agent:bot", handbook]));
}

#[test]
fn query_diff_lists_exactly_the_change() {
    let (scratch, _) = changed_forge();
    let handbook = "forge:wiki:handbook";
    let diff = query(&scratch, &["diff", "--from", BETWEEN, "--to", T2]);
    assert_eq!(
        diff,
        json!({
            "added": [t("forge:agent:bot", handbook, "read"), t("person:bob@acme.example", handbook, "write")],
            "removed": [t("forge:agent:old-bot", handbook, "read")],
        })
    );
    let none = query(&scratch, &["diff", "--from", T1, "--to", BETWEEN]);
    assert_eq!(none, json!({"added": [], "removed": []}), "nothing changed between T1 and BETWEEN");
    // The table form: aligned columns, one row per change.
    let table = stdout(&ok(&["query", "diff", "--config", &scratch.config(), "--from", BETWEEN, "--to", T2]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("CHANGE   PRINCIPAL"), "{table}");
    let column = lines[0].find("ACTION").expect("ACTION column");
    for line in &lines[1..] {
        assert_eq!(line.find(" read").or(line.find(" write")).map(|i| i + 1), Some(column), "aligned: {table}");
    }
}

// ---------------------------------------------------------------- progress

#[test]
fn scan_draws_no_progress_when_piped_or_quiet() {
    let scratch = demo_scratch();
    let output =
        run_with_env(&["scan", "--config", &scratch.config(), "--now", DEMO_NOW, "--no-file"], &[("RUST_LOG", "info")]);
    assert_eq!(code(&output), 0);
    let err = stderr(&output);
    assert!(err.contains("source synced"), "logs still go to stderr: {err}");
    for mark in ["\u{2714}", "\u{1b}[", "\r", "syncing ("] {
        assert!(!err.contains(mark), "progress drawn into a pipe ({mark:?}): {err}");
    }
}

/// `script` gives the binary a pseudo-terminal, as a person's shell would.
#[test]
fn scan_on_a_terminal_shows_a_line_per_source() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("notice: `script` (util-linux) not installed; skipping the terminal progress check");
        return;
    }
    let scratch = demo_scratch();
    let report = scratch.path("report.md").display().to_string();
    let command =
        format!("{} scan --config {} --now {DEMO_NOW} --no-file --output {report}", binary(), scratch.config());
    let typescript = scratch.path("typescript").display().to_string();
    let run_script = |extra: &str| {
        let output = Command::new("script")
            .args(["-q", "-e", "-c", &format!("{command}{extra}"), &typescript])
            .env("RUST_LOG", "warn")
            .env("COLUMNS", "120")
            .env("LINES", "40")
            .env_remove("ACCESSGRAPH_CONFIG")
            .output()
            .expect("script runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&std::fs::read(&typescript).expect("typescript")).into_owned()
    };
    let screen = run_script("");
    for source in ["okta", "llm-gateway", "erp", "code", "warehouse"] {
        assert!(
            screen.lines().any(|l| l.contains('\u{2714}') && l.contains(source) && l.contains("nodes")),
            "no finished progress line for {source}:\n{screen}"
        );
    }
    assert!(screen.contains("analysis"), "{screen}");
    assert!(std::fs::read_to_string(&report).expect("report").starts_with("# accessgraph drift report"));
    let quiet = run_script(" --quiet");
    assert!(!quiet.contains('\u{2714}'), "--quiet draws nothing: {quiet}");
}
