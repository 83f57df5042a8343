//! `hash_kv` gives the same value as etcd 3.4's `HashKV` for the same history (the values
//! below were read with `etcdctl endpoint hashkv` from an etcd 3.4.23 that ran this sequence).

use bytes::Bytes;
use oxcd_mvcc::{KeySpan, KvStore, StoreOptions};

#[test]
fn hash_matches_etcd() {
    let d = tempfile::tempdir().unwrap();
    let s = KvStore::open(&d.path().join("db"), StoreOptions::default()).unwrap();
    let mut w = s.write().unwrap();
    for (k, v) in [
        ("foo", "bar"),
        ("foo", "bar2"),
        ("foo1", "foo1"),
        ("foo2", "foo2"),
        ("fop", "fop"),
        ("zoo", "zoo"),
    ] {
        w.begin_request();
        w.put(Bytes::from(k), Bytes::from(v), 0).unwrap();
        w.end_request();
    }
    w.begin_request();
    w.delete_range(KeySpan::Range(b"foo", b"fop")).unwrap();
    w.end_request();
    w.begin_request();
    w.put(Bytes::from("foo"), Bytes::from("x"), 0).unwrap();
    w.delete_range(KeySpan::Single(b"zoo")).unwrap();
    w.put(Bytes::from("new"), Bytes::from("n"), 0).unwrap();
    w.end_request();
    w.compact(5).unwrap();
    w.commit(true).unwrap();
    let v = s.read().unwrap();
    for (rev, want) in [(0, 1273135427), (7, 3746727876), (8, 1316440889)] {
        let h = v.hash_kv(rev).unwrap();
        assert_eq!(
            (h.hash, h.current_rev, h.compact_rev),
            (want, 9, 5),
            "at {rev}"
        );
    }
    assert!(v.hash_kv(5).is_err());
}
