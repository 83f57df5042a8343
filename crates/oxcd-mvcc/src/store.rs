//! [`KvStore`]: the handle to the store's redb database file.
//!
//! The handle is cheap to clone and share between threads. It hands out read snapshots
//! ([`ReadView`]) and write batches ([`WriteBatch`]); redb allows any number of readers next to
//! the single writer. The latest committed bookkeeping values are cached in atomics for
//! lock-free access. The file layout is described in [`crate::tables`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable};

use crate::error::StoreError;
use crate::read::{Meta, ReadView};
use crate::tables::{self, HISTORY, LATEST, META, REVISIONS};
use crate::write::WriteBatch;

/// Default size of redb's page cache. Pages that miss it are read from the kernel's page
/// cache; a larger cache only made the resident memory grow with the history kept since the
/// last compaction (the benchmark's hot pages fit in a few MiB).
pub const DEFAULT_CACHE_SIZE: usize = 16 * 1024 * 1024;

/// Options for [`KvStore::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Bytes of memory redb may use to cache pages.
    pub cache_size: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_size: DEFAULT_CACHE_SIZE,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) db: Database,
    path: PathBuf,
    current_rev: AtomicI64,
    compact_rev: AtomicI64,
    consistent_index: AtomicU64,
    consistent_term: AtomicU64,
    durable_index: AtomicU64,
    /// Bytes of live data and metadata as of the last durable commit (the space quota's view).
    pub(crate) used_bytes: AtomicU64,
    /// A view of the last commit, shared by the reads that come before the next one. Opening a
    /// view (a read transaction, two tables and the bookkeeping values) cost more than the
    /// single-key read itself; every commit drops it, so it never pins pages that later
    /// commits free.
    pub(crate) shared_view: parking_lot::Mutex<Option<Arc<ReadView>>>,
    /// Commits so far: a view opened after reading `n` here sees at least those commits.
    pub(crate) commits: AtomicU64,
}

impl Inner {
    /// After a commit: makes its bookkeeping values visible and retires the shared view.
    pub(crate) fn publish(&self, meta: &Meta, durable: bool) {
        self.commits.fetch_add(1, Ordering::AcqRel);
        let stale = self.shared_view.lock().take();
        drop(stale);
        self.current_rev.store(meta.current_rev, Ordering::Release);
        self.compact_rev.store(meta.compact_rev, Ordering::Release);
        self.consistent_index
            .store(meta.consistent_index, Ordering::Release);
        self.consistent_term
            .store(meta.consistent_term, Ordering::Release);
        if durable {
            self.durable_index
                .store(meta.consistent_index, Ordering::Release);
        }
    }
}

/// The multi-version key-value store. Clones share the same database.
#[derive(Clone)]
pub struct KvStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("path", &self.inner.path)
            .field("current_revision", &self.current_revision())
            .field("compact_revision", &self.compact_revision())
            .field("consistent_index", &self.consistent_index())
            .finish()
    }
}

impl KvStore {
    /// Opens the database file at `path`, creating it (and its parent directories) if needed.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<KvStore, StoreError> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let db = Database::builder()
            .set_cache_size(opts.cache_size)
            .create(path)?;
        let mut used = 0;
        let meta = {
            let txn = db.begin_write()?;
            if let Ok(stats) = txn.stats() {
                used = stats.stored_bytes() + stats.metadata_bytes();
            }
            let meta = {
                txn.open_table(REVISIONS)?;
                txn.open_table(LATEST)?;
                txn.open_table(HISTORY)?;
                let mut meta_t = txn.open_table(META)?;
                let version = meta_t.get(tables::META_FORMAT_VERSION)?.map(|g| g.value());
                match version {
                    None => {
                        meta_t.insert(tables::META_FORMAT_VERSION, tables::FORMAT_VERSION)?;
                        meta_t.insert(tables::META_CURRENT_REVISION, 1)?;
                    }
                    Some(tables::FORMAT_VERSION) => {}
                    Some(v) => {
                        return Err(StoreError::Corrupt(format!(
                            "unsupported on-disk format version {v}"
                        )))
                    }
                }
                Meta::load(&meta_t)?
            };
            txn.commit()?;
            meta
        };
        let inner = Inner {
            db,
            path: path.to_path_buf(),
            current_rev: AtomicI64::new(meta.current_rev),
            compact_rev: AtomicI64::new(meta.compact_rev),
            consistent_index: AtomicU64::new(meta.consistent_index),
            consistent_term: AtomicU64::new(meta.consistent_term),
            durable_index: AtomicU64::new(meta.consistent_index),
            used_bytes: AtomicU64::new(used),
            shared_view: parking_lot::Mutex::new(None),
            commits: AtomicU64::new(0),
        };
        tracing::debug!(path = %path.display(), ?meta, "opened mvcc store");
        Ok(KvStore {
            inner: Arc::new(inner),
        })
    }

    /// A consistent snapshot of the last committed state. Never blocks the writer.
    pub fn read(&self) -> Result<ReadView, StoreError> {
        ReadView::new(self.inner.db.begin_read()?)
    }

    /// A view of the last commit, shared with other reads made since it (see [`Self::read`]).
    pub fn read_shared(&self) -> Result<Arc<ReadView>, StoreError> {
        let commits = self.inner.commits.load(Ordering::Acquire);
        if let Some(view) = self.inner.shared_view.lock().as_ref() {
            return Ok(view.clone());
        }
        let view = Arc::new(self.read()?);
        let mut slot = self.inner.shared_view.lock();
        // Published only if no commit finished since `commits` was read: the view then holds
        // everything committed so far. Otherwise it may miss a commit, and later reads must
        // not get it (this read may: it began before that commit was acknowledged).
        if slot.is_none() && self.inner.commits.load(Ordering::Acquire) == commits {
            *slot = Some(view.clone());
        }
        Ok(view)
    }

    /// Starts a write batch. Only one batch exists at a time: this blocks while another
    /// batch is open. Dropping a batch without committing discards it.
    pub fn write(&self) -> Result<WriteBatch, StoreError> {
        let txn = self.inner.db.begin_write()?;
        WriteBatch::new(self.inner.clone(), txn)
    }

    /// The current revision as of the last commit.
    pub fn current_revision(&self) -> i64 {
        self.inner.current_rev.load(Ordering::Acquire)
    }

    /// The compacted revision as of the last commit (0: never compacted).
    pub fn compact_revision(&self) -> i64 {
        self.inner.compact_rev.load(Ordering::Acquire)
    }

    /// The raft index of the last applied entry, as of the last commit.
    pub fn consistent_index(&self) -> u64 {
        self.inner.consistent_index.load(Ordering::Acquire)
    }

    /// The raft term of the last applied entry, as of the last commit.
    pub fn consistent_term(&self) -> u64 {
        self.inner.consistent_term.load(Ordering::Acquire)
    }

    /// The consistent index of the last durable (fsynced) commit: what survives a crash.
    pub fn durable_consistent_index(&self) -> u64 {
        self.inner.durable_index.load(Ordering::Acquire)
    }

    /// The size of the database file in bytes (etcd's `dbSize`); 0 if it cannot be read.
    pub fn size_bytes(&self) -> u64 {
        std::fs::metadata(&self.inner.path)
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Bytes of live data and metadata (not free pages) as of the last durable commit: what
    /// `--quota-backend-bytes` limits, and what compaction gives back.
    pub fn used_bytes(&self) -> u64 {
        self.inner.used_bytes.load(Ordering::Acquire)
    }

    /// The path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}
