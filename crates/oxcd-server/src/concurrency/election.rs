//! Campaign, Proclaim, Leader, Observe and Resign: an election per name, led by the candidate
//! whose key was created first; the leader's key holds its proclaimed value.

use std::sync::Arc;

use bytes::Bytes;
use oxcd_proto::etcdserverpb::ResponseHeader;
use oxcd_proto::etcdserverpb::{request_op, DeleteRangeRequest, PutRequest, RequestOp, TxnRequest};
use oxcd_proto::mvccpb::{event::EventType, KeyValue};
use oxcd_proto::v3electionpb::{
    CampaignResponse, LeaderKey, LeaderResponse, ProclaimResponse, ResignResponse,
};
use tokio::sync::mpsc;

use super::{
    contender_key, created_at, first_created, prefix_end, prefix_of, ConcurrencyError, WaitError,
    Watched,
};
use crate::errors::ServerError;
use crate::server::EtcdServer;

/// Leader responses buffered for a slow observer.
const OBSERVE_BUFFER: usize = 16;

/// Resigns a candidacy whose wait was abandoned (the caller went away), as etcd does when a
/// campaign's context is cancelled.
struct AbandonGuard {
    server: Option<Arc<EtcdServer>>,
    leader: LeaderKey,
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let leader = std::mem::take(&mut self.leader);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = server.resign(Some(leader)).await {
                        tracing::warn!("failed to resign an abandoned campaign: {e}");
                    }
                });
            }
        }
    }
}

/// The stream of an Observe request: the current leader, then every change of leader or of
/// its value, in revision order. Ends when the member stops or a read fails.
pub struct Observer {
    rx: mpsc::Receiver<LeaderResponse>,
}

impl Observer {
    pub async fn next(&mut self) -> Option<LeaderResponse> {
        self.rx.recv().await
    }

    pub fn into_receiver(self) -> mpsc::Receiver<LeaderResponse> {
        self.rx
    }
}

impl EtcdServer {
    /// Campaigns for leadership of `name` with `lease` (a fresh lease of `SESSION_TTL`
    /// seconds when 0) and `value`: creates `<name>/<lease hex>` unless this lease already has
    /// it (then proclaims `value` if it differs), and waits for every earlier candidate to go.
    ///
    /// A campaign abandoned by dropping the future resigns; a wait that fails otherwise leaves
    /// the key in place, as etcd does.
    pub async fn campaign(
        self: &Arc<Self>,
        name: Bytes,
        lease: i64,
        value: Bytes,
    ) -> Result<CampaignResponse, ConcurrencyError> {
        let lease = self.session_lease(lease).await?;
        let prefix = prefix_of(&name);
        let key = contender_key(&prefix, lease);
        let q = self
            .enqueue(&prefix, &key, value.clone(), lease, false)
            .await?;
        let leader = LeaderKey {
            name,
            key: key.clone(),
            rev: q.rev,
            lease,
        };
        if let Some(kv) = &q.existing {
            if kv.value != value {
                if let Err(e) = self.proclaim(Some(leader.clone()), value).await {
                    let _ = self.resign(Some(leader)).await;
                    return Err(e);
                }
            }
        }
        let mut guard = AbandonGuard {
            server: Some(self.clone()),
            leader: leader.clone(),
        };
        let waited = self.wait_turn(&prefix, &key, q.rev).await;
        guard.server = None;
        match waited {
            Ok(_) => Ok(CampaignResponse {
                header: Some(q.header),
                leader: Some(leader),
            }),
            Err(WaitError::Expired) => Err(ConcurrencyError::ElectionSessionExpired),
            Err(WaitError::Server(e)) => Err(e.into()),
        }
    }

    /// Sets the leader's value, if `leader` still leads (its key exists with the same create
    /// revision); "election: not leader" otherwise. A lease of 0 attaches a fresh lease, as
    /// etcd's server-side session does.
    pub async fn proclaim(
        &self,
        leader: Option<LeaderKey>,
        value: Bytes,
    ) -> Result<ProclaimResponse, ConcurrencyError> {
        let leader = leader.ok_or(ConcurrencyError::MissingLeaderKey)?;
        let lease = self.session_lease(leader.lease).await?;
        let put = RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: leader.key.clone(),
                value,
                lease,
                ..Default::default()
            })),
        };
        let resp = self
            .txn(TxnRequest {
                compare: vec![created_at(&leader.key, leader.rev)],
                success: vec![put],
                failure: vec![],
            })
            .await?;
        if !resp.succeeded {
            return Err(ConcurrencyError::NotLeader);
        }
        Ok(ProclaimResponse {
            header: resp.header,
        })
    }

    /// Gives up leadership (or candidacy): deletes the key if it still has the create
    /// revision of `leader`. Not an error if it does not.
    pub async fn resign(
        &self,
        leader: Option<LeaderKey>,
    ) -> Result<ResignResponse, ConcurrencyError> {
        let leader = leader.ok_or(ConcurrencyError::MissingLeaderKey)?;
        let delete = RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(
                DeleteRangeRequest {
                    key: leader.key.clone(),
                    ..Default::default()
                },
            )),
        };
        let resp = self
            .txn(TxnRequest {
                compare: vec![created_at(&leader.key, leader.rev)],
                success: vec![delete],
                failure: vec![],
            })
            .await?;
        Ok(ResignResponse {
            header: resp.header,
        })
    }

    /// The current leader of `name`: the first-created key under `<name>/`.
    pub async fn election_leader(&self, name: Bytes) -> Result<LeaderResponse, ConcurrencyError> {
        let (header, kv) = self.current_leader(&prefix_of(&name)).await?;
        match kv {
            Some(kv) => Ok(LeaderResponse {
                header: Some(header),
                kv: Some(kv),
            }),
            None => Err(ConcurrencyError::NoLeader),
        }
    }

    async fn current_leader(
        &self,
        prefix: &Bytes,
    ) -> Result<(ResponseHeader, Option<KeyValue>), ServerError> {
        let mut resp = self.range(first_created(prefix)).await?;
        let kv = if resp.kvs.is_empty() {
            None
        } else {
            Some(resp.kvs.swap_remove(0))
        };
        Ok((resp.header.unwrap_or_default(), kv))
    }

    /// Follows the leadership of `name`: the current leader (or the first one to come), then
    /// each new value it proclaims, then its successor once its key is gone, and so on. The
    /// work stops when the returned [`Observer`] is dropped.
    pub fn observe(self: &Arc<Self>, name: Bytes) -> Observer {
        let (tx, rx) = mpsc::channel(OBSERVE_BUFFER);
        let server = self.clone();
        tokio::spawn(async move {
            let prefix = prefix_of(&name);
            tokio::select! {
                r = server.follow_leaders(&prefix, &tx) => {
                    if let Err(e) = r {
                        tracing::debug!("election observer of {:?} ended: {e}",
                            String::from_utf8_lossy(&name));
                    }
                }
                _ = tx.closed() => {}
            }
        });
        Observer { rx }
    }

    async fn follow_leaders(
        &self,
        prefix: &Bytes,
        tx: &mpsc::Sender<LeaderResponse>,
    ) -> Result<(), ServerError> {
        let send = |header: ResponseHeader, kv: KeyValue| async move {
            tx.send(LeaderResponse {
                header: Some(header),
                kv: Some(kv),
            })
            .await
            .map_err(|_| ServerError::Stopped)
        };
        // The last (key, mod revision) sent, so that a restart never repeats it.
        let mut last: Option<(Bytes, i64)> = None;
        'leaders: loop {
            let (header, kv) = self.current_leader(prefix).await?;
            let (header, kv) = match kv {
                Some(kv) => (header, kv),
                None => {
                    // Nobody leads: the first key put under the prefix is the next leader.
                    let mut w =
                        self.private_watch(prefix.clone(), prefix_end(prefix), header.revision + 1);
                    loop {
                        let resp = match w.next().await? {
                            Watched::Events(resp) => resp,
                            Watched::Restart => continue 'leaders,
                        };
                        let put = resp.events.into_iter().find_map(|ev| {
                            (ev.r#type == EventType::Put as i32)
                                .then_some(ev.kv)
                                .flatten()
                        });
                        if let Some(kv) = put {
                            break (self.header(kv.mod_revision), kv);
                        }
                    }
                }
            };
            let key = kv.key.clone();
            let seen = Some((kv.key.clone(), kv.mod_revision));
            if last != seen {
                last = seen;
                send(header, kv).await?;
            }
            // Follow the leader's key until it goes.
            let mut w = self.private_watch(key.clone(), Bytes::new(), header.revision + 1);
            loop {
                let resp = match w.next().await? {
                    Watched::Events(resp) => resp,
                    Watched::Restart => continue 'leaders,
                };
                let revision = resp.header.as_ref().map_or(0, |h| h.revision);
                for ev in resp.events {
                    if ev.r#type == EventType::Delete as i32 {
                        continue 'leaders;
                    }
                    if let Some(kv) = ev.kv {
                        last = Some((kv.key.clone(), kv.mod_revision));
                        send(self.header(revision), kv).await?;
                    }
                }
            }
        }
    }
}
