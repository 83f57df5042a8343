//! Configuration-level behaviour: flag validation, error texts, cipher suites, SAN checks.

mod common;

use std::net::IpAddr;

use common::*;
use oxcd_tls::rustls::crypto::ring::cipher_suite as cs;
use oxcd_tls::{
    check_peer_client_san, cipher_suites, verify_hostname, verify_peer_client_san, TlsError,
    TlsInfo,
};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn der(name: &str) -> Vec<u8> {
    let pem = std::fs::read(fixture(name)).unwrap();
    x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn cipher_suite_names() {
    let got = cipher_suites(&names(&[
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", // duplicate of the alias above
        "TLS_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_128_CBC_SHA", // known to Go, not to rustls: skipped
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    ]))
    .unwrap();
    let want = [
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS13_AES_128_GCM_SHA256,
    ];
    assert_eq!(
        got.iter().map(|s| s.suite()).collect::<Vec<_>>(),
        want.iter().map(|s| s.suite()).collect::<Vec<_>>()
    );
    assert!(cipher_suites(&[]).unwrap().is_empty());
}

#[test]
fn cipher_suite_errors() {
    let e = cipher_suites(&names(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "bogus"])).unwrap_err();
    assert!(matches!(e, TlsError::UnknownCipherSuite(ref s) if s == "bogus"));
    assert_eq!(e.to_string(), "unexpected TLS cipher suite \"bogus\"");
    // Names are case-sensitive, like Go's.
    let e = cipher_suites(&names(&["tls_ecdhe_rsa_with_aes_128_gcm_sha256"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unexpected TLS cipher suite \"tls_ecdhe_rsa_with_aes_128_gcm_sha256\""
    );
    // The same error surfaces from the config builders.
    if no_fixtures() {
        return;
    }
    let mut info = fixture_info("server");
    info.cipher_suites = names(&["NOPE"]);
    assert_eq!(
        info.server_config().unwrap_err().to_string(),
        "unexpected TLS cipher suite \"NOPE\""
    );
    assert_eq!(
        info.client_config(&[]).unwrap_err().to_string(),
        "unexpected TLS cipher suite \"NOPE\""
    );
}

#[test]
fn allowed_cn_and_hostname_are_mutually_exclusive() {
    if no_fixtures() {
        return;
    }
    let mut info = fixture_info("server");
    info.allowed_cn = "x".into();
    info.allowed_hostname = "y".into();
    let e = info.server_config().unwrap_err();
    assert_eq!(
        e.to_string(),
        "AllowedCN and AllowedHostname are mutually exclusive (cn=\"x\", hostname=\"y\")"
    );
    let e = info.client_config(&[]).unwrap_err();
    assert!(matches!(e, TlsError::AllowedCnAndHostname { .. }));
}

#[test]
fn missing_and_unreadable_files() {
    let info = TlsInfo {
        cert_file: "/nonexistent/cert.pem".into(),
        ..TlsInfo::default()
    };
    assert!(!info.is_empty());
    assert_eq!(
        info.server_config().unwrap_err().to_string(),
        "KeyFile and CertFile must both be present[key: , cert: /nonexistent/cert.pem]"
    );
    assert_eq!(
        TlsInfo::default().server_config().unwrap_err().to_string(),
        "KeyFile and CertFile must both be present[key: , cert: ]"
    );
    let info = TlsInfo {
        cert_file: "/nonexistent/cert.pem".into(),
        key_file: "/nonexistent/key.pem".into(),
        ..TlsInfo::default()
    };
    let e = info.server_config().unwrap_err();
    assert!(
        matches!(e, TlsError::Io { ref path, .. } if path.as_path() == std::path::Path::new("/nonexistent/cert.pem"))
    );
    assert!(
        e.to_string().starts_with("open /nonexistent/cert.pem: "),
        "{e}"
    );

    if no_fixtures() {
        return;
    }
    // Key not matching the certificate.
    let info = TlsInfo {
        cert_file: fixture("server.crt"),
        key_file: fixture("server2.key.insecure"),
        ..TlsInfo::default()
    };
    let e = info.server_config().unwrap_err().to_string();
    assert!(e.contains("does not match"), "{e}");
    // A key file given as cert file.
    let info = TlsInfo {
        cert_file: fixture("server.key.insecure"),
        key_file: fixture("server.key.insecure"),
        ..TlsInfo::default()
    };
    let e = info.server_config().unwrap_err().to_string();
    assert!(e.contains("no CERTIFICATE"), "{e}");
    // A CA file with no certificate.
    let mut info = fixture_info("server");
    info.trusted_ca_file = fixture("server.key.insecure");
    assert!(info.server_config().is_err());
    assert!(info.client_config(&[]).is_err());
}

#[test]
fn empty_display_and_required() {
    let mut info = TlsInfo::default();
    assert!(info.is_empty());
    assert!(!info.client_cert_required());
    info.client_cert_auth = true;
    assert!(info.client_cert_required());
    let info = TlsInfo {
        cert_file: "c.pem".into(),
        key_file: "k.pem".into(),
        trusted_ca_file: "ca.pem".into(),
        crl_file: "r.crl".into(),
        ..TlsInfo::default()
    };
    assert_eq!(
        info.to_string(),
        "cert = c.pem, key = k.pem, trusted-ca = ca.pem, client-cert-auth = false, crl-file = r.crl"
    );
    assert!(info.client_cert_required());
    // An empty TlsInfo still gives a client config (plain server verification).
    TlsInfo::default().client_config(&[b"h2"]).unwrap();
}

#[test]
fn hostname_checks_like_go() {
    if no_fixtures() {
        return;
    }
    let wildcard = der("server-wildcard.crt"); // *.etcd.local, etcd.local, localhost, 127.0.0.1
    verify_hostname(&wildcard, "a.etcd.local").unwrap();
    verify_hostname(&wildcard, "A.ETCD.local.").unwrap();
    verify_hostname(&wildcard, "etcd.local").unwrap();
    verify_hostname(&wildcard, "127.0.0.1").unwrap();
    verify_hostname(&wildcard, "[127.0.0.1]").unwrap();
    assert_eq!(
        verify_hostname(&wildcard, "a.b.etcd.local").unwrap_err(),
        "x509: certificate is valid for *.etcd.local, etcd.local, localhost, not a.b.etcd.local"
    );
    assert_eq!(
        verify_hostname(&wildcard, "10.0.0.1").unwrap_err(),
        "x509: certificate is valid for 127.0.0.1, not 10.0.0.1"
    );
    let v6 = der("server-ipv6.crt");
    verify_hostname(&v6, "::1").unwrap();
    verify_hostname(&v6, "[::1]").unwrap();
    assert_eq!(
        verify_hostname(&v6, "localhost").unwrap_err(),
        "x509: certificate is not valid for any names, but wanted to match localhost"
    );
    assert_eq!(
        verify_hostname(&der("server-ip.crt"), "::2").unwrap_err(),
        "x509: certificate is valid for 127.0.0.1, not ::2"
    );
    assert!(verify_hostname(b"garbage", "x").is_err());
}

#[tokio::test]
async fn peer_client_san_rule() {
    if no_fixtures() {
        return;
    }
    let server = der("server.crt"); // DNS:localhost, IP:127.0.0.1
    let ip_only = der("server-ip.crt"); // IP:127.0.0.1

    assert_eq!(check_peer_client_san(&server, ip("127.0.0.1")), Ok(()));
    assert_eq!(
        check_peer_client_san(&server, ip("::ffff:127.0.0.1")),
        Ok(())
    );
    assert_eq!(
        check_peer_client_san(&ip_only, ip("10.0.0.1")),
        Err("x509: certificate is valid for 127.0.0.1, not 10.0.0.1".into())
    );
    assert_eq!(
        check_peer_client_san(&server, ip("10.0.0.1")),
        Err("tls: \"10.0.0.1\" does not match any of DNSNames [\"localhost\"]".into())
    );
    // The async version resolves DNS SANs forward: localhost → loopback.
    let v6_ip_only_and_localhost_resolves =
        verify_peer_client_san(&der("server-wildcard.crt"), ip("127.0.0.1")).await;
    assert_eq!(v6_ip_only_and_localhost_resolves, Ok(()));
    assert!(verify_peer_client_san(&server, ip("10.0.0.1"))
        .await
        .is_err());
    assert!(check_peer_client_san(b"junk", ip("127.0.0.1")).is_err());

    // No SANs at all: accepted from anywhere.
    let dir = tempfile::tempdir().unwrap();
    let auto = TlsInfo::self_cert(dir.path(), &[]).unwrap();
    let pem = std::fs::read(&auto.cert_file).unwrap();
    let d = x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents;
    assert_eq!(check_peer_client_san(&d, ip("192.0.2.1")), Ok(()));
}

#[tokio::test]
async fn dns_only_san_matched_by_forward_lookup() {
    // A certificate with only DNS:localhost, from 127.0.0.1: the sync check cannot resolve,
    // the async one does.
    let dir = tempfile::tempdir().unwrap();
    let auto = TlsInfo::self_cert(dir.path(), &["localhost:2380".into()]).unwrap();
    let pem = std::fs::read(&auto.cert_file).unwrap();
    let d = x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents;
    assert!(check_peer_client_san(&d, ip("127.0.0.1")).is_err());
    let resolved = tokio::net::lookup_host(("localhost", 0)).await;
    if resolved
        .map(|mut a| a.any(|x| x.ip() == ip("127.0.0.1")))
        .unwrap_or(false)
    {
        assert_eq!(verify_peer_client_san(&d, ip("127.0.0.1")).await, Ok(()));
    }
}
