//! API calls only: `/Users` and `/Groups` of a SCIM 2.0 server through the
//! shared HTTP layer (bearer token, `startIndex`/`count` paging, retries,
//! `Retry-After`). Resources come back as raw JSON objects: SCIM attribute
//! names are case-insensitive (RFC 7643 §2.1), so [`super::transform`] reads
//! them case-insensitively rather than through fixed serde names.

use accessgraph_config::ScimFlavor;
use serde_json::Value;

use crate::http::{HttpClient, HttpError, path_segment};

/// Everything one sync read: the input of [`super::transform::map`].
#[derive(Clone, Debug, Default)]
pub struct Directory {
    /// `GET /Users`, every page.
    pub users: Vec<Value>,
    /// `GET /Groups`, every page (members filled in per group where the
    /// flavour requires it).
    pub groups: Vec<Value>,
}

/// Page size asked for: Okta serves up to 200 resources a page, other
/// servers commonly cap at 100 (a smaller page is always accepted).
pub fn page_size(flavor: ScimFlavor) -> u32 {
    match flavor {
        ScimFlavor::Okta => 200,
        ScimFlavor::Generic | ScimFlavor::Entra => 100,
    }
}

/// The SCIM endpoints.
#[derive(Clone, Debug)]
pub struct ScimClient {
    http: HttpClient,
    flavor: ScimFlavor,
}

impl ScimClient {
    /// Wraps a client whose base URL is the SCIM root (`…/scim/v2`).
    pub fn new(http: HttpClient, flavor: ScimFlavor) -> ScimClient {
        ScimClient { http, flavor }
    }

    /// The underlying HTTP client (for its counters).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Reads every user and group; fails if any page fails.
    ///
    /// No `filter` is ever sent: deactivated users must be seen (they are
    /// the point), and servers written for Okta reject every filter but
    /// `eq` on a few attributes (400 `invalidFilter`).
    pub async fn directory(&self) -> Result<Directory, HttpError> {
        let size = page_size(self.flavor);
        let users = self.http.paginate_scim("Users", &[], size).await?;
        let mut groups: Vec<Value> = match self.flavor {
            // Entra's own access pattern, which servers built for it expect:
            // list groups without members, then read each group.
            ScimFlavor::Entra => self.http.paginate_scim("Groups", &[("excludedAttributes", "members")], size).await?,
            ScimFlavor::Generic | ScimFlavor::Okta => self.http.paginate_scim("Groups", &[], size).await?,
        };
        if self.flavor == ScimFlavor::Entra {
            for group in &mut groups {
                if let Some(id) = string_attr(group, "id") {
                    let path = format!("Groups/{}", path_segment(&id));
                    let full: Value = self.http.get_json(&path, &[]).await?.body;
                    *group = full;
                }
            }
        }
        Ok(Directory { users, groups })
    }
}

/// A string attribute, its name matched case-insensitively.
fn string_attr(value: &Value, name: &str) -> Option<String> {
    value
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
}
