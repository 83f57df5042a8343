//! The flusher: the thread that moves frozen overlays into the backend file.
//!
//! The applier hands over an overlay (with the bookkeeping values as of its last version) and
//! goes on writing into a fresh one; the flusher writes the overlay into one redb transaction,
//! commits it (fsynced when asked) and publishes the new base, which replaces that overlay for
//! new readers. Jobs are done one at a time and in order, so the file always holds a prefix
//! of what was applied, ending at a whole batch: what a restart replays the WAL on top of.
//!
//! Whatever needs the file itself (a compaction, an auxiliary table, a copy of the store)
//! first waits for the queue to empty.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use redb::{Durability, ReadableDatabase, WriteTransaction};

use crate::error::StoreError;
use crate::overlay::{Overlay, Version};
use crate::read::{BaseView, Meta};
use crate::revision::Revision;
use crate::store::Inner;
use crate::tables::{self, encode_kv, HISTORY, HISTORY_PUT, HISTORY_TOMBSTONE, LATEST, REVISIONS};

/// One overlay to write, with the store's bookkeeping values as of its last version.
pub(crate) struct FlushJob {
    pub overlay: Arc<Overlay>,
    pub meta: Meta,
    pub durable: bool,
}

#[derive(Default)]
struct QueueState {
    /// The job being written stays at the front until it is published.
    jobs: VecDeque<FlushJob>,
    shutdown: bool,
    /// Tests keep overlays frozen by holding the flusher back.
    held: bool,
    /// The first flush that failed; every later write fails with it.
    failed: Option<String>,
}

/// The jobs between the applier and the flusher thread.
#[derive(Default)]
pub(crate) struct FlushQueue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

impl FlushQueue {
    /// Queues a job. The caller has already published its overlay as frozen.
    pub fn push(&self, job: FlushJob) {
        self.state.lock().jobs.push_back(job);
        self.changed.notify_all();
    }

    /// Jobs queued or being written.
    pub fn len(&self) -> usize {
        self.state.lock().jobs.len()
    }

    /// Waits until fewer than `max` jobs are queued or being written.
    pub fn wait_below(&self, max: usize) -> Result<(), StoreError> {
        let mut st = self.state.lock();
        loop {
            if let Some(e) = &st.failed {
                return Err(StoreError::Flush(e.clone()));
            }
            if st.jobs.len() < max {
                return Ok(());
            }
            self.changed.wait(&mut st);
        }
    }

    /// Waits until every queued job is in the file (and published).
    pub fn wait_idle(&self) -> Result<(), StoreError> {
        self.wait_below(1)
    }

    /// The error of a failed flush, if one failed.
    pub fn failed(&self) -> Result<(), StoreError> {
        match &self.state.lock().failed {
            Some(e) => Err(StoreError::Flush(e.clone())),
            None => Ok(()),
        }
    }

    /// While `held`, the flusher takes no job.
    pub fn hold(&self, held: bool) {
        self.state.lock().held = held;
        self.changed.notify_all();
    }

    /// The next job to write (left at the front of the queue), or `None` at shutdown once
    /// the queue is empty.
    fn next(&self) -> Option<(Arc<Overlay>, Meta, bool)> {
        let mut st = self.state.lock();
        loop {
            if let (Some(job), false) = (st.jobs.front(), st.held && !st.shutdown) {
                if st.failed.is_some() {
                    // Nothing after a failed flush may reach the file.
                    st.jobs.clear();
                    self.changed.notify_all();
                    continue;
                }
                return Some((job.overlay.clone(), job.meta, job.durable));
            }
            if st.shutdown {
                return None;
            }
            self.changed.wait(&mut st);
        }
    }

    fn done(&self, result: Result<(), StoreError>) {
        let mut st = self.state.lock();
        st.jobs.pop_front();
        if let Err(e) = result {
            tracing::error!(error = %e, "backend flush failed");
            st.failed.get_or_insert(e.to_string());
        }
        drop(st);
        self.changed.notify_all();
    }
}

/// The flusher thread of one store; dropping the last handle finishes the queued jobs and
/// stops it.
pub(crate) struct Flusher {
    queue: Arc<FlushQueue>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub fn start(inner: Arc<Inner>) -> Result<Flusher, StoreError> {
        let queue = inner.flush.clone();
        let thread = std::thread::Builder::new()
            .name("flush".into())
            .spawn(move || {
                while let Some((overlay, meta, durable)) = inner.flush.next() {
                    // A panic must not leave the job at the front of the queue forever (the
                    // applier would wait for it): it fails the flush like an error does.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        flush(&inner, &overlay, meta, durable)
                    }))
                    .unwrap_or_else(|_| Err(StoreError::Flush("the flusher panicked".into())));
                    inner.flush.done(result);
                }
            })?;
        Ok(Flusher {
            queue,
            thread: Some(thread),
        })
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.queue.state.lock().shutdown = true;
        self.queue.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes `overlay` to the file in one transaction and publishes the result as the base.
fn flush(inner: &Inner, overlay: &Overlay, meta: Meta, durable: bool) -> Result<(), StoreError> {
    let txn = inner.db.begin_write()?;
    write_versions(&txn, overlay, None)?;
    commit(inner, txn, &meta, durable, Measure::UnlessSmall)?;
    let base = BaseView::new(inner.db.begin_read()?)?;
    inner.publish_flushed(base, overlay, durable.then_some(meta.consistent_index));
    Ok(())
}

/// Writes the versions of `overlay` above `after` (all of them if `None`) into `txn`'s
/// tables, and returns the newest revision written. A whole overlay goes to `revisions` in
/// revision order (appends) and to `history` and `latest` in key order, `latest` getting only
/// each key's newest version; the few versions a direct batch adds later go in revision order.
pub(crate) fn write_versions(
    txn: &WriteTransaction,
    overlay: &Overlay,
    after: Option<Revision>,
) -> Result<Option<Revision>, StoreError> {
    let mut revisions = txn.open_table(REVISIONS)?;
    let mut latest = txn.open_table(LATEST)?;
    let mut history = txn.open_table(HISTORY)?;
    let flag = |v: &Version| {
        if v.tombstone {
            HISTORY_TOMBSTONE
        } else {
            HISTORY_PUT
        }
    };
    let mut set_latest = |v: &Version| -> Result<(), StoreError> {
        if v.tombstone {
            latest.remove(&v.kv.key[..])?;
        } else {
            latest.insert(&v.kv.key[..], &encode_kv(&v.kv)[..])?;
        }
        Ok(())
    };
    let mut newest = after;
    let from = after.map_or((i64::MIN, i64::MIN), |r| (r.main, r.sub + 1));
    for v in overlay.versions_from(from) {
        revisions.insert(&v.rev.to_key(v.tombstone)[..], &encode_kv(&v.kv)[..])?;
        if after.is_some() {
            history.insert(
                (&v.kv.key[..], v.rev.main as u64, v.rev.sub as u64),
                flag(&v),
            )?;
            set_latest(&v)?;
        }
        newest = Some(v.rev);
    }
    if after.is_none() {
        let mut versions = overlay.by_key().peekable();
        while let Some(v) = versions.next() {
            history.insert(
                (&v.kv.key[..], v.rev.main as u64, v.rev.sub as u64),
                flag(&v),
            )?;
            if versions.peek().is_none_or(|next| next.kv.key != v.kv.key) {
                set_latest(&v)?;
            }
        }
    }
    Ok(newest)
}

/// How a durable commit refreshes the used bytes the space quota is checked against.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    /// Walk the file's pages (after a compaction: the space it gave back must count at once).
    Always,
    /// Report the file's size while it is below half the quota (see `StoreOptions::quota_bytes`).
    UnlessSmall,
}

/// Writes `meta` and commits `txn`, fsynced if `durable`.
pub(crate) fn commit(
    inner: &Inner,
    mut txn: WriteTransaction,
    meta: &Meta,
    durable: bool,
    measure: Measure,
) -> Result<(), StoreError> {
    {
        let mut t = txn.open_table(tables::META)?;
        t.insert(tables::META_CONSISTENT_INDEX, meta.consistent_index)?;
        t.insert(tables::META_CONSISTENT_TERM, meta.consistent_term)?;
        t.insert(tables::META_CURRENT_REVISION, meta.current_rev as u64)?;
        t.insert(tables::META_COMPACT_REVISION, meta.compact_rev as u64)?;
        t.insert(
            tables::META_SCHEDULED_COMPACT_REVISION,
            meta.compact_rev as u64,
        )?;
    }
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    })?;
    // Measuring walks every page of every table (its cost grows with the history kept), so
    // only durable commits refresh the figure, and only once the file is large enough for the
    // difference to matter.
    if durable {
        let small_file = match measure {
            Measure::UnlessSmall => inner
                .file_len()
                .ok()
                .filter(|len| *len < inner.options.quota_bytes / 2),
            Measure::Always => None,
        };
        let used = small_file.or_else(|| {
            txn.stats()
                .ok()
                .map(|stats| stats.stored_bytes() + stats.metadata_bytes())
        });
        if let Some(used) = used {
            inner
                .used_bytes
                .store(used, std::sync::atomic::Ordering::Release);
        }
    }
    txn.commit()?;
    Ok(())
}
