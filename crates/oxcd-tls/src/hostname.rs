//! Host name / IP checks against certificate SANs (Go's `VerifyHostname` semantics) and the
//! peer port's client-certificate SAN rule.

use std::net::IpAddr;

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The SANs and CN of a certificate, as needed by the checks here.
pub(crate) struct Names {
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) dns: Vec<String>,
    pub(crate) has_san_ext: bool,
    pub(crate) cn: Option<String>,
}

pub(crate) fn names_of(cert: &X509Certificate<'_>) -> Names {
    let mut n = Names {
        ips: Vec::new(),
        dns: Vec::new(),
        has_san_ext: false,
        cn: cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned),
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        n.has_san_ext = true;
        for gn in &san.value.general_names {
            match gn {
                GeneralName::DNSName(s) => n.dns.push((*s).to_owned()),
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        n.ips.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        n.ips.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    n
}

pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| format!("x509: malformed certificate: {e}"))
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub(crate) fn go_quote_list<T: ToString>(items: &[T]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("{:?}", s.to_string()))
        .collect();
    format!("[{}]", quoted.join(" "))
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// Go's `matchHostnames`: case-insensitive, a trailing dot on the host is ignored, and a
/// leading `*` label of the pattern matches exactly one label.
fn match_hostnames(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if pattern.is_empty() || host.is_empty() {
        return false;
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    p.len() == h.len()
        && p.iter()
            .zip(&h)
            .enumerate()
            .all(|(i, (pp, hp))| (i == 0 && *pp == "*") || pp == hp)
}

fn hostname_error(names: &Names, host: &str) -> String {
    if !names.has_san_ext {
        if let Some(cn) = &names.cn {
            if match_hostnames(cn, host) {
                return "x509: certificate relies on legacy Common Name field, use SANs instead"
                    .to_string();
            }
        }
    }
    let valid = if host.parse::<IpAddr>().is_ok() {
        if names.ips.is_empty() {
            return format!(
                "x509: cannot validate certificate for {host} because it doesn't contain any IP SANs"
            );
        }
        names
            .ips
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        names.dns.join(", ")
    };
    if valid.is_empty() {
        return format!("x509: certificate is not valid for any names, but wanted to match {host}");
    }
    format!("x509: certificate is valid for {valid}, not {host}")
}

fn verify_names(names: &Names, host: &str) -> Result<(), String> {
    let candidate = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = candidate.parse::<IpAddr>() {
        if names.ips.iter().any(|c| same_ip(*c, ip)) {
            return Ok(());
        }
        return Err(hostname_error(names, candidate));
    }
    if names
        .dns
        .iter()
        .any(|pattern| match_hostnames(pattern, host))
    {
        return Ok(());
    }
    Err(hostname_error(names, host))
}

/// Checks that the DER certificate is valid for `host` the way Go's
/// `x509.Certificate.VerifyHostname` does (this is what `--*-cert-allowed-hostname` uses):
/// an IP literal (optionally in `[]`) must equal one of the IP SANs; a name must match one of
/// the DNS SANs, case-insensitively, with a leading `*.` label matching one label. The
/// Subject CN is never used. The error text is Go's.
pub fn verify_hostname(cert_der: &[u8], host: &str) -> Result<(), String> {
    let cert = parse(cert_der)?;
    verify_names(&names_of(&cert), host)
}

/// The IP part of etcd's peer-port client-certificate SAN check: a certificate with
/// neither IP nor DNS SANs is accepted; with IP SANs, `remote_ip` (the TCP peer of the
/// connection) must be one of them.
///
/// A certificate with DNS SANs whose IP SANs do not match fails here with etcd's text
/// `tls: "<ip>" does not match any of DNSNames [..]`, because matching DNS SANs needs name
/// lookups; use [`verify_peer_client_san`], which does the forward lookups.
pub fn check_peer_client_san(cert_der: &[u8], remote_ip: IpAddr) -> Result<(), String> {
    let cert = parse(cert_der)?;
    let names = names_of(&cert);
    match check_ip_part(&names, remote_ip) {
        SanOutcome::Accept => Ok(()),
        SanOutcome::Reject(e) => Err(e),
        SanOutcome::NeedDns => Err(dns_mismatch(&names, remote_ip, None)),
    }
}

enum SanOutcome {
    Accept,
    Reject(String),
    NeedDns,
}

fn check_ip_part(names: &Names, remote_ip: IpAddr) -> SanOutcome {
    if names.ips.is_empty() && names.dns.is_empty() {
        return SanOutcome::Accept;
    }
    let host = remote_ip.to_canonical().to_string();
    if !names.ips.is_empty() {
        match verify_names(names, &host) {
            Ok(()) => return SanOutcome::Accept,
            Err(e) if names.dns.is_empty() => return SanOutcome::Reject(e),
            Err(_) => {}
        }
    }
    SanOutcome::NeedDns
}

fn dns_mismatch(names: &Names, remote_ip: IpAddr, lookup_err: Option<String>) -> String {
    let host = remote_ip.to_canonical().to_string();
    let mut s = format!(
        "tls: {host:?} does not match any of DNSNames {}",
        go_quote_list(&names.dns)
    );
    if let Some(e) = lookup_err {
        s.push_str(&format!(" ({e})"));
    }
    s
}

/// etcd's full peer-port client-certificate SAN check: [`check_peer_client_san`], and for
/// certificates with DNS SANs a forward lookup of each non-wildcard DNS SAN, which must
/// resolve to `remote_ip`.
///
/// TODO: etcd first tries a reverse (PTR) lookup of `remote_ip` and compares the names with
/// the SANs (wildcards by suffix); that step is not implemented, so certificates whose
/// only matching SAN is a wildcard are rejected.
pub async fn verify_peer_client_san(cert_der: &[u8], remote_ip: IpAddr) -> Result<(), String> {
    let names = {
        let cert = parse(cert_der)?;
        names_of(&cert)
    };
    match check_ip_part(&names, remote_ip) {
        SanOutcome::Accept => return Ok(()),
        SanOutcome::Reject(e) => return Err(e),
        SanOutcome::NeedDns => {}
    }
    let want = remote_ip.to_canonical();
    let mut last_err = None;
    for name in names.dns.iter().filter(|n| !n.starts_with("*.")) {
        match tokio::net::lookup_host((name.as_str(), 0)).await {
            Ok(addrs) => {
                if addrs.into_iter().any(|a| a.ip().to_canonical() == want) {
                    return Ok(());
                }
            }
            Err(e) => last_err = Some(format!("lookup {name}: {e}")),
        }
    }
    Err(dns_mismatch(&names, remote_ip, last_err))
}
