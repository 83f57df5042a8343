//! [`ReadView`]: a consistent, read-only snapshot of the store (one redb read transaction).
//!
//! A view never blocks the writer and keeps seeing the state of the moment it was opened,
//! including the bookkeeping values (`meta` table) of that moment.

use oxcd_proto::mvccpb::{event::EventType, Event, KeyValue};
use std::sync::OnceLock;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, TableError};

use crate::error::StoreError;
use crate::query::{self, KeySpan, RangeOptions, RangeResult};
use crate::revision::Revision;
use crate::tables::{self, decode_kv, AuxEntries, HISTORY, HISTORY_PUT, LATEST, META, REVISIONS};

/// The bookkeeping values of the store, as of one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    /// The raft index of the last applied entry.
    pub consistent_index: u64,
    /// The raft term of that entry.
    pub consistent_term: u64,
    /// The current revision (1 for an empty store).
    pub current_rev: i64,
    /// The revision of the last compaction (0: never compacted).
    pub compact_rev: i64,
}

impl Meta {
    pub(crate) fn load<T: ReadableTable<&'static str, u64>>(t: &T) -> Result<Meta, StoreError> {
        let get = |name: &str| -> Result<u64, StoreError> {
            Ok(t.get(name)?.map(|g| g.value()).unwrap_or(0))
        };
        Ok(Meta {
            consistent_index: get(tables::META_CONSISTENT_INDEX)?,
            consistent_term: get(tables::META_CONSISTENT_TERM)?,
            current_rev: (get(tables::META_CURRENT_REVISION)? as i64).max(1),
            compact_rev: get(tables::META_COMPACT_REVISION)? as i64,
        })
    }
}

type HistoryTable = ReadOnlyTable<(&'static [u8], u64, u64), u8>;
type BytesTable = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// A consistent read-only snapshot of the store.
///
/// `history` and `revisions` are opened on first use: reads at the current revision need only
/// `latest`, and opening a redb table (a lookup in the table tree and a type check that formats
/// the tuple type's name) cost a serializable single-key read a fifth of its instructions.
pub struct ReadView {
    pub(crate) txn: ReadTransaction,
    latest: BytesTable,
    history: OnceLock<HistoryTable>,
    revisions: OnceLock<BytesTable>,
    meta: Meta,
}

/// The result of [`ReadView::hash_kv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKv {
    /// CRC-32C over the revision records up to the requested revision.
    pub hash: u32,
    /// The store's current revision.
    pub current_rev: i64,
    /// The store's compacted revision.
    pub compact_rev: i64,
}

impl ReadView {
    pub(crate) fn new(txn: ReadTransaction) -> Result<ReadView, StoreError> {
        let latest = txn.open_table(LATEST)?;
        let meta = Meta::load(&txn.open_table(META)?)?;
        Ok(ReadView {
            txn,
            latest,
            history: OnceLock::new(),
            revisions: OnceLock::new(),
            meta,
        })
    }

    fn history(&self) -> Result<&HistoryTable, StoreError> {
        if let Some(t) = self.history.get() {
            return Ok(t);
        }
        let t = self.txn.open_table(HISTORY)?;
        Ok(self.history.get_or_init(|| t))
    }

    fn revisions(&self) -> Result<&BytesTable, StoreError> {
        if let Some(t) = self.revisions.get() {
            return Ok(t);
        }
        let t = self.txn.open_table(REVISIONS)?;
        Ok(self.revisions.get_or_init(|| t))
    }

    /// The revision this view reads at by default.
    pub fn current_revision(&self) -> i64 {
        self.meta.current_rev
    }

    /// The compacted revision of this view (0: never compacted).
    pub fn compact_revision(&self) -> i64 {
        self.meta.compact_rev
    }

    /// The raft index of the last entry applied in this view.
    pub fn consistent_index(&self) -> u64 {
        self.meta.consistent_index
    }

    /// The raft term of the last entry applied in this view.
    pub fn consistent_term(&self) -> u64 {
        self.meta.consistent_term
    }

    /// All bookkeeping values of this view.
    pub fn meta(&self) -> Meta {
        self.meta
    }

    /// Reads the keys of `span` (see [`RangeOptions`] for the revision and limits).
    pub fn range(&self, span: KeySpan<'_>, opts: RangeOptions) -> Result<RangeResult, StoreError> {
        let rev = query::resolve_rev(opts.rev, self.meta.current_rev, self.meta.compact_rev)?;
        if rev == self.meta.current_rev {
            return query::range_latest(&self.latest, span, opts, rev);
        }
        query::range(
            &self.latest,
            self.history()?,
            self.revisions()?,
            span,
            opts,
            self.meta.current_rev,
            self.meta.compact_rev,
        )
    }

    /// Reads one value of the auxiliary table `table`.
    pub fn get_aux(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let name = tables::aux_table_name(table);
        let def = redb::TableDefinition::<&[u8], &[u8]>::new(&name);
        match self.txn.open_table(def) {
            Ok(t) => Ok(t.get(key)?.map(|v| v.value().to_vec())),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every entry of the auxiliary table `table`, in key order (empty if it does not exist).
    pub fn scan_aux(&self, table: &str) -> Result<AuxEntries, StoreError> {
        let name = tables::aux_table_name(table);
        let def = redb::TableDefinition::<&[u8], &[u8]>::new(&name);
        match self.txn.open_table(def) {
            Ok(t) => {
                let mut out = Vec::new();
                for item in t.iter()? {
                    let (k, v) = item?;
                    out.push((k.value().to_vec(), v.value().to_vec()));
                }
                Ok(out)
            }
            Err(TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// The changes recorded from revision `from_rev` (inclusive) on, in revision order, as
    /// watch events (what a watcher catching up needs). Only keys inside `span` (all keys if
    /// `None`); with `with_prev`, each event carries the key's previous value if the history
    /// still holds it. Stops after the first whole revision that brings the count to `limit`
    /// (0: no limit), so a caller continues from the last event's mod revision + 1. Fails
    /// with [`StoreError::Compacted`] when `from_rev` is below the compacted revision.
    pub fn events(
        &self,
        from_rev: i64,
        span: Option<KeySpan<'_>>,
        with_prev: bool,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        if from_rev < self.meta.compact_rev {
            return Err(StoreError::Compacted);
        }
        let from = Revision::new(from_rev.max(0), 0).to_bytes();
        let mut out: Vec<Event> = Vec::new();
        let mut last_main = None;
        for item in self.revisions()?.range::<&[u8]>(&from[..]..)? {
            let (k, v) = item?;
            let Some((r, tomb)) = Revision::from_key(k.value()) else {
                return Err(StoreError::Corrupt("malformed revision key".into()));
            };
            if limit != 0 && out.len() >= limit && last_main != Some(r.main) {
                break;
            }
            last_main = Some(r.main);
            let mut kv = decode_kv(v.value())?;
            if span.is_some_and(|s| !s.contains(&kv.key)) {
                continue;
            }
            let prev_kv = if with_prev {
                self.value_at(&kv.key, r.main - 1)?
            } else {
                None
            };
            let kind = if tomb {
                kv.mod_revision = r.main;
                EventType::Delete
            } else {
                EventType::Put
            };
            out.push(Event {
                r#type: kind as i32,
                kv: Some(kv),
                prev_kv,
            });
        }
        Ok(out)
    }

    /// The value of `key` at revision `rev` if the history still holds it.
    fn value_at(&self, key: &[u8], rev: i64) -> Result<Option<KeyValue>, StoreError> {
        if rev <= 0 {
            return Ok(None);
        }
        match query::newest_at(self.history()?, key, rev as u64)? {
            Some((r, flag)) if flag == HISTORY_PUT => {
                match self.revisions()?.get(&r.to_bytes()[..])? {
                    Some(v) => Ok(Some(decode_kv(v.value())?)),
                    None => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }

    /// A hash of the key-value history up to `rev` (0: the current revision), computed like
    /// etcd's `HashKV`: CRC-32C (Castagnoli) over `"key"` followed by every stored revision
    /// record (revision key, then encoded value) up to `rev`, in revision order; records at or
    /// below the compacted revision count only while they still are a key's newest version at
    /// `rev` (unless no key exists at `rev`). Members holding the same history get the same hash.
    pub fn hash_kv(&self, rev: i64) -> Result<HashKv, StoreError> {
        let (current, compacted) = (self.meta.current_rev, self.meta.compact_rev);
        if rev > 0 && rev <= compacted {
            return Err(StoreError::Compacted);
        }
        if rev > current {
            return Err(StoreError::FutureRevision);
        }
        let rev = if rev <= 0 { current } else { rev };
        let keep_is_empty = self
            .range(
                KeySpan::FromKey(b""),
                RangeOptions {
                    rev,
                    limit: 1,
                    count_only: false,
                },
            )?
            .kvs
            .is_empty();
        let upper = Revision::new(rev + 1, 0).to_bytes();
        let mut hash = crc32c::crc32c(b"key");
        for item in self.revisions()?.range::<&[u8]>(..&upper[..])? {
            let (k, v) = item?;
            let (k, v) = (k.value(), v.value());
            let Some((r, tomb)) = Revision::from_key(k) else {
                return Err(StoreError::Corrupt("malformed revision key".into()));
            };
            if r.main <= compacted && !keep_is_empty {
                let kv: KeyValue = decode_kv(v)?;
                let kept = !tomb
                    && query::newest_at(self.history()?, &kv.key, rev as u64)?
                        .is_some_and(|(n, _)| n == r);
                if !kept {
                    continue;
                }
            }
            hash = crc32c::crc32c_append(hash, k);
            hash = crc32c::crc32c_append(hash, v);
        }
        Ok(HashKv {
            hash,
            current_rev: current,
            compact_rev: compacted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KvStore, StoreOptions};
    use bytes::Bytes;

    #[test]
    fn events_replay_history() {
        let dir = tempfile::tempdir().unwrap();
        let s = KvStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let mut w = s.write().unwrap();
        let mut live = Vec::new();
        for (k, v) in [("a", "1"), ("b", "1"), ("a", "2")] {
            w.begin_request();
            w.put(Bytes::from(k), Bytes::from(v), 0).unwrap();
            live.extend(w.end_request());
        }
        w.begin_request();
        w.delete_range(KeySpan::FromKey(b"")).unwrap(); // rev 5: a, b
        live.extend(w.end_request());
        w.commit(false).unwrap();

        let v = s.read().unwrap();
        // replayed events equal the ones the batch produced
        assert_eq!(v.events(0, None, true, 0).unwrap(), live);
        let only_a = v.events(3, Some(KeySpan::Single(b"a")), false, 0).unwrap();
        assert_eq!(only_a.len(), 2);
        assert_eq!(only_a[0].kv.as_ref().map(|k| k.version), Some(2));
        assert_eq!(only_a[1].r#type, EventType::Delete as i32);
        assert_eq!(only_a[1].kv.as_ref().map(|k| k.mod_revision), Some(5));
        // the limit never splits a revision
        assert_eq!(v.events(4, None, false, 1).unwrap().len(), 1);
        assert_eq!(v.events(5, None, false, 1).unwrap().len(), 2);
        assert_eq!(v.events(2, None, false, 2).unwrap().len(), 2);
        drop(v);

        let mut w = s.write().unwrap();
        w.compact(4).unwrap();
        w.commit(false).unwrap();
        let v = s.read().unwrap();
        assert!(matches!(
            v.events(3, None, false, 0),
            Err(StoreError::Compacted)
        ));
        assert_eq!(v.events(4, None, false, 0).unwrap().len(), 3);
    }
}
