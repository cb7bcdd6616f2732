//! `ownerless.owner_inactive` (being written).

use super::{Context, Rule};
use crate::findings::Finding;

/// See module docs.
pub struct OwnerInactive;

impl Rule for OwnerInactive {
    fn id(&self) -> &'static str {
        "ownerless.owner_inactive"
    }

    fn evaluate(&self, _ctx: &Context<'_>) -> Vec<Finding> {
        Vec::new()
    }
}
