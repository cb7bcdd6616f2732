//! The registry: one line per source kind.

use std::sync::Arc;

use crate::cache::ResponseCache;
use crate::connector::{Connector, SyncError};
use crate::github::GithubConnector;
use crate::snapshot::SnapshotConnector;
use accessgraph_config::{SourceConfig, SourceSettings};

/// What the daemon lends a connector beyond its config.
#[derive(Clone, Default)]
pub struct BuildContext {
    /// This source's slice of the response cache (ETags across syncs);
    /// `None`: every request is unconditional.
    pub cache: Option<Arc<dyn ResponseCache>>,
}

/// Builds the connector a `[[source]]` describes.
pub fn build(source: &SourceConfig, context: &BuildContext) -> Result<Box<dyn Connector>, SyncError> {
    match &source.settings {
        SourceSettings::AwsIam(settings) => {
            Ok(Box::new(crate::aws_iam::AwsIamConnector::new(&source.name, settings.clone())))
        }
        SourceSettings::Snapshot(settings) => Ok(Box::new(SnapshotConnector::new(&source.name, settings.path.clone()))),
        SourceSettings::Github(settings) => {
            Ok(Box::new(GithubConnector::new(&source.name, settings.clone()).with_cache(context.cache.clone())))
        }
        SourceSettings::OpenAi(settings) => {
            Ok(Box::new(crate::openai::OpenAiConnector::new(&source.name, settings.clone())))
        }
        SourceSettings::Anthropic(settings) => {
            Ok(Box::new(crate::anthropic::AnthropicConnector::new(&source.name, settings.clone())))
        }
        SourceSettings::Scim(settings) => Ok(Box::new(crate::scim::ScimConnector::new(&source.name, settings.clone()))),
    }
}
