//! The memo of configurations already explored: (linearized set, model state) pairs. Lowe's
//! key observation is that two search paths reaching the same pair have the same future, so a
//! pair that was explored once and led nowhere never needs exploring again.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};

use super::bitset::OpSet;

/// A linearized set (its bitset words) and a state.
type Configuration<S> = (Box<[u64]>, S);

pub(crate) struct Memo<S> {
    /// Keyed by a combined hash; the bucket holds exact copies to compare against, so a hash
    /// collision can never prune a configuration that was not really explored.
    buckets: HashMap<u64, Vec<Configuration<S>>, BuildHasherDefault<PreHashed>>,
}

impl<S: Clone + Eq + Hash> Memo<S> {
    pub(crate) fn new() -> Self {
        Memo {
            buckets: HashMap::default(),
        }
    }

    /// Records the configuration; false if it was recorded before.
    pub(crate) fn insert(&mut self, set: &OpSet, state: &S) -> bool {
        let mut hasher = DefaultHasher::new();
        state.hash(&mut hasher);
        let key = set.hash() ^ hasher.finish();
        let bucket = self.buckets.entry(key).or_default();
        if bucket
            .iter()
            .any(|(words, seen)| seen == state && **words == *set.words())
        {
            return false;
        }
        bucket.push((set.words().into(), state.clone()));
        true
    }
}

/// The map's keys are already well-mixed hashes; hashing them again would only cost time.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_exact_configurations() {
        let mut memo = Memo::new();
        let mut set = OpSet::new(10);
        assert!(memo.insert(&set, &1u32));
        assert!(!memo.insert(&set, &1u32));
        assert!(memo.insert(&set, &2u32));
        set.insert(4);
        assert!(memo.insert(&set, &1u32));
        assert!(!memo.insert(&set, &1u32));
    }
}
