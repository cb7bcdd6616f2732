//! The AWS IAM source end to end: the offline file pair of a small account
//! with seeded problems (fixtures/aws/), and the live client against a mock
//! IAM speaking the Query/XML protocol.

use super::common::*;
use std::collections::BTreeSet;

const NOW: &str = "2025-06-01T00:00:00Z";
const LATER: &str = "2025-06-02T00:00:00Z";

fn offline_scratch() -> Scratch {
    let scratch = Scratch::new();
    let fixtures = repo().join("fixtures/aws");
    scratch.write(
        "accessgraph.toml",
        &format!(
            r#"[store]
url = "sqlite://store.db"

[[source]]
name = "acme"
kind = "aws-iam"
account_name = "acme-prod"
authorization_details = {:?}
credential_report = {:?}

# Admin (`*` on `*`) is an effective grant like any other: usable in SoD rules.
[[sod]]
name = "admin-reads-reports"
left = {{ resource = "acme:resource:*", action = "*" }}
right = {{ resource = "acme:resource:arn:aws:s3:::acme-reports/*", action = "s3:GetObject" }}
"#,
            fixtures.join("authorization-details.json").display().to_string(),
            fixtures.join("credential-report.csv").display().to_string(),
        ),
    );
    scratch
}

fn triples(report: &serde_json::Value) -> BTreeSet<(String, String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let field = |k: &str| f[k].as_str().expect("string field").to_string();
            (field("rule"), field("subject"), field("object"))
        })
        .collect()
}

#[test]
fn an_offline_account_reports_exactly_its_seeded_problems() {
    let scratch = offline_scratch();
    let output = run(&["scan", "--config", &scratch.config(), "--now", NOW, "--format", "json", "--no-file"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    let t = |rule: &str, subject: &str, object: &str| (rule.to_string(), subject.to_string(), object.to_string());
    let oidc = "acme:external:arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com";
    let partner = "acme:external:arn:aws:iam::999999999999:root";
    let expected: BTreeSet<_> = [
        // An old, never-used key on a human: standing, unused, stale.
        t("secret.standing", "acme:user:bob@acme.example", "acme:access_key:bob@acme.example/1"),
        t("secret.unused", "acme:user:bob@acme.example", "acme:access_key:bob@acme.example/1"),
        t("secret.stale", "acme:user:bob@acme.example", "acme:access_key:bob@acme.example/1"),
        // A key on an agent-tagged user (owned by bob, in use, but standing and old).
        t("secret.standing", "acme:user:ci-bot", "acme:access_key:ci-bot/1"),
        t("secret.stale", "acme:user:ci-bot", "acme:access_key:ci-bot/1"),
        t("ownerless.unregistered", "acme:user:ci-bot", "acme:user:ci-bot"),
        // An agent role without an owner tag.
        t("ownerless.no_owner", "acme:role:etl-agent", "acme:role:etl-agent"),
        t("ownerless.unregistered", "acme:role:etl-agent", "acme:role:etl-agent"),
        // Outsiders: the GitHub OIDC provider's role has an empty owner tag,
        // the partner account's role is owned by alice.
        t("ownerless.no_owner", oidc, oidc),
        t("ownerless.unregistered", oidc, oidc),
        t("ownerless.unregistered", partner, partner),
        // alice is an admin (group admins) and reads the reports bucket.
        t("sod.violation", "person:alice@acme.example", "sod:admin-reads-reports"),
    ]
    .into_iter()
    .collect();
    assert_eq!(triples(&report), expected);
    let posture = &report["summary"]["posture"];
    assert_eq!(posture["admins"], 1, "alice, through group admins: {posture}");
    assert_eq!(posture["people"], 3);
    assert_eq!(posture["standing_secrets"], 2, "bob's inactive second key is not live");
}

#[test]
fn the_export_lists_who_can_become_whom_and_queries_walk_the_chain() {
    let scratch = offline_scratch();
    let output = run(&["scan", "--config", &scratch.config(), "--now", NOW, "--no-file"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let export = json(&run(&["export", "--config", &scratch.config(), "--format", "json"]));
    let assume: BTreeSet<(String, String, bool)> = export["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter(|e| e["kind"] == "can_assume")
        .map(|e| {
            let s = |k: &str| e[k].as_str().expect("id").to_string();
            (s("from"), s("to"), e["conditional"] == true)
        })
        .collect();
    let e = |from: &str, to: &str, conditional: bool| (from.to_string(), to.to_string(), conditional);
    let expected: BTreeSet<_> = [
        e("acme:user:alice@acme.example", "acme:role:deployer", false),
        e("acme:user:bob@acme.example", "acme:role:deployer", false),
        e("acme:user:ci-bot", "acme:role:deployer", false),
        e("acme:role:deployer", "acme:role:db-admin", false),
        e("acme:external:arn:aws:iam::999999999999:root", "acme:role:partner-audit", true),
        e(
            "acme:external:arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com",
            "acme:role:github-deploy",
            true,
        ),
    ]
    .into_iter()
    .collect();
    // carol's explicit Deny removed her path to deployer.
    assert_eq!(assume, expected);

    // What can bob do? Through deployer, iam:PassRole on app roles; through the chain, rds:*.
    let output = run(&[
        "query",
        "what-can",
        "--config",
        &scratch.config(),
        "--identity",
        "person:bob@acme.example",
        "--format",
        "json",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let rows = json(&output)["access"].as_array().expect("access").clone();
    let row = |resource: &str, action: &str| {
        rows.iter().find(|r| r["resource"] == resource && r["action"] == action).cloned().unwrap_or_default()
    };
    let pass_role = row("acme:resource:arn:aws:iam::111111111111:role/app-*", "iam:PassRole");
    assert_eq!(
        pass_role["path"],
        serde_json::json!([
            "person:bob@acme.example",
            "acme:user:bob@acme.example",
            "acme:role:deployer",
            "acme:resource:arn:aws:iam::111111111111:role/app-*"
        ])
    );
    let rds = row("acme:resource:*", "rds:*");
    assert_eq!(rds["path"].as_array().map(Vec::len), Some(5), "bob → user → deployer → db-admin → *: {rds}");

    // carol has no path to the deployer role.
    let output = run(&[
        "query",
        "path",
        "--config",
        &scratch.config(),
        "--from",
        "acme:user:carol@acme.example",
        "--to",
        "acme:role:deployer",
        "--format",
        "json",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(json(&output)["path"].is_null());
}

// ---------------------------------------------------------------------------
// Live: the SDK against a mock IAM.

pub(super) mod live {
    use super::super::common::*;
    use super::{LATER, NOW};
    use wiremock::matchers::{body_string_contains, header_regex, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

    fn xml(status: u16, body: String) -> ResponseTemplate {
        ResponseTemplate::new(status).insert_header("content-type", "text/xml").set_body_string(body)
    }

    fn ok(op: &str, ns: &str, result: &str) -> ResponseTemplate {
        xml(
            200,
            format!(
                "<{op}Response xmlns=\"{ns}\"><{op}Result>{result}</{op}Result>\
                 <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8e00000000</RequestId></ResponseMetadata></{op}Response>"
            ),
        )
    }

    fn action(name: &str) -> wiremock::matchers::BodyContainsMatcher {
        body_string_contains(format!("Action={name}&"))
    }

    /// The e2e run's own credentials (the base account, 111…).
    const BASE_KEY: &str = "AKIDE2EEXAMPLE000001";
    /// The session AssumeRole hands out for the second account (222…).
    const BETA_KEY: &str = "ASIAE2EBETAEXAMPLE01";

    async fn mount_account(server: &MockServer) {
        mount_account_as(server, BASE_KEY, true).await;
    }

    /// The fixture account, for requests signed with `key`; `ci_bot_key`:
    /// whether ci-bot still has its access key.
    pub(in crate::e2e) async fn mount_account_as(server: &MockServer, key: &str, ci_bot_key: bool) {
        let signed = || header_regex("authorization", &format!("Credential={key}/"));
        let api = repo().join("fixtures/aws/api");
        let page = |n: u8| std::fs::read_to_string(api.join(format!("authorization-details-{n}.xml"))).expect("page");
        let csv = std::fs::read(repo().join("fixtures/aws/credential-report.csv")).expect("report");
        Mock::given(method("POST"))
            .and(action("GetCallerIdentity"))
            .respond_with(ok(
                "GetCallerIdentity",
                "https://sts.amazonaws.com/doc/2011-06-15/",
                "<Arn>arn:aws:iam::111111111111:user/accessgraph</Arn><UserId>AIDAEXAMPLE</UserId><Account>111111111111</Account>",
            ))
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(action("GetAccountAuthorizationDetails"))
            .and(body_string_contains("Marker=bWFya2VyLXBhZ2UtMg"))
            .and(signed())
            .respond_with(xml(200, page(2)))
            .with_priority(1)
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(action("GetAccountAuthorizationDetails"))
            .and(signed())
            .respond_with(xml(200, page(1)))
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(action("GenerateCredentialReport"))
            .and(signed())
            .respond_with(ok("GenerateCredentialReport", IAM_NS, "<State>COMPLETE</State>"))
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(action("GetCredentialReport"))
            .and(signed())
            .respond_with(ok(
                "GetCredentialReport",
                IAM_NS,
                &format!(
                    "<Content>{}</Content><ReportFormat>text/csv</ReportFormat><GeneratedTime>2025-05-31T10:00:00Z</GeneratedTime>",
                    base64(&csv)
                ),
            ))
            .mount(server)
            .await;
        for (user, keys) in [
            (
                "bob",
                "<member><UserName>bob@acme.example</UserName><AccessKeyId>AKIAACMEBOB000000001</AccessKeyId><Status>Active</Status><CreateDate>2023-01-10T09:30:00Z</CreateDate></member>",
            ),
            (
                "ci-bot",
                if ci_bot_key {
                    "<member><UserName>ci-bot</UserName><AccessKeyId>AKIAACMECIBOT0000001</AccessKeyId><Status>Active</Status><CreateDate>2024-10-01T00:00:00Z</CreateDate></member>"
                } else {
                    ""
                },
            ),
        ] {
            Mock::given(method("POST"))
                .and(action("ListAccessKeys"))
                .and(body_string_contains(format!("UserName={user}")))
                .and(signed())
                .respond_with(ok(
                    "ListAccessKeys",
                    IAM_NS,
                    &format!("<AccessKeyMetadata>{keys}</AccessKeyMetadata><IsTruncated>false</IsTruncated>"),
                ))
                .mount(server)
                .await;
        }
    }

    fn scan(scratch: &Scratch, now: &str) -> std::process::Output {
        let missing = scratch.path("no-aws-config").display().to_string();
        run_with_env(
            &["scan", "--config", &scratch.config(), "--now", now, "--format", "json", "--no-file"],
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDE2EEXAMPLE000001"),
                ("AWS_SECRET_ACCESS_KEY", "e2e-secret-not-real"),
                ("AWS_CONFIG_FILE", &missing),
                ("AWS_SHARED_CREDENTIALS_FILE", &missing),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ],
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn access_denied_fails_the_sync_and_keeps_the_previous_data() {
        let server = MockServer::start().await;
        mount_account(&server).await;
        let scratch = Scratch::new();
        scratch.write(
            "accessgraph.toml",
            &format!(
                "[store]\nurl = \"sqlite://store.db\"\n\n[[source]]\nname = \"acme\"\nkind = \"aws-iam\"\n\
                 account_name = \"acme-prod\"\nendpoint_url = \"{}\"\n",
                server.uri()
            ),
        );
        let first = {
            let scratch = &scratch;
            tokio::task::block_in_place(|| scan(scratch, NOW))
        };
        assert_eq!(code(&first), 0, "{}", stderr(&first));
        let report = json(&first);
        assert_eq!(report["summary"]["sources"][0]["status"], "succeeded");
        let subjects: Vec<&str> =
            report["findings"].as_array().expect("findings").iter().filter_map(|f| f["object"].as_str()).collect();
        assert!(subjects.contains(&"acme:access_key:AKIAACMEBOB000000001"), "live keys carry their ids: {subjects:?}");

        server.reset().await;
        Mock::given(method("POST"))
            .and(action("GetCallerIdentity"))
            .respond_with(ok(
                "GetCallerIdentity",
                "https://sts.amazonaws.com/doc/2011-06-15/",
                "<Arn>arn:aws:iam::111111111111:user/accessgraph</Arn><UserId>AIDAEXAMPLE</UserId><Account>111111111111</Account>",
            ))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(action("GetAccountAuthorizationDetails"))
            .respond_with(xml(
                403,
                format!(
                    "<ErrorResponse xmlns=\"{IAM_NS}\"><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                     <Message>User: arn:aws:iam::111111111111:user/accessgraph is not authorized to perform: \
                     iam:GetAccountAuthorizationDetails on resource: *</Message></Error>\
                     <RequestId>8f2d2c2e-8f7b-4c44-9a3e-2a9f0d2b1f11</RequestId></ErrorResponse>"
                ),
            ))
            .mount(&server)
            .await;
        let second = {
            let scratch = &scratch;
            tokio::task::block_in_place(|| scan(scratch, LATER))
        };
        assert_eq!(code(&second), 3, "a failed source exits 3: {}", stderr(&second));
        let report = json(&second);
        let source = &report["summary"]["sources"][0];
        assert_eq!(source["status"], "failed");
        let error = source["error"].as_str().expect("error text");
        assert!(error.contains("permission denied") && error.contains("iam:GetAccountAuthorizationDetails"), "{error}");
        assert!(!stderr(&second).contains("e2e-secret-not-real"), "secrets never logged");
        // The previous sync's rows are intact: same findings, nothing resolved.
        assert_eq!(super::triples(&report), super::triples(&json(&first)));
        let export = json(&run(&["export", "--config", &scratch.config(), "--format", "json"]));
        let ids: Vec<&str> =
            export["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["id"].as_str()).collect();
        assert!(ids.contains(&"acme:role:deployer") && ids.contains(&"acme:access_key:AKIAACMECIBOT0000001"));
    }

    /// `text` percent-encoded as IAM encodes policy documents.
    fn url_encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// How the second account (222…) answers.
    #[derive(Clone, Copy, PartialEq)]
    enum Beta {
        /// Readable; `key`: whether ops-bot still has its access key.
        Healthy { key: bool },
        /// Its audit role cannot be assumed.
        Denied,
    }

    /// The second account: one agent-tagged user, ops-bot, without an owner,
    /// writing every S3 bucket of its account with a standing key.
    async fn mount_beta(server: &MockServer, beta: Beta) {
        if beta == Beta::Denied {
            Mock::given(method("POST"))
                .and(action("AssumeRole"))
                .and(body_string_contains("222222222222"))
                .respond_with(xml(
                    403,
                    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
                     <Code>AccessDenied</Code><Message>User: arn:aws:iam::111111111111:user/accessgraph is not \
                     authorized to perform: sts:AssumeRole on resource: arn:aws:iam::222222222222:role/accessgraph-audit\
                     </Message></Error><RequestId>8f2d2c2e-8f7b-4c44-9a3e-2a9f0d2b1f12</RequestId></ErrorResponse>"
                        .to_string(),
                ))
                .mount(server)
                .await;
            return;
        }
        Mock::given(method("POST"))
            .and(action("AssumeRole"))
            .and(body_string_contains("222222222222"))
            .respond_with(ok(
                "AssumeRole",
                "https://sts.amazonaws.com/doc/2011-06-15/",
                &format!(
                    "<AssumedRoleUser><Arn>arn:aws:sts::222222222222:assumed-role/accessgraph-audit/accessgraph</Arn>\
                     <AssumedRoleId>AROAE2EBETA000000001:accessgraph</AssumedRoleId></AssumedRoleUser>\
                     <Credentials><AccessKeyId>{BETA_KEY}</AccessKeyId><SecretAccessKey>beta-secret-not-real</SecretAccessKey>\
                     <SessionToken>beta-session-token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>"
                ),
            ))
            .mount(server)
            .await;
        let signed = || header_regex("authorization", &format!("Credential={BETA_KEY}/"));
        let policy = url_encode(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::beta-*"}]}"#,
        );
        let details = format!(
            "<GetAccountAuthorizationDetailsResponse xmlns=\"{IAM_NS}\"><GetAccountAuthorizationDetailsResult>\
             <IsTruncated>false</IsTruncated><UserDetailList><member><Path>/</Path><UserName>ops-bot</UserName>\
             <UserId>AIDAE2EBETAOPSBOT001</UserId><Arn>arn:aws:iam::222222222222:user/ops-bot</Arn>\
             <CreateDate>2023-01-01T00:00:00Z</CreateDate><UserPolicyList><member><PolicyName>buckets</PolicyName>\
             <PolicyDocument>{policy}</PolicyDocument></member></UserPolicyList><GroupList/><AttachedManagedPolicies/>\
             <Tags><member><Key>accessgraph:kind</Key><Value>agent</Value></member></Tags></member></UserDetailList>\
             <GroupDetailList/><RoleDetailList/><Policies/></GetAccountAuthorizationDetailsResult>\
             <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8e00000002</RequestId></ResponseMetadata>\
             </GetAccountAuthorizationDetailsResponse>"
        );
        Mock::given(method("POST"))
            .and(action("GetAccountAuthorizationDetails"))
            .and(signed())
            .respond_with(xml(200, details))
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(action("GenerateCredentialReport"))
            .and(signed())
            .respond_with(ok("GenerateCredentialReport", IAM_NS, "<State>COMPLETE</State>"))
            .mount(server)
            .await;
        let fixture = std::fs::read_to_string(repo().join("fixtures/aws/credential-report.csv")).expect("report");
        let header = fixture.lines().next().expect("header");
        let csv = format!(
            "{header}\nops-bot,arn:aws:iam::222222222222:user/ops-bot,2023-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,\
             true,2023-02-01T00:00:00+00:00,2025-05-20T00:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
        );
        Mock::given(method("POST"))
            .and(action("GetCredentialReport"))
            .and(signed())
            .respond_with(ok(
                "GetCredentialReport",
                IAM_NS,
                &format!(
                    "<Content>{}</Content><ReportFormat>text/csv</ReportFormat><GeneratedTime>2025-05-31T10:00:00Z</GeneratedTime>",
                    base64(csv.as_bytes())
                ),
            ))
            .mount(server)
            .await;
        let keys = if beta == (Beta::Healthy { key: true }) {
            "<member><UserName>ops-bot</UserName><AccessKeyId>AKIAE2EBETAOPSBOT001</AccessKeyId><Status>Active</Status>\
             <CreateDate>2023-02-01T00:00:00Z</CreateDate></member>"
        } else {
            ""
        };
        Mock::given(method("POST"))
            .and(action("ListAccessKeys"))
            .and(signed())
            .respond_with(ok(
                "ListAccessKeys",
                IAM_NS,
                &format!("<AccessKeyMetadata>{keys}</AccessKeyMetadata><IsTruncated>false</IsTruncated>"),
            ))
            .mount(server)
            .await;
    }

    /// (rule, subject, object) → status of every finding in a scan report.
    fn statuses(report: &serde_json::Value) -> std::collections::BTreeMap<(String, String, String), String> {
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| {
                let field = |k: &str| f[k].as_str().expect("string field").to_string();
                ((field("rule"), field("subject"), field("object")), field("status"))
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreadable_account_keeps_its_rows_and_findings_while_the_other_lands() {
        const EVEN_LATER: &str = "2025-06-03T00:00:00Z";
        let server = MockServer::start().await;
        mount_account_as(&server, BASE_KEY, true).await;
        mount_beta(&server, Beta::Healthy { key: true }).await;
        let scratch = Scratch::new();
        scratch.write(
            "accessgraph.toml",
            &format!(
                "[store]\nurl = \"sqlite://store.db\"\n\n[[source]]\nname = \"acme\"\nkind = \"aws-iam\"\n\
                 account_name = \"acme-prod\"\nendpoint_url = \"{}\"\n\
                 assume_roles = [\"arn:aws:iam::222222222222:role/accessgraph-audit\"]\n",
                server.uri()
            ),
        );
        let scan_at = |now: &'static str| {
            let scratch = &scratch;
            tokio::task::block_in_place(|| scan(scratch, now))
        };
        let t = |rule: &str, subject: &str, object: &str| (rule.to_string(), subject.to_string(), object.to_string());
        let ops_bot = "acme:user:222222222222/ops-bot";
        let ops_key = "acme:access_key:AKIAE2EBETAOPSBOT001";
        let ci_bot = "acme:user:111111111111/ci-bot";
        let ci_key = "acme:access_key:AKIAACMECIBOT0000001";
        let beta_findings = [
            t("secret.standing", ops_bot, ops_key),
            t("secret.stale", ops_bot, ops_key),
            t("ownerless.no_owner", ops_bot, ops_bot),
            t("ownerless.unregistered", ops_bot, ops_bot),
        ];
        let ci_findings = [t("secret.standing", ci_bot, ci_key), t("secret.stale", ci_bot, ci_key)];

        // 1. Both accounts read.
        let first = scan_at(NOW);
        assert_eq!(code(&first), 0, "{}", stderr(&first));
        let report = json(&first);
        assert_eq!(report["summary"]["sources"][0]["status"], "succeeded");
        let found = statuses(&report);
        for finding in beta_findings.iter().chain(&ci_findings) {
            assert_eq!(found.get(finding).map(String::as_str), Some("open"), "{finding:?} in {found:?}");
        }

        // 2. The second account cannot be assumed; the first loses ci-bot's key.
        server.reset().await;
        mount_account_as(&server, BASE_KEY, false).await;
        mount_beta(&server, Beta::Denied).await;
        let second = scan_at(LATER);
        assert_eq!(code(&second), 3, "a partial source exits 3 like a failed one: {}", stderr(&second));
        let report = json(&second);
        let source = &report["summary"]["sources"][0];
        assert_eq!(source["status"], "partial", "{source}");
        let error = source["error"].as_str().expect("error text");
        assert!(error.starts_with("account 222222222222: ") && error.contains("sts:AssumeRole"), "{error}");
        assert!(source["stats"]["kept"].as_u64().is_some_and(|kept| kept > 0), "{source}");
        let found = statuses(&report);
        for finding in &beta_findings {
            assert_eq!(found.get(finding).map(String::as_str), Some("open"), "B's findings survive: {finding:?}");
        }
        for finding in &ci_findings {
            assert_eq!(found.get(finding).map(String::as_str), Some("resolved"), "A's change lands: {finding:?}");
        }
        let export = json(&run(&["export", "--config", &scratch.config(), "--format", "json"]));
        let ids: Vec<&str> =
            export["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["id"].as_str()).collect();
        assert!(ids.contains(&ops_bot) && ids.contains(&ops_key), "B's rows are kept: {ids:?}");
        assert!(!ids.contains(&ci_key), "A's removed key is gone");
        let grants: Vec<&serde_json::Value> = export["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .filter(|e| e["from"] == ops_bot && e["kind"] == "grant")
            .collect();
        assert_eq!(grants.len(), 1, "ops-bot's access is not removed: {grants:?}");

        // 3. The second account recovers, without ops-bot's key: its changes land.
        server.reset().await;
        mount_account_as(&server, BASE_KEY, false).await;
        mount_beta(&server, Beta::Healthy { key: false }).await;
        let third = scan_at(EVEN_LATER);
        assert_eq!(code(&third), 0, "{}", stderr(&third));
        let report = json(&third);
        assert_eq!(report["summary"]["sources"][0]["status"], "succeeded");
        let found = statuses(&report);
        for finding in &beta_findings[..2] {
            assert_eq!(found.get(finding).map(String::as_str), Some("resolved"), "B's change lands: {finding:?}");
        }
        for finding in &beta_findings[2..] {
            assert_eq!(found.get(finding).map(String::as_str), Some("open"), "{finding:?}");
        }
    }
}
