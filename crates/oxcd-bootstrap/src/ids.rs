//! Member and cluster IDs (facts §1): SHA-1, first 8 bytes big-endian.

use sha1::{Digest, Sha1};
use url::Url;

use crate::urls::go_strings;

fn first_u64(digest: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b)
}

/// Member ID from already-rendered peer URL strings (sorted here), the token and, for a member
/// added at runtime, the Unix time in seconds.
pub fn member_id_from_strings(peer_urls: &[String], token: &str, timestamp: Option<u64>) -> u64 {
    let mut sorted: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut h = Sha1::new();
    for u in sorted {
        h.update(u.as_bytes());
    }
    h.update(token.as_bytes());
    if let Some(ts) = timestamp {
        h.update(ts.to_string().as_bytes());
    }
    first_u64(&h.finalize())
}

/// Member ID of a member with these peer URLs. `token` is `--initial-cluster-token`, the whole
/// `--discovery` URL, or "" for a runtime add (then `timestamp` is the Unix time in seconds).
pub fn member_id(peer_urls: &[Url], token: &str, timestamp: Option<u64>) -> u64 {
    member_id_from_strings(&go_strings(peer_urls), token, timestamp)
}

/// Cluster ID of an initial member set (order of `member_ids` does not matter).
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    first_u64(&h.finalize())
}

/// The text form of an ID: lowercase hex, no zero padding.
pub fn id_to_hex(id: u64) -> String {
    format!("{id:x}")
}

/// Parses the hex text form back.
pub fn id_from_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::urls::parse_url;

    fn mid(u: &str, token: &str) -> String {
        id_to_hex(member_id(&[parse_url(u).unwrap()], token, None))
    }

    fn check(token: &str, members: &[(&str, &str)], cluster: &str) {
        let mut ids = Vec::new();
        for (u, want) in members {
            assert_eq!(mid(u, token), *want, "{u}");
            ids.push(id_from_hex(want).unwrap());
        }
        assert_eq!(id_to_hex(cluster_id(&ids)), cluster);
    }

    #[test]
    fn vector_a() {
        check(
            "etcd-cluster-1",
            &[
                ("http://127.0.0.10:2380", "1eee81c0ebacddc"),
                ("http://127.0.0.11:2380", "54e31805acfe9917"),
                ("http://127.0.0.12:2380", "9ba8dd709d019ef4"),
            ],
            "f28eb4fda84fb6e1",
        );
        assert_eq!(
            member_id(
                &[parse_url("http://127.0.0.10:2380").unwrap()],
                "etcd-cluster-1",
                None
            ),
            139303845698915804
        );
        assert_eq!(
            cluster_id(&[
                139303845698915804,
                6116759131555535127,
                11216458347706425076
            ]),
            17478106205414995681
        );
    }

    #[test]
    fn vector_b() {
        check(
            "etcd-cluster-1",
            &[
                ("http://127.0.0.20:2380", "b3e089057b83e8a7"),
                ("http://127.0.0.21:2380", "3b49214626580210"),
                ("http://127.0.0.22:2380", "f6fc24aca64c9e30"),
            ],
            "95dbf7339eeac968",
        );
        assert_eq!(id_from_hex("95dbf7339eeac968"), Some(10798496332632476008));
    }

    #[test]
    fn vector_c_runtime_add() {
        let u = parse_url("http://127.0.0.23:2380").unwrap();
        let id = member_id(&[u], "", Some(1795458520));
        assert_eq!(id, 15351879126808336149);
        assert_eq!(id_to_hex(id), "d50cd4ba64251715");
    }

    #[test]
    fn vector_srv() {
        check(
            "etcd-cluster",
            &[
                ("https://t1.ssl.test:2380", "18076ef957a6e8cd"),
                ("https://t2.ssl.test:2380", "fff883ece00a2fa2"),
                ("https://t3.ssl.test:2380", "6f12fd9594daf9b4"),
            ],
            "12502bf43ecd7623",
        );
        assert_eq!(id_from_hex("12502bf43ecd7623"), Some(1319603018845222435));
    }

    #[test]
    fn vector_discovery() {
        check(
            "http://127.0.0.31:8087/1ba60ac29d0eca6ded381646d8a395ce",
            &[
                ("http://127.0.0.32:2380", "47f69b783da7f113"),
                ("http://127.0.0.33:2380", "f743e139cf1e5375"),
                ("http://127.0.0.34:2380", "1a29c6aca46a93df"),
            ],
            "f1e68e3b02ccac4e",
        );
    }

    #[test]
    fn vector_single() {
        check(
            "etcd-cluster",
            &[("http://127.0.0.1:2390", "75fb7df1dacfc315")],
            "10f01b74d2e6351f",
        );
    }

    #[test]
    fn url_order_does_not_matter() {
        let a = parse_url("http://127.0.0.1:1").unwrap();
        let b = parse_url("http://127.0.0.2:1").unwrap();
        assert_eq!(
            member_id(&[a.clone(), b.clone()], "t", None),
            member_id(&[b, a], "t", None)
        );
        assert_eq!(id_to_hex(0x01eee81c0ebacddc), "1eee81c0ebacddc");
    }
}
