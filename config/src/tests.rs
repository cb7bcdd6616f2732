//! Loading whole config files from temporary folders.

use super::*;
use accessgraph_graph::Severity;
use chrono::NaiveDate;
use std::fs;

/// A temporary folder holding a config file and the files it names.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, text).unwrap();
        path
    }

    fn load(&self, config: &str) -> Result<Config, Problems> {
        let path = self.write("accessgraph.toml", config);
        load(&path)
    }

    fn config(&self, config: &str) -> Config {
        match self.load(config) {
            Ok(config) => config,
            Err(problems) => panic!("expected a valid config, got:\n{problems}"),
        }
    }

    /// The problems, rendered with file names relative to the folder.
    fn problems(&self, config: &str) -> Vec<String> {
        match self.load(config) {
            Ok(_) => panic!("expected problems, config loaded"),
            Err(problems) => render(self, &problems.0),
        }
    }
}

fn render(fixture: &Fixture, problems: &[Problem]) -> Vec<String> {
    problems
        .iter()
        .map(|p| {
            let relative = p.file.strip_prefix(fixture.dir.path()).unwrap_or(&p.file);
            Problem { file: relative.to_path_buf(), ..p.clone() }.to_string()
        })
        .collect()
}

/// Asserts that one problem starts with `place` (`file:line:`) and contains
/// every needle.
#[track_caller]
fn expect(problems: &[String], place: &str, needles: &[&str]) {
    let found = problems.iter().any(|p| p.starts_with(place) && needles.iter().all(|needle| p.contains(needle)));
    assert!(found, "no problem at `{place}` containing {needles:?}; got:\n{}", problems.join("\n"));
}

const CATALOG: &str = r#"
[[agent]]
id = "po-bot"
owner = "alice@acme.example"
controller = "dan@acme.example"
purpose = "Creates purchase orders under 5k"
risk_tier = "high"
allowed_systems = ["netsuite"]
expires = "2027-06-30"
identities = ["netsuite:agent:po-bot"]

[[agent]]
id = "deployer"
owner = "bob@acme.example"
expires = 2027-01-31
identities = ["aws-prod:role:agent-deployer"]
"#;

const POLICY: &str = r#"
permit(principal, action == Action::"read", resource)
when { resource.system == "netsuite" };
"#;

const FULL: &str = r#"
[store]
url = "sqlite://data/ag.db?mode=rwc"

[[source]]
name = "github-acme"
kind = "github"
schedule = "0 */15 * * * *"
org = "acme"
token = { env = "GITHUB_TOKEN" }

[[source]]
name = "gh-app"
kind = "github"
org = "acme"
base_url = "https://ghe.acme.example/api/v3/"
app = { id = 12, installation_id = 34, private_key = { file = "secrets/gh.pem" } }

[[source]]
name = "aws-prod"
kind = "aws-iam"
account_name = "prod"
assume_roles = ["arn:aws:iam::123456789012:role/accessgraph"]
authorization_details = "aws/auth.json"
credential_report = "aws/report.csv"

[[source]]
name = "openai"
kind = "openai"
schedule = "@hourly"
admin_key = { env = "OPENAI_ADMIN_KEY" }

[[source]]
name = "anthropic"
kind = "anthropic"
admin_key = { file = "/run/secrets/anthropic" }

[[source]]
name = "okta"
kind = "scim"
base_url = "https://acme.okta.com/scim/v2"
token = { env = "OKTA_TOKEN" }
flavor = "okta"

[[source]]
name = "netsuite"
kind = "snapshot"
path = "exports/netsuite.json"
identity_source = true

[catalog]
path = "agents.toml"

[policy]
cedar = "policy.cedar"
governs = ["github-acme", "netsuite"]

[[sod]]
name = "merge-without-review"
left  = { resource = "github-acme:repo:acme/payments", action = "write" }
right = { resource = "github-acme:branch:acme/payments@main", action = "bypass-review" }

[server]
listen = "0.0.0.0:8080"
token = { env = "ACCESSGRAPH_API_TOKEN" }

[[identity.alias]]
account = "github-acme:user:octo-al"
email = "alice@acme.example"

[rules]
secret_unused_days = 60
secret_max_age_days = 120
default_tier = "medium"
baseline_window_days = 3

[tiers.low]
max_credential_days = 60
[tiers.medium]
max_credential_days = 14
[tiers.high]
max_credential_days = 1
dual_control = true

[[sink]]
kind = "github-issues"
repo = "acme/security"
token = { env = "GITHUB_TOKEN" }
labels = ["accessgraph"]

[[sink]]
kind = "jira"
base_url = "https://acme.atlassian.net"
project = "SEC"
email = "bot@acme.example"
token = { file = "secrets/jira" }
min_severity = "high"
rules = ["secret.*", "sod.violation"]

[[sink]]
kind = "webhook"
url = "https://hooks.acme.example/ag"
secret = { env = "HOOK_SECRET" }

[[sink]]
kind = "jsonl"
path = "events.jsonl"

[[sink]]
kind = "jsonl"
name = "audit"
path = "audit.jsonl"
min_severity = "low"

[[sink]]
kind = "jsonl"
"#;

fn full_fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.write("agents.toml", CATALOG);
    fixture.write("policy.cedar", POLICY);
    fixture.write("exports/netsuite.json", "{}");
    fixture.write("aws/auth.json", "{}");
    fixture.write("aws/report.csv", "user\n");
    fixture
}

#[test]
fn full_config_loads_with_values_and_defaults() {
    let fixture = full_fixture();
    let config = fixture.config(FULL);
    let dir = std::path::absolute(fixture.dir.path()).unwrap();

    assert_eq!(config.path, fixture.path("accessgraph.toml"));
    assert_eq!(config.store.url, format!("sqlite://{}?mode=rwc", dir.join("data/ag.db").display()));

    let kinds: Vec<&str> = config.sources.iter().map(SourceConfig::kind).collect();
    assert_eq!(kinds, ["github", "github", "aws-iam", "openai", "anthropic", "scim", "snapshot"]);
    let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["github-acme", "gh-app", "aws-prod", "openai", "anthropic", "okta", "netsuite"]);

    let github = config.source("github-acme").unwrap();
    assert_eq!(github.line, Some(5));
    assert_eq!(github.schedule.as_ref().unwrap().text(), "0 */15 * * * *");
    let SourceSettings::Github(settings) = &github.settings else { panic!("github") };
    assert_eq!(settings.org, "acme");
    assert_eq!(settings.token, Some(SecretRef::Env("GITHUB_TOKEN".into())));
    assert_eq!(settings.app, None);
    assert_eq!(settings.base_url, "https://api.github.com");

    let SourceSettings::Github(app) = &config.source("gh-app").unwrap().settings else { panic!() };
    assert_eq!(app.base_url, "https://ghe.acme.example/api/v3", "trailing slash dropped");
    let app = app.app.as_ref().unwrap();
    assert_eq!((app.id, app.installation_id), (12, 34));
    assert_eq!(app.private_key, SecretRef::File(dir.join("secrets/gh.pem")));
    assert!(config.source("gh-app").unwrap().schedule.is_none());

    let SourceSettings::AwsIam(aws) = &config.source("aws-prod").unwrap().settings else { panic!() };
    assert_eq!(aws.account_name, "prod");
    assert_eq!(aws.region, "us-east-1");
    assert_eq!(aws.endpoint_url, None);
    assert_eq!(aws.assume_roles, ["arn:aws:iam::123456789012:role/accessgraph"]);
    assert_eq!(aws.owner_tags, ["owner", "Owner", "accessgraph:owner"]);
    assert_eq!(aws.agent_tags.get("accessgraph:kind").map(String::as_str), Some("agent"));
    assert_eq!(aws.agent_tags.len(), 1);
    assert_eq!(aws.authorization_details, Some(dir.join("aws/auth.json")));
    assert_eq!(aws.credential_report, Some(dir.join("aws/report.csv")));

    let openai = config.source("openai").unwrap();
    assert_eq!(openai.schedule.as_ref().unwrap().text(), "@hourly");
    let SourceSettings::OpenAi(openai) = &openai.settings else { panic!() };
    assert_eq!(openai.base_url, "https://api.openai.com/v1");
    assert_eq!(openai.admin_key, SecretRef::Env("OPENAI_ADMIN_KEY".into()));

    let SourceSettings::Anthropic(anthropic) = &config.source("anthropic").unwrap().settings else { panic!() };
    assert_eq!(anthropic.base_url, "https://api.anthropic.com");
    assert_eq!(anthropic.admin_key, SecretRef::File("/run/secrets/anthropic".into()));

    let okta = config.source("okta").unwrap();
    assert!(okta.settings.is_identity_source());
    let SourceSettings::Scim(scim) = &okta.settings else { panic!() };
    assert_eq!(scim.flavor, ScimFlavor::Okta);
    assert_eq!(scim.base_url, "https://acme.okta.com/scim/v2");

    let netsuite = config.source("netsuite").unwrap();
    assert!(netsuite.settings.is_identity_source());
    assert!(!config.source("github-acme").unwrap().settings.is_identity_source());
    let SourceSettings::Snapshot(snapshot) = &netsuite.settings else { panic!() };
    assert_eq!(snapshot.path, dir.join("exports/netsuite.json"));

    assert_eq!(config.catalog_path, Some(dir.join("agents.toml")));
    assert_eq!(config.catalog.agents.len(), 2);
    let po_bot = config.catalog.agent_for("netsuite:agent:po-bot").unwrap();
    assert_eq!(po_bot.risk_tier, Some(Tier::High));
    assert_eq!(po_bot.expires, NaiveDate::from_ymd_opt(2027, 6, 30));
    let deployer = &config.catalog.agents[1];
    assert_eq!(deployer.expires, NaiveDate::from_ymd_opt(2027, 1, 31), "bare TOML date accepted");

    let policy = config.policy.as_ref().unwrap();
    assert_eq!(policy.cedar_path, dir.join("policy.cedar"));
    assert_eq!(policy.text, POLICY);
    assert_eq!(policy.policy_set().unwrap().policies().count(), 1);
    assert_eq!(policy.governs.as_deref(), Some(&["github-acme".to_string(), "netsuite".to_string()][..]));

    assert_eq!(config.sod.len(), 1);
    assert_eq!(config.sod[0].name, "merge-without-review");
    assert_eq!(config.sod[0].right.action, "bypass-review");

    assert_eq!(config.server.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(config.server.token, Some(SecretRef::Env("ACCESSGRAPH_API_TOKEN".into())));

    assert_eq!(
        config.aliases,
        [Alias { account: "github-acme:user:octo-al".into(), email: "alice@acme.example".into() }]
    );

    assert_eq!(
        config.thresholds,
        Thresholds {
            secret_unused_days: 60,
            secret_max_age_days: 120,
            default_tier: Tier::Medium,
            baseline_window_days: 3
        }
    );
    assert_eq!(config.tiers.low.max_credential_days, 60);
    assert_eq!(config.tiers.medium.max_credential_days, 14);
    assert!(config.tiers.high.dual_control);

    let sinks: Vec<(&str, &str)> = config.sinks.iter().map(|s| (s.name.as_str(), s.kind())).collect();
    assert_eq!(
        sinks,
        [
            ("github-issues", "github-issues"),
            ("jira", "jira"),
            ("webhook", "webhook"),
            ("jsonl", "jsonl"),
            ("audit", "jsonl"),
            ("jsonl-2", "jsonl"),
        ]
    );
    let SinkSettings::GithubIssues(issues) = &config.sinks[0].settings else { panic!() };
    assert_eq!(issues.repo, "acme/security");
    assert_eq!(issues.labels, ["accessgraph"]);
    assert_eq!(issues.base_url, "https://api.github.com");
    assert_eq!(config.sinks[0].min_severity, Severity::Medium);
    assert_eq!(config.sinks[0].rules, ["*"]);
    let SinkSettings::Jira(jira) = &config.sinks[1].settings else { panic!() };
    assert_eq!(jira.issue_type, "Task");
    assert_eq!(jira.done_transition, "Done");
    assert_eq!(jira.token, SecretRef::File(dir.join("secrets/jira")));
    assert_eq!(config.sinks[1].min_severity, Severity::High);
    assert_eq!(config.sinks[1].rules, ["secret.*", "sod.violation"]);
    let SinkSettings::Webhook(webhook) = &config.sinks[2].settings else { panic!() };
    assert_eq!(webhook.secret, Some(SecretRef::Env("HOOK_SECRET".into())));
    let SinkSettings::Jsonl(jsonl) = &config.sinks[3].settings else { panic!() };
    assert_eq!(jsonl.path, dir.join("events.jsonl"));
    let SinkSettings::Jsonl(jsonl) = &config.sinks[5].settings else { panic!() };
    assert_eq!(jsonl.path, dir.join(DEFAULT_EVENTS_FILE));

    let analysis = config.analysis_settings();
    assert!(analysis.is_governed("netsuite"));
    assert!(!analysis.is_governed("okta"));
    assert_eq!(analysis.catalog.agents.len(), 2);
}

#[test]
fn empty_config_takes_every_default() {
    let fixture = Fixture::new();
    let config = fixture.config("# nothing configured\n");
    let dir = std::path::absolute(fixture.dir.path()).unwrap();
    assert_eq!(config.store.url, format!("sqlite://{}", dir.join("accessgraph.db").display()));
    assert!(config.sources.is_empty());
    assert_eq!(config.catalog, Catalog::default());
    assert_eq!(config.catalog_path, None);
    assert_eq!(config.policy, None);
    assert!(config.sod.is_empty());
    assert_eq!(config.server, ServerConfig::default());
    assert_eq!(config.server.listen.to_string(), DEFAULT_LISTEN);
    assert!(config.aliases.is_empty());
    assert_eq!(config.thresholds, Thresholds::default());
    assert_eq!(config.tiers, Tiers::default());
    assert_eq!(config.sinks, [SinkConfig::default_jsonl(&dir)]);
    let SinkSettings::Jsonl(jsonl) = &config.sinks[0].settings else { panic!() };
    assert_eq!(jsonl.path, dir.join("accessgraph-events.jsonl"));
    assert_eq!(config.sinks[0].min_severity, Severity::Medium);
    assert_eq!(config.analysis_settings().governed, None);
}

#[test]
fn sections_present_but_empty_take_defaults() {
    let fixture = Fixture::new();
    let config = fixture.config("[store]\n[server]\n[rules]\n[tiers]\n");
    assert!(config.store.url.starts_with("sqlite:///"));
    assert_eq!(config.server.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(config.server.line, Some(2));
    assert_eq!(config.thresholds, Thresholds::default());
    assert_eq!(config.tiers, Tiers::default());
}

#[test]
fn toml_syntax_errors_name_line_and_column() {
    let fixture = Fixture::new();
    let problems = fixture.problems("[store]\nurl = \"sqlite://x.db\"\n\n[[source]]\nname = github\n");
    expect(&problems, "accessgraph.toml:5:8: ", &["invalid TOML", "string values must be quoted"]);
    let problems = fixture.problems("[server]\nlisten = \"1.2.3.4:1\"\nlisten = \"1.2.3.4:2\"\n");
    expect(&problems, "accessgraph.toml:3:1: ", &["duplicate key"]);
    // Several syntax errors are all reported; nothing else is checked.
    let problems = fixture.problems("a = \nb = \n");
    assert_eq!(problems.len(), 2, "{problems:?}");
    expect(&problems, "accessgraph.toml:1:", &["invalid TOML"]);
    expect(&problems, "accessgraph.toml:2:", &["invalid TOML"]);
}

#[test]
fn unknown_keys_are_reported_at_every_level() {
    let fixture = full_fixture();
    let config = r#"colour = "blue"

[store]
uri = "sqlite://x.db"

[[source]]
name = "github-acme"
kind = "github"
org = "acme"
tokn = { env = "GITHUB_TOKEN" }

[catalog]
path = "agents.toml"
strict = true

[policy]
cedar = "policy.cedar"
govern = ["github-acme"]

[[sod]]
name = "x"
left = { resource = "github-acme:repo:a/b", action = "write", extra = 1 }
right = { resource = "github-acme:repo:a/b", action = "admin" }

[server]
address = "127.0.0.1:1"

[[identity.alias]]
account = "github-acme:user:x"
email = "x@acme.example"
name = "X"

[identity.other]
a = 1

[rules]
secret_unused_dayz = 3

[tiers.high]
max_credential_days = 1
dual = true

[tiers.extreme]
max_credential_days = 1

[[sink]]
kind = "webhook"
url = "https://x.example"
secrett = { env = "S" }
"#;
    let problems = fixture.problems(config);
    let expected = [
        ("accessgraph.toml:1:1: ", "unknown top-level key `colour`"),
        ("accessgraph.toml:4:1: ", "unknown key `uri` in [store]"),
        (
            "accessgraph.toml:10:1: ",
            "unknown key `tokn` in [[source]] \"github-acme\" (kind github); expected one of: org, token, app, base_url",
        ),
        ("accessgraph.toml:14:1: ", "unknown key `strict` in [catalog]"),
        ("accessgraph.toml:18:1: ", "unknown key `govern` in [policy]"),
        ("accessgraph.toml:22:", "unknown key `left.extra` in [[sod]] \"x\""),
        ("accessgraph.toml:26:1: ", "unknown key `address` in [server]; expected one of: listen, token"),
        ("accessgraph.toml:31:1: ", "unknown key `name` in [[identity.alias]] #1; expected one of: account, email"),
        ("accessgraph.toml:33:", "unknown key `other` in [identity]"),
        ("accessgraph.toml:37:1: ", "unknown key `secret_unused_dayz` in [rules]"),
        (
            "accessgraph.toml:41:1: ",
            "unknown key `dual` in [tiers.high]; expected one of: max_credential_days, dual_control",
        ),
        ("accessgraph.toml:43:", "unknown tier `extreme`"),
        (
            "accessgraph.toml:49:1: ",
            "unknown key `secrett` in [[sink]] #1 (kind webhook); expected one of: url, secret",
        ),
    ];
    for (place, needle) in expected {
        expect(&problems, place, &[needle]);
    }
    assert_eq!(problems.len(), expected.len(), "{}", problems.join("\n"));
    // The exact format of the contract's example.
    assert!(problems.contains(
        &"accessgraph.toml:10:1: unknown key `tokn` in [[source]] \"github-acme\" (kind github); expected one of: org, token, app, base_url"
            .to_string()
    ));
}

#[test]
fn unknown_keys_of_every_source_kind_are_reported() {
    let fixture = full_fixture();
    let mut config = String::new();
    let kinds = [
        ("github", "org = \"a\"\ntoken = { env = \"T\" }"),
        ("aws-iam", "account_name = \"a\""),
        ("openai", "admin_key = { env = \"T\" }"),
        ("anthropic", "admin_key = { env = \"T\" }"),
        ("scim", "base_url = \"https://idp.example/scim/v2\"\ntoken = { env = \"T\" }"),
        ("snapshot", "path = \"exports/netsuite.json\""),
    ];
    let mut lines = Vec::new();
    for (i, (kind, keys)) in kinds.iter().enumerate() {
        config.push_str(&format!("[[source]]\nname = \"s{i}\"\nkind = \"{kind}\"\n{keys}\n"));
        lines.push(config.lines().count() + 1);
        config.push_str("bogus = 1\n\n");
    }
    let problems = fixture.problems(&config);
    assert_eq!(problems.len(), kinds.len(), "{}", problems.join("\n"));
    for ((i, (kind, _)), line) in kinds.iter().enumerate().zip(lines) {
        expect(
            &problems,
            &format!("accessgraph.toml:{line}:1: "),
            &[&format!("unknown key `bogus` in [[source]] \"s{i}\" (kind {kind})")],
        );
    }
}

#[test]
fn wrong_types_name_key_and_line() {
    let fixture = Fixture::new();
    let problems = fixture.problems(
        r#"[[source]]
name = "gh"
kind = "github"
org = 42
token = { env = "T" }

[rules]
secret_unused_days = "ninety"

[[sink]]
kind = "jsonl"
min_severity = 3
rules = "secret.*"

[tiers.low]
dual_control = "yes"
"#,
    );
    expect(
        &problems,
        "accessgraph.toml:4:7: ",
        &["invalid value for `org`", "[[source]] \"gh\" (kind github)", "expected a string"],
    );
    expect(
        &problems,
        "accessgraph.toml:8:22: ",
        &["invalid value for `secret_unused_days` in [rules]", "expected a non-negative integer"],
    );
    expect(&problems, "accessgraph.toml:12:16: ", &["`min_severity`", "expected a string, found an integer"]);
    expect(&problems, "accessgraph.toml:13:9: ", &["invalid value for `rules`", "expected an array"]);
    expect(&problems, "accessgraph.toml:16:16: ", &["`dual_control` in [tiers.low]", "expected a boolean"]);
    assert_eq!(problems.len(), 5, "{}", problems.join("\n"));
}

#[test]
fn bad_enum_values_list_the_choices() {
    let fixture = Fixture::new();
    let problems = fixture.problems(
        "[rules]\ndefault_tier = \"extreme\"\n\n[[source]]\nname = \"idp\"\nkind = \"scim\"\nbase_url = \"https://x.example\"\ntoken = { env = \"T\" }\nflavor = \"ping\"\n\n[[sink]]\nkind = \"jsonl\"\nmin_severity = \"urgent\"\n",
    );
    expect(
        &problems,
        "accessgraph.toml:2:",
        &["`default_tier` in [rules]", "`extreme` is not one of: low, medium, high"],
    );
    expect(&problems, "accessgraph.toml:9:", &["`flavor`", "`ping` is not one of: generic, okta, entra"]);
    expect(
        &problems,
        "accessgraph.toml:13:",
        &["`min_severity`", "`urgent` is not one of: low, medium, high, critical"],
    );
}

#[test]
fn missing_required_keys_are_reported_at_their_table() {
    let fixture = Fixture::new();
    let problems = fixture.problems(
        r#"[[source]]
kind = "github"
token = { env = "T" }

[[source]]
name = "gh"
org = "acme"

[[source]]
name = "gh2"
kind = "github"
org = "acme"

[[source]]
name = "ai"
kind = "openai"

[[sink]]
kind = "github-issues"
token = { env = "T" }

[[sink]]
url = "https://x.example"

[catalog]

[[sod]]
name = "x"
left = { resource = "gh:repo:a/b" }
right = { resource = "gh:repo:a/b", action = "admin" }

[[identity.alias]]
email = "a@b.example"
"#,
    );
    expect(&problems, "accessgraph.toml:1:1: ", &["missing required key `name` in [[source]] #1"]);
    expect(&problems, "accessgraph.toml:1:1: ", &["missing required key `org` in [[source]] #1 (kind github)"]);
    expect(
        &problems,
        "accessgraph.toml:5:1: ",
        &["missing required key `kind` in [[source]] \"gh\"", "github, aws-iam"],
    );
    expect(&problems, "accessgraph.toml:9:1: ", &["missing required key `token` (or `app`) in [[source]] \"gh2\""]);
    expect(
        &problems,
        "accessgraph.toml:14:1: ",
        &["missing required key `admin_key` in [[source]] \"ai\" (kind openai)"],
    );
    expect(&problems, "accessgraph.toml:18:1: ", &["missing required key `repo` in [[sink]] #1 (kind github-issues)"]);
    expect(&problems, "accessgraph.toml:22:1: ", &["missing required key `kind` in [[sink]] #2"]);
    expect(&problems, "accessgraph.toml:25:1: ", &["missing required key `path` in [catalog]"]);
    expect(&problems, "accessgraph.toml:29:8: ", &["missing required key `left.action` in [[sod]] \"x\""]);
    expect(&problems, "accessgraph.toml:32:1: ", &["missing required key `account` in [[identity.alias]] #1"]);
}

#[test]
fn unknown_source_kind_lists_the_valid_ones() {
    let fixture = Fixture::new();
    let problems = fixture.problems("[[source]]\nname = \"gl\"\nkind = \"gitlab\"\ntoken = { env = \"T\" }\n");
    assert_eq!(
        problems,
        [
            "accessgraph.toml:3:8: unknown source kind `gitlab` in [[source]] \"gl\"; expected one of: github, aws-iam, openai, anthropic, scim, snapshot"
        ]
    );
    let problems = fixture.problems("[[sink]]\nkind = \"slack\"\n");
    expect(&problems, "accessgraph.toml:2:8: ", &["unknown sink kind `slack`", "github-issues, jira, webhook, jsonl"]);
}

#[test]
fn duplicate_source_names_name_both_lines() {
    let fixture = Fixture::new();
    fixture.write("a.json", "{}");
    let problems = fixture.problems(
        "[[source]]\nname = \"dup\"\nkind = \"snapshot\"\npath = \"a.json\"\n\n[[source]]\nname = \"dup\"\nkind = \"snapshot\"\npath = \"a.json\"\n",
    );
    assert_eq!(problems, ["accessgraph.toml:7:8: duplicate source name `dup` (first defined at line 2)"]);
}

#[test]
fn bad_source_names_are_refused() {
    let fixture = Fixture::new();
    fixture.write("a.json", "{}");
    let problems = fixture.problems(
        "[[source]]\nname = \"a:b\"\nkind = \"snapshot\"\npath = \"a.json\"\n[[source]]\nname = \"person\"\nkind = \"snapshot\"\npath = \"a.json\"\n[[source]]\nname = \"\"\nkind = \"snapshot\"\npath = \"a.json\"\n",
    );
    expect(&problems, "accessgraph.toml:2:8: ", &["source name `a:b` may not contain `:`"]);
    expect(&problems, "accessgraph.toml:6:8: ", &["`person` is reserved"]);
    expect(&problems, "accessgraph.toml:10:8: ", &["source name `` is empty"]);
}

#[test]
fn invalid_cron_schedules_are_reported() {
    let fixture = Fixture::new();
    fixture.write("a.json", "{}");
    let problems = fixture.problems(
        "[[source]]\nname = \"a\"\nkind = \"snapshot\"\npath = \"a.json\"\nschedule = \"every minute\"\n\n[[source]]\nname = \"b\"\nkind = \"snapshot\"\npath = \"a.json\"\nschedule = \"*/15 * * * *\"\n\n[[source]]\nname = \"c\"\nkind = \"snapshot\"\npath = \"a.json\"\nschedule = \"0 0 0 30 2 *\"\n",
    );
    expect(&problems, "accessgraph.toml:5:12: ", &["invalid `schedule` in [[source]] \"a\"", "not a cron expression"]);
    expect(
        &problems,
        "accessgraph.toml:11:12: ",
        &["invalid `schedule` in [[source]] \"b\"", "5 fields", "`0 */15 * * * *`"],
    );
    expect(&problems, "accessgraph.toml:17:12: ", &["never fires"]);
    assert_eq!(problems.len(), 3, "{}", problems.join("\n"));
}

#[test]
fn schedule_computes_next_instant() {
    let schedule = Schedule::parse("0 */15 * * * *").unwrap();
    let after = chrono::DateTime::parse_from_rfc3339("2026-01-01T10:07:00Z").unwrap().to_utc();
    let next = schedule.next_after(after).unwrap();
    assert_eq!(next.to_rfc3339(), "2026-01-01T10:15:00+00:00");
}

#[test]
fn invalid_listen_address_is_reported() {
    let fixture = Fixture::new();
    let problems = fixture.problems("\n[server]\nlisten = \"localhost:http\"\n");
    assert_eq!(
        problems,
        [
            "accessgraph.toml:3:10: invalid `listen` in [server]: `localhost:http` is not an IP address and port, e.g. 127.0.0.1:9464 or [::1]:9464"
        ]
    );
    let config = fixture.config("[server]\nlisten = \"[::1]:9000\"\n");
    assert_eq!(config.server.listen.port(), 9000);
}

#[test]
fn inline_secrets_are_refused_without_echoing_them() {
    let fixture = Fixture::new();
    let problems = fixture.problems(
        "[[source]]\nname = \"gh\"\nkind = \"github\"\norg = \"acme\"\ntoken = \"ghp_supersecret\"\n\n[server]\ntoken = 12345\n\n[[sink]]\nkind = \"webhook\"\nurl = \"https://x.example\"\nsecret = { env = \"A\", file = \"b\" }\n",
    );
    expect(
        &problems,
        "accessgraph.toml:5:9: ",
        &["invalid value for `token` in [[source]] \"gh\" (kind github)", "secrets are never inline"],
    );
    expect(&problems, "accessgraph.toml:8:9: ", &["`token` in [server]", "secrets are never inline"]);
    expect(&problems, "accessgraph.toml:13:10: ", &["`secret`", "exactly one of `env`, `file`"]);
    assert!(problems.iter().all(|p| !p.contains("supersecret") && !p.contains("12345")), "{problems:?}");
}

#[test]
fn check_secrets_reports_unset_variables_and_missing_files() {
    let fixture = Fixture::new();
    fixture.write("secrets/ok", "s3cret\n");
    let config = fixture.config(
        r#"[[source]]
name = "gh"
kind = "github"
org = "acme"
token = { env = "ACCESSGRAPH_TEST_SURELY_UNSET_VARIABLE" }

[[source]]
name = "ai"
kind = "openai"
admin_key = { file = "secrets/ok" }

[server]
token = { file = "secrets/missing" }

[[sink]]
kind = "github-issues"
repo = "acme/sec"
token = { env = "PATH" }
"#,
    );
    let problems = check_secrets(&config);
    let rendered = render(&fixture, &problems);
    assert_eq!(rendered.len(), 2, "{rendered:?}");
    expect(
        &rendered,
        "accessgraph.toml:1: ",
        &["`token` in [[source]] \"gh\" (kind github)", "ACCESSGRAPH_TEST_SURELY_UNSET_VARIABLE is not set"],
    );
    expect(&rendered, "accessgraph.toml:12: ", &["`token` in [server]", "cannot read secret file", "secrets/missing"]);
}

#[test]
fn secrets_are_redacted() {
    let secret = Secret::new("hunter2");
    assert_eq!(format!("{secret:?}"), "[redacted]");
    assert_eq!(format!("{secret}"), "[redacted]");
    assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
    assert_eq!(secret.expose(), "hunter2");
}

#[test]
fn secret_refs_resolve_from_env_and_file() {
    let fixture = Fixture::new();
    let path = fixture.write("token", "abc123\r\n");
    let secret = SecretRef::File(path.clone()).resolve().unwrap();
    assert_eq!(secret.expose(), "abc123");
    fixture.write("token2", "line1\nline2\n\n");
    assert_eq!(SecretRef::File(fixture.path("token2")).resolve().unwrap().expose(), "line1\nline2");
    fixture.write("empty", "\n");
    assert!(matches!(SecretRef::File(fixture.path("empty")).resolve(), Err(SecretError::Empty(_))));
    assert!(matches!(SecretRef::File(fixture.path("absent")).resolve(), Err(SecretError::File { .. })));

    let path_var = std::env::var("PATH").expect("PATH is set");
    assert_eq!(SecretRef::Env("PATH".into()).resolve().unwrap().expose(), path_var);
    let unset = SecretRef::Env("ACCESSGRAPH_TEST_SURELY_UNSET_VARIABLE".into()).resolve();
    assert!(matches!(unset, Err(SecretError::EnvUnset(ref name)) if name == "ACCESSGRAPH_TEST_SURELY_UNSET_VARIABLE"));
    // The error names the reference, never a value.
    assert_eq!(SecretRef::Env("X".into()).to_string(), "environment variable X");
}

#[test]
fn governs_must_name_configured_sources() {
    let fixture = Fixture::new();
    fixture.write("policy.cedar", POLICY);
    fixture.write("a.json", "{}");
    let problems = fixture.problems(
        "[[source]]\nname = \"netsuite\"\nkind = \"snapshot\"\npath = \"a.json\"\n\n[policy]\ncedar = \"policy.cedar\"\ngoverns = [\"netsuite\",\n  \"netsuit\"]\n",
    );
    assert_eq!(
        problems,
        ["accessgraph.toml:9:3: `governs` in [policy] names unknown source `netsuit`; configured sources: netsuite"]
    );
}

#[test]
fn empty_sod_and_alias_fields_are_reported() {
    let fixture = Fixture::new();
    fixture.write("a.json", "{}");
    let problems = fixture.problems(
        r#"[[source]]
name = "gh"
kind = "snapshot"
path = "a.json"

[[sod]]
name = ""
left = { resource = "gh:repo:a/b", action = "" }
right = { resource = "gx:repo:a/b", action = "admin" }

[[identity.alias]]
account = ""
email = "a@b.example"

[[identity.alias]]
account = "gh:user:al"
email = " "

[[identity.alias]]
account = "gh:user:bo"
email = "not-an-email"
"#,
    );
    expect(&problems, "accessgraph.toml:7:1: ", &["`name` in [[sod]] #1 is empty"]);
    expect(&problems, "accessgraph.toml:8:36: ", &["`left.action` in [[sod]] #1 is empty"]);
    expect(&problems, "accessgraph.toml:9:", &["`right.resource`", "unknown source `gx`"]);
    expect(&problems, "accessgraph.toml:12:1: ", &["`account` in [[identity.alias]] #1 is empty"]);
    expect(&problems, "accessgraph.toml:17:1: ", &["`email` in [[identity.alias]] #2 is empty"]);
    expect(&problems, "accessgraph.toml:21:1: ", &["not an email address"]);
    assert_eq!(problems.len(), 6, "{}", problems.join("\n"));
}

#[test]
fn missing_files_name_the_config_line_of_their_key() {
    let fixture = Fixture::new();
    let problems = fixture.problems(
        r#"[catalog]
path = "agents.toml"

[policy]
cedar = "policies/main.cedar"

[[source]]
name = "ns"
kind = "snapshot"
path = "exports/ns.json"

[[source]]
name = "aws"
kind = "aws-iam"
account_name = "prod"
authorization_details = "aws/auth.json"
credential_report = "aws/report.csv"

[[source]]
name = "aws2"
kind = "aws-iam"
account_name = "dev"
credential_report = "aws/report.csv"
"#,
    );
    expect(&problems, "accessgraph.toml:2:1: ", &["catalog file", "agents.toml", "no such file"]);
    expect(&problems, "accessgraph.toml:5:1: ", &["policy file", "policies/main.cedar", "no such file"]);
    expect(
        &problems,
        "accessgraph.toml:10:1: ",
        &["snapshot file", "exports/ns.json", "key `path` in [[source]] \"ns\""],
    );
    expect(&problems, "accessgraph.toml:16:1: ", &["authorization details file", "aws/auth.json"]);
    expect(&problems, "accessgraph.toml:17:1: ", &["credential report file", "aws/report.csv"]);
    expect(&problems, "accessgraph.toml:23:1: ", &["offline mode needs both"]);
    assert_eq!(problems.len(), 6, "{}", problems.join("\n"));
}

#[test]
fn catalog_problems_are_placed_in_the_catalog_file() {
    let fixture = Fixture::new();
    fixture.write(
        "catalog/agents.toml",
        r#"[[agent]]
id = "po-bot"
risk_tier = "extreme"
identities = ["netsuite:agent:po-bot"]

[[agent]]
id = "po-bot"
identities = ["netsuite:agent:other"]

[[agent]]
id = "copycat"
owner = "x@acme.example"
identities = [
  "netsuite:agent:other",
]
expires = "2027-02-30"
colour = "red"

[agents]
"#,
    );
    let problems = fixture.problems("[catalog]\npath = \"catalog/agents.toml\"\n");
    let file = "catalog/agents.toml";
    expect(
        &problems,
        &format!("{file}:3:13: "),
        &["`risk_tier` in [[agent]] \"po-bot\"", "`extreme` is not one of: low, medium, high"],
    );
    expect(&problems, &format!("{file}:7:1: "), &["duplicate agent id `po-bot` (first defined at line 2)"]);
    expect(
        &problems,
        &format!("{file}:14:3: "),
        &["identity `netsuite:agent:other` is bound by two agents: \"po-bot\" (line 8) and \"copycat\""],
    );
    expect(
        &problems,
        &format!("{file}:16:11: "),
        &["invalid value for `expires` in [[agent]] \"copycat\"", "`2027-02-30` is not a date (YYYY-MM-DD)"],
    );
    expect(
        &problems,
        &format!("{file}:17:1: "),
        &["unknown key `colour` in [[agent]] \"copycat\"", "expected one of: id, owner"],
    );
    expect(&problems, &format!("{file}:19:2: "), &["unknown key `agents` in the catalog"]);
    assert_eq!(problems.len(), 6, "{}", problems.join("\n"));

    fixture.write("catalog/agents.toml", "[[agent]\nid = 1\n");
    let problems = fixture.problems("[catalog]\npath = \"catalog/agents.toml\"\n");
    expect(&problems, "catalog/agents.toml:1:", &["invalid TOML"]);
}

#[test]
fn cedar_parse_errors_are_placed_in_the_policy_file() {
    let fixture = Fixture::new();
    fixture.write(
        "policy.cedar",
        "permit(principal, action, resource);\n\npermit(principal, action, resource)\nwhen { resource.system == };\n",
    );
    let problems = fixture.problems("[policy]\ncedar = \"policy.cedar\"\n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    expect(&problems, "policy.cedar:4:27: ", &["unexpected token `}`"]);

    fixture.write(
        "policy.cedar",
        "permit(principal, action, resource);\n\n// typos\nforbid(principal, acton, resource);\npermit(principal in Group::\"x\", action, resource) when { principal.kind == \"agent\" };\npermit(principal, action, resource) when { resource.name like 5 };\n",
    );
    let problems = fixture.problems("[policy]\ncedar = \"policy.cedar\"\n");
    for problem in &problems {
        assert!(problem.starts_with("policy.cedar:"), "{problem}");
    }
    expect(&problems, "policy.cedar:4:19: ", &["acton"]);
    expect(&problems, "policy.cedar:6:", &["like"]);
}

#[test]
fn several_errors_are_all_reported() {
    let fixture = Fixture::new();
    fixture.write("policy.cedar", "permit(principal, action, resource) when { };\n");
    fixture.write("agents.toml", "[[agent]]\nid = \"a\"\nbogus = 1\n");
    let problems = fixture.problems(
        r#"[[source]]
name = "one"
kind = "github"
org = "acme"
tokn = { env = "T" }

[[source]]
name = "two"
kind = "nope"

[[source]]
name = "three"
kind = "openai"
admin_key = "sk-live"

[catalog]
path = "agents.toml"

[policy]
cedar = "policy.cedar"

[server]
listen = "nowhere"
"#,
    );
    expect(&problems, "accessgraph.toml:5:1: ", &["unknown key `tokn`"]);
    expect(&problems, "accessgraph.toml:9:8: ", &["unknown source kind `nope`"]);
    expect(&problems, "accessgraph.toml:14:13: ", &["secrets are never inline"]);
    expect(&problems, "accessgraph.toml:23:10: ", &["invalid `listen`"]);
    expect(&problems, "agents.toml:3:1: ", &["unknown key `bogus`"]);
    expect(&problems, "policy.cedar:1:37: ", &["`when` condition clause cannot be empty"]);
    // Config file first, in line order; then the catalog; then the policy.
    let files: Vec<&str> = problems.iter().map(|p| p.split(':').next().unwrap()).collect();
    let mut sorted = files.clone();
    sorted.dedup();
    assert_eq!(sorted, ["accessgraph.toml", "agents.toml", "policy.cedar"], "{problems:?}");
}

#[test]
fn sqlite_relative_paths_resolve_against_the_config_folder() {
    let folder = Path::new("/etc/accessgraph");
    let resolve = |url: &str| resolve_store_url(url, folder);
    assert_eq!(resolve("sqlite://accessgraph.db").unwrap(), "sqlite:///etc/accessgraph/accessgraph.db");
    assert_eq!(resolve("sqlite:rel/x.db").unwrap(), "sqlite:///etc/accessgraph/rel/x.db");
    assert_eq!(resolve("sqlite://x.db?mode=rwc").unwrap(), "sqlite:///etc/accessgraph/x.db?mode=rwc");
    assert_eq!(resolve("sqlite:///var/lib/ag.db").unwrap(), "sqlite:///var/lib/ag.db");
    assert_eq!(resolve("sqlite::memory:").unwrap(), "sqlite::memory:");
    assert_eq!(resolve("sqlite://:memory:").unwrap(), "sqlite://:memory:");
    assert_eq!(resolve("postgres://ag@db/ag").unwrap(), "postgres://ag@db/ag");
    assert_eq!(resolve("postgresql://ag@db/ag").unwrap(), "postgresql://ag@db/ag");
    assert!(resolve("mysql://x").is_err());
    assert!(resolve("sqlite://").is_err());

    let fixture = Fixture::new();
    let problems = fixture.problems("[store]\nurl = \"redis://cache\"\n");
    assert_eq!(
        problems,
        ["accessgraph.toml:2:1: `url` in [store] must start with `sqlite:` or `postgres://`, found `redis://cache`"]
    );
    let config = fixture.config("[store]\nurl = \"sqlite::memory:\"\n");
    assert_eq!(config.store.url, "sqlite::memory:");
}

#[test]
fn sink_names_are_deduplicated_and_filter_findings() {
    let fixture = Fixture::new();
    let config = fixture.config(
        r#"[[sink]]
kind = "jsonl"
path = "a.jsonl"
[[sink]]
kind = "jsonl"
name = "jsonl-2"
path = "b.jsonl"
[[sink]]
kind = "jsonl"
path = "c.jsonl"
rules = ["secret.*", "drift.policy"]
min_severity = "HIGH"
[[sink]]
kind = "jsonl"
path = "d.jsonl"
"#,
    );
    let names: Vec<&str> = config.sinks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["jsonl", "jsonl-2", "jsonl-3", "jsonl-4"]);
    assert_eq!(config.sinks[0].line, Some(1));

    let all = &config.sinks[0];
    assert!(all.accepts("sod.violation", Severity::Medium));
    assert!(all.accepts("secret.unused", Severity::Critical));
    assert!(!all.accepts("secret.unused", Severity::Low));
    let picky = &config.sinks[2];
    assert_eq!(picky.min_severity, Severity::High);
    assert!(picky.accepts("secret.standing", Severity::High));
    assert!(picky.accepts("drift.policy", Severity::Critical));
    assert!(!picky.accepts("drift.baseline", Severity::Critical));
    assert!(!picky.accepts("secret.standing", Severity::Medium));

    let problems = fixture.problems(
        "[[sink]]\nkind = \"jsonl\"\nname = \"x\"\n[[sink]]\nkind = \"webhook\"\nname = \"x\"\nurl = \"https://a.example\"\n[[sink]]\nkind = \"jsonl\"\nrules = []\n",
    );
    expect(&problems, "accessgraph.toml:6:8: ", &["duplicate sink name `x` (first defined at line 3)"]);
    expect(&problems, "accessgraph.toml:10:9: ", &["`rules` in [[sink]] #3 is empty"]);
}

#[test]
fn tiers_partial_override_keeps_other_defaults() {
    let fixture = Fixture::new();
    let config = fixture.config("[tiers.medium]\nmax_credential_days = 7\n[tiers.high]\ndual_control = false\n");
    let defaults = Tiers::default();
    assert_eq!(config.tiers.low, defaults.low);
    assert_eq!(config.tiers.medium, TierPolicy { max_credential_days: 7, dual_control: false });
    assert_eq!(config.tiers.high, TierPolicy { max_credential_days: 1, dual_control: false });

    let config = fixture.config("[rules]\nsecret_unused_days = 30\n");
    assert_eq!(config.thresholds.secret_unused_days, 30);
    assert_eq!(config.thresholds.secret_max_age_days, 90);
    assert_eq!(config.thresholds.baseline_window_days, 7);

    let problems = fixture.problems("[tiers.low]\nmax_credential_days = 0\n");
    assert_eq!(problems, ["accessgraph.toml:2:1: `max_credential_days` in [tiers.low] must be at least 1"]);
}

#[test]
fn github_needs_exactly_one_credential_and_urls_are_checked() {
    let fixture = Fixture::new();
    let problems = fixture.problems(
        r#"[[source]]
name = "gh"
kind = "github"
org = "acme"
base_url = "api.github.com"
token = { env = "T" }
app = { id = 1, installation_id = 2, private_key = { file = "k.pem" } }

[[source]]
name = "gh2"
kind = "github"
org = "acme"
app = { id = 1, installation_id = 2 }

[[sink]]
kind = "github-issues"
repo = "security"
token = { env = "T" }
"#,
    );
    expect(
        &problems,
        "accessgraph.toml:5:1: ",
        &["`base_url` in [[source]] \"gh\" (kind github) must be an http:// or https:// URL"],
    );
    expect(&problems, "accessgraph.toml:7:1: ", &["either `token` or `app`, not both"]);
    expect(&problems, "accessgraph.toml:13:7: ", &["missing required key `app.private_key`"]);
    expect(&problems, "accessgraph.toml:17:1: ", &["`repo` in [[sink]] #1 (kind github-issues) must be OWNER/NAME"]);
    assert_eq!(problems.len(), 4, "{}", problems.join("\n"));
}

#[test]
fn wrong_shapes_of_arrays_and_tables_are_reported() {
    let fixture = Fixture::new();
    let problems = fixture.problems("store = \"x\"\nsource = { name = \"x\" }\nsink = [1]\nidentity = 3\ntiers = []\n");
    expect(&problems, "accessgraph.toml:1:9: ", &["[store] must be a table, found a string"]);
    expect(&problems, "accessgraph.toml:2:10: ", &["`source` ([[source]]) must be an array of tables, found a table"]);
    expect(&problems, "accessgraph.toml:3:9: ", &["each entry of `sink` ([[sink]]) must be a table, found an integer"]);
    expect(&problems, "accessgraph.toml:4:12: ", &["`identity` must be a table"]);
    expect(&problems, "accessgraph.toml:5:9: ", &["`tiers` must be a table"]);
}

#[test]
fn missing_config_file_is_a_problem() {
    let fixture = Fixture::new();
    let problems = load(&fixture.path("absent.toml")).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(problems.to_string().ends_with("absent.toml: cannot read config file: no such file"), "{problems}");
}

#[test]
fn garbage_never_panics() {
    let fixture = Fixture::new();
    fixture.write("agents.toml", "[[agent]]\nid = \"é\"\nidentities = [1, {}, \"\"]\nexpires = 5\n");
    fixture.write("policy.cedar", "permit(\u{0}");
    let inputs = [
        "",
        "\u{feff}",
        "\0\0\0",
        "[[[",
        "[source]]\n",
        "é = é\n",
        "[[source]]\n[[source]]\nname = 1\nkind = []\nschedule = {}\n",
        "[[source]]\nname = \"x\"\nkind = \"aws-iam\"\nassume_roles = [1, 2]\nagent_tags = { a = 1 }\n",
        "[[sink]]\nname = 3\nkind = \"jira\"\nrules = [\"\", 1]\nmin_severity = \"\"\n",
        "[catalog]\npath = \"agents.toml\"\n[policy]\ncedar = \"policy.cedar\"\ngoverns = \"all\"\n",
        "[catalog]\npath = \".\"\n",
        "[[sod]]\nleft = 1\nright = { resource = 1 }\n[[identity.alias]]\n[identity]\n",
        "[server]\nlisten = \"\"\ntoken = {}\n[store]\nurl = \"sqlite:?\"\n",
        "[tiers]\nlow = 1\nhigh = { max_credential_days = -1 }\n[rules]\ndefault_tier = 1.5\n",
        "x = 1979-05-27T07:32:00Z\n[[source]]\nname = \"a\"\nkind = \"snapshot\"\npath = \"\"\n",
        "a = \"\"\"\n\n",
        "[[source]]\nname = \"a\"\nkind = \"github\"\norg = \"o\"\ntoken = { env = \"\" }\nschedule = \"@yearly @daily\"\n",
    ];
    for input in inputs {
        let result = fixture.load(input);
        if let Err(problems) = result {
            for problem in problems.iter() {
                assert!(!problem.message.is_empty());
            }
        }
    }
    // Random text over TOML's punctuation.
    const ALPHABET: &[u8] = b"[]{}=\"',.\n #abc01-:";
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..200 {
        let text: String = (0..64)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ALPHABET[(seed % ALPHABET.len() as u64) as usize] as char
            })
            .collect();
        let _ = fixture.load(&text);
    }
}

#[test]
fn every_truncation_of_a_full_config_loads_or_reports() {
    let fixture = full_fixture();
    for end in (0..FULL.len()).step_by(5).filter(|end| FULL.is_char_boundary(*end)) {
        if let Err(problems) = fixture.load(&FULL[..end]) {
            assert!(!problems.is_empty());
        }
    }
    // Each line left out in turn.
    let lines: Vec<&str> = FULL.lines().collect();
    for skip in 0..lines.len() {
        let text: Vec<&str> = lines.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, l)| *l).collect();
        let _ = fixture.load(&text.join("\n"));
    }
}

#[test]
fn shipped_demo_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.toml");
    let config = match load(&path) {
        Ok(config) => config,
        Err(problems) => panic!("examples/demo.toml:\n{problems}"),
    };
    assert!(!config.sources.is_empty());
    assert!(!config.catalog.agents.is_empty());
    assert!(config.policy.as_ref().is_some_and(|policy| policy.policy_set().is_ok()));
}

// ---------------------------------------------------------------------------
// The daemon's own surface: bind safety, config hygiene, redaction.

#[test]
fn a_non_loopback_listen_without_a_token_is_refused() {
    let fixture = Fixture::new();
    for listen in ["0.0.0.0:9464", "[::]:9464", "10.1.2.3:80", "[2001:db8::1]:9464"] {
        let problems = fixture.problems(&format!("# api\n[server]\nlisten = \"{listen}\"\n"));
        expect(&problems, "accessgraph.toml:3:10: ", &["`listen` in [server]", "not a loopback address", "`token`"]);
    }
    // Loopback, in every spelling, needs no token.
    for listen in ["127.0.0.1:9464", "127.0.0.2:1", "[::1]:9000", "[::ffff:127.0.0.1]:9464"] {
        let config = fixture.config(&format!("[server]\nlisten = \"{listen}\"\n"));
        assert!(config.server.token.is_none());
        assert!(exposure_problem(config.server.listen, false).is_none(), "{listen}");
    }
    // With a token, any address.
    let config = fixture.config("[server]\nlisten = \"0.0.0.0:9464\"\ntoken = { env = \"T\" }\n");
    assert_eq!(config.server.listen.port(), 9464);
    assert!(exposure_problem(config.server.listen, true).is_none());
    assert!(exposure_problem("0.0.0.0:1".parse().unwrap(), false).is_some());
    // No [server] at all: loopback by default.
    assert!(fixture.config("").server.listen.ip().is_loopback());
}

#[test]
fn credential_shapes_are_recognised_and_ordinary_strings_are_not() {
    use crate::hygiene::credential_kind;
    let cases = [
        ("ghp_0123456789abcdefghijABCDEFGHIJ012345", "a GitHub token"),
        ("gho_0123456789abcdefghij0123", "a GitHub OAuth token"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "a GitHub fine-grained token"),
        ("Bearer sk-proj-abcdefghijklmnop0123456789", "an OpenAI project key"),
        ("sk-admin-0123456789abcdefABCDEF", "an OpenAI admin key"),
        ("sk-ant-admin01-0123456789abcdefABCDEF", "an Anthropic key"),
        ("sk-0123456789abcdefABCDEF", "an API key"),
        ("key AKIAIOSFODNN7EXAMPLE here", "an AWS access key id"),
        ("ASIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("xoxb-123456789012-1234567890123-abcdefghij", "a Slack bot token"),
        ("xoxp-123456789012-1234567890123-abcdefghij", "a Slack user token"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow", "a private key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "a private key"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "a JWT"),
        ("postgres://svc:hunter2@db.internal:5432/ag", "a URL with a password"),
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXX", "a Slack webhook URL"),
    ];
    for (text, kind) in cases {
        assert_eq!(credential_kind(text), Some(kind), "{text}");
    }
    for ordinary in [
        "github-acme",
        "https://api.github.com",
        "postgres://svc@db.internal/ag",
        "sqlite://accessgraph.db",
        "task-runner-abcdefghijklmnopqrst", // `sk-` inside a word
        "sk-short",
        "AKIA0123",                // too short
        "AKIAIOSFODNN7EXAMPLEXYZ", // too long for a key id
        "ASIAN-MARKETS-DESK",
        "eyJhbGciOiJIUzI1NiJ9",        // one segment only
        "-----BEGIN CERTIFICATE-----", // public
        "alice@acme.example",
        "github-acme:repo:acme/payments",
        "0 */15 * * * *",
    ] {
        assert_eq!(credential_kind(ordinary), None, "{ordinary}");
    }
}

const INLINE_SECRETS: &str = r#"[store]
url = "postgres://svc:Pg-Passw0rd-e2e@db.internal/ag"

[[source]]
name = "openai"
kind = "openai"
admin_key = { env = "OPENAI_ADMIN_KEY" }
base_url = "https://gateway.acme.example/v1?key=sk-admin-0123456789abcdefINLINE"

[[sod]]
name = "AKIAIOSFODNN7INLINE0"
left  = { resource = "openai:project:a", action = "write" }
right = { resource = "openai:project:b", action = "write" }

[[sink]]
kind = "github-issues"
repo = "acme/secops"
token = { env = "GH" }
labels = ["security", "ghp_0123456789abcdefghijINLINE0123456789"]

[catalog]
path = "agents.toml"
"#;

#[test]
fn inline_looking_secrets_are_warned_with_their_place_and_never_echoed() {
    let fixture = Fixture::new();
    fixture.write(
        "agents.toml",
        "[[agent]]\nid = \"bot\"\nowner = \"alice@acme.example\"\n\
         purpose = \"calls with eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJJTkxJTkUifQ.c2lnbmF0dXJlLWlubGluZS0wMTIz\"\n\
         risk_tier = \"low\"\nidentities = [\"openai:service_account:bot\"]\n",
    );
    let config = fixture.config(INLINE_SECRETS);
    let shown = render(&fixture, &warnings(&config));
    expect(&shown, "accessgraph.toml:2:7: ", &["`store.url`", "a URL with a password"]);
    expect(&shown, "accessgraph.toml:8:12: ", &["`source[1].base_url`", "an OpenAI admin key"]);
    expect(&shown, "accessgraph.toml:11:8: ", &["`sod[1].name`", "an AWS access key id"]);
    expect(&shown, "accessgraph.toml:19:23: ", &["`sink[1].labels[2]`", "a GitHub token"]);
    expect(&shown, "agents.toml:4:11: ", &["`agent[1].purpose`", "a JWT"]);
    assert_eq!(shown.len(), 5, "{shown:#?}");
    for warning in &shown {
        for value in ["Passw0rd", "INLINE", "eyJ", "hunter", "0123456789"] {
            assert!(!warning.contains(value), "a warning echoes the value: {warning}");
        }
        assert!(warning.contains("{ env = "), "says where secrets belong: {warning}");
    }
    // The shipped examples are clean.
    let demo = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.toml")).expect("demo loads");
    assert!(crate::hygiene::inline_secrets(&demo.path, &fs::read_to_string(&demo.path).unwrap()).is_empty());
}

#[cfg(unix)]
#[test]
fn secret_files_readable_by_others_and_writable_configs_are_warned() {
    use std::os::unix::fs::PermissionsExt;
    let fixture = Fixture::new();
    let token = fixture.write("gh-token", "ghp_not-a-real-token\n");
    let api = fixture.write("api-token", "api-token-value\n");
    let chmod = |path: &Path, mode: u32| fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    chmod(&token, 0o644);
    chmod(&api, 0o600);
    let text = "[[source]]\nname = \"gh\"\nkind = \"github\"\norg = \"acme\"\ntoken = { file = \"gh-token\" }\n\n\
                [server]\ntoken = { file = \"api-token\" }\n";
    let config = fixture.config(text);
    chmod(&config.path, 0o600);
    let shown = render(&fixture, &warnings(&config));
    assert_eq!(shown.len(), 1, "{shown:#?}");
    expect(&shown, "accessgraph.toml:1: ", &["`token` in [[source]] \"gh\"", "gh-token", "mode 0644", "chmod 600"]);
    assert!(!shown[0].contains("not-a-real"), "{shown:?}");

    chmod(&token, 0o640);
    chmod(&api, 0o604);
    let shown = render(&fixture, &warnings(&config));
    expect(&shown, "accessgraph.toml:1: ", &["gh-token", "mode 0640"]);
    expect(&shown, "accessgraph.toml:7: ", &["`token` in [server]", "api-token", "mode 0604"]);

    chmod(&token, 0o600);
    chmod(&api, 0o400);
    assert!(warnings(&config).is_empty());

    // A config that others can edit can send the tokens anywhere.
    chmod(&config.path, 0o666);
    let shown = render(&fixture, &warnings(&config));
    expect(&shown, "accessgraph.toml: ", &["writable by group or others", "mode 0666"]);
}

#[test]
fn secrets_and_configs_redact_in_debug_and_display() {
    let value = "s3cret-value-0123456789";
    let secret = Secret::new(value);
    assert_eq!(format!("{secret:?}"), "[redacted]");
    assert_eq!(format!("{secret}"), "[redacted]");
    assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
    assert_eq!(secret.expose(), value);
    // A panic message built from a secret carries no value either.
    let panic = std::panic::catch_unwind(|| panic!("failed with {secret} / {secret:?}")).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("[redacted]") && !message.contains(value), "{message}");

    // A config holds references, never values: its Debug names variables and files only.
    let fixture = Fixture::new();
    fixture.write("token", value);
    let config = fixture.config(
        "[[source]]\nname = \"gh\"\nkind = \"github\"\norg = \"acme\"\ntoken = { file = \"token\" }\n\n\
         [[sink]]\nkind = \"webhook\"\nurl = \"https://hooks.acme.example/x\"\nsecret = { env = \"HOOK_SECRET\" }\n",
    );
    let resolved = config.sources[0].settings.secret_refs()[0].1.resolve().expect("reads the file");
    assert_eq!(resolved.expose(), value);
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains(value), "Debug of Config carries a secret value");
    assert!(debug.contains("HOOK_SECRET"), "it names the reference");
    // Errors name the reference, never a value.
    let error = SecretRef::Env("AG_TEST_UNSET_VARIABLE_0".into()).resolve().unwrap_err().to_string();
    assert!(error.contains("AG_TEST_UNSET_VARIABLE_0"), "{error}");
}

#[test]
fn plain_http_beyond_loopback_is_warned() {
    use crate::hygiene::plain_http_beyond_loopback as plain;
    for url in ["http://ghe.acme.example/api/v3", "HTTP://10.0.0.1:8080", "http://user@[2001:db8::1]:80/x"] {
        assert!(plain(url), "{url}");
    }
    for url in ["https://api.github.com", "http://127.0.0.1:9000", "http://localhost/x", "http://[::1]:8/", "file:///x"]
    {
        assert!(!plain(url), "{url}");
    }
    let fixture = Fixture::new();
    let config = fixture.config(
        "[[source]]\nname = \"oa\"\nkind = \"openai\"\nadmin_key = { env = \"K\" }\n\
         base_url = \"http://llm-gateway.acme.example/v1\"\n\n\
         [[sink]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:8080/hook\"\n",
    );
    let shown = render(&fixture, &warnings(&config));
    assert_eq!(shown.len(), 1, "{shown:#?}");
    expect(&shown, "accessgraph.toml:5:12: ", &["`source[1].base_url`", "plain http", "use https"]);
}
