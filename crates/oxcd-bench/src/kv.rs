//! The request/response workloads: put, range, txn-put.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use oxcd_proto::etcdserverpb::kv_client::KvClient;
use oxcd_proto::etcdserverpb::{
    compare, request_op, Compare, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use tonic::transport::Channel;

use crate::report::Report;
use crate::{Args, Progress, Workload};

async fn one(
    client: &mut KvClient<Channel>,
    args: &Args,
    value: &Bytes,
    n: usize,
) -> Result<(), tonic::Status> {
    let k = Bytes::from(args.key(n));
    match &args.workload {
        Workload::Put => {
            client
                .put(PutRequest {
                    key: k,
                    value: value.clone(),
                    ..Default::default()
                })
                .await?;
        }
        Workload::Range { consistency } => {
            client
                .range(RangeRequest {
                    key: k,
                    serializable: consistency == "s",
                    ..Default::default()
                })
                .await?;
        }
        Workload::TxnPut => {
            let put = RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: k.clone(),
                    value: value.clone(),
                    ..Default::default()
                })),
            };
            client
                .txn(TxnRequest {
                    compare: vec![Compare {
                        key: k,
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
        _ => {}
    }
    Ok(())
}

pub async fn run(
    args: Arc<Args>,
    channels: &[Channel],
    progress: Progress,
) -> anyhow::Result<Report> {
    let value = Bytes::from(vec![b'v'; args.val_size]);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients.max(1) {
        let mut client = KvClient::new(channels[c % channels.len()].clone())
            .max_decoding_message_size(64 * 1024 * 1024);
        let (args, value, next, progress) =
            (args.clone(), value.clone(), next.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<Duration> = Vec::new();
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
                progress.inc(1);
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
    Ok(Report::new(lat, errors, started.elapsed()))
}
