//! The watch hub: etcd's v3 watch semantics on top of the applier's event feed.
//!
//! Design:
//!
//! * The applier calls [`WatchHub::publish`] once per committed batch. The hub stamps the batch
//!   with the revision span it covers (`from..=to`, contiguous with the previous batch) and puts
//!   it, behind an `Arc`, into one bounded broadcast ring shared by every watch stream. That is
//!   all the applier thread does: it never waits for a client and never copies events per
//!   watcher.
//! * Each client stream is one tokio task ([`WatchHub::serve`]) that owns its watchers. It reads
//!   the ring at its own pace and keeps one clock, `rev`: the revision up to which every
//!   *synced* watcher of the stream has received all of its events. A synced watcher takes its
//!   events from the ring; an *unsynced* one (start revision in the past, or the stream fell
//!   behind) reads them from the store with `ReadView::events`, in bounded rounds, up to `rev`,
//!   and then rejoins the ring at `rev + 1`. Since the store commits a batch before the batch is
//!   published, a store view opened after the stream consumed `rev` always holds `rev`; every
//!   event is filtered by the watcher's next revision, so the switch neither repeats nor drops
//!   an event.
//! * A stream that cannot keep up (its client reads slowly, so its bounded output channel is
//!   full and the ring overtakes it) loses only its place in the ring: all of its watchers turn
//!   unsynced and catch up from the store. Writers and other streams never wait for it.
//! * A store replaced by a leader's snapshot ([`EventSink::store_replaced`]) turns every watcher
//!   of every stream unsynced, so they catch up from the new store.
//!
//! Responses leave the hub with only `header.revision` set; the gRPC layer fills in the cluster
//! ID, member ID and raft term.

mod stream;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use oxcd_proto::mvccpb::Event;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::apply::EventSink;
use crate::store_handle::StoreHandle;

pub use stream::fragment;

/// etcd's default interval of progress notifications for watchers that asked for them.
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(600);
/// The shortest progress interval etcd accepts; shorter settings are raised to it.
pub const MIN_PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// What etcd adds to `--max-request-bytes` for gRPC framing; responses of watchers that allow
/// fragments are split above the sum.
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// Tuning of the hub.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// How often watchers created with `progress_notify` hear the current revision when they got
    /// no events meanwhile (a random tenth of it is added, as etcd does).
    pub progress_interval: Duration,
    /// Responses of watchers created with `fragment` are split into pieces below this size.
    pub max_response_bytes: usize,
    /// How many published batches the shared ring keeps for streams that read behind.
    pub backlog: usize,
    /// At most this many events (never splitting a revision) per catch-up read from the store.
    pub catch_up_events: usize,
    /// Capacity of the channel between a stream's task and the gRPC response stream.
    pub stream_buffer: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            progress_interval: DEFAULT_PROGRESS_INTERVAL,
            max_response_bytes: 1572864 + GRPC_OVERHEAD_BYTES,
            backlog: 256,
            catch_up_events: 1000,
            stream_buffer: 128,
        }
    }
}

impl WatchConfig {
    /// The settings a member's configuration asks for, with etcd's lower bound on the progress
    /// interval (and its warning).
    pub fn from_config(cfg: &oxcd_bootstrap::Config) -> WatchConfig {
        let mut progress = cfg.experimental_watch_progress_notify_interval;
        if progress.is_zero() {
            progress = DEFAULT_PROGRESS_INTERVAL;
        } else if progress < MIN_PROGRESS_INTERVAL {
            tracing::warn!(
                "adjusting watch progress notify interval to minimum period {:?}",
                MIN_PROGRESS_INTERVAL
            );
            progress = MIN_PROGRESS_INTERVAL;
        }
        WatchConfig {
            progress_interval: progress,
            max_response_bytes: cfg.max_request_bytes as usize + GRPC_OVERHEAD_BYTES,
            ..WatchConfig::default()
        }
    }
}

/// One entry of the shared ring.
#[derive(Debug)]
pub(crate) enum Update {
    /// The events of the revisions `from..=to`, in revision order.
    Events {
        from: i64,
        to: i64,
        events: Vec<Event>,
    },
    /// The store was replaced; its revision is now `revision`.
    Replaced { revision: i64 },
}

struct Feed {
    /// The last revision published (or the store's revision when the hub started).
    last: i64,
    tx: broadcast::Sender<Arc<Update>>,
}

/// The watch hub of a member: the applier's [`EventSink`], and the server of watch streams.
pub struct WatchHub {
    store: StoreHandle,
    config: WatchConfig,
    feed: Mutex<Feed>,
}

impl WatchHub {
    pub fn new(store: StoreHandle, config: WatchConfig) -> Arc<WatchHub> {
        let last = store.get().current_revision();
        let (tx, _) = broadcast::channel(config.backlog.max(1));
        Arc::new(WatchHub {
            store,
            config,
            feed: Mutex::new(Feed { last, tx }),
        })
    }

    pub fn config(&self) -> &WatchConfig {
        &self.config
    }

    /// The last revision handed to watchers.
    pub fn revision(&self) -> i64 {
        self.feed.lock().last
    }

    /// A place in the ring, and the revision it starts after.
    fn subscribe(&self) -> (broadcast::Receiver<Arc<Update>>, i64) {
        let feed = self.feed.lock();
        (feed.tx.subscribe(), feed.last)
    }
}

impl EventSink for WatchHub {
    fn publish(&self, revision: i64, events: Vec<Event>) {
        let mut feed = self.feed.lock();
        let mut from = feed.last + 1;
        let mut to = revision;
        for e in &events {
            let r = e.kv.as_ref().map_or(revision, |kv| kv.mod_revision);
            from = from.min(r);
            to = to.max(r);
        }
        feed.last = to;
        // No receivers is not an error: nobody watches.
        let _ = feed.tx.send(Arc::new(Update::Events { from, to, events }));
    }

    fn store_replaced(&self, revision: i64) {
        let mut feed = self.feed.lock();
        feed.last = revision;
        let _ = feed.tx.send(Arc::new(Update::Replaced { revision }));
    }
}
