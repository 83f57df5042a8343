//! Watchers that record what they receive, resuming after the last revision they saw when their
//! member fails them, as etcd's clients do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use futures::StreamExt;
use oxcd_lincheck::{Event, EventKind, WatchLog};
use oxcd_proto::etcdserverpb::watch_client::WatchClient;
use oxcd_proto::etcdserverpb::watch_request::RequestUnion;
use oxcd_proto::etcdserverpb::{WatchCreateRequest, WatchRequest};
use oxcd_proto::mvccpb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::cluster::channel;

/// The key just after every key starting with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn convert(e: &mvccpb::Event) -> Option<Event> {
    let kv = e.kv.as_ref()?;
    let kind = if e.r#type == mvccpb::event::EventType::Delete as i32 {
        EventKind::Delete
    } else {
        EventKind::Put
    };
    Some(Event {
        revision: kv.mod_revision,
        key: String::from_utf8_lossy(&kv.key).into_owned(),
        value: (kind == EventKind::Put).then(|| String::from_utf8_lossy(&kv.value).into_owned()),
        kind,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        prev_value: e
            .prev_kv
            .as_ref()
            .map(|p| String::from_utf8_lossy(&p.value).into_owned()),
    })
}

/// Opens one watch on `member` from `start` and passes its events on until the stream ends.
async fn watch_once(
    member: usize,
    prefix: &str,
    start: i64,
    prev_kv: bool,
    out: &mut Vec<Event>,
    stop: &AtomicBool,
    until_revision: Option<i64>,
) -> Result<()> {
    // The reference watch carries every value in the store, the disk filler's large ones too.
    let mut client = WatchClient::new(channel(member)?).max_decoding_message_size(1 << 30);
    let (tx, rx) = mpsc::channel(4);
    let create = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            // An empty prefix means every key, which etcd spells as key "\0".
            key: if prefix.is_empty() {
                vec![0].into()
            } else {
                prefix.as_bytes().to_vec().into()
            },
            range_end: prefix_end(prefix).into(),
            start_revision: start,
            prev_kv,
            ..Default::default()
        })),
    };
    tx.send(create).await?;
    let mut stream = client.watch(ReceiverStream::new(rx)).await?.into_inner();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let next = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
        let Ok(next) = next else { continue };
        let Some(resp) = next else {
            bail!("watch stream ended")
        };
        let resp = resp?;
        if resp.canceled || resp.compact_revision != 0 {
            bail!(
                "watch canceled: {} (compacted at {})",
                resp.cancel_reason,
                resp.compact_revision
            );
        }
        out.extend(resp.events.iter().filter_map(convert));
        if let (Some(until), Some(last)) = (until_revision, out.last()) {
            if last.revision >= until {
                return Ok(());
            }
        }
    }
}

/// One recorded watcher on `prefix` from revision 1, until `stop`.
pub async fn run_watcher(
    watcher: u32,
    members: usize,
    prefix: String,
    stop: Arc<AtomicBool>,
) -> WatchLog {
    let mut events = Vec::new();
    let mut member = watcher as usize % members;
    while !stop.load(Ordering::Relaxed) {
        let start = events.last().map(|e: &Event| e.revision + 1).unwrap_or(1);
        if watch_once(member, &prefix, start, true, &mut events, &stop, None)
            .await
            .is_err()
        {
            member = (member + 1) % members;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    WatchLog {
        watcher,
        prefix,
        start_revision: 1,
        prev_kv: true,
        events,
    }
}

/// Every event in the store from revision 1 to `revision`, read from `member` after the run.
pub async fn reference_history(member: usize, revision: i64) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    let never = AtomicBool::new(false);
    if revision <= 1 {
        return Ok(events);
    }
    tokio::time::timeout(
        Duration::from_secs(60),
        watch_once(member, "", 1, true, &mut events, &never, Some(revision)),
    )
    .await??;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end("k/"), b"k0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
        // No prefix: every key, which etcd spells as range end "\0".
        assert_eq!(prefix_end(""), vec![0]);
    }
}
