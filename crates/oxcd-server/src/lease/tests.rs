//! Lessor tests: the applied side on a real store, the primary side with explicit instants.

use std::time::{Duration, Instant};

use bytes::Bytes;
use oxcd_mvcc::{kv, KeySpan, KvStore, RangeOptions, StoreOptions};
use oxcd_proto::etcdserverpb::{DeleteRangeRequest, LeaseCheckpoint, PutRequest};
use oxcd_proto::leasepb;
use oxcd_proto::mvccpb::event::EventType;
use prost::Message as _;

use super::lessor::RenewAttempt;
use super::*;

fn store() -> (tempfile::TempDir, KvStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = KvStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
    (dir, store)
}

fn cfg() -> LessorConfig {
    LessorConfig {
        min_ttl: 2,
        promote_extend: Duration::from_secs(1),
        checkpoint_interval: Some(Duration::from_secs(10)),
        expired_retry: Duration::from_secs(3),
    }
}

/// Runs `f` as one applied request in its own committed batch; returns its events.
fn apply<T>(
    store: &KvStore,
    f: impl FnOnce(&mut oxcd_mvcc::WriteBatch) -> T,
) -> (T, Vec<oxcd_proto::mvccpb::Event>) {
    let mut batch = store.write().unwrap();
    batch.begin_request();
    let out = f(&mut batch);
    let events = batch.end_request();
    batch.commit(false).unwrap();
    (out, events)
}

fn put(store: &KvStore, lessor: &Lessor, key: &str, lease: i64) -> Result<(), oxcd_mvcc::KvError> {
    let req = PutRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::from_static(b"v"),
        lease,
        ..Default::default()
    };
    apply(store, |b| {
        kv::put(b, &req, &mut lessor.tracker()).map(|_| ())
    })
    .0
}

fn keys(lessor: &Lessor, id: i64) -> Vec<String> {
    lessor
        .lookup(id)
        .unwrap()
        .keys
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

fn current_keys(store: &KvStore) -> Vec<String> {
    let view = store.read().unwrap();
    view.range(KeySpan::FromKey(b""), RangeOptions::default())
        .unwrap()
        .kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

#[test]
fn grant_applies_etcd_rules_and_persists() {
    let (_d, store) = store();
    let lessor = Lessor::new(cfg());
    assert_eq!(apply(&store, |b| lessor.grant(b, 7, 10)).0, Ok(10));
    // Below the minimum: raised to it.
    assert_eq!(apply(&store, |b| lessor.grant(b, 8, 1)).0, Ok(2));
    assert_eq!(
        apply(&store, |b| lessor.grant(b, 7, 10)).0,
        Err(LeaseError::Exists)
    );
    assert_eq!(
        apply(&store, |b| lessor.grant(b, 9, MAX_LEASE_TTL + 1)).0,
        Err(LeaseError::TtlTooLarge)
    );
    assert_eq!(
        apply(&store, |b| lessor.grant(b, 0, 10)).0,
        Err(LeaseError::NotFound)
    );
    assert_eq!(lessor.len(), 2);
    // etcd's record: leasepb.Lease under the big-endian ID.
    let raw = store
        .read()
        .unwrap()
        .get_aux(LEASE_TABLE, &7i64.to_be_bytes())
        .unwrap()
        .unwrap();
    let rec = leasepb::Lease::decode(raw.as_slice()).unwrap();
    assert_eq!((rec.id, rec.ttl, rec.remaining_ttl), (7, 10, 0));
    assert_eq!(
        LeaseError::Exists.to_string(),
        "etcdserver: lease already exists"
    );
    assert_eq!(
        LeaseError::TtlTooLarge.to_string(),
        "etcdserver: too large lease TTL"
    );
    assert_eq!(
        LeaseError::NotFound.to_string(),
        "etcdserver: requested lease not found"
    );
    assert_eq!(LeaseError::NotFound.code(), tonic::Code::NotFound);
    assert_eq!(LeaseError::Exists.code(), tonic::Code::FailedPrecondition);
    assert_eq!(LeaseError::TtlTooLarge.code(), tonic::Code::OutOfRange);
}

#[test]
fn attach_detach_through_kv_requests() {
    let (_d, store) = store();
    let lessor = Lessor::new(cfg());
    apply(&store, |b| lessor.grant(b, 1, 10)).0.unwrap();
    apply(&store, |b| lessor.grant(b, 2, 10)).0.unwrap();
    assert_eq!(
        put(&store, &lessor, "a", 99),
        Err(oxcd_mvcc::KvError::LeaseNotFound)
    );
    put(&store, &lessor, "b", 1).unwrap();
    put(&store, &lessor, "a", 1).unwrap();
    put(&store, &lessor, "c", 1).unwrap();
    assert_eq!(keys(&lessor, 1), ["a", "b", "c"]);
    // Overwritten with another lease, then without one.
    put(&store, &lessor, "a", 2).unwrap();
    put(&store, &lessor, "b", 0).unwrap();
    assert_eq!(keys(&lessor, 1), ["c"]);
    assert_eq!(keys(&lessor, 2), ["a"]);
    // Deleted.
    let del = DeleteRangeRequest {
        key: Bytes::from_static(b"c"),
        ..Default::default()
    };
    apply(&store, |b| kv::delete_range(b, &del, &mut lessor.tracker()))
        .0
        .unwrap();
    assert!(keys(&lessor, 1).is_empty());
}

#[test]
fn revoke_deletes_keys_in_one_revision() {
    let (_d, store) = store();
    let lessor = Lessor::new(cfg());
    apply(&store, |b| lessor.grant(b, 5, 10)).0.unwrap();
    for k in ["z", "x", "y"] {
        put(&store, &lessor, k, 5).unwrap();
    }
    put(&store, &lessor, "keep", 0).unwrap();
    let before = store.current_revision();
    let (r, events) = apply(&store, |b| lessor.revoke(b, 5));
    r.unwrap();
    assert_eq!(store.current_revision(), before + 1);
    assert_eq!(events.len(), 3);
    let deleted: Vec<&[u8]> = events
        .iter()
        .map(|e| {
            assert_eq!(e.r#type, EventType::Delete as i32);
            assert_eq!(e.kv.as_ref().unwrap().mod_revision, before + 1);
            &e.kv.as_ref().unwrap().key[..]
        })
        .collect();
    assert_eq!(deleted, [&b"x"[..], b"y", b"z"]);
    assert_eq!(current_keys(&store), ["keep"]);
    assert!(lessor.lookup(5).is_none());
    assert!(store
        .read()
        .unwrap()
        .get_aux(LEASE_TABLE, &5i64.to_be_bytes())
        .unwrap()
        .is_none());
    assert_eq!(
        apply(&store, |b| lessor.revoke(b, 5)).0,
        Err(LeaseError::NotFound)
    );
    // A lease without keys changes no revision.
    apply(&store, |b| lessor.grant(b, 6, 10)).0.unwrap();
    let before = store.current_revision();
    apply(&store, |b| lessor.revoke(b, 6)).0.unwrap();
    assert_eq!(store.current_revision(), before);
}

#[test]
fn recover_rebuilds_leases_and_key_index() {
    let (_d, store) = store();
    let lessor = Lessor::new(cfg());
    apply(&store, |b| lessor.grant(b, 1, 30)).0.unwrap();
    apply(&store, |b| lessor.grant(b, 2, 40)).0.unwrap();
    put(&store, &lessor, "k1", 1).unwrap();
    put(&store, &lessor, "k2", 1).unwrap();
    put(&store, &lessor, "k3", 2).unwrap();
    put(&store, &lessor, "plain", 0).unwrap();
    let cp = [LeaseCheckpoint {
        id: 2,
        remaining_ttl: 17,
    }];
    apply(&store, |b| lessor.checkpoint(b, &cp)).0.unwrap();

    let again = Lessor::new(cfg());
    again.recover(&store).unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(keys(&again, 1), ["k1", "k2"]);
    assert_eq!(keys(&again, 2), ["k3"]);
    let info = again.lookup(2).unwrap();
    assert_eq!((info.granted_ttl, info.remaining), (40, 17));
    assert!(!again.is_primary());
}

#[test]
fn expiry_only_on_the_primary() {
    let (_d, store) = store();
    let lessor = Lessor::new(cfg());
    apply(&store, |b| lessor.grant(b, 1, 5)).0.unwrap();
    let t0 = Instant::now();
    // A follower never expires anything.
    assert!(lessor
        .expired_at(t0 + Duration::from_secs(100), 10)
        .is_empty());
    assert!(matches!(
        lessor.try_renew_at(1, t0),
        RenewAttempt::Done(Err(LeaseError::NotPrimary))
    ));

    lessor.promote_at_if(t0, || true);
    assert!(lessor.is_primary());
    // Deadline: TTL plus the promotion extension.
    assert!(lessor
        .expired_at(t0 + Duration::from_secs(5), 10)
        .is_empty());
    assert_eq!(lessor.lookup_at(1, t0).unwrap().remaining, 6);
    assert_eq!(lessor.expired_at(t0 + Duration::from_secs(7), 10), [1]);
    // Offered again only after the retry interval.
    assert!(lessor
        .expired_at(t0 + Duration::from_secs(8), 10)
        .is_empty());
    assert_eq!(lessor.expired_at(t0 + Duration::from_secs(11), 10), [1]);
    // An expired lease cannot be renewed; it waits for its revocation.
    assert!(matches!(
        lessor.try_renew_at(1, t0 + Duration::from_secs(11)),
        RenewAttempt::Expired
    ));

    // A lease granted on the primary gets a deadline at once.
    let t1 = t0 + Duration::from_secs(20);
    let mut batch = store.write().unwrap();
    lessor.grant_at(&mut batch, 2, 4, t1).unwrap();
    batch.commit(false).unwrap();
    assert_eq!(lessor.lookup_at(2, t1).unwrap().remaining, 4);

    // Demotion drops every deadline.
    lessor.demote();
    assert!(!lessor.is_primary());
    assert!(lessor
        .expired_at(t1 + Duration::from_secs(100), 10)
        .is_empty());
    assert_eq!(lessor.lookup_at(2, t1).unwrap().remaining, 4);
    // A promotion refused by the check leaves the lessor a follower.
    lessor.promote_at_if(t1, || false);
    assert!(!lessor.is_primary());
}

#[test]
fn renew_moves_the_deadline() {
    let (_d, store) = store();
    let lessor = Lessor::new(cfg());
    apply(&store, |b| lessor.grant(b, 1, 5)).0.unwrap();
    let t0 = Instant::now();
    lessor.promote_at_if(t0, || true);
    let t1 = t0 + Duration::from_secs(4);
    match lessor.try_renew_at(1, t1) {
        RenewAttempt::Done(Ok(r)) => assert_eq!(
            r,
            Renewed {
                ttl: 5,
                clear_checkpoint: false
            }
        ),
        _ => panic!("renewal failed"),
    }
    // The old deadline (t0 + 6 s) passes without effect.
    assert!(lessor
        .expired_at(t0 + Duration::from_secs(8), 10)
        .is_empty());
    assert_eq!(lessor.expired_at(t1 + Duration::from_secs(5), 10), [1]);
    assert!(matches!(
        lessor.try_renew_at(99, t1),
        RenewAttempt::Done(Err(LeaseError::NotFound))
    ));
}

#[test]
fn checkpoints_keep_the_remaining_ttl_across_leaders() {
    let (_d, store) = store();
    let leader = Lessor::new(cfg());
    let follower = Lessor::new(cfg());
    for l in [&leader, &follower] {
        let mut batch = store.write().unwrap();
        l.grant(&mut batch, 1, 60).unwrap();
        l.grant(&mut batch, 2, 5).unwrap();
        // Not committed twice: the second lessor only needs its memory state.
        drop(batch);
    }
    apply(&store, |b| leader.grant(b, 3, 60)).0.unwrap();
    follower.recover(&store).unwrap();
    let t0 = Instant::now();
    leader.promote_at_if(t0, || true);
    // Nothing due before the interval; the short lease is never checkpointed.
    assert!(leader
        .due_checkpoints_at(t0 + Duration::from_secs(5), 100)
        .is_empty());
    let due = leader.due_checkpoints_at(t0 + Duration::from_secs(10), 100);
    let mut ids: Vec<(i64, i64)> = due.iter().map(|c| (c.id, c.remaining_ttl)).collect();
    ids.sort();
    // Deadline t0 + 61 s, checked at t0 + 10 s: 51 s remain.
    assert_eq!(ids, [(1, 51), (3, 51)]);

    // Applied on a follower (only lease 3 is in the store), then the follower takes over.
    apply(&store, |b| follower.checkpoint(b, &due)).0.unwrap();
    let t1 = t0 + Duration::from_secs(12);
    follower.promote_at_if(t1, || true);
    // 51 s remaining + 1 s extension, not the full 60 s.
    assert_eq!(follower.lookup_at(3, t1).unwrap().remaining, 52);
    // Persisted, so a restart keeps it too.
    let restarted = Lessor::new(cfg());
    restarted.recover(&store).unwrap();
    assert_eq!(restarted.lookup(3).unwrap().remaining, 51);

    // Applying the checkpoint on the primary schedules the next one.
    apply(&store, |b| {
        leader.checkpoint_at(b, &due, t0 + Duration::from_secs(10))
    })
    .0
    .unwrap();
    assert!(!leader
        .due_checkpoints_at(t0 + Duration::from_secs(20), 100)
        .is_empty());

    // A renewal of a checkpointed lease asks for the checkpoint to be cleared.
    match follower.try_renew_at(3, t1) {
        RenewAttempt::Done(Ok(r)) => assert!(r.clear_checkpoint),
        _ => panic!("renewal failed"),
    }
    let clear = [LeaseCheckpoint {
        id: 3,
        remaining_ttl: 0,
    }];
    apply(&store, |b| follower.checkpoint(b, &clear)).0.unwrap();
    assert_eq!(
        follower.lookup_at(3, t1).unwrap().remaining,
        60,
        "renewed to the full TTL"
    );
}

#[test]
fn checkpoints_off() {
    let (_d, store) = store();
    let lessor = Lessor::new(LessorConfig {
        checkpoint_interval: None,
        ..cfg()
    });
    apply(&store, |b| lessor.grant(b, 1, 600)).0.unwrap();
    let t0 = Instant::now();
    lessor.promote_at_if(t0, || true);
    assert!(lessor
        .due_checkpoints_at(t0 + Duration::from_secs(500), 100)
        .is_empty());
}

#[test]
fn promotion_spreads_piled_up_expiries() {
    let (_d, store) = store();
    let lessor = Lessor::new(cfg());
    let mut batch = store.write().unwrap();
    for id in 1..=2000 {
        lessor.grant(&mut batch, id, 10).unwrap();
    }
    batch.commit(false).unwrap();
    let t0 = Instant::now();
    lessor.promote_at_if(t0, || true);
    // Without spreading all 2000 would expire at t0 + 11 s.
    let first = lessor
        .expired_at(t0 + Duration::from_millis(11_999), 5000)
        .len();
    assert!((700..=800).contains(&first), "{first}");
    let all = first + lessor.expired_at(t0 + Duration::from_secs(14), 5000).len();
    assert_eq!(all, 2000);
}

#[test]
fn leases_sorted_by_expiry() {
    let (_d, store) = store();
    let lessor = Lessor::new(cfg());
    apply(&store, |b| lessor.grant(b, 1, 50)).0.unwrap();
    apply(&store, |b| lessor.grant(b, 2, 10)).0.unwrap();
    apply(&store, |b| lessor.grant(b, 3, 30)).0.unwrap();
    assert_eq!(lessor.leases(), [1, 2, 3]);
    lessor.promote_at_if(Instant::now(), || true);
    assert_eq!(lessor.leases(), [2, 3, 1]);
}

#[tokio::test]
async fn renew_of_an_expired_lease_waits_for_its_revocation() {
    let (_d, store) = store();
    let lessor = std::sync::Arc::new(Lessor::new(LessorConfig {
        min_ttl: 1,
        promote_extend: Duration::ZERO,
        ..cfg()
    }));
    apply(&store, |b| lessor.grant(b, 1, 1)).0.unwrap();
    lessor.promote_if(|| true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let waiting = {
        let lessor = lessor.clone();
        tokio::spawn(async move { lessor.renew(1, Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished());
    apply(&store, |b| lessor.revoke(b, 1)).0.unwrap();
    assert_eq!(waiting.await.unwrap(), Err(LeaseError::NotFound));
}

#[test]
fn one_pending_checkpoint_per_lease() {
    let (_d, store) = store();
    let lessor = Lessor::new(cfg());
    apply(&store, |b| lessor.grant(b, 1, 60)).0.unwrap();
    let t0 = Instant::now();
    lessor.promote_at_if(t0, || true);
    // Many checkpoints applied (renewals clearing them, say): still one pending checkpoint.
    for i in 0..5 {
        let cp = [LeaseCheckpoint {
            id: 1,
            remaining_ttl: 0,
        }];
        let at = t0 + Duration::from_secs(i);
        apply(&store, |b| lessor.checkpoint_at(b, &cp, at))
            .0
            .unwrap();
    }
    assert_eq!(
        lessor
            .due_checkpoints_at(t0 + Duration::from_secs(30), 100)
            .len(),
        1
    );
    // Just renewed when due: skipped, but the lease stays on the schedule.
    let t1 = t0 + Duration::from_secs(40);
    assert!(matches!(
        lessor.try_renew_at(1, t1),
        RenewAttempt::Done(Ok(_))
    ));
    let cp = [LeaseCheckpoint {
        id: 1,
        remaining_ttl: 0,
    }];
    apply(&store, |b| {
        lessor.checkpoint_at(b, &cp, t1 - Duration::from_secs(10))
    })
    .0
    .unwrap();
    assert!(lessor.due_checkpoints_at(t1, 100).is_empty());
    let due = lessor.due_checkpoints_at(t1 + Duration::from_secs(10), 100);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].remaining_ttl, 50);
}
