//! [`KvStore`]: the handle to the store's redb database file.
//!
//! The handle is cheap to clone and share between threads. It hands out read snapshots
//! ([`ReadView`]) and write batches ([`WriteBatch`], one at a time), and owns the flusher
//! thread that moves applied batches into the file ([`crate::flush`]). The latest committed
//! bookkeeping values are cached in atomics for lock-free access. The file layout is described
//! in [`crate::tables`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable};

use crate::error::StoreError;
use crate::flush::{FlushJob, FlushQueue, Flusher};
use crate::overlay::{Overlay, Version};
use crate::read::{BaseView, Meta, ReadView};
use crate::tables::{self, HISTORY, LATEST, META, REVISIONS};
use crate::write::WriteBatch;

/// Default size of redb's page cache. Pages that miss it are read from the kernel's page
/// cache; a larger cache only made the resident memory grow with the history kept since the
/// last compaction (the benchmark's hot pages fit in a few MiB).
pub const DEFAULT_CACHE_SIZE: usize = 8 * 1024 * 1024;

/// Options for [`KvStore::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Bytes of memory redb may use to cache pages.
    pub cache_size: usize,
    /// Applied versions are handed to the flusher once the active overlay holds this many
    /// (0: every commit waits until its batch is in the file)... The larger the flush, the
    /// fewer times each B-tree page is copied and written per version: examples/put_batch
    /// after 300,000 puts cost 10.4 µs of CPU per put flushing every 1024 versions, 8.4 at
    /// 4096 and 7.1 at 16384 (5.5 over the first 20,000 at 4096). Unflushed versions stay in
    /// memory, so this also bounds that memory.
    pub flush_versions: usize,
    /// ...or once the oldest of them is this old (at the put benchmark's rate, ~4,000).
    pub flush_age: Duration,
    /// The space quota the caller checks [`KvStore::used_bytes`] against (0: unknown). Measuring
    /// the used bytes walks every page of the file, so while the file is smaller than half of
    /// this, durable flushes report the file's size instead: a bound that passes the same
    /// checks, found without reading the tree.
    pub quota_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_size: DEFAULT_CACHE_SIZE,
            flush_versions: 8192,
            flush_age: Duration::from_millis(250),
            quota_bytes: 0,
        }
    }
}

/// What readers see: the last backend commit, the overlays applied after it and the
/// bookkeeping values of the last published batch, replaced together.
pub(crate) struct Published {
    base: Arc<BaseView>,
    /// Overlays handed to the flusher and not yet in `base`, oldest first.
    frozen: Vec<Arc<Overlay>>,
    /// The applier's overlay as of its last commit (`None` while empty).
    active: Option<Arc<Overlay>>,
    meta: Meta,
    /// A view of exactly this state, shared by the reads that come before the next publish.
    /// Building one is cheap (no redb transaction), but sharing saves the allocation.
    shared: Option<Arc<ReadView>>,
}

impl Published {
    fn view(&self) -> ReadView {
        let overlays = self.frozen.iter().chain(&self.active).cloned().collect();
        ReadView::new(self.base.clone(), overlays, self.meta)
    }
}

/// The writer's side: what the next batch continues from. Its lock is the single-writer lock;
/// a [`WriteBatch`] holds it for its whole life.
pub(crate) struct WriterState {
    /// Where batches write; handed to the flusher (frozen) and replaced now and then.
    pub active: Arc<Overlay>,
    /// The bookkeeping values after the last committed batch.
    pub meta: Meta,
    /// When the first version went into `active`.
    pub began: Option<Instant>,
    /// A durable flush was asked for while the flusher was busy: the next hand-over is one.
    pub durable_pending: bool,
    /// The newest version of the keys written lately (see [`NewestVersions`]).
    pub newest: NewestVersions,
}

/// At most this many key and value bytes are kept alive by [`NewestVersions`].
const NEWEST_VERSIONS_BYTES: usize = 4 << 20;

/// The newest version of each key the writer wrote lately, so that a put finds what it builds
/// on (create revision, version, previous value) without searching every overlay and the
/// base. A put's search was half of the applier's time. Correct because only the writer
/// changes what is newest, and it records every version it inserts here; an abandoned batch
/// clears it. Bounded by bytes: when full it starts over.
#[derive(Default)]
pub(crate) struct NewestVersions {
    by_key: std::collections::HashMap<Bytes, Arc<Version>>,
    bytes: usize,
}

impl NewestVersions {
    /// `None`: not known here (ask the view). `Some(v)`: the newest version, maybe a tombstone.
    pub fn get(&self, key: &[u8]) -> Option<&Arc<Version>> {
        self.by_key.get(key)
    }

    pub fn record(&mut self, version: Arc<Version>) {
        let size = version.kv.key.len() + version.kv.value.len();
        if self.bytes + size > NEWEST_VERSIONS_BYTES {
            self.clear();
        }
        self.bytes += size;
        if let Some(old) = self.by_key.insert(version.kv.key.clone(), version) {
            self.bytes -= old.kv.key.len() + old.kv.value.len();
        }
    }

    pub fn clear(&mut self) {
        self.by_key.clear();
        self.bytes = 0;
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
    published: parking_lot::Mutex<Published>,
    pub(crate) writer: Arc<parking_lot::Mutex<WriterState>>,
    pub(crate) flush: Arc<FlushQueue>,
    pub(crate) options: StoreOptions,
}

impl Inner {
    /// The size of the database file in bytes.
    pub(crate) fn file_len(&self) -> std::io::Result<u64> {
        std::fs::metadata(&self.path).map(|m| m.len())
    }

    /// What a new batch reads: the published base and frozen overlays, and the active one.
    pub(crate) fn writer_view(&self, state: &WriterState) -> ReadView {
        let p = self.published.lock();
        let overlays = p
            .frozen
            .iter()
            .cloned()
            .chain(std::iter::once(state.active.clone()))
            .collect();
        ReadView::new(p.base.clone(), overlays, state.meta)
    }

    /// After a batch: readers see it through the active overlay.
    pub(crate) fn publish_batch(&self, meta: &Meta, active: &Arc<Overlay>) {
        let stale = {
            let mut p = self.published.lock();
            p.active = (active.len() > 0).then(|| active.clone());
            p.meta = *meta;
            p.shared.take()
        };
        drop(stale);
        self.publish_meta(meta);
    }

    /// Hands the active overlay to the flusher and starts a new one. Called by the writer.
    pub(crate) fn freeze(&self, state: &mut WriterState, durable: bool) {
        let fresh = Arc::new(Overlay::new(state.meta.current_rev));
        let overlay = std::mem::replace(&mut state.active, fresh);
        state.began = None;
        state.durable_pending = false;
        if overlay.len() > 0 {
            let mut p = self.published.lock();
            p.frozen.push(overlay.clone());
            p.active = None;
        }
        self.flush.push(FlushJob {
            overlay,
            meta: state.meta,
            durable,
        });
    }

    /// After the flusher committed `overlay` (the oldest frozen one): `base` holds it.
    pub(crate) fn publish_flushed(&self, base: BaseView, overlay: &Overlay, durable: Option<u64>) {
        let stale = {
            let mut p = self.published.lock();
            let old = std::mem::replace(&mut p.base, Arc::new(base));
            if p.frozen
                .first()
                .is_some_and(|f| std::ptr::eq(f.as_ref(), overlay))
            {
                p.frozen.remove(0);
            }
            (old, p.shared.take())
        };
        drop(stale);
        if let Some(index) = durable {
            self.durable_index.store(index, Ordering::Release);
        }
    }

    /// After a direct batch committed its own transaction: the file holds everything.
    pub(crate) fn publish_direct(&self, meta: &Meta, durable: bool) -> Result<(), StoreError> {
        let base = BaseView::new(self.db.begin_read()?)?;
        let stale = {
            let mut p = self.published.lock();
            let old = std::mem::replace(&mut p.base, Arc::new(base));
            p.frozen.clear();
            p.active = None;
            p.meta = *meta;
            (old, p.shared.take())
        };
        drop(stale);
        self.publish_meta(meta);
        if durable {
            self.durable_index
                .store(meta.consistent_index, Ordering::Release);
        }
        Ok(())
    }

    fn publish_meta(&self, meta: &Meta) {
        self.current_rev.store(meta.current_rev, Ordering::Release);
        self.compact_rev.store(meta.compact_rev, Ordering::Release);
        self.consistent_index
            .store(meta.consistent_index, Ordering::Release);
        self.consistent_term
            .store(meta.consistent_term, Ordering::Release);
    }
}

/// The multi-version key-value store. Clones share the same database.
#[derive(Clone)]
pub struct KvStore {
    pub(crate) inner: Arc<Inner>,
    /// Stops the flusher (after it finished what was queued) when the last clone goes.
    _flusher: Arc<Flusher>,
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
            .create_with_backend(crate::paced_file::PacedFile::open(path)?)?;
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
                frozen: Vec::new(),
                active: None,
                meta,
                shared: None,
            }),
            writer: Arc::new(parking_lot::Mutex::new(WriterState {
                active: Arc::new(Overlay::new(meta.current_rev)),
                meta,
                began: None,
                durable_pending: false,
                newest: NewestVersions::default(),
            })),
            flush: Arc::new(FlushQueue::default()),
            options: opts,
        };
        tracing::debug!(path = %path.display(), ?meta, "opened mvcc store");
        let inner = Arc::new(inner);
        let flusher = Flusher::start(inner.clone())?;
        Ok(KvStore {
            inner,
            _flusher: Arc::new(flusher),
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
    /// batch is open. Dropping a batch without committing discards its changes.
    pub fn write(&self) -> Result<WriteBatch, StoreError> {
        WriteBatch::new(self.inner.clone())
    }

    /// Waits until the database file holds everything applied so far (not fsynced). Waits
    /// for a batch in progress.
    pub fn flush(&self) -> Result<(), StoreError> {
        {
            let mut state = self.inner.writer.lock();
            if state.active.len() > 0 {
                self.inner.freeze(&mut state, false);
            }
        }
        self.inner.flush.wait_idle()
    }

    /// Asks the flusher to make everything applied so far durable (fsynced) and returns at
    /// once; [`Self::durable_consistent_index`] tells when it is done.
    pub fn persist_soon(&self) {
        let mut state = self.inner.writer.lock();
        let durable = self.inner.durable_index.load(Ordering::Acquire);
        if state.active.len() == 0
            && self.inner.flush.len() == 0
            && durable == state.meta.consistent_index
        {
            // Nothing was applied since the last durable flush: no need to sync again.
            return;
        }
        self.inner.freeze(&mut state, true);
    }

    /// Holds the flusher back (true) or lets it go on (false), so that tests can read through
    /// overlays that are frozen but not yet in the file. Not for servers: while held, a batch
    /// waits once too much is queued.
    #[doc(hidden)]
    pub fn hold_flushes(&self, held: bool) {
        self.inner.flush.hold(held);
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
        self.inner.file_len().unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revision::Revision;
    use oxcd_proto::mvccpb::KeyValue;

    fn version(key: &str, main: i64, value_len: usize) -> Arc<Version> {
        Arc::new(Version {
            rev: Revision::new(main, 0),
            tombstone: false,
            kv: KeyValue {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: Bytes::from(vec![7u8; value_len]),
                mod_revision: main,
                ..KeyValue::default()
            },
        })
    }

    #[test]
    fn newest_versions_keep_the_last_write_of_a_key_and_stay_within_their_bytes() {
        let mut newest = NewestVersions::default();
        newest.record(version("a", 2, 10));
        newest.record(version("a", 3, 10));
        assert_eq!(newest.get(b"a").map(|v| v.rev.main), Some(3));
        assert_eq!(newest.bytes, 11);
        assert!(newest.get(b"b").is_none());
        for main in 4..2000 {
            newest.record(version(&format!("k{main}"), main, 64 << 10));
            assert!(newest.bytes <= NEWEST_VERSIONS_BYTES);
        }
        // Starting over forgot the oldest keys, never gave a wrong answer for them.
        assert!(newest.get(b"a").is_none());
        assert_eq!(newest.get(b"k1999").map(|v| v.rev.main), Some(1999));
    }
}
