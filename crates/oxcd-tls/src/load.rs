//! Reading certificates, keys, CA bundles and CRLs from files.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

use crate::TlsError;

/// Where Go (and therefore etcd) looks for the system CA bundle on Linux, in order.
const SYSTEM_CERT_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::io("open", path, e))
}

/// All `CERTIFICATE` blocks of a PEM file.
pub(crate) fn certs_from_pem(
    path: &Path,
    data: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut &data[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::bad(path, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::bad(path, "no CERTIFICATE PEM block found"));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub(crate) fn key_from_pem(path: &Path, data: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut &data[..])
        .map_err(|e| TlsError::bad(path, format!("invalid PEM: {e}")))?
        .ok_or_else(|| TlsError::bad(path, "no private key PEM block found"))
}

/// Loads a certificate chain and its key, checking that the key is usable and matches.
pub(crate) fn certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let certs = certs_from_pem(cert_path, &read(cert_path)?)?;
    let key = key_from_pem(key_path, &read(key_path)?)?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::bad(key_path, format!("unsupported private key: {e}")))?;
    let ck = CertifiedKey::new(certs, signer);
    match ck.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(ck),
        Err(_) => Err(TlsError::bad(
            key_path,
            format!(
                "private key does not match the certificate in {}",
                cert_path.display()
            ),
        )),
    }
}

/// The root store of a CA bundle file; an empty bundle is an error.
pub(crate) fn roots_from_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let certs = certs_from_pem(path, &read(path)?)?;
    let mut store = RootCertStore::empty();
    for c in certs {
        store
            .add(c)
            .map_err(|e| TlsError::bad(path, format!("invalid CA certificate: {e}")))?;
    }
    Ok(store)
}

/// The system roots, found like Go finds them: `$SSL_CERT_FILE`, else the first existing
/// well-known bundle file. Unparsable entries are skipped. May be empty.
pub(crate) fn system_roots() -> RootCertStore {
    let mut store = RootCertStore::empty();
    let mut candidates: Vec<std::path::PathBuf> = Vec::new();
    if let Some(f) = std::env::var_os("SSL_CERT_FILE") {
        candidates.push(f.into());
    }
    candidates.extend(SYSTEM_CERT_FILES.iter().map(Into::into));
    for path in candidates {
        if let Ok(data) = std::fs::read(&path) {
            let mut rd = &data[..];
            let certs = rustls_pemfile::certs(&mut rd).filter_map(Result::ok);
            store.add_parsable_certificates(certs);
            if !store.is_empty() {
                break;
            }
        }
    }
    store
}

/// Trust anchors: the CA file when given, else the system roots. The flag tells whether
/// the system roots were used.
pub(crate) fn roots(ca_file: &Path) -> Result<(Arc<RootCertStore>, bool), TlsError> {
    if ca_file.as_os_str().is_empty() {
        Ok((Arc::new(system_roots()), true))
    } else {
        Ok((Arc::new(roots_from_file(ca_file)?), false))
    }
}

/// The CRLs of a file: PEM `X509 CRL` blocks, or a single DER CRL.
pub(crate) fn crls_from_file(
    path: &Path,
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let data = read(path)?;
    if data.trim_ascii_start().starts_with(b"-----BEGIN") {
        let crls = rustls_pemfile::crls(&mut &data[..])
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::bad(path, format!("invalid PEM: {e}")))?;
        if crls.is_empty() {
            return Err(TlsError::bad(path, "no X509 CRL PEM block found"));
        }
        Ok(crls)
    } else {
        Ok(vec![CertificateRevocationListDer::from(data)])
    }
}

/// The serial numbers (big-endian, no leading zero bytes) revoked by the given CRLs.
pub(crate) fn revoked_serials(
    path: &Path,
    crls: &[CertificateRevocationListDer<'_>],
) -> Result<Vec<Vec<u8>>, TlsError> {
    use x509_parser::prelude::FromDer;
    let mut out = Vec::new();
    for crl in crls {
        let (_, parsed) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(crl.as_ref())
                .map_err(|e| TlsError::bad(path, format!("invalid CRL: {e}")))?;
        for rc in parsed.iter_revoked_certificates() {
            out.push(trim_serial(rc.raw_serial()).to_vec());
        }
    }
    Ok(out)
}

/// A DER INTEGER's content without leading zero bytes (Go's `big.Int.Bytes()`).
pub(crate) fn trim_serial(raw: &[u8]) -> &[u8] {
    let n = raw.iter().take_while(|b| **b == 0).count();
    &raw[n..]
}
