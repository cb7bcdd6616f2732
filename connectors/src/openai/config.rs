//! From `[[source]] kind = "openai"` settings to a ready HTTP client.
//!
//! The admin key is read from its reference (`{ env = … }` / `{ file = … }`)
//! at every sync, so a rotated key is picked up without a restart, and goes
//! straight into a redacting header map: it is never logged or stored.

use accessgraph_config::OpenAiSettings;

use crate::connector::SyncError;
use crate::http::{ClientOptions, HttpClient, HttpError, SensitiveHeaders};

/// Client options for the OpenAI admin API: bearer admin key, the
/// configured base URL, and the shared layer's defaults for limits and retries.
pub fn client_options(source: &str, settings: &OpenAiSettings) -> Result<ClientOptions, SyncError> {
    let key = settings.admin_key.resolve().map_err(|err| SyncError::Read {
        path: format!("source `{source}` admin_key ({})", settings.admin_key),
        message: err.to_string(),
    })?;
    let headers = SensitiveHeaders::bearer(key.expose())?;
    Ok(ClientOptions { base_url: Some(settings.base_url.clone()), headers, ..ClientOptions::default() })
}

/// The HTTP client for one sync.
pub fn http_client(source: &str, settings: &OpenAiSettings) -> Result<HttpClient, SyncError> {
    Ok(HttpClient::new(client_options(source, settings)?)?)
}

/// Turns a refused credential into an error that names the source, the
/// secret reference (never its value) and the key it needs; other failures
/// pass through.
pub fn explain(source: &str, settings: &OpenAiSettings, err: HttpError) -> SyncError {
    let hint = "it needs an organization Admin API key (sk-admin-…), created by an organization owner under \
                Settings → Organization → Admin keys";
    match &err {
        HttpError::Auth { url, message } => SyncError::Read {
            path: url.clone(),
            message: format!(
                "source `{source}` (openai): the admin key from {} was rejected (HTTP 401: {message}); {hint}",
                settings.admin_key
            ),
        },
        HttpError::Permission { url, message } => SyncError::Read {
            path: url.clone(),
            message: format!(
                "source `{source}` (openai): the admin key from {} may not read this (HTTP 403: {message}); {hint}",
                settings.admin_key
            ),
        },
        _ => SyncError::Http(err),
    }
}
