//! A multiset of numbers with a cheap minimum: the last chances of the operations still to be
//! linearized, which change by one element per search step.

use std::collections::BTreeMap;

#[derive(Default)]
pub(crate) struct MultiSet {
    counts: BTreeMap<i64, u32>,
}

impl MultiSet {
    pub(crate) fn insert(&mut self, value: i64) {
        *self.counts.entry(value).or_insert(0) += 1;
    }

    /// Removes one occurrence of `value`, which must be present.
    pub(crate) fn remove(&mut self, value: i64) {
        if let Some(count) = self.counts.get_mut(&value) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&value);
            }
        }
    }

    pub(crate) fn min(&self) -> Option<i64> {
        self.counts.keys().next().copied()
    }
}

impl FromIterator<i64> for MultiSet {
    fn from_iter<I: IntoIterator<Item = i64>>(iter: I) -> Self {
        let mut set = MultiSet::default();
        for value in iter {
            set.insert(value);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_the_minimum_across_duplicates() {
        let mut set: MultiSet = [5, 3, 3].into_iter().collect();
        assert_eq!(set.min(), Some(3));
        set.remove(3);
        assert_eq!(set.min(), Some(3));
        set.remove(3);
        assert_eq!(set.min(), Some(5));
        set.remove(5);
        assert_eq!(set.min(), None);
    }
}
