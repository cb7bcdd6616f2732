//! The HTML report in a real browser: headless Chromium loads the demo report
//! from disk, the page's own self-check (`#selfcheck`) drives the severity,
//! rule and text filters and writes what it saw onto `<html>`, and the test
//! reads that back from the dumped DOM. A screenshot is kept as an artifact.
//!
//! Without Chromium the test fails when `CI` is set (`.ci/run` installs it)
//! and is skipped with a notice otherwise.

use super::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T1: &str = "2026-11-27T00:00:00Z";
const T2: &str = "2026-11-27T06:00:00Z";

fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("/usr/bin/chromium is missing; .ci/run installs the Debian package `chromium`");
    }
    eprintln!("notice: /usr/bin/chromium not installed; skipping the headless browser test");
    None
}

/// Runs Chromium headless with a fresh profile; returns (stdout, stderr).
/// A hung browser is killed after a generous bound instead of hanging the suite.
fn headless(chromium: &Path, args: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        match child.try_wait().expect("wait for chromium") {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish: {:?}", args);
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    (out.join().unwrap_or_default(), err.join().unwrap_or_default())
}

/// The attributes of the `<html>` start tag in a dumped DOM.
fn html_attributes(dom: &str) -> BTreeMap<String, String> {
    let start = dom.find("<html").unwrap_or_else(|| panic!("no <html> in the dumped DOM:\n{dom}"));
    let end = start + dom[start..].find('>').expect("end of <html>");
    let mut attributes = BTreeMap::new();
    let mut rest = &dom[start + 5..end];
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim().to_string();
        let value_start = eq + 2;
        let Some(len) = rest[value_start..].find('"') else { break };
        attributes.insert(name, rest[value_start..value_start + len].replace("&quot;", "\"").replace("&amp;", "&"));
        rest = &rest[value_start + len + 1..];
    }
    attributes
}

#[test]
fn html_report_renders_filters_and_shows_every_finding_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let scratch = demo_scratch();
    // Two snapshots so the trend has a line and "what changed" a comparison.
    let first = run(&["scan", "--config", &scratch.config(), "--now", T1, "--no-file"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let report = scratch.path("report.html");
    let output = run(&[
        "scan",
        "--config",
        &scratch.config(),
        "--now",
        T2,
        "--no-file",
        "--format",
        "html",
        "--output",
        &report.display().to_string(),
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let listed = json(&run(&["findings", "--config", &scratch.config(), "--status", "all", "--format", "json"]));
    let current: Vec<&serde_json::Value> =
        listed["findings"].as_array().expect("findings").iter().filter(|f| f["status"] != "resolved").collect();
    assert!(!current.is_empty());

    let url = format!("file://{}", report.display());
    let (dom, log) =
        headless(&chromium, &["--virtual-time-budget=5000".into(), "--dump-dom".into(), format!("{url}#selfcheck")]);
    let attributes = html_attributes(&dom);
    assert_eq!(attributes.get("data-errors").map(String::as_str), Some("0"), "the page recorded errors:\n{dom}");
    assert_eq!(attributes.get("data-selfcheck").map(String::as_str), Some("ok"), "self-check: {attributes:?}");
    // Console messages Chromium logged: no uncaught error, nothing refused by the policy.
    for line in log.lines().filter(|l| l.contains("CONSOLE")) {
        assert!(
            !line.contains("Uncaught") && !line.contains("Refused") && !line.contains("Error"),
            "console error: {line}"
        );
    }
    // Filtering by each severity shows exactly that severity's findings.
    for severity in ["critical", "high", "medium", "low"] {
        let expected = current.iter().filter(|f| f["severity"] == severity).count();
        assert_eq!(
            attributes.get(&format!("data-selfcheck-{severity}")).map(String::as_str),
            Some(expected.to_string().as_str()),
            "findings shown when filtering by {severity}"
        );
    }
    assert_eq!(attributes.get("data-selfcheck-all"), Some(&current.len().to_string()));
    assert_eq!(
        attributes.get("data-visible-findings"),
        Some(&current.len().to_string()),
        "filters reset after the check"
    );
    // Every finding of the demo is in the rendered page.
    for finding in &current {
        let fp = finding["fingerprint"].as_str().expect("fp");
        assert!(dom.contains(&format!("id=\"f-{fp}\"")), "finding {fp} missing from the page");
    }

    let artifacts = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let screenshot = artifacts.join("report.png");
    let _ = std::fs::remove_file(&screenshot);
    let _ =
        headless(&chromium, &[format!("--screenshot={}", screenshot.display()), "--window-size=1400,2400".into(), url]);
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a real PNG screenshot");
}

/// A repository named `<img src=x onerror=alert(1)>` (and an agent whose
/// name would set an attribute on `<html>` if it ran) renders as text: no
/// element is created from it, nothing runs, the page records no error and
/// no policy violation, and the filters still work.
#[test]
fn a_hostile_repo_name_renders_as_text_and_runs_nothing_in_chromium() {
    let Some(chromium) = chromium() else { return };
    const REPO: &str = "<img src=x onerror=alert(1)>";
    const AGENT: &str = "<img src=y onerror=\"document.documentElement.setAttribute('data-pwned','1')\">";
    let scratch = Scratch::new();
    write_json(
        &scratch.path("forge.json"),
        &serde_json::json!({
            "version": 1, "system": "forge", "collected_at": "2026-11-20T00:00:00Z",
            "identities": [{"id": "bot", "kind": "agent", "name": AGENT, "active": true}],
            "resources": [{"id": "evil", "kind": "repo", "name": REPO, "environment": "prod"}],
            "grants": [{"principal": "bot", "resource": "evil", "actions": ["write", "admin"]}],
            "credentials": [{"id": "k1", "kind": "api_key", "name": REPO, "holder": "bot",
                             "created_at": "2025-01-01T00:00:00Z", "last_used_at": null, "expires_at": null}]
        }),
    );
    scratch.write(
        "accessgraph.toml",
        "[store]\nurl = \"sqlite://store.db\"\n\n[[source]]\nname = \"forge\"\nkind = \"snapshot\"\npath = \"forge.json\"\n\n\
         [[sod]]\nname = \"write-and-admin\"\nleft = { resource = \"forge:repo:evil\", action = \"write\" }\n\
         right = { resource = \"forge:repo:evil\", action = \"admin\" }\n",
    );
    let report = scratch.path("report.html");
    let output = run(&[
        "scan",
        "--config",
        &scratch.config(),
        "--now",
        T1,
        "--no-file",
        "--format",
        "html",
        "--output",
        &report.display().to_string(),
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let html = std::fs::read_to_string(&report).expect("report");
    assert!(!html.contains(REPO) && !html.contains("<img"), "the name is escaped in the file");

    let url = format!("file://{}", report.display());
    let (dom, log) =
        headless(&chromium, &["--virtual-time-budget=5000".into(), "--dump-dom".into(), format!("{url}#selfcheck")]);
    let attributes = html_attributes(&dom);
    assert_eq!(attributes.get("data-errors").map(String::as_str), Some("0"), "nothing tried to run:\n{dom}");
    assert_eq!(attributes.get("data-selfcheck").map(String::as_str), Some("ok"), "self-check: {attributes:?}");
    assert!(!attributes.contains_key("data-pwned"), "the agent's name ran as script");
    // The browser serializes a real element's attributes quoted; the text
    // itself keeps its own spelling (and is escaped in text nodes).
    assert!(!dom.contains("<img src=\"x\"") && !dom.contains("<img src=\"y\""), "an element was created:\n{dom}");
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;"), "the repo name is shown as text:\n{dom}");
    assert!(dom.contains("&lt;img src=y onerror="), "the agent name is shown as text");
    for line in log.lines().filter(|l| l.contains("CONSOLE")) {
        assert!(!line.contains("Refused") && !line.contains("Error"), "console: {line}");
    }
}
