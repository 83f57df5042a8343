//! The flag table, Go-style command-line tokenising, and applying values to [`Config`].
//!
//! etcd uses Go's `flag` package: `-f` and `--f` are the same, values come as `-f=v` or `-f v`,
//! booleans never take a separate argument, and parsing stops at the first non-flag argument.
//! [`tokenize`] reproduces those rules (and their error texts); [`clap_command`] then receives
//! the tokens in a canonical `--name=value` form, and [`ArgMatches::value_source`] tells which
//! flags came from the command line (the basis of the env-variable rules).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::config::{ClusterState, Config, DiscoveryFallback, Logger, ProxyMode};
use crate::error::ConfigError;
use crate::load::Pending;
use crate::urls::{go_string, parse_url_list, parse_urls, UrlList};
use crate::values::{parse_bool, parse_duration, parse_int, parse_uint};
use crate::Diag;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// How a flag's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Str,
    /// Go `uint` / `uint64` (base prefixes allowed).
    Uint,
    /// etcd's own uint32 flag type (strconv error text).
    Uint32,
    /// Go `int` / `int64`.
    Int,
    /// Go `time.Duration` text (`5s`, `2h`).
    Duration,
    /// Comma-separated URLs; the empty string leaves the value unchanged.
    Urls,
    /// Comma-separated URLs or `*`.
    Cors,
    /// Comma-separated strings, de-duplicated and sorted.
    UniqueStrings,
    /// Comma-separated strings, kept as given.
    Strings,
    /// One of a fixed set of words.
    Select(&'static [&'static str]),
    /// A flag from older etcd versions: accepted (like a boolean) and ignored with a warning.
    Ignored,
}

/// One etcd flag.
#[derive(Debug)]
pub struct FlagSpec {
    pub name: &'static str,
    pub kind: Kind,
    /// Default as shown by `--help`.
    pub default: &'static str,
    /// Help text ("" = not listed in `--help`).
    pub help: &'static str,
    /// `--help` section.
    pub section: &'static str,
}

const fn f(
    section: &'static str,
    name: &'static str,
    kind: Kind,
    default: &'static str,
    help: &'static str,
) -> FlagSpec {
    FlagSpec {
        name,
        kind,
        default,
        help,
        section,
    }
}

const MEMBER: &str = "Member";
const CLUSTER: &str = "Clustering";
const SECURITY: &str = "Security";
const AUTH: &str = "Auth";
const PROFILING: &str = "Profiling and monitoring";
const LOGGING: &str = "Logging";
const PROXY: &str = "v2 proxy (v2 API only)";
const EXPERIMENTAL: &str = "Experimental";
const UNSAFE: &str = "Unsafe";
const OTHER: &str = "Other";
const LEGACY: &str = "";

/// Every flag etcd 3.4 defines, in the order of its `--help`.
pub static FLAGS: &[FlagSpec] = &[
    f(OTHER, "config-file", Kind::Str, "", "YAML file with the settings; when given, all other flags and ETCD_* variables are ignored."),
    f(OTHER, "version", Kind::Bool, "false", "Print version information and exit."),
    f(MEMBER, "name", Kind::Str, "default", "Name of this member, as used in --initial-cluster."),
    f(MEMBER, "data-dir", Kind::Str, "${name}.etcd", "Directory holding the member (or proxy) state."),
    f(MEMBER, "wal-dir", Kind::Str, "", "Separate directory for the write-ahead log."),
    f(MEMBER, "snapshot-count", Kind::Uint, "100000", "Committed entries between two snapshots."),
    f(MEMBER, "heartbeat-interval", Kind::Uint, "100", "Raft heartbeat period in milliseconds."),
    f(MEMBER, "election-timeout", Kind::Uint, "1000", "Raft election timeout in milliseconds (at least 5 heartbeats)."),
    f(MEMBER, "initial-election-tick-advance", Kind::Bool, "true", "Skip most election ticks at boot so a leader is found sooner."),
    f(MEMBER, "listen-peer-urls", Kind::Urls, "http://localhost:2380", "Comma-separated URLs to accept peer traffic on (IP addresses or localhost)."),
    f(MEMBER, "listen-client-urls", Kind::Urls, "http://localhost:2379", "Comma-separated URLs to accept client traffic on (IP addresses or localhost)."),
    f(MEMBER, "max-snapshots", Kind::Uint, "5", "Snapshot files to keep (0 keeps all)."),
    f(MEMBER, "max-wals", Kind::Uint, "5", "WAL files to keep (0 keeps all)."),
    f(MEMBER, "quota-backend-bytes", Kind::Int, "0", "Backend size that raises a NOSPACE alarm (0 = 2 GiB)."),
    f(MEMBER, "backend-batch-interval", Kind::Duration, "", "Longest time before a backend transaction is committed."),
    f(MEMBER, "backend-batch-limit", Kind::Int, "0", "Most operations before a backend transaction is committed."),
    f(MEMBER, "max-txn-ops", Kind::Uint, "128", "Most operations allowed in one transaction."),
    f(MEMBER, "max-request-bytes", Kind::Uint, "1572864", "Largest client request accepted, in bytes."),
    f(MEMBER, "max-concurrent-streams", Kind::Uint32, "4294967295", "Most concurrent gRPC streams per client connection."),
    f(MEMBER, "grpc-keepalive-min-time", Kind::Duration, "5s", "Shortest interval a client may ping the server at."),
    f(MEMBER, "grpc-keepalive-interval", Kind::Duration, "2h", "How often the server pings idle connections (0 disables)."),
    f(MEMBER, "grpc-keepalive-timeout", Kind::Duration, "20s", "How long to wait for a ping answer before closing (0 disables)."),
    f(CLUSTER, "initial-advertise-peer-urls", Kind::Urls, "http://localhost:2380", "This member's peer URLs as told to the other members."),
    f(CLUSTER, "initial-cluster", Kind::Str, "default=http://localhost:2380", "Members of a new cluster: name=peerURL[,name=peerURL...]."),
    f(CLUSTER, "initial-cluster-state", Kind::Select(&["new", "existing"]), "new", "'new' to create a cluster, 'existing' to join a running one."),
    f(CLUSTER, "initial-cluster-token", Kind::Str, "etcd-cluster", "Token that makes member and cluster IDs unique to this cluster."),
    f(CLUSTER, "advertise-client-urls", Kind::Urls, "http://localhost:2379", "This member's client URLs as published to clients."),
    f(CLUSTER, "discovery", Kind::Str, "", "Discovery URL used to bootstrap the cluster."),
    f(CLUSTER, "discovery-fallback", Kind::Select(&["proxy", "exit"]), "proxy", "What to do when discovery finds the cluster full: 'exit' or 'proxy'."),
    f(CLUSTER, "discovery-proxy", Kind::Str, "", "HTTP proxy for the discovery traffic."),
    f(CLUSTER, "discovery-srv", Kind::Str, "", "DNS domain whose SRV records describe the cluster."),
    f(CLUSTER, "discovery-srv-name", Kind::Str, "", "Suffix of the SRV service name used for DNS discovery."),
    f(CLUSTER, "strict-reconfig-check", Kind::Bool, "true", "Refuse membership changes that could lose quorum."),
    f(CLUSTER, "experimental-auto-promote-learners", Kind::Bool, "false", "Promote a learner to a voting member once it has caught up with the leader (oxcd)."),
    f(CLUSTER, "pre-vote", Kind::Bool, "false", "Run the raft pre-vote phase before elections."),
    f(CLUSTER, "auto-compaction-retention", Kind::Str, "0", "History to keep when compacting automatically (0 disables)."),
    f(CLUSTER, "auto-compaction-mode", Kind::Str, "periodic", "'periodic' (retention is a duration) or 'revision' (a revision count)."),
    f(CLUSTER, "enable-v2", Kind::Bool, "false", "Serve the v2 API on the client port."),
    f(SECURITY, "cert-file", Kind::Str, "", "Certificate for the client port."),
    f(SECURITY, "key-file", Kind::Str, "", "Private key for the client port."),
    f(SECURITY, "client-cert-auth", Kind::Bool, "false", "Require client certificates on the client port."),
    f(SECURITY, "client-crl-file", Kind::Str, "", "Revocation list checked against client certificates."),
    f(SECURITY, "client-cert-allowed-hostname", Kind::Str, "", "Host name client certificates must be valid for."),
    f(SECURITY, "trusted-ca-file", Kind::Str, "", "CA bundle that verifies client certificates."),
    f(SECURITY, "auto-tls", Kind::Bool, "false", "Serve clients with a generated self-signed certificate."),
    f(SECURITY, "peer-cert-file", Kind::Str, "", "Certificate for peer connections."),
    f(SECURITY, "peer-key-file", Kind::Str, "", "Private key for peer connections."),
    f(SECURITY, "peer-client-cert-auth", Kind::Bool, "false", "Require client certificates from peers."),
    f(SECURITY, "peer-trusted-ca-file", Kind::Str, "", "CA bundle that verifies peer certificates."),
    f(SECURITY, "peer-cert-allowed-cn", Kind::Str, "", "Common name peer certificates must carry."),
    f(SECURITY, "peer-cert-allowed-hostname", Kind::Str, "", "Host name peer certificates must be valid for."),
    f(SECURITY, "peer-auto-tls", Kind::Bool, "false", "Use a generated self-signed certificate between peers."),
    f(SECURITY, "peer-crl-file", Kind::Str, "", "Revocation list checked against peer certificates."),
    f(SECURITY, "cipher-suites", Kind::Strings, "", "Comma-separated TLS cipher suites for clients and peers (empty = library defaults)."),
    f(SECURITY, "experimental-peer-skip-client-san-verification", Kind::Bool, "false", "Do not match peer client certificate SANs against the remote address."),
    f(SECURITY, "cors", Kind::Cors, "*", "Comma-separated CORS origins ('*' allows all)."),
    f(SECURITY, "host-whitelist", Kind::UniqueStrings, "*", "Comma-separated Host header values accepted on plain-HTTP client requests ('*' allows all)."),
    f(AUTH, "auth-token", Kind::Str, "simple", "Auth token type and options ('simple' or 'jwt,...')."),
    f(AUTH, "bcrypt-cost", Kind::Uint, "10", "bcrypt cost for password hashes."),
    f(AUTH, "auth-token-ttl", Kind::Uint, "300", "Lifetime of a simple auth token, in seconds."),
    f(PROFILING, "enable-pprof", Kind::Bool, "false", "Serve runtime profiles under /debug/pprof/ on the client port."),
    f(PROFILING, "metrics", Kind::Str, "basic", "'basic' or 'extensive' (adds histograms)."),
    f(PROFILING, "listen-metrics-urls", Kind::Urls, "", "Extra URLs that serve only /metrics and /health."),
    f(LOGGING, "logger", Kind::Str, "capnslog", "'capnslog' (text lines) or 'zap' (JSON lines)."),
    f(LOGGING, "log-outputs", Kind::UniqueStrings, "default", "Where logs go: 'stderr', 'stdout', 'default' or file paths (comma-separated)."),
    f(LOGGING, "log-output", Kind::UniqueStrings, "default", "Old name of --log-outputs."),
    f(LOGGING, "log-level", Kind::Str, "info", "debug, info, warn, error, panic or fatal."),
    f(LOGGING, "debug", Kind::Bool, "false", "Same as --log-level=debug (deprecated)."),
    f(LOGGING, "log-package-levels", Kind::Str, "", "Per-package capnslog levels, e.g. 'etcdmain=CRITICAL' (deprecated)."),
    f(PROXY, "proxy", Kind::Select(&["off", "readonly", "on"]), "off", "Run as a v2 proxy: 'off', 'readonly' or 'on'."),
    f(PROXY, "proxy-failure-wait", Kind::Uint, "5000", "Milliseconds a failed endpoint is skipped."),
    f(PROXY, "proxy-refresh-interval", Kind::Uint, "30000", "Milliseconds between endpoint refreshes."),
    f(PROXY, "proxy-dial-timeout", Kind::Uint, "1000", "Milliseconds allowed for a connection (0 = no limit)."),
    f(PROXY, "proxy-write-timeout", Kind::Uint, "5000", "Milliseconds allowed for a write (0 = no limit)."),
    f(PROXY, "proxy-read-timeout", Kind::Uint, "0", "Milliseconds allowed for a read (0 = no limit)."),
    f(EXPERIMENTAL, "experimental-initial-corrupt-check", Kind::Bool, "false", "Compare data with the peers before serving."),
    f(EXPERIMENTAL, "experimental-corrupt-check-time", Kind::Duration, "0s", "Period of the cluster corruption check."),
    f(EXPERIMENTAL, "experimental-enable-v2v3", Kind::Str, "", "Serve v2 requests from the v3 store under this prefix."),
    f(EXPERIMENTAL, "experimental-backend-bbolt-freelist-type", Kind::Str, "array", "Backend freelist type ('array' or 'map')."),
    f(EXPERIMENTAL, "experimental-enable-lease-checkpoint", Kind::Bool, "false", "Let the leader checkpoint lease TTLs to the followers."),
    f(EXPERIMENTAL, "experimental-enable-lease-checkpoint-persist", Kind::Bool, "false", "Persist lease checkpoints (needs --experimental-enable-lease-checkpoint)."),
    f(EXPERIMENTAL, "experimental-compaction-batch-limit", Kind::Int, "1000", "Revisions deleted per compaction batch."),
    f(EXPERIMENTAL, "experimental-watch-progress-notify-interval", Kind::Duration, "10m", "Period of watch progress notifications."),
    f(EXPERIMENTAL, "experimental-warning-apply-duration", Kind::Duration, "100ms", "Apply time after which a slow request is logged."),
    f(UNSAFE, "unsafe-no-fsync", Kind::Bool, "false", "Never fsync (loses data on crashes)."),
    f(UNSAFE, "force-new-cluster", Kind::Bool, "false", "Restart as a one-member cluster, dropping the other members."),
    f(OTHER, "enable-grpc-gateway", Kind::Bool, "true", ""),
    f(LEGACY, "cluster-active-size", Kind::Ignored, "", ""),
    f(LEGACY, "cluster-remove-delay", Kind::Ignored, "", ""),
    f(LEGACY, "cluster-sync-interval", Kind::Ignored, "", ""),
    f(LEGACY, "config", Kind::Ignored, "", ""),
    f(LEGACY, "force", Kind::Ignored, "", ""),
    f(LEGACY, "max-result-buffer", Kind::Ignored, "", ""),
    f(LEGACY, "max-retry-attempts", Kind::Ignored, "", ""),
    f(LEGACY, "peer-heartbeat-interval", Kind::Ignored, "", ""),
    f(LEGACY, "peer-election-timeout", Kind::Ignored, "", ""),
    f(LEGACY, "retry-interval", Kind::Ignored, "", ""),
    f(LEGACY, "snapshot", Kind::Ignored, "", ""),
    f(LEGACY, "v", Kind::Ignored, "", ""),
    f(LEGACY, "vv", Kind::Ignored, "", ""),
    f(LEGACY, "test.coverprofile", Kind::Ignored, "", ""),
    f(LEGACY, "test.outputdir", Kind::Ignored, "", ""),
];

/// Looks a flag up by name.
pub fn lookup(name: &str) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|s| s.name == name)
}

/// `ETCD_` + upper-case name with `-` → `_`.
pub fn env_name(flag: &str) -> String {
    format!("ETCD_{}", flag.to_uppercase().replace('-', "_"))
}

/// A parsed flag value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Str(String),
    U64(u64),
    I64(i64),
    Dur(Duration),
    /// `None`: the empty string, which leaves a URL list unchanged.
    Urls(Option<UrlList>),
    List(Vec<String>),
    Ignored,
}

/// Parses `raw` for `spec`; the error is the reason text etcd prints.
pub fn parse_value(spec: &FlagSpec, raw: &str) -> Result<Value, String> {
    Ok(match spec.kind {
        Kind::Bool => Value::Bool(parse_bool(raw).ok_or_else(|| "parse error".to_string())?),
        Kind::Str => Value::Str(raw.to_string()),
        Kind::Uint => Value::U64(parse_uint(raw, 64).map_err(|e| e.flag_text().to_string())?),
        Kind::Uint32 => Value::U64(parse_uint(raw, 32).map_err(|e| e.strconv_text(raw))?),
        Kind::Int => Value::I64(parse_int(raw, 64).map_err(|e| e.flag_text().to_string())?),
        Kind::Duration => Value::Dur(parse_duration(raw).ok_or_else(|| "parse error".to_string())?),
        Kind::Urls => {
            if raw.is_empty() {
                Value::Urls(None)
            } else {
                Value::Urls(Some(parse_url_list(raw)?))
            }
        }
        Kind::Cors => {
            if raw == "*" {
                Value::List(vec!["*".to_string()])
            } else {
                let us = parse_urls(raw)?;
                Value::List(unique_sorted(us.iter().map(go_string)))
            }
        }
        Kind::UniqueStrings => Value::List(unique_sorted(raw.split(',').map(str::to_string))),
        Kind::Strings => Value::List(raw.split(',').map(str::to_string).collect()),
        Kind::Select(valid) => {
            if valid.contains(&raw) {
                Value::Str(raw.to_string())
            } else {
                return Err("invalid value".to_string());
            }
        }
        Kind::Ignored => Value::Ignored,
    })
}

fn unique_sorted(it: impl Iterator<Item = String>) -> Vec<String> {
    it.collect::<BTreeSet<_>>().into_iter().collect()
}

/// The warning etcd prints when an old flag is used.
pub fn ignored_warning(name: &str) -> Diag {
    Diag::log(
        'W',
        "pkg/flags",
        format!("flag \"-{name}\" is no longer supported - ignoring."),
    )
}

/// Stores a parsed value in the config field of flag `name`.
pub fn assign(cfg: &mut Config, name: &str, v: Value) {
    use Value::*;
    let s = |v: Value| match v {
        Str(s) => s,
        _ => unreachable!("string flag"),
    };
    match (name, v) {
        (_, Ignored) => {}
        ("config-file", v) => cfg.config_file = s(v),
        ("version", _) => {}
        ("name", v) => cfg.name = s(v),
        ("data-dir", v) => cfg.data_dir = s(v),
        ("wal-dir", v) => cfg.wal_dir = s(v),
        ("snapshot-count", U64(n)) => cfg.snapshot_count = n,
        ("heartbeat-interval", U64(n)) => cfg.heartbeat_interval_ms = n,
        ("election-timeout", U64(n)) => cfg.election_timeout_ms = n,
        ("initial-election-tick-advance", Bool(b)) => cfg.initial_election_tick_advance = b,
        ("listen-peer-urls", Urls(Some(u))) => cfg.listen_peer_urls = u.urls,
        ("listen-client-urls", Urls(Some(u))) => cfg.listen_client_urls = u.urls,
        ("listen-metrics-urls", Urls(Some(u))) => cfg.listen_metrics_urls = u.urls,
        ("initial-advertise-peer-urls", Urls(Some(u))) => cfg.initial_advertise_peer_urls = u.urls,
        ("advertise-client-urls", Urls(Some(u))) => cfg.advertise_client_urls = u.urls,
        (_, Urls(None)) => {}
        ("max-snapshots", U64(n)) => cfg.max_snapshots = n,
        ("max-wals", U64(n)) => cfg.max_wals = n,
        ("quota-backend-bytes", I64(n)) => cfg.quota_backend_bytes = n,
        ("backend-batch-interval", Dur(d)) => cfg.backend_batch_interval = d,
        ("backend-batch-limit", I64(n)) => cfg.backend_batch_limit = n,
        ("max-txn-ops", U64(n)) => cfg.max_txn_ops = n,
        ("max-request-bytes", U64(n)) => cfg.max_request_bytes = n,
        ("max-concurrent-streams", U64(n)) => cfg.max_concurrent_streams = n as u32,
        ("grpc-keepalive-min-time", Dur(d)) => cfg.grpc_keepalive_min_time = d,
        ("grpc-keepalive-interval", Dur(d)) => cfg.grpc_keepalive_interval = d,
        ("grpc-keepalive-timeout", Dur(d)) => cfg.grpc_keepalive_timeout = d,
        ("initial-cluster", v) => cfg.initial_cluster = s(v),
        ("initial-cluster-state", v) => {
            cfg.initial_cluster_state = if s(v) == "existing" {
                ClusterState::Existing
            } else {
                ClusterState::New
            }
        }
        ("initial-cluster-token", v) => cfg.initial_cluster_token = s(v),
        ("discovery", v) => cfg.discovery = s(v),
        ("discovery-fallback", v) => {
            cfg.discovery_fallback = if s(v) == "exit" {
                DiscoveryFallback::Exit
            } else {
                DiscoveryFallback::Proxy
            }
        }
        ("discovery-proxy", v) => cfg.discovery_proxy = s(v),
        ("discovery-srv", v) => cfg.discovery_srv = s(v),
        ("discovery-srv-name", v) => cfg.discovery_srv_name = s(v),
        ("strict-reconfig-check", Bool(b)) => cfg.strict_reconfig_check = b,
        ("experimental-auto-promote-learners", Bool(b)) => {
            cfg.experimental_auto_promote_learners = b
        }
        ("pre-vote", Bool(b)) => cfg.pre_vote = b,
        ("auto-compaction-retention", v) => cfg.auto_compaction_retention = s(v),
        ("auto-compaction-mode", v) => cfg.auto_compaction_mode = s(v),
        ("enable-v2", Bool(b)) => cfg.enable_v2 = b,
        ("cert-file", v) => cfg.cert_file = s(v),
        ("key-file", v) => cfg.key_file = s(v),
        ("client-cert-auth", Bool(b)) => cfg.client_cert_auth = b,
        ("client-crl-file", v) => cfg.client_crl_file = s(v),
        ("client-cert-allowed-hostname", v) => cfg.client_cert_allowed_hostname = s(v),
        ("trusted-ca-file", v) => cfg.trusted_ca_file = s(v),
        ("auto-tls", Bool(b)) => cfg.auto_tls = b,
        ("peer-cert-file", v) => cfg.peer_cert_file = s(v),
        ("peer-key-file", v) => cfg.peer_key_file = s(v),
        ("peer-client-cert-auth", Bool(b)) => cfg.peer_client_cert_auth = b,
        ("peer-trusted-ca-file", v) => cfg.peer_trusted_ca_file = s(v),
        ("peer-cert-allowed-cn", v) => cfg.peer_cert_allowed_cn = s(v),
        ("peer-cert-allowed-hostname", v) => cfg.peer_cert_allowed_hostname = s(v),
        ("peer-auto-tls", Bool(b)) => cfg.peer_auto_tls = b,
        ("peer-crl-file", v) => cfg.peer_crl_file = s(v),
        ("cipher-suites", List(l)) => cfg.cipher_suites = l,
        ("experimental-peer-skip-client-san-verification", Bool(b)) => {
            cfg.experimental_peer_skip_client_san_verification = b
        }
        ("cors", List(l)) => cfg.cors = l,
        ("host-whitelist", List(l)) => cfg.host_whitelist = l,
        ("auth-token", v) => cfg.auth_token = s(v),
        ("bcrypt-cost", U64(n)) => cfg.bcrypt_cost = n,
        ("auth-token-ttl", U64(n)) => cfg.auth_token_ttl = n,
        ("enable-pprof", Bool(b)) => cfg.enable_pprof = b,
        ("metrics", v) => cfg.metrics = s(v),
        ("logger", v) => {
            // an unknown value is kept as capnslog here; validation reports it from the raw text
            cfg.logger = if s(v) == "zap" {
                Logger::Zap
            } else {
                Logger::Capnslog
            }
        }
        ("log-outputs", List(l)) => cfg.log_outputs = l,
        ("log-output", List(_)) => {} // handled by the logging-output reconciliation
        ("log-level", v) => cfg.log_level = s(v),
        ("debug", Bool(b)) => cfg.debug = b,
        ("log-package-levels", v) => cfg.log_package_levels = s(v),
        ("proxy", v) => {
            cfg.proxy = match s(v).as_str() {
                "on" => ProxyMode::On,
                "readonly" => ProxyMode::Readonly,
                _ => ProxyMode::Off,
            }
        }
        ("proxy-failure-wait", U64(n)) => cfg.proxy_failure_wait_ms = n,
        ("proxy-refresh-interval", U64(n)) => cfg.proxy_refresh_interval_ms = n,
        ("proxy-dial-timeout", U64(n)) => cfg.proxy_dial_timeout_ms = n,
        ("proxy-write-timeout", U64(n)) => cfg.proxy_write_timeout_ms = n,
        ("proxy-read-timeout", U64(n)) => cfg.proxy_read_timeout_ms = n,
        ("experimental-initial-corrupt-check", Bool(b)) => {
            cfg.experimental_initial_corrupt_check = b
        }
        ("experimental-corrupt-check-time", Dur(d)) => cfg.experimental_corrupt_check_time = d,
        ("experimental-enable-v2v3", v) => cfg.experimental_enable_v2v3 = s(v),
        ("experimental-backend-bbolt-freelist-type", v) => {
            cfg.experimental_backend_bbolt_freelist_type = s(v)
        }
        ("experimental-enable-lease-checkpoint", Bool(b)) => {
            cfg.experimental_enable_lease_checkpoint = b
        }
        ("experimental-enable-lease-checkpoint-persist", Bool(b)) => {
            cfg.experimental_enable_lease_checkpoint_persist = b
        }
        ("experimental-compaction-batch-limit", I64(n)) => {
            cfg.experimental_compaction_batch_limit = n
        }
        ("experimental-watch-progress-notify-interval", Dur(d)) => {
            cfg.experimental_watch_progress_notify_interval = d
        }
        ("experimental-warning-apply-duration", Dur(d)) => {
            cfg.experimental_warning_apply_duration = d
        }
        ("unsafe-no-fsync", Bool(b)) => cfg.unsafe_no_fsync = b,
        ("force-new-cluster", Bool(b)) => cfg.force_new_cluster = b,
        ("enable-grpc-gateway", Bool(b)) => cfg.enable_grpc_gateway = b,
        (n, v) => unreachable!("flag {n} with value {v:?}"),
    }
}

/// Result of Go-style tokenising.
#[derive(Debug, Default)]
pub struct Tokens {
    /// `(flag, raw value)` in command-line order; booleans without a value get "true".
    pub values: Vec<(&'static FlagSpec, String)>,
    /// Arguments after the last flag.
    pub positional: Vec<String>,
    /// `-h`, `-help` or `--help` was reached.
    pub help: bool,
    /// Warnings produced while parsing (old flags).
    pub diags: Vec<Diag>,
}

/// Go `flag.FlagSet.Parse` over `args` (without the program name). Every value is checked as
/// it is read, so the first bad flag is the one reported, as with etcd.
pub fn tokenize(args: &[String]) -> Result<Tokens, ConfigError> {
    let mut t = Tokens::default();
    let mut i = 0;
    while i < args.len() {
        let s = &args[i];
        if s.len() < 2 || !s.starts_with('-') {
            break;
        }
        let mut minuses = 1;
        if s.as_bytes()[1] == b'-' {
            minuses = 2;
            if s.len() == 2 {
                i += 1;
                break;
            }
        }
        let body = &s[minuses..];
        if body.starts_with('-') || body.starts_with('=') {
            return Err(ConfigError::BadFlagSyntax(s.clone()));
        }
        i += 1;
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(spec) = lookup(name) else {
            if name == "help" || name == "h" {
                t.help = true;
                return Ok(t);
            }
            return Err(ConfigError::FlagNotDefined(name.to_string()));
        };
        let raw = match spec.kind {
            Kind::Bool | Kind::Ignored => inline.unwrap_or_else(|| "true".to_string()),
            _ => match inline {
                Some(v) => v,
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => return Err(ConfigError::FlagNeedsArgument(name.to_string())),
            },
        };
        if let Err(reason) = parse_value(spec, &raw) {
            let (value, flag) = (raw, name.to_string());
            return Err(if spec.kind == Kind::Bool {
                ConfigError::InvalidBoolValue {
                    value,
                    flag,
                    reason,
                }
            } else {
                ConfigError::InvalidFlagValue {
                    value,
                    flag,
                    reason,
                }
            });
        }
        if spec.kind == Kind::Ignored {
            t.diags.push(ignored_warning(spec.name));
        }
        t.values.push((spec, raw));
    }
    t.positional = args[i..].to_vec();
    Ok(t)
}

/// The clap command that holds every etcd flag (all `--name=value`, repeatable).
pub fn clap_command() -> Command {
    let mut cmd = Command::new("etcd")
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .allow_hyphen_values(true);
    for spec in FLAGS {
        cmd = cmd.arg(
            Arg::new(spec.name)
                .long(spec.name)
                .num_args(1)
                .allow_hyphen_values(true)
                .action(ArgAction::Append),
        );
    }
    cmd
}

/// Runs the tokens through clap and applies every command-line occurrence to `cfg`, in order.
/// Returns the names of the flags given on the command line.
pub fn apply_command_line(
    cfg: &mut Config,
    pending: &mut Pending,
    tokens: &Tokens,
) -> BTreeSet<&'static str> {
    let argv: Vec<String> = tokens
        .values
        .iter()
        .map(|(spec, raw)| format!("--{}={raw}", spec.name))
        .collect();
    let matches: ArgMatches = clap_command()
        .try_get_matches_from(argv)
        .expect("canonical flag tokens always match");
    let mut set = BTreeSet::new();
    for spec in FLAGS {
        if matches.value_source(spec.name) != Some(ValueSource::CommandLine) {
            continue;
        }
        set.insert(spec.name);
        for raw in matches.get_many::<String>(spec.name).into_iter().flatten() {
            let v = parse_value(spec, raw).expect("checked while tokenising");
            pending.record(spec.name, raw, &v);
            assign(cfg, spec.name, v);
        }
    }
    set
}

/// All raw command-line values of one flag, in order.
pub fn raw_values<'a>(tokens: &'a Tokens, name: &str) -> Vec<&'a str> {
    tokens
        .values
        .iter()
        .filter(|(s, _)| s.name == name)
        .map(|(_, v)| v.as_str())
        .collect()
}
