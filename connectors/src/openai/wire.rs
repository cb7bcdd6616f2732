//! The OpenAI Administration API's records, field names exactly as on the
//! wire (`openai/openai-openapi`, schemas `User`, `Invite`, `Project`,
//! `ProjectUser`, `ProjectServiceAccount`, `ProjectApiKey`, `AdminApiKey`).
//!
//! Only what the mapping reads is declared; unknown fields are ignored and
//! nullable or newer fields are `Option`, so additions to the API do not
//! break a sync. A missing *required* field (an `id`) fails decoding with its
//! JSON path. Timestamps are Unix seconds. No field here holds a secret: the
//! API only ever returns `redacted_value`, a hint it already redacted (as the
//! dashboard shows it).

use serde::Deserialize;

/// `organization.user`.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    /// `user_…`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Organization role: `owner`, `reader` (or `member`); kept open.
    #[serde(default)]
    pub role: Option<String>,
    /// When the user joined the organization.
    #[serde(default)]
    pub added_at: Option<i64>,
    /// Provisioned through the organization's SCIM integration.
    #[serde(default)]
    pub is_scim_managed: Option<bool>,
}

/// `organization.invite`.
#[derive(Clone, Debug, Deserialize)]
pub struct Invite {
    /// `invite-…`.
    pub id: String,
    /// Invited address.
    pub email: String,
    /// Organization role offered.
    #[serde(default)]
    pub role: Option<String>,
    /// `pending`, `accepted` or `expired`.
    pub status: String,
    /// When the invite expires.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Projects the invite would add the person to.
    #[serde(default)]
    pub projects: Vec<InviteProject>,
}

/// One project of an invite.
#[derive(Clone, Debug, Deserialize)]
pub struct InviteProject {
    /// Project id.
    pub id: String,
    /// `member` or `owner`.
    #[serde(default)]
    pub role: Option<String>,
}

/// `organization.project`.
#[derive(Clone, Debug, Deserialize)]
pub struct Project {
    /// `proj_…`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// When the project was archived (archived projects cannot be used).
    #[serde(default)]
    pub archived_at: Option<i64>,
    /// `active` or `archived`.
    #[serde(default)]
    pub status: Option<String>,
}

impl Project {
    /// Whether the project is archived (either field says so).
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some() || self.status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("archived"))
    }
}

/// `organization.project.user`.
#[derive(Clone, Debug, Deserialize)]
pub struct ProjectUser {
    /// The organization user id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// `owner` or `member`.
    pub role: String,
}

/// `organization.project.service_account`.
#[derive(Clone, Debug, Deserialize)]
pub struct ProjectServiceAccount {
    /// `svc_acct_…`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// `owner`, `member` or `none`.
    pub role: String,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// `organization.project.api_key`.
#[derive(Clone, Debug, Deserialize)]
pub struct ProjectApiKey {
    /// `key_…`.
    pub id: String,
    /// The provider's redacted hint (`sk-proj-abc...def`).
    #[serde(default)]
    pub redacted_value: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last use; `null` when never used.
    #[serde(default)]
    pub last_used_at: Option<i64>,
    /// `active` or `inactive`: whether the owner still has project access.
    #[serde(default)]
    pub owner_project_access: Option<String>,
    /// Who the key acts as.
    pub owner: KeyOwner,
}

/// `owner` of a project API key.
#[derive(Clone, Debug, Deserialize)]
pub struct KeyOwner {
    /// `user` or `service_account`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Set when `type` is `user`.
    #[serde(default)]
    pub user: Option<KeyOwnerUser>,
    /// Set when `type` is `service_account`.
    #[serde(default)]
    pub service_account: Option<KeyOwnerServiceAccount>,
}

/// `owner.user` of a project API key.
#[derive(Clone, Debug, Deserialize)]
pub struct KeyOwnerUser {
    /// The organization user id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Project role.
    #[serde(default)]
    pub role: Option<String>,
}

/// `owner.service_account` of a project API key.
#[derive(Clone, Debug, Deserialize)]
pub struct KeyOwnerServiceAccount {
    /// The service account id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Project role.
    #[serde(default)]
    pub role: Option<String>,
}

/// `organization.admin_api_key`.
#[derive(Clone, Debug, Deserialize)]
pub struct AdminApiKey {
    /// `key_…`.
    pub id: String,
    /// The provider's redacted hint (`sk-admin...def`).
    #[serde(default)]
    pub redacted_value: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Expiry; `null` when the key never expires.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Last use; `null` when never used.
    #[serde(default)]
    pub last_used_at: Option<i64>,
    /// Who the key acts as.
    pub owner: AdminKeyOwner,
}

/// `owner` of an admin API key (a flat object, unlike project keys).
#[derive(Clone, Debug, Deserialize)]
pub struct AdminKeyOwner {
    /// `user` or `service_account`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The user or service account id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Organization role.
    #[serde(default)]
    pub role: Option<String>,
}

/// Everything one sync read, in the order the API listed it: the input of
/// [`super::transform::map`].
#[derive(Clone, Debug, Default)]
pub struct Organization {
    /// `GET /organization/users`.
    pub users: Vec<User>,
    /// `GET /organization/invites`.
    pub invites: Vec<Invite>,
    /// `GET /organization/projects?include_archived=true`, with each active
    /// project's members and keys.
    pub projects: Vec<ProjectRecords>,
    /// `GET /organization/admin_api_keys`.
    pub admin_keys: Vec<AdminApiKey>,
}

/// One project and what was listed under it (nothing for an archived
/// project: it cannot be used, so its members and keys are not read).
#[derive(Clone, Debug)]
pub struct ProjectRecords {
    /// The project.
    pub project: Project,
    /// `GET /organization/projects/{id}/users`.
    pub users: Vec<ProjectUser>,
    /// `GET /organization/projects/{id}/service_accounts`.
    pub service_accounts: Vec<ProjectServiceAccount>,
    /// `GET /organization/projects/{id}/api_keys?owner_project_access=any`.
    pub api_keys: Vec<ProjectApiKey>,
}
