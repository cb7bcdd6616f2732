//! Effective access as plain (principal, resource, action) ids: what two
//! snapshots are compared by, and what the daemon keeps between analyses.
//!
//! At 100k people a set holds 3.4M triples over about 160k distinct ids. As
//! a `BTreeSet` of three shared strings it took about 65 bytes a triple
//! (220 MB, and as much again while it was collected); here each distinct
//! id is stored once, in sorted order, and a triple is three indexes into
//! that list (12 bytes). Because the list is sorted, the order of the index
//! triples is the order of the string triples.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

/// A shared id or action in an [`AccessSet`].
pub type AccessId = Arc<str>;

/// A sorted set of (principal, resource, action) ids.
#[derive(Clone, Debug, Default)]
pub struct AccessSet {
    /// Every id and action the triples name, sorted and unique.
    names: Vec<AccessId>,
    /// Indexes into `names`, sorted and unique.
    triples: Vec<[u32; 3]>,
}

impl AccessSet {
    /// The empty set.
    pub fn new() -> AccessSet {
        AccessSet::default()
    }

    /// A set from names in any order (duplicates allowed) and triples of
    /// indexes into them (any order, duplicates allowed).
    ///
    /// # Panics
    /// If a triple names an index past `names`: callers build both together.
    pub(crate) fn from_parts(names: Vec<AccessId>, mut triples: Vec<[u32; 3]>) -> AccessSet {
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        let mut sorted: Vec<AccessId> = Vec::with_capacity(names.len());
        let mut renumber = vec![0u32; names.len()];
        for old in order {
            let name = &names[old as usize];
            if sorted.last() != Some(name) {
                sorted.push(Arc::clone(name));
            }
            renumber[old as usize] = (sorted.len() - 1) as u32;
        }
        for triple in &mut triples {
            for part in triple.iter_mut() {
                *part = renumber[*part as usize];
            }
        }
        triples.sort_unstable();
        triples.dedup();
        triples.shrink_to_fit();
        sorted.shrink_to_fit();
        AccessSet { names: sorted, triples }
    }

    /// Number of triples.
    pub fn len(&self) -> usize {
        self.triples.len()
    }

    /// Whether the set holds no triple.
    pub fn is_empty(&self) -> bool {
        self.triples.is_empty()
    }

    fn name(&self, index: u32) -> &str {
        &self.names[index as usize]
    }

    fn resolve(&self, &[p, r, a]: &[u32; 3]) -> (&str, &str, &str) {
        (self.name(p), self.name(r), self.name(a))
    }

    /// The triples in order (by principal, then resource, then action).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &str)> + '_ {
        self.triples.iter().map(|t| self.resolve(t))
    }

    /// The index of a name, if the set names it.
    fn find(&self, name: &str) -> Option<u32> {
        self.names.binary_search_by(|n| (**n).cmp(name)).ok().map(|i| i as u32)
    }

    /// Whether the set holds the triple.
    pub fn contains(&self, principal: &str, resource: &str, action: &str) -> bool {
        match (self.find(principal), self.find(resource), self.find(action)) {
            (Some(p), Some(r), Some(a)) => self.triples.binary_search(&[p, r, a]).is_ok(),
            _ => false,
        }
    }

    /// The actions `principal` holds on `resource`, in order.
    pub fn actions_of(&self, principal: &str, resource: &str) -> impl Iterator<Item = &str> + '_ {
        let range = match (self.find(principal), self.find(resource)) {
            (Some(p), Some(r)) => {
                let start = self.triples.partition_point(|t| (t[0], t[1]) < (p, r));
                let end = self.triples.partition_point(|t| (t[0], t[1]) <= (p, r));
                start..end
            }
            _ => 0..0,
        };
        self.triples[range].iter().map(|t| self.name(t[2]))
    }

    /// The triples of `self` that `other` does not hold, in order.
    pub fn difference<'a>(&'a self, other: &'a AccessSet) -> impl Iterator<Item = (&'a str, &'a str, &'a str)> + 'a {
        let mut theirs = other.iter().peekable();
        self.iter().filter(move |mine| {
            while let Some(next) = theirs.peek() {
                match next.cmp(mine) {
                    Ordering::Less => {
                        theirs.next();
                    }
                    Ordering::Equal => return false,
                    Ordering::Greater => break,
                }
            }
            true
        })
    }

    /// The triples of both sets.
    pub fn union(&self, other: &AccessSet) -> AccessSet {
        if other.is_empty() {
            return self.clone();
        }
        let names: Vec<AccessId> = self.names.iter().chain(&other.names).cloned().collect();
        let offset = self.names.len() as u32;
        let triples = self
            .triples
            .iter()
            .copied()
            .chain(other.triples.iter().map(|&[p, r, a]| [p + offset, r + offset, a + offset]))
            .collect();
        AccessSet::from_parts(names, triples)
    }

    /// Every name with its index, for callers that look each up once.
    pub(crate) fn names(&self) -> &[AccessId] {
        &self.names
    }

    /// The triples as indexes into [`AccessSet::names`].
    pub(crate) fn index_triples(&self) -> &[[u32; 3]] {
        &self.triples
    }
}

/// Equal when they hold the same triples (the name lists may differ).
impl PartialEq for AccessSet {
    fn eq(&self, other: &AccessSet) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for AccessSet {}

impl<S: AsRef<str>> FromIterator<(S, S, S)> for AccessSet {
    fn from_iter<I: IntoIterator<Item = (S, S, S)>>(iter: I) -> AccessSet {
        let mut names: Vec<AccessId> = Vec::new();
        let mut numbers: HashMap<AccessId, u32> = HashMap::new();
        let mut number = |name: &str| match numbers.get(name) {
            Some(&n) => n,
            None => {
                let id: AccessId = Arc::from(name);
                let n = names.len() as u32;
                names.push(Arc::clone(&id));
                numbers.insert(id, n);
                n
            }
        };
        let triples: Vec<[u32; 3]> =
            iter.into_iter().map(|(p, r, a)| [number(p.as_ref()), number(r.as_ref()), number(a.as_ref())]).collect();
        AccessSet::from_parts(names, triples)
    }
}

impl<S: AsRef<str>, const N: usize> From<[(S, S, S); N]> for AccessSet {
    fn from(triples: [(S, S, S); N]) -> AccessSet {
        triples.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn reference(set: &AccessSet) -> BTreeSet<(String, String, String)> {
        set.iter().map(|(p, r, a)| (p.to_string(), r.to_string(), a.to_string())).collect()
    }

    #[test]
    fn sorted_unique_and_searchable() {
        let set = AccessSet::from([
            ("q", "r", "read"),
            ("p", "r", "write"),
            ("p", "r", "read"),
            ("p", "r", "read"),
            ("read", "p", "q"),
        ]);
        assert_eq!(set.len(), 4);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [("p", "r", "read"), ("p", "r", "write"), ("q", "r", "read"), ("read", "p", "q")]
        );
        assert!(set.contains("p", "r", "write") && !set.contains("q", "r", "write") && !set.contains("x", "r", "read"));
        assert_eq!(set.actions_of("p", "r").collect::<Vec<_>>(), ["read", "write"]);
        assert_eq!(set.actions_of("r", "p").count(), 0);
        assert!(AccessSet::new().is_empty() && AccessSet::new().iter().next().is_none());
    }

    /// Difference and union agree with `BTreeSet` on overlapping sets whose
    /// name lists differ.
    #[test]
    fn set_operations_agree_with_a_btreeset() {
        let ids = ["a", "b", "c", "d", "read", "write"];
        let make = |seed: usize, n: usize| -> AccessSet {
            (0..n)
                .map(|i| {
                    let x = (i * 7 + seed * 13) % 97;
                    (ids[x % 4], ids[(x / 4) % 4], ids[4 + (x / 16) % 2])
                })
                .collect()
        };
        for (left, right) in [(make(1, 20), make(2, 25)), (make(3, 0), make(4, 9)), (make(5, 30), make(5, 30))] {
            let (l, r) = (reference(&left), reference(&right));
            let expected: Vec<_> = l.difference(&r).cloned().collect();
            let got: Vec<_> =
                left.difference(&right).map(|(p, r, a)| (p.to_string(), r.to_string(), a.to_string())).collect();
            assert_eq!(got, expected);
            assert_eq!(reference(&left.union(&right)), l.union(&r).cloned().collect());
            assert_eq!(left.union(&right), right.union(&left), "one set, whatever the order it was built in");
        }
    }
}
