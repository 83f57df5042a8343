//! [`Overlay`]: key-value versions applied but not yet in the backend file.
//!
//! redb copies every B-tree page a transaction touches, once per transaction, and a durable
//! commit writes and syncs every page dirtied since the previous one (tens of ms once the
//! history is large). Neither belongs on the apply path. The applier therefore writes only
//! here; a flusher thread (see [`crate::flush`]) later writes whole overlays to redb in one
//! transaction each, and until then readers merge the last backend commit (the *base*) with
//! the overlays written after it.
//!
//! An overlay holds the versions of one contiguous run of revisions above `base_rev`. While it
//! is the applier's *active* overlay it grows concurrently with readers, so each reader bounds
//! what it looks at by the revision published when it took its view; once *frozen* (handed to
//! the flusher) it never changes again.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use oxcd_proto::mvccpb::KeyValue;
use parking_lot::{Mutex, RwLock};

use crate::query::KeySpan;
use crate::revision::Revision;

/// One version written after the base.
#[derive(Debug)]
pub(crate) struct Version {
    pub rev: Revision,
    pub tombstone: bool,
    /// The key-value as stored in `revisions`: the whole record for a put, only the key for a
    /// tombstone.
    pub kv: KeyValue,
}

/// The versions of one key, in revision order.
type KeyVersions = RwLock<Vec<Arc<Version>>>;

pub(crate) struct Overlay {
    /// The current revision of the base this overlay continues.
    pub base_rev: i64,
    /// Each key written here, in key order, with its versions. One entry per key rather than
    /// per version: a key written again costs the writer a hash lookup, not a skip-list search
    /// (that search was a third of the applier's time under a put load on a small key space).
    by_key: SkipMap<Bytes, Arc<KeyVersions>>,
    /// The writer's own way to the entries of `by_key`; readers never take this lock.
    writer_index: Mutex<HashMap<Bytes, Arc<KeyVersions>>>,
    /// Every version in revision order. Revisions only ascend, so appending keeps it sorted;
    /// the lock is held only to append, to truncate, or to copy a range out (a second skip
    /// list cost the applier as much as the first).
    by_rev: RwLock<Vec<Arc<Version>>>,
}

/// The newest of `versions` whose main revision is at most `at`.
fn newest_of(versions: &KeyVersions, at: i64) -> Option<Arc<Version>> {
    let versions = versions.read();
    let end = versions.partition_point(|v| v.rev.main <= at);
    end.checked_sub(1).map(|i| versions[i].clone())
}

impl Overlay {
    pub fn new(base_rev: i64) -> Overlay {
        Overlay {
            base_rev,
            by_key: SkipMap::new(),
            writer_index: Mutex::new(HashMap::new()),
            by_rev: RwLock::new(Vec::new()),
        }
    }

    /// Records a version; only the writer calls this.
    pub fn insert(&self, version: Version) -> Arc<Version> {
        let version = Arc::new(version);
        let mut index = self.writer_index.lock();
        match index.get(&version.kv.key) {
            Some(versions) => versions.write().push(version.clone()),
            None => {
                let versions = Arc::new(RwLock::new(vec![version.clone()]));
                self.by_key.insert(version.kv.key.clone(), versions.clone());
                index.insert(version.kv.key.clone(), versions);
            }
        }
        drop(index);
        self.by_rev.write().push(version.clone());
        version
    }

    /// Forgets every version with a main revision above `rev` (an abandoned batch's). Readers
    /// never look above the published revision, so they cannot have seen them.
    pub fn remove_above(&self, rev: i64) {
        let doomed = {
            let mut by_rev = self.by_rev.write();
            let keep = by_rev.partition_point(|v| v.rev.main <= rev);
            by_rev.split_off(keep)
        };
        let mut index = self.writer_index.lock();
        for v in doomed {
            let key = &v.kv.key;
            let Some(versions) = index.get(key) else {
                continue;
            };
            let now_empty = {
                let mut versions = versions.write();
                let keep = versions.partition_point(|v| v.rev.main <= rev);
                versions.truncate(keep);
                versions.is_empty()
            };
            if now_empty {
                index.remove(key);
                self.by_key.remove(key);
            }
        }
    }

    /// The versions from revision `(main, sub)` on, in revision order.
    pub fn versions_from(&self, from: (i64, i64)) -> Vec<Arc<Version>> {
        let by_rev = self.by_rev.read();
        let start = by_rev.partition_point(|v| (v.rev.main, v.rev.sub) < from);
        by_rev[start..].to_vec()
    }

    /// The revision of the newest version, if any.
    pub fn newest_rev(&self) -> Option<Revision> {
        self.by_rev.read().last().map(|v| v.rev)
    }

    /// Every version in (user key, revision) order.
    pub fn by_key(&self) -> impl Iterator<Item = Arc<Version>> + '_ {
        self.by_key.iter().flat_map(|e| {
            let versions = e.value().read().clone();
            versions
        })
    }

    /// How many versions the overlay holds.
    pub fn len(&self) -> usize {
        self.by_rev.read().len()
    }

    /// The newest version of `key` whose main revision is at most `at`.
    pub fn newest_at(&self, key: &[u8], at: i64) -> Option<Arc<Version>> {
        let entry = self.by_key.get(key)?;
        newest_of(entry.value(), at)
    }

    /// For every key of `span` written here at or below `at`: its newest such version, in key
    /// order.
    pub fn newest_in(&self, span: KeySpan<'_>, at: i64) -> Vec<Arc<Version>> {
        if let KeySpan::Single(key) = span {
            return self.newest_at(key, at).into_iter().collect();
        }
        let mut out: Vec<Arc<Version>> = Vec::new();
        for entry in self.by_key.range::<[u8], _>((
            std::ops::Bound::Included(span.start()),
            std::ops::Bound::Unbounded,
        )) {
            let key = entry.key();
            if span.past_end(key) {
                break;
            }
            if !span.contains(key) {
                continue;
            }
            out.extend(newest_of(entry.value(), at));
        }
        out
    }

    /// The versions with main revision in `from..=to`, in revision order.
    pub fn versions(&self, from: i64, to: i64) -> Vec<Arc<Version>> {
        let by_rev = self.by_rev.read();
        let start = by_rev.partition_point(|v| v.rev.main < from);
        let end = by_rev.partition_point(|v| v.rev.main <= to);
        by_rev[start..end.max(start)].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(key: &str, main: i64, sub: i64, tombstone: bool) -> Version {
        Version {
            rev: Revision::new(main, sub),
            tombstone,
            kv: KeyValue {
                key: Bytes::copy_from_slice(key.as_bytes()),
                mod_revision: if tombstone { 0 } else { main },
                ..KeyValue::default()
            },
        }
    }

    #[test]
    fn newest_versions_are_bounded_by_the_reader_revision() {
        let o = Overlay::new(4);
        o.insert(version("a", 5, 0, false));
        o.insert(version("b", 5, 1, false));
        o.insert(version("a", 6, 0, true));
        o.insert(version("c", 7, 0, false));
        assert_eq!(o.len(), 4);
        assert_eq!(o.newest_at(b"a", 5).map(|v| v.tombstone), Some(false));
        assert_eq!(o.newest_at(b"a", 6).map(|v| v.tombstone), Some(true));
        assert!(o.newest_at(b"a", 4).is_none());
        assert!(o.newest_at(b"ab", 9).is_none());
        let keys = |span, at| -> Vec<(String, i64)> {
            o.newest_in(span, at)
                .iter()
                .map(|v| (String::from_utf8_lossy(&v.kv.key).into_owned(), v.rev.main))
                .collect()
        };
        assert_eq!(
            keys(KeySpan::FromKey(b""), 6),
            vec![("a".into(), 6), ("b".into(), 5)]
        );
        assert_eq!(keys(KeySpan::Range(b"b", b"d"), 9).len(), 2);
        assert_eq!(keys(KeySpan::Range(b"a", b"b"), 5), vec![("a".into(), 5)]);
        let revs: Vec<i64> = o.versions(6, 7).iter().map(|v| v.rev.main).collect();
        assert_eq!(revs, vec![6, 7]);
    }

    #[test]
    fn an_abandoned_batch_leaves_no_trace() {
        let o = Overlay::new(4);
        o.insert(version("a", 5, 0, false));
        o.insert(version("a", 6, 0, false));
        o.insert(version("b", 6, 1, false));
        o.remove_above(5);
        assert_eq!(o.len(), 1);
        assert_eq!(o.newest_at(b"a", 9).map(|v| v.rev.main), Some(5));
        assert!(o.newest_at(b"b", 9).is_none());
        let keys: Vec<Bytes> = o.by_key().map(|v| v.kv.key.clone()).collect();
        assert_eq!(keys, vec![Bytes::from_static(b"a")]);
        // A key forgotten entirely can be written again.
        o.insert(version("b", 6, 0, false));
        assert_eq!(o.newest_in(KeySpan::FromKey(b""), 9).len(), 2);
    }
}
