//! Outbound peer traffic: which path each raft message takes, and the per-peer state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::Full;
use oxcd_raft::eraftpb::{Message, MessageType, SnapshotMetadata};
use oxcd_raft::{Command, RaftHandle};
use parking_lot::{Mutex, RwLock};
use protobuf::Message as _;
use tokio::sync::{mpsc, Semaphore};

use super::codec::encode_frame;
use super::stream_reader;
use super::*;
use crate::membership::{id_hex, Cluster};

/// Frames buffered per outbound stream before messages spill over to the pipeline.
const STREAM_BUFFER: usize = 4096;
/// Concurrent pipeline POSTs per peer (etcd uses 4 connections).
const PIPELINE_CONNECTIONS: usize = 4;

pub type HttpClient = crate::http_client::PeerHttpClient;

#[derive(Clone)]
pub struct TransportConfig {
    pub local_id: u64,
    pub cluster_id: u64,
    /// This member's advertised peer URLs, sent as `X-PeerURLs`.
    pub advertise_peer_urls: Vec<String>,
    pub dial_timeout: Duration,
    /// TLS for dialling peers over https.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Hooks for what the transport learns that concerns the whole server.
pub trait TransportEvents: Send + Sync + 'static {
    /// A peer reports a different cluster ID.
    fn cluster_id_mismatch(&self, local: u64, remote: u64);
    /// A peer says this member was removed from the cluster.
    fn removed_from_cluster(&self);
    /// Writes a consistent copy of the state machine for a snapshot to a follower.
    /// The applied state machine and the raft metadata describing it (blocking).
    fn applied_snapshot(&self) -> Result<(SnapshotMetadata, Bytes), String>;
}

struct Peer {
    /// A stream from this peer is up (it answers us): used to judge whether a configuration
    /// change would leave the cluster without a working quorum.
    active: std::sync::atomic::AtomicBool,
    outbound: Mutex<Option<mpsc::Sender<Bytes>>>,
    pipeline: Arc<Semaphore>,
    reader: tokio::task::JoinHandle<()>,
}

pub struct PeerTransport {
    pub(crate) cfg: TransportConfig,
    pub(crate) cluster: Arc<RwLock<Cluster>>,
    pub(crate) raft: RaftHandle,
    pub(crate) http: HttpClient,
    pub(crate) events: Arc<dyn TransportEvents>,
    runtime: tokio::runtime::Handle,
    peers: RwLock<HashMap<u64, Arc<Peer>>>,
    /// Peer URLs of members known from a running cluster's `/members` before the log says
    /// who they are (a joining member).
    remotes: RwLock<HashMap<u64, Vec<String>>>,
}

impl PeerTransport {
    pub fn new(
        cfg: TransportConfig,
        cluster: Arc<RwLock<Cluster>>,
        raft: RaftHandle,
        events: Arc<dyn TransportEvents>,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Self> {
        let http = crate::http_client::peer_http_client(cfg.tls.clone(), cfg.dial_timeout);
        Arc::new(PeerTransport {
            cfg,
            cluster,
            raft,
            http,
            events,
            runtime,
            peers: RwLock::new(HashMap::new()),
            remotes: RwLock::new(HashMap::new()),
        })
    }

    pub fn local_id(&self) -> u64 {
        self.cfg.local_id
    }

    pub fn cluster_id(&self) -> u64 {
        self.cfg.cluster_id
    }

    /// Starts receiving from a peer (dialling its stream) and allows sending to it.
    pub fn add_peer(self: &Arc<Self>, id: u64) {
        if id == self.cfg.local_id || self.peers.read().contains_key(&id) {
            return;
        }
        let _guard = self.runtime.enter();
        let reader = tokio::spawn(stream_reader::run(self.clone(), id));
        let peer = Peer {
            active: std::sync::atomic::AtomicBool::new(false),
            outbound: Mutex::new(None),
            pipeline: Arc::new(Semaphore::new(PIPELINE_CONNECTIONS)),
            reader,
        };
        self.peers.write().insert(id, Arc::new(peer));
    }

    /// Talks to a member the cluster has but this member's log does not know yet.
    pub fn add_remote(self: &Arc<Self>, id: u64, urls: Vec<String>) {
        self.remotes.write().insert(id, urls);
        self.add_peer(id);
    }

    pub fn remove_peer(&self, id: u64) {
        if let Some(peer) = self.peers.write().remove(&id) {
            peer.reader.abort();
        }
    }

    /// Whether the stream from `id` is currently established.
    pub fn is_active(&self, id: u64) -> bool {
        self.peers
            .read()
            .get(&id)
            .is_some_and(|p| p.active.load(std::sync::atomic::Ordering::Acquire))
    }

    pub(crate) fn set_active(&self, id: u64, active: bool) {
        if let Some(p) = self.peers.read().get(&id) {
            p.active.store(active, std::sync::atomic::Ordering::Release);
        }
    }

    pub fn has_peer(&self, id: u64) -> bool {
        self.peers.read().contains_key(&id)
    }

    /// Registers the stream a peer dialled to us; messages to it go there from now on.
    pub fn attach_outbound(&self, from: u64) -> Option<mpsc::Receiver<Bytes>> {
        let peers = self.peers.read();
        let peer = peers.get(&from)?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        *peer.outbound.lock() = Some(tx);
        Some(rx)
    }

    /// Sends raft messages without blocking the raft thread.
    pub fn send(self: &Arc<Self>, msgs: Vec<Message>) {
        for m in msgs {
            let to = m.to;
            let Some(peer) = self.peers.read().get(&to).cloned() else {
                continue;
            };
            if m.get_msg_type() == MessageType::MsgSnapshot {
                let _guard = self.runtime.enter();
                tokio::spawn(self.clone().send_snapshot(m));
                continue;
            }
            let frame = match encode_frame(&m) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "failed to encode a raft message");
                    continue;
                }
            };
            let sent = {
                let mut out = peer.outbound.lock();
                match out.as_ref().map(|tx| tx.try_send(frame.clone())) {
                    Some(Ok(())) => true,
                    Some(Err(mpsc::error::TrySendError::Closed(_))) => {
                        *out = None;
                        false
                    }
                    _ => false,
                }
            };
            if !sent {
                self.send_pipeline(&peer, to, m);
            }
        }
    }

    fn send_pipeline(self: &Arc<Self>, peer: &Peer, to: u64, m: Message) {
        let Ok(permit) = peer.pipeline.clone().try_acquire_owned() else {
            let _ = self.raft.try_send(Command::ReportUnreachable(to));
            return;
        };
        let this = self.clone();
        let _guard = self.runtime.enter();
        tokio::spawn(async move {
            let _permit = permit;
            let body = match m.write_to_bytes() {
                Ok(b) => Bytes::from(b),
                Err(_) => return,
            };
            if this
                .post(to, "/raft", "application/protobuf", body)
                .await
                .is_err()
            {
                let _ = this.raft.try_send(Command::ReportUnreachable(to));
            }
        });
    }

    async fn send_snapshot(self: Arc<Self>, mut m: Message) {
        let to = m.to;
        let result = async {
            let events = self.events.clone();
            let (meta, db) = tokio::task::spawn_blocking(move || events.applied_snapshot())
                .await
                .map_err(|e| e.to_string())??;
            m.mut_snapshot().set_metadata(meta);
            let msg = m.write_to_bytes().map_err(|e| e.to_string())?;
            let mut body = BytesMut::with_capacity(8 + msg.len() + db.len());
            body.put_u64(msg.len() as u64);
            body.put_slice(&msg);
            body.put_slice(&db);
            tracing::info!(to = %id_hex(to), bytes = body.len(), "sending database snapshot");
            self.post(
                to,
                "/raft/snapshot",
                "application/octet-stream",
                body.freeze(),
            )
            .await
        }
        .await;
        let failed = result.is_err();
        if let Err(e) = result {
            tracing::warn!(to = %id_hex(to), error = %e, "failed to send database snapshot");
        } else {
            tracing::info!(to = %id_hex(to), "sent database snapshot");
        }
        let _ = self.raft.try_send(Command::ReportSnapshot { to, failed });
    }

    /// POSTs to the first of the peer's URLs that answers with 204.
    async fn post(
        &self,
        to: u64,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<(), String> {
        let urls = self.peer_urls(to);
        let mut last_err = String::from("no peer URL");
        for url in urls {
            let req = self
                .request_builder(http::Method::POST, &format!("{url}{path}"))
                .header(http::header::CONTENT_TYPE, content_type)
                .body(Full::new(body.clone()));
            let req = match req {
                Ok(r) => r,
                Err(e) => {
                    last_err = e.to_string();
                    continue;
                }
            };
            match self.http.request(req).await {
                Ok(resp) if resp.status() == http::StatusCode::NO_CONTENT => return Ok(()),
                Ok(resp) => {
                    last_err = format!(
                        "unexpected http status {} while posting to {url}{path}",
                        resp.status()
                    );
                    self.check_rejection(&resp);
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        Err(last_err)
    }

    /// POSTs an empty body to a peer and returns its status and text answer.
    pub async fn post_text(
        &self,
        to: u64,
        path: &str,
    ) -> Result<(http::StatusCode, String), String> {
        use http_body_util::BodyExt;
        let mut last_err = String::from("no peer URL");
        for url in self.peer_urls(to) {
            let req = self
                .request_builder(http::Method::POST, &format!("{url}{path}"))
                .body(Full::default())
                .map_err(|e| e.to_string())?;
            match self.http.request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp
                        .into_body()
                        .collect()
                        .await
                        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                        .unwrap_or_default();
                    return Ok((status, body));
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        Err(last_err)
    }

    pub(crate) fn peer_urls(&self, id: u64) -> Vec<String> {
        if let Some(m) = self.cluster.read().member(id) {
            return m.peer_urls.clone();
        }
        self.remotes.read().get(&id).cloned().unwrap_or_default()
    }

    pub(crate) fn request_builder(
        &self,
        method: http::Method,
        uri: &str,
    ) -> http::request::Builder {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header(HDR_CLUSTER_ID, id_hex(self.cfg.cluster_id))
            .header(HDR_SERVER_FROM, id_hex(self.cfg.local_id))
            .header(HDR_SERVER_VERSION, SERVER_VERSION)
            .header(HDR_MIN_CLUSTER_VERSION, MIN_CLUSTER_VERSION)
            .header(HDR_PEER_URLS, self.cfg.advertise_peer_urls.join(","))
    }

    /// Reacts to a peer refusing us: another cluster's member, or we were removed.
    pub(crate) fn check_rejection<B>(&self, resp: &http::Response<B>) {
        match resp.status() {
            http::StatusCode::GONE => self.events.removed_from_cluster(),
            http::StatusCode::PRECONDITION_FAILED => {
                let remote = resp
                    .headers()
                    .get(HDR_CLUSTER_ID)
                    .and_then(|v| v.to_str().ok())
                    .and_then(crate::membership::parse_id_hex);
                if let Some(remote) = remote {
                    if remote != self.cfg.cluster_id {
                        self.events.cluster_id_mismatch(self.cfg.cluster_id, remote);
                    }
                }
            }
            _ => {}
        }
    }
}
