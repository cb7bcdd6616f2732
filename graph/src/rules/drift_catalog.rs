//! `drift.catalog` (being written).

use super::{Context, Rule};
use crate::findings::Finding;

/// See module docs.
pub struct DriftCatalog;

impl Rule for DriftCatalog {
    fn id(&self) -> &'static str {
        "drift.catalog"
    }

    fn evaluate(&self, _ctx: &Context<'_>) -> Vec<Finding> {
        Vec::new()
    }
}
