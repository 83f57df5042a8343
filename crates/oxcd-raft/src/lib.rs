//! The raft node: raft-rs driven by a Ready loop on a thread of its own, persisting to our WAL.
//!
//! Layering: `oxcd-server` owns a [`RaftHandle`] and implements [`NodeEvents`]; this crate knows
//! nothing about keys, leases or membership. The in-memory log ([`LogStore`]) is what raft-rs
//! reads; the WAL is the durable copy and is written on this thread only.

mod log_store;
mod node;
mod slog_bridge;
mod snapshot_saver;

pub use log_store::{LogStore, SNAPSHOT_CATCH_UP_ENTRIES};
pub use node::{Command, NodeEvents, NodeSettings, NodeStatus, RaftHandle, RaftNode};
pub use raft::eraftpb;
pub use raft::{ReadState, StateRole};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RaftError {
    #[error("raft node is overloaded")]
    Busy,
    #[error("raft node stopped")]
    Stopped,
    #[error("proposal dropped")]
    ProposalDropped,
    #[error("invalid raft configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

impl RaftError {
    fn from_raft(e: &raft::Error) -> Self {
        match e {
            raft::Error::ProposalDropped => RaftError::ProposalDropped,
            other => RaftError::Other(other.to_string()),
        }
    }
}
