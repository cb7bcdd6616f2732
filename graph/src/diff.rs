//! Access changes between two snapshots.

use crate::access::AccessSet;
use serde::Serialize;

/// What changed between two effective-access sets.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AccessDiff {
    /// (principal, resource, action) present only in the later snapshot.
    pub added: Vec<(String, String, String)>,
    /// Present only in the earlier snapshot.
    pub removed: Vec<(String, String, String)>,
}

/// Diffs `before` against `after` (both sorted sets, so the output is sorted).
pub fn diff(before: &AccessSet, after: &AccessSet) -> AccessDiff {
    AccessDiff {
        added: after.difference(before).cloned().collect(),
        removed: before.difference(after).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: &str, r: &str, a: &str) -> (String, String, String) {
        (p.into(), r.into(), a.into())
    }

    #[test]
    fn lists_added_and_removed() {
        let before: AccessSet = [t("p", "r", "read"), t("p", "r", "write")].into();
        let after: AccessSet = [t("p", "r", "read"), t("q", "r", "read")].into();
        let d = diff(&before, &after);
        assert_eq!(d.added, vec![t("q", "r", "read")]);
        assert_eq!(d.removed, vec![t("p", "r", "write")]);
        assert_eq!(diff(&after, &after), AccessDiff::default());
    }
}
