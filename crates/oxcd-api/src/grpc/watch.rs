//! The Watch service: one bidirectional stream per call, served by the server's watch hub
//! (`oxcd_server::watch`). This layer only adapts the gRPC streams and completes the response
//! headers (cluster ID, member ID, raft term).

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use oxcd_proto::etcdserverpb::watch_server::Watch;
use oxcd_proto::etcdserverpb::{WatchRequest, WatchResponse};
use oxcd_server::EtcdServer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

pub struct WatchService {
    pub server: Arc<EtcdServer>,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        req: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let hub = self.server.watch.clone();
        let (tx, rx) = mpsc::channel(hub.config().stream_buffer.max(1));
        // A receive error means the client is gone or broke the stream: stop reading requests.
        // The hub task ends when the response stream below is dropped.
        let requests = req
            .into_inner()
            .take_while(|r| std::future::ready(r.is_ok()))
            .filter_map(|r| std::future::ready(r.ok()));
        tokio::spawn(hub.serve(Box::pin(requests), tx));
        let server = self.server.clone();
        let responses = ReceiverStream::new(rx).map(move |mut resp| {
            let revision = resp.header.as_ref().map_or(0, |h| h.revision);
            resp.header = Some(server.header(revision));
            Ok(resp)
        });
        Ok(Response::new(Box::pin(responses)))
    }
}
