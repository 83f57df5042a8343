//! `etcdctl defrag` gives back the space that compaction freed, and the data stays.

mod common;

use std::time::Duration;

use common::*;

fn db_size(ep: &str) -> u64 {
    let out = etcdctl_ok(ep, &["endpoint", "status", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["Status"]["dbSize"].as_u64().unwrap()
}

#[test]
fn defrag_shrinks_the_backend_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Member::static_member(
        dir.path(),
        "d0",
        "127.0.0.120",
        "d0=http://127.0.0.120:2380",
        "defrag",
    );
    m.start();
    assert!(
        m.wait_log("published", 1, Duration::from_secs(30)),
        "{}",
        m.log_text()
    );
    let ep = m.client_url();
    let big = "x".repeat(20_000);
    for i in 0..40 {
        etcdctl_ok(&ep, &["put", &format!("k{i}"), &big]);
    }
    etcdctl_ok(&ep, &["put", "other", "me"]);
    etcdctl_ok(&ep, &["del", "k", "--prefix"]);
    let v: serde_json::Value =
        serde_json::from_str(&etcdctl_ok(&ep, &["get", "other", "-w", "json"])).unwrap();
    let rev = v["header"]["revision"].as_i64().unwrap();
    etcdctl_ok(&ep, &["compaction", &rev.to_string()]);
    let before = db_size(&ep);
    let out = etcdctl_ok(&ep, &["defrag"]);
    assert!(out.contains("Finished defragmenting etcd member"), "{out}");
    let after = db_size(&ep);
    assert!(after * 4 < before, "db size {before} -> {after}");
    assert_eq!(
        etcdctl_ok(&ep, &["get", "other", "--print-value-only"]).trim(),
        "me"
    );
    assert_eq!(etcdctl_ok(&ep, &["put", "more", "writes"]).trim(), "OK");
    // The rewritten file is the one a restart opens.
    m.kill();
    m.start();
    assert!(
        m.wait_log("published", 2, Duration::from_secs(30)),
        "{}",
        m.log_text()
    );
    assert_eq!(
        etcdctl_ok(&ep, &["get", "more", "--print-value-only"]).trim(),
        "writes"
    );
}
