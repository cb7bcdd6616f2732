//! OpenAI source (`kind = "openai"`): the organization behind an Admin API
//! key — users, pending invites, projects, project members, service
//! accounts, project API keys and admin API keys.
//!
//! [`client`] lists (cursor paging: `limit`, `after` = the previous page's
//! `last_id`, while `has_more`), [`transform`] maps (pure), and
//! [`OpenAiConnector`] ties them to the [`Connector`] contract: the whole
//! organization or an error, never part of it.
//!
//! # The model
//!
//! | API object | node | notes |
//! |---|---|---|
//! | `organization.user` | `SOURCE:user:USER_ID`, human | email, `role` attr, active |
//! | pending `organization.invite` | `SOURCE:invite:INVITE_ID`, human, **inactive** | not access: no grant; kept so reports show who is about to join with which role (`invite_*` attrs). Accepted and expired invites are skipped. |
//! | `organization.project` | `SOURCE:project:PROJECT_ID`, resource `project` | listed with `include_archived=true`; an archived project keeps its node (`archived=true`) but grants nothing, and its members and keys are not read (they cannot be used) |
//! | project user | grant on the project | `member` → `use`; `owner` → `use` + `admin` |
//! | organization owner (`role = owner`) | grant `admin` on every active project | owners can administer any project without being a member; no separate organization node (the API has no organization object to key it by) |
//! | project service account | `SOURCE:service_account:ID`, service account | grant per role (`none` → nothing). The API names no owner: the owner comes from the agent catalog, else `ownerless.no_owner` fires |
//! | project API key | `SOURCE:api_key:KEY_ID`, credential `api_key` | listed with `owner_project_access=any` (otherwise the keys of owners who lost project access are hidden). `created_at`; `last_used_at` null → never used; no expiry. Held (`holds`) by its owner: the user or the service account. A user's key has `owner` = that user's node id (a user missing from the organization gets an inactive stub account). `key_hint` = the provider's `redacted_value` (kept only when visibly redacted) |
//! | admin API key | `SOURCE:admin_key:ID`, credential `admin_key` | expiry and last use as reported; held by its owner; an organization-level service account holding one gets `admin` on every active project |
//!
//! Actions: `use` (call models in the project) and `admin` (manage its
//! members, service accounts, keys and limits).

pub mod client;
pub mod config;
pub mod transform;
pub mod wire;

#[cfg(test)]
mod tests;

use accessgraph_config::OpenAiSettings;
use accessgraph_graph::Fragment;
use async_trait::async_trait;

use crate::connector::{Connector, SyncError};

pub use client::OpenAiClient;

/// A source backed by the OpenAI Administration API.
#[derive(Clone, Debug)]
pub struct OpenAiConnector {
    source: String,
    settings: OpenAiSettings,
}

impl OpenAiConnector {
    /// A connector for the source `source`.
    pub fn new(source: impl Into<String>, settings: OpenAiSettings) -> OpenAiConnector {
        OpenAiConnector { source: source.into(), settings }
    }
}

#[async_trait]
impl Connector for OpenAiConnector {
    fn source(&self) -> &str {
        &self.source
    }

    fn kind(&self) -> &'static str {
        "openai"
    }

    async fn sync(&self) -> Result<Fragment, SyncError> {
        let client = OpenAiClient::new(config::http_client(&self.source, &self.settings)?);
        let org = client.organization().await.map_err(|err| config::explain(&self.source, &self.settings, err))?;
        let fragment = transform::map(&self.source, &org)?;
        let stats = client.http().stats().snapshot();
        tracing::info!(
            source = %self.source,
            users = org.users.len(),
            projects = org.projects.len(),
            admin_keys = org.admin_keys.len(),
            nodes = fragment.nodes.len(),
            edges = fragment.edges.len(),
            requests = stats.requests,
            retries = stats.retries,
            rate_limit_waits = stats.rate_limit_waits,
            "openai organization mapped"
        );
        Ok(fragment)
    }
}
