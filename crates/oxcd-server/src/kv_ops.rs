//! Applying one decoded `InternalRaftRequest` to the backend batch, and what the proposer gets.

use oxcd_mvcc::{KvError, WriteBatch};
use oxcd_proto::etcdserverpb::{
    CompactionResponse, DeleteRangeResponse, InternalRaftRequest, PutResponse, RangeResponse,
    TxnResponse,
};

use crate::errors::ServerError;

pub enum ApplyOutcome {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compaction(CompactionResponse),
    /// The request was applied and failed with an etcd error (compacted revision, …).
    Error(KvError),
    /// A v2 request (member attributes, cluster version).
    V2,
    /// Raft refused the proposal before it reached the log.
    Dropped,
    /// A request kind this member does not implement yet.
    Unsupported,
}

impl ApplyOutcome {
    pub fn into_error(self) -> ServerError {
        match self {
            ApplyOutcome::Error(e) => ServerError::Kv(e),
            ApplyOutcome::Dropped => ServerError::NoLeader,
            _ => ServerError::Internal("unexpected apply result".into()),
        }
    }
}

/// Applies one request. Request-level failures are returned inside the outcome; only backend
/// failures (which must stop the member) are errors.
pub fn apply_internal(batch: &mut WriteBatch, req: InternalRaftRequest) -> Result<ApplyOutcome, String> {
    let leases = oxcd_mvcc::NoLeases;
    let outcome = if let Some(put) = req.put {
        wrap(oxcd_mvcc::put(batch, &put, &leases), ApplyOutcome::Put)
    } else if let Some(del) = req.delete_range {
        wrap(oxcd_mvcc::delete_range(batch, &del), ApplyOutcome::DeleteRange)
    } else if let Some(txn) = req.txn {
        wrap(oxcd_mvcc::txn(batch, &txn, &leases), ApplyOutcome::Txn)
    } else if let Some(compaction) = req.compaction {
        wrap(oxcd_mvcc::compact(batch, &compaction), ApplyOutcome::Compaction)
    } else if let Some(range) = req.range {
        wrap(oxcd_mvcc::range_in_batch(batch, &range), ApplyOutcome::Range)
    } else {
        ApplyOutcome::Unsupported
    };
    Ok(outcome)
}

fn wrap<T>(r: Result<T, KvError>, f: impl FnOnce(T) -> ApplyOutcome) -> ApplyOutcome {
    match r {
        Ok(v) => f(v),
        Err(e) => ApplyOutcome::Error(e),
    }
}
