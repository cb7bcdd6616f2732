//! `secret.standing` (being written).

use super::{Context, Rule};
use crate::findings::Finding;

/// See module docs.
pub struct Standing;

impl Rule for Standing {
    fn id(&self) -> &'static str {
        "secret.standing"
    }

    fn evaluate(&self, _ctx: &Context<'_>) -> Vec<Finding> {
        Vec::new()
    }
}
