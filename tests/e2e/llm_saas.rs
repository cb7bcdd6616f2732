//! LLM providers and SaaS end to end: the binary scans a SCIM IdP (Okta
//! flavour), an OpenAI organization and an Anthropic organization, each a
//! wiremock server fed from `fixtures/{scim,openai,anthropic}/`.
//!
//! The story: Dave left Acme (SCIM `active: false`) but is still a member of
//! both LLM organizations. The catalog says he owns OpenAI's `deploy-bot`
//! service account (whose key deploys payments); he created an Anthropic key
//! for research batches; a key of his in the Research project is only listed
//! with `owner_project_access=any` (he lost access to the project). Bob's
//! notebook key has been idle for 200 days. Anthropic cannot say when a key
//! was last used.

use super::common::*;
use serde_json::Value;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const T1: &str = "2026-11-27T12:00:00Z";
const T2: &str = "2026-11-27T13:00:00Z";
pub(super) const OPENAI_KEY: &str = "sk-admin-e2e-openai-0123456789";
pub(super) const ANTHROPIC_KEY: &str = "sk-ant-admin01-e2e-0123456789";
pub(super) const SCIM_TOKEN: &str = "scim-e2e-token-0123456789";
const DAVE_ANTHROPIC_KEY: &str = "apikey_01DaveResearchBatch00001";

fn fixture(system: &str, name: &str) -> Value {
    let file = repo().join("fixtures").join(system).join(name);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn ok(system: &str, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(fixture(system, name))
}

async fn mount_scim(server: &MockServer) {
    for (start, page) in [("1", 1), ("3", 2), ("5", 3)] {
        Mock::given(method("GET"))
            .and(path("/scim/v2/Users"))
            .and(header("authorization", format!("Bearer {SCIM_TOKEN}").as_str()))
            .and(query_param("startIndex", start))
            .and(query_param("count", "200"))
            .respond_with(ok("scim", &format!("okta/users.page{page}.json")))
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups"))
        .respond_with(ok("scim", "okta/groups.json"))
        .mount(server)
        .await;
}

async fn mount_openai(server: &MockServer) {
    let get = |p: &str| {
        Mock::given(method("GET"))
            .and(path(format!("/v1/organization/{p}")))
            .and(header("authorization", format!("Bearer {OPENAI_KEY}").as_str()))
    };
    get("users")
        .and(query_param_is_missing("after"))
        .respond_with(ok("openai", "users.page1.json"))
        .mount(server)
        .await;
    get("users")
        .and(query_param("after", "user_bob02"))
        .respond_with(ok("openai", "users.page2.json"))
        .mount(server)
        .await;
    get("users")
        .and(query_param("after", "user_dave04"))
        .respond_with(ok("openai", "users.page3.json"))
        .mount(server)
        .await;
    get("invites").respond_with(ok("openai", "invites.json")).mount(server).await;
    get("projects")
        .and(query_param("include_archived", "true"))
        .respond_with(ok("openai", "projects.json"))
        .mount(server)
        .await;
    for project in ["payments", "research"] {
        let id = format!("proj_{project}");
        for what in ["users", "service_accounts"] {
            get(&format!("projects/{id}/{what}"))
                .respond_with(ok("openai", &format!("project-{project}.{what}.json")))
                .mount(server)
                .await;
        }
    }
    get("projects/proj_payments/api_keys")
        .respond_with(ok("openai", "project-payments.api_keys.json"))
        .mount(server)
        .await;
    // Like the real API: without owner_project_access=any, Dave's key (he
    // lost access to the project) is not listed.
    get("projects/proj_research/api_keys")
        .and(query_param("owner_project_access", "any"))
        .respond_with(ok("openai", "project-research.api_keys.any.json"))
        .with_priority(1)
        .mount(server)
        .await;
    get("projects/proj_research/api_keys")
        .respond_with(ok("openai", "project-research.api_keys.active.json"))
        .with_priority(2)
        .mount(server)
        .await;
    get("admin_api_keys").respond_with(ok("openai", "admin_api_keys.json")).mount(server).await;
}

async fn mount_anthropic(server: &MockServer) {
    let get = |p: &str| {
        Mock::given(method("GET"))
            .and(path(format!("/v1/organizations/{p}")))
            .and(header("x-api-key", ANTHROPIC_KEY))
            .and(header("anthropic-version", "2023-06-01"))
    };
    get("users")
        .and(query_param_is_missing("after_id"))
        .respond_with(ok("anthropic", "users.page1.json"))
        .mount(server)
        .await;
    get("users")
        .and(query_param("after_id", "user_01BobExampleAcme00002"))
        .respond_with(ok("anthropic", "users.page2.json"))
        .mount(server)
        .await;
    get("users")
        .and(query_param("after_id", "user_01DaveDepartedAcme0004"))
        .respond_with(ok("anthropic", "users.page3.json"))
        .mount(server)
        .await;
    get("invites").respond_with(ok("anthropic", "invites.json")).mount(server).await;
    get("workspaces").respond_with(ok("anthropic", "workspaces.json")).mount(server).await;
    get("workspaces/wrkspc_01PaymentsAcme000000001/members")
        .respond_with(ok("anthropic", "workspace-payments.members.json"))
        .mount(server)
        .await;
    get("workspaces/wrkspc_01ResearchAcme000000002/members")
        .respond_with(ok("anthropic", "workspace-research.members.json"))
        .mount(server)
        .await;
    get("api_keys")
        .and(query_param_is_missing("after_id"))
        .respond_with(ok("anthropic", "api_keys.page1.json"))
        .mount(server)
        .await;
    get("api_keys")
        .and(query_param("after_id", DAVE_ANTHROPIC_KEY))
        .respond_with(ok("anthropic", "api_keys.page2.json"))
        .mount(server)
        .await;
}

/// The three mock servers (shared with the security test).
pub(super) struct Servers {
    pub(super) scim: MockServer,
    pub(super) openai: MockServer,
    pub(super) anthropic: MockServer,
}

pub(super) async fn servers() -> Servers {
    let servers = Servers {
        scim: MockServer::start().await,
        openai: MockServer::start().await,
        anthropic: MockServer::start().await,
    };
    mount_scim(&servers.scim).await;
    mount_openai(&servers.openai).await;
    mount_anthropic(&servers.anthropic).await;
    servers
}

fn write_config(scratch: &Scratch, servers: &Servers) {
    let config = format!(
        r#"[store]
url = "sqlite://store.db"

[[source]]
name = "okta"
kind = "scim"
base_url = "{scim}/scim/v2"
token = {{ env = "AG_E2E_SCIM_TOKEN" }}
flavor = "okta"

[[source]]
name = "openai"
kind = "openai"
base_url = "{openai}/v1"
admin_key = {{ env = "AG_E2E_OPENAI_KEY" }}

[[source]]
name = "anthropic"
kind = "anthropic"
base_url = "{anthropic}"
admin_key = {{ env = "AG_E2E_ANTHROPIC_KEY" }}

[catalog]
path = "agents.toml"

[[sink]]
kind = "jsonl"
path = "events.jsonl"
"#,
        scim = servers.scim.uri(),
        openai = servers.openai.uri(),
        anthropic = servers.anthropic.uri(),
    );
    scratch.write("accessgraph.toml", &config);
    scratch.write(
        "agents.toml",
        r#"[[agent]]
id = "deploy-bot"
owner = "dave@acme.example"
purpose = "Deploys the payments service"
risk_tier = "low"
allowed_systems = ["openai"]
expires = "2027-06-30"
identities = ["openai:service_account:svc_acct_deploybot"]
"#,
    );
}

/// Runs `scan` as a child process (blocking, off the runtime that serves the mocks).
async fn scan(scratch: &Scratch, now: &str) -> std::process::Output {
    let config = scratch.config();
    let now = now.to_string();
    tokio::task::spawn_blocking(move || {
        run_with_env(
            &["scan", "--config", &config, "--now", &now, "--format", "json", "--no-file"],
            &[
                ("AG_E2E_SCIM_TOKEN", SCIM_TOKEN),
                ("AG_E2E_OPENAI_KEY", OPENAI_KEY),
                ("AG_E2E_ANTHROPIC_KEY", ANTHROPIC_KEY),
            ],
        )
    })
    .await
    .expect("scan task")
}

fn findings(report: &Value) -> Vec<Value> {
    report["findings"].as_array().expect("findings").clone()
}

fn find<'r>(findings: &'r [Value], rule: &str, subject: &str, object: &str) -> Option<&'r Value> {
    findings.iter().find(|f| f["rule"] == rule && f["subject"] == subject && f["object"] == object)
}

fn assert_no_secret(text: &str) {
    for secret in [OPENAI_KEY, ANTHROPIC_KEY, SCIM_TOKEN] {
        assert!(!text.contains(secret), "a secret leaked into the output");
    }
}

fn assert_scenario(findings: &[Value]) {
    let show = || serde_json::to_string_pretty(findings).unwrap_or_default();

    // Dave owns (per the catalog) the service account holding the deploy key.
    let sa = find(
        findings,
        "ownerless.owner_inactive",
        "openai:service_account:svc_acct_deploybot",
        "person:dave@acme.example",
    )
    .unwrap_or_else(|| panic!("no owner_inactive for deploy-bot:\n{}", show()));
    let detail = sa["detail"].as_str().expect("detail");
    assert!(detail.contains("catalog record `deploy-bot`"), "{detail}");
    assert!(detail.contains("okta:user:5d8f0c2e-1b7a-4c4e-9f43-6a3c1e2b9d04"), "the SCIM account decided: {detail}");

    // Dave created the Anthropic key: inferred ownership, said so.
    let holder = format!("anthropic:service_account:key-{DAVE_ANTHROPIC_KEY}");
    let key = find(findings, "ownerless.owner_inactive", &holder, "person:dave@acme.example")
        .unwrap_or_else(|| panic!("no owner_inactive for Dave's Anthropic key:\n{}", show()));
    assert!(key["detail"].as_str().expect("detail").contains("inferred"), "{key}");

    // The key only `owner_project_access=any` lists is found.
    let hidden = find(findings, "secret.standing", "openai:user:user_dave04", "openai:api_key:key_dave_hidden")
        .unwrap_or_else(|| panic!("the hidden key was not found:\n{}", show()));
    assert_eq!(hidden["severity"].as_str().map(|s| s.is_empty()), Some(false));

    // Bob's key: idle for 200 days.
    let idle = find(findings, "secret.unused", "openai:user:user_bob02", "openai:api_key:key_bob_idle")
        .unwrap_or_else(|| panic!("no secret.unused for Bob's idle key:\n{}", show()));
    assert!(idle["title"].as_str().expect("title").contains("unused for 200 days"), "{idle}");

    // Anthropic cannot report use: never secret.unused, never "never used".
    for f in findings.iter().filter(|f| f["object"].as_str().is_some_and(|o| o.starts_with("anthropic:"))) {
        assert_ne!(f["rule"], "secret.unused", "{f}");
        assert!(!f.to_string().contains("never used"), "{f}");
    }
    // But its keys are credentials like any other: standing (no expiry).
    assert!(
        find(findings, "secret.standing", &holder, &format!("anthropic:api_key:{DAVE_ANTHROPIC_KEY}")).is_some(),
        "{}",
        show()
    );
    // Archived and inactive Anthropic keys are not access.
    for dead in ["apikey_01Old0000000000000000001", "apikey_01BobInactive0000000001"] {
        assert!(
            !findings.iter().any(|f| f["object"].as_str().is_some_and(|o| o.ends_with(dead))),
            "{dead}: {}",
            show()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_saas_departed_owner_hidden_key_idle_key_and_unknown_use() {
    let servers = servers().await;
    let scratch = Scratch::new();
    write_config(&scratch, &servers);

    let output = scan(&scratch, T1).await;
    assert_no_secret(&stdout(&output));
    assert_no_secret(&stderr(&output));
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let report = json(&output);
    let sources = report["summary"]["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 3);
    assert!(sources.iter().all(|s| s["status"] == "succeeded"), "{sources:?}");
    assert_scenario(&findings(&report));

    // Dave resolves to one person across the three sources, whatever the case
    // of his OpenAI email; the path query shows the account he reaches through.
    let path_out = tokio::task::spawn_blocking({
        let config = scratch.config();
        move || {
            run(&[
                "query",
                "path",
                "--config",
                &config,
                "--from",
                "person:dave@acme.example",
                "--to",
                "anthropic:workspace:wrkspc_01ResearchAcme000000002",
            ])
        }
    })
    .await
    .expect("query");
    assert_eq!(code(&path_out), 0, "{}", stderr(&path_out));
    let text = stdout(&path_out);
    assert!(
        text.contains("person:dave@acme.example → anthropic:user:user_01DaveDepartedAcme0004 → anthropic:workspace:"),
        "{text}"
    );

    // Second scan: Anthropic answers a malformed body and OpenAI refuses the
    // key. Both syncs fail (exit 3), the errors name the sources, and the
    // data of the first scan is kept: the findings are still there.
    servers.anthropic.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations/users"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("{\"data\": [{\"type\": \"user\"}], \"has_more\": false}"),
        )
        .mount(&servers.anthropic)
        .await;
    servers.openai.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(fixture("openai", "errors/401.json")))
        .mount(&servers.openai)
        .await;
    let output = scan(&scratch, T2).await;
    assert_no_secret(&stdout(&output));
    assert_no_secret(&stderr(&output));
    assert_eq!(code(&output), 3, "a failed source is exit 3: {}", stderr(&output));
    let report = json(&output);
    let sources = report["summary"]["sources"].as_array().expect("sources");
    let status = |name: &str| sources.iter().find(|s| s["name"] == name).cloned().expect("source outcome");
    // (okta's own outcome is not the subject here: whatever it is, the
    // findings below need its data, fresh or kept.)
    assert_eq!(status("anthropic")["status"], "failed");
    assert!(status("anthropic")["error"].as_str().expect("error").contains("malformed"), "{sources:?}");
    let openai_error = status("openai")["error"].as_str().expect("error").to_string();
    assert!(openai_error.contains("source `openai`") && openai_error.contains("401"), "{openai_error}");
    assert!(openai_error.contains("AG_E2E_OPENAI_KEY"), "names the secret reference: {openai_error}");
    assert_scenario(&findings(&report));
}
