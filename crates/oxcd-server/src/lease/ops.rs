//! The lease requests of `EtcdServer`, and the leader's background work: revoking expired
//! leases and proposing checkpoints.

use std::sync::Arc;
use std::time::Duration;

use oxcd_proto::etcdserverpb::{
    InternalRaftRequest, LeaseCheckpoint, LeaseCheckpointRequest, LeaseGrantRequest,
    LeaseGrantResponse, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, ResponseHeader,
};
use tokio::sync::Semaphore;

use super::forward::ForwardError;
use super::lessor::{LeaseError, MAX_CHECKPOINT_BATCH, REVOKE_RATE};
use crate::errors::ServerError;
use crate::kv_ops::ApplyOutcome;
use crate::server::EtcdServer;

/// How often the leader looks for expired leases and due checkpoints (etcd's period).
const LOOP_INTERVAL: Duration = Duration::from_millis(500);
/// At most this many revocations of expired leases are in flight (etcd's limit).
const MAX_PENDING_REVOKES: usize = 16;
/// Pause between two rounds of forwarding to the leader.
const FORWARD_RETRY: Duration = Duration::from_millis(50);

impl EtcdServer {
    /// LeaseGrant: an ID of 0 is replaced by a fresh positive one (a request ID, as etcd does).
    pub async fn lease_grant(
        &self,
        mut req: LeaseGrantRequest,
    ) -> Result<LeaseGrantResponse, ServerError> {
        while req.id == 0 {
            req.id = (self.next_request_id() & (i64::MAX as u64)) as i64;
        }
        let r = InternalRaftRequest {
            lease_grant: Some(req),
            ..Default::default()
        };
        match self.propose(r).await? {
            ApplyOutcome::LeaseGrant(mut resp) => {
                self.fill_lease_header(&mut resp.header);
                Ok(resp)
            }
            other => Err(other.into_error()),
        }
    }

    /// LeaseRevoke: the lease and its keys go away in one revision.
    pub async fn lease_revoke(
        &self,
        req: LeaseRevokeRequest,
    ) -> Result<LeaseRevokeResponse, ServerError> {
        let r = InternalRaftRequest {
            lease_revoke: Some(req),
            ..Default::default()
        };
        match self.propose(r).await? {
            ApplyOutcome::LeaseRevoke(mut resp) => {
                self.fill_lease_header(&mut resp.header);
                Ok(resp)
            }
            other => Err(other.into_error()),
        }
    }

    /// Proposes checkpoints of remaining TTLs.
    pub async fn lease_checkpoint(
        &self,
        checkpoints: Vec<LeaseCheckpoint>,
    ) -> Result<(), ServerError> {
        let r = InternalRaftRequest {
            lease_checkpoint: Some(LeaseCheckpointRequest { checkpoints }),
            ..Default::default()
        };
        match self.propose(r).await? {
            ApplyOutcome::LeaseCheckpoint(_) => Ok(()),
            other => Err(other.into_error()),
        }
    }

    /// Renews a lease (keep-alive): on the leader directly, otherwise forwarded to it. Returns
    /// the TTL; a lease that does not exist is `ServerError::Lease(LeaseError::NotFound)`.
    pub async fn lease_renew(&self, id: i64) -> Result<i64, ServerError> {
        let deadline = tokio::time::Instant::now() + self.limits.request_timeout;
        loop {
            let leader = self.raft.status.leader();
            if leader == self.id {
                self.wait_applied_committed(super::forward::APPLY_WAIT)
                    .await?;
                match self.lease_renew_local(id).await {
                    Ok(ttl) => return Ok(ttl),
                    Err(LeaseError::NotPrimary) => {}
                    Err(e) => return Err(ServerError::Lease(e)),
                }
            } else if leader != 0 {
                if let (Some(fw), Some(urls)) = (self.lessor.forward.get(), self.peer_urls(leader))
                {
                    for url in urls {
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        match fw.renew(&url, id, left).await {
                            Ok(ttl) => return Ok(ttl),
                            Err(ForwardError::NotFound) => {
                                return Err(ServerError::Lease(LeaseError::NotFound))
                            }
                            Err(ForwardError::Retry(e)) => {
                                tracing::debug!(error = %e, "forwarding a lease renewal failed")
                            }
                        }
                    }
                }
            }
            if tokio::time::Instant::now() + FORWARD_RETRY >= deadline {
                return Err(if self.raft.status.leader() == 0 {
                    ServerError::NoLeader
                } else {
                    ServerError::Timeout
                });
            }
            tokio::time::sleep(FORWARD_RETRY).await;
        }
    }

    /// Renews on this member's lessor, which must be the primary. A checkpointed remaining TTL
    /// is cleared through raft by the lease loop (`run`), so that a later leader starts the
    /// lease from its full TTL; the renewal itself does not wait for it.
    pub async fn lease_renew_local(&self, id: i64) -> Result<i64, LeaseError> {
        let renewed = self.lessor.renew(id, self.limits.request_timeout).await?;
        Ok(renewed.ttl)
    }

    /// LeaseTimeToLive: answered by the leader. A lease that does not exist is reported with
    /// TTL -1, as etcd does.
    pub async fn lease_time_to_live(
        &self,
        req: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, ServerError> {
        let deadline = tokio::time::Instant::now() + self.limits.request_timeout;
        let id = req.id;
        let not_found = || LeaseTimeToLiveResponse {
            header: Some(ResponseHeader::default()),
            id,
            ttl: -1,
            ..Default::default()
        };
        let mut resp = loop {
            let leader = self.raft.status.leader();
            if leader == self.id {
                self.wait_applied_committed(super::forward::APPLY_WAIT)
                    .await?;
                break self
                    .lease_time_to_live_local(&req)
                    .unwrap_or_else(not_found);
            } else if leader != 0 {
                if let (Some(fw), Some(urls)) = (self.lessor.forward.get(), self.peer_urls(leader))
                {
                    let mut answer = None;
                    for url in urls {
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        match fw.time_to_live(&url, req, left).await {
                            Ok(resp) => {
                                answer = Some(resp);
                                break;
                            }
                            Err(ForwardError::NotFound) => {
                                answer = Some(not_found());
                                break;
                            }
                            Err(ForwardError::Retry(e)) => {
                                tracing::debug!(error = %e, "forwarding a lease time-to-live failed")
                            }
                        }
                    }
                    if let Some(resp) = answer {
                        break resp;
                    }
                }
            }
            if tokio::time::Instant::now() + FORWARD_RETRY >= deadline {
                return Err(if self.raft.status.leader() == 0 {
                    ServerError::NoLeader
                } else {
                    ServerError::Timeout
                });
            }
            tokio::time::sleep(FORWARD_RETRY).await;
        };
        resp.header = Some(self.header(self.store.get().current_revision()));
        Ok(resp)
    }

    /// The time-to-live answer of this member's lessor (`None`: no such lease).
    pub fn lease_time_to_live_local(
        &self,
        req: &LeaseTimeToLiveRequest,
    ) -> Option<LeaseTimeToLiveResponse> {
        let info = self.lessor.lookup(req.id)?;
        Some(LeaseTimeToLiveResponse {
            header: Some(ResponseHeader::default()),
            id: req.id,
            ttl: info.remaining,
            granted_ttl: info.granted_ttl,
            keys: if req.keys { info.keys } else { Vec::new() },
        })
    }

    /// LeaseLeases: every lease this member knows, from its own state.
    pub async fn lease_leases(&self) -> Result<LeaseLeasesResponse, ServerError> {
        Ok(LeaseLeasesResponse {
            header: Some(self.header(self.store.get().current_revision())),
            leases: self
                .lessor
                .leases()
                .into_iter()
                .map(|id| LeaseStatus { id })
                .collect(),
        })
    }

    /// Waits until the applied index reaches the commit index known now (etcd's apply wait).
    pub async fn wait_applied_committed(&self, timeout: Duration) -> Result<(), ServerError> {
        let target = self.raft.status.committed();
        let mut applied = self.applied.clone();
        let reached = tokio::time::timeout(timeout, async {
            applied.wait_for(|a| *a >= target).await.is_ok()
        })
        .await;
        match reached {
            Ok(true) => Ok(()),
            Ok(false) => Err(ServerError::Stopped),
            Err(_) => Err(ServerError::Timeout),
        }
    }

    fn fill_lease_header(&self, header: &mut Option<ResponseHeader>) {
        let rev = header.as_ref().map_or(0, |h| h.revision);
        let rev = if rev == 0 {
            self.store.get().current_revision()
        } else {
            rev
        };
        *header = Some(self.header(rev));
    }

    fn peer_urls(&self, id: u64) -> Option<Vec<String>> {
        let cluster = self.cluster.read();
        let m = cluster.member(id)?;
        (!m.peer_urls.is_empty()).then(|| m.peer_urls.clone())
    }
}

/// The leader's lease loop: every half second, propose the revocation of expired leases (rate
/// limited, at most 16 in flight) and the checkpoints that are due; as soon as renewals ask for
/// it, the checkpoints clearing their recorded remaining TTLs. Followers find nothing.
pub async fn run(server: Arc<EtcdServer>) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_REVOKES));
    let mut tick = tokio::time::interval(LOOP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let ticked = tokio::select! {
            _ = tick.tick() => true,
            _ = server.lessor.wake.notified() => false,
        };
        for clears in server.lessor.take_clears().chunks(MAX_CHECKPOINT_BATCH) {
            let server = server.clone();
            let clears = clears.to_vec();
            tokio::spawn(async move {
                if let Err(e) = server.lease_checkpoint(clears).await {
                    tracing::debug!(error = %e, "clearing lease checkpoints failed");
                }
            });
        }
        if !ticked {
            continue;
        }
        let expired = server.lessor.expired(REVOKE_RATE / 2);
        for id in expired {
            let Ok(permit) = pending.clone().acquire_owned().await else {
                return;
            };
            let server = server.clone();
            tokio::spawn(async move {
                if let Err(e) = server.lease_revoke(LeaseRevokeRequest { id }).await {
                    if e != ServerError::Lease(LeaseError::NotFound) {
                        tracing::warn!(lease_id = %format!("{id:016x}"), error = %e, "failed to revoke lease");
                    }
                }
                drop(permit);
            });
        }
        // Checkpoints, up to the checkpoint rate per second (half of it per round).
        for _ in 0..(REVOKE_RATE / 2) {
            let due = server.lessor.due_checkpoints(MAX_CHECKPOINT_BATCH);
            let full = due.len() == MAX_CHECKPOINT_BATCH;
            if !due.is_empty() {
                let server = server.clone();
                tokio::spawn(async move {
                    if let Err(e) = server.lease_checkpoint(due).await {
                        tracing::debug!(error = %e, "proposing lease checkpoints failed");
                    }
                });
            }
            if !full {
                break;
            }
        }
    }
}
