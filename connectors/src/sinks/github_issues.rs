//! `github-issues`: one issue per finding in a repository.
//!
//! Talks to the REST API through the shared [`HttpClient`] rather than
//! octocrab: octocrab's errors do not expose response headers, so a
//! secondary rate limit's `Retry-After` (GitHub's content-creation limits)
//! could not be honoured, and its models require complete objects. The
//! shared layer already classifies GitHub's ambiguous 403s, retries with
//! jitter and keeps the token out of every message.

use super::context::SinkContext;
use super::lifecycle::{self, NewTicket, RemoteTicket, Tracker};
use super::ticket::{self, Doc};
use super::{Sink, SinkError, TicketEvent};
use crate::http::{ClientOptions, HttpClient, HttpError, Method, SensitiveHeaders};
use accessgraph_config::GithubIssuesSettings;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// Files findings as GitHub issues.
#[derive(Debug)]
pub struct GithubIssuesSink {
    name: String,
    client: HttpClient,
    /// `OWNER/NAME`.
    repo: String,
    /// Labels put on every issue besides the fingerprint label.
    labels: Vec<String>,
    report_url: Option<String>,
    context: SinkContext,
}

/// Client options for GitHub: content creation is limited to about 80
/// requests a minute, so requests are spaced (one a second after a burst).
pub fn github_client_options(base_url: &str, token: &str) -> Result<ClientOptions, HttpError> {
    let headers = SensitiveHeaders::bearer(token)?
        .with("accept", "application/vnd.github+json")?
        .with("x-github-api-version", "2022-11-28")?;
    Ok(ClientOptions {
        base_url: Some(base_url.to_string()),
        requests_per_second: 1,
        burst: 20,
        max_retries: 3,
        base_backoff: Duration::from_millis(250),
        max_backoff: Duration::from_secs(4),
        max_rate_limit_wait: Duration::from_secs(90),
        headers,
        ..ClientOptions::default()
    })
}

impl GithubIssuesSink {
    /// Builds the sink from its settings (reads the token).
    pub fn new(
        name: &str,
        settings: &GithubIssuesSettings,
        report_url: Option<String>,
        context: SinkContext,
    ) -> Result<GithubIssuesSink, SinkError> {
        let token = settings.token.resolve().map_err(|e| SinkError::Config(format!("sink `{name}`: token: {e}")))?;
        let options = github_client_options(&settings.base_url, token.expose())?;
        let client = HttpClient::new(options)?;
        Ok(GithubIssuesSink::with_client(name, client, &settings.repo, settings.labels.clone(), report_url, context))
    }

    /// A sink using a prepared client (tests tune its backoff).
    pub fn with_client(
        name: &str,
        client: HttpClient,
        repo: &str,
        labels: Vec<String>,
        report_url: Option<String>,
        context: SinkContext,
    ) -> GithubIssuesSink {
        GithubIssuesSink { name: name.to_string(), client, repo: repo.to_string(), labels, report_url, context }
    }

    fn issues_path(&self) -> String {
        format!("repos/{}/issues", self.repo)
    }

    fn issue_path(&self, key: &str) -> Result<String, SinkError> {
        // The key comes from our mapping or GitHub; keep it a number so it
        // cannot steer the request elsewhere.
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SinkError::Remote(format!("`{}` is not an issue number", key.escape_debug())));
        }
        Ok(format!("repos/{}/issues/{key}", self.repo))
    }
}

/// The fields of an issue we read; everything else is ignored.
#[derive(Debug, Deserialize)]
struct Issue {
    number: u64,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    state: Option<String>,
    /// Label objects (or bare names, which the schema also allows).
    #[serde(default)]
    labels: Vec<Value>,
    #[serde(default)]
    pull_request: Option<Value>,
}

impl Issue {
    fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l.as_str().or_else(|| l.get("name").and_then(Value::as_str)) == Some(label))
    }

    fn remote(&self) -> RemoteTicket {
        RemoteTicket {
            key: self.number.to_string(),
            url: self.html_url.clone(),
            open: self.state.as_deref().map(|s| s == "open"),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Comment {
    #[serde(default)]
    body: Option<String>,
}

#[async_trait]
impl Tracker for GithubIssuesSink {
    async fn find(&self, label: &str) -> Result<Option<RemoteTicket>, SinkError> {
        let query = [("labels", label), ("state", "all"), ("per_page", "100")];
        let issues: Vec<Issue> = self.client.paginate_link(&self.issues_path(), &query).await?;
        // Pull requests share the issue list; a server that ignores the
        // label filter must not make us adopt an unrelated issue.
        let mut matching: Vec<&Issue> =
            issues.iter().filter(|i| i.pull_request.is_none() && i.has_label(label)).collect();
        matching.sort_by_key(|i| (i.state.as_deref() != Some("open"), i.number));
        Ok(matching.first().map(|i| i.remote()))
    }

    async fn create(&self, new: &NewTicket<'_>) -> Result<RemoteTicket, SinkError> {
        let mut labels = self.labels.clone();
        labels.push(new.label.clone());
        let assignees = ticket::github_logins(new.facts);
        let mut body = json!({
            "title": new.title,
            "body": new.body.to_markdown(),
            "labels": labels,
        });
        if !assignees.is_empty() {
            body["assignees"] = json!(assignees);
        }
        let path = self.issues_path();
        let created = match self.client.send_json::<_, Issue>(Method::POST, &path, &body).await {
            // An owner who cannot be assigned in this repository must not
            // keep the ticket from being filed.
            Err(HttpError::Other { status: 422, message, .. }) if !assignees.is_empty() => {
                tracing::warn!(sink = %self.name, message = %message, "assignee rejected; filing without one");
                if let Some(map) = body.as_object_mut() {
                    map.remove("assignees");
                }
                self.client.send_json::<_, Issue>(Method::POST, &path, &body).await?
            }
            other => other?,
        };
        Ok(created.body.remote())
    }

    async fn refresh(&self, key: &str, title: &str, body: &Doc) -> Result<(), SinkError> {
        let payload = json!({"title": title, "body": body.to_markdown()});
        self.client.send_json_raw(Method::PATCH, &self.issue_path(key)?, &payload).await?;
        Ok(())
    }

    async fn comment(&self, key: &str, body: &Doc) -> Result<(), SinkError> {
        let payload = json!({"body": body.to_markdown()});
        let path = format!("{}/comments", self.issue_path(key)?);
        self.client.send_json_raw(Method::POST, &path, &payload).await?;
        Ok(())
    }

    async fn has_comment(&self, key: &str, marker: &str) -> Result<bool, SinkError> {
        let path = format!("{}/comments", self.issue_path(key)?);
        let comments: Vec<Comment> = self.client.paginate_link(&path, &[("per_page", "100")]).await?;
        Ok(comments.iter().any(|c| c.body.as_deref().is_some_and(|b| b.contains(marker))))
    }

    async fn set_open(&self, key: &str, open: bool) -> Result<(), SinkError> {
        let payload = if open {
            json!({"state": "open", "state_reason": "reopened"})
        } else {
            json!({"state": "closed", "state_reason": "completed"})
        };
        self.client.send_json_raw(Method::PATCH, &self.issue_path(key)?, &payload).await?;
        Ok(())
    }
}

#[async_trait]
impl Sink for GithubIssuesSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, event: &TicketEvent) -> Result<(), SinkError> {
        lifecycle::deliver(self, &self.name, &self.context, self.report_url.as_deref(), event).await
    }
}
