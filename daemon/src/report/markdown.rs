//! The Markdown drift report.

use super::{Report, Triple};
use accessgraph_graph::diff::{CredentialChange, IdentityChange};
use accessgraph_graph::{Finding, FindingStatus, Posture};
use std::collections::BTreeSet;
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
    let _ = writeln!(out, "##### {}{status}\n", text(&finding.title));
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
        what_changed(&mut out, report);
    }
    catalog(&mut out, report);
    let _ = writeln!(out, "## Findings\n");
    if report.findings.is_empty() {
        let _ = writeln!(out, "No findings.");
    }
    for (severity, rules) in report.grouped() {
        let total: usize = rules.iter().map(|(_, list)| list.len()).sum();
        let _ = writeln!(out, "### {} ({total})\n", severity.as_str().to_uppercase());
        for (rule, list) in rules {
            let _ = writeln!(out, "#### `{rule}` ({})\n", list.len());
            for finding in list {
                finding_block(&mut out, finding);
            }
        }
    }
    let resolved = report.resolved();
    if !resolved.is_empty() {
        let _ = writeln!(out, "### Resolved since the last snapshot ({})\n", resolved.len());
        for finding in resolved {
            let _ = writeln!(out, "- `{}` {} (`{}`)", finding.rule, text(&finding.title), finding.fingerprint);
        }
    }
    out
}

/// At most this many rows per change list; the JSON report has them all.
const LIST_LIMIT: usize = 50;

fn access_list(out: &mut String, label: &str, list: &[&Triple]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "**{label}** ({}):\n", list.len());
    for (principal, resource, action) in list.iter().take(LIST_LIMIT) {
        let _ = writeln!(out, "- `{}` {} `{}`", text(principal), text(action), text(resource));
    }
    if list.len() > LIST_LIMIT {
        let _ = writeln!(out, "- … and {} more", list.len() - LIST_LIMIT);
    }
    out.push('\n');
}

fn credential_list(out: &mut String, label: &str, list: &[CredentialChange]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "**{label}** ({}):\n", list.len());
    for change in list.iter().take(LIST_LIMIT) {
        let holders: Vec<String> = change.holders.iter().map(|h| format!("`{}`", text(h))).collect();
        let mut line = format!("- `{}` {}", text(&change.id), text(&change.name));
        if let Some(kind) = &change.kind {
            let _ = write!(line, " ({})", text(kind));
        }
        if !holders.is_empty() {
            let _ = write!(line, ", held by {}", holders.join(", "));
        }
        match change.expires_at {
            Some(at) => {
                let _ = write!(line, ", expires {}", at.format("%Y-%m-%d"));
            }
            None => line.push_str(", never expires"),
        }
        if let Some(note) = &change.note {
            let _ = write!(line, " — {}", text(note));
        }
        let _ = writeln!(out, "{line}");
    }
    if list.len() > LIST_LIMIT {
        let _ = writeln!(out, "- … and {} more", list.len() - LIST_LIMIT);
    }
    out.push('\n');
}

fn identity_list(out: &mut String, label: &str, list: &[IdentityChange]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "**{label}** ({}):\n", list.len());
    for change in list.iter().take(LIST_LIMIT) {
        let owner = change.owner.as_deref().map(|o| format!(", owner {}", text(o))).unwrap_or_default();
        let _ = writeln!(out, "- `{}` {} ({}{owner})", text(&change.id), text(&change.name), change.kind);
    }
    if list.len() > LIST_LIMIT {
        let _ = writeln!(out, "- … and {} more", list.len() - LIST_LIMIT);
    }
    out.push('\n');
}

fn what_changed(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## What changed since last time\n");
    let widened: BTreeSet<&Triple> = report.access_widened.iter().collect();
    let added: Vec<&Triple> = report.access_added.iter().filter(|t| !widened.contains(t)).collect();
    let inventory = &report.inventory;
    if report.access_added.is_empty() && report.access_removed.is_empty() {
        let _ = writeln!(out, "No change in effective access.\n");
    }
    access_list(out, "Access added", &added);
    access_list(out, "Access widened", &report.access_widened.iter().collect::<Vec<_>>());
    access_list(out, "Access removed", &report.access_removed.iter().collect::<Vec<_>>());
    if inventory.is_empty() {
        let _ = writeln!(out, "No credential created, rotated or gone; no agent appeared or disappeared.\n");
    }
    credential_list(out, "Credentials created", &inventory.credentials_created);
    credential_list(out, "Credentials rotated", &inventory.credentials_rotated);
    credential_list(out, "Credentials gone", &inventory.credentials_gone);
    identity_list(out, "Agents and other non-human identities appeared", &inventory.identities_appeared);
    identity_list(out, "Agents and other non-human identities disappeared", &inventory.identities_disappeared);
}

fn catalog(out: &mut String, report: &Report) {
    if report.catalog.is_empty() && report.uncatalogued.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Agent catalog\n");
    if !report.catalog.is_empty() {
        let _ = writeln!(
            out,
            "| Agent | Owner | Tier | Allowed systems | Reaches | Outside allowed | Credentials (oldest) | Open findings |\n|---|---|---|---|---|---|---|---|"
        );
    }
    for entry in &report.catalog {
        let owner = match (&entry.owner, entry.owner_status) {
            (Some(owner), "active") => text(owner),
            (Some(owner), status) => format!("{} ({status})", text(owner)),
            (None, _) => "**none**".into(),
        };
        let allowed = entry.allowed_systems.as_ref().map(|s| text(&s.join(", "))).unwrap_or_else(|| "any".into());
        let outside: BTreeSet<&str> = entry.reaches.iter().filter(|r| !r.allowed).map(|r| r.system.as_str()).collect();
        let outside = if outside.is_empty() {
            "—".to_string()
        } else {
            text(&outside.into_iter().collect::<Vec<_>>().join(", "))
        };
        let oldest = entry.credentials.iter().filter_map(|c| c.age_days).max();
        let credentials = match oldest {
            Some(days) => format!("{} ({days} days)", entry.credentials.len()),
            None => entry.credentials.len().to_string(),
        };
        let expired = if entry.expired { " (record expired)" } else { "" };
        let actions: usize = entry.reaches.iter().map(|r| r.actions.len()).sum();
        let _ = writeln!(
            out,
            "| `{}`{expired} | {owner} | {} | {allowed} | {actions} on {} resources | {outside} | {credentials} | {} |",
            text(&entry.id),
            entry.tier,
            entry.reaches.len(),
            entry.open_findings
        );
    }
    if !report.uncatalogued.is_empty() {
        let _ = writeln!(out, "\n**Not in the catalog** ({}):\n", report.uncatalogued.len());
        for shadow in &report.uncatalogued {
            let owner = shadow.owner.as_deref().map(text).unwrap_or_else(|| "no owner".into());
            let _ = writeln!(
                out,
                "- `{}` {} ({}, {owner}): {} accesses, {} credentials",
                text(&shadow.id),
                text(&shadow.name),
                shadow.kind,
                shadow.reaches,
                shadow.credentials
            );
        }
    }
    out.push('\n');
}
