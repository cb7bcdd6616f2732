//! The accessgraph daemon: CLI, store, pipeline, reports and queries. Wires
//! connectors (which know no store) to the graph (which knows no I/O).
#![deny(missing_docs)]

pub mod cli;
pub mod daemon;
pub mod export;
pub mod memory;
pub mod pipeline;
pub mod progress;
pub mod query;
pub mod report;
pub mod store;
pub mod synth;
#[cfg(test)]
mod testdb;
pub mod text;
