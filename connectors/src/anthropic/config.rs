//! From `[[source]] kind = "anthropic"` settings to a ready HTTP client.
//!
//! The admin key is read from its reference at every sync (rotation needs no
//! restart) and goes straight into a redacting header map.

use accessgraph_config::AnthropicSettings;

use crate::connector::SyncError;
use crate::http::{ClientOptions, HttpClient, HttpError, SensitiveHeaders};

/// The `anthropic-version` every request carries.
pub const API_VERSION: &str = "2023-06-01";

/// Client options for the Anthropic Admin API: `x-api-key`,
/// `anthropic-version`, the configured base URL, the shared defaults.
pub fn client_options(source: &str, settings: &AnthropicSettings) -> Result<ClientOptions, SyncError> {
    let key = settings.admin_key.resolve().map_err(|err| SyncError::Read {
        path: format!("source `{source}` admin_key ({})", settings.admin_key),
        message: err.to_string(),
    })?;
    let headers = SensitiveHeaders::new().with("x-api-key", key.expose())?.with("anthropic-version", API_VERSION)?;
    Ok(ClientOptions { base_url: Some(settings.base_url.clone()), headers, ..ClientOptions::default() })
}

/// The HTTP client for one sync.
pub fn http_client(source: &str, settings: &AnthropicSettings) -> Result<HttpClient, SyncError> {
    Ok(HttpClient::new(client_options(source, settings)?)?)
}

/// Turns a refused credential into an error naming the source, the secret
/// reference (never its value) and the key it needs.
pub fn explain(source: &str, settings: &AnthropicSettings, err: HttpError) -> SyncError {
    let hint = "it needs an Admin API key (sk-ant-admin…), created by an organization admin in the Claude \
                Console under Settings → Admin keys; a regular API key is refused";
    match &err {
        HttpError::Auth { url, message } => SyncError::Read {
            path: url.clone(),
            message: format!(
                "source `{source}` (anthropic): the admin key from {} was rejected (HTTP 401: {message}); {hint}",
                settings.admin_key
            ),
        },
        HttpError::Permission { url, message } => SyncError::Read {
            path: url.clone(),
            message: format!(
                "source `{source}` (anthropic): the admin key from {} may not read this (HTTP 403: {message}); \
                 {hint}",
                settings.admin_key
            ),
        },
        _ => SyncError::Http(err),
    }
}
