//! `oxcd-bench`: drives the v3 API of any etcd-compatible server with many concurrent clients
//! and reports throughput and the latency distribution, like etcd's `benchmark` tool.
//!
//! Clients are spread over `--conns` HTTP/2 connections; each client sends one request at a
//! time, so `--clients` is the number of requests in flight. The `watch` workload measures how
//! long a put takes to reach every watcher; `lease-keepalive` measures keep-alive round trips
//! on lease streams.

mod kv;
mod lease;
mod probe;
mod rawgrpc;
mod report;
mod watch;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use oxcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use oxcd_proto::etcdserverpb::StatusRequest;
use tonic::transport::{Channel, Endpoint};

use crate::report::Report;

#[derive(Parser)]
#[command(name = "oxcd-bench", about = "Load generator for the etcd v3 API")]
pub struct Args {
    /// Comma-separated client URLs.
    #[arg(
        long,
        default_value = "http://127.0.0.1:2379",
        value_delimiter = ',',
        global = true
    )]
    endpoints: Vec<String>,
    /// HTTP/2 connections, spread over the endpoints.
    #[arg(long, default_value_t = 1, global = true)]
    conns: usize,
    /// Concurrent clients (requests in flight).
    #[arg(long, default_value_t = 1, global = true)]
    clients: usize,
    /// Requests in total (for `watch`: puts; every watcher should see each one).
    #[arg(long, default_value_t = 10_000, global = true)]
    total: usize,
    #[arg(long, default_value_t = 8, global = true)]
    key_size: usize,
    #[arg(long, default_value_t = 8, global = true)]
    val_size: usize,
    /// Distinct keys written or read.
    #[arg(long, default_value_t = 1, global = true)]
    key_space_size: usize,
    /// Keys in order instead of spread over the key space.
    #[arg(long, global = true)]
    sequential_keys: bool,
    /// Find the leader (Maintenance.Status on each endpoint) and send everything there.
    #[arg(long, global = true)]
    target_leader: bool,
    /// Print one JSON object instead of the text report.
    #[arg(long, global = true)]
    json: bool,
    /// Also write one line per request of put, range and txn-put: client number, start (µs
    /// after the run began) and latency (µs). Stalls show as many requests of one member, or of
    /// all, ending together.
    #[arg(long, global = true)]
    latency_log: Option<std::path::PathBuf>,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand, Clone)]
pub enum Workload {
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
    /// Watch fan-out: `--watchers` watch streams see every put of `--clients` writers; reports
    /// the put-to-delivery latency of every event at every watcher.
    Watch {
        /// Watch streams, spread over the connections.
        #[arg(long, default_value_t = 100)]
        watchers: usize,
        /// Seconds to wait for the last events after the last put.
        #[arg(long, default_value_t = 30)]
        drain_timeout: u64,
    },
    /// Lease keep-alives: each client grants a lease and renews it over its own keep-alive
    /// stream, one renewal in flight at a time.
    LeaseKeepalive {
        /// TTL of the granted leases, seconds.
        #[arg(long, default_value_t = 60)]
        ttl: i64,
    },
    /// No server: the latency of `--total` small appends each followed by fdatasync, in a file
    /// in `--dir` (use the members' filesystem).
    DiskSync {
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
        /// Bytes per append (a WAL record of a small put is a few hundred).
        #[arg(long, default_value_t = 512)]
        size: usize,
    },
    /// No server: the round-trip time of `--total` small TCP messages on a loopback address.
    LoopbackRtt {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: String,
        #[arg(long, default_value_t = 64)]
        size: usize,
    },
}

impl Args {
    /// The key of request `n`, `--key-size` bytes (zero-padded decimal).
    pub fn key(&self, n: usize) -> Vec<u8> {
        let space = self.key_space_size.max(1);
        let idx = if self.sequential_keys {
            n % space
        } else {
            // A cheap, well-spread permutation; no RNG needed for a benchmark.
            n.wrapping_mul(2_654_435_761) % space
        };
        let mut k = format!("{idx:0width$}", width = self.key_size).into_bytes();
        k.truncate(self.key_size.max(1));
        k
    }
}

/// Counts finished requests for the progress bar.
#[derive(Clone, Default)]
pub struct Progress(Arc<AtomicUsize>);

impl Progress {
    pub fn inc(&self, n: usize) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

/// A progress bar on stderr, drawn from the shared counter a few times a second (clients only
/// bump an atomic, so the bar costs the measured run next to nothing). Nothing is drawn when
/// stderr is not a terminal, so scripts and logs see only the report.
fn progress_bar(total: u64, progress: &Progress) -> Option<tokio::task::JoinHandle<()>> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} [{elapsed_precise}] {per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let counter = progress.0.clone();
    Some(tokio::spawn(async move {
        loop {
            let done = counter.load(Ordering::Relaxed) as u64;
            bar.set_position(done.min(total));
            if done >= total {
                bar.finish_and_clear();
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }))
}

/// The endpoint of the current leader: the one whose member ID is the leader its Status names.
async fn find_leader(endpoints: &[String]) -> anyhow::Result<String> {
    for url in endpoints {
        let Ok(ep) = Endpoint::from_shared(url.clone()) else {
            continue;
        };
        let Ok(ch) = ep.connect_timeout(Duration::from_secs(3)).connect().await else {
            continue;
        };
        let Ok(st) = MaintenanceClient::new(ch).status(StatusRequest {}).await else {
            continue;
        };
        let st = st.into_inner();
        let member = st.header.map(|h| h.member_id).unwrap_or(0);
        if member != 0 && member == st.leader {
            return Ok(url.clone());
        }
    }
    anyhow::bail!("no endpoint reports itself as the leader")
}

/// The endpoints to load: all of them, or only the leader's with `--target-leader`.
async fn endpoints(args: &Args) -> anyhow::Result<Vec<String>> {
    if args.target_leader {
        Ok(vec![find_leader(&args.endpoints).await?])
    } else {
        Ok(args.endpoints.clone())
    }
}

/// `--conns` tonic connections, round-robin over the endpoints (for the streaming workloads).
async fn connect(endpoints: &[String], conns: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for i in 0..conns.max(1) {
        let url = &endpoints[i % endpoints.len()];
        channels.push(Endpoint::from_shared(url.clone())?.connect().await?);
    }
    Ok(channels)
}

/// `--conns` raw HTTP/2 connections, round-robin over the endpoints (for unary workloads).
async fn connect_raw(
    endpoints: &[String],
    conns: usize,
) -> anyhow::Result<Vec<rawgrpc::RawChannel>> {
    let mut channels = Vec::new();
    for i in 0..conns.max(1) {
        channels.push(rawgrpc::RawChannel::connect(&endpoints[i % endpoints.len()]).await?);
    }
    Ok(channels)
}

/// CPU seconds (user + system) this process has used so far: the load generator shares the
/// machine with the servers, so its own cost is reported too.
fn own_cpu_seconds() -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given.
    let ru = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) != 0 {
            return 0.0;
        }
        ru.assume_init()
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    match &args.workload {
        Workload::DiskSync { dir, size } => {
            probe::disk_sync(dir, args.total, *size)?.print(args.json);
            return Ok(());
        }
        Workload::LoopbackRtt { addr, size } => {
            probe::loopback_rtt(addr, args.total, *size)?.print(args.json);
            return Ok(());
        }
        _ => {}
    }
    let endpoints = endpoints(&args).await?;
    let progress = Progress::default();
    let expected = match &args.workload {
        Workload::Watch { watchers, .. } => args.total * watchers.max(&1),
        _ => args.total,
    };
    let bar = progress_bar(expected as u64, &progress);
    let cpu_before = own_cpu_seconds();
    let mut result = match &args.workload {
        Workload::Put | Workload::Range { .. } | Workload::TxnPut => {
            let channels = connect_raw(&endpoints, args.conns).await?;
            kv::run(args.clone(), &channels, progress.clone()).await?
        }
        Workload::Watch {
            watchers,
            drain_timeout,
        } => {
            watch::run(
                args.clone(),
                &connect(&endpoints, args.conns).await?,
                *watchers,
                Duration::from_secs(*drain_timeout),
                progress.clone(),
            )
            .await?
        }
        Workload::LeaseKeepalive { ttl } => {
            let channels = connect(&endpoints, args.conns).await?;
            lease::run(args.clone(), &channels, *ttl, progress.clone()).await?
        }
        Workload::DiskSync { .. } | Workload::LoopbackRtt { .. } => Report::default(),
    };
    result.client_cpu_seconds = own_cpu_seconds() - cpu_before;
    progress.inc(expected);
    if let Some(bar) = bar {
        let _ = bar.await;
    }
    result.print(args.json);
    Ok(())
}
