//! The temporal store through the CLI: history, failed syncs, queries at a time.

use super::common::*;
use serde_json::json;

const T1: &str = "2026-11-20T00:00:00Z";
const BETWEEN: &str = "2026-11-21T00:00:00Z";
const T2: &str = "2026-11-22T00:00:00Z";

fn company(with_admin_grant: bool) -> serde_json::Value {
    let mut grants = vec![json!({"principal": "eng", "resource": "repo", "actions": ["read"]})];
    if with_admin_grant {
        grants.push(
            json!({"principal": "u2", "resource": "repo", "actions": ["admin"], "granted_at": "2026-01-01T00:00:00Z"}),
        );
    }
    json!({
        "version": 1,
        "system": "forge",
        "collected_at": "2026-11-20T00:00:00Z",
        "identities": [
            {"id": "u1", "kind": "human", "name": "Alice", "email": "alice@acme.example", "active": true},
            {"id": "u2", "kind": "human", "name": "Bob", "email": "Bob@Acme.example", "active": true},
            {"id": "bot", "kind": "agent", "name": "Build bot", "owner": "alice@acme.example", "active": true}
        ],
        "groups": [{"id": "eng", "name": "Engineering", "members": ["u1", "u2", "bot"]}],
        "resources": [{"id": "repo", "kind": "repo", "name": "payments", "environment": "prod"}],
        "grants": grants,
        "credentials": [{"id": "k1", "kind": "api_key", "holder": "bot", "created_at": "2026-11-01T00:00:00Z",
                         "last_used_at": "2026-11-19T00:00:00Z", "expires_at": "2026-12-01T00:00:00Z"}]
    })
}

fn setup() -> Scratch {
    let scratch = Scratch::new();
    write_json(&scratch.path("forge.json"), &company(true));
    scratch.write(
        "accessgraph.toml",
        "[store]\nurl = \"sqlite://store.db\"\n\n[[source]]\nname = \"forge\"\nkind = \"snapshot\"\npath = \"forge.json\"\n\n[[sink]]\nkind = \"jsonl\"\npath = \"events.jsonl\"\nmin_severity = \"low\"\n",
    );
    scratch
}

#[test]
fn a_dropped_grant_closes_its_edge_and_time_travel_sees_both_states() {
    let scratch = setup();
    // The resource id is the snapshot id; the resource kind is `repo`.
    let output = run(&["scan", "--config", &scratch.config(), "--now", T1, "--format", "json"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let resource = "forge:repo:repo";
    let query = |at: Option<&str>| {
        let mut args = vec![
            "query".to_string(),
            "who-can".into(),
            "--config".into(),
            scratch.config(),
            "--resource".into(),
            resource.into(),
            "--action".into(),
            "admin".into(),
            "--format".into(),
            "json".into(),
        ];
        if let Some(at) = at {
            args.extend(["--at".into(), at.into()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&refs);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        json(&output)["access"]
            .as_array()
            .expect("access")
            .iter()
            .map(|a| a["principal"].as_str().expect("p").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(query(None), vec!["person:bob@acme.example"], "email case does not split Bob");
    write_json(&scratch.path("forge.json"), &company(false));
    let output = run(&["scan", "--config", &scratch.config(), "--now", T2, "--format", "json"]);
    assert_eq!(code(&output), 0);
    assert!(query(None).is_empty(), "the grant is gone now");
    assert_eq!(query(Some(BETWEEN)), vec!["person:bob@acme.example"], "but it existed between the scans");
    assert!(query(Some(T2)).is_empty());

    let diff =
        run(&["query", "diff", "--config", &scratch.config(), "--from", BETWEEN, "--to", T2, "--format", "json"]);
    let diff = json(&diff);
    assert_eq!(diff["added"], json!([]));
    assert_eq!(diff["removed"], json!([["person:bob@acme.example", resource, "admin"]]));

    let report = json(&run(&["findings", "--config", &scratch.config(), "--status", "all", "--format", "json"]));
    assert!(
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .all(|f| f["object"] != resource || f["status"] != "open" || f["rule"] != "drift.baseline")
    );
}

#[test]
fn a_failed_sync_changes_nothing_and_exits_three() {
    let scratch = setup();
    assert_eq!(code(&run(&["scan", "--config", &scratch.config(), "--now", T1])), 0);
    let before = json(&run(&["export", "--config", &scratch.config()]));
    scratch.write("forge.json", "{\"version\": 1, \"identities\": [ {\"id\": ");
    let output = run(&["scan", "--config", &scratch.config(), "--now", T2, "--format", "json"]);
    assert_eq!(code(&output), 3, "a failed source is exit 3: {}", stderr(&output));
    let report = json(&output);
    let sources = report["summary"]["sources"].as_array().expect("sources");
    assert_eq!(sources[0]["name"], "forge");
    assert_eq!(sources[0]["status"], "failed");
    assert!(sources[0]["error"].as_str().expect("error").contains("forge.json"), "the error names the file");
    // Findings of the failed source are still open: a failure never reads as "access removed".
    assert!(report["findings"].as_array().expect("findings").iter().all(|f| f["status"] != "resolved"));
    let after = json(&run(&["export", "--config", &scratch.config()]));
    assert_eq!(before, after, "nothing stored changed");
    // Markdown report says which source failed.
    let output = run(&["scan", "--config", &scratch.config(), "--now", "2026-11-23T00:00:00Z"]);
    assert_eq!(code(&output), 3);
    assert!(stdout(&output).contains("| forge | snapshot | **failed**"));
}

#[test]
fn a_dangling_reference_fails_the_sync_naming_the_json_path() {
    let scratch = setup();
    let mut broken = company(true);
    broken["groups"][0]["members"] = json!(["u1", "ghost"]);
    write_json(&scratch.path("forge.json"), &broken);
    let output = run(&["scan", "--config", &scratch.config(), "--now", T1, "--format", "json"]);
    assert_eq!(code(&output), 3);
    let report = json(&output);
    let error = report["summary"]["sources"][0]["error"].as_str().expect("error").to_string();
    assert!(error.contains("$.groups[0].members[1]"), "{error}");
    assert!(error.contains("ghost"), "{error}");
}
