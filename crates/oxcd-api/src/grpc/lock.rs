//! The v3lock `Lock` service (etcd's `v3lockpb.Lock`): Lock waits for the named lock and
//! answers with the holder's key; Unlock deletes a key. The work is done by `EtcdServer`'s
//! lock methods (`oxcd_server::concurrency`). A Lock call whose client goes away stops waiting
//! and gives its place up.

use std::sync::Arc;

use oxcd_proto::v3lockpb::lock_server::Lock;
use oxcd_proto::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};
use oxcd_server::concurrency::ConcurrencyError;
use oxcd_server::EtcdServer;
use tonic::{Request, Response, Status};

pub struct LockService {
    pub server: Arc<EtcdServer>,
}

/// etcd reports every error of these services as a plain error: code `Unknown`, its text.
pub(super) fn concurrency_status(e: ConcurrencyError) -> Status {
    Status::new(e.code(), e.to_string())
}

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, req: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        let req = req.into_inner();
        self.server
            .lock(req.name, req.lease)
            .await
            .map(Response::new)
            .map_err(concurrency_status)
    }

    async fn unlock(
        &self,
        req: Request<UnlockRequest>,
    ) -> Result<Response<UnlockResponse>, Status> {
        self.server
            .unlock(req.into_inner().key)
            .await
            .map(Response::new)
            .map_err(concurrency_status)
    }
}
