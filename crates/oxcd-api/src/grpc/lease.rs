//! The Lease service: Grant, Revoke, KeepAlive (a bidirectional stream), TimeToLive, Leases.
//! The work is done by `EtcdServer`'s lease methods (`oxcd_server::lease`).

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use oxcd_proto::etcdserverpb::lease_server::Lease;
use oxcd_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use oxcd_server::lease::LeaseError;
use oxcd_server::{EtcdServer, ServerError};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::status;

/// Responses waiting to be sent on one keep-alive stream.
const KEEPALIVE_BUFFER: usize = 16;

pub struct LeaseService {
    pub server: Arc<EtcdServer>,
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        req: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        self.server
            .lease_grant(req.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn lease_revoke(
        &self,
        req: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        self.server
            .lease_revoke(req.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut requests = req.into_inner();
        let (tx, rx) = mpsc::channel(KEEPALIVE_BUFFER);
        let server = self.server.clone();
        tokio::spawn(async move {
            // Ends when the client closes its side, the stream breaks, or the client is gone.
            while let Some(Ok(req)) = requests.next().await {
                // The header is taken before the renewal, so its revision is never newer than
                // the renewal itself (a lease revoked at revision r is never reported kept
                // alive at a revision after r).
                let header = server.header(server.store.get().current_revision());
                let ttl = match server.lease_renew(req.id).await {
                    Ok(ttl) => ttl,
                    Err(ServerError::Lease(LeaseError::NotFound)) => 0,
                    Err(e) => {
                        let _ = tx.send(Err(status(e))).await;
                        return;
                    }
                };
                let resp = LeaseKeepAliveResponse {
                    header: Some(header),
                    id: req.id,
                    ttl,
                };
                if tx.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        self.server
            .lease_time_to_live(req.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn lease_leases(
        &self,
        _req: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        self.server
            .lease_leases()
            .await
            .map(Response::new)
            .map_err(status)
    }
}
