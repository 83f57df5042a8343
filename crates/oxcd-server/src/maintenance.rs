//! Maintenance operations that need the server: hashes for corruption checks, and moving
//! the leadership.

use std::time::{Duration, Instant};

use oxcd_mvcc::KvError;

use crate::errors::ServerError;
use crate::membership::id_hex;
use crate::server::EtcdServer;

impl EtcdServer {
    /// `etcdctl defrag`: the applier rewrites the backend between two batches.
    pub async fn defragment(&self) -> Result<(), ServerError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.apply_tx
            .send(crate::apply::ApplyJob::Defragment { reply })
            .map_err(|_| ServerError::Stopped)?;
        rx.await
            .map_err(|_| ServerError::Stopped)?
            .map_err(ServerError::Internal)
    }
}

pub struct KvHash {
    pub hash: u32,
    pub revision: i64,
    pub compact_revision: i64,
}

impl EtcdServer {
    /// The hash of the key-value history up to `revision` (0: the current one), which members
    /// holding the same data agree on (`etcdctl endpoint hashkv`).
    pub fn hash_kv(&self, revision: i64) -> Result<KvHash, ServerError> {
        let view = self
            .store
            .get()
            .read()
            .map_err(|e| ServerError::Internal(e.to_string()))?;
        let h = view.hash_kv(revision).map_err(KvError::from)?;
        Ok(KvHash {
            hash: h.hash,
            revision: h.current_rev,
            compact_revision: h.compact_rev,
        })
    }

    /// Hands the leadership to `target` and waits until it has taken over. Only the leader can
    /// do this, and only to a voting member.
    pub async fn move_leader(&self, target: u64) -> Result<(), ServerError> {
        if !self.raft.status.is_leader() {
            return Err(ServerError::NotLeader);
        }
        let is_voter = self
            .cluster
            .read()
            .member(target)
            .is_some_and(|m| !m.is_learner);
        if !is_voter {
            return Err(ServerError::BadLeaderTransferee);
        }
        if target == self.id {
            return Ok(());
        }
        let started = Instant::now();
        tracing::info!(
            "{} starts leadership transfer from {} to {}",
            id_hex(self.id),
            id_hex(self.id),
            id_hex(target)
        );
        self.raft
            .try_send(oxcd_raft::Command::TransferLeader(target))
            .map_err(|_| ServerError::TooManyRequests)?;
        let deadline = started + self.limits.request_timeout;
        while self.raft.status.leader() != target {
            if Instant::now() >= deadline {
                return Err(ServerError::LeaderTransferTimeout);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(
            "{} finished leadership transfer from {} to {} (took {:?})",
            id_hex(self.id),
            id_hex(self.id),
            id_hex(target),
            started.elapsed()
        );
        Ok(())
    }
}

impl EtcdServer {
    /// A consistent copy of the whole store, for `etcdctl snapshot save`: the database padded
    /// to a multiple of 512 bytes, as etcd's clients expect of a database file, followed by
    /// its SHA-256, which they check.
    pub async fn snapshot_blob(&self) -> Result<bytes::Bytes, ServerError> {
        let store = self.store.get();
        let tmp = store
            .path()
            .with_extension(format!("snapshot-{}", self.next_request_id()));
        let data = tokio::task::spawn_blocking(move || {
            let res = store.export_to(&tmp).map_err(|e| e.to_string());
            let data = res.and_then(|()| std::fs::read(&tmp).map_err(|e| e.to_string()));
            let _ = std::fs::remove_file(&tmp);
            data
        })
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))?
        .map_err(ServerError::Internal)?;
        let mut data = data;
        let padded = data.len().div_ceil(512) * 512;
        data.resize(padded, 0);
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&data);
        data.extend_from_slice(&digest);
        Ok(bytes::Bytes::from(data))
    }
}
