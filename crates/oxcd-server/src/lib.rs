//! The etcd server: membership, proposals and their results, the applier, linearizable reads,
//! and peer traffic in etcd's rafthttp protocol.
//!
//! Path of a write: `EtcdServer::put` → `propose_bytes` (size and backlog checks, register a
//! waiter) → raft thread (`oxcd-raft`, WAL fsync, replication) → committed entries → `Applier`
//! (one backend transaction per batch, consistent index included) → the waiter gets the
//! response. Path of a linearizable read: `EtcdServer::range` → `ReadIndexer` (one ReadIndex
//! round per batch of reads) → wait for the applied index → read a consistent store view.

mod alarms;
mod apply;
mod coalescing_io;
pub mod concurrency;
mod conf_change;
pub mod errors;
mod http_client;
mod kv_ops;
pub mod lease;
mod maintenance;
mod members;
pub mod membership;
pub mod peer;
mod peer_client;
mod persist;
mod read_index;
pub mod serve;
mod server;
mod start;
mod store_handle;
pub mod tls_setup;
mod transport_events;
mod wait;
pub mod watch;

pub use alarms::alarm_name;
pub use errors::ServerError;
pub use kv_ops::ApplyOutcome;
pub use maintenance::KvHash;
pub use server::{EtcdServer, Limits, RaftStatus};
pub use start::{plan, start, Plan, StartError, Started};
pub use store_handle::StoreHandle;
pub use tls_setup::TlsSetup;

/// Stops a member that was removed from the cluster. Not an error (etcd exits 0 too): the
/// cluster decided it.
pub fn exit_removed() -> ! {
    tracing::warn!("the member has been permanently removed from the cluster");
    eprintln!("etcd: the member has been permanently removed from the cluster");
    std::process::exit(0);
}

/// Ends the process after a fatal runtime error, printed the way the Clustering Guide shows
/// etcd's fatal messages: a log line, then `etcd: <message>` on stderr, exit status 1.
pub fn fatal(msg: &str) -> ! {
    tracing::error!("{msg}");
    eprintln!("etcd: {msg}");
    std::process::exit(1);
}
