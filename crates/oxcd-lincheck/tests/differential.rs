//! The checker against a brute-force one written straight from the specification, on many
//! small histories, linearizable and not. The brute force tries every order of the operations
//! that respects real time, leaves out any subset of the unanswered writes, and gives each
//! included unanswered write every revision in a range: nothing it does relies on the
//! checker's own model or pruning.

mod common;

use std::time::Duration;

use common::sim::{simulate, SimConfig};
use oxcd_lincheck::{check_operations, Input, Operation, Output};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Debug)]
struct Register {
    value: Option<String>,
    revision: i64,
}

/// Applies `op` (with `guess` as the revision of an unanswered write) or says it is illegal.
fn apply(state: &Register, op: &Operation, guess: i64) -> Option<Register> {
    let rev = state.revision;
    let put = |value: &str, revision: i64| Register {
        value: Some(value.to_owned()),
        revision,
    };
    match (&op.input, &op.output) {
        (
            Input::Get { .. },
            Output::Get {
                value,
                mod_revision,
            },
        ) => {
            if *value != state.value {
                return None;
            }
            match value {
                Some(_) => (*mod_revision == Some(rev)).then(|| state.clone()),
                None => Some(state.clone()),
            }
        }
        (Input::Put { value, .. }, Output::Put { revision }) => {
            (*revision > rev).then(|| put(value, *revision))
        }
        (Input::Delete { .. }, Output::Delete { deleted, revision }) => {
            match (&state.value, deleted) {
                (Some(_), 1) if *revision > rev => Some(Register {
                    value: None,
                    revision: *revision,
                }),
                (None, 0) if *revision >= rev => Some(state.clone()),
                _ => None,
            }
        }
        (
            Input::CompareAndSet { expect, value, .. },
            Output::CompareAndSet {
                succeeded,
                revision,
            },
        ) => match (state.value == *expect, succeeded) {
            (true, true) if *revision > rev => Some(put(value, *revision)),
            (false, false) if *revision >= rev => Some(state.clone()),
            _ => None,
        },
        (input, Output::Unknown) => {
            let changes = match input {
                Input::Put { .. } => true,
                Input::Delete { .. } => state.value.is_some(),
                Input::CompareAndSet { expect, .. } => state.value == *expect,
                Input::Get { .. } => false,
            };
            if !changes {
                return Some(state.clone());
            }
            if guess <= rev {
                return None;
            }
            Some(match input.written_value() {
                Some(value) => put(value, guess),
                None => Register {
                    value: None,
                    revision: guess,
                },
            })
        }
        _ => None,
    }
}

fn brute_force(history: &[Operation]) -> bool {
    let max_revision = history
        .iter()
        .filter_map(|op| match op.output {
            Output::Put { revision }
            | Output::Delete { revision, .. }
            | Output::CompareAndSet { revision, .. } => Some(revision),
            Output::Get { mod_revision, .. } => mod_revision,
            Output::Unknown => None,
        })
        .max()
        .unwrap_or(0);
    let guesses: Vec<i64> = (1..=max_revision + 2).collect();
    let mut placed = vec![false; history.len()];
    let initial = Register {
        value: None,
        revision: 0,
    };
    search(history, &mut placed, &initial, &guesses)
}

fn must_place(op: &Operation) -> bool {
    op.return_ns.is_some() && op.output != Output::Unknown
}

fn returned_at(op: &Operation) -> Option<u64> {
    op.return_ns.filter(|_| op.output != Output::Unknown)
}

fn search(history: &[Operation], placed: &mut [bool], state: &Register, guesses: &[i64]) -> bool {
    if history
        .iter()
        .zip(placed.iter())
        .all(|(op, &p)| p || !must_place(op))
    {
        return true;
    }
    for i in 0..history.len() {
        if placed[i] {
            continue;
        }
        // Real time: nothing still unplaced may have returned before this op was called.
        let blocked = history.iter().zip(placed.iter()).any(|(other, &p)| {
            !p && returned_at(other).is_some_and(|ret| ret < history[i].call_ns)
        });
        if blocked {
            continue;
        }
        let options: &[i64] = if history[i].output == Output::Unknown {
            guesses
        } else {
            &[0]
        };
        for &guess in options {
            if let Some(next) = apply(state, &history[i], guess) {
                placed[i] = true;
                let found = search(history, placed, &next, guesses);
                placed[i] = false;
                if found {
                    return true;
                }
            }
        }
    }
    false
}

/// Changes one thing in one answer, or swaps two answers' timing.
fn mutate(history: &mut [Operation], rng: &mut StdRng) {
    let i = rng.random_range(0..history.len());
    let written: Vec<String> = history
        .iter()
        .filter_map(|op| op.input.written_value().map(str::to_owned))
        .collect();
    let op = &mut history[i];
    let bump = if rng.random_bool(0.5) { 1 } else { -1 };
    match &mut op.output {
        Output::Get {
            value,
            mod_revision,
        } => {
            if rng.random_bool(0.5) && !written.is_empty() {
                *value = Some(written[rng.random_range(0..written.len())].clone());
                *mod_revision = Some(mod_revision.unwrap_or(2));
            } else if let Some(r) = mod_revision {
                *r += bump;
            } else {
                *value = None;
            }
        }
        Output::Put { revision } => *revision += bump,
        Output::Delete { deleted, revision } => {
            if rng.random_bool(0.5) {
                *deleted = 1 - *deleted;
            } else {
                *revision += bump;
            }
        }
        Output::CompareAndSet {
            succeeded,
            revision,
        } => {
            if rng.random_bool(0.5) {
                *succeeded = !*succeeded;
            } else {
                *revision += bump;
            }
        }
        Output::Unknown => {
            // Pretend the client was answered after all, by a made-up revision.
            op.return_ns = Some(op.call_ns + 5);
            op.output = match op.input {
                Input::Put { .. } => Output::Put { revision: 3 },
                Input::Delete { .. } => Output::Delete {
                    deleted: 1,
                    revision: 3,
                },
                _ => Output::CompareAndSet {
                    succeeded: true,
                    revision: 3,
                },
            };
        }
    }
    if rng.random_bool(0.2) {
        // Move the op so that it no longer overlaps what it overlapped.
        let shift = rng.random_range(0..60);
        op.call_ns += shift;
        if let Some(ret) = &mut op.return_ns {
            *ret += shift;
        }
    }
}

#[test]
fn agrees_with_brute_force() {
    let mut rng = StdRng::seed_from_u64(99);
    let (mut legal, mut illegal) = (0, 0);
    for seed in 0..3000 {
        let mut history = simulate(&SimConfig {
            keys: 1,
            clients: 3,
            ops: rng.random_range(3..=7),
            unknown_rate: 0.3,
            max_latency: 40,
            seed,
        })
        .history;
        if seed % 3 != 0 {
            for _ in 0..rng.random_range(1..=2) {
                mutate(&mut history, &mut rng);
            }
        }
        let expected = brute_force(&history);
        let outcome = check_operations(&history, Duration::from_secs(10));
        assert_eq!(
            outcome.is_ok(),
            expected,
            "seed {seed}: checker says {outcome}\nhistory: {}",
            serde_json::to_string_pretty(&history).unwrap()
        );
        if expected {
            legal += 1;
        } else {
            illegal += 1;
        }
    }
    // Both kinds must be well represented for the comparison to mean anything.
    assert!(
        legal > 500 && illegal > 500,
        "legal {legal}, illegal {illegal}"
    );
}
