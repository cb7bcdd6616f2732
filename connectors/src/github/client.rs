//! API calls only: every GitHub REST listing the connector reads, through the
//! shared HTTP layer (client-side limiter, retries with full jitter,
//! `Retry-After`, the `x-ratelimit-*` budget gate), plus what is GitHub's
//! own: conditional requests against an ETag cache kept across syncs, a
//! budget limiter set from the token's `x-ratelimit-limit`, App
//! installation tokens, and bounded concurrency for the per-team and
//! per-repository listings.
//!
//! Every listing returns all its pages or an error; an endpoint the token may
//! not read (403/404) is optional only where the mapping can say so
//! (`None`), and is reported in the warnings.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use accessgraph_config::Secret;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use octocrab::auth::EncodingKey;
use octocrab::models::AppId;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::wire::{
    BranchProtection, Collaborator, CredentialAuthorization, DeployKey, Installation, InstallationRecords,
    InstallationRepositories, InstallationToken, Installations, OrgRecords, Organization, OrganizationSecrets,
    PatGrant, PatRecords, Protection, RateLimitOverview, RepoRecords, Repository, RepositorySecrets, Team, TeamRecords,
    User,
};
use crate::cache::{CachedResponse, ResponseCache};
use crate::http::{HttpClient, HttpError, HttpStats, Method, decode_json, parse_link_next, path_segment};

/// Largest page GitHub serves.
const PER_PAGE: &str = "100";

/// An installation token is renewed when it has less than this left: a
/// sync of a large organization takes minutes.
const TOKEN_REFRESH_MARGIN_MINUTES: i64 = 5;

/// How the connector authenticates.
pub enum Auth {
    /// A token, already in the HTTP client's default headers.
    Token,
    /// A GitHub App installation: JWT → installation token, renewed before
    /// it expires.
    App(AppAuth),
}

/// A GitHub App's credentials and its current installation token.
pub struct AppAuth {
    app_id: u64,
    installation_id: u64,
    key: EncodingKey,
    current: tokio::sync::Mutex<Option<(Secret, DateTime<Utc>)>>,
}

impl AppAuth {
    /// Reads the App's PEM private key; the error never quotes the key.
    pub fn new(app_id: u64, installation_id: u64, private_key_pem: &str) -> Result<AppAuth, HttpError> {
        let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(|_| HttpError::Config {
            message: "the GitHub App private_key is not an RSA private key in PEM format".to_string(),
        })?;
        Ok(AppAuth { app_id, installation_id, key, current: tokio::sync::Mutex::new(None) })
    }

    /// The installation this App reads the organization through.
    pub fn installation_id(&self) -> u64 {
        self.installation_id
    }

    /// `Bearer <installation token>`, fetching a new token when the current
    /// one is missing or about to expire.
    async fn bearer(&self, http: &HttpClient) -> Result<String, HttpError> {
        let mut current = self.current.lock().await;
        if let Some((token, expires_at)) = current.as_ref()
            && *expires_at - Utc::now() > ChronoDuration::minutes(TOKEN_REFRESH_MARGIN_MINUTES)
        {
            return Ok(format!("Bearer {}", token.expose()));
        }
        let jwt = octocrab::auth::create_jwt(AppId(self.app_id), &self.key)
            .map_err(|e| HttpError::Config { message: format!("cannot sign the GitHub App JWT: {e}") })?;
        let path = format!("app/installations/{}/access_tokens", self.installation_id);
        let response = http
            .send_bytes_with_headers(Method::POST, &path, b"{}", &[("authorization", &format!("Bearer {jwt}"))])
            .await?;
        // A decode error could quote the body, and the body holds the token.
        let token: InstallationToken = decode_json(&response.url, &response.body).map_err(|_| HttpError::Decode {
            url: response.url.clone(),
            path: ".".to_string(),
            message: "not an installation token (`token` and `expires_at` expected)".to_string(),
        })?;
        tracing::debug!(installation_id = self.installation_id, expires_at = %token.expires_at, "GitHub App installation token issued");
        let bearer = format!("Bearer {}", token.token);
        *current = Some((Secret::new(token.token), token.expires_at));
        Ok(bearer)
    }
}

/// Counters of one sync, logged with it (and reported by the bench).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GithubStats {
    /// Requests sent (retries included).
    pub requests: u64,
    /// Requests answered `304 Not Modified` (free on GitHub).
    pub not_modified: u64,
    /// Requests that spent rate budget: everything not answered 304.
    pub counted: u64,
    /// Retries after rate limits or transient failures.
    pub retries: u64,
    /// Waits for a rate limit (server-announced or our own budget limiter).
    pub rate_limit_waits: u64,
    /// Body bytes received (304s carry none).
    pub bytes: u64,
    /// Pages served from the ETag cache after a 304.
    pub cache_hits: u64,
}

/// The GitHub REST endpoints, for one sync. Cheap to clone.
#[derive(Clone)]
pub struct GithubClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    org: String,
    auth: Auth,
    cache: Option<Arc<dyn ResponseCache>>,
    concurrency: usize,
    /// Set from `GET /rate_limit`: `x-ratelimit-limit` per hour, with the
    /// remaining budget as burst. Paces requests that will spend budget.
    budget: OnceLock<DefaultDirectRateLimiter>,
    bytes: AtomicU64,
    cache_hits: AtomicU64,
    /// Cache keys this sync used: the rest is pruned after a complete sync.
    used_keys: Mutex<HashSet<String>>,
    /// Optional endpoints the token could not read: what → subjects.
    skipped: Mutex<BTreeMap<&'static str, Vec<String>>>,
}

impl GithubClient {
    /// A client for `org`. `http` carries the base URL, the API headers and,
    /// for token auth, the token.
    pub fn new(
        http: HttpClient,
        org: impl Into<String>,
        auth: Auth,
        cache: Option<Arc<dyn ResponseCache>>,
        concurrency: usize,
    ) -> GithubClient {
        GithubClient {
            inner: Arc::new(Inner {
                http,
                org: org.into(),
                auth,
                cache,
                concurrency: concurrency.max(1),
                budget: OnceLock::new(),
                bytes: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                used_keys: Mutex::new(HashSet::new()),
                skipped: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> GithubStats {
        let http = self.inner.http.stats().snapshot();
        GithubStats {
            requests: http.requests,
            not_modified: http.not_modified,
            counted: http.requests.saturating_sub(http.not_modified),
            retries: http.retries,
            rate_limit_waits: http.rate_limit_waits,
            bytes: self.inner.bytes.load(Ordering::Relaxed),
            cache_hits: self.inner.cache_hits.load(Ordering::Relaxed),
        }
    }

    /// Optional listings the token could not read, with their subjects.
    pub fn skipped(&self) -> BTreeMap<&'static str, Vec<String>> {
        let mut skipped = lock(&self.inner.skipped).clone();
        for subjects in skipped.values_mut() {
            subjects.sort();
        }
        skipped
    }

    /// Reads the whole organization; fails if any required listing fails.
    pub async fn organization(&self) -> Result<OrgRecords, HttpError> {
        self.prepare_budget().await?;
        let org_path = format!("orgs/{}", path_segment(&self.inner.org));
        let org: Organization = self.get(&org_path).await?;
        let owners: Vec<User> = self.list(&format!("{org_path}/members"), &[("role", "admin")]).await?;
        let members: Vec<User> = self.list(&format!("{org_path}/members"), &[("role", "member")]).await?;
        let outside_collaborators: Vec<User> = self.list(&format!("{org_path}/outside_collaborators"), &[]).await?;

        let teams: Vec<Team> = self.list(&format!("{org_path}/teams"), &[]).await?;
        let teams = self.each(teams, |client, team| async move { client.team_records(team).await }).await?;

        let repos: Vec<Repository> = self.list(&format!("{org_path}/repos"), &[("type", "all")]).await?;
        let repos = self.each(repos, |client, repo| async move { client.repo_records(repo).await }).await?;

        let installations = self.installations(&org_path).await?;
        let pats = self.pats(&org_path).await?;
        let credential_authorizations = self
            .optional(
                "SAML credential authorizations (no SSO, or not an owner)",
                &self.inner.org,
                self.list::<CredentialAuthorization>(&format!("{org_path}/credential-authorizations"), &[]),
            )
            .await?;
        let org_secrets = self
            .optional(
                "organization Actions secrets",
                &self.inner.org,
                self.list_map(&format!("{org_path}/actions/secrets"), &[], |page: OrganizationSecrets| page.secrets),
            )
            .await?;
        Ok(OrgRecords {
            org,
            owners,
            members,
            outside_collaborators,
            teams,
            repos,
            installations,
            pats,
            credential_authorizations,
            org_secrets,
        })
    }

    /// After a complete sync: forgets cached responses this sync did not use.
    pub async fn prune_cache(&self) {
        if let Some(cache) = &self.inner.cache {
            let keep = lock(&self.inner.used_keys).clone();
            cache.retain(&keep).await;
        }
    }

    async fn team_records(&self, team: Team) -> Result<TeamRecords, HttpError> {
        let base = format!("orgs/{}/teams/{}", path_segment(&self.inner.org), path_segment(&team.slug));
        let members = self.list(&format!("{base}/members"), &[("role", "member")]).await?;
        let maintainers = self.list(&format!("{base}/members"), &[("role", "maintainer")]).await?;
        let repos = self.list(&format!("{base}/repos"), &[]).await?;
        Ok(TeamRecords { team, members, maintainers, repos })
    }

    async fn repo_records(&self, repo: Repository) -> Result<RepoRecords, HttpError> {
        let full_name = repo.full_name.clone();
        let base = format!("repos/{}/{}", path_segment(&repo.owner.login), path_segment(&repo.name));
        let collaborators = self
            .optional(
                "repository collaborators",
                &full_name,
                self.list::<Collaborator>(&format!("{base}/collaborators"), &[("affiliation", "direct")]),
            )
            .await?;
        let deploy_keys =
            self.optional("deploy keys", &full_name, self.list::<DeployKey>(&format!("{base}/keys"), &[])).await?;
        let protection = match (&repo.default_branch, repo.archived) {
            (Some(branch), false) => {
                let path = format!("{base}/branches/{}/protection", path_segment(branch));
                match self.get::<BranchProtection>(&path).await {
                    Ok(protection) => Protection::Protected(protection),
                    // GitHub's answer for a branch without a rule ("Branch
                    // not protected") and for an empty repository.
                    Err(HttpError::NotFound { .. }) => Protection::Unprotected,
                    Err(HttpError::Permission { .. }) => {
                        self.skip("branch protection (needs admin on the repository)", &full_name);
                        Protection::Unknown
                    }
                    Err(err) => return Err(err),
                }
            }
            _ => Protection::NotApplicable,
        };
        let secrets = self
            .optional(
                "repository Actions secrets",
                &full_name,
                self.list_map(&format!("{base}/actions/secrets"), &[], |page: RepositorySecrets| page.secrets),
            )
            .await?;
        Ok(RepoRecords { repo, collaborators, deploy_keys, protection, secrets })
    }

    async fn installations(&self, org_path: &str) -> Result<Option<Vec<InstallationRecords>>, HttpError> {
        let path = format!("{org_path}/installations");
        let listing = self.list_map(&path, &[], |page: Installations| page.installations);
        let Some(installations) = self.optional("App installations (needs an owner)", &self.inner.org, listing).await?
        else {
            return Ok(None);
        };
        let own = match &self.inner.auth {
            Auth::App(app) => Some(app.installation_id()),
            Auth::Token => None,
        };
        let records = self
            .each(installations, move |client, installation: Installation| async move {
                if installation.repository_selection != "selected" {
                    return Ok(InstallationRecords { installation, repositories: None });
                }
                // An installation lists its own repositories; another
                // installation's list needs a user token that can see it.
                let path = if own == Some(installation.id) {
                    "installation/repositories".to_string()
                } else {
                    format!("user/installations/{}/repositories", installation.id)
                };
                let listing = client.list_map(&path, &[], |page: InstallationRepositories| page.repositories);
                let repositories = client
                    .optional(
                        "repositories of App installations with selected repositories",
                        &installation.app_slug,
                        listing,
                    )
                    .await?;
                Ok(InstallationRecords { installation, repositories })
            })
            .await?;
        Ok(Some(records))
    }

    async fn pats(&self, org_path: &str) -> Result<Option<Vec<PatRecords>>, HttpError> {
        let path = format!("{org_path}/personal-access-tokens");
        let listing = self.list::<PatGrant>(&path, &[]);
        let Some(grants) = self
            .optional("fine-grained personal access tokens (needs GitHub App auth)", &self.inner.org, listing)
            .await?
        else {
            return Ok(None);
        };
        let org_path = org_path.to_string();
        let records = self
            .each(grants, move |client, grant: PatGrant| {
                let org_path = org_path.clone();
                async move {
                    if grant.repository_selection != "subset" {
                        return Ok(PatRecords { grant, repositories: None });
                    }
                    let path = format!("{org_path}/personal-access-tokens/{}/repositories", grant.id);
                    let subject = grant.token_name.clone();
                    let listing = client.list::<Repository>(&path, &[]);
                    let repositories =
                        client.optional("repositories of fine-grained tokens", &subject, listing).await?;
                    Ok(PatRecords { grant, repositories })
                }
            })
            .await?;
        Ok(Some(records))
    }

    /// Runs `work` for every item, at most `concurrency` at a time, and
    /// returns the results in the items' order. The first error aborts the
    /// rest (dropping the set cancels its tasks).
    async fn each<I, T, F, Fut>(&self, items: Vec<I>, work: F) -> Result<Vec<T>, HttpError>
    where
        I: Send + 'static,
        T: Send + 'static,
        F: Fn(GithubClient, I) -> Fut,
        Fut: Future<Output = Result<T, HttpError>> + Send + 'static,
    {
        let permits = Arc::new(Semaphore::new(self.inner.concurrency));
        let mut tasks = JoinSet::new();
        let count = items.len();
        for (i, item) in items.into_iter().enumerate() {
            let permits = permits.clone();
            let job = work(self.clone(), item);
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await.ok();
                (i, job.await)
            });
        }
        let mut done = Vec::with_capacity(count);
        while let Some(joined) = tasks.join_next().await {
            let (i, result) =
                joined.map_err(|e| HttpError::Config { message: format!("a GitHub listing task failed: {e}") })?;
            done.push((i, result?));
        }
        done.sort_by_key(|(i, _)| *i);
        Ok(done.into_iter().map(|(_, value)| value).collect())
    }

    /// `None` (and a warning) when the token may not read an optional
    /// listing; any other failure fails the sync.
    async fn optional<T>(
        &self,
        what: &'static str,
        subject: &str,
        listing: impl Future<Output = Result<T, HttpError>>,
    ) -> Result<Option<T>, HttpError> {
        match listing.await {
            Ok(value) => Ok(Some(value)),
            Err(HttpError::Permission { .. } | HttpError::NotFound { .. }) => {
                self.skip(what, subject);
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    fn skip(&self, what: &'static str, subject: &str) {
        lock(&self.inner.skipped).entry(what).or_default().push(subject.to_string());
    }

    /// Reads the token's budget (free: `/rate_limit` costs nothing) and sets
    /// the budget limiter from it. GitHub Enterprise Server without rate
    /// limiting answers 404: no limiter then.
    async fn prepare_budget(&self) -> Result<(), HttpError> {
        let headers = self.auth_headers().await?;
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = match self.inner.http.get_raw("rate_limit", &[], None, &headers).await {
            Ok(response) => response,
            Err(HttpError::NotFound { .. }) => return Ok(()),
            Err(err) => return Err(err),
        };
        self.inner.bytes.fetch_add(response.body.len() as u64, Ordering::Relaxed);
        let overview: RateLimitOverview = decode_json(&response.url, &response.body)?;
        let core = overview.resources.core;
        let limit = NonZeroU32::new(u32::try_from(core.limit).unwrap_or(u32::MAX));
        let burst = NonZeroU32::new(u32::try_from(core.remaining).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        if let Some(limit) = limit {
            let _ = self.inner.budget.set(RateLimiter::direct(Quota::per_hour(limit).allow_burst(burst)));
        }
        tracing::debug!(limit = core.limit, remaining = core.remaining, reset = core.reset, "GitHub rate budget");
        Ok(())
    }

    /// Waits for the budget limiter before a request that will spend budget.
    async fn pace(&self) {
        let Some(limiter) = self.inner.budget.get() else { return };
        if limiter.check().is_ok() {
            return;
        }
        HttpStats::bump(&self.inner.http.stats().rate_limit_waits);
        tracing::warn!("GitHub rate budget nearly spent; pacing requests to x-ratelimit-limit per hour");
        limiter.until_ready().await;
    }

    async fn auth_headers(&self) -> Result<Vec<(&'static str, String)>, HttpError> {
        match &self.inner.auth {
            Auth::Token => Ok(Vec::new()),
            Auth::App(app) => Ok(vec![("authorization", app.bearer(&self.inner.http).await?)]),
        }
    }

    /// One object.
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, HttpError> {
        let url = self.inner.http.resolve(path, &[])?;
        Ok(self.fetch(url.as_str()).await?.0)
    }

    /// Every item of a `Link`-paged array.
    async fn list<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<T>, HttpError> {
        self.list_map(path, query, |items: Vec<T>| items).await
    }

    /// Every item of a `Link`-paged listing whose pages are `P` (wrapped
    /// listings such as `{ "total_count", "secrets": [...] }`).
    ///
    /// Next links are followed verbatim but must stay on the first
    /// request's origin (our token goes with them), and may not repeat.
    async fn list_map<P, T, F>(&self, path: &str, query: &[(&str, &str)], items_of: F) -> Result<Vec<T>, HttpError>
    where
        P: DeserializeOwned,
        F: Fn(P) -> Vec<T>,
    {
        let mut full_query = query.to_vec();
        full_query.push(("per_page", PER_PAGE));
        let first = self.inner.http.resolve(path, &full_query)?;
        let listing = self.inner.http.show(first.as_str());
        let mut url = first.clone();
        let mut seen = HashSet::from([first.to_string()]);
        let mut items = Vec::new();
        let mut pages: u32 = 0;
        loop {
            pages += 1;
            if pages > self.inner.http.max_pages() {
                return Err(HttpError::Pagination { url: listing, message: format!("more than {} pages", pages - 1) });
            }
            let (page, link) = self.fetch::<P>(url.as_str()).await?;
            let page_items = items_of(page);
            if page_items.is_empty() {
                break;
            }
            items.extend(page_items);
            let Some(next) = link.as_deref().and_then(parse_link_next) else { break };
            let next_url = url.join(&next).map_err(|e| HttpError::Pagination {
                url: listing.clone(),
                message: format!("invalid next link: {e}"),
            })?;
            if next_url.origin() != first.origin() {
                return Err(HttpError::Pagination {
                    url: listing,
                    message: format!(
                        "next link points to another origin ({})",
                        self.inner.http.show(next_url.as_str())
                    ),
                });
            }
            if !seen.insert(next_url.to_string()) {
                return Err(HttpError::Pagination {
                    url: listing,
                    message: format!("server returned next link to page {pages} again"),
                });
            }
            url = next_url;
        }
        Ok(items)
    }

    /// GETs one page, conditionally when the cache holds it: a 304 reuses the
    /// cached body (and its `Link`). Only a 2xx body that decoded completely
    /// is cached; a cached body that no longer decodes is fetched again.
    async fn fetch<T: DeserializeOwned>(&self, url: &str) -> Result<(T, Option<String>), HttpError> {
        let key = url.to_string();
        lock(&self.inner.used_keys).insert(key.clone());
        let cached = match &self.inner.cache {
            Some(cache) => cache.get(&key).await,
            None => None,
        };
        let auth = self.auth_headers().await?;
        let headers: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Some(cached) = cached {
            let response = self.inner.http.get_raw(url, &[], Some(&cached.etag), &headers).await?;
            if response.status == 304 {
                match decode_json::<T>(&response.url, &cached.body) {
                    Ok(value) => {
                        self.inner.cache_hits.fetch_add(1, Ordering::Relaxed);
                        return Ok((value, cached.link));
                    }
                    Err(err) => {
                        tracing::warn!(url = %response.url, error = %err, "cached GitHub page no longer decodes; fetching it again");
                    }
                }
            } else {
                return self.keep(&key, response).await;
            }
        }
        self.pace().await;
        let response = self.inner.http.get_raw(url, &[], None, &headers).await?;
        self.keep(&key, response).await
    }

    /// Decodes a fresh 2xx page and, when it carries an ETag, caches it.
    async fn keep<T: DeserializeOwned>(
        &self,
        key: &str,
        response: crate::http::Response<Vec<u8>>,
    ) -> Result<(T, Option<String>), HttpError> {
        self.inner.bytes.fetch_add(response.body.len() as u64, Ordering::Relaxed);
        let value = decode_json::<T>(&response.url, &response.body)?;
        if let (Some(cache), Some(etag)) = (&self.inner.cache, response.etag) {
            let entry = CachedResponse { etag, link: response.link.clone(), body: response.body };
            cache.put(key, &entry).await;
            return Ok((value, entry.link));
        }
        Ok((value, response.link))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters and key sets stay valid whatever panicked while holding them.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
