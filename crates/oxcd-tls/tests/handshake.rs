//! Handshakes over real loopback sockets: tokio-rustls clients against `TlsAcceptor`, with
//! etcd's e2e fixture certificates.

mod common;

use std::time::Duration;

use common::*;
use oxcd_tls::{TlsAcceptor, TlsInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn server_info(ca: bool) -> TlsInfo {
    let mut info = fixture_info("server");
    if ca {
        info.trusted_ca_file = fixture("ca.crt");
    }
    info
}

#[tokio::test]
async fn server_cert_verified_by_ca_no_client_cert() {
    if no_fixtures() {
        return;
    }
    let srv = start_server(server_info(false).server_config().unwrap()).await;
    // Name and IP SANs both verify; ALPN h2 is negotiated.
    let line = talk(ca_client(None), srv.addr, "localhost").await.unwrap();
    assert_eq!(line, "cn=-,alpn=h2");
    let line = talk(ca_client(None), srv.addr, "127.0.0.1").await.unwrap();
    assert_eq!(line, "cn=-,alpn=h2");
    // A name the certificate does not cover fails on the client side.
    let err = talk(ca_client(None), srv.addr, "example.org")
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");
    // http/1.1-only clients are served too.
    let mut info = TlsInfo {
        trusted_ca_file: fixture("ca.crt"),
        ..TlsInfo::default()
    };
    info.cipher_suites = vec![];
    let line = talk(
        info.client_config(&[b"http/1.1"]).unwrap(),
        srv.addr,
        "localhost",
    )
    .await
    .unwrap();
    assert_eq!(line, "cn=-,alpn=http/1.1");
}

#[tokio::test]
async fn trusted_ca_alone_requires_client_cert_and_loop_continues() {
    if no_fixtures() {
        return;
    }
    // client_cert_auth is false, but a trusted CA file makes client certs required.
    let info = server_info(true);
    assert!(!info.client_cert_auth && info.client_cert_required());
    let srv = start_server(info.server_config().unwrap()).await;

    let err = talk(ca_client(None), srv.addr, "localhost")
        .await
        .unwrap_err();
    eprintln!("client saw: {err}");
    let f = srv.wait_failures(1).await;
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].error, "tls: client didn't provide a certificate");
    assert_eq!(f[0].server_name, "localhost");
    assert!(f[0].remote.starts_with("127.0.0.1:"));
    assert_eq!(
        f[0].to_string(),
        format!(
            "rejected connection from \"{}\" (error \"tls: client didn't provide a certificate\", ServerName \"localhost\")",
            f[0].remote
        )
    );

    // The accept loop still serves the next client; its verified CN is visible.
    let line = talk(ca_client(Some("server")), srv.addr, "localhost")
        .await
        .unwrap();
    assert_eq!(line, "cn=example.com,alpn=h2");
    // A client cert without CN gives no user name.
    let line = talk(ca_client(Some("server3")), srv.addr, "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(line, "cn=-,alpn=h2");
    assert_eq!(srv.failure_count(), 1);
}

#[tokio::test]
async fn client_cert_from_unknown_ca_rejected() {
    if no_fixtures() {
        return;
    }
    let mut info = server_info(false);
    info.client_cert_auth = true;
    info.trusted_ca_file = fixture("ca.crt");
    let srv = start_server(info.server_config().unwrap()).await;

    let dir = tempfile::tempdir().unwrap();
    let mut auto = TlsInfo::self_cert(dir.path(), &["127.0.0.1:0".into()]).unwrap();
    auto.trusted_ca_file = fixture("ca.crt");
    auto.auto = false; // verify the server normally, but present the self-signed cert
    let err = talk(auto.client_config(&[b"h2"]).unwrap(), srv.addr, "localhost")
        .await
        .unwrap_err();
    eprintln!("client saw: {err}");
    let f = srv.wait_failures(1).await;
    assert_eq!(
        f[0].error,
        "tls: failed to verify client certificate: x509: certificate signed by unknown authority"
    );
    assert_eq!(f[0].cert_sans, None);
}

#[tokio::test]
async fn client_cert_auth_without_ca_uses_system_roots() {
    if no_fixtures() {
        return;
    }
    // --client-cert-auth without --trusted-ca-file: verified against the system roots,
    // which do not contain the fixtures CA.
    let mut info = server_info(false);
    info.client_cert_auth = true;
    let srv = start_server(info.server_config().unwrap()).await;
    assert!(talk(ca_client(Some("server")), srv.addr, "localhost")
        .await
        .is_err());
    let f = srv.wait_failures(1).await;
    assert!(
        f[0].error
            .starts_with("tls: failed to verify client certificate"),
        "{}",
        f[0].error
    );
}

#[tokio::test]
async fn revoked_client_cert_rejected_by_crl() {
    if no_fixtures() {
        return;
    }
    let mut info = server_info(true);
    info.client_cert_auth = true;
    info.crl_file = fixture("revoke.crl");
    let srv = start_server(info.server_config().unwrap()).await;

    let err = talk(ca_client(Some("server-revoked")), srv.addr, "localhost")
        .await
        .unwrap_err();
    eprintln!("client saw: {err}");
    let f = srv.wait_failures(1).await;
    assert_eq!(
        f[0].error,
        "transport: certificate serial 4a3cf9f9dcc21a01b4a0efaef7546aaee8fbd194 revoked"
    );
    let sans = f[0].cert_sans.as_ref().unwrap();
    assert_eq!(
        sans.ips,
        vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(sans.dns, vec!["localhost".to_string()]);
    assert!(f[0].to_string().ends_with(
        "ServerName \"localhost\", IPAddresses [\"127.0.0.1\"], DNSNames [\"localhost\"])"
    ));

    // Certificates not on the list still work.
    let line = talk(ca_client(Some("server")), srv.addr, "localhost")
        .await
        .unwrap();
    assert_eq!(line, "cn=example.com,alpn=h2");
}

#[tokio::test]
async fn crl_file_is_reloaded_and_fails_closed() {
    if no_fixtures() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let crl = dir.path().join("crl.pem");
    // Start with a PEM CRL from an unrelated CA that lists the same serial: webpki only
    // honours CRLs issued by the certificate's issuer, so nothing is revoked (etcd, which
    // compares serials only, would reject here).
    std::fs::write(
        &crl,
        unrelated_crl_pem("4a3cf9f9dcc21a01b4a0efaef7546aaee8fbd194"),
    )
    .unwrap();
    let mut info = server_info(true);
    info.crl_file = crl.clone();
    let srv = start_server(info.server_config().unwrap()).await;
    talk(ca_client(Some("server-revoked")), srv.addr, "localhost")
        .await
        .unwrap_or_else(|e| panic!("should pass before the CRL changes: {e}"));

    std::fs::copy(fixture("revoke.crl"), &crl).unwrap();
    assert!(
        talk(ca_client(Some("server-revoked")), srv.addr, "localhost")
            .await
            .is_err()
    );
    let f = srv.wait_failures(1).await;
    assert!(f[0].error.contains("revoked"), "{}", f[0].error);

    // A broken CRL rejects everyone until fixed.
    std::fs::write(&crl, b"garbage").unwrap();
    assert!(talk(ca_client(Some("server")), srv.addr, "localhost")
        .await
        .is_err());
    let f = srv.wait_failures(2).await;
    assert!(f[1].error.contains("CRL"), "{}", f[1].error);

    // And a CRL that cannot be used fails at startup.
    let mut bad = server_info(true);
    bad.crl_file = crl;
    let e = bad.server_config().unwrap_err().to_string();
    assert!(e.contains("crl.pem"), "{e}");
}

/// A PEM CRL revoking `serial_hex`, signed by a freshly generated CA.
fn unrelated_crl_pem(serial_hex: &str) -> String {
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, IsCa, Issuer,
        KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
    };
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = Issuer::new(p, KeyPair::generate().unwrap());
    let serial: Vec<u8> = (0..serial_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&serial_hex[i..i + 2], 16).unwrap())
        .collect();
    let now = time::OffsetDateTime::now_utc();
    CertificateRevocationListParams {
        this_update: now,
        next_update: now + time::Duration::days(1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time: now,
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .unwrap()
    .pem()
    .unwrap()
}

#[tokio::test]
async fn allowed_cn() {
    if no_fixtures() {
        return;
    }
    let mut info = server_info(true);
    info.allowed_cn = "example.com".into();
    let srv = start_server(info.server_config().unwrap()).await;

    let line = talk(ca_client(Some("server")), srv.addr, "localhost")
        .await
        .unwrap();
    assert_eq!(line, "cn=example.com,alpn=h2");

    // CN example2.com, and no CN at all: both rejected with etcd's text.
    assert!(talk(ca_client(Some("server2")), srv.addr, "localhost")
        .await
        .is_err());
    assert!(talk(ca_client(Some("server3")), srv.addr, "localhost")
        .await
        .is_err());
    let f = srv.wait_failures(2).await;
    assert_eq!(f.len(), 2);
    for x in &f {
        // Rejected with a bad_certificate alert, as Go does; the SANs are not reported for
        // this rejection.
        assert_eq!(x.error, "client certificate authentication failed");
    }
}

#[tokio::test]
async fn allowed_hostname() {
    if no_fixtures() {
        return;
    }
    let mut info = server_info(true);
    info.allowed_hostname = "127.0.0.1".into();
    let srv = start_server(info.server_config().unwrap()).await;
    talk(ca_client(Some("server")), srv.addr, "localhost")
        .await
        .unwrap();

    let mut info = server_info(true);
    info.allowed_hostname = "example.com".into(); // the CN, but not a SAN
    let srv = start_server(info.server_config().unwrap()).await;
    assert!(talk(ca_client(Some("server")), srv.addr, "localhost")
        .await
        .is_err());
    let f = srv.wait_failures(1).await;
    assert_eq!(f[0].error, "client certificate authentication failed");

    let mut info = server_info(true);
    info.allowed_hostname = "node1.etcd.local".into(); // matches *.etcd.local
    let srv = start_server(info.server_config().unwrap()).await;
    talk(ca_client(Some("server-wildcard")), srv.addr, "localhost")
        .await
        .unwrap();
}

#[tokio::test]
async fn allowed_cn_also_constrains_server_cert_on_client_side() {
    if no_fixtures() {
        return;
    }
    let srv = start_server(server_info(false).server_config().unwrap()).await;
    let mut ok = TlsInfo {
        trusted_ca_file: fixture("ca.crt"),
        allowed_cn: "example.com".into(),
        ..TlsInfo::default()
    };
    talk(ok.client_config(&[b"h2"]).unwrap(), srv.addr, "localhost")
        .await
        .unwrap();
    ok.allowed_cn = "someone-else".into();
    let err = talk(ok.client_config(&[b"h2"]).unwrap(), srv.addr, "localhost")
        .await
        .unwrap_err();
    assert!(
        err.contains("client certificate authentication failed"),
        "{err}"
    );
}

#[tokio::test]
async fn ecdsa_fixture_and_client_without_ca_uses_system_roots() {
    if no_fixtures() {
        return;
    }
    let srv = start_server(fixture_info("server-ecdsa").server_config().unwrap()).await;
    talk(ca_client(None), srv.addr, "localhost").await.unwrap();
    // No CA file: the system roots do not know the fixtures CA.
    let sys = TlsInfo::default().client_config(&[b"h2"]).unwrap();
    let err = talk(sys, srv.addr, "localhost").await.unwrap_err();
    assert!(
        err.contains("UnknownIssuer") || err.contains("unknown"),
        "{err}"
    );
}

#[tokio::test]
async fn auto_tls_generates_reuses_and_skips_verification() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures_dir = dir.path().join("fixtures").join("peer");
    let hosts = vec!["127.0.0.1:2380".to_string(), "localhost:2380".to_string()];
    let info = TlsInfo::self_cert(&fixtures_dir, &hosts).unwrap();
    assert!(info.auto);
    assert_eq!(info.cert_file, fixtures_dir.join("cert.pem"));
    assert_eq!(info.key_file, fixtures_dir.join("key.pem"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&info.key_file), 0o600);
        assert_eq!(mode(&info.cert_file), 0o644);
        assert_eq!(mode(&fixtures_dir), 0o700);
    }

    // Certificate contents.
    let pem = std::fs::read(&info.cert_file).unwrap();
    assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
    let der = rustls_pemfile_certs(&pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(cert.subject().to_string(), "O=etcd");
    assert_eq!(cert.issuer().to_string(), "O=etcd");
    assert!(cert.subject().iter_common_name().next().is_none());
    let validity = cert.validity();
    let days = (validity.not_after.timestamp() - validity.not_before.timestamp()) / 86400;
    assert_eq!(days, 365);
    let now = time_now();
    assert!((validity.not_before.timestamp() - now).abs() < 120);
    assert!(cert.raw_serial().len() >= 15);
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment());
    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert!(!bc.ca);
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.3" // ecdsa-with-SHA384
    );
    assert_eq!(
        oxcd_tls::check_peer_client_san(&der, "127.0.0.1".parse().unwrap()),
        Ok(())
    );
    oxcd_tls::verify_hostname(&der, "localhost").unwrap();
    oxcd_tls::verify_hostname(&der, "127.0.0.1").unwrap();

    // The second call reuses the files.
    let key_before = std::fs::read(&info.key_file).unwrap();
    let again = TlsInfo::self_cert(&fixtures_dir, &["10.0.0.1:2380".into()]).unwrap();
    assert_eq!(again, info);
    assert_eq!(std::fs::read(&info.cert_file).unwrap(), pem);
    assert_eq!(std::fs::read(&info.key_file).unwrap(), key_before);

    // A server with the auto cert; a client with its own auto cert connects (no verify).
    let srv = start_server(info.server_config().unwrap()).await;
    let client_dir = dir.path().join("client");
    let client_auto = TlsInfo::self_cert(&client_dir, &hosts).unwrap();
    let line = talk(
        client_auto.client_config(&[b"h2"]).unwrap(),
        srv.addr,
        "127.0.0.1",
    )
    .await
    .unwrap();
    assert_eq!(line, "cn=-,alpn=h2");
    // Even for a name not in the certificate.
    talk(
        client_auto.client_config(&[b"h2"]).unwrap(),
        srv.addr,
        "other.example",
    )
    .await
    .unwrap();
    // A verifying client does not trust the self-signed certificate.
    let err = talk(ca_client(None), srv.addr, "127.0.0.1")
        .await
        .unwrap_err();
    assert!(err.contains("connect"), "{err}");

    // Unusable existing files are replaced.
    std::fs::write(&info.key_file, b"not a key").unwrap();
    TlsInfo::self_cert(&fixtures_dir, &hosts).unwrap();
    assert_ne!(std::fs::read(&info.cert_file).unwrap(), pem);
    info.server_config().unwrap();
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<u8> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem).unwrap();
    p.contents
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn certificate_rotation_without_restart() {
    if no_fixtures() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    std::fs::copy(fixture("server.crt"), &cert).unwrap();
    std::fs::copy(fixture("server.key.insecure"), &key).unwrap();
    let info = TlsInfo {
        cert_file: cert.clone(),
        key_file: key.clone(),
        ..TlsInfo::default()
    };
    let cfg = info.server_config().unwrap();
    let srv = start_server(cfg).await;

    let served_cn = |addr| async move {
        // Read the CN of the certificate the server presents.
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = oxcd_tls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let s = tokio_rustls::TlsConnector::from(ca_client(None))
            .connect(name, tcp)
            .await
            .unwrap();
        let leaf = s.get_ref().1.peer_certificates().unwrap()[0].clone();
        oxcd_tls::common_name(leaf.as_ref())
    };
    assert_eq!(served_cn(srv.addr).await.as_deref(), Some("example.com"));

    // Replace both files: the next handshake presents the new certificate.
    std::fs::copy(fixture("server2.crt"), &cert).unwrap();
    std::fs::copy(fixture("server2.key.insecure"), &key).unwrap();
    assert_eq!(served_cn(srv.addr).await.as_deref(), Some("example2.com"));

    // A half-done rotation (certificate without its key) keeps serving the last good pair.
    std::fs::copy(fixture("server3.crt"), &cert).unwrap();
    assert_eq!(served_cn(srv.addr).await.as_deref(), Some("example2.com"));
    // Completing it switches over.
    std::fs::copy(fixture("server3.key.insecure"), &key).unwrap();
    assert_eq!(served_cn(srv.addr).await, None); // server3 has no CN
}

#[tokio::test]
async fn client_cert_rotation_on_outgoing_connections() {
    if no_fixtures() {
        return;
    }
    let srv = start_server(server_info(true).server_config().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("c.crt");
    let key = dir.path().join("c.key");
    std::fs::copy(fixture("server.crt"), &cert).unwrap();
    std::fs::copy(fixture("server.key.insecure"), &key).unwrap();
    let client = TlsInfo {
        cert_file: cert.clone(),
        key_file: key.clone(),
        trusted_ca_file: fixture("ca.crt"),
        ..TlsInfo::default()
    }
    .client_config(&[b"h2"])
    .unwrap();
    assert_eq!(
        talk(client.clone(), srv.addr, "localhost").await.unwrap(),
        "cn=example.com,alpn=h2"
    );
    std::fs::copy(fixture("server2.crt"), &cert).unwrap();
    std::fs::copy(fixture("server2.key.insecure"), &key).unwrap();
    assert_eq!(
        talk(client, srv.addr, "localhost").await.unwrap(),
        "cn=example2.com,alpn=h2"
    );
}

#[tokio::test]
async fn plaintext_and_silent_clients_do_not_stop_the_loop() {
    if no_fixtures() {
        return;
    }
    let acceptor = TlsAcceptor::new(server_info(false).server_config().unwrap())
        .with_handshake_timeout(Duration::from_millis(300));
    let srv = start_server_with(acceptor).await;

    // Plain HTTP to a TLS port.
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    let f = srv.wait_failures(1).await;
    assert_eq!(
        f[0].error,
        "tls: first record does not look like a TLS handshake"
    );

    // Connect and close immediately.
    drop(TcpStream::connect(srv.addr).await.unwrap());
    let f = srv.wait_failures(2).await;
    assert_eq!(f[1].error, "EOF");

    // Connect and say nothing: times out.
    let _silent = TcpStream::connect(srv.addr).await.unwrap();
    let f = srv.wait_failures(3).await;
    assert!(f[2].error.contains("timed out"), "{}", f[2].error);

    // Random garbage that looks like a TLS record header.
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        .await
        .unwrap();
    let f = srv.wait_failures(4).await;
    assert_eq!(f.len(), 4);

    // Still serving.
    talk(ca_client(None), srv.addr, "localhost").await.unwrap();
}

#[tokio::test]
async fn peer_san_check_in_acceptor() {
    if no_fixtures() {
        return;
    }
    let acceptor =
        TlsAcceptor::new(server_info(true).server_config().unwrap()).with_peer_san_check(true);
    let srv = start_server_with(acceptor).await;

    // From 127.0.0.1: matches the IP SAN.
    talk(ca_client(Some("server-ip")), srv.addr, "localhost")
        .await
        .unwrap();

    // From 127.0.0.2: server-ip.crt (IP SAN 127.0.0.1 only) is rejected.
    let from = |ip: &str| {
        let s = TcpSocket::new_v4().unwrap();
        s.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        s
    };
    let tcp = from("127.0.0.2").connect(srv.addr).await.unwrap();
    assert!(talk_over(ca_client(Some("server-ip")), tcp, "localhost")
        .await
        .is_err());
    let f = srv.wait_failures(1).await;
    assert_eq!(
        f[0].error,
        "x509: certificate is valid for 127.0.0.1, not 127.0.0.2"
    );
    assert!(f[0].remote.starts_with("127.0.0.2:"));
    assert!(f[0]
        .to_string()
        .contains("IPAddresses [\"127.0.0.1\"], DNSNames []"));

    // server.crt also has DNS:localhost, which does not resolve to 127.0.0.2.
    let tcp = from("127.0.0.2").connect(srv.addr).await.unwrap();
    assert!(talk_over(ca_client(Some("server")), tcp, "localhost")
        .await
        .is_err());
    let f = srv.wait_failures(2).await;
    assert!(
        f[1].error
            .starts_with("tls: \"127.0.0.2\" does not match any of DNSNames [\"localhost\"]"),
        "{}",
        f[1].error
    );
}

#[tokio::test]
async fn tls12_with_selected_cipher_suite() {
    if no_fixtures() {
        return;
    }
    let mut info = server_info(false);
    info.cipher_suites = vec!["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".into()];
    let srv = start_server(info.server_config().unwrap()).await;

    // A TLS 1.2-only client with a different suite cannot connect.
    let tls12_client = |suite: oxcd_tls::rustls::SupportedCipherSuite| {
        let mut p = oxcd_tls::rustls::crypto::ring::default_provider();
        p.cipher_suites = vec![suite];
        let mut roots = oxcd_tls::rustls::RootCertStore::empty();
        let pem = std::fs::read(fixture("ca.crt")).unwrap();
        roots.add(rustls_pemfile_certs(&pem).into()).unwrap();
        std::sync::Arc::new(
            oxcd_tls::rustls::ClientConfig::builder_with_provider(p.into())
                .with_protocol_versions(&[&oxcd_tls::rustls::version::TLS12])
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    };
    use oxcd_tls::rustls::crypto::ring::cipher_suite as cs;
    assert!(talk(
        tls12_client(cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
        srv.addr,
        "localhost"
    )
    .await
    .is_err());
    let f = srv.wait_failures(1).await;
    assert_eq!(
        f[0].error,
        "tls: no cipher suite supported by both client and server"
    );
    talk(
        tls12_client(cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
        srv.addr,
        "localhost",
    )
    .await
    .unwrap();
    // TLS 1.3 is not restricted by the list.
    talk(ca_client(None), srv.addr, "localhost").await.unwrap();
}
