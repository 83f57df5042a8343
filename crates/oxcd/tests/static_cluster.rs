//! The Clustering Guide's static bootstrap, run as a user would: three processes on
//! 127.0.0.10/11/12, token etcd-cluster-1, driven with etcdctl 3.4.

mod common;

use std::time::Duration;

use std::path::Path;

use common::*;

const CLUSTER: &str =
    "infra0=http://127.0.0.10:2380,infra1=http://127.0.0.11:2380,infra2=http://127.0.0.12:2380";
const READY: Duration = Duration::from_secs(30);

fn start_cluster(dir: &Path) -> Vec<Member> {
    start_static_cluster(
        dir,
        "infra",
        ["127.0.0.10", "127.0.0.11", "127.0.0.12"],
        CLUSTER,
        "etcd-cluster-1",
    )
}

fn endpoints(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| m.client_url())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn guide_static_example_ids_kv_and_crash_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut members = start_cluster(dir.path());
    let eps = endpoints(&members);

    // IDs exactly as etcd 3.4 derives them.
    let list = etcdctl_ok(&eps, &["member", "list", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v["header"]["cluster_id"].as_u64(), Some(0xf28eb4fda84fb6e1));
    let mut ids: Vec<u64> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ID"].as_u64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![0x01eee81c0ebacddc, 0x54e31805acfe9917, 0x9ba8dd709d019ef4]
    );
    let table = etcdctl_ok(&eps, &["member", "list"]);
    assert!(
        table.contains(
            "1eee81c0ebacddc, started, infra0, http://127.0.0.10:2380, http://127.0.0.10:2379"
        ),
        "{table}"
    );

    // KV through etcdctl.
    assert_eq!(etcdctl_ok(&eps, &["put", "foo", "bar"]).trim(), "OK");
    assert_eq!(etcdctl_ok(&eps, &["get", "foo"]), "foo\nbar\n");
    assert_eq!(
        etcdctl_ok(
            &members[2].client_url(),
            &["get", "foo", "--consistency=s", "--print-value-only"]
        )
        .trim(),
        "bar"
    );
    assert_eq!(etcdctl_ok(&eps, &["del", "foo"]).trim(), "1");
    assert_eq!(etcdctl_ok(&eps, &["get", "foo"]), "");
    // A transaction: the compare fails on a missing key, so the failure branch runs.
    let txn = etcdctl_stdin(
        &eps,
        &["txn"],
        "value(\"tk\") = \"x\"\n\nput tk then\n\nput tk else\n\n",
    );
    assert!(
        txn.status.success(),
        "{}",
        String::from_utf8_lossy(&txn.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&txn.stdout), "FAILURE\n\nOK\n");
    assert_eq!(
        etcdctl_ok(&eps, &["get", "tk", "--print-value-only"]).trim(),
        "else"
    );
    // Compaction at the current revision, then a read of the compacted past fails like etcd.
    let v: serde_json::Value =
        serde_json::from_str(&etcdctl_ok(&eps, &["get", "tk", "-w", "json"])).unwrap();
    let rev = v["header"]["revision"].as_i64().unwrap();
    assert_eq!(
        etcdctl_ok(&eps, &["compaction", &rev.to_string()]).trim(),
        format!("compacted revision {rev}")
    );
    let old = etcdctl(&eps, &["get", "tk", "--rev", "2"]);
    assert!(!old.status.success());
    assert!(String::from_utf8_lossy(&old.stderr).contains("required revision has been compacted"));

    // etcdctl 3.4 prints the health report on stderr.
    let out = etcdctl(&eps, &["endpoint", "health"]);
    let health = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{health}");
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    let status = etcdctl_ok(&eps, &["endpoint", "status", "-w", "json"]);
    assert!(status.contains("\"leader\""), "{status}");

    // Any one member can die: the other two keep serving writes.
    for i in 0..3 {
        members[i].kill();
        let live: Vec<String> = (0..3)
            .filter(|j| *j != i)
            .map(|j| members[j].client_url())
            .collect();
        let live = live.join(",");
        let key = format!("while-{i}-down");
        assert!(
            wait_until(Duration::from_secs(20), || etcdctl(
                &live,
                &["put", &key, "v"]
            )
            .status
            .success()),
            "writes failed with infra{i} down"
        );
        members[i].start();
        assert!(
            members[i].wait_log("published", 2, READY),
            "{}",
            members[i].log_text()
        );
    }

    // Acknowledged writes survive SIGKILL of every member at once.
    for n in 0..50 {
        etcdctl_ok(&eps, &["put", &format!("k{n:03}"), &format!("v{n}")]);
    }
    for m in &mut members {
        m.kill();
    }
    for m in &mut members {
        m.start();
    }
    for m in &members {
        assert!(m.wait_log("published", 3, READY), "{}", m.log_text());
    }
    let got = etcdctl_ok(&eps, &["get", "k", "--prefix", "--keys-only", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(v["count"].as_u64(), Some(50), "{got}");
    for i in 0..3 {
        assert_eq!(
            etcdctl_ok(
                &eps,
                &["get", &format!("while-{i}-down"), "--print-value-only"]
            )
            .trim(),
            "v"
        );
    }
}
