//! A member that falls further behind than the leader's in-memory log catches up by receiving
//! a snapshot of the whole store, then follows the log again.

mod common;

use std::time::Duration;

use common::*;
use oxcd_proto::etcdserverpb::kv_client::KvClient;
use oxcd_proto::etcdserverpb::{PutRequest, RangeRequest};

const CLUSTER: &str =
    "s0=http://127.0.0.50:2380,s1=http://127.0.0.51:2380,s2=http://127.0.0.52:2380";
/// More than the 5000 entries a leader keeps in memory after a snapshot point.
const KEYS: usize = 6500;

async fn put_many(endpoint: &str, count: usize, members: &[Member]) {
    if let Err(e) = try_put_many(endpoint, count).await {
        for m in members {
            eprintln!("==== {} ====\n{}", m.name, m.log_text());
        }
        panic!("put failed: {e}");
    }
}

async fn try_put_many(endpoint: &str, count: usize) -> Result<(), String> {
    let client = KvClient::connect(endpoint.to_string())
        .await
        .expect("connect");
    let mut tasks = Vec::new();
    for worker in 0..32 {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while i < count {
                let req = PutRequest {
                    key: format!("key-{i:05}").into_bytes().into(),
                    value: format!("value-{i}").into_bytes().into(),
                    ..Default::default()
                };
                // Like any client, retry what failed while the killed leader was replaced;
                // these puts are idempotent.
                let mut attempt = 0;
                while let Err(e) = c.put(req.clone()).await {
                    attempt += 1;
                    if e.code() != tonic::Code::Unavailable || attempt > 5 {
                        return Err(e.to_string());
                    }
                }
                i += 32;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

async fn count_local(endpoint: &str) -> i64 {
    let Ok(mut c) = KvClient::connect(endpoint.to_string()).await else {
        return -1;
    };
    let req = RangeRequest {
        key: b"key-".to_vec().into(),
        range_end: b"key.".to_vec().into(),
        count_only: true,
        serializable: true,
        ..Default::default()
    };
    c.range(req)
        .await
        .map(|r| r.into_inner().count)
        .unwrap_or(-1)
}

/// Polls (every 100 ms, at most `tries` times) until the member holds `keys` keys.
async fn wait_for_count(url: &str, keys: usize, tries: usize) -> bool {
    for _ in 0..tries {
        if count_local(url).await == keys as i64 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_member_catches_up_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut members: Vec<Member> = (0..3)
        .map(|i| {
            let mut m = Member::static_member(
                dir.path(),
                &format!("s{i}"),
                &format!("127.0.0.5{i}"),
                CLUSTER,
                "snap",
            );
            m.args.extend(["--snapshot-count".into(), "1000".into()]);
            m
        })
        .collect();
    for m in &mut members {
        m.start();
    }
    for m in &members {
        assert!(
            m.wait_log("published", 1, Duration::from_secs(30)),
            "{}",
            m.log_text()
        );
    }
    members[2].kill();
    put_many(&members[0].client_url(), KEYS, &members).await;
    // Snapshot points follow durable backend commits (1 s apart); wait for them to pass the
    // entries raft keeps, so that the lagging member needs the snapshot.
    for m in &members[..2] {
        assert!(
            wait_until(Duration::from_secs(30), || last_snapshot_point(
                &m.log_text()
            ) > 5_500),
            "no snapshot point past 5500:\n{}",
            m.log_text()
        );
    }
    members[2].start();
    let url = members[2].client_url();
    let caught_up = wait_for_count(&url, KEYS, 600).await;
    assert!(caught_up, "s2 did not catch up:\n{}", members[2].log_text());
    // The store is swapped in before the line is logged, so the count can be seen first.
    assert!(
        members[2].wait_log("applied snapshot", 1, Duration::from_secs(10)),
        "{}",
        members[2].log_text()
    );
    // And it follows the log again afterwards.
    put_many(&members[1].client_url(), 10, &members).await;
    let mut c = KvClient::connect(url).await.unwrap();
    let got = c
        .range(RangeRequest {
            key: b"key-00009".to_vec().into(),
            serializable: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.kvs.len(), 1);

    // A restart after installing the snapshot recovers from it and the WAL after it.
    members[2].kill();
    members[2].start();
    let url = members[2].client_url();
    let back = wait_for_count(&url, KEYS, 300).await;
    assert!(
        back,
        "s2 lost data after restarting:\n{}",
        members[2].log_text()
    );
}

/// A member added after the leader's last snapshot point gets the leader's applied state, whose
/// configuration includes it. (Raft's stored snapshot predates the addition; a follower refuses
/// a snapshot whose configuration lacks it, so the new member used to wait forever. Found by
/// oxcd-fault's membership scenario.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_added_after_a_snapshot_point_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Member::static_member(
        dir.path(),
        "a0",
        "127.0.0.53",
        "a0=http://127.0.0.53:2380",
        "added",
    );
    first
        .args
        .extend(["--snapshot-count".into(), "1000".into()]);
    first.start();
    assert!(
        first.wait_log("published", 1, Duration::from_secs(30)),
        "{}",
        first.log_text()
    );
    put_many(&first.client_url(), KEYS, std::slice::from_ref(&first)).await;
    // Snapshot points wait for a durable backend commit; only once one is past the 5,000
    // entries raft keeps for slow followers does a new member need a snapshot.
    assert!(
        wait_until(Duration::from_secs(30), || last_snapshot_point(
            &first.log_text()
        ) > 5_500),
        "no snapshot point past 5500:\n{}",
        first.log_text()
    );
    etcdctl_ok(
        &first.client_url(),
        &["member", "add", "a1", "--peer-urls=http://127.0.0.54:2380"],
    );
    let both = "a0=http://127.0.0.53:2380,a1=http://127.0.0.54:2380";
    let mut added = Member::static_member(dir.path(), "a1", "127.0.0.54", both, "added");
    let state = added
        .args
        .iter()
        .position(|a| a == "--initial-cluster-state")
        .unwrap();
    added.args[state + 1] = "existing".into();
    added.start();
    let url = added.client_url();
    let caught_up = wait_for_count(&url, KEYS, 600).await;
    assert!(caught_up, "a1 did not catch up:\n{}", added.log_text());
    assert!(
        added.wait_log("applied snapshot", 1, Duration::from_secs(10)),
        "{}",
        added.log_text()
    );
}

/// The highest index in the member's "saved snapshot" log lines.
fn last_snapshot_point(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("saved snapshot"))
        .filter_map(|l| l.split("index=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .max()
        .unwrap_or(0)
}
