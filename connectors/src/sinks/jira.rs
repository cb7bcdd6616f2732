//! `jira`: one issue per finding in a Jira Cloud project (REST API v3).
//!
//! Descriptions and comments are Atlassian Document Format. The fingerprint
//! label is found with `GET /rest/api/3/search/jql`; closing runs the
//! `done_transition` (or, when a workflow names it otherwise, the transition
//! into the `done` status category); reopening runs the first transition
//! out of it. Owners are not assigned: Jira needs an account id, and the
//! access graph knows emails and logins only.

use super::context::SinkContext;
use super::lifecycle::{self, NewTicket, RemoteTicket, Tracker};
use super::ticket::Doc;
use super::{Sink, SinkError, TicketEvent};
use crate::http::{ClientOptions, HttpClient, HttpError, Method, SensitiveHeaders};
use accessgraph_config::JiraSettings;
use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// Jira allows 255 characters in a summary.
const MAX_SUMMARY_CHARS: usize = 255;

/// Files findings as Jira issues.
#[derive(Debug)]
pub struct JiraSink {
    name: String,
    client: HttpClient,
    project: String,
    issue_type: String,
    done_transition: String,
    report_url: Option<String>,
    context: SinkContext,
}

/// Client options for Jira Cloud (basic auth with an API token).
pub fn jira_client_options(base_url: &str, email: &str, token: &str) -> Result<ClientOptions, HttpError> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{email}:{token}"));
    let headers =
        SensitiveHeaders::new().with("authorization", &format!("Basic {basic}"))?.with("accept", "application/json")?;
    Ok(ClientOptions {
        base_url: Some(base_url.to_string()),
        requests_per_second: 5,
        burst: 10,
        max_retries: 3,
        base_backoff: Duration::from_millis(250),
        max_backoff: Duration::from_secs(4),
        max_rate_limit_wait: Duration::from_secs(90),
        headers,
        ..ClientOptions::default()
    })
}

impl JiraSink {
    /// Builds the sink from its settings (reads the token).
    pub fn new(
        name: &str,
        settings: &JiraSettings,
        report_url: Option<String>,
        context: SinkContext,
    ) -> Result<JiraSink, SinkError> {
        let token = settings.token.resolve().map_err(|e| SinkError::Config(format!("sink `{name}`: token: {e}")))?;
        let client = HttpClient::new(jira_client_options(&settings.base_url, &settings.email, token.expose())?)?;
        Ok(JiraSink::with_client(name, client, settings, report_url, context))
    }

    /// A sink using a prepared client (tests tune its backoff).
    pub fn with_client(
        name: &str,
        client: HttpClient,
        settings: &JiraSettings,
        report_url: Option<String>,
        context: SinkContext,
    ) -> JiraSink {
        JiraSink {
            name: name.to_string(),
            client,
            project: settings.project.clone(),
            issue_type: settings.issue_type.clone(),
            done_transition: settings.done_transition.clone(),
            report_url,
            context,
        }
    }

    fn issue_path(key: &str) -> Result<String, SinkError> {
        // `SEC-42` or a numeric id: nothing that could change the path.
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(SinkError::Remote(format!("`{}` is not an issue key", key.escape_debug())));
        }
        Ok(format!("rest/api/3/issue/{key}"))
    }

    /// The issue's status category key (`new`, `indeterminate`, `done`).
    async fn status_category(&self, key: &str) -> Result<Option<String>, SinkError> {
        let issue: IssueBean = self.client.get_json(&JiraSink::issue_path(key)?, &[("fields", "status")]).await?.body;
        Ok(issue.category())
    }
}

/// JQL string literal.
fn jql_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

#[derive(Debug, Deserialize)]
struct IssueBean {
    key: String,
    #[serde(default)]
    fields: Option<Value>,
}

impl IssueBean {
    fn category(&self) -> Option<String> {
        self.fields.as_ref()?.pointer("/status/statusCategory/key")?.as_str().map(str::to_string)
    }

    fn has_label(&self, label: &str) -> bool {
        match self.fields.as_ref().and_then(|f| f.get("labels")).and_then(Value::as_array) {
            Some(labels) => labels.iter().any(|l| l.as_str() == Some(label)),
            // Labels not returned: trust the JQL.
            None => true,
        }
    }
}

#[derive(Debug, Deserialize)]
struct SearchResults {
    #[serde(default)]
    issues: Vec<IssueBean>,
}

#[derive(Debug, Deserialize)]
struct CreatedIssue {
    key: String,
}

#[derive(Debug, Deserialize)]
struct Transitions {
    #[serde(default)]
    transitions: Vec<Transition>,
}

#[derive(Debug, Deserialize)]
struct Transition {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    to: Option<Value>,
}

impl Transition {
    fn target_category(&self) -> Option<&str> {
        self.to.as_ref()?.pointer("/statusCategory/key")?.as_str()
    }
}

#[derive(Debug, Deserialize)]
struct Comments {
    #[serde(default)]
    comments: Vec<Value>,
}

fn summary(title: &str) -> String {
    match title.char_indices().nth(MAX_SUMMARY_CHARS) {
        Some((cut, _)) => title[..cut].to_string(),
        None => title.to_string(),
    }
}

impl JiraSink {
    fn browse_url(&self, key: &str) -> Option<String> {
        let base = self.client.options().base_url.as_deref()?;
        Some(format!("{}/browse/{key}", base.trim_end_matches('/')))
    }

    async fn transition(&self, key: &str, open: bool) -> Result<(), SinkError> {
        let done = self.status_category(key).await?.as_deref() == Some("done");
        if done != open {
            return Ok(());
        }
        let path = format!("{}/transitions", JiraSink::issue_path(key)?);
        let list: Transitions = self.client.get_json(&path, &[]).await?.body;
        let chosen = if open {
            list.transitions
                .iter()
                .find(|t| t.target_category() == Some("new"))
                .or_else(|| list.transitions.iter().find(|t| t.target_category() == Some("indeterminate")))
        } else {
            list.transitions
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(&self.done_transition))
                .or_else(|| list.transitions.iter().find(|t| t.target_category() == Some("done")))
        };
        let Some(chosen) = chosen else {
            let wanted = if open { "out of done".to_string() } else { format!("`{}`", self.done_transition) };
            let names: Vec<&str> = list.transitions.iter().map(|t| t.name.as_str()).collect();
            return Err(SinkError::Remote(format!(
                "issue {key}: no transition {wanted} is available (available: {})",
                names.join(", ")
            )));
        };
        self.client.send_json_raw(Method::POST, &path, &json!({"transition": {"id": chosen.id}})).await?;
        Ok(())
    }
}

#[async_trait]
impl Tracker for JiraSink {
    async fn find(&self, label: &str) -> Result<Option<RemoteTicket>, SinkError> {
        let jql =
            format!("project = {} AND labels = {} ORDER BY created ASC", jql_string(&self.project), jql_string(label));
        let query = [("jql", jql.as_str()), ("fields", "status,labels"), ("maxResults", "20")];
        let results: SearchResults = self.client.get_json("rest/api/3/search/jql", &query).await?.body;
        let mut matching: Vec<&IssueBean> = results.issues.iter().filter(|i| i.has_label(label)).collect();
        // Open ones first, then the oldest (the order JQL returned).
        matching.sort_by_key(|i| i.category().as_deref() == Some("done"));
        Ok(matching.first().map(|i| RemoteTicket {
            key: i.key.clone(),
            url: self.browse_url(&i.key),
            open: i.category().map(|c| c != "done"),
        }))
    }

    async fn create(&self, new: &NewTicket<'_>) -> Result<RemoteTicket, SinkError> {
        let body = json!({"fields": {
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": summary(&new.title),
            "labels": ["accessgraph", new.label],
            "description": new.body.to_adf(),
        }});
        let created: CreatedIssue = self.client.send_json(Method::POST, "rest/api/3/issue", &body).await?.body;
        let url = self.browse_url(&created.key);
        Ok(RemoteTicket { key: created.key, url, open: Some(true) })
    }

    async fn refresh(&self, key: &str, title: &str, body: &Doc) -> Result<(), SinkError> {
        let payload = json!({"fields": {"summary": summary(title), "description": body.to_adf()}});
        self.client.send_json_raw(Method::PUT, &JiraSink::issue_path(key)?, &payload).await?;
        Ok(())
    }

    async fn comment(&self, key: &str, body: &Doc) -> Result<(), SinkError> {
        let path = format!("{}/comment", JiraSink::issue_path(key)?);
        self.client.send_json_raw(Method::POST, &path, &json!({"body": body.to_adf()})).await?;
        Ok(())
    }

    async fn has_comment(&self, key: &str, marker: &str) -> Result<bool, SinkError> {
        let path = format!("{}/comment", JiraSink::issue_path(key)?);
        let query = [("orderBy", "-created"), ("maxResults", "100")];
        let comments: Comments = self.client.get_json(&path, &query).await?.body;
        Ok(comments.comments.iter().any(|c| c.get("body").is_some_and(|b| b.to_string().contains(marker))))
    }

    async fn set_open(&self, key: &str, open: bool) -> Result<(), SinkError> {
        self.transition(key, open).await
    }
}

#[async_trait]
impl Sink for JiraSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, event: &TicketEvent) -> Result<(), SinkError> {
        lifecycle::deliver(self, &self.name, &self.context, self.report_url.as_deref(), event).await
    }
}
