use std::net::IpAddr;

use super::*;
use crate::datadir::{classify_data_dir, has_wal_files, member_initialized, DataDirKind};
use crate::ids::id_to_hex;
use crate::initial_cluster::{initial_cluster_with, urls_equal, Resolver};
use crate::urls::parse_urls;

/// Resolves `vm` to 127.0.0.1 and fails for everything else.
struct FakeResolver;

impl Resolver for FakeResolver {
    fn resolve(&self, host: &str, _port: &str) -> Result<IpAddr, String> {
        match host {
            "vm" => Ok("127.0.0.1".parse().unwrap()),
            _ => Err(format!("lookup {host}: no such host")),
        }
    }
}

fn ic(args: &[&str]) -> Result<crate::InitialCluster, ConfigError> {
    initial_cluster_with(&cfg(args), None, &FakeResolver)
}

const GUIDE_CLUSTER: &str =
    "infra0=http://127.0.0.10:2380,infra1=http://127.0.0.11:2380,infra2=http://127.0.0.12:2380";

#[test]
fn static_cluster_vector_a() {
    let c = ic(&[
        "--name",
        "infra1",
        "--initial-advertise-peer-urls",
        "http://127.0.0.11:2380",
        "--initial-cluster-token",
        "etcd-cluster-1",
        "--initial-cluster",
        GUIDE_CLUSTER,
        "--initial-cluster-state",
        "new",
    ])
    .unwrap();
    let got: Vec<(String, &str)> = c
        .members
        .iter()
        .map(|m| (id_to_hex(m.id), m.name.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("1eee81c0ebacddc".to_string(), "infra0"),
            ("54e31805acfe9917".to_string(), "infra1"),
            ("9ba8dd709d019ef4".to_string(), "infra2"),
        ]
    );
    assert_eq!(c.members[0].peer_urls, vec!["http://127.0.0.10:2380"]);
    assert_eq!(id_to_hex(c.cluster_id), "f28eb4fda84fb6e1");
    assert_eq!(id_to_hex(c.local_id), "54e31805acfe9917");
    assert_eq!(c.token, "etcd-cluster-1");
}

#[test]
fn single_member_defaults() {
    let c = ic(&[
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2390",
        "--initial-cluster",
        "default=http://127.0.0.1:2390",
    ])
    .unwrap();
    assert_eq!(id_to_hex(c.local_id), "75fb7df1dacfc315");
    assert_eq!(id_to_hex(c.cluster_id), "10f01b74d2e6351f");
}

#[test]
fn discovery_uses_the_url_as_token() {
    let d = "http://127.0.0.31:8087/1ba60ac29d0eca6ded381646d8a395ce";
    let c = ic(&[
        "--name",
        "m",
        "--initial-advertise-peer-urls",
        "http://127.0.0.32:2380",
        "--discovery",
        d,
    ])
    .unwrap();
    assert_eq!(id_to_hex(c.local_id), "47f69b783da7f113");
    assert_eq!(c.token, d);
}

#[test]
fn guide_error_cases() {
    // not listed
    let e = ic(&[
        "--name",
        "infra1",
        "--initial-advertise-peer-urls",
        "http://127.0.0.11:2380",
        "--initial-cluster",
        "infra0=http://127.0.0.10:2380",
        "--initial-cluster-state",
        "new",
    ])
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "infra1 not listed in the initial cluster config"
    );
    assert_eq!(
        (e.exit_code(), e.level(), e.is_bootstrap()),
        (1, Some('C'), true)
    );
    // different advertised URLs
    let e = ic(&[
        "--name",
        "infra0",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2380",
        "--initial-cluster",
        GUIDE_CLUSTER,
    ])
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "error setting up initial cluster: infra0 has different advertised URLs in the cluster and advertised peer URLs list"
    );
    // extra advertised URL
    let e = ic(&[
        "--name",
        "infra0",
        "--initial-advertise-peer-urls",
        "http://127.0.0.10:2380,http://127.0.0.42:2380",
        "--initial-cluster",
        GUIDE_CLUSTER,
    ])
    .unwrap_err();
    assert!(matches!(e, ConfigError::DifferentAdvertisedUrls(_)));
    // duplicate URL
    let e = ic(&[
        "--name",
        "infra0",
        "--initial-advertise-peer-urls",
        "http://127.0.0.40:2380",
        "--initial-cluster",
        "infra0=http://127.0.0.40:2380,infra1=http://127.0.0.40:2380",
    ])
    .unwrap_err();
    assert_eq!(e.to_string(), "initial cluster infra0=http://127.0.0.40:2380,infra1=http://127.0.0.40:2380 has duplicate url");
    // existing + discovery is rejected before anything else could be
    let mut c = cfg(&[
        "--name",
        "a",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2380",
        "--discovery",
        "http://127.0.0.1:1/x",
        "--initial-cluster-state",
        "existing",
    ]);
    let e = initial_cluster_with(&c, None, &FakeResolver).unwrap_err();
    assert_eq!(
        e.to_string(),
        "discovery URL should not be set when joining existing initial cluster"
    );
    // empty map
    c.discovery.clear();
    c.initial_cluster.clear();
    c.initial_cluster_state = crate::ClusterState::New;
    assert_eq!(
        initial_cluster_with(&c, None, &FakeResolver)
            .unwrap_err()
            .to_string(),
        "a not listed in the initial cluster config"
    );
    // a bad URL in --initial-cluster
    let e = ic(&["--initial-cluster", "a=foo://x:1"]).unwrap_err();
    assert_eq!(e.to_string(), "error setting up initial cluster: URL scheme must be http, https, unix, or unixs: foo://x:1");
}

#[test]
fn existing_state_skips_the_url_match() {
    let c = ic(&[
        "--name",
        "infra0",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2380",
        "--initial-cluster",
        GUIDE_CLUSTER,
        "--initial-cluster-state",
        "existing",
    ])
    .unwrap();
    assert_eq!(c.members.len(), 3);
}

#[test]
fn url_comparison_resolves_names() {
    let a = parse_urls("http://vm:2390").unwrap();
    let b = parse_urls("http://127.0.0.1:2390").unwrap();
    assert!(urls_equal(&a, &b, &FakeResolver).is_ok());
    let l = parse_urls("http://localhost:2380").unwrap();
    let ip = parse_urls("http://127.0.0.1:2380").unwrap();
    assert_eq!(
        urls_equal(&l, &ip, &FakeResolver).unwrap_err(),
        "resolved urls: \"http://localhost:2380\" != \"http://127.0.0.1:2380\""
    );
    let two = parse_urls("http://127.0.0.1:1,http://127.0.0.2:1").unwrap();
    assert_eq!(
        urls_equal(&two, &ip, &FakeResolver).unwrap_err(),
        "len([\"http://127.0.0.1:1\" \"http://127.0.0.2:1\"]) != len([\"http://127.0.0.1:2380\"])"
    );
    let bad = parse_urls("http://nowhere:1").unwrap();
    assert!(urls_equal(&bad, &ip, &FakeResolver)
        .unwrap_err()
        .starts_with("failed to resolve \"http://nowhere:1\""));
    // the whole check with a DNS name
    let c = ic(&[
        "--name",
        "a",
        "--initial-advertise-peer-urls",
        "http://vm:2390",
        "--initial-cluster",
        "a=http://127.0.0.1:2390",
    ])
    .unwrap();
    assert_eq!(c.members.len(), 1);
}

#[test]
fn data_dir_classification() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(
        classify_data_dir(&d.path().join("missing")).unwrap().0,
        DataDirKind::Empty
    );
    assert_eq!(classify_data_dir(d.path()).unwrap().0, DataDirKind::Empty);
    std::fs::create_dir(d.path().join("junk")).unwrap();
    let (k, warnings) = classify_data_dir(d.path()).unwrap();
    assert_eq!(k, DataDirKind::Empty);
    assert_eq!(
        warnings,
        vec![Diag::log('W', "etcdmain", format!("found invalid file/dir junk under data dir {} (Ignore this if you are upgrading etcd)", d.path().display()))]
    );
    std::fs::create_dir(d.path().join("proxy")).unwrap();
    assert_eq!(classify_data_dir(d.path()).unwrap().0, DataDirKind::Proxy);
    std::fs::create_dir_all(d.path().join("member/wal")).unwrap();
    let e = classify_data_dir(d.path()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid datadir. Both member and proxy directories exist."
    );
    assert_eq!(e.exit_code(), 1);
    std::fs::remove_dir(d.path().join("proxy")).unwrap();
    assert_eq!(classify_data_dir(d.path()).unwrap().0, DataDirKind::Member);

    let data_dir = d.path().to_str().unwrap();
    let c = cfg(&["--data-dir", data_dir]);
    assert!(!member_initialized(&c));
    std::fs::write(
        d.path()
            .join("member/wal/0000000000000000-0000000000000000.wal.tmp"),
        b"",
    )
    .unwrap();
    assert!(!member_initialized(&c));
    std::fs::write(
        d.path()
            .join("member/wal/0000000000000000-0000000000000000.wal"),
        b"",
    )
    .unwrap();
    assert!(member_initialized(&c));
    // --wal-dir takes over
    let w = tempfile::tempdir().unwrap();
    let c = cfg(&[
        "--data-dir",
        data_dir,
        "--wal-dir",
        w.path().to_str().unwrap(),
    ]);
    assert!(!member_initialized(&c));
    std::fs::write(w.path().join("x.wal"), b"").unwrap();
    assert!(member_initialized(&c) && has_wal_files(w.path()));
}
