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

/// A ruleset as `GET /orgs/{org}/rulesets/{id}` returns it (the listing
/// `GET /orgs/{org}/rulesets` has only `id`, `name`, `enforcement`…: each
/// ruleset is read again for its conditions, rules and bypass actors).
#[derive(Clone, Debug, Deserialize)]
pub struct Ruleset {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// `branch`, `tag`, `push` or `repository` (absent in some listings).
    #[serde(default)]
    pub target: Option<String>,
    /// `Repository`, `Organization` or `Enterprise`.
    #[serde(default)]
    pub source_type: Option<String>,
    /// `active`, `evaluate` or `disabled` (GitHub's own examples also show
    /// `enabled`: anything but `active` enforces nothing).
    pub enforcement: String,
    /// Who may bypass it. Absent unless the caller may edit the ruleset.
    #[serde(default)]
    pub bypass_actors: Option<Vec<RulesetBypassActor>>,
    /// Which repositories and refs it applies to.
    #[serde(default)]
    pub conditions: Option<RulesetConditions>,
    /// Its rules.
    #[serde(default)]
    pub rules: Option<Vec<RulesetRule>>,
}

/// `repository-ruleset-bypass-actor`.
#[derive(Clone, Debug, Deserialize)]
pub struct RulesetBypassActor {
    /// The team, App, user or repository role id (`null` for
    /// `OrganizationAdmin` and `DeployKey`).
    #[serde(default)]
    pub actor_id: Option<u64>,
    /// `Integration`, `OrganizationAdmin`, `RepositoryRole`, `Team`,
    /// `DeployKey` or `User`.
    pub actor_type: String,
    /// `always`, `pull_request` or `exempt`: each lets the actor merge a
    /// pull request without the required approvals.
    #[serde(default)]
    pub bypass_mode: Option<String>,
}

/// Ruleset conditions (`ref_name`, and for organization rulesets one of
/// `repository_name`, `repository_id`, `repository_property`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RulesetConditions {
    /// Branches (`refs/heads/…` patterns, `~DEFAULT_BRANCH`, `~ALL`).
    #[serde(default)]
    pub ref_name: Option<Patterns>,
    /// Repositories by name pattern (`~ALL`).
    #[serde(default)]
    pub repository_name: Option<Patterns>,
    /// Repositories by id.
    #[serde(default)]
    pub repository_id: Option<RepositoryIds>,
    /// Repositories by custom property: not evaluated here.
    #[serde(default)]
    pub repository_property: Option<serde_json::Value>,
}

/// `include` / `exclude` patterns.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Patterns {
    /// One must match.
    #[serde(default)]
    pub include: Vec<String>,
    /// None may match.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// `repository_id` condition.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RepositoryIds {
    /// Repository ids.
    #[serde(default)]
    pub repository_ids: Vec<u64>,
}

/// One rule of a ruleset; what each type means here is [`rule_effect`].
#[derive(Clone, Debug, Deserialize)]
pub struct RulesetRule {
    /// `pull_request`, `update`, `required_status_checks`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Its parameters (`required_approving_review_count` for
    /// `pull_request`).
    #[serde(default)]
    pub parameters: Option<serde_json::Value>,
}

/// What one ruleset rule means for the question the `bypass-review` action
/// answers: who can land a change on the branch without an approving
/// review.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleEffect {
    /// An approving review from someone else is needed, unless bypassed
    /// (`pull_request`; how many approvals is in its parameters, and 0
    /// asks for a pull request but no review).
    Review,
    /// Nobody but the ruleset's bypass actors may update the ref at all.
    BypassOnly,
    /// Constrains how or what lands, never who may land it unreviewed.
    Neutral,
}

/// The effect of a rule type: REST's `type` (`update`) or GraphQL's
/// `RepositoryRuleType` (`UPDATE`), in any case. A type this build does not
/// know is [`RuleEffect::Neutral`]: reading it as a restriction could hide
/// a bypass, reading it as none can only show one too many.
pub fn rule_effect(kind: &str) -> RuleEffect {
    match kind.to_ascii_lowercase().as_str() {
        "pull_request" => RuleEffect::Review,
        // "Only allow users with bypass permission to update matching
        // refs": a merged pull request updates the ref too, so nobody else
        // lands anything, reviewed or not. Its one parameter,
        // `update_allows_fetch_and_merge`, lets a fork sync from upstream:
        // the upstream's commits, not the pusher's own change.
        "update" => RuleEffect::BypassOnly,
        // GraphQL only ("Branch is read-only. Users cannot push to the
        // branch."): the same as `update` for everyone but bypass actors.
        "lock_branch" => RuleEffect::BypassOnly,
        // About creating or deleting the ref, or rewriting its history: an
        // existing default branch still takes ordinary pushes.
        "creation" | "deletion" | "non_fast_forward" => RuleEffect::Neutral,
        // Checks, deployments, scans and queues gate a change on machines
        // the pusher's own commits drive (or on Copilot), not on a person's
        // approval; `required_workflow_status_checks` asks for a pull
        // request but no review.
        "required_status_checks"
        | "required_workflow_status_checks"
        | "workflows"
        | "code_scanning"
        | "secret_scanning"
        | "required_deployments"
        | "merge_queue"
        | "merge_queue_locked_ref"
        | "copilot_code_review"
        | "license_compliance_scanning" => RuleEffect::Neutral,
        // What a commit may look like or contain, and how it merges.
        "required_linear_history"
        | "required_signatures"
        | "required_review_thread_resolution"
        | "commit_message_pattern"
        | "commit_author_email_pattern"
        | "committer_email_pattern"
        | "branch_name_pattern"
        | "tag_name_pattern"
        | "file_path_restriction"
        | "file_extension_restriction"
        | "max_file_path_length"
        | "max_file_size"
        | "max_ref_updates"
        | "workflow_updates" => RuleEffect::Neutral,
        // GraphQL enum values with no REST rule and no documented meaning
        // for a branch (`authorization`, `tag`), and any future type.
        _ => RuleEffect::Neutral,
    }
}

/// A branch ruleset as the mapping sees it, whichever API it came from
/// (REST for organization rulesets, GraphQL for a repository's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchRuleset {
    /// Ruleset id (`databaseId` in GraphQL).
    pub id: u64,
    /// Name, for the branch node's attributes.
    pub name: String,
    /// `Organization`, `Repository` or `Enterprise`.
    pub source_type: String,
    /// Lower case: `branch`, `tag`, `push`, `repository`.
    pub target: String,
    /// Lower case: `active`, `evaluate`, `disabled`.
    pub enforcement: String,
    /// `ref_name.include` (`None`: no ref condition, the ruleset targets nothing).
    pub ref_include: Vec<String>,
    /// `ref_name.exclude`.
    pub ref_exclude: Vec<String>,
    /// Organization rulesets read through REST: which repositories it
    /// targets (`None`: GitHub already resolved it for this repository).
    pub repositories: Option<RepositoryTarget>,
    /// Highest `required_approving_review_count` of its `pull_request`
    /// rules (`None`: no pull request rule).
    pub required_approvals: Option<u32>,
    /// It has an `update` rule (or GraphQL's `LOCK_BRANCH`): only its
    /// bypass actors may update a branch it applies to, reviewed or not.
    pub restricts_updates: bool,
    /// Whether every rule was read (a truncated list may hide a
    /// `pull_request` rule).
    pub rules_complete: bool,
    /// Who may bypass it (`None`: not visible to this credential, or
    /// truncated: then it is assumed to protect nobody).
    pub bypass: Option<Vec<Bypass>>,
}

/// The repositories an organization ruleset targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepositoryTarget {
    /// Name patterns (`~ALL`, fnmatch).
    Names {
        /// One must match.
        include: Vec<String>,
        /// None may match.
        exclude: Vec<String>,
    },
    /// Repository ids.
    Ids(Vec<u64>),
    /// Custom properties: not evaluated.
    Properties,
}

/// One bypass actor, normalized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bypass {
    /// Organization owners.
    OrganizationAdmin,
    /// Everyone with a repository role (1 read, 2 maintain, 3 triage,
    /// 4 write, 5 admin; higher ids are custom roles, known by name).
    RepositoryRole {
        /// Role id.
        id: Option<u64>,
        /// Role name (GraphQL only).
        name: Option<String>,
    },
    /// A team, by id (REST) or slug (GraphQL).
    Team {
        /// Team id.
        id: Option<u64>,
        /// Team slug.
        slug: Option<String>,
    },
    /// A GitHub App, by App id (REST) or slug (GraphQL).
    App {
        /// App id.
        id: Option<u64>,
        /// App slug.
        slug: Option<String>,
    },
    /// A user, by id.
    User {
        /// User id.
        id: Option<u64>,
    },
    /// Every deploy key of the repository.
    DeployKey,
    /// Enterprise owners: not in the organization's graph.
    EnterpriseOwner,
    /// An actor this build cannot name: a REST `actor_type` it does not
    /// know, or a GraphQL actor without a name (a user: GraphQL has no
    /// form for one). A ruleset with one is not counted as protection.
    Other(String),
}

impl BranchRuleset {
    /// From the REST shape.
    pub fn from_rest(ruleset: &Ruleset) -> BranchRuleset {
        let conditions = ruleset.conditions.clone().unwrap_or_default();
        let (ref_include, ref_exclude) = conditions.ref_name.map(|p| (p.include, p.exclude)).unwrap_or_default();
        let repositories = if let Some(names) = conditions.repository_name {
            Some(RepositoryTarget::Names { include: names.include, exclude: names.exclude })
        } else if let Some(ids) = conditions.repository_id {
            Some(RepositoryTarget::Ids(ids.repository_ids))
        } else if conditions.repository_property.is_some() {
            Some(RepositoryTarget::Properties)
        } else {
            None
        };
        let rules = ruleset.rules.as_deref().unwrap_or_default();
        let approvals = rules.iter().filter(|r| rule_effect(&r.kind) == RuleEffect::Review).map(|r| {
            r.parameters
                .as_ref()
                .and_then(|p| p.get("required_approving_review_count"))
                .and_then(serde_json::Value::as_u64)
                .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
        });
        let bypass = ruleset.bypass_actors.as_ref().map(|actors| {
            actors
                .iter()
                .map(|actor| match actor.actor_type.as_str() {
                    "OrganizationAdmin" => Bypass::OrganizationAdmin,
                    "RepositoryRole" => Bypass::RepositoryRole { id: actor.actor_id, name: None },
                    "Team" => Bypass::Team { id: actor.actor_id, slug: None },
                    "Integration" => Bypass::App { id: actor.actor_id, slug: None },
                    "User" => Bypass::User { id: actor.actor_id },
                    "DeployKey" => Bypass::DeployKey,
                    "EnterpriseOwner" => Bypass::EnterpriseOwner,
                    other => Bypass::Other(other.to_string()),
                })
                .collect()
        });
        BranchRuleset {
            id: ruleset.id,
            name: ruleset.name.clone(),
            source_type: ruleset.source_type.clone().unwrap_or_else(|| "Organization".to_string()),
            target: ruleset.target.clone().unwrap_or_else(|| "branch".to_string()).to_lowercase(),
            enforcement: ruleset.enforcement.to_lowercase(),
            ref_include,
            ref_exclude,
            repositories,
            required_approvals: approvals.max(),
            restricts_updates: rules.iter().any(|r| rule_effect(&r.kind) == RuleEffect::BypassOnly),
            rules_complete: ruleset.rules.is_some(),
            bypass,
        }
    }
}

/// A GraphQL answer: `data` and/or `errors` (GitHub answers HTTP 200 for
/// both).
#[derive(Debug, Deserialize)]
pub struct GraphqlResponse<T> {
    /// The data, `null` when the query failed as a whole.
    #[serde(default)]
    pub data: Option<T>,
    /// Errors; each may name the `path` it concerns.
    #[serde(default)]
    pub errors: Vec<GraphqlError>,
}

/// One GraphQL error.
#[derive(Clone, Debug, Deserialize)]
pub struct GraphqlError {
    /// GitHub's message.
    pub message: String,
    /// `FORBIDDEN`, `NOT_FOUND`, `RATE_LIMITED`, … (GitHub's extension).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Where in `data` (aliases, field names, indexes).
    #[serde(default)]
    pub path: Vec<serde_json::Value>,
}

/// A connection's page: `totalCount` tells whether `nodes` is complete.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "T: Deserialize<'de>"))]
pub struct GqlConnection<T> {
    /// Items in the whole connection.
    #[serde(default)]
    pub total_count: u64,
    /// This page (items may be `null` when not visible).
    #[serde(default)]
    pub nodes: Vec<Option<T>>,
}

impl<T> GqlConnection<T> {
    /// Whether `nodes` holds the whole connection.
    pub fn complete(&self) -> bool {
        self.nodes.len() as u64 >= self.total_count && self.nodes.iter().all(Option::is_some)
    }
}

/// What the batched query reads of one repository.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlRepository {
    /// `OWNER/NAME`: checked against the alias it answers for.
    pub name_with_owner: String,
    /// Whether the credential administers it (sees protection, keys and
    /// bypass actors): when not, an empty answer proves nothing.
    #[serde(default)]
    pub viewer_can_administer: bool,
    /// Deploy keys (only the count: the REST listing has `added_by` and
    /// `last_used`, so it is read only when there are keys).
    #[serde(default)]
    pub deploy_keys: Option<GqlCount>,
    /// The default branch (`null`: an empty repository).
    #[serde(default)]
    pub default_branch_ref: Option<GqlRef>,
    /// Rulesets applying to the repository, its organization's included.
    #[serde(default)]
    pub rulesets: Option<GqlConnection<GqlRuleset>>,
}

/// `{ totalCount }`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlCount {
    /// The count.
    pub total_count: u64,
}

/// The default branch.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlRef {
    /// Branch name.
    pub name: String,
    /// Its classic protection rule (`null`: none, or not visible).
    #[serde(default)]
    pub branch_protection_rule: Option<GqlProtectionRule>,
}

/// `BranchProtectionRule`: what decides landing without a review.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlProtectionRule {
    /// The rule's branch pattern.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Whether approving reviews are required.
    #[serde(default)]
    pub requires_approving_reviews: bool,
    /// How many.
    #[serde(default)]
    pub required_approving_review_count: Option<u32>,
    /// `enforce_admins`.
    #[serde(default)]
    pub is_admin_enforced: bool,
    /// Whether only `pushAllowances` may push.
    #[serde(default)]
    pub restricts_pushes: bool,
    /// A locked branch takes no pushes.
    #[serde(default)]
    pub lock_branch: bool,
    /// Who may merge without the required reviews.
    pub bypass_pull_request_allowances: GqlConnection<GqlAllowance>,
    /// Who may push when pushes are restricted.
    pub push_allowances: GqlConnection<GqlAllowance>,
}

/// An allowance's actor.
#[derive(Clone, Debug, Deserialize)]
pub struct GqlAllowance {
    /// `null` when the actor is not visible.
    #[serde(default)]
    pub actor: Option<GqlActor>,
}

/// A user, team or App named by a rule.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "__typename")]
pub enum GqlActor {
    /// A user.
    User {
        /// Login.
        login: String,
    },
    /// A team.
    Team {
        /// Slug.
        slug: String,
    },
    /// An App.
    App {
        /// Slug.
        slug: String,
    },
    /// Anything else (an enterprise team).
    #[serde(other)]
    Other,
}

/// `RepositoryRuleset`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlRuleset {
    /// REST id.
    pub database_id: u64,
    /// Name.
    pub name: String,
    /// `BRANCH`, `TAG`, `PUSH`, `REPOSITORY`.
    #[serde(default)]
    pub target: Option<String>,
    /// `ACTIVE`, `EVALUATE`, `DISABLED`.
    pub enforcement: String,
    /// Where it is defined.
    #[serde(default)]
    pub source: Option<GqlSource>,
    /// Ref conditions.
    #[serde(default)]
    pub conditions: Option<GqlConditions>,
    /// Rules.
    #[serde(default)]
    pub rules: Option<GqlConnection<GqlRule>>,
    /// Bypass actors (empty unless the credential may edit the ruleset).
    #[serde(default)]
    pub bypass_actors: Option<GqlConnection<GqlBypassActor>>,
}

/// `RuleSource`.
#[derive(Clone, Debug, Deserialize)]
pub struct GqlSource {
    /// `Organization`, `Repository` or `Enterprise`.
    #[serde(rename = "__typename")]
    pub typename: String,
}

/// `RepositoryRuleConditions`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlConditions {
    /// Ref patterns.
    #[serde(default)]
    pub ref_name: Option<Patterns>,
}

/// `RepositoryRule`.
#[derive(Clone, Debug, Deserialize)]
pub struct GqlRule {
    /// `RepositoryRuleType`: `PULL_REQUEST`, `UPDATE`, … (see [`rule_effect`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// The `RuleParameters` union: `{ __typename,
    /// requiredApprovingReviewCount }` for `PullRequestParameters`, only
    /// `__typename` for the other members (the query asks nothing else),
    /// `null` for types without parameters (`DELETION`, `CREATION`, …).
    #[serde(default)]
    pub parameters: Option<serde_json::Value>,
}

/// `RepositoryRulesetBypassActor`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlBypassActor {
    /// `ALWAYS` or `PULL_REQUEST` (nullable; REST's third mode, `exempt`,
    /// has no GraphQL value). Every mode lets the actor land a change
    /// without the approvals, so it is not read.
    #[serde(default)]
    pub bypass_mode: Option<String>,
    /// Organization owners.
    #[serde(default)]
    pub organization_admin: bool,
    /// Deploy keys.
    #[serde(default)]
    pub deploy_key: bool,
    /// Enterprise owners.
    #[serde(default)]
    pub enterprise_owner: bool,
    /// A repository role's id.
    #[serde(default)]
    pub repository_role_database_id: Option<u64>,
    /// A repository role's name.
    #[serde(default)]
    pub repository_role_name: Option<String>,
    /// A team or App: the schema's `BypassActor` union is `App | Team`, so
    /// a `User` bypass actor (REST `actor_type: "User"`) has no GraphQL
    /// form and shows as an actor with no flag, no role and `actor: null`.
    #[serde(default)]
    pub actor: Option<GqlActor>,
}

impl GqlBypassActor {
    /// The normalized actor; [`Bypass::Other`] when GraphQL does not name
    /// it (a user, or a team or App the credential cannot see): REST does
    /// (see [`GqlRuleset::bypass_unsettled`]).
    pub fn to_bypass(&self) -> Bypass {
        if self.organization_admin {
            Bypass::OrganizationAdmin
        } else if self.deploy_key {
            Bypass::DeployKey
        } else if self.enterprise_owner {
            Bypass::EnterpriseOwner
        } else if self.repository_role_database_id.is_some() || self.repository_role_name.is_some() {
            Bypass::RepositoryRole { id: self.repository_role_database_id, name: self.repository_role_name.clone() }
        } else {
            match &self.actor {
                Some(GqlActor::Team { slug }) => Bypass::Team { id: None, slug: Some(slug.clone()) },
                Some(GqlActor::App { slug }) => Bypass::App { id: None, slug: Some(slug.clone()) },
                // Not a member of `BypassActor` today; named by REST if it
                // ever appears.
                Some(GqlActor::User { .. }) => Bypass::Other("User".to_string()),
                Some(GqlActor::Other) | None => Bypass::Other("unnamed".to_string()),
            }
        }
    }
}

impl GqlRuleset {
    /// Whether GraphQL shows bypass actors it cannot settle: a list longer
    /// than the page read, or an actor it does not name (a user). The
    /// ruleset's REST detail names them all (`actor_type` and `actor_id`).
    /// A hidden list (`null`) is not unsettled: REST hides it too.
    pub fn bypass_unsettled(&self) -> bool {
        self.bypass_actors.as_ref().is_some_and(|c| {
            !c.complete() || c.nodes.iter().flatten().any(|a| matches!(a.to_bypass(), Bypass::Other(_)))
        })
    }

    /// The mapping's view of it.
    pub fn to_branch_ruleset(&self) -> BranchRuleset {
        let (ref_include, ref_exclude) = self
            .conditions
            .as_ref()
            .and_then(|c| c.ref_name.clone())
            .map(|p| (p.include, p.exclude))
            .unwrap_or_default();
        let rules = self.rules.as_ref();
        let rule_list = || rules.into_iter().flat_map(|c| c.nodes.iter().flatten());
        let approvals = rule_list().filter(|r| rule_effect(&r.kind) == RuleEffect::Review).map(|r| {
            r.parameters
                .as_ref()
                .and_then(|p| p.get("requiredApprovingReviewCount"))
                .and_then(serde_json::Value::as_u64)
                .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
        });
        let restricts_updates = rule_list().any(|r| rule_effect(&r.kind) == RuleEffect::BypassOnly);
        let bypass = self
            .bypass_actors
            .as_ref()
            .filter(|c| c.complete())
            .map(|c| c.nodes.iter().flatten().map(GqlBypassActor::to_bypass).collect());
        BranchRuleset {
            id: self.database_id,
            name: self.name.clone(),
            source_type: self.source.as_ref().map_or_else(|| "Repository".to_string(), |s| s.typename.clone()),
            target: self.target.clone().unwrap_or_else(|| "BRANCH".to_string()).to_lowercase(),
            enforcement: self.enforcement.to_lowercase(),
            ref_include,
            ref_exclude,
            repositories: None,
            required_approvals: approvals.max(),
            restricts_updates,
            rules_complete: rules.is_some_and(GqlConnection::complete),
            bypass,
        }
    }
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
    /// Branch rulesets applying to the repository, its organization's
    /// included, from GraphQL (`None`: not read; the organization's
    /// rulesets read through REST are then matched by their conditions).
    pub rulesets: Option<Vec<BranchRuleset>>,
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
    /// The organization's branch rulesets through REST, with bypass actors
    /// when visible (`None`: not permitted, or not available).
    pub org_rulesets: Option<Vec<BranchRuleset>>,
}
