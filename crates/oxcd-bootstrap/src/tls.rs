//! TLS settings that are checked when the listeners are built.

use crate::config::Config;
use crate::error::ConfigError;

/// Cipher suite names Go 1.19 knows (secure and insecure lists), with their IANA numbers.
pub const CIPHER_SUITES: &[(&str, u16)] = &[
    ("TLS_RSA_WITH_AES_128_CBC_SHA", 0x002f),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", 0x0035),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009c),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", 0x009d),
    ("TLS_AES_128_GCM_SHA256", 0x1301),
    ("TLS_AES_256_GCM_SHA384", 0x1302),
    ("TLS_CHACHA20_POLY1305_SHA256", 0x1303),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xc009),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 0xc00a),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xc013),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", 0xc014),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xc02b),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0xc02c),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xc02f),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0xc030),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca8),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca9),
    ("TLS_RSA_WITH_RC4_128_SHA", 0x0005),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x000a),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003c),
    ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", 0xc007),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", 0xc011),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xc012),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 0xc023),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 0xc027),
    // etcd's aliases
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", 0xcca8),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", 0xcca9),
];

/// The IANA number of a cipher suite name.
pub fn cipher_suite_id(name: &str) -> Option<u16> {
    CIPHER_SUITES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, id)| *id)
}

/// `--cipher-suites` as numbers (empty = library defaults).
pub fn cipher_suite_ids(names: &[String]) -> Result<Vec<u16>, ConfigError> {
    names
        .iter()
        .map(|n| cipher_suite_id(n).ok_or_else(|| ConfigError::UnexpectedCipherSuite(n.clone())))
        .collect()
}

/// `--peer-cert-allowed-cn` and `--peer-cert-allowed-hostname` exclude each other.
pub fn check_peer_allowed(cfg: &Config) -> Result<(), ConfigError> {
    if !cfg.peer_cert_allowed_cn.is_empty() && !cfg.peer_cert_allowed_hostname.is_empty() {
        return Err(ConfigError::AllowedCnAndHostname {
            cn: cfg.peer_cert_allowed_cn.clone(),
            hostname: cfg.peer_cert_allowed_hostname.clone(),
        });
    }
    Ok(())
}

/// The checks etcd makes while building its TLS listeners.
pub fn check_tls(cfg: &Config) -> Result<(), ConfigError> {
    check_peer_allowed(cfg)?;
    cipher_suite_ids(&cfg.cipher_suites)?;
    Ok(())
}
