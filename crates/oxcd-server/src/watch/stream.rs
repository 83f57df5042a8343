//! One client watch stream: its watchers, its place in the hub's ring, and the catch-up of
//! watchers that are behind. See the module documentation of [`super`] for the design.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use oxcd_mvcc::{KeySpan, StoreError};
use oxcd_proto::etcdserverpb::{
    watch_create_request::FilterType, watch_request::RequestUnion, ResponseHeader,
    WatchCreateRequest, WatchRequest, WatchResponse,
};
use oxcd_proto::mvccpb::{event::EventType, Event};
use prost::Message as _;
use rand::Rng as _;
use tokio::sync::{broadcast, mpsc};

use super::{Update, WatchHub};

/// The watch ID of responses that belong to no watcher (etcd's `InvalidWatchID`).
const INVALID_WATCH_ID: i64 = -1;

// etcd's messages for refused watch requests.
const ERR_EMPTY_RANGE: &str = "mvcc: watcher range is empty";
const ERR_DUPLICATE_ID: &str = "mvcc: duplicate watch ID provided on the WatchStream";

/// The client went away: the stream ends.
struct Closed;

/// The keys a watcher follows.
#[derive(Clone, Debug)]
enum Span {
    Single(Vec<u8>),
    Range(Vec<u8>, Vec<u8>),
    FromKey(Vec<u8>),
}

impl Span {
    fn as_key_span(&self) -> KeySpan<'_> {
        match self {
            Span::Single(k) => KeySpan::Single(k),
            Span::Range(k, e) => KeySpan::Range(k, e),
            Span::FromKey(k) => KeySpan::FromKey(k),
        }
    }

    fn contains(&self, key: &[u8]) -> bool {
        self.as_key_span().contains(key)
    }
}

struct Watcher {
    span: Span,
    /// The first revision whose events this watcher has not received yet.
    next_rev: i64,
    /// Takes its events from the ring (else it catches up from the store).
    synced: bool,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    fragment: bool,
    progress_notify: bool,
    /// No events went out since the last progress tick (etcd sends a notification only then).
    progress_due: bool,
}

impl Watcher {
    /// What this watcher is sent of `ev`, if anything.
    fn wants(&self, ev: &Event) -> bool {
        let Some(kv) = ev.kv.as_ref() else {
            return false;
        };
        if kv.mod_revision < self.next_rev || !self.span.contains(&kv.key) {
            return false;
        }
        self.passes_filters(ev)
    }

    fn passes_filters(&self, ev: &Event) -> bool {
        let is_delete = ev.r#type == EventType::Delete as i32;
        !((is_delete && self.no_delete) || (!is_delete && self.no_put))
    }

    fn shape(&self, ev: &Event) -> Event {
        let mut ev = ev.clone();
        if !self.prev_kv {
            ev.prev_kv = None;
        }
        ev
    }
}

enum Step {
    Closed,
    Feed(Result<Arc<Update>, broadcast::error::RecvError>),
    Request(Option<WatchRequest>),
    Tick,
    CatchUp,
}

pub(super) struct StreamState {
    hub: Arc<WatchHub>,
    out: mpsc::Sender<WatchResponse>,
    feed: broadcast::Receiver<Arc<Update>>,
    /// Every synced watcher has received all of its events up to this revision.
    rev: i64,
    watchers: BTreeMap<i64, Watcher>,
    next_auto_id: i64,
    /// A progress request waits for every watcher to be synced.
    progress_pending: bool,
    /// Round-robin position among unsynced watchers.
    catch_up_after: i64,
}

impl WatchHub {
    /// Serves one watch stream: takes the client's requests from `requests` and sends the
    /// responses into `out`. Returns when `out`'s receiver is dropped (the client went away).
    /// The end of `requests` does not end the stream (etcd keeps sending events after the
    /// client half-closes).
    pub async fn serve<S>(self: Arc<Self>, requests: S, out: mpsc::Sender<WatchResponse>)
    where
        S: Stream<Item = WatchRequest> + Unpin + Send,
    {
        let (feed, rev) = self.subscribe();
        let mut st = StreamState {
            hub: self,
            out,
            feed,
            rev,
            watchers: BTreeMap::new(),
            next_auto_id: 0,
            progress_pending: false,
            catch_up_after: i64::MIN,
        };
        let _ = st.run(requests).await;
    }
}

impl StreamState {
    async fn run<S>(&mut self, mut requests: S) -> Result<(), Closed>
    where
        S: Stream<Item = WatchRequest> + Unpin + Send,
    {
        let period = self
            .hub
            .config
            .progress_interval
            .max(Duration::from_millis(1));
        let jitter = rand::rng().random_range(0..=period.as_millis() as u64 / 10);
        let period = period + Duration::from_millis(jitter);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut requests_open = true;
        loop {
            let behind = self.watchers.values().any(|w| !w.synced);
            let step = tokio::select! {
                _ = self.out.closed() => Step::Closed,
                u = self.feed.recv() => Step::Feed(u),
                r = requests.next(), if requests_open => Step::Request(r),
                _ = ticker.tick() => Step::Tick,
                _ = std::future::ready(()), if behind => Step::CatchUp,
            };
            match step {
                Step::Closed => return Err(Closed),
                Step::Feed(u) => self.on_feed(u).await?,
                Step::Request(Some(r)) => self.on_request(r).await?,
                Step::Request(None) => requests_open = false,
                Step::Tick => self.on_tick().await?,
                Step::CatchUp => self.catch_up_round().await?,
            }
            self.answer_pending_progress().await?;
        }
    }

    fn header(&self, revision: i64) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            revision,
            ..Default::default()
        })
    }

    async fn send(&self, resp: WatchResponse) -> Result<(), Closed> {
        self.out.send(resp).await.map_err(|_| Closed)
    }

    /// Sends `resp`, split into fragments if the watcher allows them.
    async fn send_events(&self, resp: WatchResponse, fragmented: bool) -> Result<(), Closed> {
        if fragmented {
            for piece in fragment(resp, self.hub.config.max_response_bytes) {
                self.send(piece).await?;
            }
            Ok(())
        } else {
            self.send(resp).await
        }
    }

    fn all_unsynced(&mut self) {
        for w in self.watchers.values_mut() {
            w.synced = false;
        }
    }

    async fn on_feed(
        &mut self,
        u: Result<Arc<Update>, broadcast::error::RecvError>,
    ) -> Result<(), Closed> {
        match u {
            Ok(u) => self.apply_update(&u).await,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                self.lagged();
                Ok(())
            }
            // The hub is gone: the member is shutting down.
            Err(broadcast::error::RecvError::Closed) => Err(Closed),
        }
    }

    /// The ring overtook this stream: what it skipped is in the store, and everything
    /// published so far is committed there.
    fn lagged(&mut self) {
        self.all_unsynced();
        self.rev = self.rev.max(self.hub.revision());
    }

    /// Takes everything already in the ring, so that `rev` is as new as the hub's.
    async fn drain_feed(&mut self) -> Result<(), Closed> {
        loop {
            match self.feed.try_recv() {
                Ok(u) => self.apply_update(&u).await?,
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.lagged(),
                Err(broadcast::error::TryRecvError::Empty) => return Ok(()),
                Err(broadcast::error::TryRecvError::Closed) => return Err(Closed),
            }
        }
    }

    async fn apply_update(&mut self, u: &Update) -> Result<(), Closed> {
        match u {
            Update::Replaced { revision } => {
                self.all_unsynced();
                self.rev = *revision;
                Ok(())
            }
            Update::Events { from, to, events } => {
                let (from, to) = (*from, *to);
                if to <= self.rev {
                    return Ok(());
                }
                if from > self.rev + 1 {
                    // Revisions between were never seen here: only the store has them.
                    self.all_unsynced();
                }
                let mut out = Vec::new();
                for (id, w) in self.watchers.iter_mut().filter(|(_, w)| w.synced) {
                    let evs: Vec<Event> = events
                        .iter()
                        .filter(|e| w.wants(e))
                        .map(|e| w.shape(e))
                        .collect();
                    w.next_rev = w.next_rev.max(to + 1);
                    if !evs.is_empty() {
                        w.progress_due = false;
                        out.push((
                            WatchResponse {
                                header: Some(ResponseHeader {
                                    revision: to,
                                    ..Default::default()
                                }),
                                watch_id: *id,
                                events: evs,
                                ..Default::default()
                            },
                            w.fragment,
                        ));
                    }
                }
                self.rev = to;
                for (resp, fragmented) in out {
                    self.send_events(resp, fragmented).await?;
                }
                Ok(())
            }
        }
    }

    async fn on_request(&mut self, req: WatchRequest) -> Result<(), Closed> {
        match req.request_union {
            Some(RequestUnion::CreateRequest(c)) => {
                self.drain_feed().await?;
                self.create(c).await
            }
            Some(RequestUnion::CancelRequest(c)) => {
                if self.watchers.remove(&c.watch_id).is_some() {
                    self.send(WatchResponse {
                        header: self.header(self.rev),
                        watch_id: c.watch_id,
                        canceled: true,
                        ..Default::default()
                    })
                    .await?;
                }
                Ok(())
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                self.drain_feed().await?;
                self.progress_pending = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn create(&mut self, c: WatchCreateRequest) -> Result<(), Closed> {
        let key = if c.key.is_empty() {
            vec![0]
        } else {
            c.key.to_vec()
        };
        let span = match &c.range_end[..] {
            [] => Span::Single(key),
            [0] => Span::FromKey(key),
            end if key.as_slice() < end => Span::Range(key, end.to_vec()),
            _ => return self.refuse(ERR_EMPTY_RANGE).await,
        };
        let id = if c.watch_id > 0 {
            if self.watchers.contains_key(&c.watch_id) {
                return self.refuse(ERR_DUPLICATE_ID).await;
            }
            c.watch_id
        } else {
            while self.watchers.contains_key(&self.next_auto_id) {
                self.next_auto_id += 1;
            }
            self.next_auto_id += 1;
            self.next_auto_id - 1
        };
        let next_rev = if c.start_revision == 0 {
            self.rev + 1
        } else {
            c.start_revision
        };
        let filters = &c.filters;
        let w = Watcher {
            span,
            next_rev,
            synced: next_rev > self.rev,
            prev_kv: c.prev_kv,
            no_put: filters.contains(&(FilterType::Noput as i32)),
            no_delete: filters.contains(&(FilterType::Nodelete as i32)),
            fragment: c.fragment,
            progress_notify: c.progress_notify,
            progress_due: true,
        };
        self.watchers.insert(id, w);
        self.send(WatchResponse {
            header: self.header(self.rev),
            watch_id: id,
            created: true,
            ..Default::default()
        })
        .await
    }

    async fn refuse(&mut self, reason: &str) -> Result<(), Closed> {
        self.send(WatchResponse {
            header: self.header(self.rev),
            watch_id: INVALID_WATCH_ID,
            created: true,
            canceled: true,
            cancel_reason: reason.into(),
            ..Default::default()
        })
        .await
    }

    async fn on_tick(&mut self) -> Result<(), Closed> {
        if !self.watchers.values().any(|w| w.progress_notify) {
            return Ok(());
        }
        self.drain_feed().await?;
        let mut due = Vec::new();
        for (id, w) in self.watchers.iter_mut().filter(|(_, w)| w.progress_notify) {
            if w.progress_due && w.synced {
                due.push(*id);
            }
            w.progress_due = true;
        }
        for id in due {
            self.send(WatchResponse {
                header: self.header(self.rev),
                watch_id: id,
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }

    /// Answers a progress request once every watcher is synced: the revision it reports then
    /// is one up to which every watcher of the stream has all of its events.
    async fn answer_pending_progress(&mut self) -> Result<(), Closed> {
        if !self.progress_pending || self.watchers.values().any(|w| !w.synced) {
            return Ok(());
        }
        self.progress_pending = false;
        self.send(WatchResponse {
            header: self.header(self.rev),
            watch_id: INVALID_WATCH_ID,
            ..Default::default()
        })
        .await
    }

    /// Reads one bounded slice of history from the store for the next unsynced watcher.
    async fn catch_up_round(&mut self) -> Result<(), Closed> {
        let pick = self
            .watchers
            .range(self.catch_up_after.saturating_add(1)..)
            .chain(self.watchers.iter())
            .find(|(_, w)| !w.synced)
            .map(|(id, w)| (*id, w.span.clone(), w.next_rev, w.prev_kv));
        let Some((id, span, from, with_prev)) = pick else {
            return Ok(());
        };
        self.catch_up_after = id;
        let upto = self.rev;
        if from > upto {
            if let Some(w) = self.watchers.get_mut(&id) {
                w.synced = true;
            }
            return Ok(());
        }
        let limit = self.hub.config.catch_up_events.max(1);
        let store = self.hub.store.clone();
        let read = tokio::task::spawn_blocking(move || {
            let store = store.get();
            let view = store.read()?;
            let evs = view.events(from, Some(span.as_key_span()), with_prev, limit);
            Ok::<_, StoreError>((evs, view.compact_revision(), view.current_revision()))
        })
        .await;
        let result = match read {
            Ok(Ok((Ok(evs), _, current))) => Ok((evs, current)),
            Ok(Ok((Err(StoreError::Compacted), compacted, _))) => Err(Some(compacted)),
            Ok(Ok((Err(e), _, _))) | Ok(Err(e)) => {
                tracing::warn!(watch_id = id, error = %e, "watcher cannot read the history it missed");
                Err(None)
            }
            Err(e) => {
                tracing::warn!(watch_id = id, error = %e, "watcher catch-up task failed");
                Err(None)
            }
        };
        let (mut evs, current) = match result {
            Ok(r) => r,
            Err(Some(compacted)) => {
                self.watchers.remove(&id);
                return self
                    .send(WatchResponse {
                        header: self.header(0),
                        watch_id: id,
                        canceled: true,
                        compact_revision: compacted,
                        ..Default::default()
                    })
                    .await;
            }
            Err(None) => {
                // Leave the watcher unsynced; the next round retries after a pause.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Ok(());
            }
        };
        let Some(w) = self.watchers.get_mut(&id) else {
            return Ok(());
        };
        let rev_of = |e: &Event| e.kv.as_ref().map_or(0, |kv| kv.mod_revision);
        let complete = evs.len() < limit || evs.last().is_some_and(|e| rev_of(e) > upto);
        evs.retain(|e| rev_of(e) <= upto);
        if complete {
            if current < upto {
                tracing::warn!(
                    watch_id = id,
                    store = current,
                    watch = upto,
                    "store is behind the watch feed"
                );
            }
            w.next_rev = w.next_rev.max(upto + 1);
            w.synced = true;
        } else if let Some(last) = evs.last() {
            w.next_rev = rev_of(last) + 1;
        }
        let evs: Vec<Event> = evs
            .iter()
            .filter(|e| w.passes_filters(e))
            .map(|e| w.shape(e))
            .collect();
        if evs.is_empty() {
            return Ok(());
        }
        w.progress_due = false;
        let fragmented = w.fragment;
        let resp = WatchResponse {
            header: self.header(upto),
            watch_id: id,
            events: evs,
            ..Default::default()
        };
        self.send_events(resp, fragmented).await
    }
}

/// Splits `resp` into pieces below `max_bytes` each (a single event may exceed it), all but the
/// last marked `fragment`. Small responses and single events go out whole.
pub fn fragment(resp: WatchResponse, max_bytes: usize) -> Vec<WatchResponse> {
    if resp.encoded_len() < max_bytes || resp.events.len() < 2 {
        return vec![resp];
    }
    let mut template = resp;
    let events = std::mem::take(&mut template.events);
    template.fragment = true;
    let base = template.encoded_len();
    let mut pieces = Vec::new();
    let mut cur = template.clone();
    let mut size = base;
    for ev in events {
        // Each event is a length-delimited field 11: one tag byte, the length, the message.
        let len = ev.encoded_len();
        let add = 1 + prost::length_delimiter_len(len) + len;
        if !cur.events.is_empty() && size + add >= max_bytes {
            pieces.push(std::mem::replace(&mut cur, template.clone()));
            size = base;
        }
        cur.events.push(ev);
        size += add;
    }
    cur.fragment = false;
    pieces.push(cur);
    pieces
}
