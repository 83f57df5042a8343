//! The cluster side: one HTTP/2 connection per endpoint, opened on first use and again after
//! it breaks; calls go round-robin over the endpoints that can be reached.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use oxcd_tls::rustls;
use tokio::sync::Mutex;

struct Endpoint {
    https: bool,
    /// `host:port`, as dialled and as sent in `:authority`.
    authority: String,
    host: String,
    conn: Mutex<Option<SendRequest<Incoming>>>,
}

pub(crate) struct Backends {
    endpoints: Vec<Endpoint>,
    tls: Option<Arc<rustls::ClientConfig>>,
    next: AtomicUsize,
}

impl Backends {
    /// `endpoints` as etcd's client takes them: `host:port`, or a URL (`https://` for TLS).
    pub fn new(endpoints: &[String], tls: Option<oxcd_tls::TlsInfo>) -> Result<Backends, String> {
        let tls = match tls {
            Some(info) => Some(info.client_config(&[b"h2"]).map_err(|e| e.to_string())?),
            None => None,
        };
        let mut parsed = Vec::new();
        for ep in endpoints {
            let (https, rest) = if let Some(r) = ep.strip_prefix("https://") {
                (true, r)
            } else if let Some(r) = ep.strip_prefix("http://") {
                (false, r)
            } else {
                (tls.is_some(), ep.as_str())
            };
            let authority = rest.trim_end_matches('/').to_string();
            let host = match authority.rsplit_once(':') {
                Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
                None => return Err(format!("invalid endpoint {ep:?}: missing port")),
            };
            parsed.push(Endpoint {
                https,
                authority,
                host,
                conn: Mutex::new(None),
            });
        }
        if parsed.is_empty() {
            return Err("no endpoints given".into());
        }
        Ok(Backends {
            endpoints: parsed,
            tls,
            next: AtomicUsize::new(0),
        })
    }

    /// Sends `req` to the next endpoint that can be reached and streams its answer back; a
    /// cluster that cannot be reached gets gRPC's `Unavailable`, as from etcd's proxy.
    pub async fn forward(&self, req: http::Request<Incoming>) -> http::Response<axum::body::Body> {
        let n = self.endpoints.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last_error = String::from("no endpoint reachable");
        for i in 0..n {
            let ep = &self.endpoints[(first + i) % n];
            let mut sender = match self.sender(ep).await {
                Ok(s) => s,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            let (mut parts, body) = req.into_parts();
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let scheme = if ep.https { "https" } else { "http" };
            match format!("{scheme}://{}{path}", ep.authority).parse() {
                Ok(uri) => parts.uri = uri,
                Err(_) => return unavailable("invalid request path"),
            }
            parts.version = http::Version::HTTP_2;
            parts.headers.remove(http::header::HOST);
            return match sender
                .send_request(http::Request::from_parts(parts, body))
                .await
            {
                Ok(resp) => resp.map(axum::body::Body::new),
                Err(e) => {
                    *ep.conn.lock().await = None;
                    unavailable(&e.to_string())
                }
            };
        }
        unavailable(&last_error)
    }

    /// A ready connection to `ep`, dialling it when there is none or the old one broke.
    async fn sender(&self, ep: &Endpoint) -> Result<SendRequest<Incoming>, String> {
        let mut slot = ep.conn.lock().await;
        if let Some(s) = slot.as_mut() {
            if s.ready().await.is_ok() {
                return Ok(s.clone());
            }
        }
        *slot = None;
        let mut sender = self.dial(ep).await?;
        sender.ready().await.map_err(|e| e.to_string())?;
        *slot = Some(sender.clone());
        Ok(sender)
    }

    async fn dial(&self, ep: &Endpoint) -> Result<SendRequest<Incoming>, String> {
        let tcp = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(&ep.authority))
            .await
            .map_err(|_| format!("dial tcp {}: i/o timeout", ep.authority))?
            .map_err(|e| format!("dial tcp {}: {e}", ep.authority))?;
        let _ = tcp.set_nodelay(true);
        if !ep.https {
            return handshake(tcp).await;
        }
        let Some(cfg) = self.tls.clone() else {
            return Err(format!(
                "{}: https endpoint without TLS settings",
                ep.authority
            ));
        };
        let name = rustls::pki_types::ServerName::try_from(ep.host.clone())
            .map_err(|e| format!("{}: {e}", ep.host))?;
        let tls = oxcd_tls::tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls handshake with {}: {e}", ep.authority))?;
        handshake(tls).await
    }
}

const DIAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn handshake<S>(io: S) -> Result<SendRequest<Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection to the cluster closed");
        }
    });
    Ok(sender)
}

/// gRPC's trailers-only answer with status 14 (`Unavailable`), in tonic's encoding (the
/// message percent-encoded), as the member's own error answers are.
fn unavailable(msg: &str) -> http::Response<axum::body::Body> {
    tonic::Status::unavailable(msg)
        .into_http::<axum::body::Body>()
        .map(axum::body::Body::new)
}
