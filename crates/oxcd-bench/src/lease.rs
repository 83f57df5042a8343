//! Lease keep-alives: every client grants its own lease, then renews it over its own
//! keep-alive stream, one renewal in flight at a time, until `--total` renewals are done.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxcd_proto::etcdserverpb::lease_client::LeaseClient;
use oxcd_proto::etcdserverpb::{LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest};
use tonic::transport::Channel;

use crate::report::Report;
use crate::{Args, Progress};

pub async fn run(
    args: Arc<Args>,
    channels: &[Channel],
    ttl: i64,
    progress: Progress,
) -> anyhow::Result<Report> {
    let mut leases = Vec::new();
    for c in 0..args.clients.max(1) {
        let mut client = LeaseClient::new(channels[c % channels.len()].clone());
        let id = client
            .lease_grant(LeaseGrantRequest { ttl, id: 0 })
            .await?
            .into_inner()
            .id;
        leases.push((client, id));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut client, id) in leases {
        let (args, next, progress) = (args.clone(), next.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<Duration> = Vec::new();
            let mut errors = 0usize;
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            // The first renewal is queued before the call: gRPC servers written in Go send the
            // response headers only with the first response, so awaiting the call with nothing
            // sent would wait forever.
            if next.fetch_add(1, Ordering::Relaxed) >= args.total {
                return (lat, errors, client, id);
            }
            let mut t = Instant::now();
            if tx.send(LeaseKeepAliveRequest { id }).await.is_err() {
                return (lat, errors + 1, client, id);
            }
            let stream = client
                .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await;
            let mut stream = match stream {
                Ok(s) => s.into_inner(),
                Err(_) => return (lat, errors + 1, client, id),
            };
            loop {
                match stream.message().await {
                    Ok(Some(resp)) if resp.ttl > 0 => lat.push(t.elapsed()),
                    Ok(Some(_)) => errors += 1,
                    _ => {
                        errors += 1;
                        break;
                    }
                }
                progress.inc(1);
                if next.fetch_add(1, Ordering::Relaxed) >= args.total {
                    break;
                }
                t = Instant::now();
                if tx.send(LeaseKeepAliveRequest { id }).await.is_err() {
                    errors += 1;
                    break;
                }
            }
            (lat, errors, client, id)
        }));
    }
    let mut lat = Vec::with_capacity(args.total);
    let mut errors = 0;
    let mut clients = Vec::new();
    for t in tasks {
        let (l, e, client, id) = t.await?;
        lat.extend(l);
        errors += e;
        clients.push((client, id));
    }
    let elapsed = started.elapsed();
    // Leave the cluster as it was for the next workload.
    for (mut client, id) in clients {
        let _ = client.lease_revoke(LeaseRevokeRequest { id }).await;
    }
    Ok(Report::new(lat, errors, elapsed))
}
