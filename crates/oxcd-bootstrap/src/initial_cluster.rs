//! The initial member set of a new cluster and the checks made before bootstrapping it.
//!
//! Messages follow the v3.3 clustering guide where it differs from etcd 3.4
//! (`<name> not listed in the initial cluster config`, `error setting up initial cluster:
//! <name> has different advertised URLs in the cluster and advertised peer URLs list`).

use std::collections::BTreeSet;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use url::Url;

use crate::config::{ClusterState, Config};
use crate::error::ConfigError;
use crate::ids::{cluster_id, id_to_hex, member_id};
use crate::urls::{
    go_string, go_strings, host_of, ip_of, parse_urls_map, port_of, urls_map_string, UrlsMap,
};

/// One member of the initial cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMember {
    pub id: u64,
    pub name: String,
    /// Peer URLs in etcd's text form (`http://10.0.1.10:2380`, no trailing slash), sorted.
    pub peer_urls: Vec<String>,
}

/// The members a fresh member bootstraps with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialCluster {
    /// Sorted by ID (the order of raft's bootstrap entries).
    pub members: Vec<InitialMember>,
    /// The cluster ID of this member set. For `--initial-cluster-state existing` it is only
    /// provisional: a joining member takes the running cluster's ID.
    pub cluster_id: u64,
    /// This member's ID.
    pub local_id: u64,
    /// The token the IDs were computed with (`--initial-cluster-token`, or the discovery URL).
    pub token: String,
}

/// Resolves a DNS host name for the advertised-URL comparison.
pub trait Resolver {
    /// The first address of `host` (an IPv4 one if there is one).
    fn resolve(&self, host: &str, port: &str) -> Result<IpAddr, String>;
}

/// The system resolver; a failed lookup is retried every second until `timeout` (etcd: 30 s).
pub struct SystemResolver {
    pub timeout: Duration,
}

impl Default for SystemResolver {
    fn default() -> Self {
        SystemResolver {
            timeout: Duration::from_secs(30),
        }
    }
}

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str, port: &str) -> Result<IpAddr, String> {
        let deadline = Instant::now() + self.timeout;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("lookup tcp/{port}: unknown port"))?;
        loop {
            match (host, port).to_socket_addrs() {
                Ok(addrs) => {
                    let addrs: Vec<_> = addrs.map(|a| a.ip()).collect();
                    if let Some(ip) = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
                        return Ok(*ip);
                    }
                    if Instant::now() >= deadline {
                        return Err(format!("lookup {host}: no such host"));
                    }
                }
                Err(e) => {
                    if Instant::now() >= deadline {
                        return Err(format!("lookup {host}: {e}"));
                    }
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Go's `%q` of a string list.
fn quote_list(l: &[String]) -> String {
    let items: Vec<String> = l.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

fn resolved(u: &Url, r: &dyn Resolver) -> Result<String, String> {
    let text = go_string(u);
    if u.scheme() == "unix" || u.scheme() == "unixs" {
        return Ok(text);
    }
    let host = host_of(u);
    if host == "localhost" || ip_of(u).is_some() {
        return Ok(text);
    }
    let port = port_of(u);
    let ip = r
        .resolve(&host, &port)
        .map_err(|e| format!("failed to resolve {text:?} ({e})"))?;
    let hostport = match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    };
    Ok(format!("{}://{hostport}", u.scheme()))
}

/// etcd's `URLStringsEqual`: equal sorted lists, or equal after resolving DNS names
/// (`localhost` and IP literals are left alone). The error explains the difference.
pub fn urls_equal(a: &[Url], b: &[Url], r: &dyn Resolver) -> Result<(), String> {
    let (mut sa, mut sb) = (go_strings(a), go_strings(b));
    if sa.len() != sb.len() {
        return Err(format!(
            "len({}) != len({})",
            quote_list(&sa),
            quote_list(&sb)
        ));
    }
    sa.sort();
    sb.sort();
    if sa == sb {
        return Ok(());
    }
    let mut ra = a
        .iter()
        .map(|u| resolved(u, r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rb = b
        .iter()
        .map(|u| resolved(u, r))
        .collect::<Result<Vec<_>, _>>()?;
    ra.sort();
    rb.sort();
    for (x, y) in ra.iter().zip(rb.iter()) {
        if x != y {
            return Err(format!("resolved urls: {x:?} != {y:?}"));
        }
    }
    Ok(())
}

/// The peer-URL map and token used to bootstrap: the static `--initial-cluster`, or for
/// `--discovery` a one-member map of this member's advertised URLs with the discovery URL as
/// token. For `--discovery-srv` the caller passes the map built from the SRV records.
pub fn peer_urls_map_and_token(
    cfg: &Config,
    srv_map: Option<UrlsMap>,
) -> Result<(UrlsMap, String), ConfigError> {
    if !cfg.discovery.is_empty() {
        let mut m = UrlsMap::new();
        m.insert(cfg.name.clone(), cfg.initial_advertise_peer_urls.clone());
        return Ok((m, cfg.discovery.clone()));
    }
    if !cfg.discovery_srv.is_empty() {
        return match srv_map {
            Some(m) => Ok((m, cfg.initial_cluster_token.clone())),
            None => Err(ConfigError::UnsupportedBootstrap),
        };
    }
    let m = parse_urls_map(&cfg.initial_cluster).map_err(ConfigError::InitialClusterSetup)?;
    Ok((m, cfg.initial_cluster_token.clone()))
}

fn has_duplicate_url(m: &UrlsMap) -> bool {
    let mut seen = BTreeSet::new();
    m.values().flatten().any(|u| !seen.insert(go_string(u)))
}

/// Checks a static/discovery initial cluster for `cfg` (state `new` or `existing`) and
/// computes the member IDs and the cluster ID. Uses the system resolver.
pub fn initial_cluster(cfg: &Config) -> Result<InitialCluster, ConfigError> {
    initial_cluster_with(cfg, None, &SystemResolver::default())
}

/// [`initial_cluster`] with an SRV-derived map (for `--discovery-srv`) and a resolver.
pub fn initial_cluster_with(
    cfg: &Config,
    srv_map: Option<UrlsMap>,
    resolver: &dyn Resolver,
) -> Result<InitialCluster, ConfigError> {
    let (map, token) = peer_urls_map_and_token(cfg, srv_map)?;
    verify(cfg, &map, resolver)?;
    members_from_map(&map, &token, &cfg.name)
}

/// The bootstrap checks (etcd's order), with the guide's wording.
pub fn verify(cfg: &Config, map: &UrlsMap, resolver: &dyn Resolver) -> Result<(), ConfigError> {
    let Some(local) = map.get(&cfg.name) else {
        return Err(ConfigError::NotInInitialCluster(cfg.name.clone()));
    };
    match cfg.initial_cluster_state {
        ClusterState::New => {
            if urls_equal(&cfg.initial_advertise_peer_urls, local, resolver).is_err() {
                return Err(ConfigError::DifferentAdvertisedUrls(cfg.name.clone()));
            }
            if has_duplicate_url(map) {
                return Err(ConfigError::DuplicateUrl(urls_map_string(map)));
            }
            if map.is_empty() && cfg.discovery.is_empty() {
                return Err(ConfigError::InitialClusterUnset);
            }
        }
        ClusterState::Existing => {
            if has_duplicate_url(map) {
                return Err(ConfigError::DuplicateUrl(urls_map_string(map)));
            }
            if !cfg.discovery.is_empty() {
                return Err(ConfigError::DiscoveryWithExisting);
            }
        }
    }
    Ok(())
}

/// Members (sorted by ID) and cluster ID of a name → URLs map.
pub fn members_from_map(
    map: &UrlsMap,
    token: &str,
    local_name: &str,
) -> Result<InitialCluster, ConfigError> {
    let mut members: Vec<InitialMember> = Vec::with_capacity(map.len());
    for (name, urls) in map {
        let id = member_id(urls, token, None);
        if let Some(m) = members.iter().find(|m| m.id == id) {
            return Err(ConfigError::IdenticalMemberId(member_dump(m)));
        }
        if id == 0 {
            return Err(ConfigError::ZeroMemberId);
        }
        members.push(InitialMember {
            id,
            name: name.clone(),
            peer_urls: go_strings(urls),
        });
    }
    members.sort_by_key(|m| m.id);
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    let local_id = members
        .iter()
        .find(|m| m.name == local_name)
        .map_or(0, |m| m.id);
    Ok(InitialCluster {
        cluster_id: cluster_id(&ids),
        members,
        local_id,
        token: token.to_string(),
    })
}

/// etcd's `%v` dump of a member.
fn member_dump(m: &InitialMember) -> String {
    format!(
        "&{{ID:{} RaftAttributes:{{PeerURLs:[{}] IsLearner:false}} Attributes:{{Name:{} ClientURLs:[]}}}}",
        id_to_hex(m.id),
        m.peer_urls.join(" "),
        m.name
    )
}
