//! The Maintenance service: Status now; alarms, hashes, snapshots, defragmentation and leader
//! moves come with the maintenance work.

use std::sync::Arc;

use oxcd_proto::etcdserverpb::maintenance_server::Maintenance;
use oxcd_proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, HashKvRequest,
    HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest, MoveLeaderResponse,
    SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use oxcd_server::EtcdServer;
use tonic::{Request, Response, Status};

/// etcd streams snapshots in 32 KiB pieces.
const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;

pub struct MaintenanceService {
    pub server: Arc<EtcdServer>,
}

type SnapshotStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        use oxcd_proto::etcdserverpb::alarm_request::AlarmAction;
        let req = req.into_inner();
        let alarms = if req.action == AlarmAction::Get as i32 {
            self.server.alarms.list()
        } else {
            let r = oxcd_proto::etcdserverpb::InternalRaftRequest {
                alarm: Some(req),
                ..Default::default()
            };
            match self.server.propose(r).await.map_err(super::status)? {
                oxcd_server::ApplyOutcome::Alarm(list) => list,
                other => return Err(super::status(other.into_error())),
            }
        };
        let rev = self.server.store.get().current_revision();
        Ok(Response::new(AlarmResponse {
            header: Some(self.server.header(rev)),
            alarms,
        }))
    }

    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let st = self.server.raft_status();
        let store = self.server.store.get();
        let db_size = store.size_bytes() as i64;
        let is_learner = self
            .server
            .cluster
            .read()
            .local()
            .is_some_and(|m| m.is_learner);
        let mut errors = self.server.alarms.status_errors();
        if st.leader == 0 {
            errors.push("etcdserver: no leader".to_string());
        }
        Ok(Response::new(StatusResponse {
            header: Some(self.server.header(store.current_revision())),
            version: oxcd_server::peer::SERVER_VERSION.to_string(),
            db_size,
            leader: st.leader,
            raft_index: st.committed.max(st.applied),
            raft_term: st.term,
            raft_applied_index: st.applied,
            errors,
            db_size_in_use: db_size,
            is_learner,
        }))
    }

    async fn defragment(
        &self,
        _req: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        self.server.defragment().await.map_err(super::status)?;
        let rev = self.server.store.get().current_revision();
        Ok(Response::new(DefragmentResponse {
            header: Some(self.server.header(rev)),
        }))
    }

    async fn hash(&self, _req: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let h = self.server.hash_kv(0).map_err(super::status)?;
        Ok(Response::new(HashResponse {
            header: Some(self.server.header(h.revision)),
            hash: h.hash,
        }))
    }

    async fn hash_kv(
        &self,
        req: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        let h = self
            .server
            .hash_kv(req.into_inner().revision)
            .map_err(super::status)?;
        Ok(Response::new(HashKvResponse {
            header: Some(self.server.header(h.revision)),
            hash: h.hash,
            compact_revision: h.compact_revision,
        }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        _req: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        let blob = self.server.snapshot_blob().await.map_err(super::status)?;
        let header = self
            .server
            .header(self.server.store.get().current_revision());
        let total = blob.len();
        let chunks: Vec<Result<SnapshotResponse, Status>> = (0..total)
            .step_by(SNAPSHOT_CHUNK_BYTES)
            .map(|start| {
                let end = (start + SNAPSHOT_CHUNK_BYTES).min(total);
                Ok(SnapshotResponse {
                    header: Some(header),
                    remaining_bytes: (total - end) as u64,
                    blob: blob.slice(start..end),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    async fn move_leader(
        &self,
        req: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        self.server
            .move_leader(req.into_inner().target_id)
            .await
            .map_err(super::status)?;
        let rev = self.server.store.get().current_revision();
        Ok(Response::new(MoveLeaderResponse {
            header: Some(self.server.header(rev)),
        }))
    }
}
