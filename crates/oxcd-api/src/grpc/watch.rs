//! The Watch service: one bidirectional stream per call, served by the server's watch hub
//! (`oxcd_server::watch`). This layer adapts the gRPC streams, completes the response headers
//! (cluster ID, member ID, raft term) and, for clients that require a leader (metadata
//! `hasleader: true`, which etcdctl sends), refuses the stream without a leader and ends it
//! with "etcdserver: no leader" when the leader stays lost.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use oxcd_proto::etcdserverpb::watch_server::Watch;
use oxcd_proto::etcdserverpb::{WatchRequest, WatchResponse};
use oxcd_server::{EtcdServer, ServerError};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::status;

/// How often a leader-requiring stream checks for a leader, and how many checks in a row
/// without one end it (etcd checks once per election timeout, 1 s by default, and gives up
/// after three).
const LEADER_CHECK: Duration = Duration::from_secs(1);
const LEADER_MISSES: u32 = 3;

pub struct WatchService {
    pub server: Arc<EtcdServer>,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

struct Outgoing {
    server: Arc<EtcdServer>,
    rx: mpsc::Receiver<WatchResponse>,
    leader_check: Option<tokio::time::Interval>,
    misses: u32,
    done: bool,
}

impl Outgoing {
    async fn next(mut self) -> Option<(Result<WatchResponse, Status>, Outgoing)> {
        if self.done {
            return None;
        }
        loop {
            let tick = async {
                match self.leader_check.as_mut() {
                    Some(t) => t.tick().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                resp = self.rx.recv() => {
                    let mut resp = resp?;
                    let revision = resp.header.as_ref().map_or(0, |h| h.revision);
                    resp.header = Some(self.server.header(revision));
                    return Some((Ok(resp), self));
                }
                _ = tick => {
                    if self.server.raft.status.leader() != 0 {
                        self.misses = 0;
                        continue;
                    }
                    self.misses += 1;
                    if self.misses >= LEADER_MISSES {
                        self.done = true;
                        return Some((Err(status(ServerError::NoLeader)), self));
                    }
                }
            }
        }
    }
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        req: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let require_leader = req
            .metadata()
            .get("hasleader")
            .is_some_and(|v| v.as_bytes() == b"true");
        if require_leader && self.server.raft.status.leader() == 0 {
            return Err(status(ServerError::NoLeader));
        }
        let hub = self.server.watch.clone();
        let (tx, rx) = mpsc::channel(hub.config().stream_buffer.max(1));
        // A receive error means the client is gone or broke the stream: stop reading requests.
        // The hub task ends when the response stream below is dropped.
        let requests = req
            .into_inner()
            .take_while(|r| std::future::ready(r.is_ok()))
            .filter_map(|r| std::future::ready(r.ok()));
        tokio::spawn(hub.serve(Box::pin(requests), tx));
        let leader_check = require_leader.then(|| {
            let start = tokio::time::Instant::now() + LEADER_CHECK;
            tokio::time::interval_at(start, LEADER_CHECK)
        });
        let out = Outgoing {
            server: self.server.clone(),
            rx,
            leader_check,
            misses: 0,
            done: false,
        };
        let responses = futures::stream::unfold(out, Outgoing::next);
        Ok(Response::new(Box::pin(responses)))
    }
}
