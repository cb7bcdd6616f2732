//! API calls only: every listing of the Anthropic Admin API the connector
//! reads, through the shared HTTP layer (`x-api-key` + `anthropic-version`
//! headers, cursor paging with `after_id` = the previous page's `last_id`,
//! retries on 429/5xx/529 honouring `retry-after-ms` and `retry-after`).

use crate::http::{HttpClient, HttpError, path_segment};

use super::wire::{ApiKey, Invite, Organization, User, Workspace, WorkspaceMember, WorkspaceRecords};

/// Page size (the API allows up to 1000; 100 keeps responses small).
const PAGE: &str = "100";

/// The Anthropic admin endpoints.
#[derive(Clone, Debug)]
pub struct AnthropicClient {
    http: HttpClient,
}

impl AnthropicClient {
    /// Wraps a client whose base URL is the API root and whose default
    /// headers carry the admin key and the API version.
    pub fn new(http: HttpClient) -> AnthropicClient {
        AnthropicClient { http }
    }

    /// The underlying HTTP client (for its counters).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Reads the whole organization; fails if any listing fails.
    pub async fn organization(&self) -> Result<Organization, HttpError> {
        let users = self.users().await?;
        let invites = self.invites().await?;
        let mut workspaces = Vec::new();
        for workspace in self.workspaces().await? {
            let members =
                if workspace.archived_at.is_some() { Vec::new() } else { self.members(&workspace.id).await? };
            workspaces.push(WorkspaceRecords { workspace, members });
        }
        let api_keys = self.api_keys().await?;
        Ok(Organization { users, invites, workspaces, api_keys })
    }

    /// `GET /v1/organizations/users`.
    pub async fn users(&self) -> Result<Vec<User>, HttpError> {
        self.http.paginate_cursor("v1/organizations/users", &[("limit", PAGE)], "after_id").await
    }

    /// `GET /v1/organizations/invites`.
    pub async fn invites(&self) -> Result<Vec<Invite>, HttpError> {
        self.http.paginate_cursor("v1/organizations/invites", &[("limit", PAGE)], "after_id").await
    }

    /// `GET /v1/organizations/workspaces?include_archived=true`.
    pub async fn workspaces(&self) -> Result<Vec<Workspace>, HttpError> {
        self.http
            .paginate_cursor(
                "v1/organizations/workspaces",
                &[("limit", PAGE), ("include_archived", "true")],
                "after_id",
            )
            .await
    }

    /// `GET /v1/organizations/workspaces/{id}/members`.
    pub async fn members(&self, workspace: &str) -> Result<Vec<WorkspaceMember>, HttpError> {
        let path = format!("v1/organizations/workspaces/{}/members", path_segment(workspace));
        self.http.paginate_cursor(&path, &[("limit", PAGE)], "after_id").await
    }

    /// `GET /v1/organizations/api_keys`: every status, so that archived and
    /// inactive keys are known to be dead rather than missing.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, HttpError> {
        self.http.paginate_cursor("v1/organizations/api_keys", &[("limit", PAGE)], "after_id").await
    }
}
