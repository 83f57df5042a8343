//! The HTTP client for peer traffic: plain http, or https with the peer TLS configuration.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

pub type PeerHttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub fn peer_http_client(
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    dial_timeout: Duration,
) -> PeerHttpClient {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(dial_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let mut tls = tls.map(|c| (*c).clone()).unwrap_or_else(plain_only_config);
    // The connector sets ALPN itself (http/1.1) and refuses a config that already has it.
    tls.alpn_protocols.clear();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Without peer TLS nothing is dialled over https; an empty trust store makes sure of it.
fn plain_only_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| {
        b.with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    })
    .unwrap_or_else(|_| {
        rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    })
}
