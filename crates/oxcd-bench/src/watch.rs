//! Watch fan-out: watchers on every connection watch the whole key space while writers put
//! values that carry their send time; each delivered event's latency is its arrival time minus
//! the time its put was sent, measured on one clock (writers and watchers share this process).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use oxcd_proto::etcdserverpb::kv_client::KvClient;
use oxcd_proto::etcdserverpb::watch_client::WatchClient;
use oxcd_proto::etcdserverpb::{watch_request, PutRequest, WatchCreateRequest, WatchRequest};
use tonic::transport::Channel;

use crate::report::Report;
use crate::{Args, Progress};

/// Bytes at the start of each value that hold the send time.
const STAMP: usize = 8;

/// Opens a watch on every key and returns its response stream once the server confirmed it.
async fn open_watch(
    channel: Channel,
) -> anyhow::Result<tonic::Streaming<oxcd_proto::etcdserverpb::WatchResponse>> {
    let create = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key: Bytes::from_static(b"\0"),
                range_end: Bytes::from_static(b"\0"),
                ..Default::default()
            },
        )),
    };
    // The request side stays open: a closed send side may end the watch on some servers.
    let requests = futures::stream::iter([create]).chain(futures::stream::pending());
    let mut stream = WatchClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .watch(requests)
        .await?
        .into_inner();
    loop {
        match stream.message().await? {
            Some(resp) if resp.created => return Ok(stream),
            Some(_) => continue,
            None => anyhow::bail!("watch stream closed before it was created"),
        }
    }
}

pub async fn run(
    args: Arc<Args>,
    channels: &[Channel],
    watchers: usize,
    drain_timeout: Duration,
    progress: Progress,
) -> anyhow::Result<Report> {
    let origin = Instant::now();
    let total = args.total;
    let mut streams = Vec::new();
    for w in 0..watchers.max(1) {
        streams.push(open_watch(channels[w % channels.len()].clone()).await?);
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let last_event = Arc::new(std::sync::Mutex::new(origin));
    let mut watch_tasks = Vec::new();
    for mut stream in streams {
        let (mut stop, progress, last_event) =
            (stop_rx.clone(), progress.clone(), last_event.clone());
        watch_tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(total);
            while lat.len() < total {
                let msg = tokio::select! {
                    m = stream.message() => m,
                    _ = stop.changed() => break,
                };
                let Ok(Some(resp)) = msg else { break };
                let now = origin.elapsed();
                for ev in &resp.events {
                    let Some(kv) = &ev.kv else { continue };
                    let Some(stamp) = kv.value.get(..STAMP) else {
                        continue;
                    };
                    let sent = u64::from_le_bytes(stamp.try_into().unwrap_or([u8::MAX; STAMP]));
                    // A stamp from the future is someone else's put, not one of ours.
                    if let Some(l) = now.checked_sub(Duration::from_nanos(sent)) {
                        lat.push(l);
                    }
                }
                progress.inc(resp.events.len());
            }
            if let Ok(mut last) = last_event.lock() {
                *last = (*last).max(origin + origin.elapsed());
            }
            lat
        }));
    }

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for c in 0..args.clients.max(1) {
        let mut client = KvClient::new(channels[c % channels.len()].clone());
        let (args, next) = (args.clone(), next.clone());
        writers.push(tokio::spawn(async move {
            let mut errors = 0usize;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= args.total {
                    break;
                }
                let mut value = BytesMut::with_capacity(args.val_size.max(STAMP));
                value.put_u64_le(origin.elapsed().as_nanos() as u64);
                value.resize(args.val_size.max(STAMP), b'v');
                let req = PutRequest {
                    key: Bytes::from(args.key(n)),
                    value: value.freeze(),
                    ..Default::default()
                };
                if client.put(req).await.is_err() {
                    errors += 1;
                }
            }
            errors
        }));
    }
    let mut errors = 0;
    for w in writers {
        errors += w.await?;
    }
    let put_seconds = started.elapsed().as_secs_f64();
    let collect = async {
        let mut all = Vec::new();
        for t in watch_tasks {
            all.extend(t.await?);
        }
        Ok::<_, anyhow::Error>(all)
    };
    tokio::pin!(collect);
    let lat = match tokio::time::timeout(drain_timeout, &mut collect).await {
        Ok(r) => r?,
        Err(_) => {
            let _ = stop_tx.send(true);
            collect.await?
        }
    };
    let elapsed = last_event
        .lock()
        .map(|l| l.saturating_duration_since(started))
        .unwrap_or_default();
    let expected = (total * watchers.max(1)) as f64;
    let mut report = Report::new(lat, errors, elapsed);
    report.extra = vec![
        (
            "puts_per_second",
            (total - errors) as f64 / put_seconds.max(1e-9),
        ),
        ("events_expected", expected),
        ("events_missing", expected - report.latencies.len() as f64),
    ];
    Ok(report)
}
