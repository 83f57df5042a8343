//! Distributed locks and leader elections served by the member itself: the logic behind
//! etcd's `v3lockpb.Lock` and `v3electionpb.Election` gRPC services.
//!
//! Both are built from ordinary keys, in etcd's layout, so that clients that implement the
//! same recipes on the client side (etcdctl's `lock` and `elect` commands) interoperate:
//!
//! * A contender for the lock or election `name` owns the key `<name>/<lease in hex>`,
//!   attached to its lease and created in a txn only if it does not exist yet (a contender
//!   that asks again with the same lease takes its existing key back).
//! * The contenders queue in the order of their keys' create revisions: the owner (lock
//!   holder, election leader) is the key with the lowest create revision under `<name>/`.
//! * A contender waits until every key under the prefix with a smaller create revision is
//!   gone ([`EtcdServer::wait_turn`]). The wait reads the predecessors once (one linearizable
//!   read, together with the contender's own key) and then follows the deletions under the
//!   prefix with a watch that starts right after that read, so nothing is polled and nothing
//!   is missed. The contender's own key going away (its lease expired or was revoked) ends the
//!   wait with a "session expired" error.
//! * A request that is given no lease (ID 0) gets a fresh lease of [`SESSION_TTL`] seconds,
//!   which nobody keeps alive, as etcd's server-side sessions do.
//!
//! Everything goes through `EtcdServer`'s own txn, range and watch hub: no network client.

mod election;
mod lock;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use bytes::{BufMut, Bytes, BytesMut};
use oxcd_proto::etcdserverpb::{
    compare, request_op, response_op, watch_request::RequestUnion, Compare, LeaseGrantRequest,
    RangeRequest, RangeResponse, RequestOp, ResponseHeader, TxnRequest, TxnResponse,
    WatchCreateRequest, WatchRequest, WatchResponse,
};
use oxcd_proto::mvccpb::{event::EventType, KeyValue};
use tokio::sync::mpsc;

use crate::errors::ServerError;
use crate::server::EtcdServer;

pub use election::Observer;

/// The TTL (seconds) of the lease granted to a request that names none (etcd's default
/// session TTL).
pub const SESSION_TTL: i64 = 60;

/// Responses buffered between a private watch and its reader.
const WATCH_BUFFER: usize = 16;

/// Errors of the lock and election requests, with etcd's texts. etcd serves these services
/// through an internal client, so every error reaches the caller as a plain error (gRPC code
/// `Unknown`) carrying the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConcurrencyError {
    #[error("{0}")]
    Server(#[from] ServerError),
    #[error("election: not leader")]
    NotLeader,
    #[error("election: no leader")]
    NoLeader,
    #[error("\"leader\" field must be provided")]
    MissingLeaderKey,
    /// A lock waiter's key disappeared (its lease expired or was revoked).
    #[error("mutex: session is expired")]
    LockSessionExpired,
    /// A candidate's key disappeared (its lease expired or was revoked).
    #[error("election: session expired")]
    ElectionSessionExpired,
}

impl ConcurrencyError {
    /// The gRPC code the caller sees: etcd turns every error of these services into
    /// `Unknown`, the status of a plain Go error returned by a handler.
    pub fn code(&self) -> tonic::Code {
        tonic::Code::Unknown
    }
}

/// Why a wait for predecessors ended without the turn.
#[derive(Debug)]
pub(crate) enum WaitError {
    /// The waiter's own key is gone.
    Expired,
    Server(ServerError),
}

impl From<ServerError> for WaitError {
    fn from(e: ServerError) -> Self {
        WaitError::Server(e)
    }
}

/// `<name>/`.
pub(crate) fn prefix_of(name: &[u8]) -> Bytes {
    let mut p = BytesMut::with_capacity(name.len() + 1);
    p.put_slice(name);
    p.put_u8(b'/');
    p.freeze()
}

/// `<prefix><lease in lower-case hex>`, formatted like Go's `%x` of a signed ID.
pub(crate) fn contender_key(prefix: &[u8], lease: i64) -> Bytes {
    let hex = if lease < 0 {
        format!("-{:x}", lease.unsigned_abs())
    } else {
        format!("{lease:x}")
    };
    let mut k = BytesMut::with_capacity(prefix.len() + hex.len());
    k.put_slice(prefix);
    k.put_slice(hex.as_bytes());
    k.freeze()
}

/// The end of the range of every key that starts with `prefix` (etcd's rule: increment the
/// last byte that is not 0xff and cut after it; a prefix of only 0xff bytes means "to the end
/// of the key space", `\0`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Bytes {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Bytes::from(end);
        }
    }
    Bytes::from_static(b"\0")
}

pub(crate) fn range_op(req: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(req)),
    }
}

/// The compare `create_revision(key) == rev`.
pub(crate) fn created_at(key: &Bytes, rev: i64) -> Compare {
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Create as i32,
        key: key.clone(),
        target_union: Some(compare::TargetUnion::CreateRevision(rev)),
        range_end: Bytes::new(),
    }
}

/// The range of the first-created key under `prefix` (etcd's "first create" read).
pub(crate) fn first_created(prefix: &Bytes) -> RangeRequest {
    use oxcd_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
    RangeRequest {
        key: prefix.clone(),
        range_end: prefix_end(prefix),
        limit: 1,
        sort_order: SortOrder::Ascend as i32,
        sort_target: SortTarget::Create as i32,
        ..Default::default()
    }
}

/// The range response of the `i`th operation of a txn response.
pub(crate) fn txn_range(resp: &TxnResponse, i: usize) -> Option<&RangeResponse> {
    match resp.responses.get(i)?.response.as_ref()? {
        response_op::Response::ResponseRange(r) => Some(r),
        _ => None,
    }
}

/// The outcome of a contender's enqueue txn.
pub(crate) struct Enqueued {
    /// The create revision of the contender's key.
    pub rev: i64,
    /// The txn's header.
    pub header: ResponseHeader,
    /// The key was already there (the same lease asked before).
    pub existing: Option<KeyValue>,
    /// The create revision of the first key under the prefix, if the txn read it.
    pub owner_rev: Option<i64>,
}

/// An event of a private watch.
pub(crate) enum Watched {
    Events(WatchResponse),
    /// The watch cannot continue from where it was (compacted, or cancelled by the hub): the
    /// caller reads the current state again.
    Restart,
}

/// A watch served by the member's own hub, without a client stream. Dropping it ends the
/// hub's task.
pub(crate) struct PrivateWatch {
    rx: mpsc::Receiver<WatchResponse>,
}

impl PrivateWatch {
    /// The next response that carries events (or a restart). `Err` when the hub is gone (the
    /// member is stopping).
    pub async fn next(&mut self) -> Result<Watched, ServerError> {
        loop {
            let resp = self.rx.recv().await.ok_or(ServerError::Stopped)?;
            if resp.canceled || resp.compact_revision != 0 {
                return Ok(Watched::Restart);
            }
            if resp.events.is_empty() {
                // The creation notice, or a progress notification.
                continue;
            }
            return Ok(Watched::Events(resp));
        }
    }
}

impl EtcdServer {
    /// The lease a server-side session uses: the one asked for, or a fresh one.
    pub(crate) async fn session_lease(&self, lease: i64) -> Result<i64, ServerError> {
        if lease != 0 {
            return Ok(lease);
        }
        let resp = self
            .lease_grant(LeaseGrantRequest {
                ttl: SESSION_TTL,
                id: 0,
            })
            .await?;
        Ok(resp.id)
    }

    /// Watches `key..range_end` (a single key when `range_end` is empty) from `start_rev` on.
    pub(crate) fn private_watch(
        &self,
        key: Bytes,
        range_end: Bytes,
        start_rev: i64,
    ) -> PrivateWatch {
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key,
                range_end,
                start_revision: start_rev,
                ..Default::default()
            })),
        };
        tokio::spawn(
            self.watch
                .clone()
                .serve(futures::stream::iter([create]), tx),
        );
        PrivateWatch { rx }
    }

    /// Creates the contender's key `key` (under `prefix`) with `value` and `lease` unless it
    /// exists, and reads the first-created key under the prefix in the same txn when
    /// `read_owner` is set.
    pub(crate) async fn enqueue(
        &self,
        prefix: &Bytes,
        key: &Bytes,
        value: Bytes,
        lease: i64,
        read_owner: bool,
    ) -> Result<Enqueued, ServerError> {
        use oxcd_proto::etcdserverpb::PutRequest;
        let put = RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: key.clone(),
                value,
                lease,
                ..Default::default()
            })),
        };
        let get = range_op(RangeRequest {
            key: key.clone(),
            ..Default::default()
        });
        let mut success = vec![put];
        let mut failure = vec![get];
        if read_owner {
            success.push(range_op(first_created(prefix)));
            failure.push(range_op(first_created(prefix)));
        }
        let resp = self
            .txn(TxnRequest {
                compare: vec![created_at(key, 0)],
                success,
                failure,
            })
            .await?;
        let header = resp.header.unwrap_or_default();
        let (rev, existing) = if resp.succeeded {
            (header.revision, None)
        } else {
            let kv = txn_range(&resp, 0)
                .and_then(|r| r.kvs.first())
                .cloned()
                // Deleted between the compare and the read cannot happen inside one txn.
                .ok_or_else(|| ServerError::Internal("lock key vanished in its txn".into()))?;
            (kv.create_revision, Some(kv))
        };
        let owner_rev = if read_owner {
            Some(
                txn_range(&resp, 1)
                    .and_then(|r| r.kvs.first())
                    .map_or(0, |kv| kv.create_revision),
            )
        } else {
            None
        };
        Ok(Enqueued {
            rev,
            header,
            existing,
            owner_rev,
        })
    }

    /// Waits until no key under `prefix` has a create revision below `rev`, the create
    /// revision of the waiter's own `key`. Returns the header of the moment the turn came.
    /// Fails with [`WaitError::Expired`] when `key` itself is deleted meanwhile.
    pub(crate) async fn wait_turn(
        &self,
        prefix: &Bytes,
        key: &Bytes,
        rev: i64,
    ) -> Result<ResponseHeader, WaitError> {
        let end = prefix_end(prefix);
        loop {
            // The predecessors and the waiter's own key, from one consistent view.
            let preds = RangeRequest {
                key: prefix.clone(),
                range_end: end.clone(),
                max_create_revision: rev - 1,
                keys_only: true,
                ..Default::default()
            };
            let mine = RangeRequest {
                key: key.clone(),
                keys_only: true,
                ..Default::default()
            };
            let resp = self
                .txn(TxnRequest {
                    compare: vec![],
                    success: vec![range_op(preds), range_op(mine)],
                    failure: vec![],
                })
                .await?;
            let header = resp.header.unwrap_or_default();
            let mut waiting: HashSet<Bytes> = txn_range(&resp, 0)
                .map(|r| r.kvs.iter().map(|kv| kv.key.clone()).collect())
                .unwrap_or_default();
            let mine_alive = txn_range(&resp, 1)
                .is_some_and(|r| r.kvs.iter().any(|kv| kv.create_revision == rev));
            if !mine_alive {
                return Err(WaitError::Expired);
            }
            if waiting.is_empty() {
                return Ok(header);
            }
            let mut watch = self.private_watch(prefix.clone(), end.clone(), header.revision + 1);
            loop {
                let resp = match watch.next().await? {
                    Watched::Events(resp) => resp,
                    Watched::Restart => break,
                };
                for ev in &resp.events {
                    if ev.r#type != EventType::Delete as i32 {
                        // A put never gives a key a smaller create revision than ours.
                        continue;
                    }
                    let Some(kv) = ev.kv.as_ref() else { continue };
                    if kv.key == *key {
                        return Err(WaitError::Expired);
                    }
                    waiting.remove(&kv.key);
                }
                if waiting.is_empty() {
                    let revision = resp.header.as_ref().map_or(0, |h| h.revision);
                    return Ok(self.header(revision));
                }
            }
        }
    }
}
