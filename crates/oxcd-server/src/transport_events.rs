//! How the server reacts to what the peer transport learns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use oxcd_raft::eraftpb::SnapshotMetadata;

use crate::apply::ApplyJob;
use crate::membership::id_hex;
use crate::peer::transport::TransportEvents;
use crate::store_handle::StoreHandle;

pub struct ServerTransportEvents {
    /// This member bootstrapped its cluster in this process and has not met a leader yet.
    pub fresh: bool,
    pub seen_leader: Arc<AtomicBool>,
    pub store: StoreHandle,
    pub apply_tx: std::sync::mpsc::Sender<ApplyJob>,
}

impl TransportEvents for ServerTransportEvents {
    fn cluster_id_mismatch(&self, local: u64, remote: u64) {
        // Only a member that never joined anything gives up: a healthy member must not be
        // stopped by a misconfigured stranger that happens to reach it.
        if self.fresh && !self.seen_leader.load(Ordering::Acquire) {
            crate::fatal(&format!(
                "conflicting cluster ID to the target cluster ({} != {}). Exiting.",
                id_hex(local),
                id_hex(remote)
            ));
        }
        tracing::error!(
            "request sent was ignored (cluster ID mismatch: remote={}, local={})",
            id_hex(remote),
            id_hex(local)
        );
    }

    fn removed_from_cluster(&self) {
        crate::exit_removed();
    }

    fn applied_snapshot(&self) -> Result<(SnapshotMetadata, Bytes), String> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.apply_tx
            .send(ApplyJob::PinSnapshot { reply })
            .map_err(|_| "the applier has stopped".to_string())?;
        let (meta, pinned) = rx
            .blocking_recv()
            .map_err(|_| "the applier has stopped".to_string())??;
        let tmp = self.store.get().path().with_extension("snapshot-out");
        pinned.export_to(&tmp).map_err(|e| e.to_string())?;
        drop(pinned);
        let data = std::fs::read(&tmp).map_err(|e| e.to_string());
        let _ = std::fs::remove_file(&tmp);
        data.map(|d| (meta, Bytes::from(d)))
    }
}
