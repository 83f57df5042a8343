//! The one configuration struct and its defaults.

use std::collections::BTreeSet;
use std::time::Duration;

use url::Url;

use crate::urls::{parse_urls, UrlsMap};

pub const DEFAULT_NAME: &str = "default";
pub const DEFAULT_LISTEN_PEER_URLS: &str = "http://localhost:2380";
pub const DEFAULT_LISTEN_CLIENT_URLS: &str = "http://localhost:2379";
pub const DEFAULT_INITIAL_ADVERTISE_PEER_URLS: &str = "http://localhost:2380";
pub const DEFAULT_ADVERTISE_CLIENT_URLS: &str = "http://localhost:2379";
/// `--initial-cluster` before any adjustment (`<default name>=<default advertise peer URL>`).
pub const DEFAULT_INITIAL_CLUSTER: &str = "default=http://localhost:2380";
pub const DEFAULT_INITIAL_CLUSTER_TOKEN: &str = "etcd-cluster";
pub const DEFAULT_SNAPSHOT_COUNT: u64 = 100_000;
pub const DEFAULT_SNAPSHOT_CATCHUP_ENTRIES: u64 = 5_000;
pub const DEFAULT_MAX_SNAPSHOTS: u64 = 5;
pub const DEFAULT_MAX_WALS: u64 = 5;
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 100;
pub const DEFAULT_ELECTION_TIMEOUT_MS: u64 = 1000;
/// Largest accepted `--election-timeout`.
pub const MAX_ELECTION_TIMEOUT_MS: u64 = 50_000;
/// `--quota-backend-bytes 0` means this.
pub const DEFAULT_QUOTA_BACKEND_BYTES: i64 = 2 * 1024 * 1024 * 1024;
pub const MAX_QUOTA_BACKEND_BYTES: i64 = 8 * 1024 * 1024 * 1024;
pub const DEFAULT_MAX_TXN_OPS: u64 = 128;
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 1_572_864;
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = u32::MAX;
pub const DEFAULT_GRPC_KEEPALIVE_MIN_TIME: Duration = Duration::from_secs(5);
pub const DEFAULT_GRPC_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2 * 3600);
pub const DEFAULT_GRPC_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
pub const DEFAULT_AUTO_COMPACTION_MODE: &str = "periodic";
pub const DEFAULT_AUTO_COMPACTION_RETENTION: &str = "0";
pub const DEFAULT_AUTH_TOKEN: &str = "simple";
pub const DEFAULT_BCRYPT_COST: u64 = 10;
pub const DEFAULT_AUTH_TOKEN_TTL: u64 = 300;
pub const DEFAULT_METRICS: &str = "basic";
pub const DEFAULT_LOG_LEVEL: &str = "info";
pub const DEFAULT_LOG_OUTPUT: &str = "default";
pub const DEFAULT_PROXY_FAILURE_WAIT_MS: u64 = 5000;
pub const DEFAULT_PROXY_REFRESH_INTERVAL_MS: u64 = 30000;
pub const DEFAULT_PROXY_DIAL_TIMEOUT_MS: u64 = 1000;
pub const DEFAULT_PROXY_WRITE_TIMEOUT_MS: u64 = 5000;
pub const DEFAULT_PROXY_READ_TIMEOUT_MS: u64 = 0;
pub const DEFAULT_EXPERIMENTAL_COMPACTION_BATCH_LIMIT: i64 = 1000;
pub const DEFAULT_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_secs(600);
pub const DEFAULT_EXPERIMENTAL_WARNING_APPLY_DURATION: Duration = Duration::from_millis(100);
pub const DEFAULT_EXPERIMENTAL_BACKEND_FREELIST_TYPE: &str = "array";

/// `--initial-cluster-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    New,
    Existing,
}

impl ClusterState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::New => "new",
            ClusterState::Existing => "existing",
        }
    }
}

/// `--proxy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Off,
    Readonly,
    On,
}

impl ProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Off => "off",
            ProxyMode::Readonly => "readonly",
            ProxyMode::On => "on",
        }
    }
}

/// `--discovery-fallback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryFallback {
    Proxy,
    Exit,
}

impl DiscoveryFallback {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscoveryFallback::Proxy => "proxy",
            DiscoveryFallback::Exit => "exit",
        }
    }
}

/// `--logger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logger {
    Capnslog,
    Zap,
}

/// Everything the server needs from the command line, the `ETCD_*` variables or the config
/// file. Field names follow the flag names (`-` → `_`); durations given in milliseconds by etcd
/// keep an `_ms` suffix. URL lists are normalised and sorted like etcd's `types.NewURLs`; use
/// [`crate::urls::go_string`] for their text form.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `--config-file` / `ETCD_CONFIG_FILE` ("" when not used).
    pub config_file: String,

    // ---- member ----
    pub name: String,
    /// `--data-dir`; after parsing never empty (`<name>.etcd` by default).
    pub data_dir: String,
    pub wal_dir: String,
    pub snapshot_count: u64,
    pub max_snapshots: u64,
    pub max_wals: u64,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    pub initial_election_tick_advance: bool,
    pub listen_peer_urls: Vec<Url>,
    pub listen_client_urls: Vec<Url>,
    pub listen_metrics_urls: Vec<Url>,
    /// 0 means [`DEFAULT_QUOTA_BACKEND_BYTES`].
    pub quota_backend_bytes: i64,
    pub backend_batch_interval: Duration,
    pub backend_batch_limit: i64,
    pub max_txn_ops: u64,
    pub max_request_bytes: u64,
    pub max_concurrent_streams: u32,
    pub grpc_keepalive_min_time: Duration,
    pub grpc_keepalive_interval: Duration,
    pub grpc_keepalive_timeout: Duration,

    // ---- clustering ----
    pub initial_advertise_peer_urls: Vec<Url>,
    /// Empty when `--listen-client-urls` was given without `--advertise-client-urls` (only
    /// possible for a process that may become a proxy; otherwise that is a validation error).
    pub advertise_client_urls: Vec<Url>,
    pub discovery: String,
    pub discovery_fallback: DiscoveryFallback,
    pub discovery_proxy: String,
    pub discovery_srv: String,
    pub discovery_srv_name: String,
    /// `--initial-cluster` as finally used (after the implicit adjustments), as text.
    pub initial_cluster: String,
    /// `initial_cluster` parsed (name → sorted URLs). Empty when the text is empty or does not
    /// parse; the bootstrap functions re-parse the text and report the parse error.
    pub initial_cluster_map: UrlsMap,
    pub initial_cluster_token: String,
    pub initial_cluster_state: ClusterState,
    pub strict_reconfig_check: bool,
    /// oxcd's own: the leader promotes a caught-up learner without waiting for an operator.
    pub experimental_auto_promote_learners: bool,
    pub pre_vote: bool,
    pub enable_v2: bool,
    pub auto_compaction_retention: String,
    pub auto_compaction_mode: String,

    // ---- v2 proxy ----
    pub proxy: ProxyMode,
    pub proxy_failure_wait_ms: u64,
    pub proxy_refresh_interval_ms: u64,
    pub proxy_dial_timeout_ms: u64,
    pub proxy_write_timeout_ms: u64,
    pub proxy_read_timeout_ms: u64,

    // ---- client TLS (file: client-transport-security) ----
    pub cert_file: String,
    pub key_file: String,
    pub client_cert_auth: bool,
    pub client_crl_file: String,
    pub client_cert_allowed_hostname: String,
    pub trusted_ca_file: String,
    pub auto_tls: bool,
    // ---- peer TLS (file: peer-transport-security) ----
    pub peer_cert_file: String,
    pub peer_key_file: String,
    pub peer_client_cert_auth: bool,
    pub peer_trusted_ca_file: String,
    pub peer_cert_allowed_cn: String,
    pub peer_cert_allowed_hostname: String,
    pub peer_auto_tls: bool,
    pub peer_crl_file: String,
    /// Go TLS cipher suite names, as given (checked by [`crate::tls::cipher_suite_ids`]).
    pub cipher_suites: Vec<String>,
    pub experimental_peer_skip_client_san_verification: bool,

    // ---- HTTP ----
    /// Allowed CORS origins, sorted and unique (`*` = all).
    pub cors: Vec<String>,
    /// Allowed Host headers, sorted and unique (`*` = all).
    pub host_whitelist: Vec<String>,

    // ---- auth ----
    pub auth_token: String,
    pub bcrypt_cost: u64,
    pub auth_token_ttl: u64,

    // ---- profiling, metrics, logging ----
    pub enable_pprof: bool,
    pub metrics: String,
    pub logger: Logger,
    /// `--log-outputs` (sorted, unique): `default`, `stderr`, `stdout`, `systemd/journal` or paths.
    pub log_outputs: Vec<String>,
    /// `debug`, `info`, `warn`, `error`, `dpanic`, `panic` or `fatal`.
    pub log_level: String,
    pub debug: bool,
    pub log_package_levels: String,

    // ---- v2v3, experimental, unsafe ----
    pub enable_grpc_gateway: bool,
    pub experimental_initial_corrupt_check: bool,
    pub experimental_corrupt_check_time: Duration,
    pub experimental_enable_v2v3: String,
    pub experimental_backend_bbolt_freelist_type: String,
    pub experimental_enable_lease_checkpoint: bool,
    pub experimental_enable_lease_checkpoint_persist: bool,
    pub experimental_compaction_batch_limit: i64,
    pub experimental_watch_progress_notify_interval: Duration,
    pub experimental_warning_apply_duration: Duration,
    pub unsafe_no_fsync: bool,
    pub force_new_cluster: bool,

    /// Names of the flags set on the command line or through `ETCD_*` (empty with a config file).
    pub explicitly_set: BTreeSet<String>,
    /// The host substituted into the advertised URLs by the default-host rule, if any.
    pub default_host_used: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let urls = |s: &str| parse_urls(s).expect("default URL");
        Config {
            config_file: String::new(),
            name: DEFAULT_NAME.to_string(),
            data_dir: String::new(),
            wal_dir: String::new(),
            snapshot_count: DEFAULT_SNAPSHOT_COUNT,
            max_snapshots: DEFAULT_MAX_SNAPSHOTS,
            max_wals: DEFAULT_MAX_WALS,
            heartbeat_interval_ms: DEFAULT_HEARTBEAT_INTERVAL_MS,
            election_timeout_ms: DEFAULT_ELECTION_TIMEOUT_MS,
            initial_election_tick_advance: true,
            listen_peer_urls: urls(DEFAULT_LISTEN_PEER_URLS),
            listen_client_urls: urls(DEFAULT_LISTEN_CLIENT_URLS),
            listen_metrics_urls: Vec::new(),
            quota_backend_bytes: 0,
            backend_batch_interval: Duration::ZERO,
            backend_batch_limit: 0,
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            grpc_keepalive_min_time: DEFAULT_GRPC_KEEPALIVE_MIN_TIME,
            grpc_keepalive_interval: DEFAULT_GRPC_KEEPALIVE_INTERVAL,
            grpc_keepalive_timeout: DEFAULT_GRPC_KEEPALIVE_TIMEOUT,
            initial_advertise_peer_urls: urls(DEFAULT_INITIAL_ADVERTISE_PEER_URLS),
            advertise_client_urls: urls(DEFAULT_ADVERTISE_CLIENT_URLS),
            discovery: String::new(),
            discovery_fallback: DiscoveryFallback::Proxy,
            discovery_proxy: String::new(),
            discovery_srv: String::new(),
            discovery_srv_name: String::new(),
            initial_cluster: DEFAULT_INITIAL_CLUSTER.to_string(),
            initial_cluster_map: UrlsMap::new(),
            initial_cluster_token: DEFAULT_INITIAL_CLUSTER_TOKEN.to_string(),
            initial_cluster_state: ClusterState::New,
            strict_reconfig_check: true,
            experimental_auto_promote_learners: false,
            pre_vote: false,
            enable_v2: false,
            auto_compaction_retention: DEFAULT_AUTO_COMPACTION_RETENTION.to_string(),
            auto_compaction_mode: DEFAULT_AUTO_COMPACTION_MODE.to_string(),
            proxy: ProxyMode::Off,
            proxy_failure_wait_ms: DEFAULT_PROXY_FAILURE_WAIT_MS,
            proxy_refresh_interval_ms: DEFAULT_PROXY_REFRESH_INTERVAL_MS,
            proxy_dial_timeout_ms: DEFAULT_PROXY_DIAL_TIMEOUT_MS,
            proxy_write_timeout_ms: DEFAULT_PROXY_WRITE_TIMEOUT_MS,
            proxy_read_timeout_ms: DEFAULT_PROXY_READ_TIMEOUT_MS,
            cert_file: String::new(),
            key_file: String::new(),
            client_cert_auth: false,
            client_crl_file: String::new(),
            client_cert_allowed_hostname: String::new(),
            trusted_ca_file: String::new(),
            auto_tls: false,
            peer_cert_file: String::new(),
            peer_key_file: String::new(),
            peer_client_cert_auth: false,
            peer_trusted_ca_file: String::new(),
            peer_cert_allowed_cn: String::new(),
            peer_cert_allowed_hostname: String::new(),
            peer_auto_tls: false,
            peer_crl_file: String::new(),
            cipher_suites: Vec::new(),
            experimental_peer_skip_client_san_verification: false,
            cors: vec!["*".to_string()],
            host_whitelist: vec!["*".to_string()],
            auth_token: DEFAULT_AUTH_TOKEN.to_string(),
            bcrypt_cost: DEFAULT_BCRYPT_COST,
            auth_token_ttl: DEFAULT_AUTH_TOKEN_TTL,
            enable_pprof: false,
            metrics: DEFAULT_METRICS.to_string(),
            logger: Logger::Capnslog,
            log_outputs: vec![DEFAULT_LOG_OUTPUT.to_string()],
            log_level: DEFAULT_LOG_LEVEL.to_string(),
            debug: false,
            log_package_levels: String::new(),
            enable_grpc_gateway: true,
            experimental_initial_corrupt_check: false,
            experimental_corrupt_check_time: Duration::ZERO,
            experimental_enable_v2v3: String::new(),
            experimental_backend_bbolt_freelist_type: DEFAULT_EXPERIMENTAL_BACKEND_FREELIST_TYPE
                .to_string(),
            experimental_enable_lease_checkpoint: false,
            experimental_enable_lease_checkpoint_persist: false,
            experimental_compaction_batch_limit: DEFAULT_EXPERIMENTAL_COMPACTION_BATCH_LIMIT,
            experimental_watch_progress_notify_interval:
                DEFAULT_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL,
            experimental_warning_apply_duration: DEFAULT_EXPERIMENTAL_WARNING_APPLY_DURATION,
            unsafe_no_fsync: false,
            force_new_cluster: false,
            explicitly_set: BTreeSet::new(),
            default_host_used: None,
        }
    }
}

impl Config {
    /// The quota actually enforced (0 → 2 GiB).
    pub fn effective_quota_backend_bytes(&self) -> i64 {
        if self.quota_backend_bytes <= 0 {
            DEFAULT_QUOTA_BACKEND_BYTES
        } else {
            self.quota_backend_bytes
        }
    }

    /// raft election ticks (`election / heartbeat`).
    pub fn election_ticks(&self) -> u64 {
        self.election_timeout_ms / self.heartbeat_interval_ms.max(1)
    }

    /// `--initial-cluster-state new`.
    pub fn is_new_cluster(&self) -> bool {
        self.initial_cluster_state == ClusterState::New
    }

    /// The WAL directory: `--wal-dir` or `<data-dir>/member/wal`.
    pub fn wal_dir_path(&self) -> std::path::PathBuf {
        if self.wal_dir.is_empty() {
            std::path::Path::new(&self.data_dir)
                .join("member")
                .join("wal")
        } else {
            std::path::PathBuf::from(&self.wal_dir)
        }
    }

    /// `<data-dir>/member`.
    pub fn member_dir(&self) -> std::path::PathBuf {
        std::path::Path::new(&self.data_dir).join("member")
    }

    /// `<data-dir>/member/snap`.
    pub fn snap_dir(&self) -> std::path::PathBuf {
        self.member_dir().join("snap")
    }

    /// Whether the process may end up as a v2 proxy (`--proxy` ≠ off, or discovery with
    /// fallback `proxy`).
    pub fn may_be_proxy(&self) -> bool {
        self.proxy != ProxyMode::Off
            || (!self.discovery.is_empty() && self.discovery_fallback == DiscoveryFallback::Proxy)
    }

    /// True when the flag was set on the command line or through its `ETCD_*` variable.
    pub fn is_set(&self, flag: &str) -> bool {
        self.explicitly_set.contains(flag)
    }
}
