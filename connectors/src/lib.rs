//! Connectors: each collects one system's raw records and maps them to a graph
//! fragment. A connector knows no store. Also the shared HTTP layer and the
//! ticket sinks.
#![deny(missing_docs)]

pub mod anthropic;
pub mod aws_iam;
pub mod cache;
pub mod connector;
mod fragment;
#[doc(hidden)]
pub mod fuzzing;
pub mod github;
pub mod http;
pub mod openai;
pub mod registry;
pub mod scim;
pub mod sinks;
pub mod snapshot;
#[cfg(test)]
mod testing;

pub use connector::{Connector, RequestStats, SyncError};
