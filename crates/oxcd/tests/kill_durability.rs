//! Acknowledged writes survive `kill -9`: the backend file lags behind what was applied (the
//! flusher writes it later, and syncs it about once a second), so a restart must rebuild the
//! rest from the WAL. Snapshot points every 500 entries make raft drop its log often; that is
//! safe only behind a durable backend, which is what this checks.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use oxcd_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use oxcd_proto::etcdserverpb::kv_client::KvClient;
use oxcd_proto::etcdserverpb::request_op::Request;
use oxcd_proto::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use tonic::transport::Channel;

const IP: &str = "127.0.0.140";
const CLIENTS: usize = 20;
const PUTS_PER_CLIENT: usize = 150;

fn member(dir: &std::path::Path) -> Member {
    member_at(dir, IP)
}

fn member_at(dir: &std::path::Path, ip: &str) -> Member {
    let mut m = Member::static_member(dir, "d0", ip, &format!("d0=http://{ip}:2380"), "durability");
    m.args.extend(["--snapshot-count".into(), "500".into()]);
    m
}

async fn connect(m: &Member) -> KvClient<Channel> {
    let url = m.client_url();
    for _ in 0..200 {
        if let Ok(c) = KvClient::connect(url.clone()).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot connect to {url}:\n{}", m.log_text());
}

/// Writes round `round` from `CLIENTS` concurrent clients and returns what was acknowledged:
/// key → value, and the highest revision any response carried.
async fn write_round(kv: &KvClient<Channel>, round: usize) -> (BTreeMap<String, String>, i64) {
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut rev = 0;
            for i in 0..PUTS_PER_CLIENT {
                let key = format!("k{c:02}/{:03}", i % 100);
                let value = format!("r{round}-c{c}-i{i}");
                let resp = kv
                    .put(PutRequest {
                        key: key.clone().into(),
                        value: value.clone().into(),
                        ..Default::default()
                    })
                    .await
                    .expect("put")
                    .into_inner();
                rev = rev.max(resp.header.map(|h| h.revision).unwrap_or(0));
                acked.push((key, value));
            }
            (acked, rev)
        }));
    }
    let mut want = BTreeMap::new();
    let mut rev = 0;
    for t in tasks {
        let (acked, r) = t.await.expect("client task");
        rev = rev.max(r);
        // Each client writes its own keys in order: its last write of a key is the value.
        want.extend(acked);
    }
    (want, rev)
}

async fn everything(kv: &mut KvClient<Channel>) -> (BTreeMap<String, String>, i64) {
    let resp = kv
        .range(RangeRequest {
            key: b"k".to_vec().into(),
            range_end: b"l".to_vec().into(),
            ..Default::default()
        })
        .await
        .expect("range")
        .into_inner();
    let got = resp
        .kvs
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(&kv.key).into_owned(),
                String::from_utf8_lossy(&kv.value).into_owned(),
            )
        })
        .collect();
    (got, resp.header.map(|h| h.revision).unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = member(dir.path());
    let mut starts = 0;
    let mut start = |m: &mut Member| {
        m.start();
        starts += 1;
        assert!(
            m.wait_log("published", starts, Duration::from_secs(30)),
            "not ready:\n{}",
            m.log_text()
        );
    };
    start(&mut m);
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    let mut acked_rev = 0;
    for round in 0..3 {
        let mut kv = connect(&m).await;
        let (written, rev) = write_round(&kv, round).await;
        want.extend(written);
        acked_rev = acked_rev.max(rev);
        match round {
            // a compaction and a txn that deletes, acknowledged just before the kill
            1 => {
                kv.compact(CompactionRequest {
                    revision: acked_rev - 100,
                    physical: true,
                })
                .await
                .expect("compact");
                let resp = kv
                    .txn(TxnRequest {
                        compare: vec![Compare {
                            result: CompareResult::Greater as i32,
                            target: CompareTarget::Version as i32,
                            key: b"k00/000".to_vec().into(),
                            target_union: Some(TargetUnion::Version(0)),
                            ..Default::default()
                        }],
                        success: vec![RequestOp {
                            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                                key: b"k01/".to_vec().into(),
                                range_end: b"k01/\xff".to_vec().into(),
                                ..Default::default()
                            })),
                        }],
                        ..Default::default()
                    })
                    .await
                    .expect("txn")
                    .into_inner();
                assert!(resp.succeeded);
                want.retain(|k, _| !k.starts_with("k01/"));
                acked_rev = resp.header.map(|h| h.revision).unwrap_or(0);
            }
            // an acknowledged write right before the kill
            _ => {
                let resp = kv
                    .put(PutRequest {
                        key: b"k99/last".to_vec().into(),
                        value: format!("round {round}").into(),
                        ..Default::default()
                    })
                    .await
                    .expect("put")
                    .into_inner();
                want.insert("k99/last".into(), format!("round {round}"));
                acked_rev = resp.header.map(|h| h.revision).unwrap_or(0);
            }
        }
        m.kill();
        start(&mut m);
        let (recovered, last) = wait_for_contents(&m, &want).await;
        assert!(
            recovered,
            "round {round}: after kill -9 the store lost acknowledged writes: {} keys differ\n{}",
            want.iter()
                .filter(|(k, v)| last.0.get(*k) != Some(v))
                .count()
                + last.0.keys().filter(|k| !want.contains_key(*k)).count(),
            m.log_text()
        );
        assert!(
            last.1 >= acked_rev,
            "round {round}: revision went back from {acked_rev} to {}",
            last.1
        );
    }
}

/// Runs a future to completion from synchronous polling code inside the test's runtime.
/// Polls the member's keys until they are `want`: whether they got there, and the last read
/// (keys and revision).
async fn wait_for_contents(
    m: &Member,
    want: &BTreeMap<String, String>,
) -> (bool, (BTreeMap<String, String>, i64)) {
    let mut kv = connect(m).await;
    let mut last = (BTreeMap::new(), 0);
    let recovered = wait_until(Duration::from_secs(30), || {
        last = futures_lite_block(everything(&mut kv));
        last.0 == *want
    });
    (recovered, last)
}

fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// A snapshot point writes its `.snap` file, then its WAL marker. A kill between the two leaves
/// a newest file that the WAL has no marker for: the member must start from the newest file it
/// does have a marker for, with every acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snap_file_without_its_wal_marker_does_not_stop_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = member_at(dir.path(), "127.0.0.141");
    m.start();
    assert!(
        m.wait_log("published", 1, Duration::from_secs(30)),
        "not ready:\n{}",
        m.log_text()
    );
    let kv = connect(&m).await;
    let (want, _) = write_round(&kv, 0).await;
    assert!(
        m.wait_log("saved snapshot", 1, Duration::from_secs(30)),
        "no snapshot point after {} puts:\n{}",
        CLIENTS * PUTS_PER_CLIENT,
        m.log_text()
    );
    m.kill();

    let mut meta = raft_proto::eraftpb::SnapshotMetadata {
        index: 1_000_000,
        term: 2,
        ..Default::default()
    };
    meta.mut_conf_state().voters = vec![1];
    let mut orphan = raft_proto::eraftpb::Snapshot::default();
    orphan.set_metadata(meta);
    oxcd_wal::Snapshotter::new(&m.data_dir.join("member/snap"))
        .save(&orphan)
        .expect("write the orphan .snap file");

    m.start();
    assert!(
        m.wait_log("published", 2, Duration::from_secs(30)),
        "did not restart:\n{}",
        m.log_text()
    );
    let (recovered, last) = wait_for_contents(&m, &want).await;
    assert!(
        recovered,
        "after the restart {} keys, want {}",
        last.0.len(),
        want.len()
    );
}
