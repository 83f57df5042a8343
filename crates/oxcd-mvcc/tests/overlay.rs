//! Reads through overlays (batches not yet in the backend file) must answer exactly what reads
//! of the same history committed batch by batch answer. Three stores get the same random
//! batches: one waits for every batch to reach redb, one keeps everything in memory as long as
//! it may, one hands small overlays to the flusher all the time. After every batch, and again
//! later for views taken earlier, ranges (at every revision, with limits and counts), watch
//! events and hashes must agree.

use std::time::Duration;

use bytes::Bytes;
use oxcd_mvcc::{KeySpan, KvStore, RangeOptions, ReadView, StoreOptions};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const KEYS: u64 = 40;

fn key(i: u64) -> Bytes {
    Bytes::from(format!("k{i:02}"))
}

fn open(dir: &std::path::Path, name: &str, flush_versions: usize) -> KvStore {
    let opts = StoreOptions {
        flush_versions,
        flush_age: Duration::from_secs(3600),
        ..StoreOptions::default()
    };
    KvStore::open(&dir.join(name), opts).expect("open")
}

fn open_flushing(dir: &std::path::Path, name: &str, flush_versions: usize) -> KvStore {
    let opts = StoreOptions {
        flush_versions,
        flush_age: Duration::ZERO,
        ..StoreOptions::default()
    };
    KvStore::open(&dir.join(name), opts).expect("open")
}

/// Everything a reader could ask one view, as comparable text.
fn describe(view: &ReadView, rng_seed: u64) -> Vec<String> {
    let mut rng = Rng(rng_seed | 1);
    let mut out = vec![format!(
        "meta {:?} rev {} compact {}",
        view.meta(),
        view.current_revision(),
        view.compact_revision()
    )];
    let current = view.current_revision();
    let compacted = view.compact_revision();
    for rev in [
        0,
        current,
        current - 1,
        current - 3,
        compacted,
        compacted + 1,
    ] {
        for _ in 0..4 {
            let (a, b) = (key(rng.below(KEYS)), key(rng.below(KEYS)));
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let spans = [
                KeySpan::Single(&lo[..]),
                KeySpan::Range(&lo[..], &hi[..]),
                KeySpan::FromKey(&lo[..]),
            ];
            for span in spans {
                for (limit, count_only) in [(0, false), (1, false), (3, false), (0, true)] {
                    let opts = RangeOptions {
                        rev,
                        limit,
                        count_only,
                    };
                    out.push(format!(
                        "range {span:?} {opts:?}: {:?}",
                        view.range(span, opts)
                    ));
                }
            }
        }
    }
    for from in [0, compacted, current - 5, current - 1, current, current + 1] {
        for limit in [0, 1, 4] {
            for with_prev in [false, true] {
                out.push(format!(
                    "events {from} {limit} {with_prev}: {:?}",
                    view.events(from, None, with_prev, limit)
                ));
            }
            let k = key(rng.below(KEYS));
            out.push(format!(
                "events {from} {limit} {k:?}: {:?}",
                view.events(from, Some(KeySpan::Single(&k[..])), true, limit)
            ));
        }
    }
    for rev in [0, current, current - 2, compacted, compacted + 1] {
        out.push(format!("hash {rev}: {:?}", view.hash_kv(rev)));
    }
    out
}

#[test]
fn overlay_reads_equal_committed_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The reference waits for every batch to be in the file; the second keeps everything in
    // its active overlay until a durable commit or a flush; the third hands an overlay to the
    // flusher every few versions, so reads meet frozen overlays the flusher is still writing.
    let stores = [
        open(dir.path(), "committed", 0),
        open(dir.path(), "overlaid", usize::MAX),
        open_flushing(dir.path(), "flushing", 5),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut held: Vec<(ReadView, Vec<String>, u64)> = Vec::new();
    let mut index = 0u64;
    for batch_no in 0..300 {
        // Every other pair of batches the third store's flusher waits, so that reads go
        // through two frozen overlays; not in batches that must reach the file (a durable
        // commit, a flush, a compaction), which would wait for it forever.
        let must_reach_file = matches!(batch_no % 41, 20 | 40) || batch_no % 97 == 96;
        stores[2].hold_flushes(batch_no % 4 < 2 && !must_reach_file);
        let mut ws: Vec<_> = stores.iter().map(|s| s.write().expect("write")).collect();
        for _ in 0..1 + rng.below(6) {
            ws.iter_mut().for_each(|w| w.begin_request());
            match rng.below(10) {
                0..=5 => {
                    let (k, v) = (key(rng.below(KEYS)), Bytes::from(rng.next().to_string()));
                    let prev: Vec<_> = ws
                        .iter_mut()
                        .map(|w| w.put(k.clone(), v.clone(), 0).expect("put"))
                        .collect();
                    assert!(prev.iter().all(|p| *p == prev[0]));
                }
                6 => {
                    // a txn writing two keys at one revision
                    for _ in 0..2 {
                        let (k, v) = (key(rng.below(KEYS)), Bytes::from(rng.next().to_string()));
                        for w in ws.iter_mut() {
                            w.put(k.clone(), v.clone(), 7).expect("put");
                        }
                    }
                }
                7 | 8 => {
                    let (x, y) = (rng.below(KEYS), rng.below(KEYS));
                    let (lo, hi) = (key(x.min(y)), key(x.max(y) + 1));
                    let span = KeySpan::Range(&lo[..], &hi[..]);
                    let deleted: Vec<_> = ws
                        .iter_mut()
                        .map(|w| w.delete_range(span).expect("delete"))
                        .collect();
                    assert!(deleted.iter().all(|d| *d == deleted[0]));
                }
                _ => {
                    let span = KeySpan::FromKey(b"k1");
                    let got: Vec<_> = ws
                        .iter()
                        .map(|w| w.range(span, RangeOptions::default()).expect("range"))
                        .collect();
                    assert!(got.iter().all(|g| *g == got[0]));
                }
            }
            let events: Vec<_> = ws.iter_mut().map(|w| w.end_request()).collect();
            assert!(events.iter().all(|e| *e == events[0]));
        }
        if batch_no % 97 == 96 {
            let rev = ws[0].current_revision() - 1 - rng.below(5) as i64;
            if rev > ws[0].compact_revision() {
                for w in ws.iter_mut() {
                    w.compact(rev).expect("compact");
                }
            }
        }
        index += 1;
        let mut ws = ws.into_iter();
        for (i, mut w) in ws.by_ref().enumerate() {
            w.set_consistent_index(index, 2);
            // now and then a durable commit or a flush reaches the backend of the others
            match (i, batch_no % 41) {
                (0, _) => w.commit(false).expect("commit"),
                (_, 40) => w.commit(true).expect("commit"),
                (_, 20) => {
                    w.commit(false).expect("commit");
                    stores[i].flush().expect("flush");
                }
                (_, 30) => w.commit_and_persist_soon().expect("commit"),
                _ => w.commit(false).expect("commit"),
            }
        }
        let seed = rng.next();
        let want = describe(&stores[0].read().expect("read"), seed);
        for s in &stores[1..] {
            assert_eq!(stores[0].current_revision(), s.current_revision());
            assert_eq!(stores[0].consistent_index(), s.consistent_index());
            let view = s.read().expect("read");
            assert_eq!(want, describe(&view, seed), "after batch {batch_no}");
            assert_eq!(
                *stores[0]
                    .read_shared()
                    .expect("read")
                    .hash_kv(0)
                    .as_ref()
                    .expect("hash"),
                *s.read_shared()
                    .expect("read")
                    .hash_kv(0)
                    .as_ref()
                    .expect("hash")
            );
            // A view keeps answering as of its own moment while later batches are written.
            if batch_no % 10 == 0 {
                held.push((view, want.clone(), seed));
            }
        }
    }
    for (view, want, seed) in held {
        assert_eq!(describe(&view, seed), want);
    }
    // Everything handed over reaches the file, durably when asked.
    stores[2].hold_flushes(false);
    stores[2].persist_soon();
    stores[2].flush().expect("flush");
    assert_eq!(stores[2].durable_consistent_index(), index);
}

#[test]
fn an_abandoned_batch_loses_only_its_own_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), "db", usize::MAX);
    let put = |v: &'static str| {
        let mut w = store.write().expect("write");
        w.begin_request();
        w.put(
            Bytes::from_static(b"a"),
            Bytes::from_static(v.as_bytes()),
            0,
        )
        .expect("put");
        w.commit(false).expect("commit");
    };
    put("1");
    store.flush().expect("flush");
    put("2");
    assert_eq!(store.current_revision(), 3);
    let mut w = store.write().expect("write");
    w.begin_request();
    w.put(Bytes::from_static(b"a"), Bytes::from_static(b"3"), 0)
        .expect("put");
    drop(w);
    assert_eq!(store.current_revision(), 3);
    let value = || {
        store
            .read()
            .expect("read")
            .range(KeySpan::Single(b"a"), RangeOptions::default())
            .expect("range")
            .kvs[0]
            .value
            .clone()
    };
    assert_eq!(&value()[..], b"2");
    // the next batch continues from the last committed one, and reaches the file
    put("4");
    store.flush().expect("flush");
    assert_eq!(store.current_revision(), 4);
    assert_eq!(&value()[..], b"4");
    // and builds on the last committed version, not on the abandoned one
    let kv = store
        .read()
        .expect("read")
        .range(KeySpan::Single(b"a"), RangeOptions::default())
        .expect("range")
        .kvs[0]
        .clone();
    assert_eq!((kv.version, kv.create_revision, kv.mod_revision), (3, 2, 4));
}

#[test]
fn used_bytes_is_the_file_size_while_far_below_the_quota_and_measured_after_a_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let opts = StoreOptions {
        quota_bytes: 1 << 40,
        ..StoreOptions::default()
    };
    let store = KvStore::open(&path, opts).expect("open");
    let value = Bytes::from(vec![b'v'; 4096]);
    for i in 0..200u32 {
        let mut w = store.write().expect("write");
        w.begin_request();
        w.put(Bytes::from(format!("k{}", i % 10)), value.clone(), 0)
            .expect("put");
        w.commit(false).expect("commit");
    }
    store.persist_soon();
    store.flush().expect("flush");
    let file_len = std::fs::metadata(&path).expect("stat").len();
    assert_eq!(store.used_bytes(), file_len);
    // A compaction commits in its own transaction and measures: far less than the file.
    let mut w = store.write().expect("write");
    w.compact(store.current_revision()).expect("compact");
    w.commit(true).expect("commit");
    assert!(
        store.used_bytes() < file_len / 2,
        "{} of {file_len}",
        store.used_bytes()
    );
}
