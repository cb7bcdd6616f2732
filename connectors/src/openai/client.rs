//! API calls only: every listing of the OpenAI Administration API the
//! connector reads, through the shared HTTP layer (bearer admin key, cursor
//! paging with `after` = the previous page's `last_id`, retries, rate limits).

use crate::http::{HttpClient, HttpError, path_segment};

use super::wire::{
    AdminApiKey, Invite, Organization, Project, ProjectApiKey, ProjectRecords, ProjectServiceAccount, ProjectUser, User,
};

/// Largest page the API serves (`limit` is 1–100).
const PAGE: &str = "100";

/// The OpenAI admin endpoints.
#[derive(Clone, Debug)]
pub struct OpenAiClient {
    http: HttpClient,
}

impl OpenAiClient {
    /// Wraps a client whose base URL is the API root (`…/v1`) and whose
    /// default headers carry the admin key.
    pub fn new(http: HttpClient) -> OpenAiClient {
        OpenAiClient { http }
    }

    /// The underlying HTTP client (for its counters).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Reads the whole organization; fails if any listing fails.
    pub async fn organization(&self) -> Result<Organization, HttpError> {
        let users = self.users().await?;
        let invites = self.invites().await?;
        let mut projects = Vec::new();
        for project in self.projects().await? {
            if project.is_archived() {
                projects.push(ProjectRecords {
                    project,
                    users: Vec::new(),
                    service_accounts: Vec::new(),
                    api_keys: Vec::new(),
                });
                continue;
            }
            let users = self.project_users(&project.id).await?;
            let service_accounts = self.project_service_accounts(&project.id).await?;
            let api_keys = self.project_api_keys(&project.id).await?;
            projects.push(ProjectRecords { project, users, service_accounts, api_keys });
        }
        let admin_keys = self.admin_keys().await?;
        Ok(Organization { users, invites, projects, admin_keys })
    }

    /// `GET /organization/users`.
    pub async fn users(&self) -> Result<Vec<User>, HttpError> {
        self.http.paginate_cursor("organization/users", &[("limit", PAGE)], "after").await
    }

    /// `GET /organization/invites`.
    pub async fn invites(&self) -> Result<Vec<Invite>, HttpError> {
        self.http.paginate_cursor("organization/invites", &[("limit", PAGE)], "after").await
    }

    /// `GET /organization/projects?include_archived=true`: archived projects
    /// are listed too, so that they are flagged rather than silently gone.
    pub async fn projects(&self) -> Result<Vec<Project>, HttpError> {
        self.http
            .paginate_cursor("organization/projects", &[("limit", PAGE), ("include_archived", "true")], "after")
            .await
    }

    /// `GET /organization/projects/{id}/users`.
    pub async fn project_users(&self, project: &str) -> Result<Vec<ProjectUser>, HttpError> {
        let path = format!("organization/projects/{}/users", path_segment(project));
        self.http.paginate_cursor(&path, &[("limit", PAGE)], "after").await
    }

    /// `GET /organization/projects/{id}/service_accounts`.
    pub async fn project_service_accounts(&self, project: &str) -> Result<Vec<ProjectServiceAccount>, HttpError> {
        let path = format!("organization/projects/{}/service_accounts", path_segment(project));
        self.http.paginate_cursor(&path, &[("limit", PAGE)], "after").await
    }

    /// `GET /organization/projects/{id}/api_keys?owner_project_access=any`.
    ///
    /// Without `owner_project_access=any` the API lists only keys whose owner
    /// still has access to the project; the keys of owners who lost it stay
    /// hidden — and those are exactly the ones an audit must see.
    pub async fn project_api_keys(&self, project: &str) -> Result<Vec<ProjectApiKey>, HttpError> {
        let path = format!("organization/projects/{}/api_keys", path_segment(project));
        self.http.paginate_cursor(&path, &[("limit", PAGE), ("owner_project_access", "any")], "after").await
    }

    /// `GET /organization/admin_api_keys`.
    pub async fn admin_keys(&self) -> Result<Vec<AdminApiKey>, HttpError> {
        self.http.paginate_cursor("organization/admin_api_keys", &[("limit", PAGE), ("order", "asc")], "after").await
    }
}
