//! redb's file backend with paced write-back at durable commits.
//!
//! redb keeps the pages of non-durable commits in its own write buffer and writes them all at
//! the next durable commit, just before the fsync. The kernel then sends megabytes to the disk
//! at once, and every fdatasync of the WAL on the same disk queues behind them: measured here,
//! a 50–100 ms durable commit turned the WAL's 0.1 ms fdatasync into 20–60 ms, which stalled
//! every client of that member. This backend remembers which parts of the file were written
//! since the last sync and, before the fsync, writes them back one chunk at a time, waiting
//! for each, so the disk queue never holds more than one chunk of backend data.

use std::collections::BTreeSet;
use std::fs::File;
use std::ops::Bound;

use parking_lot::Mutex;
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

// redb 4 without its experimental API uses std::io::Error for backend I/O.
type BackendIoError = std::io::Error;

/// How much backend data may be on its way to the disk at once (about 2 ms of this machine's
/// sequential write bandwidth).
const WRITEBACK_CHUNK: u64 = 1024 * 1024;

#[derive(Debug)]
pub struct PacedFile {
    inner: FileBackend,
    /// A second handle on the same file, for `sync_file_range` (redb keeps its own private).
    pacer: File,
    /// Chunk numbers (offset / `WRITEBACK_CHUNK`) written since the last sync.
    dirty: Mutex<BTreeSet<u64>>,
}

impl PacedFile {
    /// Opens (creating if needed) the database file at `path`, as redb's own `create` does.
    pub fn open(path: &std::path::Path) -> std::io::Result<PacedFile> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        PacedFile::new(file)
    }

    fn new(file: File) -> std::io::Result<PacedFile> {
        let pacer = file.try_clone()?;
        let inner = FileBackend::new(file).map_err(std::io::Error::other)?;
        Ok(PacedFile {
            inner,
            pacer,
            dirty: Mutex::new(BTreeSet::new()),
        })
    }

    /// Writes back the dirty chunks one after another, each waited for. Only pacing: the
    /// fsync that follows is what makes the data durable, so a filesystem that refuses
    /// `sync_file_range` just loses the pacing.
    fn write_back_paced(&self) {
        let chunks = std::mem::take(&mut *self.dirty.lock());
        for chunk in chunks {
            if let Err(e) = write_back(&self.pacer, chunk * WRITEBACK_CHUNK, WRITEBACK_CHUNK) {
                tracing::debug!(error = %e, "paced write-back unavailable; fsync writes at once");
                return;
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn write_back(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: the descriptor is owned by `file` and stays open for the call.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere the final fsync writes everything at once, as plain redb does.
#[cfg(not(target_os = "linux"))]
fn write_back(_file: &File, _offset: u64, _len: u64) -> std::io::Result<()> {
    Ok(())
}

impl StorageBackend for PacedFile {
    fn len(&self) -> Result<u64, BackendIoError> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendIoError> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), BackendIoError> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), BackendIoError> {
        self.write_back_paced();
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendIoError> {
        self.inner.write(offset, data)?;
        if !data.is_empty() {
            let first = offset / WRITEBACK_CHUNK;
            let last = (offset + data.len() as u64 - 1) / WRITEBACK_CHUNK;
            self.dirty.lock().extend(first..=last);
        }
        Ok(())
    }

    fn close(&self) -> Result<(), BackendIoError> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

    use super::*;

    const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

    #[test]
    fn a_durable_commit_writes_every_dirty_chunk_back_and_the_file_reads_as_plain_redb() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let backend = PacedFile::open(&path).expect("backend");
        let db = Database::builder()
            .create_with_backend(backend)
            .expect("create");
        let value = vec![7u8; 3000];
        for round in 0..4u64 {
            let mut txn = db.begin_write().expect("begin");
            // Non-durable commits first, then a durable one, as the flusher does.
            if round < 3 {
                txn.set_durability(redb::Durability::None)
                    .expect("durability");
            }
            {
                let mut t = txn.open_table(T).expect("table");
                for i in 0..1000 {
                    t.insert(round * 1000 + i, &value[..]).expect("insert");
                }
            }
            txn.commit().expect("commit");
        }
        drop(db);
        let db = Database::open(&path).expect("reopen with redb's own backend");
        let txn = db.begin_read().expect("read");
        let t = txn.open_table(T).expect("table");
        assert_eq!(t.len().expect("len"), 4000);
        let got = t.get(3999).expect("get").expect("present");
        assert_eq!(got.value(), &value[..]);
    }
}
