//! `sod.violation` (being written).

use super::{Context, Rule};
use crate::findings::Finding;

/// See module docs.
pub struct SodViolation;

impl Rule for SodViolation {
    fn id(&self) -> &'static str {
        "sod.violation"
    }

    fn evaluate(&self, _ctx: &Context<'_>) -> Vec<Finding> {
        Vec::new()
    }
}
