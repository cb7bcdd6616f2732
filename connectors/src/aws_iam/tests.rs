//! The real SDK clients against an in-process mock speaking IAM's and STS's
//! Query/XML protocol (POST form `Action=…&Version=…`), fed from
//! `fixtures/aws/`: pagination, URL-encoded documents, `Throttling`, 5xx,
//! `AccessDenied`, malformed XML, the credential report lifecycle and
//! AssumeRole for several accounts.

use std::collections::BTreeSet;
use std::time::Duration;

use accessgraph_config::AwsIamSettings;
use accessgraph_graph::{EdgeKind, Fragment, LastUse, NodeKind};
use base64::Engine;
use wiremock::matchers::{body_string_contains, header_regex, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::AwsIamConnector;
use super::client::ClientOptions;
use crate::connector::{Connector, SyncError};
use crate::http::HttpError;

const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const PAGE_1: &str = include_str!("../../../fixtures/aws/api/authorization-details-1.xml");
const PAGE_2: &str = include_str!("../../../fixtures/aws/api/authorization-details-2.xml");
const REPORT_CSV: &str = include_str!("../../../fixtures/aws/credential-report.csv");
/// The base credentials' key id (signed into every request's Authorization).
const BASE_KEY: &str = "AKIDBASEEXAMPLE00001";

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

fn error(status: u16, kind: &str, code: &str, message: &str) -> ResponseTemplate {
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"{IAM_NS}\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>8f2d2c2e-8f7b-4c44-9a3e-2a9f0d2b1f11</RequestId></ErrorResponse>"
        ),
    )
}

fn action(name: &str) -> wiremock::matchers::BodyContainsMatcher {
    body_string_contains(format!("Action={name}&"))
}

fn settings(server: &MockServer) -> AwsIamSettings {
    AwsIamSettings {
        account_name: "acme-prod".into(),
        region: "us-east-1".into(),
        endpoint_url: Some(server.uri()),
        assume_roles: Vec::new(),
        owner_tags: vec!["owner".into(), "Owner".into(), "accessgraph:owner".into()],
        agent_tags: [("accessgraph:kind".to_string(), "agent".to_string())].into(),
        authorization_details: None,
        credential_report: None,
    }
}

fn options(server: &MockServer) -> ClientOptions {
    let mut options = ClientOptions::new("us-east-1", Some(server.uri()));
    options.max_attempts = 3;
    options.initial_backoff = Duration::from_millis(1);
    options.max_backoff = Duration::from_millis(5);
    options.report_poll_interval = Duration::from_millis(1);
    options.report_poll_attempts = 5;
    options.static_credentials =
        Some(aws_sdk_iam::config::Credentials::new(BASE_KEY, "base-secret-not-real", None, None, "test"));
    options
}

fn connector(server: &MockServer, settings: AwsIamSettings) -> AwsIamConnector {
    AwsIamConnector::new("acme", settings).with_options(options(server))
}

fn signed_by(key: &str) -> wiremock::matchers::HeaderRegexMatcher {
    header_regex("authorization", &format!("Credential={key}/"))
}

/// Every call of one account's healthy sync, for requests signed with `key`.
async fn mount_account(server: &MockServer, key: &str, account: &str) {
    Mock::given(method("POST"))
        .and(path("/"))
        .and(action("GetCallerIdentity"))
        .respond_with(ok(
            "GetCallerIdentity",
            STS_NS,
            &format!("<Arn>arn:aws:iam::{account}:user/accessgraph</Arn><UserId>AIDAEXAMPLE</UserId><Account>{account}</Account>"),
        ))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(action("GetAccountAuthorizationDetails"))
        .and(body_string_contains("Marker=bWFya2VyLXBhZ2UtMg"))
        .and(signed_by(key))
        .respond_with(xml(200, PAGE_2.to_string()))
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(action("GetAccountAuthorizationDetails"))
        .and(signed_by(key))
        .respond_with(xml(200, PAGE_1.to_string()))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(action("GenerateCredentialReport"))
        .and(signed_by(key))
        .respond_with(ok(
            "GenerateCredentialReport",
            IAM_NS,
            "<State>STARTED</State><Description>No report exists. Starting a new report generation task</Description>",
        ))
        .mount(server)
        .await;
    // The report is in progress once, then ready.
    Mock::given(method("POST"))
        .and(action("GetCredentialReport"))
        .and(signed_by(key))
        .respond_with(error(404, "Sender", "ReportInProgress", "Report generation in progress"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    let content = base64::engine::general_purpose::STANDARD.encode(REPORT_CSV);
    Mock::given(method("POST"))
        .and(action("GetCredentialReport"))
        .and(signed_by(key))
        .respond_with(ok(
            "GetCredentialReport",
            IAM_NS,
            &format!(
                "<Content>{content}</Content><ReportFormat>text/csv</ReportFormat><GeneratedTime>2025-05-31T10:00:00Z</GeneratedTime>"
            ),
        ))
        .mount(server)
        .await;
    let keys = [
        ("bob", "bob@acme.example", "AKIAACMEBOB000000001", "Active", "2023-01-10T09:30:00Z"),
        ("bob", "bob@acme.example", "AKIAACMEBOB000000002", "Inactive", "2022-05-01T00:00:00Z"),
        ("ci-bot", "ci-bot", "AKIAACMECIBOT0000001", "Active", "2024-10-01T00:00:00Z"),
    ];
    for user in ["bob", "ci-bot"] {
        let members: String = keys
            .iter()
            .filter(|k| k.0 == user)
            .map(|(_, name, id, status, created)| {
                format!(
                    "<member><UserName>{name}</UserName><AccessKeyId>{id}</AccessKeyId><Status>{status}</Status>\
                     <CreateDate>{created}</CreateDate></member>"
                )
            })
            .collect();
        Mock::given(method("POST"))
            .and(action("ListAccessKeys"))
            .and(body_string_contains(format!("UserName={user}")))
            .and(signed_by(key))
            .respond_with(ok(
                "ListAccessKeys",
                IAM_NS,
                &format!("<AccessKeyMetadata>{members}</AccessKeyMetadata><IsTruncated>false</IsTruncated>"),
            ))
            .mount(server)
            .await;
    }
}

async fn requests_of(server: &MockServer, op: &str) -> usize {
    let needle = format!("Action={op}&");
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(&needle))
        .count()
}

fn offline_fragment() -> Fragment {
    let account = super::transform::tests::fixture_account();
    let owner_tags = vec!["owner".to_string(), "Owner".to_string(), "accessgraph:owner".to_string()];
    let agent_tags = [("accessgraph:kind".to_string(), "agent".to_string())].into();
    let settings = super::MapSettings {
        source: "acme",
        account_name: "acme-prod",
        owner_tags: &owner_tags,
        agent_tags: &agent_tags,
    };
    super::map(&settings, &[account]).expect("offline maps")
}

fn without_keys(fragment: &Fragment) -> (BTreeSet<String>, BTreeSet<String>) {
    let nodes = fragment
        .nodes
        .iter()
        .filter(|n| n.kind != NodeKind::Credential)
        .map(|n| serde_json::to_string(n).expect("json"))
        .collect();
    let edges = fragment.edges.iter().filter(|e| e.kind != EdgeKind::Holds).map(|e| e.key()).collect();
    (nodes, edges)
}

#[tokio::test]
async fn live_sync_pages_decodes_polls_and_reads_what_offline_mode_reads() {
    let server = MockServer::start().await;
    mount_account(&server, BASE_KEY, "111111111111").await;
    let fragment = connector(&server, settings(&server)).sync().await.expect("live sync");
    assert_eq!(requests_of(&server, "GetAccountAuthorizationDetails").await, 2, "two pages");
    assert_eq!(requests_of(&server, "GetCredentialReport").await, 2, "in progress, then ready");
    // URL-encoded documents were decoded: the same graph as the CLI export.
    assert_eq!(without_keys(&fragment), without_keys(&offline_fragment()));
    // Keys carry their real ids, matched to the report by creation time.
    let key = fragment.nodes.iter().find(|n| n.id == "acme:access_key:AKIAACMEBOB000000001").expect("bob's key");
    assert_eq!((key.active, key.last_used), (Some(true), LastUse::Never));
    let inactive = fragment.nodes.iter().find(|n| n.id == "acme:access_key:AKIAACMEBOB000000002").expect("key 2");
    assert_eq!(inactive.active, Some(false));
    let bot = fragment.nodes.iter().find(|n| n.id == "acme:access_key:AKIAACMECIBOT0000001").expect("bot key");
    assert!(matches!(bot.last_used, LastUse::At(_)));
    assert!(fragment.edges.iter().any(|e| e.kind == EdgeKind::Holds && e.from == "acme:user:ci-bot" && e.to == bot.id));
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_within_its_bound() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(action("GetAccountAuthorizationDetails"))
        .respond_with(error(400, "Sender", "Throttling", "Rate exceeded"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_account(&server, BASE_KEY, "111111111111").await;
    connector(&server, settings(&server)).sync().await.expect("sync succeeds after one Throttling");
    assert_eq!(requests_of(&server, "GetAccountAuthorizationDetails").await, 3, "throttled, retried, page 2");
}

#[tokio::test]
async fn endless_throttling_fails_after_the_configured_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(action("GetAccountAuthorizationDetails"))
        .respond_with(error(400, "Sender", "Throttling", "Rate exceeded"))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_account(&server, BASE_KEY, "111111111111").await;
    let err = connector(&server, settings(&server)).sync().await.expect_err("throttled for good");
    assert!(matches!(err, SyncError::Http(HttpError::RateLimited { .. })), "{err}");
    // max_attempts = 3: the SDK's retries alone, nothing stacked on top.
    assert_eq!(requests_of(&server, "GetAccountAuthorizationDetails").await, 3);
}

#[tokio::test]
async fn server_failures_are_transient_and_bounded() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(action("GetAccountAuthorizationDetails"))
        .respond_with(error(500, "Receiver", "ServiceFailure", "Internal failure"))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_account(&server, BASE_KEY, "111111111111").await;
    let err = connector(&server, settings(&server)).sync().await.expect_err("5xx for good");
    assert!(matches!(err, SyncError::Http(HttpError::Transient { status: Some(500), .. })), "{err}");
    assert_eq!(requests_of(&server, "GetAccountAuthorizationDetails").await, 3);
}

#[tokio::test]
async fn access_denied_is_a_clear_permission_error() {
    let server = MockServer::start().await;
    let message = "User: arn:aws:iam::111111111111:user/accessgraph is not authorized to perform: \
                   iam:GetAccountAuthorizationDetails on resource: *";
    Mock::given(method("POST"))
        .and(action("GetAccountAuthorizationDetails"))
        .respond_with(error(403, "Sender", "AccessDenied", message))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_account(&server, BASE_KEY, "111111111111").await;
    let err = connector(&server, settings(&server)).sync().await.expect_err("denied");
    let text = err.to_string();
    assert!(matches!(err, SyncError::Http(HttpError::Permission { .. })), "{text}");
    assert!(text.contains("iam:GetAccountAuthorizationDetails (account 111111111111)"), "{text}");
    assert!(text.contains("is not authorized to perform"), "{text}");
    assert!(!text.contains("base-secret-not-real"), "no secret in errors");
    assert_eq!(requests_of(&server, "GetAccountAuthorizationDetails").await, 1, "not retried");
}

#[tokio::test]
async fn invalid_credentials_are_an_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(action("GetCallerIdentity"))
        .respond_with(error(
            403,
            "Sender",
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ))
        .mount(&server)
        .await;
    let err = connector(&server, settings(&server)).sync().await.expect_err("bad key");
    assert!(matches!(err, SyncError::Http(HttpError::Auth { .. })), "{err}");
}

#[tokio::test]
async fn malformed_xml_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(action("GetAccountAuthorizationDetails"))
        .respond_with(xml(200, "<GetAccountAuthorizationDetailsResponse><oops".into()))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_account(&server, BASE_KEY, "111111111111").await;
    let err = connector(&server, settings(&server)).sync().await.expect_err("bad body");
    assert!(matches!(err, SyncError::Http(HttpError::Decode { .. })), "{err}");
}

#[tokio::test]
async fn an_expired_report_is_generated_again_and_a_stuck_one_gives_up() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(action("GetCredentialReport"))
        .respond_with(error(410, "Sender", "ReportExpired", "The report is older than 4 hours"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_account(&server, BASE_KEY, "111111111111").await;
    connector(&server, settings(&server)).sync().await.expect("expired, regenerated, polled, read");
    assert_eq!(requests_of(&server, "GenerateCredentialReport").await, 2);

    let stuck = MockServer::start().await;
    Mock::given(method("POST"))
        .and(action("GetCredentialReport"))
        .respond_with(error(404, "Sender", "ReportInProgress", "Report generation in progress"))
        .with_priority(1)
        .mount(&stuck)
        .await;
    mount_account(&stuck, BASE_KEY, "111111111111").await;
    let err = connector(&stuck, settings(&stuck)).sync().await.expect_err("never ready");
    assert!(err.to_string().contains("still being generated after 5 polls"), "{err}");
}

const ASSUMED_KEY: &str = "ASIAASSUMEDEXAMPLE01";

async fn mount_assume(server: &MockServer, role: &str) {
    Mock::given(method("POST"))
        .and(action("AssumeRole"))
        .and(body_string_contains("RoleSessionName=accessgraph"))
        .and(signed_by(BASE_KEY))
        .respond_with(ok(
            "AssumeRole",
            STS_NS,
            &format!(
                "<AssumedRoleUser><Arn>arn:aws:sts::222222222222:assumed-role/{role}/accessgraph</Arn>\
                 <AssumedRoleId>AROAEXAMPLEASSUMED01:accessgraph</AssumedRoleId></AssumedRoleUser>\
                 <Credentials><AccessKeyId>{ASSUMED_KEY}</AccessKeyId><SecretAccessKey>assumed-secret-not-real</SecretAccessKey>\
                 <SessionToken>assumed-session-token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>"
            ),
        ))
        .mount(server)
        .await;
}

#[tokio::test]
async fn assume_roles_reads_each_account_and_qualifies_names() {
    let server = MockServer::start().await;
    mount_account(&server, BASE_KEY, "111111111111").await;
    mount_assume(&server, "accessgraph-audit").await;
    mount_account(&server, ASSUMED_KEY, "222222222222").await;
    let mut with_roles = settings(&server);
    with_roles.assume_roles = vec![
        "arn:aws:iam::222222222222:role/accessgraph-audit".into(),
        // The credentials' own account is read once, not twice.
        "arn:aws:iam::111111111111:role/accessgraph-audit".into(),
    ];
    let fragment = connector(&server, with_roles).sync().await.expect("two accounts");
    let ids: BTreeSet<&str> = fragment.nodes.iter().map(|n| n.id.as_str()).collect();
    assert!(ids.contains("acme:user:111111111111/bob@acme.example"), "{ids:?}");
    assert!(ids.contains("acme:user:222222222222/bob@acme.example"));
    assert!(ids.contains("acme:role:222222222222/deployer"));
    assert_eq!(requests_of(&server, "AssumeRole").await, 1);
    // The second account was read with the assumed session's credentials.
    let requests = server.received_requests().await.unwrap_or_default();
    assert!(requests.iter().any(|r| {
        r.headers.get("x-amz-security-token").is_some_and(|v| v.as_bytes() == b"assumed-session-token")
            && String::from_utf8_lossy(&r.body).contains("GetAccountAuthorizationDetails")
    }));
}

/// AssumeRole of `account`'s audit role answered with `template`.
async fn mount_assume_of(server: &MockServer, account: &str, template: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(action("AssumeRole"))
        .and(body_string_contains(format!("{account}%3Arole%2Faccessgraph-audit")))
        .respond_with(template)
        .with_priority(1)
        .mount(server)
        .await;
}

fn ids_of(fragment: &Fragment) -> BTreeSet<&str> {
    fragment.nodes.iter().map(|n| n.id.as_str()).collect()
}

#[tokio::test]
async fn a_failing_account_is_kept_while_the_others_are_read() {
    let server = MockServer::start().await;
    mount_account(&server, BASE_KEY, "111111111111").await;
    // 222… is read through the assumed role; 333…'s role cannot be assumed.
    mount_assume(&server, "accessgraph-audit").await;
    mount_account(&server, ASSUMED_KEY, "222222222222").await;
    let denied = "User: arn:aws:iam::111111111111:user/accessgraph is not authorized to perform: sts:AssumeRole \
                  on resource: arn:aws:iam::333333333333:role/accessgraph-audit";
    mount_assume_of(&server, "333333333333", error(403, "Sender", "AccessDenied", denied)).await;
    let mut with_roles = settings(&server);
    with_roles.assume_roles = vec![
        "arn:aws:iam::222222222222:role/accessgraph-audit".into(),
        "arn:aws:iam::333333333333:role/accessgraph-audit".into(),
    ];
    let fragment = connector(&server, with_roles).sync().await.expect("a partial fragment");
    let ids = ids_of(&fragment);
    assert!(ids.contains("acme:user:111111111111/bob@acme.example"), "{ids:?}");
    assert!(ids.contains("acme:role:222222222222/deployer"), "{ids:?}");
    assert!(!ids.iter().any(|id| id.contains("333333333333")), "nothing of the unread account: {ids:?}");
    assert_eq!(fragment.kept.len(), 1);
    let kept = &fragment.kept[0];
    assert_eq!(kept.name, "account 333333333333");
    assert_eq!(kept.prefixes, super::account_prefixes("acme", "333333333333"));
    assert!(kept.covers("acme:role:333333333333/deployer") && !kept.covers("acme:role:222222222222/deployer"));
    assert!(kept.error.contains("sts:AssumeRole arn:aws:iam::333333333333:role/accessgraph-audit"), "{}", kept.error);
    assert!(kept.error.contains("not authorized"), "{}", kept.error);
    assert_eq!(fragment.kept_error().as_deref(), Some(format!("account 333333333333: {}", kept.error).as_str()));
    // The read accounts map exactly as they would with 333… read and empty.
    let alice = fragment.nodes.iter().find(|n| n.id == "acme:user:111111111111/alice@acme.example").expect("alice");
    assert_eq!(alice.attrs.get("account_name").map(String::as_str), Some("acme-prod"));
}

#[tokio::test]
async fn an_account_whose_details_are_denied_is_kept() {
    let server = MockServer::start().await;
    mount_account(&server, BASE_KEY, "111111111111").await;
    mount_assume(&server, "accessgraph-audit").await;
    let message = "User: arn:aws:sts::222222222222:assumed-role/accessgraph-audit/accessgraph is not authorized \
                   to perform: iam:GetAccountAuthorizationDetails on resource: *";
    Mock::given(method("POST"))
        .and(action("GetAccountAuthorizationDetails"))
        .and(signed_by(ASSUMED_KEY))
        .respond_with(error(403, "Sender", "AccessDenied", message))
        .mount(&server)
        .await;
    let mut with_roles = settings(&server);
    with_roles.assume_roles = vec!["arn:aws:iam::222222222222:role/accessgraph-audit".into()];
    let fragment = connector(&server, with_roles).sync().await.expect("a partial fragment");
    let ids = ids_of(&fragment);
    // Names stay qualified: the source still has two accounts.
    assert!(ids.contains("acme:role:111111111111/deployer"), "{ids:?}");
    assert!(!ids.contains("acme:role:deployer"));
    assert_eq!(fragment.kept.len(), 1);
    assert_eq!(fragment.kept[0].name, "account 222222222222");
    assert!(fragment.kept[0].error.contains("iam:GetAccountAuthorizationDetails"), "{}", fragment.kept[0].error);
    // The credentials' own account trusts nobody in 222…, so no edge and no
    // `external:` node stands in for the unread account's principals.
    assert!(!ids.iter().any(|id| id.contains("222222222222")), "{ids:?}");
}

#[tokio::test]
async fn when_no_account_can_be_read_the_sync_fails() {
    let server = MockServer::start().await;
    let message = "User: arn:aws:iam::111111111111:user/accessgraph is not authorized to perform: \
                   iam:GetAccountAuthorizationDetails on resource: *";
    Mock::given(method("POST"))
        .and(action("GetAccountAuthorizationDetails"))
        .respond_with(error(403, "Sender", "AccessDenied", message))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_account(&server, BASE_KEY, "111111111111").await;
    mount_assume_of(&server, "222222222222", error(403, "Sender", "AccessDenied", "not authorized: sts:AssumeRole"))
        .await;
    let mut with_roles = settings(&server);
    with_roles.assume_roles = vec!["arn:aws:iam::222222222222:role/accessgraph-audit".into()];
    let err = connector(&server, with_roles).sync().await.expect_err("nothing read: no fragment");
    assert!(matches!(err, SyncError::Http(HttpError::Permission { .. })), "{err}");
}

#[tokio::test]
async fn offline_mode_reads_the_file_pair_without_any_call() {
    let server = MockServer::start().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/aws");
    let mut offline = settings(&server);
    offline.authorization_details = Some(root.join("authorization-details.json"));
    offline.credential_report = Some(root.join("credential-report.csv"));
    let fragment = connector(&server, offline).sync().await.expect("offline");
    assert_eq!(fragment, offline_fragment());
    assert!(server.received_requests().await.unwrap_or_default().is_empty());
}
