//! GitHub source (`kind = "github"`): who can read, write, merge and deploy
//! in one organization — people, teams, Apps, deploy keys and tokens.
//!
//! [`client`] reads (REST v3, `per_page=100`, `Link` paging, conditional
//! requests against an ETag cache kept across syncs; default-branch
//! protection, rulesets and deploy-key counts through one GraphQL query per
//! 100 repositories, REST when GraphQL is unavailable), [`transform`] maps
//! (pure), and [`GithubConnector`] ties them to the [`Connector`] contract:
//! the whole organization or an error, never part of it.
//!
//! # The model
//!
//! | GitHub | node (after `SOURCE:`) | edges |
//! |---|---|---|
//! | member, outside collaborator, collaborator | `user:LOGIN`, human (`Bot` accounts: service account); `org_role` attr; email when the API shows one | |
//! | organization owners / members | `org_role:owner`, `org_role:member`, groups | owners `member_of` both; members `member_of` `org_role:member`. Owners: `admin` on every repository. Members: the base permission (`default_repository_permission`) on every repository, `read` on internal ones |
//! | team | `team:SLUG`, group | members and maintainers `member_of` it; a child team `member_of` its parent (it inherits the parent's access); maintainers also get `maintain` on the team (they hand out its access) |
//! | repository | `repo:OWNER/NAME`, resource `repo`; `visibility`, `archived`, `default_branch` attrs | team and direct collaborator roles → grants |
//! | default branch | `branch:OWNER/NAME@BRANCH`, resource `branch`; `protection`, `rulesets` attrs | `bypass-review` for every principal who can land on it without an approving review: neither the classic rule nor an active ruleset requires one from it (see [`transform`]) |
//! | App installation | `app:APP_SLUG`, app | grants on every repository (`all`) or the selected ones, from its permissions |
//! | deploy key | `deploy_key:ID`, credential; and `deploy_key_holder:ID`, service account | holder `holds` the key and has `read` (+ `write`) on the repository; owner = `added_by` (inferred) |
//! | fine-grained PAT with org access | `pat:ID`, credential `fine_grained_pat` | held by (and owned by) its owner's `user:` |
//! | SSO-authorized classic PAT / SSH key | `pat:classic-ID` / `ssh_key:ID`, credential | held by its user |
//! | Actions secret | `secret:ORG/NAME`, `secret:OWNER/REPO/NAME`, credential `actions_secret` | none: GitHub reports no holder or use |
//!
//! Repository roles → actions, cumulative: `read` ⊂ `triage` ⊂ `write` ⊂
//! `maintain` ⊂ `admin`. A grant carries every action its role includes, so
//! `who-can --action write` finds maintainers and admins too.

pub mod client;
pub mod transform;
pub mod wire;

#[cfg(test)]
pub(crate) mod mock;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use accessgraph_config::GithubSettings;
use accessgraph_graph::Fragment;
use async_trait::async_trait;

use crate::cache::ResponseCache;
use crate::connector::{Connector, RequestStats, SyncError};
use crate::http::{ClientOptions, HttpClient, HttpError, SensitiveHeaders};

pub use client::{AppAuth, Auth, GithubClient, GithubStats};

/// How hard the connector pushes GitHub. The defaults stay well inside
/// GitHub's secondary limits (≤ 100 concurrent requests, ≤ 900 per minute
/// per endpoint); tests and the bench raise them against a local mock.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Client-side requests per second.
    pub requests_per_second: u32,
    /// Requests that may go out at once before the rate applies.
    pub burst: u32,
    /// Team and repository listings read at the same time.
    pub concurrency: usize,
    /// First retry's backoff ceiling (full jitter, doubling).
    pub base_backoff: Duration,
    /// Longest wait accepted for a rate limit (`Retry-After`, or the
    /// `x-ratelimit-reset` of a spent budget); beyond it the sync fails
    /// with a rate-limit error instead of stalling.
    pub max_rate_limit_wait: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            requests_per_second: 10,
            burst: 10,
            concurrency: 8,
            base_backoff: Duration::from_millis(500),
            max_rate_limit_wait: Duration::from_secs(900),
        }
    }
}

/// A source backed by the GitHub REST API.
pub struct GithubConnector {
    source: String,
    settings: GithubSettings,
    cache: Option<Arc<dyn ResponseCache>>,
    tuning: Tuning,
    last_stats: Mutex<Option<GithubStats>>,
}

impl GithubConnector {
    /// A connector for the source `source`.
    pub fn new(source: impl Into<String>, settings: GithubSettings) -> GithubConnector {
        GithubConnector {
            source: source.into(),
            settings,
            cache: None,
            tuning: Tuning::default(),
            last_stats: Mutex::new(None),
        }
    }

    /// Keeps responses in `cache` between syncs, for conditional requests
    /// (`None`: every request is unconditional).
    pub fn with_cache(mut self, cache: Option<Arc<dyn ResponseCache>>) -> GithubConnector {
        self.cache = cache;
        self
    }

    /// Replaces the default limits.
    pub fn with_tuning(mut self, tuning: Tuning) -> GithubConnector {
        self.tuning = tuning;
        self
    }

    /// Counters of the last sync (complete or not).
    pub fn last_stats(&self) -> Option<GithubStats> {
        *self.last_stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The client for one sync: credentials are read now, so a rotated
    /// token or key is picked up without a restart.
    fn client(&self) -> Result<GithubClient, SyncError> {
        let mut headers = SensitiveHeaders::new()
            .with("accept", "application/vnd.github+json")?
            .with("x-github-api-version", "2022-11-28")?;
        let auth = match (&self.settings.token, &self.settings.app) {
            (Some(token), _) => {
                let token = token.resolve().map_err(|err| SyncError::Read {
                    path: format!("source `{}` token ({token})", self.source),
                    message: err.to_string(),
                })?;
                headers.insert("authorization", &format!("Bearer {}", token.expose()))?;
                Auth::Token
            }
            (None, Some(app)) => {
                let key = app.private_key.resolve().map_err(|err| SyncError::Read {
                    path: format!("source `{}` app.private_key ({})", self.source, app.private_key),
                    message: err.to_string(),
                })?;
                Auth::App(AppAuth::new(app.id, app.installation_id, key.expose())?)
            }
            (None, None) => {
                return Err(SyncError::Read {
                    path: format!("source `{}`", self.source),
                    message: "neither `token` nor `app` is configured".to_string(),
                });
            }
        };
        let options = ClientOptions {
            base_url: Some(self.settings.base_url.clone()),
            requests_per_second: self.tuning.requests_per_second,
            burst: self.tuning.burst,
            base_backoff: self.tuning.base_backoff,
            max_rate_limit_wait: self.tuning.max_rate_limit_wait,
            headers,
            ..ClientOptions::default()
        };
        let http = HttpClient::new(options)?;
        Ok(GithubClient::new(http, self.settings.org.clone(), auth, self.cache.clone(), self.tuning.concurrency))
    }

    /// A refused credential names the source and the secret reference
    /// (never its value); other failures pass through naming the endpoint.
    fn explain(&self, err: HttpError) -> SyncError {
        let credential = match (&self.settings.token, &self.settings.app) {
            (Some(token), _) => format!("the token from {token}"),
            (None, Some(app)) => format!("GitHub App {} (installation {})", app.id, app.installation_id),
            (None, None) => "the credential".to_string(),
        };
        match &err {
            HttpError::Auth { url, message } => SyncError::Read {
                path: url.clone(),
                message: format!(
                    "source `{}` (github): {credential} was rejected (HTTP 401: {message}); \
                     check that it is valid and not expired",
                    self.source
                ),
            },
            HttpError::Permission { url, message } => SyncError::Read {
                path: url.clone(),
                message: format!(
                    "source `{}` (github): {credential} may not read this (HTTP 403: {message}); \
                     it needs read:org and repo (or the App permissions in docs/connectors-github.md)",
                    self.source
                ),
            },
            HttpError::NotFound { url } => SyncError::Read {
                path: url.clone(),
                message: format!(
                    "source `{}` (github): not found (HTTP 404); check `org = \"{}\"` and `base_url`, and \
                     that {credential} can see the organization",
                    self.source, self.settings.org
                ),
            },
            _ => SyncError::Http(err),
        }
    }
}

#[async_trait]
impl Connector for GithubConnector {
    fn source(&self) -> &str {
        &self.source
    }

    fn kind(&self) -> &'static str {
        "github"
    }

    fn request_stats(&self) -> Option<RequestStats> {
        self.last_stats().map(|stats| RequestStats {
            requests: stats.requests,
            not_modified: stats.not_modified,
            retries: stats.retries,
            rate_limit_waits: stats.rate_limit_waits,
            bytes: stats.bytes,
        })
    }

    async fn sync(&self) -> Result<Fragment, SyncError> {
        let client = self.client()?;
        let result = client.organization().await;
        let stats = client.stats();
        *self.last_stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(stats);
        let records = result.map_err(|err| self.explain(err))?;
        let fragment = transform::map(&self.source, &records)?;
        client.prune_cache().await;
        for (what, subjects) in client.skipped() {
            let shown: Vec<&str> = subjects.iter().take(5).map(String::as_str).collect();
            tracing::warn!(
                source = %self.source,
                skipped = what,
                count = subjects.len(),
                examples = %shown.join(", "),
                "github: not readable with this credential; left out of the graph"
            );
        }
        tracing::info!(
            source = %self.source,
            org = %self.settings.org,
            repos = records.repos.len(),
            teams = records.teams.len(),
            members = records.owners.len() + records.members.len(),
            nodes = fragment.nodes.len(),
            edges = fragment.edges.len(),
            requests = stats.requests,
            not_modified = stats.not_modified,
            counted = stats.counted,
            retries = stats.retries,
            rate_limit_waits = stats.rate_limit_waits,
            bytes = stats.bytes,
            "github organization mapped"
        );
        Ok(fragment)
    }
}
