//! Snapshot source (`kind = "snapshot"`, CONTRACT §4): any system, from a
//! JSON export.
//!
//! [`parse`] reads the raw file (types and required fields), [`transform`]
//! validates and maps it (pure), and [`SnapshotConnector`] only reads the file.
//! Node ids are `SOURCE:KIND:ID` with SOURCE the configured source name, never
//! the file's `system`, so two exports of the same system can coexist.

pub mod parse;
pub mod transform;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use accessgraph_graph::Fragment;
use async_trait::async_trait;

use crate::connector::{Connector, SyncError};

pub use parse::RawSnapshot;
pub use transform::map;

/// A source backed by one snapshot file, re-read on every sync.
#[derive(Clone, Debug)]
pub struct SnapshotConnector {
    /// The source name (node id prefix).
    pub source: String,
    /// The snapshot file (already resolved against the config file's folder).
    pub path: PathBuf,
}

impl SnapshotConnector {
    /// A connector for the source `source` reading `path`.
    pub fn new(source: impl Into<String>, path: impl Into<PathBuf>) -> SnapshotConnector {
        SnapshotConnector { source: source.into(), path: path.into() }
    }
}

#[async_trait]
impl Connector for SnapshotConnector {
    fn source(&self) -> &str {
        &self.source
    }

    fn kind(&self) -> &'static str {
        "snapshot"
    }

    async fn sync(&self) -> Result<Fragment, SyncError> {
        let file = self.path.display().to_string();
        let bytes = tokio::fs::read(&self.path)
            .await
            .map_err(|err| SyncError::Read { path: file.clone(), message: err.to_string() })?;
        let raw = parse::parse(&file, &bytes)?;
        // The parsed records own their strings: the file (236 MB at 100k
        // people) need not be held while they are mapped.
        drop(bytes);
        let fragment = transform::map(&self.source, &file, raw)?;
        tracing::debug!(
            source = %self.source,
            file = %file,
            nodes = fragment.nodes.len(),
            edges = fragment.edges.len(),
            "snapshot mapped"
        );
        Ok(fragment)
    }
}

/// Parses and maps a snapshot held in memory: what `sync` does after reading
/// the file (for fuzzing, benches and callers that already hold the bytes).
/// `file_label` names the input in errors.
pub fn parse_and_map(source: &str, file_label: &str, bytes: &[u8]) -> Result<Fragment, SyncError> {
    let raw = parse::parse(file_label, bytes)?;
    transform::map(source, file_label, raw)
}
