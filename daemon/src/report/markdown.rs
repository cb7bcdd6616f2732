//! The Markdown drift report.

use super::Report;
use accessgraph_graph::{Finding, FindingStatus, Posture, Severity};
use std::fmt::Write;

/// Neutralises text from remote systems inside Markdown: no tags, no table
/// breaks, no control characters.
fn text(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control() || *c == ' ')
        .map(|c| match c {
            '<' => '‹',
            '>' => '›',
            '|' => '¦',
            c => c,
        })
        .collect()
}

fn delta(now: f64, before: Option<f64>, percent: bool) -> String {
    let fmt = |v: f64| if percent { format!("{:.1} %", v * 100.0) } else { format!("{v}") };
    match before {
        Some(before) if (before - now).abs() > f64::EPSILON => {
            let sign = if now > before { "+" } else { "" };
            let change = if percent {
                format!("{sign}{:.1} pt", (now - before) * 100.0)
            } else {
                format!("{sign}{}", now - before)
            };
            format!("{} ({change})", fmt(now))
        }
        _ => fmt(now),
    }
}

fn posture_rows(out: &mut String, now: &Posture, before: Option<&Posture>) {
    let rows: [(&str, f64, Option<f64>, bool); 9] = [
        ("People", now.people as f64, before.map(|b| b.people as f64), false),
        ("Non-human identities", now.non_human_identities as f64, before.map(|b| b.non_human_identities as f64), false),
        ("AI agents", now.agents as f64, before.map(|b| b.agents as f64), false),
        ("Live credentials", now.credentials as f64, before.map(|b| b.credentials as f64), false),
        (
            "Standing (never-expiring) secrets",
            now.standing_secrets as f64,
            before.map(|b| b.standing_secrets as f64),
            false,
        ),
        ("Ownerless non-human identities", now.ownerless as f64, before.map(|b| b.ownerless as f64), false),
        (
            "Effective access (principal, action, resource)",
            now.effective_access as f64,
            before.map(|b| b.effective_access as f64),
            false,
        ),
        ("Time-bound share of access", now.time_bound_share, before.map(|b| b.time_bound_share), true),
        ("Systems under policy", now.governed_systems as f64, before.map(|b| b.governed_systems as f64), false),
    ];
    let _ = writeln!(out, "| Figure | Value |\n|---|---|");
    for (label, value, previous, percent) in rows {
        let _ = writeln!(out, "| {label} | {} |", delta(value, previous, percent));
    }
    if let Some(days) = now.oldest_standing_secret_days {
        let _ = writeln!(out, "| Oldest standing secret | {days} days |");
    }
}

fn finding_block(out: &mut String, finding: &Finding) {
    let status = match finding.status {
        FindingStatus::Open => "",
        FindingStatus::Muted => " _(muted)_",
        FindingStatus::Resolved => " _(resolved)_",
    };
    let _ = writeln!(out, "#### {}{status}\n", text(&finding.title));
    let _ = writeln!(
        out,
        "- **Rule:** `{}` · **Severity:** {} · **Fingerprint:** `{}`",
        finding.rule,
        finding.severity.as_str(),
        finding.fingerprint
    );
    let _ = writeln!(out, "- **Subject:** `{}` · **Object:** `{}`", text(&finding.subject), text(&finding.object));
    let _ = writeln!(
        out,
        "- **First seen:** {} · **Last seen:** {}",
        finding.first_seen.format("%Y-%m-%d %H:%M UTC"),
        finding.last_seen.format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(out, "\n{}\n", text(&finding.detail));
    if !finding.evidence.is_empty() {
        let _ = writeln!(out, "Evidence:");
        for path in &finding.evidence {
            let hops: Vec<String> = path.iter().map(|id| format!("`{}`", text(id))).collect();
            let _ = writeln!(out, "- {}", hops.join(" → "));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "**Remediation:** {}\n", text(&finding.remediation));
}

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# accessgraph drift report\n");
    let _ = write!(out, "Evaluated at {}", report.generated_at.format("%Y-%m-%d %H:%M:%S UTC"));
    match report.previous_snapshot {
        Some(at) => {
            let _ = writeln!(out, "; compared with the snapshot of {}.\n", at.format("%Y-%m-%d %H:%M:%S UTC"));
        }
        None => {
            let _ = writeln!(out, "; first snapshot (nothing to compare with).\n");
        }
    }
    let _ = writeln!(
        out,
        "**{} open findings** ({} critical, {} high, {} medium, {} low); {} muted; {} resolved since the last snapshot.\n",
        report.counts.open,
        report.counts.by_severity.get("critical").unwrap_or(&0),
        report.counts.by_severity.get("high").unwrap_or(&0),
        report.counts.by_severity.get("medium").unwrap_or(&0),
        report.counts.by_severity.get("low").unwrap_or(&0),
        report.counts.muted,
        report.counts.resolved,
    );
    if !report.sources.is_empty() {
        let _ = writeln!(
            out,
            "## Sources\n\n| Source | Kind | Sync | Nodes | Edges | Opened | Closed |\n|---|---|---|---|---|---|---|"
        );
        for source in &report.sources {
            let status = match &source.error {
                Some(error) => format!("**failed**: {} (previous data kept)", text(error)),
                None => "ok".to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {status} | {} | {} | {} | {} |",
                text(&source.name),
                source.kind,
                source.stats.nodes,
                source.stats.edges,
                source.stats.opened,
                source.stats.closed
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Posture\n");
    posture_rows(&mut out, &report.posture, report.previous_posture.as_ref());
    out.push('\n');
    if report.previous_snapshot.is_some() {
        let _ = writeln!(out, "## What changed since last time\n");
        if report.access_added.is_empty() && report.access_removed.is_empty() {
            let _ = writeln!(out, "No change in effective access.\n");
        }
        for (label, list) in [("Added", &report.access_added), ("Removed", &report.access_removed)] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(out, "**{label}** ({}):\n", list.len());
            for (principal, resource, action) in list.iter().take(50) {
                let _ = writeln!(out, "- `{}` {} `{}`", text(principal), text(action), text(resource));
            }
            if list.len() > 50 {
                let _ = writeln!(out, "- … and {} more", list.len() - 50);
            }
            out.push('\n');
        }
    }
    let _ = writeln!(out, "## Findings\n");
    if report.findings.is_empty() {
        let _ = writeln!(out, "No findings.");
    }
    for severity in [Severity::Critical, Severity::High, Severity::Medium, Severity::Low] {
        let group: Vec<&Finding> =
            report.findings.iter().filter(|f| f.severity == severity && f.status != FindingStatus::Resolved).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {} ({})\n", severity.as_str().to_uppercase(), group.len());
        for finding in group {
            finding_block(&mut out, finding);
        }
    }
    let resolved: Vec<&Finding> = report.findings.iter().filter(|f| f.status == FindingStatus::Resolved).collect();
    if !resolved.is_empty() {
        let _ = writeln!(out, "### Resolved since the last snapshot ({})\n", resolved.len());
        for finding in resolved {
            let _ = writeln!(out, "- `{}` {} (`{}`)", finding.rule, text(&finding.title), finding.fingerprint);
        }
    }
    out
}
