//! The HTML drift report: one self-contained file (inline CSS, inline SVG,
//! a small inline script; no network). A Content-Security-Policy allows only
//! the page's own script (by hash) and no loads at all, so even text that
//! slipped past escaping could not run or fetch anything. Every string from
//! a remote system goes through [`esc`].

use super::svg::{self, Series, esc};
use super::{CatalogEntry, NodeLabel, Report, Triple};
use accessgraph_graph::diff::{CredentialChange, IdentityChange};
use accessgraph_graph::{Finding, FindingStatus, Posture, Severity};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

const SEVERITIES: [Severity; 4] = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low];

const STYLE: &str = r#"
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--panel:#f6f8fa;--critical:#8b1538;--high:#c2410c;--medium:#9a6700;--low:#2563eb;--good:#1a7f37;--bad:#cf222e}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header.top{padding:20px 32px 12px;border-bottom:1px solid var(--line);background:var(--panel)}
header.top h1{margin:0 0 4px;font-size:22px}
.meta{color:var(--muted);margin:0}
nav{padding:8px 32px;border-bottom:1px solid var(--line);position:sticky;top:0;background:var(--bg);z-index:2}
nav a{margin-right:16px;color:var(--low);text-decoration:none}
main{padding:8px 32px 40px;max-width:1400px}
h2{font-size:18px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:18px 0 8px}
h4{font-size:14px;margin:12px 0 6px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--panel);font-weight:600}
th[data-sort]{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" ▲"}
th[aria-sort=descending]::after{content:" ▼"}
td.nowrap{white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:130px;background:var(--bg);text-align:left;font:inherit;color:inherit}
button.card{cursor:pointer}
.card .n{font-size:26px;font-weight:700;display:block}
.card.sev-critical{border-left:6px solid var(--critical)}.card.sev-high{border-left:6px solid var(--high)}
.card.sev-medium{border-left:6px solid var(--medium)}.card.sev-low{border-left:6px solid var(--low)}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}
.badge.critical{background:var(--critical)}.badge.high{background:var(--high)}.badge.medium{background:var(--medium)}.badge.low{background:var(--low)}
.badge.muted,.badge.neutral{background:#6e7781}.badge.warn{background:var(--bad)}.badge.ok{background:var(--good)}
.up.bad,.down.bad{color:var(--bad);font-weight:600}.up.good,.down.good{color:var(--good);font-weight:600}
.controls{display:flex;flex-wrap:wrap;gap:14px;align-items:center;padding:10px 12px;background:var(--panel);border:1px solid var(--line);border-radius:8px;position:sticky;top:37px;z-index:1}
.controls label{white-space:nowrap}
.controls input[type=search]{min-width:260px;padding:4px 6px}
#f-count{color:var(--muted)}
details.finding{border:1px solid var(--line);border-radius:8px;margin:8px 0;padding:0 14px;background:var(--bg)}
details.finding[open]{padding-bottom:10px}
details.finding>summary{cursor:pointer;padding:9px 0;list-style-position:outside}
details.finding.sev-critical{border-left:6px solid var(--critical)}details.finding.sev-high{border-left:6px solid var(--high)}
details.finding.sev-medium{border-left:6px solid var(--medium)}details.finding.sev-low{border-left:6px solid var(--low)}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0}
.kv dt{color:var(--muted)}.kv dd{margin:0}
.remediation{background:#f0f7ff;border-left:3px solid var(--low);padding:6px 10px;margin:8px 0 0}
.figure-svg{overflow-x:auto;margin:6px 0}
svg.evidence{max-width:100%;height:auto}
svg.evidence .node rect{fill:#fff;stroke:#8c959f;stroke-width:1.2}
svg.evidence .k-person rect{fill:#ddf4ff;stroke:#54aeff}svg.evidence .k-agent rect{fill:#fbefff;stroke:#c297ff}
svg.evidence .k-service rect{fill:#dafbe1;stroke:#4ac26b}svg.evidence .k-group rect{fill:#f6f8fa;stroke:#8c959f}
svg.evidence .k-resource rect{fill:#fff1e5;stroke:#fb8f44}svg.evidence .k-credential rect{fill:#ffebe9;stroke:#ff8182}
svg.evidence .node-name{font:600 12px system-ui,sans-serif;fill:#1f2328}
svg.evidence .node-id{font:10px ui-monospace,monospace;fill:#59636e}
svg.evidence .edge{fill:none;stroke:#6e7781;stroke-width:1.4}
svg.evidence .arrow{fill:#6e7781}
svg.evidence .edge-label{font:10px system-ui,sans-serif;fill:#59636e}
.charts{display:flex;flex-wrap:wrap;gap:16px}
figure.chart{margin:0;border:1px solid var(--line);border-radius:8px;padding:8px}
figure.chart figcaption{font-weight:600;margin-bottom:4px}
figure.chart .axis{stroke:#8c959f}figure.chart .tick,figure.chart .legend{font:10px system-ui,sans-serif;fill:#59636e}
figure.chart .series{fill:none;stroke-width:2}
.s-total{stroke:#1f2328;fill:#1f2328}.s-critical{stroke:var(--critical);fill:var(--critical)}.s-high{stroke:var(--high);fill:var(--high)}
.s-medium{stroke:var(--medium);fill:var(--medium)}.s-low{stroke:var(--low);fill:var(--low)}.s-figure{stroke:#8250df;fill:#8250df}
figure.chart polyline.series{fill:none}
article.agent{border:1px solid var(--line);border-radius:8px;padding:10px 14px;margin:0 0 14px}
article.agent h3{margin:4px 0}
tr.outside td{background:#ffebe9}
.note{color:var(--muted)}
#page-errors{color:var(--bad);white-space:pre-wrap}
footer{color:var(--muted);padding:16px 32px;border-top:1px solid var(--line)}
"#;

/// The page's only script: filters, sorting, error capture and a self-check
/// (`#selfcheck`) that exercises the filters and records the outcome on
/// `<html>` for headless tests.
const SCRIPT: &str = r#"
(function () {
  'use strict';
  var root = document.documentElement;
  var errors = [];
  function record(message) {
    errors.push(String(message));
    root.setAttribute('data-errors', String(errors.length));
    var box = document.getElementById('page-errors');
    if (box) { box.textContent = errors.join('\n'); box.hidden = false; }
  }
  root.setAttribute('data-errors', '0');
  window.addEventListener('error', function (e) { record(e.message || 'script error'); });
  window.addEventListener('unhandledrejection', function (e) { record('unhandled rejection: ' + e.reason); });
  document.addEventListener('securitypolicyviolation', function (e) {
    record('blocked by the content security policy: ' + e.violatedDirective + ' ' + e.blockedURI);
  });
  var consoleError = console.error;
  console.error = function () { record(Array.prototype.join.call(arguments, ' ')); return consoleError.apply(console, arguments); };

  function all(selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); }
  var findings = all('details.finding');
  var items = all('[data-fp]');
  var severityBoxes = all('input.sev-toggle');
  var ruleSelect = document.getElementById('f-rule');
  var textInput = document.getElementById('f-text');
  var count = document.getElementById('f-count');

  function state() {
    var severities = {};
    severityBoxes.forEach(function (box) { severities[box.value] = box.checked; });
    return { severities: severities, rule: ruleSelect ? ruleSelect.value : '', text: textInput ? textInput.value.trim().toLowerCase() : '' };
  }
  function matches(el, s) {
    return s.severities[el.getAttribute('data-severity')] === true &&
      (!s.rule || el.getAttribute('data-rule') === s.rule) &&
      (!s.text || (el.getAttribute('data-text') || '').indexOf(s.text) >= 0);
  }
  function apply() {
    var s = state();
    var shown = 0;
    items.forEach(function (el) {
      var ok = matches(el, s);
      el.hidden = !ok;
      if (ok && el.tagName === 'DETAILS') { shown += 1; }
    });
    all('.rule-group, .sev-group').forEach(function (group) {
      group.hidden = !group.querySelector('details.finding:not([hidden])');
    });
    var empty = document.getElementById('f-empty');
    if (empty) { empty.hidden = shown > 0 || findings.length === 0; }
    if (count) { count.textContent = shown + ' of ' + findings.length + ' findings shown'; }
    root.setAttribute('data-visible-findings', String(shown));
    return shown;
  }
  function onlySeverities(list) {
    severityBoxes.forEach(function (box) { box.checked = list.indexOf(box.value) >= 0; });
  }
  severityBoxes.forEach(function (box) { box.addEventListener('change', apply); });
  if (ruleSelect) { ruleSelect.addEventListener('change', apply); }
  if (textInput) { textInput.addEventListener('input', apply); }
  all('button[data-only-severity]').forEach(function (button) {
    button.addEventListener('click', function () {
      onlySeverities([button.getAttribute('data-only-severity')]);
      apply();
      var target = document.getElementById('findings');
      if (target && target.scrollIntoView) { target.scrollIntoView(); }
    });
  });
  var reset = document.getElementById('f-reset');
  if (reset) {
    reset.addEventListener('click', function () {
      onlySeverities(severityBoxes.map(function (b) { return b.value; }));
      if (ruleSelect) { ruleSelect.value = ''; }
      if (textInput) { textInput.value = ''; }
      apply();
    });
  }
  all('button[data-expand]').forEach(function (button) {
    button.addEventListener('click', function () {
      var open = button.getAttribute('data-expand') === 'open';
      findings.forEach(function (d) { d.open = open; });
    });
  });
  all('tr[data-fp]').forEach(function (row) {
    row.addEventListener('click', function () {
      var card = document.getElementById('f-' + row.getAttribute('data-fp'));
      if (card) { card.open = true; if (card.scrollIntoView) { card.scrollIntoView(); } }
    });
  });

  // Sortable tables: click a header; severity sorts by rank.
  all('table.sortable').forEach(function (table) {
    var headers = all('#' + table.id + ' th[data-sort]');
    headers.forEach(function (th, index) {
      th.addEventListener('click', function () {
        var ascending = th.getAttribute('aria-sort') !== 'ascending';
        headers.forEach(function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var numeric = th.getAttribute('data-sort') === 'number';
        rows.sort(function (a, b) {
          var x = a.cells[index].getAttribute('data-key') || a.cells[index].textContent;
          var y = b.cells[index].getAttribute('data-key') || b.cells[index].textContent;
          var order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });

  function visible() { return findings.filter(function (d) { return !d.hidden; }); }
  function rendered() { return findings.filter(function (d) { return d.getClientRects().length > 0; }).length; }
  function selfcheck() {
    var ok = true;
    var problems = [];
    var severities = severityBoxes.map(function (b) { return b.value; });
    severities.forEach(function (severity) {
      onlySeverities([severity]);
      var shown = apply();
      var expected = findings.filter(function (d) { return d.getAttribute('data-severity') === severity; }).length;
      var wrong = visible().filter(function (d) { return d.getAttribute('data-severity') !== severity; }).length;
      var drawn = rendered();
      root.setAttribute('data-selfcheck-' + severity, String(shown));
      if (shown !== expected || wrong !== 0 || drawn !== shown) {
        ok = false;
        problems.push(severity + ': shown ' + shown + ', expected ' + expected + ', wrong ' + wrong + ', drawn ' + drawn);
      }
    });
    onlySeverities(severities);
    if (findings.length > 0 && ruleSelect) {
      var rule = findings[0].getAttribute('data-rule');
      ruleSelect.value = rule;
      var byRule = apply();
      var expectedRule = findings.filter(function (d) { return d.getAttribute('data-rule') === rule; }).length;
      if (byRule !== expectedRule) { ok = false; problems.push('rule ' + rule + ': shown ' + byRule + ', expected ' + expectedRule); }
      ruleSelect.value = '';
      var fp = findings[0].getAttribute('data-fp');
      textInput.value = fp;
      var byText = apply();
      if (byText !== 1) { ok = false; problems.push('text ' + fp + ': shown ' + byText); }
      textInput.value = '';
    }
    var total = apply();
    root.setAttribute('data-selfcheck-all', String(total));
    if (total !== findings.length) { ok = false; problems.push('all: shown ' + total + ' of ' + findings.length); }
    root.setAttribute('data-selfcheck', ok ? 'ok' : 'failed: ' + problems.join('; '));
  }

  apply();
  if (window.location.hash === '#selfcheck') {
    try { selfcheck(); } catch (e) { record('self-check: ' + e); root.setAttribute('data-selfcheck', 'failed: ' + e); }
  }
})();
"#;

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The page's Content-Security-Policy: nothing may load, only this script may run.
fn content_security_policy() -> String {
    let hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
    format!(
        "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
    )
}

fn page(title: &str, subtitle: &str, nav: &[(&str, &str)], body: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"accessgraph {}\">\n<link rel=\"icon\" href=\"data:,\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        content_security_policy(),
        env!("CARGO_PKG_VERSION"),
        esc(title)
    );
    let _ =
        write!(out, "<header class=\"top\"><h1>{}</h1><p class=\"meta\">{subtitle}</p></header>\n<nav>", esc(title));
    for (anchor, label) in nav {
        let _ = write!(out, "<a href=\"#{anchor}\">{label}</a>");
    }
    out.push_str("</nav>\n<main>\n<p id=\"page-errors\" hidden></p>\n");
    out.push_str(body);
    let _ = write!(
        out,
        "</main>\n<footer>Generated by accessgraph {} · self-contained: no network access, open it from disk.</footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    out
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn code(value: &str) -> String {
    format!("<code>{}</code>", esc(value))
}

/// Escaped prose where `backticked` spans (ids, as the rules write them)
/// become code; an unpaired backtick stays a backtick.
fn rich(value: &str) -> String {
    let parts: Vec<&str> = value.split('`').collect();
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        let closed = i + 1 < parts.len() || i % 2 == 0;
        match (i % 2 == 1, closed) {
            (true, true) => out.push_str(&code(part)),
            (true, false) => {
                out.push('`');
                out.push_str(&esc(part));
            }
            _ => out.push_str(&esc(part)),
        }
    }
    out
}

/// "12 h", "1 day", "28 days".
fn duration(hours: i64) -> String {
    match hours {
        h if h < 48 => format!("{h} h"),
        h if h / 24 == 1 => "1 day".into(),
        h => format!("{} days", h / 24),
    }
}

fn days(n: i64) -> String {
    if n == 1 { "1 day".into() } else { format!("{n} days") }
}

/// "Name" with the id beneath, or the id alone.
fn who(id: &str, labels: &BTreeMap<String, NodeLabel>) -> String {
    match labels.get(id) {
        Some(label) if !label.name.is_empty() && label.name != id => {
            format!("{} <br>{}", esc(&label.name), code(id))
        }
        _ => code(id),
    }
}

/// Figures where a rise is bad (true) or good (false); None: neutral.
fn rise_is_bad(label: &str) -> Option<bool> {
    match label {
        "Live credentials" | "Standing (never-expiring) secrets" | "Ownerless non-human identities" => Some(true),
        "Time-bound share of access" | "Systems under policy" => Some(false),
        _ => None,
    }
}

fn posture_rows(now: &Posture, before: Option<&Posture>) -> Vec<(&'static str, f64, Option<f64>, bool)> {
    let b = |f: fn(&Posture) -> f64| before.map(f);
    vec![
        ("People", now.people as f64, b(|p| p.people as f64), false),
        ("Non-human identities", now.non_human_identities as f64, b(|p| p.non_human_identities as f64), false),
        ("AI agents", now.agents as f64, b(|p| p.agents as f64), false),
        ("Live credentials", now.credentials as f64, b(|p| p.credentials as f64), false),
        ("Standing (never-expiring) secrets", now.standing_secrets as f64, b(|p| p.standing_secrets as f64), false),
        ("Ownerless non-human identities", now.ownerless as f64, b(|p| p.ownerless as f64), false),
        (
            "Effective access (principal, action, resource)",
            now.effective_access as f64,
            b(|p| p.effective_access as f64),
            false,
        ),
        ("Time-bound share of access", now.time_bound_share, b(|p| p.time_bound_share), true),
        ("Systems under policy", now.governed_systems as f64, b(|p| p.governed_systems as f64), false),
    ]
}

fn value(v: f64, percent: bool) -> String {
    if percent { format!("{:.1} %", v * 100.0) } else { format!("{v:.0}") }
}

fn posture_section(out: &mut String, report: &Report) {
    let _ = writeln!(out, "<section id=\"posture\"><h2>Posture</h2>");
    let _ = writeln!(
        out,
        "<table><thead><tr><th>Figure</th><th class=\"num\">Now</th><th class=\"num\">Previous snapshot</th><th class=\"num\">Change</th></tr></thead><tbody>"
    );
    for (label, now, before, percent) in posture_rows(&report.posture, report.previous_posture.as_ref()) {
        let (previous, change) = match before {
            None => ("—".to_string(), "—".to_string()),
            Some(before) => {
                let diff = now - before;
                let change = if diff.abs() < 1e-9 {
                    "no change".to_string()
                } else {
                    let direction = if diff > 0.0 { "up" } else { "down" };
                    let tone = match rise_is_bad(label) {
                        Some(bad) if bad == (diff > 0.0) => "bad",
                        Some(_) => "good",
                        None => "",
                    };
                    let arrow = if diff > 0.0 { "▲" } else { "▼" };
                    let amount = if percent { format!("{:+.1} pt", diff * 100.0) } else { format!("{diff:+.0}") };
                    format!("<span class=\"{direction} {tone}\">{arrow} {amount}</span>")
                };
                (value(before, percent), change)
            }
        };
        let _ = writeln!(
            out,
            "<tr><td>{label}</td><td class=\"num\">{}</td><td class=\"num\">{previous}</td><td class=\"num\">{change}</td></tr>",
            value(now, percent)
        );
    }
    if let Some(days) = report.posture.oldest_standing_secret_days {
        let _ = writeln!(
            out,
            "<tr><td>Oldest standing secret</td><td class=\"num\">{days} days</td><td></td><td></td></tr>"
        );
    }
    let _ = writeln!(out, "</tbody></table></section>");
}

fn summary_cards(out: &mut String, report: &Report) {
    let _ = writeln!(out, "<section id=\"summary\"><div class=\"cards\">");
    for severity in SEVERITIES {
        let s = severity.as_str();
        let n = report.counts.by_severity.get(s).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "<button type=\"button\" class=\"card sev-{s}\" data-only-severity=\"{s}\" title=\"Show only {s} findings\"><span class=\"n\">{n}</span>{s}</button>"
        );
    }
    let _ = writeln!(
        out,
        "<div class=\"card\"><span class=\"n\">{}</span>open findings</div><div class=\"card\"><span class=\"n\">{}</span>muted</div><div class=\"card\"><span class=\"n\">{}</span>resolved since last snapshot</div>",
        report.counts.open, report.counts.muted, report.counts.resolved
    );
    let _ = writeln!(out, "</div></section>");
}

fn trend_section(out: &mut String, report: &Report) {
    if report.trend.is_empty() {
        return;
    }
    let _ = writeln!(out, "<section id=\"trend\"><h2>Trend over past snapshots</h2>");
    if report.trend.len() == 1 {
        let _ = writeln!(out, "<p class=\"note\">One snapshot so far: the charts grow with every scan.</p>");
    } else {
        let _ = writeln!(out, "<p class=\"note\">{} snapshots, oldest on the left.</p>", report.trend.len());
    }
    let _ = writeln!(out, "<div class=\"charts\">");
    let mut findings = vec![Series {
        name: "open".into(),
        class: "s-total",
        points: report.trend.iter().filter_map(|p| Some((p.at, p.findings_open? as f64))).collect(),
    }];
    for (severity, class) in [("critical", "s-critical"), ("high", "s-high"), ("medium", "s-medium"), ("low", "s-low")]
    {
        findings.push(Series {
            name: severity.into(),
            class,
            points: report
                .trend
                .iter()
                .filter(|p| {
                    (p.findings_open.is_some() && !p.findings_open_by_severity.is_empty()) || p.findings_open == Some(0)
                })
                .map(|p| (p.at, p.findings_open_by_severity.get(severity).copied().unwrap_or(0) as f64))
                .collect(),
        });
    }
    out.push_str(&svg::line_chart("Open findings", &findings, false));
    type Figure = fn(&Posture) -> f64;
    let figures: [(&str, Figure, bool); 6] = [
        ("Standing secrets", |p| p.standing_secrets as f64, false),
        ("Ownerless non-human identities", |p| p.ownerless as f64, false),
        ("Live credentials", |p| p.credentials as f64, false),
        ("Time-bound share of access", |p| p.time_bound_share, true),
        ("AI agents", |p| p.agents as f64, false),
        ("Effective access", |p| p.effective_access as f64, false),
    ];
    for (title, figure, percent) in figures {
        let series = Series {
            name: title.into(),
            class: "s-figure",
            points: report.trend.iter().filter_map(|p| Some((p.at, figure(p.posture.as_ref()?)))).collect(),
        };
        out.push_str(&svg::line_chart(title, &[series], percent));
    }
    let _ = writeln!(out, "</div></section>");
}

fn access_table(out: &mut String, title: &str, rows: &[&Triple], labels: &BTreeMap<String, NodeLabel>) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<h3>{title} ({})</h3><table><thead><tr><th>Principal</th><th>Action</th><th>Resource</th></tr></thead><tbody>",
        rows.len()
    );
    for (principal, resource, action) in rows {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            who(principal, labels),
            code(action),
            who(resource, labels)
        );
    }
    let _ = writeln!(out, "</tbody></table>");
}

fn credential_table(out: &mut String, title: &str, rows: &[CredentialChange]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<h3>{title} ({})</h3><table><thead><tr><th>Credential</th><th>Type</th><th>Held by</th><th>Issued</th><th>Expires</th><th>Note</th></tr></thead><tbody>",
        rows.len()
    );
    for change in rows {
        let holders: Vec<String> = change.holders.iter().map(|h| code(h)).collect();
        let _ = writeln!(
            out,
            "<tr><td>{}<br>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&change.name),
            code(&change.id),
            esc(change.kind.as_deref().unwrap_or("")),
            holders.join("<br>"),
            change.issued_at.map(time).unwrap_or_default(),
            change.expires_at.map(time).unwrap_or_else(|| "never".into()),
            esc(change.note.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(out, "</tbody></table>");
}

fn identity_table(out: &mut String, title: &str, rows: &[IdentityChange]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<h3>{title} ({})</h3><table><thead><tr><th>Identity</th><th>Kind</th><th>Source</th><th>Owner</th></tr></thead><tbody>",
        rows.len()
    );
    for change in rows {
        let _ = writeln!(
            out,
            "<tr><td>{}<br>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&change.name),
            code(&change.id),
            esc(&change.kind),
            esc(&change.source),
            change.owner.as_deref().map(esc).unwrap_or_else(|| "<span class=\"badge warn\">none</span>".into())
        );
    }
    let _ = writeln!(out, "</tbody></table>");
}

fn changes_section(out: &mut String, report: &Report) {
    let _ = writeln!(out, "<section id=\"changes\"><h2>What changed since last time</h2>");
    let Some(previous) = report.previous_snapshot else {
        let _ = writeln!(out, "<p class=\"note\">First snapshot: nothing to compare with yet.</p></section>");
        return;
    };
    let _ = writeln!(out, "<p class=\"note\">Compared with the snapshot of {}.</p>", time(previous));
    let widened: BTreeSet<&Triple> = report.access_widened.iter().collect();
    let added: Vec<&Triple> = report.access_added.iter().filter(|t| !widened.contains(t)).collect();
    if report.access_added.is_empty() && report.access_removed.is_empty() && report.inventory.is_empty() {
        let _ = writeln!(out, "<p>No change in effective access, credentials or non-human identities.</p>");
    }
    access_table(out, "Access added", &added, &report.labels);
    access_table(out, "Access widened", &report.access_widened.iter().collect::<Vec<_>>(), &report.labels);
    access_table(out, "Access removed", &report.access_removed.iter().collect::<Vec<_>>(), &report.labels);
    let inventory = &report.inventory;
    credential_table(out, "Credentials created", &inventory.credentials_created);
    credential_table(out, "Credentials rotated", &inventory.credentials_rotated);
    credential_table(out, "Credentials gone", &inventory.credentials_gone);
    identity_table(out, "Agents and non-human identities appeared", &inventory.identities_appeared);
    identity_table(out, "Agents and non-human identities disappeared", &inventory.identities_disappeared);
    let _ = writeln!(out, "</section>");
}

fn severity_rank(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 4,
        Severity::High => 3,
        Severity::Medium => 2,
        Severity::Low => 1,
    }
}

/// Lower-case text the search box matches against.
fn search_text(finding: &Finding, labels: &BTreeMap<String, NodeLabel>) -> String {
    let mut text = format!(
        "{} {} {} {} {} {}",
        finding.fingerprint,
        finding.rule,
        finding.severity.as_str(),
        finding.subject,
        finding.object,
        finding.title
    );
    for id in [&finding.subject, &finding.object] {
        if let Some(label) = labels.get(id) {
            text.push(' ');
            text.push_str(&label.name);
        }
    }
    esc(&text.to_lowercase())
}

fn finding_card(
    out: &mut String,
    finding: &Finding,
    labels: &BTreeMap<String, NodeLabel>,
    edges: &BTreeMap<(String, String), String>,
) {
    let s = finding.severity.as_str();
    let open = if finding.severity >= Severity::High { " open" } else { "" };
    let status = match finding.status {
        FindingStatus::Open => String::new(),
        other => format!(" <span class=\"badge muted\">{}</span>", other.as_str()),
    };
    let _ = writeln!(
        out,
        "<details class=\"finding sev-{s}\" id=\"f-{fp}\" data-fp=\"{fp}\" data-severity=\"{s}\" data-rule=\"{rule}\" data-text=\"{text}\"{open}>",
        fp = esc(&finding.fingerprint),
        rule = esc(&finding.rule),
        text = search_text(finding, labels),
    );
    let _ = writeln!(
        out,
        "<summary><span class=\"badge {s}\">{s}</span> <strong class=\"title\">{}</strong>{status}</summary>",
        rich(&finding.title)
    );
    let _ = writeln!(
        out,
        "<dl class=\"kv\"><dt>Rule</dt><dd>{}</dd><dt>Subject</dt><dd>{}</dd><dt>Object</dt><dd>{}</dd><dt>Seen</dt><dd>first {} · last {}</dd><dt>Fingerprint</dt><dd>{}</dd></dl>",
        code(&finding.rule),
        who(&finding.subject, labels),
        who(&finding.object, labels),
        time(finding.first_seen),
        time(finding.last_seen),
        code(&finding.fingerprint)
    );
    let _ = writeln!(out, "<p>{}</p>", rich(&finding.detail));
    if !finding.evidence.is_empty() {
        let _ = writeln!(
            out,
            "<h4>Evidence</h4><div class=\"figure-svg\">{}</div>",
            svg::evidence(&finding.evidence, labels, edges, &finding.fingerprint)
        );
        let _ = writeln!(out, "<ul class=\"evidence-text\">");
        for path in &finding.evidence {
            let hops: Vec<String> = path.iter().map(|id| code(id)).collect();
            let _ = writeln!(out, "<li>{}</li>", hops.join(" → "));
        }
        let _ = writeln!(out, "</ul>");
    }
    let _ = writeln!(out, "<p class=\"remediation\"><strong>Remediation:</strong> {}</p>", rich(&finding.remediation));
    let _ = writeln!(out, "</details>");
}

/// The filter bar, the sortable overview table and the grouped cards.
fn findings_section(
    out: &mut String,
    current: &[&Finding],
    resolved: &[&Finding],
    labels: &BTreeMap<String, NodeLabel>,
    edges: &BTreeMap<(String, String), String>,
) {
    let _ = writeln!(out, "<section id=\"findings\"><h2>Findings ({})</h2>", current.len());
    let rules: BTreeSet<&str> = current.iter().map(|f| f.rule.as_str()).collect();
    let _ = write!(out, "<div class=\"controls\" role=\"search\"><span>Severity:</span>");
    for severity in SEVERITIES {
        let s = severity.as_str();
        let n = current.iter().filter(|f| f.severity == severity).count();
        let _ = write!(
            out,
            "<label><input type=\"checkbox\" class=\"sev-toggle\" id=\"sev-{s}\" value=\"{s}\" checked> <span class=\"badge {s}\">{s}</span> {n}</label>"
        );
    }
    let _ = write!(out, "<label>Rule: <select id=\"f-rule\"><option value=\"\">all rules</option>");
    for rule in &rules {
        let n = current.iter().filter(|f| f.rule == *rule).count();
        let _ = write!(out, "<option value=\"{r}\">{r} ({n})</option>", r = esc(rule));
    }
    let _ = writeln!(
        out,
        "</select></label><label>Search: <input type=\"search\" id=\"f-text\" placeholder=\"id, name, fingerprint, title\"></label><button type=\"button\" id=\"f-reset\">Reset</button><button type=\"button\" data-expand=\"open\">Expand all</button><button type=\"button\" data-expand=\"close\">Collapse all</button><span id=\"f-count\" aria-live=\"polite\">{n} of {n} findings shown</span></div>",
        n = current.len()
    );
    if current.is_empty() {
        let _ = writeln!(out, "<p>No findings.</p>");
    }
    let _ = writeln!(out, "<p id=\"f-empty\" class=\"note\" hidden>No finding matches the filters.</p>");
    if !current.is_empty() {
        let _ = writeln!(
            out,
            "<table id=\"findings-table\" class=\"sortable\"><thead><tr><th data-sort=\"number\">Severity</th><th data-sort=\"text\">Rule</th><th data-sort=\"text\">Subject</th><th data-sort=\"text\">Object</th><th data-sort=\"text\">Title</th><th data-sort=\"text\">First seen</th></tr></thead><tbody>"
        );
        for finding in current {
            let s = finding.severity.as_str();
            let _ = writeln!(
                out,
                "<tr data-fp=\"{fp}\" data-severity=\"{s}\" data-rule=\"{rule}\" data-text=\"{text}\"><td data-key=\"{rank}\"><span class=\"badge {s}\">{s}</span></td><td class=\"nowrap\">{rulecode}</td><td>{subject}</td><td>{object}</td><td>{title}</td><td data-key=\"{first}\">{first_h}</td></tr>",
                fp = esc(&finding.fingerprint),
                rule = esc(&finding.rule),
                text = search_text(finding, labels),
                rank = severity_rank(finding.severity),
                rulecode = code(&finding.rule),
                subject = code(&finding.subject),
                object = code(&finding.object),
                title = rich(&finding.title),
                first = finding.first_seen.to_rfc3339(),
                first_h = time(finding.first_seen),
            );
        }
        let _ = writeln!(out, "</tbody></table>");
    }
    for (severity, rules) in super::group(current.iter().copied()) {
        let s = severity.as_str();
        let total: usize = rules.iter().map(|(_, list)| list.len()).sum();
        let _ = writeln!(
            out,
            "<section class=\"sev-group\" data-severity=\"{s}\"><h3><span class=\"badge {s}\">{s}</span> {total} finding{}</h3>",
            if total == 1 { "" } else { "s" }
        );
        for (rule, list) in rules {
            let _ = writeln!(
                out,
                "<div class=\"rule-group\" data-rule=\"{r}\"><h4>{} ({})</h4>",
                code(&rule),
                list.len(),
                r = esc(&rule)
            );
            for finding in list {
                finding_card(out, finding, labels, edges);
            }
            let _ = writeln!(out, "</div>");
        }
        let _ = writeln!(out, "</section>");
    }
    if !resolved.is_empty() {
        let _ = writeln!(
            out,
            "<h3>Resolved since the last snapshot ({})</h3><table><thead><tr><th>Rule</th><th>Title</th><th>Fingerprint</th></tr></thead><tbody>",
            resolved.len()
        );
        for finding in resolved {
            let _ = writeln!(
                out,
                "<tr class=\"resolved\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                code(&finding.rule),
                esc(&finding.title),
                code(&finding.fingerprint)
            );
        }
        let _ = writeln!(out, "</tbody></table>");
    }
    let _ = writeln!(out, "</section>");
}

fn agent_card(out: &mut String, entry: &CatalogEntry) {
    let expired = if entry.expired { " <span class=\"badge warn\">record expired</span>" } else { "" };
    let findings = if entry.open_findings > 0 {
        format!(" <span class=\"badge warn\">{} open findings</span>", entry.open_findings)
    } else {
        " <span class=\"badge ok\">no open findings</span>".to_string()
    };
    let _ = writeln!(
        out,
        "<article class=\"agent\" data-agent=\"{id}\"><h3>{id} <span class=\"badge neutral\">{tier} tier</span>{expired}{findings}</h3>",
        id = esc(&entry.id),
        tier = esc(&entry.tier)
    );
    if let Some(purpose) = &entry.purpose {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(purpose));
    }
    let owner = match &entry.owner {
        None => "<span class=\"badge warn\">no owner</span>".to_string(),
        Some(owner) if entry.owner_status == "active" => esc(owner),
        Some(owner) => format!("{} <span class=\"badge warn\">{}</span>", esc(owner), entry.owner_status),
    };
    let controller = entry.controller.as_deref().map(esc).unwrap_or_else(|| "—".into());
    let allowed = entry.allowed_systems.as_ref().map(|s| esc(&s.join(", "))).unwrap_or_else(|| "any".into());
    let _ = writeln!(
        out,
        "<dl class=\"kv\"><dt>Owner</dt><dd>{owner}</dd><dt>Controller</dt><dd>{controller}{}</dd><dt>Allowed systems</dt><dd>{allowed}</dd><dt>Record expires</dt><dd>{}</dd><dt>Credential limit</dt><dd>{}</dd><dt>Identities</dt><dd>{}</dd></dl>",
        if entry.dual_control { " (dual control required)" } else { "" },
        entry.expires.map(|d| d.to_string()).unwrap_or_else(|| "never".into()),
        days(i64::from(entry.tier_max_credential_days)),
        entry
            .identities
            .iter()
            .map(|i| if i.present {
                let inactive = if i.active { "" } else { " <span class=\"badge muted\">inactive</span>" };
                format!("{}{inactive}", code(&i.id))
            } else {
                format!("{} <span class=\"badge muted\">not seen</span>", code(&i.id))
            })
            .collect::<Vec<_>>()
            .join("<br>")
    );
    if entry.reaches.is_empty() {
        let _ = writeln!(out, "<p class=\"note\">Reaches nothing.</p>");
    } else {
        let _ = writeln!(
            out,
            "<h4>What it reaches ({})</h4><table><thead><tr><th>Resource</th><th>System</th><th>Actions</th><th>Until</th><th>As</th></tr></thead><tbody>",
            entry.reaches.len()
        );
        for reach in &entry.reaches {
            let outside = if reach.allowed { "" } else { " class=\"outside\"" };
            let flag = if reach.allowed { "" } else { " <span class=\"badge warn\">outside allowed systems</span>" };
            let _ = writeln!(
                out,
                "<tr{outside}><td>{}<br>{}</td><td>{}{flag}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&reach.resource_name),
                code(&reach.resource),
                esc(&reach.system),
                esc(&reach.actions.join(", ")),
                reach.expires_at.map(time).unwrap_or_else(|| "standing".into()),
                code(&reach.identity)
            );
        }
        let _ = writeln!(out, "</tbody></table>");
    }
    if entry.credentials.is_empty() {
        let _ = writeln!(out, "<p class=\"note\">Holds no credentials.</p>");
    } else {
        let _ = writeln!(
            out,
            "<h4>Credentials ({})</h4><table><thead><tr><th>Credential</th><th>Type</th><th class=\"num\">Age</th><th>Expires</th><th class=\"num\">Lifetime</th><th>Last used</th></tr></thead><tbody>",
            entry.credentials.len()
        );
        for credential in &entry.credentials {
            let over =
                if credential.over_tier_limit { " <span class=\"badge warn\">over tier limit</span>" } else { "" };
            let _ = writeln!(
                out,
                "<tr><td>{}<br>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}{over}</td><td>{}</td></tr>",
                esc(&credential.name),
                code(&credential.id),
                esc(credential.kind.as_deref().unwrap_or("")),
                credential.age_days.map(days).unwrap_or_else(|| "unknown".into()),
                credential.expires_at.map(time).unwrap_or_else(|| "never".into())
                    + if credential.expired { " <span class=\"badge muted\">expired</span>" } else { "" },
                credential.lifetime_hours.map(duration).unwrap_or_else(|| "—".into()),
                esc(&credential.last_used)
            );
        }
        let _ = writeln!(out, "</tbody></table>");
    }
    let _ = writeln!(out, "</article>");
}

fn catalog_section(out: &mut String, report: &Report) {
    let _ = writeln!(out, "<section id=\"catalog\"><h2>Agent catalog ({} records)</h2>", report.catalog.len());
    if report.catalog.is_empty() {
        let _ = writeln!(out, "<p class=\"note\">No catalog is configured (<code>[catalog] path</code>).</p>");
    }
    let _ = writeln!(out, "<div class=\"agents\">");
    for entry in &report.catalog {
        agent_card(out, entry);
    }
    let _ = writeln!(out, "</div>");
    if !report.uncatalogued.is_empty() {
        let _ = writeln!(
            out,
            "<h3>Not in the catalog ({})</h3><table><thead><tr><th>Identity</th><th>Kind</th><th>Source</th><th>Owner in source</th><th class=\"num\">Accesses</th><th class=\"num\">Credentials</th></tr></thead><tbody>",
            report.uncatalogued.len()
        );
        for shadow in &report.uncatalogued {
            let _ = writeln!(
                out,
                "<tr><td>{}<br>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&shadow.name),
                code(&shadow.id),
                esc(&shadow.kind),
                esc(&shadow.source),
                shadow.owner.as_deref().map(esc).unwrap_or_else(|| "<span class=\"badge warn\">none</span>".into()),
                shadow.reaches,
                shadow.credentials
            );
        }
        let _ = writeln!(out, "</tbody></table>");
    }
    let _ = writeln!(out, "</section>");
}

fn sources_section(out: &mut String, report: &Report) {
    if report.sources.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<section id=\"sources\"><h2>Sources</h2><table><thead><tr><th>Source</th><th>Kind</th><th>Sync</th><th class=\"num\">Nodes</th><th class=\"num\">Edges</th><th class=\"num\">Opened</th><th class=\"num\">Closed</th></tr></thead><tbody>"
    );
    for source in &report.sources {
        let status = match &source.error {
            Some(error) => format!("<span class=\"badge warn\">failed</span> {} (previous data kept)", esc(error)),
            None => "<span class=\"badge ok\">ok</span>".to_string(),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{status}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&source.name),
            esc(&source.kind),
            source.stats.nodes,
            source.stats.edges,
            source.stats.opened,
            source.stats.closed
        );
    }
    let _ = writeln!(out, "</tbody></table></section>");
}

/// The whole report as one page.
pub(super) fn render(report: &Report) -> String {
    let mut body = String::new();
    summary_cards(&mut body, report);
    posture_section(&mut body, report);
    trend_section(&mut body, report);
    changes_section(&mut body, report);
    let current: Vec<&Finding> = report.findings.iter().filter(|f| f.status != FindingStatus::Resolved).collect();
    findings_section(&mut body, &current, &report.resolved(), &report.labels, &report.edge_labels);
    catalog_section(&mut body, report);
    sources_section(&mut body, report);
    let subtitle = match report.previous_snapshot {
        Some(at) => format!("Evaluated at {}; compared with the snapshot of {}.", time(report.generated_at), time(at)),
        None => format!("Evaluated at {}; first snapshot.", time(report.generated_at)),
    };
    let mut nav = vec![("posture", "Posture")];
    if !report.trend.is_empty() {
        nav.push(("trend", "Trend"));
    }
    nav.extend([("changes", "What changed"), ("findings", "Findings"), ("catalog", "Agent catalog")]);
    if !report.sources.is_empty() {
        nav.push(("sources", "Sources"));
    }
    page("accessgraph drift report", &subtitle, &nav, &body)
}

/// Stored findings (the `findings` command) as a filterable page.
pub fn findings_page(findings: &[Finding], now: DateTime<Utc>) -> String {
    let current: Vec<&Finding> = findings.iter().filter(|f| f.status != FindingStatus::Resolved).collect();
    let resolved: Vec<&Finding> = findings.iter().filter(|f| f.status == FindingStatus::Resolved).collect();
    let mut body = String::new();
    findings_section(&mut body, &current, &resolved, &BTreeMap::new(), &BTreeMap::new());
    page("accessgraph findings", &format!("Listed at {}.", time(now)), &[("findings", "Findings")], &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticks_become_code_and_stay_escaped() {
        assert_eq!(rich("a `<b>` c"), "a <code>&lt;b&gt;</code> c");
        assert_eq!(rich("odd ` tick"), "odd ` tick");
        assert_eq!(rich("`x` and `y"), "<code>x</code> and `y");
        assert_eq!((duration(12), duration(24 * 28), days(1)), ("12 h".into(), "28 days".into(), "1 day".into()));
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (input, expected) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_script() {
        let policy = content_security_policy();
        let expected = base64(&Sha256::digest(SCRIPT.as_bytes()));
        assert!(policy.starts_with(&format!("default-src 'none'; script-src 'sha256-{expected}';")), "{policy}");
        assert!(!policy.contains("script-src 'unsafe-inline'"));
    }

    #[test]
    fn remote_text_is_escaped_everywhere_in_a_findings_page() {
        let now = Utc::now();
        let evil = "<img src=x onerror=alert(1)>";
        let finding = Finding::new(
            "drift.policy",
            Severity::High,
            format!("s:user:{evil}"),
            format!("s:repo:{evil}\"'"),
            format!("title {evil}"),
            format!("detail {evil}"),
            format!("fix {evil}"),
            vec![vec![format!("s:user:{evil}"), format!("s:repo:{evil}\"'")]],
            now,
        );
        let page = findings_page(&[finding], now);
        assert!(!page.contains("<img"), "no tag from remote text survives");
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!page.contains("\"'\""), "quotes in ids cannot close attributes");
    }
}
