//! Cross-checks against other TLS stacks: curl (OpenSSL) and etcdctl (Go) as clients of
//! `TlsAcceptor`, and our client configuration against a real etcd 3.4 server. Each part is
//! skipped when the tool is not installed.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use oxcd_tls::rustls::pki_types::ServerName;
use oxcd_tls::{peer_common_name, TlsAcceptor, TlsInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("{tool} not installed; skipping that part");
    }
    ok
}

type Accepted = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

/// A TLS server answering any HTTP/1.1 request with `200 ok`; records (CN, ALPN) of every
/// accepted connection.
async fn http_server(info: &TlsInfo) -> (SocketAddr, Accepted, Failures) {
    let failures: Failures = Arc::default();
    let f2 = failures.clone();
    let acceptor = TlsAcceptor::new(info.server_config().unwrap()).with_failure_hook(move |f| {
        eprintln!("server: {f}");
        f2.lock().unwrap().push(f.clone());
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted: Accepted = Arc::default();
    let acc2 = accepted.clone();
    let mut rx = acceptor.spawn_accept_loop(listener, 8);
    tokio::spawn(async move {
        while let Some((mut s, _)) = rx.recv().await {
            let conn = s.get_ref().1;
            let alpn = conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            acc2.lock()
                .unwrap()
                .push((peer_common_name(conn), alpn.clone()));
            tokio::spawn(async move {
                if alpn.as_deref() == Some("h2") {
                    return; // not an HTTP/2 server; the handshake is what is checked
                }
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, accepted, failures)
}

async fn curl(args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn curl_against_acceptor() {
    if no_fixtures() || !have("curl") {
        return;
    }
    let mut info = fixture_info("server");
    info.trusted_ca_file = fixture("ca.crt");
    let (addr, accepted, failures) = http_server(&info).await;
    let url = format!("https://localhost:{}/version", addr.port());
    let ca = fixture("ca.crt");
    let cert = fixture("server.crt");
    let key = fixture("server.key.insecure");
    let revoked = fixture("server-revoked.crt");
    let revoked_key = fixture("server-revoked.key.insecure");
    let s = |p: &Path| p.to_str().unwrap().to_string();

    let (ok, out) = curl(&[
        "--http1.1",
        "--cacert",
        &s(&ca),
        "--cert",
        &s(&cert),
        "--key",
        &s(&key),
        &url,
    ])
    .await;
    assert!(ok, "{out}");
    assert_eq!(out, "ok");
    assert_eq!(
        accepted.lock().unwrap()[0],
        (Some("example.com".into()), Some("http/1.1".into()))
    );

    // Without a client certificate (a trusted CA file alone makes it required).
    let (ok, out) = curl(&["--http1.1", "--cacert", &s(&ca), &url]).await;
    assert!(!ok, "{out}");
    let f = failures.lock().unwrap().clone();
    assert_eq!(
        f.last().unwrap().error,
        "tls: client didn't provide a certificate"
    );

    // TLS 1.2 only, with a specific suite.
    let (ok, out) = curl(&[
        "--http1.1",
        "--tlsv1.2",
        "--tls-max",
        "1.2",
        "--ciphers",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "--cacert",
        &s(&ca),
        "--cert",
        &s(&cert),
        "--key",
        &s(&key),
        &url,
    ])
    .await;
    assert!(ok, "{out}");

    // Revoked, with the CRL configured.
    info.crl_file = fixture("revoke.crl");
    let (addr, _accepted, failures) = http_server(&info).await;
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let (ok, out) = curl(&[
        "--http1.1",
        "--cacert",
        &s(&ca),
        "--cert",
        &s(&revoked),
        "--key",
        &s(&revoked_key),
        &url,
    ])
    .await;
    assert!(!ok, "{out}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let f = failures.lock().unwrap().clone();
    assert!(f.last().unwrap().error.contains("revoked"), "{f:?}");
}

#[tokio::test]
async fn etcdctl_go_client_handshakes_with_acceptor() {
    if no_fixtures() || !have("etcdctl") {
        return;
    }
    let mut info = fixture_info("server");
    info.trusted_ca_file = fixture("ca.crt");
    info.client_cert_auth = true;
    let (addr, accepted, _failures) = http_server(&info).await;
    let ep = format!("https://127.0.0.1:{}", addr.port());
    let ca = fixture("ca.crt");
    let cert = fixture("server2.crt");
    let key = fixture("server2.key.insecure");
    // The server is not a gRPC server, so the command fails; the TLS handshake it makes
    // (Go crypto/tls, ALPN h2, client certificate) must succeed.
    let _ = tokio::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            &ep,
            "--dial-timeout",
            "2s",
            "--command-timeout",
            "2s",
        ])
        .args(["--cacert", ca.to_str().unwrap()])
        .args([
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ])
        .args(["endpoint", "health"])
        .output()
        .await
        .unwrap();
    let acc = accepted.lock().unwrap().clone();
    assert!(!acc.is_empty(), "no handshake succeeded");
    assert_eq!(acc[0], (Some("example2.com".into()), Some("h2".into())));
}

/// A real etcd, killed on drop.
struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_etcd(data_dir: &Path, extra: &[String]) -> Option<(Etcd, SocketAddr)> {
    let cport = free_port();
    let pport = free_port();
    let client = format!("https://127.0.0.1:{cport}");
    let peer = format!("http://127.0.0.1:{pport}");
    let child = Command::new("etcd")
        .args([
            "--name",
            "tls-test",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .args([
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("tls-test={peer}")])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(data_dir.with_extension("log")).unwrap(),
        ))
        .spawn()
        .ok()?;
    let etcd = Etcd(child);
    let addr: SocketAddr = format!("127.0.0.1:{cport}").parse().unwrap();
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_ok() {
            return Some((etcd, addr));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// GET /version over HTTP/1.1 with our client configuration.
async fn get_version(info: &TlsInfo, addr: SocketAddr) -> Result<String, String> {
    let cfg = info
        .client_config(&[b"http/1.1"])
        .map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut s = tokio_rustls::TlsConnector::from(cfg)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    s.write_all(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| format!("read: {e}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn our_client_config_against_real_etcd() {
    if no_fixtures() || !have("etcd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    // 1. etcd --auto-tls: a P-521 self-signed certificate. Our auto-TLS client reaches it.
    let data = dir.path().join("auto.etcd");
    let Some((etcd, addr)) = start_etcd(&data, &["--auto-tls".to_string()]).await else {
        panic!(
            "etcd --auto-tls did not start; see {}",
            data.with_extension("log").display()
        );
    };
    let ours = TlsInfo::self_cert(&dir.path().join("ours"), &["127.0.0.1:0".into()]).unwrap();
    let resp = get_version(&ours, addr).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("etcdserver"), "{resp}");
    // etcd's generated files are P-521, which oxcd cannot use: self_cert replaces them.
    let etcd_fixtures = data.join("fixtures").join("client");
    let etcd_cert = std::fs::read(etcd_fixtures.join("cert.pem")).unwrap();
    drop(etcd);
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(etcd_fixtures.join("cert.pem"), copy.join("cert.pem")).unwrap();
    std::fs::copy(etcd_fixtures.join("key.pem"), copy.join("key.pem")).unwrap();
    let replaced = TlsInfo::self_cert(&copy, &["127.0.0.1:0".into()]).unwrap();
    assert_ne!(std::fs::read(&replaced.cert_file).unwrap(), etcd_cert);
    replaced.server_config().unwrap();

    // 2. etcd with the fixtures certificate and client-cert-auth: our client with a CA and
    //    a client certificate gets in; without the certificate it does not.
    let data = dir.path().join("certs.etcd");
    let s = |n: &str| fixture(n).to_str().unwrap().to_string();
    let args = vec![
        "--cert-file".to_string(),
        s("server.crt"),
        "--key-file".into(),
        s("server.key.insecure"),
        "--trusted-ca-file".into(),
        s("ca.crt"),
        "--client-cert-auth".into(),
    ];
    let Some((_etcd, addr)) = start_etcd(&data, &args).await else {
        panic!(
            "etcd did not start; see {}",
            data.with_extension("log").display()
        );
    };
    let mut client = fixture_info("server2");
    client.trusted_ca_file = fixture("ca.crt");
    let resp = get_version(&client, addr).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    let no_cert = TlsInfo {
        trusted_ca_file: fixture("ca.crt"),
        ..TlsInfo::default()
    };
    assert!(get_version(&no_cert, addr).await.is_err());
    // etcd logged the rejection in the format HandshakeFailure reproduces.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    for l in log.lines().filter(|l| l.contains("rejected connection")) {
        eprintln!("etcd: {l}");
    }
    // Our readiness probe (connect, then close) gives the same "EOF" our acceptor reports.
    for want in [
        "I | embed: rejected connection from \"127.0.0.1:",
        "(error \"tls: client didn't provide a certificate\", ServerName \"\")",
        "(error \"EOF\", ServerName \"\")",
    ] {
        assert!(log.contains(want), "{want} not in etcd log:\n{log}");
    }
}
