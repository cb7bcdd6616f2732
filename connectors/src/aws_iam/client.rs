//! AWS API calls only (aws-sdk-iam, aws-sdk-sts): no mapping, no retries of
//! our own. The SDK's standard retry strategy is the one retry layer for
//! `Throttling` and 5xx (exponential backoff with jitter, a bounded number of
//! attempts, configured explicitly here), so retries never stack.
//! `ReportInProgress` is not an error but a state, so the credential report
//! is polled here with its own bounded loop.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_iam::primitives::DateTime as AwsDateTime;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::raw::{
    AccessKeyMeta, AttachedPolicy, AuthorizationDetails, Boundary, GroupDetail, InlinePolicy, ManagedPolicy,
    PolicyVersion, RoleDetail, RoleLastUsed, Tag, UserDetail,
};
use crate::http::HttpError;

/// How the clients behave: retries, timeouts and report polling.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// AWS region for signing and STS (IAM is global).
    pub region: String,
    /// Another IAM/STS endpoint (LocalStack, a proxy, a test server).
    pub endpoint_url: Option<String>,
    /// Attempts per call, first included (the SDK's standard retry).
    pub max_attempts: u32,
    /// First backoff of the SDK's retries (then exponential, with jitter).
    pub initial_backoff: Duration,
    /// Longest backoff between two attempts.
    pub max_backoff: Duration,
    /// Timeout of one attempt.
    pub attempt_timeout: Duration,
    /// Wait between two polls of an unfinished credential report.
    pub report_poll_interval: Duration,
    /// Polls before giving up on the credential report.
    pub report_poll_attempts: u32,
    /// Fixed credentials instead of the standard chain (tests).
    pub(crate) static_credentials: Option<aws_sdk_iam::config::Credentials>,
}

impl ClientOptions {
    /// Production defaults for a region and optional endpoint.
    pub fn new(region: impl Into<String>, endpoint_url: Option<String>) -> ClientOptions {
        ClientOptions {
            region: region.into(),
            endpoint_url,
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            attempt_timeout: Duration::from_secs(60),
            report_poll_interval: Duration::from_secs(2),
            report_poll_attempts: 60,
            static_credentials: None,
        }
    }
}

/// The shared SDK configuration (credentials chain, region, retries).
pub async fn sdk_config(options: &ClientOptions) -> aws_config::SdkConfig {
    let retry = RetryConfig::standard()
        .with_max_attempts(options.max_attempts.max(1))
        .with_initial_backoff(options.initial_backoff)
        .with_max_backoff(options.max_backoff);
    let timeouts = TimeoutConfig::builder().operation_attempt_timeout(options.attempt_timeout).build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(options.region.clone()))
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    if let Some(credentials) = &options.static_credentials {
        loader = loader.credentials_provider(credentials.clone());
    }
    loader.load().await
}

/// The IAM API of one account.
#[derive(Clone, Debug)]
pub struct IamClient {
    iam: aws_sdk_iam::Client,
    /// The account id, for messages.
    pub account: String,
    options: ClientOptions,
}

/// Names an API call in errors, e.g. `iam:GetCredentialReport (account 1234…)`.
fn label(op: &str, account: &str) -> String {
    if account.is_empty() { op.to_string() } else { format!("{op} (account {account})") }
}

/// Maps an SDK error to the shared taxonomy. Messages are AWS's own (they
/// name the caller's ARN and the missing permission, never a secret).
pub fn map_sdk_error<E>(op: &str, account: &str, err: SdkError<E>) -> HttpError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let url = label(op, account);
    match &err {
        SdkError::ServiceError(context) => {
            let http_status = context.raw().status().as_u16();
            let status = Some(http_status);
            let Some(code) = context.err().code().map(str::to_string) else {
                // No error code: the body was not an AWS error document (a
                // truncated or foreign body, whatever its status).
                return HttpError::Decode {
                    url,
                    path: ".".into(),
                    message: format!("unreadable response (HTTP {}): {}", http_status, DisplayErrorContext(&err)),
                };
            };
            let message = format!("{code}: {}", context.err().message().unwrap_or_default());
            classify(url, &code, status, message)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => HttpError::Transient {
            url,
            status: None,
            retry_after: None,
            message: DisplayErrorContext(&err).to_string(),
        },
        SdkError::ResponseError(_) => {
            HttpError::Decode { url, path: ".".into(), message: DisplayErrorContext(&err).to_string() }
        }
        _ => HttpError::Invalid { url, message: DisplayErrorContext(&err).to_string() },
    }
}

fn classify(url: String, code: &str, status: Option<u16>, message: String) -> HttpError {
    match code {
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException" => {
            HttpError::RateLimited { url, status, retry_after: None }
        }
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => HttpError::Permission { url, message },
        "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidAccessKeyId"
        | "UnrecognizedClientException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => HttpError::Auth { url, message },
        "NoSuchEntity" => HttpError::NotFound { url },
        "ServiceFailure" | "ServiceUnavailable" | "InternalFailure" => {
            HttpError::Transient { url, status, retry_after: None, message }
        }
        _ if status.is_some_and(|s| s >= 500) => HttpError::Transient { url, status, retry_after: None, message },
        _ => HttpError::Other { url, status: status.unwrap_or(400), message },
    }
}

/// The caller's account id (`sts:GetCallerIdentity`, which needs no permission).
pub async fn caller_account(config: &aws_config::SdkConfig) -> Result<String, HttpError> {
    let sts = aws_sdk_sts::Client::new(config);
    let out = sts.get_caller_identity().send().await.map_err(|e| map_sdk_error("sts:GetCallerIdentity", "", e))?;
    Ok(out.account().unwrap_or_default().to_string())
}

/// Assumes `role_arn` and returns an IAM client acting in its account.
pub async fn assume(
    config: &aws_config::SdkConfig,
    options: &ClientOptions,
    role_arn: &str,
) -> Result<IamClient, HttpError> {
    let sts = aws_sdk_sts::Client::new(config);
    let account = super::offline::arn_account(role_arn).unwrap_or_default().to_string();
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("accessgraph")
        .duration_seconds(3600)
        .send()
        .await
        .map_err(|e| map_sdk_error(&format!("sts:AssumeRole {role_arn}"), "", e))?;
    let Some(credentials) = out.credentials() else {
        return Err(HttpError::Decode {
            url: format!("sts:AssumeRole {role_arn}"),
            path: "Credentials".into(),
            message: "no credentials in the response".into(),
        });
    };
    let expiry = SystemTime::UNIX_EPOCH + Duration::from_secs(credentials.expiration().secs().max(0) as u64);
    let provider = aws_sdk_iam::config::Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_string()),
        Some(expiry),
        "accessgraph-assume-role",
    );
    let iam_config = aws_sdk_iam::config::Builder::from(config).credentials_provider(provider).build();
    Ok(IamClient { iam: aws_sdk_iam::Client::from_conf(iam_config), account, options: options.clone() })
}

impl IamClient {
    /// A client with the configuration's own credentials.
    pub fn new(config: &aws_config::SdkConfig, options: &ClientOptions, account: String) -> IamClient {
        IamClient { iam: aws_sdk_iam::Client::new(config), account, options: options.clone() }
    }

    /// Every page of `GetAccountAuthorizationDetails`, merged.
    pub async fn authorization_details(&self) -> Result<AuthorizationDetails, HttpError> {
        const OP: &str = "iam:GetAccountAuthorizationDetails";
        let mut details = AuthorizationDetails::default();
        let mut marker: Option<String> = None;
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            let out = self
                .iam
                .get_account_authorization_details()
                .max_items(1000)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| map_sdk_error(OP, &self.account, e))?;
            details.user_detail_list.extend(out.user_detail_list().iter().map(user));
            details.group_detail_list.extend(out.group_detail_list().iter().map(group));
            details.role_detail_list.extend(out.role_detail_list().iter().map(role));
            details.policies.extend(out.policies().iter().map(managed_policy));
            if !out.is_truncated() {
                return Ok(details);
            }
            let Some(next) = out.marker().map(str::to_string) else {
                return Err(HttpError::Pagination {
                    url: label(OP, &self.account),
                    message: "IsTruncated without a Marker".into(),
                });
            };
            if !seen.insert(next.clone()) {
                return Err(HttpError::Pagination {
                    url: label(OP, &self.account),
                    message: "the same Marker came back twice".into(),
                });
            }
            marker = Some(next);
        }
    }

    /// The credential report CSV: generated when missing or expired, polled
    /// while in progress.
    pub async fn credential_report(&self) -> Result<Vec<u8>, HttpError> {
        const GENERATE: &str = "iam:GenerateCredentialReport";
        const GET: &str = "iam:GetCredentialReport";
        self.iam.generate_credential_report().send().await.map_err(|e| map_sdk_error(GENERATE, &self.account, e))?;
        for _ in 0..self.options.report_poll_attempts.max(1) {
            match self.iam.get_credential_report().send().await {
                Ok(out) => {
                    let content = out.content().map(|blob| blob.as_ref().to_vec()).unwrap_or_default();
                    return Ok(content);
                }
                Err(err) => {
                    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or_default().to_string();
                    match code.as_str() {
                        "ReportInProgress" => {}
                        "ReportNotPresent" | "ReportExpired" => {
                            self.iam
                                .generate_credential_report()
                                .send()
                                .await
                                .map_err(|e| map_sdk_error(GENERATE, &self.account, e))?;
                        }
                        _ => return Err(map_sdk_error(GET, &self.account, err)),
                    }
                    tracing::debug!(account = %self.account, state = %code, "credential report not ready; polling");
                    tokio::time::sleep(self.options.report_poll_interval).await;
                }
            }
        }
        Err(HttpError::Transient {
            url: label(GET, &self.account),
            status: None,
            retry_after: None,
            message: format!(
                "the credential report was still being generated after {} polls",
                self.options.report_poll_attempts
            ),
        })
    }

    /// The access keys of one user (`ListAccessKeys`, paginated).
    pub async fn access_keys(&self, user_name: &str) -> Result<Vec<AccessKeyMeta>, HttpError> {
        const OP: &str = "iam:ListAccessKeys";
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            let out = self
                .iam
                .list_access_keys()
                .user_name(user_name)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| map_sdk_error(OP, &self.account, e))?;
            for key in out.access_key_metadata() {
                let Some(id) = key.access_key_id() else { continue };
                keys.push(AccessKeyMeta {
                    id: id.to_string(),
                    active: key.status().is_some_and(|s| s.as_str() == "Active"),
                    created_at: key.create_date().and_then(time),
                });
            }
            match out.marker() {
                Some(next) if out.is_truncated() && seen.insert(next.to_string()) => marker = Some(next.to_string()),
                Some(_) if out.is_truncated() => {
                    return Err(HttpError::Pagination {
                        url: label(OP, &self.account),
                        message: "the same Marker came back twice".into(),
                    });
                }
                _ => return Ok(keys),
            }
        }
    }

    /// Access keys of several users.
    pub async fn access_keys_of(&self, users: &[String]) -> Result<HashMap<String, Vec<AccessKeyMeta>>, HttpError> {
        let mut out = HashMap::with_capacity(users.len());
        for user in users {
            out.insert(user.clone(), self.access_keys(user).await?);
        }
        Ok(out)
    }
}

fn time(t: &AwsDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn doc(text: Option<&str>) -> Value {
    Value::String(text.unwrap_or_default().to_string())
}

fn inline(list: &[aws_sdk_iam::types::PolicyDetail]) -> Vec<InlinePolicy> {
    list.iter()
        .map(|p| InlinePolicy {
            policy_name: p.policy_name().unwrap_or_default().to_string(),
            policy_document: doc(p.policy_document()),
        })
        .collect()
}

fn attached(list: &[aws_sdk_iam::types::AttachedPolicy]) -> Vec<AttachedPolicy> {
    list.iter()
        .map(|p| AttachedPolicy {
            policy_name: p.policy_name().map(str::to_string),
            policy_arn: p.policy_arn().unwrap_or_default().to_string(),
        })
        .collect()
}

fn boundary(b: Option<&aws_sdk_iam::types::AttachedPermissionsBoundary>) -> Option<Boundary> {
    b.and_then(|b| b.permissions_boundary_arn()).map(|arn| Boundary { permissions_boundary_arn: arn.to_string() })
}

fn tags(list: &[aws_sdk_iam::types::Tag]) -> Vec<Tag> {
    list.iter().map(|t| Tag { key: t.key().to_string(), value: t.value().to_string() }).collect()
}

fn user(u: &aws_sdk_iam::types::UserDetail) -> UserDetail {
    UserDetail {
        path: u.path().unwrap_or_default().to_string(),
        user_name: u.user_name().unwrap_or_default().to_string(),
        user_id: u.user_id().unwrap_or_default().to_string(),
        arn: u.arn().unwrap_or_default().to_string(),
        create_date: u.create_date().and_then(time),
        user_policy_list: inline(u.user_policy_list()),
        group_list: u.group_list().to_vec(),
        attached_managed_policies: attached(u.attached_managed_policies()),
        permissions_boundary: boundary(u.permissions_boundary()),
        tags: tags(u.tags()),
    }
}

fn group(g: &aws_sdk_iam::types::GroupDetail) -> GroupDetail {
    GroupDetail {
        path: g.path().unwrap_or_default().to_string(),
        group_name: g.group_name().unwrap_or_default().to_string(),
        group_id: g.group_id().unwrap_or_default().to_string(),
        arn: g.arn().unwrap_or_default().to_string(),
        create_date: g.create_date().and_then(time),
        group_policy_list: inline(g.group_policy_list()),
        attached_managed_policies: attached(g.attached_managed_policies()),
    }
}

fn role(r: &aws_sdk_iam::types::RoleDetail) -> RoleDetail {
    RoleDetail {
        path: r.path().unwrap_or_default().to_string(),
        role_name: r.role_name().unwrap_or_default().to_string(),
        role_id: r.role_id().unwrap_or_default().to_string(),
        arn: r.arn().unwrap_or_default().to_string(),
        create_date: r.create_date().and_then(time),
        assume_role_policy_document: r.assume_role_policy_document().map(|d| doc(Some(d))),
        role_policy_list: inline(r.role_policy_list()),
        attached_managed_policies: attached(r.attached_managed_policies()),
        permissions_boundary: boundary(r.permissions_boundary()),
        tags: tags(r.tags()),
        role_last_used: r.role_last_used().map(|l| RoleLastUsed {
            last_used_date: l.last_used_date().and_then(time),
            region: l.region().map(str::to_string),
        }),
    }
}

fn managed_policy(p: &aws_sdk_iam::types::ManagedPolicyDetail) -> ManagedPolicy {
    ManagedPolicy {
        policy_name: p.policy_name().unwrap_or_default().to_string(),
        policy_id: p.policy_id().unwrap_or_default().to_string(),
        arn: p.arn().unwrap_or_default().to_string(),
        path: p.path().unwrap_or_default().to_string(),
        default_version_id: p.default_version_id().map(str::to_string),
        attachment_count: p.attachment_count().and_then(|c| u64::try_from(c).ok()),
        policy_version_list: p
            .policy_version_list()
            .iter()
            .map(|v| PolicyVersion {
                document: v.document().map(|d| doc(Some(d))),
                version_id: v.version_id().map(str::to_string),
                is_default_version: v.is_default_version(),
            })
            .collect(),
    }
}
