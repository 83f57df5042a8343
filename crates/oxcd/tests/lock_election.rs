//! Locks and elections against a three-member cluster on 127.0.0.91-93: etcdctl 3.4's `lock`
//! and `elect` (which build both on KV, Watch and Lease from the client side), and the v3lock
//! and v3election gRPC services, asked through every member. Output formats were checked by
//! hand against etcd 3.4.23.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use common::*;
use oxcd_proto::etcdserverpb::lease_client::LeaseClient;
use oxcd_proto::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest};
use oxcd_proto::v3electionpb::election_client::ElectionClient;
use oxcd_proto::v3electionpb::{
    CampaignRequest, LeaderKey, LeaderRequest, ProclaimRequest, ResignRequest,
};
use oxcd_proto::v3lockpb::lock_client::LockClient;
use oxcd_proto::v3lockpb::{LockRequest, UnlockRequest};

const CLUSTER: &str =
    "k0=http://127.0.0.91:2380,k1=http://127.0.0.92:2380,k2=http://127.0.0.93:2380";
/// How long a blocked contender is watched to make sure it stays blocked.
const BLOCKED: Duration = Duration::from_millis(700);
const SOON: Duration = Duration::from_secs(10);

fn start_cluster(dir: &Path) -> Vec<Member> {
    start_static_cluster(
        dir,
        "k",
        ["127.0.0.91", "127.0.0.92", "127.0.0.93"],
        CLUSTER,
        "lock-election-cluster",
    )
}

/// An etcdctl command running in the background, its output going to a file.
struct Background {
    child: Child,
    out: PathBuf,
}

impl Background {
    fn start(dir: &Path, tag: &str, endpoint: &str, args: &[&str]) -> Background {
        let out = dir.join(format!("{tag}.out"));
        let child = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(endpoint)
            .args(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("{tag}.err"))).unwrap())
            .spawn()
            .expect("etcdctl must be installed (apt-get install etcd-client)");
        Background { child, out }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn wait_output(&self, lines: usize) -> String {
        wait_until(SOON, || self.output().lines().count() >= lines);
        self.output()
    }

    /// Ctrl-C, as a user would stop `etcdctl lock` or `etcdctl elect`.
    fn interrupt(&self) {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -INT failed");
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + SOON;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "etcdctl did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `<prefix>/<16 lower-case hex digits>`.
fn assert_contender_key(key: &str, prefix: &str) {
    let hex = key
        .strip_prefix(prefix)
        .and_then(|k| k.strip_prefix('/'))
        .unwrap_or_else(|| panic!("{key:?} is not under {prefix}/"));
    assert!(
        !hex.is_empty() && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        "{key:?}"
    );
}

fn etcdctl_lock_and_elect(dir: &Path, eps: &[String]) {
    // lock: the holder prints its key and the (empty) value, and holds until Ctrl-C.
    let holder = Background::start(dir, "lock1", &eps[0], &["lock", "mylock"]);
    let out = holder.wait_output(2);
    let lines: Vec<&str> = out.split('\n').collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert_contender_key(lines[0], "mylock");
    assert_eq!(&lines[1..], ["", ""], "{out:?}");
    let held = lines[0].to_string();

    // A second lock, through another member, waits, then runs its command and unlocks.
    let mut second = Background::start(
        dir,
        "lock2",
        &eps[1],
        &["lock", "mylock", "--", "echo", "hi"],
    );
    std::thread::sleep(BLOCKED);
    assert!(second.running(), "the second lock must wait");
    assert_eq!(second.output(), "");
    let mut holder = holder;
    holder.interrupt();
    assert!(holder.wait_exit().success());
    assert!(second.wait_exit().success());
    assert_eq!(second.output(), "hi\n");
    assert_eq!(
        etcdctl_ok(&eps[2], &["get", "--prefix", "mylock/", "--keys-only"]),
        "",
        "both lock keys must be gone ({held} was the first)"
    );

    // elect: an observer, then two candidates; the second wins when the first resigns.
    let mut observer = Background::start(dir, "observe", &eps[2], &["elect", "-l", "myelection"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut first = Background::start(dir, "elect1", &eps[0], &["elect", "myelection", "foo"]);
    let out1 = first.wait_output(2);
    let l1: Vec<&str> = out1.lines().collect();
    assert_eq!(l1.len(), 2, "{out1:?}");
    assert_contender_key(l1[0], "myelection");
    assert_eq!(l1[1], "foo");
    let mut second = Background::start(dir, "elect2", &eps[1], &["elect", "myelection", "bar"]);
    std::thread::sleep(BLOCKED);
    assert!(second.running());
    assert_eq!(second.output(), "", "the second candidate must wait");
    first.interrupt();
    assert!(first.wait_exit().success());
    let out2 = second.wait_output(2);
    let l2: Vec<&str> = out2.lines().collect();
    assert_eq!(l2.len(), 2, "{out2:?}");
    assert_contender_key(l2[0], "myelection");
    assert_ne!(l1[0], l2[0]);
    assert_eq!(l2[1], "bar");
    second.interrupt();
    assert!(second.wait_exit().success());
    let seen = observer.wait_output(4);
    assert_eq!(seen, format!("{}\nfoo\n{}\nbar\n", l1[0], l2[0]));
    observer.interrupt();
    assert!(observer.wait_exit().success());
}

async fn grant(ep: &str, ttl: i64) -> i64 {
    let mut c = LeaseClient::connect(ep.to_string()).await.unwrap();
    c.lease_grant(LeaseGrantRequest { ttl, id: 0 })
        .await
        .unwrap()
        .into_inner()
        .id
}

async fn revoke(ep: &str, id: i64) {
    let mut c = LeaseClient::connect(ep.to_string()).await.unwrap();
    c.lease_revoke(LeaseRevokeRequest { id }).await.unwrap();
}

fn b(s: &str) -> oxcd_proto::bytes::Bytes {
    oxcd_proto::bytes::Bytes::copy_from_slice(s.as_bytes())
}

async fn lock_service(eps: &[String]) {
    let mut c0 = LockClient::connect(eps[0].clone()).await.unwrap();
    let mut c1 = LockClient::connect(eps[1].clone()).await.unwrap();
    let l1 = grant(&eps[0], 60).await;
    let r1 = c0
        .lock(LockRequest {
            name: b("svc"),
            lease: l1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r1.key, b(&format!("svc/{l1:x}")));
    assert!(r1.header.unwrap().revision > 0);

    // A waiter through another member; unlocking through a third lets it in.
    let l2 = grant(&eps[1], 60).await;
    let waiter = tokio::spawn(async move {
        c1.lock(LockRequest {
            name: b("svc"),
            lease: l2,
        })
        .await
    });
    tokio::time::sleep(BLOCKED).await;
    assert!(!waiter.is_finished(), "the second lock must wait");
    let mut c2 = LockClient::connect(eps[2].clone()).await.unwrap();
    c2.unlock(UnlockRequest { key: r1.key }).await.unwrap();
    let r2 = tokio::time::timeout(SOON, waiter)
        .await
        .expect("the waiter must get the lock")
        .unwrap()
        .unwrap()
        .into_inner();
    assert_eq!(r2.key, b(&format!("svc/{l2:x}")));

    // A waiter whose lease is revoked gets etcd's plain error.
    let l3 = grant(&eps[2], 60).await;
    let waiter = tokio::spawn(async move {
        c2.lock(LockRequest {
            name: b("svc"),
            lease: l3,
        })
        .await
    });
    tokio::time::sleep(BLOCKED).await;
    revoke(&eps[0], l3).await;
    let err = tokio::time::timeout(SOON, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unknown);
    assert_eq!(err.message(), "mutex: session is expired");

    // A client that gives up (deadline) leaves no key behind.
    let l4 = grant(&eps[0], 60).await;
    let mut req = tonic::Request::new(LockRequest {
        name: b("svc"),
        lease: l4,
    });
    req.set_timeout(Duration::from_millis(500));
    let err = c0.lock(req).await.unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{err:?}"
    );
    let key = format!("svc/{l4:x}");
    assert!(
        wait_until(SOON, || etcdctl_ok(&eps[1], &["get", &key]).is_empty()),
        "the abandoned lock key must be deleted"
    );

    let err = c0
        .lock(LockRequest {
            name: b("svc"),
            lease: 1234,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unknown);
    assert_eq!(err.message(), "etcdserver: requested lease not found");
}

async fn next_leader(
    o: &mut tonic::Streaming<oxcd_proto::v3electionpb::LeaderResponse>,
) -> oxcd_proto::mvccpb::KeyValue {
    let r = tokio::time::timeout(SOON, o.message())
        .await
        .expect("the observer must see the change")
        .unwrap();
    r.expect("the observe stream ended").kv.unwrap()
}

async fn election_service(eps: &[String]) {
    let mut c0 = ElectionClient::connect(eps[0].clone()).await.unwrap();
    let mut c1 = ElectionClient::connect(eps[1].clone()).await.unwrap();
    let mut c2 = ElectionClient::connect(eps[2].clone()).await.unwrap();

    let err = c1
        .leader(LeaderRequest { name: b("svc-e") })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (tonic::Code::Unknown, "election: no leader")
    );
    let err = c1
        .proclaim(ProclaimRequest {
            leader: None,
            value: b("x"),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (tonic::Code::Unknown, "\"leader\" field must be provided")
    );

    let mut observe = c2
        .observe(LeaderRequest { name: b("svc-e") })
        .await
        .unwrap()
        .into_inner();

    // No lease: the member grants one, and reports it.
    let camp = c0
        .campaign(CampaignRequest {
            name: b("svc-e"),
            lease: 0,
            value: b("v1"),
        })
        .await
        .unwrap()
        .into_inner();
    let leader = camp.leader.unwrap();
    assert_ne!(leader.lease, 0);
    assert_eq!(leader.key, b(&format!("svc-e/{:x}", leader.lease)));
    assert_eq!(leader.rev, camp.header.unwrap().revision);

    let kv = next_leader(&mut observe).await;
    assert_eq!(
        (kv.key.clone(), kv.value.clone()),
        (leader.key.clone(), b("v1"))
    );

    c1.proclaim(ProclaimRequest {
        leader: Some(leader.clone()),
        value: b("v2"),
    })
    .await
    .unwrap();
    let kv = next_leader(&mut observe).await;
    assert_eq!(kv.value, b("v2"));
    let now = c2
        .leader(LeaderRequest { name: b("svc-e") })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.kv.unwrap().value, b("v2"));

    let stale = LeaderKey {
        rev: leader.rev + 1000,
        ..leader.clone()
    };
    let err = c2
        .proclaim(ProclaimRequest {
            leader: Some(stale),
            value: b("x"),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (tonic::Code::Unknown, "election: not leader")
    );

    // A second candidate waits for the first to resign.
    let l2 = grant(&eps[1], 60).await;
    let mut c1b = c1.clone();
    let second = tokio::spawn(async move {
        c1b.campaign(CampaignRequest {
            name: b("svc-e"),
            lease: l2,
            value: b("w"),
        })
        .await
    });
    tokio::time::sleep(BLOCKED).await;
    assert!(!second.is_finished(), "the second candidate must wait");
    c2.resign(ResignRequest {
        leader: Some(leader),
    })
    .await
    .unwrap();
    let won = tokio::time::timeout(SOON, second)
        .await
        .expect("the second candidate must win")
        .unwrap()
        .unwrap()
        .into_inner();
    let leader2 = won.leader.unwrap();
    assert_eq!(leader2.key, b(&format!("svc-e/{l2:x}")));
    let kv = next_leader(&mut observe).await;
    assert_eq!((kv.key, kv.value), (leader2.key, b("w")));
}

#[test]
fn lock_and_election() {
    let dir = tempfile::tempdir().unwrap();
    let members = start_cluster(dir.path());
    let eps: Vec<String> = members.iter().map(|m| m.client_url()).collect();

    etcdctl_lock_and_elect(dir.path(), &eps);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(lock_service(&eps));
    rt.block_on(election_service(&eps));
}
