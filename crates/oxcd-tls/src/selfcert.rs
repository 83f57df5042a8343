//! Auto-TLS: a self-signed certificate in `<dir>/cert.pem` + `<dir>/key.pem`.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};

use crate::{load, TlsError, TlsInfo};

const VALIDITY: time::Duration = time::Duration::days(365);

/// The host part of a listen URL's `host:port` (or a bare host), `None` when empty.
fn host_of(hostport: &str) -> Option<String> {
    if let Ok(sa) = hostport.parse::<SocketAddr>() {
        return Some(sa.ip().to_string());
    }
    if let Ok(ip) = hostport.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let host = if let Some(rest) = hostport.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(h, _)| h)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => hostport,
        }
    };
    (!host.is_empty()).then(|| host.to_string())
}

fn sans(hosts: &[String]) -> Result<Vec<SanType>, TlsError> {
    let mut out: Vec<SanType> = Vec::new();
    for h in hosts.iter().filter_map(|h| host_of(h)) {
        let san = match h.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                h.as_str()
                    .try_into()
                    .map_err(|e| TlsError::CertGen(format!("invalid host {h:?}: {e}")))?,
            ),
        };
        if !out.contains(&san) {
            out.push(san);
        }
    }
    Ok(out)
}

fn generate(hosts: &[String]) -> Result<(String, String), TlsError> {
    let gen_err = |e: rcgen::Error| TlsError::CertGen(e.to_string());
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).map_err(gen_err)?;

    let mut serial = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut serial)
        .map_err(|_| TlsError::CertGen("cannot generate random serial number".into()))?;

    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "etcd");
    let now = time::OffsetDateTime::now_utc();

    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.not_before = now;
    params.not_after = now + VALIDITY;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.is_ca = IsCa::ExplicitNoCa;
    params.subject_alt_names = sans(hosts)?;

    let cert = params.self_signed(&key).map_err(gen_err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `data` to `path` through a temporary file and a rename, with the given mode.
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("pem.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts
        .open(&tmp)
        .map_err(|e| TlsError::io("create", &tmp, e))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| TlsError::io("write", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| TlsError::io("rename", path, e))
}

fn create_dir(dir: &Path) -> Result<(), TlsError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|e| TlsError::io("mkdir", dir, e))
}

pub(crate) fn self_cert(dir: &Path, hosts: &[String]) -> Result<TlsInfo, TlsError> {
    create_dir(dir)?;
    let cert_path: PathBuf = dir.join("cert.pem");
    let key_path: PathBuf = dir.join("key.pem");
    let info = TlsInfo {
        cert_file: cert_path.clone(),
        key_file: key_path.clone(),
        auto: true,
        ..TlsInfo::default()
    };

    if cert_path.exists() && key_path.exists() {
        let provider = rustls::crypto::ring::default_provider();
        match load::certified_key(&cert_path, &key_path, &provider) {
            Ok(_) => return Ok(info),
            Err(e) => tracing::warn!(
                pkg = "transport",
                "existing auto TLS certificate is not usable, generating a new one: {e}"
            ),
        }
    }

    let (cert_pem, key_pem) = generate(hosts)?;
    write_file(&cert_path, cert_pem.as_bytes(), 0o644)?;
    tracing::info!(
        pkg = "transport",
        "created cert file {}",
        cert_path.display()
    );
    write_file(&key_path, key_pem.as_bytes(), 0o600)?;
    tracing::info!(pkg = "transport", "created key file {}", key_path.display());
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn hosts_from_listen_urls() {
        assert_eq!(host_of("127.0.0.1:2380").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("[::1]:2380").as_deref(), Some("::1"));
        assert_eq!(host_of("::1").as_deref(), Some("::1"));
        assert_eq!(host_of("localhost:2379").as_deref(), Some("localhost"));
        assert_eq!(host_of("example.com").as_deref(), Some("example.com"));
        assert_eq!(host_of(":2380"), None);
    }
}
