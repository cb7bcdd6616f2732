//! IAM Query API responses (XML), decoded by the real aws-sdk-iam client
//! inside our `IamClient` and then mapped: `GetAccountAuthorizationDetails`
//! pages, `GenerateCredentialReport` / `GetCredentialReport` (base64 CSV) and
//! `ListAccessKeys`. The input holds one HTTP response body per request, in
//! request order, separated by NUL bytes; a body holding `<ErrorResponse` is
//! served with status 400 (AWS's error document), others with 200. No
//! network: the SDK's HTTP client is an in-memory connector.
#![no_main]

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use accessgraph_connectors::aws_iam::client::{ClientOptions, IamClient};
use accessgraph_connectors::aws_iam::offline;
use accessgraph_connectors::aws_iam::raw::AccountData;
use accessgraph_connectors::fuzzing;
use aws_sdk_iam::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use libfuzzer_sys::fuzz_target;

/// The responses left for the current input.
static RESPONSES: Mutex<VecDeque<Vec<u8>>> = Mutex::new(VecDeque::new());

#[derive(Debug)]
struct Replay;

impl HttpConnector for Replay {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        let body = RESPONSES.lock().map(|mut queue| queue.pop_front()).unwrap_or_default().unwrap_or_default();
        let status = if body.windows(14).any(|w| w == b"<ErrorResponse") { 400 } else { 200 };
        let status = StatusCode::try_from(status).unwrap_or_else(|_| unreachable!("valid status"));
        HttpConnectorFuture::ready(Ok(HttpResponse::new(status, SdkBody::from(body))))
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    config: aws_config::SdkConfig,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let config = runtime.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                    "AKIDFUZZ",
                    "fuzz-secret",
                    None,
                    None,
                    "fuzz",
                )))
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .endpoint_url("https://iam.amazonaws.com")
                .http_client(http_client_fn(|_, _| SharedHttpConnector::new(Replay)))
                .load(),
        );
        Harness { runtime, config }
    })
}

async fn sync(client: &IamClient) -> Option<()> {
    let details = client.authorization_details().await.ok()?;
    let csv = client.credential_report().await.ok()?;
    let report = offline::parse_report("credential report", &csv).ok()?;
    let users: Vec<String> = details.user_detail_list.iter().take(4).map(|u| u.user_name.clone()).collect();
    let access_keys = client.access_keys_of(&users).await.ok()?;
    let account = AccountData {
        label: "iam account 123456789012".into(),
        account_id: client.account.clone(),
        details,
        report,
        access_keys,
    };
    fuzzing::aws_iam_map(&[account]).ok().map(|_| ())
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    if let Ok(mut queue) = RESPONSES.lock() {
        *queue = data.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
    }
    let mut options = ClientOptions::new("us-east-1", None);
    options.report_poll_interval = Duration::ZERO;
    options.report_poll_attempts = 2;
    let client = IamClient::new(&harness.config, &options, "123456789012".into());
    let _ = harness.runtime.block_on(sync(&client));
});
