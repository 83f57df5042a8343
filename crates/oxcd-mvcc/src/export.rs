//! Whole-database copies, for sending the state machine to a follower that fell behind the log.
//!
//! A copy is made from one read transaction, so it is consistent and never blocks the writer.
//! The result is an ordinary store file: the receiver moves it into place and opens it.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use crate::error::StoreError;
use crate::store::KvStore;
use crate::tables::{AUX_PREFIX, HISTORY, LATEST, META, REVISIONS};

/// The store as of one moment, pinned (a redb read transaction) so that it can be copied out
/// later while writes go on.
pub struct StoreSnapshot {
    txn: redb::ReadTransaction,
}

impl KvStore {
    /// Pins everything applied so far (committing the open transaction first). Called by the
    /// writer's thread between batches, it pins exactly the state of the last batch.
    pub fn snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        self.flush()?;
        Ok(StoreSnapshot {
            txn: self.inner.db.begin_read()?,
        })
    }

    /// Writes a consistent copy of the whole store to a new file at `dest` (fsynced).
    pub fn export_to(&self, dest: &Path) -> Result<(), StoreError> {
        self.snapshot()?.export_to(dest)
    }
}

impl StoreSnapshot {
    /// Writes the pinned state to a new file at `dest` (fsynced).
    pub fn export_to(&self, dest: &Path) -> Result<(), StoreError> {
        let src = &self.txn;
        let _ = std::fs::remove_file(dest);
        let out = Database::create(dest)?;
        let txn = out.begin_write()?;
        {
            copy_bytes_table(src, &txn, REVISIONS)?;
            copy_bytes_table(src, &txn, LATEST)?;
            let from = src.open_table(HISTORY)?;
            let mut to = txn.open_table(HISTORY)?;
            for item in from.iter()? {
                let (k, v) = item?;
                to.insert(k.value(), v.value())?;
            }
            let from = src.open_table(META)?;
            let mut to = txn.open_table(META)?;
            for item in from.iter()? {
                let (k, v) = item?;
                to.insert(k.value(), v.value())?;
            }
            let aux: Vec<String> = src
                .list_tables()?
                .map(|h| h.name().to_string())
                .filter(|n| n.starts_with(AUX_PREFIX))
                .collect();
            for name in aux {
                copy_bytes_table(src, &txn, TableDefinition::new(&name))?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

fn copy_bytes_table(
    src: &redb::ReadTransaction,
    dst: &redb::WriteTransaction,
    def: TableDefinition<&[u8], &[u8]>,
) -> Result<(), StoreError> {
    let from = src.open_table(def)?;
    let mut to = dst.open_table(def)?;
    for item in from.iter()? {
        let (k, v) = item?;
        to.insert(k.value(), v.value())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::query::{KeySpan, RangeOptions};
    use crate::store::{KvStore, StoreOptions};

    #[test]
    fn export_copies_keys_meta_and_aux_tables() {
        let dir = tempfile::tempdir().unwrap();
        let store = KvStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let mut b = store.write().unwrap();
        b.begin_request();
        b.put(Bytes::from_static(b"a"), Bytes::from_static(b"1"), 0)
            .unwrap();
        b.end_request();
        b.put_aux("members", b"m1", b"{}").unwrap();
        b.set_consistent_index(9, 2);
        b.commit(false).unwrap();

        let copy = dir.path().join("copy");
        store.export_to(&copy).unwrap();
        let restored = KvStore::open(&copy, StoreOptions::default()).unwrap();
        assert_eq!(restored.consistent_index(), 9);
        assert_eq!(restored.current_revision(), 2);
        let view = restored.read().unwrap();
        let got = view
            .range(KeySpan::Single(b"a"), RangeOptions::default())
            .unwrap();
        assert_eq!(got.kvs.len(), 1);
        assert_eq!(view.scan_aux("members").unwrap().len(), 1);
    }
}

#[cfg(test)]
mod snapshot_tests {
    use bytes::Bytes;

    use crate::store::{KvStore, StoreOptions};

    #[test]
    fn a_pinned_snapshot_exports_the_state_it_was_taken_at() {
        let dir = tempfile::tempdir().unwrap();
        let store = KvStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let put = |v: &'static [u8]| {
            let mut b = store.write().unwrap();
            b.begin_request();
            b.put(Bytes::from_static(b"a"), Bytes::from_static(v), 0)
                .unwrap();
            b.commit(false).unwrap();
        };
        put(b"1");
        let pinned = store.snapshot().unwrap();
        put(b"2");
        let copy = dir.path().join("copy");
        pinned.export_to(&copy).unwrap();
        drop(pinned);
        let restored = KvStore::open(&copy, StoreOptions::default()).unwrap();
        assert_eq!(restored.current_revision(), 2);
        assert_eq!(store.current_revision(), 3);
    }
}
