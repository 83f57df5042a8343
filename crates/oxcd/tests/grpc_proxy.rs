//! `oxcd grpc-proxy start` in front of a three-member cluster on 127.0.0.150-152, the proxy on
//! 127.0.0.153:23790, driven with etcdctl as a user would: every call through the proxy is
//! answered by the cluster, watches stream through it, and it keeps serving with a member down.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const CLUSTER: &str =
    "gp0=http://127.0.0.150:2380,gp1=http://127.0.0.151:2380,gp2=http://127.0.0.152:2380";
const PROXY: &str = "http://127.0.0.153:23790";

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_proxy(args: &[&str]) -> Proxy {
    let child = Command::new(BIN)
        .arg("grpc-proxy")
        .arg("start")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the proxy");
    Proxy(child)
}

#[test]
fn the_proxy_forwards_kv_watch_and_lease_calls_and_survives_a_member_going_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut members = start_static_cluster(
        dir.path(),
        "gp",
        ["127.0.0.150", "127.0.0.151", "127.0.0.152"],
        CLUSTER,
        "grpc-proxy-cluster",
    );
    let _proxy = start_proxy(&[
        "--listen-addr",
        "127.0.0.153:23790",
        "--endpoints",
        "127.0.0.150:2379,127.0.0.151:2379,127.0.0.152:2379",
    ]);
    assert!(
        wait_until(Duration::from_secs(10), || etcdctl(
            PROXY,
            &["put", "k", "v1"]
        )
        .status
        .success()),
        "the proxy never answered"
    );
    // A write through the proxy is in the cluster, and the other way round.
    assert_eq!(
        etcdctl_ok(&members[2].client_url(), &["get", "k"]),
        "k\nv1\n"
    );
    etcdctl_ok(&members[1].client_url(), &["put", "k2", "v2"]);
    assert_eq!(
        etcdctl_ok(PROXY, &["get", "k2", "--print-value-only"]),
        "v2\n"
    );

    // A watch through the proxy sees a put made at a member.
    let out = dir.path().join("watch.out");
    let mut watch = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", PROXY, "watch", "w"])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcdctl must be installed");
    let seen = wait_until(Duration::from_secs(15), || {
        etcdctl_ok(&members[0].client_url(), &["put", "w", "event"]);
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("PUT\nw\nevent\n")
    });
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(seen, "the watch through the proxy saw nothing");

    // Leases: grant, keep alive once, look up, all through the proxy.
    let granted = etcdctl_ok(PROXY, &["lease", "grant", "60"]);
    let id = granted
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    let kept = etcdctl_ok(PROXY, &["lease", "keep-alive", "--once", &id]);
    assert!(
        kept.contains(&format!("lease {id} keepalived with TTL(")),
        "{kept}"
    );
    assert_eq!(
        etcdctl_ok(PROXY, &["member", "list"]).lines().count(),
        3,
        "member list through the proxy"
    );

    // With one member down every call still gets through.
    members[0].kill();
    for i in 0..6 {
        let key = format!("after-{i}");
        assert!(
            wait_until(Duration::from_secs(10), || etcdctl(
                PROXY,
                &["put", &key, "x"]
            )
            .status
            .success()),
            "put {i} through the proxy failed with a member down"
        );
    }
    assert_eq!(
        etcdctl_ok(
            &members[1].client_url(),
            &["get", "after-5", "--print-value-only"]
        ),
        "x\n"
    );
}

/// A proxy on `listen` that dials the cluster with `cert`/`key`, trusting `cert` itself.
fn backend_tls_args(listen: &str, cert: &str, key: &str) -> Vec<String> {
    [
        "--listen-addr",
        listen,
        "--cert",
        cert,
        "--key",
        key,
        "--cacert",
        cert,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn a_client_certificate_with_a_common_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let write_cert = |name: &str, cn: Option<&str>| {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let cert_path = dir.path().join(format!("{name}.crt"));
        let key_path = dir.path().join(format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (
            cert_path.display().to_string(),
            key_path.display().to_string(),
        )
    };
    let (cert, key) = write_cert("named", Some("example2.com"));
    let mut args = vec!["grpc-proxy".to_string(), "start".into()];
    args.extend(backend_tls_args("127.0.0.153:23791", &cert, &key));
    let (code, stderr) = run_to_exit(&args, Duration::from_secs(10));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cert has non empty Common Name (example2.com)"),
        "{stderr}"
    );

    // Without a CN it starts and keeps running.
    let (cert, key) = write_cert("unnamed", None);
    let args = backend_tls_args("127.0.0.153:23792", &cert, &key);
    let mut proxy = start_proxy(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect("127.0.0.153:23792").is_ok()
        }),
        "the proxy never listened"
    );
    assert!(proxy.0.try_wait().unwrap().is_none(), "the proxy exited");
}

#[test]
fn unknown_flags_are_refused_as_cobra_does() {
    let args = vec!["grpc-proxy".to_string(), "start".into(), "--bogus".into()];
    let (code, stderr) = run_to_exit(&args, Duration::from_secs(10));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("Error: unknown flag: --bogus"), "{stderr}");
}
