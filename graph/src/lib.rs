//! The access graph of accessgraph: ontology, effective access, diff, rules and
//! findings. Pure: this crate knows no HTTP, no SQL and no files.
#![deny(missing_docs)]

pub mod findings;
pub mod model;
pub mod settings;

pub use findings::{Finding, FindingStatus, Severity};
pub use model::{Edge, EdgeKind, Fragment, LastUse, Node, NodeKind};
pub mod access;
pub mod access_set;
pub use access::{AccessEntry, AccessGraph, AccessSet, EffectiveAccess, GraphBuilder, Link, Owner, ResolveSettings};
pub mod policy;
pub use policy::{Denial, PolicyEngine};
pub mod analyze;
pub mod rules;
pub use analyze::{Analysis, analyze};
pub mod posture;
pub use posture::Posture;
pub mod diff;
pub mod parallel;
