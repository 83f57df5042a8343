//! Locks and elections on a real single-member server started in-process (its listeners are
//! never bound: a lone member needs no peer traffic).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use oxcd_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseRevokeRequest, PutRequest, RangeRequest, RangeResponse,
};
use oxcd_proto::v3electionpb::LeaderKey;

use super::*;

const NOT_YET: Duration = Duration::from_millis(300);
const SOON: Duration = Duration::from_secs(10);

async fn member(dir: &std::path::Path) -> Arc<EtcdServer> {
    let args: Vec<String> = [
        "--name",
        "conc",
        "--data-dir",
        &dir.join("conc.etcd").display().to_string(),
        "--listen-peer-urls",
        "http://127.0.0.94:2380",
        "--initial-advertise-peer-urls",
        "http://127.0.0.94:2380",
        "--initial-cluster",
        "conc=http://127.0.0.94:2380",
        "--listen-client-urls",
        "http://127.0.0.94:2379",
        "--advertise-client-urls",
        "http://127.0.0.94:2379",
        "--heartbeat-interval",
        "10",
        "--election-timeout",
        "100",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cfg = match oxcd_bootstrap::load(&args, &[]).result {
        Ok(oxcd_bootstrap::Action::Run(cfg)) => cfg,
        other => panic!("config: {other:?}"),
    };
    let plan = crate::plan(&cfg).expect("plan");
    let tls = crate::TlsSetup::from_config(&cfg).expect("tls");
    let started = crate::start(&cfg, plan, &tls).await.expect("start");
    let server = started.server;
    let ready = tokio::time::timeout(SOON, async {
        loop {
            let put = PutRequest {
                key: Bytes::from_static(b"ready"),
                ..Default::default()
            };
            if server.put(put).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "the member did not become ready");
    server
}

async fn grant(s: &EtcdServer, ttl: i64) -> i64 {
    s.lease_grant(LeaseGrantRequest { ttl, id: 0 })
        .await
        .unwrap()
        .id
}

async fn revoke(s: &EtcdServer, id: i64) {
    s.lease_revoke(LeaseRevokeRequest { id }).await.unwrap();
}

async fn get_prefix(s: &EtcdServer, prefix: &str) -> RangeResponse {
    s.range(RangeRequest {
        key: Bytes::copy_from_slice(prefix.as_bytes()),
        range_end: prefix_end(prefix.as_bytes()),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn key_layout_matches_etcd() {
    assert_eq!(prefix_of(b"mylock"), b("mylock/"));
    assert_eq!(
        contender_key(b"mylock/", 0x694d7e1a5d2c0a0b),
        b("mylock/694d7e1a5d2c0a0b")
    );
    assert_eq!(contender_key(b"x/", 255), b("x/ff"));
    assert_eq!(contender_key(b"x/", -26), b("x/-1a"));
    assert_eq!(prefix_end(b"a/"), b("a0"));
    assert_eq!(prefix_end(b"a\xff"), b("b"));
    assert_eq!(prefix_end(b"\xff\xff"), b("\0"));
}

#[test]
fn errors_carry_etcd_texts_as_unknown() {
    let cases = [
        (ConcurrencyError::NotLeader, "election: not leader"),
        (ConcurrencyError::NoLeader, "election: no leader"),
        (
            ConcurrencyError::MissingLeaderKey,
            "\"leader\" field must be provided",
        ),
        (
            ConcurrencyError::Server(ServerError::Lease(crate::lease::LeaseError::NotFound)),
            "etcdserver: requested lease not found",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
        assert_eq!(e.code(), tonic::Code::Unknown);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_queue_unlock_expiry_and_abandon() {
    let dir = tempfile::tempdir().unwrap();
    let s = member(dir.path()).await;

    // Uncontended: the key is `<name>/<lease hex>`, created with the lease.
    let l1 = grant(&s, 60).await;
    let r1 = s.lock(b("mylock"), l1).await.unwrap();
    assert_eq!(r1.key, b(&format!("mylock/{l1:x}")));
    let h1 = r1.header.unwrap();
    assert_eq!(h1.member_id, s.id);
    let kvs = get_prefix(&s, "mylock/").await.kvs;
    assert_eq!(kvs.len(), 1);
    assert_eq!(kvs[0].lease, l1);
    assert_eq!(kvs[0].create_revision, h1.revision);

    // The same lease asking again gets its key back at once.
    let again = s.lock(b("mylock"), l1).await.unwrap();
    assert_eq!(again.key, r1.key);

    // A second contender waits until the holder unlocks.
    let l2 = grant(&s, 60).await;
    let waiter = tokio::spawn({
        let s = s.clone();
        async move { s.lock(b("mylock"), l2).await }
    });
    tokio::time::sleep(NOT_YET).await;
    assert!(!waiter.is_finished(), "the second lock must wait");
    // Unrelated writes under the prefix's neighbours do not wake it for good.
    s.put(PutRequest {
        key: b("mylock0"),
        ..Default::default()
    })
    .await
    .unwrap();
    tokio::time::sleep(NOT_YET).await;
    assert!(!waiter.is_finished());
    let unlocked = s.unlock(r1.key.clone()).await.unwrap();
    let r2 = tokio::time::timeout(SOON, waiter)
        .await
        .expect("the waiter must get the lock")
        .unwrap()
        .unwrap();
    assert_eq!(r2.key, b(&format!("mylock/{l2:x}")));
    assert!(r2.header.unwrap().revision >= unlocked.header.unwrap().revision);

    // A waiter whose lease is revoked stops with an error.
    let l3 = grant(&s, 60).await;
    let waiter = tokio::spawn({
        let s = s.clone();
        async move { s.lock(b("mylock"), l3).await }
    });
    tokio::time::sleep(NOT_YET).await;
    assert!(!waiter.is_finished());
    revoke(&s, l3).await;
    let err = tokio::time::timeout(SOON, waiter)
        .await
        .expect("the wait must end")
        .unwrap()
        .unwrap_err();
    assert_eq!(err, ConcurrencyError::LockSessionExpired);

    // An abandoned wait removes its key.
    let l4 = grant(&s, 60).await;
    let waiter = tokio::spawn({
        let s = s.clone();
        async move { s.lock(b("mylock"), l4).await }
    });
    tokio::time::sleep(NOT_YET).await;
    assert_eq!(get_prefix(&s, "mylock/").await.kvs.len(), 2);
    waiter.abort();
    let gone = tokio::time::timeout(SOON, async {
        while get_prefix(&s, "mylock/").await.kvs.len() != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the abandoned key must be deleted");

    // A lease that does not exist: etcd's error.
    let err = s.lock(b("other"), 12345).await.unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: requested lease not found");

    // No lease: a fresh one is granted for the key.
    let r = s.lock(b("nolease"), 0).await.unwrap();
    let kv = get_prefix(&s, "nolease/").await.kvs.remove(0);
    assert_ne!(kv.lease, 0);
    assert_eq!(r.key, b(&format!("nolease/{:x}", kv.lease)));
    assert!(s.lessor.lookup(kv.lease).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_campaign_proclaim_observe_resign() {
    let dir = tempfile::tempdir().unwrap();
    let s = member(dir.path()).await;

    let err = s.election_leader(b("e")).await.unwrap_err();
    assert_eq!(err, ConcurrencyError::NoLeader);
    assert_eq!(
        s.proclaim(None, b("x")).await.unwrap_err(),
        ConcurrencyError::MissingLeaderKey
    );
    assert_eq!(
        s.resign(None).await.unwrap_err(),
        ConcurrencyError::MissingLeaderKey
    );

    // An observer started before anyone leads sees the first leader.
    let mut observer = s.observe(b("e"));

    let l1 = grant(&s, 60).await;
    let c1 = s.campaign(b("e"), l1, b("v1")).await.unwrap();
    let leader1 = c1.leader.clone().unwrap();
    assert_eq!(leader1.name, b("e"));
    assert_eq!(leader1.key, b(&format!("e/{l1:x}")));
    assert_eq!(leader1.lease, l1);
    assert_eq!(leader1.rev, c1.header.unwrap().revision);

    let first = tokio::time::timeout(SOON, observer.next())
        .await
        .unwrap()
        .unwrap();
    let kv = first.kv.unwrap();
    assert_eq!(
        (kv.key.clone(), kv.value.clone()),
        (leader1.key.clone(), b("v1"))
    );

    let l = s.election_leader(b("e")).await.unwrap();
    assert_eq!(l.kv.unwrap().value, b("v1"));

    // A second candidate waits.
    let l2 = grant(&s, 60).await;
    let second = tokio::spawn({
        let s = s.clone();
        async move { s.campaign(b("e"), l2, b("w1")).await }
    });
    tokio::time::sleep(NOT_YET).await;
    assert!(!second.is_finished(), "the second candidate must wait");

    // The leader proclaims; observers see the new value.
    s.proclaim(Some(leader1.clone()), b("v2")).await.unwrap();
    let next = tokio::time::timeout(SOON, observer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.kv.unwrap().value, b("v2"));

    // A stale leader key cannot proclaim.
    let stale = LeaderKey {
        rev: leader1.rev + 1000,
        ..leader1.clone()
    };
    assert_eq!(
        s.proclaim(Some(stale.clone()), b("x")).await.unwrap_err(),
        ConcurrencyError::NotLeader
    );
    // Resigning with a stale key changes nothing.
    s.resign(Some(stale)).await.unwrap();
    assert!(!second.is_finished());

    // The leader resigns: the second candidate wins, observers follow.
    s.resign(Some(leader1.clone())).await.unwrap();
    let c2 = tokio::time::timeout(SOON, second)
        .await
        .expect("the second candidate must win")
        .unwrap()
        .unwrap();
    let leader2 = c2.leader.unwrap();
    assert_eq!(leader2.key, b(&format!("e/{l2:x}")));
    let next = tokio::time::timeout(SOON, observer.next())
        .await
        .unwrap()
        .unwrap();
    let kv = next.kv.unwrap();
    assert_eq!((kv.key, kv.value), (leader2.key.clone(), b("w1")));
    assert_eq!(
        s.proclaim(Some(leader1), b("x")).await.unwrap_err(),
        ConcurrencyError::NotLeader
    );

    // Campaigning again with the same lease and another value proclaims it.
    let again = s.campaign(b("e"), l2, b("w2")).await.unwrap();
    assert_eq!(again.leader.unwrap().rev, leader2.rev);
    let next = tokio::time::timeout(SOON, observer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.kv.unwrap().value, b("w2"));

    // A waiting candidate whose lease is revoked stops with an error.
    let l3 = grant(&s, 60).await;
    let third = tokio::spawn({
        let s = s.clone();
        async move { s.campaign(b("e"), l3, b("z")).await }
    });
    tokio::time::sleep(NOT_YET).await;
    revoke(&s, l3).await;
    let err = tokio::time::timeout(SOON, third)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err, ConcurrencyError::ElectionSessionExpired);

    // An abandoned campaign resigns.
    let l4 = grant(&s, 60).await;
    let fourth = tokio::spawn({
        let s = s.clone();
        async move { s.campaign(b("e"), l4, b("q")).await }
    });
    tokio::time::sleep(NOT_YET).await;
    assert_eq!(get_prefix(&s, "e/").await.kvs.len(), 2);
    fourth.abort();
    let gone = tokio::time::timeout(SOON, async {
        while get_prefix(&s, "e/").await.kvs.len() != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the abandoned candidate must resign");

    // The leader's lease ends: nobody leads, and the observer waits for the next one.
    revoke(&s, l2).await;
    assert_eq!(
        s.election_leader(b("e")).await.unwrap_err(),
        ConcurrencyError::NoLeader
    );
    let l5 = grant(&s, 60).await;
    let c5 = s.campaign(b("e"), l5, b("five")).await.unwrap();
    let next = tokio::time::timeout(SOON, observer.next())
        .await
        .unwrap()
        .unwrap();
    let kv = next.kv.unwrap();
    assert_eq!((kv.key, kv.value), (c5.leader.unwrap().key, b("five")));
    assert_eq!(next.header.unwrap().revision, kv.mod_revision);
}
