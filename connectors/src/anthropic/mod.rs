//! Anthropic source (`kind = "anthropic"`): the organization behind an Admin
//! API key — users, pending invites, workspaces, workspace members and API
//! keys.
//!
//! [`client`] lists (cursor paging: `limit`, `after_id` = the previous page's
//! `last_id`, while `has_more`; headers `x-api-key` and `anthropic-version`),
//! [`transform`] maps (pure), and [`AnthropicConnector`] ties them to the
//! [`Connector`] contract: the whole organization or an error.
//!
//! # The model
//!
//! | API object | node | notes |
//! |---|---|---|
//! | `user` | `SOURCE:user:USER_ID`, human | email, `role` attr, active. Organization `admin`, `owner`, `primary_owner` are workspace admins of every active workspace |
//! | pending `invite` | `SOURCE:invite:INVITE_ID`, human, **inactive** | not access: no grant |
//! | `workspace` | `SOURCE:workspace:WORKSPACE_ID`, resource `workspace` | listed with `include_archived=true`; archived ones are flagged (`archived=true`), grant nothing, and their members are not read. A tag `environment`/`env` sets the environment. A workspace a key names that the listing does not show (the default workspace) gets a node too (`listed=false`; `SOURCE:workspace:default` when the API gives no id) |
//! | `workspace_member` | grant on the workspace | `workspace_user` → `use`; `workspace_developer`, `workspace_restricted_developer` → `use`, `develop`; `workspace_admin` → `use`, `develop`, `admin`; `workspace_billing` → `billing` |
//! | `api_key` | `SOURCE:api_key:KEY_ID`, credential `api_key` | `created_at`, `expires_at` (none on classic keys → standing), **last use unknown** (`LastUse::Unknown` and attr `last_used = unknown…`: the API does not report it, so `secret.unused` never fires and never says "never used"). Owner = the `created_by` user's node id, `owner_inferred = true`. Only `status = active` is access: `archived`, `inactive` and `expired` keys keep an inactive node with no holder and no grant. `key_hint` = the provider's `partial_key_hint` (kept only when visibly redacted) |
//!
//! # Who holds a key
//!
//! An Anthropic API key does not act as its creator: it keeps working after
//! the creator leaves, for whoever has the secret. So the holder is chosen
//! from what the key says about itself:
//!
//! - a classic key (no `principal`): a workload identity of its own,
//!   `SOURCE:service_account:key-KEY_ID` (service account, named
//!   "API key NAME"), which holds the key, has `use` on the key's workspace
//!   (every active workspace for an organization-scoped key) and whose owner
//!   is the key's creator, inferred. So the usual rules apply to it: its
//!   creator leaving is `ownerless.owner_inactive` (marked "inferred" in the
//!   finding), and a key nobody registered is `ownerless.unregistered`. A
//!   catalog record binds it with `identities = ["SOURCE:service_account:key-KEY_ID"]`;
//! - `principal.type = user_actor`: held by that user (it acts with the
//!   user's own workspace grants);
//! - `principal.type = service_account_actor`: held by
//!   `SOURCE:service_account:ID`, which gets `use` on the key's workspace.

pub mod client;
pub mod config;
pub mod transform;
pub mod wire;

#[cfg(test)]
mod tests;

use accessgraph_config::AnthropicSettings;
use accessgraph_graph::Fragment;
use async_trait::async_trait;

use crate::connector::{Connector, SyncError};

pub use client::AnthropicClient;

/// A source backed by the Anthropic Admin API.
#[derive(Clone, Debug)]
pub struct AnthropicConnector {
    source: String,
    settings: AnthropicSettings,
}

impl AnthropicConnector {
    /// A connector for the source `source`.
    pub fn new(source: impl Into<String>, settings: AnthropicSettings) -> AnthropicConnector {
        AnthropicConnector { source: source.into(), settings }
    }
}

#[async_trait]
impl Connector for AnthropicConnector {
    fn source(&self) -> &str {
        &self.source
    }

    fn kind(&self) -> &'static str {
        "anthropic"
    }

    async fn sync(&self) -> Result<Fragment, SyncError> {
        let client = AnthropicClient::new(config::http_client(&self.source, &self.settings)?);
        let org = client.organization().await.map_err(|err| config::explain(&self.source, &self.settings, err))?;
        let fragment = transform::map(&self.source, &org)?;
        let stats = client.http().stats().snapshot();
        tracing::info!(
            source = %self.source,
            users = org.users.len(),
            workspaces = org.workspaces.len(),
            api_keys = org.api_keys.len(),
            nodes = fragment.nodes.len(),
            edges = fragment.edges.len(),
            requests = stats.requests,
            retries = stats.retries,
            rate_limit_waits = stats.rate_limit_waits,
            "anthropic organization mapped"
        );
        Ok(fragment)
    }
}
