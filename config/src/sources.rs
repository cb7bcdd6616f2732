//! `[[source]]`: the systems accessgraph reads. One settings struct per kind,
//! each refusing unknown keys; the common keys (`name`, `kind`, `schedule`)
//! are read first and the rest of the table goes to the kind's struct.

use crate::problem::FileCtx;
use crate::raw::{Checker, Value, deserialize_table, take_string};
use crate::secret::SecretRef;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use toml::Spanned;
use toml::de::DeValue;

/// Every source kind, in the contract's order.
pub const SOURCE_KINDS: &[&str] = &["github", "aws-iam", "openai", "anthropic", "scim", "snapshot"];

/// One `[[source]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceConfig {
    /// `name`: unique among sources; prefixes the ids of the nodes it yields
    /// (`NAME:KIND:KEY`), so it may not contain `:` or whitespace.
    pub name: String,
    /// `schedule`: when the daemon syncs this source (cron with seconds:
    /// `sec min hour dom mon dow [year]`, or `@hourly`, `@daily`, …). `None`
    /// when absent; `scan` ignores it.
    pub schedule: Option<Schedule>,
    /// `kind` and the kind's own keys.
    pub settings: SourceSettings,
    /// Line of the `[[source]]` header in the config file, for messages.
    pub line: Option<usize>,
}

impl SourceConfig {
    /// The source's kind, as written in the config (`github`, `aws-iam`, …).
    pub fn kind(&self) -> &'static str {
        self.settings.kind()
    }
}

/// A parsed cron schedule and the text it came from.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: cron::Schedule,
}

impl Schedule {
    /// Parses a cron expression with seconds (`0 */15 * * * *`) or a
    /// shorthand (`@hourly`). Refuses one that never fires.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let fields = text.split_whitespace().count();
        if !text.starts_with('@') && fields == 5 {
            return Err(format!(
                "`{text}` has 5 fields; accessgraph's cron has seconds first \
                 (sec min hour dom mon dow), e.g. `0 {text}`"
            ));
        }
        let cron =
            cron::Schedule::from_str(text).map_err(|error| format!("`{text}` is not a cron expression: {error}"))?;
        if cron.upcoming(Utc).next().is_none() {
            return Err(format!("`{text}` never fires"));
        }
        Ok(Schedule { cron })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        self.cron.source()
    }

    /// The parsed schedule.
    pub fn cron(&self) -> &cron::Schedule {
        &self.cron
    }

    /// The first instant strictly after `after`, if any.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.after(&after).next()
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.text() == other.text()
    }
}

/// The kind-specific settings of a source.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSettings {
    /// `kind = "github"`.
    Github(GithubSettings),
    /// `kind = "aws-iam"`.
    AwsIam(AwsIamSettings),
    /// `kind = "openai"`.
    OpenAi(OpenAiSettings),
    /// `kind = "anthropic"`.
    Anthropic(AnthropicSettings),
    /// `kind = "scim"`.
    Scim(ScimSettings),
    /// `kind = "snapshot"`.
    Snapshot(SnapshotSettings),
}

impl SourceSettings {
    /// The kind, as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSettings::Github(_) => "github",
            SourceSettings::AwsIam(_) => "aws-iam",
            SourceSettings::OpenAi(_) => "openai",
            SourceSettings::Anthropic(_) => "anthropic",
            SourceSettings::Scim(_) => "scim",
            SourceSettings::Snapshot(_) => "snapshot",
        }
    }

    /// Whether the source is a source of truth for people (an IdP): its
    /// accounts decide whether an owner is active.
    pub fn is_identity_source(&self) -> bool {
        match self {
            SourceSettings::Scim(_) => true,
            SourceSettings::Snapshot(snapshot) => snapshot.identity_source,
            _ => false,
        }
    }
}

fn default_github_base_url() -> String {
    "https://api.github.com".to_string()
}

/// `kind = "github"`: an organization's members, teams, repositories,
/// branch protections, apps, deploy keys and secrets.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSettings {
    /// `org`: the organization login (required).
    pub org: String,
    /// `token`: a token with `read:org` and repository read access
    /// (`{ env = "…" }` or `{ file = "…" }`). Give exactly one of `token`
    /// and `app`.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// `app = { id, installation_id, private_key }`: authenticate as a
    /// GitHub App installation instead of with a token.
    #[serde(default)]
    pub app: Option<GithubApp>,
    /// `base_url`: the REST API root; default `https://api.github.com`
    /// (GitHub Enterprise Server: `https://HOST/api/v3`). No trailing `/`.
    #[serde(default = "default_github_base_url")]
    pub base_url: String,
}

/// GitHub App credentials (`app = { … }` of a github source).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubApp {
    /// `id`: the App id.
    pub id: u64,
    /// `installation_id`: the App's installation on the organization.
    pub installation_id: u64,
    /// `private_key`: the App's PEM private key (a secret reference).
    pub private_key: SecretRef,
}

fn default_region() -> String {
    "us-east-1".to_string()
}

fn default_owner_tags() -> Vec<String> {
    vec!["owner".to_string(), "Owner".to_string(), "accessgraph:owner".to_string()]
}

fn default_agent_tags() -> BTreeMap<String, String> {
    BTreeMap::from([("accessgraph:kind".to_string(), "agent".to_string())])
}

/// `kind = "aws-iam"`: IAM users, groups, roles, policies and access keys of
/// one account (or several, through `assume_roles`). Credentials come from
/// the standard AWS chain (environment, profile, instance role).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsIamSettings {
    /// `account_name`: a readable name for the account, used in reports (required).
    pub account_name: String,
    /// `region`: the region for API calls (IAM is global); default `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// `endpoint_url`: another IAM/STS endpoint (a proxy, LocalStack or a test
    /// server); default: AWS's own.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// `assume_roles`: role ARNs to assume, one per further account to read;
    /// default none (only the account of the credentials).
    #[serde(default)]
    pub assume_roles: Vec<String>,
    /// `owner_tags`: tag keys whose value names a principal's owner (email or
    /// identity id); the first present wins. Default
    /// `["owner", "Owner", "accessgraph:owner"]`.
    #[serde(default = "default_owner_tags")]
    pub owner_tags: Vec<String>,
    /// `agent_tags`: tag key → value; a principal carrying any of these tags
    /// is an agent. Default `{ "accessgraph:kind" = "agent" }`.
    #[serde(default = "default_agent_tags")]
    pub agent_tags: BTreeMap<String, String>,
    /// `authorization_details`: offline mode: the JSON output of
    /// `aws iam get-account-authorization-details` instead of API calls.
    /// Give both offline files or neither. Relative to the config's folder.
    #[serde(default)]
    pub authorization_details: Option<PathBuf>,
    /// `credential_report`: offline mode: the CSV of
    /// `aws iam get-credential-report` (access key ages and last use).
    /// Give both offline files or neither. Relative to the config's folder.
    #[serde(default)]
    pub credential_report: Option<PathBuf>,
}

fn default_openai_base_url() -> String {
    "https://api.openai.com/v1".to_string()
}

/// `kind = "openai"`: the organization's users, projects, service accounts
/// and API keys, read with an admin key.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiSettings {
    /// `admin_key`: an organization admin key (a secret reference; required).
    pub admin_key: SecretRef,
    /// `base_url`: the API root; default `https://api.openai.com/v1`.
    #[serde(default = "default_openai_base_url")]
    pub base_url: String,
}

fn default_anthropic_base_url() -> String {
    "https://api.anthropic.com".to_string()
}

/// `kind = "anthropic"`: the organization's users, workspaces and API keys,
/// read with an admin key.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicSettings {
    /// `admin_key`: an Admin API key (a secret reference; required).
    pub admin_key: SecretRef,
    /// `base_url`: the API root; default `https://api.anthropic.com`.
    #[serde(default = "default_anthropic_base_url")]
    pub base_url: String,
}

/// Dialect of a SCIM server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScimFlavor {
    /// Plain SCIM 2.0 (RFC 7644).
    #[default]
    Generic,
    /// Okta's SCIM quirks.
    Okta,
    /// Microsoft Entra ID's SCIM quirks.
    Entra,
}

/// `kind = "scim"`: people and groups from an identity provider's SCIM 2.0
/// API. Always an identity source: it decides whether an owner is active.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimSettings {
    /// `base_url`: the SCIM root, e.g. `https://idp.example/scim/v2` (required).
    pub base_url: String,
    /// `token`: bearer token (a secret reference; required).
    pub token: SecretRef,
    /// `flavor`: `generic`, `okta` or `entra`; default `generic`.
    #[serde(default)]
    pub flavor: ScimFlavor,
}

/// `kind = "snapshot"`: any system, from a JSON export (CONTRACT §4).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSettings {
    /// `path`: the export file (required; relative to the config's folder).
    pub path: PathBuf,
    /// `identity_source`: this export is a source of truth for people (an
    /// IdP export): its identities decide whether an owner is active.
    /// Default `false`. (An extension to the contract.)
    #[serde(default)]
    pub identity_source: bool,
}

/// What parsing one `[[source]]` table yields: the source when valid, and
/// its name (even when the rest is invalid) for duplicate and reference checks.
pub(crate) struct ParsedSource {
    pub(crate) source: Option<SourceConfig>,
    pub(crate) name: Option<Spanned<String>>,
}

impl GithubSettings {
    fn check(&mut self, c: &mut Checker<'_, '_, '_>) {
        c.non_empty("org", &self.org);
        c.http_url("base_url", &mut self.base_url);
        match (&mut self.token, &mut self.app) {
            (Some(_), Some(_)) => {
                let message = format!("{} takes either `token` or `app`, not both", c.what);
                c.at_key("app", message);
            }
            (None, None) => {
                let message = format!("missing required key `token` (or `app`) in {}", c.what);
                c.ctx.at(Some(c.header.clone()), message);
            }
            (Some(token), None) => token.resolve_path(c.base),
            (None, Some(app)) => app.private_key.resolve_path(c.base),
        }
    }
}

impl AwsIamSettings {
    fn check(&mut self, c: &mut Checker<'_, '_, '_>) {
        c.non_empty("account_name", &self.account_name);
        c.non_empty("region", &self.region);
        if let Some(url) = &mut self.endpoint_url {
            c.http_url("endpoint_url", url);
        }
        for arn in &self.assume_roles {
            if !(arn.starts_with("arn:") && arn.contains(":role/")) {
                let message = format!(
                    "`assume_roles` in {} must hold role ARNs (arn:aws:iam::ACCOUNT:role/NAME), found `{arn}`",
                    c.what
                );
                c.at_key("assume_roles", message);
            }
        }
        match (&mut self.authorization_details, &mut self.credential_report) {
            (Some(details), Some(report)) => {
                c.existing_file("authorization_details", details, "authorization details file");
                c.existing_file("credential_report", report, "credential report file");
            }
            (Some(_), None) => {
                let message =
                    format!("{}: offline mode needs both `authorization_details` and `credential_report`", c.what);
                c.at_key("authorization_details", message);
            }
            (None, Some(_)) => {
                let message =
                    format!("{}: offline mode needs both `authorization_details` and `credential_report`", c.what);
                c.at_key("credential_report", message);
            }
            (None, None) => {}
        }
    }
}

impl OpenAiSettings {
    fn check(&mut self, c: &mut Checker<'_, '_, '_>) {
        c.http_url("base_url", &mut self.base_url);
        self.admin_key.resolve_path(c.base);
    }
}

impl AnthropicSettings {
    fn check(&mut self, c: &mut Checker<'_, '_, '_>) {
        c.http_url("base_url", &mut self.base_url);
        self.admin_key.resolve_path(c.base);
    }
}

impl ScimSettings {
    fn check(&mut self, c: &mut Checker<'_, '_, '_>) {
        c.http_url("base_url", &mut self.base_url);
        self.token.resolve_path(c.base);
    }
}

impl SnapshotSettings {
    fn check(&mut self, c: &mut Checker<'_, '_, '_>) {
        if self.path.as_os_str().is_empty() {
            let message = format!("`path` in {} is empty", c.what);
            c.at_key("path", message);
            return;
        }
        c.existing_file("path", &mut self.path, "snapshot file");
    }
}

/// Whether a source name can prefix node ids.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("is empty")
    } else if name.contains(':') || name.chars().any(char::is_whitespace) {
        Some("may not contain `:` or whitespace (it prefixes node ids)")
    } else if name == "person" {
        Some("is reserved (`person:EMAIL` are resolved people)")
    } else {
        None
    }
}

/// Parses one `[[source]]` table (`index` is 1-based, for messages).
pub(crate) fn parse_source(ctx: &mut FileCtx<'_>, value: Value<'_>, index: usize, base: &Path) -> ParsedSource {
    let header = value.span();
    let line = ctx.line_of(&header);
    let DeValue::Table(mut table) = value.into_inner() else {
        return ParsedSource { source: None, name: None };
    };
    let anonymous = format!("[[source]] #{index}");
    let name = take_string(ctx, &mut table, "name", &anonymous);
    let kind = take_string(ctx, &mut table, "kind", &anonymous);
    let name_given = name.is_err() || matches!(name, Ok(Some(_)));
    let kind_given = kind.is_err() || matches!(kind, Ok(Some(_)));
    let (name, kind) = (name.ok().flatten(), kind.ok().flatten());
    let what_common = match &name {
        Some(name) => format!("[[source]] \"{}\"", name.get_ref()),
        None => anonymous.clone(),
    };
    let schedule = take_string(ctx, &mut table, "schedule", &what_common).ok().flatten();

    if let Some(name) = &name
        && let Some(problem) = name_problem(name.get_ref())
    {
        ctx.at(Some(name.span()), format!("source name `{}` {problem}", name.get_ref()));
    }
    if !name_given {
        ctx.at(Some(header.clone()), format!("missing required key `name` in {anonymous}"));
    }
    let schedule = schedule.and_then(|text| match Schedule::parse(text.get_ref()) {
        Ok(schedule) => Some(schedule),
        Err(message) => {
            ctx.at(Some(text.span()), format!("invalid `schedule` in {what_common}: {message}"));
            None
        }
    });
    let Some(kind) = kind else {
        if !kind_given {
            ctx.at(
                Some(header.clone()),
                format!("missing required key `kind` in {what_common}; expected one of: {}", SOURCE_KINDS.join(", ")),
            );
        }
        return ParsedSource { source: None, name };
    };
    if !SOURCE_KINDS.contains(&kind.get_ref().as_str()) {
        ctx.at(
            Some(kind.span()),
            format!(
                "unknown source kind `{}` in {what_common}; expected one of: {}",
                kind.get_ref(),
                SOURCE_KINDS.join(", ")
            ),
        );
        return ParsedSource { source: None, name };
    }
    let what = format!("{what_common} (kind {})", kind.get_ref());
    let lookup = table.clone();
    let rest: Value<'_> = Spanned::new(header.clone(), DeValue::Table(table));
    let settings = match kind.get_ref().as_str() {
        "github" => deserialize_table::<GithubSettings>(ctx, rest, &what).map(SourceSettings::Github),
        "aws-iam" => deserialize_table::<AwsIamSettings>(ctx, rest, &what).map(SourceSettings::AwsIam),
        "openai" => deserialize_table::<OpenAiSettings>(ctx, rest, &what).map(SourceSettings::OpenAi),
        "anthropic" => deserialize_table::<AnthropicSettings>(ctx, rest, &what).map(SourceSettings::Anthropic),
        "scim" => deserialize_table::<ScimSettings>(ctx, rest, &what).map(SourceSettings::Scim),
        _ => deserialize_table::<SnapshotSettings>(ctx, rest, &what).map(SourceSettings::Snapshot),
    };
    let Some(mut settings) = settings else {
        return ParsedSource { source: None, name };
    };
    let mut checker = Checker { ctx, table: lookup, what, header, base };
    match &mut settings {
        SourceSettings::Github(s) => s.check(&mut checker),
        SourceSettings::AwsIam(s) => s.check(&mut checker),
        SourceSettings::OpenAi(s) => s.check(&mut checker),
        SourceSettings::Anthropic(s) => s.check(&mut checker),
        SourceSettings::Scim(s) => s.check(&mut checker),
        SourceSettings::Snapshot(s) => s.check(&mut checker),
    }
    let source =
        name.as_ref().map(|name| SourceConfig { name: name.get_ref().clone(), schedule, settings, line: Some(line) });
    ParsedSource { source, name }
}
