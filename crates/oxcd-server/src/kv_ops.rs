//! Applying one decoded `InternalRaftRequest` to the backend batch, and what the proposer gets.

use oxcd_mvcc::{kv, KvError, WriteBatch};
use oxcd_proto::etcdserverpb::{
    CompactionResponse, DeleteRangeResponse, InternalRaftRequest, LeaseCheckpointResponse,
    LeaseGrantResponse, LeaseRevokeResponse, PutResponse, RangeResponse, ResponseHeader,
    TxnResponse,
};
use oxcd_proto::mvccpb::Event;

use crate::errors::ServerError;
use crate::lease::{LeaseError, Lessor};

pub enum ApplyOutcome {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compaction(CompactionResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    LeaseCheckpoint(LeaseCheckpointResponse),
    /// A lease request was applied and failed (not found, already exists, TTL too large).
    LeaseError(LeaseError),
    /// The request was applied and failed with an etcd error (compacted revision, …).
    Error(KvError),
    /// A v2 request (member attributes, cluster version).
    V2,
    /// A configuration change was applied (Ok) or refused by the membership rules.
    ConfChange(Result<(), ServerError>),
    /// An alarm request was applied; the alarms it concerns.
    Alarm(Vec<oxcd_proto::etcdserverpb::AlarmMember>),
    /// The request was committed but refused (a write while the NOSPACE alarm is active).
    Refused(ServerError),
    /// Raft refused the proposal before it reached the log.
    Dropped,
    /// A request kind this member does not implement yet.
    Unsupported,
}

impl ApplyOutcome {
    pub fn into_error(self) -> ServerError {
        match self {
            ApplyOutcome::Error(e) => ServerError::Kv(e),
            ApplyOutcome::LeaseError(e) => ServerError::Lease(e),
            ApplyOutcome::Dropped => ServerError::NoLeader,
            ApplyOutcome::Refused(e) => e,
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
    lessor: &Lessor,
) -> Result<ApplyOutcome, String> {
    let mut leases = lessor.tracker();
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
    } else if let Some(grant) = req.lease_grant {
        match lessor.grant(batch, grant.id, grant.ttl) {
            Ok(ttl) => ApplyOutcome::LeaseGrant(LeaseGrantResponse {
                header: Some(lease_header(batch)),
                id: grant.id,
                ttl,
                error: String::new(),
            }),
            Err(e) => lease_failure(e)?,
        }
    } else if let Some(revoke) = req.lease_revoke {
        match lessor.revoke(batch, revoke.id) {
            Ok(()) => ApplyOutcome::LeaseRevoke(LeaseRevokeResponse {
                header: Some(lease_header(batch)),
            }),
            Err(e) => lease_failure(e)?,
        }
    } else if let Some(cp) = req.lease_checkpoint {
        match lessor.checkpoint(batch, &cp.checkpoints) {
            Ok(()) => ApplyOutcome::LeaseCheckpoint(LeaseCheckpointResponse {
                header: Some(lease_header(batch)),
            }),
            Err(e) => lease_failure(e)?,
        }
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

/// The header of a lease response: the revision after the request.
fn lease_header(batch: &WriteBatch) -> ResponseHeader {
    ResponseHeader {
        revision: batch.view_revision(),
        ..Default::default()
    }
}

/// A lease request's failure; a storage failure stops the member.
fn lease_failure(e: LeaseError) -> Result<ApplyOutcome, String> {
    match e {
        LeaseError::Storage(e) => Err(format!("backend failure while applying: {e}")),
        other => Ok(ApplyOutcome::LeaseError(other)),
    }
}
