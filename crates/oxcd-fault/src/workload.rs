//! Client load, recorded: every KV operation with its invocation and completion times.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oxcd_lincheck::{Input, Operation, Output};
use oxcd_proto::etcdserverpb::kv_client::KvClient;
use oxcd_proto::etcdserverpb::{
    compare, request_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest,
};
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::cluster::channel;

pub const KV_PREFIX: &str = "k/";
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// Nanoseconds since the run began: the one clock every recorded operation uses.
#[derive(Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// Whether a failed request certainly never reached a server: then it cannot have taken effect.
fn never_sent(status: &tonic::Status) -> bool {
    let text = format!("{status:?}");
    status.code() == tonic::Code::Unavailable
        && (text.contains("tcp connect error") || text.contains("trying to connect"))
}

enum Outcome {
    Done(Output),
    /// The request failed before it left the client.
    NotSent,
    Unknown,
}

pub struct KvClientConfig {
    pub id: u32,
    pub members: usize,
    pub keys: usize,
    pub seed: u64,
    /// Serializable gets, which may be stale: only to show that the checker notices.
    pub serializable_reads: bool,
}

/// One client issuing get, put, delete and compare-and-set against a small key space until
/// `stop`; moves to the next member when its member fails it.
pub async fn run_kv_client(
    cfg: KvClientConfig,
    clock: Clock,
    stop: Arc<AtomicBool>,
) -> Vec<Operation> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut member = cfg.id as usize % cfg.members;
    let mut history = Vec::new();
    let mut last_seen: HashMap<String, Option<String>> = HashMap::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok(ch) = channel(member) else { break };
        let mut kv = KvClient::new(ch);
        let key = format!("{KV_PREFIX}{}", rng.random_range(0..cfg.keys));
        seq += 1;
        let value = format!("c{}-{seq}", cfg.id);
        let input = match rng.random_range(0..100) {
            0..=34 => Input::Get { key: key.clone() },
            35..=64 => Input::Put {
                key: key.clone(),
                value,
            },
            65..=74 => Input::Delete { key: key.clone() },
            _ => Input::CompareAndSet {
                key: key.clone(),
                expect: last_seen.get(&key).cloned().flatten(),
                value,
            },
        };
        let call_ns = clock.now_ns();
        let outcome = match tokio::time::timeout(
            OP_TIMEOUT,
            execute(&mut kv, &input, cfg.serializable_reads),
        )
        .await
        {
            Ok(Ok(out)) => Outcome::Done(out),
            Ok(Err(status)) if never_sent(&status) => Outcome::NotSent,
            Ok(Err(_)) | Err(_) => Outcome::Unknown,
        };
        let return_ns = clock.now_ns();
        match outcome {
            Outcome::Done(output) => {
                remember(&mut last_seen, &input, &output);
                history.push(Operation {
                    client: cfg.id,
                    call_ns,
                    return_ns: Some(return_ns),
                    input,
                    output,
                });
            }
            Outcome::NotSent => {
                member = (member + 1) % cfg.members;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Outcome::Unknown => {
                // A failed read changed nothing; a failed write may or may not have happened.
                if !matches!(input, Input::Get { .. }) {
                    history.push(Operation {
                        client: cfg.id,
                        call_ns,
                        return_ns: None,
                        input,
                        output: Output::Unknown,
                    });
                }
                member = (member + 1) % cfg.members;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    history
}

fn remember(last_seen: &mut HashMap<String, Option<String>>, input: &Input, output: &Output) {
    match (input, output) {
        (Input::Get { key }, Output::Get { value, .. }) => {
            last_seen.insert(key.clone(), value.clone());
        }
        (Input::Put { key, value }, _)
        | (
            Input::CompareAndSet { key, value, .. },
            Output::CompareAndSet {
                succeeded: true, ..
            },
        ) => {
            last_seen.insert(key.clone(), Some(value.clone()));
        }
        (Input::Delete { key }, _) => {
            last_seen.insert(key.clone(), None);
        }
        _ => {}
    }
}

fn header_revision(h: Option<&oxcd_proto::etcdserverpb::ResponseHeader>) -> i64 {
    h.map(|h| h.revision).unwrap_or(0)
}

async fn execute(
    kv: &mut KvClient<Channel>,
    input: &Input,
    serializable: bool,
) -> Result<Output, tonic::Status> {
    Ok(match input {
        Input::Get { key } => {
            let r = kv
                .range(RangeRequest {
                    key: key.clone().into_bytes().into(),
                    serializable,
                    ..Default::default()
                })
                .await?
                .into_inner();
            let kv = r.kvs.first();
            Output::Get {
                value: kv.map(|kv| String::from_utf8_lossy(&kv.value).into_owned()),
                mod_revision: kv.map(|kv| kv.mod_revision),
            }
        }
        Input::Put { key, value } => {
            let r = kv
                .put(PutRequest {
                    key: key.clone().into_bytes().into(),
                    value: value.clone().into_bytes().into(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            Output::Put {
                revision: header_revision(r.header.as_ref()),
            }
        }
        Input::Delete { key } => {
            let r = kv
                .delete_range(DeleteRangeRequest {
                    key: key.clone().into_bytes().into(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            Output::Delete {
                deleted: r.deleted,
                revision: header_revision(r.header.as_ref()),
            }
        }
        Input::CompareAndSet { key, expect, value } => {
            let cmp = match expect {
                Some(v) => Compare {
                    key: key.clone().into_bytes().into(),
                    target: compare::CompareTarget::Value as i32,
                    result: compare::CompareResult::Equal as i32,
                    target_union: Some(compare::TargetUnion::Value(v.clone().into_bytes().into())),
                    ..Default::default()
                },
                None => Compare {
                    key: key.clone().into_bytes().into(),
                    target: compare::CompareTarget::Version as i32,
                    result: compare::CompareResult::Equal as i32,
                    target_union: Some(compare::TargetUnion::Version(0)),
                    ..Default::default()
                },
            };
            let put = RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: key.clone().into_bytes().into(),
                    value: value.clone().into_bytes().into(),
                    ..Default::default()
                })),
            };
            let r = kv
                .txn(TxnRequest {
                    compare: vec![cmp],
                    success: vec![put],
                    ..Default::default()
                })
                .await?
                .into_inner();
            Output::CompareAndSet {
                succeeded: r.succeeded,
                revision: header_revision(r.header.as_ref()),
            }
        }
    })
}

/// Writes large values under `f/` until `stop`, to fill a small disk. Nothing is recorded:
/// these keys are outside the checked key space.
pub async fn run_filler(members: usize, stop: Arc<AtomicBool>) -> u64 {
    let value = vec![b'f'; 256 * 1024];
    let mut written = 0u64;
    let mut member = 0;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let Ok(ch) = channel(member) else { break };
        let mut kv = KvClient::new(ch);
        let put = kv.put(PutRequest {
            key: format!("f/{}", n % 512).into_bytes().into(),
            value: value.clone().into(),
            ..Default::default()
        });
        match tokio::time::timeout(OP_TIMEOUT, put).await {
            Ok(Ok(_)) => written += 1,
            _ => {
                member = (member + 1) % members;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    written
}
