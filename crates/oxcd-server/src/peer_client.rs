//! One-shot requests to a peer's HTTP endpoints, used while bootstrapping (before the raft
//! transport exists): `/members` to learn a running cluster's ID and members.

use std::time::Duration;

use http_body_util::{BodyExt, Full};

use crate::membership::{parse_id_hex, Member};
use crate::peer::HDR_CLUSTER_ID;

pub struct PeerClient {
    http: crate::http_client::PeerHttpClient,
    timeout: Duration,
}

impl PeerClient {
    pub fn new(tls: Option<std::sync::Arc<rustls::ClientConfig>>, timeout: Duration) -> Self {
        PeerClient {
            http: crate::http_client::peer_http_client(tls, timeout),
            timeout,
        }
    }

    /// The peer's cluster ID (from `X-Etcd-Cluster-ID`) and its member list.
    pub async fn members(&self, peer_url: &str) -> Result<(u64, Vec<Member>), String> {
        let uri = format!("{}/members", peer_url.trim_end_matches('/'));
        let req = http::Request::get(uri)
            .body(Full::default())
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(self.timeout, self.http.request(req))
            .await
            .map_err(|_| "timeout".to_string())?
            .map_err(|e| e.to_string())?;
        let cluster_id = resp
            .headers()
            .get(HDR_CLUSTER_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_id_hex)
            .ok_or("no cluster ID header")?;
        let body = tokio::time::timeout(self.timeout, resp.into_body().collect())
            .await
            .map_err(|_| "timeout".to_string())?
            .map_err(|e| e.to_string())?
            .to_bytes();
        let members: Vec<Member> = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok((cluster_id, members))
    }
}
