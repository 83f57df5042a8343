//! Revisions and their on-disk key encoding.
//!
//! A revision is the pair `(main, sub)`: `main` is the store revision produced by one raft
//! request, `sub` numbers the changes made inside that request (0, 1, 2, ...).
//!
//! On disk (the `revisions` table) a revision is the 17-byte key
//! `main as u64 big-endian ++ b'_' ++ sub as u64 big-endian`, the layout etcd uses in its
//! `key` bucket, so keys sort by `(main, sub)`. A revision that records a deletion (a
//! tombstone) carries one extra trailing byte `b't'` (18 bytes). Because the tombstone marker
//! is a suffix, a tombstone still sorts right after the 17-byte form of the same revision and
//! before the next revision.

/// Length of an encoded revision without the tombstone marker.
pub const REV_BYTES_LEN: usize = 17;
/// Length of an encoded revision with the tombstone marker.
pub const MARKED_REV_BYTES_LEN: usize = 18;
/// The byte appended to a revision key that records a deletion.
pub const TOMBSTONE_MARK: u8 = b't';

/// One revision: the main revision of a request and the index of a change inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    /// The store revision of the request that made the change.
    pub main: i64,
    /// The position of the change inside its request.
    pub sub: i64,
}

impl Revision {
    /// A revision from its two parts.
    pub const fn new(main: i64, sub: i64) -> Self {
        Revision { main, sub }
    }

    /// The 17-byte key form (no tombstone marker).
    pub fn to_bytes(self) -> [u8; REV_BYTES_LEN] {
        let mut out = [0u8; REV_BYTES_LEN];
        out[..8].copy_from_slice(&(self.main as u64).to_be_bytes());
        out[8] = b'_';
        out[9..].copy_from_slice(&(self.sub as u64).to_be_bytes());
        out
    }

    /// The key form, with the tombstone marker when `tombstone` is set.
    pub fn to_key(self, tombstone: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(MARKED_REV_BYTES_LEN);
        out.extend_from_slice(&self.to_bytes());
        if tombstone {
            out.push(TOMBSTONE_MARK);
        }
        out
    }

    /// Decodes a key written by [`Revision::to_key`]: the revision and whether it is a
    /// tombstone. `None` for bytes of any other shape.
    pub fn from_key(bytes: &[u8]) -> Option<(Revision, bool)> {
        let tombstone = match bytes.len() {
            REV_BYTES_LEN => false,
            MARKED_REV_BYTES_LEN if bytes[REV_BYTES_LEN] == TOMBSTONE_MARK => true,
            _ => return None,
        };
        if bytes[8] != b'_' {
            return None;
        }
        let main = u64::from_be_bytes(bytes[..8].try_into().ok()?) as i64;
        let sub = u64::from_be_bytes(bytes[9..REV_BYTES_LEN].try_into().ok()?) as i64;
        Some((Revision { main, sub }, tombstone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_plain_and_tombstone() {
        let r = Revision::new(42, 3);
        let k = r.to_key(false);
        assert_eq!(k.len(), 17);
        assert_eq!(Revision::from_key(&k), Some((r, false)));
        let t = r.to_key(true);
        assert_eq!(t.len(), 18);
        assert_eq!(t[17], b't');
        assert_eq!(Revision::from_key(&t), Some((r, true)));
    }

    #[test]
    fn layout_matches_etcd() {
        let k = Revision::new(1, 2).to_bytes();
        assert_eq!(k, [0, 0, 0, 0, 0, 0, 0, 1, b'_', 0, 0, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn ordering_follows_main_then_sub() {
        let mut keys = [
            Revision::new(3, 0).to_key(false),
            Revision::new(2, 1).to_key(true),
            Revision::new(2, 1).to_key(false),
            Revision::new(2, 0).to_key(false),
            Revision::new(256, 0).to_key(false),
        ];
        keys.sort();
        let decoded: Vec<_> = keys.iter().filter_map(|k| Revision::from_key(k)).collect();
        assert_eq!(
            decoded,
            vec![
                (Revision::new(2, 0), false),
                (Revision::new(2, 1), false),
                (Revision::new(2, 1), true),
                (Revision::new(3, 0), false),
                (Revision::new(256, 0), false),
            ]
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Revision::from_key(b""), None);
        assert_eq!(Revision::from_key(&[0u8; 17]), None);
        let mut k = Revision::new(1, 1).to_key(false);
        k.push(b'x');
        assert_eq!(Revision::from_key(&k), None);
    }
}
