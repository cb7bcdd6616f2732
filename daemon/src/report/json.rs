//! CONTRACT §6 JSON.

use super::{CatalogEntry, Counts, Report, ShadowIdentity};
use accessgraph_graph::Finding;
use serde::Serialize;
use serde_json::{Value, json};

/// `{"findings": [...], "summary": {...}}` for a plain list (the `findings` command).
pub fn findings_json(findings: &[Finding]) -> String {
    let value = json!({ "findings": findings, "summary": Counts::of(findings) });
    pretty(&value)
}

fn pretty<T: Serialize + ?Sized>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".to_string());
    text.push('\n');
    text
}

pub(super) fn render(report: &Report) -> String {
    pretty(&document(report))
}

/// [`render`] written to `out` as it is serialized: at 100k people the
/// report is 290 MB of text, which a `String` held (and, growing, copied)
/// beside everything else at the scan's peak.
pub(super) fn write(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &document(report))?;
    out.write_all(b"\n")
}

fn document(report: &Report) -> Document<'_> {
    let summary = json!({
        "generated_at": report.generated_at,
        "previous_snapshot": report.previous_snapshot,
        "open": report.counts.open,
        "muted": report.counts.muted,
        "resolved": report.counts.resolved,
        "by_severity": report.counts.by_severity,
        "by_rule": report.counts.by_rule,
        "posture": report.posture,
        "previous_posture": report.previous_posture,
        "access_added": report.access_added.len(),
        "access_widened": report.access_widened.len(),
        "access_removed": report.access_removed.len(),
        "credentials_created": report.inventory.credentials_created.len(),
        "credentials_rotated": report.inventory.credentials_rotated.len(),
        "credentials_gone": report.inventory.credentials_gone.len(),
        "identities_appeared": report.inventory.identities_appeared.len(),
        "identities_disappeared": report.inventory.identities_disappeared.len(),
        "sources": report.sources,
    });
    // `changes.access_widened` is the part of `access_added` that gave a
    // principal a new action on a resource it already reached.
    let changes = json!({
        "access_added": report.access_added,
        "access_widened": report.access_widened,
        "access_removed": report.access_removed,
        "credentials_created": report.inventory.credentials_created,
        "credentials_rotated": report.inventory.credentials_rotated,
        "credentials_gone": report.inventory.credentials_gone,
        "identities_appeared": report.inventory.identities_appeared,
        "identities_disappeared": report.inventory.identities_disappeared,
    });
    Document {
        findings: &report.findings,
        summary,
        changes,
        catalog: CatalogPart { agents: &report.catalog, uncatalogued: &report.uncatalogued },
    }
}

/// The report document, serialized from the report's own data: at 100k
/// people the findings as a `serde_json::Value` tree took more than a
/// gigabyte beside the text.
#[derive(Serialize)]
struct Document<'a> {
    findings: &'a [Finding],
    summary: Value,
    changes: Value,
    catalog: CatalogPart<'a>,
}

#[derive(Serialize)]
struct CatalogPart<'a> {
    agents: &'a [CatalogEntry],
    uncatalogued: &'a [ShadowIdentity],
}
