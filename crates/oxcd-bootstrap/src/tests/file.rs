use std::io::Write;

use super::*;
use crate::config::{ClusterState, DiscoveryFallback, ProxyMode};
use crate::urls::join;
use crate::Presentation;

fn write(yaml: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(yaml.as_bytes()).unwrap();
    f
}

#[test]
fn config_file_keys() {
    let f = write(
        "name: infra0\n\
         data-dir: /var/lib/etcd\n\
         heartbeat-interval: 200\n\
         election-timeout: 2000\n\
         listen-peer-urls: http://127.0.0.10:2380\n\
         listen-client-urls: http://127.0.0.10:2379,http://127.0.0.1:2379\n\
         initial-advertise-peer-urls: http://127.0.0.10:2380\n\
         advertise-client-urls: http://127.0.0.10:2379\n\
         initial-cluster: infra0=http://127.0.0.10:2380,infra1=http://127.0.0.11:2380\n\
         initial-cluster-token: etcd-cluster-1\n\
         initial-cluster-state: existing\n\
         enable-v2: true\n\
         grpc-keepalive-timeout: 3000000000\n\
         log-outputs: [stderr]\n\
         proxy: readonly\n\
         proxy-refresh-interval: 1000\n\
         discovery-fallback: exit\n\
         unknown-key: 1\n\
         client-transport-security:\n  cert-file: c.pem\n  key-file: k.pem\n  client-cert-auth: true\n  trusted-ca-file: ca.pem\n\
         peer-transport-security:\n  auto-tls: true\n",
    );
    let path = f.path().to_str().unwrap();
    // other flags and ETCD_* variables are ignored silently, even when they conflict
    let l = run(
        &["--config-file", path, "--name", "ignored"],
        &[("ETCD_NAME", "ignored"), ("ETCD_FOO", "1")],
    );
    assert!(has_diag(
        &l,
        'I',
        &format!("Loading server configuration from {path:?}. Other configuration command line flags and environment variables will be ignored if provided.")
    ));
    let Ok(Action::Run(c)) = l.result else {
        panic!("{:?}", l.result)
    };
    assert_eq!(c.config_file, path);
    assert_eq!(c.name, "infra0");
    assert_eq!(c.data_dir, "/var/lib/etcd");
    assert_eq!(
        (c.heartbeat_interval_ms, c.election_timeout_ms),
        (200, 2000)
    );
    assert_eq!(
        join(&c.listen_client_urls),
        "http://127.0.0.10:2379,http://127.0.0.1:2379"
    );
    assert_eq!(c.initial_cluster_map.len(), 2);
    assert_eq!(c.initial_cluster_state, ClusterState::Existing);
    assert_eq!(c.initial_cluster_token, "etcd-cluster-1");
    assert!(c.enable_v2);
    assert_eq!(c.grpc_keepalive_timeout, std::time::Duration::from_secs(3));
    assert_eq!(c.log_outputs, vec!["stderr"]);
    assert_eq!(
        (c.proxy, c.proxy_refresh_interval_ms, c.discovery_fallback),
        (ProxyMode::Readonly, 1000, DiscoveryFallback::Exit)
    );
    assert_eq!(
        (
            c.cert_file.as_str(),
            c.key_file.as_str(),
            c.trusted_ca_file.as_str()
        ),
        ("c.pem", "k.pem", "ca.pem")
    );
    assert!(c.client_cert_auth && c.peer_auto_tls && !c.auto_tls);
    assert!(c.explicitly_set.is_empty());
    // through ETCD_CONFIG_FILE
    let c = cfg_env(&[], &[("ETCD_CONFIG_FILE", path)]);
    assert_eq!(c.name, "infra0");
}

#[test]
fn config_file_special_rules() {
    // discovery clears the default initial cluster; empty state means new
    let f = write("discovery: http://127.0.0.1:8087/abc\ninitial-cluster-state: ''\n");
    let c = cfg(&["--config-file", f.path().to_str().unwrap()]);
    assert_eq!(c.initial_cluster, "");
    assert_eq!(c.initial_cluster_state, ClusterState::New);
    // with only a name, the initial cluster is rebuilt from it
    let f = write("name: solo\ninitial-advertise-peer-urls: http://127.0.0.1:2390\n");
    let c = cfg(&["--config-file", f.path().to_str().unwrap()]);
    assert_eq!(c.initial_cluster, "solo=http://127.0.0.1:2390");
    // listen-client-urls without advertise-client-urls is not an error in a file
    let f = write("listen-client-urls: http://127.0.0.1:2379\n");
    let c = cfg(&["--config-file", f.path().to_str().unwrap()]);
    assert_eq!(join(&c.advertise_client_urls), "http://localhost:2379");
    // an empty file is all defaults
    let f = write("");
    assert_eq!(
        cfg(&["--config-file", f.path().to_str().unwrap()]).name,
        "default"
    );
}

#[test]
fn config_file_errors() {
    let f = write("listen-peer-urls: http://127.0.0.1:2390/\n");
    let path = f.path().to_str().unwrap();
    let l = run(&["--config-file", path], &[]);
    let e = l.result.unwrap_err();
    assert_eq!(e.to_string(), "unexpected error setting up listen-peer-urls: URL must not contain a path: http://127.0.0.1:2390/");
    assert_eq!((e.presentation(), e.exit_code()), (Presentation::Plain, 1));
    assert!(l
        .diags
        .iter()
        .all(|d| !matches!(d, Diag::Log { msg, .. } if msg.starts_with("Loading"))));

    let f = write("advertise-client-urls: foo://x:1\n");
    assert_eq!(
        err(&["--config-file", f.path().to_str().unwrap()]).to_string(),
        "unexpected error setting up advertise-peer-urls: URL scheme must be http, https, unix, or unixs: foo://x:1"
    );
    let e = err(&["--config-file", "/nonexistent/oxcd.yaml"]);
    assert_eq!(e.report(), "error verifying flags, open /nonexistent/oxcd.yaml: no such file or directory. See 'etcd --help'.");
    let f = write("initial-cluster-state: foo\n");
    assert_eq!(
        err(&["--config-file", f.path().to_str().unwrap()]).to_string(),
        "unexpected clusterState \"foo\""
    );
    let f = write("heartbeat-interval: 0\n");
    assert_eq!(
        err(&["--config-file", f.path().to_str().unwrap()]).to_string(),
        "--heartbeat-interval must be >0 (set to 0ms)"
    );
    let f = write("heartbeat-interval: fast\n");
    assert_eq!(
        err(&["--config-file", f.path().to_str().unwrap()]).to_string(),
        "error unmarshaling JSON: json: cannot unmarshal string into Go struct field configYAML.heartbeat-interval of type uint"
    );
    let f = write("proxy: sideways\n");
    assert_eq!(
        err(&["--config-file", f.path().to_str().unwrap()]).to_string(),
        "unexpected error setting up proxyFlag: invalid value"
    );
    let f = write("discovery: http://127.0.0.1:1/x\ninitial-cluster: a=http://127.0.0.1:2380\n");
    assert!(matches!(
        err(&["--config-file", f.path().to_str().unwrap()]),
        ConfigError::ConflictBootstrapFlags
    ));
}
