//! [`ReadView`]: a consistent, read-only snapshot of the store: the last backend commit (one
//! redb read transaction, [`BaseView`]) plus the changes applied after it ([`Overlay`]s), up
//! to the revision published when the view was taken.
//!
//! A view never blocks the writer and keeps seeing the state of the moment it was opened,
//! including the bookkeeping values of that moment.

use oxcd_proto::mvccpb::{event::EventType, Event, KeyValue};
use std::sync::{Arc, OnceLock};

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, TableError};

use crate::error::StoreError;
use crate::overlay::{Overlay, Version};
use crate::query::{self, KeySpan, RangeCollector, RangeOptions, RangeResult};
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

/// Finds the newest revision of a key at the revision being hashed.
pub(crate) type NewestRevision<'a> = dyn Fn(&[u8]) -> Result<Option<Revision>, StoreError> + 'a;

/// Revision records as [`BaseView::records`] yields them.
pub(crate) type RevisionRecords<'a> =
    Box<dyn Iterator<Item = Result<(Revision, bool, KeyValue), StoreError>> + 'a>;

type HistoryTable = ReadOnlyTable<(&'static [u8], u64, u64), u8>;
type BytesTable = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// One backend commit, read through a redb read transaction.
///
/// `history` and `revisions` are opened on first use: reads at the current revision need only
/// `latest`, and opening a redb table (a lookup in the table tree and a type check that formats
/// the tuple type's name) cost a serializable single-key read a fifth of its instructions.
pub(crate) struct BaseView {
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

impl BaseView {
    pub(crate) fn new(txn: ReadTransaction) -> Result<BaseView, StoreError> {
        let latest = txn.open_table(LATEST)?;
        let meta = Meta::load(&txn.open_table(META)?)?;
        Ok(BaseView {
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

    /// Reads the keys of `span` (see [`RangeOptions`] for the revision and limits).
    pub(crate) fn range(
        &self,
        span: KeySpan<'_>,
        opts: RangeOptions,
    ) -> Result<RangeResult, StoreError> {
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
    pub(crate) fn get_aux(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let name = tables::aux_table_name(table);
        let def = redb::TableDefinition::<&[u8], &[u8]>::new(&name);
        match self.txn.open_table(def) {
            Ok(t) => Ok(t.get(key)?.map(|v| v.value().to_vec())),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every entry of the auxiliary table `table`, in key order (empty if it does not exist).
    pub(crate) fn scan_aux(&self, table: &str) -> Result<AuxEntries, StoreError> {
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

    /// The revision records from main revision `from` on, in revision order: each revision,
    /// whether it is a tombstone, and the stored key-value.
    pub(crate) fn records(&self, from: i64) -> Result<RevisionRecords<'_>, StoreError> {
        let from = Revision::new(from.max(0), 0).to_bytes();
        let iter = self.revisions()?.range::<&[u8]>(&from[..]..)?;
        Ok(Box::new(iter.map(|item| {
            let (k, v) = item?;
            let Some((r, tomb)) = Revision::from_key(k.value()) else {
                return Err(StoreError::Corrupt("malformed revision key".into()));
            };
            Ok((r, tomb, decode_kv(v.value())?))
        })))
    }

    /// The value of `key` at revision `rev` if the history still holds it.
    pub(crate) fn value_at(&self, key: &[u8], rev: i64) -> Result<Option<KeyValue>, StoreError> {
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

    /// The newest revision of `key` at or below `rev`, if the history holds one.
    pub(crate) fn newest_rev_at(
        &self,
        key: &[u8],
        rev: i64,
    ) -> Result<Option<Revision>, StoreError> {
        Ok(query::newest_at(self.history()?, key, rev as u64)?.map(|(r, _)| r))
    }

    /// Folds the revision records up to `upto` into `hash` the way [`ReadView::hash_kv`]
    /// describes; `newest` names the newest revision of a key at the hashed revision.
    pub(crate) fn hash_records(
        &self,
        mut hash: u32,
        upto: i64,
        keep_is_empty: bool,
        newest: &NewestRevision<'_>,
    ) -> Result<u32, StoreError> {
        let compacted = self.meta.compact_rev;
        let upper = Revision::new(upto + 1, 0).to_bytes();
        for item in self.revisions()?.range::<&[u8]>(..&upper[..])? {
            let (k, v) = item?;
            let (k, v) = (k.value(), v.value());
            let Some((r, tomb)) = Revision::from_key(k) else {
                return Err(StoreError::Corrupt("malformed revision key".into()));
            };
            if r.main <= compacted && !keep_is_empty {
                let kv: KeyValue = decode_kv(v)?;
                if tomb || newest(&kv.key)? != Some(r) {
                    continue;
                }
            }
            hash = crc32c::crc32c_append(hash, k);
            hash = crc32c::crc32c_append(hash, v);
        }
        Ok(hash)
    }
}

/// A consistent read-only snapshot of the store: a backend commit plus the overlays written
/// after it, up to the revision in `meta`.
pub struct ReadView {
    base: Arc<BaseView>,
    /// Oldest first; each continues the revisions of the one before (the first, the base's).
    overlays: Vec<Arc<Overlay>>,
    meta: Meta,
}

impl ReadView {
    pub(crate) fn new(base: Arc<BaseView>, overlays: Vec<Arc<Overlay>>, meta: Meta) -> ReadView {
        ReadView {
            base,
            overlays,
            meta,
        }
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

    /// The redb transaction of the base, for tests that look at the tables themselves.
    #[cfg(test)]
    pub(crate) fn base_txn(&self) -> &ReadTransaction {
        &self.base.txn
    }

    /// The overlays that may hold versions at or below `rev` (a prefix of them, since their
    /// revisions ascend); empty when the base alone answers for `rev`.
    fn overlays_for(&self, rev: i64) -> &[Arc<Overlay>] {
        let n = self.overlays.partition_point(|o| o.base_rev < rev);
        &self.overlays[..n]
    }

    /// The newest version of `key` at or below `rev` in the overlays, if they hold one.
    fn overlay_version(&self, key: &[u8], rev: i64) -> Option<Arc<Version>> {
        self.overlays_for(rev)
            .iter()
            .rev()
            .find_map(|o| o.newest_at(key, rev))
    }

    /// The newest value of `key`, whatever the view's revision: what the writer builds on.
    pub(crate) fn newest(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        if let Some(v) = self.overlay_version(key, i64::MAX) {
            return Ok((!v.tombstone).then(|| v.kv.clone()));
        }
        match self.base.latest.get(key)? {
            Some(v) => Ok(Some(decode_kv(v.value())?)),
            None => Ok(None),
        }
    }

    /// For every key of `span` in the overlays at or below `rev`: its newest version there,
    /// in key order.
    fn overlay_versions_in(&self, span: KeySpan<'_>, rev: i64) -> Vec<Arc<Version>> {
        let mut merged: Vec<Arc<Version>> = Vec::new();
        for o in self.overlays_for(rev) {
            let newer = o.newest_in(span, rev);
            if merged.is_empty() {
                merged = newer;
                continue;
            }
            // Two key-ordered lists; on equal keys the later overlay's version wins.
            let mut out = Vec::with_capacity(merged.len() + newer.len());
            let mut older = merged.into_iter().peekable();
            for v in newer {
                while let Some(o) = older.next_if(|o| o.kv.key < v.kv.key) {
                    out.push(o);
                }
                older.next_if(|o| o.kv.key == v.kv.key);
                out.push(v);
            }
            out.extend(older);
            merged = out;
        }
        merged
    }

    /// Reads the keys of `span` (see [`RangeOptions`] for the revision and limits).
    pub fn range(&self, span: KeySpan<'_>, opts: RangeOptions) -> Result<RangeResult, StoreError> {
        self.range_as_of(span, opts, &self.meta)
    }

    /// Reads the keys of `span` as if the view's bookkeeping values were `meta` (the writer
    /// reads its own batch this way).
    pub(crate) fn range_as_of(
        &self,
        span: KeySpan<'_>,
        opts: RangeOptions,
        meta: &Meta,
    ) -> Result<RangeResult, StoreError> {
        let rev = query::resolve_rev(opts.rev, meta.current_rev, meta.compact_rev)?;
        if self.overlays_for(rev).is_empty() {
            let mut out = self.base.range(span, RangeOptions { rev, ..opts })?;
            out.rev = meta.current_rev;
            return Ok(out);
        }
        // The base's `latest` is the state at the base revision; the overlays' versions at or
        // below `rev` override it key by key (a tombstone hides the key).
        let mut out = RangeCollector::new(opts, meta.current_rev);
        if span.is_empty() {
            return Ok(out.finish());
        }
        let add_version = |out: &mut RangeCollector, v: &Version| {
            if v.tombstone {
                return Ok(());
            }
            out.add(|| Ok(v.kv.clone()))
        };
        let latest = &self.base.latest;
        let base_iter = match span {
            KeySpan::Single(k) => {
                match self.overlay_version(k, rev) {
                    Some(v) => add_version(&mut out, &v)?,
                    None => {
                        if let Some(v) = latest.get(k)? {
                            out.add(|| decode_kv(v.value()))?;
                        }
                    }
                }
                return Ok(out.finish());
            }
            KeySpan::Range(s, e) => latest.range::<&[u8]>(s..e)?,
            KeySpan::FromKey(s) => latest.range::<&[u8]>(s..)?,
        };
        let mut mine = self.overlay_versions_in(span, rev).into_iter().peekable();
        for item in base_iter {
            let (k, v) = item?;
            let key = k.value();
            while let Some(newer) = mine.next_if(|o| &o.kv.key[..] < key) {
                add_version(&mut out, &newer)?;
            }
            match mine.next_if(|o| &o.kv.key[..] == key) {
                Some(newer) => add_version(&mut out, &newer)?,
                None => out.add(|| decode_kv(v.value()))?,
            }
        }
        for newer in mine {
            add_version(&mut out, &newer)?;
        }
        Ok(out.finish())
    }

    /// Reads one value of the auxiliary table `table`. Auxiliary tables are written only in
    /// backend commits, so the base holds them.
    pub fn get_aux(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.base.get_aux(table, key)
    }

    /// Every entry of the auxiliary table `table`, in key order (empty if it does not exist).
    pub fn scan_aux(&self, table: &str) -> Result<AuxEntries, StoreError> {
        self.base.scan_aux(table)
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
        // The base's records, then the overlays' (each newer than the one before).
        let overlays = self.overlays_for(self.meta.current_rev);
        let base_upto = overlays
            .first()
            .map_or(self.meta.current_rev, |o| o.base_rev);
        let base = if from_rev <= base_upto {
            Some(self.base.records(from_rev)?)
        } else {
            None
        };
        let current = self.meta.current_rev;
        let newer = overlays.iter().flat_map(|o| {
            o.versions(from_rev.max(o.base_rev + 1), current)
                .into_iter()
                .map(|v| Ok((v.rev, v.tombstone, v.kv.clone())))
        });
        let mut out: Vec<Event> = Vec::new();
        let mut last_main = None;
        for record in base.into_iter().flatten().chain(newer) {
            let (r, tomb, mut kv) = record?;
            if limit != 0 && out.len() >= limit && last_main != Some(r.main) {
                break;
            }
            last_main = Some(r.main);
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
        if let Some(v) = self.overlay_version(key, rev) {
            return Ok((!v.tombstone).then(|| v.kv.clone()));
        }
        self.base.value_at(key, rev)
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
        let overlays = self.overlays_for(rev);
        let newest = |key: &[u8]| -> Result<Option<Revision>, StoreError> {
            if let Some(v) = self.overlay_version(key, rev) {
                return Ok(Some(v.rev));
            }
            self.base.newest_rev_at(key, rev)
        };
        let base_upto = overlays.first().map_or(rev, |o| o.base_rev);
        let mut hash =
            self.base
                .hash_records(crc32c::crc32c(b"key"), base_upto, keep_is_empty, &newest)?;
        // Everything in the overlays is newer than any compaction (a compacting batch commits
        // everything to the backend).
        for o in overlays {
            for v in o.versions(o.base_rev + 1, rev) {
                hash = crc32c::crc32c_append(hash, &v.rev.to_key(v.tombstone));
                hash = crc32c::crc32c_append(hash, &tables::encode_kv(&v.kv));
            }
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
