//! etcd's v3 wire types for oxcd, generated at build time from our own `.proto` files in
//! `proto/`.
//!
//! Every package name, message name, field name, field number, enum value, service and rpc is the
//! same as in etcd 3.4, so the bytes on the wire and the gRPC method paths (for example
//! `/etcdserverpb.KV/Range` or `/v3lockpb.Lock/Lock`) are identical: etcdctl 3.4 and the etcd client
//! libraries talk to oxcd unchanged, and oxcd can read records (raft entries, lease records) in
//! etcd's encoding. The `.proto` files themselves are written from scratch for this project.
//!
//! One module per protobuf package; they sit side by side at the crate root because the generated
//! code refers across packages as `super::<package>`:
//!
//! - [`mvccpb`]: `KeyValue` and watch `Event`s.
//! - [`authpb`]: stored `User`s, `Role`s and `Permission`s.
//! - [`etcdserverpb`]: the client API (`KV`, `Watch`, `Lease`, `Cluster`, `Maintenance`, `Auth`
//!   services with tonic clients and servers), the raft proposal envelope `InternalRaftRequest`,
//!   and the v2 `Request` / WAL `Metadata` records.
//! - [`leasepb`]: persisted leases and the internal TimeToLive forward.
//! - [`v3lockpb`]: the `Lock` service.
//! - [`v3electionpb`]: the `Election` service.
//!
//! `bytes` fields are [`bytes::Bytes`] (re-exported here as [`bytes`]).

pub use prost::bytes;

pub mod codec;

/// MVCC records: `KeyValue` and `Event`.
pub mod mvccpb {
    include!(concat!(env!("OUT_DIR"), "/mvccpb.rs"));
}

/// Auth store records: `User`, `Role`, `Permission`.
pub mod authpb {
    include!(concat!(env!("OUT_DIR"), "/authpb.rs"));
}

/// The v3 client API, the raft request envelope and the v2 request record.
pub mod etcdserverpb {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}

/// Lease records.
pub mod leasepb {
    include!(concat!(env!("OUT_DIR"), "/leasepb.rs"));
}

/// The distributed lock service.
pub mod v3lockpb {
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.rs"));
}

/// The leader election service.
pub mod v3electionpb {
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.rs"));
}
