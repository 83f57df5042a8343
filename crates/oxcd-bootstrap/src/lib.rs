//! configuration (flags, ETCD_* variables, YAML), member and cluster IDs, initial-cluster validation
//!
//! Entry points:
//! * [`load`] — the command line and environment → [`Action`] (help, version, or a [`Config`]),
//!   with the log lines etcd prints on the way ([`Diag`]);
//! * [`initial_cluster::initial_cluster`] — checks and IDs of the initial member set;
//! * [`datadir::classify_data_dir`] / [`datadir::member_initialized`];
//! * [`ids::member_id`] / [`ids::cluster_id`];
//! * [`tls::check_tls`] — the TLS checks etcd makes when building listeners.

pub mod config;
pub mod datadir;
pub mod env;
pub mod error;
pub mod file;
pub mod flags;
pub mod host;
pub mod ids;
pub mod initial_cluster;
pub mod load;
pub mod tls;
pub mod urls;
pub mod usage;
pub mod validate;
pub mod values;

pub use config::{ClusterState, Config, DiscoveryFallback, Logger, ProxyMode};
pub use datadir::{classify_data_dir, member_initialized, DataDirKind};
pub use error::{ConfigError, Presentation};
pub use ids::{cluster_id, id_to_hex, member_id};
pub use initial_cluster::{initial_cluster, InitialCluster, InitialMember};
pub use load::{load, load_with_default_host, Action, Loaded};
pub use urls::UrlsMap;

/// A line etcd would print while reading its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diag {
    /// A log line: capnslog level letter (`C E W N I D`), package, text.
    Log {
        level: char,
        pkg: &'static str,
        msg: String,
    },
    /// A line written straight to stderr (etcd's `[WARNING] ...` lines).
    Raw(String),
}

impl Diag {
    pub fn log(level: char, pkg: &'static str, msg: impl Into<String>) -> Diag {
        Diag::Log {
            level,
            pkg,
            msg: msg.into(),
        }
    }

    pub fn raw(msg: impl Into<String>) -> Diag {
        Diag::Raw(msg.into())
    }
}

#[cfg(test)]
mod tests;
