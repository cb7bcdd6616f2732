//! `drift.policy` (being written).

use super::{Context, Rule};
use crate::findings::Finding;

/// See module docs.
pub struct DriftPolicy;

impl Rule for DriftPolicy {
    fn id(&self) -> &'static str {
        "drift.policy"
    }

    fn evaluate(&self, _ctx: &Context<'_>) -> Vec<Finding> {
        Vec::new()
    }
}
