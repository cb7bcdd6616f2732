//! The GitHub REST API's objects, as far as the connector reads them.
//!
//! Lenient where GitHub is (unknown fields ignored, optional and nullable
//! fields are `Option`), strict on what the mapping cannot do without (ids,
//! logins, slugs, roles, timestamps): a missing one fails the sync with its
//! JSON path rather than loading half a record. octocrab's models are used
//! where they match the wire format exactly (deploy keys, Actions secrets);
//! its user, team, repository and installation models lack fields we need
//! (`role_name`, `parent`, the full permission map) or reject values the API
//! documents as nullable (`gravatar_id`), so those are ours.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

pub use octocrab::models::orgs::secrets::{OrganizationSecret, OrganizationSecrets};
pub use octocrab::models::repos::DeployKey;
pub use octocrab::models::repos::secrets::{RepositorySecret, RepositorySecrets};

/// `simple-user` (members, outside collaborators, team members, PAT owners).
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    /// Login: the node key.
    pub login: String,
    /// Numeric id.
    pub id: u64,
    /// `User`, `Bot` or `Organization`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Display name, when the listing includes it.
    #[serde(default)]
    pub name: Option<String>,
    /// Public email, when visible.
    #[serde(default)]
    pub email: Option<String>,
    /// GitHub staff account.
    #[serde(default)]
    pub site_admin: bool,
}

/// `GET /orgs/{org}`: the organization (owner-only fields are `null` for
/// other tokens).
#[derive(Clone, Debug, Deserialize)]
pub struct Organization {
    /// Login.
    pub login: String,
    /// Numeric id.
    pub id: u64,
    /// Base permission of every member on every repository: `read`,
    /// `write`, `admin` or `none` (`null` unless the token is an owner's).
    #[serde(default)]
    pub default_repository_permission: Option<String>,
    /// Whether members must use two-factor authentication.
    #[serde(default)]
    pub two_factor_requirement_enabled: Option<bool>,
}

/// A team as `GET /orgs/{org}/teams` lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct Team {
    /// Numeric id.
    pub id: u64,
    /// Slug: the node key.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// `secret` or `closed`.
    #[serde(default)]
    pub privacy: Option<String>,
    /// The parent team, whose access this team inherits.
    #[serde(default)]
    pub parent: Option<TeamRef>,
}

/// A team named inside another object (a parent, a bypass allowance).
#[derive(Clone, Debug, Deserialize)]
pub struct TeamRef {
    /// Numeric id.
    pub id: u64,
    /// Slug.
    pub slug: String,
}

/// The permission flags GitHub attaches to a repository or collaborator.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct Permissions {
    /// Admin.
    #[serde(default)]
    pub admin: bool,
    /// Maintain.
    #[serde(default)]
    pub maintain: bool,
    /// Write (`push`).
    #[serde(default)]
    pub push: bool,
    /// Triage.
    #[serde(default)]
    pub triage: bool,
    /// Read (`pull`).
    #[serde(default)]
    pub pull: bool,
}

/// The account a repository belongs to.
#[derive(Clone, Debug, Deserialize)]
pub struct Account {
    /// Login.
    pub login: String,
}

/// `minimal-repository` (org repositories, team repositories, installation
/// and PAT repositories).
#[derive(Clone, Debug, Deserialize)]
pub struct Repository {
    /// Numeric id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// `OWNER/NAME`: the node key.
    pub full_name: String,
    /// Owner.
    pub owner: Account,
    /// Private.
    #[serde(default)]
    pub private: bool,
    /// `public`, `private` or `internal`.
    #[serde(default)]
    pub visibility: Option<String>,
    /// Archived (read-only).
    #[serde(default)]
    pub archived: bool,
    /// Disabled.
    #[serde(default)]
    pub disabled: bool,
    /// A fork.
    #[serde(default)]
    pub fork: bool,
    /// Default branch (absent for some empty repositories).
    #[serde(default)]
    pub default_branch: Option<String>,
    /// In a team's listing: the team's permissions on the repository.
    #[serde(default)]
    pub permissions: Option<Permissions>,
    /// In a team's listing: the team's role on the repository.
    #[serde(default)]
    pub role_name: Option<String>,
}

/// `GET /repos/{owner}/{repo}/collaborators` item.
#[derive(Clone, Debug, Deserialize)]
pub struct Collaborator {
    /// Login.
    pub login: String,
    /// Numeric id.
    pub id: u64,
    /// `User` or `Bot`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Public email, when visible.
    #[serde(default)]
    pub email: Option<String>,
    /// Display name, when included.
    #[serde(default)]
    pub name: Option<String>,
    /// Base-role permission flags.
    #[serde(default)]
    pub permissions: Option<Permissions>,
    /// Highest role after all grants; may be a custom role's name.
    pub role_name: String,
}

/// `GET /orgs/{org}/installations` page.
#[derive(Clone, Debug, Deserialize)]
pub struct Installations {
    /// Total across pages.
    pub total_count: u64,
    /// This page.
    pub installations: Vec<Installation>,
}

/// An App installation on the organization.
#[derive(Clone, Debug, Deserialize)]
pub struct Installation {
    /// Installation id.
    pub id: u64,
    /// App id.
    pub app_id: u64,
    /// App slug: the node key.
    pub app_slug: String,
    /// `all` or `selected`.
    pub repository_selection: String,
    /// Permission → `read` / `write` / `admin`.
    #[serde(default)]
    pub permissions: BTreeMap<String, String>,
    /// Webhook events.
    #[serde(default)]
    pub events: Vec<String>,
    /// Installed at.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Suspended at (a suspended App cannot act).
    #[serde(default)]
    pub suspended_at: Option<DateTime<Utc>>,
    /// Who suspended it.
    #[serde(default)]
    pub suspended_by: Option<User>,
}

/// `GET /installation/repositories` and
/// `GET /user/installations/{id}/repositories` page.
#[derive(Clone, Debug, Deserialize)]
pub struct InstallationRepositories {
    /// Total across pages.
    pub total_count: u64,
    /// This page.
    pub repositories: Vec<Repository>,
}

/// A fine-grained PAT's permissions.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PatPermissions {
    /// Organization permissions.
    #[serde(default)]
    pub organization: BTreeMap<String, String>,
    /// Repository permissions.
    #[serde(default)]
    pub repository: BTreeMap<String, String>,
    /// Other permissions.
    #[serde(default)]
    pub other: BTreeMap<String, String>,
}

/// `GET /orgs/{org}/personal-access-tokens` item: a fine-grained PAT's
/// access to the organization.
#[derive(Clone, Debug, Deserialize)]
pub struct PatGrant {
    /// The grant's id (`pat_id` of the revoke call): the node key.
    pub id: u64,
    /// The token's owner.
    pub owner: User,
    /// `none`, `all` or `subset`.
    pub repository_selection: String,
    /// Permissions.
    #[serde(default)]
    pub permissions: PatPermissions,
    /// When the organization granted access.
    pub access_granted_at: DateTime<Utc>,
    /// The token's id.
    pub token_id: u64,
    /// The token's name.
    pub token_name: String,
    /// Whether the token has expired.
    pub token_expired: bool,
    /// Expiry (`null`: never).
    pub token_expires_at: Option<DateTime<Utc>>,
    /// Last use (`null`: never used).
    pub token_last_used_at: Option<DateTime<Utc>>,
}

/// `GET /orgs/{org}/credential-authorizations` item (SAML SSO orgs).
///
/// `token_last_eight` is deliberately not read: part of a secret.
#[derive(Clone, Debug, Deserialize)]
pub struct CredentialAuthorization {
    /// The user.
    pub login: String,
    /// The authorization's id (revoke with it): the node key.
    pub credential_id: u64,
    /// `personal access token`, `SSH key`, `OAuth app token`, `GitHub app token`.
    pub credential_type: String,
    /// When the credential was authorized for the organization.
    pub credential_authorized_at: DateTime<Utc>,
    /// Last access to the organization (`null`: never).
    pub credential_accessed_at: Option<DateTime<Utc>>,
    /// The credential's own id.
    #[serde(default)]
    pub authorized_credential_id: Option<u64>,
    /// A PAT's note.
    #[serde(default)]
    pub authorized_credential_note: Option<String>,
    /// An SSH key's title.
    #[serde(default)]
    pub authorized_credential_title: Option<String>,
    /// A PAT's expiry.
    #[serde(default)]
    pub authorized_credential_expires_at: Option<DateTime<Utc>>,
    /// A PAT's scopes.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// An SSH key's fingerprint.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// `GET /repos/{owner}/{repo}/branches/{branch}/protection`: only what
/// decides who can land on the branch without an approving review.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct BranchProtection {
    /// Whether the rules bind admins too.
    #[serde(default)]
    pub enforce_admins: Option<Flag>,
    /// Pull requests required before merging (absent: direct pushes allowed).
    #[serde(default)]
    pub required_pull_request_reviews: Option<RequiredReviews>,
    /// Who may push at all (absent: everyone with write).
    #[serde(default)]
    pub restrictions: Option<Actors>,
    /// A locked branch takes no pushes.
    #[serde(default)]
    pub lock_branch: Option<Flag>,
}

/// `{ "enabled": bool }`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct Flag {
    /// Enabled.
    pub enabled: bool,
}

/// `required_pull_request_reviews`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RequiredReviews {
    /// Approvals needed (0–6); absent means GitHub's default of 1.
    #[serde(default)]
    pub required_approving_review_count: Option<u32>,
    /// Who may merge without the required reviews.
    #[serde(default)]
    pub bypass_pull_request_allowances: Option<Actors>,
}

/// Users, teams and Apps named by a protection rule.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Actors {
    /// Users.
    #[serde(default)]
    pub users: Vec<Login>,
    /// Teams.
    #[serde(default)]
    pub teams: Vec<TeamRef>,
    /// Apps.
    #[serde(default)]
    pub apps: Vec<AppRef>,
}

/// An object named by its login.
#[derive(Clone, Debug, Deserialize)]
pub struct Login {
    /// Login.
    pub login: String,
}

/// An App named by a protection rule (`integration`: its `slug` is
/// optional in the schema).
#[derive(Clone, Debug, Deserialize)]
pub struct AppRef {
    /// Slug.
    #[serde(default)]
    pub slug: Option<String>,
}

/// `GET /rate_limit` (free: not counted against the budget).
#[derive(Clone, Debug, Deserialize)]
pub struct RateLimitOverview {
    /// Per-resource budgets.
    pub resources: RateLimitResources,
}

/// The budgets we use.
#[derive(Clone, Debug, Deserialize)]
pub struct RateLimitResources {
    /// The REST budget.
    pub core: RateLimit,
}

/// One budget.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct RateLimit {
    /// Requests per window.
    pub limit: u64,
    /// Left in this window.
    pub remaining: u64,
    /// Window reset, epoch seconds.
    pub reset: u64,
}

/// `POST /app/installations/{id}/access_tokens` answer.
#[derive(Clone, Deserialize)]
pub struct InstallationToken {
    /// The token (a secret: never logged).
    pub token: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for InstallationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallationToken").field("token", &"<redacted>").field("expires_at", &self.expires_at).finish()
    }
}

/// One repository with everything read for it.
#[derive(Clone, Debug)]
pub struct RepoRecords {
    /// The repository.
    pub repo: Repository,
    /// Direct collaborators (`None`: the token may not list them).
    pub collaborators: Option<Vec<Collaborator>>,
    /// Deploy keys (`None`: not readable with this token).
    pub deploy_keys: Option<Vec<DeployKey>>,
    /// Protection of the default branch.
    pub protection: Protection,
    /// Actions secrets (`None`: not readable with this token).
    pub secrets: Option<Vec<RepositorySecret>>,
}

/// What is known about a default branch's protection.
#[derive(Clone, Debug)]
pub enum Protection {
    /// The branch has a protection rule.
    Protected(BranchProtection),
    /// GitHub answered 404: no rule (or an empty repository).
    Unprotected,
    /// Not read: archived repository or no default branch.
    NotApplicable,
    /// The token may not read it (403): nobody is assumed to bypass.
    Unknown,
}

/// One team with its members and repositories.
#[derive(Clone, Debug)]
pub struct TeamRecords {
    /// The team.
    pub team: Team,
    /// Members with the `member` role (includes child teams' members).
    pub members: Vec<User>,
    /// Members with the `maintainer` role.
    pub maintainers: Vec<User>,
    /// Repositories with the team's role on each.
    pub repos: Vec<Repository>,
}

/// An installation with the repositories it may use.
#[derive(Clone, Debug)]
pub struct InstallationRecords {
    /// The installation.
    pub installation: Installation,
    /// `selected` installations: the repositories (`None`: unreadable).
    pub repositories: Option<Vec<Repository>>,
}

/// A PAT grant with its repositories.
#[derive(Clone, Debug)]
pub struct PatRecords {
    /// The grant.
    pub grant: PatGrant,
    /// `subset` grants: the repositories (`None`: unreadable).
    pub repositories: Option<Vec<Repository>>,
}

/// Everything one sync read, before mapping.
#[derive(Clone, Debug)]
pub struct OrgRecords {
    /// The organization.
    pub org: Organization,
    /// Owners (`role=admin`).
    pub owners: Vec<User>,
    /// Members with the `member` role.
    pub members: Vec<User>,
    /// Outside collaborators.
    pub outside_collaborators: Vec<User>,
    /// Teams.
    pub teams: Vec<TeamRecords>,
    /// Repositories.
    pub repos: Vec<RepoRecords>,
    /// App installations (`None`: the token may not list them).
    pub installations: Option<Vec<InstallationRecords>>,
    /// Fine-grained PATs (`None`: needs App auth, or not permitted).
    pub pats: Option<Vec<PatRecords>>,
    /// SAML credential authorizations (`None`: no SSO, or not permitted).
    pub credential_authorizations: Option<Vec<CredentialAuthorization>>,
    /// Organization Actions secrets (`None`: not permitted).
    pub org_secrets: Option<Vec<OrganizationSecret>>,
}
