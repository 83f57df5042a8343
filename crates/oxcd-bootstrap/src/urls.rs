//! URL lists the way etcd's `types.NewURLs` reads them.
//!
//! Every URL-list setting is a comma-separated string. Each item is trimmed, parsed with the
//! rules of Go's `net/url` (the subset that matters for `scheme://host:port`), checked (scheme,
//! `host:port`, no path) and the list is sorted by the Go `String()` form of each URL.
//!
//! The values are kept as [`url::Url`]. Because that crate normalises some things Go keeps as
//! written (host case for http/https, a default port such as `:80`), [`go_string`] rebuilds the
//! Go text form, which is what member IDs and all comparisons use.

use std::collections::BTreeMap;
use std::net::IpAddr;

use url::Url;

/// name → peer URLs, as in `--initial-cluster`.
pub type UrlsMap = BTreeMap<String, Vec<Url>>;

/// The pieces of a URL as Go's `net/url` splits them.
#[derive(Debug, Default)]
struct GoUrl {
    scheme: String,
    opaque: bool,
    host: String,
    path: String,
}

fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}

/// Splits the scheme off like Go's `getScheme`.
fn go_scheme(raw: &str) -> Result<(String, &str), &'static str> {
    for (i, c) in raw.char_indices() {
        if c.is_ascii_alphabetic() {
            continue;
        }
        if c.is_ascii_digit() || c == '+' || c == '-' || c == '.' {
            if i == 0 {
                return Ok((String::new(), raw));
            }
            continue;
        }
        if c == ':' {
            if i == 0 {
                return Err("missing protocol scheme");
            }
            return Ok((raw[..i].to_ascii_lowercase(), &raw[i + 1..]));
        }
        return Ok((String::new(), raw));
    }
    Ok((String::new(), raw))
}

fn valid_optional_port(port: &str) -> bool {
    if port.is_empty() {
        return true;
    }
    match port.strip_prefix(':') {
        Some(p) => p.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Go's `parseHost` checks (brackets and the port syntax).
fn check_go_host(raw: &str, host: &str) -> Result<(), String> {
    if let Some(rest) = host.strip_prefix('[') {
        let Some(close) = rest.find(']') else {
            return Err(format!("parse {raw:?}: missing ']' in host"));
        };
        let after = &rest[close + 1..];
        if !valid_optional_port(after) {
            return Err(format!("parse {raw:?}: invalid port {after:?} after host"));
        }
        return Ok(());
    }
    if let Some(i) = host.rfind(':') {
        let port = &host[i..];
        if !valid_optional_port(port) {
            return Err(format!("parse {raw:?}: invalid port {port:?} after host"));
        }
    }
    if let Some(c) = host
        .chars()
        .find(|c| c.is_control() || *c == ' ' || *c == '"' || *c == '<' || *c == '>')
    {
        return Err(format!(
            "parse {raw:?}: invalid character {:?} in host name",
            c.to_string()
        ));
    }
    Ok(())
}

fn parse_go(raw: &str) -> Result<GoUrl, String> {
    if raw.chars().any(|c| (c as u32) < 0x20 || c as u32 == 0x7f) {
        return Err(format!(
            "parse {raw:?}: net/url: invalid control character in URL"
        ));
    }
    let without_frag = raw.split_once('#').map_or(raw, |(a, _)| a);
    let (scheme, rest) = go_scheme(without_frag).map_err(|e| format!("parse {raw:?}: {e}"))?;
    let rest = rest.split_once('?').map_or(rest, |(a, _)| a);
    let mut u = GoUrl {
        scheme,
        ..GoUrl::default()
    };
    if !rest.starts_with('/') {
        if !u.scheme.is_empty() {
            u.opaque = true;
            return Ok(u);
        }
        let first_segment = rest.split_once('/').map_or(rest, |(a, _)| a);
        if first_segment.contains(':') {
            return Err(format!(
                "parse {raw:?}: first path segment in URL cannot contain colon"
            ));
        }
        u.path = rest.to_string();
        return Ok(u);
    }
    let mut rest = rest;
    if rest.starts_with("//") && (!u.scheme.is_empty() || !rest.starts_with("///")) {
        let auth_and_path = &rest[2..];
        let (authority, path) = match auth_and_path.find('/') {
            Some(i) => (&auth_and_path[..i], &auth_and_path[i..]),
            None => (auth_and_path, ""),
        };
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        check_go_host(raw, host)?;
        u.host = host.to_string();
        rest = path;
    }
    u.path = rest.to_string();
    Ok(u)
}

/// Go's `net.SplitHostPort`, reduced to "is this host:port" plus the host part.
pub fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let close = rest.find(']')?;
        let host = &rest[..close];
        let port = rest[close + 1..].strip_prefix(':')?;
        if port.contains(':') || port.contains('[') || port.contains(']') {
            return None;
        }
        return Some((host, port));
    }
    let i = hostport.rfind(':')?;
    let (host, port) = (&hostport[..i], &hostport[i + 1..]);
    if host.contains(':') || host.contains('[') || host.contains(']') || port.contains('[') {
        return None;
    }
    Some((host, port))
}

/// One list item that passed etcd's checks.
enum Checked {
    Url(Url),
    /// `scheme://:port`: valid for etcd's parser, but not representable as a [`Url`] for
    /// http/https; carries the Go text form. Validation rejects such URLs later.
    EmptyHost(String),
}

fn check_url(item: &str) -> Result<Checked, String> {
    let input = item.trim_matches(is_go_space);
    let g = parse_go(input)?;
    if !matches!(g.scheme.as_str(), "http" | "https" | "unix" | "unixs") {
        return Err(format!(
            "URL scheme must be http, https, unix, or unixs: {input}"
        ));
    }
    let Some((host, _)) = split_host_port(&g.host).filter(|_| !g.opaque) else {
        return Err(format!(
            "URL address does not have the form \"host:port\": {input}"
        ));
    };
    if !g.path.is_empty() {
        return Err(format!("URL must not contain a path: {input}"));
    }
    if host.is_empty() && matches!(g.scheme.as_str(), "http" | "https") {
        return Ok(Checked::EmptyHost(format!("{}://{}", g.scheme, g.host)));
    }
    Url::parse(input)
        .map(Checked::Url)
        .map_err(|e| format!("parse {input:?}: {e}"))
}

/// Parses and checks one URL the way `types.NewURLs` does for each list item.
pub fn parse_url(item: &str) -> Result<Url, String> {
    match check_url(item)? {
        Checked::Url(u) => Ok(u),
        Checked::EmptyHost(s) => Err(format!("parse {s:?}: empty host")),
    }
}

/// A URL-list flag value as etcd's parser accepts it.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlList {
    /// The representable URLs, sorted.
    pub urls: Vec<Url>,
    /// Go text form of every item (including empty-host ones), sorted.
    pub texts: Vec<String>,
    /// The first item with an empty host (`http://:2380`), if any.
    pub empty_host: Option<String>,
}

/// Like [`parse_urls`], but keeps track of `scheme://:port` items (which etcd accepts while
/// parsing and rejects in validation).
pub fn parse_url_list(s: &str) -> Result<UrlList, String> {
    let mut urls = Vec::new();
    let mut texts = Vec::new();
    let mut empty = Vec::new();
    for item in s.split(',') {
        match check_url(item)? {
            Checked::Url(u) => {
                texts.push(go_string(&u));
                urls.push(u);
            }
            Checked::EmptyHost(t) => {
                texts.push(t.clone());
                empty.push(t);
            }
        }
    }
    sort_urls(&mut urls);
    texts.sort();
    empty.sort();
    Ok(UrlList {
        urls,
        texts,
        empty_host: empty.into_iter().next(),
    })
}

/// `types.NewURLs(strings.Split(s, ","))`: parses every item and sorts by the Go text form.
/// Duplicates are kept (etcd keeps them too).
pub fn parse_urls(s: &str) -> Result<Vec<Url>, String> {
    let mut out = Vec::new();
    for item in s.split(',') {
        out.push(parse_url(item)?);
    }
    sort_urls(&mut out);
    Ok(out)
}

/// Sorts by the Go text form.
pub fn sort_urls(urls: &mut [Url]) {
    urls.sort_by_cached_key(go_string);
}

/// The text form etcd uses for a URL (Go's `url.URL.String()` for `scheme://host:port`):
/// no trailing slash, explicit port.
pub fn go_string(u: &Url) -> String {
    let mut s = String::with_capacity(32);
    s.push_str(u.scheme());
    s.push_str("://");
    if !u.username().is_empty() || u.password().is_some() {
        s.push_str(u.username());
        if let Some(p) = u.password() {
            s.push(':');
            s.push_str(p);
        }
        s.push('@');
    }
    s.push_str(u.host_str().unwrap_or(""));
    s.push(':');
    if let Some(p) = u.port_or_known_default() {
        s.push_str(&p.to_string());
    }
    let path = u.path();
    if path != "/" {
        s.push_str(path);
    }
    if let Some(q) = u.query() {
        s.push('?');
        s.push_str(q);
    }
    if let Some(f) = u.fragment() {
        s.push('#');
        s.push_str(f);
    }
    s
}

/// The Go text forms, in list order.
pub fn go_strings(urls: &[Url]) -> Vec<String> {
    urls.iter().map(go_string).collect()
}

/// The list joined by `,`, like `types.URLs.String()`.
pub fn join(urls: &[Url]) -> String {
    go_strings(urls).join(",")
}

/// The host as Go's `SplitHostPort` returns it (no brackets around IPv6).
pub fn host_of(u: &Url) -> String {
    match u.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => String::new(),
    }
}

/// The port as text (known default filled in).
pub fn port_of(u: &Url) -> String {
    u.port_or_known_default()
        .map(|p| p.to_string())
        .unwrap_or_default()
}

/// The host parsed as an IP literal, if it is one.
pub fn ip_of(u: &Url) -> Option<IpAddr> {
    match u.host()? {
        url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
        url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
        url::Host::Domain(d) => d.parse().ok(),
    }
}

/// Parses `name=url[,name=url…]` like `types.NewURLsMap`. An item without `=` gives that name an
/// empty URL, which then fails the scheme check.
pub fn parse_urls_map(s: &str) -> Result<UrlsMap, String> {
    let mut raw: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in s.split(',') {
        if item.is_empty() {
            continue;
        }
        let (name, value) = item.split_once('=').unwrap_or((item, ""));
        raw.entry(name.to_string())
            .or_default()
            .push(value.to_string());
    }
    let mut out = UrlsMap::new();
    for (name, values) in raw {
        let mut urls = Vec::with_capacity(values.len());
        for v in &values {
            urls.push(parse_url(v)?);
        }
        sort_urls(&mut urls);
        out.insert(name, urls);
    }
    Ok(out)
}

/// `types.URLsMap.String()`: every `name=url` pair, sorted, joined by `,`.
pub fn urls_map_string(m: &UrlsMap) -> String {
    let mut pairs: Vec<String> = m
        .iter()
        .flat_map(|(n, us)| us.iter().map(move |u| format!("{n}={}", go_string(u))))
        .collect();
    pairs.sort();
    pairs.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_sorts() {
        let us = parse_urls(" http://127.0.0.2:2380 , http://127.0.0.1:2380").unwrap();
        assert_eq!(join(&us), "http://127.0.0.1:2380,http://127.0.0.2:2380");
        let u = parse_url("HTTP://10.0.0.1:80").unwrap();
        assert_eq!(go_string(&u), "http://10.0.0.1:80");
        let u = parse_url("https://[::1]:2379").unwrap();
        assert_eq!(go_string(&u), "https://[::1]:2379");
        assert_eq!(host_of(&u), "::1");
        let u = parse_url("unix://localhost:12345").unwrap();
        assert_eq!(go_string(&u), "unix://localhost:12345");
    }

    #[test]
    fn errors_match_etcd() {
        assert_eq!(
            parse_url("foo://x:1").unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: foo://x:1"
        );
        assert_eq!(
            parse_url("").unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: "
        );
        assert_eq!(
            parse_url("http://10.0.0.1").unwrap_err(),
            "URL address does not have the form \"host:port\": http://10.0.0.1"
        );
        assert_eq!(
            parse_url("http://a:1/").unwrap_err(),
            "URL must not contain a path: http://a:1/"
        );
        assert_eq!(
            parse_url("10.0.0.1:2380").unwrap_err(),
            "parse \"10.0.0.1:2380\": first path segment in URL cannot contain colon"
        );
        assert_eq!(
            parse_url("http://h:abc").unwrap_err(),
            "parse \"http://h:abc\": invalid port \":abc\" after host"
        );
        assert_eq!(
            parse_url(":x").unwrap_err(),
            "parse \":x\": missing protocol scheme"
        );
        assert!(parse_url("http:foo").unwrap_err().contains("host:port"));
        let l = parse_url_list("http://:2380,http://127.0.0.1:1").unwrap();
        assert_eq!(l.urls.len(), 1);
        assert_eq!(l.empty_host.as_deref(), Some("http://:2380"));
        assert_eq!(l.texts, vec!["http://127.0.0.1:1", "http://:2380"]);
    }

    #[test]
    fn urls_map() {
        let m = parse_urls_map("b=http://127.0.0.2:1,a=http://127.0.0.1:1,a=http://127.0.0.0:1")
            .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["a"].len(), 2);
        assert_eq!(
            urls_map_string(&m),
            "a=http://127.0.0.0:1,a=http://127.0.0.1:1,b=http://127.0.0.2:1"
        );
        assert_eq!(
            parse_urls_map("a").unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: "
        );
        assert!(parse_urls_map("").unwrap().is_empty());
    }
}
