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
    Actors, AppRef, BranchProtection, BranchRuleset, Collaborator, CredentialAuthorization, DeployKey, Flag, GqlActor,
    GqlAllowance, GqlConnection, GqlRepository, GraphqlResponse, Installation, InstallationRecords,
    InstallationRepositories, InstallationToken, Installations, Login, OrgRecords, Organization, OrganizationSecrets,
    PatGrant, PatRecords, Protection, RateLimitOverview, RepoRecords, Repository, RepositorySecrets, RequiredReviews,
    Ruleset, Team, TeamRecords, TeamRef, User,
};
use crate::cache::{CachedResponse, ResponseCache};
use crate::http::{HttpClient, HttpError, HttpStats, LinkPager, Method, decode_json, path_segment};

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
    /// `{base}/graphql`, or `https://HOST/api/graphql` on GitHub Enterprise
    /// Server (see [`graphql_endpoint`]).
    graphql_url: String,
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
        let graphql_url = graphql_endpoint(http.options().base_url.as_deref().unwrap_or(DEFAULT_API));
        GithubClient {
            inner: Arc::new(Inner {
                http,
                org: org.into(),
                graphql_url,
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
        let branch_rules = self.branch_rules(&repos).await?;
        let repos: Vec<(Repository, Option<GqlRepository>)> = match branch_rules {
            Some(answers) => repos.into_iter().zip(answers).collect(),
            None => repos.into_iter().map(|repo| (repo, None)).collect(),
        };
        let repos =
            self.each(repos, |client, (repo, rules)| async move { client.repo_records(repo, rules).await }).await?;

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
        let org_rulesets = self.org_rulesets(&org_path).await?;
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
            org_rulesets,
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

    /// One repository's per-repository listings. `rules` is what the
    /// batched GraphQL query read of it (`None`: GraphQL unavailable or
    /// denied for it): its default branch's protection and rulesets, and
    /// the number of deploy keys, so that the keys are listed only where
    /// there are some.
    async fn repo_records(&self, repo: Repository, rules: Option<GqlRepository>) -> Result<RepoRecords, HttpError> {
        let full_name = repo.full_name.clone();
        let base = format!("repos/{}/{}", path_segment(&repo.owner.login), path_segment(&repo.name));
        let collaborators = self
            .optional(
                "repository collaborators",
                &full_name,
                self.list::<Collaborator>(&format!("{base}/collaborators"), &[("affiliation", "direct")]),
            )
            .await?;
        // GraphQL's count is trusted when the credential administers the
        // repository (it sees every key); otherwise the listing decides.
        let no_keys = rules
            .as_ref()
            .is_some_and(|g| g.viewer_can_administer && g.deploy_keys.is_some_and(|keys| keys.total_count == 0));
        let deploy_keys = if no_keys {
            Some(Vec::new())
        } else {
            self.optional("deploy keys", &full_name, self.list::<DeployKey>(&format!("{base}/keys"), &[])).await?
        };
        let protection = match (&repo.default_branch, repo.archived) {
            (Some(branch), false) => match rules.as_ref().and_then(graphql_protection) {
                Some(protection) => protection,
                None => self.rest_protection(&base, branch, &full_name).await?,
            },
            _ => Protection::NotApplicable,
        };
        let rulesets = match &rules {
            Some(g) => self.repo_rulesets(&base, &full_name, g).await?,
            None => None,
        };
        let secrets = self
            .optional(
                "repository Actions secrets",
                &full_name,
                self.list_map(&format!("{base}/actions/secrets"), &[], |page: RepositorySecrets| page.secrets),
            )
            .await?;
        Ok(RepoRecords { repo, collaborators, deploy_keys, protection, secrets, rulesets })
    }

    /// The branch rulesets GraphQL read for one repository (`None`: it read
    /// none). A repository ruleset whose bypass actors GraphQL cannot settle
    /// (a `User` actor, which GraphQL cannot name, or more than one page)
    /// is read again through REST, which names every actor. Organization
    /// rulesets are not: their REST detail is read once for the whole
    /// organization (see `org_rulesets`).
    async fn repo_rulesets(
        &self,
        base: &str,
        full_name: &str,
        g: &GqlRepository,
    ) -> Result<Option<Vec<BranchRuleset>>, HttpError> {
        let Some(connection) = g.rulesets.as_ref() else { return Ok(None) };
        if !connection.complete() {
            self.skip("rulesets beyond the first 10 of a repository (more protection may apply)", full_name);
        }
        let mut views = Vec::with_capacity(connection.nodes.len());
        for ruleset in connection.nodes.iter().flatten() {
            let mut view = ruleset.to_branch_ruleset();
            // Bypass actors are shown only to those who may edit the
            // ruleset: an empty list proves nothing then.
            if !g.viewer_can_administer && view.bypass.as_ref().is_some_and(Vec::is_empty) {
                view.bypass = None;
            }
            if view.source_type == "Repository" && ruleset.bypass_unsettled() {
                let path = format!("{base}/rulesets/{}", ruleset.database_id);
                let detail = self
                    .optional(
                        "repository ruleset bypass actors through REST (needs write access to the ruleset)",
                        full_name,
                        self.get::<Ruleset>(&path),
                    )
                    .await?;
                if let Some(bypass) = detail.as_ref().and_then(|rest| BranchRuleset::from_rest(rest).bypass) {
                    view.bypass = Some(bypass);
                }
            }
            views.push(view);
        }
        Ok(Some(views))
    }

    /// The default branch's classic protection through REST: one request
    /// per repository, and a 404 (no ETag) for every unprotected branch.
    async fn rest_protection(&self, base: &str, branch: &str, full_name: &str) -> Result<Protection, HttpError> {
        let path = format!("{base}/branches/{}/protection", path_segment(branch));
        match self.get::<BranchProtection>(&path).await {
            Ok(protection) => Ok(Protection::Protected(protection)),
            // GitHub's answer for a branch without a rule ("Branch not
            // protected") and for an empty repository.
            Err(HttpError::NotFound { .. }) => Ok(Protection::Unprotected),
            Err(HttpError::Permission { .. }) => {
                self.skip("branch protection (needs admin on the repository)", full_name);
                Ok(Protection::Unknown)
            }
            Err(err) => Err(err),
        }
    }

    /// Default-branch protection, rulesets and deploy-key counts of every
    /// repository, 100 repositories per GraphQL query; answers in the
    /// repositories' order (`None` for one GraphQL would not answer for).
    /// `None` as a whole when GraphQL is unavailable (404/403, as on some
    /// GitHub Enterprise Server set-ups): the REST endpoints are used then,
    /// with a warning.
    async fn branch_rules(&self, repos: &[Repository]) -> Result<Option<Vec<Option<GqlRepository>>>, HttpError> {
        let mut chunks: Vec<Vec<Repository>> = repos.chunks(GRAPHQL_BATCH).map(<[Repository]>::to_vec).collect();
        if chunks.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let first = chunks.remove(0);
        let mut answers = match self.branch_rules_query(&first).await {
            Ok(answers) => answers,
            Err(err @ (HttpError::NotFound { .. } | HttpError::Permission { .. })) => {
                tracing::warn!(
                    endpoint = %self.inner.http.show(&self.inner.graphql_url),
                    error = %err,
                    "github: GraphQL is not available; reading branch protection through REST \
                     (one more request per repository) and repository rulesets not at all"
                );
                self.skip(
                    "GraphQL (branch protection read through REST; repository rulesets not read)",
                    &self.inner.org,
                );
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let rest = self.each(chunks, |client, chunk| async move { client.branch_rules_query(&chunk).await }).await?;
        answers.extend(rest.into_iter().flatten());
        Ok(Some(answers))
    }

    /// One GraphQL query for up to [`GRAPHQL_BATCH`] repositories. An error
    /// GitHub scopes to one repository (`FORBIDDEN`, `NOT_FOUND`) leaves that
    /// repository to REST; any other error fails the sync, naming the query
    /// and GitHub's message.
    async fn branch_rules_query(&self, repos: &[Repository]) -> Result<Vec<Option<GqlRepository>>, HttpError> {
        let body = branch_rules_body(repos)?;
        let auth = self.auth_headers().await?;
        let headers: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response =
            self.inner.http.send_bytes_with_headers(Method::POST, &self.inner.graphql_url, &body, &headers).await?;
        self.inner.bytes.fetch_add(response.body.len() as u64, Ordering::Relaxed);
        let answer: GraphqlResponse<BTreeMap<String, Option<GqlRepository>>> =
            decode_json(&response.url, &response.body)?;
        let span = match (repos.first(), repos.last()) {
            (Some(first), Some(last)) if repos.len() > 1 => format!("{} … {}", first.full_name, last.full_name),
            (Some(first), _) => first.full_name.clone(),
            _ => String::new(),
        };
        let failure = |message: String| HttpError::Other {
            url: response.url.clone(),
            status: response.status,
            message: format!(
                "GraphQL query `{GRAPHQL_QUERY_NAME}` ({} repositories: {span}) failed: {message}",
                repos.len()
            ),
        };
        let mut denied: HashSet<String> = HashSet::new();
        let mut fatal: Vec<String> = Vec::new();
        for error in &answer.errors {
            let alias = error
                .path
                .first()
                .and_then(serde_json::Value::as_str)
                .filter(|a| alias_index(a).is_some_and(|i| i < repos.len()));
            match (alias, error.kind.as_deref()) {
                (Some(alias), Some("FORBIDDEN" | "NOT_FOUND")) => {
                    denied.insert(alias.to_string());
                }
                _ => {
                    let kind = error.kind.as_deref().unwrap_or("ERROR");
                    let path: Vec<String> =
                        error.path.iter().map(|p| p.to_string().trim_matches('"').to_string()).collect();
                    fatal.push(if path.is_empty() {
                        format!("[{kind}] {}", error.message)
                    } else {
                        format!("[{kind}] {} (at {})", error.message, path.join("."))
                    });
                }
            }
        }
        if !fatal.is_empty() {
            return Err(failure(fatal.join("; ")));
        }
        let Some(mut data) = answer.data else {
            return Err(failure("no data".to_string()));
        };
        let mut out = Vec::with_capacity(repos.len());
        for (i, repo) in repos.iter().enumerate() {
            let alias = format!("r{i}");
            let value = data.remove(&alias).flatten();
            match value {
                Some(found) if denied.contains(&alias) => {
                    // Partly denied: what GitHub did answer may be incomplete.
                    drop(found);
                    self.skip("branch rules through GraphQL (denied; read through REST)", &repo.full_name);
                    out.push(None);
                }
                Some(found) if found.name_with_owner.eq_ignore_ascii_case(&repo.full_name) => out.push(Some(found)),
                Some(found) => {
                    return Err(failure(format!(
                        "alias {alias} answered for {} instead of {}",
                        found.name_with_owner, repo.full_name
                    )));
                }
                None => {
                    // Not visible: never read as "unprotected".
                    self.skip("branch rules through GraphQL (denied; read through REST)", &repo.full_name);
                    out.push(None);
                }
            }
        }
        Ok(out)
    }

    /// The organization's branch rulesets through REST, each read in full
    /// (the listing has no conditions, rules or bypass actors). Every page
    /// goes through the ETag cache: an unchanged re-sync costs only 304s.
    async fn org_rulesets(&self, org_path: &str) -> Result<Option<Vec<BranchRuleset>>, HttpError> {
        let path = format!("{org_path}/rulesets");
        let listing = self.list::<Ruleset>(&path, &[("targets", "branch")]);
        let Some(list) = self
            .optional(
                "organization rulesets through REST (needs admin:org, or Administration: write on the organization)",
                &self.inner.org,
                listing,
            )
            .await?
        else {
            return Ok(None);
        };
        let org_path = org_path.to_string();
        let details = self
            .each(list, move |client, ruleset: Ruleset| {
                let path = format!("{org_path}/rulesets/{}", ruleset.id);
                async move {
                    let subject = ruleset.name.clone();
                    client.optional("organization ruleset details", &subject, client.get::<Ruleset>(&path)).await
                }
            })
            .await?;
        Ok(Some(details.iter().flatten().map(BranchRuleset::from_rest).collect()))
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
    /// listings such as `{ "total_count", "secrets": [...] }`), each page
    /// through the ETag cache. Paging guards (page limit, same origin, no
    /// repeated page) are the shared layer's [`LinkPager`].
    async fn list_map<P, T, F>(&self, path: &str, query: &[(&str, &str)], items_of: F) -> Result<Vec<T>, HttpError>
    where
        P: DeserializeOwned,
        F: Fn(P) -> Vec<T>,
    {
        let mut full_query = query.to_vec();
        full_query.push(("per_page", PER_PAGE));
        let http = &self.inner.http;
        let mut pager = LinkPager::new(http, path, &full_query)?;
        let mut items = Vec::new();
        while let Some(url) = pager.next_page(http)? {
            let (page, link) = self.fetch::<P>(url.as_str()).await?;
            let page_items = items_of(page);
            if page_items.is_empty() {
                break;
            }
            items.extend(page_items);
            pager.follow(http, link.as_deref())?;
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

/// github.com's API, when no `base_url` is set.
const DEFAULT_API: &str = "https://api.github.com";

/// Repositories per GraphQL query: GitHub's page size, and far below its
/// 500,000-node limit with the connection sizes of [`BRANCH_RULES_FRAGMENT`].
pub const GRAPHQL_BATCH: usize = 100;

/// The operation name, in errors and in the query itself.
const GRAPHQL_QUERY_NAME: &str = "BranchRules";

/// What the batched query reads of each repository. Connection sizes keep
/// a query of 100 repositories near 25 rate-limit points; a truncated
/// connection is detected through `totalCount` and read conservatively.
///
/// Checked field by field against GitHub's published schema:
/// `octokit/graphql-schema` `schema.graphql` at commit 82ff2d47 (file last
/// changed in 597478f9, 2025-02-27), and `github/docs`
/// `src/graphql/data/fpt/schema.docs.graphql` at commit 0279b646 for the
/// ruleset types. `Repository`: `nameWithOwner: String!`,
/// `viewerCanAdminister: Boolean!`, `deployKeys: DeployKeyConnection!`,
/// `defaultBranchRef: Ref`, `rulesets(first, includeParents: Boolean =
/// true): RepositoryRulesetConnection`. `Ref`: `name`,
/// `branchProtectionRule: BranchProtectionRule`. `BranchProtectionRule`:
/// `pattern`, `requiresApprovingReviews`, `requiredApprovingReviewCount:
/// Int` (nullable), `isAdminEnforced`, `restrictsPushes`, `lockBranch`,
/// `bypassPullRequestAllowances` / `pushAllowances` (non-null connections
/// whose `actor` is `App | Team | User`). `RepositoryRuleset`: `databaseId:
/// Int`, `name`, `target: RepositoryRulesetTarget` (nullable), `enforcement:
/// RuleEnforcement!` (`ACTIVE`, `DISABLED`, `EVALUATE`), `source: RuleSource!`
/// (`Enterprise | Organization | Repository`), `conditions:
/// RepositoryRuleConditions!` with `refName { include exclude }`, `rules`
/// and `bypassActors` (nullable connections). `RepositoryRule`: `type:
/// RepositoryRuleType!`, `parameters: RuleParameters` (a union: hence the
/// inline fragment on `PullRequestParameters`, whose
/// `requiredApprovingReviewCount` is `Int!`). `RepositoryRulesetBypassActor`:
/// `bypassMode` (`ALWAYS`, `PULL_REQUEST`), `organizationAdmin`, `deployKey`,
/// `enterpriseOwner` (`Boolean!`), `repositoryRoleDatabaseId: Int`,
/// `repositoryRoleName: String`, `actor: BypassActor`, whose members are only
/// `App | Team`: a `User` bypass actor cannot be named here (a spread
/// `... on User` would not even validate) and is read through REST.
pub const BRANCH_RULES_FRAGMENT: &str = "fragment BranchRules on Repository { nameWithOwner viewerCanAdminister \
deployKeys { totalCount } \
defaultBranchRef { name branchProtectionRule { pattern requiresApprovingReviews requiredApprovingReviewCount \
isAdminEnforced restrictsPushes lockBranch \
bypassPullRequestAllowances(first: 100) { totalCount nodes { actor { __typename ... on User { login } ... on Team { slug } ... on App { slug } } } } \
pushAllowances(first: 100) { totalCount nodes { actor { __typename ... on User { login } ... on Team { slug } ... on App { slug } } } } } } \
rulesets(first: 10, includeParents: true) { totalCount nodes { databaseId name target enforcement \
source { __typename } conditions { refName { include exclude } } \
rules(first: 25) { totalCount nodes { type parameters { __typename ... on PullRequestParameters { requiredApprovingReviewCount } } } } \
bypassActors(first: 25) { totalCount nodes { bypassMode organizationAdmin deployKey enterpriseOwner \
repositoryRoleDatabaseId repositoryRoleName actor { __typename ... on App { slug } ... on Team { slug } } } } } } }";

/// The GraphQL endpoint for a REST base URL: GitHub Enterprise Server
/// serves REST at `https://HOST/api/v3` and GraphQL at
/// `https://HOST/api/graphql`; github.com (and a proxy or mock with a bare
/// base) at `{base}/graphql`.
pub fn graphql_endpoint(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    match base.strip_suffix("/api/v3") {
        Some(host) => format!("{host}/api/graphql"),
        None => format!("{base}/graphql"),
    }
}

/// The request body: a read-only `query` (never a mutation) with one
/// aliased `repository` field per repository, owner and name passed as
/// variables (never spliced into the document).
fn branch_rules_body(repos: &[Repository]) -> Result<Vec<u8>, HttpError> {
    let mut declarations = Vec::with_capacity(repos.len() * 2);
    let mut fields = Vec::with_capacity(repos.len());
    let mut variables = serde_json::Map::new();
    for (i, repo) in repos.iter().enumerate() {
        declarations.push(format!("$o{i}: String!, $n{i}: String!"));
        fields.push(format!("r{i}: repository(owner: $o{i}, name: $n{i}) {{ ...BranchRules }}"));
        variables.insert(format!("o{i}"), repo.owner.login.clone().into());
        variables.insert(format!("n{i}"), repo.name.clone().into());
    }
    let query = format!(
        "query {GRAPHQL_QUERY_NAME}({}) {{ {} }} {BRANCH_RULES_FRAGMENT}",
        declarations.join(", "),
        fields.join(" ")
    );
    #[derive(serde::Serialize)]
    struct Body<'a> {
        query: &'a str,
        variables: serde_json::Map<String, serde_json::Value>,
    }
    serde_json::to_vec(&Body { query: &query, variables }).map_err(|e| HttpError::Invalid {
        url: "graphql".to_string(),
        message: format!("cannot encode the query: {e}"),
    })
}

/// `r17` → 17.
fn alias_index(alias: &str) -> Option<usize> {
    alias.strip_prefix('r').and_then(|n| n.parse().ok())
}

/// The classic rule GraphQL shows, as the REST shape the mapping reads.
/// `None` when GraphQL cannot settle it: no rule but the credential does
/// not administer the repository (a rule would be hidden), or allowance
/// lists longer than one page. REST decides then.
pub fn graphql_protection(repo: &GqlRepository) -> Option<Protection> {
    let Some(branch) = &repo.default_branch_ref else {
        // An empty repository (the first push lands unreviewed), unless the
        // credential may simply not read refs.
        return repo.viewer_can_administer.then_some(Protection::Unprotected);
    };
    let Some(rule) = &branch.branch_protection_rule else {
        return repo.viewer_can_administer.then_some(Protection::Unprotected);
    };
    if !rule.bypass_pull_request_allowances.complete() || !rule.push_allowances.complete() {
        return None;
    }
    let actors = |connection: &GqlConnection<GqlAllowance>| {
        let mut actors = Actors::default();
        for actor in connection.nodes.iter().flatten().filter_map(|a| a.actor.as_ref()) {
            match actor {
                GqlActor::User { login } => actors.users.push(Login { login: login.clone() }),
                GqlActor::Team { slug } => actors.teams.push(TeamRef { id: 0, slug: slug.clone() }),
                GqlActor::App { slug } => actors.apps.push(AppRef { slug: Some(slug.clone()) }),
                GqlActor::Other => {}
            }
        }
        actors
    };
    Some(Protection::Protected(BranchProtection {
        enforce_admins: Some(Flag { enabled: rule.is_admin_enforced }),
        required_pull_request_reviews: rule.requires_approving_reviews.then(|| RequiredReviews {
            required_approving_review_count: Some(rule.required_approving_review_count.unwrap_or(1)),
            bypass_pull_request_allowances: Some(actors(&rule.bypass_pull_request_allowances)),
        }),
        restrictions: rule.restricts_pushes.then(|| actors(&rule.push_allowances)),
        lock_branch: Some(Flag { enabled: rule.lock_branch }),
    }))
}
