//! Leases: etcd's v3 lease semantics.
//!
//! * [`Lessor`] holds the leases and their attached keys. Grant, revoke and checkpoint are raft
//!   requests applied by the applier in the same backend batch as everything else (lease
//!   records live in the `lease` aux table, `leasepb.Lease` keyed by the big-endian ID), and
//!   KV requests attach and detach keys through [`LeaseTracker`], mvcc's `LeaseHooks`. The
//!   key index is rebuilt at start from the current keys' `lease` field.
//! * Deadlines exist only on the leader ("primary"): it becomes primary when it applies the
//!   empty entry of its term (so every earlier entry is applied), which gives every lease a
//!   deadline of its remaining TTL plus an election timeout. Expired leases are revoked through
//!   raft by [`ops::run`]; remaining TTLs are checkpointed through raft every
//!   [`DEFAULT_CHECKPOINT_INTERVAL`] (for leases with more than that left) so a new leader
//!   does not restart them from the full TTL. Demotion drops every deadline.
//! * Keep-alives and time-to-live questions are answered by the leader; followers forward
//!   them over the peer port ([`forward`]).

pub mod forward;
mod lessor;
mod ops;
#[cfg(test)]
mod tests;

pub use lessor::{
    LeaseError, LeaseInfo, LeaseTracker, Lessor, LessorConfig, Renewed,
    DEFAULT_CHECKPOINT_INTERVAL, LEASE_TABLE, MAX_LEASE_TTL,
};
pub use ops::run;
