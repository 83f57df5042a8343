//! Renewals and time-to-live questions are answered by the leader. A follower forwards them
//! over the peer port, as etcd does: POST `/leases` with a protobuf `LeaseKeepAliveRequest`
//! (answered with a `LeaseKeepAliveResponse`), POST `/leases/internal` with a
//! `leasepb.LeaseInternalRequest` (answered with a `leasepb.LeaseInternalResponse`). Status
//! 404 means the lease does not exist, 408 that the leader could not catch up its applied
//! index in time; anything else but 200 is retried.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use oxcd_proto::etcdserverpb::{
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
    ResponseHeader,
};
use oxcd_proto::leasepb::{LeaseInternalRequest, LeaseInternalResponse};
use prost::Message as _;

use super::LeaseError;
use crate::http_client::PeerHttpClient;
use crate::peer::handlers::PeerContext;
use crate::server::EtcdServer;

pub const LEASE_PATH: &str = "/leases";
pub const LEASE_INTERNAL_PATH: &str = "/leases/internal";
/// How long the leader waits for its applied index before answering (etcd's value).
pub const APPLY_WAIT: Duration = Duration::from_secs(1);
const MAX_BODY: usize = 64 * 1024;
const PROTOBUF: &str = "application/protobuf";

/// The client side: one HTTP request to one peer URL.
pub struct Forwarder {
    http: PeerHttpClient,
}

/// Why one forwarded request failed.
pub enum ForwardError {
    /// The leader says the lease does not exist.
    NotFound,
    /// Anything else (network, timeout, not primary yet): try again.
    Retry(String),
}

impl Forwarder {
    pub fn new(http: PeerHttpClient) -> Forwarder {
        Forwarder { http }
    }

    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, ForwardError> {
        let req = http::Request::post(url)
            .header(header::CONTENT_TYPE, PROTOBUF)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ForwardError::Retry(e.to_string()))?;
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| ForwardError::Retry(e.to_string()))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ForwardError::Retry(e.to_string()))?
                .to_bytes();
            match status {
                StatusCode::OK => Ok(body),
                StatusCode::NOT_FOUND => Err(ForwardError::NotFound),
                other => Err(ForwardError::Retry(format!(
                    "lease: unknown error({}) [{other}]",
                    String::from_utf8_lossy(&body).trim_end()
                ))),
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ForwardError::Retry("timeout".into()))?
    }

    /// Renews lease `id` at the leader reachable under `peer_url`; returns the TTL.
    pub async fn renew(
        &self,
        peer_url: &str,
        id: i64,
        timeout: Duration,
    ) -> Result<i64, ForwardError> {
        let url = format!("{}{LEASE_PATH}", peer_url.trim_end_matches('/'));
        let body = LeaseKeepAliveRequest { id }.encode_to_vec();
        let bytes = self.post(&url, body, timeout).await?;
        let resp = LeaseKeepAliveResponse::decode(bytes)
            .map_err(|e| ForwardError::Retry(format!("lease: {e}")))?;
        if resp.id != id {
            return Err(ForwardError::Retry("lease: renew id mismatch".into()));
        }
        Ok(resp.ttl)
    }

    /// Asks the leader reachable under `peer_url` about lease `req.id`.
    pub async fn time_to_live(
        &self,
        peer_url: &str,
        req: LeaseTimeToLiveRequest,
        timeout: Duration,
    ) -> Result<LeaseTimeToLiveResponse, ForwardError> {
        let url = format!("{}{LEASE_INTERNAL_PATH}", peer_url.trim_end_matches('/'));
        let id = req.id;
        let body = LeaseInternalRequest {
            lease_time_to_live_request: Some(req),
        }
        .encode_to_vec();
        let bytes = self.post(&url, body, timeout).await?;
        let resp = LeaseInternalResponse::decode(bytes)
            .map_err(|e| ForwardError::Retry(format!("lease: {e}")))?
            .lease_time_to_live_response
            .ok_or_else(|| ForwardError::Retry("lease: empty response".into()))?;
        if resp.id != id {
            return Err(ForwardError::Retry("lease: renew id mismatch".into()));
        }
        Ok(resp)
    }
}

/// What the peer handlers need: the local server (lessor, applied index, raft status).
#[derive(Clone)]
pub struct LeasePeer {
    pub server: Arc<EtcdServer>,
}

fn plain(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

fn protobuf(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, PROTOBUF)], bytes).into_response()
}

async fn read(body: Body) -> Option<Bytes> {
    http_body_util::Limited::new(body, MAX_BODY)
        .collect()
        .await
        .ok()
        .map(|c| c.to_bytes())
}

/// POST `/leases`: renew a lease on this (leader) member.
pub async fn renew_handler(State(ctx): State<PeerContext>, body: Body) -> Response {
    let Some(bytes) = read(body).await else {
        return plain(StatusCode::BAD_REQUEST, "error reading body");
    };
    let Ok(req) = LeaseKeepAliveRequest::decode(bytes) else {
        return plain(StatusCode::BAD_REQUEST, "error unmarshalling request");
    };
    let server = &ctx.leases.server;
    if server.wait_applied_committed(APPLY_WAIT).await.is_err() {
        return plain(
            StatusCode::REQUEST_TIMEOUT,
            "waiting for node to catch up its applied index has timed out",
        );
    }
    match server.lease_renew_local(req.id).await {
        Ok(ttl) => protobuf(
            LeaseKeepAliveResponse {
                header: Some(ResponseHeader::default()),
                id: req.id,
                ttl,
            }
            .encode_to_vec(),
        ),
        Err(LeaseError::NotFound) => plain(StatusCode::NOT_FOUND, "lease not found"),
        Err(e) => plain(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// POST `/leases/internal`: time-to-live of a lease, answered by this (leader) member.
pub async fn time_to_live_handler(State(ctx): State<PeerContext>, body: Body) -> Response {
    let Some(bytes) = read(body).await else {
        return plain(StatusCode::BAD_REQUEST, "error reading body");
    };
    let Ok(req) = LeaseInternalRequest::decode(bytes) else {
        return plain(StatusCode::BAD_REQUEST, "error unmarshalling request");
    };
    let req = req.lease_time_to_live_request.unwrap_or_default();
    let server = &ctx.leases.server;
    if server.wait_applied_committed(APPLY_WAIT).await.is_err() {
        return plain(
            StatusCode::REQUEST_TIMEOUT,
            "waiting for node to catch up its applied index has timed out",
        );
    }
    match server.lease_time_to_live_local(&req) {
        Some(resp) => protobuf(
            LeaseInternalResponse {
                lease_time_to_live_response: Some(resp),
            }
            .encode_to_vec(),
        ),
        None => plain(StatusCode::NOT_FOUND, "lease not found"),
    }
}
