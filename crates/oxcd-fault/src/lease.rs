//! Lease load: grant, attach a key, keep alive, revoke, and check what a user relies on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use oxcd_proto::etcdserverpb::kv_client::KvClient;
use oxcd_proto::etcdserverpb::lease_client::LeaseClient;
use oxcd_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, PutRequest, RangeRequest,
};
use tokio_stream::wrappers::ReceiverStream;

use crate::cluster::channel;

const TTL: i64 = 5;
const STEP: Duration = Duration::from_secs(3);

#[derive(Default, Debug)]
pub struct LeaseReport {
    /// Full cycles: granted, attached, kept alive, revoked and the key seen gone.
    pub cycles: u64,
    pub failed_steps: u64,
    pub anomalies: Vec<String>,
}

pub async fn run_lease_client(id: u32, members: usize, stop: Arc<AtomicBool>) -> LeaseReport {
    let mut report = LeaseReport::default();
    let mut member = id as usize % members;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("l/{id}/{n}");
        match tokio::time::timeout(STEP * 4, cycle(member, &key, &mut report)).await {
            Ok(Ok(())) => report.cycles += 1,
            _ => {
                report.failed_steps += 1;
                member = (member + 1) % members;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    report
}

async fn cycle(member: usize, key: &str, report: &mut LeaseReport) -> anyhow::Result<()> {
    let ch = channel(member)?;
    let mut leases = LeaseClient::new(ch.clone());
    let mut kv = KvClient::new(ch);
    let grant = leases
        .lease_grant(LeaseGrantRequest { ttl: TTL, id: 0 })
        .await?
        .into_inner();
    let id = grant.id;
    kv.put(PutRequest {
        key: key.as_bytes().to_vec().into(),
        value: b"leased".to_vec().into(),
        lease: id,
        ..Default::default()
    })
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(LeaseKeepAliveRequest { id }).await?;
    let mut responses = leases
        .lease_keep_alive(ReceiverStream::new(rx))
        .await?
        .into_inner();
    if let Some(resp) = responses.next().await {
        let resp = resp?;
        if resp.ttl > TTL {
            report.anomalies.push(format!(
                "lease {id:x}: keepalive granted TTL {} > {TTL}",
                resp.ttl
            ));
        }
    }
    drop(tx);
    leases.lease_revoke(LeaseRevokeRequest { id }).await?;
    let left = kv
        .range(RangeRequest {
            key: key.as_bytes().to_vec().into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    if !left.kvs.is_empty() {
        report.anomalies.push(format!(
            "lease {id:x} revoked but its key {key} is still there at revision {}",
            left.header.map(|h| h.revision).unwrap_or(0)
        ));
    }
    Ok(())
}
