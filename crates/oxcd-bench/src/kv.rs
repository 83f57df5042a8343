//! The request/response workloads: put, range, txn-put.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Uri;
use oxcd_proto::etcdserverpb::{
    compare, request_op, Compare, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp,
    TxnRequest, TxnResponse,
};

use crate::rawgrpc::RawChannel;
use crate::report::Report;
use crate::{Args, Progress, Workload};

async fn one(
    client: &mut RawChannel,
    uri: &Uri,
    args: &Args,
    value: &Bytes,
    n: usize,
) -> anyhow::Result<()> {
    let k = Bytes::from(args.key(n));
    match &args.workload {
        Workload::Put => {
            let req = PutRequest {
                key: k,
                value: value.clone(),
                ..Default::default()
            };
            client.unary::<_, PutResponse>(uri, &req).await?;
        }
        Workload::Range { consistency } => {
            let req = RangeRequest {
                key: k,
                serializable: consistency == "s",
                ..Default::default()
            };
            client.unary::<_, RangeResponse>(uri, &req).await?;
        }
        Workload::TxnPut => {
            let put = RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: k.clone(),
                    value: value.clone(),
                    ..Default::default()
                })),
            };
            let req = TxnRequest {
                compare: vec![Compare {
                    key: k,
                    target: compare::CompareTarget::Version as i32,
                    result: compare::CompareResult::Greater as i32,
                    target_union: Some(compare::TargetUnion::Version(-1)),
                    ..Default::default()
                }],
                success: vec![put],
                ..Default::default()
            };
            client.unary::<_, TxnResponse>(uri, &req).await?;
        }
        _ => {}
    }
    Ok(())
}

pub async fn run(
    args: Arc<Args>,
    channels: &[RawChannel],
    progress: Progress,
) -> anyhow::Result<Report> {
    let path = match &args.workload {
        Workload::Range { .. } => "/etcdserverpb.KV/Range",
        Workload::TxnPut => "/etcdserverpb.KV/Txn",
        _ => "/etcdserverpb.KV/Put",
    };
    let value = Bytes::from(vec![b'v'; args.val_size]);
    let next = Arc::new(AtomicUsize::new(0));
    let reported = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients.max(1) {
        let mut client = channels[c % channels.len()].clone();
        let uri = client.uri(path)?;
        let (args, value, next, progress, reported) = (
            args.clone(),
            value.clone(),
            next.clone(),
            progress.clone(),
            reported.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<Duration> = Vec::new();
            let mut log: Vec<(usize, Duration, Duration)> = Vec::new();
            let mut errors = 0usize;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= args.total {
                    break;
                }
                let t = Instant::now();
                match one(&mut client, &uri, &args, &value, n).await {
                    Ok(()) => {
                        let latency = t.elapsed();
                        lat.push(latency);
                        if args.latency_log.is_some() {
                            log.push((c, t - started, latency));
                        }
                    }
                    Err(e) => {
                        if !reported.swap(true, Ordering::Relaxed) {
                            eprintln!("request failed (only the first failure is shown): {e}");
                        }
                        errors += 1;
                    }
                }
                progress.inc(1);
            }
            (lat, errors, log)
        }));
    }
    let mut lat = Vec::with_capacity(args.total);
    let mut log = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e, per_request) = t.await?;
        lat.extend(l);
        log.extend(per_request);
        errors += e;
    }
    if let Some(path) = &args.latency_log {
        write_latency_log(path, log)?;
    }
    Ok(Report::new(lat, errors, started.elapsed()))
}

/// One line per request, in start order: `client start_us latency_us`.
fn write_latency_log(
    path: &std::path::Path,
    mut log: Vec<(usize, Duration, Duration)>,
) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    log.sort_by_key(|&(_, start, _)| start);
    let mut out = String::with_capacity(log.len() * 24);
    for (client, start, latency) in log {
        let _ = writeln!(
            out,
            "{client} {} {}",
            start.as_micros(),
            latency.as_micros()
        );
    }
    std::fs::write(path, out)?;
    Ok(())
}
