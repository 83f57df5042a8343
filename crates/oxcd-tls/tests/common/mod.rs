//! Shared helpers: fixture paths, a loopback TLS server built on `TlsAcceptor`, and a
//! tokio-rustls client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxcd_tls::rustls::pki_types::ServerName;
use oxcd_tls::rustls::{ClientConfig, ServerConfig};
use oxcd_tls::{peer_common_name, HandshakeFailure, TlsAcceptor, TlsInfo};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

pub const FIXTURES: &str = "/usr/share/gocode/src/go.etcd.io/etcd/integration/fixtures";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// True (and a note printed) when the etcd fixtures are not installed.
pub fn no_fixtures() -> bool {
    let missing = !fixture("ca.crt").exists();
    if missing {
        eprintln!("etcd fixtures not found under {FIXTURES}; skipping");
    }
    missing
}

/// The fixture `<name>.crt` / `<name>.key.insecure` pair as a TlsInfo.
pub fn fixture_info(name: &str) -> TlsInfo {
    TlsInfo {
        cert_file: fixture(&format!("{name}.crt")),
        key_file: fixture(&format!("{name}.key.insecure")),
        ..TlsInfo::default()
    }
}

pub type Failures = Arc<Mutex<Vec<HandshakeFailure>>>;

/// A server on 127.0.0.1: every accepted TLS connection gets one line
/// `cn=<peer CN or ->,alpn=<proto or ->` and is then closed.
pub struct TestServer {
    pub addr: SocketAddr,
    pub failures: Failures,
}

pub async fn start_server(cfg: Arc<ServerConfig>) -> TestServer {
    start_server_with(TlsAcceptor::new(cfg)).await
}

pub async fn start_server_with(acceptor: TlsAcceptor) -> TestServer {
    let failures: Failures = Arc::default();
    let f2 = failures.clone();
    let acceptor = acceptor.with_failure_hook(move |f| {
        eprintln!("server: {f}");
        f2.lock().unwrap().push(f.clone());
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut rx = acceptor.spawn_accept_loop(listener, 16);
    tokio::spawn(async move {
        while let Some((mut s, _remote)) = rx.recv().await {
            tokio::spawn(async move {
                let conn = s.get_ref().1;
                let cn = peer_common_name(conn).unwrap_or_else(|| "-".into());
                let alpn = conn
                    .alpn_protocol()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_else(|| "-".into());
                let _ = s
                    .write_all(format!("cn={cn},alpn={alpn}\n").as_bytes())
                    .await;
                let _ = s.shutdown().await;
            });
        }
    });
    TestServer { addr, failures }
}

impl TestServer {
    /// Waits until `n` failures have been reported (or 5 s passed) and returns them.
    pub async fn wait_failures(&self, n: usize) -> Vec<HandshakeFailure> {
        for _ in 0..500 {
            if self.failures.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.failures.lock().unwrap().clone()
    }

    pub fn failure_count(&self) -> usize {
        self.failures.lock().unwrap().len()
    }
}

/// Connects, handshakes with `server_name`, and reads the server's line.
pub async fn talk(
    cfg: Arc<ClientConfig>,
    addr: SocketAddr,
    server_name: &str,
) -> Result<String, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    talk_over(cfg, tcp, server_name).await
}

pub async fn talk_over(
    cfg: Arc<ClientConfig>,
    tcp: TcpStream,
    server_name: &str,
) -> Result<String, String> {
    let name = ServerName::try_from(server_name.to_string()).map_err(|e| e.to_string())?;
    let fut = async {
        let s = TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("connect: {}", oxcd_tls::describe_handshake_error(&e)))?;
        let mut line = String::new();
        BufReader::new(s)
            .read_line(&mut line)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if line.is_empty() {
            return Err("read: connection closed".into());
        }
        Ok(line.trim_end().to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| "client timed out".to_string())?
}

/// A client config trusting the fixtures CA, optionally presenting a fixture cert.
pub fn ca_client(cert: Option<&str>) -> Arc<ClientConfig> {
    let mut info = match cert {
        Some(c) => fixture_info(c),
        None => TlsInfo::default(),
    };
    info.trusted_ca_file = fixture("ca.crt");
    info.client_config(&[b"h2", b"http/1.1"]).unwrap()
}
