//! The public linearizability check: split the history per key, search each key (in parallel),
//! and explain a failure.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::history::Operation;
use crate::key_history::KeyHistory;
use crate::model::{apply, ModRevision, State};
use crate::wgl::{self, Limits, Stopped, Verdict};

/// The result of [`check_operations`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckOutcome {
    /// Every key's history is linearizable.
    Ok,
    /// `key`'s history has no linearization. When several keys are illegal, one of them.
    Illegal {
        key: String,
        /// The longest prefix of a linearization the search found, in linearization order.
        longest_linearization: Vec<Operation>,
        /// The key's state after that prefix.
        state_after_longest: KeyState,
        /// The operations that were candidates to come next after that prefix (pending, called
        /// before the earliest return among the rest). None of them could be linearized there
        /// without a later dead end; usually one of them shows the anomaly.
        unlinearizable: Vec<Operation>,
    },
    /// The search of `key` hit the time limit before reaching an answer; nothing is known
    /// about it. No key was found illegal.
    Timeout { key: String },
}

/// The model state of one key, for failure reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    pub value: Option<String>,
    pub mod_revision: ModRevision,
}

impl CheckOutcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckOutcome::Ok)
    }
}

/// Checks that `history` is linearizable with respect to etcd's KV semantics (see the crate
/// docs for the model), giving up after `timeout`.
///
/// Every request touches one key and keys are independent, so each key is checked on its own
/// (P-compositionality): a history is linearizable iff every key's sub-history is.
pub fn check_operations(history: &[Operation], timeout: Duration) -> CheckOutcome {
    let deadline = Instant::now() + timeout;
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.input.key()).or_default().push(op);
    }
    let keys: Vec<KeyHistory> = by_key
        .into_iter()
        .map(|(key, ops)| KeyHistory::new(key, ops))
        .collect();
    let verdicts = search_all(&keys, deadline);

    let mut timed_out = None;
    for (key, verdict) in keys.iter().zip(verdicts) {
        match verdict {
            Some(Verdict::Illegal { longest }) => return illegal(key, &longest),
            Some(Verdict::Stopped(Stopped::Deadline)) => {
                timed_out.get_or_insert_with(|| key.key.to_owned());
            }
            _ => {}
        }
    }
    match timed_out {
        Some(key) => CheckOutcome::Timeout { key },
        None => CheckOutcome::Ok,
    }
}

/// One verdict per key, in order; `None` for keys skipped after another key was found illegal.
fn search_all(keys: &[KeyHistory], deadline: Instant) -> Vec<Option<Verdict>> {
    let cancel = AtomicBool::new(false);
    let limits = Limits {
        deadline,
        cancel: &cancel,
    };
    // Longest first, so that a big key does not start last and leave the other cores idle.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| Reverse(keys[i].steps.len()));
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            if cancel.load(Ordering::Relaxed) {
                break;
            }
            let verdict = search_key(&keys[i], &limits);
            if matches!(verdict, Verdict::Illegal { .. }) {
                cancel.store(true, Ordering::Relaxed);
            }
            done.push((i, verdict));
        }
        done
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(keys.len());
    let finished: Vec<(usize, Verdict)> = if workers <= 1 {
        work()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
            handles
                .into_iter()
                // A panicking worker is a checker bug; its keys stay unanswered rather than
                // taking the harness down.
                .flat_map(|handle| handle.join().unwrap_or_default())
                .collect()
        })
    };
    let mut verdicts: Vec<Option<Verdict>> = (0..keys.len()).map(|_| None).collect();
    for (i, verdict) in finished {
        verdicts[i] = Some(verdict);
    }
    verdicts
}

fn search_key(key: &KeyHistory, limits: &Limits) -> Verdict {
    wgl::search(&key.intervals, key, State::INITIAL, limits)
}

fn illegal(key: &KeyHistory, longest: &[usize]) -> CheckOutcome {
    let mut state = State::INITIAL;
    let mut in_longest = vec![false; key.steps.len()];
    for &op in longest {
        in_longest[op] = true;
        // The search only records steps the model accepted, so this never fails.
        if let Some(next) = apply(state, &key.steps[op]) {
            state = next;
        }
    }
    let rest = || (0..key.steps.len()).filter(|&op| !in_longest[op]);
    let first_return = rest()
        .filter_map(|op| key.intervals[op].ret)
        .min()
        .unwrap_or(u64::MAX);
    let mut unlinearizable: Vec<usize> = rest()
        .filter(|&op| key.intervals[op].call <= first_return)
        .collect();
    unlinearizable.sort_by_key(|&op| key.intervals[op].call);
    let ops = |indices: &[usize]| -> Vec<Operation> {
        indices.iter().map(|&op| key.ops[op].clone()).collect()
    };
    CheckOutcome::Illegal {
        key: key.key.to_owned(),
        longest_linearization: ops(longest),
        state_after_longest: KeyState {
            value: state.value.map(|id| key.values[id as usize].to_owned()),
            mod_revision: state.revision,
        },
        unlinearizable: ops(&unlinearizable),
    }
}

impl fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckOutcome::Ok => write!(f, "linearizable"),
            CheckOutcome::Timeout { key } => {
                write!(f, "unknown: the check of key {key:?} timed out")
            }
            CheckOutcome::Illegal {
                key,
                longest_linearization,
                state_after_longest,
                unlinearizable,
            } => {
                writeln!(
                    f,
                    "key {key:?} is not linearizable: after {} linearized ops the key is {:?} \
                     (mod_revision {:?}) and none of these can come next:",
                    longest_linearization.len(),
                    state_after_longest.value,
                    state_after_longest.mod_revision,
                )?;
                for op in unlinearizable {
                    writeln!(f, "  {op}")?;
                }
                Ok(())
            }
        }
    }
}
