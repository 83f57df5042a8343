//! The set of linearized operations, with a hash kept up to date on every change so the
//! memo cache can be probed without rehashing the whole set.

/// A fixed-size bitset over operation indices plus a Zobrist hash of its contents.
#[derive(Clone, Debug)]
pub(crate) struct OpSet {
    words: Vec<u64>,
    hash: u64,
}

impl OpSet {
    pub(crate) fn new(len: usize) -> Self {
        OpSet {
            words: vec![0; len.div_ceil(64)],
            hash: 0,
        }
    }

    pub(crate) fn insert(&mut self, op: usize) {
        let (word, bit) = (op / 64, 1u64 << (op % 64));
        debug_assert_eq!(self.words[word] & bit, 0);
        self.words[word] |= bit;
        self.hash ^= zobrist(op);
    }

    pub(crate) fn remove(&mut self, op: usize) {
        let (word, bit) = (op / 64, 1u64 << (op % 64));
        debug_assert_ne!(self.words[word] & bit, 0);
        self.words[word] &= !bit;
        self.hash ^= zobrist(op);
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }
}

/// A fixed pseudo-random key per operation (splitmix64), so that XOR-ing the keys of the
/// members hashes a set in O(1) per insert/remove and identically however it was built.
fn zobrist(op: usize) -> u64 {
    let mut z = (op as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_only_on_members() {
        let mut a = OpSet::new(200);
        let mut b = OpSet::new(200);
        a.insert(3);
        a.insert(150);
        b.insert(150);
        b.insert(7);
        b.insert(3);
        b.remove(7);
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.words(), b.words());
        a.remove(3);
        assert_ne!(a.hash(), b.hash());
    }
}
