//! `ownerless.no_owner` (being written).

use super::{Context, Rule};
use crate::findings::Finding;

/// See module docs.
pub struct NoOwner;

impl Rule for NoOwner {
    fn id(&self) -> &'static str {
        "ownerless.no_owner"
    }

    fn evaluate(&self, _ctx: &Context<'_>) -> Vec<Finding> {
        Vec::new()
    }
}
