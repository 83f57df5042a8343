//! Every error the configuration and bootstrap code can report, with etcd's text and exit code.

use thiserror::Error;

/// How an error reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presentation {
    /// Go flag-package style: the message on stderr, then the usage text; exit 2.
    Usage,
    /// `E | etcdmain: error verifying flags, <msg>. See 'etcd --help'.`; exit 1.
    Verify,
    /// A critical (`C`) log line from the package [`ConfigError::pkg`]; exit 1.
    Critical,
    /// The bare message on stderr (etcd prints these with `fmt`); exit 1.
    Plain,
    /// `panic: <msg>`; exit 2 (etcd panics on an unknown log level).
    Panic,
}

/// Configuration, validation and bootstrap errors. `Display` gives the inner message exactly as
/// etcd words it; [`ConfigError::report`] gives the full line etcd logs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    // ---- flag parsing (exit 2) ----
    #[error("flag provided but not defined: -{0}")]
    FlagNotDefined(String),
    #[error("flag needs an argument: -{0}")]
    FlagNeedsArgument(String),
    #[error("bad flag syntax: {0}")]
    BadFlagSyntax(String),
    #[error("invalid value {value:?} for flag -{flag}: {reason}")]
    InvalidFlagValue {
        value: String,
        flag: String,
        reason: String,
    },
    #[error("invalid boolean value {value:?} for -{flag}: {reason}")]
    InvalidBoolValue {
        value: String,
        flag: String,
        reason: String,
    },

    // ---- "error verifying flags" (exit 1) ----
    #[error("'{0}' is not a valid flag")]
    NotAFlag(String),
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidEnvValue {
        value: String,
        key: String,
        reason: String,
    },
    #[error("{0}")]
    ConfigFile(String),
    #[error("expected IP in URL for binding ({0})")]
    BindUrlNotIp(String),
    #[error("--initial-advertise-peer-urls {list:?} must be \"host:port\" ({reason})")]
    AdvertisePeerUrlsHost { list: String, reason: String },
    #[error("--advertise-client-urls {list:?} must be \"host:port\" ({reason})")]
    AdvertiseClientUrlsHost { list: String, reason: String },
    #[error("unexpected clusterState {0:?}")]
    UnexpectedClusterState(String),
    #[error("multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\"")]
    ConflictBootstrapFlags,
    #[error("--heartbeat-interval must be >0 (set to {0}ms)")]
    HeartbeatNotPositive(u64),
    #[error("--election-timeout must be >0 (set to {0}ms)")]
    ElectionNotPositive(u64),
    #[error("--election-timeout[{election}ms] should be at least as 5 times as --heartbeat-interval[{heartbeat}ms]")]
    ElectionTooShort { election: u64, heartbeat: u64 },
    #[error("--election-timeout[{0}ms] is too long, and should be set less than 50000ms")]
    ElectionTooLong(u64),
    #[error("--advertise-client-urls is required when --listen-client-urls is set explicitly")]
    UnsetAdvertiseClientUrls,
    #[error("unknown auto-compaction-mode {0:?}")]
    UnknownCompactionMode(String),
    #[error("setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint")]
    LeaseCheckpointPersist,
    #[error("unknown logger option {0:?}")]
    UnknownLogger(String),
    #[error("both '--log-output' and '--log-outputs' are set; only set '--log-outputs'")]
    BothLogOutputFlags,
    #[error("either '--log-output' or '--log-outputs' flag must be set")]
    NoLogOutput,
    #[error("'--log-output={0}' and '--log-outputs={0}' are incompatible; only set --log-outputs")]
    IncompatibleLogOutputs(String),
    #[error("--logger=capnslog supports only 1 value in '--log-outputs', got {0}")]
    CapnslogSingleOutput(String),
    #[error("unknown log-output {0:?} (only supports \"default\", \"stderr\", \"stdout\")")]
    UnknownLogOutput(String),
    #[error("multi logoutput for \"default\" is not supported yet")]
    ZapMultiDefault,

    // ---- panics (exit 2) ----
    #[error("unknown level {0:?}")]
    UnknownLogLevel(String),

    // ---- critical / plain, exit 1 ----
    #[error("conflicting environment variable {0:?} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)")]
    ConflictingEnv(String),
    /// A URL list in the config file did not parse. `key` is the name etcd prints.
    #[error("unexpected error setting up {key}: {reason}")]
    FileUrls { key: String, reason: String },
    #[error(
        "AllowedCN and AllowedHostname are mutually exclusive (cn={cn:?}, hostname={hostname:?})"
    )]
    AllowedCnAndHostname { cn: String, hostname: String },
    #[error("unexpected TLS cipher suite {0:?}")]
    UnexpectedCipherSuite(String),

    // ---- bootstrap (critical, exit 1); texts follow the v3.3 clustering guide ----
    #[error("error setting up initial cluster: {0}")]
    InitialClusterSetup(String),
    #[error("{0} not listed in the initial cluster config")]
    NotInInitialCluster(String),
    #[error("error setting up initial cluster: {0} has different advertised URLs in the cluster and advertised peer URLs list")]
    DifferentAdvertisedUrls(String),
    #[error("initial cluster {0} has duplicate url")]
    DuplicateUrl(String),
    #[error("initial cluster unset and no discovery URL found")]
    InitialClusterUnset,
    #[error("discovery URL should not be set when joining existing initial cluster")]
    DiscoveryWithExisting,
    #[error("cannot use 0 as member id")]
    ZeroMemberId,
    #[error("member exists with identical ID {0}")]
    IdenticalMemberId(String),
    #[error("unsupported bootstrap config")]
    UnsupportedBootstrap,
    #[error("invalid datadir. Both member and proxy directories exist.")]
    InvalidDataDir,
    #[error("error listing data dir: {0}")]
    DataDirList(String),
}

impl ConfigError {
    /// How etcd shows this error.
    pub fn presentation(&self) -> Presentation {
        use ConfigError::*;
        match self {
            FlagNotDefined(_)
            | FlagNeedsArgument(_)
            | BadFlagSyntax(_)
            | InvalidFlagValue { .. }
            | InvalidBoolValue { .. } => Presentation::Usage,
            UnknownLogLevel(_) => Presentation::Panic,
            FileUrls { .. } => Presentation::Plain,
            ConflictingEnv(_)
            | AllowedCnAndHostname { .. }
            | UnexpectedCipherSuite(_)
            | InitialClusterSetup(_)
            | NotInInitialCluster(_)
            | DifferentAdvertisedUrls(_)
            | DuplicateUrl(_)
            | InitialClusterUnset
            | DiscoveryWithExisting
            | ZeroMemberId
            | IdenticalMemberId(_)
            | UnsupportedBootstrap
            | InvalidDataDir
            | DataDirList(_) => Presentation::Critical,
            _ => Presentation::Verify,
        }
    }

    /// The process exit status etcd uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self.presentation() {
            Presentation::Usage | Presentation::Panic => 2,
            _ => 1,
        }
    }

    /// The capnslog package name of the log line.
    pub fn pkg(&self) -> &'static str {
        match self {
            ConfigError::ConflictingEnv(_) => "pkg/flags",
            _ => "etcdmain",
        }
    }

    /// The capnslog level letter of the log line (`E` or `C`), if the error is logged.
    pub fn level(&self) -> Option<char> {
        match self.presentation() {
            Presentation::Verify => Some('E'),
            Presentation::Critical => Some('C'),
            _ => None,
        }
    }

    /// The full text etcd prints (without the log-line prefix), e.g.
    /// `error verifying flags, '<x>' is not a valid flag. See 'etcd --help'.`
    pub fn report(&self) -> String {
        match self.presentation() {
            Presentation::Verify => format!("error verifying flags, {self}. See 'etcd --help'."),
            Presentation::Panic => format!("panic: {self}"),
            _ => self.to_string(),
        }
    }

    /// Further log lines etcd prints after [`ConfigError::report`] (same level and package).
    pub fn extra_lines(&self) -> Vec<String> {
        match self {
            ConfigError::UnsetAdvertiseClientUrls => vec![
                "When listening on specific address(es), this etcd process must advertise accessible url(s) to each connected client.".to_string(),
            ],
            _ => Vec::new(),
        }
    }

    /// True for the errors of the bootstrap phase, which the guide shows as `etcd: <message>`.
    pub fn is_bootstrap(&self) -> bool {
        self.presentation() == Presentation::Critical
            && !matches!(self, ConfigError::ConflictingEnv(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_codes() {
        let e = ConfigError::NotAFlag("foo".into());
        assert_eq!(
            e.report(),
            "error verifying flags, 'foo' is not a valid flag. See 'etcd --help'."
        );
        assert_eq!(e.exit_code(), 1);
        let e = ConfigError::InvalidFlagValue {
            value: "x".into(),
            flag: "heartbeat-interval".into(),
            reason: "parse error".into(),
        };
        assert_eq!(
            e.to_string(),
            "invalid value \"x\" for flag -heartbeat-interval: parse error"
        );
        assert_eq!(e.exit_code(), 2);
        let e = ConfigError::ConflictingEnv("ETCD_NAME".into());
        assert_eq!(
            e.to_string(),
            "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)"
        );
        assert_eq!(
            (e.exit_code(), e.level(), e.pkg()),
            (1, Some('C'), "pkg/flags")
        );
        assert_eq!(
            ConfigError::UnknownLogLevel("foo".into()).report(),
            "panic: unknown level \"foo\""
        );
        assert_eq!(
            ConfigError::DifferentAdvertisedUrls("infra0".into()).to_string(),
            "error setting up initial cluster: infra0 has different advertised URLs in the cluster and advertised peer URLs list"
        );
    }
}
