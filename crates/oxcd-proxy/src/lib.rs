//! etcd's `grpc-proxy start`: a stateless gRPC endpoint in front of a cluster.
//!
//! Every call that reaches the proxy's listener is forwarded over HTTP/2 to one of the
//! cluster's endpoints, request and response streaming through as they arrive, so unary
//! calls, watches and keep-alive streams all work unchanged. etcd's proxy also caches ranges
//! and coalesces watches; this one forwards (the cluster answers each call itself).

mod backend;
mod flags;

use std::sync::Arc;

pub use flags::{parse, GrpcProxyConfig, ParseOutcome};

/// Starts the proxy and serves until the process is stopped. An `Err` is the message etcd
/// prints before it exits with status 1.
pub async fn run(cfg: GrpcProxyConfig) -> Result<(), String> {
    let backend_tls = backend_tls(&cfg)?;
    let backends = Arc::new(backend::Backends::new(&cfg.endpoints, backend_tls)?);
    let acceptor = listener_tls(&cfg)?;
    let url = url::Url::parse(&format!("http://{}", cfg.listen_addr))
        .map_err(|e| format!("invalid listen-addr {:?}: {e}", cfg.listen_addr))?;
    let listener = oxcd_server::serve::bind(&url).await?;
    tracing::info!(address = %cfg.listen_addr, "listening for gRPC proxy client requests");
    let service = tower::service_fn(move |req| {
        let backends = backends.clone();
        async move { Ok::<_, std::convert::Infallible>(backends.forward(req).await) }
    });
    tracing::info!(address = %cfg.listen_addr, "started gRPC proxy");
    oxcd_server::serve::serve(listener, service, acceptor).await;
    Ok(())
}

/// TLS towards the cluster (`--cert`, `--key`, `--cacert`, `--insecure-skip-tls-verify`).
/// Like etcd, the proxy's client certificate must carry no Common Name: with auth enabled the
/// cluster would take the CN as the user of every forwarded call.
fn backend_tls(cfg: &GrpcProxyConfig) -> Result<Option<oxcd_tls::TlsInfo>, String> {
    let any = !cfg.cacert.is_empty() || !cfg.cert.is_empty() || !cfg.key.is_empty();
    if !any && !cfg.insecure_skip_tls_verify {
        return Ok(None);
    }
    let info = oxcd_tls::TlsInfo {
        cert_file: cfg.cert.clone().into(),
        key_file: cfg.key.clone().into(),
        trusted_ca_file: cfg.cacert.clone().into(),
        insecure_skip_verify: cfg.insecure_skip_tls_verify,
        ..Default::default()
    };
    if !cfg.cert.is_empty() {
        if let Some(cn) = leaf_common_name(&cfg.cert)? {
            return Err(format!("cert has non empty Common Name ({cn})"));
        }
    }
    Ok(Some(info))
}

fn leaf_common_name(path: &str) -> Result<Option<String>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("open {path}: {e}"))?;
    let mut reader = std::io::Cursor::new(pem);
    let leaf = rustls_pemfile::certs(&mut reader)
        .next()
        .ok_or_else(|| format!("tls: failed to find any PEM data in certificate input ({path})"))?
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(oxcd_tls::common_name(&leaf).filter(|cn| !cn.is_empty()))
}

/// TLS on the proxy's own listener (`--cert-file`, `--key-file`, `--trusted-ca-file`,
/// `--client-crl-file`, `--listen-cipher-suites`, `--auto-tls`).
fn listener_tls(cfg: &GrpcProxyConfig) -> Result<Option<Arc<oxcd_tls::TlsAcceptor>>, String> {
    // Names are checked even without TLS, as etcd parses them first.
    oxcd_tls::cipher_suites(&cfg.listen_cipher_suites).map_err(|e| e.to_string())?;
    let given =
        !cfg.cert_file.is_empty() || !cfg.key_file.is_empty() || !cfg.trusted_ca_file.is_empty();
    let mut info = if given {
        oxcd_tls::TlsInfo {
            cert_file: cfg.cert_file.clone().into(),
            key_file: cfg.key_file.clone().into(),
            trusted_ca_file: cfg.trusted_ca_file.clone().into(),
            ..Default::default()
        }
    } else if cfg.auto_tls {
        let dir = std::path::Path::new(&cfg.data_dir)
            .join("fixtures")
            .join("proxy");
        oxcd_tls::TlsInfo::self_cert(&dir, std::slice::from_ref(&cfg.listen_addr))
            .map_err(|e| e.to_string())?
    } else {
        return Ok(None);
    };
    info.crl_file = cfg.client_crl_file.clone().into();
    info.cipher_suites = cfg.listen_cipher_suites.clone();
    let server = info.server_config().map_err(|e| e.to_string())?;
    Ok(Some(Arc::new(oxcd_tls::TlsAcceptor::new(server))))
}
