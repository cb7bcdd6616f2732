//! The real client against an in-process mock server (loopback only).
//!
//! Backoff is configured in milliseconds and assertions are on counts and
//! error kinds, never on tight durations.

use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use serde_json::json;
use wiremock::matchers::{bearer_token, body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

#[derive(Debug, Deserialize, PartialEq)]
struct Member {
    login: String,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Obj {
    id: String,
}

fn options(server: &MockServer) -> ClientOptions {
    ClientOptions {
        base_url: Some(server.uri()),
        requests_per_second: 1000,
        burst: 1000,
        timeout: Duration::from_secs(5),
        max_retries: 3,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_rate_limit_wait: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

fn client(server: &MockServer) -> HttpClient {
    HttpClient::new(options(server)).unwrap()
}

fn members(logins: &[&str]) -> serde_json::Value {
    json!(logins.iter().map(|l| json!({ "login": l, "id": 1 })).collect::<Vec<_>>())
}

fn epoch_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// Page 1 at `/orgs/acme/members`, then pages 2 and 3 at the numeric-id URL
/// GitHub hands out in `link` (followed verbatim).
async fn mount_three_link_pages(server: &MockServer) {
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/orgs/acme/members"))
        .and(query_param("per_page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(members(&["alice", "bob"])).insert_header(
            "link",
            format!(
                "<{uri}/organizations/9001/members?per_page=2&page=2>; rel=\"next\", \
                 <{uri}/organizations/9001/members?per_page=2&page=3>; rel=\"last\""
            ),
        ))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/organizations/9001/members"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(members(&["carol", "dave"])).insert_header(
            "link",
            format!(
                "<{uri}/organizations/9001/members?per_page=2&page=1>; rel=\"prev\", \
                 <{uri}/organizations/9001/members?per_page=2&page=3>; rel=\"next\""
            ),
        ))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/organizations/9001/members"))
        .and(query_param("page", "3"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(members(&["erin"]))
                .insert_header("link", format!("<{uri}/organizations/9001/members?per_page=2&page=2>; rel=\"prev\"")),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn link_pagination_follows_next_over_three_pages() {
    let server = MockServer::start().await;
    mount_three_link_pages(&server).await;
    let http = client(&server);
    let all: Vec<Member> = http.paginate_link("/orgs/acme/members", &[("per_page", "2")]).await.unwrap();
    let logins: Vec<_> = all.iter().map(|m| m.login.as_str()).collect();
    assert_eq!(logins, ["alice", "bob", "carol", "dave", "erin"]);
    assert_eq!(http.stats().snapshot().requests, 3);
}

#[tokio::test]
async fn link_pagination_stops_at_max_pages() {
    let server = MockServer::start().await;
    mount_three_link_pages(&server).await;
    let http = HttpClient::new(ClientOptions { max_pages: 2, ..options(&server) }).unwrap();
    let err = http.paginate_link::<Member>("/orgs/acme/members", &[("per_page", "2")]).await.unwrap_err();
    assert!(matches!(err, HttpError::Pagination { .. }), "{err}");
    assert_eq!(http.stats().snapshot().requests, 2);
}

#[tokio::test]
async fn link_pagination_rejects_a_repeated_next_link() {
    let server = MockServer::start().await;
    let next = format!("<{}/members?page=2>; rel=\"next\"", server.uri());
    Mock::given(method("GET"))
        .and(path("/members"))
        .and(query_param_is_missing("page"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(members(&["alice"])).insert_header("link", next.as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    // Page 2 points at itself.
    Mock::given(method("GET"))
        .and(path("/members"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(members(&["bob"])).insert_header("link", next.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).paginate_link::<Member>("/members", &[]).await.unwrap_err();
    assert!(matches!(err, HttpError::Pagination { .. }), "{err}");
    assert!(err.to_string().contains("again"), "{err}");
}

#[tokio::test]
async fn link_pagination_refuses_a_next_link_to_another_origin() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/members"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(members(&["alice"]))
                .insert_header("link", "<https://collector.example/steal?page=2>; rel=\"next\""),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).paginate_link::<Member>("/members", &[]).await.unwrap_err();
    assert!(matches!(err, HttpError::Pagination { .. }), "{err}");
}

#[tokio::test]
async fn link_pagination_unwraps_wrapped_bodies_and_stops_on_empty_page() {
    #[derive(Deserialize)]
    struct Secrets {
        secrets: Vec<serde_json::Value>,
    }
    let server = MockServer::start().await;
    // An empty page ends the listing even if it (wrongly) links onwards.
    Mock::given(method("GET"))
        .and(path("/orgs/acme/actions/secrets"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "total_count": 0, "secrets": [] }))
                .insert_header("link", "</orgs/acme/actions/secrets?page=2>; rel=\"next\""),
        )
        .expect(1)
        .mount(&server)
        .await;
    let all = client(&server)
        .paginate_link_map("/orgs/acme/actions/secrets", &[], |page: Secrets| page.secrets)
        .await
        .unwrap();
    assert!(all.is_empty());
}

#[tokio::test]
async fn cursor_pagination_follows_last_id_with_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organization/users"))
        .and(query_param("limit", "2"))
        .and(query_param_is_missing("after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": [{ "id": "user_alice01" }, { "id": "user_bob02" }],
            "first_id": "user_alice01", "last_id": "user_bob02", "has_more": true
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/organization/users"))
        .and(query_param("limit", "2"))
        .and(query_param("after", "user_bob02"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": [{ "id": "user_carol03" }],
            "first_id": "user_carol03", "last_id": "user_carol03", "has_more": false
        })))
        .expect(1)
        .mount(&server)
        .await;
    let http =
        HttpClient::new(ClientOptions { base_url: Some(format!("{}/v1", server.uri())), ..options(&server) }).unwrap();
    let all: Vec<Obj> = http.paginate_cursor("/organization/users", &[("limit", "2")], "after").await.unwrap();
    let ids: Vec<_> = all.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["user_alice01", "user_bob02", "user_carol03"]);
}

#[tokio::test]
async fn cursor_pagination_rejects_a_repeated_cursor() {
    let server = MockServer::start().await;
    // Anthropic style (`after_id`); the server keeps answering the same page.
    Mock::given(method("GET"))
        .and(path("/v1/organizations/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{ "id": "user_01Alice" }],
            "has_more": true, "first_id": "user_01Alice", "last_id": "user_01Alice"
        })))
        .expect(2)
        .mount(&server)
        .await;
    let err = client(&server).paginate_cursor::<Obj>("/v1/organizations/users", &[], "after_id").await.unwrap_err();
    assert!(matches!(err, HttpError::Pagination { .. }), "{err}");
    assert!(err.to_string().contains("same cursor"), "{err}");
}

fn scim_page(total: u64, start: u64, ids: &[&str]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": ids.len(),
        "Resources": ids.iter().map(|id| json!({ "id": id, "userName": id })).collect::<Vec<_>>(),
    }))
}

#[tokio::test]
async fn scim_pagination_advances_by_resources_received() {
    let server = MockServer::start().await;
    for (start, ids) in [("1", &["u1", "u2"][..]), ("3", &["u3"][..]), ("4", &["u4", "u5"][..])] {
        Mock::given(method("GET"))
            .and(path("/scim/v2/Users"))
            .and(query_param("startIndex", start))
            .and(query_param("count", "2"))
            .and(query_param("filter", "active eq true"))
            .respond_with(scim_page(5, start.parse().unwrap(), ids))
            .expect(1)
            .mount(&server)
            .await;
    }
    let all: Vec<Obj> =
        client(&server).paginate_scim("/scim/v2/Users", &[("filter", "active eq true")], 2).await.unwrap();
    let ids: Vec<_> = all.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["u1", "u2", "u3", "u4", "u5"]);
}

#[tokio::test]
async fn scim_pagination_rejects_a_server_that_ignores_start_index() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups"))
        .respond_with(scim_page(10, 1, &["g1", "g2"]))
        .expect(2)
        .mount(&server)
        .await;
    let err = client(&server).paginate_scim::<Obj>("/scim/v2/Groups", &[], 2).await.unwrap_err();
    assert!(matches!(err, HttpError::Pagination { .. }), "{err}");
}

#[tokio::test]
async fn scim_pagination_stops_on_an_empty_page() {
    let server = MockServer::start().await;
    // totalResults claims more, but the page is empty (and omits Resources).
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "totalResults": 3 })))
        .expect(1)
        .mount(&server)
        .await;
    let all: Vec<Obj> = client(&server).paginate_scim("/scim/v2/Users", &[], 100).await.unwrap();
    assert!(all.is_empty());
}

#[tokio::test]
async fn rate_limited_429_honours_retry_after_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    let http = client(&server);
    let started = Instant::now();
    let response: Response<Vec<Obj>> = http.get_json("/users", &[]).await.unwrap();
    assert_eq!(response.status, 200);
    // A lower bound only: sleeping never ends early.
    assert!(started.elapsed() >= Duration::from_millis(900));
    let stats = http.stats().snapshot();
    assert_eq!((stats.requests, stats.retries, stats.rate_limit_waits), (2, 1, 1));
}

#[tokio::test]
async fn transient_503_twice_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/flaky"))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>upstream busy</html>"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/flaky"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "ok" })))
        .expect(1)
        .mount(&server)
        .await;
    let http = client(&server);
    let response: Response<Obj> = http.get_json("/flaky", &[]).await.unwrap();
    assert_eq!(response.body.id, "ok");
    let stats = http.stats().snapshot();
    assert_eq!((stats.requests, stats.retries, stats.rate_limit_waits), (3, 2, 0));
}

#[tokio::test]
async fn server_error_forever_gives_up_after_max_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/broken"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({ "message": "internal_error" })))
        .expect(3)
        .mount(&server)
        .await;
    let http = HttpClient::new(ClientOptions { max_retries: 2, ..options(&server) }).unwrap();
    let err = http.get_json::<Obj>("/broken", &[]).await.unwrap_err();
    assert!(matches!(err, HttpError::Transient { status: Some(500), .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(http.stats().snapshot().retries, 2);
}

#[tokio::test]
async fn unauthorized_is_auth_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orgs/acme"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let http = client(&server);
    let err = http.get_json::<Obj>("/orgs/acme", &[]).await.unwrap_err();
    assert!(matches!(err, HttpError::Auth { .. }), "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("Bad credentials"), "{err}");
    assert_eq!(http.stats().snapshot().retries, 0);
}

#[tokio::test]
async fn forbidden_is_permission_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/payments/branches/main/protection"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "message": "Must have admin rights to Repository.", "documentation_url": "https://docs.github.com/rest"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).get_json::<Obj>("/repos/acme/payments/branches/main/protection", &[]).await.unwrap_err();
    assert!(matches!(err, HttpError::Permission { .. }), "{err}");
    assert!(err.to_string().contains("admin rights"), "{err}");
}

#[tokio::test]
async fn not_found_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orgs/ghost"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" })))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).get_json::<Obj>("/orgs/ghost", &[]).await.unwrap_err();
    assert!(matches!(err, HttpError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn github_403_with_exhausted_budget_is_rate_limited_and_waits_for_reset() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orgs/acme/members"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", (epoch_now() + 1).to_string().as_str())
                .set_body_json(json!({ "message": "API rate limit exceeded for user ID 1001." })),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/orgs/acme/members"))
        .respond_with(ResponseTemplate::new(200).set_body_json(members(&["alice"])))
        .expect(1)
        .mount(&server)
        .await;
    let http = client(&server);
    let response: Response<Vec<Member>> = http.get_json("/orgs/acme/members", &[]).await.unwrap();
    assert_eq!(response.body.len(), 1);
    let stats = http.stats().snapshot();
    assert_eq!((stats.requests, stats.retries), (2, 1));
    assert!(stats.rate_limit_waits >= 1);
}

#[tokio::test]
async fn rate_limit_reset_beyond_max_wait_fails_fast() {
    let server = MockServer::start().await;
    let far = (epoch_now() + 3600).to_string();
    Mock::given(method("GET"))
        .and(path("/limited"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", far.as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let http = client(&server);
    let err = http.get_json::<Obj>("/limited", &[]).await.unwrap_err();
    assert!(matches!(err, HttpError::RateLimited { status: Some(403), .. }), "{err}");
    assert!(err.retry_after().unwrap() > Duration::from_secs(60));
    assert_eq!(http.stats().snapshot().retries, 0);
}

#[tokio::test]
async fn exhausted_budget_on_success_gates_the_next_request() {
    let server = MockServer::start().await;
    // OpenAI dialect: the budget is gone for an hour.
    Mock::given(method("GET"))
        .and(path("/v1/organization/projects"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-ratelimit-remaining-requests", "0")
                .insert_header("x-ratelimit-reset-requests", "1h0m0s")
                .set_body_json(json!({ "data": [], "has_more": false })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let http = client(&server);
    let first: Response<CursorPage<Obj>> = http.get_json("/v1/organization/projects", &[]).await.unwrap();
    assert!(first.body.data.is_empty());
    // The second request is refused locally instead of being sent.
    let err = http.get_json::<CursorPage<Obj>>("/v1/organization/projects", &[]).await.unwrap_err();
    assert!(matches!(err, HttpError::RateLimited { status: None, .. }), "{err}");
    assert_eq!(http.stats().snapshot().requests, 1);
}

#[tokio::test]
async fn malformed_json_names_the_json_path() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        id: u64,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct List {
        data: Vec<Item>,
    }
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"data":[{"id":1},{"id":"x"}]}"#))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/html"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>login</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let http = client(&server);
    let err = http.get_json::<List>("/items", &[]).await.unwrap_err();
    match &err {
        HttpError::Decode { path, .. } => assert_eq!(path, "data[1].id"),
        other => panic!("expected Decode, got {other}"),
    }
    assert!(err.to_string().contains("data[1].id"), "{err}");
    assert!(!err.is_retryable());
    let err = http.get_json::<List>("/html", &[]).await.unwrap_err();
    assert!(matches!(err, HttpError::Decode { .. }), "{err}");
}

#[tokio::test]
async fn slow_response_times_out_as_transient_and_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/slow"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "id": "late" })).set_delay(Duration::from_secs(3)),
        )
        .expect(2)
        .mount(&server)
        .await;
    let http =
        HttpClient::new(ClientOptions { timeout: Duration::from_millis(150), max_retries: 1, ..options(&server) })
            .unwrap();
    let err = http.get_json::<Obj>("/slow", &[]).await.unwrap_err();
    assert!(matches!(err, HttpError::Transient { status: None, .. }), "{err}");
    assert_eq!(http.stats().snapshot().retries, 1);
}

#[tokio::test]
async fn conditional_get_uses_etag_and_counts_not_modified() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orgs/acme"))
        .and(header("if-none-match", "\"v1\""))
        .respond_with(ResponseTemplate::new(304).insert_header("etag", "\"v1\""))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/orgs/acme"))
        .respond_with(ResponseTemplate::new(200).insert_header("etag", "\"v1\"").set_body_json(json!({ "id": "acme" })))
        .expect(1)
        .mount(&server)
        .await;
    let http = client(&server);
    let first: Conditional<Obj> = http.get_json_conditional("/orgs/acme", None).await.unwrap();
    let Conditional::Modified { etag, body } = first else {
        panic!("first fetch must be Modified");
    };
    assert_eq!(body.id, "acme");
    assert_eq!(etag.as_deref(), Some("\"v1\""));
    let second: Conditional<Obj> = http.get_json_conditional("/orgs/acme", etag.as_deref()).await.unwrap();
    assert_eq!(second, Conditional::NotModified);
    assert_eq!(http.stats().snapshot().not_modified, 1);
}

#[tokio::test]
async fn send_json_posts_and_decodes_created_and_empty_answers() {
    #[derive(Debug, Deserialize)]
    struct Issue {
        number: u64,
    }
    let server = MockServer::start().await;
    let ticket = json!({ "title": "IAM finding", "labels": ["iam-finding"] });
    Mock::given(method("POST"))
        .and(path("/repos/acme/secops/issues"))
        .and(header("content-type", "application/json"))
        .and(body_json(&ticket))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("location", "https://api.github.com/repos/acme/secops/issues/17")
                .set_body_json(json!({ "number": 17 })),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue/SEC-42/transitions"))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&server)
        .await;
    let http = client(&server);
    let created: Response<Issue> = http.send_json(Method::POST, "/repos/acme/secops/issues", &ticket).await.unwrap();
    assert_eq!((created.status, created.body.number), (201, 17));
    assert_eq!(created.location.as_deref(), Some("https://api.github.com/repos/acme/secops/issues/17"));
    let transition = json!({ "transition": { "id": "31" } });
    let done: Response<()> =
        http.send_json(Method::POST, "/rest/api/3/issue/SEC-42/transitions", &transition).await.unwrap();
    assert_eq!(done.status, 204);
    let raw = http.send_json_raw(Method::POST, "/rest/api/3/issue/SEC-42/transitions", &transition).await.unwrap();
    assert!(raw.body.is_empty());
}

#[tokio::test]
async fn credentials_are_sent_but_never_shown() {
    let token = "ghp_exampleSecretToken1234";
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .and(bearer_token(token))
        .and(query_param("email", "alice@acme.example"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "message": format!("Bad credentials: Bearer {token}")
        })))
        .expect(1)
        .mount(&server)
        .await;
    let http = HttpClient::new(ClientOptions { headers: SensitiveHeaders::bearer(token).unwrap(), ..options(&server) })
        .unwrap();
    let shown = format!("{http:?} {:?}", http.options());
    assert!(!shown.contains(token), "{shown}");
    assert!(shown.contains("authorization"), "{shown}");
    let err = http.get_json::<Obj>("/user", &[("email", "alice@acme.example")]).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains(token), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
    // The URL is shown without its query string.
    assert_eq!(err.url(), Some(format!("{}/user", server.uri()).as_str()));
    assert!(!text.contains("alice@acme.example"), "{text}");
}

#[test]
fn redact_url_drops_query_and_user_info() {
    assert_eq!(
        redact_url("https://bob:hunter2@api.example.com:8443/v1/users?api_key=s3cret#frag"),
        "https://api.example.com:8443/v1/users"
    );
    assert_eq!(redact_url("/users?token=abc"), "/users");
    assert_eq!(redact_url("bob:pw@host/x?y"), "…host/x");
}

#[test]
fn options_are_validated() {
    let zero = HttpClient::new(ClientOptions { requests_per_second: 0, ..ClientOptions::default() });
    assert!(matches!(zero, Err(HttpError::Config { .. })));
    let bad_base = HttpClient::new(ClientOptions {
        base_url: Some("ftp://files.example".to_string()),
        ..ClientOptions::default()
    });
    assert!(matches!(bad_base, Err(HttpError::Config { .. })));
    let err = SensitiveHeaders::new().with("x-api-key", "line\nbreak-secret").unwrap_err();
    assert!(!err.to_string().contains("break-secret"));
}

#[test]
fn http_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let http = HttpClient::new(ClientOptions::default()).unwrap();
    assert_send(&http.get_json::<Obj>("https://api.example.com/x", &[]));
    assert_send(&http.get_json_conditional::<Obj>("https://api.example.com/x", None));
    assert_send(&http.send_json::<_, ()>(Method::PATCH, "https://api.example.com/x", &json!({})));
    assert_send(&http.paginate_link::<Obj>("https://api.example.com/x", &[]));
    assert_send(&http.paginate_cursor::<Obj>("https://api.example.com/x", &[], "after"));
    assert_send(&http.paginate_scim::<Obj>("https://api.example.com/x", &[], 100));
}

#[tokio::test]
async fn webhook_paths_can_be_hidden_from_errors_and_debug() {
    let secret_path = "/services/T0001/B0002/webhookSecretPart";
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(secret_path))
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid_payload"))
        .expect(1)
        .mount(&server)
        .await;
    let http = HttpClient::new(ClientOptions {
        base_url: Some(format!("{}{secret_path}", server.uri())),
        hide_url_path: true,
        ..options(&server)
    })
    .unwrap();
    let err = http.send_json_raw(Method::POST, "", &json!({ "text": "finding opened" })).await.unwrap_err();
    assert!(matches!(err, HttpError::Other { status: 400, .. }), "{err}");
    let text = format!("{err} {err:?} {http:?}");
    assert!(!text.contains("webhookSecretPart"), "{text}");
}

#[test]
fn path_segment_keeps_ids_inside_their_segment() {
    assert_eq!(path_segment("proj_abc-1.2~x"), "proj_abc-1.2~x");
    assert_eq!(path_segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
    assert_eq!(path_segment("é"), "%C3%A9");
}
