//! The Clustering Guide's automatic-certificates example, on loopback: every URL https,
//! `--auto-tls --peer-auto-tls`, driven by etcdctl with `--insecure-skip-tls-verify`.

mod common;

use std::time::Duration;

use common::*;

const CLUSTER: &str =
    "infra0=https://127.0.0.95:2380,infra1=https://127.0.0.96:2380,infra2=https://127.0.0.97:2380";

#[test]
fn guide_auto_tls_example() {
    let dir = tempfile::tempdir().unwrap();
    let mut members: Vec<Member> = (0..3)
        .map(|i| {
            let ip = format!("127.0.0.{}", 95 + i);
            let mut m = Member::static_member(
                dir.path(),
                &format!("infra{i}"),
                &ip,
                CLUSTER,
                "etcd-cluster-1",
            );
            for a in m.args.iter_mut() {
                if a.starts_with("http://") {
                    *a = a.replacen("http://", "https://", 1);
                }
            }
            m.args
                .extend(["--auto-tls".into(), "--peer-auto-tls".into()]);
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
        assert!(m.data_dir.join("fixtures/peer/cert.pem").is_file());
        assert!(m.data_dir.join("fixtures/client/cert.pem").is_file());
    }
    let eps = "https://127.0.0.95:2379,https://127.0.0.96:2379,https://127.0.0.97:2379";
    let tls = ["--insecure-transport=false", "--insecure-skip-tls-verify"];
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = tls.to_vec();
        all.extend_from_slice(args);
        etcdctl_ok(eps, &all)
    };
    assert_eq!(run(&["put", "foo", "bar"]).trim(), "OK");
    assert_eq!(run(&["get", "foo", "--print-value-only"]).trim(), "bar");
    let list = run(&["member", "list"]);
    assert_eq!(list.matches("https://").count(), 6, "{list}");
    // Plain http to an https port is refused; the member keeps serving.
    let plain = etcdctl(
        "http://127.0.0.95:2379",
        &["--dial-timeout=2s", "get", "foo"],
    );
    assert!(!plain.status.success());
    assert!(
        members[0].wait_log("rejected connection from", 1, Duration::from_secs(10)),
        "{}",
        members[0].log_text()
    );
    assert_eq!(run(&["get", "foo", "--print-value-only"]).trim(), "bar");
}
