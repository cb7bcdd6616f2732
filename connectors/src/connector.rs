//! The contract between a source and the pipeline.

use accessgraph_graph::Fragment;
use async_trait::async_trait;

/// Why a sync did not complete. Any error means the whole sync is discarded:
/// the store keeps the source's previous slice untouched.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The input could not be read (file missing, unreadable).
    #[error("{path}: {message}")]
    Read {
        /// File or URL that failed.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The input was read but is invalid; `location` names the JSON path or line.
    #[error("{path}: {location}: {message}")]
    Invalid {
        /// File or URL.
        path: String,
        /// JSON path (`$.grants[3].principal`) or line.
        location: String,
        /// What is wrong there.
        message: String,
    },
    /// A remote API failed.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// This build cannot sync this kind of source yet.
    #[error("source kind `{0}` is not supported by this build")]
    Unsupported(String),
}

/// What a sync cost the remote API, recorded with the sync run: so an
/// operator sees that a source is slow because of rate limits, and that
/// conditional requests (304s) are saving budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestStats {
    /// Requests sent (retries included).
    pub requests: u64,
    /// Requests answered `304 Not Modified`.
    pub not_modified: u64,
    /// Retries after rate limits or transient failures.
    pub retries: u64,
    /// Waits for a rate limit.
    pub rate_limit_waits: u64,
    /// Response body bytes received.
    pub bytes: u64,
}

/// One system the daemon watches.
///
/// `sync` must either return the complete fragment of the source or fail: a
/// partial fragment would close rows of access that still exists. The one
/// exception is explicit: a source made of independent slices (the accounts
/// of an `aws-iam` source) may return the slices it read and name the others
/// in `Fragment::kept`, whose stored rows then carry over unchanged.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The source name (node id prefix).
    fn source(&self) -> &str;

    /// The source kind (`snapshot`, `github`, …).
    fn kind(&self) -> &'static str;

    /// Collects and maps the whole source.
    async fn sync(&self) -> Result<Fragment, SyncError>;

    /// What the last `sync` (complete or not) cost its API; `None` for
    /// sources that make no requests or do not count them.
    fn request_stats(&self) -> Option<RequestStats> {
        None
    }
}
