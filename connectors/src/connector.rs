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

/// One system the daemon watches.
///
/// `sync` must either return the complete fragment of the source or fail: a
/// partial fragment would close rows of access that still exists.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The source name (node id prefix).
    fn source(&self) -> &str;

    /// The source kind (`snapshot`, `github`, …).
    fn kind(&self) -> &'static str;

    /// Collects and maps the whole source.
    async fn sync(&self) -> Result<Fragment, SyncError>;
}
