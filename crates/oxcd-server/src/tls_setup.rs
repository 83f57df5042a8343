//! Client and peer TLS from the configuration, as etcd builds it: certificate files, or
//! self-signed certificates with `--auto-tls` / `--peer-auto-tls` kept in
//! `<data-dir>/fixtures/{client,peer}` and reused across restarts.

use std::path::PathBuf;
use std::sync::Arc;

use oxcd_bootstrap::Config;
use oxcd_tls::{TlsAcceptor, TlsInfo};

use crate::start::StartError;

/// HTTP/1.1 only: the peer protocol is HTTP/1.1 streams.
const PEER_ALPN: &[&[u8]] = &[b"http/1.1"];

pub struct TlsSetup {
    /// Server (and outgoing client) TLS of the client port; `None` when no cert is configured.
    pub client: Option<TlsInfo>,
    /// Peer TLS, used both to serve the peer port and to dial peers.
    pub peer: Option<TlsInfo>,
}

fn host_list(urls: &[url::Url]) -> Vec<String> {
    let mut hosts: Vec<String> = urls
        .iter()
        .filter_map(|u| {
            u.host_str()
                .map(|h| h.trim_matches(|c| c == '[' || c == ']').to_string())
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

fn path(s: &str) -> PathBuf {
    PathBuf::from(s)
}

impl TlsSetup {
    pub fn from_config(cfg: &Config) -> Result<TlsSetup, StartError> {
        let mut client = TlsInfo {
            cert_file: path(&cfg.cert_file),
            key_file: path(&cfg.key_file),
            trusted_ca_file: path(&cfg.trusted_ca_file),
            client_cert_auth: cfg.client_cert_auth,
            crl_file: path(&cfg.client_crl_file),
            allowed_hostname: cfg.client_cert_allowed_hostname.clone(),
            cipher_suites: cfg.cipher_suites.clone(),
            ..Default::default()
        };
        if cfg.auto_tls {
            if client.is_empty() {
                let dir = PathBuf::from(&cfg.data_dir).join("fixtures").join("client");
                let mut auto = TlsInfo::self_cert(&dir, &host_list(&cfg.listen_client_urls))
                    .map_err(|e| StartError(format!("could not generate client certs: {e}")))?;
                auto.cipher_suites = cfg.cipher_suites.clone();
                client = auto;
            } else {
                tracing::warn!("ignoring client auto TLS since certs given");
            }
        }
        let mut peer = TlsInfo {
            cert_file: path(&cfg.peer_cert_file),
            key_file: path(&cfg.peer_key_file),
            trusted_ca_file: path(&cfg.peer_trusted_ca_file),
            client_cert_auth: cfg.peer_client_cert_auth,
            crl_file: path(&cfg.peer_crl_file),
            allowed_cn: cfg.peer_cert_allowed_cn.clone(),
            allowed_hostname: cfg.peer_cert_allowed_hostname.clone(),
            cipher_suites: cfg.cipher_suites.clone(),
            ..Default::default()
        };
        if cfg.peer_auto_tls {
            if peer.is_empty() {
                let dir = PathBuf::from(&cfg.data_dir).join("fixtures").join("peer");
                let mut auto = TlsInfo::self_cert(&dir, &host_list(&cfg.listen_peer_urls))
                    .map_err(|e| StartError(format!("could not generate peer certs: {e}")))?;
                auto.cipher_suites = cfg.cipher_suites.clone();
                peer = auto;
            } else {
                tracing::warn!("ignoring peer auto TLS since certs given");
            }
        }
        let setup = TlsSetup {
            client: (!client.is_empty()).then_some(client),
            peer: (!peer.is_empty()).then_some(peer),
        };
        for url in &cfg.listen_peer_urls {
            if url.scheme() == "https" && setup.peer.is_none() {
                return Err(not_presented(url));
            }
        }
        for url in &cfg.listen_client_urls {
            if url.scheme() == "https" && setup.client.is_none() {
                return Err(not_presented(url));
            }
        }
        Ok(setup)
    }

    /// The acceptor for https client listeners.
    pub fn client_acceptor(&self) -> Result<Option<Arc<TlsAcceptor>>, StartError> {
        let Some(info) = &self.client else {
            return Ok(None);
        };
        let cfg = info
            .server_config()
            .map_err(|e| StartError(e.to_string()))?;
        Ok(Some(Arc::new(TlsAcceptor::new(cfg))))
    }

    /// The acceptor for https peer listeners; the peer port checks client certificate SANs
    /// against the remote address like etcd.
    pub fn peer_acceptor(
        &self,
        skip_san_check: bool,
    ) -> Result<Option<Arc<TlsAcceptor>>, StartError> {
        let Some(info) = &self.peer else {
            return Ok(None);
        };
        let cfg = info
            .server_config_with_alpn(PEER_ALPN)
            .map_err(|e| StartError(e.to_string()))?;
        Ok(Some(Arc::new(
            TlsAcceptor::new(cfg).with_peer_san_check(!skip_san_check),
        )))
    }

    /// TLS for dialling peers (and for fetching `/members` from them while bootstrapping).
    pub fn peer_client_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, StartError> {
        let Some(info) = &self.peer else {
            return Ok(None);
        };
        info.client_config(PEER_ALPN)
            .map(Some)
            .map_err(|e| StartError(e.to_string()))
    }
}

fn not_presented(url: &url::Url) -> StartError {
    let host = url.host_str().unwrap_or("");
    let port = url.port_or_known_default().unwrap_or(0);
    StartError(format!(
        "cannot listen on TLS for {host}:{port}: KeyFile and CertFile are not presented"
    ))
}
