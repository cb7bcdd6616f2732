//! Raw TOML → typed values, with every problem placed on its line.
//!
//! The document is parsed into `toml::de::DeTable`, whose keys and values all
//! carry byte spans into the original text. Each component's table is then
//! deserialized on its own with `ValueDeserializer`, so serde's errors carry
//! those spans too. Unknown keys are found before serde sees the table, so
//! every one of them is reported, not only the first.

use crate::problem::FileCtx;
use serde::de::DeserializeOwned;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// A value of the parsed document, with its span.
pub(crate) type Value<'t> = Spanned<DeValue<'t>>;

/// The field names a derived `Deserialize` struct accepts (after renames).
pub(crate) fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields = None;
    let _ = T::deserialize(FieldGrabber(&mut fields));
    fields.unwrap_or(&[])
}

/// A deserializer that records the field list serde passes to
/// `deserialize_struct` and then fails.
struct FieldGrabber<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> serde::Deserializer<'de> for FieldGrabber<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(serde::de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// TOML's name for a value's type, for messages.
pub(crate) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The span of a key (dotted `path` into nested tables); where the path
/// stops early, the span of the deepest key found.
pub(crate) fn key_span(table: &DeTable<'_>, path: &[&str]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    let (key, value) = table.get_key_value(*first)?;
    if rest.is_empty() {
        return Some(key.span());
    }
    match value.get_ref() {
        DeValue::Table(inner) => key_span(inner, rest).or_else(|| Some(key.span())),
        _ => Some(key.span()),
    }
}

/// The key path (`a.b[2]`) of whatever in `table` lies at byte `offset`.
/// Tables written as `[a.b]` headers have their keys elsewhere in the text,
/// so every nested table is searched, not only those whose span contains it.
fn path_at(table: &DeTable<'_>, offset: usize) -> Option<Vec<String>> {
    let mut header_match = None;
    for (key, value) in table.iter() {
        if key.span().contains(&offset) {
            return Some(vec![key.get_ref().to_string()]);
        }
        if let Some(mut inner) = value_path_at(value, offset) {
            inner.insert(0, key.get_ref().to_string());
            return Some(inner);
        }
        let span = value.span();
        if span.contains(&offset) || (span.is_empty() && span.start == offset) {
            header_match = Some(vec![key.get_ref().to_string()]);
        }
    }
    header_match
}

fn value_path_at(value: &Value<'_>, offset: usize) -> Option<Vec<String>> {
    match value.get_ref() {
        DeValue::Table(inner) => path_at(inner, offset),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(mut inner) = value_path_at(item, offset) {
                    inner.insert(0, format!("[{i}]"));
                    return Some(inner);
                }
                if item.span().contains(&offset) {
                    return Some(vec![format!("[{i}]")]);
                }
            }
            None
        }
        _ => None,
    }
}

fn join_path(parts: &[String]) -> String {
    let mut out = String::new();
    for part in parts {
        if !out.is_empty() && !part.starts_with('[') {
            out.push('.');
        }
        out.push_str(part);
    }
    out
}

/// The words between backticks in a serde message.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Rewrites a serde error about the value at `path` inside `what` into a
/// message that names the key.
fn describe(message: &str, path: &[String], what: &str) -> String {
    if let Some(rest) = message.strip_prefix("missing field ") {
        let field = backticked(rest).first().copied().unwrap_or(rest).to_string();
        let mut full = path.to_vec();
        full.push(field);
        return format!("missing required key `{}` in {what}", join_path(&full));
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let words = backticked(rest);
        let field = words.first().copied().unwrap_or(rest).to_string();
        // The error points at the key itself: its container is the path less one.
        let container = match path.last() {
            Some(last) if *last == field => &path[..path.len() - 1],
            _ => path,
        };
        let mut full = container.to_vec();
        full.push(field);
        let expected = if words.len() > 1 { words[1..].join(", ") } else { "no keys".to_string() };
        return format!("unknown key `{}` in {what}; expected one of: {expected}", join_path(&full));
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let words = backticked(rest);
        if let Some((value, expected)) = words.split_first() {
            return format!(
                "invalid value for `{}` in {what}: `{value}` is not one of: {}",
                join_path(path),
                expected.join(", ")
            );
        }
    }
    let message = humanize(message);
    if path.is_empty() {
        format!("{what}: {message}")
    } else {
        format!("invalid value for `{}` in {what}: {message}", join_path(path))
    }
}

/// Serde speaks Rust (`expected u32`, `expected struct SodSide`); say it in TOML.
fn humanize(message: &str) -> String {
    let Some((head, expected)) = message.rsplit_once(", expected ") else {
        return message.to_string();
    };
    let expected = match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer",
        "a sequence" => "an array",
        "a map" => "a table",
        "path string" => "a string (a path)",
        other if other.starts_with("struct ") => "a table",
        other => other,
    };
    format!("{head}, expected {expected}")
}

/// Deserializes one component's table: reports every unknown key (all of
/// them, at their lines), then the first serde error, if any.
pub(crate) fn deserialize_table<T: DeserializeOwned>(
    ctx: &mut FileCtx<'_>,
    mut value: Value<'_>,
    what: &str,
) -> Option<T> {
    let DeValue::Table(table) = value.get_mut() else {
        ctx.at(Some(value.span()), format!("{what} must be a table, found {}", type_name(value.get_ref())));
        return None;
    };
    let expected = fields_of::<T>();
    let unknown: Vec<(String, Range<usize>)> = table
        .iter()
        .filter(|(key, _)| !expected.contains(&key.get_ref().as_ref()))
        .map(|(key, _)| (key.get_ref().to_string(), key.span()))
        .collect();
    for (key, span) in &unknown {
        ctx.at(Some(span.clone()), format!("unknown key `{key}` in {what}; expected one of: {}", expected.join(", ")));
        table.remove(key.as_str());
    }
    let lookup = table.clone();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(parsed) if unknown.is_empty() => Some(parsed),
        Ok(_) => None,
        Err(error) => {
            let path = error.span().and_then(|span| path_at(&lookup, span.start)).unwrap_or_default();
            ctx.at(error.span(), describe(error.message(), &path, what));
            None
        }
    }
}

/// Deserializes a single value (not a table) at `key` of `what`.
pub(crate) fn deserialize_value<T: DeserializeOwned>(
    ctx: &mut FileCtx<'_>,
    value: Value<'_>,
    key: &str,
    what: &str,
) -> Option<T> {
    let span = value.span();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let span = error.span().unwrap_or(span);
            ctx.at(Some(span), describe(error.message(), &[key.to_string()], what));
            None
        }
    }
}

/// The elements of an array of tables (`[[key]]`), each still spanned.
/// Reports a value that is not an array, and elements that are not tables.
pub(crate) fn array_of_tables<'t>(ctx: &mut FileCtx<'_>, value: Value<'t>, header: &str) -> Vec<Value<'t>> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => {
            let mut tables = Vec::new();
            for item in items {
                if item.get_ref().is_table() {
                    tables.push(item);
                } else {
                    ctx.at(
                        Some(item.span()),
                        format!("each entry of {header} must be a table, found {}", type_name(item.get_ref())),
                    );
                }
            }
            tables
        }
        other => {
            ctx.at(Some(span), format!("{header} must be an array of tables, found {}", type_name(&other)));
            Vec::new()
        }
    }
}

/// Removes `key` from `table` and returns it as a string: `Ok(None)` when
/// absent, `Err(())` (reported) when of another type.
pub(crate) fn take_string(
    ctx: &mut FileCtx<'_>,
    table: &mut DeTable<'_>,
    key: &str,
    what: &str,
) -> Result<Option<Spanned<String>>, ()> {
    let Some(value) = table.remove(key) else {
        return Ok(None);
    };
    match value.get_ref().as_str() {
        Some(text) => Ok(Some(Spanned::new(value.span(), text.to_string()))),
        None => {
            ctx.at(
                Some(value.span()),
                format!("invalid value for `{key}` in {what}: expected a string, found {}", type_name(value.get_ref())),
            );
            Err(())
        }
    }
}

/// Checks shared by the kinds' validations: where keys are, what to call the table.
pub(crate) struct Checker<'c, 'ctx, 't> {
    pub(crate) ctx: &'c mut FileCtx<'ctx>,
    /// The table as written (for key spans).
    pub(crate) table: DeTable<'t>,
    /// `[[source]] "name" (kind k)`.
    pub(crate) what: String,
    /// Span of the table's header.
    pub(crate) header: Range<usize>,
    /// Absolute folder of the config file.
    pub(crate) base: &'c Path,
}

impl Checker<'_, '_, '_> {
    /// Reports a problem at a key of the table (or at its header if absent).
    pub(crate) fn at_key(&mut self, key: &str, message: impl Into<String>) {
        let path: Vec<&str> = key.split('.').collect();
        let span = key_span(&self.table, &path).unwrap_or_else(|| self.header.clone());
        self.ctx.at(Some(span), message);
    }

    /// A required string must not be empty.
    pub(crate) fn non_empty(&mut self, key: &str, value: &str) {
        if value.trim().is_empty() {
            let message = format!("`{key}` in {} is empty", self.what);
            self.at_key(key, message);
        }
    }

    /// An HTTP(S) URL; a trailing `/` is dropped so paths can be appended.
    pub(crate) fn http_url(&mut self, key: &str, url: &mut String) {
        let trimmed = url.trim();
        let host = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"))
            .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
        match host {
            Some(host) if !host.is_empty() => {
                *url = trimmed.trim_end_matches('/').to_string();
            }
            _ => {
                let message = format!("`{key}` in {} must be an http:// or https:// URL, found `{url}`", self.what);
                self.at_key(key, message);
            }
        }
    }

    /// Resolves a path against the config's folder and reports it missing.
    pub(crate) fn existing_file(&mut self, key: &str, path: &mut PathBuf, what_file: &str) {
        if path.is_relative() {
            *path = self.base.join(&*path);
        }
        if let Err(error) = std::fs::metadata(&*path) {
            let message = format!(
                "{what_file} `{}` (key `{key}` in {}) cannot be read: {}",
                path.display(),
                self.what,
                describe_io(&error)
            );
            self.at_key(key, message);
        }
    }
}

/// An I/O error in words, without the OS error number.
pub(crate) fn describe_io(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::path::Path;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        id: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        org: String,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        inner: Option<Inner>,
    }

    fn run(text: &str) -> Vec<String> {
        let mut ctx = FileCtx::new(Path::new("t.toml"), text);
        let doc = DeTable::parse(text).unwrap().into_inner();
        let value = doc.get("x").unwrap().clone();
        let _ = deserialize_table::<Outer>(&mut ctx, value, "[x]");
        ctx.finish().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn fields_of_lists_struct_fields() {
        assert_eq!(fields_of::<Outer>(), &["org", "count", "inner"]);
        assert!(fields_of::<String>().is_empty());
    }

    #[test]
    fn unknown_keys_all_reported_with_lines() {
        let got = run("[x]\norg = \"a\"\nzz = 1\naa = 2\n");
        assert_eq!(
            got,
            vec![
                "t.toml:3:1: unknown key `zz` in [x]; expected one of: org, count, inner",
                "t.toml:4:1: unknown key `aa` in [x]; expected one of: org, count, inner",
            ]
        );
    }

    #[test]
    fn nested_errors_name_the_path() {
        let got = run("[x]\norg = \"a\"\n[x.inner]\nid = 1\nnope = 2\n");
        assert_eq!(got, vec!["t.toml:5:1: unknown key `inner.nope` in [x]; expected one of: id"]);
        let got = run("[x]\norg = \"a\"\ninner = { }\n");
        assert_eq!(got, vec!["t.toml:3:9: missing required key `inner.id` in [x]"]);
        let got = run("[x]\n\norg = 5\n");
        assert_eq!(
            got,
            vec!["t.toml:3:7: invalid value for `org` in [x]: invalid type: integer `5`, expected a string"]
        );
        let got = run("[x]\norg = \"a\"\ncount = -1\n");
        assert_eq!(
            got,
            vec![
                "t.toml:3:9: invalid value for `count` in [x]: invalid value: integer `-1`, expected a non-negative integer"
            ]
        );
        let got = run("\n[x]\ncount = 1\n");
        assert_eq!(got, vec!["t.toml:2:1: missing required key `org` in [x]"]);
    }
}
