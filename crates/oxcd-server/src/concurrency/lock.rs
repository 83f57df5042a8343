//! Lock and Unlock: a mutex per name, held by the contender whose key was created first.

use std::sync::Arc;

use bytes::Bytes;
use oxcd_proto::etcdserverpb::DeleteRangeRequest;
use oxcd_proto::v3lockpb::{LockResponse, UnlockResponse};

use super::{contender_key, prefix_of, ConcurrencyError, WaitError};
use crate::server::EtcdServer;

/// Deletes a waiter's key if the wait is abandoned (the caller went away and dropped the
/// request's future): a key left behind would block every later contender until its lease
/// runs out.
struct AbandonGuard {
    server: Option<Arc<EtcdServer>>,
    key: Bytes,
}

impl AbandonGuard {
    fn disarm(&mut self) {
        self.server = None;
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let key = std::mem::take(&mut self.key);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = server.unlock(key.clone()).await {
                        tracing::warn!(
                            "failed to remove abandoned lock key {:?}: {e}",
                            String::from_utf8_lossy(&key)
                        );
                    }
                });
            }
        }
    }
}

impl EtcdServer {
    /// Acquires the lock `name` for `lease` (a fresh lease of `SESSION_TTL` seconds when 0):
    /// creates `<name>/<lease hex>` unless this lease already has it, then waits for every
    /// earlier contender to go. Returns the key, which stays until Unlock or the lease ends.
    ///
    /// A wait that fails, or is abandoned by dropping the future, removes the key again.
    pub async fn lock(
        self: &Arc<Self>,
        name: Bytes,
        lease: i64,
    ) -> Result<LockResponse, ConcurrencyError> {
        let lease = self.session_lease(lease).await?;
        let prefix = prefix_of(&name);
        let key = contender_key(&prefix, lease);
        let q = self
            .enqueue(&prefix, &key, Bytes::new(), lease, true)
            .await?;
        let owner = q.owner_rev.unwrap_or(0);
        if owner == 0 || owner == q.rev {
            // Uncontended: the txn's own read shows we are first.
            return Ok(LockResponse {
                header: Some(q.header),
                key,
            });
        }
        let mut guard = AbandonGuard {
            server: Some(self.clone()),
            key: key.clone(),
        };
        let waited = self.wait_turn(&prefix, &key, q.rev).await;
        guard.disarm();
        match waited {
            Ok(header) => Ok(LockResponse {
                header: Some(header),
                key,
            }),
            // The key is already gone with its lease.
            Err(WaitError::Expired) => Err(ConcurrencyError::LockSessionExpired),
            Err(WaitError::Server(e)) => {
                // etcd's mutex gives up its place on any failure of the wait.
                if let Err(del) = self.unlock(key.clone()).await {
                    tracing::warn!(
                        "failed to remove lock key {:?} after a failed wait: {del}",
                        String::from_utf8_lossy(&key)
                    );
                }
                Err(e.into())
            }
        }
    }

    /// Releases a lock: deletes its key (whatever it is; a missing key is not an error).
    pub async fn unlock(&self, key: Bytes) -> Result<UnlockResponse, ConcurrencyError> {
        let resp = self
            .delete_range(DeleteRangeRequest {
                key,
                ..Default::default()
            })
            .await?;
        Ok(UnlockResponse {
            header: resp.header,
        })
    }
}
