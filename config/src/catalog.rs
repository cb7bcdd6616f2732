//! The agent catalog file (`agents.toml`, CONTRACT §5): `[[agent]]` tables,
//! parsed into `accessgraph_graph::settings::Catalog` with problems placed in
//! the catalog file itself.

use crate::problem::{FileCtx, Problem};
use crate::raw::{array_of_tables, deserialize_table, type_name};
use accessgraph_graph::settings::{Catalog, CatalogAgent};
use chrono::NaiveDate;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// Parses a catalog file's text; `file` names it in problems.
pub(crate) fn parse_catalog(file: &Path, text: &str) -> (Catalog, Vec<Problem>) {
    let mut ctx = FileCtx::new(file, text);
    let (doc, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for error in errors {
            ctx.at(error.span(), format!("invalid TOML: {}", error.message()));
        }
        return (Catalog::default(), ctx.finish());
    }
    let mut agents = Vec::new();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    let mut bound: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for (key, value) in doc.into_inner() {
        if key.get_ref() != "agent" {
            ctx.at(
                Some(key.span()),
                format!("unknown key `{}` in the catalog; expected `[[agent]]` tables", key.get_ref()),
            );
            continue;
        }
        for (i, mut entry) in array_of_tables(&mut ctx, value, "`agent` ([[agent]])").into_iter().enumerate() {
            let header = entry.span();
            let DeValue::Table(table) = entry.get_mut() else {
                continue;
            };
            let what = match table.get("id").and_then(|id| id.get_ref().as_str()) {
                Some(id) => format!("[[agent]] \"{id}\""),
                None => format!("[[agent]] #{}", i + 1),
            };
            check_expires(&mut ctx, table, &what);
            let lookup = table.clone();
            // Identity checks use the table as written, so they run even when
            // another key of the record is wrong.
            let id = lookup
                .get_key_value("id")
                .and_then(|(key, value)| value.get_ref().as_str().map(|id| (id.to_string(), key.span())));
            let identities: Vec<(String, std::ops::Range<usize>)> = match lookup.get("identities") {
                Some(value) => match value.get_ref() {
                    DeValue::Array(items) => items
                        .iter()
                        .filter_map(|item| item.get_ref().as_str().map(|s| (s.to_string(), item.span())))
                        .collect(),
                    _ => Vec::new(),
                },
                None => Vec::new(),
            };
            let agent = deserialize_table::<CatalogAgent>(&mut ctx, entry, &what);
            let label = match &id {
                Some((id, span)) => {
                    if id.trim().is_empty() {
                        ctx.at(Some(span.clone()), format!("`id` in {what} is empty"));
                    }
                    let line = ctx.line_of(span);
                    if let Some(first) = ids.get(id) {
                        ctx.at(
                            Some(span.clone()),
                            format!("duplicate agent id `{id}` (first defined at line {first})"),
                        );
                    } else {
                        ids.insert(id.clone(), line);
                    }
                    format!("\"{id}\"")
                }
                None => format!("#{} (line {})", i + 1, ctx.line_of(&header)),
            };
            for (identity, span) in identities {
                if identity.trim().is_empty() {
                    ctx.at(Some(span), format!("{what} lists an empty identity"));
                    continue;
                }
                let line = ctx.line_of(&span);
                match bound.get(&identity) {
                    Some((other, _)) if *other == label => {}
                    Some((other, other_line)) => ctx.at(
                        Some(span),
                        format!(
                            "identity `{identity}` is bound by two agents: {other} (line {other_line}) and {label}"
                        ),
                    ),
                    None => {
                        bound.insert(identity, (label.clone(), line));
                    }
                }
            }
            let Some(agent) = agent else { continue };
            agents.push(agent);
        }
    }
    (Catalog::new(agents), ctx.finish())
}

/// `expires` is a date. A bare TOML date (`expires = 2027-06-30`) is
/// accepted like the quoted one; an invalid date is reported here, with the
/// expected form, and removed so serde does not report it again.
fn check_expires(ctx: &mut FileCtx<'_>, table: &mut DeTable<'_>, what: &str) {
    let Some(value) = table.get_mut("expires") else {
        return;
    };
    let span = value.span();
    let text = match value.get_ref() {
        DeValue::String(text) => text.to_string(),
        DeValue::Datetime(datetime) => datetime.to_string(),
        other => {
            ctx.at(
                Some(span),
                format!(
                    "invalid value for `expires` in {what}: expected a date (YYYY-MM-DD), found {}",
                    type_name(other)
                ),
            );
            table.remove("expires");
            return;
        }
    };
    match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        Ok(_) => *value.get_mut() = DeValue::String(Cow::Owned(text)),
        Err(error) => {
            ctx.at(
                Some(span),
                format!("invalid value for `expires` in {what}: `{text}` is not a date (YYYY-MM-DD): {error}"),
            );
            table.remove("expires");
        }
    }
}
