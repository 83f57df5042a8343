//! [`KvStore`]: the handle to the store's redb database file.
//!
//! The handle is cheap to clone and share between threads. It hands out read snapshots
//! ([`ReadView`]) and write batches ([`WriteBatch`]); redb allows any number of readers next to
//! the single writer. The latest committed bookkeeping values are cached in atomics for
//! lock-free access. The file layout is described in [`crate::tables`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable};

use crate::error::StoreError;
use crate::overlay::Overlay;
use crate::read::{BaseView, Meta, ReadView};
use crate::tables::{self, HISTORY, LATEST, META, REVISIONS};
use crate::write::{OpenTxn, WriteBatch};

/// Default size of redb's page cache. Pages that miss it are read from the kernel's page
/// cache; a larger cache only made the resident memory grow with the history kept since the
/// last compaction (the benchmark's hot pages fit in a few MiB).
pub const DEFAULT_CACHE_SIZE: usize = 16 * 1024 * 1024;

/// Options for [`KvStore::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Bytes of memory redb may use to cache pages.
    pub cache_size: usize,
    /// A non-durable commit leaves the backend transaction open (its changes readable through
    /// the overlay) until it holds this many versions (0: every commit reaches the backend)...
    /// Measured on the 3-member put benchmark: 1024 versions / 25 ms gave ~10% more puts/s
    /// than committing every batch at the same p99; 4096 / 100 ms no more puts/s, and a worse
    /// p99 (each commit then stalls the applier for several ms).
    pub flush_versions: usize,
    /// ...or until it is this old.
    pub flush_age: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_size: DEFAULT_CACHE_SIZE,
            flush_versions: 1024,
            flush_age: Duration::from_millis(25),
        }
    }
}

/// What readers see: the last backend commit, the overlay written after it and the
/// bookkeeping values of the last published batch, replaced together.
pub(crate) struct Published {
    base: Arc<BaseView>,
    /// The meta of the base commit itself.
    base_meta: Meta,
    overlay: Option<Arc<Overlay>>,
    meta: Meta,
    /// A view of exactly this state, shared by the reads that come before the next publish.
    /// Building one is cheap (no redb transaction), but sharing saves the allocation.
    shared: Option<Arc<ReadView>>,
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
    pub(crate) published: parking_lot::Mutex<Published>,
    /// The backend transaction left open by the last non-durable commit, if any. A
    /// [`WriteBatch`] holds this lock for its whole life: it is the single-writer lock.
    pub(crate) writer: Arc<parking_lot::Mutex<Option<OpenTxn>>>,
    pub(crate) options: StoreOptions,
}

impl Published {
    fn view(&self) -> ReadView {
        ReadView::new(self.base.clone(), self.overlay.clone(), self.meta)
    }
}

impl Inner {
    /// After a batch that stayed in the open transaction: its changes are in `overlay`.
    pub(crate) fn publish_overlay(&self, meta: &Meta, overlay: &Arc<Overlay>) {
        let stale = {
            let mut p = self.published.lock();
            p.overlay = Some(overlay.clone());
            p.meta = *meta;
            p.shared.take()
        };
        drop(stale);
        self.publish_meta(meta, false);
    }

    /// After a backend commit: `base` reads it, and no overlay is needed.
    pub(crate) fn publish_base(&self, base: BaseView, meta: &Meta, durable: bool) {
        let stale = {
            let mut p = self.published.lock();
            let old = std::mem::replace(&mut p.base, Arc::new(base));
            p.base_meta = *meta;
            p.overlay = None;
            p.meta = *meta;
            (old, p.shared.take())
        };
        drop(stale);
        self.publish_meta(meta, durable);
    }

    /// Forgets the overlay (its transaction was dropped): readers see the base again.
    pub(crate) fn discard_overlay(&self) {
        let (meta, stale) = {
            let mut p = self.published.lock();
            p.overlay = None;
            p.meta = p.base_meta;
            (p.meta, p.shared.take())
        };
        drop(stale);
        self.publish_meta(&meta, false);
    }

    fn publish_meta(&self, meta: &Meta, durable: bool) {
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
        let opts = opts.clone();
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
        let base = BaseView::new(db.begin_read()?)?;
        let inner = Inner {
            db,
            path: path.to_path_buf(),
            current_rev: AtomicI64::new(meta.current_rev),
            compact_rev: AtomicI64::new(meta.compact_rev),
            consistent_index: AtomicU64::new(meta.consistent_index),
            consistent_term: AtomicU64::new(meta.consistent_term),
            durable_index: AtomicU64::new(meta.consistent_index),
            used_bytes: AtomicU64::new(used),
            published: parking_lot::Mutex::new(Published {
                base: Arc::new(base),
                base_meta: meta,
                overlay: None,
                meta,
                shared: None,
            }),
            writer: Arc::new(parking_lot::Mutex::new(None)),
            options: opts,
        };
        tracing::debug!(path = %path.display(), ?meta, "opened mvcc store");
        Ok(KvStore {
            inner: Arc::new(inner),
        })
    }

    /// A consistent snapshot of everything applied so far. Never blocks the writer.
    pub fn read(&self) -> Result<ReadView, StoreError> {
        Ok(self.inner.published.lock().view())
    }

    /// Like [`Self::read`], but shared with the other reads made since the last publish.
    pub fn read_shared(&self) -> Result<Arc<ReadView>, StoreError> {
        let mut p = self.inner.published.lock();
        if let Some(view) = &p.shared {
            return Ok(view.clone());
        }
        let view = Arc::new(p.view());
        p.shared = Some(view.clone());
        Ok(view)
    }

    /// Starts a write batch. Only one batch exists at a time: this blocks while another
    /// batch is open. Dropping a batch without committing discards it, and with it every
    /// change since the last backend commit (see [`WriteBatch`]).
    pub fn write(&self) -> Result<WriteBatch, StoreError> {
        WriteBatch::new(self.inner.clone())
    }

    /// Commits the transaction a non-durable commit left open, so that the database file holds
    /// everything applied so far (not fsynced). Waits for a batch in progress.
    pub fn flush(&self) -> Result<(), StoreError> {
        if self.inner.writer.lock().is_none() {
            return Ok(());
        }
        self.write()?.commit_to_backend(false)
    }

    /// The current revision as of the last published batch.
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
