//! The v3election `Election` service (etcd's `v3electionpb.Election`): Campaign, Proclaim,
//! Leader, Observe (a server stream) and Resign. The work is done by `EtcdServer`'s election
//! methods (`oxcd_server::concurrency`).

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use oxcd_proto::v3electionpb::election_server::Election;
use oxcd_proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse,
};
use oxcd_server::EtcdServer;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::lock::concurrency_status;

pub struct ElectionService {
    pub server: Arc<EtcdServer>,
}

type ObserveStream = Pin<Box<dyn Stream<Item = Result<LeaderResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(
        &self,
        req: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        let req = req.into_inner();
        self.server
            .campaign(req.name, req.lease, req.value)
            .await
            .map(Response::new)
            .map_err(concurrency_status)
    }

    async fn proclaim(
        &self,
        req: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        let req = req.into_inner();
        self.server
            .proclaim(req.leader, req.value)
            .await
            .map(Response::new)
            .map_err(concurrency_status)
    }

    async fn leader(
        &self,
        req: Request<LeaderRequest>,
    ) -> Result<Response<LeaderResponse>, Status> {
        self.server
            .election_leader(req.into_inner().name)
            .await
            .map(Response::new)
            .map_err(concurrency_status)
    }

    type ObserveStream = ObserveStream;

    async fn observe(
        &self,
        req: Request<LeaderRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        // The observer's task ends when this stream is dropped (the client went away).
        let observer = self.server.observe(req.into_inner().name);
        let stream = ReceiverStream::new(observer.into_receiver()).map(Ok);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn resign(
        &self,
        req: Request<ResignRequest>,
    ) -> Result<Response<ResignResponse>, Status> {
        self.server
            .resign(req.into_inner().leader)
            .await
            .map(Response::new)
            .map_err(concurrency_status)
    }
}
