//! Reads through the overlay (batches left in an open backend transaction) must answer exactly
//! what reads of the same history committed batch by batch answer. Two stores get the same
//! random batches; one commits every batch to redb, the other keeps the transaction open as
//! long as it may. After every batch, and again later for views taken earlier, ranges (at
//! every revision, with limits and counts), watch events and hashes must agree.

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
    let committed = open(dir.path(), "committed", 0);
    let overlaid = open(dir.path(), "overlaid", usize::MAX);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut held: Vec<(ReadView, Vec<String>, u64)> = Vec::new();
    let mut index = 0u64;
    for batch_no in 0..300 {
        let mut a = committed.write().expect("write a");
        let mut b = overlaid.write().expect("write b");
        for _ in 0..1 + rng.below(6) {
            a.begin_request();
            b.begin_request();
            match rng.below(10) {
                0..=5 => {
                    let (k, v) = (key(rng.below(KEYS)), Bytes::from(rng.next().to_string()));
                    a.put(k.clone(), v.clone(), 0).expect("put a");
                    b.put(k, v, 0).expect("put b");
                }
                6 => {
                    // a txn writing two keys at one revision
                    for _ in 0..2 {
                        let (k, v) = (key(rng.below(KEYS)), Bytes::from(rng.next().to_string()));
                        a.put(k.clone(), v.clone(), 7).expect("put a");
                        b.put(k, v, 7).expect("put b");
                    }
                }
                7 | 8 => {
                    let (x, y) = (rng.below(KEYS), rng.below(KEYS));
                    let (lo, hi) = (key(x.min(y)), key(x.max(y) + 1));
                    let span = KeySpan::Range(&lo[..], &hi[..]);
                    assert_eq!(
                        a.delete_range(span).expect("delete a"),
                        b.delete_range(span).expect("delete b")
                    );
                }
                _ => {
                    let span = KeySpan::FromKey(b"k1");
                    assert_eq!(
                        a.range(span, RangeOptions::default()).expect("a"),
                        b.range(span, RangeOptions::default()).expect("b")
                    );
                }
            }
            assert_eq!(a.end_request(), b.end_request());
        }
        if batch_no % 97 == 96 {
            let rev = a.current_revision() - 1 - rng.below(5) as i64;
            if rev > a.compact_revision() {
                a.compact(rev).expect("compact a");
                b.compact(rev).expect("compact b");
            }
        }
        index += 1;
        a.set_consistent_index(index, 2);
        b.set_consistent_index(index, 2);
        a.commit(false).expect("commit a");
        // now and then a durable commit or a flush reaches the backend of the overlaid store
        match batch_no % 41 {
            40 => b.commit(true).expect("commit b"),
            20 => {
                b.commit(false).expect("commit b");
                overlaid.flush().expect("flush");
            }
            _ => b.commit(false).expect("commit b"),
        }
        assert_eq!(committed.current_revision(), overlaid.current_revision());
        assert_eq!(committed.consistent_index(), overlaid.consistent_index());
        let seed = rng.next();
        let (va, vb) = (committed.read().expect("a"), overlaid.read().expect("b"));
        let want = describe(&va, seed);
        assert_eq!(want, describe(&vb, seed), "after batch {batch_no}");
        assert_eq!(
            *committed
                .read_shared()
                .expect("a")
                .hash_kv(0)
                .as_ref()
                .expect("hash a"),
            *overlaid
                .read_shared()
                .expect("b")
                .hash_kv(0)
                .as_ref()
                .expect("hash b")
        );
        // A view keeps answering as of its own moment while later batches are written.
        if batch_no % 10 == 0 {
            held.push((vb, want, seed));
        }
    }
    for (view, want, seed) in held {
        assert_eq!(describe(&view, seed), want);
    }
}

#[test]
fn an_abandoned_batch_takes_the_unflushed_batches_with_it() {
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
    assert_eq!(store.current_revision(), 2);
    let got = store
        .read()
        .expect("read")
        .range(KeySpan::Single(b"a"), RangeOptions::default())
        .expect("range");
    assert_eq!(&got.kvs[0].value[..], b"1");
}
