//! A scripted sequence of etcd KV requests through the request layer, checked against what
//! etcd 3.4 answers for the same sequence.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use bytes::Bytes;
use oxcd_mvcc::kv::{self, KvError, LeaseHooks};
use oxcd_mvcc::{KvStore, StoreOptions, WriteBatch};
use oxcd_proto::etcdserverpb::{
    compare::{CompareResult, CompareTarget, TargetUnion},
    range_request::{SortOrder, SortTarget},
    request_op::Request,
    response_op::Response,
    CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse,
    RequestOp, TxnRequest,
};
use oxcd_proto::mvccpb::{event::EventType, Event};

#[derive(Default)]
struct Leases {
    existing: HashSet<i64>,
    attached: BTreeMap<i64, BTreeSet<Vec<u8>>>,
}

impl LeaseHooks for Leases {
    fn lease_exists(&self, id: i64) -> bool {
        self.existing.contains(&id)
    }
    fn attach(&mut self, id: i64, key: &[u8]) {
        self.attached.entry(id).or_default().insert(key.to_vec());
    }
    fn detach(&mut self, id: i64, key: &[u8]) {
        if let Some(s) = self.attached.get_mut(&id) {
            s.remove(key);
        }
    }
}

struct Fx {
    _dir: tempfile::TempDir,
    store: KvStore,
    leases: Leases,
    index: u64,
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let store = KvStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        Fx {
            _dir: dir,
            store,
            leases: Leases::default(),
            index: 0,
        }
    }

    /// Applies one raft request in its own batch; returns its result and events.
    fn apply<T>(
        &mut self,
        f: impl FnOnce(&mut WriteBatch, &mut Leases) -> Result<T, KvError>,
    ) -> (Result<T, KvError>, Vec<Event>) {
        let mut w = self.store.write().unwrap();
        w.begin_request();
        let r = f(&mut w, &mut self.leases);
        let ev = w.end_request();
        self.index += 1;
        w.set_consistent_index(self.index, 1);
        w.commit(false).unwrap();
        (r, ev)
    }

    fn put(&mut self, k: &str, v: &str) -> i64 {
        let req = PutRequest {
            key: b(k),
            value: b(v),
            ..Default::default()
        };
        let (r, _) = self.apply(|w, l| kv::put(w, &req, l));
        r.unwrap().header.unwrap().revision
    }

    fn get(&self, req: RangeRequest) -> Result<RangeResponse, KvError> {
        kv::validate_range(&req)?;
        kv::range(&self.store.read().unwrap(), &req)
    }
}

fn keys(r: &RangeResponse) -> Vec<String> {
    r.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

fn rr(k: &str, end: &str) -> RangeRequest {
    RangeRequest {
        key: b(k),
        range_end: b(end),
        ..Default::default()
    }
}

fn op_put(k: &str, v: &str) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: b(k),
            value: b(v),
            ..Default::default()
        })),
    }
}

fn op_get(k: &str) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestRange(rr(k, ""))),
    }
}

fn op_del(k: &str, end: &str) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
            key: b(k),
            range_end: b(end),
            prev_kv: true,
        })),
    }
}

fn cmp(k: &str, target: CompareTarget, result: CompareResult, u: TargetUnion) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: b(k),
        range_end: Bytes::new(),
        target_union: Some(u),
    }
}

#[test]
fn scripted_sequence() {
    let mut fx = Fx::new();

    // puts: first write is revision 2
    assert_eq!(fx.put("foo", "bar"), 2);
    let req = PutRequest {
        key: b("foo"),
        value: b("bar2"),
        prev_kv: true,
        ..Default::default()
    };
    let (r, ev) = fx.apply(|w, l| kv::put(w, &req, l));
    let r = r.unwrap();
    assert_eq!(r.header.unwrap().revision, 3);
    assert_eq!(r.prev_kv.as_ref().map(|p| &p.value[..]), Some(&b"bar"[..]));
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].r#type, EventType::Put as i32);
    let kv3 = ev[0].kv.clone().unwrap();
    assert_eq!(
        (kv3.create_revision, kv3.mod_revision, kv3.version),
        (2, 3, 2)
    );
    for (k, rev) in [("foo1", 4), ("foo2", 5), ("fop", 6), ("zoo", 7)] {
        assert_eq!(fx.put(k, k), rev);
    }

    // prefix and from-key
    let r = fx.get(rr("foo", "fop")).unwrap();
    assert_eq!(keys(&r), ["foo", "foo1", "foo2"]);
    assert_eq!((r.count, r.more, r.header.unwrap().revision), (3, false, 7));
    let r = fx.get(rr("foo", "\0")).unwrap();
    assert_eq!(keys(&r), ["foo", "foo1", "foo2", "fop", "zoo"]);
    let r = fx.get(rr("\0", "\0")).unwrap();
    assert_eq!(r.count, 5);
    // an inverted range is empty
    assert_eq!(fx.get(rr("zoo", "foo")).unwrap().count, 0);

    // limit / more / count
    let r = fx
        .get(RangeRequest {
            limit: 2,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!(keys(&r), ["foo", "foo1"]);
    assert_eq!((r.count, r.more), (5, true));
    let r = fx
        .get(RangeRequest {
            limit: 5,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!((r.kvs.len(), r.more), (5, false));

    // sort
    let r = fx
        .get(RangeRequest {
            sort_order: SortOrder::Descend as i32,
            sort_target: SortTarget::Mod as i32,
            limit: 2,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!(keys(&r), ["zoo", "fop"]);
    assert!(r.more);
    let r = fx
        .get(RangeRequest {
            sort_order: SortOrder::Descend as i32,
            sort_target: SortTarget::Key as i32,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!(keys(&r), ["zoo", "fop", "foo2", "foo1", "foo"]);
    // a target other than KEY with order NONE sorts ascending
    let r = fx
        .get(RangeRequest {
            sort_target: SortTarget::Version as i32,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!(keys(&r), ["foo1", "foo2", "fop", "zoo", "foo"]);
    let r = fx
        .get(RangeRequest {
            sort_order: SortOrder::Ascend as i32,
            sort_target: SortTarget::Value as i32,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!(keys(&r), ["foo", "foo1", "foo2", "fop", "zoo"]);

    // revision filters (count stays the total)
    let r = fx
        .get(RangeRequest {
            min_mod_revision: 4,
            max_mod_revision: 6,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!(
        (keys(&r), r.count),
        (vec!["foo1".into(), "foo2".into(), "fop".into()], 5)
    );
    let r = fx
        .get(RangeRequest {
            max_create_revision: 2,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!(keys(&r), ["foo"]);

    // count_only, keys_only, older revisions
    let r = fx
        .get(RangeRequest {
            count_only: true,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!((r.count, r.kvs.len(), r.more), (5, 0, false));
    let r = fx
        .get(RangeRequest {
            keys_only: true,
            ..rr("foo", "")
        })
        .unwrap();
    assert!(r.kvs[0].value.is_empty());
    assert_eq!(r.kvs[0].version, 2);
    let r = fx
        .get(RangeRequest {
            revision: 2,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!(keys(&r), ["foo"]);
    assert_eq!(&r.kvs[0].value[..], b"bar");
    assert_eq!(r.header.unwrap().revision, 7);
    let e = fx
        .get(RangeRequest {
            revision: 8,
            ..rr("foo", "")
        })
        .unwrap_err();
    assert_eq!(e, KvError::FutureRev);
    assert_eq!(
        e.to_string(),
        "etcdserver: mvcc: required revision is a future revision"
    );
    assert_eq!(fx.get(rr("", "")).unwrap_err(), KvError::EmptyKey);

    // delete a prefix with prev_kv
    let req = DeleteRangeRequest {
        key: b("foo"),
        range_end: b("fop"),
        prev_kv: true,
    };
    let (r, ev) = fx.apply(|w, l| kv::delete_range(w, &req, l));
    let r = r.unwrap();
    assert_eq!(
        (r.deleted, r.prev_kvs.len(), r.header.unwrap().revision),
        (3, 3, 8)
    );
    assert_eq!(ev.len(), 3);
    assert!(ev.iter().all(|e| e.r#type == EventType::Delete as i32));
    assert_eq!(
        ev[2].kv.as_ref().map(|k| (&k.key[..], k.mod_revision)),
        Some((&b"foo2"[..], 8))
    );
    // deleting nothing keeps the revision
    let req = DeleteRangeRequest {
        key: b("nope"),
        ..Default::default()
    };
    let (r, ev) = fx.apply(|w, l| kv::delete_range(w, &req, l));
    let r = r.unwrap();
    assert_eq!((r.deleted, r.header.unwrap().revision), (0, 8));
    assert!(ev.is_empty());
    assert_eq!(fx.store.current_revision(), 8);
    // history is still there
    let r = fx
        .get(RangeRequest {
            revision: 7,
            ..rr("foo", "fop")
        })
        .unwrap();
    assert_eq!(r.count, 3);

    // a txn: one revision for all its writes; ops see earlier ops
    let t = TxnRequest {
        compare: vec![cmp(
            "foo",
            CompareTarget::Version,
            CompareResult::Equal,
            TargetUnion::Version(0),
        )],
        success: vec![
            op_put("foo", "x"),
            op_get("foo"),
            op_del("zoo", ""),
            op_put("new", "n"),
        ],
        failure: vec![op_get("foo")],
    };
    kv::validate_txn(&t, kv::DEFAULT_MAX_TXN_OPS).unwrap();
    let (r, ev) = fx.apply(|w, l| kv::txn(w, &t, l));
    let r = r.unwrap();
    assert!(r.succeeded);
    assert_eq!(r.header.unwrap().revision, 9);
    assert_eq!(r.responses.len(), 4);
    match &r.responses[1].response {
        Some(Response::ResponseRange(g)) => {
            assert_eq!(&g.kvs[0].value[..], b"x");
            assert_eq!(g.kvs[0].mod_revision, 9);
            assert_eq!(g.header.as_ref().map(|h| h.revision), Some(9));
        }
        other => panic!("unexpected {other:?}"),
    }
    match &r.responses[2].response {
        Some(Response::ResponseDeleteRange(d)) => assert_eq!(d.deleted, 1),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(ev.len(), 3);
    let subs: Vec<_> = ev
        .iter()
        .map(|e| e.kv.as_ref().map(|k| k.mod_revision))
        .collect();
    assert_eq!(subs, [Some(9), Some(9), Some(9)]);
    let r = fx.get(rr("foo", "")).unwrap();
    assert_eq!((r.kvs[0].create_revision, r.kvs[0].version), (9, 1));

    // failure branch with a nested txn
    let inner = TxnRequest {
        compare: vec![cmp(
            "new",
            CompareTarget::Value,
            CompareResult::Equal,
            TargetUnion::Value(b("n")),
        )],
        success: vec![op_put("inner", "yes")],
        failure: vec![op_put("inner", "no")],
    };
    let t = TxnRequest {
        compare: vec![cmp(
            "foo",
            CompareTarget::Mod,
            CompareResult::Greater,
            TargetUnion::ModRevision(9),
        )],
        success: vec![op_put("outer", "succ")],
        failure: vec![
            RequestOp {
                request: Some(Request::RequestTxn(inner)),
            },
            op_get("inner"),
        ],
    };
    kv::validate_txn(&t, kv::DEFAULT_MAX_TXN_OPS).unwrap();
    let (r, _) = fx.apply(|w, l| kv::txn(w, &t, l));
    let r = r.unwrap();
    assert!(!r.succeeded);
    assert_eq!(r.header.unwrap().revision, 10);
    match &r.responses[0].response {
        Some(Response::ResponseTxn(n)) => {
            assert!(n.succeeded);
            assert_eq!(n.responses.len(), 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    match &r.responses[1].response {
        Some(Response::ResponseRange(g)) => assert_eq!(&g.kvs[0].value[..], b"yes"),
        other => panic!("unexpected {other:?}"),
    }

    // a read-only txn keeps the revision, through a batch and through a snapshot
    let t = TxnRequest {
        compare: vec![cmp(
            "missing",
            CompareTarget::Value,
            CompareResult::NotEqual,
            TargetUnion::Value(b("")),
        )],
        success: vec![op_get("foo")],
        failure: vec![op_get("new")],
    };
    assert!(kv::is_txn_read_only(&t));
    let (r, ev) = fx.apply(|w, l| kv::txn(w, &t, l));
    let r = r.unwrap();
    // comparing the value of a missing key always fails
    assert!(!r.succeeded);
    assert_eq!(r.header.unwrap().revision, 10);
    assert!(ev.is_empty());
    let r2 = kv::txn_read(&fx.store.read().unwrap(), &t).unwrap();
    assert_eq!(r, r2);
    // compares over a range: every key must match
    let mut c = cmp(
        "foo",
        CompareTarget::Create,
        CompareResult::Less,
        TargetUnion::CreateRevision(11),
    );
    c.range_end = b("\0");
    let t = TxnRequest {
        compare: vec![c.clone()],
        ..Default::default()
    };
    assert!(
        kv::txn_read(&fx.store.read().unwrap(), &t)
            .unwrap()
            .succeeded
    );
    c.target_union = Some(TargetUnion::CreateRevision(10));
    let t = TxnRequest {
        compare: vec![c],
        ..Default::default()
    };
    assert!(
        !kv::txn_read(&fx.store.read().unwrap(), &t)
            .unwrap()
            .succeeded
    );
    // version of a missing key is 0
    let t = TxnRequest {
        compare: vec![cmp(
            "missing",
            CompareTarget::Version,
            CompareResult::Less,
            TargetUnion::Version(1),
        )],
        ..Default::default()
    };
    assert!(
        kv::txn_read(&fx.store.read().unwrap(), &t)
            .unwrap()
            .succeeded
    );

    // txn ranges at bad revisions are refused before anything is written
    let t = TxnRequest {
        success: vec![
            op_put("nothere", "1"),
            RequestOp {
                request: Some(Request::RequestRange(RangeRequest {
                    revision: 11,
                    ..rr("foo", "")
                })),
            },
        ],
        ..Default::default()
    };
    let (r, ev) = fx.apply(|w, l| kv::txn(w, &t, l));
    assert_eq!(r.unwrap_err(), KvError::FutureRev);
    assert!(ev.is_empty());
    assert_eq!(fx.get(rr("nothere", "")).unwrap().count, 0);

    // compaction
    let (r, _) = fx.apply(|w, _| {
        kv::compact(
            w,
            &CompactionRequest {
                revision: 5,
                physical: true,
            },
        )
    });
    assert_eq!(r.unwrap().header.unwrap().revision, 10);
    assert_eq!(fx.store.compact_revision(), 5);
    let e = fx
        .get(RangeRequest {
            revision: 4,
            ..rr("foo", "")
        })
        .unwrap_err();
    assert_eq!(
        (e.to_string().as_str(), e.code()),
        (
            "etcdserver: mvcc: required revision has been compacted",
            tonic::Code::OutOfRange
        )
    );
    let r = fx
        .get(RangeRequest {
            revision: 5,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!(keys(&r), ["foo", "foo1", "foo2"]);
    let r = fx
        .get(RangeRequest {
            revision: 7,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!(keys(&r), ["foo", "foo1", "foo2", "fop", "zoo"]);
    let (r, _) = fx.apply(|w, _| {
        kv::compact(
            w,
            &CompactionRequest {
                revision: 5,
                physical: false,
            },
        )
    });
    assert_eq!(r.unwrap_err(), KvError::Compacted);
    let (r, _) = fx.apply(|w, _| {
        kv::compact(
            w,
            &CompactionRequest {
                revision: 11,
                physical: false,
            },
        )
    });
    assert_eq!(r.unwrap_err(), KvError::FutureRev);
    let t = TxnRequest {
        success: vec![RequestOp {
            request: Some(Request::RequestRange(RangeRequest {
                revision: 4,
                ..rr("foo", "")
            })),
        }],
        ..Default::default()
    };
    assert_eq!(
        kv::txn_read(&fx.store.read().unwrap(), &t).unwrap_err(),
        KvError::Compacted
    );
    let (r, _) = fx.apply(|w, _| {
        kv::compact(
            w,
            &CompactionRequest {
                revision: 10,
                physical: true,
            },
        )
    });
    r.unwrap();
    let r = fx
        .get(RangeRequest {
            revision: 10,
            ..rr("\0", "\0")
        })
        .unwrap();
    assert_eq!(keys(&r), ["foo", "fop", "inner", "new"]);
}

#[test]
fn ignore_flags_and_leases() {
    let mut fx = Fx::new();
    fx.leases.existing.insert(7);
    fx.leases.existing.insert(8);

    // ignore_value on a missing key
    let req = PutRequest {
        key: b("k"),
        ignore_value: true,
        ..Default::default()
    };
    let (r, ev) = fx.apply(|w, l| kv::put(w, &req, l));
    assert_eq!(r.unwrap_err(), KvError::KeyNotFound);
    assert!(ev.is_empty());
    assert_eq!(fx.store.current_revision(), 1);

    // unknown lease
    let req = PutRequest {
        key: b("k"),
        value: b("v"),
        lease: 99,
        ..Default::default()
    };
    let (r, _) = fx.apply(|w, l| kv::put(w, &req, l));
    let e = r.unwrap_err();
    assert_eq!(
        (e.to_string().as_str(), e.code()),
        (
            "etcdserver: requested lease not found",
            tonic::Code::NotFound
        )
    );
    let (r, _) = fx.apply(|w, _| kv::put(w, &req, &mut kv::NoLeases));
    assert_eq!(r.unwrap_err(), KvError::LeaseNotFound);

    // put with lease 7, then keep the lease while changing the value
    let req = PutRequest {
        key: b("k"),
        value: b("v1"),
        lease: 7,
        ..Default::default()
    };
    fx.apply(|w, l| kv::put(w, &req, l)).0.unwrap();
    assert!(fx.leases.attached[&7].contains(b"k".as_slice()));
    let req = PutRequest {
        key: b("k"),
        value: b("v2"),
        ignore_lease: true,
        ..Default::default()
    };
    kv::validate_put(&req).unwrap();
    fx.apply(|w, l| kv::put(w, &req, l)).0.unwrap();
    let r = fx.get(rr("k", "")).unwrap();
    assert_eq!((&r.kvs[0].value[..], r.kvs[0].lease), (&b"v2"[..], 7));
    // keep the value, move to lease 8
    let req = PutRequest {
        key: b("k"),
        lease: 8,
        ignore_value: true,
        prev_kv: true,
        ..Default::default()
    };
    let r = fx.apply(|w, l| kv::put(w, &req, l)).0.unwrap();
    assert_eq!(r.prev_kv.map(|p| p.lease), Some(7));
    let r = fx.get(rr("k", "")).unwrap();
    assert_eq!(
        (&r.kvs[0].value[..], r.kvs[0].lease, r.kvs[0].version),
        (&b"v2"[..], 8, 3)
    );
    assert!(!fx.leases.attached[&7].contains(b"k".as_slice()));
    assert!(fx.leases.attached[&8].contains(b"k".as_slice()));
    // deleting detaches
    let req = DeleteRangeRequest {
        key: b("k"),
        ..Default::default()
    };
    let r = fx.apply(|w, l| kv::delete_range(w, &req, l)).0.unwrap();
    assert!(r.prev_kvs.is_empty());
    assert!(fx.leases.attached[&8].is_empty());

    // inside a txn the same checks happen before any write
    let t = TxnRequest {
        success: vec![
            op_put("a", "1"),
            RequestOp {
                request: Some(Request::RequestPut(PutRequest {
                    key: b("gone"),
                    ignore_value: true,
                    ..Default::default()
                })),
            },
        ],
        ..Default::default()
    };
    let (r, ev) = fx.apply(|w, l| kv::txn(w, &t, l));
    assert_eq!(r.unwrap_err(), KvError::KeyNotFound);
    assert!(ev.is_empty());
    let t = TxnRequest {
        success: vec![
            op_put("a", "1"),
            RequestOp {
                request: Some(Request::RequestPut(PutRequest {
                    key: b("b"),
                    lease: 1234,
                    ..Default::default()
                })),
            },
        ],
        ..Default::default()
    };
    let (r, _) = fx.apply(|w, l| kv::txn(w, &t, l));
    assert_eq!(r.unwrap_err(), KvError::LeaseNotFound);
    assert_eq!(fx.get(rr("a", "")).unwrap().count, 0);
}

#[test]
fn validation_messages() {
    let t = TxnRequest {
        success: vec![op_put("a", "1"), op_del("a", "b")],
        ..Default::default()
    };
    let e = kv::validate_txn(&t, 128).unwrap_err();
    assert_eq!(
        (e.to_string().as_str(), e.code()),
        (
            "etcdserver: duplicate key given in txn request",
            tonic::Code::InvalidArgument
        )
    );
    let e = kv::validate_txn(&t, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "etcdserver: too many operations in txn request"
    );
    let p = PutRequest {
        key: b("a"),
        value: b("v"),
        ignore_value: true,
        ..Default::default()
    };
    assert_eq!(
        kv::validate_put(&p).unwrap_err().to_string(),
        "etcdserver: value is provided"
    );
}
