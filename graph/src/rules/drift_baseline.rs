//! `drift.baseline` (being written).

use super::{Context, Rule};
use crate::findings::Finding;

/// See module docs.
pub struct DriftBaseline;

impl Rule for DriftBaseline {
    fn id(&self) -> &'static str {
        "drift.baseline"
    }

    fn evaluate(&self, _ctx: &Context<'_>) -> Vec<Finding> {
        Vec::new()
    }
}
