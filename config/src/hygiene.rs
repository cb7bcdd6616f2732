//! Config hygiene: things that are allowed but unsafe, reported by
//! `accessgraph check` as warnings (they do not fail the check).
//!
//! - a secret file (`{ file = … }`) that group or others can read;
//! - a config, catalog or policy file that group or others can write
//!   (whoever can edit it can point a source's `base_url` elsewhere and
//!   collect the token the daemon sends there);
//! - a source or sink URL that is plain `http://` beyond loopback (its
//!   token would cross the network in clear);
//! - a string anywhere in the config or catalog that looks like a
//!   credential (a GitHub, OpenAI, Anthropic, Slack or GitLab token, an AWS
//!   access key id, a private key, a JWT), or a URL carrying a password.
//!
//! A warning names the file, the line and the key, and what the value looks
//! like; it never repeats the value.

use crate::problem::FileCtx;
use crate::raw::Value;
use crate::{Config, SecretRef};
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// Everything unsafe (but valid) about a loaded configuration, in file order.
/// Reads the config and catalog files again (the values are not kept in
/// [`Config`]) and the metadata of every secret file.
pub fn warnings(config: &Config) -> Vec<crate::Problem> {
    let mut out = Vec::new();
    for file in [Some(&config.path), config.catalog_path.as_ref()].into_iter().flatten() {
        if let Ok(text) = std::fs::read_to_string(file) {
            out.extend(inline_secrets(file, &text));
        }
    }
    out.extend(secret_file_modes(config));
    let policy = config.policy.as_ref().map(|policy| &policy.cedar_path);
    for file in [Some(&config.path), config.catalog_path.as_ref(), policy].into_iter().flatten() {
        out.extend(writable_by_others(file));
    }
    out
}

/// Strings of a TOML text that look like credentials.
pub(crate) fn inline_secrets(file: &Path, text: &str) -> Vec<crate::Problem> {
    let Ok(doc) = DeTable::parse(text) else {
        // Syntax errors are `load`'s to report.
        return Vec::new();
    };
    let mut ctx = FileCtx::new(file, text);
    walk_table(&mut ctx, doc.get_ref(), "");
    ctx.finish()
}

fn walk_table(ctx: &mut FileCtx<'_>, table: &DeTable<'_>, prefix: &str) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() { key.get_ref().to_string() } else { format!("{prefix}.{}", key.get_ref()) };
        walk_value(ctx, value, &path);
    }
}

fn walk_value(ctx: &mut FileCtx<'_>, value: &Value<'_>, path: &str) {
    match value.get_ref() {
        DeValue::String(text) => {
            let key = path.rsplit('.').next().unwrap_or(path);
            if matches!(key, "base_url" | "endpoint_url" | "url") && plain_http_beyond_loopback(text) {
                ctx.at(
                    Some(value.span()),
                    format!(
                        "`{path}` is plain http to a host beyond loopback: the credential sent there and the \
                         data it returns cross the network unencrypted; use https"
                    ),
                );
            }
            if let Some(kind) = credential_kind(text) {
                ctx.at(
                    Some(value.span()),
                    format!(
                        "`{path}` looks like an inline secret ({kind}); the value is not shown. Secrets belong in \
                         `{{ env = \"VARIABLE\" }}` or `{{ file = \"PATH\" }}`: rotate this one if the file was ever shared"
                    ),
                );
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_value(ctx, item, &format!("{path}[{}]", i + 1));
            }
        }
        DeValue::Table(inner) => walk_table(ctx, inner, path),
        _ => {}
    }
}

/// Prefixes of well-known token formats, with what they are. A match needs
/// the prefix at the start of a word and at least [`MIN_TAIL`] token
/// characters after it.
const TOKEN_PREFIXES: &[(&str, &str)] = &[
    ("github_pat_", "a GitHub fine-grained token"),
    ("ghp_", "a GitHub token"),
    ("gho_", "a GitHub OAuth token"),
    ("ghu_", "a GitHub user-to-server token"),
    ("ghs_", "a GitHub App installation token"),
    ("ghr_", "a GitHub refresh token"),
    ("sk-ant-", "an Anthropic key"),
    ("sk-admin-", "an OpenAI admin key"),
    ("sk-proj-", "an OpenAI project key"),
    ("sk-svcacct-", "an OpenAI service account key"),
    ("sk-", "an API key"),
    ("xoxb-", "a Slack bot token"),
    ("xoxp-", "a Slack user token"),
    ("xoxa-", "a Slack token"),
    ("xoxr-", "a Slack refresh token"),
    ("glpat-", "a GitLab token"),
    ("AIza", "a Google API key"),
];

/// Token characters a prefix must be followed by.
const MIN_TAIL: usize = 16;

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// What kind of credential `text` contains, if it looks like it holds one.
pub(crate) fn credential_kind(text: &str) -> Option<&'static str> {
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    if url_with_password(text) {
        return Some("a URL with a password");
    }
    if text.contains("hooks.slack.com/services/") {
        return Some("a Slack webhook URL");
    }
    let mut previous: Option<char> = None;
    for (start, c) in text.char_indices() {
        let word_start = !previous.is_some_and(token_char);
        previous = Some(c);
        if !word_start {
            continue;
        }
        let rest = &text[start..];
        for (prefix, kind) in TOKEN_PREFIXES {
            if let Some(tail) = rest.strip_prefix(prefix)
                && tail.chars().take_while(|c| token_char(*c)).count() >= MIN_TAIL
            {
                return Some(kind);
            }
        }
        if aws_key_id(rest) {
            return Some("an AWS access key id");
        }
        if jwt(rest) {
            return Some("a JWT");
        }
    }
    None
}

/// `AKIA` or `ASIA` and 16 upper-case letters or digits, ending there.
fn aws_key_id(rest: &str) -> bool {
    if !(rest.starts_with("AKIA") || rest.starts_with("ASIA")) {
        return false;
    }
    let tail: Vec<char> = rest[4..].chars().take(17).collect();
    tail.len() >= 16
        && tail[..16].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && tail.get(16).is_none_or(|c| !token_char(*c))
}

/// Three base64url segments, the first two JSON objects (`eyJ…`).
fn jwt(rest: &str) -> bool {
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut parts = rest.splitn(3, '.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let signature: String = signature.chars().take_while(|c| b64(*c)).collect();
    header.starts_with("eyJ")
        && payload.starts_with("eyJ")
        && header.len() >= 10
        && payload.len() >= 10
        && header.chars().all(b64)
        && payload.chars().all(b64)
        && signature.len() >= 16
}

/// `scheme://user:password@host…` (a password, not only a user name).
fn url_with_password(text: &str) -> bool {
    let Some((_, after)) = text.split_once("://") else {
        return false;
    };
    let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.split_once(':').is_some_and(|(_, password)| !password.is_empty()))
}

/// `http://HOST…` where HOST is not a loopback address or `localhost`.
pub(crate) fn plain_http_beyond_loopback(url: &str) -> bool {
    let Some(rest) = url.get(..7).filter(|scheme| scheme.eq_ignore_ascii_case("http://")).map(|_| &url[7..]) else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback());
    !loopback
}

/// Secret files that group or others may read.
fn secret_file_modes(config: &Config) -> Vec<crate::Problem> {
    let mut out = Vec::new();
    let mut check = |what: String, key: &str, secret: &SecretRef, line: Option<usize>| {
        let SecretRef::File(path) = secret else { return };
        if let Some(mode) = loose_mode(path, 0o077) {
            out.push(crate::Problem {
                file: config.path.clone(),
                line,
                column: None,
                message: format!(
                    "`{key}` in {what}: secret file {} is readable by group or others (mode {mode:04o}); \
                     restrict it with `chmod 600`",
                    path.display()
                ),
            });
        }
    };
    for source in &config.sources {
        let what = format!("[[source]] \"{}\"", source.name);
        for (key, secret) in source.settings.secret_refs() {
            check(what.clone(), key, secret, source.line);
        }
    }
    for sink in &config.sinks {
        let what = format!("[[sink]] \"{}\"", sink.name);
        for (key, secret) in sink.settings.secret_refs() {
            check(what.clone(), key, secret, sink.line);
        }
    }
    if let Some(token) = &config.server.token {
        check("[server]".to_string(), "token", token, config.server.line);
    }
    out
}

/// A file whose mode lets group or others write it.
fn writable_by_others(file: &Path) -> Option<crate::Problem> {
    let mode = loose_mode(file, 0o022)?;
    Some(crate::Problem::in_file(
        file,
        format!(
            "writable by group or others (mode {mode:04o}): whoever can edit it can redirect where the daemon sends \
             its tokens; restrict it with `chmod go-w`"
        ),
    ))
}

/// The file's permission bits when any of `mask` is set (Unix only; a file
/// that cannot be read is `check_secrets`'s to report).
#[cfg(unix)]
fn loose_mode(path: &Path, mask: u32) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & mask != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_path: &Path, _mask: u32) -> Option<u32> {
    None
}
