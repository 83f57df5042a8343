//! `oxcd-bench`: drives the v3 API of any etcd-compatible server with many concurrent clients
//! and reports throughput and the latency distribution, like etcd's `benchmark` tool.
//!
//! Clients are spread over `--conns` HTTP/2 connections; each client sends one request at a
//! time, so `--clients` is the number of requests in flight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use oxcd_proto::etcdserverpb::kv_client::KvClient;
use oxcd_proto::etcdserverpb::{
    compare, request_op, Compare, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use tonic::transport::{Channel, Endpoint};

#[derive(Parser)]
#[command(name = "oxcd-bench", about = "Load generator for the etcd v3 API")]
struct Args {
    /// Comma-separated client URLs.
    #[arg(long, default_value = "http://127.0.0.1:2379", value_delimiter = ',')]
    endpoints: Vec<String>,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Concurrent clients (requests in flight).
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Requests in total.
    #[arg(long, default_value_t = 10_000)]
    total: usize,
    #[arg(long, default_value_t = 8)]
    key_size: usize,
    #[arg(long, default_value_t = 8)]
    val_size: usize,
    /// Distinct keys written or read.
    #[arg(long, default_value_t = 1)]
    key_space_size: usize,
    /// Keys in order instead of at random.
    #[arg(long)]
    sequential_keys: bool,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand, Clone)]
enum Workload {
    /// Put requests.
    Put,
    /// Range requests for one key.
    Range {
        /// `l` (linearizable) or `s` (serializable).
        #[arg(long, default_value = "l")]
        consistency: String,
    },
    /// Txns that compare a key's version and put it.
    TxnPut,
}

fn key(args: &Args, n: usize) -> Vec<u8> {
    let idx = if args.sequential_keys {
        n % args.key_space_size.max(1)
    } else {
        // A cheap, well-spread permutation; no RNG needed for a benchmark.
        (n.wrapping_mul(2_654_435_761)) % args.key_space_size.max(1)
    };
    let mut k = format!("{idx:0width$}", width = args.key_size).into_bytes();
    k.truncate(args.key_size.max(1));
    k
}

async fn one(
    client: &mut KvClient<Channel>,
    args: &Args,
    value: &[u8],
    n: usize,
) -> Result<(), tonic::Status> {
    let k = key(args, n);
    match &args.workload {
        Workload::Put => {
            client
                .put(PutRequest {
                    key: k.into(),
                    value: value.to_vec().into(),
                    ..Default::default()
                })
                .await?;
        }
        Workload::Range { consistency } => {
            client
                .range(RangeRequest {
                    key: k.into(),
                    serializable: consistency == "s",
                    ..Default::default()
                })
                .await?;
        }
        Workload::TxnPut => {
            let put = RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: k.clone().into(),
                    value: value.to_vec().into(),
                    ..Default::default()
                })),
            };
            client
                .txn(TxnRequest {
                    compare: vec![Compare {
                        key: k.into(),
                        target: compare::CompareTarget::Version as i32,
                        result: compare::CompareResult::Greater as i32,
                        target_union: Some(compare::TargetUnion::Version(-1)),
                        ..Default::default()
                    }],
                    success: vec![put],
                    ..Default::default()
                })
                .await?;
        }
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 * p / 100.0).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let mut channels = Vec::new();
    for i in 0..args.conns.max(1) {
        let url = &args.endpoints[i % args.endpoints.len()];
        channels.push(Endpoint::from_shared(url.clone())?.connect().await?);
    }
    let value = Arc::new(vec![b'v'; args.val_size]);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients.max(1) {
        let mut client = KvClient::new(channels[c % channels.len()].clone())
            .max_decoding_message_size(64 * 1024 * 1024);
        let (args, value, next) = (args.clone(), value.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= args.total {
                    break;
                }
                let t = Instant::now();
                match one(&mut client, &args, &value, n).await {
                    Ok(()) => lat.push(t.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::with_capacity(args.total);
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let rps = lat.len() as f64 / elapsed.as_secs_f64();
    let p = |q| ms(percentile(&lat, q));
    if args.json {
        let out = serde_json::json!({
            "requests": lat.len(), "errors": errors, "seconds": elapsed.as_secs_f64(),
            "requests_per_second": rps,
            "latency_ms": {"p50": p(50.0), "p90": p(90.0), "p99": p(99.0), "p999": p(99.9),
                           "max": ms(lat.last().copied().unwrap_or_default())},
        });
        println!("{out}");
    } else {
        println!("Summary:");
        println!("  Total:\t{:.4} secs.", elapsed.as_secs_f64());
        println!("  Requests:\t{} ({} errors)", lat.len(), errors);
        println!("  Requests/sec:\t{rps:.1}");
        println!(
            "Latency (ms): p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            p(50.0),
            p(90.0),
            p(99.0),
            p(99.9),
            ms(lat.last().copied().unwrap_or_default())
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_sample() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
