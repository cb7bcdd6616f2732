//! The registry: one line per source kind.

use crate::connector::{Connector, SyncError};
use crate::snapshot::SnapshotConnector;
use accessgraph_config::{SourceConfig, SourceSettings};

/// Builds the connector a `[[source]]` describes.
pub fn build(source: &SourceConfig) -> Result<Box<dyn Connector>, SyncError> {
    match &source.settings {
        SourceSettings::Snapshot(settings) => Ok(Box::new(SnapshotConnector::new(&source.name, settings.path.clone()))),
        other => Err(SyncError::Unsupported(other.kind().to_string())),
    }
}
