//! Hub tests on a real store: writes are committed, then published the way the applier does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use oxcd_mvcc::KeySpan;
use oxcd_proto::etcdserverpb::{
    watch_create_request::FilterType, watch_request::RequestUnion, WatchCancelRequest,
    WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
};
use oxcd_proto::mvccpb::{event::EventType, Event, KeyValue};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::*;
use crate::apply::EventSink;

const WAIT: Duration = Duration::from_secs(10);

enum Op<'a> {
    Put(&'a str, &'a str),
    Del(&'a str),
}

struct Harness {
    _dir: tempfile::TempDir,
    store: StoreHandle,
    hub: Arc<WatchHub>,
}

impl Harness {
    fn new(config: WatchConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreHandle::open(&dir.path().join("db"), 0).unwrap();
        let hub = WatchHub::new(store.clone(), config);
        Harness {
            _dir: dir,
            store,
            hub,
        }
    }

    /// Commits one batch of requests (one revision each) without publishing it.
    fn commit(&self, ops: &[Op]) -> (i64, Vec<Event>) {
        let store = self.store.get();
        let mut w = store.write().unwrap();
        let mut events = Vec::new();
        for op in ops {
            w.begin_request();
            match op {
                Op::Put(k, v) => {
                    w.put(Bytes::from(k.to_string()), Bytes::from(v.to_string()), 0)
                        .unwrap();
                }
                Op::Del(k) => {
                    w.delete_range(KeySpan::Single(k.as_bytes())).unwrap();
                }
            }
            events.extend(w.end_request());
        }
        w.commit(false).unwrap();
        (store.current_revision(), events)
    }

    /// Commits and publishes one batch, as the applier does; returns the new revision.
    fn write(&self, ops: &[Op]) -> i64 {
        let (rev, events) = self.commit(ops);
        if !events.is_empty() {
            self.hub.publish(rev, events);
        }
        rev
    }

    fn put(&self, k: &str, v: &str) -> i64 {
        self.write(&[Op::Put(k, v)])
    }

    fn compact(&self, rev: i64) {
        let store = self.store.get();
        let mut w = store.write().unwrap();
        w.compact(rev).unwrap();
        w.commit(false).unwrap();
    }

    fn client(&self) -> Client {
        let (req_tx, req_rx) = mpsc::channel(16);
        let (resp_tx, resp_rx) = mpsc::channel(self.hub.config().stream_buffer);
        tokio::spawn(self.hub.clone().serve(ReceiverStream::new(req_rx), resp_tx));
        Client {
            req: req_tx,
            resp: resp_rx,
        }
    }
}

struct Client {
    req: mpsc::Sender<WatchRequest>,
    resp: mpsc::Receiver<WatchResponse>,
}

fn create_req(key: &str, f: impl FnOnce(&mut WatchCreateRequest)) -> WatchCreateRequest {
    let mut c = WatchCreateRequest {
        key: Bytes::from(key.to_string()),
        ..Default::default()
    };
    f(&mut c);
    c
}

fn kv(e: &Event) -> &KeyValue {
    e.kv.as_ref().unwrap()
}

fn rev(e: &Event) -> i64 {
    kv(e).mod_revision
}

impl Client {
    async fn send(&self, r: RequestUnion) {
        self.req
            .send(WatchRequest {
                request_union: Some(r),
            })
            .await
            .unwrap();
    }

    /// Creates a watcher and returns the created response.
    async fn create(&mut self, c: WatchCreateRequest) -> WatchResponse {
        self.send(RequestUnion::CreateRequest(c)).await;
        let r = self.next().await;
        assert!(r.created, "expected a created response, got {r:?}");
        r
    }

    async fn next(&mut self) -> WatchResponse {
        tokio::time::timeout(WAIT, self.resp.recv())
            .await
            .expect("no watch response in time")
            .expect("stream ended")
    }

    async fn quiet(&mut self, ms: u64) {
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(ms), self.resp.recv()).await {
            panic!("unexpected response: {r:?}");
        }
    }

    /// Collects the events of watcher `id` until one at `last` or later arrived; checks that
    /// header revisions never go back and that each response's events are in order.
    async fn events_until(&mut self, id: i64, last: i64) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::new();
        let mut header = 0;
        while out.last().is_none_or(|e| rev(e) < last) {
            let r = self.next().await;
            assert_eq!(r.watch_id, id, "response of another watcher: {r:?}");
            assert!(!r.canceled && !r.created, "{r:?}");
            let h = r.header.as_ref().unwrap().revision;
            assert!(
                h >= header,
                "header revision went back from {header} to {h}"
            );
            header = h;
            for e in &r.events {
                assert!(rev(e) <= h, "event {e:?} after header revision {h}");
            }
            out.extend(r.events);
        }
        out
    }
}

/// Revisions strictly increasing per key order of the log: no duplicate, nothing back in time.
fn assert_revisions(events: &[Event], expected: impl IntoIterator<Item = i64>) {
    let got: Vec<i64> = events.iter().map(rev).collect();
    let want: Vec<i64> = expected.into_iter().collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn live_events_filters_and_prev_kv() {
    let h = Harness::new(WatchConfig::default());
    h.put("foo", "v0"); // rev 2
    let mut c = h.client();
    let created = c.create(create_req("foo", |_| {})).await;
    assert_eq!(
        (created.watch_id, created.header.as_ref().unwrap().revision),
        (0, 2)
    );
    let prefix = c
        .create(create_req("f", |c| {
            c.range_end = Bytes::from_static(b"g");
            c.filters = vec![FilterType::Noput as i32];
        }))
        .await;
    assert_eq!(prefix.watch_id, 1);
    let prev = c.create(create_req("foo", |c| c.prev_kv = true)).await;
    let all = c
        .create(create_req("", |c| {
            c.range_end = Bytes::from_static(b"\0");
            c.filters = vec![FilterType::Nodelete as i32];
        }))
        .await;
    assert_eq!((prev.watch_id, all.watch_id), (2, 3));

    // rev 3, 4 (one batch of two revisions), 5
    h.write(&[Op::Put("foo", "v1"), Op::Put("fox", "x")]);
    h.write(&[Op::Del("foo")]);

    // watcher 0: both foo events, no prev_kv
    let r = c.next().await;
    assert_eq!((r.watch_id, r.header.as_ref().unwrap().revision), (0, 4));
    assert_eq!(r.events.len(), 1);
    assert_eq!(kv(&r.events[0]).value, Bytes::from_static(b"v1"));
    assert!(r.events[0].prev_kv.is_none());
    // watcher 2 (prev_kv): sees v0 as the previous value
    let r = c.next().await;
    assert_eq!(r.watch_id, 2);
    assert_eq!(
        r.events[0].prev_kv.as_ref().unwrap().value,
        Bytes::from_static(b"v0")
    );
    // watcher 3: every key, puts only
    let r = c.next().await;
    assert_eq!(r.watch_id, 3);
    assert_revisions(&r.events, [3, 4]);
    // the delete at rev 5
    let r = c.next().await;
    assert_eq!(r.watch_id, 0);
    assert_eq!(r.events[0].r#type, EventType::Delete as i32);
    assert_eq!(
        (kv(&r.events[0]).key.as_ref(), rev(&r.events[0])),
        (&b"foo"[..], 5)
    );
    assert!(r.events[0].prev_kv.is_none());
    let r = c.next().await;
    assert_eq!(
        r.watch_id, 1,
        "the NOPUT prefix watcher sees only the delete"
    );
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].r#type, EventType::Delete as i32);
    let r = c.next().await;
    assert_eq!(r.watch_id, 2);
    assert_eq!(
        r.events[0].prev_kv.as_ref().unwrap().value,
        Bytes::from_static(b"v1")
    );
    c.quiet(100).await;
}

#[tokio::test]
async fn ids_cancel_and_refusals() {
    let h = Harness::new(WatchConfig::default());
    let mut c = h.client();
    assert_eq!(
        c.create(create_req("a", |c| c.watch_id = 7)).await.watch_id,
        7
    );
    assert_eq!(c.create(create_req("a", |_| {})).await.watch_id, 0);
    assert_eq!(
        c.create(create_req("a", |c| c.watch_id = -1))
            .await
            .watch_id,
        1
    );
    let dup = c.create(create_req("a", |c| c.watch_id = 7)).await;
    assert!(dup.canceled);
    assert_eq!(dup.watch_id, -1);
    assert_eq!(
        dup.cancel_reason,
        "mvcc: duplicate watch ID provided on the WatchStream"
    );
    let empty = c
        .create(create_req("b", |c| c.range_end = Bytes::from_static(b"a")))
        .await;
    assert!(empty.canceled);
    assert_eq!(empty.cancel_reason, "mvcc: watcher range is empty");

    c.send(RequestUnion::CancelRequest(WatchCancelRequest {
        watch_id: 0,
    }))
    .await;
    let r = c.next().await;
    assert!(r.canceled && !r.created && r.watch_id == 0, "{r:?}");
    // cancelling an unknown watcher answers nothing
    c.send(RequestUnion::CancelRequest(WatchCancelRequest {
        watch_id: 42,
    }))
    .await;
    h.put("a", "1");
    let mut ids = vec![c.next().await.watch_id, c.next().await.watch_id];
    ids.sort();
    assert_eq!(ids, vec![1, 7]);
    c.quiet(100).await;
}

#[tokio::test]
async fn past_start_revision_catches_up_then_goes_live() {
    let h = Harness::new(WatchConfig {
        catch_up_events: 2,
        ..WatchConfig::default()
    });
    for i in 0..6 {
        h.put(&format!("k{i}"), "v"); // revs 2..=7
    }
    let mut c = h.client();
    let created = c
        .create(create_req("k", |c| {
            c.range_end = Bytes::from_static(b"l");
            c.start_revision = 3;
            c.prev_kv = true;
        }))
        .await;
    assert_eq!(created.header.unwrap().revision, 7);
    let evs = c.events_until(0, 7).await;
    assert_revisions(&evs, 3..=7);
    h.put("k0", "v2"); // rev 8
    let evs = c.events_until(0, 8).await;
    assert_revisions(&evs, [8]);
    assert_eq!(evs[0].prev_kv.as_ref().unwrap().mod_revision, 2);

    // A future start revision waits for it.
    let fut = c.create(create_req("k0", |c| c.start_revision = 10)).await;
    assert_eq!(fut.watch_id, 1);
    h.put("k0", "a"); // 9
    let r = c.next().await;
    assert_eq!((r.watch_id, rev(&r.events[0])), (0, 9));
    h.put("k0", "b"); // 10
    let mut got = [c.next().await, c.next().await];
    got.sort_by_key(|r| r.watch_id);
    assert_eq!((got[0].watch_id, got[1].watch_id), (0, 1));
    assert_revisions(&got[1].events, [10]);
}

#[tokio::test]
async fn compacted_start_revision_cancels() {
    let h = Harness::new(WatchConfig::default());
    for i in 0..5 {
        h.put("k", &i.to_string()); // revs 2..=6
    }
    h.compact(4);
    let mut c = h.client();
    let created = c.create(create_req("k", |c| c.start_revision = 2)).await;
    assert!(!created.canceled);
    let r = c.next().await;
    assert!(r.canceled, "{r:?}");
    assert_eq!((r.watch_id, r.compact_revision), (0, 4));
    assert_eq!(r.header.unwrap().revision, 0);
    // at the compacted revision itself the history is still there
    c.create(create_req("k", |c| c.start_revision = 4)).await;
    let evs = c.events_until(1, 6).await;
    assert_revisions(&evs, 4..=6);
    // the compacted watcher is gone
    h.put("k", "x");
    assert_eq!(c.next().await.watch_id, 1);
    c.quiet(100).await;
}

#[tokio::test]
async fn slow_stream_never_blocks_writes_and_loses_nothing() {
    let h = Harness::new(WatchConfig {
        backlog: 4,
        stream_buffer: 1,
        catch_up_events: 7,
        ..WatchConfig::default()
    });
    let mut slow = h.client();
    let mut fast = h.client();
    slow.create(create_req("k", |c| c.range_end = Bytes::from_static(b"l")))
        .await;
    fast.create(create_req("k", |c| c.range_end = Bytes::from_static(b"l")))
        .await;

    // The fast client reads concurrently; the slow one reads nothing while 300 batches
    // are published.
    let fast_reader = tokio::spawn(async move {
        let evs = fast.events_until(0, 301).await;
        assert_revisions(&evs, 2..=301);
    });
    let start = Instant::now();
    for i in 0..300 {
        h.put(&format!("k{}", i % 10), &i.to_string());
    }
    assert!(start.elapsed() < Duration::from_secs(20));
    fast_reader.await.unwrap();
    // Now the slow client reads: everything, once, in order.
    let evs = slow.events_until(0, 301).await;
    assert_revisions(&evs, 2..=301);
    slow.quiet(100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_duplicates_or_gaps_while_catching_up_under_writes() {
    let h = Harness::new(WatchConfig {
        backlog: 8,
        catch_up_events: 3,
        ..WatchConfig::default()
    });
    for i in 0..50 {
        h.put("a", &i.to_string()); // revs 2..=51
    }
    let hub_writes = Arc::new(h);
    let mut c = hub_writes.client();
    // The second create is read while the first watcher's catch-up is under way.
    c.create(create_req("a", |c| c.start_revision = 2)).await;
    c.send(RequestUnion::CreateRequest(create_req("a", |c| {
        c.start_revision = 40
    })))
    .await;
    let writer = {
        let h = hub_writes.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..200 {
                h.put("a", &i.to_string()); // revs 52..=251
                if i % 20 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    let mut per_watcher: [Vec<Event>; 2] = [Vec::new(), Vec::new()];
    while per_watcher
        .iter()
        .any(|v| v.last().is_none_or(|e| rev(e) < 251))
    {
        let r = c.next().await;
        if r.created {
            assert_eq!(r.watch_id, 1);
            continue;
        }
        per_watcher[r.watch_id as usize].extend(r.events);
    }
    writer.await.unwrap();
    assert_revisions(&per_watcher[0], 2..=251);
    assert_revisions(&per_watcher[1], 40..=251);
    c.quiet(100).await;
}

#[tokio::test]
async fn store_replacement_makes_watchers_catch_up() {
    let h = Harness::new(WatchConfig::default());
    let mut c = h.client();
    c.create(create_req("k", |c| c.range_end = Bytes::from_static(b"\0")))
        .await;
    h.put("k1", "a"); // 2
    assert_revisions(&c.events_until(0, 2).await, [2]);
    // A snapshot brings revisions 3..=5 that were never published.
    h.commit(&[Op::Put("k2", "b"), Op::Put("k3", "c"), Op::Del("k1")]);
    h.hub.store_replaced(h.store.get().current_revision());
    h.put("k4", "d"); // 6
    let evs = c.events_until(0, 6).await;
    assert_revisions(&evs, 3..=6);
    assert_eq!(evs[2].r#type, EventType::Delete as i32);
    c.quiet(100).await;
}

#[tokio::test]
async fn progress_requests_wait_for_synced_watchers() {
    let h = Harness::new(WatchConfig {
        catch_up_events: 1,
        ..WatchConfig::default()
    });
    let mut c = h.client();
    // no watchers: answered at once with the current revision
    h.put("x", "1"); // 2
    c.send(RequestUnion::ProgressRequest(WatchProgressRequest {}))
        .await;
    let r = c.next().await;
    assert_eq!(
        (r.watch_id, r.header.unwrap().revision, r.events.len()),
        (-1, 2, 0)
    );
    for i in 0..5 {
        h.put("x", &i.to_string()); // 3..=7
    }
    c.create(create_req("x", |c| c.start_revision = 2)).await;
    c.send(RequestUnion::ProgressRequest(WatchProgressRequest {}))
        .await;
    // the catch-up (one revision per round) completes before the progress answer
    let mut seen = Vec::new();
    loop {
        let r = c.next().await;
        if r.watch_id == -1 {
            assert_eq!(r.header.unwrap().revision, 7);
            break;
        }
        seen.extend(r.events);
    }
    assert_revisions(&seen, 2..=7);
}

#[tokio::test]
async fn progress_notify_only_when_idle() {
    let h = Harness::new(WatchConfig {
        progress_interval: Duration::from_millis(100),
        ..WatchConfig::default()
    });
    let mut c = h.client();
    c.create(create_req("p", |c| c.progress_notify = true))
        .await;
    c.create(create_req("q", |_| {})).await;
    h.put("z", "1"); // 2, nobody's key
    let r = c.next().await;
    assert_eq!(
        (r.watch_id, r.header.unwrap().revision, r.events.len()),
        (0, 2, 0)
    );
    let r = c.next().await;
    assert_eq!(
        r.watch_id, 0,
        "only the watcher that asked gets notifications"
    );
    assert!(r.events.is_empty() && !r.canceled && !r.created);
}

#[tokio::test]
async fn fragments_large_responses() {
    let h = Harness::new(WatchConfig {
        max_response_bytes: 300,
        ..WatchConfig::default()
    });
    let mut c = h.client();
    c.create(create_req("f", |c| {
        c.range_end = Bytes::from_static(b"g");
        c.fragment = true;
    }))
    .await;
    c.create(create_req("f", |c| c.range_end = Bytes::from_static(b"g")))
        .await;
    let big = "x".repeat(100);
    let ops: Vec<(String, &str)> = (0..10).map(|i| (format!("f{i}"), big.as_str())).collect();
    let ops: Vec<Op> = ops.iter().map(|(k, v)| Op::Put(k, v)).collect();
    h.write(&ops); // revs 2..=11
    let mut pieces = Vec::new();
    loop {
        let r = c.next().await;
        assert_eq!(r.watch_id, 0);
        let more = r.fragment;
        pieces.push(r);
        if !more {
            break;
        }
    }
    assert!(pieces.len() > 1);
    let evs: Vec<Event> = pieces.iter().flat_map(|p| p.events.clone()).collect();
    assert_revisions(&evs, 2..=11);
    let whole = c.next().await;
    assert_eq!(
        (whole.watch_id, whole.events.len(), whole.fragment),
        (1, 10, false)
    );
}

#[test]
fn fragment_sizes() {
    let ev = |i: i64| Event {
        kv: Some(KeyValue {
            key: Bytes::from(format!("key{i}")),
            value: Bytes::from(vec![b'v'; 50]),
            mod_revision: i,
            ..Default::default()
        }),
        ..Default::default()
    };
    let resp = WatchResponse {
        watch_id: 3,
        events: (1..=20).map(ev).collect(),
        ..Default::default()
    };
    let total = prost::Message::encoded_len(&resp);
    assert_eq!(fragment(resp.clone(), total + 1), vec![resp.clone()]);
    let pieces = fragment(resp.clone(), 200);
    assert!(pieces.len() > 4);
    for (i, p) in pieces.iter().enumerate() {
        assert_eq!(p.fragment, i + 1 < pieces.len());
        assert_eq!(p.watch_id, 3);
        assert!(prost::Message::encoded_len(p) < 200 || p.events.len() == 1);
    }
    let joined: Vec<Event> = pieces.into_iter().flat_map(|p| p.events).collect();
    assert_eq!(joined, resp.events);
    // a single event is never split
    let one = WatchResponse {
        events: vec![ev(1)],
        ..Default::default()
    };
    assert_eq!(fragment(one.clone(), 10), vec![one]);
}
