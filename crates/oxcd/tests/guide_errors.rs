//! The Clustering Guide's three error cases, with its messages and exit status 1.

mod common;

use std::time::Duration;

use common::*;

fn args(pairs: &[(&str, &str)], data_dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = pairs
        .iter()
        .flat_map(|(k, val)| [format!("--{k}"), val.to_string()])
        .collect();
    v.push("--data-dir".into());
    v.push(data_dir.display().to_string());
    v
}

#[test]
fn member_not_in_initial_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let a = args(
        &[
            ("name", "infra1"),
            ("initial-advertise-peer-urls", "http://127.0.0.21:2380"),
            ("listen-peer-urls", "http://127.0.0.21:2380"),
            ("listen-client-urls", "http://127.0.0.21:2379"),
            ("advertise-client-urls", "http://127.0.0.21:2379"),
            ("initial-cluster", "infra0=http://127.0.0.20:2380"),
            ("initial-cluster-state", "new"),
        ],
        &dir.path().join("d"),
    );
    let (code, stderr) = run_to_exit(&a, Duration::from_secs(20));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("etcd: infra1 not listed in the initial cluster config"),
        "{stderr}"
    );
}

#[test]
fn advertised_urls_differ_from_initial_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let a = args(
        &[
            ("name", "infra0"),
            ("initial-advertise-peer-urls", "http://127.0.0.1:2390"),
            ("listen-peer-urls", "http://127.0.0.22:2380"),
            ("listen-client-urls", "http://127.0.0.22:2379"),
            ("advertise-client-urls", "http://127.0.0.22:2379"),
            (
                "initial-cluster",
                "infra0=http://127.0.0.22:2380,infra1=http://127.0.0.23:2380,infra2=http://127.0.0.24:2380",
            ),
            ("initial-cluster-state", "new"),
        ],
        &dir.path().join("d"),
    );
    let (code, stderr) = run_to_exit(&a, Duration::from_secs(20));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "etcd: error setting up initial cluster: infra0 has different advertised URLs in the cluster and advertised peer URLs list"
        ),
        "{stderr}"
    );
}

#[test]
fn conflicting_cluster_id_exits() {
    let dir = tempfile::tempdir().unwrap();
    let cluster =
        "infra0=http://127.0.0.30:2380,infra1=http://127.0.0.31:2380,infra2=http://127.0.0.32:2380";
    let mut members: Vec<Member> = (0..3)
        .map(|i| {
            Member::static_member(
                dir.path(),
                &format!("infra{i}"),
                &format!("127.0.0.3{i}"),
                cluster,
                "etcd-cluster-1",
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
    let eps = members
        .iter()
        .map(|m| m.client_url())
        .collect::<Vec<_>>()
        .join(",");
    let list = etcdctl_ok(&eps, &["member", "list", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    let running = format!("{:x}", v["header"]["cluster_id"].as_u64().unwrap());
    // A member configured for a different cluster (other members, default token) that can
    // reach two of the running members.
    let a = args(
        &[
            ("name", "infra3"),
            ("initial-advertise-peer-urls", "http://127.0.0.33:2380"),
            ("listen-peer-urls", "http://127.0.0.33:2380"),
            ("listen-client-urls", "http://127.0.0.33:2379"),
            ("advertise-client-urls", "http://127.0.0.33:2379"),
            (
                "initial-cluster",
                "infra0=http://127.0.0.30:2380,infra1=http://127.0.0.31:2380,infra3=http://127.0.0.33:2380",
            ),
            ("initial-cluster-state", "new"),
        ],
        &dir.path().join("stranger"),
    );
    let (code, stderr) = run_to_exit(&a, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("etcd: conflicting cluster ID to the target cluster ("),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(" != {running}). Exiting.")),
        "the running cluster's ID: {stderr}"
    );
    // The running cluster is unaffected.
    assert_eq!(etcdctl_ok(&eps, &["put", "still", "serving"]).trim(), "OK");
}
