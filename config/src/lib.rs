//! Raw TOML → validated accessgraph configuration (CONTRACT §2), the agent
//! catalog (§5) and the Cedar policy; secrets by reference.
//!
//! [`load`] reads the config file and the catalog and policy files it names,
//! and reports every problem it finds with its file and line, so
//! `accessgraph check` can print them all at once. Secrets are only
//! referenced (`{ env = "…" }`, `{ file = "…" }`): [`check_secrets`] and
//! [`SecretRef::resolve`] read them when needed.
#![deny(missing_docs)]

mod catalog;
mod hygiene;
mod policy;
mod problem;
mod raw;
mod secret;
mod sinks;
mod sources;

#[cfg(test)]
mod tests;

pub use accessgraph_graph::settings::{Catalog, CatalogAgent, SodRule, SodSide, Thresholds, Tier, TierPolicy, Tiers};
pub use hygiene::warnings;
pub use policy::PolicyConfig;
pub use problem::{Problem, Problems};
pub use secret::{Secret, SecretError, SecretRef};
pub use sinks::{
    DEFAULT_EVENTS_FILE, GithubIssuesSettings, JiraSettings, JsonlSettings, SINK_KINDS, SinkConfig, SinkSettings,
    WebhookSettings, glob_match,
};
pub use sources::{
    AnthropicSettings, AwsIamSettings, GithubApp, GithubSettings, OpenAiSettings, SOURCE_KINDS, Schedule, ScimFlavor,
    ScimSettings, SnapshotSettings, SourceConfig, SourceSettings,
};

use accessgraph_graph::settings::AnalysisSettings;
use problem::FileCtx;
use raw::{Value, array_of_tables, deserialize_table, key_span};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The default store: a SQLite file beside the config file.
pub const DEFAULT_STORE_URL: &str = "sqlite://accessgraph.db";

/// The default address of the daemon's HTTP API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// The keys a config file may have at the top level.
const TOP_LEVEL_KEYS: &[&str] =
    &["store", "source", "catalog", "policy", "sod", "server", "identity", "rules", "tiers", "sink"];

/// A loaded, validated configuration. Every relative path in it has been
/// resolved against the config file's folder.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The config file, as given to [`load`].
    pub path: PathBuf,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[[source]]`, in file order.
    pub sources: Vec<SourceConfig>,
    /// The agent catalog read from `[catalog] path`; empty without `[catalog]`.
    pub catalog: Catalog,
    /// The catalog file, when configured.
    pub catalog_path: Option<PathBuf>,
    /// `[policy]`, when configured.
    pub policy: Option<PolicyConfig>,
    /// `[[sod]]`: separation-of-duties rules, in file order.
    pub sod: Vec<SodRule>,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[[identity.alias]]`, in file order.
    pub aliases: Vec<Alias>,
    /// `[rules]`: thresholds.
    pub thresholds: Thresholds,
    /// `[tiers.low|medium|high]`: every tier or key not given keeps its default.
    pub tiers: Tiers,
    /// `[[sink]]`, in file order; without any, one `jsonl` sink writing
    /// `accessgraph-events.jsonl` beside the config file.
    pub sinks: Vec<SinkConfig>,
}

impl Config {
    /// The source of that name.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|source| source.name == name)
    }

    /// What the analyzer needs besides the graph.
    pub fn analysis_settings(&self) -> AnalysisSettings {
        AnalysisSettings {
            catalog: self.catalog.clone(),
            thresholds: self.thresholds.clone(),
            tiers: self.tiers.clone(),
            sod: self.sod.clone(),
            governed: self
                .policy
                .as_ref()
                .and_then(|policy| policy.governs.as_ref())
                .map(|names| names.iter().cloned().collect()),
        }
    }
}

/// `[store]`: where snapshots, findings and tickets are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// `url`: `sqlite://FILE` (created when missing; a relative FILE is
    /// resolved against the config's folder, giving `sqlite:///ABS/FILE`),
    /// `sqlite::memory:`, or `postgres://user@host/db`. Default
    /// `sqlite://accessgraph.db`.
    pub url: String,
}

/// `[server]`: the daemon's HTTP API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// `listen`: address and port (an IP, not a host name); default `127.0.0.1:9464`.
    pub listen: SocketAddr,
    /// `token`: when set, every path but `/healthz` and `/readyz` requires
    /// `Authorization: Bearer TOKEN` (a secret reference).
    pub token: Option<SecretRef>,
    /// Line of the `[server]` header, for messages.
    pub line: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 9464)), token: None, line: None }
    }
}

/// `[[identity.alias]]`: binds an account without an email to a person.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    /// `account`: the account's node id, e.g. `github-acme:user:octo-al`.
    pub account: String,
    /// `email`: the person's email.
    pub email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreRaw {
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogRaw {
    path: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRaw {
    cedar: PathBuf,
    #[serde(default)]
    governs: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerRaw {
    #[serde(default)]
    listen: Option<Spanned<String>>,
    #[serde(default)]
    token: Option<SecretRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierOverride {
    #[serde(default)]
    max_credential_days: Option<u32>,
    #[serde(default)]
    dual_control: Option<bool>,
}

/// Reads the config file, then the catalog and Cedar policy files it names.
/// Returns every problem found (a TOML syntax error stops only its file).
pub fn load(path: &Path) -> Result<Config, Problems> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        Problems(vec![Problem::in_file(path, format!("cannot read config file: {}", raw::describe_io(&error)))])
    })?;
    load_text(path, &text)
}

/// [`load`] of a config file already read: `path` names it in problems and
/// anchors the relative paths inside it.
fn load_text(path: &Path, text: &str) -> Result<Config, Problems> {
    let folder_as_given = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let folder = if folder_as_given.as_os_str().is_empty() {
        std::path::absolute(".")
    } else {
        std::path::absolute(&folder_as_given)
    }
    .unwrap_or_else(|_| folder_as_given.clone());
    let mut loader = Loader { ctx: FileCtx::new(path, text), folder, folder_as_given, other_files: Vec::new() };
    let config = loader.load(path);
    let mut problems = loader.ctx.finish();
    problems.extend(loader.other_files);
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(Problems(problems)),
    }
}

/// Entry points for the `cargo fuzz` targets in `fuzz/` (not an API): the
/// real parsers on text held in memory.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    use super::{Catalog, Config, Problem, Problems};

    /// Where the fuzzed config file pretends to live: a folder that does
    /// not exist, so the files it names are never found (nor read).
    pub const CONFIG_PATH: &str = "/nonexistent/accessgraph-fuzz/accessgraph.toml";

    /// A config file's text, loaded and validated as [`super::load`] does.
    pub fn config(text: &str) -> Result<Config, Problems> {
        super::load_text(Path::new(CONFIG_PATH), text)
    }

    /// A catalog file's text (`agents.toml`).
    pub fn catalog(text: &str) -> (Catalog, Vec<Problem>) {
        super::catalog::parse_catalog(Path::new("agents.toml"), text)
    }
}

/// Reads every secret the config references, reporting those that cannot be
/// read (unset variables, missing or empty files). Separate from [`load`] so
/// that a config can be checked where the secrets are not available.
pub fn check_secrets(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut check = |what: String, key: &str, secret: &SecretRef, line: Option<usize>| {
        if let Err(error) = secret.resolve() {
            problems.push(Problem {
                file: config.path.clone(),
                line,
                column: None,
                message: format!("`{key}` in {what}: {error}"),
            });
        }
    };
    for source in &config.sources {
        let what = format!("[[source]] \"{}\" (kind {})", source.name, source.kind());
        for (key, secret) in source.settings.secret_refs() {
            check(what.clone(), key, secret, source.line);
        }
    }
    for sink in &config.sinks {
        let what = format!("[[sink]] \"{}\" (kind {})", sink.name, sink.kind());
        for (key, secret) in sink.settings.secret_refs() {
            check(what.clone(), key, secret, sink.line);
        }
    }
    if let Some(token) = &config.server.token {
        check("[server]".to_string(), "token", token, config.server.line);
    }
    problems
}

impl SourceSettings {
    /// The secrets this source references, by key.
    pub fn secret_refs(&self) -> Vec<(&'static str, &SecretRef)> {
        match self {
            SourceSettings::Github(github) => {
                let mut refs = Vec::new();
                if let Some(token) = &github.token {
                    refs.push(("token", token));
                }
                if let Some(app) = &github.app {
                    refs.push(("app.private_key", &app.private_key));
                }
                refs
            }
            SourceSettings::AwsIam(_) | SourceSettings::Snapshot(_) => Vec::new(),
            SourceSettings::OpenAi(openai) => vec![("admin_key", &openai.admin_key)],
            SourceSettings::Anthropic(anthropic) => vec![("admin_key", &anthropic.admin_key)],
            SourceSettings::Scim(scim) => vec![("token", &scim.token)],
        }
    }
}

impl SinkSettings {
    /// The secrets this sink references, by key.
    pub fn secret_refs(&self) -> Vec<(&'static str, &SecretRef)> {
        match self {
            SinkSettings::GithubIssues(github) => vec![("token", &github.token)],
            SinkSettings::Jira(jira) => vec![("token", &jira.token)],
            SinkSettings::Webhook(webhook) => webhook.secret.iter().map(|s| ("secret", s)).collect(),
            SinkSettings::Jsonl(_) => Vec::new(),
        }
    }
}

/// Resolves a relative SQLite path against the config's folder; other URLs
/// are returned unchanged.
fn resolve_store_url(url: &str, folder: &Path) -> Result<String, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_string());
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(format!("`url` in [store] must start with `sqlite:` or `postgres://`, found `{url}`"));
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (file, query) = match rest.split_once('?') {
        Some((file, query)) => (file, Some(query)),
        None => (rest, None),
    };
    if file.is_empty() {
        return Err(format!("`url` in [store] names no database file: `{url}`"));
    }
    if file == ":memory:" || file.starts_with('/') {
        return Ok(url.to_string());
    }
    let mut resolved = format!("sqlite://{}", folder.join(file).display());
    if let Some(query) = query {
        resolved.push('?');
        resolved.push_str(query);
    }
    Ok(resolved)
}

/// Why the HTTP API must not listen on `listen` without a token: every
/// address but loopback is reachable by others, and the API answers who can
/// reach what across the whole company. `None` when it may.
pub fn exposure_problem(listen: SocketAddr, has_token: bool) -> Option<String> {
    let ip = listen.ip().to_canonical();
    if has_token || ip.is_loopback() {
        return None;
    }
    Some(format!(
        "the HTTP API would listen on {listen}, which is not a loopback address, without a `token`: \
         set `token = {{ env = \"ACCESSGRAPH_API_TOKEN\" }}` in [server], or listen on 127.0.0.1 \
         (e.g. behind a reverse proxy that authenticates)"
    ))
}

/// Is `id` a node id (`SOURCE:KIND:KEY`) of a configured source?
fn node_id_problem(id: &str, sources: &BTreeMap<String, usize>) -> Option<String> {
    let mut parts = id.splitn(3, ':');
    let (Some(source), Some(_kind), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Some(format!("`{id}` is not a node id (SOURCE:KIND:KEY)"));
    };
    if key.is_empty() {
        return Some(format!("`{id}` is not a node id (SOURCE:KIND:KEY)"));
    }
    if !sources.contains_key(source) {
        let known: Vec<&str> = sources.keys().map(String::as_str).collect();
        return Some(format!(
            "`{id}` names unknown source `{source}`; configured sources: {}",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ));
    }
    None
}

/// One load in progress: the config file's problems and the other files'.
struct Loader<'t> {
    ctx: FileCtx<'t>,
    /// Absolute folder of the config file: relative paths resolve here.
    folder: PathBuf,
    /// The same folder as the user named it: other files' names in problems.
    folder_as_given: PathBuf,
    /// Problems of the catalog and policy files.
    other_files: Vec<Problem>,
}

impl<'t> Loader<'t> {
    fn load(&mut self, path: &Path) -> Option<Config> {
        let text = self.ctx.text;
        let (doc, errors) = DeTable::parse_recoverable(text);
        if !errors.is_empty() {
            for error in errors {
                self.ctx.at(error.span(), format!("invalid TOML: {}", error.message()));
            }
            return None;
        }
        let mut doc = doc.into_inner();
        for (key, _) in doc.iter() {
            if !TOP_LEVEL_KEYS.contains(&key.get_ref().as_ref()) {
                self.ctx.at(
                    Some(key.span()),
                    format!(
                        "unknown top-level key `{}`; expected one of: {}",
                        key.get_ref(),
                        TOP_LEVEL_KEYS.join(", ")
                    ),
                );
            }
        }

        let store = self.store(doc.remove("store"));
        let (sources, source_names) = self.sources(doc.remove("source"));
        let (catalog, catalog_path) = match doc.remove("catalog") {
            Some(value) => self.catalog(value),
            None => (Catalog::default(), None),
        };
        let policy = doc.remove("policy").and_then(|value| self.policy(value, &source_names));
        let sod = self.sod(doc.remove("sod"), &source_names);
        let server = self.server(doc.remove("server"));
        let aliases = self.aliases(doc.remove("identity"), &source_names);
        let thresholds = match doc.remove("rules") {
            Some(value) => deserialize_table::<Thresholds>(&mut self.ctx, value, "[rules]").unwrap_or_default(),
            None => Thresholds::default(),
        };
        let tiers = self.tiers(doc.remove("tiers"));
        let sinks = self.sinks(doc.remove("sink"));

        Some(Config {
            path: path.to_path_buf(),
            store,
            sources,
            catalog,
            catalog_path,
            policy,
            sod,
            server,
            aliases,
            thresholds,
            tiers,
            sinks,
        })
    }

    /// A clone of a value's table (for key spans), or an empty one.
    fn lookup(value: &Value<'t>) -> DeTable<'t> {
        match value.get_ref() {
            DeValue::Table(table) => table.clone(),
            _ => DeTable::default(),
        }
    }

    /// The span of a key in a table, or the fallback span.
    fn span(table: &DeTable<'_>, path: &[&str], fallback: &Value<'_>) -> std::ops::Range<usize> {
        key_span(table, path).unwrap_or_else(|| fallback.span())
    }

    fn store(&mut self, value: Option<Value<'t>>) -> StoreConfig {
        let (url, span) = match value {
            None => (DEFAULT_STORE_URL.to_string(), None),
            Some(value) => {
                let lookup = Self::lookup(&value);
                let span = Self::span(&lookup, &["url"], &value);
                match deserialize_table::<StoreRaw>(&mut self.ctx, value, "[store]") {
                    Some(raw) => (raw.url.unwrap_or_else(|| DEFAULT_STORE_URL.to_string()), Some(span)),
                    None => (DEFAULT_STORE_URL.to_string(), None),
                }
            }
        };
        match resolve_store_url(url.trim(), &self.folder) {
            Ok(url) => StoreConfig { url },
            Err(message) => {
                self.ctx.at(span, message);
                StoreConfig { url }
            }
        }
    }

    /// Sources, and every name given (with its line), valid or not.
    fn sources(&mut self, value: Option<Value<'t>>) -> (Vec<SourceConfig>, BTreeMap<String, usize>) {
        let mut sources = Vec::new();
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let Some(value) = value else {
            return (sources, names);
        };
        let entries = array_of_tables(&mut self.ctx, value, "`source` ([[source]])");
        for (i, entry) in entries.into_iter().enumerate() {
            let parsed = sources::parse_source(&mut self.ctx, entry, i + 1, &self.folder);
            if let Some(name) = &parsed.name {
                let line = self.ctx.line_of(&name.span());
                if let Some(first) = names.get(name.get_ref()) {
                    self.ctx.at(
                        Some(name.span()),
                        format!("duplicate source name `{}` (first defined at line {first})", name.get_ref()),
                    );
                    continue;
                }
                names.insert(name.get_ref().clone(), line);
            }
            if let Some(source) = parsed.source {
                sources.push(source);
            }
        }
        (sources, names)
    }

    /// A file named by the config, resolved; its text or a problem at `span`.
    fn read_named_file(
        &mut self,
        named: &Path,
        span: std::ops::Range<usize>,
        what: &str,
    ) -> (PathBuf, PathBuf, Option<String>) {
        let resolved = self.folder.join(named);
        let display = self.folder_as_given.join(named);
        match std::fs::read_to_string(&resolved) {
            Ok(text) => (resolved, display, Some(text)),
            Err(error) => {
                self.ctx.at(
                    Some(span),
                    format!("{what} `{}` cannot be read: {}", resolved.display(), raw::describe_io(&error)),
                );
                (resolved, display, None)
            }
        }
    }

    fn catalog(&mut self, value: Value<'t>) -> (Catalog, Option<PathBuf>) {
        let lookup = Self::lookup(&value);
        let span = Self::span(&lookup, &["path"], &value);
        let Some(raw) = deserialize_table::<CatalogRaw>(&mut self.ctx, value, "[catalog]") else {
            return (Catalog::default(), None);
        };
        let (resolved, display, text) = self.read_named_file(&raw.path, span, "catalog file");
        let Some(text) = text else {
            return (Catalog::default(), Some(resolved));
        };
        let (catalog, problems) = catalog::parse_catalog(&display, &text);
        self.other_files.extend(problems);
        (catalog, Some(resolved))
    }

    fn policy(&mut self, value: Value<'t>, sources: &BTreeMap<String, usize>) -> Option<PolicyConfig> {
        let lookup = Self::lookup(&value);
        let span = Self::span(&lookup, &["cedar"], &value);
        let raw = deserialize_table::<PolicyRaw>(&mut self.ctx, value, "[policy]")?;
        let governs = raw.governs.map(|names| {
            for name in &names {
                if !sources.contains_key(name.get_ref()) {
                    let known: Vec<&str> = sources.keys().map(String::as_str).collect();
                    self.ctx.at(
                        Some(name.span()),
                        format!(
                            "`governs` in [policy] names unknown source `{}`; configured sources: {}",
                            name.get_ref(),
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        ),
                    );
                }
            }
            names.into_iter().map(Spanned::into_inner).collect()
        });
        let (resolved, display, text) = self.read_named_file(&raw.cedar, span, "policy file");
        let text = text?;
        self.other_files.extend(policy::check_policy(&display, &text));
        Some(PolicyConfig { cedar_path: resolved, text, governs })
    }

    fn sod(&mut self, value: Option<Value<'t>>, sources: &BTreeMap<String, usize>) -> Vec<SodRule> {
        let mut rules = Vec::new();
        let Some(value) = value else { return rules };
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        for (i, entry) in array_of_tables(&mut self.ctx, value, "`sod` ([[sod]])").into_iter().enumerate() {
            let lookup = Self::lookup(&entry);
            let what = match lookup.get("name").and_then(|name| name.get_ref().as_str()) {
                Some(name) if !name.trim().is_empty() => format!("[[sod]] \"{name}\""),
                _ => format!("[[sod]] #{}", i + 1),
            };
            let header = entry.clone();
            let Some(rule) = deserialize_table::<SodRule>(&mut self.ctx, entry, &what) else {
                continue;
            };
            let fields = [
                ("name", &rule.name, false),
                ("left.resource", &rule.left.resource, true),
                ("left.action", &rule.left.action, false),
                ("right.resource", &rule.right.resource, true),
                ("right.action", &rule.right.action, false),
            ];
            for (key, text, is_node) in fields {
                let path: Vec<&str> = key.split('.').collect();
                let span = Self::span(&lookup, &path, &header);
                if text.trim().is_empty() {
                    self.ctx.at(Some(span), format!("`{key}` in {what} is empty"));
                } else if is_node && let Some(problem) = node_id_problem(text, sources) {
                    self.ctx.at(Some(span), format!("`{key}` in {what}: {problem}"));
                }
            }
            let name_span = Self::span(&lookup, &["name"], &header);
            let line = self.ctx.line_of(&name_span);
            if let Some(first) = names.get(&rule.name) {
                self.ctx.at(
                    Some(name_span),
                    format!("duplicate [[sod]] name `{}` (first defined at line {first})", rule.name),
                );
            } else {
                names.insert(rule.name.clone(), line);
            }
            rules.push(rule);
        }
        rules
    }

    fn server(&mut self, value: Option<Value<'t>>) -> ServerConfig {
        let Some(value) = value else {
            return ServerConfig::default();
        };
        let line = Some(self.ctx.line_of(&value.span()));
        let mut server = ServerConfig { line, ..ServerConfig::default() };
        let Some(raw) = deserialize_table::<ServerRaw>(&mut self.ctx, value, "[server]") else {
            return server;
        };
        if let Some(listen) = &raw.listen {
            match listen.get_ref().trim().parse::<SocketAddr>() {
                Ok(address) => {
                    server.listen = address;
                    if raw.token.is_none()
                        && let Some(why) = exposure_problem(address, false)
                    {
                        self.ctx.at(Some(listen.span()), format!("`listen` in [server]: {why}"));
                    }
                }
                Err(_) => self.ctx.at(
                    Some(listen.span()),
                    format!(
                        "invalid `listen` in [server]: `{}` is not an IP address and port, e.g. {DEFAULT_LISTEN} or [::1]:9464",
                        listen.get_ref()
                    ),
                ),
            }
        }
        server.token = raw.token.map(|mut token| {
            token.resolve_path(&self.folder);
            token
        });
        server
    }

    fn aliases(&mut self, value: Option<Value<'t>>, sources: &BTreeMap<String, usize>) -> Vec<Alias> {
        let mut aliases = Vec::new();
        let Some(value) = value else { return aliases };
        let span = value.span();
        let DeValue::Table(table) = value.into_inner() else {
            self.ctx.at(Some(span), "`identity` must be a table holding [[identity.alias]] tables");
            return aliases;
        };
        let mut accounts: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for (key, value) in table {
            if key.get_ref() != "alias" {
                self.ctx.at(
                    Some(key.span()),
                    format!("unknown key `{}` in [identity]; expected one of: alias", key.get_ref()),
                );
                continue;
            }
            let entries = array_of_tables(&mut self.ctx, value, "`identity.alias` ([[identity.alias]])");
            for (i, entry) in entries.into_iter().enumerate() {
                let what = format!("[[identity.alias]] #{}", i + 1);
                let lookup = Self::lookup(&entry);
                let header = entry.clone();
                let Some(alias) = deserialize_table::<Alias>(&mut self.ctx, entry, &what) else {
                    continue;
                };
                let account_span = Self::span(&lookup, &["account"], &header);
                let email_span = Self::span(&lookup, &["email"], &header);
                if alias.account.trim().is_empty() {
                    self.ctx.at(Some(account_span.clone()), format!("`account` in {what} is empty"));
                } else if let Some(problem) = node_id_problem(&alias.account, sources) {
                    self.ctx.at(Some(account_span.clone()), format!("`account` in {what}: {problem}"));
                }
                if alias.email.trim().is_empty() {
                    self.ctx.at(Some(email_span), format!("`email` in {what} is empty"));
                } else if !alias.email.contains('@') {
                    self.ctx
                        .at(Some(email_span), format!("`email` in {what} is not an email address: `{}`", alias.email));
                }
                let line = self.ctx.line_of(&account_span);
                match accounts.get(&alias.account) {
                    Some((email, first)) if !email.eq_ignore_ascii_case(&alias.email) => self.ctx.at(
                        Some(account_span),
                        format!(
                            "account `{}` is aliased to two people: {email} (line {first}) and {}",
                            alias.account, alias.email
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        accounts.insert(alias.account.clone(), (alias.email.clone(), line));
                    }
                }
                aliases.push(alias);
            }
        }
        aliases
    }

    fn tiers(&mut self, value: Option<Value<'t>>) -> Tiers {
        let mut tiers = Tiers::default();
        let Some(value) = value else { return tiers };
        let span = value.span();
        let DeValue::Table(table) = value.into_inner() else {
            self.ctx.at(Some(span), "`tiers` must be a table: [tiers.low], [tiers.medium], [tiers.high]");
            return tiers;
        };
        for (key, value) in table {
            let policy = match key.get_ref().as_ref() {
                "low" => &mut tiers.low,
                "medium" => &mut tiers.medium,
                "high" => &mut tiers.high,
                other => {
                    self.ctx.at(
                        Some(key.span()),
                        format!("unknown tier `{other}` in [tiers]; expected one of: low, medium, high"),
                    );
                    continue;
                }
            };
            let what = format!("[tiers.{}]", key.get_ref());
            let lookup = Self::lookup(&value);
            let header = value.clone();
            let Some(raw) = deserialize_table::<TierOverride>(&mut self.ctx, value, &what) else {
                continue;
            };
            if let Some(days) = raw.max_credential_days {
                if days == 0 {
                    let span = Self::span(&lookup, &["max_credential_days"], &header);
                    self.ctx.at(Some(span), format!("`max_credential_days` in {what} must be at least 1"));
                } else {
                    policy.max_credential_days = days;
                }
            }
            if let Some(dual_control) = raw.dual_control {
                policy.dual_control = dual_control;
            }
        }
        tiers
    }

    fn sinks(&mut self, value: Option<Value<'t>>) -> Vec<SinkConfig> {
        let Some(value) = value else {
            return vec![SinkConfig::default_jsonl(&self.folder)];
        };
        let entries = array_of_tables(&mut self.ctx, value, "`sink` ([[sink]])");
        let parsed: Vec<_> = entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| sinks::parse_sink(&mut self.ctx, entry, i + 1, &self.folder))
            .collect();
        // Explicit names first: they must be unique, and defaults avoid them.
        let mut used: BTreeMap<String, usize> = BTreeMap::new();
        for sink in &parsed {
            if let Some(name) = &sink.explicit_name {
                let line = self.ctx.line_of(&name.span());
                if let Some(first) = used.get(name.get_ref()) {
                    self.ctx.at(
                        Some(name.span()),
                        format!("duplicate sink name `{}` (first defined at line {first})", name.get_ref()),
                    );
                } else {
                    used.insert(name.get_ref().clone(), line);
                }
            }
        }
        let mut taken: BTreeSet<String> = used.into_keys().collect();
        let mut sinks = Vec::new();
        for parsed in parsed {
            let Some(mut sink) = parsed.sink else {
                continue;
            };
            if parsed.explicit_name.is_none() {
                let kind = sink.kind();
                let mut name = kind.to_string();
                let mut n = 1;
                while taken.contains(&name) {
                    n += 1;
                    name = format!("{kind}-{n}");
                }
                taken.insert(name.clone());
                sink.name = name;
            }
            sinks.push(sink);
        }
        sinks
    }
}
