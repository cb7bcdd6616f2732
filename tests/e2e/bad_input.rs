//! Bad input: clear messages naming file and line, non-zero exits, no panics.

use super::common::*;

fn check(scratch: &Scratch) -> (i32, String) {
    let output = run(&["check", "--config", &scratch.config()]);
    (code(&output), format!("{}{}", stdout(&output), stderr(&output)))
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let scratch = Scratch::new();
    scratch.write("s.json", r#"{"version": 1}"#);
    scratch.write("accessgraph.toml", "[store]\nurl = \"sqlite://s.db\"\n\n[[source]]\nname = \"x\"\nkind = \"snapshot\"\npath = \"s.json\"\npaht = \"oops\"\n");
    let (code, text) = check(&scratch);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("accessgraph.toml:8"), "names the line: {text}");
    assert!(text.contains("paht"), "names the key: {text}");
    let output = run(&["scan", "--config", &scratch.config()]);
    assert_eq!(super::common::code(&output), 2);
    assert!(stderr(&output).contains("paht"));
    assert!(!stderr(&output).contains("panicked"));
}

#[test]
fn invalid_toml_is_named_with_line_and_column() {
    let scratch = Scratch::new();
    scratch.write("accessgraph.toml", "[store]\nurl = \"sqlite://s.db\n");
    let (code, text) = check(&scratch);
    assert_eq!(code, 2);
    assert!(text.contains("accessgraph.toml:2"), "{text}");
}

#[test]
fn a_missing_snapshot_file_names_the_config_line() {
    let scratch = Scratch::new();
    scratch.write("accessgraph.toml", "[[source]]\nname = \"x\"\nkind = \"snapshot\"\npath = \"missing.json\"\n");
    let (code, text) = check(&scratch);
    assert_eq!(code, 2);
    assert!(text.contains("accessgraph.toml:4") && text.contains("missing.json"), "{text}");
}

#[test]
fn invalid_cedar_is_named_with_its_line() {
    let scratch = Scratch::new();
    scratch.write("s.json", r#"{"version": 1, "system": "x", "collected_at": "2026-11-20T00:00:00Z"}"#);
    scratch.write("policy.cedar", "permit(principal, action, resource);\n\npermit(principal, action resource);\n");
    scratch.write(
        "accessgraph.toml",
        "[[source]]\nname = \"x\"\nkind = \"snapshot\"\npath = \"s.json\"\n\n[policy]\ncedar = \"policy.cedar\"\n",
    );
    let (code, text) = check(&scratch);
    assert_eq!(code, 2);
    assert!(text.contains("policy.cedar:3"), "{text}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let scratch = Scratch::new();
    scratch.write(
        "accessgraph.toml",
        "[[source]]\nname = \"a\"\nkind = \"snapshot\"\npath = \"nope.json\"\n\n[[source]]\nname = \"a\"\nkind = \"snapshat\"\n\n[rules]\nsecret_unused_dayz = 3\n",
    );
    let (code, text) = check(&scratch);
    assert_eq!(code, 2);
    for needle in ["nope.json", "snapshat", "secret_unused_dayz"] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

#[test]
fn no_config_and_bad_flags_are_usage_errors() {
    let output = run(&["scan"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("--config"));
    let output = run(&["scan", "--config", "x.toml", "--now", "yesterday"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("RFC 3339"));
    let output = run(&["check", "--config", "/nonexistent/accessgraph.toml"]);
    assert_eq!(code(&output), 2);
}

#[test]
fn the_shipped_demo_config_checks_clean() {
    let config = repo().join("config/examples/demo.toml");
    let output = run(&["check", "--config", &config.display().to_string()]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
}
