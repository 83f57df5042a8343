//! 100 watchers follow a prefix while writes go on and the leader is killed: every watcher
//! sees every revision exactly once, in order.

mod common;

use std::time::Duration;

use common::*;
use futures_util_free::next;
use oxcd_proto::etcdserverpb::kv_client::KvClient;
use oxcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use oxcd_proto::etcdserverpb::watch_client::WatchClient;
use oxcd_proto::etcdserverpb::watch_request::RequestUnion;
use oxcd_proto::etcdserverpb::{
    PutRequest, RangeRequest, StatusRequest, WatchCreateRequest, WatchRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

mod futures_util_free {
    /// The next message of a tonic stream, without a futures dependency.
    pub async fn next<T>(s: &mut tonic::Streaming<T>) -> Option<T> {
        s.message().await.ok().flatten()
    }
}

const CLUSTER: &str =
    "w0=http://127.0.0.100:2380,w1=http://127.0.0.101:2380,w2=http://127.0.0.102:2380";
const WATCHERS: usize = 100;
const WRITES: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_every_revision_once_across_a_leader_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut members: Vec<Member> = (0..3)
        .map(|i| {
            Member::static_member(
                dir.path(),
                &format!("w{i}"),
                &format!("127.0.0.10{i}"),
                CLUSTER,
                "watch",
            )
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
    let mut st = MaintenanceClient::connect(members[0].client_url())
        .await
        .unwrap();
    let status = st.status(StatusRequest {}).await.unwrap().into_inner();
    let leader_id = status.leader;
    let mut leader = None;
    for (i, m) in members.iter().enumerate() {
        let mut c = MaintenanceClient::connect(m.client_url()).await.unwrap();
        if c.status(StatusRequest {})
            .await
            .unwrap()
            .into_inner()
            .header
            .unwrap()
            .member_id
            == leader_id
        {
            leader = Some(i);
        }
    }
    let leader = leader.unwrap();
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let start_rev = status.header.unwrap().revision + 1;

    // 100 watchers on the two followers, 10 per stream.
    let (tx_events, mut rx_events) = mpsc::channel::<(usize, Vec<i64>)>(WATCHERS);
    for stream_no in 0..WATCHERS / 10 {
        let url = members[followers[stream_no % 2]].client_url();
        let tx_events = tx_events.clone();
        let mut client = WatchClient::connect(url).await.unwrap();
        let (req_tx, req_rx) = mpsc::channel(16);
        let mut stream = client
            .watch(ReceiverStream::new(req_rx))
            .await
            .unwrap()
            .into_inner();
        for w in 0..10 {
            req_tx
                .send(WatchRequest {
                    request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                        key: b"w/".to_vec().into(),
                        range_end: b"w0".to_vec().into(),
                        start_revision: start_rev,
                        watch_id: w + 1,
                        ..Default::default()
                    })),
                })
                .await
                .unwrap();
        }
        tokio::spawn(async move {
            let _keep_open = req_tx;
            let mut seen: Vec<Vec<i64>> = vec![Vec::new(); 10];
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            let mut done = [false; 10];
            loop {
                let resp = match tokio::time::timeout_at(deadline, next(&mut stream)).await {
                    Ok(Some(r)) => r,
                    _ => break,
                };
                let idx = (resp.watch_id - 1) as usize;
                if idx >= 10 {
                    continue;
                }
                for kv in resp.events.iter().filter_map(|e| e.kv.as_ref()) {
                    seen[idx].push(kv.mod_revision);
                    if kv.key.starts_with(b"w/end") {
                        done[idx] = true;
                    }
                }
                if done.iter().all(|d| *d) {
                    break;
                }
            }
            for (w, revs) in seen.into_iter().enumerate() {
                let _ = tx_events.send((stream_no * 10 + w, revs)).await;
            }
        });
    }
    drop(tx_events);

    // Writes through the followers; the leader is killed a third of the way in.
    let mut kv = KvClient::connect(members[followers[0]].client_url())
        .await
        .unwrap();
    let mut written = 0;
    let mut n = 0;
    while written < WRITES {
        if written == WRITES / 3 {
            members[leader].kill();
        }
        n += 1;
        let put = PutRequest {
            key: format!("w/{n:05}").into_bytes().into(),
            value: b"x".to_vec().into(),
            ..Default::default()
        };
        match kv.put(put).await {
            Ok(_) => written += 1,
            Err(e) if e.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("put: {e}"),
        }
    }

    // A last key marks the end for the watchers; every attempt uses a new key, so a put that
    // failed but was applied anyway is still one distinct revision.
    for attempt in 0.. {
        let put = PutRequest {
            key: format!("w/end-{attempt}").into_bytes().into(),
            value: b"x".to_vec().into(),
            ..Default::default()
        };
        if kv.put(put).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The revisions a watcher must see: those of every key under the prefix, in order.
    let mut reader = KvClient::connect(members[followers[1]].client_url())
        .await
        .unwrap();
    let mut expected: Vec<i64> = reader
        .range(RangeRequest {
            key: b"w/".to_vec().into(),
            range_end: b"w0".to_vec().into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .kvs
        .iter()
        .map(|kv| kv.mod_revision)
        .collect();
    expected.sort();
    assert!(expected.len() >= WRITES);

    let mut reports = 0;
    while let Some((w, revs)) = rx_events.recv().await {
        reports += 1;
        assert_eq!(revs, expected, "watcher {w} saw a different history");
    }
    assert_eq!(reports, WATCHERS);
}
