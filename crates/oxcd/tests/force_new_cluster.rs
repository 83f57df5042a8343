//! `--force-new-cluster`: disaster recovery from one surviving member's data.

mod common;

use std::time::Duration;

use common::*;

const CLUSTER: &str =
    "f0=http://127.0.0.110:2380,f1=http://127.0.0.111:2380,f2=http://127.0.0.112:2380";

#[test]
fn one_member_restarts_as_a_new_cluster_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut members = start_static_cluster(
        dir.path(),
        "f",
        ["127.0.0.110", "127.0.0.111", "127.0.0.112"],
        CLUSTER,
        "force",
    );
    let eps = members
        .iter()
        .map(|m| m.client_url())
        .collect::<Vec<_>>()
        .join(",");
    for n in 0..20 {
        etcdctl_ok(&eps, &["put", &format!("k{n:02}"), "v"]);
    }
    // The survivor must hold every write: --force-new-cluster keeps only what this member
    // knows to be committed (like etcd).
    let survivor = members[0].client_url();
    assert!(wait_until(Duration::from_secs(10), || {
        etcdctl_ok(
            &survivor,
            &["get", "k19", "--consistency=s", "--print-value-only"],
        )
        .trim()
            == "v"
    }));
    for m in &mut members {
        m.kill();
    }
    // The other two machines are gone for good; the first restarts alone.
    members[0].args.push("--force-new-cluster".into());
    members[0].start();
    assert!(
        members[0].wait_log("published", 2, Duration::from_secs(30)),
        "{}",
        members[0].log_text()
    );
    let ep = members[0].client_url();
    let list = etcdctl_ok(&ep, &["member", "list"]);
    assert_eq!(list.lines().count(), 1, "{list}\n{}", members[0].log_text());
    assert!(list.contains("f0"), "{list}");
    assert!(wait_until(Duration::from_secs(10), || etcdctl(
        &ep,
        &["put", "after", "recovery"]
    )
    .status
    .success()));
    let got = etcdctl_ok(&ep, &["get", "k", "--prefix", "--keys-only"]);
    let keys: Vec<&str> = got.split_whitespace().collect();
    assert_eq!(keys.len(), 20, "{keys:?}");
    // And it stays a one-member cluster across a normal restart.
    members[0].kill();
    members[0].args.retain(|a| a != "--force-new-cluster");
    members[0].start();
    assert!(
        members[0].wait_log("published", 3, Duration::from_secs(30)),
        "{}",
        members[0].log_text()
    );
    assert_eq!(
        etcdctl_ok(&ep, &["get", "after", "--print-value-only"]).trim(),
        "recovery"
    );
}
