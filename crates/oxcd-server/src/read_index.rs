//! Linearizable reads, batched: every read that arrives while one ReadIndex round is in flight
//! joins the next round, so a thousand concurrent reads cost one raft round trip. A read is
//! released once this member has applied up to the index the leader confirmed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oxcd_raft::{Command, RaftHandle, ReadState};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};

use crate::errors::ServerError;

/// ReadIndex requests are re-sent at this interval while unanswered (a lost message, or a
/// leader election in between).
const RETRY_INTERVAL: Duration = Duration::from_millis(500);
const QUEUE: usize = 65536;

type Reply = oneshot::Sender<Result<(), ServerError>>;

/// Where read states from the raft thread meet the rounds waiting for them.
#[derive(Default)]
pub struct ReadStateHub {
    pending: Mutex<HashMap<u64, oneshot::Sender<u64>>>,
}

impl ReadStateHub {
    pub fn deliver(&self, states: Vec<ReadState>) {
        let mut pending = self.pending.lock();
        for s in states {
            let Ok(ctx) = <[u8; 8]>::try_from(s.request_ctx.as_slice()) else {
                continue;
            };
            if let Some(tx) = pending.remove(&u64::from_be_bytes(ctx)) {
                let _ = tx.send(s.index);
            }
        }
    }
}

#[derive(Clone)]
pub struct ReadIndexer {
    tx: mpsc::Sender<Reply>,
}

impl ReadIndexer {
    pub fn start(
        raft: RaftHandle,
        hub: Arc<ReadStateHub>,
        applied: watch::Receiver<u64>,
        timeout: Duration,
        member_id: u64,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(
            raft,
            hub,
            applied,
            rx,
            timeout,
            first_context(member_id),
        ));
        ReadIndexer { tx }
    }

    /// Resolves once a read served from the local store is linearizable.
    pub async fn wait(&self) -> Result<(), ServerError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .try_send(tx)
            .map_err(|_| ServerError::TooManyRequests)?;
        rx.await.map_err(|_| ServerError::Stopped)?
    }
}

/// The first ReadIndex context of this member. The leader keeps one pending read per context,
/// whichever member asked: contexts must not collide across members (or restarts), or the
/// leader drops one of two equal ones and that read waits for a retry. etcd's request-ID
/// layout gives that: the member's low 16 bits, then time, then a counter.
fn first_context(member_id: u64) -> u64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    ((member_id & 0xffff) << 48) | ((now_ms << 8) & ((1 << 48) - 1))
}

async fn run(
    raft: RaftHandle,
    hub: Arc<ReadStateHub>,
    mut applied: watch::Receiver<u64>,
    mut rx: mpsc::Receiver<Reply>,
    timeout: Duration,
    first_ctx: u64,
) {
    let next_ctx = AtomicU64::new(first_ctx);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let result = round(&raft, &hub, &mut applied, &next_ctx, timeout).await;
        for reply in batch {
            let _ = reply.send(result.clone());
        }
    }
}

async fn round(
    raft: &RaftHandle,
    hub: &ReadStateHub,
    applied: &mut watch::Receiver<u64>,
    next_ctx: &AtomicU64,
    timeout: Duration,
) -> Result<(), ServerError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let index = loop {
        let ctx = next_ctx.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = oneshot::channel();
        hub.pending.lock().insert(ctx, tx);
        let sent = raft.try_send(Command::ReadIndex {
            ctx: ctx.to_be_bytes().to_vec(),
        });
        if sent.is_ok() {
            let wait =
                RETRY_INTERVAL.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            if let Ok(Ok(index)) = tokio::time::timeout(wait, &mut rx).await {
                break index;
            }
        }
        hub.pending.lock().remove(&ctx);
        if tokio::time::Instant::now() >= deadline {
            return Err(if raft.status.leader() == 0 {
                ServerError::NoLeader
            } else {
                ServerError::Timeout
            });
        }
        if sent.is_err() {
            tokio::time::sleep(RETRY_INTERVAL / 10).await;
        }
    };
    let wait_applied = applied.wait_for(|a| *a >= index);
    match tokio::time::timeout_at(deadline, wait_applied).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(ServerError::Stopped),
        Err(_) => Err(ServerError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_of_different_members_do_not_collide() {
        let (a, b) = (first_context(0x1111), first_context(0x2222));
        assert_ne!(a >> 48, b >> 48);
        // a member's counter would need 2^40 reads to reach another member's range
        assert!(a.abs_diff(b) > 1 << 40);
    }
}
