//! The Anthropic Admin API's records, field names exactly as on the wire
//! (platform docs "Admin API" pages and the SDKs' `Organization` models).
//!
//! Only what the mapping reads is declared; unknown fields are ignored, and
//! nullable or newer fields (`expires_at`, `principal`, `scope`, `tags`) are
//! optional so that both the older and the newer shapes decode. A missing
//! required id fails decoding with its JSON path. Timestamps are RFC 3339
//! strings. The API never returns a key's secret, only `partial_key_hint`,
//! a hint the provider already redacted (as its Console shows it).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// `type: "user"`: an organization member.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    /// `user_…`.
    pub id: String,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Organization role (`user`, `developer`, `billing`, `admin`,
    /// `claude_code_user`, `managed`, `membership_admin`, `owner`,
    /// `primary_owner`, …); kept open.
    #[serde(default)]
    pub role: Option<String>,
    /// When the user joined.
    #[serde(default)]
    pub added_at: Option<DateTime<Utc>>,
}

/// `type: "invite"`.
#[derive(Clone, Debug, Deserialize)]
pub struct Invite {
    /// `invite_…`.
    pub id: String,
    /// Invited address.
    pub email: String,
    /// Organization role offered.
    #[serde(default)]
    pub role: Option<String>,
    /// `pending`, `accepted`, `expired`, `deleted`.
    pub status: String,
    /// When the invite expires.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// `type: "workspace"`.
#[derive(Clone, Debug, Deserialize)]
pub struct Workspace {
    /// `wrkspc_…`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// When archived (`null` when active).
    #[serde(default)]
    pub archived_at: Option<DateTime<Utc>>,
    /// Free-form tags (newer API versions).
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// `type: "workspace_member"`.
#[derive(Clone, Debug, Deserialize)]
pub struct WorkspaceMember {
    /// The member's user id.
    pub user_id: String,
    /// `workspace_user`, `workspace_developer`,
    /// `workspace_restricted_developer`, `workspace_admin`,
    /// `workspace_billing`; kept open.
    pub workspace_role: String,
}

/// `type: "api_key"`.
#[derive(Clone, Debug, Deserialize)]
pub struct ApiKey {
    /// `apikey_…`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// `active`, `inactive`, `archived`, `expired`.
    pub status: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Who created the key (`null` for legacy or system keys).
    #[serde(default)]
    pub created_by: Option<Actor>,
    /// The provider's redacted hint (`sk-ant-api03-R2D...igAA`), to find the
    /// key in the Console.
    #[serde(default)]
    pub partial_key_hint: Option<String>,
    /// Deprecated workspace id (`null` for the default workspace).
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// Expiry (newer API versions; `null` = never).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Whom the key acts as (newer API versions; `null` for classic keys).
    #[serde(default)]
    pub principal: Option<Principal>,
    /// Where the key works (newer API versions).
    #[serde(default)]
    pub scope: Option<Scope>,
}

/// `created_by` of a key.
#[derive(Clone, Debug, Deserialize)]
pub struct Actor {
    /// The actor's id.
    pub id: String,
    /// `user` (other values kept open).
    #[serde(rename = "type")]
    pub kind: String,
}

/// `principal` of a key.
#[derive(Clone, Debug, Deserialize)]
pub struct Principal {
    /// `user_actor` or `service_account_actor`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Set for `user_actor`.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Set for `service_account_actor`.
    #[serde(default)]
    pub service_account_id: Option<String>,
}

/// `scope` of a key.
#[derive(Clone, Debug, Deserialize)]
pub struct Scope {
    /// `workspace` or `organization`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Set for `workspace` (the real id, also of the default workspace).
    #[serde(default)]
    pub workspace_id: Option<String>,
}

/// Everything one sync read: the input of [`super::transform::map`].
#[derive(Clone, Debug, Default)]
pub struct Organization {
    /// `GET /v1/organizations/users`.
    pub users: Vec<User>,
    /// `GET /v1/organizations/invites`.
    pub invites: Vec<Invite>,
    /// `GET /v1/organizations/workspaces?include_archived=true`, with the
    /// members of each active workspace.
    pub workspaces: Vec<WorkspaceRecords>,
    /// `GET /v1/organizations/api_keys` (every status).
    pub api_keys: Vec<ApiKey>,
}

/// One workspace and its members (none read for an archived workspace).
#[derive(Clone, Debug)]
pub struct WorkspaceRecords {
    /// The workspace.
    pub workspace: Workspace,
    /// `GET /v1/organizations/workspaces/{id}/members`.
    pub members: Vec<WorkspaceMember>,
}
