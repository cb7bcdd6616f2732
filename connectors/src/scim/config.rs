//! From `[[source]] kind = "scim"` settings to a ready HTTP client.
//!
//! The bearer token is read from its reference at every sync and goes
//! straight into a redacting header map.

use accessgraph_config::ScimSettings;

use crate::connector::SyncError;
use crate::http::{ClientOptions, HttpClient, HttpError, SensitiveHeaders};

/// Client options for a SCIM server: bearer token, SCIM media type, the
/// configured root, the shared defaults for limits and retries.
pub fn client_options(source: &str, settings: &ScimSettings) -> Result<ClientOptions, SyncError> {
    let token = settings.token.resolve().map_err(|err| SyncError::Read {
        path: format!("source `{source}` token ({})", settings.token),
        message: err.to_string(),
    })?;
    let headers =
        SensitiveHeaders::bearer(token.expose())?.with("accept", "application/scim+json, application/json")?;
    Ok(ClientOptions { base_url: Some(settings.base_url.clone()), headers, ..ClientOptions::default() })
}

/// The HTTP client for one sync.
pub fn http_client(source: &str, settings: &ScimSettings) -> Result<HttpClient, SyncError> {
    Ok(HttpClient::new(client_options(source, settings)?)?)
}

/// Turns a refused token into an error naming the source and the secret
/// reference (never its value).
pub fn explain(source: &str, settings: &ScimSettings, err: HttpError) -> SyncError {
    let hint = "it needs a SCIM bearer token allowed to read /Users and /Groups";
    match &err {
        HttpError::Auth { url, message } => SyncError::Read {
            path: url.clone(),
            message: format!(
                "source `{source}` (scim): the token from {} was rejected (HTTP 401: {message}); {hint}",
                settings.token
            ),
        },
        HttpError::Permission { url, message } => SyncError::Read {
            path: url.clone(),
            message: format!(
                "source `{source}` (scim): the token from {} may not read this (HTTP 403: {message}); {hint}",
                settings.token
            ),
        },
        _ => SyncError::Http(err),
    }
}
