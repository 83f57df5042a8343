//! Accept loops: one per listen URL, serving HTTP/1.1 and HTTP/2 (gRPC) on the same port with
//! hyper-util's auto builder. TLS will wrap the accepted stream here.

use std::net::SocketAddr;
use std::sync::Arc;

use oxcd_tls::TlsAcceptor;

use crate::coalescing_io::CoalescingIo;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Binds a listen URL's host:port. etcd accepts IP literals and `localhost` only.
pub async fn bind(url: &url::Url) -> Result<TcpListener, String> {
    let host = url.host_str().unwrap_or("");
    let port = url.port().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if host == "localhost" {
        "127.0.0.1".to_string()
    } else {
        host.to_string()
    };
    let addr: SocketAddr = format!(
        "{}:{port}",
        if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip
        }
    )
    .parse()
    .map_err(|_| format!("expected IP in URL for binding ({url})"))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    socket.set_reuseaddr(true).map_err(|e| e.to_string())?;
    socket
        .bind(addr)
        .map_err(|e| format!("listen tcp {addr}: bind: {}", io_reason(&e)))?;
    socket
        .listen(1024)
        .map_err(|e| format!("listen tcp {addr}: {e}"))
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "address already in use".into(),
        std::io::ErrorKind::AddrNotAvailable => "cannot assign requested address".into(),
        _ => e.to_string(),
    }
}

/// Serves `service` (a router, or a client listener's service) on every connection accepted
/// from `listener`, until the process ends; with `tls`, each connection first completes a TLS
/// handshake (failures are logged and dropped).
pub async fn serve<S>(listener: TcpListener, service: S, tls: Option<Arc<TlsAcceptor>>)
where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<axum::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(service.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            // gRPC servers (etcd's among them) send no `date` on HTTP/2, and encoding one into
            // every response's headers is a measurable part of a small request's cost.
            builder.http2().auto_date_header(false);
            match tls {
                None => {
                    let _ = builder
                        .serve_connection_with_upgrades(
                            TokioIo::new(CoalescingIo::new(stream)),
                            service,
                        )
                        .await;
                }
                Some(acceptor) => {
                    let Some(stream) = acceptor.accept(stream, remote).await else {
                        return;
                    };
                    let _ = builder
                        .serve_connection_with_upgrades(
                            TokioIo::new(CoalescingIo::new(stream)),
                            service,
                        )
                        .await;
                }
            }
        });
    }
}
