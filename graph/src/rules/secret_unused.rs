//! `secret.unused` (being written).

use super::{Context, Rule};
use crate::findings::Finding;

/// See module docs.
pub struct Unused;

impl Rule for Unused {
    fn id(&self) -> &'static str {
        "secret.unused"
    }

    fn evaluate(&self, _ctx: &Context<'_>) -> Vec<Finding> {
        Vec::new()
    }
}
