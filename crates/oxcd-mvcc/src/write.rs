//! [`WriteBatch`]: the applier's turn at the store, applying a batch of raft entries.
//!
//! Revision rules (etcd's): every raft request that changes something gets one new main
//! revision (`current + 1`); its changes get sub revisions 0, 1, 2, ... in order. A request is
//! delimited by [`WriteBatch::begin_request`] / [`WriteBatch::end_request`]; a request that
//! changed nothing leaves the revision alone. Reads through the batch see its own writes.
//!
//! A batch writes into the store's active [`Overlay`], never into redb: committing publishes
//! it to readers at once, and the flusher thread (see [`crate::flush`]) writes whole overlays
//! to the file later, every [`crate::StoreOptions::flush_versions`] versions or
//! `flush_age`. In the file a put writes the new `KeyValue` to `revisions` (17-byte key),
//! `latest` and `history`; a delete writes a tombstone (18-byte key ending in `b't'`, value: a
//! `KeyValue` with only the key) to `revisions` and `history` and removes the key from
//! `latest`. Compaction at `rev` removes every revision `<= rev` that is not the newest of its
//! key at `rev`, and the newest too when it is a tombstone.
//!
//! A compaction or a write to an auxiliary table needs the file itself: the batch then waits
//! for the flusher to finish, opens a redb transaction of its own holding everything applied
//! so far, and commits it at the end of the batch (a *direct* batch).
//!
//! Durability: [`WriteBatch::commit`] with `durable = false` makes the batch visible to new
//! readers at once, but in the file only after a later flush, which is not fsynced (a crash
//! loses it together with every later flush, never partially). `durable = true` waits until
//! the batch and everything before it are in the file and fsynced;
//! [`WriteBatch::commit_and_persist_soon`] asks for that without waiting
//! ([`crate::KvStore::durable_consistent_index`] tells when it happened). redb reclaims pages
//! freed by non-durable commits only after a durable one, so durable commits should happen
//! regularly.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use oxcd_proto::mvccpb::{event::EventType, Event, KeyValue};
use redb::{ReadableTable, TableError, WriteTransaction};

use crate::error::StoreError;
use crate::flush::{self, write_versions};
use crate::overlay::{Overlay, Version};
use crate::query::{KeySpan, RangeOptions, RangeResult};
use crate::read::{Meta, ReadView};
use crate::revision::Revision;
use crate::store::{Inner, WriterState};
use crate::tables::{
    self, decode_kv, AuxEntries, HISTORY, HISTORY_PUT, HISTORY_TOMBSTONE, REVISIONS,
};

/// How many revision records compaction loads per step.
const COMPACT_CHUNK: usize = 1024;

/// Overlays queued for the flusher (the one being written included) before the applier stops
/// handing over more and lets its active overlay grow instead.
const MAX_QUEUED_FLUSHES: usize = 2;

/// How many times `flush_versions` the active overlay may grow to while the flusher is behind
/// before the applier waits for it: what bounds the memory of unflushed versions.
const MAX_ACTIVE_FLUSHES: usize = 4;

/// When a commit wants the batch to reach the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persist {
    /// With a later flush, not fsynced.
    Later,
    /// With the next flush, fsynced; the commit does not wait for it.
    Soon,
    /// Fsynced before the commit returns.
    Now,
}

/// The redb transaction of a direct batch.
struct Direct {
    txn: WriteTransaction,
    /// The newest version of the active overlay already written into `txn`.
    written: Option<Revision>,
}

/// A batch of changes: the writer's turn at the store.
pub struct WriteBatch {
    // Declared before `state`: an abandoned transaction is dropped while the writer lock is
    // still held.
    direct: Option<Direct>,
    state: parking_lot::ArcMutexGuard<parking_lot::RawMutex, WriterState>,
    inner: Arc<Inner>,
    /// What the batch reads: the base and overlays as of its start, and the active overlay
    /// it writes into.
    view: ReadView,
    /// The bookkeeping values including this batch's changes so far.
    meta: Meta,
    /// The changes of the open request, as watch events.
    pending: Vec<Event>,
    committed: bool,
}

impl Drop for WriteBatch {
    fn drop(&mut self) {
        if !self.committed {
            // Abandoned: its versions go, a direct transaction is aborted; earlier batches
            // stay as they were.
            self.state.active.remove_above(self.state.meta.current_rev);
            self.state.newest.clear();
        }
    }
}

impl WriteBatch {
    pub(crate) fn new(inner: Arc<Inner>) -> Result<WriteBatch, StoreError> {
        let state = inner.writer.lock_arc();
        inner.flush.failed()?;
        let view = inner.writer_view(&state);
        let meta = state.meta;
        Ok(WriteBatch {
            direct: None,
            state,
            inner,
            view,
            meta,
            pending: Vec::new(),
            committed: false,
        })
    }

    /// Marks the start of one raft request. An unfinished previous request is finished
    /// first (its events are dropped).
    pub fn begin_request(&mut self) {
        if !self.pending.is_empty() {
            self.end_request();
        }
    }

    /// Finishes the current request: if it changed anything, the current revision advances
    /// by one. Returns the request's changes as watch events, in order; put events carry the
    /// previous value in `prev_kv`, delete events carry the key and the deleting revision
    /// (and the deleted value in `prev_kv`).
    pub fn end_request(&mut self) -> Vec<Event> {
        if !self.pending.is_empty() {
            self.meta.current_rev += 1;
        }
        std::mem::take(&mut self.pending)
    }

    /// The current revision, not counting the open request.
    pub fn current_revision(&self) -> i64 {
        self.meta.current_rev
    }

    /// The revision reads see: the current revision, plus one while the open request has
    /// changed something.
    pub fn view_revision(&self) -> i64 {
        self.meta.current_rev + i64::from(!self.pending.is_empty())
    }

    /// The revision the open request writes at.
    pub fn write_revision(&self) -> i64 {
        self.meta.current_rev + 1
    }

    /// The compacted revision (0: never compacted).
    pub fn compact_revision(&self) -> i64 {
        self.meta.compact_rev
    }

    /// The consistent index recorded so far.
    pub fn consistent_index(&self) -> u64 {
        self.meta.consistent_index
    }

    /// Whether the open request changed anything yet.
    pub fn request_changed(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Reads the keys of `span`, seeing this batch's own writes.
    pub fn range(&self, span: KeySpan<'_>, opts: RangeOptions) -> Result<RangeResult, StoreError> {
        let meta = Meta {
            current_rev: self.view_revision(),
            ..self.meta
        };
        self.view.range_as_of(span, opts, &meta)
    }

    /// Writes `value` (with `lease`, 0 for none) to `key` in the open request. Returns the
    /// previous key-value if the key existed.
    pub fn put(
        &mut self,
        key: Bytes,
        value: Bytes,
        lease: i64,
    ) -> Result<Option<KeyValue>, StoreError> {
        let rev = Revision::new(self.write_revision(), self.pending.len() as i64);
        let prev = match self.state.newest.get(&key) {
            Some(v) => (!v.tombstone).then(|| v.kv.clone()),
            None => self.view.newest(&key)?,
        };
        let (create_revision, version) = match &prev {
            Some(p) => (p.create_revision, p.version + 1),
            None => (rev.main, 1),
        };
        let kv = KeyValue {
            key,
            create_revision,
            mod_revision: rev.main,
            version,
            value,
            lease,
        };
        let version = self.state.active.insert(Version {
            rev,
            tombstone: false,
            kv: kv.clone(),
        });
        self.state.newest.record(version);
        self.pending.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: prev.clone(),
        });
        Ok(prev)
    }

    /// Deletes every existing key of `span` in the open request. Returns the deleted
    /// key-values in key order.
    pub fn delete_range(&mut self, span: KeySpan<'_>) -> Result<Vec<KeyValue>, StoreError> {
        let found = self.range(span, RangeOptions::default())?;
        let main = self.write_revision();
        for prev in &found.kvs {
            let rev = Revision::new(main, self.pending.len() as i64);
            let tomb = KeyValue {
                key: prev.key.clone(),
                ..KeyValue::default()
            };
            let version = self.state.active.insert(Version {
                rev,
                tombstone: true,
                kv: tomb.clone(),
            });
            self.state.newest.record(version);
            self.pending.push(Event {
                r#type: EventType::Delete as i32,
                kv: Some(KeyValue {
                    mod_revision: main,
                    ..tomb
                }),
                prev_kv: Some(prev.clone()),
            });
        }
        Ok(found.kvs)
    }

    /// The batch's own redb transaction, holding everything applied so far: opened on first
    /// use, once the flusher has written every overlay handed to it.
    fn direct(&mut self) -> Result<&WriteTransaction, StoreError> {
        if self.direct.is_none() {
            self.inner.flush.wait_idle()?;
            let txn = self.inner.db.begin_write()?;
            let written = write_versions(&txn, &self.state.active, None)?;
            self.direct = Some(Direct { txn, written });
        }
        let direct = self
            .direct
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("direct transaction vanished".into()))?;
        // Versions put since the transaction was opened.
        if self.state.active.newest_rev() > direct.written {
            direct.written = write_versions(&direct.txn, &self.state.active, direct.written)?;
        }
        Ok(&direct.txn)
    }

    /// Compacts the history at `rev`: afterwards reads below `rev` fail with
    /// [`StoreError::Compacted`] and the space of the revisions no longer visible at or after
    /// `rev` is freed. Fails with [`StoreError::Compacted`] if `rev` is not above the current
    /// compacted revision and [`StoreError::FutureRevision`] if it is above the current
    /// revision. Cost: proportional to the revisions written since the previous compaction.
    pub fn compact(&mut self, rev: i64) -> Result<(), StoreError> {
        let meta = self.meta;
        if rev <= meta.compact_rev {
            return Err(StoreError::Compacted);
        }
        if rev > meta.current_rev {
            return Err(StoreError::FutureRevision);
        }
        compact_tables(self.direct()?, meta.compact_rev, rev)?;
        self.meta.compact_rev = rev;
        Ok(())
    }

    /// Records the raft index and term of the last entry applied by this batch.
    pub fn set_consistent_index(&mut self, index: u64, term: u64) {
        self.meta.consistent_index = index;
        self.meta.consistent_term = term;
    }

    /// Writes `value` under `key` in the caller-owned table `table` (created on first use).
    pub fn put_aux(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let name = tables::aux_table_name(table);
        let mut t = self
            .direct()?
            .open_table(redb::TableDefinition::<&[u8], &[u8]>::new(&name))?;
        t.insert(key, value)?;
        Ok(())
    }

    /// Removes `key` from the caller-owned table `table`; returns whether it was there.
    pub fn delete_aux(&mut self, table: &str, key: &[u8]) -> Result<bool, StoreError> {
        let name = tables::aux_table_name(table);
        let mut t = self
            .direct()?
            .open_table(redb::TableDefinition::<&[u8], &[u8]>::new(&name))?;
        let removed = t.remove(key)?.is_some();
        Ok(removed)
    }

    /// Reads one value of the caller-owned table `table` (seeing this batch's writes).
    pub fn get_aux(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(direct) = &self.direct else {
            // Auxiliary tables change only in direct batches, which publish their commit
            // before the next batch starts: the base holds them.
            return self.view.get_aux(table, key);
        };
        let name = tables::aux_table_name(table);
        let def = redb::TableDefinition::<&[u8], &[u8]>::new(&name);
        match direct.txn.open_table(def) {
            Ok(t) => Ok(t.get(key)?.map(|v| v.value().to_vec())),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every entry of the caller-owned table `table`, in key order (seeing this batch's writes).
    pub fn scan_aux(&self, table: &str) -> Result<AuxEntries, StoreError> {
        let Some(direct) = &self.direct else {
            return self.view.scan_aux(table);
        };
        let name = tables::aux_table_name(table);
        let def = redb::TableDefinition::<&[u8], &[u8]>::new(&name);
        let t = direct.txn.open_table(def)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Commits the batch (finishing an open request). `durable = false`: visible to new
    /// reads at once, in the file after a later flush (see the module docs); `durable =
    /// true`: in the file and fsynced before returning.
    pub fn commit(self, durable: bool) -> Result<(), StoreError> {
        self.finish(if durable {
            Persist::Now
        } else {
            Persist::Later
        })
    }

    /// Commits the batch like [`Self::commit`] with `durable = false`, and asks for the next
    /// flush, which will hold this batch, to be fsynced; does not wait for it.
    pub fn commit_and_persist_soon(self) -> Result<(), StoreError> {
        self.finish(Persist::Soon)
    }

    fn finish(mut self, persist: Persist) -> Result<(), StoreError> {
        self.end_request();
        let meta = self.meta;
        if let Some(direct) = self.direct.take() {
            write_versions(&direct.txn, &self.state.active, direct.written)?;
            let durable = persist != Persist::Later;
            flush::commit(
                &self.inner,
                direct.txn,
                &meta,
                durable,
                flush::Measure::Always,
            )?;
            self.committed = true;
            let state = &mut *self.state;
            state.meta = meta;
            state.active = Arc::new(Overlay::new(meta.current_rev));
            state.began = None;
            self.inner.publish_direct(&meta, durable)?;
            return Ok(());
        }
        self.committed = true;
        let opts = self.inner.options.clone();
        let inner = self.inner.clone();
        let state = &mut *self.state;
        state.meta = meta;
        let len = state.active.len();
        if len > 0 && state.began.is_none() {
            state.began = Some(Instant::now());
        }
        inner.publish_batch(&meta, &state.active);
        let wait = persist == Persist::Now || opts.flush_versions == 0;
        let durable = persist != Persist::Later || state.durable_pending;
        let due = wait
            || durable
            || len >= opts.flush_versions
            || state.began.is_some_and(|b| b.elapsed() >= opts.flush_age);
        if due {
            if wait || inner.flush.len() < MAX_QUEUED_FLUSHES {
                inner.freeze(state, durable);
            } else if len >= opts.flush_versions.saturating_mul(MAX_ACTIVE_FLUSHES) {
                // The flusher is far behind: wait for it rather than grow without bound.
                inner.flush.wait_below(MAX_QUEUED_FLUSHES)?;
                inner.freeze(state, durable);
            } else if durable {
                state.durable_pending = true;
            }
        }
        if wait {
            inner.flush.wait_idle()?;
        }
        Ok(())
    }
}

/// Removes from `txn`'s tables every revision above `compacted` and at or below `rev` that is
/// not the newest of its key at `rev`, and the newest too when it is a tombstone.
fn compact_tables(txn: &WriteTransaction, compacted: i64, rev: i64) -> Result<(), StoreError> {
    let mut revisions = txn.open_table(REVISIONS)?;
    let mut history = txn.open_table(HISTORY)?;
    let from = Revision::new(compacted + 1, 0).to_bytes().to_vec();
    let upper = Revision::new(rev + 1, 0).to_bytes();
    let mut cursor: Bound<Vec<u8>> = Bound::Included(from);
    loop {
        // Load one chunk of (revision key, user key) above the cursor.
        let mut chunk: Vec<(Vec<u8>, Bytes)> = Vec::with_capacity(COMPACT_CHUNK);
        {
            let lower = match &cursor {
                Bound::Included(c) => Bound::Included(c.as_slice()),
                Bound::Excluded(c) => Bound::Excluded(c.as_slice()),
                Bound::Unbounded => Bound::Unbounded,
            };
            for item in revisions.range::<&[u8]>((lower, Bound::Excluded(&upper[..])))? {
                let (k, v) = item?;
                chunk.push((k.value().to_vec(), decode_kv(v.value())?.key));
                if chunk.len() >= COMPACT_CHUNK {
                    break;
                }
            }
        }
        let Some((last, _)) = chunk.last() else {
            break;
        };
        cursor = Bound::Excluded(last.clone());
        for (_, key) in &chunk {
            // Every revision of `key` at or below `rev`, oldest first; keep only the
            // newest, and not even that if it is a tombstone.
            let mut doomed: Vec<(u64, u64, u8)> = Vec::new();
            for item in history.range((&key[..], 0u64, 0u64)..=(&key[..], rev as u64, u64::MAX))? {
                let (k, v) = item?;
                let (_, main, sub) = k.value();
                doomed.push((main, sub, v.value()));
            }
            if doomed.last().is_some_and(|d| d.2 == HISTORY_PUT) {
                doomed.pop();
            }
            for (main, sub, flag) in doomed {
                history.remove((&key[..], main, sub))?;
                let r = Revision::new(main as i64, sub as i64);
                revisions.remove(&r.to_key(flag == HISTORY_TOMBSTONE)[..])?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KvStore, StoreOptions};
    use redb::ReadableTableMetadata;

    fn store() -> (tempfile::TempDir, KvStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = KvStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        (dir, s)
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn at(s: &KvStore, span: KeySpan<'_>, rev: i64) -> Vec<(String, String, i64, i64, i64)> {
        s.read()
            .unwrap()
            .range(
                span,
                RangeOptions {
                    rev,
                    ..Default::default()
                },
            )
            .unwrap()
            .kvs
            .into_iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(&kv.key).into_owned(),
                    String::from_utf8_lossy(&kv.value).into_owned(),
                    kv.create_revision,
                    kv.mod_revision,
                    kv.version,
                )
            })
            .collect()
    }

    fn one_put(s: &KvStore, k: &str, v: &str) -> Vec<Event> {
        let mut w = s.write().unwrap();
        w.begin_request();
        w.put(b(k), b(v), 0).unwrap();
        let ev = w.end_request();
        w.commit(false).unwrap();
        ev
    }

    #[test]
    fn a_shared_view_never_outlives_a_commit() {
        let (_d, s) = store();
        one_put(&s, "a", "1");
        let v1 = s.read_shared().unwrap();
        assert!(Arc::ptr_eq(&v1, &s.read_shared().unwrap()));
        one_put(&s, "a", "2");
        let v2 = s.read_shared().unwrap();
        assert!(!Arc::ptr_eq(&v1, &v2));
        assert_eq!(v2.current_revision(), 3);
        let got = v2
            .range(KeySpan::Single(b"a"), RangeOptions::default())
            .unwrap();
        assert_eq!(&got.kvs[0].value[..], b"2");
    }

    #[test]
    fn empty_store_starts_at_revision_one() {
        let (_d, s) = store();
        assert_eq!(s.current_revision(), 1);
        assert_eq!(s.read().unwrap().current_revision(), 1);
        assert_eq!(s.compact_revision(), 0);
    }

    #[test]
    fn revisions_versions_and_events() {
        let (_d, s) = store();
        let ev = one_put(&s, "a", "1");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].r#type, EventType::Put as i32);
        assert_eq!(ev[0].prev_kv, None);
        assert_eq!(s.current_revision(), 2);
        one_put(&s, "a", "2");
        assert_eq!(
            at(&s, KeySpan::Single(b"a"), 0),
            vec![("a".into(), "2".into(), 2, 3, 2)]
        );
        assert_eq!(
            at(&s, KeySpan::Single(b"a"), 2),
            vec![("a".into(), "1".into(), 2, 2, 1)]
        );

        // one request with two changes: one revision, sub revisions 0 and 1
        let mut w = s.write().unwrap();
        w.begin_request();
        w.put(b("b"), b("x"), 0).unwrap();
        assert_eq!(w.view_revision(), 4);
        let deleted = w.delete_range(KeySpan::Single(b"a")).unwrap();
        assert_eq!(deleted.len(), 1);
        let ev = w.end_request();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].r#type, EventType::Delete as i32);
        let dkv = ev[1].kv.clone().unwrap();
        assert_eq!(
            (&dkv.key[..], dkv.mod_revision, dkv.version),
            (&b"a"[..], 4, 0)
        );
        assert_eq!(ev[1].prev_kv.as_ref().map(|p| p.mod_revision), Some(3));
        // a request that changes nothing keeps the revision
        w.begin_request();
        assert!(w.delete_range(KeySpan::Single(b"zzz")).unwrap().is_empty());
        assert!(w.end_request().is_empty());
        w.commit(true).unwrap();
        assert_eq!(s.current_revision(), 4);

        // recreate after delete: version resets, new create revision
        one_put(&s, "a", "3");
        assert_eq!(
            at(&s, KeySpan::Single(b"a"), 0),
            vec![("a".into(), "3".into(), 5, 5, 1)]
        );
        assert_eq!(at(&s, KeySpan::Single(b"a"), 4), vec![]);
        assert_eq!(
            at(&s, KeySpan::Single(b"a"), 3),
            vec![("a".into(), "2".into(), 2, 3, 2)]
        );
        assert_eq!(at(&s, KeySpan::Single(b"a"), 1), vec![]);
    }

    #[test]
    fn spans_limits_counts_old_and_new() {
        let (_d, s) = store();
        for (k, v) in [("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")] {
            one_put(&s, k, v);
        } // a=2 b=3 c=4 d=5
        let mut w = s.write().unwrap();
        w.begin_request();
        w.delete_range(KeySpan::Range(b"b", b"d")).unwrap();
        w.end_request();
        w.commit(false).unwrap(); // rev 6
        let v = s.read().unwrap();
        let all = |rev, limit, count_only| {
            v.range(
                KeySpan::FromKey(b""),
                RangeOptions {
                    rev,
                    limit,
                    count_only,
                },
            )
            .unwrap()
        };
        let r = all(0, 0, false);
        assert_eq!((r.count, r.kvs.len(), r.rev), (2, 2, 6));
        let r = all(5, 0, false);
        assert_eq!((r.count, r.kvs.len(), r.rev), (4, 4, 6));
        let r = all(5, 3, false);
        assert_eq!((r.count, r.kvs.len()), (4, 3));
        let r = all(3, 0, true);
        assert_eq!((r.count, r.kvs.len()), (2, 0));
        assert_eq!(at(&s, KeySpan::Range(b"b", b"d"), 5).len(), 2);
        assert_eq!(at(&s, KeySpan::Range(b"b", b"d"), 0).len(), 0);
        assert_eq!(at(&s, KeySpan::Range(b"d", b"b"), 5).len(), 0);
        assert!(matches!(
            v.range(
                KeySpan::Single(b"a"),
                RangeOptions {
                    rev: 7,
                    ..Default::default()
                }
            ),
            Err(StoreError::FutureRevision)
        ));
    }

    #[test]
    fn reads_inside_batch_see_own_writes() {
        let (_d, s) = store();
        let mut w = s.write().unwrap();
        w.begin_request();
        w.put(b("k"), b("v1"), 0).unwrap();
        w.put(b("k"), b("v2"), 0).unwrap();
        let r = w
            .range(KeySpan::Single(b"k"), RangeOptions::default())
            .unwrap();
        assert_eq!(r.kvs[0].version, 2);
        assert_eq!(r.rev, 2);
        assert_eq!(w.end_request().len(), 2);
        // another reader does not see uncommitted data
        assert!(s
            .read()
            .unwrap()
            .range(KeySpan::Single(b"k"), RangeOptions::default())
            .unwrap()
            .kvs
            .is_empty());
        drop(w); // aborted
        assert_eq!(s.current_revision(), 1);
        assert!(s
            .read()
            .unwrap()
            .range(KeySpan::Single(b"k"), RangeOptions::default())
            .unwrap()
            .kvs
            .is_empty());
    }

    #[test]
    fn compaction_keeps_visible_state() {
        let (_d, s) = store();
        one_put(&s, "a", "1"); // 2
        one_put(&s, "a", "2"); // 3
        one_put(&s, "b", "1"); // 4
        let mut w = s.write().unwrap();
        w.begin_request();
        w.delete_range(KeySpan::Single(b"b")).unwrap(); // 5
        w.end_request();
        w.commit(false).unwrap();
        one_put(&s, "a", "3"); // 6
        let before = at(&s, KeySpan::FromKey(b""), 5);

        let mut w = s.write().unwrap();
        assert!(matches!(w.compact(7), Err(StoreError::FutureRevision)));
        w.compact(5).unwrap();
        assert!(matches!(w.compact(5), Err(StoreError::Compacted)));
        w.commit(true).unwrap();
        assert_eq!(s.compact_revision(), 5);
        assert_eq!(at(&s, KeySpan::FromKey(b""), 5), before);
        assert_eq!(
            at(&s, KeySpan::FromKey(b""), 0),
            vec![("a".into(), "3".into(), 2, 6, 3)]
        );
        let v = s.read().unwrap();
        assert!(matches!(
            v.range(
                KeySpan::Single(b"a"),
                RangeOptions {
                    rev: 4,
                    ..Default::default()
                }
            ),
            Err(StoreError::Compacted)
        ));
        // exactly what is visible at 5 and later remains
        let revs = v.base_txn().open_table(REVISIONS).unwrap();
        let keys: Vec<_> = revs
            .iter()
            .unwrap()
            .map(|i| Revision::from_key(i.unwrap().0.value()).unwrap())
            .collect();
        assert_eq!(
            keys,
            vec![(Revision::new(3, 0), false), (Revision::new(6, 0), false)]
        );
        let hist = v.base_txn().open_table(HISTORY).unwrap();
        assert_eq!(hist.len().unwrap(), 2);

        // a second compaction only touches what changed since
        let mut w = s.write().unwrap();
        w.compact(6).unwrap();
        w.commit(true).unwrap();
        let v = s.read().unwrap();
        assert_eq!(
            v.base_txn().open_table(REVISIONS).unwrap().len().unwrap(),
            1
        );
        assert_eq!(
            at(&s, KeySpan::FromKey(b""), 6),
            vec![("a".into(), "3".into(), 2, 6, 3)]
        );
    }

    #[test]
    fn compaction_in_chunks() {
        let (_d, s) = store();
        let mut w = s.write().unwrap();
        for i in 0..3000 {
            w.begin_request();
            w.put(b(&format!("k{}", i % 700)), b(&i.to_string()), 0)
                .unwrap();
            w.end_request();
        }
        w.commit(false).unwrap();
        let want = at(&s, KeySpan::FromKey(b""), 2500);
        let mut w = s.write().unwrap();
        w.compact(2500).unwrap();
        w.commit(false).unwrap();
        assert_eq!(at(&s, KeySpan::FromKey(b""), 2500), want);
        let v = s.read().unwrap();
        // the newest revision of each of the 700 keys at 2500, plus the 501 newer ones
        let n = v.base_txn().open_table(REVISIONS).unwrap().len().unwrap();
        assert_eq!(n, 700 + 501);
    }

    #[test]
    fn aux_tables_and_meta() {
        let (_d, s) = store();
        let mut w = s.write().unwrap();
        assert_eq!(w.get_aux("members", b"1").unwrap(), None);
        w.put_aux("members", b"1", b"one").unwrap();
        w.put_aux("members", b"2", b"two").unwrap();
        assert!(w.delete_aux("members", b"2").unwrap());
        assert!(!w.delete_aux("members", b"2").unwrap());
        w.set_consistent_index(17, 3);
        w.commit(true).unwrap();
        assert_eq!(s.consistent_index(), 17);
        assert_eq!(s.durable_consistent_index(), 17);
        let v = s.read().unwrap();
        assert_eq!(v.consistent_index(), 17);
        assert_eq!(v.consistent_term(), 3);
        assert_eq!(
            v.scan_aux("members").unwrap(),
            vec![(b"1".to_vec(), b"one".to_vec())]
        );
        assert_eq!(v.scan_aux("nothing").unwrap(), vec![]);
        assert_eq!(v.get_aux("members", b"1").unwrap(), Some(b"one".to_vec()));
    }

    #[test]
    fn hash_kv_tracks_history() {
        let (_d, s) = store();
        one_put(&s, "a", "1");
        let h2 = s.read().unwrap().hash_kv(0).unwrap();
        one_put(&s, "a", "2");
        let v = s.read().unwrap();
        assert_eq!(v.hash_kv(2).unwrap().hash, h2.hash);
        assert_ne!(v.hash_kv(0).unwrap().hash, h2.hash);
        assert!(matches!(v.hash_kv(9), Err(StoreError::FutureRevision)));
        // etcd's hash of an empty key bucket
        let (_d2, empty) = store();
        assert_eq!(
            empty.read().unwrap().hash_kv(0).unwrap().hash,
            crc32c::crc32c(b"key")
        );
    }
}
