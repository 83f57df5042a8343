//! `EtcdServer`: what the API front ends call. Writes become raft proposals whose results come
//! back from the applier; linearizable reads wait for a ReadIndex round and then read the local
//! store; serializable reads go straight to the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oxcd_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse,
    InternalRaftRequest, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestHeader,
    ResponseHeader, TxnRequest, TxnResponse,
};
use oxcd_raft::{Command, RaftHandle};
use parking_lot::RwLock;
use prost::Message as _;
use tokio::sync::watch;

use crate::errors::ServerError;
use crate::kv_ops::ApplyOutcome;
use crate::membership::{Cluster, Member};
use crate::read_index::ReadIndexer;
use crate::store_handle::StoreHandle;
use crate::wait::WaitMap;

/// Proposals are refused while the applier is this far behind the commit index (etcd's limit),
/// so that a slow disk turns into "too many requests" instead of unbounded memory.
const MAX_APPLY_GAP: u64 = 5000;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub max_txn_ops: usize,
    pub request_timeout: Duration,
    /// Refuse membership changes that would leave too few working voters (`--strict-reconfig-check`).
    pub strict_reconfig_check: bool,
    /// `--quota-backend-bytes`, defaulted: writes that would grow the store past it raise NOSPACE.
    pub quota_backend_bytes: u64,
}

pub struct EtcdServer {
    pub id: u64,
    pub cluster_id: u64,
    pub cluster: Arc<RwLock<Cluster>>,
    pub raft: RaftHandle,
    pub store: StoreHandle,
    pub limits: Limits,
    pub(crate) wait: Arc<WaitMap<ApplyOutcome>>,
    pub(crate) reads: ReadIndexer,
    pub(crate) applied: watch::Receiver<u64>,
    /// The watch hub: serves the v3 Watch streams.
    pub watch: Arc<crate::watch::WatchHub>,
    /// Leases (see `crate::lease`).
    pub lessor: Arc<crate::lease::Lessor>,
    /// The peer transport: who is reachable, and where the leader is.
    pub transport: Arc<crate::peer::PeerTransport>,
    /// The applier's queue, for work that must not interleave with applying (defragment).
    pub(crate) apply_tx: std::sync::mpsc::Sender<crate::apply::ApplyJob>,
    /// Active alarms (NOSPACE, CORRUPT).
    pub alarms: Arc<crate::alarms::Alarms>,
    next_id: AtomicU64,
}

/// A snapshot of the member's raft position for Status.
pub struct RaftStatus {
    pub leader: u64,
    pub term: u64,
    pub committed: u64,
    pub applied: u64,
    pub last_index: u64,
}

impl EtcdServer {
    // The server is assembled in exactly one place (start.rs) from its parts.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: u64,
        cluster_id: u64,
        cluster: Arc<RwLock<Cluster>>,
        raft: RaftHandle,
        store: StoreHandle,
        limits: Limits,
        wait: Arc<WaitMap<ApplyOutcome>>,
        reads: ReadIndexer,
        applied: watch::Receiver<u64>,
        watch: Arc<crate::watch::WatchHub>,
        lessor: Arc<crate::lease::Lessor>,
        transport: Arc<crate::peer::PeerTransport>,
        alarms: Arc<crate::alarms::Alarms>,
        apply_tx: std::sync::mpsc::Sender<crate::apply::ApplyJob>,
    ) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        // etcd's request-ID layout: the member's low 16 bits, then time, then a counter, so
        // IDs from different members and restarts do not collide.
        let first_id = ((id & 0xffff) << 48) | ((now_ms << 8) & ((1 << 48) - 1));
        EtcdServer {
            id,
            cluster_id,
            cluster,
            raft,
            store,
            limits,
            wait,
            reads,
            applied,
            watch,
            lessor,
            transport,
            alarms,
            apply_tx,
            next_id: AtomicU64::new(first_id),
        }
    }

    pub fn next_request_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.id,
            revision,
            raft_term: self.raft.status.term(),
        }
    }

    pub fn raft_status(&self) -> RaftStatus {
        let s = &self.raft.status;
        RaftStatus {
            leader: s.leader(),
            term: s.term(),
            committed: s.committed(),
            applied: *self.applied.borrow(),
            last_index: s.last_index(),
        }
    }

    pub fn members(&self) -> Vec<Member> {
        self.cluster.read().members.values().cloned().collect()
    }

    /// Waits until a read from the local store reflects every write acknowledged before now.
    pub async fn linearizable_read(&self) -> Result<(), ServerError> {
        self.reads.wait().await
    }

    pub async fn range(&self, req: RangeRequest) -> Result<RangeResponse, ServerError> {
        oxcd_mvcc::kv::validate_range(&req)?;
        if !req.serializable {
            self.linearizable_read().await?;
        }
        let store = self.store.get();
        let view = store
            .read_shared()
            .map_err(|e| ServerError::Internal(e.to_string()))?;
        let mut resp = oxcd_mvcc::kv::range(view.as_ref(), &req)?;
        let rev = resp.header.as_ref().map(|h| h.revision).unwrap_or(0);
        resp.header = Some(self.header(rev));
        Ok(resp)
    }

    pub async fn put(&self, req: PutRequest) -> Result<PutResponse, ServerError> {
        oxcd_mvcc::kv::validate_put(&req)?;
        self.check_quota(req.key.len() + req.value.len()).await?;
        let r = InternalRaftRequest {
            put: Some(req),
            ..Default::default()
        };
        match self.propose(r).await? {
            ApplyOutcome::Put(mut resp) => {
                self.fill(&mut resp.header);
                Ok(resp)
            }
            other => Err(other.into_error()),
        }
    }

    pub async fn delete_range(
        &self,
        req: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, ServerError> {
        oxcd_mvcc::kv::validate_delete_range(&req)?;
        let r = InternalRaftRequest {
            delete_range: Some(req),
            ..Default::default()
        };
        match self.propose(r).await? {
            ApplyOutcome::DeleteRange(mut resp) => {
                self.fill(&mut resp.header);
                Ok(resp)
            }
            other => Err(other.into_error()),
        }
    }

    pub async fn txn(&self, req: TxnRequest) -> Result<TxnResponse, ServerError> {
        oxcd_mvcc::kv::validate_txn(&req, self.limits.max_txn_ops)?;
        if oxcd_mvcc::kv::is_txn_read_only(&req) {
            // Like etcd: a read-only txn is served locally after a linearizable read barrier.
            if !is_txn_serializable(&req) {
                self.linearizable_read().await?;
            }
            let store = self.store.get();
            let view = store
                .read_shared()
                .map_err(|e| ServerError::Internal(e.to_string()))?;
            let mut resp = oxcd_mvcc::kv::txn_read(view.as_ref(), &req)?;
            self.fill(&mut resp.header);
            return Ok(resp);
        }
        self.check_quota(req.encoded_len()).await?;
        let r = InternalRaftRequest {
            txn: Some(req),
            ..Default::default()
        };
        match self.propose(r).await? {
            ApplyOutcome::Txn(mut resp) => {
                self.fill(&mut resp.header);
                Ok(resp)
            }
            other => Err(other.into_error()),
        }
    }

    pub async fn compact(&self, req: CompactionRequest) -> Result<CompactionResponse, ServerError> {
        let r = InternalRaftRequest {
            compaction: Some(req),
            ..Default::default()
        };
        match self.propose(r).await? {
            ApplyOutcome::Compaction(mut resp) => {
                self.fill(&mut resp.header);
                Ok(resp)
            }
            other => Err(other.into_error()),
        }
    }

    /// etcd's space quota: a write that would take the store past `--quota-backend-bytes`
    /// raises the NOSPACE alarm (through raft, for the whole cluster) and is refused.
    async fn check_quota(&self, cost: usize) -> Result<(), ServerError> {
        use oxcd_proto::etcdserverpb::{alarm_request::AlarmAction, AlarmRequest, AlarmType};
        if self.alarms.has(AlarmType::Nospace) {
            return Err(ServerError::NoSpace);
        }
        let used = self.store.get().used_bytes();
        if used + cost as u64 <= self.limits.quota_backend_bytes {
            return Ok(());
        }
        tracing::warn!(
            used,
            quota = self.limits.quota_backend_bytes,
            "backend quota exceeded"
        );
        let raise = InternalRaftRequest {
            alarm: Some(AlarmRequest {
                action: AlarmAction::Activate as i32,
                member_id: self.id,
                alarm: AlarmType::Nospace as i32,
            }),
            ..Default::default()
        };
        let _ = self.propose(raise).await;
        Err(ServerError::NoSpace)
    }

    fn fill(&self, header: &mut Option<ResponseHeader>) {
        let rev = header.as_ref().map(|h| h.revision).unwrap_or(0);
        *header = Some(self.header(rev));
    }

    /// Proposes a request through raft and waits for the applier's result.
    /// Not an `async fn`: the request (over a kilobyte, one inline field per request kind) is
    /// encoded before the returned future exists, so it is not part of the state every
    /// pending proposal keeps on the heap.
    pub fn propose(
        &self,
        mut req: InternalRaftRequest,
    ) -> impl std::future::Future<Output = Result<ApplyOutcome, ServerError>> + '_ {
        let id = self.next_request_id();
        req.header = Some(RequestHeader {
            id,
            ..req.header.unwrap_or_default()
        });
        self.propose_bytes(id, req.encode_to_vec())
    }

    pub(crate) async fn propose_bytes(
        &self,
        id: u64,
        data: Vec<u8>,
    ) -> Result<ApplyOutcome, ServerError> {
        if data.len() > self.limits.max_request_bytes {
            return Err(ServerError::RequestTooLarge);
        }
        let status = &self.raft.status;
        if status.committed().saturating_sub(*self.applied.borrow()) > MAX_APPLY_GAP {
            return Err(ServerError::TooManyRequests);
        }
        let rx = self.wait.register(id);
        if let Err(e) = self.raft.try_send(Command::Propose { id, data }) {
            self.wait.cancel(id);
            return Err(match e {
                oxcd_raft::RaftError::Busy => ServerError::TooManyRequests,
                _ => ServerError::Stopped,
            });
        }
        match tokio::time::timeout(self.limits.request_timeout, rx).await {
            Ok(Ok(outcome)) => match outcome {
                ApplyOutcome::Dropped => Err(if self.raft.status.leader() == 0 {
                    ServerError::NoLeader
                } else {
                    ServerError::LeaderChanged
                }),
                other => Ok(other),
            },
            Ok(Err(_)) => Err(ServerError::Stopped),
            Err(_) => {
                self.wait.cancel(id);
                Err(ServerError::Timeout)
            }
        }
    }
}

/// A read-only txn may skip the ReadIndex barrier only if every range in it is serializable.
fn is_txn_serializable(req: &TxnRequest) -> bool {
    use oxcd_proto::etcdserverpb::request_op::Request;
    req.success
        .iter()
        .chain(req.failure.iter())
        .all(|op| match &op.request {
            Some(Request::RequestRange(r)) => r.serializable,
            Some(Request::RequestTxn(t)) => is_txn_serializable(t),
            _ => true,
        })
}
