//! `[[sink]]`: where remediation requests go. Common keys (`kind`, `name`,
//! `min_severity`, `rules`) are read first, the rest goes to the kind's struct.

use crate::problem::FileCtx;
use crate::raw::{Checker, Value, deserialize_table, deserialize_value, take_string};
use crate::secret::SecretRef;
use accessgraph_graph::Severity;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::DeValue;

/// Every sink kind, in the contract's order.
pub const SINK_KINDS: &[&str] = &["github-issues", "jira", "webhook", "jsonl"];

/// File name of the default `jsonl` sink, beside the config file.
pub const DEFAULT_EVENTS_FILE: &str = "accessgraph-events.jsonl";

/// One `[[sink]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkConfig {
    /// `name`: identifies the sink's tickets in the store, so keep it stable.
    /// Default: the kind; unnamed sinks of the same kind become `KIND-2`,
    /// `KIND-3`, … in file order. Explicit names must be unique.
    pub name: String,
    /// `min_severity`: findings below this severity are not filed
    /// (`low`, `medium`, `high`, `critical`); default `medium`.
    pub min_severity: Severity,
    /// `rules`: rule ids to file, as globs (`*` any run of characters, `?`
    /// one character), e.g. `["secret.*", "drift.policy"]`; default `["*"]`.
    pub rules: Vec<String>,
    /// `report_url`: base URL of this accessgraph's HTTP API as ticket
    /// readers reach it (e.g. `https://accessgraph.acme.example`); tickets
    /// link to its `/reports/latest` and `/api/v1/findings`. Default: the
    /// `[server] listen` address.
    pub report_url: Option<String>,
    /// `kind` and the kind's own keys.
    pub settings: SinkSettings,
    /// Line of the `[[sink]]` header in the config file (`None` for the
    /// default sink), for messages.
    pub line: Option<usize>,
}

impl SinkConfig {
    /// The sink's kind, as written in the config.
    pub fn kind(&self) -> &'static str {
        self.settings.kind()
    }

    /// Whether a finding of this rule and severity goes to this sink.
    pub fn accepts(&self, rule: &str, severity: Severity) -> bool {
        severity >= self.min_severity && self.rules.iter().any(|pattern| glob_match(pattern, rule))
    }

    /// The sink used when none is configured: `jsonl` to
    /// `accessgraph-events.jsonl` in `folder` (the config file's folder).
    pub fn default_jsonl(folder: &Path) -> SinkConfig {
        SinkConfig {
            name: "jsonl".to_string(),
            min_severity: Severity::Medium,
            rules: vec!["*".to_string()],
            report_url: None,
            settings: SinkSettings::Jsonl(JsonlSettings { path: folder.join(DEFAULT_EVENTS_FILE) }),
            line: None,
        }
    }
}

/// Glob match: `*` matches any run of characters (also none, also `.`),
/// `?` exactly one; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Position of the last `*` seen and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            // Let the last `*` swallow one more character.
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// The kind-specific settings of a sink.
#[derive(Clone, Debug, PartialEq)]
pub enum SinkSettings {
    /// `kind = "github-issues"`.
    GithubIssues(GithubIssuesSettings),
    /// `kind = "jira"`.
    Jira(JiraSettings),
    /// `kind = "webhook"`.
    Webhook(WebhookSettings),
    /// `kind = "jsonl"`.
    Jsonl(JsonlSettings),
}

impl SinkSettings {
    /// The kind, as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkSettings::GithubIssues(_) => "github-issues",
            SinkSettings::Jira(_) => "jira",
            SinkSettings::Webhook(_) => "webhook",
            SinkSettings::Jsonl(_) => "jsonl",
        }
    }
}

fn default_github_base_url() -> String {
    "https://api.github.com".to_string()
}

/// `kind = "github-issues"`: one issue per finding in a repository.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubIssuesSettings {
    /// `repo`: `OWNER/NAME` of the repository to file in (required).
    pub repo: String,
    /// `token`: a token that may create and edit issues there (a secret
    /// reference; required).
    pub token: SecretRef,
    /// `labels`: labels put on every issue; default none.
    #[serde(default)]
    pub labels: Vec<String>,
    /// `base_url`: the REST API root; default `https://api.github.com`.
    #[serde(default = "default_github_base_url")]
    pub base_url: String,
}

fn default_issue_type() -> String {
    "Task".to_string()
}

fn default_done_transition() -> String {
    "Done".to_string()
}

/// `kind = "jira"`: one issue per finding in a Jira project.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraSettings {
    /// `base_url`: the site, e.g. `https://acme.atlassian.net` (required).
    pub base_url: String,
    /// `project`: the project key, e.g. `SEC` (required).
    pub project: String,
    /// `issue_type`: the type of created issues; default `Task`.
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    /// `email`: the account the API token belongs to (required).
    pub email: String,
    /// `token`: the API token (a secret reference; required).
    pub token: SecretRef,
    /// `done_transition`: name of the transition that closes an issue when
    /// its finding resolves; default `Done`.
    #[serde(default = "default_done_transition")]
    pub done_transition: String,
}

/// `kind = "webhook"`: POSTs each event as JSON.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// `url`: where to POST (required).
    pub url: String,
    /// `secret`: when set, the body's HMAC-SHA256 with this key is sent in
    /// the `X-Accessgraph-Signature` header (a secret reference).
    #[serde(default)]
    pub secret: Option<SecretRef>,
}

fn default_events_path() -> PathBuf {
    PathBuf::from(DEFAULT_EVENTS_FILE)
}

/// `kind = "jsonl"`: appends each event as one JSON line to a file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlSettings {
    /// `path`: the file (created when missing; relative to the config's
    /// folder); default `accessgraph-events.jsonl`.
    #[serde(default = "default_events_path")]
    pub path: PathBuf,
}

impl GithubIssuesSettings {
    fn check(&mut self, c: &mut Checker<'_, '_, '_>) {
        let valid = matches!(self.repo.split_once('/'),
            Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/'));
        if !valid {
            let message = format!("`repo` in {} must be OWNER/NAME, found `{}`", c.what, self.repo);
            c.at_key("repo", message);
        }
        c.http_url("base_url", &mut self.base_url);
        self.token.resolve_path(c.base);
    }
}

impl JiraSettings {
    fn check(&mut self, c: &mut Checker<'_, '_, '_>) {
        c.http_url("base_url", &mut self.base_url);
        c.non_empty("project", &self.project);
        c.non_empty("issue_type", &self.issue_type);
        c.non_empty("email", &self.email);
        c.non_empty("done_transition", &self.done_transition);
        self.token.resolve_path(c.base);
    }
}

impl WebhookSettings {
    fn check(&mut self, c: &mut Checker<'_, '_, '_>) {
        c.http_url("url", &mut self.url);
        if let Some(secret) = &mut self.secret {
            secret.resolve_path(c.base);
        }
    }
}

impl JsonlSettings {
    fn check(&mut self, c: &mut Checker<'_, '_, '_>) {
        if self.path.as_os_str().is_empty() {
            let message = format!("`path` in {} is empty", c.what);
            c.at_key("path", message);
            return;
        }
        if self.path.is_relative() {
            self.path = c.base.join(&self.path);
        }
        if let Some(folder) = self.path.parent()
            && !folder.as_os_str().is_empty()
            && !folder.is_dir()
        {
            let message = format!("`path` in {}: folder `{}` does not exist", c.what, folder.display());
            c.at_key("path", message);
        }
    }
}

/// What parsing one `[[sink]]` yields; names are settled by the caller.
pub(crate) struct ParsedSink {
    pub(crate) sink: Option<SinkConfig>,
    /// The `name` key when given.
    pub(crate) explicit_name: Option<Spanned<String>>,
}

/// Parses one `[[sink]]` table (`index` is 1-based, for messages).
pub(crate) fn parse_sink(ctx: &mut FileCtx<'_>, value: Value<'_>, index: usize, base: &Path) -> ParsedSink {
    let header = value.span();
    let line = ctx.line_of(&header);
    let DeValue::Table(mut table) = value.into_inner() else {
        return ParsedSink { sink: None, explicit_name: None };
    };
    let anonymous = format!("[[sink]] #{index}");
    let name = take_string(ctx, &mut table, "name", &anonymous).ok().flatten();
    let kind = take_string(ctx, &mut table, "kind", &anonymous);
    let what_common = match &name {
        Some(name) => format!("[[sink]] \"{}\"", name.get_ref()),
        None => anonymous.clone(),
    };
    if let Some(name) = &name
        && name.get_ref().trim().is_empty()
    {
        ctx.at(Some(name.span()), format!("`name` in {what_common} is empty"));
    }
    let min_severity = match take_string(ctx, &mut table, "min_severity", &what_common) {
        Ok(Some(text)) => match Severity::parse(text.get_ref()) {
            Some(severity) => Some(severity),
            None => {
                ctx.at(
                    Some(text.span()),
                    format!(
                        "invalid value for `min_severity` in {what_common}: `{}` is not one of: low, medium, high, critical",
                        text.get_ref()
                    ),
                );
                None
            }
        },
        Ok(None) => Some(Severity::Medium),
        Err(()) => None,
    };
    let report_url = match take_string(ctx, &mut table, "report_url", &what_common) {
        Ok(Some(text)) => {
            let trimmed = text.get_ref().trim().trim_end_matches('/');
            let valid = ["https://", "http://"].iter().any(|scheme| {
                trimmed
                    .strip_prefix(scheme)
                    .is_some_and(|rest| !rest.split(['/', '?', '#']).next().unwrap_or("").is_empty())
            });
            if valid {
                Some(Some(trimmed.to_string()))
            } else {
                ctx.at(
                    Some(text.span()),
                    format!(
                        "`report_url` in {what_common} must be an http:// or https:// URL, found `{}`",
                        text.get_ref()
                    ),
                );
                None
            }
        }
        Ok(None) => Some(None),
        Err(()) => None,
    };
    let rules = match table.remove("rules") {
        None => Some(vec!["*".to_string()]),
        Some(value) => {
            let span = value.span();
            let rules = deserialize_value::<Vec<String>>(ctx, value, "rules", &what_common);
            match rules {
                Some(rules) if rules.is_empty() => {
                    ctx.at(
                        Some(span),
                        format!(
                            "`rules` in {what_common} is empty: the sink would file nothing (omit it for all rules)"
                        ),
                    );
                    None
                }
                Some(rules) if rules.iter().any(|r| r.trim().is_empty()) => {
                    ctx.at(Some(span), format!("`rules` in {what_common} holds an empty pattern"));
                    None
                }
                other => other,
            }
        }
    };
    let kind = match kind {
        Ok(Some(kind)) => kind,
        Ok(None) => {
            ctx.at(
                Some(header.clone()),
                format!("missing required key `kind` in {what_common}; expected one of: {}", SINK_KINDS.join(", ")),
            );
            return ParsedSink { sink: None, explicit_name: name };
        }
        Err(()) => {
            return ParsedSink { sink: None, explicit_name: name };
        }
    };
    if !SINK_KINDS.contains(&kind.get_ref().as_str()) {
        ctx.at(
            Some(kind.span()),
            format!(
                "unknown sink kind `{}` in {what_common}; expected one of: {}",
                kind.get_ref(),
                SINK_KINDS.join(", ")
            ),
        );
        return ParsedSink { sink: None, explicit_name: name };
    }
    let what = format!("{what_common} (kind {})", kind.get_ref());
    let lookup = table.clone();
    let rest: Value<'_> = Spanned::new(header.clone(), DeValue::Table(table));
    let settings = match kind.get_ref().as_str() {
        "github-issues" => deserialize_table::<GithubIssuesSettings>(ctx, rest, &what).map(SinkSettings::GithubIssues),
        "jira" => deserialize_table::<JiraSettings>(ctx, rest, &what).map(SinkSettings::Jira),
        "webhook" => deserialize_table::<WebhookSettings>(ctx, rest, &what).map(SinkSettings::Webhook),
        _ => deserialize_table::<JsonlSettings>(ctx, rest, &what).map(SinkSettings::Jsonl),
    };
    let Some(mut settings) = settings else {
        return ParsedSink { sink: None, explicit_name: name };
    };
    let mut checker = Checker { ctx, table: lookup, what, header, base };
    match &mut settings {
        SinkSettings::GithubIssues(s) => s.check(&mut checker),
        SinkSettings::Jira(s) => s.check(&mut checker),
        SinkSettings::Webhook(s) => s.check(&mut checker),
        SinkSettings::Jsonl(s) => s.check(&mut checker),
    }
    let (Some(min_severity), Some(rules), Some(report_url)) = (min_severity, rules, report_url) else {
        return ParsedSink { sink: None, explicit_name: name };
    };
    let sink = SinkConfig {
        name: name.as_ref().map(|n| n.get_ref().clone()).unwrap_or_default(),
        min_severity,
        rules,
        report_url,
        settings,
        line: Some(line),
    };
    ParsedSink { sink: Some(sink), explicit_name: name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches() {
        assert!(glob_match("*", "secret.standing"));
        assert!(glob_match("*", ""));
        assert!(glob_match("secret.*", "secret.standing"));
        assert!(!glob_match("secret.*", "sod.violation"));
        assert!(glob_match("drift.policy", "drift.policy"));
        assert!(!glob_match("drift.policy", "drift.policyx"));
        assert!(glob_match("*.unused", "secret.unused"));
        assert!(glob_match("s*t.*d", "secret.stale_and_used"));
        assert!(glob_match("d?ift.*", "drift.baseline"));
        assert!(!glob_match("d?ift.*", "dift.baseline"));
        assert!(glob_match("**a*", "bab"));
        assert!(!glob_match("a*b", "aXbX"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("", "x"));
        assert!(glob_match("", ""));
    }
}
