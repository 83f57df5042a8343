//! `--cipher-suites`: Go cipher suite names to rustls suites.

use std::sync::Arc;

use rustls::crypto::ring::{cipher_suite as cs, default_provider};
use rustls::crypto::CryptoProvider;
use rustls::SupportedCipherSuite;

use crate::TlsError;

/// Go names rustls implements, with the suite they select.
fn supported(name: &str) -> Option<SupportedCipherSuite> {
    Some(match name {
        "TLS_AES_128_GCM_SHA256" => cs::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_256_GCM_SHA384" => cs::TLS13_AES_256_GCM_SHA384,
        "TLS_CHACHA20_POLY1305_SHA256" => cs::TLS13_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        // etcd accepts the names without the `_SHA256` suffix as aliases.
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

/// Go names etcd accepts but rustls does not implement (CBC, RC4, 3DES, RSA key exchange).
const KNOWN_UNSUPPORTED: &[&str] = &[
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// Parses etcd's `--cipher-suites` values (Go cipher suite names, case-sensitive, plus the
/// aliases `TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305` and
/// `TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305`) into rustls suites, in the given order without
/// duplicates.
///
/// A name Go does not know fails with `unexpected TLS cipher suite "<name>"`. A name Go knows
/// but rustls does not implement (CBC, RC4, 3DES and RSA key exchange suites) is skipped with
/// a warning. TLS 1.3 names map to TLS 1.3 suites.
pub fn cipher_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let mut out: Vec<SupportedCipherSuite> = Vec::new();
    for name in names {
        if let Some(s) = supported(name) {
            if !out.iter().any(|o| o.suite() == s.suite()) {
                out.push(s);
            }
        } else if KNOWN_UNSUPPORTED.contains(&name.as_str()) {
            tracing::warn!(
                pkg = "transport",
                "TLS cipher suite {name:?} is not supported by oxcd (no CBC, RC4, 3DES or RSA key exchange); ignoring it"
            );
        } else {
            return Err(TlsError::UnknownCipherSuite(name.clone()));
        }
    }
    Ok(out)
}

/// The crypto provider for a `--cipher-suites` list: ring's defaults when the list is empty;
/// otherwise every TLS 1.3 suite (Go does not let the list restrict TLS 1.3) followed by the
/// listed TLS 1.2 suites.
pub(crate) fn provider(names: &[String]) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut p = default_provider();
    if !names.is_empty() {
        let listed = cipher_suites(names)?;
        let mut chosen: Vec<SupportedCipherSuite> = p
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .collect();
        chosen.extend(
            listed
                .into_iter()
                .filter(|s| s.version() == &rustls::version::TLS12),
        );
        if !chosen
            .iter()
            .any(|s| s.version() == &rustls::version::TLS12)
        {
            tracing::warn!(
                pkg = "transport",
                "no TLS 1.2 cipher suite left from --cipher-suites; only TLS 1.3 connections will succeed"
            );
        }
        p.cipher_suites = chosen;
    }
    Ok(Arc::new(p))
}
