//! Applying one decoded `InternalRaftRequest` to the backend batch, and what the proposer gets.

use oxcd_mvcc::{kv, KvError, WriteBatch};
use oxcd_proto::etcdserverpb::{
    CompactionResponse, DeleteRangeResponse, InternalRaftRequest, PutResponse, RangeResponse,
    TxnResponse,
};
use oxcd_proto::mvccpb::Event;

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

/// Applies one request, appending the changes it made to `events`. Request-level failures are
/// returned inside the outcome; only backend failures (which must stop the member) are errors.
pub fn apply_internal(
    batch: &mut WriteBatch,
    req: InternalRaftRequest,
    events: &mut Vec<Event>,
) -> Result<ApplyOutcome, String> {
    let mut leases = oxcd_mvcc::NoLeases;
    batch.begin_request();
    let outcome = if let Some(put) = req.put {
        wrap(kv::put(batch, &put, &mut leases), ApplyOutcome::Put)
    } else if let Some(del) = req.delete_range {
        wrap(
            kv::delete_range(batch, &del, &mut leases),
            ApplyOutcome::DeleteRange,
        )
    } else if let Some(txn) = req.txn {
        wrap(kv::txn(batch, &txn, &mut leases), ApplyOutcome::Txn)
    } else if let Some(compaction) = req.compaction {
        wrap(kv::compact(batch, &compaction), ApplyOutcome::Compaction)
    } else if let Some(range) = req.range {
        wrap(kv::range(&*batch, &range), ApplyOutcome::Range)
    } else {
        ApplyOutcome::Unsupported
    };
    // A storage failure may have left the request half-written: the batch must not commit.
    if let ApplyOutcome::Error(KvError::Internal(e)) = &outcome {
        return Err(format!("backend failure while applying: {e}"));
    }
    events.extend(batch.end_request());
    Ok(outcome)
}

fn wrap<T>(r: Result<T, KvError>, f: impl FnOnce(T) -> ApplyOutcome) -> ApplyOutcome {
    match r {
        Ok(v) => f(v),
        Err(e) => ApplyOutcome::Error(e),
    }
}
