//! Peer traffic in etcd's rafthttp protocol, so that later etcd members can join an oxcd
//! cluster: long-lived "message" streams (GET `/raft/stream/message/<from>`), the pipeline
//! (POST `/raft`) for when no stream is up, snapshots (POST `/raft/snapshot`), and `/members`,
//! `/version`, `/raft/probing` for bootstrapping and health.
//!
//! Direction matters: a member receives from peer P over the stream it dialled to P, and sends
//! to P over the stream P dialled to it. Headers: `X-Etcd-Cluster-ID`, `X-Server-From`,
//! `X-Server-Version`, `X-Min-Cluster-Version`, `X-Raft-To`, `X-PeerURLs`.

pub mod codec;
pub mod handlers;
mod stream_reader;
pub(crate) mod transport;

pub use transport::{PeerTransport, TransportConfig};

pub const SERVER_VERSION: &str = "3.4.23";
pub const CLUSTER_VERSION: &str = "3.4.0";
pub const MIN_CLUSTER_VERSION: &str = "3.0.0";

pub const HDR_CLUSTER_ID: &str = "x-etcd-cluster-id";
pub const HDR_SERVER_FROM: &str = "x-server-from";
pub const HDR_SERVER_VERSION: &str = "x-server-version";
pub const HDR_MIN_CLUSTER_VERSION: &str = "x-min-cluster-version";
pub const HDR_RAFT_TO: &str = "x-raft-to";
pub const HDR_PEER_URLS: &str = "x-peerurls";
