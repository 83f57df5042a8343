//! Receiving from one peer: keep a GET `/raft/stream/message/<local id>` open to it and step
//! every frame into raft. Redialled at most every 100 ms, like etcd.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use oxcd_raft::Command;

use super::codec::{is_link_heartbeat, FrameDecoder};
use super::transport::PeerTransport;
use super::*;
use crate::membership::id_hex;

/// A stream that carries nothing, not even a link heartbeat, for this long is dead.
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
const REDIAL_INTERVAL: Duration = Duration::from_millis(100);

pub(crate) async fn run(transport: Arc<PeerTransport>, peer: u64) {
    let mut connected = false;
    // Dial failures repeat every 100 ms while a peer is down: log each distinct one once.
    let mut last_error = String::new();
    loop {
        for url in transport.peer_urls(peer) {
            if let Err(e) = read_stream(&transport, peer, &url, &mut connected).await {
                if connected {
                    tracing::warn!(peer = %id_hex(peer), error = %e, "lost the stream from peer");
                    connected = false;
                    transport.set_active(peer, false);
                } else if e != last_error {
                    tracing::warn!("failed to dial {} on stream Message ({e})", id_hex(peer));
                }
                last_error = e;
            }
        }
        tokio::time::sleep(REDIAL_INTERVAL).await;
    }
}

/// The innermost cause of a failed request, worded like Go's errors where TLS is involved
/// (`remote error: tls: bad certificate`), because operators and etcd's tests look for them.
pub(crate) fn describe_error(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut innermost = err.to_string();
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return oxcd_tls::describe_handshake_error(io);
        }
        innermost = e.to_string();
        cur = e.source();
    }
    innermost
}

async fn read_stream(
    transport: &PeerTransport,
    peer: u64,
    url: &str,
    connected: &mut bool,
) -> Result<(), String> {
    let uri = format!(
        "{url}/raft/stream/message/{}",
        id_hex(transport.cfg.local_id)
    );
    let req = transport
        .request_builder(http::Method::GET, &uri)
        .header(HDR_RAFT_TO, id_hex(peer))
        .body(Full::default())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(transport.cfg.dial_timeout, transport.http.request(req))
        .await
        .map_err(|_| "dial timeout".to_string())?
        .map_err(|e| describe_error(&e))?;
    if resp.status() != http::StatusCode::OK {
        transport.check_rejection(&resp);
        return Err(format!("peer answered {}", resp.status()));
    }
    if !*connected {
        tracing::info!(peer = %id_hex(peer), "established a stream from peer");
        *connected = true;
        transport.set_active(peer, true);
    }
    let mut body = resp.into_body();
    let mut decoder = FrameDecoder::default();
    loop {
        let frame = tokio::time::timeout(STREAM_IDLE_TIMEOUT, body.frame())
            .await
            .map_err(|_| "stream idle timeout".to_string())?;
        let Some(frame) = frame else {
            return Err("stream closed".into());
        };
        let frame = frame.map_err(|e| e.to_string())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        decoder.push(&data);
        while let Some(msg) = decoder.next_message().map_err(|e| e.to_string())? {
            if is_link_heartbeat(&msg) {
                continue;
            }
            // A full queue means raft is overloaded; dropping is safe, raft retransmits.
            let _ = transport.raft.try_send(Command::Step(msg));
        }
    }
}
