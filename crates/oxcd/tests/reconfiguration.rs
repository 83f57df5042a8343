//! Runtime reconfiguration under a write load: a cluster grows from one member to five, then
//! shrinks to three, removing the leader on the way. No acknowledged write may be lost.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use oxcd_proto::etcdserverpb::cluster_client::ClusterClient;
use oxcd_proto::etcdserverpb::kv_client::KvClient;
use oxcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use oxcd_proto::etcdserverpb::{
    MemberAddRequest, MemberListRequest, MemberRemoveRequest, PutRequest, RangeRequest,
    StatusRequest,
};
use parking_lot_free::Shared;

/// A tiny shared-state helper so the test needs no extra dependency.
mod parking_lot_free {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    pub struct Shared<T>(Arc<Mutex<T>>);

    impl<T: Clone> Shared<T> {
        pub fn get(&self) -> T {
            self.0
                .lock()
                .map(|g| g.clone())
                .unwrap_or_else(|e| e.into_inner().clone())
        }
        pub fn set(&self, v: T) {
            match self.0.lock() {
                Ok(mut g) => *g = v,
                Err(e) => *e.into_inner() = v,
            }
        }
    }
}

fn ip(i: usize) -> String {
    format!("127.0.0.{}", 80 + i)
}

fn member(dir: &std::path::Path, i: usize, initial_cluster: &str, state: &str) -> Member {
    let mut m = Member::static_member(dir, &format!("r{i}"), &ip(i), initial_cluster, "reconfig");
    let pos = m
        .args
        .iter()
        .position(|a| a == "--initial-cluster-state")
        .unwrap();
    m.args[pos + 1] = state.into();
    m
}

/// Writes keys until stopped, each to the next live endpoint; returns the acknowledged keys.
async fn writer(
    endpoints: Shared<Vec<String>>,
    stop: Arc<AtomicBool>,
) -> (BTreeSet<String>, usize) {
    let mut acked = BTreeSet::new();
    let mut failures = 0;
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        let eps = endpoints.get();
        let ep = eps[(n as usize) % eps.len()].clone();
        n += 1;
        let key = format!("load-{n:06}");
        let put = async {
            let mut c = KvClient::connect(ep).await.map_err(|e| e.to_string())?;
            c.put(PutRequest {
                key: key.clone().into_bytes().into(),
                value: b"v".to_vec().into(),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(10), put).await {
            Ok(Ok(_)) => {
                acked.insert(key);
            }
            _ => failures += 1,
        }
    }
    (acked, failures)
}

async fn wait_started(url: &str, name: &str) -> bool {
    for _ in 0..300 {
        if let Ok(mut c) = ClusterClient::connect(url.to_string()).await {
            if let Ok(r) = c.member_list(MemberListRequest {}).await {
                if r.into_inner().members.iter().any(|m| m.name == name) {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_to_five_and_shrink_to_three_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut members: Vec<Member> = Vec::new();
    let first = format!("r0=http://{}:2380", ip(0));
    members.push(member(dir.path(), 0, &first, "new"));
    members[0].start();
    assert!(
        members[0].wait_log("published", 1, Duration::from_secs(30)),
        "{}",
        members[0].log_text()
    );

    let endpoints: Shared<Vec<String>> = Shared::default();
    endpoints.set(vec![members[0].client_url()]);
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(writer(endpoints.clone(), stop.clone()));

    // Grow: add each member through the API, then start it with state "existing".
    let mut initial = vec![first];
    for i in 1..5 {
        let mut c = ClusterClient::connect(members[0].client_url())
            .await
            .unwrap();
        let resp = c
            .member_add(MemberAddRequest {
                peer_ur_ls: vec![format!("http://{}:2380", ip(i))],
                is_learner: false,
            })
            .await
            .unwrap_or_else(|e| panic!("adding r{i}: {e}"));
        assert_eq!(resp.into_inner().members.len(), i + 1);
        initial.push(format!("r{i}=http://{}:2380", ip(i)));
        let mut m = member(dir.path(), i, &initial.join(","), "existing");
        m.start();
        assert!(
            wait_started(&members[0].client_url(), &format!("r{i}")).await,
            "{}",
            m.log_text()
        );
        members.push(m);
        endpoints.set(members.iter().map(|m| m.client_url()).collect());
    }

    // Shrink: remove the leader first, then one more member.
    let mut status = MaintenanceClient::connect(members[1].client_url())
        .await
        .unwrap();
    let leader = status
        .status(StatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .leader;
    let mut removed = Vec::new();
    for target in [Some(leader), None] {
        let live: Vec<usize> = (0..members.len())
            .filter(|i| !removed.contains(i))
            .collect();
        let mut c = ClusterClient::connect(members[live[0]].client_url())
            .await
            .unwrap();
        let list = c
            .member_list(MemberListRequest {})
            .await
            .unwrap()
            .into_inner();
        // The leader first, then the last member added.
        let victim = match target {
            Some(id) => {
                let name = &list.members.iter().find(|m| m.id == id).unwrap().name;
                live.iter()
                    .copied()
                    .find(|i| members[*i].name == *name)
                    .unwrap()
            }
            None => *live.last().unwrap(),
        };
        let id = list
            .members
            .iter()
            .find(|m| m.name == members[victim].name)
            .unwrap()
            .id;
        let others: Vec<usize> = live.iter().copied().filter(|i| *i != victim).collect();
        endpoints.set(others.iter().map(|i| members[*i].client_url()).collect());
        let mut c = ClusterClient::connect(members[others[0]].client_url())
            .await
            .unwrap();
        let mut done = false;
        for _ in 0..50 {
            match c.member_remove(MemberRemoveRequest { id }).await {
                Ok(_) => {
                    done = true;
                    break;
                }
                // Expected while a new leader is being elected.
                Err(e) if e.code() == tonic::Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => panic!("removing {}: {e}", members[victim].name),
            }
        }
        assert!(done, "could not remove {}", members[victim].name);
        removed.push(victim);
        assert!(
            wait_until(Duration::from_secs(20), || members[victim]
                .log_text()
                .contains("permanently removed")),
            "{} did not stop:\n{}",
            members[victim].name,
            members[victim].log_text()
        );
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Release);
    let (acked, failures) = load.await.unwrap();
    assert!(
        acked.len() > 20,
        "too few writes went through ({} ok, {failures} failed)",
        acked.len()
    );

    // Every acknowledged write is on every remaining member.
    for i in (0..members.len()).filter(|i| !removed.contains(i)) {
        let mut kv = KvClient::connect(members[i].client_url()).await.unwrap();
        let mut found = BTreeSet::new();
        for _ in 0..100 {
            let r = kv
                .range(RangeRequest {
                    key: b"load-".to_vec().into(),
                    range_end: b"load.".to_vec().into(),
                    keys_only: true,
                    serializable: true,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            found = r
                .kvs
                .iter()
                .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
                .collect();
            if acked.is_subset(&found) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let lost: Vec<&String> = acked.difference(&found).collect();
        assert!(
            lost.is_empty(),
            "{} lost acknowledged writes: {:?}",
            members[i].name,
            lost
        );
    }
}

/// `--experimental-auto-promote-learners`: a learner that has caught up becomes a voter
/// without an operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caught_up_learner_is_promoted_automatically() {
    let dir = tempfile::tempdir().unwrap();
    let ipa = "127.0.0.125";
    let ipb = "127.0.0.126";
    let first = format!("a0=http://{ipa}:2380");
    let mut a = Member::static_member(dir.path(), "a0", ipa, &first, "auto-promote");
    a.args.push("--experimental-auto-promote-learners".into());
    a.start();
    assert!(
        a.wait_log("published", 1, Duration::from_secs(30)),
        "{}",
        a.log_text()
    );
    let mut c = ClusterClient::connect(a.client_url()).await.unwrap();
    c.member_add(MemberAddRequest {
        peer_ur_ls: vec![format!("http://{ipb}:2380")],
        is_learner: true,
    })
    .await
    .unwrap();
    let initial = format!("{first},a1=http://{ipb}:2380");
    let mut b = Member::static_member(dir.path(), "a1", ipb, &initial, "auto-promote");
    let pos = b
        .args
        .iter()
        .position(|x| x == "--initial-cluster-state")
        .unwrap();
    b.args[pos + 1] = "existing".into();
    b.start();
    let mut promoted = false;
    for _ in 0..200 {
        let list = c
            .member_list(MemberListRequest {})
            .await
            .unwrap()
            .into_inner();
        if list.members.len() == 2 && list.members.iter().all(|m| !m.is_learner) {
            promoted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(promoted, "{}\n{}", a.log_text(), b.log_text());
}
