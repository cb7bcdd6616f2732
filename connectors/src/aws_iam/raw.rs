//! The raw records of one account, as IAM reports them: the shape of
//! `GetAccountAuthorizationDetails` (the JSON `aws iam
//! get-account-authorization-details` prints, which the live client also
//! produces) and the rows of the credential report.
//!
//! Only types and required fields are checked here; unknown fields are
//! ignored because AWS adds members over time. Policy documents stay JSON
//! values (an object from the CLI, a URL-encoded string from the API) and are
//! parsed by [`super::policy`] during the transform.

use std::collections::HashMap;

use accessgraph_graph::LastUse;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// Everything read from one account.
#[derive(Clone, Debug, Default)]
pub struct AccountData {
    /// Names the input in errors: the export file, or `iam account ID`.
    pub label: String,
    /// The 12-digit account id.
    pub account_id: String,
    /// Users, groups, roles and managed policies.
    pub details: AuthorizationDetails,
    /// Credential report rows (one per user, plus the root account row).
    pub report: Vec<ReportRow>,
    /// Access key ids per user name, from `ListAccessKeys` (live mode only).
    pub access_keys: HashMap<String, Vec<AccessKeyMeta>>,
}

/// One access key's metadata (`ListAccessKeys`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyMeta {
    /// `AKIA…`: an identifier, not a secret.
    pub id: String,
    /// `Active` or `Inactive`.
    pub active: bool,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
}

/// The result of `GetAccountAuthorizationDetails` (all pages merged).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthorizationDetails {
    /// Users.
    #[serde(default)]
    pub user_detail_list: Vec<UserDetail>,
    /// Groups.
    #[serde(default)]
    pub group_detail_list: Vec<GroupDetail>,
    /// Roles.
    #[serde(default)]
    pub role_detail_list: Vec<RoleDetail>,
    /// Managed policies (customer and AWS managed).
    #[serde(default)]
    pub policies: Vec<ManagedPolicy>,
}

/// An inline policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InlinePolicy {
    /// Name, unique per principal.
    pub policy_name: String,
    /// The document (object or URL-encoded JSON text).
    pub policy_document: Value,
}

/// A managed policy attached to a principal.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachedPolicy {
    /// Name.
    #[serde(default)]
    pub policy_name: Option<String>,
    /// ARN (`arn:aws:iam::aws:policy/ReadOnlyAccess`).
    pub policy_arn: String,
}

/// A permissions boundary.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Boundary {
    /// ARN of the managed policy used as boundary.
    pub permissions_boundary_arn: String,
}

/// A tag.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value (may be empty).
    #[serde(default)]
    pub value: String,
}

/// `UserDetailList[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserDetail {
    /// Path (`/`, `/svc/`).
    #[serde(default)]
    pub path: String,
    /// Name, unique in the account.
    pub user_name: String,
    /// `AIDA…`.
    #[serde(default)]
    pub user_id: String,
    /// ARN.
    pub arn: String,
    /// Creation.
    #[serde(default)]
    pub create_date: Option<DateTime<Utc>>,
    /// Inline policies.
    #[serde(default)]
    pub user_policy_list: Vec<InlinePolicy>,
    /// Group names.
    #[serde(default)]
    pub group_list: Vec<String>,
    /// Attached managed policies.
    #[serde(default)]
    pub attached_managed_policies: Vec<AttachedPolicy>,
    /// Permissions boundary.
    #[serde(default)]
    pub permissions_boundary: Option<Boundary>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// `GroupDetailList[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupDetail {
    /// Path.
    #[serde(default)]
    pub path: String,
    /// Name, unique in the account.
    pub group_name: String,
    /// `AGPA…`.
    #[serde(default)]
    pub group_id: String,
    /// ARN.
    pub arn: String,
    /// Creation.
    #[serde(default)]
    pub create_date: Option<DateTime<Utc>>,
    /// Inline policies.
    #[serde(default)]
    pub group_policy_list: Vec<InlinePolicy>,
    /// Attached managed policies.
    #[serde(default)]
    pub attached_managed_policies: Vec<AttachedPolicy>,
}

/// `RoleLastUsed`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleLastUsed {
    /// Last assumption.
    #[serde(default)]
    pub last_used_date: Option<DateTime<Utc>>,
    /// Where.
    #[serde(default)]
    pub region: Option<String>,
}

/// `RoleDetailList[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleDetail {
    /// Path.
    #[serde(default)]
    pub path: String,
    /// Name, unique in the account.
    pub role_name: String,
    /// `AROA…`.
    #[serde(default)]
    pub role_id: String,
    /// ARN.
    pub arn: String,
    /// Creation.
    #[serde(default)]
    pub create_date: Option<DateTime<Utc>>,
    /// The trust policy.
    #[serde(default)]
    pub assume_role_policy_document: Option<Value>,
    /// Inline policies.
    #[serde(default)]
    pub role_policy_list: Vec<InlinePolicy>,
    /// Attached managed policies.
    #[serde(default)]
    pub attached_managed_policies: Vec<AttachedPolicy>,
    /// Permissions boundary.
    #[serde(default)]
    pub permissions_boundary: Option<Boundary>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Last assumption.
    #[serde(default)]
    pub role_last_used: Option<RoleLastUsed>,
}

/// A version of a managed policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyVersion {
    /// The document.
    #[serde(default)]
    pub document: Option<Value>,
    /// `v3`.
    #[serde(default)]
    pub version_id: Option<String>,
    /// Whether this is the version in force.
    #[serde(default)]
    pub is_default_version: bool,
}

/// `Policies[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManagedPolicy {
    /// Name.
    pub policy_name: String,
    /// `ANPA…`.
    #[serde(default)]
    pub policy_id: String,
    /// ARN.
    pub arn: String,
    /// Path.
    #[serde(default)]
    pub path: String,
    /// The version in force.
    #[serde(default)]
    pub default_version_id: Option<String>,
    /// How many principals it is attached to.
    #[serde(default)]
    pub attachment_count: Option<u64>,
    /// Versions (the export holds at least the default one).
    #[serde(default)]
    pub policy_version_list: Vec<PolicyVersion>,
}

impl ManagedPolicy {
    /// The document of the version in force.
    pub fn default_document(&self) -> Option<(usize, &Value)> {
        let by_flag = self.policy_version_list.iter().position(|v| v.is_default_version);
        let by_id = || {
            self.policy_version_list
                .iter()
                .position(|v| v.version_id.is_some() && v.version_id == self.default_version_id)
        };
        let index = by_flag.or_else(by_id)?;
        self.policy_version_list[index].document.as_ref().map(|d| (index, d))
    }
}

/// One access key's columns in the credential report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportKey {
    /// `access_key_N_active`.
    pub active: bool,
    /// `access_key_N_last_rotated` (creation or last change); `None` = no key.
    pub last_rotated: Option<DateTime<Utc>>,
    /// `access_key_N_last_used_date`: `N/A` = never used.
    pub last_used: LastUse,
    /// `access_key_N_last_used_service`, when used.
    pub last_used_service: Option<String>,
}

/// One row of the credential report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRow {
    /// `user` (`<root_account>` for the root row).
    pub user: String,
    /// `arn`.
    pub arn: String,
    /// `password_enabled` (`None` when `not_supported`).
    pub password_enabled: Option<bool>,
    /// `password_last_used`: `None` when not reported (`N/A`, `no_information`).
    pub password_last_used: Option<DateTime<Utc>>,
    /// `mfa_active`.
    pub mfa_active: bool,
    /// Access keys 1 and 2.
    pub keys: [ReportKey; 2],
}
