//! Certificate verifiers with etcd's extra rules (allowed CN/hostname, reloaded CRLs), and
//! the "skip verification" verifier used for auto-TLS.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, RootCertStore,
    SignatureScheme,
};

use crate::hostname::{names_of, parse};
use crate::load;
use crate::reload::{stamp, Stamp};
use crate::TlsError;

/// etcd's text when the allowed CN/hostname rule rejects a verified certificate.
pub(crate) const AUTH_FAILED: &str = "client certificate authentication failed";

/// A certificate rejected by one of etcd's extra rules. Carries the certificate's SANs so
/// the rejection can be logged the way etcd logs it.
#[derive(Debug)]
pub(crate) struct CertRejection {
    pub(crate) message: String,
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) dns: Vec<String>,
}

impl fmt::Display for CertRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CertRejection {}

fn reject(message: String, leaf: &CertificateDer<'_>) -> Error {
    let (ips, dns) = match parse(leaf.as_ref()) {
        Ok(c) => {
            let n = names_of(&c);
            (n.ips, n.dns)
        }
        Err(_) => (Vec::new(), Vec::new()),
    };
    Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
        CertRejection { message, ips, dns },
    ))))
}

/// The Subject CN of a DER certificate (the last CN attribute, as Go reads it); `None` when
/// the certificate cannot be parsed or has no non-empty CN.
pub fn common_name(cert_der: &[u8]) -> Option<String> {
    let cert = parse(cert_der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .last()?
        .to_owned();
    (!cn.is_empty()).then_some(cn)
}

/// After a completed server handshake: the Subject CN of the client's leaf certificate.
///
/// Client certificates are only accepted after verification, so a value here is verified.
/// `None` when no certificate was presented (client certs not required) or it has no CN.
/// With auth enabled, etcd uses this CN as the user name.
pub fn peer_common_name(conn: &rustls::ServerConnection) -> Option<String> {
    common_name(conn.peer_certificates()?.first()?.as_ref())
}

/// The allowed-CN / allowed-hostname rule applied to the verified leaf.
#[derive(Debug, Clone)]
pub(crate) enum LeafRule {
    None,
    Cn(String),
    Hostname(String),
}

impl LeafRule {
    fn check(&self, leaf: &CertificateDer<'_>) -> Result<(), Error> {
        let ok = match self {
            LeafRule::None => return Ok(()),
            LeafRule::Cn(want) => common_name(leaf.as_ref()).unwrap_or_default() == *want,
            LeafRule::Hostname(host) => {
                crate::hostname::verify_hostname(leaf.as_ref(), host).is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            // NotValidForName makes rustls send a `bad_certificate` alert, the alert Go sends
            // for this rejection: the other side then reports "remote error: tls: bad
            // certificate", which operators (and etcd's own tests) look for.
            let _ = leaf;
            Err(Error::InvalidCertificate(CertificateError::NotValidForName))
        }
    }
}

fn verify12(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    rustls::crypto::verify_tls12_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

fn verify13(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    rustls::crypto::verify_tls13_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

/// The webpki verifier of the current CRL version, and the serials that CRL revokes.
struct CrlGeneration {
    stamp: Option<Stamp>,
    /// `Err` (fail closed) when the CRL file became unusable after startup; `Ok(None)` when
    /// there are no trust anchors at all.
    verifier: Result<Option<Arc<dyn ClientCertVerifier>>, String>,
    revoked: Vec<Vec<u8>>,
}

/// Server-side verifier of client certificates: webpki chain verification against the
/// trusted CAs (or system roots) with the CRL file (reloaded on change), then the allowed
/// CN/hostname rule. Client certificates are mandatory.
pub(crate) struct EtcdClientVerifier {
    roots: Arc<RootCertStore>,
    system_roots: bool,
    hints: Vec<DistinguishedName>,
    provider: Arc<CryptoProvider>,
    rule: LeafRule,
    crl_path: Option<PathBuf>,
    current: Mutex<Arc<CrlGeneration>>,
}

impl fmt::Debug for EtcdClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdClientVerifier")
            .field("rule", &self.rule)
            .field("crl_path", &self.crl_path)
            .finish_non_exhaustive()
    }
}

impl EtcdClientVerifier {
    pub(crate) fn new(
        ca_file: &Path,
        crl_file: &Path,
        rule: LeafRule,
        provider: Arc<CryptoProvider>,
    ) -> Result<EtcdClientVerifier, TlsError> {
        let (roots, system_roots) = load::roots(ca_file)?;
        let hints = if system_roots {
            Vec::new()
        } else {
            roots.subjects()
        };
        let crl_path = (!crl_file.as_os_str().is_empty()).then(|| crl_file.to_path_buf());
        let mut v = EtcdClientVerifier {
            roots,
            system_roots,
            hints,
            provider,
            rule,
            crl_path,
            current: Mutex::new(Arc::new(CrlGeneration {
                stamp: None,
                verifier: Ok(None),
                revoked: Vec::new(),
            })),
        };
        let first = v.generation()?;
        v.current = Mutex::new(Arc::new(first));
        Ok(v)
    }

    /// Builds the webpki verifier for the CRL file as it is now.
    fn generation(&self) -> Result<CrlGeneration, TlsError> {
        let (stamp_now, crls, revoked) = match &self.crl_path {
            None => (None, Vec::new(), Vec::new()),
            Some(p) => {
                let s = stamp(p);
                let crls = load::crls_from_file(p)?;
                let revoked = load::revoked_serials(p, &crls)?;
                (s, crls, revoked)
            }
        };
        let verifier = if self.roots.is_empty() {
            None
        } else {
            let mut b = WebPkiClientVerifier::builder_with_provider(
                self.roots.clone(),
                self.provider.clone(),
            );
            if self.system_roots {
                b = b.clear_root_hint_subjects();
            }
            if !crls.is_empty() {
                b = b.with_crls(crls).allow_unknown_revocation_status();
            }
            let built = b.build().map_err(|e| match &self.crl_path {
                Some(p) => TlsError::bad(p, format!("cannot use CRL: {e}")),
                None => TlsError::Verifier(e.to_string()),
            })?;
            Some(built)
        };
        Ok(CrlGeneration {
            stamp: stamp_now,
            verifier: Ok(verifier),
            revoked,
        })
    }

    /// The current generation, rebuilt first when the CRL file changed.
    fn current(&self) -> Arc<CrlGeneration> {
        let Some(path) = &self.crl_path else {
            return self.current.lock().clone();
        };
        let s = stamp(path);
        let mut cur = self.current.lock();
        if cur.stamp == s {
            return cur.clone();
        }
        let next = match self.generation() {
            Ok(g) => {
                tracing::info!(pkg = "transport", "reloaded CRL file {}", path.display());
                g
            }
            Err(e) => {
                tracing::warn!(
                    pkg = "transport",
                    "cannot reload CRL file, rejecting client certificates until it is fixed: {e}"
                );
                CrlGeneration {
                    stamp: s,
                    verifier: Err(e.to_string()),
                    revoked: Vec::new(),
                }
            }
        };
        *cur = Arc::new(next);
        cur.clone()
    }
}

impl ClientCertVerifier for EtcdClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let generation = self.current();
        let verifier = match &generation.verifier {
            Err(msg) => return Err(reject(msg.clone(), end_entity)),
            Ok(None) => return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
            Ok(Some(v)) => v,
        };
        match verifier.verify_client_cert(end_entity, intermediates, now) {
            Ok(_) => {}
            Err(Error::InvalidCertificate(CertificateError::Revoked)) => {
                let presented = std::iter::once(end_entity).chain(intermediates);
                let serials: Vec<Vec<u8>> = presented
                    .filter_map(|c| parse(c.as_ref()).ok())
                    .map(|c| load::trim_serial(c.raw_serial()).to_vec())
                    .collect();
                let serial = serials
                    .iter()
                    .find(|s| generation.revoked.contains(s))
                    .or(serials.first())
                    .map(|s| s.iter().map(|b| format!("{b:02x}")).collect::<String>())
                    .unwrap_or_default();
                return Err(reject(
                    format!("transport: certificate serial {serial} revoked"),
                    end_entity,
                ));
            }
            Err(e) => return Err(e),
        }
        self.rule.check(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify12(&self.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Client-side verifier of server certificates: webpki against the trusted CAs (or the
/// system roots), then the allowed CN/hostname rule.
pub(crate) struct EtcdServerVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    rule: LeafRule,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for EtcdServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdServerVerifier")
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

impl EtcdServerVerifier {
    pub(crate) fn new(
        ca_file: &Path,
        rule: LeafRule,
        provider: Arc<CryptoProvider>,
    ) -> Result<EtcdServerVerifier, TlsError> {
        let (roots, _) = load::roots(ca_file)?;
        let inner = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| TlsError::bad(ca_file, e.to_string()))?,
            )
        };
        Ok(EtcdServerVerifier {
            inner,
            rule,
            provider,
        })
    }
}

impl ServerCertVerifier for EtcdServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some(inner) = &self.inner else {
            return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        };
        inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        self.rule.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify12(&self.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Accepts any server certificate and handshake signature (etcd's InsecureSkipVerify for
/// auto-TLS). Also advertises P-521 so real etcd members with P-521 auto-TLS keys can be
/// reached.
#[derive(Debug)]
pub(crate) struct SkipServerVerification {
    schemes: Vec<SignatureScheme>,
}

impl SkipServerVerification {
    pub(crate) fn new(provider: Arc<CryptoProvider>) -> SkipServerVerification {
        let mut schemes = provider
            .signature_verification_algorithms
            .supported_schemes();
        if !schemes.contains(&SignatureScheme::ECDSA_NISTP521_SHA512) {
            schemes.push(SignatureScheme::ECDSA_NISTP521_SHA512);
        }
        SkipServerVerification { schemes }
    }
}

impl ServerCertVerifier for SkipServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}
