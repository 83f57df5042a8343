//! TLS for oxcd's client and peer ports, with etcd 3.4's rules.
//!
//! The crate turns the TLS flags of one port (`--cert-file`, `--key-file`, `--trusted-ca-file`,
//! `--client-cert-auth`, `--client-crl-file`, `--client-cert-allowed-hostname`,
//! `--cipher-suites`, `--auto-tls` and their `--peer-*` twins) into rustls configurations, and
//! wraps a listener so that failed handshakes are logged the way etcd logs them.
//!
//! * [`TlsInfo`] holds the flag values of one port. [`TlsInfo::self_cert`] creates the auto-TLS
//!   certificate; [`TlsInfo::server_config`] and [`TlsInfo::client_config`] build the rustls
//!   configurations.
//! * [`TlsAcceptor`] performs server handshakes with a timeout and logs
//!   `rejected connection from "<addr>" (error "<err>", ServerName "<sni>")` on failure.
//! * [`cipher_suites`] parses `--cipher-suites` (Go names).
//! * [`peer_common_name`] gives the verified client certificate's CN (used as the user name
//!   when auth is on).
//! * [`check_peer_client_san`] / [`verify_peer_client_san`] implement the peer port's
//!   "remote IP must match the client certificate's SANs" rule.
//!
//! # Behaviour
//!
//! * Minimum protocol version TLS 1.2. The server offers ALPN `h2` and `http/1.1`.
//! * A client certificate is required when `client_cert_auth` is set **or** a trusted CA file
//!   is given (etcd's rule). The CA file is the set of trust anchors; without one, the system
//!   roots are used.
//! * The server certificate and key are re-read when the files change (their modification
//!   time, size or inode differ), checked on every handshake, so rotating them needs no
//!   restart. The client certificate presented on outgoing connections is reloaded the same
//!   way. The CRL file is reloaded the same way too.
//! * Session resumption: outgoing connections never resume (Go's default), and a server
//!   that requires client certificates does not offer resumption, so every connection is
//!   fully verified (CRL, allowed CN/hostname) and rotated certificates apply immediately.
//! * `allowed_cn` / `allowed_hostname` are checked against the leaf of the verified chain of
//!   the peer. As in etcd, the rule applies to both directions: it constrains client
//!   certificates on the server side and server certificates on the client side.
//!
//! # Deviations from etcd
//!
//! * **Auto-TLS key type.** etcd generates ECDSA P-521 keys; the `ring` backend of rustls
//!   cannot sign with P-521, so oxcd generates **P-384** keys (ecdsa-with-SHA384). The
//!   extended key usage lists serverAuth **and** clientAuth, so that peers can present the
//!   certificate as a client certificate. The key file is written as PKCS#8
//!   (`PRIVATE KEY`) instead of SEC1 (`EC PRIVATE KEY`); both rustls and Go read PKCS#8.
//!   Existing auto-TLS files whose key oxcd cannot use (for example P-521 keys left by a real
//!   etcd) are regenerated with a warning instead of being reused.
//! * **Outgoing auto-TLS connections** skip certificate *and* handshake-signature
//!   verification and advertise `ecdsa_secp521r1_sha512`, so an oxcd member can still talk to
//!   a real etcd member whose auto-TLS certificate uses P-521. Signature checking adds nothing
//!   once the certificate itself is not verified.
//! * **Allowed CN/hostname with auto-TLS.** Go calls its check hook even with
//!   InsecureSkipVerify, so etcd's outgoing connections fail in that combination; oxcd skips
//!   the check when it skips verification.
//! * **CRLs** are checked by rustls-webpki during the handshake (the connection gets a TLS
//!   alert), not after the handshake by serial number alone as etcd does. webpki also checks
//!   the CRL's signature and issuer, so a CRL from an unrelated CA revokes nothing. A CRL that
//!   cannot be read or parsed fails [`TlsInfo::server_config`]; if it becomes unreadable
//!   later, every connection that presents a certificate is rejected (fail closed). Revocation
//!   is reported with etcd's text `transport: certificate serial <hex> revoked`.
//! * **Cipher suites.** rustls implements only AEAD suites with ECDHE key exchange. Go names
//!   for CBC, RC4, 3DES or RSA key exchange suites are accepted (etcd accepts them) but
//!   skipped with a warning. As in Go, the list only restricts TLS 1.2; TLS 1.3 suites are
//!   always enabled.
//! * A trusted-CA file that contains no certificate is an error (Go silently uses an empty
//!   pool, which rejects every peer).
//! * When a new certificate/key pair cannot be loaded (for example the certificate was
//!   replaced but the key not yet), the previous pair keeps being served and a warning is
//!   logged; etcd fails those handshakes instead.
//! * Handshakes time out (default 10 s, [`TlsAcceptor::with_handshake_timeout`]); etcd has no
//!   handshake timeout.

#![deny(missing_docs)]

mod acceptor;
mod hostname;
mod load;
mod reload;
mod selfcert;
mod suites;
mod verify;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use acceptor::{
    describe_handshake_error, HandshakeFailure, TlsAcceptor, DEFAULT_HANDSHAKE_TIMEOUT,
};
pub use hostname::{check_peer_client_san, verify_hostname, verify_peer_client_san};
pub use suites::cipher_suites;
pub use verify::{common_name, peer_common_name};

/// Re-exported so callers name the same rustls/tokio-rustls versions as this crate.
pub use rustls;
pub use tokio_rustls;

/// The ALPN protocols the server side offers: `h2`, then `http/1.1`.
pub const SERVER_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// Errors building TLS configurations or auto-TLS certificates.
///
/// Where etcd has a message for the same condition, the text is etcd's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Only one of cert file and key file was given (or neither, for a server).
    #[error("KeyFile and CertFile must both be present[key: {key}, cert: {cert}]")]
    MissingCertOrKey {
        /// The key file value (may be empty).
        key: String,
        /// The cert file value (may be empty).
        cert: String,
    },
    /// `allowed_cn` and `allowed_hostname` were both set.
    #[error(
        "AllowedCN and AllowedHostname are mutually exclusive (cn={cn:?}, hostname={hostname:?})"
    )]
    AllowedCnAndHostname {
        /// The allowed CN.
        cn: String,
        /// The allowed hostname.
        hostname: String,
    },
    /// A `--cipher-suites` name that is not a Go TLS cipher suite name.
    #[error("unexpected TLS cipher suite {0:?}")]
    UnknownCipherSuite(String),
    /// A file could not be read, written or created.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done: `open`, `read`, `write`, `mkdir`, …
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its content is not usable (bad PEM, no certificate, no key,
    /// unsupported key type, key not matching the certificate, bad CRL, …).
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls could not build a certificate verifier from the trust anchors.
    #[error("cannot build certificate verifier: {0}")]
    Verifier(String),
    /// Generating the auto-TLS certificate failed.
    #[error("cannot generate self-signed certificate: {0}")]
    CertGen(String),
    /// rustls rejected the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsError {
    fn io(op: &'static str, path: &Path, source: std::io::Error) -> TlsError {
        TlsError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    fn bad(path: &Path, reason: impl Into<String>) -> TlsError {
        TlsError::BadFile {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// The TLS settings of one port (client or peer), as given by etcd's flags.
///
/// Empty paths/strings mean "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `--cert-file` / `--peer-cert-file`: PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// `--key-file` / `--peer-key-file`: PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// `--trusted-ca-file` / `--peer-trusted-ca-file`: PEM CA certificates. On the server side
    /// these verify client certificates (and make them required); on the client side they
    /// verify the server.
    pub trusted_ca_file: PathBuf,
    /// `--client-cert-auth` / `--peer-client-cert-auth`: require and verify client
    /// certificates.
    pub client_cert_auth: bool,
    /// `--client-crl-file` / `--peer-crl-file`: certificate revocation list (DER or PEM).
    pub crl_file: PathBuf,
    /// `--peer-cert-allowed-cn`: the verified peer leaf must have exactly this Subject CN.
    pub allowed_cn: String,
    /// `--client-cert-allowed-hostname` / `--peer-cert-allowed-hostname`: the verified peer
    /// leaf must be valid for this host name or IP (SAN match, wildcards allowed).
    pub allowed_hostname: String,
    /// `--cipher-suites`: Go cipher suite names; empty means rustls' defaults.
    pub cipher_suites: Vec<String>,
    /// Skip verification of the server certificate on outgoing connections (etcd's
    /// `InsecureSkipVerify`, e.g. the proxy's `--insecure-skip-tls-verify`).
    pub insecure_skip_verify: bool,
    /// Set by [`TlsInfo::self_cert`]: the certificate is self-signed, so outgoing connections
    /// made with [`TlsInfo::client_config`] do not verify the server.
    pub auto: bool,
}

impl fmt::Display for TlsInfo {
    /// etcd's one-line description, used in its startup logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cert = {}, key = {}, trusted-ca = {}, client-cert-auth = {}, crl-file = {}",
            self.cert_file.display(),
            self.key_file.display(),
            self.trusted_ca_file.display(),
            self.client_cert_auth,
            self.crl_file.display()
        )
    }
}

impl TlsInfo {
    /// True when neither a certificate nor a key file is set (etcd's `Empty()`): the port
    /// cannot serve TLS unless auto-TLS fills them in.
    pub fn is_empty(&self) -> bool {
        self.cert_file.as_os_str().is_empty() && self.key_file.as_os_str().is_empty()
    }

    /// True when the server side requests and requires a client certificate:
    /// `client_cert_auth` is set or a trusted CA file is given.
    pub fn client_cert_required(&self) -> bool {
        self.client_cert_auth || !self.trusted_ca_file.as_os_str().is_empty()
    }

    /// Auto-TLS (etcd's `SelfCert`): makes sure `<dir>/cert.pem` and `<dir>/key.pem` exist
    /// and returns a `TlsInfo` pointing at them with `auto = true`.
    ///
    /// If both files already exist and are usable they are reused unchanged. Otherwise `dir`
    /// is created (mode 0700) and a new self-signed certificate is written: Subject
    /// `O=etcd` (no CN), random 128-bit serial, valid from now for 365 days, ECDSA P-384,
    /// key usages digitalSignature + keyEncipherment, extended key usages serverAuth +
    /// clientAuth, CA:FALSE. Each entry of `hosts` is a `host:port` or a bare host; the host
    /// becomes an IP SAN when it is an IP literal, else a DNS SAN. `cert.pem` is written with
    /// mode 0644 and `key.pem` (PKCS#8) with mode 0600.
    ///
    /// Callers copy the flag values that auto-TLS does not set (`client_cert_auth`,
    /// `trusted_ca_file`, `crl_file`, allowed CN/hostname, cipher suites) onto the result.
    pub fn self_cert(dir: &Path, hosts: &[String]) -> Result<TlsInfo, TlsError> {
        selfcert::self_cert(dir, hosts)
    }

    fn check_common(&self) -> Result<(), TlsError> {
        if self.cert_file.as_os_str().is_empty() || self.key_file.as_os_str().is_empty() {
            return Err(TlsError::MissingCertOrKey {
                key: self.key_file.display().to_string(),
                cert: self.cert_file.display().to_string(),
            });
        }
        Ok(())
    }

    fn leaf_rule(&self) -> Result<verify::LeafRule, TlsError> {
        match (self.allowed_cn.is_empty(), self.allowed_hostname.is_empty()) {
            (false, false) => Err(TlsError::AllowedCnAndHostname {
                cn: self.allowed_cn.clone(),
                hostname: self.allowed_hostname.clone(),
            }),
            (false, true) => Ok(verify::LeafRule::Cn(self.allowed_cn.clone())),
            (true, false) => Ok(verify::LeafRule::Hostname(self.allowed_hostname.clone())),
            (true, true) => Ok(verify::LeafRule::None),
        }
    }

    /// The rustls configuration for a TLS listener of this port, offering ALPN
    /// [`SERVER_ALPN`] (`h2`, `http/1.1`). See [`TlsInfo::server_config_with_alpn`].
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        self.server_config_with_alpn(SERVER_ALPN)
    }

    /// The rustls configuration for a TLS listener of this port with the given ALPN list.
    ///
    /// * Requires `cert_file` and `key_file`; both are loaded now (errors are returned) and
    ///   reloaded on change later.
    /// * `allowed_cn` and `allowed_hostname` are mutually exclusive.
    /// * Client certificates are required when [`TlsInfo::client_cert_required`]; they are
    ///   verified against `trusted_ca_file` (or the system roots), `crl_file`, and the
    ///   allowed CN/hostname rule.
    /// * TLS 1.2 and 1.3; `cipher_suites` restricts TLS 1.2 suites.
    pub fn server_config_with_alpn(
        &self,
        alpn: &[&[u8]],
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        self.check_common()?;
        let provider = suites::provider(&self.cipher_suites)?;
        let resolver = reload::ReloadingKeyPair::load(&self.cert_file, &self.key_file, &provider)?;
        let rule = self.leaf_rule()?;
        let verifier: Arc<dyn rustls::server::danger::ClientCertVerifier> =
            if self.client_cert_required() {
                Arc::new(verify::EtcdClientVerifier::new(
                    &self.trusted_ca_file,
                    &self.crl_file,
                    rule,
                    provider.clone(),
                )?)
            } else {
                rustls::server::WebPkiClientVerifier::no_client_auth()
            };
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(reload::ServerResolver(resolver)));
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        if self.client_cert_required() {
            // A resumed session skips certificate verification, so CRL updates and the
            // allowed CN/hostname rule would not apply to it (etcd re-checks its CRL on every
            // connection). Full handshakes only.
            cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            cfg.send_tls13_tickets = 0;
        }
        Ok(Arc::new(cfg))
    }

    /// The rustls configuration for outgoing connections of this port (peer dialing,
    /// proxies), offering the given ALPN protocols (e.g. [`SERVER_ALPN`], or `&[b"h2"]` for
    /// gRPC; empty sends no ALPN extension).
    ///
    /// * When `cert_file`/`key_file` are set (both are then required), they are presented as
    ///   the client certificate and reloaded on change.
    /// * The server is verified against `trusted_ca_file`, or the system roots when no CA
    ///   file is given, plus the allowed CN/hostname rule. The server name to verify is the
    ///   one passed to the connector (an IP address for IP URLs).
    /// * `auto` (set by [`TlsInfo::self_cert`]) or `insecure_skip_verify` skips server
    ///   verification entirely.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let provider = suites::provider(&self.cipher_suites)?;
        let client_cert = if self.is_empty() {
            None
        } else {
            self.check_common()?;
            Some(reload::ReloadingKeyPair::load(
                &self.cert_file,
                &self.key_file,
                &provider,
            )?)
        };
        let rule = self.leaf_rule()?;
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> =
            if self.auto || self.insecure_skip_verify {
                Arc::new(verify::SkipServerVerification::new(provider))
            } else {
                Arc::new(verify::EtcdServerVerifier::new(
                    &self.trusted_ca_file,
                    rule,
                    provider,
                )?)
            };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut cfg = match client_cert {
            Some(kp) => builder.with_client_cert_resolver(Arc::new(reload::ClientResolver(kp))),
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // Like Go's default (no ClientSessionCache): every connection does a full handshake,
        // so a rotated client certificate is presented at once.
        cfg.resumption = rustls::client::Resumption::disabled();
        Ok(Arc::new(cfg))
    }
}
