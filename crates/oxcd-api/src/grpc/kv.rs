//! The KV service: Range, Put, DeleteRange, Txn, Compact.

use std::sync::Arc;

use oxcd_proto::etcdserverpb::kv_server::Kv;
use oxcd_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use oxcd_server::EtcdServer;
use tonic::{Request, Response, Status};

use super::status;

pub struct KvService {
    pub server: Arc<EtcdServer>,
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        self.server
            .range(req.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        self.server
            .put(req.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn delete_range(
        &self,
        req: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        self.server
            .delete_range(req.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn txn(&self, req: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        self.server
            .txn(req.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn compact(
        &self,
        req: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        self.server
            .compact(req.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }
}
