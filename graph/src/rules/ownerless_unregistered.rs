//! `ownerless.unregistered` (being written).

use super::{Context, Rule};
use crate::findings::Finding;

/// See module docs.
pub struct Unregistered;

impl Rule for Unregistered {
    fn id(&self) -> &'static str {
        "ownerless.unregistered"
    }

    fn evaluate(&self, _ctx: &Context<'_>) -> Vec<Finding> {
        Vec::new()
    }
}
