//! The peer port's HTTP handlers, with etcd's status codes and bodies.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::{Buf, Bytes};
use futures::StreamExt;
use http_body_util::BodyExt;
use oxcd_raft::eraftpb::{Message, MessageType};
use oxcd_raft::Command;
use protobuf::Message as _;

use super::codec::link_heartbeat;
use super::transport::PeerTransport;
use super::*;
use crate::membership::{id_hex, parse_id_hex};

const LINK_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(1666);
/// Pipeline messages are single raft messages, bounded by raft's max message size plus slack.
const MAX_PIPELINE_BODY: usize = 64 * 1024 * 1024;
/// Frames are merged into one chunk up to about this size (a few large appends, or hundreds
/// of small messages).
const MAX_COALESCED_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct PeerContext {
    pub transport: Arc<PeerTransport>,
    /// Where received database snapshots are stored until raft installs them.
    pub snap_dir: PathBuf,
    /// The server, for learner promotions forwarded by followers.
    pub server: Arc<crate::server::EtcdServer>,
    /// Lease renewals and time-to-live questions forwarded by followers.
    pub leases: crate::lease::forward::LeasePeer,
}

pub fn router(ctx: PeerContext) -> Router {
    Router::new()
        .route("/raft", post(pipeline))
        .route("/raft/stream/{kind}/{from}", get(stream))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/probing", get(probing))
        .route("/members", get(members))
        .route("/version", get(version))
        .route("/members/promote/{id}", post(promote))
        // Lease requests forwarded to the leader.
        .route(
            crate::lease::forward::LEASE_PATH,
            post(crate::lease::forward::renew_handler),
        )
        .route(
            crate::lease::forward::LEASE_INTERNAL_PATH,
            post(crate::lease::forward::time_to_live_handler),
        )
        .fallback(not_found)
        .with_state(ctx)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

fn text(status: StatusCode, body: &str, cluster_id: u64) -> Response {
    let mut resp = (status, format!("{body}\n")).into_response();
    insert_cluster_id(resp.headers_mut(), cluster_id);
    resp
}

fn insert_cluster_id(headers: &mut HeaderMap, cluster_id: u64) {
    if let Ok(v) = HeaderValue::from_str(&id_hex(cluster_id)) {
        headers.insert(HDR_CLUSTER_ID, v);
    }
}

fn major_minor(v: &str) -> Option<(u64, u64)> {
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// etcd's compatibility and cluster-ID checks for every /raft* request.
fn check_request(ctx: &PeerContext, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let cid = ctx.transport.cluster_id();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let server = header(HDR_SERVER_VERSION).unwrap_or("2.0.0");
    let min_cluster = header(HDR_MIN_CLUSTER_VERSION).unwrap_or("2.0.0");
    let compatible = match (major_minor(server), major_minor(min_cluster)) {
        (Some(s), Some(m)) => s >= (3, 0) && m <= (3, 4),
        _ => false,
    };
    if !compatible {
        return Err(Box::new(text(
            StatusCode::PRECONDITION_FAILED,
            "incompatible version",
            cid,
        )));
    }
    if header(HDR_CLUSTER_ID) != Some(id_hex(cid).as_str()) {
        if let Some(remote) = header(HDR_CLUSTER_ID) {
            tracing::error!(
                got = remote,
                want = %id_hex(cid),
                "request cluster ID mismatch"
            );
        }
        return Err(Box::new(text(
            StatusCode::PRECONDITION_FAILED,
            "cluster ID mismatch",
            cid,
        )));
    }
    Ok(())
}

async fn read_body(body: Body, limit: usize) -> Option<Bytes> {
    let limited = http_body_util::Limited::new(body, limit);
    limited.collect().await.ok().map(|c| c.to_bytes())
}

async fn pipeline(State(ctx): State<PeerContext>, headers: HeaderMap, body: Body) -> Response {
    let cid = ctx.transport.cluster_id();
    if let Err(resp) = check_request(&ctx, &headers) {
        return *resp;
    }
    let Some(bytes) = read_body(body, MAX_PIPELINE_BODY).await else {
        return text(StatusCode::BAD_REQUEST, "error reading raft message", cid);
    };
    let Ok(msg) = Message::parse_from_bytes(&bytes) else {
        return text(
            StatusCode::BAD_REQUEST,
            "error unmarshalling raft message",
            cid,
        );
    };
    if ctx.transport.cluster.read().is_removed(msg.from) {
        return text(StatusCode::FORBIDDEN, "removed member", cid);
    }
    let _ = ctx.transport.raft.try_send(Command::Step(msg));
    let mut resp = StatusCode::NO_CONTENT.into_response();
    insert_cluster_id(resp.headers_mut(), cid);
    resp
}

async fn stream(
    State(ctx): State<PeerContext>,
    Path((kind, from)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let cid = ctx.transport.cluster_id();
    if let Err(resp) = check_request(&ctx, &headers) {
        return *resp;
    }
    if kind != "message" && kind != "msgapp" {
        return text(StatusCode::NOT_FOUND, "invalid path", cid);
    }
    let Some(from) = parse_id_hex(&from) else {
        return text(StatusCode::NOT_FOUND, "invalid from", cid);
    };
    if ctx.transport.cluster.read().is_removed(from) {
        return text(StatusCode::GONE, "removed member", cid);
    }
    if !ctx.transport.has_peer(from) {
        return text(StatusCode::NOT_FOUND, "error sender not found", cid);
    }
    let to = headers
        .get(HDR_RAFT_TO)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_id_hex);
    if to != Some(ctx.transport.local_id()) {
        return text(StatusCode::PRECONDITION_FAILED, "to field mismatch", cid);
    }
    let body = if kind == "message" {
        let Some(rx) = ctx.transport.attach_outbound(from) else {
            return text(StatusCode::NOT_FOUND, "error sender not found", cid);
        };
        message_stream_body(rx)
    } else {
        // We never send MsgApp over msgappv2; keep the stream alive with its 1-byte heartbeat
        // so an etcd peer's reader stays attached.
        let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(
            LINK_HEARTBEAT_INTERVAL,
        ))
        .map(|_| Ok::<Bytes, Infallible>(Bytes::from_static(&[0u8])));
        Body::from_stream(ticks)
    };
    let mut resp = Response::new(body);
    insert_cluster_id(resp.headers_mut(), cid);
    resp.headers_mut()
        .insert(HDR_SERVER_VERSION, HeaderValue::from_static(SERVER_VERSION));
    resp
}

/// The outbound frames for a peer, interleaved with link heartbeats.
fn message_stream_body(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    let frames = coalesced(rx).map(Some);
    let heartbeat = link_heartbeat();
    let ticks =
        tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(LINK_HEARTBEAT_INTERVAL))
            .map(move |_| None::<Bytes>);
    // The stream ends when the frame channel closes (a newer stream from the same peer
    // replaced this one); the heartbeat ticker alone must not keep it open.
    let merged = futures::stream::select(
        frames.chain(futures::stream::once(async { Some(Bytes::new()) })),
        ticks,
    )
    .take_while(|item| futures::future::ready(!matches!(item, Some(b) if b.is_empty())))
    .map(move |item| Ok::<Bytes, Infallible>(item.unwrap_or_else(|| heartbeat.clone())));
    Body::from_stream(merged)
}

/// A burst of frames goes out as one chunk: the frames queued behind the first are appended to
/// it, so the stream costs one HTTP chunk and one socket write per burst, not one per message.
fn coalesced(rx: tokio::sync::mpsc::Receiver<Bytes>) -> impl futures::Stream<Item = Bytes> {
    futures::stream::unfold(rx, |mut rx| async move {
        let first = rx.recv().await?;
        let Ok(mut next) = rx.try_recv() else {
            return Some((first, rx));
        };
        let mut chunk = bytes::BytesMut::with_capacity(first.len() + next.len());
        chunk.extend_from_slice(&first);
        loop {
            chunk.extend_from_slice(&next);
            if chunk.len() >= MAX_COALESCED_BYTES {
                break;
            }
            match rx.try_recv() {
                Ok(b) => next = b,
                Err(_) => break,
            }
        }
        Some((chunk.freeze(), rx))
    })
}

async fn snapshot(State(ctx): State<PeerContext>, headers: HeaderMap, body: Body) -> Response {
    let cid = ctx.transport.cluster_id();
    if let Err(resp) = check_request(&ctx, &headers) {
        return *resp;
    }
    let Some(mut bytes) = read_body(body, usize::MAX).await else {
        return text(
            StatusCode::BAD_REQUEST,
            "failed to decode raft message (unexpected EOF)",
            cid,
        );
    };
    if bytes.len() < 8 {
        return text(
            StatusCode::BAD_REQUEST,
            "failed to decode raft message (unexpected EOF)",
            cid,
        );
    }
    let len = bytes.get_u64() as usize;
    if len > bytes.len() {
        return text(
            StatusCode::BAD_REQUEST,
            "failed to decode raft message (unexpected EOF)",
            cid,
        );
    }
    let msg_bytes = bytes.split_to(len);
    let msg = match Message::parse_from_bytes(&msg_bytes) {
        Ok(m) => m,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("failed to decode raft message ({e})"),
                cid,
            )
        }
    };
    if msg.get_msg_type() != MessageType::MsgSnapshot {
        return text(StatusCode::BAD_REQUEST, "wrong raft message type", cid);
    }
    let index = msg.get_snapshot().get_metadata().index;
    let path = ctx.snap_dir.join(format!("{index:016x}.snap.db"));
    if let Err(e) = write_atomically(&path, &bytes).await {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("failed to save KV snapshot ({e})"),
            cid,
        );
    }
    tracing::info!(from = %id_hex(msg.from), index, bytes = bytes.len(), "received database snapshot");
    let _ = ctx.transport.raft.try_send(Command::Step(msg));
    let mut resp = StatusCode::NO_CONTENT.into_response();
    insert_cluster_id(resp.headers_mut(), cid);
    resp
}

async fn write_atomically(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let data = data.to_vec();
    let (tmp2, path2) = (tmp.clone(), path.to_path_buf());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp2)?;
        f.write_all(&data)?;
        f.sync_all()?;
        std::fs::rename(&tmp2, &path2)
    })
    .await
    .map_err(std::io::Error::other)?
}

async fn probing() -> Response {
    let now = time_now_rfc3339();
    axum::Json(serde_json::json!({"OK": true, "Now": now})).into_response()
}

fn time_now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

async fn members(State(ctx): State<PeerContext>) -> Response {
    let body = ctx.transport.cluster.read().members_json();
    let mut resp = (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    insert_cluster_id(resp.headers_mut(), ctx.transport.cluster_id());
    resp
}

async fn version(State(ctx): State<PeerContext>) -> Response {
    let cluster = ctx
        .transport
        .cluster
        .read()
        .version
        .clone()
        .unwrap_or_else(|| "not_decided".into());
    let body = serde_json::json!({"etcdserver": SERVER_VERSION, "etcdcluster": cluster});
    axum::Json(body).into_response()
}

/// A follower asks the leader to promote a learner (etcd's path; the ID is decimal).
async fn promote(State(ctx): State<PeerContext>, Path(id): Path<String>) -> Response {
    let cid = ctx.transport.cluster_id();
    let Ok(id) = id.parse::<u64>() else {
        return text(StatusCode::BAD_REQUEST, "bad member id", cid);
    };
    match ctx.server.member_promote(id).await {
        Ok(members) => {
            let body = serde_json::to_string(&members).unwrap_or_else(|_| "[]".into());
            let mut resp = (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            insert_cluster_id(resp.headers_mut(), cid);
            resp
        }
        Err(e) => text(StatusCode::PRECONDITION_FAILED, &e.to_string(), cid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queued_frames_leave_as_one_chunk_and_the_stream_ends_with_the_channel() {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        for part in [&b"one"[..], b"two", b"three"] {
            tx.send(Bytes::copy_from_slice(part)).await.expect("send");
        }
        let mut chunks = Box::pin(coalesced(rx));
        assert_eq!(chunks.next().await.as_deref(), Some(&b"onetwothree"[..]));
        tx.send(Bytes::from_static(b"four")).await.expect("send");
        assert_eq!(chunks.next().await.as_deref(), Some(&b"four"[..]));
        drop(tx);
        assert_eq!(chunks.next().await, None);
    }
}
